"""Convolution kinds over images [C, H, W]: conv, deconv, pool, unpool, global_pool, flatten, and
the kinds that change a value's shape: reshape, upsample."""

from __future__ import annotations

import math
import struct
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr

from .activation import IDENTITY, Act
from .base import (
    Cell,
    Count,
    Hint,
    Kind,
    Options,
    Param,
    Shape,
    ShapeError,
    need_rank,
    uniform_fan_in,
)
from .initializers import InitOption

Pair = Count | tuple[Count, Count]
Kernel = Annotated[Pair, Hint("a kernel covers at least one cell: kernel=3, or [height, width]")]
Amount = Annotated[int, Field(ge=0)]
Padding = Literal["valid", "same"] | Amount
AmountPair = Amount | tuple[Amount, Amount]
Dilation = Annotated[
    Pair,
    Hint("a dilation spaces a kernel's cells at least 1 apart: dilation=2, or [height, width]"),
]
Groups = Annotated[
    Count, Hint("groups=1 joins every channel; groups=C (the input's channels) is depthwise")
]


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
    kernel: Kernel = 3
    stride: Pair = 1
    padding: Padding = "valid"
    dilation: Dilation = 1
    groups: Groups = 1
    act: Act = IDENTITY
    bias: bool = True
    init: InitOption = None


def spread(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """The cells a dilated kernel covers: `dilation * (kernel - 1) + 1` along each axis."""
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))


def check_groups(kind: str, groups: int, inputs: int, outputs: int) -> None:
    """`groups` must divide the channels in and out (E250 at the option), as nn.Conv2d asks."""
    for side, channels in (("input", inputs), ("output", outputs)):
        if channels % groups:
            raise ShapeError(
                "E250",
                f"{{layer}}: groups={groups} does not divide its {channels} {side} channels",
                f"use groups that divide both the {inputs} input and the {outputs} output "
                f"channels (groups={inputs} with channels={inputs} is a depthwise {kind})",
                option="groups",
            )


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """padding=same along one axis of `size`: (before, after), as TensorFlow pads.

    The output keeps `ceil(size / stride)` cells; the total padding is
    `max((ceil(size / stride) - 1) * stride + kernel - size, 0)`, the smaller half before and the
    odd cell after (at the bottom and the right). With stride 1 that is `(k - 1) // 2` before
    and `k // 2` after, PyTorch's padding="same".
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv(Kind):
    """`[C, H, W]` -> `[channels, H', W']`, `H' = (H + 2 * padding - dilation * (kh - 1) - 1)
    // stride + 1`; with `padding=same`, `H' = ceil(H / stride)`.

    `act(conv2d(x, W, b))`: cross-correlation, `stride`; `padding=N` pads N zeros on each side;
    `padding=same` pads as TensorFlow and Keras do, with any stride: in all
    `max((H' - 1) * stride + kh' - H, 0)` zeros (kh' the dilated kernel's height), the smaller
    half before and the odd one after (bottom and right; with stride 1 that is PyTorch's
    `padding="same"`). `dilation` spaces the kernel's cells that far apart; `groups` splits the
    channels in and out into that many groups, each convolved with its own (groups = C =
    channels: depthwise). Stored as PyTorch's Conv2d: weight `[channels, C / groups, kh, kw]`,
    bias `[channels]`.
    """

    name = "conv"
    family = "conv"
    cell = Cell.KERNEL
    Options = ConvOptions
    positional = ("channels",)
    flags = ("bias",)

    def pads(self, o: ConvOptions, height: int, width: int) -> tuple[int, int, int, int]:
        """The zeros around an image of `height` x `width`: (top, bottom, left, right)."""
        (kh, kw), (sh, sw) = spread(pair(o.kernel), pair(o.dilation)), pair(o.stride)
        if o.padding == "same":
            return same_pads(height, kh, sh) + same_pads(width, kw, sw)
        n = 0 if o.padding == "valid" else o.padding
        return (n, n, n, n)

    def shape(self, o: ConvOptions, x: Shape) -> Shape:
        _image("conv", x)
        check_groups("convolution", o.groups, x.dims[0], o.channels)
        (kh, kw), (sh, sw) = spread(pair(o.kernel), pair(o.dilation)), pair(o.stride)
        if o.padding == "same":
            return x.with_dims(o.channels, -(-x.dims[1] // sh), -(-x.dims[2] // sw))
        n = 0 if o.padding == "valid" else o.padding
        h = _out(x.dims[1], kh, sh, n, "height", "kernel")
        w = _out(x.dims[2], kw, sw, n, "width", "kernel")
        return x.with_dims(o.channels, h, w)

    def params(self, o: ConvOptions, x: Shape) -> dict[str, Param]:
        kh, kw = pair(o.kernel)
        inputs = x.dims[0] // o.groups  # each output channel sees its group's inputs only
        fan_in = inputs * kh * kw
        params = {"weight": uniform_fan_in((o.channels, inputs, kh, kw), fan_in)}
        if o.bias:
            params["bias"] = uniform_fan_in((o.channels,), fan_in)
        return params


class DeconvOptions(Options):
    channels: Count
    kernel: Kernel
    stride: Pair = 1
    padding: AmountPair = 0
    output_padding: AmountPair = 0
    dilation: Dilation = 1
    groups: Groups = 1
    act: Act = IDENTITY
    bias: bool = True
    init: InitOption = None


class Deconv(Kind):
    """`[C, H, W]` -> `[channels, H', W']`,
    `H' = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + 1 + output_padding`.

    `act(conv_transpose2d(x, W, b))`, the transposed convolution (the input gradient of a
    convolution with the same options): every input cell adds `x * W[c]` into a `kh x kw`
    patch of the output, patches `stride` apart; `padding` rows and columns are then cut from
    each side and `output_padding` (smaller than the stride or the dilation) more kept at the
    end. `dilation` spaces the kernel's cells apart and `groups` splits the channels, as in
    `conv`. Stored as PyTorch's ConvTranspose2d: weight `[C, channels / groups, kh, kw]`, bias
    `[channels]`.
    """

    name = "deconv"
    family = "conv"
    cell = Cell.CONVOLUTION_POOL  # the chart's deconvolutional network draws these layers so
    Options = DeconvOptions
    positional = ("channels",)
    flags = ("bias",)

    def shape(self, o: DeconvOptions, x: Shape) -> Shape:
        _image("deconv", x)
        check_groups("transposed convolution", o.groups, x.dims[0], o.channels)
        sizes = zip(
            ("height", "width"),
            x.dims[1:],
            spread(pair(o.kernel), pair(o.dilation)),
            pair(o.stride),
            pair(o.padding),
            pair(o.output_padding),
            pair(o.dilation),
            strict=True,
        )
        out = [_deconv_out(*axis) for axis in sizes]
        return x.with_dims(o.channels, *out)

    def params(self, o: DeconvOptions, x: Shape) -> dict[str, Param]:
        kh, kw = pair(o.kernel)
        outputs = o.channels // o.groups
        fan_in = outputs * kh * kw  # nn.ConvTranspose2d's weight is [in, out / groups, kh, kw]
        params = {"weight": uniform_fan_in((x.dims[0], outputs, kh, kw), fan_in)}
        if o.bias:
            params["bias"] = uniform_fan_in((o.channels,), fan_in)
        return params


def _deconv_out(
    axis: str, size: int, kernel: int, stride: int, padding: int, extra: int, dilation: int
) -> int:
    """One axis of a transposed convolution; `kernel` is the dilated kernel's reach, `extra` the
    output_padding (smaller than the stride or the dilation, as PyTorch asks)."""
    if extra >= stride and extra >= dilation:
        raise ShapeError(
            "E209",
            f"{{layer}}: output_padding {extra} must be smaller than the stride {stride} ({axis})",
            "use output_padding=0, or a stride larger than the output_padding",
            option="output_padding",
        )
    out = (size - 1) * stride - 2 * padding + kernel + extra
    if out < 1:
        raise ShapeError(
            "E404",
            f"{{layer}}: padding {padding} leaves no {axis}: "
            f"({size} - 1) * {stride} - 2 * {padding} + {kernel} + {extra} = {out}",
            "use less padding, or a larger kernel or stride",
            option="padding",
        )
    return out


class PoolOptions(Options):
    mode: Literal["max", "avg"]
    size: Pair = 2
    stride: Pair | None = None  # defaults to size
    padding: AmountPair = 0
    ceil: bool = False


def pool_out(size: int, window: int, stride: int, padding: int, ceil: bool) -> int:
    """One axis of a pooling's output, as nn.MaxPool2d and nn.AvgPool2d count it (< 1: none).

    `(size + 2 * padding - window) / stride + 1`, rounded down, or up with `ceil`; a last window
    rounded up in must start inside the input or its left padding, else it is dropped.
    """
    span = size + 2 * padding - window
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1
    return out


class Pool(Kind):
    """`[C, H, W]` -> `[C, H', W']`, `H' = (H + 2 * padding - size) // stride + 1` (rounded up
    with `ceil`).

    Max or mean over each window of `size`, moving by `stride` (default: `size`), as PyTorch's
    max_pool2d and avg_pool2d: `padding` (at most half the window) adds cells that never win a
    max and count as zeros in a mean (count_include_pad); partial windows at the end are
    dropped, or kept with `ceil` when they start inside the input or its left padding (a mean
    then divides by the cells its window holds within the padded input). A max passes its
    gradient to the first maximum of its window (row-major).
    """

    name = "pool"
    family = "conv"
    cell = Cell.CONVOLUTION_POOL
    Options = PoolOptions
    positional = ("mode",)
    flags = ("ceil",)

    def shape(self, o: PoolOptions, x: Shape) -> Shape:
        _image("pool", x)
        (kh, kw), (ph, pw) = pair(o.size), pair(o.padding)
        (sh, sw) = pair(o.stride if o.stride is not None else o.size)
        out = []
        for axis, size, window, stride, padding in (
            ("height", x.dims[1], kh, sh, ph),
            ("width", x.dims[2], kw, sw, pw),
        ):
            if 2 * padding > window:
                raise ShapeError(
                    "E209",
                    f"{{layer}}: padding {padding} is more than half the window of {window} "
                    f"({axis})",
                    f"pad at most {window // 2}, as PyTorch allows, or use a larger size",
                    option="padding",
                )
            out.append(pool_out(size, window, stride, padding, o.ceil))
            if out[-1] < 1:
                raise ShapeError(
                    "E404",
                    f"{{layer}}: a window of {window} does not fit in {axis} {size}"
                    + (f" (padding {padding})" if padding else ""),
                    "use a smaller kernel or size, or padding=same",
                    option="size",
                )
        return x.with_dims(x.dims[0], *out)


class UnpoolOptions(Options):
    of: str  # the max pool whose windows it undoes (a layer of the same network or block)
    # set by the checker from that pool (never written in a spec)
    _pool: PoolOptions | None = PrivateAttr(default=None)


class Unpool(Kind):
    """`[C, H', W']` -> `[C, H, W]`, the shape that entered the max pool `of` names.

    The inverse of a max pool, as nn.MaxUnpool2d with nn.MaxPool2d(return_indices=True): each
    value goes back to the cell where its window's maximum was (the first, row-major) in what
    entered the pool, and every other cell is zero. `unpool u: of=p` names the pool, which must
    be a max pool upstream of it (through `->` links); the checker links what enters the pool to
    the unpool's `like` port, from which both backends find the maxima again (the same windows,
    so the same cells as the pool's indices). No parameters; the gradient takes each value's
    cell of the output's gradient, and none flows to `like` (indices are not differentiable).
    """

    name = "unpool"
    family = "conv"
    cell = Cell.CONVOLUTION_POOL
    Options = UnpoolOptions
    ports = ("x", "like")
    default_port = "x"
    refers = "of"  # the option that names another layer (check.py links it)

    def shape(self, o: UnpoolOptions, x: dict[str, Shape]) -> Shape:
        like, values = x.get("like"), x.get("x")
        if like is None or o._pool is None:  # the checker links the pool's input to `like`
            raise ShapeError(
                "E252",
                f"{{layer}}: of={o.of} names no max pool it can undo",
                "name a max pool before it: 'pool p: max, size=2' and 'of=p'",
                option="of",
            )
        if values is None:
            raise ShapeError(
                "E307",
                "{layer} receives no values to unpool",
                "link the pool's way down to it: 'p -> ... -> u'",
            )
        pooled = Pool().shape(o._pool, like)
        if values.dims != pooled.dims:
            raise ShapeError(
                "E254",
                f"{{layer}} receives {values.static()}, but the pool '{o.of}' gives "
                f"{pooled.static()}: an unpool puts back what its pool took",
                f"feed it a value of the pool's shape {pooled.static()}, or name the pool that "
                "made it",
            )
        return like


class GlobalPoolOptions(Options):
    mode: Literal["max", "avg"]


class GlobalPool(Kind):
    """`[C, H, W]` -> `[C]`.

    The max or the mean of each channel over the whole image (PyTorch's adaptive_max_pool2d
    and adaptive_avg_pool2d to 1 x 1, flattened): no size to give, so a network ends its
    convolutions the same way whatever the image's size. A max passes its gradient to the first
    maximum (row-major).
    """

    name = "global_pool"
    family = "conv"
    cell = Cell.CONVOLUTION_POOL
    Options = GlobalPoolOptions
    positional = ("mode",)

    def shape(self, o: GlobalPoolOptions, x: Shape) -> Shape:
        _image("global_pool", x)
        return x.with_dims(x.dims[0])


class Flatten(Kind):
    """`[C, H, W]` -> `[C*H*W]`; `[N, F]` -> `[N*F]`.

    Every axis after batch (and time) into one, in row-major (C, H, W) order.
    """

    name = "flatten"
    family = "conv"

    def shape(self, o, x: Shape) -> Shape:
        return x.with_dims(x.size)


class ReshapeOptions(Options):
    shape: int | tuple[int, ...]


def reshaped(kind: str, target: tuple[int, ...], x: Shape) -> tuple[int, ...]:
    """`target` with its one `-1` filled in so that it holds `x.size` values (E207, E401)."""
    if not 1 <= len(target) <= 3 or any(d < 1 and d != -1 for d in target):
        raise ShapeError(
            "E207",
            f"{{layer}}: a {kind} gives a size, [items, features] or [C, H, W] of positive whole "
            f"numbers (-1 once for the rest), not {list(target)}",
            "write 'reshape r: [1, 8, 8]' for an image or 'reshape r: [64]' for a vector",
            option="shape",
        )
    if target.count(-1) > 1:
        raise ShapeError(
            "E207",
            f"{{layer}}: -1 may stand for one size only, but {list(target)} has {target.count(-1)}",
            "give every size but one, for example [1, 8, -1]",
            option="shape",
        )
    known = math.prod(d for d in target if d != -1)
    size = x.size
    if -1 in target and size % known == 0:
        return tuple(size // known if d == -1 else d for d in target)
    if -1 not in target and known == size:
        return target
    holds = f"{known} values" + (" times a whole number" if -1 in target else "")
    raise ShapeError(
        "E401",
        f"{{layer}}: cannot reshape {x.static()} ({size} values) to {list(target)} ({holds})",
        f"give sizes that multiply to {size}, or -1 for one of them: [{size}] or [1, -1]",
        option="shape",
    )


class Reshape(Kind):
    """`[...]` -> `shape`, the same number of values: `[64]` -> `[1, 8, 8]` and back.

    The values of each example (at each time step) in row-major order, laid out again in
    `shape` (a size, `[N, F]` or `[C, H, W]`); one size may be `-1`, the rest of the values
    (PyTorch's reshape, the batch and time axes kept). The gradient is reshaped back.
    """

    name = "reshape"
    family = "conv"
    Options = ReshapeOptions
    positional = ("shape",)

    def shape(self, o: ReshapeOptions, x: Shape) -> Shape:
        target = (o.shape,) if isinstance(o.shape, int) else o.shape
        return x.with_dims(*reshaped("reshape", target, x))


class UpsampleOptions(Options):
    factor: Annotated[
        Count | None, Hint("upsample by a whole factor of at least 1: upsample u: 2")
    ] = None
    size: Annotated[
        Pair | None, Hint("an output of at least 1 x 1: size=[16, 16], or size=16 for both")
    ] = None
    mode: Literal["nearest", "bilinear"] = "nearest"


class Upsample(Kind):
    """`[C, H, W]` -> `[C, factor * H, factor * W]`, or `[C, size]`.

    Each output cell `i` of an axis of `n` cells into `m` reads the input at
    `(i + 0.5) * n / m - 0.5`: `nearest` copies cell `floor(i * n / m)` (by a factor, every
    input cell becomes a `factor x factor` square), `bilinear` weighs the two nearest rows and
    columns, clamped at the edges (PyTorch's F.interpolate with `scale_factor` or `size`,
    nearest, or bilinear with align_corners=False). `size=[h, w]` (or one number for both) gives
    the output's height and width instead of a factor, larger or smaller than the input. No
    parameters; the gradient sums back over the cells each input cell fed.
    """

    name = "upsample"
    family = "conv"
    cell = Cell.CONVOLUTION_POOL
    Options = UpsampleOptions
    positional = ("factor",)

    def shape(self, o: UpsampleOptions, x: Shape) -> Shape:
        if (o.factor is None) == (o.size is None):
            raise ShapeError(
                "E251",
                "{layer}: give a factor or a size, "
                + ("not both" if o.factor is not None else "neither is given"),
                "write 'upsample u: 2' to double the height and width, or "
                "'upsample u: size=[16, 16]' for an output of 16 x 16",
                option="size" if o.factor is not None else None,
            )
        _image("upsample", x)
        c, h, w = x.dims
        if o.size is not None:
            return x.with_dims(c, *pair(o.size))
        return x.with_dims(c, h * o.factor, w * o.factor)


def interpolation(size: int, out: int, mode: str) -> list[list[float]]:
    """The `[out, size]` matrix that resizes one axis of `size` cells to `out`: row `i` weighs
    the input cells output cell `i` reads, as PyTorch's F.interpolate (nearest, or linear with
    align_corners=False); by a whole factor exactly, else nearest rounds in float32 as PyTorch's
    kernel does."""
    rows = [[0.0] * size for _ in range(out)]
    scale = size / out
    for i, row in enumerate(rows):
        if mode == "nearest":
            row[_nearest(i, size, out)] = 1.0
            continue
        source = max(scale * (i + 0.5) - 0.5, 0.0)
        low = min(int(source), size - 1)
        high = min(low + 1, size - 1)
        weight = source - low
        row[low] += 1.0 - weight
        row[high] += weight
    return rows


def _nearest(i: int, size: int, out: int) -> int:
    """The input cell output cell `i` copies: `i // factor` by a whole factor, else
    `floor(i * (size / out))` in float32, as PyTorch's nearest kernel computes it."""
    if out % size == 0:
        return i // (out // size)
    scale = _float32(_float32(size) / _float32(out))
    return min(math.floor(_float32(i * scale)), size - 1)


def _float32(value: float) -> float:
    """`value` rounded to the nearest float32 (PyTorch's nearest works in float)."""
    return struct.unpack("f", struct.pack("f", value))[0]


KINDS = [
    Conv(),
    Deconv(),
    Pool(),
    Unpool(),
    GlobalPool(),
    Flatten(),
    Reshape(),
    Upsample(),
]
