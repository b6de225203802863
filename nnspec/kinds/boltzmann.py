"""The Boltzmann machine as a layer: `boltzmann`, stochastic binary visible and hidden units with
every pair linked by a symmetric weight (Ackley, Hinton and Sejnowski 1985).

What enters is the visible vector `v` `[V]` (bits, 0 or 1); what leaves is, for each visible
unit, `P(v_i = 1 | the other visible units)` `[V]`, computed exactly with the hidden units summed
out over their 2^H states: deterministic, so evaluation and `predict` give the same figures on
both backends. The weights are learned by the Boltzmann rule (`rule = boltzmann`, from Gibbs
sampling with annealing), never by backpropagation (E555).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .base import Cell, Count, Hint, Kind, Options, Param, Shape, ShapeError, Units

# the forward sums over every hidden state: 2^16 = 65,536 of them at most
MOST_HIDDEN = 16


class BoltzmannOptions(Options):
    units: Units
    hidden: Annotated[int, Field(ge=0), Hint("hidden= is a count of units, 0 or more")] = 0
    groups: Annotated[Count, Hint("groups= splits the visible units into 1 or more groups")] = 1


class Boltzmann(Kind):
    """`[units]` -> `[units]`.

    A Boltzmann machine of `units` visible and `hidden` hidden binary units s (visible first),
    energy `E(s) = -1/2 s^T W s - b^T s`, `P(s) = exp(-E(s)) / Z`. Stored as weight
    `[units + hidden, units + hidden]` (symmetric, zero diagonal; the energy reads its symmetric
    part with the diagonal and the unlinked pairs at zero) and bias `[units + hidden]`, both
    starting at zero. Every pair of units is linked, except, with `groups=G`, visible units of
    different groups (the visible units split in G equal runs, which then talk only through the
    hidden units: the encoder problems). Outputs `P(v_i = 1 given v_-i)` for each visible unit,
    exactly, the hidden units summed out: `sigmoid(F(v, v_i = 0) - F(v, v_i = 1))` with the free
    energy `F(v) = -log sum_h exp(-E(v, h))`. No gradient passes: the weights move by
    `rule = boltzmann`.
    """

    name = "boltzmann"
    family = "boltzmann"
    cell = Cell.BACKFED_INPUT
    Options = BoltzmannOptions
    positional = ("units",)
    drawn_as = "ring"

    def shape(self, o: BoltzmannOptions, x: Shape) -> Shape:
        if len(x.dims) != 1 or x.timed:
            raise ShapeError(
                "E212",
                f"{{layer}} needs a vector of {o.units} visible units, but receives {x}",
                f"feed it a vector of its visible units, 'input v: {o.units}', read at one time",
            )
        if x.dims[0] != o.units:
            raise ShapeError(
                "E212",
                f"{{layer}} has {o.units} visible units, but its input gives {x.dims[0]} values",
                f"give it {x.dims[0]} visible units (its first value), one per value of its input",
                option="units",
            )
        if o.units % o.groups:
            raise ShapeError(
                "E210",
                f"{{layer}} cannot split {o.units} visible units into {o.groups} equal groups",
                f"give groups= a divisor of {o.units}",
                option="groups",
            )
        if o.hidden > MOST_HIDDEN:
            raise ShapeError(
                "E211",
                f"{{layer}} has {o.hidden} hidden units; its forward sums over all 2^hidden "
                f"hidden states, and {MOST_HIDDEN} is the most it enumerates",
                f"give it at most {MOST_HIDDEN} hidden units (or an rbm for many hidden units)",
                option="hidden",
            )
        return x

    def params(self, o: BoltzmannOptions, x: Shape) -> dict[str, Param]:
        n = o.units + o.hidden
        return {"weight": Param((n, n)), "bias": Param((n,))}

    def ring_cells(self, o: BoltzmannOptions, units: int) -> list[Cell]:
        """The ring's cells: the visible units as backfed input cells, then the hidden ones as
        probabilistic hidden cells."""
        return [Cell.BACKFED_INPUT] * o.units + [Cell.PROBABILISTIC_HIDDEN] * o.hidden


KINDS = [Boltzmann()]
