"""Activations in PyTorch, as `act=` and as layers of their own."""

from __future__ import annotations

from ...kinds.activation import ACTIVATIONS
from .lowering import Emit, Lowering, feature_axis

# name: (x expression, activation, feature axis) -> expression
APPLY = {
    "identity": lambda x, a, axis: x,
    "linear": lambda x, a, axis: x,
    "step": lambda x, a, axis: f"_step({x})",
    "sigmoid": lambda x, a, axis: f"torch.sigmoid({x})",
    "tanh": lambda x, a, axis: f"torch.tanh({x})",
    "relu": lambda x, a, axis: f"torch.relu({x})",
    "leaky_relu": lambda x, a, axis: f"F.leaky_relu({x}, {a.alpha!r})",
    "elu": lambda x, a, axis: f"F.elu({x}, {a.alpha!r})",
    "gelu": lambda x, a, axis: f"F.gelu({x})",
    "softplus": lambda x, a, axis: f"F.softplus({x})",
    "softmax": lambda x, a, axis: f"torch.softmax({x}, {axis})",
}


def _layer(name: str) -> Lowering:
    def whole(e: Emit, x: str) -> None:
        from ...kinds.activation import Activation

        act = Activation(name=name, alpha=getattr(e.options, "alpha", None))
        e.assign(e.activate(act, x, feature_axis(e.layer)))

    return Lowering(whole)


LOWERINGS = {name: _layer(name) for name in ACTIVATIONS}
