"""Recurrent cells that keep their own state from step to step: rnn, lstm, gru; and the
readouts over time, last and first.

One layer's parameters follow PyTorch's RNNCell/LSTMCell/GRUCell: weight_ih [gates * units,
inputs], weight_hh [gates * units, units], bias_ih and bias_hh [gates * units]. With `layers=N`
(N > 1) they follow nn.RNN/nn.LSTM/nn.GRU(num_layers=N): weight_ih_l0 ... weight_hh_l{N-1},
layer k > 0 taking the `units` of layer k - 1. With `bidirectional` they follow
nn.RNN/nn.LSTM/nn.GRU(bidirectional=True), even for one layer: weight_ih_l0 ... and the backward
direction's weight_ih_l0_reverse ..., layer k > 0 taking both directions' `2 * units`.
"""

from __future__ import annotations

from typing import ClassVar

from .activation import Act, Activation
from .base import (
    Cell,
    Count,
    Fraction,
    Kind,
    Options,
    Param,
    Shape,
    ShapeError,
    Units,
    need_rank,
    uniform_fan_in,
)
from .initializers import InitOption


class GatedOptions(Options):
    units: Units
    layers: Count = 1  # stacked cells, as num_layers of nn.LSTM
    dropout: Fraction = 0.0  # between stacked layers, in training only
    bias: bool = True
    bidirectional: bool = False  # a second cell reads the sequence backwards; features doubled
    init: InitOption = None


class RNNOptions(Options):
    units: Units
    act: Act = Activation(name="tanh")
    layers: Count = 1
    dropout: Fraction = 0.0
    bias: bool = True
    bidirectional: bool = False
    init: InitOption = None


def layer_suffixes(options: GatedOptions | RNNOptions) -> list[str]:
    """The parameter names' ending of each stacked layer: `[""]` for one layer (the cell's own
    names), `["_l0", "_l1", ...]` as nn.LSTM names them (always so when bidirectional)."""
    if options.layers == 1 and not options.bidirectional:
        return [""]
    return [f"_l{k}" for k in range(options.layers)]


def directions(options: GatedOptions | RNNOptions) -> list[str]:
    """What each direction adds to a layer's names: `[""]`, or `["", "_reverse"]` when
    bidirectional (nn.LSTM's names for the cell that reads the sequence backwards)."""
    return ["", "_reverse"] if options.bidirectional else [""]


class _Recurrent(Kind):
    family = "recurrent"
    positional = ("units",)
    flags = ("bias", "bidirectional")
    # `enc -> dec.state`: the state before the first step (zeros without it)
    ports = ("state",)
    side_ports = ("state",)
    stateful = True
    needs_time = True
    gates = 1

    def _input(self, o, x: dict[str | None, Shape]) -> Shape:
        """The main input (unnamed links); the `state`, when linked, checked against the units."""
        if None not in x:
            raise ShapeError(
                "E313",
                "{layer} has a state but no input",
                "link a sequence to it without naming a port, besides what feeds its state",
            )
        state = x.get("state")
        if state is not None and (state.timed or state.dims != (o.units,)):
            if state.timed:
                what = f"the sequence {state}"
                hint = (
                    "put a 'last' layer between them: it keeps the last step of the sequence, "
                    "one vector per example"
                )
            else:
                what = str(state)
                hint = f"make what feeds the state {o.units} wide, or this layer {state.size}"
            raise ShapeError(
                "E263",
                f"the state of {{layer}} is one vector [{o.units}] per example, but it "
                f"receives {what}",
                hint,
            )
        return x[None]

    def shape(self, o, x: dict[str | None, Shape]) -> Shape:
        x = self._input(o, x)
        need_rank(self.name, x, (1,), "a recurrent cell takes one vector per time step")
        if o.dropout and o.layers == 1:
            # PyTorch only warns, and the setting does nothing: a mistake worth stopping at
            raise ShapeError(
                "E260",
                f"{{layer}} has dropout={o.dropout:g} but one layer: dropout is applied between "
                "stacked layers",
                "stack layers (layers=2), or put a dropout layer after it",
                option="dropout",
            )
        return x.with_dims(o.units * len(directions(o)))

    def params(self, o, x: dict[str | None, Shape]) -> dict[str, Param]:
        x = self._input(o, x)
        rows = self.gates * o.units
        params = {}
        ways = directions(o)
        for k, layer in enumerate(layer_suffixes(o)):
            inputs = x.dims[0] if k == 0 else o.units * len(ways)
            for way in ways:
                suffix = layer + way
                params |= {
                    f"weight_ih{suffix}": uniform_fan_in((rows, inputs), o.units),
                    f"weight_hh{suffix}": uniform_fan_in((rows, o.units), o.units),
                }
                if o.bias:  # PyTorch's cells draw every parameter from U(+-1/sqrt(units))
                    params |= {
                        f"bias_ih{suffix}": uniform_fan_in((rows,), o.units),
                        f"bias_hh{suffix}": uniform_fan_in((rows,), o.units),
                    }
        return params


class RNN(_Recurrent):
    """`[T, F]` -> `[T, units]` (`[units]` per step; `[T, 2 * units]` when bidirectional).

    `h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh)`, from `h_0 = 0` (Elman's cell).
    `layers=N` stacks N cells as nn.RNN(num_layers=N) (each reads the one below, `dropout`
    between them in training). `enc -> h.state` starts it from a vector `[units]` (h_0 of every
    layer) instead of zeros, or, straight from an rnn of the same units and layers, from that
    encoder's final h of every layer. `bidirectional`: as nn.RNN(bidirectional=True), a second
    cell reads the sequence from its end (parameters `..._reverse`), and each step's features are
    the forward h then the backward h.
    """

    name = "rnn"
    cell = Cell.RECURRENT
    Options = RNNOptions


class LSTM(_Recurrent):
    """`[T, F]` -> `[T, units]` (`[units]` per step; `[T, 2 * units]` when bidirectional).

    PyTorch's `LSTMCell`: gates `i, f, g, o` in that order from
    `x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh`; `c_t = σ(f) c_{t-1} + σ(i) tanh(g)`,
    `h_t = σ(o) tanh(c_t)`; outputs `h_t`. `layers=N` stacks N cells as
    nn.LSTM(num_layers=N) (each reads the one below, `dropout` between them in training).
    `enc -> h.state` starts it from a vector `[units]` (h_0 of every layer; c_0 stays zero)
    instead of zeros, or, straight from an lstm of the same units and layers, from that encoder's
    final h and c of every layer (`out, (h, c) = enc(x); dec(y, (h, c))`). `bidirectional`: as
    nn.LSTM(bidirectional=True), forward and backward h joined per step.
    """

    name = "lstm"
    cell = Cell.MEMORY
    Options = GatedOptions
    gates = 4


class GRU(_Recurrent):
    """`[T, F]` -> `[T, units]` (`[units]` per step; `[T, 2 * units]` when bidirectional).

    PyTorch's `GRUCell`: `r, z, n` in that order;
    `n = tanh(x W_in.T + b_in + r (h W_hn.T + b_hn))`, `h_t = (1 - z) n + z h_{t-1}`.
    `layers=N` stacks N cells as nn.GRU(num_layers=N) (each reads the one below, `dropout`
    between them in training). `enc -> h.state` starts it from a vector `[units]` (h_0 of every
    layer) instead of zeros, or, straight from a gru of the same units and layers, from that
    encoder's final h of every layer. `bidirectional`: as nn.GRU(bidirectional=True), forward and
    backward h joined per step.
    """

    name = "gru"
    cell = Cell.GATED_MEMORY
    Options = GatedOptions
    gates = 3


class _OneStep(Kind):
    family = "recurrent"
    whole_sequence = True  # it reads a step the others have not reached yet (or have passed)
    position: ClassVar[str]

    def shape(self, o, x: Shape) -> Shape:
        if not x.timed:
            raise ShapeError(
                "E407",
                f"{{layer}} keeps the {self.position} step of a sequence, but receives {x}, "
                "which has no time steps",
                "give it a sequence (an input marked 'seq', or a recurrent layer's outputs)",
            )
        return x.static()


class Last(_OneStep):
    """`[T, ...]` -> `[...]`: the value at the last step.

    `x[:, -1]` of the `[B, T, ...]` array: a sequence read to its end, anywhere in a network (an
    encoder's summary, as `output y: last` keeps an output's). The gradient reaches the last step
    alone.
    """

    name = "last"
    position = "last"


class First(_OneStep):
    """`[T, ...]` -> `[...]`: the value at the first step.

    `x[:, 0]` of the `[B, T, ...]` array (a backward reader's summary, or a class token's).
    The gradient reaches the first step alone.
    """

    name = "first"
    position = "first"


KINDS = [RNN(), LSTM(), GRU(), Last(), First()]
