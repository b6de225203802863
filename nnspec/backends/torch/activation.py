"""Activations in PyTorch as layers of their own; what each computes, as `act=` too, is
`lowering.ACTIVATION_CODE`."""

from __future__ import annotations

from ...kinds.activation import ACTIVATIONS, Activation
from .lowering import Emit, Lowering, feature_axis


def _layer(name: str) -> Lowering:
    def whole(e: Emit, x: str) -> None:
        act = Activation(name=name, alpha=getattr(e.options, "alpha", None))
        e.assign(e.activate(act, x, feature_axis(e.layer)))

    return Lowering(whole)


LOWERINGS = {name: _layer(name) for name in ACTIVATIONS}
