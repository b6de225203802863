"""Attention in PyTorch: projections, heads, `scaled_dot_product_attention`,
the output projection."""

from __future__ import annotations

import torch
from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering


class Attention(nn.Module):
    """query [B, Lq, Fq], key [B, Lk, Fk], value [B, Lk, Fv] -> [B, Lq, dim];
    weights [dim, F] as nn.Linear."""

    def __init__(
        self, dim: int, features: tuple[int, int, int], heads: int, causal: bool, bias: bool
    ):
        super().__init__()
        self.heads, self.causal = heads, causal
        for port, width in zip("qkv", features, strict=True):
            setattr(self, f"weight_{port}", nn.Parameter(torch.empty(dim, width)))
        self.weight_o = nn.Parameter(torch.empty(dim, dim))
        for port in "qkvo":
            setattr(self, f"bias_{port}", nn.Parameter(torch.empty(dim)) if bias else None)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        linear = nn.functional.linear
        q = self._heads(linear(query, self.weight_q, self.bias_q))
        k = self._heads(linear(key, self.weight_k, self.bias_k))
        v = self._heads(linear(value, self.weight_v, self.bias_v))
        out = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return linear(out.transpose(1, 2).flatten(2), self.weight_o, self.bias_o)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L, dim] -> [B, heads, L, dim / heads]."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)


def _module(layer: Layer) -> Attention:
    p, o = layer.params, layer.options
    dim = p["weight_o"].shape[0]
    features = tuple(p[f"weight_{port}"].shape[1] for port in "qkv")
    return Attention(dim, features, o.heads, o.causal, o.bias)


def _attention(e: Emit, x: dict[str, str]) -> None:
    query = x["query"]
    key = x.get("key", query)
    value = x.get("value", key)
    e.assign(f"{e.module}({query}, {key}, {value})")


LOWERINGS = {"attention": Lowering(_attention, _module)}
