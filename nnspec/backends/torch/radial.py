"""Radial basis units in PyTorch: rbf, Gaussian units around trainable centres."""

from __future__ import annotations

import torch
from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering


class Rbf(nn.Module):
    """x [..., d] -> exp(-(eps_j ||x - c_j||)^2) [..., units]; centres [units, d], eps [units].

    The squared distances as the NumPy backend computes them (|x|^2 - 2 x c^T + |c|^2, kept from
    going below 0), so the two agree to rounding."""

    def __init__(self, features: int, units: int):
        super().__init__()
        self.centres = nn.Parameter(torch.empty(units, features))
        self.eps = nn.Parameter(torch.ones(units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.centres
        d2 = (x * x).sum(-1, keepdim=True) - 2.0 * (x @ c.T) + (c * c).sum(-1)
        return torch.exp(-d2.clamp_min(0.0) * (self.eps * self.eps))


def _module(layer: Layer) -> Rbf:
    units, features = layer.params["centres"].shape
    return Rbf(features, units)


def _rbf(e: Emit, x: str) -> None:
    e.assign(f"{e.module}({x})")


LOWERINGS = {"rbf": Lowering(_rbf, _module)}
