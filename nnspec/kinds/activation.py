"""Activations: the `act=` option of many kinds, and each activation as a layer of its own."""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from pydantic import BeforeValidator, create_model
from pydantic_core import PydanticCustomError

from .base import Kind, Options, Real, Shape


class ActivationRow(NamedTuple):
    """An activation's options with their defaults, whether it has a gradient, and what it is."""

    defaults: dict[str, float]
    differentiable: bool
    doc: str


ACTIVATIONS: dict[str, ActivationRow] = {
    "identity": ActivationRow({}, True, "`x`."),
    "linear": ActivationRow({}, True, "`x` (another name for `identity`)."),
    "step": ActivationRow(
        {}, False, "1 where `x > 0`, else 0, with no gradient (nothing flows back through it)."
    ),
    "sigmoid": ActivationRow({}, True, "`1 / (1 + exp(-x))`."),
    "tanh": ActivationRow({}, True, "`tanh(x)`."),
    "relu": ActivationRow({}, True, "`max(x, 0)` (gradient 0 at 0)."),
    "leaky_relu": ActivationRow(
        {"alpha": 0.01}, True, "`x` if `x > 0` else `alpha * x` (gradient `alpha` at 0)."
    ),
    "elu": ActivationRow({"alpha": 1.0}, True, "`x` if `x > 0` else `alpha * (exp(x) - 1)`."),
    "gelu": ActivationRow({}, True, "exact: `x * Φ(x)`, Φ the normal distribution function."),
    "softplus": ActivationRow({}, True, "`log(1 + exp(x))`."),
    "silu": ActivationRow({}, True, "`x * sigmoid(x)` (also called swish)."),
    "mish": ActivationRow({}, True, "`x * tanh(softplus(x))`."),
    "hardtanh": ActivationRow(
        {}, True, "`x` clipped to [-1, 1] (gradient 1 inside, 0 outside and at the ends)."
    ),
    "selu": ActivationRow(
        {},
        True,
        "`scale * x` if `x > 0` else `scale * alpha * (exp(x) - 1)`, with PyTorch's constants "
        "alpha = 1.6732632423543772 and scale = 1.0507009873554805.",
    ),
    "softmax": ActivationRow(
        {}, True, "`exp(x) / sum(exp(x))` over the feature axis (the channel axis for images)."
    ),
}


class Activation(Options):
    """An activation with its settings: `tanh`, `leaky_relu(alpha=0.1)`."""

    name: str
    alpha: Real | None = None

    @property
    def differentiable(self) -> bool:
        return ACTIVATIONS[self.name][1]

    def __str__(self) -> str:
        return self.name if self.alpha is None else f"{self.name}(alpha={self.alpha:g})"


def _activation(value: Any) -> Any:
    """`tanh` -> Activation('tanh');
    ("leaky_relu", {"alpha": 0.1}) -> Activation('leaky_relu', 0.1)."""
    if isinstance(value, Activation):
        return value
    name, args = (
        (value, {}) if isinstance(value, str) else value if isinstance(value, tuple) else (None, {})
    )
    if not isinstance(name, str):
        raise PydanticCustomError(
            "activation_type", "expected an activation such as relu or leaky_relu(alpha=0.1)"
        )
    if name not in ACTIVATIONS:
        raise PydanticCustomError(
            "unknown_activation", "unknown activation '{name}'", {"name": name}
        )
    defaults = ACTIVATIONS[name][0]
    if any(key.isdigit() for key in args):
        raise PydanticCustomError(
            "activation_type", "activation options are named, as in leaky_relu(alpha=0.1)"
        )
    unknown = sorted(set(args) - set(defaults))
    if unknown:
        raise PydanticCustomError(
            "activation_option",
            "{name} takes {known}, not '{option}'",
            {"name": name, "option": unknown[0], "known": ", ".join(defaults) or "no options"},
        )
    return Activation(name=name, **{**defaults, **args})


Act = Annotated[Activation, BeforeValidator(_activation)]
IDENTITY = Activation(name="identity")


def _activation_kind(act: str, row: ActivationRow) -> Kind:
    """An activation used as a layer: `relu y`, `leaky_relu y: alpha=0.1`; options default as
    `act=` does."""
    fields = {key: (Real, value) for key, value in row.defaults.items()}
    options = create_model(f"{act.title().replace('_', '')}Options", __base__=Options, **fields)

    class ActivationKind(Kind):
        __doc__ = f"anything -> the same shape.\n\nThe activation `{act}` as a layer: {row.doc}"
        name = act
        family = "activation"
        Options = options

        def shape(self, o, x: Shape) -> Shape:
            return x

    ActivationKind.__name__ = ActivationKind.__qualname__ = f"{act.title().replace('_', '')}Kind"
    return ActivationKind()


KINDS = [_activation_kind(name, row) for name, row in ACTIVATIONS.items()]
