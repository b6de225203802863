"""Recurrent cells that keep their own state from step to step: rnn, lstm, gru.

Parameters follow PyTorch's RNNCell/LSTMCell/GRUCell: weight_ih [gates * units, inputs],
weight_hh [gates * units, units], bias_ih and bias_hh [gates * units].
"""

from __future__ import annotations

from .activation import Act, Activation
from .base import Cell, Count, Kind, Options, Param, Shape, need_rank, uniform_fan_in


class RNNOptions(Options):
    units: Count
    act: Act = Activation(name="tanh")
    bias: bool = True


class GatedOptions(Options):
    units: Count
    bias: bool = True


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
    """Elman cell: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)."""

    name = "rnn"
    cell = Cell.RECURRENT
    Options = RNNOptions


class LSTM(_Recurrent):
    """Input, forget, cell and output gates (PyTorch's order)."""

    name = "lstm"
    cell = Cell.MEMORY
    Options = GatedOptions
    gates = 4


class GRU(_Recurrent):
    """Reset, update and new gates (PyTorch's order)."""

    name = "gru"
    cell = Cell.GATED_MEMORY
    Options = GatedOptions
    gates = 3


KINDS = [RNN(), LSTM(), GRU()]
