"""Faults mid-training: a full disk, a folder made read-only or removed while a run writes into
it, `--out` naming a file, two runs into one folder, a folder that already holds a run, SIGTERM.

Every fault ends in a clear error (R320 to R323, or exit 143 for SIGTERM) that names the file,
why, the epoch of the checkpoint kept and the command that resumes; the checkpoint kept is whole
(read back with its digest); metrics.csv holds whole rows only, and after the resume each epoch
exactly once, 1..N; no temporary `.part` file is left anywhere.

The full disk and the read-only folder are real where the machine allows it (root, and a small
tmpfs mounted in the test, as CI runs); the same faults are also injected (monkeypatch), which
always runs.
"""

import contextlib
import csv
import errno
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, EXAMPLES
from safetensors import SafetensorError
from safetensors.numpy import load_file

import nnspec
import nnspec.atomic
import nnspec.training
import nnspec.training.checkpoint
import nnspec.training.loop
from nnspec.cli import main
from nnspec.errors import NnspecError
from nnspec.training.folder import LOCK, hold

EPOCHS = 5
SPEC = """\
network f "a small network to break" {
    input x: 2
    dense h: 8, act=tanh
    dense y: 1, act=sigmoid
    x -> h -> y
}

train {
    data      = xor
    loss      = mse
    optimizer = adam(lr=0.05)
    batch     = 2
    epochs    = 5
    seed      = 0
}
"""
# a run of whole seconds on either backend, for the signals and the lock: 8x8 digits
DIGITS = """\
network d "a dense network on the 8x8 digits" {
    input x: 64
    dense h: 32, act=relu
    dense y: 10, act=softmax
    x -> h -> y
}

train {
    data      = digits
    loss      = cross_entropy
    optimizer = adam(lr=0.01)
    batch     = 16
    epochs    = 8
    seed      = 0
}
"""


@pytest.fixture
def every_epoch(monkeypatch):
    """A checkpoint after every epoch (not at most once a second): the epoch kept is known."""
    monkeypatch.setattr(nnspec.training.loop, "CHECKPOINT_SECONDS", 0.0)


def _spec(folder: Path, text: str = SPEC) -> Path:
    path = folder / "model.nn"
    path.write_text(text)
    return path


def _at_epoch(epoch: int, action):
    """A progress callback that runs `action()` once, after `epoch` (its row and checkpoint
    are written by then)."""

    def progress(done: int, row: dict) -> None:
        if done == epoch:
            action()

    return progress


def _epochs(out: Path) -> list[int]:
    text = (out / "metrics.csv").read_text()
    assert text.endswith("\n"), "whole rows only"
    return [int(row["epoch"]) for row in csv.DictReader(text.splitlines())]


def _kept(out: Path) -> int:
    """The epoch of the checkpoint in `out`, read whole and checked against its digest."""
    return nnspec.training.checkpoint.read(out).epoch


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def _stopped(run) -> NnspecError:
    with pytest.raises(NnspecError) as caught:
        run()
    return caught.value


def _assert_stopped_and_resumes(error, out: Path, spec: Path, kept: int, why: str) -> None:
    """R323 naming the file and why, the checkpoint of epoch `kept` whole, whole rows, no
    temporary file; then the resume gives epochs 1..EPOCHS, each once."""
    assert error.code == "R323", error
    assert why in error.message and f"the checkpoint of epoch {kept} is kept" in error.message
    assert f"then go on from epoch {kept}: " in error.hint and "--resume" in error.hint
    assert _kept(out) == kept
    assert _epochs(out) == list(range(1, len(_epochs(out)) + 1))
    assert not _temporaries(out)
    resumed = nnspec.train(spec, out=out, resume=True)
    assert [row["epoch"] for row in resumed.history] == list(range(1, EPOCHS + 1))
    assert _epochs(out) == list(range(1, EPOCHS + 1))
    assert _kept(out) == EPOCHS and not _temporaries(out)


# ---- injected write errors: always run ---------------------------------------------------------
class _Os:
    """The `os` module, but for the functions given (a fault injected into one module only)."""

    def __init__(self, **functions):
        self.__dict__.update(functions)

    def __getattr__(self, name):
        return getattr(os, name)


def _refuse(number: int):
    return OSError(number, os.strerror(number))


def _half_a_row_then(number: int, armed: list):
    """os.write for metrics.csv: once armed, writes half of what it is given, then fails."""

    def write(handle, data):
        if armed and os.readlink(f"/proc/self/fd/{handle}").endswith("metrics.csv"):
            armed.clear()
            os.write(handle, data[: len(data) // 2])
            raise _refuse(number)
        return os.write(handle, data)

    return write


def _half_a_file_then(number: int, armed: list, rust: bool = False):
    """save_file: once armed, writes half a file, then fails (as safetensors does: its error is
    text, not an OSError)."""

    def save(arrays, path, metadata=None):
        if not armed:
            from safetensors.numpy import save_file

            return save_file(arrays, path, metadata=metadata)
        armed.clear()
        Path(path).write_bytes(b"\0" * 100)
        if rust:
            message = (
                f"Error while serializing: I/O error: {os.strerror(number)} (os error {number})"
            )
            raise SafetensorError(message)
        raise _refuse(number)

    return save


WHY = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("where", "number"),
    [(where, errno.ENOSPC) for where in ("metrics-row", "checkpoint", "rename", "weights")]
    + [("metrics-row", errno.EROFS), ("checkpoint", errno.EACCES)],
    ids=[
        "metrics-row",
        "checkpoint",
        "rename",
        "weights",
        "metrics-row-EROFS",
        "checkpoint-EACCES",
    ],
)
def test_an_injected_write_error_stops_the_run_and_it_resumes(
    where, number, backend, tmp_path, monkeypatch, every_epoch
):
    spec, out, armed = _spec(tmp_path), tmp_path / "run", []
    if where == "metrics-row":  # half a row reaches the file before the disk refuses the rest
        monkeypatch.setattr(nnspec.training.loop, "os", _Os(write=_half_a_row_then(number, armed)))
    elif where == "checkpoint":
        monkeypatch.setattr(
            nnspec.training.checkpoint, "save_file", _half_a_file_then(number, armed, rust=True)
        )
    elif where == "rename":  # the temporary is whole; renaming it into place fails

        def replace(source, target):
            if armed:
                armed.clear()
                raise _refuse(number)
            return os.replace(source, target)

        monkeypatch.setattr(nnspec.atomic, "os", _Os(replace=replace))
    else:  # after the last epoch, the final weights
        monkeypatch.setattr(nnspec.training, "save_file", _half_a_file_then(number, armed))
    stop = EPOCHS if where == "weights" else 2
    error = _stopped(
        lambda: nnspec.train(spec, backend, out, progress=_at_epoch(stop, lambda: armed.append(1)))
    )
    filename = "weights.safetensors" if where == "weights" else "metrics.csv"
    if where in ("checkpoint", "rename"):
        filename = "checkpoint.safetensors"
    assert f"cannot write {out / filename}: {WHY[number]}" in error.message, error
    assert not (out / LOCK).exists(), "the lock is let go"
    monkeypatch.undo()
    monkeypatch.setattr(nnspec.training.loop, "CHECKPOINT_SECONDS", 0.0)
    _assert_stopped_and_resumes(error, out, spec, stop, WHY[number])


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_stopped_by_a_full_disk_resumes_to_the_weights_of_an_uninterrupted_run(
    backend, tmp_path, monkeypatch, every_epoch
):
    spec, armed = _spec(tmp_path), []
    monkeypatch.setattr(
        nnspec.training.loop, "os", _Os(write=_half_a_row_then(errno.ENOSPC, armed))
    )
    error = _stopped(
        lambda: nnspec.train(
            spec, backend, tmp_path / "cut", progress=_at_epoch(3, lambda: armed.append(1))
        )
    )
    assert error.code == "R323" and _kept(tmp_path / "cut") == 3
    nnspec.train(spec, out=tmp_path / "cut", resume=True)
    nnspec.train(spec, backend, tmp_path / "whole")
    a, b = (load_file(str(tmp_path / name / "weights.safetensors")) for name in ("cut", "whole"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    rows = [(tmp_path / name / "metrics.csv").read_text() for name in ("cut", "whole")]
    assert rows[0] == rows[1]


@pytest.mark.slow
def test_the_command_line_names_the_command_that_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(nnspec.training.loop, "CHECKPOINT_SECONDS", 0.0)
    spec, out, armed, calls = _spec(tmp_path), tmp_path / "run", [], []
    failing = _half_a_file_then(errno.ENOSPC, armed, rust=True)

    def save(arrays, path, metadata=None):  # the third checkpoint meets a full disk
        calls.append(path)
        armed.extend([1] if len(calls) == 3 else [])
        return failing(arrays, path, metadata)

    monkeypatch.setattr(nnspec.training.checkpoint, "save_file", save)
    assert main(["train", str(spec), "--backend", "numpy", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[R323]: cannot write " in err and "the disk is full (ENOSPC)" in err, err
    assert "the checkpoint of epoch 2 is kept in " in err and "Traceback" not in err
    command = err.strip().splitlines()[-1].split("then go on from epoch 2: ")[1]
    assert command == shlex.join(["nnspec", "train", str(spec), "--out", str(out), "--resume"])
    monkeypatch.setattr(nnspec.training.checkpoint, "save_file", failing)  # disarmed
    assert main(shlex.split(command)[1:]) == 0, capsys.readouterr().err
    assert _epochs(out) == list(range(1, EPOCHS + 1)) and not _temporaries(out)


def test_a_folder_removed_mid_run_is_a_clear_error(tmp_path, every_epoch):
    spec, out = _spec(tmp_path), tmp_path / "run"
    error = _stopped(
        lambda: nnspec.train(spec, "numpy", out, progress=_at_epoch(2, lambda: shutil.rmtree(out)))
    )
    assert error.code == "R323", error
    assert f"the run folder {out} is gone (removed or moved while the run wrote into it)" in str(
        error
    )
    assert "train again with --overwrite" in error.hint
    assert "nothing of the run can be resumed" in error.hint
    assert not out.exists(), "the folder is not made again behind the user's back"


def test_a_full_disk_at_the_first_checkpoint_says_how_to_start_again(tmp_path, monkeypatch, capsys):
    """Nothing to resume: the hint names --overwrite, and the command it names trains."""
    spec, out, armed = _spec(tmp_path), tmp_path / "run", [1]
    monkeypatch.setattr(
        nnspec.training.checkpoint, "save_file", _half_a_file_then(errno.ENOSPC, armed, rust=True)
    )
    argv = ["train", str(spec), "--backend", "numpy", "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "error[R323]" in err and "then train again with --overwrite" in err, err
    monkeypatch.undo()
    assert main(argv) == 1 and "R322" in capsys.readouterr().err  # the results left are kept
    assert main([*argv, "--overwrite"]) == 0, capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("cut", ["in-a-number", "before-the-line-end"])
def test_a_partial_last_row_is_dropped_on_resume(cut, tmp_path, every_epoch):
    """A kill while a row was written (a power cut) can leave part of a line: resume drops it."""
    spec, out = _spec(tmp_path), tmp_path / "run"
    nnspec.train(spec, "numpy", out, epochs=3)
    last = (out / "metrics.csv").read_text().splitlines()[-1]
    with open(out / "metrics.csv", "a", newline="") as file:
        file.write("4,0.05,0.2" if cut == "in-a-number" else last.replace("3,", "4,", 1))
    resumed = nnspec.train(spec, out=out, resume=True, epochs=EPOCHS)
    assert [row["epoch"] for row in resumed.history] == list(range(1, EPOCHS + 1))
    assert _epochs(out) == list(range(1, EPOCHS + 1))


@pytest.mark.slow
def test_a_resume_drops_the_rows_past_the_checkpoint(tmp_path, every_epoch, monkeypatch):
    """Rows written after the last checkpoint (a kill between the row and the checkpoint) go,
    so that each epoch is in metrics.csv once."""
    spec, out = _spec(tmp_path), tmp_path / "run"
    nnspec.train(spec, "numpy", out, epochs=3)
    rows = (out / "metrics.csv").read_text().splitlines(keepends=True)
    (out / "metrics.csv").write_text("".join(rows + [rows[-1].replace("3,", "4,", 1)]))
    nnspec.train(spec, out=out, resume=True, epochs=EPOCHS)
    assert _epochs(out) == list(range(1, EPOCHS + 1))


def test_a_failed_write_leaves_no_temporary_and_names_the_file(tmp_path, monkeypatch):
    """write_atomic: an error in the write, in the rename or in making the temporary names the
    file (not its temporary) and leaves the old file and no temporary."""
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def full(path):
        Path(path).write_bytes(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left (os error 28)")

    with pytest.raises(OSError) as caught:
        nnspec.atomic.write_atomic(target, full)
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(target))
    monkeypatch.setattr(
        nnspec.atomic, "os", _Os(replace=lambda a, b: (_ for _ in ()).throw(_refuse(errno.EROFS)))
    )
    with pytest.raises(OSError) as caught:
        nnspec.atomic.write_atomic(target, lambda p: Path(p).write_bytes(b"new"))
    assert (caught.value.errno, caught.value.filename) == (errno.EROFS, str(target))
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError) as caught:
        nnspec.atomic.write_atomic(tmp_path / "gone" / "x", lambda p: None)
    assert caught.value.filename == str(tmp_path / "gone" / "x")
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


# ---- real faults: a small tmpfs, mounted as root ---------------------------------------------
@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs at tmp_path/disk (root only; skipped where mount is not allowed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        _remount(disk, "rw")
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _remount(disk: Path, mode: str) -> None:
    """Remount `disk` read-only or read-write; busy while a file is open for writing there
    (a checkpoint being written), so tried again for a while."""
    for _ in range(200):
        done = subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], capture_output=True)
        if done.returncode == 0:
            return
        time.sleep(0.01)
    raise AssertionError(done.stderr.decode())


def _fill(disk: Path) -> Path:
    """Fill `disk` to the last byte; the file that fills it."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0" * 4096)
    with open(filler, "ab", buffering=0) as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0")
    return filler


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_real_full_disk_stops_the_run_and_it_resumes(backend, tmp_path, tmpfs, every_epoch):
    spec, out, filled = _spec(tmp_path), tmpfs / "run", []
    error = _stopped(
        lambda: nnspec.train(
            spec, backend, out, progress=_at_epoch(2, lambda: filled.append(_fill(tmpfs)))
        )
    )
    assert "the disk is full (ENOSPC)" in error.message, error
    filled[0].unlink()
    _assert_stopped_and_resumes(error, out, spec, 2, "the disk is full")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_folder_made_read_only_mid_run_stops_it_and_it_resumes(
    backend, tmp_path, tmpfs, every_epoch
):
    spec, out = _spec(tmp_path), tmpfs / "run"
    error = _stopped(
        lambda: nnspec.train(
            spec, backend, out, progress=_at_epoch(2, lambda: _remount(tmpfs, "ro"))
        )
    )
    assert "the file system is read-only (EROFS)" in error.message, error
    _remount(tmpfs, "rw")
    _assert_stopped_and_resumes(error, out, spec, 2, "the file system is read-only")


def test_a_read_only_folder_is_refused_before_training(tmp_path, tmpfs, capsys):
    _remount(tmpfs, "ro")
    code = main(["train", str(_spec(tmp_path)), "--backend", "numpy", "--out", str(tmpfs / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "error[R320]: cannot write into the run folder " in err, err
    assert "the file system is read-only" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_folder_one_may_not_write_to_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "locked").mkdir(mode=0o555)
    code = main(["train", str(_spec(tmp_path)), "--out", str(tmp_path / "locked" / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "error[R320]: cannot write into the run folder " in err, err


# ---- --out, and a folder that already holds a run ---------------------------------------------
def test_out_naming_a_file_is_refused_at_once(tmp_path, capsys):
    spec, file = _spec(tmp_path), tmp_path / "results"
    file.write_text("a user's file\n")
    for out, wanted in [
        (file, f"error[R320]: cannot train into {file}: it is a file, not a folder"),
        (file / "run", f"error[R320]: cannot make the run folder {file / 'run'}: {file} is a file"),
    ]:
        assert main(["train", str(spec), "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert wanted in err and "hint: " in err, err
    assert file.read_text() == "a user's file\n"
    error = _stopped(lambda: nnspec.train(spec, "numpy", file))
    assert error.code == "R320"


@pytest.mark.slow
def test_a_new_run_into_a_used_folder_refuses_and_overwrite_replaces_it(tmp_path, capsys):
    spec, out = _spec(tmp_path), tmp_path / "run"
    nnspec.train(spec, "numpy", out, epochs=2)
    (out / "notes.txt").write_text("the user's own file")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["train", str(spec), "--backend", "numpy", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error[R322]: {out} already holds a run (checkpoint.safetensors, metrics.csv, " in err
    assert "go on with it (--resume), replace it (--overwrite), or train into another " in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "nothing changed"
    assert _stopped(lambda: nnspec.train(spec, "numpy", out)).code == "R322"

    assert main(["train", str(spec), "--backend", "numpy", "--out", str(out), "--overwrite"]) == 0
    assert _epochs(out) == list(range(1, EPOCHS + 1)) and _kept(out) == EPOCHS
    assert (out / "notes.txt").read_text() == "the user's own file", "only the run's files go"
    nnspec.train(spec, "numpy", out, overwrite=True, epochs=1)
    assert _epochs(out) == [1] and _kept(out) == 1


def test_metrics_without_a_checkpoint_is_refused_without_naming_resume(tmp_path):
    """A run killed before its first checkpoint: nothing to resume, so the hint does not offer
    it."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.csv").write_text("epoch,lr,loss\r\n1,0.05,0.3\r\n")
    error = _stopped(lambda: nnspec.train(_spec(tmp_path), "numpy", out))
    assert error.code == "R322" and "--resume" not in error.hint and "--overwrite" in error.hint


def test_overwrite_and_resume_exclude_each_other(tmp_path, capsys):
    assert main(["train", str(_spec(tmp_path)), "--resume", "--overwrite"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_failed_start_leaves_no_folder_behind(tmp_path):
    """A run refused before its first epoch (here: batchnorm with a batch of one, R305) leaves
    no empty folder where it would have written."""
    text = SPEC.replace("act=tanh", "act=tanh\n    batchnorm n").replace("h -> y", "h -> n -> y")
    spec = _spec(tmp_path, text.replace("batch     = 2", "batch     = 1"))
    assert _stopped(lambda: nnspec.train(spec, "numpy", tmp_path / "runs" / "f")).code == "R305"
    assert not (tmp_path / "runs").exists()


# ---- the lock --------------------------------------------------------------------------------
def test_a_held_folder_is_refused_and_a_dead_holder_blocks_nothing(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with hold(out):
        assert (out / LOCK).read_text() == f"{os.getpid()}\n"
        for resume in (False, True):
            with pytest.raises(NnspecError) as caught, hold(out, resume=resume):
                pass
            assert caught.value.code == "R321"
            assert f"{out} is in use by another run (process {os.getpid()})" in str(caught.value)
    assert not (out / LOCK).exists()
    # a lock file left by a process that died (kill -9) is not a lock: the kernel let it go
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"f = os.open({str(out / LOCK)!r}, os.O_RDONLY | os.O_CREAT)\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(NnspecError, match="R321|in use by another run"), hold(out):
        pass
    holder.kill()
    holder.communicate()
    assert (out / LOCK).exists()
    with hold(out):
        pass


def _cli(out: Path, spec: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "nnspec", "train", str(spec), "--out", str(out), *more]


def _start(command: list[str], out: Path) -> subprocess.Popen:
    """Start `command` and wait for its first checkpoint."""
    # one thread per run: torch's default of one per core crawls on a machine that is busy
    env = {"OMP_NUM_THREADS": "1", **os.environ}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.safetensors").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint within two minutes"
        time.sleep(0.02)
    return process


@pytest.mark.slow
def test_a_second_run_into_a_folder_in_use_refuses_and_a_killed_run_blocks_nothing(
    tmp_path, capsys
):
    """Two runs into one folder at once would interleave their rows in one metrics.csv (seen:
    epochs 5, 1, 6, 2, ...): the second refuses. The first, killed with `kill -9`, leaves its
    lock file but no lock: --resume goes on, and each epoch is in metrics.csv once."""
    spec, out = _spec(tmp_path, DIGITS), tmp_path / "run"
    first = _start(_cli(out, spec, "--backend", "numpy", "--epochs", "12"), out)
    try:
        for more in ([], ["--resume"], ["--overwrite"]):
            code = main(["train", str(spec), "--backend", "numpy", "--out", str(out), *more])
            err = capsys.readouterr().err
            assert code == 1, err
            assert f"error[R321]: {out} is in use by another run (process {first.pid})" in err
        assert first.poll() is None, "the first run was still running"
    finally:
        first.kill()
        first.communicate()
    epochs = _epochs(out)
    assert epochs == list(range(1, len(epochs) + 1)), "the first run's rows, in order"
    assert (out / LOCK).exists(), "kill -9 leaves the file"
    assert main(["train", str(spec), "--out", str(out), "--resume"]) == 0, capsys.readouterr().err
    assert _epochs(out) == list(range(1, 13)) and not (out / LOCK).exists()


# ---- signals ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_stops_a_real_run_as_ctrl_c_does_with_exit_143(backend, tmp_path):
    spec, out = _spec(tmp_path, DIGITS), tmp_path / "run"
    process = _start(_cli(out, spec, "--backend", backend), out)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    kept = _kept(out)
    assert f"terminated (SIGTERM): the checkpoint of epoch {kept} is kept in {out}" in stderr
    assert "Traceback" not in stderr and not _temporaries(out) and not (out / LOCK).exists()
    assert 1 <= kept < 8, "stopped in the middle of the run"
    printed = stderr.strip().splitlines()[-1].strip()
    assert printed == shlex.join(["nnspec", "train", str(spec), "--out", str(out), "--resume"])
    resumed = subprocess.run(
        [sys.executable, "-m", *shlex.split(printed)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", **os.environ},
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"backend {backend}" in resumed.stderr
    assert _epochs(out) == list(range(1, 9)) and _kept(out) == 8


@pytest.mark.slow
def test_sigterm_in_process_is_exit_143_and_the_old_handler_is_put_back(
    tmp_path, monkeypatch, capsys, every_epoch
):
    spec, out = _spec(tmp_path), tmp_path / "run"
    save = nnspec.training.loop._save_checkpoint

    def save_then_terminate(runner, rng, folder, epoch, *rest):
        save(runner, rng, folder, epoch, *rest)
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(nnspec.training.loop, "_save_checkpoint", save_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["train", str(spec), "--backend", "numpy", "--out", str(out)]) == 143
    err = capsys.readouterr().err
    assert "terminated (SIGTERM): the checkpoint of epoch 2 is kept in " in err, err
    assert signal.getsignal(signal.SIGTERM) is before
    assert _kept(out) == 2 and not _temporaries(out) and not (out / LOCK).exists()
    monkeypatch.undo()
    assert main(["train", str(spec), "--out", str(out), "--resume"]) == 0
    assert _epochs(out) == list(range(1, EPOCHS + 1))


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "old-zoo"])
def test_a_disk_that_fills_while_the_zoo_is_written_says_so_and_leaves_no_half_zoo(
    existing, tmp_path, monkeypatch, capsys
):
    """The third file of a zoo meets a full disk: R101 says the disk is full and to free space;
    a folder made for the zoo is removed again, an old zoo's folder keeps its files, whole."""
    specs, out = tmp_path / "specs", tmp_path / "zoo"
    specs.mkdir()
    (specs / "xor.nn").write_text((EXAMPLES / "xor.nn").read_text())
    if existing:
        out.mkdir()
        (out / "xor.svg").write_text("<svg/>")
    write, calls = nnspec.atomic.write_atomic, []

    def full_at_the_third(path, fill):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write(path, fill)

    monkeypatch.setattr(nnspec.atomic, "write_atomic", full_at_the_third)
    assert main(["zoo", str(specs), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[R101]: cannot write " in err and "No space left on device" in err, err
    assert "hint: free some space, then run it again" in err
    assert "Traceback" not in err
    if existing:
        assert sorted(p.name for p in out.iterdir()) == ["xor.svg", "zoo.svg"]
        assert (out / "xor.svg").read_text().startswith("<?xml")  # replaced whole
    else:
        assert not out.exists()
