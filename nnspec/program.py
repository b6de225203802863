"""The checked program: every later stage reads a network as this, and nothing before it.

`check.check(graph) -> Program` makes it: layers in one topological order of the `->` links,
each with its kind and options, what enters it, its output shape and its parameters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import networkx as nx

from .errors import Span
from .kinds import Kind, Options, Param, Shape


@dataclass(frozen=True, slots=True)
class Link:
    """One link into a layer, in file order."""

    source: str
    port: str | None
    delayed: bool


@dataclass(frozen=True, slots=True)
class Borrowed:
    """A parameter a layer uses but does not hold (`shares=`, `tied=`): the owner layer's
    parameter `key`, as it is or `transposed` (a 2-d weight read as `W.T`). The owner holds it."""

    owner: str
    key: str
    transposed: bool = False

    @property
    def name(self) -> str:
        """The owner's parameter by its full name: `ea.h.weight`."""
        return f"{self.owner}.{self.key}"


@dataclass(frozen=True)
class Layer:
    """One checked layer: what it is, what enters it, what leaves it, what it holds.

    `params` are every parameter the layer computes with, in its own layout; those in
    `borrowed` belong to another layer (shared weights), which holds and counts them.
    """

    name: str
    kind: Kind
    options: Options
    inputs: tuple[Link, ...]
    shape: Shape
    params: dict[str, Param]
    span: Span
    recurrent: bool  # on a cycle through a ~> link: steps through time
    borrowed: dict[str, Borrowed] = field(default_factory=dict)  # key -> the owner's parameter

    @property
    def own_params(self) -> dict[str, Param]:
        """The parameters this layer holds (all of `params` but the borrowed ones)."""
        return {k: p for k, p in self.params.items() if k not in self.borrowed}

    @property
    def param_count(self) -> int:
        return sum(p.count for p in self.own_params.values() if not p.buffer)

    def param_name(self, key: str) -> str:
        """The full name of the array the layer reads as `key`: its own (`h.weight`) or the
        owner's (`ea.h.weight`, read transposed where `borrowed[key].transposed`)."""
        borrowed = self.borrowed.get(key)
        return borrowed.name if borrowed is not None else f"{self.name}.{key}"

    @property
    def shares(self) -> str | None:
        """The layer whose parameters this one uses, all of them as they are (`shares=`): it
        computes with the owner's module; None for a layer that holds some of its own."""
        owners = {(b.owner, b.key == k and not b.transposed) for k, b in self.borrowed.items()}
        if self.borrowed and len(owners) == 1 and len(self.borrowed) == len(self.params):
            owner, plain = owners.pop()
            return owner if plain else None
        return None

    @property
    def activation(self) -> str:
        """The activation that ends the layer (`identity` when it has none)."""
        if self.kind.family == "activation":
            return self.kind.name
        act = getattr(self.options, "act", None)
        return act.name if act is not None else "identity"


@dataclass(frozen=True)
class Output:
    name: str
    reduce: str | None  # None: every step (or the value, without time); "last"; "mean"
    shape: Shape


@dataclass(frozen=True)
class Program:
    """A checked network: layers in topological order of the `->` links,
    with shapes and parameters."""

    name: str
    description: str | None
    layers: tuple[Layer, ...]
    inputs: tuple[str, ...]
    outputs: tuple[Output, ...]
    timed: bool  # runs step by step
    graph: nx.MultiDiGraph = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {layer.name: layer for layer in self.layers})

    def layer(self, name: str) -> Layer:
        return self._by_name[name]

    @property
    def param_count(self) -> int:
        return sum(layer.param_count for layer in self.layers)

    @property
    def trainable_count(self) -> int:
        return sum(
            p.count for layer in self.layers for p in layer.own_params.values() if p.trainable
        )

    def parameters(self) -> dict[str, Param]:
        """Every parameter and buffer by its full name (`r2.2.b.weight`), in layer order; a
        shared one once, under its owner's name."""
        return {
            f"{layer.name}.{key}": param
            for layer in self.layers
            for key, param in layer.own_params.items()
        }


def layer_digests(programs: list[Program]) -> dict[str, str]:
    """Each layer's kind, options and inputs, as a short digest by name (a GAN's under each
    network's name): a change the parameter layout does not show (an activation, a link) is seen
    by it. A checkpoint records it for resuming, a weights file for predict and compile."""
    prefix = len(programs) > 1
    return {
        (f"{program.name}.{layer.name}" if prefix else layer.name): hashlib.sha256(
            f"{layer.kind!r}|{layer.options!r}|{layer.inputs!r}".encode()
        ).hexdigest()[:16]
        for program in programs
        for layer in program.layers
    }


def layer_changes(now: dict[str, str], then: dict[str, str]) -> str | None:
    """How the layers `now` (`layer_digests`) differ from those recorded `then`, in at most four
    parts ("layer 'h' changed; layer 'z' is new; and 2 more"); None when they do not."""
    changed = [f"layer '{n}' changed" for n in now if n in then and now[n] != then[n]]
    changed += [f"layer '{n}' is new" for n in now if n not in then]
    changed += [f"layer '{n}' is gone" for n in then if n not in now]
    more = f"; and {len(changed) - 4} more" if len(changed) > 4 else ""
    return f"{'; '.join(changed[:4])}{more}" if changed else None
