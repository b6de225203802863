"""Training from a spec on either backend: expectations, files, determinism, resume, NaN stop,
CLI."""

import csv
import math

import numpy as np
import pytest
from conftest import BACKENDS, EXAMPLES
from safetensors.numpy import load_file

import nnspec
from nnspec.cli import main
from nnspec.data import load_data
from nnspec.training import TrainingStopped, train

EXPECTING = [
    "xor",
    "xor_gates",
    "perceptron_and",
    "lenet",
    "residual",
    "resnet_digits",
    "two_heads",
    "seq2seq",
    "tied_autoencoder",
    "siamese",
    "unet",
    "conv_autoencoder",
    "dcgan",
    "iris_csv",
]  # the examples with expect lines
SHOWING = ["elman", "jordan", "vae"]  # the examples whose train sections state no expectation


def test_every_example_with_a_train_section_is_covered():
    # load_all: a GAN's file (dcgan.nn) holds two networks and one train section
    trained = {p.stem for p in EXAMPLES.glob("*.nn") if nnspec.load_all(p)[0].train_spec}
    assert trained == set(EXPECTING) | set(SHOWING)
    assert all(nnspec.load_all(EXAMPLES / f"{n}.nn")[0].train_spec.expects for n in EXPECTING)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", EXPECTING)
def test_example_meets_its_expectations(name, backend, trained):
    result = trained(EXAMPLES / f"{name}.nn", backend)
    assert result.backend == backend
    assert result.passed, [(e.metric, e.op, e.wanted, e.reached) for e in result.expectations]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SHOWING)
def test_example_without_expectations_beats_the_best_constant(name, backend, trained):
    """Better than predicting every target's mean: the loss a network reaches without learning
    anything from its input."""
    result = trained(EXAMPLES / f"{name}.nn", backend)
    model = nnspec.load(EXAMPLES / f"{name}.nn")
    targets = load_data(model.train_spec, model.program).train.targets
    mean = np.clip(np.broadcast_to(targets.mean(0), targets.shape), 1e-7, 1 - 1e-7)
    if model.train_spec.settings.get("loss") == "bce":
        baseline = -np.mean(targets * np.log(mean) + (1 - targets) * np.log(1 - mean))
    else:
        baseline = np.mean((targets - targets.mean(0)) ** 2)
    assert result.history[-1]["train_loss"] < baseline, (result.history[-1]["train_loss"], baseline)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_writes_metrics_plot_weights_and_settings(backend, tmp_path):
    result = train(EXAMPLES / "xor.nn", backend, out=tmp_path, epochs=20)
    with open(result.paths["metrics"]) as file:
        rows = list(csv.DictReader(file))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 21))
    assert {"loss", "accuracy", "train_loss", "train_accuracy"} <= set(rows[0])
    weights = load_file(str(result.paths["weights"]))
    assert set(weights) == set(nnspec.load(EXAMPLES / "xor.nn").program.parameters())
    assert result.paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"epochs": 20' in result.paths["settings"].read_text()
    assert f'"backend": "{backend}"' in result.paths["settings"].read_text()
    assert not list(tmp_path.glob(".*part")), "no temporary file is left behind"


def test_nnspec_train_is_the_api(tmp_path):
    result = nnspec.train(EXAMPLES / "xor.nn", "numpy", tmp_path, epochs=5)
    assert result.network == "xor" and result.paths["weights"].exists() and len(result.history) == 5


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_same_seed_gives_the_same_numbers(backend, tmp_path):
    a = train(EXAMPLES / "residual.nn", backend, out=tmp_path / "a", epochs=2)
    b = train(EXAMPLES / "residual.nn", backend, out=tmp_path / "b", epochs=2)
    assert a.metrics == b.metrics
    c = train(EXAMPLES / "residual.nn", backend, out=tmp_path / "c", epochs=2, seed=1)
    assert c.metrics != a.metrics


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_ends_with_the_weights_of_an_uninterrupted_run(backend, tmp_path):
    whole = train(EXAMPLES / "residual.nn", backend, out=tmp_path / "whole", epochs=4)
    train(EXAMPLES / "residual.nn", backend, out=tmp_path / "cut", epochs=2)
    resumed = train(EXAMPLES / "residual.nn", backend, out=tmp_path / "cut", epochs=4, resume=True)
    a, b = load_file(str(whole.paths["weights"])), load_file(str(resumed.paths["weights"]))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert resumed.metrics == whole.metrics


def test_resume_refuses_a_checkpoint_of_the_other_backend(tmp_path):
    train(EXAMPLES / "xor.nn", "numpy", out=tmp_path, epochs=2)
    if BACKENDS[0].marks[0].args[0]:
        pytest.skip("PyTorch is not installed")
    with pytest.raises(TrainingStopped, match="made by the numpy backend, not torch"):
        train(EXAMPLES / "xor.nn", "torch", out=tmp_path, epochs=4, resume=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_epochs_zero_only_evaluates(backend, trained):
    result = trained(EXAMPLES / "xor_gates.nn", backend)
    assert result.history[0]["epoch"] == 0 and result.metrics["accuracy"] == 1.0


def _blowup(tmp_path, lr: float, epochs: int):
    """A linear network on xor, trained with sgd at `lr` for `epochs` full batches."""
    spec = tmp_path / "blowup.nn"
    spec.write_text(
        "network n {\n input x: 2\n dense y: 1\n x -> y\n}\n"
        f"train {{\n data = xor\n loss = mse\n optimizer = sgd(lr={lr})\n batch = full\n"
        f" epochs = {epochs}\n}}\n"
    )
    return spec


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nan_loss_stops_with_the_epoch_and_keeps_the_checkpoint(backend, tmp_path):
    with pytest.raises(TrainingStopped, match=r"the loss became (NaN|infinite) in epoch \d+"):
        train(_blowup(tmp_path, 100, 200), backend, out=tmp_path / "run")
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
    assert rows and all(math.isfinite(float(row.split(",")[2])) for row in rows)  # loss


@pytest.mark.parametrize("backend", BACKENDS)
def test_weights_whose_loss_is_not_finite_after_the_last_step_stop_the_run(backend, tmp_path):
    """One step of a huge rate: each batch's loss, taken before its step, is finite, but the loss
    measured after the epoch is not. The run stops in epoch 1 and keeps no result."""
    with pytest.raises(TrainingStopped, match=r"the loss became (NaN|infinite) in epoch 1;"):
        train(_blowup(tmp_path, 1e30, 1), backend, out=tmp_path / "run")
    assert not (tmp_path / "run" / "weights.safetensors").exists()


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"batch": 0}, "batch must be a whole number of 1 or more, not 0"),
        ({"epochs": 1.5}, "epochs must be a whole number of 0 or more, not 1.5"),
        ({"epochs": -1}, "epochs must be a whole number of 0 or more, not -1"),
        ({"seed": True}, "seed must be a whole number of 0 or more, not True"),
        ({"lr": float("nan")}, "lr must be a number above 0"),
        ({"lr": 1e200}, "lr must be a number above 0 (at most 3.4e+38), not 1e+200"),
        ({"backend": "jax"}, "backend must be one of 'torch', 'numpy', not 'jax'"),
    ],
)
def test_arguments_out_of_range_are_r339_before_anything_is_written(given, said, tmp_path):
    with pytest.raises(nnspec.NnspecError) as caught:
        train(EXAMPLES / "xor.nn", **{"backend": "numpy", **given}, out=tmp_path / "run")
    assert caught.value.code == "R339" and said in caught.value.message
    assert not (tmp_path / "run").exists()


def test_epochs_on_the_command_line_can_make_backpropagation_cross_a_step(tmp_path):
    spec = tmp_path / "gates.nn"
    spec.write_text(
        "network n {\n input x: 2\n dense h: 2, act=step\n dense y: 1, act=sigmoid\n"
        " x -> h -> y\n}\n"
        "train {\n data = xor\n epochs = 0\n}\n"
    )
    assert train(spec, "numpy", out=tmp_path / "evaluated").history[0]["epoch"] == 0
    with pytest.raises(nnspec.SpecError) as caught:
        train(spec, "numpy", out=tmp_path / "trained", epochs=3)
    assert caught.value.code == "E508"


@pytest.mark.parametrize("backend", BACKENDS)
def test_frozen_weights_stay_as_they_are(backend, tmp_path):
    result = train(EXAMPLES / "xor_gates.nn", backend, out=tmp_path, epochs=2)
    weights = load_file(str(result.paths["weights"]))
    assert np.array_equal(weights["y.bias"], np.float32([-0.7])) and np.array_equal(
        weights["s.bias"], np.float32([0.7, -0.3])
    )
    assert result.metrics["accuracy"] == 1.0


@pytest.mark.slow
def test_cli_train_reports_and_exits_1_on_a_missed_expectation(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                str(EXAMPLES / "xor.nn"),
                "--backend",
                "numpy",
                "--out",
                str(tmp_path / "ok"),
                "--epochs",
                "300",
            ]
        )
        == 0
    )
    assert "accuracy" in capsys.readouterr().out
    assert (
        main(
            [
                "train",
                str(EXAMPLES / "residual.nn"),
                "--backend",
                "numpy",
                "--out",
                str(tmp_path / "miss"),
                "--epochs",
                "1",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "expectation missed: accuracy >= 0.95" in err


def test_cli_train_usage_errors(tmp_path, capsys):
    assert main(["train", str(EXAMPLES / "xor.nn"), "--epochs", "-1"]) == 2
    assert main(["train", str(EXAMPLES / "xor.nn"), "--backend", "jax"]) == 2
    assert main(["train", str(tmp_path / "missing.nn")]) == 1
    spec = tmp_path / "untrained.nn"
    spec.write_text("network n {\n input x: 2\n dense y: 1\n x -> y\n}\n")
    assert main(["train", str(spec)]) == 1
    assert "has no train section" in capsys.readouterr().err


def _single_layer(
    act: str, data: str, rule: str, epochs: int = 1, batch: str = "full", lr: float = 0.5
) -> str:
    return (
        f"network n {{\n input x: 2\n dense y: 1, act={act}\n x -> y\n}}\n"
        f"train {{\n data = {data}\n rule = {rule}\n optimizer = sgd(lr={lr})\n"
        f" batch = {batch}\n epochs = {epochs}\n}}\n"
    )


def _train_text(text: str, backend: str, tmp_path, seed: int | None = None):
    spec = tmp_path / "model.nn"
    spec.write_text(text)
    # overwrite: a test may train several runs in turn into its one folder
    return train(spec, backend, out=tmp_path / "run", seed=seed, overwrite=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "rule, act",
    [("perceptron", "step"), ("delta", "identity"), ("delta", "step"), ("hebb", "tanh")],
)
def test_one_step_of_a_rule_moves_the_weights_as_its_formula_says(rule, act, backend):
    from nnspec.train_section import train_config
    from nnspec.training import make_runner

    model = nnspec.loads(_single_layer(act, "and", rule))
    data = load_data(model.train_spec, model.program)
    runner = make_runner(model, train_config(model.train_spec, data.kind), backend)
    before = runner.weights()
    w, b = before["y.weight"].astype(np.float64), before["y.bias"].astype(np.float64)
    x, t = (
        data.train.inputs["x"].astype(np.float64),
        data.train.targets.reshape(-1, 1).astype(np.float64),
    )
    z = x @ w.T + b
    signal = {"perceptron": t - (z > 0), "delta": t - z, "hebb": t}[rule]
    runner.step(data.train.inputs, data.train.targets, None, 0.5)
    after = runner.weights()
    np.testing.assert_allclose(after["y.weight"], w + 0.5 * signal.T @ x, rtol=1e-6)
    np.testing.assert_allclose(after["y.bias"], b + 0.5 * signal.sum(0), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("table", ["and", "or", "nand", "nor"])
def test_the_perceptron_rule_learns_each_separable_truth_table(table, backend, tmp_path):
    result = _train_text(
        _single_layer("step", table, "perceptron", epochs=20, batch="1", lr=0.1), backend, tmp_path
    )
    assert result.metrics["train_accuracy"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_no_perceptron_learns_xor(backend, tmp_path):
    for seed in range(5):
        result = _train_text(
            _single_layer("step", "xor", "perceptron", epochs=50, batch="1", lr=0.1),
            backend,
            tmp_path,
            seed=seed,
        )
        assert result.metrics["train_accuracy"] <= 0.75


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_delta_rule_fits_the_least_squares_line(backend, tmp_path):
    """ADALINE on OR converges to the least-squares fit z = 1/4 + x1/2 + x2/2 (then > 0.5 reads
    as 1)."""
    result = _train_text(
        _single_layer("identity", "or", "delta", epochs=400, batch="full", lr=0.1),
        backend,
        tmp_path,
    )
    weights = load_file(str(result.paths["weights"]))
    np.testing.assert_allclose(weights["y.weight"], [[0.5, 0.5]], atol=1e-3)
    np.testing.assert_allclose(weights["y.bias"], [0.25], atol=1e-3)
    assert result.metrics["accuracy"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gan_trains_in_turns_and_resumes_exactly(backend, tmp_path):
    spec = EXAMPLES.parent / "specs" / "gan.nn"
    whole = train(spec, backend, out=tmp_path / "whole", epochs=2, batch=256)
    assert whole.network == "generator_discriminator"
    assert {"loss", "train_loss", "g_loss", "coverage"} <= set(whole.metrics)
    assert whole.paths["samples"].read_bytes()[:4] == b"\x89PNG"
    weights = load_file(str(whole.paths["weights"]))
    assert {k.split(".")[0] for k in weights} == {"generator", "discriminator"}
    train(spec, backend, out=tmp_path / "cut", epochs=1, batch=256)
    resumed = train(spec, backend, out=tmp_path / "cut", epochs=2, batch=256, resume=True)
    again = load_file(str(resumed.paths["weights"]))
    assert all(np.array_equal(weights[k], again[k]) for k in weights)
