"""`load_data(train_spec, program) -> Data`: a train section's data,
shaped for its network and split."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpecError, did_you_mean
from ..program import Program
from ..train_section import (
    GENERATED_DATA,
    SEVERAL,
    TrainConfig,
    TrainSpec,
    data_file_args,
    data_path,
    generated_args,
    input_copies,
    output_loss,
    reproduces_input,
    train_config,
)
from .builtin import BUILTIN
from .examples import DataError, Examples, Graph
from .files import class_indices, name_classes, npz_examples, read_csv, read_json, read_npz
from .fit import MisShapen, fit_classes, fit_input, fit_values, graph_inputs, input_steps
from .standardise import standardise, statistics

Targets = np.ndarray | dict[str, np.ndarray] | None


@dataclass(frozen=True)
class Split:
    """One part of the data, batch first, ready for the network.

    inputs: input name -> float32 array in the layout of docs/backends.md (`[N, F]`, `[N, C, H, W]`,
        `[N, T, F]`, `[N, items, F]`).
    targets: for the one output: class indices int64 `[N]` (`[N, items]` per item), or float32
        values shaped like the output (`[N, *dims]`, `[N, T, *dims]` with a value per step); a dict
        by output name for several outputs; None for a GAN.
    mask: graphs: bool `[1, nodes]`, the nodes whose targets this part counts; one series split
        along time: bool `[1, T]`, the held-out steps; None otherwise.
    """

    inputs: dict[str, np.ndarray]
    targets: Targets
    mask: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Examples in this part (labelled nodes, for a graph)."""
        if self.mask is not None:
            return int(self.mask.sum())
        return len(next(iter(self.inputs.values())))


@dataclass(frozen=True)
class Data:
    """A train section's data: `kind` is classification, regression, reconstruction
    (`target = input`), graph (node classification on one graph) or generative (real examples for
    a GAN's discriminator)."""

    name: str
    kind: str
    train: Split
    test: Split | None
    classes: int | None
    info: dict[str, object] = field(default_factory=dict)
    # several outputs (kind "outputs"): each output's number of classes, None for values
    outputs: dict[str, int | None] | None = None


def load_data(train_spec: TrainSpec, program: Program, base_dir: str | Path | None = None) -> Data:
    """The data that `train_spec` names, shaped for `program` (for a GAN: the discriminator) and
    split by its `split` and `seed`. File paths are relative to `base_dir` (default: the spec's
    folder).

    Raises `SpecError` (E502, E505, E506) at the spec's `data` line when the data cannot be read or
    does not fit the network."""
    try:
        return _load(train_spec, program, base_dir)
    except DataError as error:
        raise SpecError(
            error.code, error.message, train_spec.spans.get("data", train_spec.span), error.hint
        ) from None


def _load(train_spec: TrainSpec, program: Program, base_dir: str | Path | None) -> Data:
    config = train_config(train_spec)  # the data's kind is not known yet
    if isinstance(config.target, dict) and reproduces_input(config, program):  # each named
        config = config.model_copy(update={"target": "input"})
    source = config.data
    if source is None:
        raise DataError(
            "E502",
            "this train section names no data",
            'write data = digits, or data = csv("file.csv", target="label")',
        )
    _check_gan_program(config, program)
    data_rng, split_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(2)
    )
    name, what, examples = _read(train_spec, config, program, base_dir, data_rng)
    fraction = config.split
    if isinstance(examples, Graph):
        return _graph_data(examples, program, name, what, fraction, split_rng, config)
    inputs, timed = _inputs(examples, program, what)
    count, info = len(next(iter(inputs.values()))), examples.info
    if count == 1 and examples.per_step and fraction > 0:  # one series: split along time
        return _split_in_time(examples, inputs, timed, program, name, what, config)
    split = _split(count, fraction, split_rng, what) if config.normalize else None
    if split is not None:  # standardised by the training split alone, before any target is made
        stats = statistics(inputs, split[0], program)
        inputs, info = standardise(inputs, stats), {**info, "normalize": stats}
    outputs = None
    if len(program.outputs) > 1 and config.discriminator is None and config.target != "input":
        targets, outputs = several_targets(examples, inputs, program, what, train_spec)
        kind, classes = SEVERAL, None
    else:
        kind, targets, classes = _targets(examples, inputs, timed, program, what, config)
    if kind == "classification" and "labels" in info:  # by output, as the weights record them
        info = {**info, "labels": {program.outputs[0].name: list(info["labels"])}}
    train, test = split or _split(count, fraction, split_rng, what)
    return Data(
        name,
        kind,
        _part(inputs, targets, train),
        _part(inputs, targets, test),
        classes,
        _parted(info, train, test),
        outputs,
    )


def _parted(info: dict[str, object], train: np.ndarray, test: np.ndarray | None) -> dict:
    """`info["per_example"]` (arrays with a row per example: shapes' factors) cut as the
    examples are: {"train": {...}, "test": {...}} (no "test" without a held-out part)."""
    rows = info.get("per_example")
    if not rows:
        return info
    parts = {"train": train} | ({} if test is None else {"test": test})
    cut = {part: {k: v[index] for k, v in rows.items()} for part, index in parts.items()}
    return {**info, "per_example": cut}


def _check_gan_program(config: TrainConfig, program: Program) -> None:
    if config.discriminator is not None and program.name != config.discriminator:
        raise ValueError(
            f"load_data for a GAN takes the discriminator '{config.discriminator}', "
            f"not '{program.name}'"
        )


# ---- reading --------------------------------------------------------------------------------
def _read(
    train_spec: TrainSpec, config: TrainConfig, program: Program, base_dir, rng
) -> tuple[str, str, Examples | Graph]:
    """The dataset's name, how messages name it, and its examples."""
    source = config.data
    if isinstance(source, str) or source[0] in GENERATED_DATA:
        source, given = (source, {}) if isinstance(source, str) else source
        if source not in BUILTIN:
            raise DataError(
                "E502", f"unknown dataset '{source}'", did_you_mean(source, BUILTIN, "datasets")
            )
        steps = input_steps(program, program.inputs[0])[1] if len(program.inputs) == 1 else None
        examples = BUILTIN[source](rng, steps, **_generated(source, given, program))
        if config.classes is not None and isinstance(examples, Examples):
            examples = name_classes(examples, config.classes, f"dataset '{source}'")
        return source, f"dataset '{source}'", examples
    kind, args = source
    args = data_file_args(kind, args)
    shown = str(args["path"])
    path = (
        str(Path(base_dir) / shown)
        if base_dir is not None
        else data_path(train_spec.span.path, shown)
    )
    what = f"data file '{shown}'"
    needs_targets = config.discriminator is None and config.target != "input"
    several = needs_targets and len(program.outputs) > 1
    if kind == "csv" and several:  # every column, the outputs' own split off as targets
        examples = read_csv(path, shown, None, False)
        return shown, what, csv_targets(examples, program, what, input_copies(config))
    if kind == "csv":
        target, classify = args.get("target"), _classifies(train_spec)
        return shown, what, read_csv(path, shown, target, classify, classes=config.classes)
    arrays = read_npz(path, shown)
    own = [o.name for o in program.outputs if o.name not in input_copies(config)]
    if several:
        _check_named_targets(arrays, program, what, names=own)
    examples = npz_examples(
        arrays,
        shown,
        program.inputs,
        tuple(own),
        needs_targets,
    )
    if several:  # class indices stay whole numbers, as for one output
        named = {name: arrays[name] for name in own}
        examples = dataclasses.replace(examples, named_targets=named)
    if config.classes is not None:
        examples = name_classes(examples, config.classes, what)
    return shown, what, examples


def _generated(name: str, given: dict, program: Program) -> dict[str, object]:
    """A generated dataset's settings (`patterns(count=8)`); `units` defaults to the width of the
    network's one input. {} for the datasets without settings."""
    if name not in GENERATED_DATA:
        return {}
    settings = generated_args(name, given)
    if "units" not in settings and len(program.inputs) == 1:
        settings["units"] = program.layer(program.inputs[0]).shape.features
    return settings


def _classifies(train_spec: TrainSpec) -> bool | None:
    """A csv target column holds classes when the loss is a classification loss, accuracy is
    measured or the classes are named (True); values for a loss of values (False); else
    (None) classes when its labels are text, values when they are numbers."""
    settings = train_spec.settings
    measured = set(
        settings.get("metrics", ())
        if isinstance(settings.get("metrics"), tuple)
        else (settings.get("metrics"),)
    )
    measured |= {metric for metric, _, _ in train_spec.expects}
    if (
        "classes" in settings
        or settings.get("loss") in ("cross_entropy", "bce", "margin")
        or measured & {"accuracy", "train_accuracy"}
    ):
        return True
    return False if settings.get("loss") in ("sse", "mse", "rmse") else None


def read_inputs(
    path: str | Path,
    program: Program,
    features: list[str] | None = None,
    target: str | list[str] | None = None,
) -> dict[str, np.ndarray]:
    """The examples in a .csv, .npz or .json file (no targets) shaped for `program`'s inputs, by
    input name; `nnspec predict` reads its --input so. A csv's columns are taken by name when the
    `features` the network was trained on are known (in any order; a `target` column there, or
    the outputs' columns of a several-output network, are not read; a missing or unknown column
    is E506), else in file order. Raises `SpecError` (E505,
    E506) without a position."""
    shown, suffix = str(path), Path(path).suffix.lower()
    what = f"input file '{shown}'"
    try:
        if suffix == ".csv":
            ignored = tuple(target) if isinstance(target, list) else ()
            target = None if ignored or not features else target
            examples = read_csv(shown, shown, target, False, features, ignored=ignored)
        elif suffix == ".npz":
            examples = npz_examples(read_npz(shown, shown), shown, program.inputs, (), False)
        elif suffix == ".json":
            examples = read_json(shown, shown)
            if (
                examples.named is not None
                and set(examples.named) == {"x"}
                and len(program.inputs) == 1
            ):
                examples = Examples(examples.named["x"], None)
        else:
            raise DataError(
                "E505",
                f"cannot read {what}: a .csv, .npz or .json file is needed, "
                f"not '{suffix or shown}'",
                "save the examples as csv (a header row, one example per row), npz or json",
            )
        return _inputs(examples, program, what)[0]
    except DataError as error:
        hint = error.given if isinstance(error, MisShapen) else error.hint
        if error.message == f"data file '{shown}' is not found":  # not relative to the spec
            looked = Path(shown).absolute()
            hint = f"the path is relative to the current folder: nnspec looked for {looked}"
        raise SpecError(
            error.code, error.message.replace(f"data file '{shown}'", what), None, hint
        ) from None


# ---- shaping --------------------------------------------------------------------------------
def _inputs(examples: Examples, program: Program, what: str) -> tuple[dict[str, np.ndarray], bool]:
    """Each input's array, and whether the (single) input has a time axis."""
    if examples.named is not None:
        _check_names(examples.named, program, what)
        fitted = {
            name: fit_input(
                array,
                array.ndim == 2 + len(program.layer(name).shape.dims),
                program,
                name,
                f"array '{name}' of {what}",
            )
            for name, array in examples.named.items()
        }
        return {name: array for name, (array, _) in fitted.items()}, any(
            timed for _, timed in fitted.values()
        )
    if len(program.inputs) != 1:
        raise DataError(
            "E506",
            f"{what} feeds one input, but network '{program.name}' has {len(program.inputs)}: "
            + ", ".join(f"'{name}'" for name in program.inputs),
            'give each input its array: npz("file.npz") with arrays named '
            + ", ".join(program.inputs),
        )
    array, timed = fit_input(examples.x, examples.timed, program, program.inputs[0], what)
    return {program.inputs[0]: array}, timed


def _check_names(named: dict[str, np.ndarray], program: Program, what: str) -> None:
    """Arrays by name (a json input's) are for the network's inputs, one for each."""
    inputs = ", ".join(f"'{name}'" for name in program.inputs)
    for name in named:
        if name not in program.inputs:
            raise DataError(
                "E506",
                f"{what} has examples for '{name}', which is not an input of network "
                f"'{program.name}' (its inputs: {inputs})",
                did_you_mean(name, program.inputs, "inputs"),
            )
    missing = [name for name in program.inputs if name not in named]
    if missing:
        raise DataError(
            "E506",
            f"{what} has no examples for input "
            + ", ".join(f"'{name}'" for name in missing)
            + f" of network '{program.name}'",
            "give each input its examples by name: "
            + json.dumps({name: [[0, 1]] for name in program.inputs}),
        )


def _targets(
    examples: Examples,
    inputs: dict[str, np.ndarray],
    timed: bool,
    program: Program,
    what: str,
    config: TrainConfig,
) -> tuple[str, Targets, int | None]:
    """The data's kind, its targets shaped for the network's output, and the number of classes."""
    if config.discriminator is not None:
        return "generative", None, None
    outputs = program.outputs
    steps = _steps(inputs, program)
    if examples.named_targets is not None:
        return (
            "regression",
            {
                o.name: fit_values(
                    examples.named_targets[o.name],
                    o.shape.timed,
                    o,
                    f"array '{o.name}' of {what}",
                    steps,
                )
                for o in outputs
            },
            None,
        )
    if len(outputs) != 1:
        raise DataError(
            "E506",
            f"{what} has one target per example, "
            f"but network '{program.name}' has {len(outputs)} outputs: "
            + ", ".join(f"'{o.name}'" for o in outputs),
            "name one output: 'output NAME'",
        )
    output = outputs[0]
    if config.target == "input":
        if len(inputs) != 1:
            raise DataError(
                "E506",
                f"target = input needs one input; network '{program.name}' has {len(inputs)}",
                "train it on one input",
            )
        source = next(iter(inputs))
        return (
            "reconstruction",
            fit_values(inputs[source], timed, output, f"input '{source}' (target = input)"),
            None,
        )
    if examples.y is None:
        raise DataError(
            "E506",
            f"{what} has no targets",
            'name the target column: csv("file.csv", target="label"), or write target = input',
        )
    if examples.classes is not None:
        labels = examples.info.get("labels")
        y, classes = fit_classes(examples.y, examples.classes, output, what, steps, labels)
        return "classification", y, classes
    # npz targets come shaped
    per_step = output.shape.timed if examples.named is not None else examples.per_step
    return "regression", fit_values(examples.y, per_step, output, what, steps), None


# ---- several outputs -------------------------------------------------------------------------
def csv_targets(
    examples: Examples, program: Program, what: str, copies: tuple[str, ...] = ()
) -> Examples:
    """A csv read whole (x: every column): the columns named after the outputs (but `copies`,
    which reproduce the input) become their targets (values `[rows]`), the others the features,
    in file order."""
    columns = list(examples.info["columns"])
    names = [o.name for o in program.outputs if o.name not in copies]
    _check_named_targets(dict.fromkeys(columns), program, what, "column", names)
    features = [i for i, column in enumerate(columns) if column not in names]
    if not features:
        raise DataError(
            "E506",
            f"{what} has only the outputs' columns, no features",
            "add the columns the network reads",
        )
    x = examples.x
    targets = {name: x[:, columns.index(name)] for name in names}
    info = {**examples.info, "columns": [columns[i] for i in features], "target": names}
    return Examples(x[:, features], None, info=info, named_targets=targets)


def _check_named_targets(
    held, program: Program, what: str, thing: str = "array", names: list[str] | None = None
) -> None:
    """Each output (of `names`, when given) has its target in the data, named after it
    (E532)."""
    wanted = [o.name for o in program.outputs] if names is None else names
    missing = [name for name in wanted if name not in held]
    if not missing:
        return
    names = ", ".join(o.name for o in program.outputs)
    shown = ", ".join(f"'{name}'" for name in held) or "nothing"
    raise DataError(
        "E532",
        f"{what} has no {thing} for output "
        + ", ".join(f"'{name}'" for name in missing)
        + f" of network '{program.name}' (it holds {shown})",
        f"give each output its targets in a {thing} named after it ({names})"
        + (f": numpy.savez(path, ..., {missing[0]}=...)" if thing == "array" else ""),
    )


def several_targets(
    examples: Examples,
    inputs: dict[str, np.ndarray],
    program: Program,
    what: str,
    train_spec: TrainSpec,
) -> tuple[dict[str, np.ndarray], dict[str, int | None]]:
    """Each output's targets, shaped for it, and its number of classes (None: values). An
    output takes classes when its targets are whole numbers (an npz integer array) or its loss
    is cross_entropy (a csv column); values otherwise. A target that does not fit its output
    is E533. The outputs that `target = {OUTPUT: input}` names reproduce the input; a dataset
    with one target per example gives it to the one output left."""
    config = train_config(train_spec, SEVERAL)
    copies = input_copies(config)
    own = [o for o in program.outputs if o.name not in copies]
    if examples.named_targets is None and len(own) > 1:  # a dataset with one target per example
        raise DataError(
            "E506",
            f"{what} has one target per example, but network '{program.name}' has "
            f"{len(own)} outputs that need one: " + ", ".join(f"'{o.name}'" for o in own),
            'give each output its targets (npz("file.npz") with arrays named after the '
            "outputs, or a csv with a column named after each), name one output: "
            "'output NAME', or train the others to reproduce the input: "
            f"target = {{{own[-1].name}: input}}",
        )
    steps = _steps(inputs, program)
    targets, classes = {}, {}
    for output in program.outputs:
        if output.name in copies:
            targets[output.name], classes[output.name] = _input_copy(inputs, output, program), None
            continue
        if examples.named_targets is None:  # the dataset's one target, for the one output left
            targets[output.name], classes[output.name] = _one_target(examples, output, what, steps)
            continue
        y = examples.named_targets[output.name]
        where = f"the targets of output '{output.name}' in {what}"
        activation = program.layer(output.name).activation
        whole = np.issubdtype(y.dtype, np.integer) or y.dtype == bool
        loss = output_loss(config, output.name, activation, whole)
        try:
            if whole or (loss == "cross_entropy" and activation != "sigmoid"):
                labels = class_indices(y, lambda i, w=where: f"{w}, example {i},")
                targets[output.name], classes[output.name] = fit_classes(
                    labels, int(labels.max()) + 1, output, where, steps
                )
            else:
                per_step = output.shape.timed and y.ndim > 2
                targets[output.name] = fit_values(
                    y.astype(np.float32), per_step, output, where, steps
                )
                classes[output.name] = None
        except DataError as error:
            if error.code != "E506":
                raise
            raise DataError("E533", error.message, error.hint) from None
    return targets, classes


def _input_copy(inputs: dict[str, np.ndarray], output, program: Program) -> np.ndarray:
    """The one input as the targets of an output that reproduces it (`target = {OUTPUT: input}`),
    shaped like the output (E533 when it cannot be)."""
    if len(inputs) != 1:
        raise DataError(
            "E533",
            f"target = {{{output.name}: input}} needs one input; network '{program.name}' has "
            f"{len(inputs)}",
            "train it on one input",
        )
    source, x = next(iter(inputs.items()))
    try:
        return fit_values(x, False, output, f"input '{source}' (target = {{{output.name}: input}})")
    except DataError as error:
        raise DataError("E533", error.message, error.hint) from None


def _one_target(examples: Examples, output, what: str, steps: int | None):
    """A dataset's one target per example for `output`: class indices and their number, or
    values and None."""
    if examples.y is None:
        raise DataError("E506", f"{what} has no targets", "train every output on the input")
    if examples.classes is not None:
        labels = examples.info.get("labels")
        return fit_classes(examples.y, examples.classes, output, what, steps, labels)
    per_step = output.shape.timed if examples.named is not None else examples.per_step
    return fit_values(examples.y, per_step, output, what, steps), None


def _steps(inputs: dict[str, np.ndarray], program: Program) -> int | None:
    """The number of time steps of the inputs that have a time axis (None: none has one)."""
    for name, array in inputs.items():
        if array.ndim == 2 + len(program.layer(name).shape.dims):
            return array.shape[1]
    return None


def _graph_data(
    graph: Graph, program: Program, name: str, what: str, fraction: float, rng, config: TrainConfig
) -> Data:
    if config.discriminator is not None or config.target == "input" or len(program.outputs) != 1:
        raise DataError(
            "E506",
            f"{what} is for node classification: one output with a class per node",
            f"end the network with a layer of [{graph.nodes}, {graph.classes}]",
        )
    inputs = graph_inputs(graph, program, what)
    labels, classes = fit_classes(graph.labels[None], graph.classes, program.outputs[0], what)
    train, test = _split(graph.nodes, fraction, rng, f"{what} ({graph.nodes} nodes)")
    parts = [
        _node_part(inputs, labels, index, graph.nodes) if index is not None else None
        for index in (train, test)
    ]
    return Data(name, "graph", parts[0], parts[1], classes, {**graph.info, "nodes": graph.nodes})


def _node_part(
    inputs: dict[str, np.ndarray], labels: np.ndarray, nodes: np.ndarray, count: int
) -> Split:
    """The whole graph, with a mask `[1, count]` of the nodes whose targets this part counts."""
    mask = np.zeros((1, count), dtype=bool)
    mask[0, nodes] = True
    return Split(inputs, labels, mask)


# ---- splitting ------------------------------------------------------------------------------
def _split(
    count: int, fraction: float, rng: np.random.Generator, what: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Indices of the training and held-out parts, each in data order: round(count * fraction)
    examples drawn at random are held out (at least one, and at least one left to train on)."""
    if fraction <= 0:
        return np.arange(count), None
    if count < 2:
        raise DataError(
            "E506",
            f"{what} has {count} example{'s' * (count != 1)}: nothing to hold out",
            "write split = 0",
        )
    held = min(max(round(count * fraction), 1), count - 1)
    order = rng.permutation(count)
    return np.sort(order[held:]), np.sort(order[:held])


def _split_in_time(examples, inputs, timed, program, name, what, config) -> Data:
    """One sequence with a target at every step (a series such as mackey_glass): the training
    part is its first steps, and the held-out part is the whole sequence with a mask on its last
    round(T * split) steps, so that a stateful network reaches them from the state the training
    steps leave it in, and only they are scored (reservoirpy's to_forecasting and run)."""
    steps = next(iter(inputs.values())).shape[1]
    held = min(max(round(steps * config.split), 1), steps - 1)
    cut = steps - held
    info = examples.info
    if config.normalize:  # by the training steps' statistics
        first = {key: value[:, :cut] for key, value in inputs.items()}
        stats = statistics(first, np.arange(1), program)
        inputs, info = standardise(inputs, stats), {**info, "normalize": stats}
    kind, targets, classes = _targets(examples, inputs, timed, program, what, config)
    mask = np.zeros((1, steps), bool)
    mask[:, cut:] = True
    train = Split({key: value[:, :cut] for key, value in inputs.items()}, targets[:, :cut])
    return Data(name, kind, train, Split(inputs, targets, mask), classes, info)


def _part(
    inputs: dict[str, np.ndarray], targets: Targets, index: np.ndarray | None
) -> Split | None:
    """The examples at `index` (None: no such part)."""
    if index is None:
        return None
    if isinstance(targets, dict):
        return Split(
            {k: v[index] for k, v in inputs.items()}, {k: v[index] for k, v in targets.items()}
        )
    return Split(
        {k: v[index] for k, v in inputs.items()}, None if targets is None else targets[index]
    )
