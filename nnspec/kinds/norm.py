"""Regularisation and normalisation: dropout, batchnorm, layernorm."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .base import Fraction, Kind, Options, Param, Real, Shape


class DropoutOptions(Options):
    rate: Fraction


class Dropout(Kind):
    name = "dropout"
    family = "norm"
    Options = DropoutOptions
    positional = ("rate",)

    def shape(self, o: DropoutOptions, x: Shape) -> Shape:
        return x


class NormOptions(Options):
    eps: Annotated[Real, Field(gt=0)] = 1e-5


class BatchNorm(Kind):
    """Normalises each feature (channel, for images) over the batch; running statistics are buffers."""

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
    """Normalises each example over its features (over [C, H, W] for images)."""

    name = "layernorm"
    family = "norm"
    Options = NormOptions

    def shape(self, o: NormOptions, x: Shape) -> Shape:
        return x

    def params(self, o: NormOptions, x: Shape) -> dict[str, Param]:
        normalized = x.dims if len(x.dims) == 3 else x.dims[-1:]
        return {"weight": Param(normalized, init=("constant", 1.0)), "bias": Param(normalized)}


KINDS = [Dropout(), BatchNorm(), LayerNorm()]
