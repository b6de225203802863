"""`nnspec train` on the terminal: a progress bar while it runs, then a table of what it reached."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..train_section import train_config


def train_command(args) -> int:
    from pathlib import Path

    from . import TrainingStopped, run_name, train_models, training_models

    try:
        models = training_models(args.file, args.network)
    except TrainingStopped as stop:
        Console(stderr=True).print(f"[red]error[/red]: {stop}")
        return 1
    epochs = train_config(models[0].train_spec, epochs=args.epochs).epochs
    name = " and ".join(model.name for model in models)
    err = Console(stderr=True)
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as progress:
        task = progress.add_task(f"training {name}", total=epochs, metrics="")

        finished = [0]

        def report(epoch: int, row: dict[str, float]) -> None:
            finished[0] = epoch
            shown = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "lr"))
            progress.update(task, completed=epoch, metrics=shown)

        try:
            result = train_models(
                models,
                args.backend,
                args.out,
                resume=args.resume,
                epochs=args.epochs,
                lr=args.lr,
                batch=args.batch,
                seed=args.seed,
                progress=report,
            )
        except TrainingStopped as stop:
            err.print(f"[red]error[/red]: {stop}")
            return 1
        except KeyboardInterrupt:
            progress.stop()
            out = args.out or str(Path("runs") / run_name(models))
            kept = (
                f"the checkpoint of epoch {finished[0]} is kept in {out}"
                if finished[0]
                else "no epoch finished"
            )
            print(
                f"interrupted: {kept}; continue with --resume:\n  nnspec train {args.file} --out {out} --resume",
                file=sys.stderr,
            )
            return 130
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
    for what, path in result.paths.items():
        out.print(f"{what:>10}: {path}")
    if not result.passed:
        missed = [
            f"{e.metric} {e.op} {e.wanted:g} (reached {e.reached:.4g})"
            for e in result.expectations
            if not e.met
        ]
        print("expectation missed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0
