"""Reservoirs in PyTorch: esn (leaky tanh units) and lsm (leaky integrate-and-fire cells fed by
their own spikes), their fixed weights held in a `Reservoir` module (requires_grad off: the
backend freezes every parameter the kind declares untrainable)."""

from __future__ import annotations

import torch
from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering, at_step, split_steps
from .spiking import reset


class Reservoir(nn.Module):
    """weight_ih [units, inputs], weight_hh [units, units], bias [units]: a reservoir's weights,
    as drawn (backends/init.py); the layer's forward is written by its lowering."""

    def __init__(self, inputs: int, units: int):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.zeros(units, inputs))
        self.weight_hh = nn.Parameter(torch.zeros(units, units))
        self.bias = nn.Parameter(torch.zeros(units))


def _module(layer: Layer) -> Reservoir:
    units, inputs = layer.params["weight_ih"].shape
    return Reservoir(inputs, units)


def _esn(e: Emit, h: str, current: str) -> list[str]:
    """One step of leaky tanh units: h = (1 - lr) h + lr tanh(current + h W_hh^T)."""
    lr = float(e.options.lr)
    return [
        f"{h} = {1.0 - lr!r} * {h} + {lr!r} * torch.tanh({current} + {h} @ {e.module}.weight_hh.T)"
    ]


def _lsm(e: Emit, v: str, current: str) -> list[str]:
    """One step of lif cells fed by the last step's spikes: leak and integrate, spike at the
    threshold, subtract it (the reset passes no gradient)."""
    o = e.options
    s = f"{v}_spike"
    return [
        f"{v} = {o.decay!r} * {v} + {current} + {s} @ {e.module}.weight_hh.T",
        f"{s} = _spike({v}, {o.threshold!r})",
        reset(v, s, o.threshold),
    ]


STEPS = {"esn": (_esn, "h", ""), "lsm": (_lsm, "v", "_spike")}


def _sequence(e: Emit, x: str) -> None:
    cell, what, out = STEPS[e.layer.kind.name]
    state = e.state(what)
    e.line(
        f"{state}_in = _every_step(torch.nn.functional.linear, {x}, {e.module}.weight_ih, "
        f"{e.module}.bias)"
    )
    for name in _states(e, state):
        e.line(f"{name} = {e.zeros(e.options.units)}")
    e.line(split_steps(f"{state}_in"))
    e.line(f"{state}_steps = []")
    e.line("for t in range(T):")
    for code in cell(e, state, at_step(f"{state}_in")):
        e.line("    " + code)
    e.line(f"    {state}_steps.append({state}{out})")
    e.assign(f"torch.stack({state}_steps, 1)")


def _step(e: Emit, x: str) -> None:
    cell, what, out = STEPS[e.layer.kind.name]
    state = e.state(what)
    for name in _states(e, state):
        e.before.append(f"{name} = {e.zeros(e.options.units)}")
    # what enters, then its current, each on a line of its own: a fed-back input is a long
    # expression, and the compiled file keeps within 100 columns
    e.line(f"{state}_x = {x}")
    e.line(
        f"{state}_in = torch.nn.functional.linear({state}_x, {e.module}.weight_ih, {e.module}.bias)"
    )
    for code in cell(e, state, f"{state}_in"):
        e.line(code)
    e.assign(f"{state}{out}")


def _states(e: Emit, state: str) -> list[str]:
    """The variables a step carries: h for esn, the membrane and the last spikes for lsm."""
    return [state] if e.layer.kind.name == "esn" else [state, f"{state}_spike"]


LOWERINGS = {name: Lowering(_sequence, _module, _step) for name in STEPS}
