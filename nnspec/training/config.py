"""A train section resolved: every setting with its default, and the command line's overrides applied."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..check import Program
from ..settings import TrainSpec

DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 0.01}
RULE_LR = 0.1  # a learning rule's step, when the section gives no optimizer(lr=...)


@dataclass(frozen=True)
class Config:
    """What a run does. `optimizer` and `schedule` are a name and its arguments."""

    loss: str
    optimizer: tuple[str, dict[str, float]]
    batch: int | None  # None: the full batch
    epochs: int
    schedule: tuple[str, dict[str, float]]
    rule: str
    seed: int
    metrics: tuple[str, ...]
    expects: tuple[tuple[str, str, float], ...] = field(default=())

    @property
    def lr(self) -> float:
        return self.optimizer[1]["lr"]

    def as_dict(self) -> dict:
        return {
            "loss": self.loss,
            "optimizer": {"name": self.optimizer[0], **self.optimizer[1]},
            "batch": "full" if self.batch is None else self.batch,
            "epochs": self.epochs,
            "schedule": {"name": self.schedule[0], **self.schedule[1]},
            "rule": self.rule,
            "seed": self.seed,
            "metrics": list(self.metrics),
            "expect": [f"{m} {op} {v:g}" for m, op, v in self.expects],
        }


def resolve(spec: TrainSpec, kind: str, overrides: dict | None = None) -> Config:
    """Settings with defaults: cross_entropy for classes and mse otherwise, adam, batch 32, 10 epochs.

    `kind` is the data's kind (classification, regression, ...); `overrides` may set epochs, lr,
    batch and seed (the command line's --epochs, --lr, --batch, --seed).
    """
    settings, overrides = (
        spec.settings,
        {k: v for k, v in (overrides or {}).items() if v is not None},
    )
    classifies = kind in ("classification", "graph")
    rule = settings.get("rule", "backprop")
    optimizer = _call(settings.get("optimizer", "adam" if rule == "backprop" else "sgd"))
    optimizer[1].setdefault("lr", DEFAULT_LR[optimizer[0]] if rule == "backprop" else RULE_LR)
    if "lr" in overrides:
        optimizer[1]["lr"] = float(overrides["lr"])
    batch = overrides.get("batch", settings.get("batch", 32))
    metrics = settings.get("metrics", ("loss", "accuracy") if classifies else ("loss",))
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    measured = tuple(
        dict.fromkeys(("loss", "train_loss", *metrics, *(m for m, _, _ in spec.expects)))
    )
    return Config(
        loss=settings.get(
            "loss", "cross_entropy" if classifies else "bce" if kind == "generative" else "mse"
        ),
        optimizer=(optimizer[0], {k: float(v) for k, v in optimizer[1].items()}),
        batch=None if batch == "full" else int(batch),
        epochs=int(overrides.get("epochs", settings.get("epochs", 10))),
        schedule=_call(settings.get("schedule", "constant")),
        rule=rule,
        seed=int(overrides.get("seed", settings.get("seed", 0))),
        metrics=measured,
        expects=spec.expects,
    )


def _call(value) -> tuple[str, dict]:
    """`adam` or ("adam", {"lr": 0.01}) -> ("adam", {...}); positional arguments are not allowed here."""
    if isinstance(value, str):
        return value, {}
    name, args = value
    return name, dict(args)


def final_activation(program: Program, output: str) -> str:
    """The activation that ends an output layer (`identity` when it has none)."""
    return program.layer(output).activation
