"""Scaled dot-product attention, self or cross, over a sequence or a set of items."""

from __future__ import annotations

from .base import Count, Kind, Options, Param, Shape, ShapeError, uniform_fan_in, xavier


class AttentionOptions(Options):
    heads: Count = 1
    dim: Count | None = None  # width of queries, keys and values; defaults to the query's features
    causal: bool = False  # each step attends only to itself and earlier steps
    bias: bool = True


def _length(x: Shape) -> int | None:
    return x.steps if x.timed else x.dims[0]


class Attention(Kind):
    """query `[T, F]` or `[N, F]` (key, value alike) -> `[T, dim]` or `[N, dim]`.

    `q = query @ W_q.T + b_q`, `k`, `v` likewise from key and value (both default to the query);
    split into `heads` of `dim / heads`; `softmax(q k^T / sqrt(dim / heads)) v`, with `causal`,
    item `i` sees keys `j <= i`; heads joined, then `@ W_o.T + b_o`. The sequence axis (T) or the
    item axis (N) is the one attended over. Parameters as nn.MultiheadAttention's.
    """

    name = "attention"
    family = "attention"
    Options = AttentionOptions
    ports = ("query", "key", "value")
    default_port = "query"  # one unnamed input: self-attention
    flags = ("causal", "bias")
    whole_sequence = True

    def _inputs(self, x: dict[str, Shape]) -> tuple[Shape, Shape, Shape]:
        if "query" not in x:
            raise ShapeError(
                "E313",
                "{layer} has a key or value but no query",
                "link something to its query: 'q -> a.query'",
            )
        query = x["query"]
        key = x.get("key", query)
        value = x.get("value", key)
        for port, shape in (("query", query), ("key", key), ("value", value)):
            if not (
                (shape.timed and len(shape.dims) == 1) or (not shape.timed and len(shape.dims) == 2)
            ):
                raise ShapeError(
                    "E402",
                    f"the {port} of {{layer}} must be a sequence [T, F] or a set of items "
                    f"[N, F], not {shape}",
                    "mark the input 'seq', or give it as [items, features]",
                )
        if key.timed != value.timed or _length(key) != _length(value):
            raise ShapeError(
                "E407",
                f"keys {key} and values {value} of {{layer}} differ in length",
                "give keys and values the same number of steps",
            )
        if query.timed != key.timed:
            raise ShapeError(
                "E407", f"{{layer}} mixes a sequence with a set of items: query {query}, key {key}"
            )
        return query, key, value

    def shape(self, o: AttentionOptions, x: dict[str, Shape]) -> Shape:
        query, _, _ = self._inputs(x)
        dim = o.dim or query.dims[-1]
        if dim % o.heads:
            raise ShapeError(
                "E409",
                f"{{layer}}: {dim} features do not split into {o.heads} heads",
                f"choose heads that divide {dim}, or set dim=",
                option="heads",
            )
        return query.with_dims(*query.dims[:-1], dim)

    def params(self, o: AttentionOptions, x: dict[str, Shape]) -> dict[str, Param]:
        query, key, value = self._inputs(x)
        dim = o.dim or query.dims[-1]
        # as nn.MultiheadAttention: Glorot projections, the output like nn.Linear, zero biases
        params = {
            "weight_q": xavier((dim, query.dims[-1])),
            "weight_k": xavier((dim, key.dims[-1])),
            "weight_v": xavier((dim, value.dims[-1])),
            "weight_o": uniform_fan_in((dim, dim), dim),
        }
        if o.bias:
            params |= {f"bias_{p}": Param((dim,)) for p in "qkvo"}
        return params


KINDS = [Attention()]
