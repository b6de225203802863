"""`nnspec train` on the terminal: a progress bar while it runs, then a table of what it reached."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..train_section import train_config
from .metrics import flat_epochs


def train_command(args) -> None:
    """Train as `args` say and show it; a failure is raised (nnspec.cli.main decides the exit
    code): `TrainingStopped`, an expectation missed (R304), Ctrl-C or SIGTERM with what was kept
    (a KeyboardInterrupt; after SIGTERM its `signal` is SIGTERM)."""
    with _sigterm_stops():
        _train(args)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what job schedulers and `kill` send): the same orderly stop as Ctrl-C."""

    signal = signal.SIGTERM


@contextlib.contextmanager
def _sigterm_stops():
    """While the block runs, SIGTERM stops the run as Ctrl-C does (the checkpoint kept, the
    temporary files removed, the command that resumes printed), where by default it would end
    the process at once; the handler before is put back after. Only the first SIGTERM raises:
    a second one while the run stops waits for the stop to finish."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set in the main thread
        return
    raised = []

    def stop(signum, frame):
        if not raised:
            raised.append(signum)
            raise Terminated

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:  # None: a handler set outside Python, which cannot be put back from here
        signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)


def _train(args) -> None:
    from ..errors import NnspecError
    from . import distributed, run_name, train_models, training_models
    from .folder import WriteFailed

    models = training_models(args.file, args.network)
    epochs = train_config(models[0].train_spec, epochs=args.epochs).epochs
    name = " and ".join(model.name for model in models)
    # under torchrun, the processes past the first train in silence: the first one reports
    quiet = distributed.group_size() > 1 and os.environ.get("RANK", "0") != "0"
    err = Console(stderr=True, quiet=quiet)
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as progress:
        task = progress.add_task(f"training {name}", total=epochs, metrics="")

        def report(epoch: int, row: dict[str, float]) -> None:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "lr"))
            progress.update(task, completed=epoch, metrics=shown)

        def resuming(text: str, epochs: int) -> None:
            progress.console.print(text, highlight=False, soft_wrap=True, markup=False)
            progress.update(task, total=epochs)

        try:
            result = train_models(
                models,
                args.backend,
                args.out,
                resume=args.resume,
                overwrite=getattr(args, "overwrite", False),
                epochs=args.epochs,
                lr=args.lr,
                batch=args.batch,
                seed=args.seed,
                progress=report,
                notify=resuming,
                procs=getattr(args, "procs", 1),
                device=getattr(args, "device", None),
                threads=getattr(args, "threads", None),
                tensorboard=getattr(args, "tensorboard", None),
            )
        except KeyboardInterrupt as stop:
            progress.stop()
            kind = type(stop) if isinstance(stop, Terminated) else KeyboardInterrupt
            raise kind(_interrupted(args, run_name(models), kind)) from None
        except (WriteFailed, distributed.WorkerFailed) as error:  # the hint: how to resume
            progress.stop()
            raise error.resumed(_resume_command(args, error.out)) from None
    if quiet:
        return
    out = Console(file=sys.stdout, highlight=False)
    table = Table(title=f"{result.network} ({result.backend})", show_edge=False)
    for column in ("metric", "reached", "expected", ""):
        table.add_column(column)
    expected = {e.metric: e for e in result.expectations}
    for name, value in result.metrics.items():
        e = expected.pop(name, None)
        table.add_row(
            name,
            f"{value:.4g}",
            f"{e.op} {e.wanted:g}" if e else "",
            ("ok" if e.met else "MISSED") if e else "",
        )
    for e in expected.values():
        table.add_row(e.metric, "not measured", f"{e.op} {e.wanted:g}", "MISSED")
    out.print(table)
    if result.early_stop is not None:
        out.print(_early_stop_text(result.early_stop), soft_wrap=True, markup=False)
    for what, path in result.paths.items():
        out.print(f"{what:>10}: {path}", markup=False, soft_wrap=True)  # as written, one line
    if not result.passed:
        missed = [
            f"{e.metric} {e.op} {e.wanted:g} (reached {e.reached:.4g})"
            for e in result.expectations
            if not e.met
        ]
        raise NnspecError("R304", "expectation missed: " + "; ".join(missed), _missed_hint(result))


def _early_stop_text(kept) -> str:
    """Which epoch early stopping kept, and why the run ended where it did."""
    ended = (
        f"stopped after epoch {kept.stopped}: no better {kept.metric} for "
        f"{kept.stopped - kept.epoch} epochs"
        if kept.stopped
        else "ran every epoch"
    )
    return (
        f"early stop: {ended}; kept the weights of epoch {kept.epoch} "
        f"({kept.metric} {kept.value:.4g})"
    )


def _missed_hint(result) -> str:
    """What to try after an expectation missed: another seed when the loss has been flat for the
    last quarter of the run or more (a start that got stuck: xor.nn gets stuck for 6 seeds of 20,
    docs/training.md), else more epochs or another network."""
    flat, epochs = flat_epochs(result.history), len(result.history)
    if epochs >= 8 and flat >= epochs // 4:
        return (
            f"the loss has not changed for the last {flat} of {epochs} epochs: the run may be "
            "stuck where gradient descent cannot leave (small networks are, from some starts); "
            "train again with another --seed, or change the network or its train section"
        )
    return "train for longer (--epochs), or change the network or its train section"


def _interrupted(args, name: str, kind: type = KeyboardInterrupt) -> str:
    """What Ctrl-C (or SIGTERM) kept, and the command that resumes it: the resumed run takes its
    backend and settings from the checkpoint, so the file, the folder and the network are all it
    needs."""
    from pathlib import Path

    from .checkpoint import CheckpointError, read

    out = Path(args.out) if args.out else Path("runs") / name
    stopped = "terminated (SIGTERM)" if kind is Terminated else "interrupted"
    try:
        epoch = read(out).epoch
    except CheckpointError:
        return (
            f"{stopped} before the first epoch finished: there is nothing to resume "
            f"(no checkpoint in {out}); train again without --resume"
        )
    return (
        f"{stopped}: the checkpoint of epoch {epoch} is kept in {out}; continue with --resume "
        f"(it keeps the run's backend and settings):\n  {_resume_command(args, out)}"
    )


def _resume_command(args, out) -> str:
    again = ["nnspec", "train", args.file, "--out", str(out), "--resume"]
    again += ["--network", args.network] if args.network else []
    again += ["--procs", str(args.procs)] if getattr(args, "procs", 1) > 1 else []
    tensorboard = getattr(args, "tensorboard", None)  # its events go on where they stopped
    again += ["--tensorboard", tensorboard] if tensorboard else []
    again += ["--threads", str(args.threads)] if getattr(args, "threads", None) else []
    return shlex.join(again)
