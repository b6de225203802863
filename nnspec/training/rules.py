"""Learning rules without gradients: `rule = perceptron | delta | hebb` for one layer of weights.

The network is one `dense` layer fed by its input (settings.check_rule makes sure of it). With
x the input, z = W x + b the layer's net input, y its output and t the target, a batch adds

    perceptron (Rosenblatt):    lr * (t - y) x     y = step(z), so only mistakes move the weights
    delta (Widrow-Hoff, LMS):   lr * (t - z) x     the net input, before any threshold (ADALINE)
    hebb:                       lr * t x           the target as the post-synaptic activity

to W (and the same without x to b), summed over the batch's examples. The backend's runner
computes the outputs, the loss and the metrics; the rule only moves the weights.
"""

from __future__ import annotations

import numpy as np

from ..check import Program


class RuleRunner:
    """A backend runner whose weights move by a learning rule instead of an optimizer."""

    def __init__(self, inner, rule: str, program: Program):
        layer = next(layer for layer in program.layers if layer.params)
        self.inner, self.rule, self.backend = inner, rule, inner.backend
        self.layer, self.source = layer.name, layer.inputs[0].source

    def step(
        self, inputs: dict[str, np.ndarray], target: np.ndarray, mask: np.ndarray | None, lr: float
    ) -> tuple[float, np.ndarray]:
        loss, y = self.inner.evaluate(inputs, target, mask)
        weights = self.inner.weights()
        w, b = weights[f"{self.layer}.weight"], weights.get(f"{self.layer}.bias")
        x = inputs[self.source].reshape(len(target), -1).astype(w.dtype)
        t = _as_units(target, w.shape[0]).astype(w.dtype)
        if self.rule == "perceptron":
            signal = t - y.reshape(t.shape)
        elif self.rule == "delta":
            signal = t - (x @ w.T + (0 if b is None else b))
        else:
            signal = t
        deltas = {f"{self.layer}.weight": lr * signal.T @ x}
        if b is not None:
            deltas[f"{self.layer}.bias"] = lr * signal.sum(0)
        self.inner.add_to(deltas)
        return loss, y

    def __getattr__(
        self, name: str
    ):  # evaluate, predict, weights, checkpoint, restore: the backend's
        return getattr(self.inner, name)


def _as_units(target: np.ndarray, units: int) -> np.ndarray:
    """Targets as one value per output unit: class indices become one-hot rows (one unit: the index itself)."""
    if target.dtype.kind in "iu":
        return (
            target.reshape(-1, 1).astype(float) if units == 1 else np.eye(units)[target.reshape(-1)]
        )
    return target.reshape(len(target), -1)
