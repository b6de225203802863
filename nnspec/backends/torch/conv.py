"""Convolution kinds in PyTorch: conv (nn.Conv2d), deconv (nn.ConvTranspose2d), pool, flatten.

Time folds into the batch.
"""

from __future__ import annotations

from torch import nn

from ...kinds.conv import pair
from ...program import Layer
from .lowering import Emit, Lowering


def _conv_module(layer: Layer) -> nn.Conv2d:
    o = layer.options
    channels, inputs, kh, kw = layer.params["weight"].shape
    padding = o.padding if o.padding in ("same", "valid") else pair(o.padding)
    if _uneven(layer):
        padding = 0  # padded by hand before the convolution (`_conv`)
    return nn.Conv2d(
        inputs, channels, (kh, kw), pair(o.stride), padding, bias="bias" in layer.params
    )


def _uneven(layer: Layer) -> tuple[int, int, int, int] | None:
    """padding=same with an even kernel pads one more after than before.

    Returns F.pad's (left, right, top, bottom), or None when nn.Conv2d pads by itself.
    """
    kh, kw = pair(layer.options.kernel)
    if layer.options.padding != "same" or (kh % 2 and kw % 2):
        return None
    return ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2)


def folded(e: Emit, x: str, op: str) -> str:
    """`op` (with `{}` for its input) on images [B, C, H, W].

    A timed `[B, T, C, H, W]` folds T into the batch and back.
    """
    if not e.timed:
        return op.format(x)
    return op.format(f"{x}.flatten(0, 1)") + ".unflatten(0, (B, T))"


def _conv(e: Emit, x: str) -> None:
    pad = _uneven(e.layer)
    op = e.module + ("({})" if pad is None else f"(F.pad({{}}, {pad}))")
    e.assign(e.activate(e.options.act, folded(e, x, op), -3))


def _deconv_module(layer: Layer) -> nn.ConvTranspose2d:
    o = layer.options
    inputs, channels, kh, kw = layer.params["weight"].shape
    return nn.ConvTranspose2d(
        inputs,
        channels,
        (kh, kw),
        pair(o.stride),
        pair(o.padding),
        pair(o.output_padding),
        bias="bias" in layer.params,
    )


def _deconv(e: Emit, x: str) -> None:
    e.assign(e.activate(e.options.act, folded(e, x, e.module + "({})"), -3))


def _pool(e: Emit, x: str) -> None:
    o = e.options
    size = pair(o.size)
    stride = pair(o.stride if o.stride is not None else o.size)
    e.assign(folded(e, x, f"F.{o.mode}_pool2d({{}}, {size}, {stride})"))


def _flatten(e: Emit, x: str) -> None:
    e.assign(f"{x}.flatten({2 if e.timed else 1})")


LOWERINGS = {
    "conv": Lowering(_conv, _conv_module),
    "deconv": Lowering(_deconv, _deconv_module),
    "pool": Lowering(_pool),
    "flatten": Lowering(_flatten),
}
