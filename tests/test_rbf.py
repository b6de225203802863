"""The radial basis network (issue 17, ../shared/ZOO.md "RBF"): the `rbf` kind, its centres placed
from the training data (nnspec/training/centres.py), the least-squares readout (`rule = lstsq`,
nnspec/training/readout.py), specs/rbf_xor.nn and specs/rbf.nn.

The figures ZOO.md asks for: XOR solved in closed form by two Gaussian units at (1, 1) and
(0, 0); with a centre at every training point the network interpolates exactly and equals
SciPy's `RBFInterpolator(kernel="gaussian", degree=-1)` with the same epsilon; the readout equals
`numpy.linalg.lstsq` on the same hidden activations. Those run in float64, where 1e-8 means
something; the specs train in float32 as `nnspec train` does.
"""

import math
import re

import numpy as np
import pytest
from conftest import SPECS
from safetensors.numpy import load_file

import nnspec
from nnspec.backends.numpy.autograd import Var, add_grad, backward
from nnspec.backends.numpy.radial import gaussian_rbf
from nnspec.data import load_data
from nnspec.data.builtin import blobs
from nnspec.draw.page import figure
from nnspec.errors import NnspecError
from nnspec.kinds import Cell
from nnspec.model import drawables
from nnspec.train_section import train_config
from nnspec.training import loop, make_runner, train
from nnspec.training.centres import choose_centres, kmeans, place_centres
from nnspec.training.readout import fitted_readout

INTERPOLATING = """network n {
    input x: 2
    rbf   h: %d, centres=data, eps=%s
    dense y: 1, bias=false
    x -> h -> y
}
train {
    data = npz("points.npz")
    rule = lstsq
    loss = mse
    seed = 0
}
"""


def gaussian(x: np.ndarray, c: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """The definition, from the differences: exp(-(eps_j ||x_i - c_j||)^2) `[n, units]`."""
    r = np.sqrt(((x[:, None, :] - c[None, :, :]) ** 2).sum(-1))
    return np.exp(-((eps * r) ** 2))


def fitted(model, backend: str, out, dtype: str = "float64"):
    """Train `model` by its section on `backend` in `dtype` as `nnspec train` does (centres
    placed, then fitted): (its weights, its data)."""
    if backend == "torch":
        pytest.importorskip("torch")
    data = load_data(model.train_spec, model.program)
    config = train_config(model.train_spec, data.kind)
    runner = make_runner(model, config, backend, dtype)
    place_centres(runner, model.program, data.train, config.seed)
    loop.fit(runner, data, config, out)
    return runner.weights(), data


def _points(tmp_path, n: int = 40) -> None:
    """`n` points in the square [-1, 1]^2 and a smooth function of them, in points.npz."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (n, 2))
    np.savez(tmp_path / "points.npz", x=x, y=(np.sin(3 * x[:, :1]) * np.cos(2 * x[:, 1:])))


# ---- the kind --------------------------------------------------------------------------------
def test_the_units_are_scipys_gaussian_kernel():
    """phi_j(x) = exp(-(eps_j ||x - c_j||)^2), on both backends, in float64."""
    torch = pytest.importorskip("torch")
    model = nnspec.loads(
        "network n { input x: 3\n rbf h: 5, eps=0.8\n rbf g: 2, centres=[[0, 1, 0, 0, 1], "
        "[1, 0, 1, 0, 0]], eps=nearest\n x -> h -> g }"
    )
    run = model.to_numpy(seed=3, dtype="float64")
    x = np.random.default_rng(0).normal(size=(7, 3))
    p = run.params
    h = gaussian(x, p["h.centres"], p["h.eps"])
    np.testing.assert_allclose(p["g.eps"], [1 / (2 * math.sqrt(2))] * 2)
    expected = gaussian(h, p["g.centres"], p["g.eps"])
    np.testing.assert_allclose(run(x), expected, rtol=1e-12, atol=1e-14)
    net = model.to_torch(seed=3, dtype="float64")
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-14)


def test_the_gradient_matches_torch_autograd():
    """The NumPy primitive's gradients to x, the centres and eps against torch's autograd of the
    definition (finite differences: KIND_SPECS in test_numpy_backend.py)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, c, eps = rng.normal(size=(6, 4)), rng.normal(size=(3, 4)), rng.uniform(0.3, 1.2, 3)
    g = rng.normal(size=(6, 3))
    xs, cs, es = (Var(a.copy(), True) for a in (x, c, eps))
    out = gaussian_rbf(xs, cs, es)
    add_grad(out, g)
    backward([out])
    xt, ct, et = (torch.tensor(a, requires_grad=True) for a in (x, c, eps))
    phi = torch.exp(-((et * torch.cdist(xt, ct)) ** 2))
    (phi * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(out.value, phi.detach().numpy(), rtol=1e-12)
    for mine, theirs in ((xs, xt), (cs, ct), (es, et)):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_the_network_draws_as_the_charts_rbf():
    """In2 -> H2 -> Out1, as ZOO.md draws the radial basis network."""
    scene = figure(drawables([nnspec.load(SPECS / "rbf_xor.nn")]))
    cells: dict[str, set] = {}
    for disc in scene.cells():
        cells.setdefault(disc.gid.split(":")[2], set()).add(disc.cell)
    assert cells == {"x": {Cell.INPUT}, "h": {Cell.HIDDEN}, "y": {Cell.OUTPUT}}


# ---- centres from the data -------------------------------------------------------------------
def test_kmeans_finds_the_means_of_two_clusters_by_hand():
    """Two pairs of points far apart: whatever the seeding, Lloyd's algorithm ends at each pair's
    mean; three copies of one point and one other: the two points themselves."""
    x = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    for seed in range(5):
        centres = kmeans(x, 2, np.random.default_rng(seed))
        assert sorted(map(tuple, centres)) == [(0.0, 0.5), (10.0, 0.5)]
    repeated = np.array([[0.0, 0.0]] * 3 + [[1.0, 1.0]])
    centres = kmeans(repeated, 2, np.random.default_rng(0))
    assert sorted(map(tuple, centres)) == [(0.0, 0.0), (1.0, 1.0)]


def test_kmeans_lloyd_rounds_by_hand():
    """Five points on a line, k = 2: any seeding ends at {0, 1, 2} and {9, 10} (means 1 and 9.5),
    the only split where each point is nearest its own mean."""
    x = np.array([[0.0], [1.0], [2.0], [9.0], [10.0]])
    for seed in range(10):
        centres = kmeans(x, 2, np.random.default_rng(seed))
        assert sorted(centres[:, 0]) == [1.0, 9.5]


@pytest.mark.slow
def test_kmeans_is_as_good_as_scikit_learns():
    """On the three blobs: the within-cluster sum of squares of one seeded run is within 1% of
    scikit-learn's KMeans (k-means++, best of 10 runs)."""
    cluster = pytest.importorskip("sklearn.cluster")
    x = blobs(np.random.default_rng(0), None).x.astype(np.float64)
    for seed in range(3):
        centres = kmeans(x, 3, np.random.default_rng(seed))
        inertia = ((x[:, None] - centres[None]) ** 2).sum(-1).min(1).sum()
        reference = cluster.KMeans(3, n_init=10, random_state=seed).fit(x).inertia_
        assert inertia <= reference * 1.01, (inertia, reference)


def test_centres_from_the_data_are_training_examples_in_their_order():
    x = np.arange(20.0).reshape(10, 2)
    picked = choose_centres(x, 4, "data", np.random.default_rng(0))
    rows = [int(np.flatnonzero((x == row).all(1))[0]) for row in picked]
    assert rows == sorted(rows) and len(set(rows)) == 4
    np.testing.assert_array_equal(choose_centres(x, 10, "data", np.random.default_rng(0)), x)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_placed_centres_are_the_same_on_both_backends(backend, tmp_path):
    """Placement is NumPy's on the training part and the seed alone: specs/rbf.nn's centres and
    eps on either backend are k-means of its training points, the same to the last bit."""
    model = nnspec.load(SPECS / "rbf.nn")
    weights, data = fitted(model, backend, tmp_path, "float32")
    x = data.train.inputs["x"].astype(np.float64)
    centres = kmeans(x, 40, np.random.default_rng([0, 0]))
    np.testing.assert_array_equal(weights["h.centres"], centres.astype(np.float32))
    gaps = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1)) + np.diag([np.inf] * 40)
    np.testing.assert_allclose(weights["h.eps"], 1 / (math.sqrt(2) * gaps.min(1)), rtol=1e-6)


def test_backpropagation_starts_from_the_placed_centres(tmp_path):
    """rule = backprop places the centres too, before the first step: with epochs = 0 the run's
    weights hold k-means of the training part and eps=nearest's widths."""
    text, rules = re.subn(
        r"(?m)^ *rule *= *lstsq$",
        "    optimizer = adam(lr=0.01)\n    epochs = 0",
        (SPECS / "rbf.nn").read_text(),
    )
    text, expects = re.subn(r"\n\s*expect [^\n]*", "", text)
    assert rules == 1 and expects == 2
    spec = tmp_path / "bp.nn"
    spec.write_text(text)
    result = train(spec, "numpy", tmp_path / "run")
    weights = load_file(result.paths["weights"])
    model = nnspec.load(spec)
    x = load_data(model.train_spec, model.program).train.inputs["x"].astype(np.float64)
    centres = kmeans(x, 40, np.random.default_rng([0, 0]))
    np.testing.assert_array_equal(weights["h.centres"], centres.astype(np.float32))
    assert weights["h.eps"].min() > 1.0  # nearest-neighbour widths, not the initial eps = 1


# ---- the least-squares readout ---------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_centre_at_every_point_interpolates_as_scipy_does(backend, tmp_path):
    """40 points, 40 centres (centres=data, one per example, in order), no bias: the network
    goes through every training point and, at 200 new points, equals SciPy's RBFInterpolator
    with the gaussian kernel, the same epsilon and no polynomial term, to 1e-8."""
    interpolate = pytest.importorskip("scipy.interpolate")
    _points(tmp_path)
    (tmp_path / "n.nn").write_text(INTERPOLATING % (40, "1.5"))
    model = nnspec.load(tmp_path / "n.nn")
    weights, data = fitted(model, backend, tmp_path / "run")
    x = data.train.inputs["x"].astype(np.float64)  # the file's points, as nnspec reads them
    np.testing.assert_array_equal(weights["h.centres"], x)
    run = model.to_numpy(dtype="float64")
    run.load(weights)
    y = data.train.targets.reshape(-1, 1).astype(np.float64)
    np.testing.assert_allclose(run(x), y, atol=1e-8)
    new = np.random.default_rng(9).uniform(-1, 1, (200, 2))
    scipy = interpolate.RBFInterpolator(x, y, kernel="gaussian", epsilon=1.5, degree=-1)
    np.testing.assert_allclose(run(new), scipy(new), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_the_readout_equals_numpys_lstsq_on_the_hidden_activations(backend, tmp_path):
    """specs/rbf.nn in float64: the readout [W b] is numpy.linalg.lstsq of the targets on
    [phi 1], phi the Gaussian units' activations on the training part, to 1e-8."""
    model = nnspec.load(SPECS / "rbf.nn")
    weights, data = fitted(model, backend, tmp_path)
    x = data.train.inputs["x"].astype(np.float64)
    phi = gaussian(x, weights["h.centres"], weights["h.eps"])
    a = np.hstack([phi, np.ones((len(x), 1))])
    t = data.train.targets.reshape(-1, 1).astype(np.float64)
    solution = np.linalg.lstsq(a, t, rcond=None)[0]
    np.testing.assert_allclose(weights["y.weight"], solution[:-1].T, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(weights["y.bias"], solution[-1], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("ridge", [0.0, 0.5])
def test_lstsq_fits_a_readout_after_any_fixed_layer(ridge, tmp_path):
    """Not only Gaussian units: after a frozen random tanh layer (an extreme learning machine),
    with three classes one-hot, the readout is the least-squares (or ridge) fit of the one-hot
    targets on the tanh activations."""
    model = nnspec.loads(
        "network n { input x: 2\n dense h: 30, act=tanh, frozen\n dense y: 3\n x -> h -> y }\n"
        f"train {{ data = blobs\n split = 0.25\n rule = lstsq(ridge={ridge})\n loss = mse }}"
    )
    weights, data = fitted(model, "numpy", tmp_path)
    x = data.train.inputs["x"].astype(np.float64)
    hidden = np.tanh(x @ weights["h.weight"].T + weights["h.bias"])
    t = np.eye(3)[data.train.targets]
    a = np.hstack([hidden, np.ones((len(x), 1))])
    if ridge == 0.0:  # the normal equations would square the condition number: lstsq itself
        solution = np.linalg.lstsq(a, t, rcond=None)[0]
    else:
        solution = np.linalg.solve(a.T @ a + ridge * np.diag([1.0] * 30 + [0.0]), a.T @ t)
    np.testing.assert_allclose(weights["y.weight"], solution[:-1].T, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(weights["y.bias"], solution[-1], rtol=1e-7, atol=1e-8)


def test_ridge_equals_scikit_learns_ridge():
    """lstsq(ridge=L) penalises the weights and not the bias, as scikit-learn's Ridge with an
    intercept does."""
    linear = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(2)
    x, t = rng.normal(size=(50, 6)), rng.normal(size=(50, 2))
    w, b = fitted_readout(x, t, True, 0.7)
    reference = linear.Ridge(alpha=0.7, fit_intercept=True).fit(x, t)
    np.testing.assert_allclose(w, reference.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b, reference.intercept_, rtol=1e-9, atol=1e-12)


def test_the_rule_is_written_with_its_ridge(tmp_path):
    text, count = re.subn(
        r"(?m)^ *rule *= *lstsq$", "    rule = lstsq(ridge=1e-3)", (SPECS / "rbf.nn").read_text()
    )
    assert count == 1
    config = train_config(nnspec.loads(text).train_spec)
    assert config.rule == "lstsq" and config.rule_settings.ridge == 1e-3


# ---- the specs ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_xor_is_solved_in_closed_form(backend, tmp_path):
    """specs/rbf_xor.nn: w1 = w2 = -1 / (1 + e^-2 - 2 e^-1), b = -w1 (1 + e^-2); every row
    right, a squared error of 0 up to float32's rounding."""
    if backend == "torch":
        pytest.importorskip("torch")
    result = train(SPECS / "rbf_xor.nn", backend, tmp_path)
    assert result.passed and result.metrics["accuracy"] == 1.0 and result.metrics["loss"] < 1e-10
    w = -1 / (1 + math.exp(-2) - 2 * math.exp(-1))
    weights = load_file(result.paths["weights"])
    np.testing.assert_allclose(weights["h.centres"], [[1, 1], [0, 0]])
    np.testing.assert_allclose(weights["y.weight"], [[w, w]], rtol=1e-5)
    np.testing.assert_allclose(weights["y.bias"], [-w * (1 + math.exp(-2))], rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_spirals_spec_holds_for_other_seeds(seed, tmp_path):
    """specs/rbf.nn's expectations with seeds 1-4 on both backends (seed 0: test_zoo_specs), the
    two ending with the same held-out figures; the same section without the rbf layer, a linear
    readout on the raw points, stays below 0.7."""
    text = (SPECS / "rbf.nn").read_text()
    spec = tmp_path / "rbf.nn"
    spec.write_text(text)
    results = [
        train(spec, backend, tmp_path / backend, seed=seed) for backend in ("numpy", "torch")
    ]
    assert all(result.passed for result in results)
    assert results[0].metrics["accuracy"] == results[1].metrics["accuracy"]
    rbf_line = "    rbf    h: 40, centres=kmeans, eps=nearest\n"
    assert rbf_line in text and "x -> h -> y" in text  # the edits below must find their lines
    spec.write_text(text.replace(rbf_line, "").replace("x -> h -> y", "x -> y"))
    assert train(spec, "numpy", tmp_path / "linear", seed=seed).metrics["accuracy"] < 0.7


# ---- mistakes ------------------------------------------------------------------------------------
def test_more_centres_than_examples_is_r375(tmp_path):
    _points(tmp_path, 30)
    (tmp_path / "n.nn").write_text(INTERPOLATING % (31, "1.5"))
    with pytest.raises(NnspecError) as error:
        train(tmp_path / "n.nn", "numpy", tmp_path / "run")
    assert error.value.code == "R375"
    assert "'h' takes 31 centres from the data, but the training part has only 30" in str(
        error.value.message
    )
    assert not (tmp_path / "run" / "weights.safetensors").exists()


def test_coinciding_centres_from_the_data_with_eps_nearest_is_r376(tmp_path):
    x = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    np.savez(tmp_path / "points.npz", x=x, y=np.ones((3, 1)))
    (tmp_path / "n.nn").write_text(INTERPOLATING % (3, "nearest"))
    with pytest.raises(NnspecError) as error:
        train(tmp_path / "n.nn", "numpy", tmp_path / "run")
    assert error.value.code == "R376" and "eps=1.0" in error.value.hint


@pytest.mark.parametrize(
    "readout, message",
    [
        ("dense y: 1, act=sigmoid", "lstsq fits a linear readout, and 'y' has act=sigmoid"),
        ("dense y: 1, frozen", "the weights of the readout 'y' are frozen or another layer's"),
        (
            "rbf y: 1, eps=1",
            "lstsq fits a dense readout, and the output 'y' is a layer of kind rbf",
        ),
    ],
)
def test_a_readout_lstsq_cannot_fit_is_e507(readout, message):
    text = (SPECS / "rbf_xor.nn").read_text().replace("dense  y: 1", readout)
    with pytest.raises(NnspecError) as error:
        nnspec.loads(text)
    assert error.value.code == "E507" and message in error.value.message


def test_centres_from_the_data_inside_a_time_loop_is_r377(tmp_path):
    spec = tmp_path / "loop.nn"
    spec.write_text(
        "network n {\n input x: 1, seq\n rnn r: 3\n rbf h: 4, centres=data\n dense y: 1\n"
        " x -> r -> h -> y\n y ~> r\n}\ntrain { data = sine\n loss = mse\n epochs = 1 }\n"
    )
    with pytest.raises(NnspecError) as error:
        train(spec, "numpy", tmp_path / "run")
    assert error.value.code == "R377" and "centres=[[...], ...]" in error.value.hint
