"""The plots of a run: loss and each metric per epoch, and a 2-D GAN's samples (matplotlib, Agg).

Importing matplotlib takes about half a second, as long as a small network's whole training. So
when matplotlib is not loaded yet, `Plots` starts a helper process that imports it while the run
trains (on another core) and draws the plots when the run ends; the files are the same either way.
When matplotlib is already loaded (a second run in one process), or the helper fails, the plots
are drawn here.

    with Plots() as plots:
        ...train...
        plots.draw([("history", path, {"history": rows})])
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..atomic import write_atomic

HELPER_TIMEOUT = 120  # seconds the helper may take to draw before the plots are drawn here instead


def plot_history(history: list[dict[str, float]], path: str) -> None:
    """Losses on one panel, every other metric on a second; held-out solid, training dashed."""
    _save(history_figure(history), path)


def history_figure(history: list[dict[str, float]], figure_class=None):
    """The figure `plot_history` saves, as a matplotlib `Figure` (`figure_class`, a subclass of
    it: what `TrainResult.plot()` returns); its margins are set as the saved file's."""
    epochs = [row["epoch"] for row in history]
    names = [k for k in history[0] if k not in ("epoch", "lr")]
    losses = [n for n in names if n.endswith("loss")]
    others = [n for n in names if not n.endswith("loss")]
    from matplotlib.ticker import MaxNLocator

    figure, axes = _figure((10 if others else 5.5, 3.6), 2 if others else 1, figure_class)
    # one panel without other metrics: the second group is left out
    for ax, group, title in zip(axes, (losses, others), ("loss", "metrics"), strict=False):
        for name in group:
            ax.plot(
                epochs,
                [row[name] for row in history],
                "--" if name.startswith("train_") else "-",
                label=name,
                marker="." if len(epochs) < 30 else None,
            )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    _margins(figure)
    return figure


def plot_samples(real, generated, path: str) -> None:
    """A GAN's generated points over the real ones (2-D data): what the coverage number means."""
    real, generated = np.asarray(real), np.asarray(generated)  # [N, 2] each, or the same as lists
    figure, (ax,) = _figure((4.6, 4.6), 1)
    ax.scatter(real[:, 0], real[:, 1], s=6, c="#999999", alpha=0.5, label="real", linewidths=0)
    ax.scatter(
        generated[:, 0],
        generated[:, 1],
        s=6,
        c="#d62728",
        alpha=0.6,
        label="generated",
        linewidths=0,
    )
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    # above the axes: no point hidden
    ax.legend(frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, markerscale=3)
    _save(figure, path)


PLOTS = {"history": plot_history, "samples": plot_samples}


def _figure(size: tuple[float, float], panels: int, figure_class=None):
    from matplotlib.figure import Figure  # no pyplot: no global figure list, no GUI backend to pick

    figure = (figure_class or Figure)(figsize=size)
    return figure, [figure.add_subplot(1, panels, k + 1) for k in range(panels)]


def _save(figure, path: str) -> None:
    _margins(figure)
    figure.savefig(path, format="png", dpi=110, metadata={"Software": None})


def _margins(figure) -> None:
    """Margins fixed in inches (room for tick labels of six characters), not measured by
    tight_layout, which draws the whole figure once more to measure it: 40% of the time a plot
    takes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=0.75 / width,
        right=1 - 0.15 / width,
        bottom=0.5 / height,
        top=1 - 0.35 / height,
        wspace=0.75 / (width / len(figure.axes) - 0.45),
    )


def draw(jobs: list[tuple[str, Path, dict]]) -> None:
    """Draw each (kind, path, arguments) here, each file written whole or not at all."""
    for kind, path, arguments in jobs:
        _draw_one(PLOTS[kind], path, arguments)


def _draw_one(plot, path: Path, arguments: dict) -> None:
    write_atomic(path, lambda p: plot(**arguments, path=p))


class Plots:
    """The run's plots, drawn by a helper process that loaded matplotlib while the run trained
    (see above)."""

    def __init__(self, helper: bool | None = None):
        """`helper`: whether to draw in a helper process;
        by default, when matplotlib is not loaded yet."""
        if helper is None:
            helper = "matplotlib" not in sys.modules
        self.helper = _start_helper() if helper else None

    def draw(self, jobs: list[tuple[str, Path, dict]]) -> None:
        if self.helper is not None:
            message = json.dumps(
                [(kind, str(Path(path).resolve()), arguments) for kind, path, arguments in jobs]
            )
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.helper.communicate(message.encode(), timeout=HELPER_TIMEOUT)
            drawn = self.helper.returncode == 0
            self.close()
            if drawn:
                return
        draw(jobs)  # no helper, or it failed: here, where an error shows as itself

    def close(self) -> None:
        """Stop the helper unless it has finished (a run that ends early, Ctrl-C while it draws)."""
        helper, self.helper = self.helper, None
        if helper is not None and helper.returncode is None:
            helper.kill()
            helper.communicate()  # closes its pipes and reaps it

    def __enter__(self) -> Plots:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _start_helper() -> subprocess.Popen | None:
    if not sys.executable:  # an embedded interpreter: no Python to start
        return None
    env = dict(os.environ, MPLBACKEND="Agg")
    try:
        # stdout: nothing is written to it, but its end shows the helper's at once,
        # where waiting on the process polls
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("plot_helper.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    except OSError:
        return None


def serve() -> None:
    """The helper process (`python .../nnspec/training/plot_helper.py`): load matplotlib and warm it
    with a throwaway plot while the run trains, then draw the jobs read from stdin (none: the run
    ended early)."""
    # Ctrl-C is the run's to handle, and the run stops this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    plot_history(
        [{"epoch": 1, "loss": 1.0, "accuracy": 0.5}, {"epoch": 2, "loss": 0.5, "accuracy": 1.0}],
        io.BytesIO(),
    )
    message = sys.stdin.read()
    if message:
        draw([(kind, Path(path), arguments) for kind, path, arguments in json.loads(message)])
    # the files are written and closed, the run is waiting, and tearing matplotlib down takes a
    # tenth of a second
    os._exit(0)
