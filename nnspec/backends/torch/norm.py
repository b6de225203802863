"""Regularisation and normalisation in PyTorch:
dropout, noise, batchnorm (nn.BatchNorm1d/2d), layernorm."""

from __future__ import annotations

from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering


def _dropout(e: Emit, x: str) -> None:
    e.assign(f"F.dropout({x}, {e.options.rate!r}, self.training)")


def _noise(e: Emit, x: str) -> None:
    """Training: the corruption drawn with torch's generator; evaluation: `x`."""
    kind, amount = e.options.type, e.options.amount
    if kind == "gaussian":
        noisy = f"{x} + {amount!r} * torch.randn_like({x})"
    elif kind == "mask":
        noisy = f"{x} * (torch.rand_like({x}) >= {amount!r}).to({x}.dtype)"
    else:  # salt_pepper: replaced with probability amount, by 0 or 1 with probability 1/2 each
        noisy = f"torch.where(torch.rand_like({x}) < {amount!r}, torch.randint_like({x}, 2), {x})"
    e.assign(f"{noisy} if self.training else {x}")


def _batchnorm_module(layer: Layer) -> nn.Module:
    (features,) = layer.params["weight"].shape
    image = len(layer.shape.dims) == 3
    return (nn.BatchNorm2d if image else nn.BatchNorm1d)(features, eps=layer.options.eps)


def _batchnorm(e: Emit, x: str) -> None:
    dims = e.layer.shape.dims
    if len(dims) == 3:  # images: [B, C, H, W], time folded into the batch
        e.assign(
            f"{e.module}({x}.flatten(0, 1)).unflatten(0, (B, T))" if e.timed else f"{e.module}({x})"
        )
    elif len(dims) == 1 and not e.timed:
        e.assign(f"{e.module}({x})")
    else:  # every axis but the features is a sample of the statistics
        e.assign(f"{e.module}({x}.reshape(-1, {dims[-1]})).reshape({x}.shape)")


def _layernorm_module(layer: Layer) -> nn.LayerNorm:
    return nn.LayerNorm(layer.params["weight"].shape, eps=layer.options.eps)


def _layernorm(e: Emit, x: str) -> None:
    e.assign(f"{e.module}({x})")


LOWERINGS = {
    "dropout": Lowering(_dropout),
    "noise": Lowering(_noise),
    "batchnorm": Lowering(_batchnorm, _batchnorm_module),
    "layernorm": Lowering(_layernorm, _layernorm_module),
}
