"""Convolution kinds in PyTorch: conv (nn.Conv2d), deconv (nn.ConvTranspose2d), pool, unpool
(F.max_unpool2d), global_pool, flatten, reshape (torch.reshape), upsample (F.interpolate).

Time folds into the batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ...kinds.conv import pair, same_pads, spread
from ...program import Layer
from .lowering import Emit, Lowering


class SameConv2d(nn.Conv2d):
    """nn.Conv2d with padding=same at any stride: zeros as TensorFlow places them
    (`kinds.conv.same_pads`: the odd one at the bottom and the right), then the convolution
    unpadded; where the zeros fall evenly (an odd kernel at stride 1), the convolution pads
    them itself, without the copy. The state is nn.Conv2d's (weight, bias)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = spread(self.kernel_size, self.dilation), self.stride
        top, bottom = same_pads(x.shape[-2], kh, sh)
        left, right = same_pads(x.shape[-1], kw, sw)
        if top == bottom and left == right:
            w, b = self.weight, self.bias
            return F.conv2d(x, w, b, self.stride, (top, left), self.dilation, self.groups)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _conv_module(layer: Layer) -> nn.Conv2d:
    o = layer.options
    channels, inputs, kh, kw = layer.params["weight"].shape
    inputs *= o.groups  # the weight holds one group's inputs
    more = {"dilation": pair(o.dilation), "groups": o.groups, "bias": "bias" in layer.params}
    if o.padding == "same":
        return SameConv2d(inputs, channels, (kh, kw), pair(o.stride), 0, **more)
    padding = 0 if o.padding == "valid" else pair(o.padding)
    return nn.Conv2d(inputs, channels, (kh, kw), pair(o.stride), padding, **more)


def folded(e: Emit, x: str, op: str) -> str:
    """`op` (with `{}` for its input) on images [B, C, H, W].

    A timed `[B, T, C, H, W]` folds T into the batch and back.
    """
    if not e.timed:
        return op.format(x)
    return op.format(f"{x}.flatten(0, 1)") + ".unflatten(0, (B, T))"


def _conv(e: Emit, x: str) -> None:
    e.assign(e.activate(e.options.act, folded(e, x, e.module + "({})"), -3))


def _deconv_module(layer: Layer) -> nn.ConvTranspose2d:
    o = layer.options
    inputs, channels, kh, kw = layer.params["weight"].shape
    return nn.ConvTranspose2d(
        inputs,
        channels * o.groups,  # the weight holds one group's outputs
        (kh, kw),
        pair(o.stride),
        pair(o.padding),
        pair(o.output_padding),
        groups=o.groups,
        bias="bias" in layer.params,
        dilation=pair(o.dilation),
    )


def _deconv(e: Emit, x: str) -> None:
    e.assign(e.activate(e.options.act, folded(e, x, e.module + "({})"), -3))


def _pool(e: Emit, x: str) -> None:
    o = e.options
    size = pair(o.size)
    stride = pair(o.stride if o.stride is not None else o.size)
    options = f"{size}, {stride}, {pair(o.padding)}, ceil_mode={o.ceil}"
    e.assign(folded(e, x, f"F.{o.mode}_pool2d({{}}, {options})"))


def window(pool) -> str:
    """A max pool's window as max_pool2d's and max_unpool2d's arguments: size, stride, padding."""
    size = pair(pool.size)
    stride = pair(pool.stride if pool.stride is not None else pool.size)
    return f"{size}, {stride}, {pair(pool.padding)}"


def _unpool(e: Emit, x: dict[str, str]) -> None:
    # the maxima found again in what entered the pool: the same windows, so the pool's indices
    pool = e.options._pool
    like, shown = x["like"], window(pool)
    if e.timed:
        like = f"{like}.flatten(0, 1)"
    ceil = ", ceil_mode=True" if pool.ceil else ""
    e.line(f"{e.out}__at = F.max_pool2d({like}, {shown}{ceil}, return_indices=True)[1]")
    size = tuple(e.layer.shape.dims[1:])
    e.assign(folded(e, x["x"], f"F.max_unpool2d({{}}, {e.out}__at, {shown}, {size})"))


def _global_pool(e: Emit, x: str) -> None:
    e.assign(folded(e, x, f"F.adaptive_{e.options.mode}_pool2d({{}}, 1)") + ".flatten(-3)")


def _flatten(e: Emit, x: str) -> None:
    e.assign(f"{x}.flatten({2 if e.timed else 1})")


def _reshape(e: Emit, x: str) -> None:
    lead = 2 if e.timed else 1
    e.assign(f"{x}.reshape({x}.shape[:{lead}] + {tuple(e.layer.shape.dims)})")


def _upsample(e: Emit, x: str) -> None:
    o = e.options
    # bilinear: align_corners at its default (None, read as False; torch 2.13 warns of nothing),
    # which keeps the line of a compiled torch file short
    how = f'"{o.mode}"'
    scale = f"scale_factor={o.factor}" if o.factor is not None else f"size={pair(o.size)}"
    e.assign(folded(e, x, f"F.interpolate({{}}, {scale}, mode={how})"))


LOWERINGS = {
    "conv": Lowering(_conv, _conv_module),
    "deconv": Lowering(_deconv, _deconv_module),
    "pool": Lowering(_pool),
    "unpool": Lowering(_unpool),
    "global_pool": Lowering(_global_pool),
    "flatten": Lowering(_flatten),
    "reshape": Lowering(_reshape),
    "upsample": Lowering(_upsample),
}
