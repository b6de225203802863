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


Dim = Annotated[int, BeforeValidator(integral_float_to_int)]


class PortOptions(InputOptions):
    # `?` (None) leaves the whole size, or one dimension of it, to what feeds the block
    size: Count | None | tuple[Dim | None, ...]


class Port(Kind):
    """anything -> the same shape.

    A block's `input` once the block is placed in a network: passes its input on, after checking
    it against the declared size, whose `?` dimensions (or all of it: `input x: ?`) take what comes.
    """

    name = "port"
    family = "io"
    Options = PortOptions
    positional = ("size",)
    flags = ("seq",)
    internal = True

    def shape(self, options: PortOptions, x: Shape) -> Shape:
        size = options.size
        dims = None if size is None else (size,) if isinstance(size, int) else size
        if dims is not None and (
            not 1 <= len(dims) <= 3 or any(d is not None and d < 1 for d in dims)
        ):
            raise ShapeError(
                "E207",
                "a block's input is a size, [items, features] or [C, H, W] of positive whole "
                f"numbers or '?', not [{', '.join(_dim(d) for d in dims)}]",
                "write 'input x: [c, ?, ?]' for an image of c channels and any height and width",
                option="size",
            )
        # seq and steps= together (E209), and whether it needs time steps
        want = declared_shape(options.model_copy(update={"size": 1}))
        if dims is None:
            matches = True
        else:
            matches = len(dims) == len(x.dims) and all(
                d is None or d == got for d, got in zip(dims, x.dims, strict=True)
            )
        if not matches or (want.timed and not x.timed):
            time = ["T" if want.steps is None else str(want.steps)] if want.timed else []
            shown = "[" + ", ".join(time + [_dim(d) for d in dims or ("...",)]) + "]"
            hint = (
                "give the block an input of the size its 'input' layer declares, or leave a "
                "size to the use with '?' ('input x: [c, ?, ?]' takes any height and width)"
                if not matches
                else "the block's input wants time steps: feed it a sequence, or drop 'seq' "
                "from its 'input'"
            )
            raise ShapeError("E410", f"{{layer}} is declared {shown} but receives {x}", hint)
        return x


def _dim(d: int | str | None) -> str:
    return "?" if d is None else str(d)


KINDS = [Input(), Port()]
