"""Activations: the `act=` option of many kinds, and each activation as a layer of its own."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, create_model
from pydantic_core import PydanticCustomError

from .base import Kind, Options, Real, Shape

# name: (its options with their defaults, whether it has a gradient)
ACTIVATIONS: dict[str, tuple[dict[str, float], bool]] = {
    "identity": ({}, True),
    "linear": ({}, True),
    "step": ({}, False),
    "sigmoid": ({}, True),
    "tanh": ({}, True),
    "relu": ({}, True),
    "leaky_relu": ({"alpha": 0.01}, True),
    "elu": ({"alpha": 1.0}, True),
    "gelu": ({}, True),
    "softplus": ({}, True),
    "softmax": ({}, True),
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
    """`tanh` -> Activation('tanh'); ("leaky_relu", {"alpha": 0.1}) -> Activation('leaky_relu', 0.1)."""
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


def _activation_kind(act: str, defaults: dict[str, float]) -> Kind:
    """An activation used as a layer: `relu y`, `leaky_relu y: alpha=0.1`; options default as `act=` does."""
    fields = {key: (Real, value) for key, value in defaults.items()}
    options = create_model(f"{act.title().replace('_', '')}Options", __base__=Options, **fields)

    class ActivationKind(Kind):
        name = act
        family = "activation"
        Options = options

        def shape(self, o, x: Shape) -> Shape:
            return x

    ActivationKind.__name__ = ActivationKind.__qualname__ = f"{act.title().replace('_', '')}Kind"
    return ActivationKind()


KINDS = [_activation_kind(name, defaults) for name, (defaults, _) in ACTIVATIONS.items()]
