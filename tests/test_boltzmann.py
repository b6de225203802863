"""The Boltzmann machine: exact enumeration, Gibbs sampling, its forward on both backends, the
4-2-4 encoder's dataset and drawing (and, with `rule = boltzmann`, its learning).

The exact figures come from enumerating all 2^N states of a small machine; the sampled ones are
held to them within a tolerance stated from the number of independent samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnspec
from nnspec.backends.numpy import boltzmann as bm
from nnspec.kinds import Cell

MACHINE = """
network bm {{
    input v: {visible}
    boltzmann b: {visible}, hidden={hidden}, groups={groups}
    v -> b
}}
"""


def random_machine(visible: int, hidden: int, groups: int = 1, seed: int = 0, scale: float = 1.0):
    """(raw weight, bias, effective weight) of a machine with N(0, scale^2) weights."""
    rng = np.random.default_rng(seed)
    n = visible + hidden
    weight, bias = rng.normal(0, scale, (n, n)), rng.normal(0, scale, n)
    return weight, bias, bm.effective(weight, bm.links(visible, hidden, groups))


def code(v: np.ndarray) -> int:
    """A visible state's index in `states(len(v))`'s order."""
    return int(v @ (1 << np.arange(len(v) - 1, -1, -1)))


# ---- the machine's energy and its exact distribution -----------------------------------------
def test_the_effective_weights_are_symmetric_with_a_zero_diagonal_and_no_links_across_groups():
    _, _, w = random_machine(4, 2, groups=2)
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(np.diag(w), 0.0)
    np.testing.assert_array_equal(w[:2, 2:4], 0.0)  # visible group 1 to visible group 2
    assert np.all(w[:4, 4:] != 0.0)  # every visible unit to every hidden unit


def test_exact_probabilities_are_the_boltzmann_distribution():
    _, b, w = random_machine(3, 2)
    states, p, log_z = bm.exact(w, b)
    assert states.shape == (32, 5)
    by_hand = np.array([np.exp(0.5 * s @ w @ s + b @ s) for s in states])
    np.testing.assert_allclose(p, by_hand / by_hand.sum(), rtol=1e-12)
    np.testing.assert_allclose(log_z, np.log(by_hand.sum()), rtol=1e-12)


def test_the_forward_is_each_visible_unit_given_the_others_with_the_hidden_summed_out():
    visible = 5
    _, b, w = random_machine(visible, 3, seed=1)
    p_visible = bm.visible_distribution(w, b, visible)
    rows = bm.states(visible)[[0, 5, 13, 22, 31]]
    want = np.zeros_like(rows)
    for r, v in enumerate(rows):
        for i in range(visible):
            on, off = v.copy(), v.copy()
            on[i], off[i] = 1, 0
            want[r, i] = p_visible[code(on)] / (p_visible[code(on)] + p_visible[code(off)])
    np.testing.assert_allclose(bm.conditionals(rows, w, b), want, rtol=1e-10, atol=1e-12)


def test_kl_is_zero_for_the_model_itself_and_log_of_the_states_for_a_uniform_machine():
    data = np.concatenate([np.eye(4), np.eye(4)], axis=1)
    n = 10
    assert bm.kl(data, np.zeros((n, n)), np.zeros(n)) == pytest.approx(np.log(256 / 4))
    _, b, w = random_machine(3, 1, seed=2)
    p = bm.visible_distribution(w, b, 3)
    # a large sample drawn from the model's own visible distribution: KL near 0
    draws = np.random.default_rng(0).choice(8, size=200_000, p=p)
    rows = bm.states(3)[draws]
    assert bm.kl(rows, w, b) < 1e-3


# ---- Gibbs sampling ----------------------------------------------------------------------------
CHAINS = 4000  # independent chains: a marginal's standard error is at most 0.5 / sqrt(4000)
TOLERANCE = 5 * 0.5 / np.sqrt(CHAINS)  # 0.040, five standard errors


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gibbs_marginals_equal_the_exact_boltzmann_marginals(seed):
    """Each chain's state after 60 annealed sweeps is one independent draw: the share of chains
    with a unit on, and with a pair on together, within five standard errors of the exact
    P(s_i = 1) and P(s_i = s_j = 1)."""
    _, b, w = random_machine(5, 3, seed=seed)
    rng = np.random.default_rng(seed)
    s = (rng.random((CHAINS, 8)) < 0.5).astype(float)
    schedule = (4.0, 3.0, 2.0, 1.5) + (1.0,) * 56
    s = bm.gibbs(s, w, b, schedule, rng)
    states, p, _ = bm.exact(w, b)
    np.testing.assert_allclose(s.mean(0), p @ states, atol=TOLERANCE)
    np.testing.assert_allclose(s.T @ s / CHAINS, (states * p[:, None]).T @ states, atol=TOLERANCE)


def test_gibbs_with_the_visible_units_clamped_samples_the_hidden_units_given_them():
    visible, hidden = 4, 3
    _, b, w = random_machine(visible, hidden, seed=3)
    v = np.array([1.0, 0.0, 1.0, 1.0])
    rng = np.random.default_rng(3)
    s = np.concatenate([np.tile(v, (CHAINS, 1)), rng.random((CHAINS, hidden)) < 0.5], 1)
    clamped = np.zeros(s.shape, dtype=bool)
    clamped[:, :visible] = True
    s = bm.gibbs(s.astype(float), w, b, (1.0,) * 40, rng, clamped)
    np.testing.assert_array_equal(s[:, :visible], np.tile(v, (CHAINS, 1)))
    h = bm.states(hidden)
    weight = np.exp(-bm.energy(np.concatenate([np.tile(v, (len(h), 1)), h], 1), w, b))
    np.testing.assert_allclose(s[:, visible:].mean(0), weight @ h / weight.sum(), atol=TOLERANCE)


def test_gibbs_draws_are_the_seeds():
    _, b, w = random_machine(3, 2)
    start = np.zeros((10, 5))
    one = bm.gibbs(start.copy(), w, b, (2.0, 1.0), np.random.default_rng(7))
    two = bm.gibbs(start.copy(), w, b, (2.0, 1.0), np.random.default_rng(7))
    np.testing.assert_array_equal(one, two)


# ---- the layer on both backends ------------------------------------------------------------------
@pytest.mark.parametrize("visible, hidden, groups", [(6, 2, 2), (4, 0, 1), (3, 4, 1)])
def test_both_backends_give_the_exact_conditionals(visible, hidden, groups):
    torch = pytest.importorskip("torch")
    model = nnspec.loads(MACHINE.format(visible=visible, hidden=hidden, groups=groups))
    weight, bias, w = random_machine(visible, hidden, groups, seed=4)
    run = model.to_numpy(dtype="float64")
    run.load({"b.weight": weight, "b.bias": bias})
    net = model.to_torch(dtype="float64")
    net.load_state_dict({"b.weight": torch.tensor(weight), "b.bias": torch.tensor(bias)})
    v = bm.states(visible)
    want = bm.conditionals(v, w, bias)
    np.testing.assert_allclose(run(v), want, rtol=1e-12)
    np.testing.assert_allclose(net(torch.tensor(v)).detach().numpy(), want, rtol=1e-12)


def test_no_gradient_passes_through_the_layer_on_either_backend():
    torch = pytest.importorskip("torch")
    model = nnspec.loads(MACHINE.format(visible=4, hidden=2, groups=1))
    net = model.to_torch(dtype="float64")
    v = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
    assert not net(v).requires_grad
    run = model.to_numpy(dtype="float64")
    run(np.ones((3, 4)))
    grads = run.backward(np.ones((3, 4)))
    assert all(not np.any(g) for g in grads.values())


@pytest.mark.parametrize("target", ["numpy", "torch", "onnx"])
def test_compiled_files_give_the_exact_conditionals(tmp_path, target):
    """Each compile target, with random weights (not the zeros a machine starts from), gives what
    the NumPy backend gives: every visible state of a 6-2 machine with two groups."""
    from conftest import import_file

    from nnspec.compile import emit
    from nnspec.compile.common import weights_file

    model = nnspec.loads(MACHINE.format(visible=6, hidden=2, groups=2))
    weight, bias, _ = random_machine(6, 2, 2, seed=5)
    params = {"b.weight": weight.astype(np.float32), "b.bias": bias.astype(np.float32)}
    v = bm.states(6).astype(np.float32)
    run = model.to_numpy()
    run.load(params)
    want = run(v)
    if target == "onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(
            emit(model, "onnx", params), providers=["CPUExecutionProvider"]
        )
        got = session.run(None, {"v": v})[0]
    else:
        torch = pytest.importorskip("torch") if target == "torch" else None
        (tmp_path / "net.py").write_bytes(emit(model, target, params))
        (tmp_path / "net.safetensors").write_bytes(weights_file(params))
        net = import_file(tmp_path / "net.py").load()
        got = net(torch.from_numpy(v)).detach().numpy() if torch else net(v)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ---- the data and the drawing --------------------------------------------------------------------
def test_the_encoder_patterns_have_unit_k_of_each_group_on():
    from nnspec.data.boltzmann import encoder

    examples = encoder(np.random.default_rng(0), None)
    assert examples.x.shape == (4, 8)
    for k, row in enumerate(examples.x):
        assert set(np.flatnonzero(row)) == {k, 4 + k}
    np.testing.assert_array_equal(examples.y, examples.x)


def test_the_drawing_is_a_ring_of_backfed_visible_and_probabilistic_hidden_cells():
    from nnspec.draw.ring import ring_cells, ring_layer

    program = nnspec.loads(MACHINE.format(visible=8, hidden=2, groups=2)).program
    ring = ring_layer(program)
    assert ring is not None and ring.name == "b"
    assert ring_cells(ring) == [Cell.BACKFED_INPUT] * 8 + [Cell.PROBABILISTIC_HIDDEN] * 2


# ---- the rule ----------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "boltzmann.nn"
START_KL = np.log(256 / 4)  # zero weights: every visible state alike, the four patterns 1/64 of it


def test_one_step_moves_the_weights_by_clamped_minus_free_correlations():
    """With zero weights every unit is on with probability 1/2 in the free phase, so the step is
    the clamped correlations minus about 1/4 (1/2 on the diagonal's biases), kept symmetric,
    zero on the diagonal and between the groups; and a seed gives the same step twice."""
    from nnspec.training.boltzmann import phases

    data = np.concatenate([np.eye(4), np.eye(4)], axis=1)
    n = 11
    linked = bm.links(8, 3, 2)
    kwargs = dict(samples=4000, temperatures=(1.0,), sweeps=5)
    pairs, means = phases(data, np.zeros((n, n)), np.zeros(n), np.random.default_rng(0), **kwargs)
    again = phases(data, np.zeros((n, n)), np.zeros(n), np.random.default_rng(0), **kwargs)
    np.testing.assert_array_equal(pairs, again[0])
    step = pairs * linked
    np.testing.assert_allclose(step, step.T, atol=1e-12)
    assert not np.any(np.diag(step)) and not np.any(step[:4, 4:8])
    # clamped: v_k v_(4+k) is 1/4, other visible pairs 0, a visible unit with a hidden one 1/8
    want = np.zeros((n, n))
    want[:8, :8] = (data.T @ data) / 4
    want[:8, 8:] = want[8:, :8] = 1 / 8
    want[8:, 8:] = 1 / 4
    np.testing.assert_allclose(pairs[linked], (want - 1 / 4)[linked], atol=0.03)
    np.testing.assert_allclose(means, np.r_[np.full(8, 0.25), np.full(3, 0.5)] - 0.5, atol=0.03)


def test_the_rule_refuses_visible_values_that_are_not_bits():
    from nnspec.training.boltzmann import visible_bits
    from nnspec.training.stopped import TrainingStopped

    layer = nnspec.loads(MACHINE.format(visible=2, hidden=1, groups=1)).program.layer("b")
    with pytest.raises(TrainingStopped) as caught:
        visible_bits(np.array([[0.0, 1.0], [1.0, 0.5]]), layer)
    assert caught.value.code == "R355" and "example 1 gives unit 1 the value 0.5" in str(
        caught.value.message
    )


def test_kl_refuses_a_machine_too_large_to_enumerate():
    from nnspec.training.boltzmann import kl
    from nnspec.training.rules import Batch
    from nnspec.training.stopped import TrainingStopped

    layer = nnspec.loads(MACHINE.format(visible=10, hidden=8, groups=1)).program.layer("b")
    n = 18
    params = {"weight": np.zeros((n, n), np.float32), "bias": np.zeros(n, np.float32)}
    batch = Batch(np.zeros((2, 10), np.float32), None, None, None, None, params=params, layer=layer)
    with pytest.raises(TrainingStopped) as caught:
        kl(batch)
    assert caught.value.code == "R356" and "2^18" in caught.value.message


def test_backpropagation_through_the_machine_is_refused_at_check_time():
    text = MACHINE.format(visible=8, hidden=2, groups=2) + "\ntrain {\n    data = encoder\n}\n"
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    assert caught.value.code == "E555" and "rule = boltzmann" in caught.value.hint


@pytest.mark.slow  # five runs of the spec: about a minute each on a loaded machine
def test_learning_drives_kl_towards_zero_for_seeds_0_to_4(tmp_path):
    """From log 64 = 4.16 (zero weights), every seed ends far below (KL < 0.5), and most reach the
    spec's expectation (KL <= 0.15; the rest stop where two patterns share a hidden code, about
    log(2) / 2 = 0.35). Measured here: 0.051, 0.054, 0.41, 0.063, 0.050 (and 8 of seeds 0-9);
    at least 3 of 5 are asked, as float rounding elsewhere may send a sampled run another way."""
    reached = []
    for seed in range(5):
        result = nnspec.train(SPEC, backend="numpy", out=tmp_path / str(seed), seed=seed)
        # the machine starts from zero weights, at KL = log 64 (test_kl_is_zero_for_...)
        assert result.history[0]["kl"] < START_KL
        reached.append(result.metrics["kl"])
        assert result.metrics["accuracy"] == 1.0
    assert max(reached) < 0.5, reached
    assert sum(kl <= 0.15 for kl in reached) >= 3, reached


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 3])
def test_both_backends_learn_the_same_machine(tmp_path, seed):
    """The NumPy step serves both backends with the same draws: the weights after 40 steps are
    the same on torch as on NumPy, and so are the metrics."""
    pytest.importorskip("torch")
    from safetensors.numpy import load_file

    results = {
        backend: nnspec.train(SPEC, backend=backend, out=tmp_path / backend, seed=seed, epochs=40)
        for backend in ("numpy", "torch")
    }
    weights = {b: load_file(r.paths["weights"]) for b, r in results.items()}
    for name, value in weights["numpy"].items():
        np.testing.assert_allclose(weights["torch"][name], value, rtol=1e-6, atol=1e-6)
    for name, value in results["numpy"].metrics.items():
        assert results["torch"].metrics[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


@pytest.mark.slow  # five runs: about a minute each on a loaded machine
def test_the_4_2_4_encoder_mostly_stops_with_two_patterns_sharing_a_code(tmp_path):
    """The spec's header: with two hidden units (which must use all four 2-bit codes) the same
    rule and settings reach KL <= 0.15 for at most two seeds in five; the others stop at or
    above log(2) / 2 = 0.35, where two patterns share a code. Measured: 0.43, 0.073, 0.75, 0.76,
    0.91 (seeds 0-4)."""
    spec = tmp_path / "bm_424.nn"
    spec.write_text(SPEC.read_text().replace("hidden=3", "hidden=2"))
    reached = [
        nnspec.train(spec, backend="numpy", out=tmp_path / str(seed), seed=seed).metrics["kl"]
        for seed in range(5)
    ]
    assert sum(kl <= 0.15 for kl in reached) <= 2, reached
    assert sum(kl >= 0.3 for kl in reached) >= 3, reached
