"""The Hopfield network (issue 17): storage by rule = hopfield, recall on both backends, the
energy, the capacity, and the expectations of specs/hopfield.nn and specs/hopfield_capacity.nn
over many seeds.

The load sweep and the seeds go through the NumPy functions the rule and the backends use
(`stored`, `recall`) and the data exactly as a run draws it (`load_data`); they need no torch.
"""

import dataclasses

import numpy as np
import pytest
from conftest import SPECS

import nnspec
from nnspec.backends.numpy.hopfield import energy, recall, stored
from nnspec.data import load_data
from nnspec.data.patterns import patterns
from nnspec.training.hopfield import MEASURES, store
from nnspec.training.rules import Batch


def hopfield(units: int, update: str = "async", sweeps: int = 20, threshold: float = 0.0):
    return nnspec.loads(
        f"network hn {{\n    input cue: {units}\n"
        f"    hopfield hn: {units}, update={update}, sweeps={sweeps}, threshold={threshold}\n"
        "    cue -> hn\n}\n"
    )


def bipolar(rng, *shape) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def recall_rate(count: int, units: int, seeds, flips: float = 0.1) -> float:
    """The mean fraction of cues recalled exactly, over `seeds`."""
    rates = []
    for seed in seeds:
        data = patterns(np.random.default_rng(seed), None, count, units, flips)
        rates.append((recall(data.x, stored(data.y), "async", 50) == data.y).all(1).mean())
    return float(np.mean(rates))


# ---- storage ------------------------------------------------------------------------------
def test_the_rule_stores_the_outer_products_with_a_zero_diagonal():
    rng = np.random.default_rng(0)
    t = bipolar(rng, 6, 30)
    old = rng.normal(size=(30, 30))
    cues = np.repeat(t, 3, axis=0)  # several cues of a pattern store it once
    batch = Batch(cues, cues, cues, old, None, params={"weight": old})
    w = old + store(batch, lr=0.5)["weight"]
    expected = sum(np.outer(p, p) for p in t) / 30
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(w, expected, atol=1e-12)  # whatever W was before
    fresh = store(Batch(cues, cues, cues, old * 0, None, params={"weight": old * 0}), 0.5)
    w = fresh["weight"]  # from zeros, as a run starts: exactly the formula
    assert np.array_equal(w, expected) and np.array_equal(w, w.T) and not np.diag(w).any()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_training_the_spec_stores_the_clean_patterns(backend, tmp_path):
    from safetensors.numpy import load_file

    result = nnspec.train(SPECS / "hopfield.nn", backend=backend, out=tmp_path)
    w = load_file(result.paths["weights"])["hn.weight"].astype(np.float64)
    model = nnspec.load(SPECS / "hopfield.nn")
    data = load_data(model.train_spec, model.program)
    expected = stored(np.unique(data.train.targets, axis=0))
    np.testing.assert_allclose(w, expected, atol=1e-6)  # float32 on torch
    assert np.allclose(w, w.T) and not np.diag(w).any()


# ---- recall -------------------------------------------------------------------------------
@pytest.mark.parametrize("update", ["async", "sync"])
@pytest.mark.parametrize("threshold", [0.0, 0.05])
def test_both_backends_recall_the_same_states(update, threshold):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    model = hopfield(40, update, 10, threshold)
    t = bipolar(rng, 5, 40)
    w = stored(t)
    cues = np.concatenate([t * np.where(rng.random((5, 40)) < 0.2, -1, 1), bipolar(rng, 20, 40)])
    run = model.to_numpy()
    run.params["hn.weight"][...] = w
    net = model.to_torch()
    net.load_state_dict({"hn.weight": torch.tensor(w, dtype=torch.float32)})
    want = run(cues.astype(np.float32))
    with torch.no_grad():
        got = net(torch.tensor(cues, dtype=torch.float32)).numpy()
    assert set(np.unique(want)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(want, recall(cues, w, update, 10, threshold))


def test_zero_weights_recall_the_cue_read_as_signs():
    cue = np.array([[0.3, -2.0, 0.0, 5.0]])
    assert recall(cue, np.zeros((4, 4)), "async", 3).tolist() == [[1.0, -1.0, -1.0, 1.0]]


def test_async_recall_updates_in_order_and_sync_all_at_once():
    # two units that each want the other's sign: async copies unit 0 into unit 1 and is done;
    # sync swaps them every sweep, a two-state cycle
    w = np.array([[0.0, 1.0], [1.0, 0.0]])
    cue = np.array([[1.0, -1.0]])
    assert recall(cue, w, "async", 5).tolist() == [[-1.0, -1.0]]
    assert recall(cue, w, "sync", 1).tolist() == [[-1.0, 1.0]]
    assert recall(cue, w, "sync", 2).tolist() == [[1.0, -1.0]]


def test_async_recall_never_raises_the_energy():
    """Random symmetric weights with a zero diagonal, random states, thresholds: the energy after
    each sweep is at most what it was before, for each example."""
    rng = np.random.default_rng(2)
    for trial in range(20):
        n = int(rng.integers(5, 40))
        a = rng.normal(size=(n, n))
        w = (a + a.T) / 2
        np.fill_diagonal(w, 0.0)
        theta = float(rng.normal(scale=0.3)) if trial % 2 else 0.0
        s = bipolar(rng, 16, n)
        before = energy(s, w, theta)
        for _ in range(6):
            s = recall(s, w, "async", 1, theta)
            after = energy(s, w, theta)
            assert (after <= before + 1e-9).all()
            before = after


def test_every_single_update_lowers_the_energy_or_keeps_it():
    """One unit at a time, as async recall does: the change is -(s_i' - s_i)(h_i - theta) <= 0
    (a zero diagonal). Checked update by update on stored patterns' cues."""
    rng = np.random.default_rng(3)
    t = bipolar(rng, 10, 50)
    w = stored(t)
    s = bipolar(rng, 8, 50)
    for i in list(range(50)) * 3:
        before = energy(s, w)
        h = s @ w[i]
        s = s.copy()
        s[:, i] = np.where(h > 0, 1.0, np.where(h < 0, -1.0, s[:, i]))
        assert (energy(s, w) <= before + 1e-12).all()


# ---- capacity -----------------------------------------------------------------------------
def test_recall_is_high_below_a_tenth_of_the_units_and_collapses_past_the_capacity():
    """100 units, cues with 10 of their values flipped, five seeds per load: nearly every cue
    comes back exactly up to 0.08 N, fewer and fewer from 0.12 N on, and almost none past
    0.2 N (Amit, Gutfreund and Sompolinsky: the capacity is 0.138 N for large N)."""
    loads = [4, 8, 12, 16, 20, 25, 30]
    rates = [recall_rate(count, 100, range(5)) for count in loads]
    assert rates[0] == 1.0 and rates[1] >= 0.95
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False)), rates
    assert rates[3] <= 0.75  # 0.16 N
    assert rates[5] <= 0.15 and rates[6] <= 0.05  # 0.25 N and 0.3 N


@pytest.mark.slow
def test_the_stored_patterns_stop_being_fixed_points_near_0_138_n():
    """400 units started at the stored patterns themselves: the recalled state keeps an overlap
    near 1 with its pattern up to 0.1 N, and drops steeply between 0.12 N and 0.2 N."""
    overlaps = {}
    for alpha in (0.05, 0.1, 0.16, 0.2):
        values = []
        for seed in range(3):
            t = bipolar(np.random.default_rng(seed), round(alpha * 400), 400)
            values.append((recall(t, stored(t), "async", 30) * t).mean())
        overlaps[alpha] = float(np.mean(values))
    assert overlaps[0.05] == 1.0 and overlaps[0.1] >= 0.99
    assert overlaps[0.16] <= 0.93 and overlaps[0.2] <= 0.7


# ---- the specs' expectations over seeds -----------------------------------------------------
def _spec_figures(name: str, seeds) -> list[dict[str, float]]:
    """The spec's own metrics for each seed, as a run reaches them: its data drawn by load_data,
    the patterns stored by the rule's step, recall by the NumPy backend."""
    model = nnspec.load(SPECS / f"{name}.nn")
    figures = []
    for seed in seeds:
        spec = dataclasses.replace(
            model.train_spec, settings={**model.train_spec.settings, "seed": seed}
        )
        data = load_data(spec, model.program)
        x, t = data.train.inputs["cue"], data.train.targets
        run = model.to_numpy()
        weight = run.params["hn.weight"]
        weight += store(Batch(x, t, None, weight, None, params={"weight": weight}), 0.0)["weight"]
        batch = Batch(x, t, run(x), weight, None)
        figures.append({metric: f(batch) for metric, f in MEASURES.items()})
    return figures


@pytest.mark.slow
def test_hopfield_spec_expectations_hold_for_thirty_seeds():
    figures = _spec_figures("hopfield", range(30))
    recalls = [f["recall"] for f in figures]
    assert min(recalls) >= 0.8 and min(f["overlap"] for f in figures) >= 0.98  # its expect lines
    # what its header says: seed 0 recalls every cue, 27 of 30 seeds do, the least 28 of 32
    assert recalls[0] == 1.0 and sum(r == 1.0 for r in recalls) == 27 and min(recalls) == 0.875


@pytest.mark.slow
def test_capacity_spec_fails_for_thirty_seeds():
    figures = _spec_figures("hopfield_capacity", range(30))
    recalls, overlaps = [f["recall"] for f in figures], [f["overlap"] for f in figures]
    assert max(recalls) <= 0.3 and max(overlaps) <= 0.9  # its expect lines state the failure
    assert recalls[0] == 0.08 and max(recalls) == 0.21  # its header's figures
    assert min(overlaps) >= 0.43 and max(overlaps) <= 0.78


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hopfield", "hopfield_capacity"])
def test_the_specs_train_alike_on_both_backends(name, trained):
    numpy_run, torch_run = (
        trained(SPECS / f"{name}.nn", backend) for backend in ("numpy", "torch")
    )
    assert numpy_run.passed and torch_run.passed
    for metric in ("recall", "bit_error", "overlap"):
        assert numpy_run.metrics[metric] == torch_run.metrics[metric], metric


@pytest.mark.parametrize("sweeps, bound", [(0, ">= 1"), (5000, "<= 1000")])
def test_sweeps_are_bounded_so_recall_always_ends(sweeps, bound):
    with pytest.raises(nnspec.SpecError) as caught:
        hopfield(4, "sync", sweeps)
    assert caught.value.code == "E207" and bound in caught.value.message
    assert "1 to 1000 sweeps" in caught.value.hint


@pytest.mark.parametrize(
    "data, message",
    [
        ("patterns(count=0)", "count of patterns is a whole number from 1 up, not 0"),
        ("patterns(count=2.5)", "count of patterns is a whole number from 1 up, not 2.5"),
        ("patterns(flips=-0.1)", "flips of patterns is the fraction of values flipped"),
        ("patterns(cues=true)", "cues of patterns is a number, not true"),
        ("patterns(8, 16, 0.1, 1, 2)", "patterns takes 4 values at most"),
    ],
)
def test_the_patterns_settings_are_checked(data, message):
    text = (
        "network n {\n    input cue: 16\n    hopfield hn: 16\n    cue -> hn\n}\n"
        f"train {{\n    data = {data}\n    rule = hopfield\n}}\n"
    )
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    assert caught.value.code == "E551" and message in caught.value.message
    assert caught.value.hint


def _patterns_data(data: str):
    model = nnspec.loads(
        "network n {\n    input cue: 30\n    hopfield hn: 30\n    cue -> hn\n}\n"
        f"train {{\n    data = {data}\n    rule = hopfield\n}}\n"
    )
    part = load_data(model.train_spec, model.program).train
    return part.inputs["cue"], part.targets


def test_bare_patterns_take_the_networks_width_and_positional_settings_their_order():
    cues, targets = _patterns_data("patterns")
    assert cues.shape == (8, 30)  # 8 patterns of the input's 30 values, one cue each
    assert set((cues != targets).sum(1).tolist()) == {3}  # round(0.1 * 30) flipped
    cues, targets = _patterns_data("patterns(3, 30, 0.2, 2)")  # count, units, flips, cues
    assert cues.shape == (6, 30) and set((cues != targets).sum(1).tolist()) == {6}
    assert (targets[0] == targets[1]).all() and len(np.unique(targets, axis=0)) == 3
