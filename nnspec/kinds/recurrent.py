"""Recurrent cells that keep their own state from step to step: rnn, lstm, gru.

Parameters follow PyTorch's RNNCell/LSTMCell/GRUCell: weight_ih [gates * units, inputs],
weight_hh [gates * units, units], bias_ih and bias_hh [gates * units].
"""

from __future__ import annotations

from .activation import Act, Activation
from .base import Cell, Kind, Options, Param, Shape, Units, need_rank, uniform_fan_in
from .initializers import InitOption


class RNNOptions(Options):
    units: Units
    act: Act = Activation(name="tanh")
    bias: bool = True
    init: InitOption = None


class GatedOptions(Options):
    units: Units
    bias: bool = True
    init: InitOption = None


class _Recurrent(Kind):
    family = "recurrent"
    positional = ("units",)
    flags = ("bias",)
    stateful = True
    needs_time = True
    gates = 1

    def shape(self, o, x: Shape) -> Shape:
        need_rank(self.name, x, (1,), "a recurrent cell takes one vector per time step")
        return x.with_dims(o.units)

    def params(self, o, x: Shape) -> dict[str, Param]:
        rows = self.gates * o.units
        params = {
            "weight_ih": uniform_fan_in((rows, x.dims[0]), o.units),
            "weight_hh": uniform_fan_in((rows, o.units), o.units),
        }
        if o.bias:  # PyTorch's recurrent cells draw every parameter from U(+-1/sqrt(units))
            params |= {
                "bias_ih": uniform_fan_in((rows,), o.units),
                "bias_hh": uniform_fan_in((rows,), o.units),
            }
        return params


class RNN(_Recurrent):
    """`[T, F]` -> `[T, units]` (`[units]` per step).

    `h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh)`, from `h_0 = 0` (Elman's cell).
    """

    name = "rnn"
    cell = Cell.RECURRENT
    Options = RNNOptions


class LSTM(_Recurrent):
    """`[T, F]` -> `[T, units]` (`[units]` per step).

    PyTorch's `LSTMCell`: gates `i, f, g, o` in that order from
    `x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh`; `c_t = σ(f) c_{t-1} + σ(i) tanh(g)`,
    `h_t = σ(o) tanh(c_t)`; outputs `h_t`.
    """

    name = "lstm"
    cell = Cell.MEMORY
    Options = GatedOptions
    gates = 4


class GRU(_Recurrent):
    """`[T, F]` -> `[T, units]` (`[units]` per step).

    PyTorch's `GRUCell`: `r, z, n` in that order;
    `n = tanh(x W_in.T + b_in + r (h W_hn.T + b_hn))`, `h_t = (1 - z) n + z h_{t-1}`.
    """

    name = "gru"
    cell = Cell.GATED_MEMORY
    Options = GatedOptions
    gates = 3


KINDS = [RNN(), LSTM(), GRU()]
