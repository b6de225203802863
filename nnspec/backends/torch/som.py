"""The Kohonen map in PyTorch: the one-hot best-matching unit of a grid of weight vectors."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ...program import Layer
from .lowering import Emit, Lowering

CHUNK = 1 << 22  # values of the differences (x - W) computed at once


class KohonenMap(nn.Module):
    """x [..., d] -> [..., units]: a 1 at the unit whose weight is nearest x, 0 elsewhere.

    weight [units, d], one row per unit of the grid (row-major). No gradient flows: the map is
    moved by `rule = som`, never by backpropagation.
    """

    def __init__(self, units: int, features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(units, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        flat = x.reshape(-1, x.shape[-1]).to(w.dtype)
        # squared distances from the differences, as NumPy's backend takes them (|x|^2 - 2 x.w +
        # |w|^2 would lose close calls to cancellation); in slices of about 32 MB
        rows = max(1, CHUNK // w.numel())
        winners = [
            (flat[i : i + rows, None, :] - w).square().sum(-1).argmin(-1)  # the first at a tie
            for i in range(0, max(len(flat), 1), rows)  # one slice at least: no batch is empty
        ]
        hot = F.one_hot(torch.cat(winners), w.shape[0]).to(w.dtype)
        return hot.reshape(*x.shape[:-1], w.shape[0])


def _som_module(layer: Layer) -> KohonenMap:
    units, features = layer.params["weight"].shape
    return KohonenMap(units, features)


def _som(e: Emit, x: str) -> None:
    e.assign(f"{e.module}({x})")


LOWERINGS = {"som": Lowering(_som, _som_module)}
