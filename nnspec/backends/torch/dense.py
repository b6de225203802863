"""Fully connected kinds in PyTorch: dense (nn.Linear), maxout, embedding (nn.Embedding)."""

from __future__ import annotations

from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering


def _linear(layer: Layer, weight: str = "weight") -> nn.Linear:
    units, inputs = layer.params[weight].shape
    return nn.Linear(inputs, units, bias="bias" in layer.params)


def _dense(e: Emit, x: str) -> None:
    if e.layer.borrowed and e.layer.shares is None:  # tied=: another layer's weight
        bias = e.params.get("bias", "None")
        e.assign(e.activate(e.options.act, f"F.linear({x}, {e.params['weight']}, {bias})"))
        return
    e.assign(e.activate(e.options.act, f"{e.module}({x})"))


def _maxout(e: Emit, x: str) -> None:
    units, pieces = e.options.units, e.options.pieces
    e.assign(f"{e.module}({x}).unflatten(-1, ({units}, {pieces})).amax(-1)")


def _embedding_module(layer: Layer) -> nn.Embedding:
    return nn.Embedding(*layer.params["weight"].shape)


def _embedding(e: Emit, x: str) -> None:
    tokens = f"{x}.squeeze(-1)" if e.layer.shape.dims[:-1] == () else x
    e.assign(f"{e.module}({tokens}.long())")


LOWERINGS = {
    "dense": Lowering(_dense, _linear),
    "maxout": Lowering(_maxout, _linear),
    "embedding": Lowering(_embedding, _embedding_module),
}
