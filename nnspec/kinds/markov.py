"""The Markov chain: states and a row-stochastic transition matrix.

What enters is the chain's current state as a distribution over its states `[states]` (a
one-hot row for a known state), or with `index` the state's number `[1]`; what leaves is the
distribution of the next state, `x @ P` (or the row `P[state]`).
The transition matrix is learned by counting transitions (`rule = counts`, nnspec/rules.py),
never by backpropagation, whose steps would leave its rows off the probability simplex (E257).
"""

from __future__ import annotations

import math
from typing import Annotated

from .base import (
    LITERAL_VALUES,
    Cell,
    Kind,
    Matrix,
    Options,
    Param,
    Shape,
    ShapeError,
    Units,
    need_rank,
)

ROW_SUM = 1e-6  # how far a literal row's sum may be from 1 (written decimals: 0.333333)


class MarkovOptions(Options):
    states: Units
    # literal transition probabilities, [from, to]: row i is the next-state distribution of i
    transition: Annotated[Matrix | None, LITERAL_VALUES] = None
    frozen: bool = False
    index: bool = False  # the state comes as its number [1] (0 to states - 1), not one-hot


class Markov(Kind):
    """state `[states]` -> next state `[states]`; with `index`, state number `[1]` -> `[states]`.

    `x @ P`: the distribution of the next state, from the current state's distribution `x` (a
    one-hot row for a known state; with `index`, the row `P[x]` of the state numbered x, a whole
    number from 0; over time, every step alike); `P` `[states, states]` is the row-stochastic
    transition matrix (parameter `transition`, `P[i, j]` the probability of going from state i to
    state j; every row is non-negative and sums to 1), uniform (`1 / states`) until trained or
    given by `transition=`. Trained by counting transitions (`rule = counts`), not by
    backpropagation.
    """

    name = "markov"
    family = "markov"
    cell = Cell.PROBABILISTIC_HIDDEN
    drawn_as = "ring"
    Options = MarkovOptions
    positional = ("states",)
    flags = ("frozen", "index")

    def shape(self, o: MarkovOptions, x: Shape) -> Shape:
        need_rank("markov", x, (1,), "feed it the current state as a one-hot vector: 'input s: 3'")
        if o.index:
            if x.dims != (1,):
                raise ShapeError(
                    "E255",
                    f"{{layer}} reads the current state's number (index), but receives {x}",
                    f"feed it one number per example ('input s: 1'), or drop index to read a "
                    f"one-hot state of {o.states} values",
                    option="index",
                )
            return x.with_dims(o.states)
        if x.features != o.states:
            raise ShapeError(
                "E255",
                f"{{layer}} is a chain of {o.states} states, but receives {x}: it reads "
                f"the current state as a distribution over its {o.states} states",
                f"feed it a one-hot state of {o.states} values ('input s: {o.states}'), "
                + (
                    "or write index to read the state's number"
                    if x.dims == (1,)
                    else f"or give it {x.features} states"
                ),
            )
        return x

    def params(self, o: MarkovOptions, x: Shape) -> dict[str, Param]:
        if o.transition is None:
            init = ("constant", 1.0 / o.states)
            return {"transition": Param((o.states, o.states), not o.frozen, init=init)}
        rows = {len(row) for row in o.transition}
        if len(o.transition) != o.states or rows != {o.states}:
            got = f"[{len(o.transition)}, {'/'.join(map(str, sorted(rows))) or 0}]"
            raise ShapeError(
                "E405",
                f"the transition matrix of {{layer}} is {got}, but it needs "
                f"[{o.states}, {o.states}] ([from, to])",
                f"give {o.states} rows (one per state) of {o.states} probabilities",
                option="transition",
            )
        for i, row in enumerate(o.transition):
            if any(p < 0 or not math.isfinite(p) for p in row) or abs(math.fsum(row) - 1) > ROW_SUM:
                raise ShapeError(
                    "E256",
                    f"row {i + 1} of the transition matrix of {{layer}} is not a probability "
                    f"distribution: {list(row)} (sum {math.fsum(row):g})",
                    "every row holds the probabilities of the next state: numbers from 0 to 1 "
                    "that sum to 1",
                    option="transition",
                )
        return {
            "transition": Param((o.states, o.states), not o.frozen, init=("literal", o.transition))
        }


KINDS = [Markov()]
