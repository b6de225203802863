"""The `train` section: which network it trains and what its settings and expectations say.

`nnspec check` validates train sections too, so that a typo in a loss or an
optimizer is found before anything trains. Training (a later stage) reads the
validated `TrainSpec`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx

from . import syntax as s
from .errors import Collector, Span, did_you_mean

if TYPE_CHECKING:
    from .check import Program

DATASETS = (
    "and",
    "or",
    "nand",
    "nor",
    "xor",
    "not",
    "digits",
    "sine",
    "adding",
    "majority",
    "karate",
    "moons",
    "spirals",
    "ring",
    "circles",
    "blobs",
    "associations",
    "recall",
)
LOSSES = ("sse", "mse", "rmse", "cross_entropy", "bce")
OPTIMIZERS = {
    "sgd": ("lr", "momentum", "nesterov", "weight_decay"),
    "adam": ("lr", "beta1", "beta2", "eps", "weight_decay"),
    "adamw": ("lr", "beta1", "beta2", "eps", "weight_decay"),
    "rmsprop": ("lr", "alpha", "eps", "momentum", "weight_decay"),
}
SCHEDULES = {
    "constant": (),
    "step": ("every", "gamma"),
    "exponential": ("gamma",),
    "cosine": ("epochs", "min_lr"),
    "warmup": ("epochs",),
}
RULES = ("backprop", "perceptron", "delta", "hebb")
METRICS = (
    "loss",
    "accuracy",
    "train_loss",
    "train_accuracy",
    "mae",
    "rmse",
    "r2",
    "kl",
    "coverage",
)
FILE_DATA = {"csv": ("path", "target"), "npz": ("path",)}

SETTINGS = (
    "data",
    "split",
    "loss",
    "optimizer",
    "batch",
    "epochs",
    "schedule",
    "rule",
    "seed",
    "metrics",
    "target",
    "generator",
    "discriminator",
    "latent",
)


@dataclass(frozen=True)
class TrainSpec:
    """A train section after checking: its settings as plain values, and its expectations."""

    network: str | None
    settings: dict[str, object]
    expects: tuple[tuple[str, str, float], ...]
    span: Span
    spans: dict[str, Span] = field(default_factory=dict, compare=False, repr=False)


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
        if key not in SETTINGS:
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
        _check_value(key, setting.value, networks, errors)
    data = next((setting.value for setting in train.settings if setting.key.text == "data"), None)
    if (
        isinstance(data, s.Call)
        and data.name.text in FILE_DATA
        and all(arg.key is None or arg.key.text in FILE_DATA[data.name.text] for arg in data.args)
    ):  # else E502 said it
        _check_data_file(data, settings.get("target"), errors)
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
        if metric not in METRICS:
            errors.add(
                "E503",
                f"unknown metric '{metric}'",
                expect.metric.span,
                did_you_mean(metric, METRICS, "metrics"),
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
    if len(errors.errors) > before:
        return None
    return TrainSpec(network, settings, tuple(expects), train.span, spans)


def check_training(
    program: Program, spec: TrainSpec, errors: Collector, epochs: int | None = None
) -> None:
    """What a train section asks of its network: a learning rule (E507) fits it, and backpropagation
    never has to pass a `step` activation (E508). `epochs` overrides the section's (the command line's)."""
    rule = spec.settings.get("rule", "backprop")
    if rule != "backprop":
        misfit = _rule_misfit(program, rule)
        if misfit:
            errors.add(
                "E507",
                f"rule = {rule} does not apply to network '{program.name}': {misfit[0]}",
                spec.spans.get("rule", spec.span),
                misfit[1],
            )
        return
    if (spec.settings.get("epochs", 10) if epochs is None else epochs) == 0:
        return  # nothing is trained: fixed weights may sit behind a step (xor_gates)
    for layer in program.layers:
        if layer.activation == "step" and _learns_through(program, layer):
            single = sum(1 for other in program.layers if other.params) == 1
            errors.add(
                "E508",
                f"backpropagation cannot pass the step activation of '{layer.name}': its gradient is 0 everywhere",
                layer.span,
                ("train this single layer with rule = perceptron, or " if single else "")
                + "use a differentiable activation such as sigmoid or tanh",
            )
            return


def _learns_through(program: Program, layer) -> bool:
    """Whether a trainable weight sits in `layer` or before it, so its gradient would have to cross it."""
    before = nx.ancestors(program.graph, layer.name) | {layer.name}
    return any(p.trainable for name in before for p in program.layer(name).params.values())


def _rule_misfit(program: Program, rule: str) -> tuple[str, str] | None:
    """Why `rule` cannot train `program`, and what to do instead (None: it can)."""
    instead = "use rule = backprop"
    learners = [layer for layer in program.layers if layer.params]
    if program.timed:
        return "it steps through time, and a rule trains one layer of weights without time", instead
    if len(learners) != 1:
        names = ", ".join(f"'{layer.name}'" for layer in learners) or "none"
        return (
            f"a rule trains one layer of weights, and it has {len(learners)} ({names})",
            instead + " for a network of several layers",
        )
    layer = learners[0]
    if layer.kind.name != "dense":
        return (
            f"'{layer.name}' is a {layer.kind.name} layer, and the rules train a dense layer",
            instead,
        )
    if (
        len(layer.inputs) != 1
        or layer.inputs[0].source not in program.inputs
        or [output.name for output in program.outputs] != [layer.name]
    ):
        return (
            f"the rules train a dense layer that goes straight from an input to the output, and '{layer.name}' does not",
            instead,
        )
    if not all(p.trainable for p in layer.params.values()):
        return f"the weights of '{layer.name}' are frozen", f"remove frozen from '{layer.name}'"
    act = layer.activation
    if rule == "perceptron" and act != "step":
        return (
            f"the perceptron rule learns from a thresholded output, and '{layer.name}' has act={act}",
            f"give '{layer.name}' act=step, or use rule = delta for a linear unit",
        )
    if rule == "delta" and act not in ("identity", "linear", "step"):
        return (
            f"the delta rule learns from a linear unit's net input, and '{layer.name}' has act={act}",
            f"give '{layer.name}' act=identity (or step, as ADALINE thresholds its output), or use rule = backprop",
        )
    return None


def _check_value(key: str, value: s.Value, networks: list[str], errors: Collector) -> None:
    plain = s.plain(value)
    span = value.span
    if key == "data":
        if isinstance(value, s.Call):
            _check_call(value, FILE_DATA, "data sources", errors)
        elif not isinstance(plain, str) or plain not in DATASETS:
            errors.add(
                "E502",
                f"unknown dataset '{plain}'"
                if isinstance(value, s.Symbol)
                else f"unknown dataset {s.show(value)}",
                span,
                did_you_mean(str(plain), DATASETS, "datasets")
                + '; or read a file: csv("file.csv", target="label")',
            )
    elif key == "loss":
        _choice(key, value, LOSSES, errors)
    elif key == "rule":
        _choice(key, value, RULES, errors)
    elif key in ("optimizer", "schedule"):
        table = OPTIMIZERS if key == "optimizer" else SCHEDULES
        if isinstance(value, s.Symbol):
            _choice(key, value, tuple(table), errors)
        elif isinstance(value, s.Call):
            _check_call(value, table, f"{key}s", errors)
        else:
            errors.add(
                "E502",
                f"{key} must be a name such as {next(iter(table))}(...), not {s.show(value)}",
                span,
            )
    elif key == "batch":
        if plain != "full" and not _whole(plain, 1):
            errors.add(
                "E502",
                f"batch must be full or a whole number >= 1, not {s.show(value)}",
                span,
                "full = batch gradient descent, 1 = stochastic, N = mini-batches of N",
            )
    elif key in ("epochs", "seed", "latent"):
        if not _whole(plain, 0 if key != "latent" else 1):
            errors.add(
                "E502",
                f"{key} must be a whole number >= {0 if key != 'latent' else 1}, not {s.show(value)}",
                span,
            )
    elif key == "split":
        if not isinstance(plain, (int, float)) or isinstance(plain, bool) or not 0 <= plain < 1:
            errors.add(
                "E502",
                f"split must be a fraction from 0 up to (not including) 1, not {s.show(value)}",
                span,
                "split = 0.2 holds out a fifth of the data for evaluation",
            )
    elif key == "target":
        if plain != "input":
            errors.add(
                "E502",
                f"target can only be 'input' (to reproduce the input), not {s.show(value)}",
                span,
            )
    elif key in ("generator", "discriminator"):
        if plain not in networks:
            errors.add(
                "E504",
                f"{key} names an unknown network {s.show(value)}",
                span,
                did_you_mean(str(plain), networks, "networks"),
            )
    elif key == "metrics":
        items = value.items if isinstance(value, s.ListValue) else (value,)
        for item in items:
            if s.plain(item) not in METRICS:
                errors.add(
                    "E503",
                    f"unknown metric '{s.plain(item)}'",
                    item.span,
                    did_you_mean(str(s.plain(item)), METRICS, "metrics"),
                )


def _whole(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _choice(key: str, value: s.Value, choices, errors: Collector) -> None:
    plain = s.plain(value)
    if not isinstance(value, s.Symbol) or plain not in choices:
        errors.add(
            "E502",
            f"unknown {key} '{plain}'"
            if isinstance(value, s.Symbol)
            else f"unknown {key} {s.show(value)}",
            value.span,
            did_you_mean(str(plain), choices, f"{key}es" if key == "loss" else f"{key}s"),
        )


def _check_call(
    call: s.Call, table: dict[str, tuple[str, ...]], what: str, errors: Collector
) -> None:
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


# ---- data files ----------------------------------------------------------------------------
def data_file_args(name: str, args: dict[str, object]) -> dict[str, object]:
    """The arguments of `csv(...)` or `npz(...)` by name: positional ones ("0", "1", as `syntax.plain`
    keys them) take FILE_DATA's names in order; any beyond those keep their position."""
    names = FILE_DATA[name]
    return {
        names[int(key)] if key.isdigit() and int(key) < len(names) else key: value
        for key, value in args.items()
    }


def data_path(spec_path: str, path: str) -> str:
    """A data file's path as the spec writes it, made relative to the spec's folder."""
    return os.path.join(os.path.dirname(spec_path), path)


def csv_columns(path: str) -> list[str] | None:
    """The column names in a csv file's header row (None: the file is empty). Raises OSError,
    UnicodeDecodeError or csv.Error when the file cannot be read."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        header = next(csv.reader(file), None)
    return [column.strip() for column in header] if header else None


def _check_data_file(call: s.Call, target_setting, errors: Collector) -> None:
    """`csv("f.csv", target="y")`, `npz("f.npz")`: the path is a string naming a file (E505); csv's
    target names a column of its header (E506), unless `target = input`."""
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
    if name == "csv" and target is None and target_setting != "input":
        errors.add(
            "E502",
            "csv needs the column that holds the targets",
            call.span,
            f'write csv({s.show(path)}, target="label"), or target = input to reproduce every column',
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


def _check_csv_header(full: str, path: s.String, target: s.String, errors: Collector) -> None:
    try:
        columns = csv_columns(full)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        errors.add(
            "E505",
            f"cannot read data file '{path.value}': {error}",
            path.span,
            "a csv file is UTF-8 text with a header row",
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
