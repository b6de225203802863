"""Convolution kinds over images [C, H, W]: conv, pool, flatten."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from .activation import IDENTITY, Act
from .base import Cell, Count, Kind, Options, Param, Shape, ShapeError, need_rank, uniform_fan_in

Pair = Union[Count, tuple[Count, Count]]
Padding = Union[Literal["valid", "same"], Annotated[int, Field(ge=0)]]


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else value


def _image(kind: str, x: Shape) -> None:
    need_rank(kind, x, (3,), "declare the input as an image: 'input image: [1, 8, 8]'")


def _out(size: int, kernel: int, stride: int, padding: int, axis: str, kind: str) -> int:
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ShapeError(
            "E404",
            f"{{layer}}: a {kind} of {kernel} does not fit in {axis} {size}"
            + (f" (padding {padding})" if padding else ""),
            "use a smaller kernel or size, or padding=same",
            option="kernel" if kind == "kernel" else "size",
        )
    return out


class ConvOptions(Options):
    channels: Count
    kernel: Pair = 3
    stride: Pair = 1
    padding: Padding = "valid"
    act: Act = IDENTITY
    bias: bool = True


class Conv(Kind):
    """2-D convolution; weight [channels, in_channels, kh, kw] as in PyTorch."""

    name = "conv"
    family = "conv"
    cell = Cell.KERNEL
    Options = ConvOptions
    positional = ("channels",)
    flags = ("bias",)

    def padding(self, o: ConvOptions) -> tuple[int, int]:
        if o.padding == "same":
            if pair(o.stride) != (1, 1):
                raise ShapeError(
                    "E209",
                    "padding=same needs stride=1",
                    "give the padding as a number: padding=1",
                    option="padding",
                )
            return tuple((k - 1) // 2 for k in pair(o.kernel))
        return (0, 0) if o.padding == "valid" else (o.padding, o.padding)

    def shape(self, o: ConvOptions, x: Shape) -> Shape:
        _image("conv", x)
        (kh, kw), (sh, sw), (ph, pw) = pair(o.kernel), pair(o.stride), self.padding(o)
        if o.padding == "same":  # odd or even kernels alike keep the size
            return x.with_dims(o.channels, x.dims[1], x.dims[2])
        h = _out(x.dims[1], kh, sh, ph, "height", "kernel")
        w = _out(x.dims[2], kw, sw, pw, "width", "kernel")
        return x.with_dims(o.channels, h, w)

    def params(self, o: ConvOptions, x: Shape) -> dict[str, Param]:
        kh, kw = pair(o.kernel)
        fan_in = x.dims[0] * kh * kw
        params = {"weight": uniform_fan_in((o.channels, x.dims[0], kh, kw), fan_in)}
        if o.bias:
            params["bias"] = uniform_fan_in((o.channels,), fan_in)
        return params


class PoolOptions(Options):
    mode: Literal["max", "avg"]
    size: Pair = 2
    stride: Pair | None = None  # defaults to size


class Pool(Kind):
    name = "pool"
    family = "conv"
    cell = Cell.CONVOLUTION_POOL
    Options = PoolOptions
    positional = ("mode",)

    def shape(self, o: PoolOptions, x: Shape) -> Shape:
        _image("pool", x)
        (kh, kw) = pair(o.size)
        (sh, sw) = pair(o.stride if o.stride is not None else o.size)
        h = _out(x.dims[1], kh, sh, 0, "height", "window")
        w = _out(x.dims[2], kw, sw, 0, "width", "window")
        return x.with_dims(x.dims[0], h, w)


class Flatten(Kind):
    """[C, H, W] (or [N, F]) -> one vector, in C, H, W order."""

    name = "flatten"
    family = "conv"

    def shape(self, o, x: Shape) -> Shape:
        return x.with_dims(x.size)


KINDS = [Conv(), Pool(), Flatten()]
