"""The Kohonen map (kind `som`, rule `som`): what it computes, against MiniSom.

The forward gives the one-hot best-matching unit on both backends and in the compiled files;
Kohonen's update and the two measures are MiniSom's (minisom.py 2.3), so that from the same
initial weights, in the same order and with the same schedule, nnspec's map ends where
MiniSom's does.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, SPECS, assert_compiled_torch_equals_to_torch, import_file

import nnspec
from nnspec.training.som import (
    DECAYS,
    SIGMA_DECAYS,
    kohonen_step,
    neighbourhood,
    quantization_error,
    topographic_error,
)

MAP = "network n {{ input x: {d}\n som m: [{rows}, {cols}], sigma={sigma}\n x -> m }}"


def _model(rows=3, cols=4, d=5, sigma=1.5):
    return nnspec.loads(MAP.format(rows=rows, cols=cols, d=d, sigma=sigma))


def _winners_by_hand(x, w):
    return np.array([np.linalg.norm(w - row, axis=1).argmin() for row in x])


# ---- the kind ---------------------------------------------------------------------------------
def test_the_map_gives_the_one_hot_best_matching_unit_on_both_backends():
    torch = pytest.importorskip("torch")
    model = _model()
    run = model.to_numpy(seed=3, dtype="float64")
    x = np.random.default_rng(0).normal(size=(50, 5))
    hot = run(x)
    w = run.params["m.weight"]
    assert hot.shape == (50, 12) and set(np.unique(hot)) == {0.0, 1.0}
    np.testing.assert_array_equal(hot.sum(1), 1.0)
    np.testing.assert_array_equal(hot.argmax(1), _winners_by_hand(x, w))
    net = model.to_torch().double().eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in run.params.items()})
    with torch.no_grad():
        np.testing.assert_array_equal(net(torch.from_numpy(x)).numpy(), hot)


def test_a_tie_goes_to_the_first_unit_on_both_backends():
    torch = pytest.importorskip("torch")
    model = _model(rows=1, cols=3, d=2)
    run = model.to_numpy(dtype="float64")
    w = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])  # units 0 and 2 alike
    run.params["m.weight"][...] = w
    x = np.array([[0.0, 0.0], [2.0, 0.0]])  # 0: equally far from all three; 1: units 0 and 2
    np.testing.assert_array_equal(run(x).argmax(1), [0, 0])
    net = model.to_torch().double().eval()
    net.load_state_dict({"m.weight": torch.from_numpy(w)})
    with torch.no_grad():
        np.testing.assert_array_equal(net(torch.from_numpy(x)).numpy().argmax(1), [0, 0])


def test_the_map_passes_no_gradient():
    """Its output is piecewise constant: NumPy's backward gives its weight and its input zero."""
    run = _model().to_numpy(dtype="float64").train(True)
    run(np.ones((2, 5)))
    grads = run.backward(np.ones((2, 12)))
    assert not np.any(grads.get("m.weight", 0.0)) and not np.any(grads.get("x", 0.0))


def test_many_examples_are_matched_in_slices_alike():
    """The NumPy backend bounds its memory by matching slices of examples; the slices join up."""
    model = _model(rows=30, cols=30, d=64)
    run = model.to_numpy(dtype="float64")
    x = np.random.default_rng(1).normal(size=(300, 64))  # 300 * 900 * 64 > one slice
    np.testing.assert_array_equal(run(x).argmax(1), _winners_by_hand(x, run.params["m.weight"]))


def test_the_compiled_files_give_the_backends_winners(tmp_path):
    pytest.importorskip("torch")
    from nnspec.compile import emit

    model = _model()
    run = model.to_numpy(seed=1, dtype="float64")
    params = {k: v.astype(np.float32) for k, v in run.params.items()}
    x = np.random.default_rng(2).normal(size=(20, 5)).astype(np.float32)
    assert_compiled_torch_equals_to_torch(tmp_path, model, params, {"x": x})
    from safetensors.numpy import save_file

    (tmp_path / "np_net.py").write_bytes(emit(model, "numpy", params))
    save_file(params, str(tmp_path / "np_net.safetensors"))
    got = import_file(tmp_path / "np_net.py").load(tmp_path / "np_net.safetensors")(x)
    np.testing.assert_array_equal(got, _numpy_of(model, params, x))


def _numpy_of(model, params, x):
    run = model.to_numpy()
    run.load(params)
    return run.eval()(x)


# ---- the update and the measures, against MiniSom -----------------------------------------------
def test_the_neighbourhoods_are_minisoms():
    """Gaussian and triangle as minisom.py defines them: separable along rows and columns; the
    triangle is sigma^2 at the winner, not 1."""
    h = neighbourhood((4, 5), 7, 2.0, "gaussian").reshape(4, 5)  # unit 7: row 1, column 2
    i, j = np.meshgrid(np.arange(4), np.arange(5), indexing="ij")
    np.testing.assert_allclose(h, np.exp(-((i - 1) ** 2 + (j - 2) ** 2) / 8.0))
    t = neighbourhood((4, 5), 7, 2.0, "triangle").reshape(4, 5)
    np.testing.assert_allclose(t, np.maximum(2 - abs(i - 1), 0) * np.maximum(2 - abs(j - 2), 0))
    assert t[1, 2] == 4.0


def test_the_decays_are_minisoms():
    assert DECAYS["asymptotic"](0.5, 250, 1000) == 0.5 / (1 + 250 / 500)
    assert DECAYS["linear"](0.5, 250, 1000) == 0.5 * 0.75
    assert DECAYS["inverse"](0.5, 250, 1000) == 0.5 * 10 / (10 + 250)
    assert SIGMA_DECAYS["inverse"](3.0, 250, 1000) == 3.0 / (1 + 250 * 2 / 1000)
    assert SIGMA_DECAYS["linear"](3.0, 250, 1000) == 3.0 + 250 * (1 - 3.0) / 1000


def _minisom_and_ours(kind, sigma, data, rows, cols, steps, seed, lr=0.5):
    minisom = pytest.importorskip("minisom")
    som = minisom.MiniSom(
        rows,
        cols,
        data.shape[1],
        sigma=sigma,
        learning_rate=lr,
        neighborhood_function=kind,
        random_seed=seed,
    )
    w = som.get_weights().reshape(rows * cols, -1).copy()
    som.train(data, steps)  # in order: example t % n at step t
    for t in range(steps):
        w += kohonen_step(
            data[t % len(data)],
            w,
            (rows, cols),
            DECAYS["asymptotic"](lr, t, steps),
            SIGMA_DECAYS["asymptotic"](sigma, t, steps),
            kind,
        )
    return som, w


@pytest.mark.parametrize("kind, sigma", [("gaussian", 1.3), ("triangle", 2.0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_update_ends_where_minisoms_does(kind, sigma, seed):
    data = np.random.default_rng(seed).normal(size=(150, 4))
    som, w = _minisom_and_ours(kind, sigma, data, 5, 4, 450, seed)
    np.testing.assert_allclose(w, som.get_weights().reshape(20, 4), rtol=0, atol=1e-10)
    assert quantization_error(data, w) == pytest.approx(som.quantization_error(data), abs=1e-10)
    assert topographic_error(data, w, (5, 4)) == som.topographic_error(data)


# ---- trained by nnspec, against MiniSom --------------------------------------------------------
TRAINED = """
network n {{
    input x: {d}
    som   m: [{rows}, {cols}], sigma={sigma}, neighbourhood={kind}
    x -> m
}}
train {{
    data      = {data}
    normalize = true
    rule      = som{options}
    optimizer = sgd(lr={lr})
    batch     = 1
    epochs    = {epochs}
    seed      = {seed}
    metrics   = [quantization_error, topographic_error]
}}
"""


def _train(text, backend, tmp_path):
    """The map trained by its section in float64: (initial weights, final weights, last row of
    metrics, the training inputs in the order the loop took them)."""
    from nnspec.data import load_data
    from nnspec.train_section import train_config
    from nnspec.training import make_runner
    from nnspec.training.loop import fit

    model = nnspec.loads(text)
    data = load_data(model.train_spec, model.program)
    config = train_config(model.train_spec, data.kind)
    runner = make_runner(model, config, backend, "float64")
    start = runner.weights()["m.weight"].copy()
    outcome = fit(runner, data, config, tmp_path / backend, resume=False)
    x = data.train.inputs["x"].reshape(data.train.size, -1).astype(np.float64)
    rng = np.random.default_rng(config.seed)  # the loop's shuffle, epoch by epoch
    order = np.concatenate([rng.permutation(len(x)) for _ in range(config.epochs)])
    return start, runner.weights()["m.weight"], outcome.history[-1], x[order], x


def _minisom_from(start, rows, cols, sigma, kind, lr, examples, decay="asymptotic"):
    """MiniSom from the same initial weights, taking the same examples in the same order."""
    minisom = pytest.importorskip("minisom")
    names = {"asymptotic": "asymptotic_decay", "linear": "linear_decay_to_zero"}
    sigmas = {"asymptotic": "asymptotic_decay", "linear": "linear_decay_to_one"}
    som = minisom.MiniSom(
        rows,
        cols,
        start.shape[1],
        sigma=sigma,
        learning_rate=lr,
        neighborhood_function=kind,
        decay_function=names[decay],
        sigma_decay_function=sigmas[decay],
    )
    som._weights = start.reshape(rows, cols, -1).copy()
    som.train(examples, len(examples))  # in order: the examples as nnspec took them
    return som


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize(
    "kind, sigma, seed, decay",
    [
        ("gaussian", 1.5, 0, "asymptotic"),
        ("triangle", 2, 1, "asymptotic"),
        ("gaussian", 2, 2, "linear"),
    ],
)
def test_a_trained_map_ends_with_minisoms_weights(backend, kind, sigma, seed, decay, tmp_path):
    """Same initial weights, order and schedule: the same map within 1e-6, and MiniSom's
    quantization and topographic errors (blobs, 512 points, two epochs of a 4 x 5 map)."""
    if backend == "torch":
        pytest.importorskip("torch")
    options = "" if decay == "asymptotic" else f"(decay={decay}, sigma_decay={decay})"
    text = TRAINED.format(
        d=2,
        rows=4,
        cols=5,
        sigma=sigma,
        kind=kind,
        data="blobs",
        options=options,
        lr=0.5,
        epochs=2,
        seed=seed,
    )
    start, end, row, examples, x = _train(text, backend, tmp_path)
    som = _minisom_from(start, 4, 5, sigma, kind, 0.5, examples, decay)
    np.testing.assert_allclose(end, som.get_weights().reshape(20, 2), rtol=0, atol=1e-6)
    assert row["quantization_error"] == pytest.approx(som.quantization_error(x), abs=1e-6)
    assert row["topographic_error"] == pytest.approx(som.topographic_error(x), abs=1e-9)


# ---- on the digits, against MiniSom's figures ----------------------------------------------------
def _standardised_digits():
    with np.load(ROOT / "nnspec" / "data" / "digits.npz") as stored:
        x = stored["images"].reshape(1797, -1).astype(np.float64)
    spread = x.std(0)
    return (x - x.mean(0)) / np.where(spread > 0, spread, 1.0)  # sklearn's scale


def _minisom_on_digits(side, sigma, steps, seed):
    minisom = pytest.importorskip("minisom")
    x = _standardised_digits()
    som = minisom.MiniSom(
        side,
        side,
        64,
        sigma=sigma,
        learning_rate=0.5,
        neighborhood_function="triangle",
        random_seed=seed,
    )
    som.train(x, steps, random_order=True)
    return som.quantization_error(x)


@pytest.mark.slow
def test_the_digits_map_quantizes_at_least_as_well_as_minisoms(tmp_path):
    """specs/som.nn (20 x 20, sigma 3, lr 0.5, triangle, 3 epochs = 5391 steps of one digit) on
    NumPy, seeds 0-2, against MiniSom with the same settings and as many steps in random order
    (its own random initial weights, seeds 0-2): measured 3.21-3.24 against 3.28-3.31."""
    ours = [
        nnspec.train(SPECS / "som.nn", backend="numpy", out=tmp_path / str(s), seed=s).metrics[
            "quantization_error"
        ]
        for s in range(3)
    ]
    theirs = [_minisom_on_digits(20, 3.0, 3 * 1797, s) for s in range(3)]
    assert np.mean(ours) <= np.mean(theirs), (ours, theirs)


@pytest.mark.slow
def test_minisoms_digits_notebook_figure(tmp_path):
    """MiniSom's HandwrittenDigits notebook: a 30 x 30 map, sigma 4, lr 0.5, triangle, 5000
    steps in random order on the standardised digits reaches a quantization error of 3.046. The
    same map trained by nnspec for 3 epochs (5391 steps; an epoch is every digit once) reaches
    2.92 (seed 0), MiniSom itself 2.98-3.02 here at 5391 steps (seeds 0-2)."""
    spec = (SPECS / "som.nn").read_text().replace("[20, 20], sigma=3", "[30, 30], sigma=4")
    path = tmp_path / "som30.nn"
    path.write_text(spec)
    reached = nnspec.train(path, backend="numpy", out=tmp_path / "run").metrics
    assert reached["quantization_error"] <= 3.046
