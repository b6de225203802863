"""Fully connected kinds: dense, maxout, embedding."""

from __future__ import annotations

from typing import Annotated

from .activation import IDENTITY, Act
from .base import (
    LITERAL_VALUES,
    Count,
    Kind,
    Matrix,
    Options,
    Param,
    Real,
    Shape,
    ShapeError,
    Units,
    need_rank,
    uniform_fan_in,
)
from .initializers import InitOption
from .sparsity import SparsityOption

Vector = tuple[Real, ...]


class DenseOptions(Options):
    units: Units
    act: Act = IDENTITY
    bias: bool = True
    # literal weights, [inputs, units] as in A = XW + B
    weights: Annotated[Matrix | None, LITERAL_VALUES] = None
    biases: Annotated[Vector | None, LITERAL_VALUES] = None
    frozen: bool = False
    init: InitOption = None
    sparsity: SparsityOption = None  # a penalty on the activations, in the training loss


def _vector_input(kind: str, x: Shape) -> None:
    need_rank(kind, x, (1, 2), "add a 'flatten' layer before it to turn an image into a vector")


class Dense(Kind):
    """`[F]` -> `[units]`; `[N, F]` -> `[N, units]`.

    `act(x @ W.T + b)`, over the last axis; stored as PyTorch's Linear: weight `[units, inputs]`,
    bias `[units]`.
    """

    name = "dense"
    family = "dense"
    Options = DenseOptions
    positional = ("units",)
    flags = ("frozen", "bias")

    def shape(self, o: DenseOptions, x: Shape) -> Shape:
        _vector_input("dense", x)
        return x.with_dims(*x.dims[:-1], o.units)

    def params(self, o: DenseOptions, x: Shape) -> dict[str, Param]:
        inputs = x.dims[-1]
        if o.sparsity is not None and o.sparsity.name == "kl" and o.act.name != "sigmoid":
            raise ShapeError(
                "E280",
                f"{{layer}} has sparsity=kl, but its activation {o.act.name} "
                "does not lie in (0, 1)",
                "a KL sparsity penalty compares mean activations with rho: give it act=sigmoid, "
                "or use sparsity=l1(0.001)",
                option="sparsity",
            )
        if o.weights is not None:
            rows = {len(row) for row in o.weights}
            if len(o.weights) != inputs or rows != {o.units}:
                got = f"[{len(o.weights)}, {'/'.join(map(str, sorted(rows))) or 0}]"
                raise ShapeError(
                    "E405",
                    f"the weights of {{layer}} are {got}, but it needs [{inputs}, {o.units}] "
                    "([inputs, units])",
                    f"give {inputs} rows (one per input) of {o.units} numbers (one per unit)",
                    option="weights",
                )
        if o.weights is not None and o.init is not None:
            raise ShapeError(
                "E209",
                "{layer} has literal weights and init=, which would replace them",
                "drop init= or the weights",
                option="init",
            )
        if o.biases is not None:
            if not o.bias:
                raise ShapeError(
                    "E209",
                    "{layer} has biases but bias=false",
                    "drop bias=false or the biases",
                    option="biases",
                )
            if len(o.biases) != o.units:
                raise ShapeError(
                    "E405",
                    f"the biases of {{layer}} are [{len(o.biases)}], but it needs [{o.units}]",
                    f"give one bias per unit: {o.units} numbers",
                    option="biases",
                )
        params = {"weight": uniform_fan_in((o.units, inputs), inputs, trainable=not o.frozen)}
        if o.weights is not None:  # [inputs, units] as written; stored [units, inputs]
            params["weight"] = Param(
                (o.units, inputs),
                not o.frozen,
                init=("literal", tuple(zip(*o.weights, strict=True))),
            )
        if o.bias:
            params["bias"] = uniform_fan_in((o.units,), inputs, trainable=not o.frozen)
            if o.biases is not None:
                params["bias"] = Param((o.units,), not o.frozen, init=("literal", o.biases))
        return params


class MaxoutOptions(Options):
    units: Units
    pieces: Count = 2
    bias: bool = True
    init: InitOption = None


class Maxout(Kind):
    """`[F]` -> `[units]`; `[N, F]` -> `[N, units]`.

    `z = x @ W.T + b` is `[..., units * pieces]`; reshaped `[..., units, pieces]`, the max over
    pieces (row `u * pieces + p` of `W` is piece `p` of unit `u`); at an exact tie both backends
    split the gradient evenly among the maxima (`torch.amax`).
    """

    name = "maxout"
    family = "dense"
    Options = MaxoutOptions
    positional = ("units",)
    flags = ("bias",)

    def shape(self, o: MaxoutOptions, x: Shape) -> Shape:
        _vector_input("maxout", x)
        return x.with_dims(*x.dims[:-1], o.units)

    def params(self, o: MaxoutOptions, x: Shape) -> dict[str, Param]:
        inputs = x.dims[-1]
        params = {"weight": uniform_fan_in((o.units * o.pieces, inputs), inputs)}
        if o.bias:
            params["bias"] = uniform_fan_in((o.units * o.pieces,), inputs)
        return params


class EmbeddingOptions(Options):
    vocabulary: Count
    dim: Count
    init: InitOption = None


class Embedding(Kind):
    """tokens `[1]` -> `[dim]`; `[k]` -> `[k, dim]`.

    Tokens (whole numbers, as integers or floats) `[..., k]` -> `W[tokens]` `[..., k, dim]`; with
    `k = 1` the axis is dropped: `[..., dim]`.
    """

    name = "embedding"
    family = "dense"
    Options = EmbeddingOptions
    positional = ("vocabulary", "dim")

    def shape(self, o: EmbeddingOptions, x: Shape) -> Shape:
        need_rank("embedding", x, (1,), "feed it token numbers: 'input t: 1, seq' or 'input t: 10'")
        return x.with_dims(o.dim) if x.dims == (1,) else x.with_dims(x.dims[0], o.dim)

    def params(self, o: EmbeddingOptions, x: Shape) -> dict[str, Param]:
        return {"weight": Param((o.vocabulary, o.dim), init=("normal", 1.0))}


KINDS = [Dense(), Maxout(), Embedding()]
