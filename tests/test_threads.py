"""Threads: `--threads N` (`threads=N`) sets torch's and NumPy's BLAS threads for a run and puts
them back after; without it a small network uses one thread (nnspec/training/threads.py); the
count is in the run's settings.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nnspec
from nnspec.cli import main
from nnspec.errors import NnspecError
from nnspec.training import threads
from nnspec.training.predict import predict

threadpoolctl = pytest.importorskip("threadpoolctl")

SMALL = """\
network tiny "a 2-4-1 network on XOR" {
    input  x: 2
    dense  h: 4, act=tanh
    dense  y: 1, act=sigmoid
    x -> h -> y
}

train {
    data      = xor
    loss      = bce
    optimizer = adam(lr=0.05)
    batch     = 2
    epochs    = 2
    seed      = 0
}
"""

WIDE = """\
network wide "an MLP 64-1024-1024-10" {
    input  x: 64
    dense  h1: 1024, act=tanh
    dense  h2: 1024, act=tanh
    dense  y: 10, act=softmax
    x -> h1 -> h2 -> y
}
"""

RECURRENT = """\
network rnn "an Elman cell over sequences, a dense readout at every step" {
    input  x: 3, seq
    rnn    h: 32
    dense  y: 2
    x -> h -> y
}
"""


def _blas() -> int:
    counts = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    return max(counts) if counts else -1


def test_the_rule_reads_the_largest_operation_of_a_step():
    wide = nnspec.loads(WIDE).program
    assert threads.largest_op(wide, 1) == 1024 * 1024 + 1024  # h2: its weights and bias
    assert threads.choose(None, [wide], 256) is None  # 268M multiply-adds: the default threads
    assert threads.choose(None, [wide], 8) == 1  # 8.4M: one thread
    assert threads.choose(3, [wide], 8) == 3  # as given
    recurrent = nnspec.loads(RECURRENT).program
    # the rnn steps through time: one step at a time, whatever the length; the dense readout
    # runs over every step at once
    assert threads.largest_op(recurrent, 4, steps=1000) == 33 * 2 * 1000 * 4
    assert threads.largest_op(recurrent, 4, steps=1) == recurrent.layer("h").param_count * 4
    inputs = {"x": np.zeros((5, 40, 3), np.float32)}
    assert threads.sequence_steps(recurrent, inputs) == 40
    assert threads.sequence_steps(wide, {"x": np.zeros((5, 64))}) is None


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_a_thread_count_that_is_no_whole_number_of_one_or_more_is_r335(bad, tmp_path):
    with pytest.raises(NnspecError) as caught:
        threads.check(bad)
    assert caught.value.code == "R335"
    assert f"threads must be a whole number of 1 or more, not {bad!r}" in caught.value.message
    assert "leave it out: a small network then uses one thread" in caught.value.hint
    spec = tmp_path / "tiny.nn"
    spec.write_text(SMALL)
    with pytest.raises(NnspecError, match="R335|threads must be"):
        nnspec.train(spec, backend="numpy", out=tmp_path / "r", threads=bad)
    assert not (tmp_path / "r").exists()


def test_limited_sets_blas_and_torch_threads_and_puts_them_back():
    torch = pytest.importorskip("torch")
    before_torch, before_blas = torch.get_num_threads(), _blas()
    other = 3 if before_torch != 3 else 2
    with threads.limited(other, torch=True) as count:
        assert count == other and torch.get_num_threads() == other
        assert _blas() in (other, -1)
    assert torch.get_num_threads() == before_torch and _blas() == before_blas
    with threads.limited(None, torch=True) as count:  # the default: nothing changed
        assert count == before_torch == torch.get_num_threads()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_run_computes_with_its_threads_and_records_them(backend, tmp_path):
    if backend == "torch":
        torch = pytest.importorskip("torch")
        count_now = torch.get_num_threads
    else:
        count_now = _blas
    spec = tmp_path / "tiny.nn"
    spec.write_text(SMALL)
    before = count_now()
    for asked, wanted in ((None, 1), (2, 2)):  # a small network: one thread by default
        seen = []
        out = tmp_path / f"run{asked}"
        nnspec.train(
            spec,
            backend=backend,
            out=out,
            threads=asked,
            progress=lambda epoch, row, seen=seen: seen.append(count_now()),
        )
        assert seen and set(seen) <= {wanted, -1}, seen
        assert json.loads((out / "settings.json").read_text())["threads"] == wanted
        assert count_now() == before  # put back after the run


def test_predict_takes_threads_and_answers_alike(tmp_path):
    spec = tmp_path / "tiny.nn"
    spec.write_text(SMALL)
    nnspec.train(spec, backend="numpy", out=tmp_path / "r")
    inputs = tmp_path / "x.json"
    inputs.write_text(json.dumps([[0, 0], [0, 1], [1, 0], [1, 1]]))
    weights = tmp_path / "r" / "weights.safetensors"
    before = _blas()
    one = predict(spec, weights, inputs, backend="numpy", threads=1)
    two = predict(spec, weights, inputs, backend="numpy", threads=2)
    assert _blas() == before
    np.testing.assert_array_equal(one["y"], two["y"])
    with pytest.raises(NnspecError, match="R335"):
        predict(spec, weights, inputs, backend="numpy", threads=0)


def test_the_command_line_flag(tmp_path, capsys):
    spec = tmp_path / "tiny.nn"
    spec.write_text(SMALL)
    out = tmp_path / "r"
    argv = ["train", str(spec), "--backend", "numpy", "--out", str(out)]
    assert main([*argv, "--threads", "0"]) == 2
    assert "--threads: must be a whole number >= 1: 0" in capsys.readouterr().err
    assert main([*argv, "--threads", "2"]) == 0
    assert json.loads((out / "settings.json").read_text())["threads"] == 2
    capsys.readouterr()
    x = tmp_path / "x.json"
    x.write_text("[[0, 1]]")
    weights = str(out / "weights.safetensors")
    predicted = ["predict", str(spec), "--weights", weights, "--input", str(x)]
    assert main([*predicted, "--backend", "numpy", "--threads", "1"]) == 0
    assert capsys.readouterr().out.startswith("y\n")
