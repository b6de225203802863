"""A train section resolves to one typed model, and the learning rules live in one registry.

`TrainConfig` (nnspec/train_section.py) holds every default once; `CHECKS` checks each setting;
`RULES` (nnspec/rules.py) declares each learning rule, `STEPS` (nnspec/training/rules.py) moves
the weights by it, one entry per rule in each.
"""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from pydantic import ValidationError

import nnspec
from nnspec import rules as declared
from nnspec.data import load_data
from nnspec.train_section import CHECKS, TrainConfig, train_config
from nnspec.training import make_runner, train
from nnspec.training import rules as stepping

ONE_LAYER = "network n {{\n    input x: 2\n    dense y: 1, act={act}\n    x -> y\n}}\n"


def _section(settings: str = "", act: str = "sigmoid"):
    """The train spec of a one-layer network on `and`, with `settings` (lines) in its section."""
    text = ONE_LAYER.format(act=act) + f"train {{\n    data = and\n    {settings}\n}}\n"
    return nnspec.loads(text)


# ---- the typed model ------------------------------------------------------------------------
def test_a_section_that_sets_nothing_gets_every_default():
    config = train_config(_section().train_spec)
    assert (config.epochs, config.batch, config.seed, config.split) == (10, 32, 0, 0.0)
    assert config.loss == "mse" and config.rule == "backprop"
    assert config.optimizer == ("adam", {"lr": 1e-3}) and config.schedule == ("constant", {})
    assert config.metrics == ("loss", "train_loss")
    assert (config.target, config.generator, config.discriminator, config.latent) == (None,) * 4


@pytest.mark.parametrize(
    "kind, loss, metrics",
    [
        ("classification", "cross_entropy", ("loss", "train_loss", "accuracy")),
        ("graph", "cross_entropy", ("loss", "train_loss", "accuracy")),
        ("generative", "bce", ("loss", "train_loss")),
        ("regression", "mse", ("loss", "train_loss")),
        ("reconstruction", "mse", ("loss", "train_loss")),
    ],
)
def test_the_loss_and_the_metrics_follow_the_data_kind(kind, loss, metrics):
    config = train_config(_section().train_spec, kind)
    assert (config.data_kind, config.loss, config.metrics) == (kind, loss, metrics)


def test_a_learning_rule_defaults_to_sgd_with_its_own_step():
    config = train_config(_section("rule = hebb").train_spec)
    assert config.optimizer == ("sgd", {"lr": 0.1})
    written = train_config(_section("rule = hebb\n    optimizer = sgd(momentum=0.5)").train_spec)
    assert written.optimizer == ("sgd", {"momentum": 0.5, "lr": 0.1})
    assert train_config(_section("optimizer = rmsprop").train_spec).lr == 0.01


def test_what_the_section_writes_replaces_the_defaults():
    spec = _section(
        "epochs = 5\n    batch = full\n    seed = 3\n    split = 0.25\n    loss = bce\n"
        "    schedule = step(every=2)\n    metrics = [mae]\n    expect accuracy >= 0.5"
    ).train_spec
    config = train_config(spec, "classification")
    assert (config.epochs, config.batch, config.seed, config.split) == (5, None, 3, 0.25)
    assert config.loss == "bce" and config.schedule == ("step", {"every": 2})
    assert config.metrics == ("loss", "train_loss", "mae", "accuracy")
    assert config.expects == (("accuracy", ">=", 0.5),)
    assert config.as_dict()["batch"] == "full" and config.as_dict()["expect"] == ["accuracy >= 0.5"]


def test_the_command_line_overrides_the_section():
    spec = _section("epochs = 5\n    optimizer = sgd(lr=0.3)\n    batch = 2").train_spec
    given = train_config(spec, "classification", epochs=7, lr=0.05, batch=1, seed=9)
    assert (given.epochs, given.lr, given.batch, given.seed) == (7, 0.05, 1, 9)
    assert given.optimizer[0] == "sgd"
    kept = train_config(spec, "classification", epochs=None, lr=None)
    assert (kept.epochs, kept.lr, kept.batch) == (5, 0.3, 2)
    assert train_config(_section().train_spec, lr=0.5).optimizer == ("adam", {"lr": 0.5})


@pytest.mark.slow  # trains, through the command line
def test_nnspec_train_epochs_overrides_the_section(tmp_path):
    spec = tmp_path / "and.nn"
    spec.write_text(
        ONE_LAYER.format(act="sigmoid") + "train {\n    data = and\n    epochs = 50\n}\n"
    )
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "nnspec", "train", str(spec), "--backend", "numpy"]
        + ["--epochs", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "settings.json").read_text())["epochs"] == 2
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 2


def test_the_resolved_section_is_frozen_and_typed():
    config = train_config(_section().train_spec)
    with pytest.raises(ValidationError):
        config.epochs = 3
    with pytest.raises(ValidationError):
        TrainConfig(loss="sse_typo")
    with pytest.raises(ValidationError):
        TrainConfig(rule="oja")
    with pytest.raises(ValidationError):
        TrainConfig(epcohs=3)


def test_every_setting_has_a_checker_and_a_field():
    # rule_options come with the rule: `rule = NAME(option=value)`
    assert set(CHECKS) == set(TrainConfig.model_fields) - {"data_kind", "expects", "rule_options"}


def test_the_docs_list_the_defaults_the_model_declares():
    table = (ROOT / "docs" / "training.md").read_text().split("## Settings and their defaults")[1]
    defaults = TrainConfig()
    for setting, value in [("epochs", defaults.epochs), ("batch", defaults.batch)]:
        row = re.search(rf"^\| `{setting}` \|.*\| (\S+) \|$", table, re.MULTILINE)
        assert row and row.group(1) == str(value), (setting, row and row.group(0))
    seed = re.search(r"^\| `seed` \|.*\| (\S+) \|$", table, re.MULTILINE)
    assert seed and seed.group(1) == str(defaults.seed)


# ---- the registry of learning rules ---------------------------------------------------------
def test_the_rules_and_their_steps_load_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import nnspec.train_section, nnspec.rules, nnspec.training.rules as steps\n"
        "print(sorted(nnspec.rules.RULES) == sorted(steps.STEPS))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr


def test_the_docs_show_every_rule_as_declared():
    text = (ROOT / "docs" / "training.md").read_text()
    for rule in declared.RULES.values():
        assert f"`{rule.name}`" in text and rule.update in text, rule.name


@pytest.mark.parametrize("rule", [r for r in declared.RULES.values() if r.acts is not None])
def test_e507_comes_from_the_rule_declaration(rule):
    act = next(a for a in ("sigmoid", "tanh", "relu") if a not in rule.acts)
    with pytest.raises(nnspec.SpecError) as caught:
        _section(f"rule = {rule.name}", act=act)
    error = caught.value
    assert error.code == "E507" and (error.span.line, error.span.column) == (8, 12)
    assert error.message.endswith(f"{rule.needs}, and 'y' has act={act}")
    assert error.hint == rule.instead.format(layer="y")
    assert _section(f"rule = {rule.name}", act=rule.acts[0]).train_spec


def test_a_rule_with_a_torch_step_of_its_own_runs_it_on_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    seen = []

    def hebb_on_tensors(batch, lr):
        seen.append(type(batch.x))
        return {
            "weight": lr * torch.einsum("bu,bi->ui", batch.t, batch.x),
            "bias": lr * batch.t.sum(0),
        }

    hebb = stepping.STEPS["hebb"]
    monkeypatch.setitem(stepping.STEPS, "hebb", stepping.Steps(hebb.numpy, hebb_on_tensors))
    model = _section("rule = hebb\n    batch = full", act="tanh")
    data = load_data(model.train_spec, model.program)
    runner = make_runner(model, train_config(model.train_spec, data.kind), "torch")
    before = runner.weights()
    runner.step(data.train.inputs, data.train.targets, None, 0.5)
    after = runner.weights()
    x, t = data.train.inputs["x"], data.train.targets.reshape(-1, 1).astype(np.float32)
    assert seen == [torch.Tensor]
    np.testing.assert_allclose(after["y.weight"], before["y.weight"] + 0.5 * t.T @ x, rtol=1e-6)
    np.testing.assert_allclose(after["y.bias"], before["y.bias"] + 0.5 * t.sum(0), rtol=1e-6)


def test_a_rule_that_sees_all_the_data_at_once_is_one_entry_in_each_table(monkeypatch, tmp_path):
    """A least-squares readout, registered for this test only: it fits once, on the full batch."""

    def least_squares(batch, lr):
        ones = np.ones((len(batch.x), 1), batch.x.dtype)
        solution = np.linalg.lstsq(np.hstack([batch.x, ones]), batch.t, rcond=None)[0]
        return {"weight": solution[:-1].T - batch.w, "bias": solution[-1] - batch.b}

    rule = declared.Rule(
        "least_squares", "a linear readout", "W = t / [x 1]", acts=("identity",), sees="data"
    )
    monkeypatch.setitem(declared.RULES, rule.name, rule)
    monkeypatch.setitem(stepping.STEPS, rule.name, stepping.Steps(least_squares, stepping.NUMPY))
    config = train_config(_section("rule = least_squares", act="identity").train_spec)
    assert (config.batch, config.epochs) == (None, 1)
    spec = tmp_path / "readout.nn"
    spec.write_text(
        ONE_LAYER.format(act="identity")
        + "train {\n    data = and\n    rule = least_squares\n    loss = mse\n}\n"
    )
    result = train(spec, "numpy", out=tmp_path / "run")
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    fit = np.linalg.lstsq(np.hstack([x, np.ones((4, 1))]), [0, 0, 0, 1], rcond=None)[0]
    assert len(result.history) == 1
    assert result.metrics["loss"] == pytest.approx(
        np.mean((x @ fit[:2] + fit[2] - [0, 0, 0, 1]) ** 2), rel=1e-5
    )
