"""Reservoirs: random recurrent layers whose weights stay as they are drawn (never trained), read by
a trained linear readout: esn (leaky tanh units, Jaeger 2001) and lsm (leaky integrate-and-fire
cells, Maass, Natschlaeger and Markram 2002).

Both draw a sparse recurrent matrix scaled to a spectral radius (`Param.init` "spectral") and
sparse input weights of +-input_scaling ("sparse_sign"), from the network's seed as every other
parameter, so both backends start from the same reservoir.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field

from .base import Cell, Kind, Options, Param, Real, Shape, Units, int_to_float, need_rank

# a fraction of the possible links that exist, in (0, 1]
Density = Annotated[float, BeforeValidator(int_to_float), Field(gt=0.0, le=1.0)]
Positive = Annotated[Real, Field(gt=0)]
NonNegative = Annotated[Real, Field(ge=0)]


class ESNOptions(Options):
    units: Units
    sr: NonNegative = 1.0  # the spectral radius of the recurrent matrix
    lr: Annotated[Real, Field(gt=0, le=1)] = 1.0  # the leak rate
    input_scaling: NonNegative = 1.0
    connectivity: Density = 0.1  # of the recurrent matrix
    input_connectivity: Density = 0.1
    bias_scaling: NonNegative = 0.0


class LSMOptions(Options):
    units: Units
    sr: NonNegative = 0.9  # the spectral radius of the recurrent matrix
    threshold: Positive = 1.0
    decay: Annotated[Real, Field(ge=0, le=1)] = 0.9
    input_scaling: NonNegative = 1.0
    connectivity: Density = 0.1
    input_connectivity: Density = 0.1
    bias_scaling: NonNegative = 0.0


def reservoir_params(o: ESNOptions | LSMOptions, inputs: int) -> dict[str, Param]:
    """The fixed weights of a reservoir of `o.units` fed by `inputs` features: weight_ih
    `[units, inputs]` (+-input_scaling where linked), weight_hh `[units, units]` (N(0, 1) where
    linked, scaled to the spectral radius sr), bias `[units]` (+-bias_scaling)."""
    units = o.units
    return {
        "weight_ih": Param(
            (units, inputs), False, init=("sparse_sign", (o.input_scaling, o.input_connectivity))
        ),
        "weight_hh": Param((units, units), False, init=("spectral", (o.sr, o.connectivity))),
        "bias": Param((units,), False, init=("sparse_sign", (o.bias_scaling, 1.0))),
    }


class _Reservoir(Kind):
    family = "reservoir"
    positional = ("units",)
    stateful = True
    needs_time = True
    drawn_as = "block"
    hint: ClassVar[str] = "feed it a vector per step ('input x: 1, seq')"

    def shape(self, o, x: Shape) -> Shape:
        need_rank(self.name, x, (1,), self.hint)
        return x.with_dims(o.units)

    def params(self, o, x: Shape) -> dict[str, Param]:
        return reservoir_params(o, x.dims[0])


class ESN(_Reservoir):
    """`[T, F]` -> `[T, units]` (`[units]` per step): an echo state network's reservoir.

    From `h_0 = 0`: `h_t = (1 - lr) h_{t-1} + lr tanh(x_t @ W_ih.T + h_{t-1} @ W_hh.T + b)`
    (leaky tanh units, Jaeger 2001; reservoirpy's Reservoir). The weights are drawn once and never
    trained: W_hh sparse (a fraction `connectivity` of its entries N(0, 1)) scaled so that its
    largest eigenvalue's modulus is `sr`; W_ih sparse (`input_connectivity`) of
    +-`input_scaling`; b of +-`bias_scaling` (0 by default). A dense readout after it is fitted by
    `rule = lstsq(ridge=..., washout=N)`; `nnspec.generate` runs it free, its output fed back as
    its next input.
    """

    name = "esn"
    cell = Cell.RECURRENT
    Options = ESNOptions


class LSM(_Reservoir):
    """`[T, F]` -> `[T, units]` spikes (`[units]` per step): a liquid state machine's reservoir.

    Leaky integrate-and-fire cells (as `lif`) wired to each other at random (Maass, Natschlaeger
    and Markram 2002). From `v_0 = 0, s_0 = 0`: `v = decay * v_prev + x_t @ W_ih.T +
    s_{t-1} @ W_hh.T + b`; spike `s_t = 1 if v >= threshold else 0`; `v_prev = v - s_t *
    threshold`. The weights are drawn once and never trained: W_hh sparse (`connectivity`,
    N(0, 1) scaled to the spectral radius `sr`), W_ih sparse (`input_connectivity`) of
    +-`input_scaling`, b of +-`bias_scaling`. A readout after it (a dense layer, its output
    averaged over time) is what trains. Gradient: the spike's surrogate, as lif's.
    """

    name = "lsm"
    cell = Cell.SPIKING_HIDDEN
    Options = LSMOptions
    hint = "feed it a vector per step; rate-code images with 'input x: 64, steps=20'"


KINDS = [ESN(), LSM()]
