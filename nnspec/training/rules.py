"""The steps of the learning rules without gradients, one entry per rule of `nnspec/rules.py`.

The network is one layer fed by its input (the train-section checker makes sure of it, from the
rule's declaration). With x the input, z = W x + b the layer's net input, y its output and t the
target, a batch adds

    perceptron (Rosenblatt):    lr * (t - y) x     y = step(z), so only mistakes move the weights
    delta (Widrow-Hoff, LMS):   lr * (t - z) x     the net input, before any threshold (ADALINE)
    hebb:                       lr * t x           the target as the post-synaptic activity

to W (and the same without x to b), summed over the batch's examples. The backend's runner
computes the outputs, the loss and the metrics; the rule only moves the weights.

Each rule's `Steps` hold its update per backend, side by side: `numpy` on NumPy arrays, and
`torch` on torch tensors, or `NUMPY` where the NumPy update is right for PyTorch as it is (the
runner hands it NumPy copies of the weights and adds the result back: `weights()`, `add_to()`).
A rule that sees all the data at once (`sees = "data"` in its declaration: least squares,
Hopfield storage) has the same kind of step, given the whole training data as one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from ..program import Program


@dataclass(frozen=True)
class Batch:
    """What a step sees, as one backend's arrays (NumPy's or torch's).

    x: the layer's input `[batch, inputs]`; t: the target, one value per unit `[batch, units]`;
    y: the layer's output `[batch, units]`; w: its weight `[units, inputs]`; b: its bias
    `[units]` (None without one).
    """

    x: Any
    t: Any
    y: Any
    w: Any
    b: Any

    @property
    def z(self):
        """The net input W x + b `[batch, units]`."""
        return self.x @ self.w.T + (0 if self.b is None else self.b)


# A step: (batch, lr) -> what to add to the layer's parameters, by parameter ("weight", "bias").
Step = Callable[[Batch, float], dict[str, Any]]
NUMPY = "numpy"  # in `Steps.torch`: the NumPy step serves PyTorch too


@dataclass(frozen=True)
class Steps:
    """A rule's update on each backend."""

    numpy: Step
    torch: Step | Literal["numpy"]


def _moved_by(signal: Callable[[Batch], Any]) -> Step:
    """An error-correcting step: lr * signal^T x to W, lr * the signal summed to b.

    `signal(batch)`: `[batch, units]`; NumPy and torch spell `.T`, `@` and `.sum(0)` alike.
    """

    def step(batch: Batch, lr: float) -> dict[str, Any]:
        s = signal(batch)
        deltas = {"weight": lr * s.T @ batch.x}
        if batch.b is not None:
            deltas["bias"] = lr * s.sum(0)
        return deltas

    return step


STEPS: dict[str, Steps] = {
    "perceptron": Steps(numpy=_moved_by(lambda b: b.t - b.y), torch=NUMPY),
    "delta": Steps(numpy=_moved_by(lambda b: b.t - b.z), torch=NUMPY),
    "hebb": Steps(numpy=_moved_by(lambda b: b.t), torch=NUMPY),
}


class RuleRunner:
    """A backend runner whose weights move by a learning rule instead of an optimizer."""

    def __init__(self, inner, rule: str, program: Program):
        layer = next(layer for layer in program.layers if layer.params)
        self.inner, self.rule, self.backend = inner, rule, inner.backend
        self.layer, self.source = layer.name, layer.inputs[0].source
        steps = STEPS[rule]
        self.update = (
            steps.numpy if self.backend == "numpy" or steps.torch == NUMPY else _on_tensors(steps)
        )

    def step(
        self, inputs: dict[str, np.ndarray], target: np.ndarray, mask: np.ndarray | None, lr: float
    ) -> tuple[float, np.ndarray]:
        loss, y = self.inner.evaluate(inputs, target, mask)
        weights = self.inner.weights()
        w, b = weights[f"{self.layer}.weight"], weights.get(f"{self.layer}.bias")
        x = inputs[self.source].reshape(len(target), -1).astype(w.dtype)
        t = _as_units(target, w.shape[0]).astype(w.dtype)
        deltas = self.update(Batch(x, t, y.reshape(t.shape), w, b), lr)
        self.inner.add_to({f"{self.layer}.{name}": delta for name, delta in deltas.items()})
        return loss, y

    def __getattr__(self, name: str):  # evaluate, predict, weights, checkpoint, restore
        return getattr(self.inner, name)


def _on_tensors(steps: Steps) -> Step:
    """The rule's torch step, given the batch as tensors; its deltas back as NumPy arrays."""
    import torch

    def step(batch: Batch, lr: float) -> dict[str, np.ndarray]:
        arrays = (getattr(batch, part.name) for part in fields(batch))
        tensors = Batch(*(None if a is None else torch.from_numpy(a) for a in arrays))
        return {name: delta.numpy() for name, delta in steps.torch(tensors, lr).items()}

    return step


def _as_units(target: np.ndarray, units: int) -> np.ndarray:
    """Targets as one value per output unit: class indices become one-hot rows (one unit: the
    index itself)."""
    if target.dtype.kind in "iu":
        return (
            target.reshape(-1, 1).astype(float) if units == 1 else np.eye(units)[target.reshape(-1)]
        )
    return target.reshape(len(target), -1)
