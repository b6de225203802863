"""The train-section checker: a `train` section's settings, checked and resolved.

`read_train` checks what a section writes, setting by setting (`CHECKS`, one checker per
setting), so that `nnspec check` finds a typo in a loss or an optimizer before anything trains;
`check_training` checks what the section asks of its network (E507, E508). `TrainSpec` is the
section as written; `TrainConfig`, a frozen pydantic model, is the section resolved, every setting
with its default (declared once, in its field). The data (`nnspec.data`) and training read the
resolved section through `train_config(spec)`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO, get_args, get_origin

import networkx as nx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import syntax as s
from .errors import Collector, Span, did_you_mean
from .reading import DATA_LIMIT, ReadError, open_regular, size_text
from .rules import (
    BACKPROP,
    RULES,
    PretrainOptions,
    RuleOptions,
    rule_metrics,
    rule_misfit,
    rule_names,
)

if TYPE_CHECKING:
    from .program import Program

DATASETS = (
    "and",
    "or",
    "nand",
    "nor",
    "xor",
    "not",
    "digits",
    "digits_by_class",
    "digits_nudged",
    "shapes",
    "sine",
    "mackey_glass",
    "adding",
    "majority",
    "karate",
    "moons",
    "spirals",
    "ring",
    "circles",
    "blobs",
    "associations",
    "encoder",
    "recall",
    "reverse",
    "weather",
    "patterns",
    "copy",
)
LOSSES = ("sse", "mse", "rmse", "cross_entropy", "bce", "margin")
# every optimizer also takes clip=N: the gradients' norm, over all the weights it moves, scaled
# down to N before each step (torch.nn.utils.clip_grad_norm_, Keras's global_clipnorm)
OPTIMIZERS = {
    "sgd": ("lr", "momentum", "nesterov", "weight_decay", "clip"),
    "adam": ("lr", "beta1", "beta2", "eps", "weight_decay", "clip"),
    "adamw": ("lr", "beta1", "beta2", "eps", "weight_decay", "clip"),
    "rmsprop": ("lr", "alpha", "eps", "momentum", "weight_decay", "clip"),
}
SCHEDULES = {
    "constant": (),
    "step": ("every", "gamma"),
    "exponential": ("gamma",),
    "cosine": ("epochs", "min_lr"),
    "warmup": ("epochs",),
}
METRICS = tuple(
    dict.fromkeys(
        (
            "loss",
            "accuracy",
            "train_loss",
            "train_accuracy",
            "mae",
            "rmse",
            "r2",
            "nrmse",
            "kl",
            "coverage",
            "factor_correlation",  # factors = LAYER: each designated unit against its factor
            "bit_errors",
            *rule_metrics(),  # those a learning rule measures itself (quantization error, ...)
        )
    )
)  # each once: a rule may measure one of the others (kl)
FILE_DATA = {"csv": ("path", "target"), "npz": ("path",)}
# built-in datasets that take settings, `data = patterns(count=8, flips=0.1)`: their names, in
# positional order, each a whole number from 1 up, or a fraction from 0 to 1 (`FRACTIONS`)
GENERATED_DATA = {"patterns": ("count", "units", "flips", "cues")}
GENERATED_DATA["mackey_glass"] = ("length", "tau", "units")
GENERATED_DATA["copy"] = ("count", "length", "min_length", "units")
FRACTIONS = {"flips"}
CLASSIFYING = ("classification", "graph")  # the data kinds whose targets are classes


@dataclass(frozen=True)
class TrainSpec:
    """A train section after checking, as written: the settings it gives as plain values (a
    setting it leaves out is absent: `train_config` gives its default), its expectations, and
    the span of each setting's value."""

    network: str | None
    settings: dict[str, object]
    expects: tuple[tuple[str, str, float], ...]
    span: Span
    spans: dict[str, Span] = field(default_factory=dict, compare=False, repr=False)


# ---- the section resolved -------------------------------------------------------------------
Call = tuple[str, dict[str, Any]]  # a name and its arguments: ("sgd", {"lr": 0.1})
DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 0.01}
RULE_LR = 0.1  # a learning rule's step, when the section gives no optimizer(lr=...)
LARGEST_LR = 3.4028234663852886e38  # float32's largest number: a rate above it overflows a step


def _sees_data(known: dict) -> bool:
    """Whether the section's rule takes all the training data in one step (least squares)."""
    rule = RULES.get(known.get("rule", BACKPROP))
    return rule is not None and rule.sees == "data"


def _loss_for(known: dict) -> str | dict[str, str]:
    """cross_entropy for classes (a graph's nodes too), bce for a GAN, mse otherwise; for
    several outputs {}: each output's loss follows from it (`output_loss`)."""
    kind = known.get("data_kind")
    if kind == SEVERAL:
        return {}
    return "cross_entropy" if kind in CLASSIFYING else "bce" if kind == "generative" else "mse"


SEVERAL = "outputs"  # the data kind of a network with several outputs, a target for each


def output_loss(config: TrainConfig, name: str, activation: str | None, classes: bool) -> str:
    """The loss of output `name` of several: the section's (one loss for all, or this output's
    in a dict), else from its activation (softmax: cross_entropy, sigmoid: bce), else
    cross_entropy for class targets and mse for values."""
    if isinstance(config.loss, str):
        return config.loss
    if name in config.loss:
        return config.loss[name]
    if activation in ("softmax", "sigmoid"):
        return "cross_entropy" if activation == "softmax" else "bce"
    return "cross_entropy" if classes else "mse"


def input_copies(config: TrainConfig) -> tuple[str, ...]:
    """The outputs that `target = {OUTPUT: input}` trains to reproduce the input (() for
    `target = input`, which is every output's)."""
    return tuple(config.target) if isinstance(config.target, dict) else ()


def reproduces_input(config: TrainConfig, program: Program) -> bool:
    """Whether every output of `program` reproduces the input (`target = input`, or a
    `target = {...}` that names each)."""
    return config.target == "input" or {o.name for o in program.outputs} <= set(
        input_copies(config)
    )


def _optimizer_for(known: dict) -> Call:
    """adam for backpropagation; plain sgd for a learning rule, whose lr is the rule's step."""
    return ("adam" if known.get("rule", BACKPROP) == BACKPROP else "sgd"), {}


def _batch_for(known: dict) -> int | None:
    """32, or the full batch for a rule that sees all the data at once."""
    return None if _sees_data(known) else 32


def _epochs_for(known: dict) -> int:
    """10, or 1 for a rule that sees all the data at once."""
    return 1 if _sees_data(known) else 10


def _metrics_for(known: dict) -> tuple[str, ...]:
    """loss, and accuracy for classes."""
    return ("loss", "accuracy") if known.get("data_kind") in CLASSIFYING else ("loss",)


class TrainConfig(BaseModel):
    """A train section resolved: every setting, as written or by its default, and what a run
    measures. docs/training.md lists the settings; the fields below hold their defaults (a
    default that follows the data's kind or the rule is the function named in its field).

    `data_kind` is the data's kind (`Data.kind`: classification, regression, reconstruction,
    graph, generative, or outputs: several, a target for each), which the loss and the metrics
    follow; None while the data are not read yet (`load_data` reads the section before it knows
    them). `optimizer` and `schedule` are a
    name and its arguments (the optimizer's always with its `lr`); `batch` None is the full
    batch; `metrics` is every metric a run measures: loss, train_loss, the section's metrics (or
    its data kind's) and those its expectations name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_kind: str | None = None
    data: str | Call | None = None  # None: the section names no data (load_data says so)
    split: float = 0.0
    # None: the data's own targets; "input": reproduce the input; {OUTPUT: "input"}: the outputs
    # named reproduce it, the others take the data's own
    target: Literal["input"] | dict[str, Literal["input"]] | None = None
    generator: str | None = None
    discriminator: str | None = None
    latent: int | None = None  # None: the generator's input decides
    rule: str = BACKPROP
    # the rule's settings, `rule = NAME(option=value)`, as written (its `options` model gives the
    # defaults: `rule_settings`)
    rule_options: dict[str, Any] = {}
    # pretrain = cd(...): each rbm trained by contrastive divergence before backpropagation
    # (training/pretrain.py), its settings as written (`pretrain_settings` fills in defaults)
    pretrain: tuple[str, dict[str, Any]] | None = None
    expects: tuple[tuple[str, str, float], ...] = ()
    loss: Literal[LOSSES] | dict[str, Literal[LOSSES]] = Field(default_factory=_loss_for)
    loss_weights: dict[str, float] = {}  # by output name; an output not named weighs 1
    optimizer: tuple[str, dict[str, float]] = Field(
        default_factory=_optimizer_for, validate_default=True
    )
    batch: int | None = Field(default_factory=_batch_for)
    epochs: int = Field(default_factory=_epochs_for)
    schedule: tuple[str, dict[str, int | float]] = ("constant", {})
    seed: int = 0
    # patience(N, on=METRIC, min_delta=D): stop when METRIC has not improved by more than D for
    # N epochs, keeping the best epoch's weights; None: train every epoch
    early_stop: tuple[int, str, float] | None = None
    metrics: tuple[str, ...] = Field(default_factory=_metrics_for, validate_default=True)
    classes: tuple[str, ...] | None = None  # the class labels in order (None: sorted, numbers)
    normalize: bool = False  # standardise every input feature by the training split's statistics
    # factors = LAYER: Kulkarni's procedure (training/factors.py), LAYER's units carry the data's
    # known factors; factor_weight scales the gradient that pulls the clamped units to their mean
    factors: str | None = None
    factor_weight: float = 1.0

    @field_validator("classes", mode="before")
    @classmethod
    def _labels(cls, value):
        return None if value is None else tuple(class_label(item) for item in value)

    @model_validator(mode="before")
    @classmethod
    def _rule_called(cls, data):
        """`rule = NAME(options)` as it comes from the section: the name and its options apart."""
        rule = data.get("rule") if isinstance(data, dict) else None
        if isinstance(rule, tuple):
            data = {**data, "rule": rule[0], "rule_options": dict(rule[1])}
        return data

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        if value not in rule_names():
            raise ValueError(f"unknown rule {value!r}")
        return value

    @field_validator("pretrain", mode="before")
    @classmethod
    def _pretrain_called(cls, value):
        """`pretrain = cd` as `pretrain = cd()`."""
        return (value, {}) if isinstance(value, str) else value

    @property
    def pretrain_settings(self) -> PretrainOptions | None:
        """The pretraining stage's settings, each as written or by its default (None: none)."""
        return None if self.pretrain is None else PretrainOptions(**self.pretrain[1])

    @property
    def rule_settings(self) -> RuleOptions:
        """The rule's options, each as written or by its default."""
        return RULES[self.rule].options(**self.rule_options)

    @field_validator("optimizer", mode="before")
    @classmethod
    def _with_lr(cls, value, info: ValidationInfo) -> Call:
        name, args = (value, {}) if isinstance(value, str) else value
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}")
        args = {key: float(number) for key, number in args.items()}
        rule = info.data.get("rule", BACKPROP)
        args.setdefault("lr", DEFAULT_LR[name] if rule == BACKPROP else RULE_LR)
        return name, args

    @field_validator("schedule", mode="before")
    @classmethod
    def _called(cls, value) -> Call:
        return (value, {}) if isinstance(value, str) else value

    @field_validator("early_stop", mode="before")
    @classmethod
    def _patience(cls, value):
        if value is None or isinstance(value, tuple) and len(value) == 3:
            return value
        args = data_file_args_like(value[1], EARLY_STOP)
        return (
            int(args["patience"]),
            str(args.get("on", "loss")),
            float(args.get("min_delta", 0.0)),
        )

    @field_validator("batch", mode="before")
    @classmethod
    def _full(cls, value):
        return None if value == "full" else value

    @field_validator("metrics", mode="before")
    @classmethod
    def _measured(cls, value, info: ValidationInfo) -> tuple[str, ...]:
        named = (value,) if isinstance(value, str) else tuple(value)
        expected = (metric for metric, _, _ in info.data.get("expects", ()))
        watched = info.data.get("early_stop")
        watched = (watched[1],) if watched else ()
        return tuple(dict.fromkeys(("loss", "train_loss", *named, *expected, *watched)))

    @property
    def lr(self) -> float:
        return self.optimizer[1]["lr"]

    def as_dict(self) -> dict:
        """The run's settings as settings.json writes them."""
        return {
            "loss": self.loss,
            **({"loss_weights": self.loss_weights} if self.loss_weights else {}),
            "optimizer": {"name": self.optimizer[0], **self.optimizer[1]},
            "batch": "full" if self.batch is None else self.batch,
            "epochs": self.epochs,
            "schedule": {"name": self.schedule[0], **self.schedule[1]},
            "rule": {"name": self.rule, **self.rule_options} if self.rule_options else self.rule,
            **(
                {"pretrain": {"name": self.pretrain[0], **self.pretrain[1]}}
                if self.pretrain
                else {}
            ),
            "seed": self.seed,
            **(
                {"early_stop": dict(zip(EARLY_STOP, self.early_stop, strict=True))}
                if self.early_stop
                else {}
            ),
            "metrics": list(self.metrics),
            "expect": [f"{m} {op} {v:g}" for m, op, v in self.expects],
        }


def train_config(
    spec: TrainSpec,
    data_kind: str | None = None,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    batch: int | None = None,
    seed: int | None = None,
) -> TrainConfig:
    """`spec` resolved for data of `data_kind`. `epochs`, `lr`, `batch` and `seed` replace the
    section's when given (the command line's --epochs, --lr, --batch, --seed); `lr` is the
    optimizer's, whichever optimizer the section names or defaults to."""
    given = {"epochs": epochs, "batch": batch, "seed": seed}
    config = TrainConfig(
        data_kind=data_kind,
        expects=spec.expects,
        **{**spec.settings, **{key: value for key, value in given.items() if value is not None}},
    )
    if lr is None:
        return config
    name, args = config.optimizer
    return config.model_copy(update={"optimizer": (name, {**args, "lr": float(lr)})})


# ---- checking what a section writes ---------------------------------------------------------
def read_train(train: s.Train, networks: list[str], errors: Collector) -> TrainSpec | None:
    """Validate one train section's names and values; report problems into `errors`."""
    before = len(errors.errors)
    network = train.network.text if train.network else None
    if network is not None and network not in networks:
        errors.add(
            "E504",
            f"train names an unknown network '{network}'",
            train.network.span,
            did_you_mean(network, networks, "networks"),
        )
    settings, spans = {}, {}
    for setting in train.settings:
        key = setting.key.text
        if key not in CHECKS:
            errors.add(
                "E501",
                f"unknown train setting '{key}'",
                setting.key.span,
                did_you_mean(key, SETTINGS, "settings"),
            )
            continue
        if key in settings:
            errors.add(
                "E208", f"setting '{key}' is given twice", setting.key.span, "keep one of them"
            )
            continue
        settings[key], spans[key] = s.plain(setting.value), setting.value.span
        if isinstance(setting.value, s.DictValue):  # each name's span, to point at a misfit
            spans.update({f"{key}.{i.key.text}": i.key.span for i in setting.value.items})
        CHECKS[key](key, setting.value, networks, errors)
    data = next((setting.value for setting in train.settings if setting.key.text == "data"), None)
    if (
        isinstance(data, s.Call)
        and data.name.text in FILE_DATA
        and all(arg.key is None or arg.key.text in FILE_DATA[data.name.text] for arg in data.args)
    ):  # else E502 said it
        settled = len(errors.errors)
        _check_data_file(data, errors)
        # a data file that is missing or unreadable leaves the settings good: what they ask of
        # the network is checked still, so that `nnspec check` reports those mistakes too
        before += len(errors.errors) - settled
    if "generator" in settings or "discriminator" in settings:
        if not ("generator" in settings and "discriminator" in settings):
            errors.add(
                "E502",
                "a generative adversarial pair needs both generator = G and discriminator = D",
                train.span,
            )
    elif network is None and len(networks) > 1:
        errors.add(
            "E504",
            f"this file has {len(networks)} networks; say which one this section trains",
            train.span,
            f"write 'train {networks[0]} {{ ... }}'",
        )
    expects = []
    for expect in train.expects:
        metric = expect.metric.text
        bare = metric.rpartition(".")[2]  # OUTPUT.metric: the output is checked with the network
        if bare not in METRICS:
            errors.add(
                "E503",
                f"unknown metric '{bare}'",
                expect.metric.span,
                did_you_mean(bare, METRICS, "metrics"),
            )
        value = s.plain(expect.value)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.add(
                "E502",
                f"an expectation compares with a number, not {s.show(expect.value)}",
                expect.value.span,
            )
            continue
        expects.append((metric, expect.op, float(value)))
        spans.setdefault(f"expect {metric}", expect.metric.span)
    if len(errors.errors) > before:
        return None
    return TrainSpec(network, settings, tuple(expects), train.span, spans)


# A checker: (setting, its value, the file's networks, errors) -> None; it reports into errors.
Check = Callable[[str, s.Value, list[str], Collector], None]


def _dataset(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    plain = s.plain(value)
    if isinstance(value, s.Call):
        generated = value.name.text in GENERATED_DATA
        _check_call(value, FILE_DATA | GENERATED_DATA, "data sources", errors, numbers=generated)
        if generated:
            _check_generated(value, errors)
    elif not isinstance(plain, str) or plain not in DATASETS:
        errors.add(
            "E502",
            f"unknown dataset '{plain}'"
            if isinstance(value, s.Symbol)
            else f"unknown dataset {s.show(value)}",
            value.span,
            did_you_mean(str(plain), DATASETS, "datasets")
            + '; or read a file: csv("file.csv", target="label")',
        )


def _check_generated(call: s.Call, errors: Collector) -> None:
    """`patterns(count=8, units=100, flips=0.1, cues=1)`: counts are whole numbers from 1 up,
    fractions lie from 0 to 1, and no more values than settings (E551)."""
    name, names = call.name.text, GENERATED_DATA[call.name.text]
    for i, arg in enumerate(call.args):
        key = arg.key.text if arg.key else names[i] if i < len(names) else None
        value = s.plain(arg.value)
        if key is None:
            errors.add(
                "E551",
                f"{name} takes {len(names)} values at most: {', '.join(names)}",
                arg.value.span,
                f"write {name}({', '.join(f'{n}=...' for n in names)})",
            )
        elif key not in names or not isinstance(value, (int, float)):
            continue  # E502 said it
        elif isinstance(value, bool):
            errors.add(
                "E551",
                f"{key} of {name} is a number, not {str(value).lower()}",
                arg.value.span,
                f"write {key}={0.1 if key in FRACTIONS else 8}",
            )
        elif key in FRACTIONS and not 0 <= value <= 1:
            errors.add(
                "E551",
                f"{key} of {name} is the fraction of values flipped, from 0 to 1, not {value:g}",
                arg.value.span,
                f"write {key}=0.1 to flip a tenth of each pattern's values",
            )
        elif key not in FRACTIONS and (value != int(value) or value < 1):
            errors.add(
                "E551",
                f"{key} of {name} is a whole number from 1 up, not {value:g}",
                arg.value.span,
                f"write {key}={max(1, round(value))}",
            )


def generated_args(name: str, args: dict[str, object]) -> dict[str, object]:
    """The settings of a generated dataset by name (positional ones, keyed "0", "1", ..., take
    GENERATED_DATA's names in order), counts as ints and fractions as floats."""
    names = GENERATED_DATA[name]
    named = {names[int(k)] if k.isdigit() else k: v for k, v in args.items()}
    return {k: float(v) if k in FRACTIONS else int(v) for k, v in named.items()}


def _loss(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    """One loss for every output, or a loss per output: {digit: cross_entropy, amount: mse}
    (the names are checked against the network's outputs by `check_training`)."""
    if not isinstance(value, s.DictValue):
        _choice(key, value, LOSSES, errors)
        return
    _check_dict(key, value, errors)
    for item in value.items:
        _choice(key, item.value, LOSSES, errors)


def _loss_weights(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    """A weight per output, {digit: 1, amount: 0.5}: the loss is the weighted sum."""
    if not isinstance(value, s.DictValue):
        errors.add(
            "E502",
            f"loss_weights gives a weight per output, not {s.show(value)}",
            value.span,
            "write loss_weights = {OUTPUT: 1, OTHER: 0.5}, naming the network's outputs",
        )
        return
    _check_dict(key, value, errors)
    for item in value.items:
        plain = s.plain(item.value)
        if not isinstance(plain, (int, float)) or isinstance(plain, bool) or plain < 0:
            errors.add(
                "E502",
                f"a loss weight is a number >= 0, not {s.show(item.value)}",
                item.value.span,
                f"write {item.key.text}: 0.5",
            )


EARLY_STOP = ("patience", "on", "min_delta")


def data_file_args_like(args: dict[str, object], names: tuple[str, ...]) -> dict[str, object]:
    """A call's arguments by name: positional ones ("0", "1") take `names` in order."""
    return {
        names[int(key)] if key.isdigit() and int(key) < len(names) else key: value
        for key, value in args.items()
    }


def _early_stop(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    """patience(N, on=METRIC, min_delta=D): N a whole number >= 1, METRIC a metric (a name, or
    a string such as "digit.accuracy"; default loss), D a number >= 0 (default 0)."""
    hint = "write early_stop = patience(5), or patience(5, on=accuracy, min_delta=0.001)"
    if not (isinstance(value, s.Call) and value.name.text == "patience"):
        errors.add("E502", f"early_stop is patience(N, ...), not {s.show(value)}", value.span, hint)
        return
    given = {arg.key.text if arg.key else str(i): arg for i, arg in enumerate(value.args)}
    args = data_file_args_like(given, EARLY_STOP)
    for name, arg in args.items():
        if name not in EARLY_STOP:
            errors.add(
                "E502",
                f"patience has no setting '{name}'"
                if not name.isdigit()
                else "patience takes 3 values at most",
                (arg.key or arg.value).span,
                did_you_mean(name, EARLY_STOP, "settings") if not name.isdigit() else hint,
            )
            return
    patience = args.get("patience")
    if patience is None or not is_whole_number_at_least(s.plain(patience.value), 1):
        errors.add(
            "E502",
            "patience needs a whole number of epochs >= 1"
            + (f", not {s.show(patience.value)}" if patience else ""),
            (patience.value if patience else value).span,
            hint,
        )
    on = args.get("on")
    if on is not None:
        metric = s.plain(on.value)
        bare = str(metric).rpartition(".")[2]
        if not isinstance(on.value, (s.Symbol, s.String)) or bare not in METRICS:
            errors.add(
                "E503",
                f"early_stop watches an unknown metric {s.show(on.value)}",
                on.value.span,
                did_you_mean(bare, METRICS, "metrics") or f"metrics: {', '.join(METRICS)}",
            )
    delta = args.get("min_delta")
    if delta is not None:
        number = s.plain(delta.value)
        if not isinstance(number, (int, float)) or isinstance(number, bool) or number < 0:
            errors.add(
                "E502",
                f"min_delta is a number >= 0, not {s.show(delta.value)}",
                delta.value.span,
                hint,
            )


def _check_dict(key: str, value: s.DictValue, errors: Collector) -> None:
    """A dict of a train setting names each output once, and at least one."""
    if not value.items:
        errors.add("E502", f"{key} names no output", value.span, "write {OUTPUT: ...}")
    seen = set()
    for item in value.items:
        if item.key.text in seen:
            errors.add(
                "E208",
                f"{key} names output '{item.key.text}' twice",
                item.key.span,
                "keep one of them",
            )
        seen.add(item.key.text)


def _called(table: dict[str, tuple[str, ...]]) -> Check:
    """A setting that names an entry of `table`, alone or called with its arguments."""

    def check(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
        if isinstance(value, s.Symbol):
            _choice(key, value, tuple(table), errors)
        elif isinstance(value, s.Call):
            _check_call(value, table, f"{key}s", errors, numbers=True)
        else:
            errors.add(
                "E502",
                f"{key} must be a name such as {next(iter(table))}(...), not {s.show(value)}",
                value.span,
            )

    return check


def _rule(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    """`rule = NAME`, or `rule = NAME(option=value, ...)` with the options its declaration takes
    (E510 for one it does not know or a value it refuses)."""
    if not isinstance(value, s.Call):
        _choice(key, value, rule_names(), errors)
        return
    name = value.name.text
    if name not in rule_names():
        errors.add(
            "E502",
            f"unknown rule '{name}'",
            value.name.span,
            did_you_mean(name, rule_names(), "rules"),
        )
        return
    model = RULES[name].options if name in RULES else RuleOptions
    known = tuple(model.model_fields)
    given = {}
    for arg in value.args:
        if arg.key is None or arg.key.text not in known:
            near = did_you_mean(arg.key.text, known, "settings") if arg.key is not None else None
            errors.add(
                "E510",
                f"rule {name} has no setting "
                + ("given by position" if arg.key is None else f"'{arg.key.text}'"),
                (arg.key or arg.value).span,
                near
                or (
                    f"it takes {', '.join(known)}: write {name}({known[0]}=...)"
                    if known
                    else f"it takes no settings: write rule = {name}"
                ),
            )
            continue
        given[arg.key.text] = arg
    for option, arg in given.items():
        try:
            model(**{option: s.plain(arg.value)})
        except ValidationError as error:
            problem = error.errors()[0]["msg"]
            errors.add(
                "E510",
                f"rule {name} cannot take {option}={s.show(arg.value)}: {problem[:1].lower()}"
                + problem[1:],
                arg.value.span,
                f"{option} of {name}: {_described(model, option)}",
            )


def _described(model: type[RuleOptions], option: str) -> str:
    """An option's type and default, for E510's hint."""
    info = model.model_fields[option]
    if get_origin(info.annotation) is Literal:
        shown = "one of " + ", ".join(str(choice) for choice in get_args(info.annotation))
    else:
        shown = getattr(info.annotation, "__name__", str(info.annotation))
    return f"{shown}, {info.description + ', ' if info.description else ''}default {info.default!r}"


PRETRAIN_RULES = ("cd",)  # the rules a pretraining stage may run


def _pretrain(value: s.Value, errors: Collector) -> None:
    """`pretrain = cd` or `pretrain = cd(k=1, persistent=false, lr=0.1, epochs=10, batch=10)`:
    E560 for another rule, E561 for a setting it does not take, E562 for a value it refuses."""
    name = value.name if isinstance(value, s.Symbol) else None
    if isinstance(value, s.Call):
        name = value.name.text
    if name not in PRETRAIN_RULES:
        shown = s.show(value) if name is None else f"'{name}'"
        errors.add(
            "E560",
            f"pretrain runs contrastive divergence on each rbm, not {shown}",
            value.name.span if isinstance(value, s.Call) else value.span,
            "write pretrain = cd(lr=0.06, epochs=10, batch=10)",
        )
        return
    known = tuple(PretrainOptions.model_fields)
    for arg in value.args if isinstance(value, s.Call) else ():
        if arg.key is None or arg.key.text not in known:
            what = "a value by position" if arg.key is None else f"'{arg.key.text}'"
            errors.add(
                "E561",
                f"pretrain = cd takes no setting {what}",
                (arg.key or arg.value).span,
                (did_you_mean(arg.key.text, known, "settings") if arg.key else None)
                or f"name each setting: {', '.join(f'{k}=...' for k in known)}",
            )
            continue
        try:
            PretrainOptions(**{arg.key.text: s.plain(arg.value)})
        except ValidationError as error:
            problem = error.errors()[0]["msg"]
            errors.add(
                "E562",
                f"pretrain = cd cannot take {arg.key.text}={s.show(arg.value)}: "
                + problem[:1].lower()
                + problem[1:],
                arg.value.span,
                f"{arg.key.text}: {_described(PretrainOptions, arg.key.text)}",
            )


def _batch(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    plain = s.plain(value)
    if plain != "full" and not is_whole_number_at_least(plain, 1):
        errors.add(
            "E502",
            f"batch must be full or a whole number >= 1, not {s.show(value)}",
            value.span,
            "full = batch gradient descent, 1 = stochastic, N = mini-batches of N",
        )


def whole_number_at_least(least: int) -> Check:
    """A whole number of at least `least`."""

    def check(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
        plain = s.plain(value)
        if not is_whole_number_at_least(plain, least):
            decimal = isinstance(plain, float) and plain.is_integer() and plain >= least
            errors.add(
                "E502",
                f"{key} must be a whole number >= {least}, not {s.show(value)}",
                value.span,
                f"write it as {int(plain)}: a decimal point or an exponent (1e3) makes a "
                "decimal number"
                if decimal
                else None,
            )

    return check


def _split(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    plain = s.plain(value)
    if not isinstance(plain, (int, float)) or isinstance(plain, bool) or not 0 <= plain < 1:
        errors.add(
            "E502",
            f"split must be a fraction from 0 up to (not including) 1, not {s.show(value)}",
            value.span,
            "split = 0.2 holds out a fifth of the data for evaluation",
        )


def _target(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    """`target = input`, or per output, `target = {recon: input}`: the outputs named reproduce
    the input, the others take the data's targets (the names are checked against the network's
    outputs by `check_training`)."""
    if isinstance(value, s.DictValue):
        _check_dict(key, value, errors)
        for item in value.items:
            if s.plain(item.value) != "input":
                errors.add(
                    "E502",
                    f"an output's target can only be 'input' (to reproduce the input), not "
                    f"{s.show(item.value)}",
                    item.value.span,
                    f"write {item.key.text}: input, or leave the output out to train it on the "
                    "data's targets",
                )
        return
    if s.plain(value) != "input":
        errors.add(
            "E502",
            f"target can only be 'input' (to reproduce the input), not {s.show(value)}",
            value.span,
            "write target = input, or target = {OUTPUT: input} for one output of several",
        )


def _network(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    if s.plain(value) not in networks:
        errors.add(
            "E504",
            f"{key} names an unknown network {s.show(value)}",
            value.span,
            did_you_mean(str(s.plain(value)), networks, "networks"),
        )


def _metrics(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    for item in value.items if isinstance(value, s.ListValue) else (value,):
        if s.plain(item) not in METRICS:
            errors.add(
                "E503",
                f"unknown metric '{s.plain(item)}'",
                item.span,
                did_you_mean(str(s.plain(item)), METRICS, "metrics"),
            )


def _flag(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    if not isinstance(s.plain(value), bool):
        errors.add("E502", f"{key} is true or false, not {s.show(value)}", value.span)


def class_label(item) -> str:
    """A stated class as its label's text: a name, a string, or a whole number (`3`)."""
    return str(item)


def _classes(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    """classes = [setosa, versicolor, "Iris virginica", 3]: names, strings or whole numbers,
    each once (E541)."""
    items = value.items if isinstance(value, s.ListValue) else ()
    plain = [s.plain(item) for item in items]
    if not items or any(
        isinstance(p, bool) or not isinstance(p, (str, int)) or p == "" for p in plain
    ):
        errors.add(
            "E502",
            f"classes is a list of the class labels, names or whole numbers, not {s.show(value)}",
            value.span,
            "write the labels in the order of the output's units: classes = [cat, dog, bird]",
        )
        return
    seen: dict[str, int] = {}
    for item, label in zip(items, plain, strict=True):
        if str(label) in seen:
            errors.add(
                "E541",
                f"class '{label}' is listed twice in classes",
                item.span,
                "list each label once: its place is its class (its output unit)",
            )
        seen.setdefault(str(label), len(seen))


def _optimizer(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    """`optimizer = NAME(...)`, a name of OPTIMIZERS with its settings; lr above 0 and within
    float32 (LARGEST_LR), momentum 0 or more, clip=N above 0."""
    _called(OPTIMIZERS)(key, value, networks, errors)
    if not isinstance(value, s.Call):
        return
    for arg in value.args:
        plain = s.plain(arg.value)
        number = isinstance(plain, (int, float)) and not isinstance(plain, bool)
        if arg.key and arg.key.text == "lr" and number and not 0 < plain <= LARGEST_LR:
            errors.add(
                "E502",
                f"lr must be a number above 0 (at most {LARGEST_LR:.3g}), not {s.show(arg.value)}",
                arg.value.span,
                "the learning rate scales each step down the gradient: try 1e-3 for adam, 0.1 "
                "for sgd",
            )
        if arg.key and arg.key.text == "momentum" and number and plain < 0:
            errors.add(
                "E502",
                f"momentum must be 0 or more, not {s.show(arg.value)}",
                arg.value.span,
                "momentum=0.9 keeps 90% of the last step's velocity; 0 is plain sgd",
            )
        if arg.key and arg.key.text == "clip" and isinstance(plain, (int, float)) and plain <= 0:
            errors.add(
                "E502",
                f"clip must be a number above 0, not {s.show(arg.value)}",
                arg.value.span,
                "clip=1 scales the gradients down, before each step, to a norm of 1 at most "
                "(over all the weights together); leave it out for no clipping",
            )


CHECKS: dict[str, Check] = {
    "data": _dataset,
    "split": _split,
    "loss": _loss,
    "loss_weights": _loss_weights,
    "optimizer": _optimizer,
    "batch": _batch,
    "epochs": whole_number_at_least(0),
    "schedule": _called(SCHEDULES),
    "rule": _rule,
    "pretrain": lambda key, value, networks, errors: _pretrain(value, errors),
    "seed": whole_number_at_least(0),
    "metrics": _metrics,
    "target": _target,
    "generator": _network,
    "discriminator": _network,
    "latent": whole_number_at_least(1),
    "classes": _classes,
    "normalize": _flag,
    "early_stop": _early_stop,
    "factors": lambda key, value, networks, errors: _factors(value, errors),
    "factor_weight": lambda key, value, networks, errors: _factor_weight(value, errors),
}
SETTINGS = tuple(CHECKS)


def _factors(value: s.Value, errors: Collector) -> None:
    """`factors = LAYER`: the name of the latent layer whose units carry the data's factors."""
    if not isinstance(value, s.Symbol) or not isinstance(s.plain(value), str):
        errors.add(
            "E421",
            f"factors names the latent layer whose units carry the data's factors, not "
            f"{s.show(value)}",
            value.span,
            "write factors = z (the VAE's sample layer, or a dense layer of identity units)",
        )


def _factor_weight(value: s.Value, errors: Collector) -> None:
    plain = s.plain(value)
    if not isinstance(plain, (int, float)) or isinstance(plain, bool) or not plain > 0:
        errors.add(
            "E421",
            f"factor_weight must be a number above 0, not {s.show(value)}",
            value.span,
            "factor_weight = 1 scales the pull of the clamped units towards their batch mean",
        )


def _check_factors(program: Program, spec: TrainSpec, config: TrainConfig, errors) -> None:
    """`factors = LAYER` (E420): the code of one network trained by backpropagation, without
    time: a sample layer or a dense layer of identity units, read by one layer with weights
    (dense, conv, deconv) that reads nothing else, where the clamp acts on either backend."""
    where = spec.spans.get("factors", spec.span)
    names = [layer.name for layer in program.layers]
    if config.factors not in names:
        errors.add(
            "E420",
            f"factors = {config.factors}: network '{program.name}' has no layer '{config.factors}'",
            where,
            did_you_mean(config.factors, names, "layers"),
        )
        return
    layer = program.layer(config.factors)
    readers = [
        other for other in program.layers if any(link.source == layer.name for link in other.inputs)
    ]
    why = None
    if config.rule != BACKPROP or config.discriminator is not None:
        why = "Kulkarni's procedure trains one network by backpropagation"
    elif program.timed:
        why = "the network steps through time, and the factors belong to whole examples"
    elif layer.kind.name != "sample" and (
        layer.kind.name != "dense" or layer.activation not in ("identity", "linear")
    ):
        why = (
            f"its units carry the factors as they are, so '{layer.name}' must be a sample layer "
            "or a dense layer of identity units, and it is a "
            + (f"dense layer with act={layer.activation}" if layer.kind.name == "dense" else "")
            + (f"{layer.kind.name} layer" if layer.kind.name != "dense" else "")
        )
    elif (
        len(readers) != 1
        or len(readers[0].inputs) != 1
        or readers[0].kind.name not in ("dense", "conv", "deconv")
    ):
        why = (
            f"the clamp acts on the code as its reader receives it, so '{layer.name}' must feed "
            "one dense, conv or deconv layer that reads nothing else, and it feeds "
            + (", ".join(f"'{r.name}' ({r.kind.name})" for r in readers) or "none")
        )
    if why:
        errors.add(
            "E420",
            f"factors = {config.factors} cannot train network '{program.name}': {why}",
            where,
            "name the code layer (a VAE's sample layer, z) that feeds the decoder's first "
            "dense layer, and train by backpropagation",
        )


def is_whole_number_at_least(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _choice(key: str, value: s.Value, choices, errors: Collector) -> None:
    plain = s.plain(value)
    if not isinstance(value, s.Symbol):
        errors.add(
            "E502",
            f"{key} is one name, not {s.show(value)}",
            value.span,
            f"write one of: {', '.join(choices)}",
        )
    elif plain not in choices:
        errors.add(
            "E502",
            f"unknown {key} '{plain}'",
            value.span,
            did_you_mean(str(plain), choices, f"{key}es" if key == "loss" else f"{key}s"),
        )


def _check_call(
    call: s.Call,
    table: dict[str, tuple[str, ...]],
    what: str,
    errors: Collector,
    numbers: bool = False,
) -> None:
    """`name(key=value, ...)`: a name of `table`, and keys it has; `numbers`: each value is a
    number (or true or false)."""
    name = call.name.text
    if name not in table:
        errors.add(
            "E502", f"unknown {what[:-1]} '{name}'", call.name.span, did_you_mean(name, table, what)
        )
        return
    for arg in call.args:
        if arg.key is not None and arg.key.text not in table[name]:
            errors.add(
                "E502",
                f"{name} has no setting '{arg.key.text}'",
                arg.key.span,
                did_you_mean(arg.key.text, table[name], "settings"),
            )
        elif numbers and not isinstance(s.plain(arg.value), (int, float)):
            errors.add(
                "E502",
                f"{name} takes numbers, not {s.show(arg.value)}",
                arg.value.span,
                f"write a number, such as {name}({arg.key.text + '=' if arg.key else ''}0.1)",
            )


# ---- checking what a section asks of its network --------------------------------------------
def check_gan_pair(programs: dict[str, Program], spec: TrainSpec, errors: Collector) -> None:
    """A GAN's generator must make what its discriminator reads (E509): one output whose shape
    is the discriminator's one input's, and the discriminator one output to judge with."""
    names = [spec.settings.get(role) for role in ("generator", "discriminator")]
    if not all(isinstance(name, str) and name in programs for name in names):
        return  # E502 or E504 said it
    generator, discriminator = (programs[name] for name in names)
    at = spec.spans.get("generator", spec.span)
    if len(generator.outputs) != 1 or len(discriminator.inputs) != 1:
        errors.add(
            "E509",
            f"a GAN's generator gives one sample to a discriminator that reads one input, but "
            f"'{generator.name}' has {len(generator.outputs)} outputs and '{discriminator.name}' "
            f"{len(discriminator.inputs)} inputs",
            at,
            "give the generator one output and the discriminator one input",
        )
        return
    made = generator.outputs[0].shape.static()
    read = discriminator.layer(discriminator.inputs[0]).shape.static()
    if made.dims != read.dims:
        errors.add(
            "E509",
            f"generator '{generator.name}' makes {made} ('{generator.outputs[0].name}'), but "
            f"discriminator '{discriminator.name}' reads {read} ('{discriminator.inputs[0]}')",
            at,
            f"declare the discriminator's input as {made}, or end the generator in {read}",
        )


def check_training(
    program: Program, spec: TrainSpec, errors: Collector, epochs: int | None = None
) -> None:
    """What a train section asks of its network: a learning rule (E507) fits it, and
    backpropagation never has to pass a `step` activation (E508). `epochs` overrides the
    section's (the command line's)."""
    config = train_config(spec, epochs=epochs)
    _check_outputs_named(program, spec, errors)
    if config.early_stop and (config.rule != BACKPROP or config.discriminator is not None):
        errors.add(
            "E502",
            "early_stop keeps the best epoch of one network trained by backpropagation, not of "
            + ("a GAN" if config.discriminator is not None else f"rule = {config.rule}"),
            spec.spans.get("early_stop", spec.span),
            "leave early_stop out, or train by backpropagation",
        )
    penalised = [layer for layer in program.layers if getattr(layer.options, "sparsity", None)]
    if penalised and (config.rule != BACKPROP or config.discriminator is not None):
        how = "a GAN" if config.discriminator is not None else f"rule = {config.rule}"
        errors.add(
            "E281",
            f"'{penalised[0].name}' has a sparsity= penalty, a term of the backpropagation loss, "
            f"but {how} trains without it",
            penalised[0].span,
            "drop sparsity=, or train by backpropagation (leave rule and generator out)",
        )
    if _check_csv_targets(program, spec, config, errors):
        _check_csv_features(program, spec, config, errors)
    _check_classes(program, spec, config, errors)
    _check_normalize(program, spec, config, errors)
    if config.factors is not None:
        _check_factors(program, spec, config, errors)
    elif "factor_correlation" in config.metrics:
        errors.add(
            "E581",
            "factor_correlation measures the units that factors = LAYER trains to carry the "
            "data's factors, and this section names no factors",
            spec.spans.get("metrics", spec.span),
            "add factors = z (the code layer) with data whose factors are known (shapes), or "
            "leave factor_correlation out",
        )
    if config.rule == "som" and config.batch != 1:
        errors.add(
            "E576",
            "rule = som moves the map by one example at a time, but batch = "
            + ("full" if config.batch is None else str(config.batch)),
            spec.spans.get("batch", spec.spans.get("rule", spec.span)),
            "write batch = 1: Kohonen's online rule (and MiniSom) takes one example a step",
        )
    if config.pretrain is not None:
        _check_pretrain(program, spec, config, errors)
    if config.rule != BACKPROP:
        misfit = rule_misfit(program, RULES[config.rule])
        if misfit:
            errors.add(
                "E507",
                f"rule = {config.rule} does not apply to network '{program.name}': {misfit[0]}",
                spec.spans.get("rule", spec.span),
                misfit[1],
            )
        return
    if config.epochs == 0:
        return  # nothing is trained: fixed weights may sit behind a step (xor_gates)
    machine = next((layer for layer in program.layers if layer.kind.name == "boltzmann"), None)
    if machine is not None:
        errors.add(
            "E555",
            f"backpropagation cannot train the Boltzmann machine '{machine.name}': its weights "
            "model a distribution, learned from clamped and free correlations, and its output "
            "passes no gradient",
            machine.span,
            "train it with rule = boltzmann (Gibbs sampling with annealing)",
        )
        return
    recalling = next((layer for layer in program.layers if layer.kind.name == "hopfield"), None)
    if recalling is not None:
        errors.add(
            "E550",
            f"backpropagation cannot train through the Hopfield layer '{recalling.name}': its "
            "recall sets every unit to a sign, whose gradient is 0 everywhere",
            recalling.span,
            "store its patterns with rule = hopfield (data = patterns(count=8), or data whose "
            "targets are the +1/-1 patterns to store)",
        )
        return
    chains = [
        layer
        for layer in program.layers
        if layer.kind.name == "markov" and any(p.trainable for p in layer.params.values())
    ]
    if chains:
        errors.add(
            "E257",
            f"backpropagation cannot learn the transition matrix of '{chains[0].name}' (markov): "
            "its steps would leave the rows off the probability simplex",
            chains[0].span,
            "learn the chain from its transitions with rule = counts, or give it "
            "transition=[...] and frozen to backpropagate through a fixed chain",
        )
        return
    maps = [layer for layer in program.layers if layer.kind.name == "som"]
    if maps:
        errors.add(
            "E575",
            f"backpropagation cannot train the Kohonen map '{maps[0].name}' (som): its output, "
            "the one-hot winning unit, has no gradient",
            maps[0].span,
            "train the map with rule = som (Kohonen's update, batch = 1)",
        )
        return
    for layer in program.layers:
        if layer.activation == "step" and _learns_through(program, layer):
            single = sum(1 for other in program.layers if other.params) == 1
            errors.add(
                "E508",
                f"backpropagation cannot pass the step activation of '{layer.name}': "
                "its gradient is 0 everywhere",
                layer.span,
                ("train this single layer with rule = perceptron, or " if single else "")
                + "use a differentiable activation such as sigmoid or tanh",
            )
            return


def _check_pretrain(program: Program, spec: TrainSpec, config: TrainConfig, errors) -> None:
    """A pretraining stage comes before backpropagation (E563), trains on vectors (E565) and needs
    an rbm to train (E564)."""
    at = spec.spans.get("pretrain", spec.span)
    if config.rule != BACKPROP or config.discriminator is not None:
        how = "a GAN" if config.discriminator is not None else f"rule = {config.rule}"
        errors.add(
            "E563",
            f"pretrain trains the rbms before backpropagation fine-tunes the network, but {how} "
            "trains it",
            at,
            "leave rule out (backpropagation) to fine-tune after pretraining, or drop pretrain"
            + (" and train the one rbm with rule = cd" if config.rule == "cd" else ""),
        )
    if program.timed:
        errors.add(
            "E565",
            f"pretrain trains each rbm on one vector per example, and network '{program.name}' "
            "steps through time",
            at,
            "drop pretrain: a network with time is trained by backpropagation through time",
        )
    elif not any(layer.kind.name == "rbm" for layer in program.layers):
        errors.add(
            "E564",
            f"pretrain trains each rbm layer, and network '{program.name}' has none",
            at,
            "add one (rbm h: 100) where the features are learned, or drop pretrain",
        )


def _check_classes(program: Program, spec: TrainSpec, config: TrainConfig, errors) -> None:
    """The stated classes name the units of the one output, one each (E540): K labels for K
    units, or two for one sigmoid unit; a network with several outputs, one reproducing its
    input or a GAN has no such classes."""
    if config.classes is None:
        return
    at = spec.spans.get("classes", spec.span)
    other = (
        f"network '{program.name}' has {len(program.outputs)} outputs"
        if len(program.outputs) != 1
        else "target = input reproduces the input"
        if config.target == "input"
        else "a GAN's discriminator learns real from generated"
        if config.discriminator is not None
        else None
    )
    if other is not None:
        errors.add(
            "E540",
            f"classes names the classes of a network's one output, but {other}",
            at,
            "leave classes out",
        )
        return
    output = program.outputs[0]
    units, count = output.shape.dims[-1], len(config.classes)
    if units == count or (units == 1 and count == 2):
        return
    labels = ", ".join(f"'{label}'" for label in config.classes[:20])
    errors.add(
        "E540",
        f"classes lists {count} label{'s' * (count != 1)} ({labels}), but output "
        f"'{output.name}' gives {units} value{'s' * (units != 1)}: one unit per class",
        at,
        f"give '{output.name}' {count} units ('dense {output.name}: {count}, act=softmax')"
        + (", or 1 unit with act=sigmoid for two classes" if count == 2 else "")
        + f", or list {units} labels",
    )


def _check_normalize(program: Program, spec: TrainSpec, config: TrainConfig, errors) -> None:
    """normalize = true standardises the inputs' features; a GAN's, a graph's and token inputs
    have none to standardise (E542)."""
    if not config.normalize:
        return
    at = spec.spans.get("normalize", spec.span)
    why = (
        "a GAN's generator would have to make standardised samples"
        if config.discriminator is not None
        else "a graph's adjacency is no feature"
        if config.data == "karate"
        else None
    )
    tokens = [
        layer.name
        for layer in program.layers
        if layer.kind.name == "embedding" and any(i.source in program.inputs for i in layer.inputs)
    ]
    if tokens and why is None:
        why = f"embedding '{tokens[0]}' reads whole-number tokens, which standardising would break"
    if why is not None:
        errors.add(
            "E542",
            f"normalize = true does not apply here: {why}",
            at,
            "leave normalize out, and scale the data before training if it needs it",
        )


def _check_outputs_named(program: Program, spec: TrainSpec, errors: Collector) -> None:
    """The outputs a section names in `loss = {...}`, `loss_weights` and `expect OUTPUT.metric`
    are the network's (E530, E531); with several outputs, an expectation names its output (all
    but the total loss and train_loss)."""
    names = [o.name for o in program.outputs]
    listed = ", ".join(names)
    for key in ("loss", "loss_weights", "target"):
        value = spec.settings.get(key)
        for name in value if isinstance(value, dict) else ():
            if name not in names:
                errors.add(
                    "E530",
                    f"{key} names '{name}', which is not an output of network '{program.name}' "
                    f"(its outputs: {listed})",
                    spec.spans.get(f"{key}.{name}", spec.span),
                    did_you_mean(name, names, "outputs"),
                )
    stop = spec.settings.get("early_stop")
    watched = (
        data_file_args_like(stop[1], EARLY_STOP).get("on") if isinstance(stop, tuple) else None
    )
    checked = [(metric, f"expect {metric}") for metric, _, _ in spec.expects]
    checked += [(str(watched), "early_stop")] if watched is not None else []
    for metric, where in checked:
        output, _, bare = metric.rpartition(".")
        at = spec.spans.get(where, spec.span)
        if output and len(names) == 1:
            errors.add(
                "E531",
                f"network '{program.name}' has one output: its metrics have no output's name",
                at,
                f"write 'expect {bare} ...'",
            )
        elif output and output not in names:
            errors.add(
                "E531",
                f"{where.split()[0]} names '{output}', which is not an output of network "
                f"'{program.name}' (its outputs: {listed})",
                at,
                did_you_mean(output, names, "outputs"),
            )
        elif not output and len(names) > 1 and bare not in ("loss", "train_loss"):
            errors.add(
                "E531",
                f"network '{program.name}' has {len(names)} outputs ({listed}): say whose "
                f"{bare} {'this expects' if where != 'early_stop' else 'early_stop watches'}",
                at,
                (
                    f"write 'expect {names[0]}.{bare} ...'"
                    if where != "early_stop"
                    else f'write on="{names[0]}.{bare}"'
                )
                + " (loss and train_loss alone are the weighted sum over the outputs)",
            )


def _learns_through(program: Program, layer) -> bool:
    """Whether a trainable weight sits in `layer` or before it, so its gradient would cross it."""
    before = nx.ancestors(program.graph, layer.name) | {layer.name}
    return any(p.trainable for name in before for p in program.layer(name).params.values())


# ---- data files ----------------------------------------------------------------------------
def data_file_args(name: str, args: dict[str, object]) -> dict[str, object]:
    """The arguments of `csv(...)` or `npz(...)` by name: positional ones ("0", "1", as
    `syntax.plain` keys them) take FILE_DATA's names in order; any beyond those keep their
    position."""
    names = FILE_DATA[name]
    return {
        names[int(key)] if key.isdigit() and int(key) < len(names) else key: value
        for key, value in args.items()
    }


def data_path(spec_path: str, path: str) -> str:
    """A data file's path as the spec writes it, made relative to the spec's folder."""
    return os.path.join(os.path.dirname(spec_path), path)


CSV_HEADER_LIMIT = 1 << 20  # characters: a first line longer than this is no csv header row


def csv_columns(path: str, shown: str | None = None) -> list[str] | None:
    """The column names in a csv file's header row (None: the file is empty). Raises ReadError
    (E505, naming the file as `shown`) for anything but a regular file within DATA_LIMIT, and
    OSError, UnicodeDecodeError or csv.Error when the file cannot be read."""
    raw = open_regular(path, "data file", DATA_LIMIT, "E505", shown)
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as file:
        return csv_header(file)


def csv_header(file: TextIO) -> list[str] | None:
    """The column names in the header row at the start of `file` (None: it is empty), read no
    further than CSV_HEADER_LIMIT characters: a large file without line breaks is a csv.Error at
    once."""
    line = file.readline(CSV_HEADER_LIMIT + 1)
    if len(line) > CSV_HEADER_LIMIT and not line.endswith("\n"):
        raise csv.Error(
            f"its first {size_text(CSV_HEADER_LIMIT)} hold no line break: "
            "it is not a csv file with a header row"
        )
    header = next(csv.reader([line]), None)
    if not header:
        return None
    names = [column.strip() for column in header]
    _check_names(names)
    return names


class HeaderError(csv.Error):
    """A header row that reads, but not as the header of a comma-separated file whose columns
    have names of their own; with its hint."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars"}


def _check_names(names: list[str]) -> None:
    """HeaderError for a header of one column that other separators split (a file saved with
    semicolons or tabs), a column without a name (often an index pandas wrote), or a name given
    twice (columns are matched by name)."""
    if len(names) == 1:
        for mark, called in SEPARATORS.items():
            if mark in names[0]:
                raise HeaderError(
                    f"its header row is one column, {names[0]!r}: the columns are separated by "
                    f"{called}, not commas",
                    "nnspec reads comma-separated values: save the file with commas "
                    "(a spreadsheet's 'CSV (comma delimited)'; pandas: to_csv(path, index=False))",
                )
    blank = next((i for i, name in enumerate(names, 1) if not name), None)
    if blank == len(names) > 1:
        raise HeaderError(
            "its header row ends in a comma, which makes a last column without a name",
            "remove the comma that ends each line, or name the column",
        )
    if blank is not None:
        raise HeaderError(
            f"column {blank} of its header row has no name",
            "name every column; a first column without a name is often the index pandas "
            "writes, which to_csv(path, index=False) leaves out",
        )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise HeaderError(
                f"its header row names column {name!r} twice",
                "give each column its own name: columns are read and matched by name",
            )
        seen.add(name)


def _check_data_file(call: s.Call, errors: Collector) -> None:
    """`csv("f.csv", target="y")`, `npz("f.npz")`: the path is a string naming a file (E505); csv's
    target, when given, names a column of its header (E506). Whether a csv needs a target (one
    output) or a column per output (several) is `check_training`'s to say."""
    name = call.name.text
    args = data_file_args(
        name, {arg.key.text if arg.key else str(i): arg.value for i, arg in enumerate(call.args)}
    )
    path, target = args.get("path"), args.get("target")
    extra = [key for key in args if key.isdigit()]
    if extra:
        errors.add(
            "E502",
            f"{name} takes {len(FILE_DATA[name])} value{'s' * (len(FILE_DATA[name]) > 1)} at most",
            call.span,
            'csv("file.csv", target="label") or npz("file.npz")',
        )
        return
    if not isinstance(path, s.String):
        errors.add(
            "E502",
            f"{name} needs the path of the file as a string",
            (path or call).span,
            f'write {name}("data.{name}")',
        )
        return
    if target is not None and not isinstance(target, s.String):
        errors.add(
            "E502",
            f"the target column is named by a string, not {s.show(target)}",
            target.span,
            f'write target="{s.plain(target)}"',
        )
        return
    full = data_path(call.span.path, path.value)
    if not os.path.isfile(full):
        what = (
            "is a folder, not a file"
            if os.path.isdir(full)
            else "is not a regular file"
            if os.path.exists(full)
            else "is not found"
        )
        errors.add(
            "E505",
            f"data file '{path.value}' {what}",
            path.span,
            f"the path is relative to the spec: nnspec looked for {os.path.abspath(full)}",
        )
    elif name == "csv" and target is not None:
        _check_csv_header(full, path, target, errors)


def _check_csv_targets(
    program: Program, spec: TrainSpec, config: TrainConfig, errors: Collector
) -> bool:
    """A csv names its target column for one output (E502); for several outputs, it has a
    column named after each output (E532). False when it said so."""
    data = config.data
    if not (isinstance(data, tuple) and data[0] == "csv") or reproduces_input(config, program):
        return True
    if config.discriminator is not None:
        return True
    args = data_file_args("csv", data[1])
    at = spec.spans.get("data", spec.span)
    copied = input_copies(config)
    names = [o.name for o in program.outputs if o.name not in copied]
    if len(program.outputs) == 1:
        if args.get("target") is None:
            errors.add(
                "E502",
                "csv needs the column that holds the targets",
                at,
                f'write csv("{args.get("path")}", target="label"), '
                "or target = input to reproduce every column",
            )
            return False
        return True
    if args.get("target") is not None:
        errors.add(
            "E532",
            f"network '{program.name}' has {len(program.outputs)} outputs, but the csv names one "
            "target column",
            at,
            f"leave target out and name a column after each output ({', '.join(names)}): "
            "the other columns are the features",
        )
        return False
    full = data_path(spec.span.path, str(args.get("path")))
    try:
        columns = csv_columns(full) if os.path.isfile(full) else None
    except (OSError, UnicodeDecodeError, csv.Error, ReadError):
        return False  # read_train reported it
    missing = [name for name in names if columns is not None and name not in columns]
    if missing:
        errors.add(
            "E532",
            f"data file '{args.get('path')}' has no column for output "
            + ", ".join(f"'{name}'" for name in missing)
            + f" of network '{program.name}'",
            at,
            f"name a column after each output ({', '.join(names)}): its targets; the other "
            "columns are the features",
        )
        return False
    several = train_config(spec, SEVERAL)
    for output in program.outputs:
        if output.name in copied:
            continue
        activation = program.layer(output.name).activation
        loss = output_loss(several, output.name, activation, False)
        classes = loss == "cross_entropy" and activation != "sigmoid"
        if not classes and not output.shape.timed and output.shape.size != 1:
            errors.add(
                "E533",
                f"output '{output.name}' gives {output.shape}, but its csv column holds one "
                "value per example",
                at,
                f"give '{output.name}' 1 unit, or its loss cross_entropy for classes, or read "
                "its targets from an npz array named after it",
            )
            return False
    return True


def _check_csv_features(
    program: Program, spec: TrainSpec, config: TrainConfig, errors: Collector
) -> None:
    """A csv's feature columns (all but the target; every one for `target = input`) fill a single
    input that is not a sequence, as training will ask (E506 at the data line)."""
    data = config.data
    if not (isinstance(data, tuple) and data[0] == "csv") or len(program.inputs) != 1:
        return
    name = program.inputs[0]
    options = program.layer(name).options
    if options.seq is not False or options.steps is not None:
        return  # a sequence takes any multiple of its step's size: training says
    args = data_file_args("csv", data[1])
    path, target = args.get("path"), args.get("target")
    full = data_path(spec.span.path, str(path))
    try:
        columns = csv_columns(full) if os.path.isfile(full) else None
    except (OSError, UnicodeDecodeError, csv.Error, ReadError):
        return  # read_train reported it
    whole = reproduces_input(config, program)
    several = len(program.outputs) > 1 and not whole
    if not columns or (not whole and not several and target not in columns):
        return
    copied = input_copies(config)
    targets = [o.name for o in program.outputs if o.name not in copied] if several else [target]
    features = len(columns) - (0 if whole else len(targets))
    dims = program.layer(name).shape.dims
    if features != math.prod(dims):
        shown = "[" + ", ".join(map(str, dims)) + "]"
        errors.add(
            "E506",
            f"data file '{path}' gives [{features}] per example, but input '{name}' takes {shown}",
            spec.spans.get("data", spec.span),
            f"declare 'input {name}: {features}' (or another shape of {features} values)",
        )


def _check_csv_header(full: str, path: s.String, target: s.String, errors: Collector) -> None:
    try:
        columns = csv_columns(full, path.value)
    except ReadError as error:  # it became a FIFO since it was looked at, or is over 2 GiB
        errors.add(error.code, error.message, path.span, error.hint)
        return
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        errors.add(
            "E505",
            f"cannot read data file '{path.value}': {error}",
            path.span,
            getattr(error, "hint", "a csv file is UTF-8 text with a header row"),
        )
        return
    if columns is None:
        errors.add(
            "E505",
            f"data file '{path.value}' is empty",
            path.span,
            "a csv file starts with a header row naming its columns",
        )
    elif target.value not in columns:
        errors.add(
            "E506",
            f"data file '{path.value}' has no column '{target.value}'",
            target.span,
            did_you_mean(target.value, columns, "columns"),
        )
