"""The `sparsity=` option of dense: a penalty on the layer's activations, added to the training
loss (a sparse autoencoder's hidden layer). It is a training matter: the forward pass, the
compiled files and the drawing are the same with and without it.

- `kl(rho=0.05, beta=3)`: `beta * sum_j KL(rho || rho_hat_j)`, `rho_hat_j` the mean activation of
  unit `j` over the batch (and steps), Ng's UFLDL notes; the activations must lie in (0, 1), so the
  layer ends in `act=sigmoid` (E280).
- `l1(weight=0.001)`: `weight * sum |a|` over units and examples, divided by the examples.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, NamedTuple

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from ..errors import did_you_mean
from .base import Options


class PenaltyRow(NamedTuple):
    """A penalty's settings in positional order with their defaults, and what it is."""

    defaults: dict[str, float]
    doc: str


PENALTIES: dict[str, PenaltyRow] = {
    "kl": PenaltyRow(
        {"rho": 0.05, "beta": 3.0},
        "`beta * sum_j KL(rho || rho_hat_j)`, `rho_hat_j` unit j's mean activation over the batch; "
        "needs act=sigmoid.",
    ),
    "l1": PenaltyRow({"weight": 0.001}, "`weight * sum |a|` per example, averaged over the batch."),
}


class Sparsity(Options):
    """A sparsity penalty with its settings: `kl(rho=0.05, beta=3)`, `l1(0.001)`."""

    name: str
    rho: float | None = None
    beta: float | None = None
    weight: float | None = None

    def __str__(self) -> str:
        settings = [f"{key}={getattr(self, key):g}" for key in PENALTIES[self.name].defaults]
        return f"{self.name}({', '.join(settings)})"


def _problem(message: str, hint: str | None) -> PydanticCustomError:
    # reported as E207 (value out of range) by the resolver, as init='s problems are
    return PydanticCustomError("init_value", "{message}", {"message": message, "hint": hint})


def _sparsity(value: Any) -> Any:
    """`kl` -> Sparsity('kl', rho=0.05, beta=3); ("l1", {"0": 0.01}) -> Sparsity('l1', 0.01)."""
    if isinstance(value, Sparsity) or value is None:
        return value
    name, args = (
        (value, {}) if isinstance(value, str) else value if isinstance(value, tuple) else (None, {})
    )
    known = [f"{n}({', '.join(row.defaults)})" for n, row in PENALTIES.items()]
    if not isinstance(name, str) or not isinstance(args, dict):
        raise _problem(
            f"must be a penalty such as {', '.join(known)}", "write sparsity=kl(0.05, 3)"
        )
    if name not in PENALTIES:
        raise _problem(
            f"must be one of {', '.join(known)}, got {name}",
            did_you_mean(name, PENALTIES, "penalties") or "write sparsity=kl(rho=0.05, beta=3)",
        )
    defaults = PENALTIES[name].defaults
    settings: dict[str, float] = {}
    for key, given in args.items():
        if key.isdigit():
            if int(key) >= len(defaults):
                raise _problem(f"{name} takes {', '.join(defaults)}, got too many values", None)
            key = list(defaults)[int(key)]
        elif key not in defaults:
            raise _problem(
                f"{name} has no setting '{key}'", did_you_mean(key, defaults, "settings")
            )
        if key in settings:
            raise _problem(f"{name}'s {key} is given twice", "keep one of them")
        if isinstance(given, bool) or not isinstance(given, (int, float)):
            raise _problem(f"{name}'s {key} must be a number, got {given}", f"write {key}=0.1")
        if not math.isfinite(given):
            raise _problem(f"{name}'s {key} must be finite, got {given}", "give a finite number")
        settings[key] = float(given)
    settings = {**defaults, **settings}
    if name == "kl" and not 0 < settings["rho"] < 1:
        raise _problem(
            f"kl's rho must lie in (0, 1), got {settings['rho']:g}",
            "rho is the mean activation each hidden unit aims at, e.g. kl(rho=0.05)",
        )
    for key in ("beta", "weight"):
        if key in settings and settings[key] < 0:
            raise _problem(
                f"{name}'s {key} must be >= 0, got {settings[key]:g}",
                "a negative weight would reward dense activations: give 0 or more",
            )
    return Sparsity(name=name, **settings)


SparsityOption = Annotated[Sparsity | None, BeforeValidator(_sparsity)]
