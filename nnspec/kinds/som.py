"""Self-organising kinds: the Kohonen map (`som`), a grid of units that compete for each input."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import Cell, Count, Hint, Kind, Options, Param, Real, Shape, ShapeError, need_rank

Grid = Annotated[
    Count | tuple[Count, ...],
    Hint("a map is a grid of rows and columns of at least one unit each: som m: [10, 10]"),
]
Sigma = Annotated[
    Real,
    Field(gt=0.0),
    Hint("sigma is the neighbourhood's spread on the grid, in units, above 0: sigma=1.5"),
]


class SomOptions(Options):
    grid: Grid
    sigma: Sigma = 1.0
    neighbourhood: Literal["gaussian", "triangle"] = "gaussian"


def grid_of(o: SomOptions) -> tuple[int, int]:
    """The map's (rows, cols); E264 unless the grid gives exactly two sizes."""
    if isinstance(o.grid, int) or len(o.grid) != 2:
        got = o.grid if isinstance(o.grid, int) else list(o.grid)
        raise ShapeError(
            "E264",
            f"the grid of {{layer}} is [rows, columns], two sizes, not {got}",
            "write 'som m: [10, 10]' for a map of 10 rows of 10 units (a line of units: [1, 10])",
            option="grid",
        )
    return o.grid


class Som(Kind):
    """`[d]` -> `[rows * cols]`: the best-matching unit of a `[rows, cols]` grid, one-hot.

    Each unit `u` of the grid (row-major: `u = row * cols + col`) holds a weight vector
    `W[u]` (weight `[rows * cols, d]`); the output marks the unit nearest the input in Euclidean
    distance, `argmin_u ||x - W[u]||` (the first at a tie), with a 1 and the others with 0; its
    argmax is the unit's index. Trained only by `rule = som` (Kohonen's update; `sigma` and
    `neighbourhood` say how far it reaches on the grid): it has no gradient, so backpropagation
    through it is an error at check time (E575). Weights start uniform in [-1, 1].
    """

    name = "som"
    family = "som"
    cell = Cell.HIDDEN
    Options = SomOptions
    positional = ("grid",)
    drawn_as = "grid"

    def shape(self, o: SomOptions, x: Shape) -> Shape:
        rows, cols = grid_of(o)
        need_rank("som", x, (1,), "a map compares vectors: add a 'flatten' layer before it")
        return x.with_dims(rows * cols)

    def params(self, o: SomOptions, x: Shape) -> dict[str, Param]:
        rows, cols = grid_of(o)
        return {"weight": Param((rows * cols, x.dims[0]), init=("uniform", 1.0))}


KINDS = [Som()]
