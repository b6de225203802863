"""Attention in PyTorch: projections, heads, `scaled_dot_product_attention`,
the output projection; positional encodings (sinusoidal or learned) added to a sequence."""

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


def _attention_step(e: Emit, x: dict[str, str]) -> None:
    """On a cycle through `~>`: this step's query [B, Fq] against every step of the keys and
    values [B, S, F] (check.py gives a stepped attention both from outside the cycle)."""
    e.assign(f"{e.module}({x['query']}.unsqueeze(1), {x['key']}, {x.get('value', x['key'])})[:, 0]")


class Posenc(nn.Module):
    """x [B, L, d] -> x + the encoding of positions 0 .. L - 1: Vaswani et al.'s sinusoids
    (computed in float64, then x's dtype; no parameters), or a learned `weight` [max_len, d]."""

    def __init__(self, learned: bool, width: int, max_len: int | None):
        super().__init__()
        weight = nn.Parameter(torch.empty(max_len, width)) if learned else None
        self.register_parameter("weight", weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, width = x.shape[-2], x.shape[-1]
        if self.weight is None:
            t = torch.arange(steps, dtype=torch.float64, device=x.device).unsqueeze(1)
            rate = torch.arange(0, width, 2, dtype=torch.float64, device=x.device)
            angle = t * torch.pow(10000.0, -rate / width)
            pe = torch.zeros(steps, width, dtype=torch.float64, device=x.device)
            pe[:, 0::2] = torch.sin(angle)
            pe[:, 1::2] = torch.cos(angle[:, : width // 2])
            return x + pe.to(x.dtype)
        if steps > self.weight.shape[0]:
            raise ValueError(
                f"a learned positional encoding has {self.weight.shape[0]} positions (max_len), "
                f"but the sequence has {steps} steps"
            )
        return x + self.weight[:steps]


def _posenc_module(layer: Layer) -> Posenc:
    weight = layer.params.get("weight")
    width = layer.shape.dims[-1]
    return Posenc(weight is not None, width, weight.shape[0] if weight is not None else None)


def _posenc(e: Emit, x: str) -> None:
    e.assign(f"{e.module}({x})")


LOWERINGS = {
    "attention": Lowering(_attention, _module, _attention_step),
    "posenc": Lowering(_posenc, _posenc_module),
}
