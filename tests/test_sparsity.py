"""The sparsity= penalty of dense (nnspec/kinds/sparsity.py): its value against a hand
computation, its gradient against finite differences (NumPy) and torch autograd, the two
backends training alike with it, and its errors."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SPECS, TEST_SPECS, assert_trains_alike

import nnspec
from nnspec.errors import NnspecError
from nnspec.kinds.sparsity import Sparsity
from nnspec.training.losses import penalty_and_grad
from nnspec.training.torch_runner import penalty_of

ROOT_ERRORS = TEST_SPECS / "errors"
KL = Sparsity(name="kl", rho=0.1, beta=2.0)
L1 = Sparsity(name="l1", weight=0.01)


def _activations(shape=(5, 4), seed=0) -> np.ndarray:
    """Sigmoid activations in (0, 1), float64 `shape`."""
    return 1 / (1 + np.exp(-np.random.default_rng(seed).standard_normal(shape)))


def test_kl_value_by_hand():
    a = np.array([[0.2, 0.5], [0.4, 0.1]])  # mean activations 0.3 and 0.3
    value, _ = penalty_and_grad(KL, a)
    per_unit = 0.1 * math.log(0.1 / 0.3) + 0.9 * math.log(0.9 / 0.7)
    assert value == pytest.approx(2.0 * 2 * per_unit, rel=1e-12)  # beta * two units


def test_kl_is_zero_at_rho_and_its_gradient_too():
    a = np.full((3, 2), 0.1)
    value, grad = penalty_and_grad(KL, a)
    assert value == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)


def test_l1_value_by_hand():
    a = np.array([[0.5, -1.0], [2.0, 0.0]])
    value, _ = penalty_and_grad(L1, a)
    assert value == pytest.approx(0.01 * 3.5 / 2, rel=1e-12)  # the sum per example, averaged


def test_kl_gradient_is_the_formula():
    a = _activations()
    rho_hat = a.mean(0)
    _, grad = penalty_and_grad(KL, a)
    per_unit = 2.0 * (-0.1 / rho_hat + 0.9 / (1 - rho_hat)) / a.shape[0]
    np.testing.assert_allclose(grad, np.broadcast_to(per_unit, a.shape), rtol=1e-12)


@pytest.mark.parametrize("sparsity", [KL, L1], ids=["kl", "l1"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 4)], ids=["rows", "steps"])
def test_gradient_matches_finite_differences(sparsity, shape):
    a = _activations(shape, seed=1)
    _, grad = penalty_and_grad(sparsity, a)
    h, numeric = 1e-6, np.zeros_like(a)
    for index in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = penalty_and_grad(sparsity, up)[0] - penalty_and_grad(sparsity, down)[0]
        numeric[index] /= 2 * h
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("sparsity", [KL, L1], ids=["kl", "l1"])
def test_value_and_gradient_match_torch_autograd(sparsity):
    a = _activations((6, 5), seed=2)
    value, grad = penalty_and_grad(sparsity, a)
    t = torch.tensor(a, requires_grad=True)
    penalty = penalty_of(sparsity, t)
    penalty.backward()
    assert penalty.item() == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-10, atol=1e-15)


SAE = """
network sae {{
    input x: 2
    dense h: 6, act=sigmoid, sparsity={penalty}
    dense y: 2
    x -> h -> y
}}

train {{
    data = moons
    target = input
    loss = mse
    optimizer = adam(lr=0.01)
    batch = 64
    epochs = 3
}}
"""


@pytest.mark.slow
@pytest.mark.parametrize("penalty", ["kl(rho=0.05, beta=0.5)", "l1(0.01)"], ids=["kl", "l1"])
def test_both_backends_train_alike(tmp_path, penalty):
    with_penalty, _ = assert_trains_alike(nnspec.loads(SAE.format(penalty=penalty)), tmp_path / "a")
    without, _ = assert_trains_alike(nnspec.loads(SAE.format(penalty="l1(0)")), tmp_path / "b")
    # the penalty is in the reported loss: the first epoch's loss is higher with it
    assert with_penalty[0]["loss"] > without[0]["loss"]


def test_the_runners_add_the_penalty_to_the_loss():
    model = nnspec.loads(SAE.format(penalty="kl(rho=0.05, beta=0.5)"))
    plain = nnspec.loads(SAE.format(penalty="l1(0)"))
    from nnspec.train_section import train_config
    from nnspec.training import make_runner

    config = train_config(model.train_spec, "reconstruction")
    x = np.random.default_rng(3).standard_normal((8, 2))
    for backend in ("numpy", "torch"):
        sparse = make_runner(model, config, backend, "float64")
        loss, _ = sparse.evaluate({"x": x}, x, None)
        dense = make_runner(plain, config, backend, "float64")
        base, _ = dense.evaluate({"x": x}, x, None)
        weights = sparse.weights()
        h = 1 / (1 + np.exp(-(x @ weights["h.weight"].T + weights["h.bias"])))
        expected, _ = penalty_and_grad(Sparsity(name="kl", rho=0.05, beta=0.5), h)
        assert loss == pytest.approx(base + expected, rel=1e-10), backend


@pytest.mark.parametrize(
    ("option", "code", "words"),
    [
        ("kl(rho=1.5)", "E207", "rho must lie in (0, 1)"),
        ("kl(rho=0)", "E207", "rho must lie in (0, 1)"),
        ("kl(beta=-1)", "E207", "beta must be >= 0"),
        ("l1(-0.1)", "E207", "weight must be >= 0"),
        ("kll", "E207", "did you mean"),
        ("kl(0.05, 3, 4)", "E207", "too many values"),
        ("kl(gamma=1)", "E207", "no setting 'gamma'"),
    ],
)
def test_errors(option, code, words):
    with pytest.raises(NnspecError) as caught:
        nnspec.loads(SAE.format(penalty=option))
    text = f"{caught.value.message} {caught.value.hint}"
    assert caught.value.code == code and words in text


def test_kl_needs_a_sigmoid():
    spec = SAE.format(penalty="kl").replace("act=sigmoid, sparsity", "act=relu, sparsity")
    with pytest.raises(NnspecError) as caught:
        nnspec.loads(spec)
    assert caught.value.code == "E280" and "act=sigmoid" in caught.value.hint
    nnspec.loads(spec.replace("sparsity=kl", "sparsity=l1(0.001)"))  # l1 takes any activation


LOOP = """
network s {
    input x: 3, seq
    dense h: 5, act=sigmoid, sparsity=kl(rho=0.1, beta=1)
    dense y: 3
    x -> h -> y
    y ~> h
}
"""


def test_a_layer_in_a_loop_gives_every_step_on_both_backends():
    # 'h' is read only inside its loop: both backends still hand its activations at every step
    model = nnspec.loads(LOOP)
    x = np.random.default_rng(4).standard_normal((2, 4, 3))
    _, ours = model.to_numpy(seed=0, dtype="float64").forward_with_terms(x)
    _, theirs = model.to_torch(seed=0, dtype="float64").forward_with_terms(torch.tensor(x))
    assert ours["sparse"]["h"].shape == (2, 4, 5)
    np.testing.assert_allclose(ours["sparse"]["h"], theirs["sparse"]["h"].detach().numpy())


def test_a_network_without_the_penalty_hands_no_activations():
    model = nnspec.loads(LOOP.replace(", sparsity=kl(rho=0.1, beta=1)", ""))
    x = np.random.default_rng(4).standard_normal((2, 4, 3))
    assert "sparse" not in model.to_numpy(seed=0).forward_with_terms(x)[1]
    assert "sparse" not in model.to_torch(seed=0).forward_with_terms(torch.tensor(x).float())[1]


# ---- specs/sae.nn -------------------------------------------------------------------------------
def _trained_hidden(text: str, backend: str, seed: int) -> float:
    """The mean activation of 'h' on the held-out digits after `text`'s run with `seed`."""
    from nnspec.data import load_data
    from nnspec.train_section import train_config
    from nnspec.training import make_runner
    from nnspec.training.loop import fit

    model = nnspec.loads(text.replace("seed      = 0", f"seed      = {seed}"))
    data = load_data(model.train_spec, model.program)
    config = train_config(model.train_spec, data.kind)
    assert config.seed == seed
    runner = make_runner(model, config, backend)
    with tempfile.TemporaryDirectory() as out:
        fit(runner, data, config, Path(out), resume=False)
    w = runner.weights()
    x = data.test.inputs["x"].reshape(len(data.test.inputs["x"]), -1)
    return float((1 / (1 + np.exp(-(x @ w["h.weight"].T + w["h.bias"])))).mean())


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_sae_mean_hidden_activation_ends_near_rho(backend):
    text = (SPECS / "sae.nn").read_text()
    assert "sparsity=kl(rho=0.05, beta=0.03)" in text
    for seed in (0, 1, 2):
        mean = _trained_hidden(text, backend, seed)
        assert 0.05 / 2 < mean < 0.05 * 2, (seed, mean)  # measured: 0.060 for seeds 0-2
    plain = _trained_hidden(text.replace(", sparsity=kl(rho=0.05, beta=0.03)", ""), backend, 0)
    assert plain > 0.3  # measured: 0.49 without the penalty


def test_a_learning_rule_refuses_the_penalty():
    spec = (ROOT_ERRORS / "E281_sparsity_with_a_learning_rule.nn").read_text()
    with pytest.raises(NnspecError) as caught:
        nnspec.loads(spec)
    assert caught.value.code == "E281" and "rule = delta" in caught.value.message
    nnspec.loads(spec.replace("rule = delta", "loss = mse"))  # backpropagation takes it
