"""Early stopping: `early_stop = patience(N, on=METRIC, min_delta=D)` stops a run when METRIC
has not improved for N epochs and keeps the best epoch's weights, on both backends, across a
resume; its settings are checked with the spec."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS
from safetensors.numpy import load_file

import nnspec
from nnspec.cli import main
from nnspec.train_section import train_config
from nnspec.training import train
from nnspec.training.loop import _better

SPEC = """network n {
    input x: 2
    dense h: 16, act=tanh
    dense y: 2, act=softmax
    x -> h -> y
}
train {
    data = moons
    split = 0.3
    optimizer = adam(lr=0.05)
    epochs = 60
%s
}
"""


def _spec(tmp_path: Path, settings: str) -> Path:
    path = tmp_path / "n.nn"
    path.write_text(SPEC % settings)
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_the_setting_resolves_with_its_defaults():
    model = nnspec.loads(SPEC % "early_stop = patience(4)")
    config = train_config(model.train_spec)
    assert config.early_stop == (4, "loss", 0.0)
    model = nnspec.loads(SPEC % "early_stop = patience(3, on=accuracy, min_delta=0.01)")
    config = train_config(model.train_spec)
    assert config.early_stop == (3, "accuracy", 0.01) and "accuracy" in config.metrics
    assert config.as_dict()["early_stop"] == {"patience": 3, "on": "accuracy", "min_delta": 0.01}
    assert train_config(nnspec.loads(SPEC % "").train_spec).early_stop is None


def test_better_follows_the_metric():
    assert _better(0.5, None, "loss", 0.0) and not _better(float("nan"), None, "loss", 0.0)
    assert _better(0.4, 0.5, "loss", 0.0) and not _better(0.45, 0.5, "loss", 0.1)
    assert _better(0.9, 0.8, "accuracy", 0.0) and not _better(0.8, 0.9, "accuracy", 0.0)
    assert _better(0.1, 0.2, "digit.train_mae", 0.0) and _better(0.3, 0.2, "r2", 0.0)


@pytest.mark.parametrize(
    "setting, code, message",
    [
        ("early_stop = 5", "E502", "early_stop is patience(N, ...), not 5"),
        ("early_stop = patience(0)", "E502", "patience needs a whole number of epochs >= 1"),
        ("early_stop = patience(on=loss)", "E502", "patience needs a whole number of epochs"),
        ("early_stop = patience(5, on=acuracy)", "E503", "early_stop watches an unknown metric"),
        ("early_stop = patience(5, wait=2)", "E502", "patience has no setting 'wait'"),
        ("early_stop = patience(5, min_delta=-1)", "E502", "min_delta is a number >= 0"),
    ],
)
def test_bad_settings_are_errors_at_their_value(setting: str, code: str, message: str):
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(SPEC % setting)
    error = caught.value
    assert error.code == code and message in error.message and error.hint
    assert error.span.line == 12


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_it_stops_and_keeps_the_best_epoch(tmp_path: Path, backend: str):
    path = _spec(tmp_path, "early_stop = patience(3)\nexpect accuracy >= 0.8")
    result = train(path, backend, out=tmp_path / "run")
    rows = _rows(result.paths["metrics"])
    losses = [float(row["loss"]) for row in rows]
    best = int(np.argmin(losses)) + 1
    assert len(rows) < 60 and len(rows) == best + 3  # stopped 3 epochs after the best
    assert result.kept_epoch == best
    assert result.metrics["loss"] == pytest.approx(losses[best - 1], rel=1e-5)
    # the weights written are the best epoch's, as saved when it was reached
    weights = load_file(str(result.paths["weights"]))
    best_file = load_file(str(tmp_path / "run" / "best.safetensors"))
    assert all(np.array_equal(weights[k], best_file[k]) for k in weights)


@pytest.mark.slow
def test_both_backends_stop_at_the_same_epoch(tmp_path: Path):
    path = _spec(tmp_path, "early_stop = patience(2, on=accuracy)")
    runs = [train(path, b, out=tmp_path / b) for b in ("numpy", "torch")]
    assert runs[0].kept_epoch == runs[1].kept_epoch
    assert len(runs[0].history) == len(runs[1].history) < 60


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_resumed_run_stops_as_the_whole_one(tmp_path: Path, backend: str):
    path = _spec(tmp_path, "early_stop = patience(3)")
    whole = train(path, backend, out=tmp_path / "whole")
    cut = max(whole.kept_epoch - 1, 1)
    train(path, backend, out=tmp_path / "cut", epochs=cut)
    resumed = train(path, backend, out=tmp_path / "cut", epochs=60, resume=True)
    assert resumed.kept_epoch == whole.kept_epoch
    assert len(resumed.history) == len(whole.history)
    a, b = load_file(str(whole.paths["weights"])), load_file(str(resumed.paths["weights"]))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    again = train(path, backend, out=tmp_path / "cut", epochs=60, resume=True)  # stopped: stays
    assert again.kept_epoch == whole.kept_epoch and len(again.history) == len(whole.history)


@pytest.mark.slow
def test_the_report_says_which_epoch_was_kept(tmp_path: Path, capsys):
    path = _spec(tmp_path, "early_stop = patience(2)")
    assert main(["train", str(path), "--backend", "numpy", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "early stop" in out and "kept the weights of epoch" in out


def test_it_trains_one_network_by_backpropagation():
    text = (
        "network n {\n    input x: 2\n    dense y: 1, act=step\n    x -> y\n}\n"
        "train {\n    data = and\n    rule = perceptron\n    early_stop = patience(3)\n}\n"
    )
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    error = caught.value
    assert error.code == "E502" and "not of rule = perceptron" in error.message
    assert (error.span.line, error.hint) == (9, "leave early_stop out, or train by backpropagation")


def test_with_several_outputs_it_watches_one_of_them():
    two = (
        "network two {\n    input x: 2\n    dense a: 3, act=softmax\n    dense b: 1\n"
        "    x -> a\n    x -> b\n    output a, b\n}\n"
        "train {\n    data = xor\n    early_stop = %s\n}\n"
    )
    config = train_config(nnspec.loads(two % 'patience(2, on="a.accuracy")').train_spec)
    assert config.early_stop == (2, "a.accuracy", 0.0) and "a.accuracy" in config.metrics
    assert train_config(nnspec.loads(two % "patience(2)").train_spec).early_stop[1] == "loss"
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(two % "patience(2, on=accuracy)")
    error = caught.value
    assert error.code == "E531" and "say whose accuracy early_stop watches" in error.message
    assert error.hint.startswith('write on="a.accuracy"')
