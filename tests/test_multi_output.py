"""Networks with several outputs train: a target, a loss (and a weight) and metrics per output.

The weighted loss is checked against the same model written by hand in PyTorch for one step,
both backends against each other for whole runs (float64), and the errors at their lines.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import BACKENDS, EXAMPLES, assert_trains_alike
from safetensors.numpy import load_file

import nnspec
from nnspec.cli import main
from nnspec.data import load_data
from nnspec.train_section import train_config
from nnspec.training import TrainingStopped, make_runner, train
from nnspec.training.losses import output_losses
from nnspec.training.predict import predict

TWO = """network two {
    input point: 2
    dense body: 8, act=tanh
    dense cluster: 3, act=softmax
    dense distance: 1
    point -> body -> cluster
    body -> distance
    output cluster, distance
}
train {
    data = npz("d.npz")
%s
}
"""


def _points(count: int = 60, seed: int = 0) -> dict[str, np.ndarray]:
    """Points `[count, 2]` near three centres, their cluster (int64 `[count]`) and their distance
    from the origin (float32 `[count, 1]`)."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 3, count)
    point = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])[cluster] + rng.normal(
        0, 0.5, (count, 2)
    )
    distance = np.sqrt((point**2).sum(1, keepdims=True))
    return {
        "point": point.astype(np.float32),
        "cluster": cluster,
        "distance": distance.astype(np.float32),
    }


def _spec(tmp_path: Path, settings: str, arrays: dict | None = None, text: str = TWO) -> Path:
    np.savez(tmp_path / "d.npz", **(_points() if arrays is None else arrays))
    path = tmp_path / "two.nn"
    path.write_text(text % settings)
    return path


# ---- the loss ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_one_step_is_the_hand_written_weighted_loss(tmp_path: Path, backend: str):
    """loss = {cluster: cross_entropy, distance: mse} weighted 1 and 0.5: one sgd step moves
    every weight as the same model does in PyTorch."""
    path = _spec(
        tmp_path,
        "loss = {cluster: cross_entropy, distance: mse}\n"
        "loss_weights = {cluster: 1, distance: 0.5}\noptimizer = sgd(lr=0.5)\nbatch = full",
    )
    model = nnspec.load(path)
    data = load_data(model.train_spec, model.program)
    config = train_config(model.train_spec, data.kind)
    runner = make_runner(model, config, backend, "float64")
    start = runner.weights()
    loss, y = runner.step(data.train.inputs, data.train.targets, None, 0.5)

    w = {name: torch.tensor(value, requires_grad=True) for name, value in start.items()}
    x = torch.from_numpy(data.train.inputs["point"]).double()
    hidden = torch.tanh(F.linear(x, w["body.weight"], w["body.bias"]))
    logits = F.linear(hidden, w["cluster.weight"], w["cluster.bias"])
    amount = F.linear(hidden, w["distance.weight"], w["distance.bias"])
    targets = data.train.targets
    theirs = F.cross_entropy(logits, torch.from_numpy(targets["cluster"])) + 0.5 * F.mse_loss(
        amount, torch.from_numpy(targets["distance"]).double()
    )
    theirs.backward()
    assert loss == pytest.approx(theirs.item(), rel=1e-12)
    np.testing.assert_allclose(y["distance"], amount.detach().numpy(), rtol=1e-12)
    after = runner.weights()
    for name, value in w.items():
        np.testing.assert_allclose(
            after[name], (value - 0.5 * value.grad).detach().numpy(), rtol=1e-10, err_msg=name
        )


def test_each_output_takes_its_loss_from_its_activation_unless_the_section_names_one():
    config = train_config(
        nnspec.loads(TWO.replace('npz("d.npz")', "xor") % "").train_spec, "outputs"
    )
    acts = {"p": "softmax", "s": "sigmoid", "v": None, "k": None}
    targets = {
        "p": np.zeros(2, np.int64),
        "s": np.zeros((2, 1), np.float32),
        "v": np.zeros((2, 1), np.float32),
        "k": np.zeros(2, np.int64),
    }
    assert output_losses(config, acts, targets) == [
        ("p", "cross_entropy", 1.0),
        ("s", "bce", 1.0),
        ("v", "mse", 1.0),
        ("k", "cross_entropy", 1.0),  # class targets for logits without softmax
    ]
    named = config.model_copy(update={"loss": {"v": "rmse"}, "loss_weights": {"s": 2.0}})
    assert output_losses(named, acts, targets)[1:3] == [("s", "bce", 2.0), ("v", "rmse", 1.0)]
    every = config.model_copy(update={"loss": "sse"})
    assert {loss for _, loss, _ in output_losses(every, acts, targets)} == {"sse"}


# ---- both backends, metrics, expectations ------------------------------------------------------
@pytest.mark.slow
def test_both_backends_train_alike(tmp_path: Path):
    path = _spec(
        tmp_path,
        "split = 0.25\nloss_weights = {distance: 0.5}\nmetrics = [mae]\nepochs = 3\nbatch = 16",
    )
    ours, _ = assert_trains_alike(nnspec.load(path), tmp_path)
    assert list(ours[-1]) == [
        "epoch",
        "lr",
        "loss",
        "cluster.loss",
        "distance.loss",
        "cluster.accuracy",
        "distance.mae",
        "train_loss",
        "cluster.train_accuracy",
    ]
    assert ours[-1]["loss"] == pytest.approx(
        ours[-1]["cluster.loss"] + 0.5 * ours[-1]["distance.loss"], rel=1e-12
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_example_meets_its_expectations_for_other_seeds(backend: str, seed: int, trained):
    result = trained(EXAMPLES / "two_heads.nn", backend, seed=seed)
    assert result.passed, [(e.metric, e.op, e.wanted, e.reached) for e in result.expectations]
    assert {e.metric for e in result.expectations} == {"cluster.accuracy", "distance.mae"}
    with open(result.paths["metrics"], newline="") as file:
        header = next(csv.reader(file))
    assert {"cluster.accuracy", "distance.mae", "cluster.loss", "distance.loss"} <= set(header)


@pytest.mark.slow
def test_a_missed_expectation_names_its_output(tmp_path: Path, capsys):
    path = _spec(tmp_path, "epochs = 1\nexpect cluster.accuracy >= 1.5\nexpect loss < 100")
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 1
    captured = capsys.readouterr()
    assert "cluster.accuracy" in captured.out and "MISSED" in captured.out
    assert "error[R304]: expectation missed: cluster.accuracy >= 1.5" in captured.err


# ---- resume and predict ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_goes_on_as_one_run(tmp_path: Path, backend: str):
    path = _spec(tmp_path, "split = 0.2\nloss_weights = {distance: 0.5}")
    whole = train(path, backend, out=tmp_path / "whole", epochs=4)
    train(path, backend, out=tmp_path / "cut", epochs=2)
    resumed = train(path, backend, out=tmp_path / "cut", epochs=4, resume=True)
    a, b = load_file(str(whole.paths["weights"])), load_file(str(resumed.paths["weights"]))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert resumed.metrics == whole.metrics and "distance.loss" in resumed.metrics
    path.write_text(path.read_text().replace("distance: 0.5", "distance: 2"))
    with pytest.raises(TrainingStopped) as caught:
        train(path, backend, out=tmp_path / "cut", epochs=5, resume=True)
    assert caught.value.code == "R302" and "loss_weights was" in caught.value.message


@pytest.mark.slow
def test_predict_gives_each_output(tmp_path: Path, capsys):
    path = _spec(tmp_path, "epochs = 2")
    result = train(path, "numpy", out=tmp_path / "run")
    np.savez(tmp_path / "new.npz", point=np.array([[2.0, 0.0], [0.0, 2.5]], np.float32))
    outputs = predict(path, result.paths["weights"], tmp_path / "new.npz")
    assert set(outputs) == {"cluster", "distance"}
    assert outputs["cluster"].shape == (2, 3) and outputs["distance"].shape == (2, 1)
    weights, new = str(result.paths["weights"]), str(tmp_path / "new.npz")
    assert main(["predict", str(path), "--weights", weights, "--input", new]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cluster[0],cluster[1],cluster[2],cluster_class,distance"
    assert len(lines) == 3


# ---- errors ----------------------------------------------------------------------------------
def _checked(tmp_path: Path, settings: str, **kwargs) -> nnspec.SpecError:
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.load(_spec(tmp_path, settings, **kwargs))
    return caught.value


def _loaded(tmp_path: Path, settings: str, **kwargs) -> nnspec.SpecError:
    model = nnspec.load(_spec(tmp_path, settings, **kwargs))
    with pytest.raises(nnspec.SpecError) as caught:
        load_data(model.train_spec, model.program)
    return caught.value


def _at(error: nnspec.SpecError) -> str:
    """The text the error's span covers."""
    line = error.span.source.line(error.span.line)
    return line[error.span.column - 1 : error.span.end_column - 1]


def test_a_loss_for_no_such_output_is_e530_at_its_name(tmp_path: Path):
    error = _checked(tmp_path, "loss = {cluster: cross_entropy, amount: mse}")
    assert (error.code, _at(error)) == ("E530", "amount")
    assert "not an output of network 'two' (its outputs: cluster, distance)" in error.message
    error = _checked(tmp_path, "loss_weights = {distanse: 2}")
    assert (error.code, _at(error), error.hint) == ("E530", "distanse", "did you mean 'distance'?")


@pytest.mark.parametrize(
    "settings, code, message",
    [
        ("loss = {cluster: crossentropy}", "E502", "unknown loss 'crossentropy'"),
        ("loss_weights = {cluster: -1}", "E502", "a loss weight is a number >= 0, not -1"),
        ("loss_weights = 2", "E502", "loss_weights gives a weight per output, not 2"),
        ("loss = {cluster: mse, cluster: mse}", "E208", "loss names output 'cluster' twice"),
    ],
)
def test_bad_values_of_the_dicts(tmp_path: Path, settings, code, message):
    error = _checked(tmp_path, settings)
    assert error.code == code and message in error.message and error.hint


def test_an_expectation_names_its_output_when_there_are_several(tmp_path: Path):
    error = _checked(tmp_path, "expect accuracy >= 0.9")
    assert (error.code, _at(error)) == ("E531", "accuracy")
    assert "say whose accuracy" in error.message and "cluster.accuracy" in error.hint
    error = _checked(tmp_path, "expect clustre.accuracy >= 0.9")
    assert (error.code, _at(error), error.hint) == (
        "E531",
        "clustre.accuracy",
        "did you mean 'cluster'?",
    )
    error = _checked(tmp_path, "expect cluster.acuracy >= 0.9")
    assert (error.code, error.hint) == ("E503", "did you mean 'accuracy'?")
    nnspec.load(_spec(tmp_path, "expect loss < 1\nexpect distance.mae < 1"))  # totals stand alone


def test_one_output_takes_plain_metric_names(tmp_path: Path):
    one = TWO.replace("output cluster, distance", "output cluster")
    one = one.replace("    body -> distance\n", "").replace("    dense distance: 1\n", "")
    error = _checked(tmp_path, "expect cluster.accuracy >= 0.9", text=one)
    assert error.code == "E531" and error.hint == "write 'expect accuracy ...'"


def test_a_missing_target_array_is_e532_at_the_data_line(tmp_path: Path):
    arrays = _points()
    del arrays["distance"]
    error = _loaded(tmp_path, "", arrays=arrays)
    assert error.code == "E532" and _at(error).startswith('npz("d.npz"')
    assert "has no array for output 'distance' of network 'two'" in error.message
    assert "distance=..." in error.hint


def test_a_target_of_the_wrong_shape_is_e533(tmp_path: Path):
    arrays = _points()
    arrays["distance"] = np.zeros((60, 3), np.float32)
    error = _loaded(tmp_path, "", arrays=arrays)
    assert error.code == "E533" and _at(error).startswith('npz("d.npz"')
    assert "output 'distance'" in error.message and "[3]" in error.message
    arrays = _points()
    arrays["cluster"] = arrays["cluster"] + 2  # classes 2 to 4 for 3 units
    error = _loaded(tmp_path, "", arrays=arrays)
    assert error.code == "E533" and "has 5 classes, but 'cluster' gives 3" in error.message


def test_csv_targets_are_the_columns_named_after_the_outputs(tmp_path: Path):
    rows = ["x,cluster,y,distance", "0.1,0,0.2,0.22", "2.0,1,0.1,2.0", "0.0,2,2.5,2.5"]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    text = TWO.replace('npz("d.npz")', 'csv("d.csv")')
    model = nnspec.load(_spec(tmp_path, "", text=text))
    data = load_data(model.train_spec, model.program)
    assert data.kind == "outputs" and data.outputs == {"cluster": 3, "distance": None}
    np.testing.assert_allclose(data.train.inputs["point"], [[0.1, 0.2], [2.0, 0.1], [0, 2.5]])
    assert data.train.targets["cluster"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(data.train.targets["distance"], [[0.22], [2.0], [2.5]])
    error = _checked(tmp_path, "", text=text.replace('csv("d.csv")', 'csv("d.csv", "cluster")'))
    assert error.code == "E532" and "names one target column" in error.message


def test_predict_reads_the_training_csv_without_its_output_columns(tmp_path: Path, capsys):
    """A several-output network trained from a csv: predict takes that csv back (the outputs'
    columns there are not read, as a one-output network's target column is not) or the feature
    columns alone, in any order; another column is E506, whose hint names the targets."""
    rows = ["x,cluster,y,distance"] + [
        f"{x:.2f},{c},{y:.2f},{(x * x + y * y) ** 0.5:.3f}"
        for x, y, c in [(0.1, 0.2, 0), (2.0, 0.1, 1), (0.0, 2.5, 2)] * 4
    ]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    path = _spec(
        tmp_path, "epochs = 1\nsplit = 0.25", text=TWO.replace('npz("d.npz")', 'csv("d.csv")')
    )
    weights = str(train(path, "numpy", out=tmp_path / "run").paths["weights"])
    (tmp_path / "features.csv").write_text("y,x\n0.2,0.1\n")
    (tmp_path / "extra.csv").write_text("x,y,z\n0.1,0.2,3\n")
    whole = predict(path, weights, tmp_path / "d.csv")
    alone = predict(path, weights, tmp_path / "features.csv")
    np.testing.assert_allclose(alone["distance"][0], whole["distance"][0], rtol=1e-6)
    assert (
        main(["predict", str(path), "--weights", weights, "--input", str(tmp_path / "d.csv")]) == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == 1 + 12
    assert (
        main(["predict", str(path), "--weights", weights, "--input", str(tmp_path / "extra.csv")])
        == 1
    )
    err = capsys.readouterr().err
    assert "error[E506]" in err and "its column 'z'" in err
    assert "ignores the targets 'cluster', 'distance'" in err
