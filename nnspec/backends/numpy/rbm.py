"""The NumPy lowering of the rbm kind (nnspec/kinds/rbm.py): its forward, and its gradient
through the primitives it is built from."""

from __future__ import annotations

from ...program import Layer
from . import ops
from .activations import activate
from .autograd import Var


def rbm(ctx, layer: Layer, x: Var, p) -> Var:
    """v: (..., V) -> the hidden means (..., units): `linear` with the weight and the hidden bias,
    then `sigmoid`; the value before it is kept as the layer's logits (a stable loss when the rbm
    is an output), as dense's is. The visible bias is not read, so it takes no gradient."""
    z = ops.linear(x, p["weight"], p["bias"])
    if not ctx.in_loop:
        ctx.logits[layer.name] = z
    return activate(z, layer.options.act)
