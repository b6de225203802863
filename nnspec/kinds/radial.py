"""Radial basis kinds: `rbf`, Gaussian units around centres (a radial basis network)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field

from .base import (
    LITERAL_VALUES,
    Cell,
    Hint,
    Kind,
    Matrix,
    Options,
    Param,
    Real,
    Shape,
    ShapeError,
    Units,
    need_rank,
)

Eps = Annotated[
    Real,
    Field(gt=0.0),
    Hint("eps is the Gaussian's shape parameter, 1 / (sqrt(2) * width), above 0: eps=1.5"),
]
# where the centres come from: the training data (chosen in the training stage) or as written
PLACED = ("data", "kmeans")


class RbfOptions(Options):
    units: Units
    # `data`: training examples (seeded); `kmeans`: Lloyd's k-means on the training part;
    # literal centres: `[[1, 1], [0, 0]]`, one row per unit
    centres: Annotated[Literal["data", "kmeans"] | Matrix, LITERAL_VALUES] = "kmeans"
    # one eps for every unit, or `nearest`: each unit's from the distance to its nearest centre
    eps: Eps | Literal["nearest"] = 1.0
    frozen: bool = False


class Rbf(Kind):
    """`[d]` -> `[units]`; `[N, d]` -> `[N, units]`.

    Gaussian units: `phi_j(x) = exp(-(eps_j * ||x - c_j||)^2)`, SciPy's `gaussian` kernel
    (`RBFInterpolator`'s epsilon is `eps`; a width sigma is `eps = 1 / (sqrt(2) sigma)`). Centres
    `[units, d]` and eps `[units]` are parameters, trainable by backpropagation unless `frozen`.
    `centres=` gives them as rows, or takes them from the training data before training
    (`data`: `units` examples of the training part, all of them in order when `units` equals its
    size; `kmeans`: Lloyd's k-means, seeded); `eps=` is one number for every unit, or `nearest`:
    `eps_j = 1 / (sqrt(2) d_j)`, `d_j` the distance from `c_j` to the nearest other centre.
    Outside training, placed centres start uniform in [-1, 1].
    """

    name = "rbf"
    family = "radial"
    cell = Cell.HIDDEN
    Options = RbfOptions
    positional = ("units",)
    flags = ("frozen",)

    def shape(self, o: RbfOptions, x: Shape) -> Shape:
        need_rank(
            "rbf", x, (1, 2), "add a 'flatten' layer before it to turn an image into a vector"
        )
        return x.with_dims(*x.dims[:-1], o.units)

    def params(self, o: RbfOptions, x: Shape) -> dict[str, Param]:
        d = x.dims[-1]
        trainable = not o.frozen
        if o.eps == "nearest" and o.units < 2:
            raise ShapeError(
                "E273",
                "{layer} has one unit and eps=nearest, which needs a second centre to measure",
                "give it eps=1.0 (or another number), or more units",
                option="eps",
            )
        if isinstance(o.centres, str):
            centres = Param((o.units, d), trainable, init=("uniform", 1.0))
            eps = 1.0 if o.eps == "nearest" else o.eps
            return {"centres": centres, "eps": Param((o.units,), trainable, init=("constant", eps))}
        rows = {len(row) for row in o.centres}
        if len(o.centres) != o.units or rows != {d}:
            got = f"[{len(o.centres)}, {'/'.join(map(str, sorted(rows))) or 0}]"
            raise ShapeError(
                "E272",
                f"the centres of {{layer}} are {got}, but it needs [{o.units}, {d}] "
                "([units, inputs])",
                f"give {o.units} rows (one centre per unit) of {d} numbers (one per input)",
                option="centres",
            )
        values = tuple(tuple(float(v) for v in row) for row in o.centres)
        if o.eps == "nearest":
            eps = nearest_eps(values)
            if eps is None:
                raise ShapeError(
                    "E274",
                    "two centres of {layer} coincide, so eps=nearest would make a unit of no width",
                    "give every unit a centre of its own, or a number: eps=1.0",
                    option="eps",
                )
        else:
            eps = (o.eps,) * o.units
        return {
            "centres": Param((o.units, d), trainable, init=("literal", values)),
            "eps": Param((o.units,), trainable, init=("literal", eps)),
        }


def nearest_eps(centres: tuple[tuple[float, ...], ...]) -> tuple[float, ...] | None:
    """eps_j = 1 / (sqrt(2) d_j), d_j the distance from centre j to its nearest other one (the
    nearest-neighbour rule of Moody and Darken 1989, with the width sigma_j = d_j); None where two
    centres coincide."""
    eps = []
    for j, c in enumerate(centres):
        d = min(math.dist(c, other) for k, other in enumerate(centres) if k != j)
        if d == 0.0:
            return None
        eps.append(1.0 / (math.sqrt(2.0) * d))
    return tuple(eps)


KINDS = [Rbf()]
