"""The reservoirs in NumPy, composed of primitives whose gradients ops.py and cells.py hold:
esn's leaky tanh step and lsm's step of leaky integrate-and-fire cells fed by their own spikes.

Each step takes xg `(B, units)` = x W_ih^T + b, computed for every step at once before the loop,
and the state before it (None before the first step: zeros), and gives (output, state).
"""

from __future__ import annotations

from . import ops
from .activations import activate
from .autograd import Var
from .cells import TANH, lif_step


def esn_step(xg: Var, h: Var | None, W_hh: Var, leak: float) -> tuple[Var, Var]:
    """h_t = (1 - leak) h + leak tanh(xg + h W_hh^T) `(B, units)`, from h = 0 when None."""
    pre = xg if h is None else ops.add(xg, ops.linear(h, W_hh))
    new = ops.scale(activate(pre, TANH), leak)
    h_t = new if h is None or leak == 1.0 else ops.add(ops.scale(h, 1.0 - leak), new)
    return h_t, h_t


def lsm_step(
    xg: Var, state: tuple[Var, Var] | None, W_hh: Var, decay: float, threshold: float
) -> tuple[Var, tuple[Var, Var]]:
    """The spikes s_t `(B, units)` of lif cells whose input current is xg + s_{t-1} W_hh^T, and
    the state (membrane after reset, s_t); from v = 0, s = 0 when None."""
    if state is None:
        s, v = lif_step(xg, None, decay, threshold)
    else:
        v_prev, s_prev = state
        s, v = lif_step(ops.add(xg, ops.linear(s_prev, W_hh)), v_prev, decay, threshold)
    return s, (v, s)


def esn_cell(layer, p):
    """The esn cell of `layer` with its parameters `p`, for kinds.py's `_stateful`."""
    return lambda xg, h: esn_step(xg, h, p["weight_hh"], float(layer.options.lr))


def lsm_cell(layer, p):
    """The lsm cell of `layer` with its parameters `p`, for kinds.py's `_stateful`."""
    o = layer.options
    return lambda xg, state: lsm_step(xg, state, p["weight_hh"], o.decay, o.threshold)
