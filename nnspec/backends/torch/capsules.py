"""Capsule kinds in PyTorch: primary capsules (an nn.Conv2d whose channels are grouped into
squashed capsules), a capsule layer routed by agreement, capsule lengths, and the mask before a
reconstruction decoder."""

from __future__ import annotations

import torch
from torch import nn

from ...kinds.capsules import EPSILON
from ...kinds.conv import pair
from ...program import Layer
from .lowering import Emit, Lowering


def squash(s: torch.Tensor) -> torch.Tensor:
    """s [..., dim] -> the same direction, length |s|^2 / (1 + |s|^2)."""
    n = (s * s).sum(-1, keepdim=True)
    return s * (n / ((1 + n) * torch.sqrt(n + EPSILON)))


class PrimaryCapsules(nn.Conv2d):
    """x [B, C, H, W] -> [B, capsules * H' * W', dim]: the convolution's channels grouped into
    capsule types of `dim` components ([k, h, w] order), each squashed. nn.Conv2d's state."""

    def __init__(self, inputs, capsules, dim, kernel, stride, padding, bias):
        super().__init__(inputs, capsules * dim, kernel, stride, padding, bias=bias)
        self.capsules, self.dim = capsules, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        y = y.unflatten(1, (self.capsules, self.dim)).permute(0, 1, 3, 4, 2)
        return squash(y.reshape(y.shape[0], -1, self.dim))


class Capsules(nn.Module):
    """u [B, N, D] -> v [B, J, K]: prediction vectors `W_ij u_i` (weight [N, J, K, D]), then
    `routing` iterations of routing by agreement (Sabour, Frosst and Hinton 2017)."""

    def __init__(self, inputs, dim_in, capsules, dim, routing):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(inputs, capsules, dim, dim_in))
        self.routing = routing

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        u_hat = torch.einsum("bnd,njkd->bnjk", u, self.weight)
        logits = torch.zeros(u_hat.shape[:-1], dtype=u.dtype, device=u.device)
        for iteration in range(self.routing):
            c = torch.softmax(logits, -1)
            v = squash((c.unsqueeze(-1) * u_hat).sum(-3))
            if iteration < self.routing - 1:
                logits = logits + (u_hat * v.unsqueeze(-3)).sum(-1)
        return v


class Mask(nn.Module):
    """v [B, N, dim] -> [B, N * dim]: capsule `labels[b]` of example b kept, the others zero,
    while training with `labels` ([B] class indices) set; else the longest capsule. No state:
    the training runner sets `labels` for a step and clears it after."""

    labels: torch.Tensor | None = None

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        labels = self.labels if self.training else None
        index = (v * v).sum(-1).argmax(-1) if labels is None else labels.to(v.device)
        kept = torch.arange(v.shape[-2], device=v.device) == index.unsqueeze(-1)
        return (v * kept.unsqueeze(-1).to(v.dtype)).flatten(1)


def _primary_module(layer: Layer) -> PrimaryCapsules:
    o = layer.options
    _, inputs, kh, kw = layer.params["weight"].shape
    padding = 0 if o.padding == "valid" else o.padding
    bias = "bias" in layer.params
    return PrimaryCapsules(inputs, o.capsules, o.dim, (kh, kw), pair(o.stride), padding, bias)


def _capsules_module(layer: Layer) -> Capsules:
    inputs, capsules, dim, dim_in = layer.params["weight"].shape
    return Capsules(inputs, dim_in, capsules, dim, layer.options.routing)


def _called(e: Emit, x: str) -> None:
    e.assign(f"{e.module}({x})")


def _length(e: Emit, x: str) -> None:
    e.assign(f"torch.sqrt(({x} * {x}).sum(-1) + {EPSILON!r})")


LOWERINGS = {
    "primary_capsules": Lowering(_called, _primary_module),
    "capsules": Lowering(_called, _capsules_module),
    "length": Lowering(_length),
    "mask": Lowering(_called, lambda layer: Mask()),
}
