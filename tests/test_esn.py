"""The echo state network (issue 18, ../shared/ZOO.md "ESN"): specs/esn.nn, a reservoir of leaky
tanh units whose weights stay as drawn and a readout fitted by rule = lstsq(ridge, washout) on
reservoirpy's Mackey-Glass series, one step ahead, and run free by nnspec.generate.

Side by side with reservoirpy (skipped without it): given our reservoir's weights, its Reservoir
computes the same states and its Ridge fits the same readout. NumPy-only: the reservoir's
equation by hand, the spectral radius and sparsity of its weights, the washout, the split along
time, and (slow) the spec's figures against reservoirpy's published ones on both backends.
"""

import numpy as np
import pytest
from conftest import SPECS

import nnspec
from nnspec.backends.numpy.free_run import free_run
from nnspec.data import load_data
from nnspec.data.builtin import mackey_glass
from nnspec.errors import NnspecError
from nnspec.train_section import train_config
from nnspec.training import make_runner
from nnspec.training.metrics import nrmse, r2, rmse

SPEC = SPECS / "esn.nn"


def _fitted(text: str, backend: str = "numpy"):
    """The network of `text` after its one lstsq step on its training steps, in float64: (the
    runner, the data)."""
    model = nnspec.loads(text)
    data = load_data(model.train_spec, model.program)
    config = train_config(model.train_spec, data.kind)
    runner = make_runner(model, config, backend, dtype="float64")
    runner.step(data.train.inputs, data.train.targets, None, config.lr)
    return runner, data, model


def _states(model, weights, x: np.ndarray) -> np.ndarray:
    run = model.to_numpy(dtype="float64")
    run.load(weights)
    return run.eval().activations(["h"], x)["h"]


def test_the_reservoir_follows_its_equation_by_hand():
    """h_t = (1 - lr) h_{t-1} + lr tanh(W_ih x_t + W_hh h_{t-1} + b) from h_0 = 0."""
    model = nnspec.loads(
        "network n { input x: 2, seq\n esn h: 7, sr=0.8, lr=0.4, input_connectivity=0.5,"
        " bias_scaling=0.3\n dense y: 1\n x -> h -> y }"
    )
    run = model.to_numpy(dtype="float64")
    p = run.params
    x = np.random.default_rng(3).normal(size=(2, 12, 2))
    h, expected = np.zeros((2, 7)), []
    for t in range(12):
        pre = x[:, t] @ p["h.weight_ih"].T + h @ p["h.weight_hh"].T + p["h.bias"]
        h = 0.6 * h + 0.4 * np.tanh(pre)
        expected.append(h)
    np.testing.assert_allclose(run.activations(["h"], x)["h"], np.stack(expected, 1), atol=1e-14)


def test_the_weights_are_sparse_scaled_to_the_spectral_radius_and_never_trained():
    model = nnspec.loads(
        "network n { input x: 3, seq\n esn h: 200, sr=1.25, connectivity=0.05,"
        " input_connectivity=0.2, input_scaling=0.5, bias_scaling=0.1\n dense y: 1\n"
        " x -> h -> y }"
    )
    params = model.program.parameters()
    assert not any(params[f"h.{key}"].trainable for key in ("weight_ih", "weight_hh", "bias"))
    for seed in (0, 1):
        w = model.to_numpy(seed=seed, dtype="float64").params
        assert np.abs(np.linalg.eigvals(w["h.weight_hh"])).max() == pytest.approx(1.25, rel=1e-9)
        assert (w["h.weight_hh"] != 0).mean() == pytest.approx(0.05, abs=0.01)
        assert (w["h.weight_ih"] != 0).mean() == pytest.approx(0.2, abs=0.05)
        assert set(np.unique(np.abs(w["h.weight_ih"]))) == {0.0, 0.5}
        assert set(np.unique(np.abs(w["h.bias"]))) == {0.1}
    torch = pytest.importorskip("torch")
    net = model.to_torch()
    assert not any(p.requires_grad for name, p in net.named_parameters() if name.startswith("h."))
    np.testing.assert_array_equal(
        net.state_dict()["h.weight_hh"].numpy(),
        model.to_numpy(dtype="float32").params["h.weight_hh"],
    )
    assert torch  # both backends start from one draw


def test_the_series_is_reservoirpys_mackey_glass():
    datasets = pytest.importorskip("reservoirpy.datasets")
    ours = mackey_glass(np.random.default_rng(7), None)
    theirs = datasets.mackey_glass(2000)
    np.testing.assert_allclose(ours.x[0, :, 0], theirs[:-1, 0], atol=1e-6)
    np.testing.assert_allclose(ours.y[0, :, 0], theirs[1:, 0], atol=1e-6)


def test_one_series_is_split_along_time():
    """split = 0.2 of the 1999 steps: the first 1599 train, the held-out part is the whole series
    with its last 400 steps masked (reservoirpy's to_forecasting(test_size=0.2))."""
    model = nnspec.load(SPEC)
    data = load_data(model.train_spec, model.program)
    assert data.train.inputs["x"].shape == (1, 1599, 1) and data.train.mask is None
    assert data.test.inputs["x"].shape == (1, 1999, 1)
    assert data.test.mask.sum() == 400 and data.test.mask[0, 1599:].all()
    np.testing.assert_array_equal(data.test.inputs["x"][:, :1599], data.train.inputs["x"])


def test_the_readout_is_the_ridge_solution_after_the_washout():
    runner, data, model = _fitted(SPEC.read_text())
    weights = runner.weights()
    x = data.train.inputs["x"].astype(np.float64)
    h = _states(model, weights, x)[0, 100:]
    t = data.train.targets[0, 100:].astype(np.float64)
    a = np.hstack([h, np.ones((len(h), 1))])
    penalty = np.diag([1e-5] * h.shape[1] + [0.0])
    solution = np.linalg.solve(a.T @ a + penalty, a.T @ t)
    fitted = h @ weights["y.weight"].T + weights["y.bias"]
    np.testing.assert_allclose(fitted, a @ solution, atol=1e-9)
    np.testing.assert_allclose(weights["y.weight"], solution[:-1].T, rtol=1e-6, atol=1e-6)


def test_the_backends_fit_the_same_readout():
    fitted = [_fitted(SPEC.read_text(), backend)[0].weights() for backend in ("numpy", "torch")]
    for key in ("y.weight", "y.bias"):
        np.testing.assert_allclose(fitted[0][key], fitted[1][key], rtol=1e-6, atol=1e-8)


def test_reservoirpy_computes_the_same_states_and_fits_the_same_readout():
    """reservoirpy's Reservoir given our W_ih, W_hh and bias (lr = 0.3) on the training steps,
    its Ridge(ridge=1e-5) fitted after the same 100 washout steps, then run on the held-out steps
    from where training left it (as its README's esn.fit(x_train, y_train, warmup=100) and
    esn.run(x_test)): the same states, readout and forecasts."""
    nodes = pytest.importorskip("reservoirpy.nodes")
    runner, data, model = _fitted(SPEC.read_text())
    weights = runner.weights()
    x = data.test.inputs["x"][0].astype(np.float64)
    reservoir = nodes.Reservoir(
        units=100,
        lr=0.3,
        W=weights["h.weight_hh"],
        Win=weights["h.weight_ih"],
        bias=weights["h.bias"],
    )
    readout = nodes.Ridge(ridge=1e-5)
    theirs = reservoir.run(x)
    np.testing.assert_allclose(_states(model, weights, x[None])[0], theirs, atol=1e-10)
    targets = data.test.targets[0].astype(np.float64)
    readout.fit(theirs[100:1599], targets[100:1599])
    # the weights to 1e-4: at ridge = 1e-5 the normal equations' condition number (about 1e10)
    # turns the rounding of two routes to them (reservoirpy centres the states) into 1e-5
    np.testing.assert_allclose(weights["y.weight"], readout.Wout.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(weights["y.bias"], np.ravel(readout.bias), rtol=1e-4, atol=1e-4)
    _, y = runner.evaluate(data.test.inputs, data.test.targets, data.test.mask)
    # and what they compute after the washout, on the fitted and the held-out steps
    np.testing.assert_allclose(y[0, 100:], readout.run(theirs[100:]), atol=1e-8)


def test_rmse_and_r2_near_reservoirpys_published_figures():
    """reservoirpy's README: RMSE 0.0020282, R2 0.99992 (its own draw of the reservoir); ours,
    seed 0: 0.0027 and 0.99986, the same order, and nrmse = rmse / std of the held-out steps."""
    runner, data, _ = _fitted(SPEC.read_text())
    _, y = runner.evaluate(data.test.inputs, data.test.targets, data.test.mask)
    mask, target = data.test.mask, data.test.targets
    assert rmse(y, target, mask) < 0.005
    assert r2(y, target, mask) > 0.9995
    assert nrmse(y, target, mask) == pytest.approx(
        rmse(y, target, mask) / target[mask].std(), rel=1e-9
    )


def test_a_free_run_stays_on_the_attractor():
    """Warmed up on 1500 steps and run free for 1000 from its own forecasts: it follows the series
    for a while, then stays within the attractor's range and keeps oscillating as the series
    does (no fixed point, no blow-up)."""
    runner, data, model = _fitted(SPEC.read_text())
    series = data.test.inputs["x"][0, :, 0].astype(np.float64)
    generated = nnspec.generate(model, runner.weights(), series[:1500], steps=1000)[:, 0]
    truth = series[1500:1600]
    assert np.sqrt(((generated[:100] - truth) ** 2).mean()) / truth.std() < 0.2
    later = generated[200:]
    assert series.min() - 0.1 < later.min() and later.max() < series.max() + 0.1
    assert 0.6 * series.std() < later[-300:].std() < 1.4 * series.std()
    assert np.abs(np.diff(np.sign(later - series.mean()))).sum() / 2 > 20  # crossings of the mean


def test_the_free_run_continues_the_run_it_warms_up_on():
    """The first generated value is the output after the last warm-up step, and feeding the
    generated values back by hand through a full run gives the same outputs."""
    model = nnspec.loads(
        "network n { input x: 2, seq\n esn h: 9, sr=0.9, lr=0.5, input_connectivity=1\n"
        " lsm s: 5, input_scaling=2\n dense y: 2\n x -> h -> y\n x -> s -> y }"
    )
    run = model.to_numpy(dtype="float64").eval()
    warmup = np.random.default_rng(0).normal(size=(3, 6, 2))
    generated = free_run(run, warmup, 4)
    sequence = warmup
    for k in range(4):
        y = run(sequence)
        np.testing.assert_allclose(generated[:, k], y[:, -1], atol=1e-12)
        sequence = np.concatenate([sequence, y[:, -1:]], 1)


def test_a_washout_as_long_as_the_training_steps_is_r384(tmp_path):
    text = SPEC.read_text().replace("washout=100", "washout=5000")
    path = tmp_path / "esn.nn"
    path.write_text(text)
    with pytest.raises(NnspecError) as caught:
        nnspec.train(path, backend="numpy", out=tmp_path / "run")
    assert caught.value.code == "R384"
    assert "washout=5000) leaves out the first 5000 steps" in caught.value.message
    assert "they have 1599" in caught.value.message and "at most 1598" in caught.value.hint


def test_a_readout_on_a_cycle_is_not_fitted_in_closed_form():
    """E507: with `y ~> h` what enters the readout depends on the readout itself."""
    text = SPEC.read_text().replace("    x -> h -> y\n", "    x -> h -> y\n    y ~> h\n")
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    assert caught.value.code == "E507"
    assert "'h' steps on a cycle through a ~> link" in caught.value.message
    assert "nnspec.generate" in caught.value.hint


def test_a_network_that_cannot_run_free_is_r382():
    model = nnspec.loads("network n { input x: 2, seq\n esn h: 4\n dense y: 3\n x -> h -> y }")
    with pytest.raises(NnspecError) as caught:
        nnspec.generate(model, None, np.zeros((5, 2)), steps=3)
    assert caught.value.code == "R382"
    assert "output 'y' is [T, 3], and its next input must be [T, 2]" in caught.value.message


def test_a_warm_up_that_does_not_fit_is_r383():
    model = nnspec.loads("network n { input x: 2, seq\n esn h: 4\n dense y: 2\n x -> h -> y }")
    with pytest.raises(NnspecError) as caught:
        nnspec.generate(model, None, np.zeros((5, 3)), steps=3)
    assert caught.value.code == "R383" and "[5, 3]" in caught.value.message


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_spec_trains_to_its_expectations_with_other_seeds(backend, seed, tmp_path):
    result = nnspec.train(SPEC, backend=backend, out=tmp_path, seed=seed)
    assert result.metrics["rmse"] <= 0.005 and result.metrics["r2"] >= 0.9995
