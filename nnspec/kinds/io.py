"""Model inputs, and the input ports of blocks."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator

from .base import Cell, Count, Kind, Options, Shape, ShapeError, integral_float_to_int

Size = Count | tuple[Annotated[int, BeforeValidator(integral_float_to_int)], ...]


class InputOptions(Options):
    size: Size
    seq: bool | Count = False  # a sequence of any length (true) or of this many steps
    steps: Count | None = None  # one value presented for this many steps


def declared_shape(options: InputOptions) -> Shape:
    dims = (options.size,) if isinstance(options.size, int) else options.size
    if not 1 <= len(dims) <= 3 or any(d < 1 for d in dims):
        raise ShapeError(
            "E207",
            "an input is a size, [items, features] or [C, H, W] of positive whole numbers, "
            f"not {list(dims)}",
            "write 'input x: 64' for a vector or 'input image: [1, 8, 8]' for an image",
            option="size",
        )
    if options.seq is not False and options.steps is not None:
        raise ShapeError(
            "E209",
            "an input is either a sequence (seq) or one value held for steps=N, not both",
            "drop seq or steps",
            option="steps",
        )
    if options.steps is not None:
        return Shape(dims, True, options.steps)
    if options.seq is not False:
        return Shape(dims, True, None if options.seq is True else options.seq)
    return Shape(dims)


class Input(Kind):
    """size, `[N, F]` or `[C, H, W]` -> as declared; with a time axis for `seq` or `steps`.

    The data, shaped for the network's inputs.
    """

    name = "input"
    family = "io"
    cell = Cell.INPUT
    Options = InputOptions
    positional = ("size",)
    flags = ("seq",)
    source = True

    def shape(self, options: InputOptions, x: None) -> Shape:
        return declared_shape(options)


class Port(Kind):
    """anything -> the same shape.

    A block's `input` once the block is placed in a network: passes its input on.
    """

    name = "port"
    family = "io"
    Options = InputOptions
    positional = ("size",)
    flags = ("seq",)
    internal = True

    def shape(self, options: InputOptions, x: Shape) -> Shape:
        want = declared_shape(options)
        if want.dims != x.dims or (want.timed and not x.timed):
            raise ShapeError(
                "E410",
                f"{{layer}} is declared {want} but receives {x}",
                "give the block an input of the size its 'input' layer declares",
            )
        return x


KINDS = [Input(), Port()]
