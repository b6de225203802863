"""Regularisation and normalisation: dropout, batchnorm, layernorm."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .base import Fraction, Hint, Kind, Options, Param, Real, Shape


class DropoutOptions(Options):
    rate: Annotated[Fraction, Hint("a dropout rate is a fraction from 0 up to (not including) 1")]


class Dropout(Kind):
    """anything -> the same shape.

    Training: `x * m / (1 - rate)`, `m` drawn 1 with probability `1 - rate`; evaluation: `x`.
    """

    name = "dropout"
    family = "norm"
    Options = DropoutOptions
    positional = ("rate",)

    def shape(self, o: DropoutOptions, x: Shape) -> Shape:
        return x


class NormOptions(Options):
    eps: Annotated[Real, Field(gt=0)] = 1e-5


class BatchNorm(Kind):
    """anything -> the same shape.

    Per feature (channel for images) over every other axis: training uses the batch's mean and
    biased variance and updates `running_mean`, `running_var` (momentum 0.1, unbiased variance)
    and `num_batches_tracked`; evaluation uses the running ones.
    `(x - mean) / sqrt(var + eps) * W + b`.
    """

    name = "batchnorm"
    family = "norm"
    Options = NormOptions

    def shape(self, o: NormOptions, x: Shape) -> Shape:
        return x

    def params(self, o: NormOptions, x: Shape) -> dict[str, Param]:
        f = (x.features,)
        return {
            "weight": Param(f, init=("constant", 1.0)),
            "bias": Param(f),
            "running_mean": Param(f, trainable=False, buffer=True),
            "running_var": Param(f, trainable=False, buffer=True, init=("constant", 1.0)),
            "num_batches_tracked": Param((), trainable=False, buffer=True),
        }


class LayerNorm(Kind):
    """anything -> the same shape.

    Per example over the last axis (over `[C, H, W]` for images), biased variance, `eps`, then
    `* W + b`.
    """

    name = "layernorm"
    family = "norm"
    Options = NormOptions

    def shape(self, o: NormOptions, x: Shape) -> Shape:
        return x

    def params(self, o: NormOptions, x: Shape) -> dict[str, Param]:
        normalized = x.dims if len(x.dims) == 3 else x.dims[-1:]
        return {"weight": Param(normalized, init=("constant", 1.0)), "bias": Param(normalized)}


KINDS = [Dropout(), BatchNorm(), LayerNorm()]
