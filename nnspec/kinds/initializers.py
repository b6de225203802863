"""Weight initialisers: the `init=` option of the kinds with weights (dense, maxout, embedding,
conv, deconv, rnn, lstm, gru, attention, posenc, gcn, lif).

Each is PyTorch's `nn.init` function of the same name with its defaults, applied to every
weight of the layer (each parameter that is not a bias); biases start as the kind's default.
The values are drawn by nnspec's own generator (`nnspec.backends.init`), so they equal
PyTorch's in distribution, and both backends get the same arrays from one seed.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, NamedTuple

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from ..errors import did_you_mean
from .base import Options, Param


class InitRow(NamedTuple):
    """An initialiser's settings in positional order with their defaults, and what it is."""

    defaults: dict[str, float]
    doc: str


INITS: dict[str, InitRow] = {
    "xavier": InitRow(
        {}, "`xavier_uniform_`: U(-b, b), `b = sqrt(6 / (fan_in + fan_out))` (Glorot)."
    ),
    "kaiming": InitRow(
        {},
        "`kaiming_uniform_` with its defaults (a=0, mode=fan_in, nonlinearity=leaky_relu, so "
        "gain sqrt(2)): U(-b, b), `b = sqrt(6 / fan_in)` (He).",
    ),
    "normal": InitRow({"std": 1.0}, "`normal_(0, std)`: N(0, std²); `normal` alone is std 1."),
    "uniform": InitRow(
        {"a": 0.0, "b": 1.0}, "`uniform_(a, b)`: U(a, b); `uniform` alone is U(0, 1)."
    ),
    "zeros": InitRow({}, "`zeros_`: every weight 0."),
    "orthogonal": InitRow(
        {},
        "`orthogonal_`: the weight as a `[rows, rest]` matrix with orthonormal rows (or columns, "
        "when it has more rows than columns), from the QR factors of a N(0, 1) draw.",
    ),
}


class Init(Options):
    """An initialiser with its settings: `xavier`, `normal(0.02)`, `uniform(a=-0.1, b=0.1)`."""

    name: str
    std: float | None = None
    a: float | None = None
    b: float | None = None

    def __str__(self) -> str:
        settings = [f"{key}={getattr(self, key):g}" for key in INITS[self.name].defaults]
        return self.name + (f"({', '.join(settings)})" if settings else "")

    def param(self, param: Param) -> Param:
        """`param` (a weight `[out, in, *kernel]`) starting as this initialiser says; fans as
        PyTorch counts them: `fan_in = in * prod(kernel)`, `fan_out = out * prod(kernel)`."""
        shape = param.shape
        receptive = math.prod(shape[2:])
        fan_in = (shape[1] if len(shape) > 1 else 1) * receptive
        fan_out = shape[0] * receptive
        init: tuple = {
            "xavier": lambda: ("uniform", math.sqrt(6.0 / (fan_in + fan_out))),
            "kaiming": lambda: ("uniform", math.sqrt(6.0 / fan_in)),
            "normal": lambda: ("normal", self.std),
            "uniform": lambda: ("range", (self.a, self.b)),
            "zeros": lambda: ("constant", 0.0),
            "orthogonal": lambda: ("orthogonal", 1.0),
        }[self.name]()
        return Param(shape, param.trainable, param.buffer, init)

    def apply(self, params: dict[str, Param]) -> dict[str, Param]:
        """Every weight of a layer re-initialised; biases and buffers as they were."""
        return {
            name: param if param.buffer or "bias" in name else self.param(param)
            for name, param in params.items()
        }


def _problem(message: str, hint: str | None) -> PydanticCustomError:
    return PydanticCustomError("init_value", "{message}", {"message": message, "hint": hint})


def _number(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _problem(f"{name}'s {key} must be a number, got {value}", f"write {name}({key}=0.1)")
    if not math.isfinite(value):
        raise _problem(f"{name}'s {key} must be finite, got {value}", "give a finite number")
    return float(value)


def _init(value: Any) -> Any:
    """`xavier` -> Init('xavier'); ("normal", {"0": 0.02}) -> Init('normal', std=0.02);
    ("uniform", {"a": -1, "b": 1}) -> Init('uniform', a=-1.0, b=1.0)."""
    if isinstance(value, Init) or value is None:
        return value
    name, args = (
        (value, {}) if isinstance(value, str) else value if isinstance(value, tuple) else (None, {})
    )
    known = [f"{n}({', '.join(row.defaults)})" if row.defaults else n for n, row in INITS.items()]
    if not isinstance(name, str) or not isinstance(args, dict):
        raise _problem(f"must be an initialiser such as {', '.join(known)}", None)
    if name not in INITS:
        raise _problem(
            f"must be one of {', '.join(known)}, got {name}",
            did_you_mean(name, INITS, "initialisers"),
        )
    defaults = INITS[name].defaults
    settings: dict[str, Any] = {}
    for key, given in args.items():
        if key.isdigit():
            if int(key) >= len(defaults):
                takes = ", ".join(defaults) or "no settings"
                raise _problem(f"{name} takes {takes}, got too many values", None)
            key = list(defaults)[int(key)]
        elif key not in defaults:
            raise _problem(
                f"{name} has no setting '{key}'",
                did_you_mean(key, defaults, "settings") if defaults else f"write {name} alone",
            )
        if key in settings:
            raise _problem(f"{name}'s {key} is given twice", "keep one of them")
        settings[key] = _number(name, key, given)
    settings = {**defaults, **settings}
    if name == "normal" and settings["std"] < 0:
        raise _problem(
            f"normal's std must be >= 0, got {settings['std']:g}",
            "a standard deviation is not negative: normal(0.02)",
        )
    if name == "uniform" and settings["a"] > settings["b"]:
        raise _problem(
            f"uniform's a must be <= b, got a={settings['a']:g} > b={settings['b']:g}",
            f"write the lower bound first: uniform({settings['b']:g}, {settings['a']:g})",
        )
    return Init(name=name, **settings)


InitOption = Annotated[Init | None, BeforeValidator(_init)]
