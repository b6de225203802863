"""The denoising autoencoder (issue 17, ../shared/ZOO.md "DAE"): the `noise` kind and specs/dae.nn.

`noise` corrupts in training only: each backend draws its own noise (NumPy's and torch's
generators differ), so the two are held to the same statistics, the definition's mean and
variance, rather than to the same draws. In evaluation it is the identity.
The figure of Vincent et al. 2008 that ZOO.md asks for: on corrupted held-out digits the DAE
rebuilds the clean digit better than the same network trained without noise, which in turn
does better than leaving the corrupted digit as it is.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SPECS

import nnspec
from nnspec.backends.weights import read_weights
from nnspec.data import load_data
from nnspec.draw.page import figure
from nnspec.kinds import Cell
from nnspec.model import drawables

C = 0.4  # every input value: the corruption's mean and variance are then exact
N = 400_000  # values drawn: the estimates' standard errors are below 0.002 of the variances


def definition(kind: str, a: float) -> tuple[float, float]:
    """The corrupted value's mean and variance for an input value C, by the kind's definition."""
    if kind == "gaussian":  # C + a * n
        return C, a * a
    if kind == "mask":  # C with probability 1 - a, else 0
        return (1 - a) * C, a * (1 - a) * C * C
    mean = (1 - a) * C + a / 2  # salt_pepper: C with probability 1 - a, else 0 or 1
    return mean, (1 - a) * C * C + a / 2 - mean * mean


def corrupt(kind: str, a: float, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """One training pass of `noise` over [N / 1000, 1000] values C: (output, input gradient)."""
    model = nnspec.loads(f"network n {{ input x: 1000\n noise c: {kind}, {a}\n x -> c }}")
    x = np.full((N // 1000, 1000), C)
    if backend == "numpy":
        run = model.to_numpy(seed=1, dtype="float64").train(True)
        return run(x), run.backward(np.ones_like(x))["x"]
    net = model.to_torch(seed=1, dtype="float64").train(True)
    xt = torch.tensor(x, requires_grad=True)
    y = net(xt)
    y.sum().backward()
    return y.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("kind, a", [("gaussian", 0.3), ("mask", 0.25), ("salt_pepper", 0.1)])
def test_the_noise_has_the_mean_and_variance_of_its_definition(kind, a, backend):
    y, grad = corrupt(kind, a, backend)
    mean, var = definition(kind, a)
    assert abs(y.mean() - mean) < 4 * np.sqrt(var / N)
    assert abs(y.var() / var - 1) < 0.02
    kept = np.isclose(y, C) if kind != "gaussian" else np.ones(y.shape, bool)
    if kind != "gaussian":
        assert abs(1 - kept.mean() - a) < 4 * np.sqrt(a * (1 - a) / N)  # the fraction corrupted
        others = np.unique(y[~kept])
        assert set(others) <= ({0.0} if kind == "mask" else {0.0, 1.0})
    # the noise is a constant: the gradient is 1 where a value is kept, 0 where replaced
    np.testing.assert_array_equal(grad, kept.astype(float))


def test_evaluation_is_noise_free():
    """specs/dae.nn in evaluation: two passes give the same, on each backend, and both backends
    give the network without its noise layer (the same initial weights)."""
    model = nnspec.load(SPECS / "dae.nn")
    x = np.random.default_rng(0).random((16, 64))
    run = model.to_numpy(seed=2, dtype="float64").eval()
    first = run(x)
    np.testing.assert_array_equal(run(x), first)
    net = model.to_torch(seed=2, dtype="float64").eval()
    with torch.no_grad():
        a, b = net(torch.tensor(x)).numpy(), net(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, first, rtol=1e-10, atol=1e-12)
    p = run.params
    hidden = np.maximum(x @ p["h.weight"].T + p["h.bias"], 0)
    plain = 1 / (1 + np.exp(-(hidden @ p["out.weight"].T + p["out.bias"])))
    np.testing.assert_allclose(first, plain, rtol=1e-10, atol=1e-12)


def test_the_input_draws_as_the_charts_noisy_input():
    """NIn -> H -> MO, as ZOO.md draws the DAE: the noise is folded into the input's cells."""
    scene = figure(drawables([nnspec.load(SPECS / "dae.nn")]))
    cells = {}
    for disc in scene.cells():
        cells.setdefault(disc.gid.split(":")[2], set()).add(disc.cell)
    assert cells == {
        "x": {Cell.NOISY_INPUT},
        "h": {Cell.HIDDEN},
        "out": {Cell.MATCH_INPUT_OUTPUT},
    }


def _rebuilt(spec: Path, out: Path, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train `spec` on NumPy with `seed`: (clean held-out digits, the same corrupted as in
    training, a quarter of the pixels zeroed, the network's rebuilt corrupted digits)."""
    result = nnspec.train(spec, "numpy", out, seed=seed)
    model = nnspec.load(spec)
    clean = load_data(model.train_spec, model.program).test.inputs["x"].astype(np.float64)
    keep = np.random.default_rng(100 + seed).random(clean.shape) >= 0.25
    corrupted = clean * keep
    run = model.to_numpy(dtype="float64")
    run.load(read_weights(result.paths["weights"], model.program))
    return clean, corrupted, run.eval()(corrupted)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_dae_rebuilds_corrupted_digits_better_than_the_plain_autoencoder(seed, tmp_path):
    """ZOO.md's figure: on held-out digits with a quarter of their pixels zeroed, the squared
    error to the clean digit: DAE < the same network and epochs trained without noise (the
    noise layer at amount 0) < the corrupted digit itself."""
    text = (SPECS / "dae.nn").read_text()
    assert "noise  c: mask, 0.25" in text
    plain = tmp_path / "plain.nn"
    plain.write_text(text.replace("noise  c: mask, 0.25", "noise  c: mask, 0"))
    clean, corrupted, dae = _rebuilt(SPECS / "dae.nn", tmp_path / "dae", seed)
    _, corrupted_again, ae = _rebuilt(plain, tmp_path / "plain", seed)
    np.testing.assert_array_equal(corrupted_again, corrupted)

    def error(y):
        return float(np.mean((y - clean) ** 2))

    assert error(dae) < error(ae) < error(corrupted), (error(dae), error(ae), error(corrupted))
