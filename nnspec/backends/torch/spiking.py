"""Spiking cells in PyTorch: lif, leaky integrate-and-fire with a surrogate gradient
(runtime.Spike)."""

from __future__ import annotations

from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering, at_step, split_steps


def _module(layer: Layer) -> nn.Linear:
    units, inputs = layer.params["weight"].shape
    return nn.Linear(inputs, units, bias="bias" in layer.params)


def reset(v: str, spike: str, threshold: float) -> str:
    """The line that subtracts the threshold where a cell spiked (no gradient through the
    reset); a threshold of 1 takes no multiply."""
    amount = f"{spike}.detach()" + ("" if threshold == 1 else f" * {threshold!r}")
    return f"{v} = {v} - {amount}"


def _membrane(e: Emit, v: str, current: str) -> list[str]:
    """One step: leak and integrate, spike at the threshold,
    subtract it (the reset passes no gradient)."""
    o = e.options
    s = f"{v}_spike"
    return [
        f"{v} = {o.decay!r} * {v} + {current}",
        f"{s} = _spike({v}, {o.threshold!r})",
        reset(v, s, o.threshold),
    ]


def _sequence(e: Emit, x: str) -> None:
    v = e.state("v")
    e.line(f"{v}_in = _every_step({e.module}, {x})")  # every step's input current at once
    e.line(split_steps(f"{v}_in"))
    e.line(f"{v} = {e.zeros(e.options.units)}")
    e.line(f"{v}_steps = []")
    e.line("for t in range(T):")
    for code in _membrane(e, v, at_step(f"{v}_in")):
        e.line("    " + code)
    e.line(f"    {v}_steps.append({v}_spike)")
    e.assign(f"torch.stack({v}_steps, 1)")


def _step(e: Emit, x: str) -> None:
    v = e.state("v")
    e.before.append(f"{v} = {e.zeros(e.options.units)}")
    for code in _membrane(e, v, f"{e.module}({x})"):
        e.line(code)
    e.assign(f"{v}_spike")


LOWERINGS = {"lif": Lowering(_sequence, _module, _step)}
