"""Resuming a run: `--resume` continues the run a checkpoint belongs to and refuses one that
does not belong (another network, backend or version of the spec, a damaged file)."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import BACKENDS, ctrl_c_reaches_it
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import nnspec
import nnspec.training
from nnspec.cli import main

BATCHNORM = """\
network bn "a batchnorm between two dense layers" {
    input  x: 2
    dense  h: 8
    batchnorm n
    dense  y: 1, act=sigmoid
    x -> h -> n -> y
}

train {
    data      = xor
    loss      = mse
    optimizer = adam(lr=0.05)
    batch     = 2
    epochs    = 2
    seed      = 0
}
"""


def _spec(folder, text: str = BATCHNORM):
    path = folder / "bn.nn"
    path.write_text(text)
    return path


def _same_weights(a, b) -> bool:
    a, b = (load_file(str(out / "weights.safetensors")) for out in (a, b))
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_network_with_batchnorm_resumes_to_the_weights_of_an_uninterrupted_run(backend, tmp_path):
    spec = _spec(tmp_path)
    nnspec.train(spec, backend=backend, out=tmp_path / "cut")
    resumed = nnspec.train(spec, backend=backend, out=tmp_path / "cut", resume=True, epochs=4)
    whole = nnspec.train(spec, backend=backend, out=tmp_path / "whole", epochs=4)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert resumed.metrics == whole.metrics
    rows = [
        (out / "metrics.csv").read_text().splitlines()
        for out in (tmp_path / "cut", tmp_path / "whole")
    ]
    assert rows[0] == rows[1] and len(rows[0]) == 1 + 4
    assert _same_weights(tmp_path / "cut", tmp_path / "whole")


# ---- checkpoints that do not belong -------------------------------------------------------------
def _resume_error(capsys, spec, out, *flags: str) -> str:
    """`nnspec train SPEC --out OUT --resume FLAGS` in this process: exit 1, one clean error."""
    code = main(["train", str(spec), "--out", str(out), "--resume", *flags])
    stderr = capsys.readouterr().err
    assert code == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    return stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-epoch NumPy run of BATCHNORM to resume (copied by each test that changes it)."""
    folder = tmp_path_factory.mktemp("trained")
    nnspec.train(_spec(folder), backend="numpy", out=folder / "run")
    return folder / "run"


def _copy(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "flags", "wanted"),
    [
        (("network bn", "network other"), (), "belongs to network 'bn', not 'other'"),
        (
            ("dense  h: 8", "dense  h: 16"),
            (),
            "another version of network 'bn' (its layers or sizes changed): "
            "'h.weight' is [16, 2] here and [8, 2] in the checkpoint",
        ),
        (
            ("dense  y: 1", "dense  z: 4\n    dense  y: 1", "n -> y", "n -> z -> y"),
            (),
            "'z.weight' [4, 8] is not in the checkpoint",
        ),
        (
            ("dense  h: 8", "dense  h: 8, act=tanh"),
            (),
            "(its kinds, options or links changed): layer 'h' changed",
        ),
        (
            ("batchnorm n", "batchnorm n\n    relu r", "n -> y", "n -> r -> y"),
            (),
            "layer 'y' changed; layer 'r' is new",
        ),
        (
            ("lr=0.05", "lr=0.1"),
            (),
            "the train section changed since the checkpoint in",
        ),
        (("mse", "bce"), (), "loss was mse, is now bce"),
        (None, ("--backend", "torch"), "was made by the numpy backend, not torch"),
        (None, ("--lr", "0.2"), "--lr 0.2 contradicts the run in"),
        (None, ("--batch", "4"), "trained with batch 2"),
        (None, ("--seed", "1"), "trained with seed 0"),
        (None, ("--epochs", "1"), "is already at epoch 2, past the 1 epochs asked for"),
    ],
    ids=[
        "network",
        "sizes",
        "layers",
        "activation",
        "link",
        "lr",
        "loss",
        "backend",
        "--lr",
        "--batch",
        "--seed",
        "--epochs",
    ],
)
def test_a_checkpoint_of_another_run_is_refused_naming_what_differs(
    change, flags, wanted, trained, tmp_path, capsys
):
    run = _copy(trained, tmp_path)
    text = BATCHNORM
    for old, new in zip(change[::2], change[1::2], strict=True) if change else ():
        text = text.replace(old, new)
    spec = _spec(tmp_path, text)
    stderr = _resume_error(capsys, spec, run, *flags)
    assert "error[R302]: " in stderr and wanted in stderr, stderr
    assert "hint: " in stderr and "--out" in stderr
    assert (
        run.joinpath("checkpoint.safetensors").read_bytes()
        == trained.joinpath("checkpoint.safetensors").read_bytes()
    ), "a refused resume leaves the checkpoint as it was"


def _flip(offset: int):
    def damage(path):
        data = bytearray(path.read_bytes())
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))

    return damage


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


def _folder(path):
    path.unlink()
    path.mkdir()


def _fifo(path):
    path.unlink()
    os.mkfifo(path)


def _older(path):
    """The checkpoint as an nnspec before FORMAT 2 wrote it: no network, settings or digest."""
    with safe_open(str(path), "np") as file:
        state = json.loads(file.metadata()["nnspec"])
    kept = {key: state[key] for key in ("epoch", "backend", "random", "runner")}
    save_file(load_file(str(path)), str(path), metadata={"nnspec": json.dumps(kept)})


def _foreign(path):
    """A safetensors file of the same arrays that another program wrote: no state at all."""
    save_file(load_file(str(path)), str(path))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "wanted"),
    [
        (_truncate, "it is not a whole safetensors file"),
        (_flip(-8), "its contents do not match the digest it was written with"),
        (_flip(12), "the checkpoint is damaged"),
        (lambda p: p.write_bytes(b"not a checkpoint\n" * 10), "not a whole safetensors file"),
        (lambda p: p.write_bytes(b""), "not a whole safetensors file"),
        (_folder, "is a folder, not a file: it cannot be resumed"),
        (_fifo, "is a FIFO (named pipe), not a regular file: it cannot be resumed"),
        (_older, "written by an older nnspec, or by another program"),
        (_foreign, "it records no run state"),
    ],
    ids=[
        "truncated",
        "data-flipped",
        "header-flipped",
        "text",
        "empty",
        "folder",
        "fifo",
        "old",
        "foreign",
    ],
)
def test_a_damaged_checkpoint_is_refused_and_never_trained_on(
    damage, wanted, trained, tmp_path, capsys
):
    run = _copy(trained, tmp_path)
    damage(run / "checkpoint.safetensors")
    stderr = _resume_error(capsys, _spec(tmp_path), run)
    assert "error[R310]: " in stderr and wanted in stderr, stderr
    assert "hint: " in stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "wanted"),
    [
        (lambda p: p.write_text(p.read_text() + "garbage,,x\n"), "line 4 is not a row of numbers"),
        (lambda p: p.write_bytes(b"\xff\xfe"), "is damaged: it is not text"),
        (_fifo, "is a FIFO (named pipe), not a regular file: the run cannot be resumed"),
    ],
    ids=["garbage-row", "binary", "fifo"],
)
def test_a_damaged_metrics_csv_is_refused_and_left_as_it_is(
    damage, wanted, trained, tmp_path, capsys
):
    run = _copy(trained, tmp_path)
    damage(run / "metrics.csv")
    before = (run / "checkpoint.safetensors").read_bytes()
    stderr = _resume_error(capsys, _spec(tmp_path), run, "--epochs", "3")
    assert "error[R310]: " in stderr and wanted in stderr, stderr
    assert (run / "checkpoint.safetensors").read_bytes() == before
    assert (run / "metrics.csv").exists()


def test_resume_without_a_checkpoint_says_there_is_nothing_to_resume(tmp_path, capsys):
    stderr = _resume_error(capsys, _spec(tmp_path), tmp_path / "none")
    assert "error[R311]: there is nothing to resume: " in stderr
    assert "train without --resume" in stderr
    assert not (tmp_path / "none").exists(), "no run is started in its place"


# ---- a resumed run keeps the settings of the run it resumes --------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_resumed_run_keeps_the_flags_it_was_started_with(backend, tmp_path):
    spec, flags = _spec(tmp_path), {"lr": 0.01, "batch": 4, "seed": 3}
    nnspec.train(spec, backend=backend, out=tmp_path / "cut", epochs=3, **flags)
    # no backend, lr, batch or seed: the checkpoint gives them; only the epochs go on
    resumed = nnspec.train(spec, out=tmp_path / "cut", resume=True, epochs=5)
    nnspec.train(spec, backend=backend, out=tmp_path / "whole", epochs=5, **flags)
    assert resumed.backend == backend
    assert [row["lr"] for row in resumed.history] == [0.01] * 5
    assert _same_weights(tmp_path / "cut", tmp_path / "whole")


@pytest.mark.slow
def test_more_epochs_or_a_comment_in_the_spec_still_resume(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    # more epochs, a comment and other spacing: the same run, trained on
    text = "# trained on\n" + BATCHNORM.replace("epochs    = 2", "epochs    = 3")
    spec = _spec(tmp_path, text.replace("dense  h: 8", "dense h:8"))
    assert main(["train", str(spec), "--out", str(run), "--resume"]) == 0
    err = capsys.readouterr().err
    assert (
        "resuming " in err and "from epoch 2 to 3, with the settings it was trained with: " in err
    )
    assert "backend numpy, optimizer adam(lr=0.05), batch 2, seed 0" in err
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 3


@pytest.mark.slow
def test_the_command_printed_after_ctrl_c_resumes_the_run(tmp_path):
    """A NumPy run with every flag, stopped by SIGINT: the printed command (which names no
    backend or setting) finishes it with the weights of an uninterrupted run."""
    spec = _spec(tmp_path, BATCHNORM.replace("epochs    = 2", "epochs    = 3000"))
    flags = ["--backend", "numpy", "--epochs", "1500", "--lr", "0.01", "--batch", "4"]
    flags += ["--seed", "5"]

    def command(out, *more):
        return [sys.executable, "-m", "nnspec", "train", str(spec), "--out", str(out), *more]

    process = subprocess.Popen(
        command(tmp_path / "cut", *flags),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "cut" / "checkpoint.safetensors").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint within a minute"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    printed = stderr.strip().splitlines()[-1].strip()
    assert printed.startswith("nnspec train ") and printed.endswith(" --resume"), stderr
    resumed = subprocess.run(
        [sys.executable, "-m", *shlex.split(printed)], capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "with the settings it was trained with: backend numpy" in resumed.stderr
    whole = subprocess.run(
        command(tmp_path / "whole", *flags), capture_output=True, text=True, timeout=120
    )
    assert whole.returncode == 0, whole.stderr
    assert _same_weights(tmp_path / "cut", tmp_path / "whole")
    rows = [(out / "metrics.csv").read_text() for out in (tmp_path / "cut", tmp_path / "whole")]
    assert rows[0] == rows[1]


def test_ctrl_c_before_the_first_epoch_says_there_is_nothing_to_resume(
    tmp_path, capsys, monkeypatch
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nnspec.training, "train_models", interrupted)
    assert main(["train", str(_spec(tmp_path)), "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert "interrupted before the first epoch finished: there is nothing to resume" in err
    assert "--resume" not in err.replace("without --resume", "")


# ---- predict --weights with the weights of another network ---------------------------------
def _predict(capsys, spec, weights, tmp_path) -> tuple[int, str, str]:
    (tmp_path / "x.json").write_text("[[0, 1], [1, 1]]")
    code = main(
        ["predict", str(spec), "--weights", str(weights), "--input", str(tmp_path / "x.json")]
    )
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err
    return code, out, err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "wanted"),
    [
        (("dense  h: 8", "dense  h: 3"), "'h.weight' is [3, 2] here and [8, 2] in the file"),
        (
            ("batchnorm n\n", "", "h -> n -> y", "h -> y"),
            "the file's layer 'n' (bias, num_batches_tracked, running_mean, running_var, "
            "weight) is not in this network",
        ),
        (("batchnorm n", "dense  n: 8"), "'n.weight' is [8, 8] here and [8] in the file"),
        (
            ("dense  y: 1", "dense  y: 1\n    dense  z: 1", "n -> y", "n -> y -> z"),
            "lacks z.weight",
        ),
    ],
    ids=["sizes", "fewer-layers", "kind", "layers"],
)
def test_predict_with_weights_of_another_network_names_each_tensor(
    change, wanted, trained, tmp_path, capsys
):
    text = BATCHNORM
    for old, new in zip(change[::2], change[1::2], strict=True):
        text = text.replace(old, new)
    code, _, err = _predict(
        capsys, _spec(tmp_path, text), trained / "weights.safetensors", tmp_path
    )
    assert code == 1 and "error[E506]: " in err and wanted in err, err
    assert "trained for another network or another version of this spec" in err


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["weights.safetensors", "checkpoint.safetensors"])
@pytest.mark.parametrize(
    ("change", "wanted"),
    [
        (("dense  h: 8", "dense  h: 8, act=tanh"), "layer 'h' changed"),
        (("batchnorm n", "batchnorm n: eps=0.1"), "layer 'n' changed"),
    ],
    ids=["activation", "option"],
)
def test_predict_and_compile_refuse_weights_of_a_version_whose_layers_changed(
    change, wanted, weights, trained, tmp_path, capsys
):
    """The tensors fit, but the layers they were trained in are not these: an activation or an
    option changed since, and predict or compile would compute another function than the one
    trained. The same spec read from another folder is this version still."""
    spec = _spec(tmp_path, BATCHNORM.replace(*change))
    code, _, err = _predict(capsys, spec, trained / weights, tmp_path)
    assert code == 1 and "error[E506]: " in err and wanted in err, err
    assert f"'{trained / weights}' was trained for another version of network 'bn'" in err
    out = tmp_path / "out.py"
    compiled = ["compile", str(spec), "--to", "numpy", "--weights", str(trained / weights)]
    assert main([*compiled, "-o", str(out)]) == 1
    assert "error[E506]: " in capsys.readouterr().err and not out.exists()
    (tmp_path / "elsewhere").mkdir()
    assert _predict(capsys, _spec(tmp_path / "elsewhere"), trained / weights, tmp_path)[0] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "wanted"),
    [
        (_truncate, "cannot read weights file"),
        (lambda p: p.write_bytes(b"\x00" * 64), "cannot read weights file"),
        (_fifo, "is a FIFO (named pipe), not a regular file"),
        (_folder, "is a folder, not a file"),
    ],
    ids=["truncated", "zeros", "fifo", "folder"],
)
def test_predict_refuses_damaged_or_special_weights_files(
    damage, wanted, trained, tmp_path, capsys
):
    run = _copy(trained, tmp_path)
    damage(run / "weights.safetensors")
    code, _, err = _predict(capsys, _spec(tmp_path), run / "weights.safetensors", tmp_path)
    assert code == 1 and "error[E505]: " in err and wanted in err, err


@pytest.mark.slow
def test_predict_reads_the_weights_of_a_checkpoint(trained, tmp_path, capsys):
    spec = _spec(tmp_path)
    code, from_checkpoint, _ = _predict(capsys, spec, trained / "checkpoint.safetensors", tmp_path)
    assert code == 0 and from_checkpoint.startswith("y\n")
    assert _predict(capsys, spec, trained / "weights.safetensors", tmp_path)[1] == from_checkpoint
