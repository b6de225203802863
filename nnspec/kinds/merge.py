"""Merges: add, mul and concat take several inputs and combine them as their names say."""

from __future__ import annotations

from .base import Kind, Shape, ShapeError, concat_features


def _same_shape(inputs: list[tuple[str, Shape]]) -> Shape:
    first = inputs[0][1]
    if any(shape.dims != first.dims for _, shape in inputs[1:]):
        gives = ", ".join(f"'{name}' gives {shape.static()}" for name, shape in inputs)
        last = inputs[-1][1]
        wide = f"{last.dims[0]} wide" if len(last.dims) == 1 else f"of shape {last.static()}"
        raise ShapeError(
            "E401",
            f"shape mismatch at {{layer}}: {gives}",
            f"make every input {wide}, or use concat",
        )
    timed = next((shape for _, shape in inputs if shape.timed), None)
    return timed or first  # a static input is the same at every step


class Add(Kind):
    """inputs of one shape -> that shape (E401 otherwise).

    Elementwise sum.
    """

    name = "add"
    family = "merge"
    merges = True

    def shape(self, o, x: list[tuple[str, Shape]]) -> Shape:
        return _same_shape(x)


class Mul(Kind):
    """inputs of one shape -> that shape (E401 otherwise).

    Elementwise product.
    """

    name = "mul"
    family = "merge"
    merges = True

    def shape(self, o, x: list[tuple[str, Shape]]) -> Shape:
        return _same_shape(x)


class Concat(Kind):
    """inputs that agree but on the feature axis -> their features joined.

    Joins its inputs along the feature axis, as fan-in does.
    """

    name = "concat"
    family = "merge"
    merges = True

    def shape(self, o, x: list[tuple[str, Shape]]) -> Shape:
        return concat_features([shape for _, shape in x])


KINDS = [Add(), Mul(), Concat()]
