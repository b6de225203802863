"""The extreme learning machine (issue 18, ../shared/ZOO.md "ELM"): specs/elm.nn, a frozen random
hidden layer and a readout fitted in closed form by rule = lstsq.

ZOO.md's checks: the readout equals numpy.linalg.lstsq (or ridge) on the same hidden activations
to 1e-8, and with as many hidden units as training examples the fit is exact.
"""

import re

import numpy as np
import pytest
from conftest import SPECS

import nnspec
from nnspec.data import load_data
from nnspec.train_section import train_config
from nnspec.training import make_runner

SPEC = SPECS / "elm.nn"


def _fitted(text: str, backend: str = "numpy"):
    """The network of `text` after its one lstsq step on all its training data, in float64:
    (its weights, the training inputs, the training targets, the model)."""
    model = nnspec.loads(text)
    data = load_data(model.train_spec, model.program)
    config = train_config(model.train_spec, data.kind)
    runner = make_runner(model, config, backend, dtype="float64")
    runner.step(data.train.inputs, data.train.targets, None, config.lr)
    return runner.weights(), data.train.inputs["x"].astype(np.float64), data.train.targets, model


def _hidden(weights, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ weights["h.weight"].T + weights["h.bias"])))


def test_the_readout_is_the_ridge_solution_on_the_hidden_activations():
    """W, b minimise |H W^T + b - T|^2 + 0.01 |W|^2 (the bias not penalised), T the one-hot
    classes: the normal equations of [H 1], solved here in float64 by NumPy."""
    weights, x, labels, _ = _fitted(SPEC.read_text())
    h = _hidden(weights, x)
    a = np.hstack([h, np.ones((len(h), 1))])
    penalty = np.diag([0.01] * h.shape[1] + [0.0])
    solution = np.linalg.solve(a.T @ a + penalty, a.T @ np.eye(10)[labels])
    np.testing.assert_allclose(weights["y.weight"], solution[:-1].T, atol=1e-8)
    np.testing.assert_allclose(weights["y.bias"], solution[-1], atol=1e-8)


def test_without_ridge_the_readout_is_numpys_lstsq():
    weights, x, labels, _ = _fitted(SPEC.read_text().replace("lstsq(ridge=0.01)", "lstsq"))
    a = np.hstack([_hidden(weights, x), np.ones((len(x), 1))])
    solution = np.linalg.lstsq(a, np.eye(10)[labels], rcond=None)[0]
    fitted = np.hstack([weights["y.weight"], weights["y.bias"][:, None]])
    np.testing.assert_allclose(a @ fitted.T, a @ solution, atol=1e-8)


def test_with_a_hidden_unit_per_training_example_the_fit_is_exact():
    """The spec with as many hidden units as training digits (1438) and no ridge: the readout
    reproduces every training target, to rounding."""
    text, units = re.subn(r"(?m)^( *dense +h): 800,", r"\1: 1438,", SPEC.read_text())
    text, rules = re.subn(r"(?m)^( *rule *= *lstsq)\(ridge=0\.01\)$", r"\1", text)
    assert units == rules == 1
    weights, x, labels, _ = _fitted(text)
    assert len(x) == 1438
    outputs = _hidden(weights, x) @ weights["y.weight"].T + weights["y.bias"]
    assert np.abs(outputs - np.eye(10)[labels]).max() < 1e-6


def test_both_backends_fit_the_same_readout():
    pytest.importorskip("torch")
    numpy, *_ = _fitted(SPEC.read_text(), "numpy")
    torch, *_ = _fitted(SPEC.read_text(), "torch")
    for name in ("y.weight", "y.bias"):
        np.testing.assert_allclose(numpy[name], torch[name], atol=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_expectations_hold_for_other_seeds(seed, tmp_path):
    result = nnspec.train(SPEC, "numpy", tmp_path, seed=seed)
    assert result.passed, result.expectations
