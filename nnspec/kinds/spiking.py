"""Spiking cells: leaky integrate-and-fire, trained through a surrogate gradient."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .base import Cell, Kind, Options, Param, Real, Shape, Units, need_rank, uniform_fan_in
from .initializers import InitOption


class LIFOptions(Options):
    units: Units
    threshold: Annotated[Real, Field(gt=0)] = 1.0
    decay: Annotated[Real, Field(ge=0, le=1)] = 0.9
    bias: bool = True
    init: InitOption = None


class LIF(Kind):
    """`[T, F]` -> `[T, units]` spikes (`[units]` per step).

    Per step, from `v_0 = 0`: `v = decay * v_prev + x_t @ W.T + b`; spike
    `s = 1 if v >= threshold else 0`; `v_prev = v - s * threshold` (the reset passes no gradient).
    Outputs the spikes. Gradient: the surrogate `ds/dv = 1 / (1 + 10 * abs(v - threshold))^2`.
    """

    name = "lif"
    family = "spiking"
    cell = Cell.SPIKING_HIDDEN
    Options = LIFOptions
    positional = ("units",)
    flags = ("bias",)
    stateful = True
    needs_time = True

    def shape(self, o: LIFOptions, x: Shape) -> Shape:
        need_rank(
            "lif",
            x,
            (1,),
            "feed it a vector per step; rate-code images with 'input x: 64, steps=20'",
        )
        return x.with_dims(o.units)

    def params(self, o: LIFOptions, x: Shape) -> dict[str, Param]:
        params = {"weight": uniform_fan_in((o.units, x.dims[0]), x.dims[0])}
        if o.bias:
            params["bias"] = uniform_fan_in((o.units,), x.dims[0])
        return params


KINDS = [LIF()]
