"""What a learning rule is given and keeps: its settings (`rule = NAME(option=value)`), the input
of a learner that no input feeds directly, seeded draws, its step count and the run's, a state
kept across steps and resumes, and its own loss and metrics.

Each test registers a small rule of its own (monkeypatched into `RULES` and `STEPS`), so that
the interface is checked apart from any one rule of the zoo.
"""

import json

import numpy as np
import pytest
from pydantic import Field

import nnspec
from nnspec import rules as declared
from nnspec.data import load_data
from nnspec.errors import NnspecError
from nnspec.train_section import train_config
from nnspec.training import loop, make_runner, train
from nnspec.training import rules as stepping

# a frozen tanh layer before the readout: the readout's input is computed, not given
TWO_LAYERS = """network n {
    input x: 2
    dense h: 3, act=tanh, frozen
    dense y: 1, act=identity
    x -> h -> y
}
train {
    data = and
    rule = %s
    batch = 2
    epochs = %d
    seed = 3
}
"""


class Gain(declared.RuleOptions):
    gain: float = Field(1.0, gt=0, description="how far each step moves")


def _register(monkeypatch, seen: list, **steps):
    """The rule `probe`: it records every batch it is given, adds gain * (t - z) x to the readout
    and counts its steps in its state."""

    def step(batch, lr):
        count = batch.state.get("count", np.zeros(1))
        batch.state["count"] = count + 1
        seen.append(batch)
        s = batch.options.gain * (batch.t - batch.z)
        return {"weight": lr * s.T @ batch.x, "bias": lr * s.sum(0)}

    rule = declared.Rule(
        "probe",
        "records what it is given",
        "gain lr (t - z) x",
        options=Gain,
        fits=lambda program, rule: None,
        learner=lambda program: "y",
    )
    monkeypatch.setitem(declared.RULES, "probe", rule)
    monkeypatch.setitem(stepping.STEPS, "probe", stepping.Steps(step, stepping.NUMPY, **steps))


def test_a_rule_takes_its_settings_with_their_defaults(monkeypatch, tmp_path):
    _register(monkeypatch, [])
    config = train_config(nnspec.loads(TWO_LAYERS % ("probe(gain=2)", 1)).train_spec)
    assert config.rule == "probe" and config.rule_settings.gain == 2.0
    assert train_config(nnspec.loads(TWO_LAYERS % ("probe", 1)).train_spec).rule_settings.gain == 1
    spec = tmp_path / "probe.nn"
    spec.write_text(TWO_LAYERS % ("probe(gain=2)", 1))
    train(spec, "numpy", out=tmp_path / "run")
    settings = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert settings["rule"] == {"name": "probe", "gain": 2.0}


@pytest.mark.parametrize(
    "written, message, hint",
    [
        ("probe(gian=2)", "rule probe has no setting 'gian'", "did you mean 'gain'?"),
        ("probe(2)", "rule probe has no setting given by position", "write probe(gain=...)"),
        (
            "probe(gain=-1)",
            "rule probe cannot take gain=-1: input should be greater than 0",
            "gain",
        ),
        ("hebb(gain=1)", "rule hebb has no setting 'gain'", "write rule = hebb"),
    ],
)
def test_a_setting_a_rule_does_not_take_is_E510(monkeypatch, written, message, hint):
    _register(monkeypatch, [])
    with pytest.raises(NnspecError) as caught:
        nnspec.loads(TWO_LAYERS % (written, 1))
    error = caught.value.errors[0] if hasattr(caught.value, "errors") else caught.value
    assert error.code == "E510" and message in error.message and hint in error.hint


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_rule_sees_the_learners_input_its_steps_and_its_own_draws(monkeypatch, tmp_path, backend):
    if backend == "torch":
        pytest.importorskip("torch")
    seen: list = []
    _register(monkeypatch, seen)
    model = nnspec.loads(TWO_LAYERS % ("probe(gain=0.5)", 2))
    data = load_data(model.train_spec, model.program)
    config = train_config(model.train_spec, data.kind)
    runner = make_runner(model, config, backend)
    before = runner.weights()
    loop.fit(runner, data, config, tmp_path)
    assert [batch.step for batch in seen] == [0, 1, 2, 3]
    assert {batch.steps for batch in seen} == {4}  # 2 epochs of 2 batches
    first = seen[0]
    assert first.x.shape == (2, 3)
    # the readout's input: the frozen tanh layer of two of the four rows (a shuffled batch)
    hidden = np.tanh(data.train.inputs["x"] @ before["h.weight"].T + before["h.bias"])
    for row in first.x:
        assert np.abs(hidden - row).max(1).min() < 1e-6
    assert first.options.gain == 0.5 and first.layer.name == "y"
    assert set(first.params) == {"weight", "bias"}
    assert first.rng.random() == np.random.default_rng([3, 0]).random()
    assert seen[-1].state["count"][0] == 4  # the state is kept from step to step


@pytest.mark.slow
def test_a_rules_state_and_step_count_survive_a_resume(monkeypatch, tmp_path):
    seen: list = []
    _register(monkeypatch, seen)
    spec = tmp_path / "probe.nn"
    spec.write_text(TWO_LAYERS % ("probe", 3))
    train(spec, "numpy", out=tmp_path / "run", epochs=1)
    assert [batch.step for batch in seen] == [0, 1]
    seen.clear()
    train(spec, "numpy", out=tmp_path / "run", resume=True, epochs=3)
    assert [batch.step for batch in seen] == [2, 3, 4, 5]
    assert seen[-1].state["count"][0] == 6


def test_a_rule_reports_its_own_loss_and_metrics(monkeypatch, tmp_path):
    seen: list = []
    _register(
        monkeypatch,
        seen,
        loss=lambda batch: float(np.abs(batch.x).sum()),
        measures={"spread": lambda batch: float(batch.x.std())},
    )
    model = nnspec.loads(TWO_LAYERS % ("probe", 1))
    data = load_data(model.train_spec, model.program)
    runner = make_runner(model, train_config(model.train_spec, data.kind), "numpy")
    values = loop._evaluate(runner, data.train, {"spread"})
    weights = runner.weights()
    hidden = np.tanh(data.train.inputs["x"] @ weights["h.weight"].T + weights["h.bias"])
    assert values["loss"] == pytest.approx(np.abs(hidden).sum(), rel=1e-6)
    assert values["spread"] == pytest.approx(hidden.std(), rel=1e-5)
    loss, _ = runner.step(data.train.inputs, data.train.targets, None, 0.1)
    assert loss == pytest.approx(np.abs(hidden).sum(), rel=1e-6)  # before the step moved it


def test_a_refused_choice_lists_the_choices():
    text = TWO_LAYERS.replace(
        "dense h: 3, act=tanh, frozen\n    dense y: 1, act=identity", "som y: [2, 2]"
    )
    text = text.replace("x -> h -> y", "x -> y").replace("batch = 2", "batch = 1")
    with pytest.raises(NnspecError) as caught:
        nnspec.loads(text % ("som(decay=fast)", 1))
    error = caught.value.errors[0] if hasattr(caught.value, "errors") else caught.value
    assert error.code == "E510"
    assert "decay of som: one of asymptotic, inverse, linear" in error.hint
