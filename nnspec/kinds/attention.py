"""Scaled dot-product attention, self or cross, over a sequence or a set of items; and the
positional encodings that tell attention where each step is."""

from __future__ import annotations

from typing import Literal

import numpy as np

from .base import Count, Kind, Options, Param, Shape, ShapeError, uniform_fan_in, xavier
from .initializers import InitOption


class AttentionOptions(Options):
    heads: Count = 1
    dim: Count | None = None  # width of queries, keys and values; defaults to the query's features
    causal: bool = False  # each step attends only to itself and earlier steps
    bias: bool = True
    init: InitOption = None  # the four projections' weights (biases stay zero)


def _length(x: Shape) -> int | None:
    return x.steps if x.timed else x.dims[0]


class Attention(Kind):
    """query `[T, F]` or `[N, F]` (key, value alike) -> `[T, dim]` or `[N, dim]`.

    `q = query @ W_q.T + b_q`, `k`, `v` likewise from key and value (both default to the query);
    split into `heads` of `dim / heads`; `softmax(q k^T / sqrt(dim / heads)) v`, with `causal`,
    item `i` sees keys `j <= i`; heads joined, then `@ W_o.T + b_o`. The sequence axis (T) or the
    item axis (N) is the one attended over. Parameters as nn.MultiheadAttention's.

    On a cycle through `~>` (a decoder's `dec -> a.query`, `a ~> dec`) it steps with the cycle:
    at step t the query `[F]` of that step is scored against every step of the keys and values,
    whole sequences `enc -> a.key`, `enc -> a.value` from outside the cycle, and its output at t
    is that step's softmax-weighted context (Bahdanau, Cho and Bengio 2015).
    """

    name = "attention"
    family = "attention"
    Options = AttentionOptions
    ports = ("query", "key", "value")
    default_port = "query"  # one unnamed input: self-attention
    flags = ("causal", "bias")
    whole_sequence = True
    # on a cycle through `~>` it steps with the cycle: each step's query (`[F]`) attends over
    # every step of the keys and values, whole sequences from outside the cycle (check.py)
    whole_ports = ("key", "value")

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


class PosencOptions(Options):
    mode: Literal["sinusoidal", "learned"]
    max_len: Count | None = None  # learned: the longest sequence it has positions for
    init: InitOption = None  # learned: how the positions start (N(0, 1) without it)


def sinusoids(steps: int, width: int, dtype=np.float64) -> np.ndarray:
    """Vaswani et al.'s encoding `[steps, width]`: `PE[t, 2i] = sin(t / 10000^(2i / width))`,
    `PE[t, 2i + 1] = cos(...)` of the same angle (an odd width ends with a sine)."""
    t = np.arange(steps, dtype=np.float64)[:, None]
    rate = 10000.0 ** (-np.arange(0, width, 2, dtype=np.float64) / width)
    pe = np.zeros((steps, width))
    pe[:, 0::2] = np.sin(t * rate)
    pe[:, 1::2] = np.cos(t * rate[: width // 2])
    return pe.astype(dtype)


class Posenc(Kind):
    """`[T, d]` or `[N, d]` -> the same shape: each step (item) plus its position's encoding.

    `sinusoidal`: `x[t] + PE[t]`, `PE[t, 2i] = sin(t / 10000^(2i / d))`, `PE[t, 2i + 1] =
    cos(t / 10000^(2i / d))` (Vaswani et al. 2017), fixed, no parameters, any length.
    `learned`: `x[t] + W[t]`, `W` a parameter `[max_len, d]` drawn N(0, 1) as nn.Embedding's
    (positions 0 .. T - 1 looked up); `max_len` defaults to the sequence's fixed length, and
    a longer sequence than `max_len` is refused when it comes (ValueError).
    """

    name = "posenc"
    family = "attention"
    Options = PosencOptions
    positional = ("mode",)
    whole_sequence = True  # step t's value depends on t

    def shape(self, o: PosencOptions, x: Shape) -> Shape:
        self._length(o, x)
        return x

    def params(self, o: PosencOptions, x: Shape) -> dict[str, Param]:
        if o.mode == "sinusoidal":
            return {}
        return {"weight": Param((self._length(o, x), x.dims[-1]), init=("normal", 1.0))}

    def _length(self, o: PosencOptions, x: Shape) -> int | None:
        """The positions a learned encoding holds (None for sinusoidal); errors at the option."""
        timed_vector = x.timed and len(x.dims) == 1
        if not (timed_vector or (not x.timed and len(x.dims) == 2)):
            raise ShapeError(
                "E402",
                f"{{layer}} adds positions to a sequence [T, d] or a set of items [N, d], not {x}",
                "mark the input 'seq', or give it as [items, features]",
            )
        length = x.steps if x.timed else x.dims[0]
        if o.mode == "sinusoidal":
            if o.init is not None:
                raise ShapeError(
                    "E209",
                    "{layer} is sinusoidal, a fixed encoding with no weights: init= is for "
                    "learned positions",
                    "drop init, or write 'posenc p: learned, max_len=N, init=...'",
                    option="init",
                )
            if o.max_len is not None:
                raise ShapeError(
                    "E209",
                    "{layer} is sinusoidal, which has an encoding for every position: "
                    "max_len is for learned positions",
                    "drop max_len, or write 'posenc p: learned, max_len=N'",
                    option="max_len",
                )
            return None
        if o.max_len is None and length is None:
            raise ShapeError(
                "E261",
                f"{{layer}} learns one encoding per position, but its input {x} may have any "
                "number of steps",
                "give the longest sequence it will see: 'posenc p: learned, max_len=64' (or fix "
                "the input's length: seq=64)",
                option="mode",
            )
        if o.max_len is not None and length is not None and length > o.max_len:
            raise ShapeError(
                "E262",
                f"{{layer}} has positions for {o.max_len} steps, but its input {x} has {length}",
                f"raise max_len to {length} or more",
                option="max_len",
            )
        return o.max_len or length


KINDS = [Attention(), Posenc()]
