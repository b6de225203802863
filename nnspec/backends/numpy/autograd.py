"""Reverse mode over NumPy arrays: `Var` (a value and where it came from), `record`, `backward`.

A primitive computes its output arrays, then calls `record(outputs, parents, back)`;
`back(*output_grads) -> parent_grads` is its vector-Jacobian product, written beside
the forward (ops.py, activations.py, image.py, cells.py). Nothing is recorded unless
a parent needs a gradient, so frozen weights and constants cost nothing on the way back.
`backward` walks the recorded nodes once, in reverse topological order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


class Node:
    """One recorded primitive: its parents, its vector-Jacobian product, its outputs' gradients."""

    __slots__ = ("parents", "back", "grads", "owned", "shapes", "dtype")

    def __init__(self, parents: tuple[Var, ...], back: Callable, outputs: Sequence[np.ndarray]):
        self.parents = parents
        self.back = back
        self.grads: list[np.ndarray | None] = [None] * len(outputs)
        # owned[i]: grads[i] was allocated here, so `+=` may write into it
        self.owned = [False] * len(outputs)
        self.shapes = tuple(o.shape for o in outputs)
        self.dtype = outputs[0].dtype


class Var:
    """An array in the computation: `value`, and the node that made it (None for leaves).

    Leaves are parameters (`needs_grad` when trainable), inputs and constants (never).
    """

    __slots__ = ("value", "node", "index", "needs_grad", "grad", "owned")

    def __init__(
        self, value: np.ndarray, needs_grad: bool = False, node: Node | None = None, index: int = 0
    ):
        self.value = value
        self.node = node
        self.index = index
        self.needs_grad = needs_grad
        self.grad: np.ndarray | None = None  # leaves only
        self.owned = False

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def ndim(self) -> int:
        return self.value.ndim

    def __repr__(self) -> str:
        return f"Var({self.value.shape}, {self.value.dtype}{', grad' if self.needs_grad else ''})"


def const(value: np.ndarray) -> Var:
    """A value that takes no gradient (masks, noise, zeros of the first step)."""
    return Var(value)


def record(value: np.ndarray, parents: tuple[Var, ...], back: Callable[[np.ndarray], tuple]) -> Var:
    """The output of a one-output primitive; `back(g)` returns one gradient (or None) per parent."""
    if not any(p.needs_grad for p in parents):
        return Var(value)
    return Var(value, True, Node(parents, back, (value,)))


def record_many(
    values: Sequence[np.ndarray], parents: tuple[Var, ...], back: Callable[..., tuple]
) -> list[Var]:
    """The outputs of a primitive with several; `back(g0, g1, ...)` gets zeros for outputs no
    gradient reached."""
    if not any(p.needs_grad for p in parents):
        return [Var(v) for v in values]
    node = Node(parents, back, values)
    return [Var(v, True, node, i) for i, v in enumerate(values)]


def _summed(old: np.ndarray | None, owned: bool, g: np.ndarray) -> tuple[np.ndarray, bool]:
    """Add `g` to a gradient; the first one is kept as given (no copy),
    so it is never written into."""
    if old is None:
        return g, False
    if owned:
        old += g
        return old, True
    return old + g, True


def add_grad(var: Var, g: np.ndarray | None) -> None:
    """Give `var` the gradient `g` (added to any it already has)."""
    if g is None or not var.needs_grad:
        return
    if var.node is None:
        var.grad, var.owned = _summed(var.grad, var.owned, g)
    else:
        node, i = var.node, var.index
        node.grads[i], node.owned[i] = _summed(node.grads[i], node.owned[i], g)


def backward(roots: Sequence[Var]) -> None:
    """Propagate the gradients already given to `roots` (by `add_grad`) back to every leaf."""
    for node in reversed(_topological(roots)):
        if all(g is None for g in node.grads):
            continue
        grads = (
            [
                np.zeros(s, node.dtype) if g is None else g
                for g, s in zip(node.grads, node.shapes, strict=True)
            ]
            if len(node.grads) > 1
            else node.grads
        )
        parent_grads = node.back(*grads)
        node.grads = [None] * len(node.grads)  # free them as we go
        # a primitive with an optional parent (a bias) may return a trailing None for it
        for parent, g in zip(node.parents, parent_grads, strict=False):
            add_grad(parent, g)
        node.back = None  # the closure holds forward arrays: release them


def _topological(roots: Sequence[Var]) -> list[Node]:
    """Nodes reachable from `roots`, each after every node it reads
    (iterative depth-first search)."""
    order: list[Node] = []
    seen: set[Node] = set()
    stack = [(r.node, False) for r in roots if r.node is not None]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend(
            (p.node, False) for p in node.parents if p.node is not None and p.node not in seen
        )
    return order
