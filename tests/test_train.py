"""Training from a spec on the PyTorch backend: expectations, files, determinism, resume, NaN stop, CLI."""

import csv

import numpy as np
import pytest
from conftest import EXAMPLES
from safetensors.numpy import load_file

pytest.importorskip("torch")

import nnspec  # noqa: E402
from nnspec.cli import main  # noqa: E402
from nnspec.train import TrainingStopped, train  # noqa: E402


@pytest.mark.parametrize("name", ["xor", "xor_gates", "lenet", "residual"])
def test_example_meets_its_expectations(name, tmp_path):
    result = train(EXAMPLES / f"{name}.nn", out=tmp_path)
    assert result.expectations, "the example states what it must reach"
    assert result.passed, [(e.metric, e.reached) for e in result.expectations]


def test_a_run_writes_metrics_plot_weights_and_settings(tmp_path):
    result = train(EXAMPLES / "xor.nn", out=tmp_path, epochs=20)
    with open(result.paths["metrics"]) as file:
        rows = list(csv.DictReader(file))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 21))
    assert {"loss", "accuracy", "train_loss", "train_accuracy"} <= set(rows[0])
    weights = load_file(str(result.paths["weights"]))
    assert set(weights) == set(nnspec.load(EXAMPLES / "xor.nn").program.parameters())
    assert result.paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"epochs": 20' in result.paths["settings"].read_text()


def test_the_same_seed_gives_the_same_numbers(tmp_path):
    a = train(EXAMPLES / "residual.nn", out=tmp_path / "a", epochs=2)
    b = train(EXAMPLES / "residual.nn", out=tmp_path / "b", epochs=2)
    assert a.metrics == b.metrics
    c = train(EXAMPLES / "residual.nn", out=tmp_path / "c", epochs=2, seed=1)
    assert c.metrics != a.metrics


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    whole = train(EXAMPLES / "residual.nn", out=tmp_path / "whole", epochs=4)
    train(EXAMPLES / "residual.nn", out=tmp_path / "cut", epochs=2)
    resumed = train(EXAMPLES / "residual.nn", out=tmp_path / "cut", epochs=4, resume=True)
    a, b = load_file(str(whole.paths["weights"])), load_file(str(resumed.paths["weights"]))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert resumed.metrics == whole.metrics


def test_epochs_zero_only_evaluates(tmp_path):
    result = train(EXAMPLES / "xor_gates.nn", out=tmp_path)
    assert result.history[0]["epoch"] == 0 and result.metrics["accuracy"] == 1.0


def test_a_nan_loss_stops_with_the_epoch_and_keeps_the_checkpoint(tmp_path):
    spec = tmp_path / "blowup.nn"
    spec.write_text("network n {\n input x: 2\n dense y: 1\n x -> y\n}\n"
                    "train {\n data = xor\n loss = mse\n optimizer = sgd(lr=1e30)\n batch = full\n epochs = 50\n}\n")
    with pytest.raises(TrainingStopped, match=r"the loss became (NaN|infinite) in epoch \d+"):
        train(spec, out=tmp_path / "run")
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()


def test_cli_train_reports_and_exits_1_on_a_missed_expectation(tmp_path, capsys):
    assert main(["train", str(EXAMPLES / "xor.nn"), "--out", str(tmp_path / "ok"), "--epochs", "300"]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["train", str(EXAMPLES / "residual.nn"), "--out", str(tmp_path / "miss"), "--epochs", "1"]) == 1
    assert "expectation missed: accuracy >= 0.95" in capsys.readouterr().err


def test_cli_train_usage_errors(tmp_path):
    assert main(["train", str(EXAMPLES / "xor.nn"), "--epochs", "-1"]) == 2
    assert main(["train", str(tmp_path / "missing.nn")]) == 1
