"""Nothing lost: a run stopped by Ctrl-C or killed outright resumes to the weights of an
uninterrupted run.

The runs are real `nnspec train` processes; the test waits for the first checkpoint, then sends
SIGINT (Ctrl-C) or SIGKILL (`kill -9`), and resumes with --resume. The uninterrupted run is made
once per backend and compared with both.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, EXAMPLES, ctrl_c_reaches_it, once
from safetensors import safe_open
from safetensors.numpy import load_file

SPEC = EXAMPLES / "lenet.nn"
EPOCHS = "12"


def _command(out, backend: str, *more: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nnspec",
        "train",
        str(SPEC),
        "--backend",
        backend,
        "--out",
        str(out),
        "--epochs",
        EPOCHS,
        *more,
    ]


def _checkpoint_epoch(out) -> int:
    with safe_open(str(out / "checkpoint.safetensors"), "np") as file:
        return json.loads(file.metadata()["nnspec"])["epoch"]


def _stop_after_first_checkpoint(
    out, backend: str, how: signal.Signals
) -> subprocess.CompletedProcess:
    process = subprocess.Popen(
        _command(out, backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.safetensors").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint within two minutes"
        time.sleep(0.02)
    process.send_signal(how)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _uninterrupted(tmp_path_factory, backend: str) -> tuple[subprocess.CompletedProcess, Path]:
    """The run that nothing stops, and its folder: made once per backend, read by both stops."""

    def run(out: Path) -> tuple[subprocess.CompletedProcess, Path]:
        done = subprocess.run(_command(out, backend), capture_output=True, text=True, timeout=300)
        return done, out

    return once(tmp_path_factory, f"lenet-{EPOCHS}-epochs-{backend}-cli", run)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_stopped_run_resumes_to_the_weights_of_an_uninterrupted_run(
    how, backend, tmp_path, tmp_path_factory
):
    stopped = _stop_after_first_checkpoint(tmp_path / "cut", backend, how)
    if how == signal.SIGINT:
        assert stopped.returncode == 130, stopped.stderr
        assert "continue with --resume" in stopped.stderr and "Traceback" not in stopped.stderr
        assert (
            f"the checkpoint of epoch {_checkpoint_epoch(tmp_path / 'cut')} is kept"
            in stopped.stderr
        )
    else:
        assert stopped.returncode == -signal.SIGKILL
    kept = _checkpoint_epoch(tmp_path / "cut")
    assert 1 <= kept < int(EPOCHS), "stopped in the middle of the run"
    assert not list((tmp_path / "cut").glob(".*part")) or how == signal.SIGKILL, (
        "Ctrl-C leaves no temporary file"
    )

    resumed = subprocess.run(
        _command(tmp_path / "cut", backend, "--resume"), capture_output=True, text=True, timeout=300
    )
    whole, whole_out = _uninterrupted(tmp_path_factory, backend)
    assert resumed.returncode == whole.returncode == 0, resumed.stderr + whole.stderr
    a, b = (load_file(str(out / "weights.safetensors")) for out in (tmp_path / "cut", whole_out))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    rows = (tmp_path / "cut" / "metrics.csv").read_text().splitlines()
    assert rows == (whole_out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + int(EPOCHS)
