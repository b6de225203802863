"""The training loop: epochs of shuffled batches, metrics, atomic checkpoints, resume,
NaN stop, expectations."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from ..atomic import write_atomic
from ..data.load import Data, Split
from ..program import layer_digests
from ..reading import DATA_LIMIT, ReadError, read_regular
from ..rules import rule_metrics
from ..train_section import TrainConfig
from .checkpoint import (
    AFRESH,
    CheckpointError,
    Record,
    Saved,
    kept_settings,
    layout_of,
    read,
    save,
)
from .metrics import LATENT_MEASURES, MEASURES
from .schedule import learning_rate
from .stopped import TrainingStopped

# a checkpoint is written after the first epoch, the last, and the first to end at least this many
# seconds after the one before: a run of tiny epochs (XOR's 2,000) would otherwise spend half its
# time writing checkpoints, and a kill loses at most this much training
CHECKPOINT_SECONDS = 1.0

OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Expectation:
    metric: str
    op: str
    wanted: float
    reached: float

    @property
    def met(self) -> bool:
        return not math.isnan(self.reached) and OPS[self.op](self.reached, self.wanted)


@dataclass
class Outcome:
    metrics: dict[str, float]  # the last epoch's (with early stopping: the kept epoch's)
    history: list[dict[str, float]]
    expectations: list[Expectation]
    epochs_run: int
    kept: EarlyStop | None = None  # early stopping: the epoch kept, and where it stopped


@dataclass(frozen=True)
class EarlyStop:
    """What early stopping did: the epoch whose weights were kept (the best `metric`, `value`),
    and the epoch it stopped after (None: it ran every epoch)."""

    metric: str
    epoch: int
    value: float
    stopped: int | None


BEST = "best.safetensors"  # the best epoch's weights, while early stopping watches a metric
LOWER_IS_BETTER = ("loss", "mae", "rmse", "nrmse", "kl", "bit_errors")


def _better(value: float, best: float | None, metric: str, min_delta: float) -> bool:
    """Whether `value` of `metric` improves on `best` by more than `min_delta`."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    lower = metric.rpartition(".")[2].removeprefix("train_") in LOWER_IS_BETTER
    return value < best - min_delta if lower else value > best + min_delta


def fit(
    runner,
    data: Data,
    config: TrainConfig,
    out: Path,
    resume: Saved | bool = False,
    progress=None,
    record: Record | None = None,
) -> Outcome:
    """Train `runner` on `data` as `config` says, writing metrics.csv and checkpoints into `out`.

    `resume`: the checkpoint to go on from (`checkpoint.read(out)`, already checked against the
    run), True to read it from `out`, False to start afresh. `record`: what each checkpoint records
    to recognise the run (by default the runner's network and `config`'s settings).

    NumPy's overflow warnings are silenced: a loss that becomes infinite or NaN stops the run with
    its own message (TrainingStopped), and a value that overflows on the way without spoiling
    the loss (a sigmoid's exp) is not the user's concern."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _fit(runner, data, config, out, resume, progress, record)


def _fit(runner, data: Data, config: TrainConfig, out: Path, resume, progress, record) -> Outcome:
    if record is None:
        program = getattr(runner, "program", None)
        record = Record(
            program.name if program else "",
            kept_settings(config),
            layers=layer_digests([program]) if program else {},
        )
    program = getattr(runner, "program", None)
    if program is not None and config.epochs:
        _check_batch_statistics(program, data.train, config.batch)
    saved = read(out) if resume is True else resume or None
    # a data-parallel run's ranks past 0 write nothing, and take from rank 0 what it read
    writes, broadcast = getattr(runner, "writes", True), getattr(runner, "broadcast", None)
    if writes:
        out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    history: list[dict[str, float]] = []
    start = 0
    watch = config.early_stop  # (patience, metric, min_delta) or None
    best: list | None = None  # [epoch, value] of the best epoch so far, when early stopping
    if saved is not None:
        start, history = _restore(runner, rng, out, saved, writes)
        history = broadcast(history) if broadcast else history
        best = saved.state.get("best")
    elif writes:
        for name in ("metrics.csv", BEST):
            (out / name).unlink(missing_ok=True)
    if hasattr(runner, "plan_steps"):  # a learning rule's schedules decay over the run's steps
        runner.plan_steps(config.epochs * _batch_count(data.train, config.batch))
    saved_at, saved_epoch = None, start  # when the last checkpoint was written, and its epoch
    stopped = None
    for epoch in range(start, config.epochs):
        if watch and best and epoch - best[0] >= watch[0]:
            stopped = epoch  # a resumed run that had stopped already
            break
        lr = learning_rate(config.schedule, config.lr, epoch, config.epochs)
        running = Running(
            counts_accuracy=data.outputs is None
            and (bool(data.classes) or "train_accuracy" in config.metrics),
            outputs=_classed(data),
        )
        # a runner may form its own batches (factors = LAYER: one group of the data each)
        batches = getattr(runner, "batches", _batches)
        for inputs, target, mask in batches(data.train, config.batch, rng):
            running.add(*runner.step(inputs, target, mask, lr), target, mask)
        _stop_on_bad_loss(running.losses, epoch, saved_epoch, out)
        row = {"epoch": epoch + 1, "lr": lr, **measure(runner, data, config, running)}
        # the last step can leave weights whose loss, measured after the epoch, is not finite
        _stop_on_bad_loss([row.get("loss", 0.0)], epoch, saved_epoch, out)
        history.append(row)
        if writes:
            _append_row(out / "metrics.csv", row)
        if watch and _better(row.get(watch[1], math.nan), best and best[1], watch[1], watch[2]):
            best = [epoch + 1, row[watch[1]]]
            if writes:
                _save_weights(out / BEST, runner.weights())
        stopping = bool(watch and best and epoch + 1 - best[0] >= watch[0])
        if writes and (
            saved_at is None
            or epoch + 1 == config.epochs
            or stopping
            or time.monotonic() - saved_at >= CHECKPOINT_SECONDS
        ):
            _save_checkpoint(runner, rng, out, epoch + 1, record, best)
            saved_at, saved_epoch = time.monotonic(), epoch + 1
        if progress is not None:
            progress(epoch + 1, row)
        if stopping:
            stopped = epoch + 1
            break
    if config.epochs == 0 or not history:
        row = {"epoch": 0, "lr": config.lr, **measure(runner, data, config)}
        history.append(row)
        if writes:
            _append_row(out / "metrics.csv", row)
    last, kept = history[-1], None
    if watch and best:  # the best epoch's weights and metrics are the run's
        weights = _read_weights(out / BEST) if writes else None
        runner.set_weights(broadcast(weights) if broadcast else weights)
        last = next(row for row in history if row["epoch"] == best[0])
        kept = EarlyStop(watch[1], best[0], best[1], stopped)
    expectations = [Expectation(m, op, v, last.get(m, float("nan"))) for m, op, v in config.expects]
    return Outcome(
        {k: v for k, v in last.items() if k not in ("epoch", "lr")},
        history,
        expectations,
        (stopped or config.epochs) - start,
        kept,
    )


def _stop_on_bad_loss(losses: list[float], epoch: int, saved_epoch: int, out: Path) -> None:
    """R301 when a loss of epoch `epoch` (0-based) is NaN or infinite; the checkpoint of
    `saved_epoch`, the last one written, is kept."""
    if all(math.isfinite(loss) for loss in losses):
        return
    kept = (
        f"the checkpoint of epoch {saved_epoch} is kept in {out}"
        if saved_epoch
        else "no epoch finished"
    )
    raise TrainingStopped(
        "R301",
        f"the loss became {_bad(losses)} in epoch {epoch + 1}; training stopped ({kept})",
        "lower the learning rate, or normalise the data",
    )


class Running:
    """The epoch's batches as they trained: the mean loss and accuracy, weighted by examples,
    as Keras reports them. With several outputs (`y` and the targets by name), the accuracy of
    each of `outputs` (those with classes) as `OUTPUT.train_accuracy`."""

    def __init__(self, counts_accuracy: bool, outputs: tuple[str, ...] = ()):
        self.counts_accuracy = counts_accuracy
        self.losses: list[float] = []
        self.loss_sum = self.right = self.count = 0.0
        self.outputs = outputs
        self.rights = dict.fromkeys(outputs, 0.0)

    def add(self, loss: float, y: np.ndarray | None, target, mask) -> None:
        count = int(mask.sum()) if mask is not None else _count(target)
        self.losses.append(loss)
        self.loss_sum += loss * count
        self.count += count
        if isinstance(y, dict):
            for name in self.outputs:
                self.rights[name] += MEASURES["accuracy"](y[name], target[name], mask) * count
        elif self.counts_accuracy and y is not None:
            self.right += MEASURES["accuracy"](y, target, mask) * count

    def values(self) -> dict[str, float]:
        values = {"train_loss": self.loss_sum / self.count}
        if self.counts_accuracy and not self.outputs:
            values["train_accuracy"] = self.right / self.count
        for name, right in self.rights.items():
            values[f"{name}.train_accuracy"] = right / self.count
        return values


def _count(target) -> int:
    """Examples in a batch's targets (by name for several outputs; none: a GAN's batch)."""
    if isinstance(target, dict):
        return len(next(iter(target.values())))
    return len(target) if target is not None else 1


def _classed(data: Data) -> tuple[str, ...]:
    """Of several outputs, those whose targets are classes (their accuracy is measured)."""
    return tuple(name for name, classes in (data.outputs or {}).items() if classes)


def _trained(name: str) -> str:
    """A metric's name on the training part: loss -> train_loss, digit.loss ->
    digit.train_loss."""
    output, dot, metric = name.rpartition(".")
    return f"{output}{dot}train_{metric}"


def measure(
    runner, data: Data, config: TrainConfig, running: Running | None = None
) -> dict[str, float]:
    """`loss` and the metrics on the held-out part (on the training part when there is none), from
    one evaluation pass; `train_*` on the training part. With a held-out part, `train_loss` and
    `train_accuracy` are the means over the epoch's batches as they trained (`running`); another
    train_ metric named in the spec costs a pass over the training part. A runner with a `measure`
    of its own (a GAN) measures itself."""
    if hasattr(runner, "measure"):
        return runner.measure(data, config, running)
    if data.test is None:
        values = _evaluate(runner, data.train, _asked(config, data, ""))
        return values | {_trained(name): value for name, value in values.items()}
    values = _evaluate(runner, data.test, _asked(config, data, ""))
    train_names = _asked(config, data, "train_")
    counted = {"accuracy"} | {f"{name}.accuracy" for name in _classed(data)}
    if running is None or train_names - counted:
        return values | {
            _trained(name): value
            for name, value in _evaluate(runner, data.train, train_names).items()
        }
    return values | running.values()


def _asked(config: TrainConfig, data: Data, prefix: str) -> set[str]:
    """The metrics (besides the loss) to measure on a part:
    those the spec names, and accuracy for classes."""
    if data.outputs is not None:
        return _asked_of_outputs(config, data.outputs, prefix)
    names = {m.removeprefix(prefix) for m in config.metrics if m.startswith(prefix)} & (
        set(MEASURES) | set(rule_metrics()) | set(LATENT_MEASURES)
    )
    # values: accuracy when asked for (above 0.5 is 1)
    return names | {"accuracy"} if data.classes else names


def _asked_of_outputs(config: TrainConfig, outputs: dict[str, int | None], prefix: str) -> set[str]:
    """`OUTPUT.metric` for several outputs: each output's accuracy when its targets are classes,
    a metric the section names alone (`metrics = [mae]`) for every output it fits (accuracy for
    classes, the others for values), and those named with their output (`expect
    digit.accuracy`)."""
    asked = {f"{name}.accuracy" for name, classes in outputs.items() if classes}
    for named in config.metrics:
        output, _, metric = named.rpartition(".")
        if not metric.startswith(prefix) or metric.removeprefix(prefix) not in MEASURES:
            continue
        metric = metric.removeprefix(prefix)
        if output in outputs:
            asked.add(f"{output}.{metric}")
        elif not output:
            fits = (
                name for name, classes in outputs.items() if bool(classes) == (metric == "accuracy")
            )
            asked |= {f"{name}.{metric}" for name in fits}
    return asked


def _evaluate(runner, part: Split, names: set[str]) -> dict[str, float]:
    loss, y = runner.evaluate(part.inputs, part.targets, part.mask)
    if isinstance(y, dict):  # several outputs: `loss` is each one's, names are OUTPUT.metric
        values = dict(loss)
        for name in sorted(names):
            output, _, metric = name.rpartition(".")
            values[name] = MEASURES[metric](y[output], part.targets[output], part.mask)
        return values
    own = getattr(runner, "own_measure", None)  # a learning rule's metrics, from its view
    values = {"loss": loss}
    for name in sorted(names):
        value = None if own is None else own(name, part.inputs, part.targets)
        values[name] = MEASURES[name](y, part.targets, part.mask) if value is None else value
    return values


def _batch_count(split: Split, batch: int | None) -> int:
    """How many batches `_batches` gives in an epoch."""
    if split.mask is not None or batch is None:
        return 1
    return -(-split.size // batch)


def _batches(split: Split, batch: int | None, rng: np.random.Generator):
    """Shuffled batches each epoch;
    a graph (a mask) and batch = full give the whole split at once."""
    if split.mask is not None or batch is None:
        yield split.inputs, split.targets, split.mask
        return
    count = split.size
    order = rng.permutation(count)
    for begin in range(0, count, batch):
        index = order[begin : begin + batch]
        targets = split.targets
        yield (
            {k: v[index] for k, v in split.inputs.items()},
            {k: v[index] for k, v in targets.items()}
            if isinstance(targets, dict)
            else None
            if targets is None
            else targets[index],
            None,
        )


def _check_batch_statistics(program, split: Split, batch: int | None) -> None:
    """`batchnorm` in training needs two values or more per feature in every batch: a batch (or
    an epoch's last batch) of one example of vectors would fail inside either backend (R305)."""
    sizes = (
        {split.size}
        if split.mask is not None or batch is None
        else {min(batch, split.size), split.size % batch} - {0}
    )
    for layer in program.layers:
        if layer.kind.name != "batchnorm" or 1 not in sizes:
            continue
        dims = layer.shape.dims
        per_example = math.prod(dims) // dims[0 if len(dims) == 3 else -1]
        if layer.shape.timed:
            per_example *= layer.shape.steps or 2  # any length: two steps or more, we assume
        if per_example >= 2:
            continue
        why = (
            "each batch holds 1 example"
            if batch == 1 or split.size == 1
            else f"the last batch of each epoch holds 1 ({split.size} examples in batches of "
            f"{batch})"
        )
        raise TrainingStopped(
            "R305",
            f"batchnorm '{layer.name}' needs two values or more per feature in every training "
            f"batch, but {why}",
            "choose a batch size that leaves no single example over (or batch = full), or use "
            "layernorm, which normalises each example on its own",
        )


def _bad(losses: list[float]) -> str:
    return "NaN" if any(math.isnan(loss) for loss in losses) else "infinite"


# ---- files ---------------------------------------------------------------------------------------
def _append_row(path: Path, row: dict[str, float]) -> None:
    """One row (and the header, into a new file) in a single write: a run stopped at any moment,
    or a write the disk refuses, leaves whole rows only (what was written of a refused row is cut
    off again; a kill in the middle of the write leaves a partial line, which a resume drops)."""
    handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(handle).st_size
        data = _rows_text([row], header=size == 0).encode()
        try:
            while data:
                data = data[os.write(handle, data) :]
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(handle, size)
            raise
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    finally:
        os.close(handle)


def _rows_text(rows: list[dict[str, float]], header: bool) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else [])
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return text.getvalue()


def _save_weights(path: Path, weights: dict[str, np.ndarray]) -> None:
    """The best epoch's weights (early stopping), replaced at once."""
    arrays = {k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in weights.items()}
    write_atomic(path, lambda p: save_file(arrays, p))


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """The best epoch's weights, as `_save_weights` wrote them; R310 when they are gone or
    damaged (the run cannot say which weights it kept)."""
    try:
        return load_file(str(path))
    except (OSError, ValueError, SafetensorError) as error:
        raise CheckpointError(
            "R310",
            f"the best epoch's weights {path} cannot be read ({error})",
            f"the run cannot keep its best epoch: {AFRESH}",
        ) from None


def _save_checkpoint(
    runner, rng: np.random.Generator, out: Path, epoch: int, record, best=None
) -> None:
    """Arrays and state in one file (checkpoint.py), replaced at once."""
    arrays, meta = runner.checkpoint()
    state = {
        "epoch": epoch,
        "backend": runner.backend,
        "network": record.network,
        "layout": layout_of(runner.weights()),
        "layers": record.layers,
        "settings": record.settings,
        "overrides": record.overrides,
        "random": rng.bit_generator.state,
        "runner": meta,
        **({"best": best} if best else {}),
    }
    save(out, arrays, state)


def _restore(
    runner, rng: np.random.Generator, out: Path, saved: Saved, writes: bool = True
) -> tuple[int, list[dict]]:
    """Put the run back as `saved` holds it (already recognised as this run's); the rows of
    metrics.csv written after it (an epoch cut short) are dropped (by the run that `writes`)."""
    saved.check_layout(saved.state["network"], layout_of(runner.weights()))
    try:
        runner.restore(saved.arrays, saved.state["runner"])
        rng.bit_generator.state = saved.state["random"]
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        raise CheckpointError(
            "R310",
            f"the checkpoint is damaged: {saved.path}: it cannot be restored ({error})",
            f"the run cannot go on from it: {AFRESH}",
        ) from None
    if not writes:
        return saved.epoch, []
    history = _read_rows(out / "metrics.csv", saved.epoch)
    if history:  # replaced at once: a failure here leaves the rows as they were
        write_atomic(
            out / "metrics.csv", lambda p: Path(p).write_text(_rows_text(history, True), newline="")
        )
    else:
        (out / "metrics.csv").unlink(missing_ok=True)
    return saved.epoch, history


def _read_rows(path: Path, last_epoch: int) -> list[dict[str, float]]:
    """The rows of a resumed run's metrics.csv up to the checkpoint's epoch (none if the file is
    gone). Read only as a regular file; a file that is not the csv nnspec writes is refused
    (R310), since the resumed run would write its rows after rubbish."""
    try:
        text = read_regular(path, "metrics file", DATA_LIMIT, "R310").decode()
    except ReadError as error:
        if error.reason == "missing":
            return []
        raise CheckpointError(
            "R310", f"{error.message}: the run cannot be resumed", AFRESH
        ) from None
    except UnicodeDecodeError:
        raise _damaged_rows(path, "it is not text") from None
    records = list(csv.DictReader(io.StringIO(text, newline="")))
    rows = []
    for line, row in enumerate(records, start=2):
        try:
            rows.append({k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()})
        except (TypeError, ValueError):
            # a last line without its line end, cut short by a kill as it was written: a row is
            # written before its epoch's checkpoint, so it is past the checkpoint, and dropped
            if line == len(records) + 1 and not text.endswith("\n"):
                break
            raise _damaged_rows(path, f"line {line} is not a row of numbers") from None
    return [row for row in rows if row.get("epoch", 0) <= last_epoch]


def _damaged_rows(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        "R310",
        f"the run's {path} is damaged: {why}",
        "the checkpoint itself is whole: move metrics.csv out of the way to resume without the "
        f"earlier rows, or {AFRESH}",
    )


__all__ = ["EarlyStop", "Expectation", "Outcome", "TrainingStopped", "fit", "measure"]
