"""Energy-based kinds: the Hopfield network.

What enters is a cue `[units]`, a +1/-1 pattern (perhaps with some bits wrong); what leaves is
the state the network settles in from it, `[units]` of +1/-1: the stored pattern it recalls.
The weights are stored by `rule = hopfield` (nnspec/rules.py, Hebb's outer products), never by
backpropagation: recall is a sign at every update, whose gradient is zero (E550).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import Cell, Count, Hint, Kind, Options, Param, Real, Shape, ShapeError, Units

TIE = 1e-6  # a net input this close to the threshold, relative to the row's weight, is a tie
MAX_SWEEPS = 1000


class HopfieldOptions(Options):
    units: Units
    update: Literal["async", "sync"] = "async"
    # bounded, so a cycling sync recall (or a compiled ONNX file, which runs every sweep) ends
    sweeps: Annotated[
        Count, Field(le=MAX_SWEEPS), Hint(f"recall runs from 1 to {MAX_SWEEPS} sweeps")
    ] = 20
    threshold: Real = 0.0


class Hopfield(Kind):
    """cue `[units]` -> recalled state `[units]` (both +1/-1).

    Recall from the cue `s = sign(x)` (+1 where `x > 0`, -1 elsewhere): unit `i` becomes +1 when
    its net input `h_i = sum_j W[i, j] s_j` is above `threshold`, -1 below it, and keeps its
    state at a tie (within 1e-6 of the row's total absolute weight). `update=async` updates the
    units one at a time, in order 0 to units - 1, each seeing the others' newest states, so the
    energy `E = -1/2 s W s + threshold * sum s` never rises (Hopfield 1982); `update=sync` updates
    them all at once from the previous state (it may end in a two-state cycle). At most `sweeps`
    sweeps, fewer when a sweep changes no unit of any example (a fixed point). `W` `[units,
    units]` (parameter `weight`) is symmetric with a zero diagonal, zeros until `rule = hopfield`
    stores the patterns (`W = 1/N sum_k t_k t_k^T`, zero diagonal); zero weights recall the cue
    itself. No gradient: backpropagation through recall is E550.
    """

    name = "hopfield"
    family = "hopfield"
    cell = Cell.BACKFED_INPUT
    drawn_as = "ring"
    Options = HopfieldOptions
    positional = ("units",)

    def shape(self, o: HopfieldOptions, x: Shape) -> Shape:
        if len(x.dims) != 1 or x.timed:
            raise ShapeError(
                "E290",
                f"{{layer}} recalls one pattern of {o.units} +1/-1 values, but receives {x}",
                f"feed it a vector cue: 'input cue: {o.units}' (no time, no image)",
            )
        if x.features != o.units:
            raise ShapeError(
                "E290",
                f"{{layer}} has {o.units} units, but its cue holds {x.features} values: the cue "
                "is the state its units start from",
                f"give it {x.features} units, or feed it a cue of {o.units} values",
            )
        return x

    def params(self, o: HopfieldOptions, x: Shape) -> dict[str, Param]:
        return {"weight": Param((o.units, o.units), init=("constant", 0.0))}


KINDS = [Hopfield()]
