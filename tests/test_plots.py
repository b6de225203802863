"""A run's plots: drawn by a helper process (matplotlib loaded while the run trains) or
in-process, the same files either way."""

import subprocess
import sys
from pathlib import Path
from subprocess import Popen

import numpy as np
import pytest
from matplotlib.image import imread

from nnspec.training import plot
from nnspec.training.plot import Plots, draw

pytestmark = pytest.mark.slow  # each test starts a helper process that imports matplotlib

HISTORY = [
    {
        "epoch": e,
        "lr": 0.01,
        "loss": 1 / e,
        "accuracy": 1 - 0.5 / e,
        "train_loss": 1.2 / e,
        "train_accuracy": 1 - 0.6 / e,
    }
    for e in range(1, 13)
]


def jobs(folder):
    rng = np.random.default_rng(0)
    real, generated = rng.normal(size=(200, 2)), rng.normal(0.5, 1, size=(100, 2))
    return [
        ("history", folder / "metrics.png", {"history": HISTORY}),
        (
            "samples",
            folder / "samples.png",
            {"real": real.tolist(), "generated": generated.tolist()},
        ),
    ]


def test_the_helper_process_draws_the_same_files_as_drawing_here(tmp_path):
    (tmp_path / "here").mkdir(), (tmp_path / "helper").mkdir()
    draw(jobs(tmp_path / "here"))
    with Plots(helper=True) as plots:
        assert plots.helper is not None
        helper = plots.helper
        plots.draw(jobs(tmp_path / "helper"))
    assert helper.returncode == 0, "the helper drew them; nothing was drawn here instead"
    for name in ("metrics.png", "samples.png"):
        assert (tmp_path / "helper" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()
    image = imread(tmp_path / "helper" / "metrics.png")
    assert image.shape[1] > image.shape[0] > 300  # two panels side by side
    assert not list(tmp_path.glob("*/.*part")), "no temporary file is left behind"


def test_a_helper_that_died_leaves_the_drawing_to_this_process(tmp_path):
    with Plots(helper=True) as plots:
        plots.helper.kill()
        plots.helper.wait()
        plots.draw(jobs(tmp_path))
    assert imread(tmp_path / "metrics.png").shape[2] == 4


def test_a_run_that_ends_without_plots_stops_its_helper(tmp_path):
    with Plots(helper=True) as plots:
        helper = plots.helper
    assert helper.returncode is not None and plots.helper is None
    assert not list(tmp_path.iterdir())


def test_the_helper_draws_nothing_when_the_run_goes_away_first():
    """A run killed (kill -9) closes the helper's input unsent: the helper exits without a file
    or a message."""
    done = subprocess.run(
        [sys.executable, str(Path(plot.__file__).with_name("plot_helper.py"))],
        input=b"",
        capture_output=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_by_default_the_helper_runs_only_while_matplotlib_is_not_loaded_here():
    import matplotlib  # loaded by now in this test process

    assert matplotlib.__name__ in sys.modules
    with Plots() as plots:
        assert plots.helper is None


def test_ctrl_c_while_the_helper_draws_stops_it(tmp_path):
    with pytest.raises(KeyboardInterrupt), Plots(helper=True) as plots:
        helper = plots.helper
        calls = []

        def interrupted(*args, **kwargs):  # Ctrl-C arrives while the run waits for the drawing
            calls.append(args)
            if len(calls) == 1:
                raise KeyboardInterrupt
            return Popen.communicate(helper, *args, **kwargs)

        helper.communicate = interrupted
        plots.draw(jobs(tmp_path))
    assert helper.returncode is not None and plots.helper is None
    assert not list(tmp_path.iterdir()), "nothing drawn after Ctrl-C"
