"""The Kohonen map in PyTorch: the one-hot best-matching unit of a grid of weight vectors."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ...program import Layer
from .lowering import Emit, Lowering


class KohonenMap(nn.Module):
    """x [..., d] -> [..., units]: a 1 at the unit whose weight is nearest x, 0 elsewhere.

    weight [units, d], one row per unit of the grid (row-major). No gradient flows: the map is
    moved by `rule = som`, never by backpropagation.
    """

    def __init__(self, units: int, features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(units, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]).to(self.weight.dtype)
        # the distances themselves, not |x|^2 - 2 x.w + |w|^2 (cancellation could pick another
        # winner than NumPy's backend and the rule do)
        near = torch.cdist(flat, self.weight, compute_mode="donot_use_mm_for_euclid_dist")
        winners = near.argmin(-1)  # the first at a tie, as NumPy's argmin
        hot = F.one_hot(winners, self.weight.shape[0]).to(self.weight.dtype)
        return hot.reshape(*x.shape[:-1], self.weight.shape[0])


def _som_module(layer: Layer) -> KohonenMap:
    units, features = layer.params["weight"].shape
    return KohonenMap(units, features)


def _som(e: Emit, x: str) -> None:
    e.assign(f"{e.module}({x})")


LOWERINGS = {"som": Lowering(_som, _som_module)}
