"""Graph kinds in PyTorch: gcn (symmetric normalisation with self-loops) and readout."""

from __future__ import annotations

import torch
from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering


class GraphConv(nn.Module):
    """H' = D^-1/2 (A + I) D^-1/2 H W^T + b, for features H [B, N, F] and adjacency A [B, N, N]."""

    def __init__(self, features: int, units: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(units, features))
        self.bias = nn.Parameter(torch.empty(units)) if bias else None

    def forward(self, h: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        a = adjacency + torch.eye(
            adjacency.shape[-1], dtype=adjacency.dtype, device=adjacency.device
        )
        d = a.sum(-1).rsqrt()
        out = (d.unsqueeze(-1) * a * d.unsqueeze(-2)) @ nn.functional.linear(h, self.weight)
        return out if self.bias is None else out + self.bias


def _gcn_module(layer: Layer) -> GraphConv:
    units, features = layer.params["weight"].shape
    return GraphConv(features, units, "bias" in layer.params)


def _gcn(e: Emit, x: dict[str, str]) -> None:
    e.assign(e.activate(e.options.act, f"{e.module}({x['features']}, {x['adjacency']})"))


def _readout(e: Emit, x: str) -> None:
    reduce = {"mean": "mean", "sum": "sum", "max": "amax"}[e.options.mode]
    e.assign(f"{x}.{reduce}(-2)")


LOWERINGS = {"gcn": Lowering(_gcn, _gcn_module), "readout": Lowering(_readout)}
