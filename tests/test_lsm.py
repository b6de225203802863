"""The liquid state machine (issue 18, ../shared/ZOO.md "LSM"): kind lsm, a fixed, sparsely and
randomly wired reservoir of leaky integrate-and-fire cells, and specs/lsm.nn, its spike rates
read by a linear readout fitted by rule = lstsq on rate-coded digits.

ZOO.md's checks: separation (the distance between the liquid's states grows with the distance
between the input streams, Maass, Natschlaeger and Markram 2002) and a classification the readout
learns from the liquid, here better than the same readout on the pixels themselves.
"""

import numpy as np
import pytest
from conftest import SPECS

import nnspec
from nnspec.data import load_data
from nnspec.train_section import train_config
from nnspec.training import make_runner
from nnspec.training.metrics import accuracy

SPEC = SPECS / "lsm.nn"
LIQUID = (
    "network n { input x: 10, seq\n lsm h: 200, sr=0.9, input_scaling=1.5,"
    " input_connectivity=0.3, connectivity=0.05\n dense y: 1\n x -> h -> y }"
)


def test_the_cells_follow_their_equation_by_hand():
    """v = decay v + W_ih x_t + W_hh s_{t-1} + b; s_t = v >= threshold; v -= s_t threshold."""
    model = nnspec.loads(
        "network n { input x: 3, seq\n lsm h: 8, sr=2, threshold=0.5, decay=0.8,"
        " input_scaling=2, input_connectivity=0.6, connectivity=0.4, bias_scaling=0.1\n"
        " dense y: 1\n x -> h -> y }"
    )
    run = model.to_numpy(dtype="float64")
    p = run.params
    x = np.random.default_rng(5).random((4, 15, 3))
    v, s, expected = np.zeros((4, 8)), np.zeros((4, 8)), []
    for t in range(15):
        v = 0.8 * v + x[:, t] @ p["h.weight_ih"].T + s @ p["h.weight_hh"].T + p["h.bias"]
        s = (v >= 0.5).astype(float)
        v = v - 0.5 * s
        expected.append(s)
    spikes = run.activations(["h"], x)["h"]
    np.testing.assert_array_equal(spikes, np.stack(expected, 1))
    assert 0 < spikes.mean() < 1  # some cells spike, not all of them always


def test_the_weights_are_fixed_sparse_and_the_same_on_both_backends():
    model = nnspec.loads(LIQUID)
    params = model.program.parameters()
    assert not any(params[f"h.{key}"].trainable for key in ("weight_ih", "weight_hh", "bias"))
    w = model.to_numpy(dtype="float64").params
    assert np.abs(np.linalg.eigvals(w["h.weight_hh"])).max() == pytest.approx(0.9, rel=1e-9)
    assert (w["h.weight_hh"] != 0).mean() == pytest.approx(0.05, abs=0.01)
    torch = pytest.importorskip("torch")
    net = model.to_torch().double()
    run = model.to_numpy(dtype="float64")
    net.load_state_dict({key: torch.from_numpy(value) for key, value in run.params.items()})
    x = (np.random.default_rng(0).random((3, 30, 10)) < 0.3).astype(float)
    ours = run(x)
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), ours, atol=1e-12)


def test_the_surrogate_gradient_is_the_same_on_both_backends():
    """The spike's surrogate (lif's) carries a gradient back through the liquid to the input and
    the readout, through the recurrent spikes too: NumPy's backward against torch's autograd."""
    torch = pytest.importorskip("torch")
    model = nnspec.loads(
        "network n { input x: 4, seq\n lsm h: 12, sr=1.5, input_scaling=2,"
        " input_connectivity=0.5, connectivity=0.3\n dense y: 2\n x -> h -> y }"
    )
    run = model.to_numpy(dtype="float64")
    net = model.to_torch().double()
    net.load_state_dict({key: torch.from_numpy(value) for key, value in run.params.items()})
    x = np.random.default_rng(2).random((3, 10, 4))
    g = np.random.default_rng(3).normal(size=(3, 10, 2))
    y = run(x)
    grads = run.backward(g)
    xt = torch.from_numpy(x).requires_grad_(True)
    (net(xt) * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(y, net(torch.from_numpy(x)).detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), atol=1e-10)
    assert np.abs(grads["x"]).max() > 0
    for key in ("y.weight", "y.bias"):
        torch_grad = dict(net.named_parameters())[key].grad.numpy()
        np.testing.assert_allclose(grads[key], torch_grad, atol=1e-10)
    assert not any(key.startswith("h.") for key in grads)  # the liquid takes no gradient


def _liquid_states(run, x: np.ndarray, tau: float = 0.8) -> np.ndarray:
    """The liquid's state at every step `[B, T, units]`: its spikes low-pass filtered (each spike
    adds 1, decaying by tau a step), as Maass et al. read the liquid."""
    spikes = run.activations(["h"], x)["h"]
    state, states = np.zeros(spikes.shape[::2]), []
    for t in range(spikes.shape[1]):
        state = tau * state + spikes[:, t]
        states.append(state)
    return np.stack(states, 1)


def test_the_liquid_separates_input_streams_the_more_the_further_apart_they_are():
    """Pairs of random spike streams `[T = 40, 10]` (rate 0.2) and copies of them with k of their
    spikes moved: the mean distance between the two liquids' states grows with k, and is 0 for
    the same stream (Maass, Natschlaeger and Markram 2002, figure 2's separation property)."""
    run = nnspec.loads(LIQUID).to_numpy(dtype="float64")
    rng = np.random.default_rng(0)
    base = (rng.random((30, 40, 10)) < 0.2).astype(float)
    distances = []
    for moved in (0, 2, 8, 32):
        other = base.copy()
        for example in other:
            on, off = np.argwhere(example == 1), np.argwhere(example == 0)
            for t, f in on[rng.choice(len(on), moved, replace=False)]:
                example[t, f] = 0
            for t, f in off[rng.choice(len(off), moved, replace=False)]:
                example[t, f] = 1
        gap = _liquid_states(run, base) - _liquid_states(run, other)
        distances.append(float(np.linalg.norm(gap, axis=-1).mean()))
    assert distances[0] == 0.0
    assert distances == sorted(distances) and len(set(distances)) == 4, distances
    assert distances[-1] > 3 * distances[1]


def _fitted(backend: str = "numpy"):
    model = nnspec.load(SPEC)
    data = load_data(model.train_spec, model.program)
    config = train_config(model.train_spec, data.kind)
    runner = make_runner(model, config, backend, dtype="float64")
    runner.step(data.train.inputs, data.train.targets, None, config.lr)
    return runner, data


@pytest.mark.slow
def test_the_readout_of_the_liquid_beats_the_same_readout_on_the_pixels():
    """The spec's readout (ridge 0.1, one-hot classes) on the liquid's spike rates against the
    same ridge regression on the 64 pixels, on the same held-out digits: 0.978 against 0.916 (a
    readout of the liquid's rates equals the spec's output averaged over its 20 steps)."""
    runner, data = _fitted()
    _, y = runner.evaluate(data.test.inputs, data.test.targets, None)
    liquid = accuracy(y, data.test.targets)

    def design(part):
        pixels = part.inputs["x"].reshape(len(part.targets), -1).astype(np.float64)
        return np.hstack([pixels, np.ones((len(pixels), 1))])

    a = design(data.train)
    penalty = np.diag([0.1] * (a.shape[1] - 1) + [0.0])
    solution = np.linalg.solve(a.T @ a + penalty, a.T @ np.eye(10)[data.train.targets])
    pixels = accuracy(design(data.test) @ solution, data.test.targets)
    assert liquid >= 0.95 and liquid > pixels + 0.03, (liquid, pixels)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_spec_trains_to_its_expectations_with_other_seeds(backend, seed, tmp_path):
    result = nnspec.train(SPEC, backend=backend, out=tmp_path, seed=seed)
    assert result.metrics["accuracy"] >= 0.95
