"""Data-parallel training (`--procs N`, torchrun): two processes on this machine train as one
does on the same global batch, end with the same parameters on both ranks, and a worker killed
mid-run leaves a checkpoint that a two-process run resumes. What trains in one process only is
refused with its reason (R330, R331), as is --procs under torchrun (R333)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ctrl_c_reaches_it
from safetensors.numpy import load_file

import nnspec
from nnspec.cli import main
from nnspec.training import distributed

torch = pytest.importorskip("torch")

SPEC = """\
network moons "a small classifier of two moons" {
    input  x: 2
    dense  h: 16, act=tanh
    dense  y: 2, act=softmax
    x -> h -> y
}

train {
    data      = moons
    split     = 0.25
    loss      = cross_entropy
    optimizer = adam(lr=0.02)
    batch     = 25
    epochs    = 3
    seed      = 3
    metrics   = [train_accuracy]
}
"""

# a worker that also keeps its rank's final parameters, to compare the ranks with each other
KEEPING = """\
import os, sys
import numpy as np
from nnspec.training import distributed, worker
made = []
class Kept(distributed.Sharded):
    def __init__(self, *args):
        super().__init__(*args)
        made.append(self)
distributed.Sharded = Kept
code = worker.work()
np.savez(os.path.join(sys.argv[1], "rank%s.npz" % os.environ["RANK"]), **made[0].weights())
sys.exit(code)
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "moons.nn"
    path.write_text(SPEC)
    return path


def rows(path):
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, map(float, line.split(",")), strict=True)) for line in lines[1:]]


@pytest.mark.slow
def test_two_processes_train_as_one_does_on_the_same_global_batch(spec, tmp_path, monkeypatch):
    # 384 training examples in batches of 25: the last batch (9) is split 4 and 5
    one = nnspec.train(spec, out=tmp_path / "one")
    script = tmp_path / "keeping.py"
    script.write_text(KEEPING)
    monkeypatch.setattr(
        distributed,
        "WORKER",
        f"import sys; sys.argv[1:] = [{str(tmp_path)!r}]; exec(open({str(script)!r}).read())",
    )
    two = nnspec.train(spec, out=tmp_path / "two", procs=2)
    # both ranks hold the same parameters, and they are the one-process run's
    rank0, rank1 = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    alone = load_file(tmp_path / "one" / "weights.safetensors")
    written = load_file(tmp_path / "two" / "weights.safetensors")
    assert sorted(rank0) == sorted(rank1) == sorted(alone)
    for name in alone:
        np.testing.assert_array_equal(rank0[name], rank1[name])
        np.testing.assert_array_equal(rank0[name], written[name])
        np.testing.assert_allclose(rank0[name], alone[name], rtol=1e-5, atol=1e-6)
    # the metrics, held-out and running, are the one-process run's too
    for a, b in zip(
        rows(tmp_path / "one" / "metrics.csv"), rows(tmp_path / "two" / "metrics.csv"), strict=True
    ):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
    assert two.metrics == pytest.approx(one.metrics, rel=1e-4)
    assert (
        two.backend == "torch" and two.paths["weights"] == tmp_path / "two" / "weights.safetensors"
    )
    settings = json.loads((tmp_path / "two" / "settings.json").read_text())
    assert settings["procs"] == 2 and settings["device"] == "cpu"
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def _start(spec, out, *more):
    command = [sys.executable, "-m", "nnspec", "train", str(spec), "--out", str(out)]
    return subprocess.Popen(
        [*command, "--procs", "2", "--epochs", "5000", *more],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,  # `make test &` in the background ignores SIGINT
    )


def _ended(parent, workers, limit=120.0) -> str:
    """The parent's stderr once it has ended; a parent (or worker) still there after `limit`
    seconds is killed and the test fails with what it said."""
    try:
        return parent.communicate(timeout=limit)[1]
    except subprocess.TimeoutExpired:
        for pid in [parent.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pytest.fail(f"the run did not end within {limit} s: {parent.communicate()[1]}")


def _wait_for_epochs(out, count, parent, limit=120.0):
    ends = time.monotonic() + limit
    while time.monotonic() < ends and parent.poll() is None:
        metrics = out / "metrics.csv"
        if metrics.exists() and len(metrics.read_text().splitlines()) > count:
            return
        time.sleep(0.2)
    parent.kill()
    pytest.fail(f"the run did not reach epoch {count}: {parent.communicate()}")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_mid_run_stops_the_others_and_leaves_a_checkpoint_to_resume(spec, tmp_path):
    out = tmp_path / "run"
    parent = _start(spec, out)
    _wait_for_epochs(out, 2, parent)
    workers = _children(parent.pid)
    assert len(workers) == 2
    os.kill(workers[1], signal.SIGKILL)
    err = _ended(parent, workers)
    assert parent.returncode == 1
    assert "error[R332]: process 2 of 2 (rank 1" in err and "killed by SIGKILL" in err
    assert "the others were stopped" in err
    assert f"--out {out} --resume --procs 2" in err
    assert all(not os.path.exists(f"/proc/{pid}") for pid in workers)  # none left behind
    kept = nnspec.training.checkpoint.read(out).epoch
    assert f"the checkpoint of epoch {kept} is kept" in err
    # resumed in two processes, it goes on from the epoch kept to the end
    result = nnspec.train(spec, out=out, resume=True, epochs=kept + 1, procs=2)
    assert [row["epoch"] for row in rows(out / "metrics.csv")] == list(range(1, kept + 2))
    assert result.history[-1]["epoch"] == kept + 1


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_of_the_parent_stops_every_worker_and_keeps_the_checkpoint(spec, tmp_path):
    out = tmp_path / "run"
    parent = _start(spec, out)
    _wait_for_epochs(out, 1, parent)
    workers = _children(parent.pid)
    parent.send_signal(signal.SIGINT)
    err = _ended(parent, workers)
    assert parent.returncode == 130
    assert "interrupted: the checkpoint of epoch" in err and "--resume --procs 2" in err
    assert all(not os.path.exists(f"/proc/{pid}") for pid in workers)
    assert not (out / ".nnspec.lock").exists()
    assert nnspec.training.checkpoint.read(out).epoch >= 1


def test_the_numpy_backend_trains_in_one_process(spec, tmp_path, capsys):
    assert (
        main(
            ["train", str(spec), "--out", str(tmp_path / "r"), "--procs", "2", "--backend", "numpy"]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "error[R330]: the numpy backend trains in one process, not 2" in err
    assert "hint: train with --backend torch for --procs, or leave out --procs" in err
    assert not (tmp_path / "r").exists()


def test_a_gan_trains_in_one_process(capsys, tmp_path):
    gan = nnspec.training.training_models(Path(__file__).parents[1] / "specs" / "gan.nn")
    with pytest.raises(nnspec.NnspecError) as raised:
        nnspec.training.train_models(gan, "torch", tmp_path / "r", procs=2)
    assert raised.value.code == "R331"
    assert "a GAN (generator and discriminator, trained in turns) trains in one process, not 2" in (
        raised.value.message
    )
    assert raised.value.hint.startswith("train it in one process: leave out --procs")


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ({"rule": "lstsq"}, "the learning rule 'lstsq'"),
        ({"factors": "z"}, "factors = z (Kulkarni's procedure)"),
        ({"pretrain": ("rbm", {})}, "a run with a pretraining stage"),
    ],
)
def test_what_trains_in_one_process_is_named(setting, said):
    model = nnspec.loads(SPEC)
    config = SimpleNamespace(**{"rule": "backprop", "factors": None, "pretrain": None, **setting})
    with pytest.raises(nnspec.NnspecError) as raised:
        distributed.check_procs(2, "torch", [model], config)
    assert raised.value.code == "R331"
    assert raised.value.message == f"{said} trains in one process, not 2"


def test_a_run_the_workers_cannot_share_is_refused_before_they_start(
    spec, tmp_path, capsys, monkeypatch
):
    """64 processes for batches of 25 (the last of 9): refused in the parent, before 64 each import
    torch and load the data only to refuse it."""

    def started(*args):
        raise AssertionError("the workers were started")

    monkeypatch.setattr(distributed, "_start", started)
    run = ["train", str(spec), "--out", str(tmp_path / "r"), "--procs", "64"]
    assert main([*run, "--backend", "torch"]) == 1
    err = capsys.readouterr().err
    assert "error[R331]: the last batch of the 384 training examples holds 9, too few for 64" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("size", "batch", "procs", "batchnorm", "said"),
    [
        (10, 1, 2, False, "each batch of the 10 training examples holds 1"),
        (9, 4, 2, False, "the last batch of the 9 training examples holds 1"),
        (9, 4, 2, True, "the last batch of the 9 training examples holds 1"),
        (12, 3, 2, True, "each batch of the 12 training examples holds 3"),
    ],
)
def test_a_batch_too_small_to_share_is_refused(size, batch, procs, batchnorm, said):
    class Layer:
        def __init__(self, kind):
            self.kind = type("Kind", (), {"name": kind})

    program = type("P", (), {"layers": [Layer("batchnorm" if batchnorm else "dense")]})
    split = type("S", (), {"size": size})
    with pytest.raises(nnspec.NnspecError) as raised:
        distributed.check_shards(program, split, batch, procs)
    assert raised.value.code == "R331"
    assert raised.value.message.startswith(said)
    assert f"every batch holds {4 if batchnorm else 2} or more" in raised.value.hint


def test_batches_every_process_can_share_pass():
    program = type("P", (), {"layers": []})
    distributed.check_shards(program, type("S", (), {"size": 10})(), 4, 2)  # 4, 4, 2
    distributed.check_shards(program, type("S", (), {"size": 10})(), None, 2)  # batch = full


def test_procs_under_torchrun_is_refused(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(nnspec.NnspecError) as raised:
        nnspec.train(spec, out=tmp_path / "r", procs=2)
    assert raised.value.code == "R333"
    assert "torchrun starts them" in raised.value.message
    assert "leave out --procs under torchrun" in raised.value.hint


def test_a_worker_error_is_shown_as_the_worker_gave_it():
    fields = {"code": "E501", "message": "m", "hint": "h", "text": "x.nn: error[E501]: m"}
    error = distributed._error_of({"error": fields})
    assert error.code == "E501" and error.render() == "x.nn: error[E501]: m"


@pytest.mark.slow
def test_a_loss_that_blows_up_on_one_rank_stops_every_rank_as_one_process_stops(spec, tmp_path):
    blowing = spec.read_text().replace("adam(lr=0.02)", "sgd(lr=1e30)").replace(", act=softmax", "")
    spec.write_text(blowing.replace("cross_entropy", "mse"))
    with pytest.raises(nnspec.NnspecError) as alone:
        nnspec.train(spec, out=tmp_path / "one", epochs=1)
    with pytest.raises(nnspec.NnspecError) as together:
        nnspec.train(spec, out=tmp_path / "two", epochs=1, procs=2)
    assert together.value.code == alone.value.code == "R301"
    assert together.value.message == alone.value.message
