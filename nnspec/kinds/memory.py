"""Networks with an external memory they learn to address: ntm, the neural Turing machine
(Graves, Wayne and Danihelka 2014).

An `ntm` layer holds its controller (an LSTM cell), its heads and its memory: each step the
controller reads the input and the vectors read at the step before, the write heads address the
memory and write to it (erase, then add), the read heads address it and read; the layer gives the
controller's output and the vectors read, for a readout (a `dense` layer) after it.

Addressing, per head and step (slots N, width W), from the head's outputs (a linear map of the
controller's h): key k (W), strength beta = softplus, gate g = sigmoid, shift s = softmax over the
shifts -1, 0, +1, sharpening gamma = 1 + softplus:
    w_c = softmax(beta * cos(k, M_i))                       content
    w_g = g w_c + (1 - g) w_prev                            interpolation
    w_s[i] = s_-1 w_g[i + 1] + s_0 w_g[i] + s_+1 w_g[i - 1]   circular shift (indices mod N)
    w = w_s^gamma / sum(w_s^gamma)                          sharpening
with cos(k, m) = k.m / (|k| |m| + 1e-8). A write head adds erase e = sigmoid and add a (identity):
M <- M (1 - w e^T) + w a^T; a read head reads r = w^T M. The memory starts at 1e-6 everywhere,
every head's weighting on slot 0, the vectors read at zeros.

Parameters, in PyTorch's layout ([out, in]): the controller's LSTMCell weight_ih
[4 C, F + heads W], weight_hh [4 C, C], bias_ih, bias_hh [4 C]; the read heads' read_weight
[heads (W + 6), C] and read_bias (each head's rows: key, beta, g, three shifts, gamma); the write
heads' write_weight [heads (3 W + 6), C] and write_bias (the same, then erase and add); all from
U(+-1/sqrt(C)), as PyTorch's recurrent cells.
"""

from __future__ import annotations

from .base import Cell, Count, Kind, Options, Param, Shape, Units, need_rank, uniform_fan_in

MEMORY_START = 1e-6  # every memory cell before the first write
COSINE_EPS = 1e-8  # cos(k, m) = k.m / (|k| |m| + eps)
SHIFTS = 3  # a softmax over the shifts -1, 0, +1


def read_rows(width: int) -> int:
    """A read head's outputs: key (width), beta, gate, the three shifts, gamma."""
    return width + 3 + SHIFTS


def write_rows(width: int) -> int:
    """A write head's outputs: a read head's, then erase and add (width each)."""
    return read_rows(width) + 2 * width


def controller_params(units: int, inputs: int) -> dict[str, Param]:
    """The LSTM controller of a memory kind (ntm, dnc), in LSTMCell's layout: it reads `inputs`
    (the step's input and the vectors read at the step before)."""
    return {
        "weight_ih": uniform_fan_in((4 * units, inputs), units),
        "weight_hh": uniform_fan_in((4 * units, units), units),
        "bias_ih": uniform_fan_in((4 * units,), units),
        "bias_hh": uniform_fan_in((4 * units,), units),
    }


class NTMOptions(Options):
    controller: Units = 32  # the LSTM controller's units
    slots: Units = 16  # memory cells N
    width: Units = 8  # each cell's width W
    heads: Count = 1  # read heads, and as many write heads


class MemoryKind(Kind):
    """What the memory kinds (ntm, dnc) share: a controller drawn as hidden cells with its memory
    beneath, stepped through time, giving `[T, controller + heads * width]` per step. Each says
    what a step takes (`takes`) and declares its parameters."""

    family = "memory"
    cell = Cell.HIDDEN  # the chart draws the controller as hidden cells, its memory beneath
    positional = ("controller",)
    stateful = True
    needs_time = True
    takes = ""  # the hint of E402: "an ntm takes one vector per time step"

    def shape(self, o, x: Shape) -> Shape:
        need_rank(self.name, x, (1,), self.takes)
        return x.with_dims(o.controller + o.heads * o.width)


class NTM(MemoryKind):
    """`[T, F]` -> `[T, controller + heads * width]`: the controller's output and the vectors
    read, per step.

    A neural Turing machine: an LSTM controller (`controller` units, reading the input and the
    vectors read at the step before), `heads` write heads and as many read heads on a memory of
    `slots` cells of `width`; content addressing (cosine similarity, key strength), interpolation
    with the last weighting, a circular shift by -1, 0 or +1, sharpening; erase and add vectors;
    backpropagation through time trains it all. Memory from 1e-6, weightings on slot 0.
    """

    name = "ntm"
    Options = NTMOptions
    takes = "an ntm takes one vector per time step"

    def params(self, o, x: Shape) -> dict[str, Param]:
        c, w, h = o.controller, o.width, o.heads
        return {
            **controller_params(c, x.dims[0] + h * w),
            "read_weight": uniform_fan_in((h * read_rows(w), c), c),
            "read_bias": uniform_fan_in((h * read_rows(w),), c),
            "write_weight": uniform_fan_in((h * write_rows(w), c), c),
            "write_bias": uniform_fan_in((h * write_rows(w),), c),
        }


KINDS = [NTM()]
