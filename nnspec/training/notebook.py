"""Training in Jupyter: the progress bar under a cell while `nnspec.train` runs, and what a
`TrainResult` shows: its table of metrics and, from `plot()`, its loss and metrics per epoch
(examples/tour.ipynb).

    result = nnspec.train("xor.nn")        # in a notebook: a bar under the cell
    result                                 # metric, reached, expected, ok
    result.plot()                          # a matplotlib Figure, shown as a PNG

IPython is never imported here: the notebook bar is used only where a kernel has loaded it.
"""

from __future__ import annotations

import functools
import html
import io
import sys
import time
from contextlib import contextmanager

from ..errors import NnspecError

UPDATE_EVERY = 0.1  # seconds between two updates of a bar (and always the last epoch)
PNG_DPI = 110  # a plot's PNG in a notebook: as metrics.png


# ---- TrainResult ----------------------------------------------------------------------------
def result_html(result) -> str:
    """A run's metrics as `nnspec train` prints them: metric, reached, expected, ok or MISSED."""
    expected = {e.metric: e for e in result.expectations}
    rows = []
    for name, value in result.metrics.items():
        e = expected.pop(name, None)
        rows.append((name, f"{value:.4g}", *_expectation(e)))
    rows += [(e.metric, "not measured", *_expectation(e)) for e in expected.values()]
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    head = "".join(f"<th>{name}</th>" for name in ("metric", "reached", "expected", ""))
    title = f"{result.network} ({result.backend})"
    notes = []
    if result.early_stop is not None:
        kept = result.early_stop
        notes.append(
            f"early stop: kept the weights of epoch {kept.epoch} ({kept.metric} {kept.value:.4g})"
        )
    notes += [f"{what}: {path}" for what, path in result.paths.items()]
    text = "<br>".join(html.escape(note) for note in notes)
    return (
        f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>{text}</p>"
    )


def result_figure(result):
    """`TrainResult.plot()`: the run's loss and metrics per epoch (training/plot.py) as a Figure
    that shows itself in a notebook as a PNG, with or without pyplot's inline backend. A run with
    no epoch recorded has nothing to plot (R341)."""
    from .plot import history_figure

    if not result.history:
        raise NnspecError(
            "R341",
            f"the run of '{result.network}' recorded no epoch: there is nothing to plot",
            "train for at least one epoch, then plot the result",
        )
    return history_figure(result.history, _shown_figure())


@functools.cache
def _shown_figure():
    """matplotlib's `Figure` with a PNG for IPython: a figure made without pyplot has none."""
    from matplotlib.figure import Figure

    class ResultFigure(Figure):
        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
            return buffer.getvalue()

    return ResultFigure


def _expectation(e) -> tuple[str, str]:
    return ("", "") if e is None else (f"{e.op} {e.wanted:g}", "ok" if e.met else "MISSED")


# ---- progress -------------------------------------------------------------------------------
def in_notebook() -> bool:
    """Whether this is a Jupyter kernel (IPython's ZMQ shell, or a subclass of it as Colab's),
    without importing IPython."""
    ipython, zmq = sys.modules.get("IPython"), sys.modules.get("ipykernel.zmqshell")
    if ipython is None or zmq is None:
        return False
    return isinstance(ipython.get_ipython(), zmq.ZMQInteractiveShell)


@contextmanager
def progress_for(progress, title: str, epochs: int):
    """What `nnspec.train(progress=...)` reports to, as (progress, notify) for `train_models`:
    `progress` itself when it is a function `progress(epoch, row)`; for None (the default) a bar
    under the cell in a notebook and nothing elsewhere; for True a bar anywhere (on stderr outside
    a notebook); nothing for False."""
    if callable(progress):
        yield progress, None
    elif progress is False or (progress is None and not in_notebook()):
        yield None, None
    elif progress is None or progress is True:
        bar = NotebookBar(title, epochs) if in_notebook() else TerminalBar(title, epochs)
        try:
            yield bar, bar.notify
        except BaseException:  # an error, Ctrl-C: the bar says where the run stopped
            bar.close(stopped=True)
            raise
        bar.close()
    else:
        raise TypeError(
            f"progress is a function progress(epoch, row), or True, False or None, not {progress!r}"
        )


class NotebookBar:
    """A progress bar in a notebook's output: one display that each epoch updates in place
    (IPython's display ids), as HTML with a text version, at most every UPDATE_EVERY seconds and
    at the last epoch. Needs no widgets: it is the same display message a finished cell sends."""

    def __init__(self, title: str, total: int):
        from IPython.display import display

        self.title, self.total = title, total
        self.epoch, self.shown, self.note = 0, "", ""
        self.start = self.sent = time.monotonic()
        self.handle = display(self._bundle(), raw=True, display_id=True)

    def __call__(self, epoch: int, row: dict[str, float]) -> None:
        self.epoch = epoch
        self.shown = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "lr"))
        now = time.monotonic()
        if now - self.sent >= UPDATE_EVERY or epoch >= self.total:
            self.sent = now
            self.handle.update(self._bundle(), raw=True)

    def notify(self, text: str, epochs: int) -> None:
        """A resumed run: what it takes from the checkpoint, and the epochs it goes to."""
        self.note, self.total = text, epochs
        self.handle.update(self._bundle(), raw=True)

    def close(self, stopped: bool = False) -> None:
        if stopped:
            self.title += f" (stopped after epoch {self.epoch})"
        self.handle.update(self._bundle(), raw=True)

    def _bundle(self) -> dict[str, str]:
        elapsed = time.monotonic() - self.start
        clock = f"{int(elapsed // 60)}:{elapsed % 60:04.1f}"
        counted = f"{self.epoch}/{self.total}"
        width = 30
        done = round(width * self.epoch / self.total) if self.total else width
        text = f"{self.title} {'━' * done}{' ' * (width - done)} {counted}  {self.shown}  {clock}"
        note = f"<div>{html.escape(self.note)}</div>" if self.note else ""
        page = (
            f"{note}<div style='font-family:monospace'><b>{html.escape(self.title)}</b> "
            f"<progress value='{self.epoch}' max='{max(self.total, 1)}' "
            f"style='width:16em;vertical-align:middle'></progress> {counted} epochs &nbsp; "
            f"{html.escape(self.shown)} &nbsp; {clock}</div>"
        )
        return {"text/plain": (self.note + "\n" if self.note else "") + text, "text/html": page}


class TerminalBar:
    """`progress=True` outside a notebook: the bar `nnspec train` shows, on stderr."""

    def __init__(self, title: str, total: int):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeRemainingColumn(),
        ]
        self.progress = Progress(*columns, console=Console(stderr=True))
        self.task = self.progress.add_task(title, total=total, metrics="")
        self.progress.start()

    def __call__(self, epoch: int, row: dict[str, float]) -> None:
        shown = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "lr"))
        self.progress.update(self.task, completed=epoch, metrics=shown)

    def notify(self, text: str, epochs: int) -> None:
        self.progress.console.print(text, highlight=False, soft_wrap=True, markup=False)
        self.progress.update(self.task, total=epochs)

    def close(self, stopped: bool = False) -> None:
        self.progress.stop()
