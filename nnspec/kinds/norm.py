"""Regularisation and normalisation: dropout, noise, batchnorm, layernorm."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import Fraction, Hint, Kind, Options, Param, Real, Shape, ShapeError


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


class NoiseOptions(Options):
    type: Literal["gaussian", "mask", "salt_pepper"]
    amount: Annotated[
        Real,
        Field(ge=0.0),
        Hint("a noise amount is a standard deviation or a fraction, never below 0"),
    ]


class Noise(Kind):
    """anything -> the same shape.

    A corruption in training only (a denoising autoencoder's input); evaluation: `x`.
    `gaussian`: `x + amount * n`, `n` standard normal; `mask`: `x * m`, `m` drawn 1 with
    probability `1 - amount` (no rescaling, unlike dropout); `salt_pepper`: each value, with
    probability `amount`, replaced by 0 or 1 (half each). The gradient passes where a value is
    kept (the noise is a constant).
    """

    name = "noise"
    family = "norm"
    Options = NoiseOptions
    positional = ("type", "amount")

    def shape(self, o: NoiseOptions, x: Shape) -> Shape:
        if o.type != "gaussian" and o.amount >= 1.0:
            raise ShapeError(
                "E271",
                f"{{layer}} corrupts a fraction {o.amount:g} of its values: {o.type} noise takes "
                "a fraction from 0 up to (not including) 1",
                "give the share of values to corrupt, e.g. 0.25",
                option="amount",
            )
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


KINDS = [Dropout(), Noise(), BatchNorm(), LayerNorm()]
