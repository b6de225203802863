"""The Markov chain (issue 17): the markov kind, the counts rule, the weather data, and the chain's
stationary distribution, entropy rate and samples.

The exact figure: Kemeny, Snell and Thompson's Land of Oz chain (Grinstead and Snell, example
11.1), P = [[.5, .25, .25], [.5, 0, .5], [.25, .25, .5]] over (rain, nice, snow), has the
stationary distribution (0.4, 0.2, 0.4) and the entropy rate 1.4 ln 2 nats.
"""

import math

import numpy as np
import pytest
from conftest import BACKENDS, HAS_TORCH, ROOT

import nnspec
from nnspec.data.markov import (
    LAND_OF_OZ,
    normalised,
    transition_counts,
    weather,
)

SPEC = ROOT / "specs" / "markov.nn"
OZ_SPEC = """
network oz {
    input  today: 3
    markov tomorrow: 3, transition=[[0.5, 0.25, 0.25], [0.5, 0, 0.5], [0.25, 0.25, 0.5]], frozen
    today -> tomorrow
}
"""


# ---- the exact figures of the true chain ------------------------------------------------------
def test_the_land_of_oz_has_the_stationary_distribution_of_grinstead_and_snell():
    pi = nnspec.stationary(LAND_OF_OZ)
    np.testing.assert_allclose(pi, [0.4, 0.2, 0.4], atol=1e-12)
    np.testing.assert_allclose(pi @ LAND_OF_OZ, pi, atol=1e-12)


def test_the_land_of_oz_entropy_rate_is_one_point_four_ln_2():
    # after rain or snow: H(1/2, 1/4, 1/4) = 1.5 ln 2; after a nice day: H(1/2, 0, 1/2) = ln 2
    assert nnspec.entropy_rate(LAND_OF_OZ) == pytest.approx(1.4 * math.log(2), abs=1e-12)


def test_a_literal_chain_in_a_spec_reads_back_and_gives_the_same_figures():
    model = nnspec.loads(OZ_SPEC)
    P = nnspec.transition_matrix(model)
    np.testing.assert_array_equal(P, LAND_OF_OZ)
    np.testing.assert_allclose(nnspec.stationary(P), [0.4, 0.2, 0.4], atol=1e-7)


@pytest.mark.slow  # imports torch: seconds
def test_the_chain_steps_the_same_on_both_backends():
    """x @ P: a one-hot state gives its row, a distribution the mixture; the stationary
    distribution is a fixed point; NumPy and PyTorch agree."""
    torch = pytest.importorskip("torch")
    model = nnspec.loads(OZ_SPEC)
    x = np.vstack([np.eye(3), [[0.4, 0.2, 0.4]], [[1 / 3, 1 / 3, 1 / 3]]]).astype(np.float32)
    by_numpy = model.to_numpy()(x)
    by_torch = model.to_torch()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(by_numpy[:3], LAND_OF_OZ, atol=1e-7)
    np.testing.assert_allclose(by_numpy[3], [0.4, 0.2, 0.4], atol=1e-7)
    np.testing.assert_allclose(by_numpy[4], LAND_OF_OZ.mean(0), atol=1e-7)
    np.testing.assert_array_equal(by_numpy, by_torch)


# ---- counting ---------------------------------------------------------------------------------
def test_counts_and_their_normalisation_match_a_hand_count():
    days = np.array([0, 1, 2, 2, 0, 0, 1, 0])  # 0->1, 1->2, 2->2, 2->0, 0->0, 0->1, 1->0
    counts = transition_counts(days[:-1], days[1:], 3)
    np.testing.assert_array_equal(counts, [[1, 2, 0], [1, 0, 1], [1, 0, 1]])
    np.testing.assert_allclose(
        normalised(counts), [[1 / 3, 2 / 3, 0], [0.5, 0, 0.5], [0.5, 0, 0.5]]
    )
    # Laplace: one added to every count
    np.testing.assert_allclose(
        normalised(counts, 1.0),
        [[2 / 6, 3 / 6, 1 / 6], [2 / 5, 1 / 5, 2 / 5], [2 / 5, 1 / 5, 2 / 5]],
    )
    # a state never seen leaving: the uniform row
    np.testing.assert_allclose(normalised(np.zeros((2, 2)))[0], [0.5, 0.5])


def test_the_weather_data_are_seeded_transitions_of_the_land_of_oz():
    data = weather(np.random.default_rng(0), None)
    again = weather(np.random.default_rng(0), None)
    other = weather(np.random.default_rng(1), None)
    np.testing.assert_array_equal(data.x, again.x)
    assert not np.array_equal(data.y, other.y)
    assert data.x.shape == (10_000, 3) and data.y.shape == (10_000,) and data.classes == 3
    assert data.info["labels"] == ["rain", "nice", "snow"]
    today = data.x.argmax(1)
    # each example's state is the one before's next state: one run of the chain
    np.testing.assert_array_equal(today[1:], data.y[:-1])
    P = normalised(transition_counts(today, data.y, 3))
    assert np.abs(P - LAND_OF_OZ).max() < 0.04
    assert P[1, 1] == 0  # never two nice days in a row


# ---- sampling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_sequences_visit_and_move_as_the_chain_says(seed):
    states = nnspec.sample_states(LAND_OF_OZ, 200_000, seed=seed)
    assert states.dtype == np.int64 and states.shape == (200_000,)
    np.testing.assert_allclose(
        np.bincount(states, minlength=3) / len(states), [0.4, 0.2, 0.4], atol=0.01
    )
    moves = normalised(transition_counts(states[:-1], states[1:], 3))
    np.testing.assert_allclose(moves, LAND_OF_OZ, atol=0.01)
    np.testing.assert_array_equal(states, nnspec.sample_states(LAND_OF_OZ, 200_000, seed=seed))


def test_a_sequence_starts_where_it_is_told():
    assert nnspec.sample_states(LAND_OF_OZ, 5, seed=0, start=1)[0] == 1
    firsts = [nnspec.sample_states(LAND_OF_OZ, 1, seed=s, start=[0, 0, 1])[0] for s in range(5)]
    assert firsts == [2] * 5
    assert len(nnspec.sample_states(LAND_OF_OZ, 0)) == 0


# ---- what is no chain -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "P, code, words",
    [
        (np.eye(2), "R365", "more than one stationary distribution"),
        ([[0.5, 0.5], [0.5, 0.6]], "R366", "row 2 of the transition matrix"),
        ([[1.0, 0.0]], "R366", "square"),
        ([[1.5, -0.5], [0.5, 0.5]], "R366", "row 1"),
    ],
)
def test_what_is_no_chain_is_an_error_with_a_hint(P, code, words):
    with pytest.raises(nnspec.NnspecError) as caught:
        nnspec.stationary(P)
    assert caught.value.code == code and words in caught.value.message and caught.value.hint


def test_a_start_outside_the_chain_is_an_error():
    with pytest.raises(nnspec.NnspecError) as caught:
        nnspec.sample_states(LAND_OF_OZ, 3, start=3)
    assert caught.value.code == "R366"


def test_a_network_without_a_chain_has_no_transition_matrix():
    model = nnspec.loads("network n { input x: 2\n dense y: 2\n x -> y }")
    with pytest.raises(nnspec.NnspecError) as caught:
        nnspec.transition_matrix(model)
    assert caught.value.code == "R367" and "no markov layer" in caught.value.message


# ---- learning the chain -----------------------------------------------------------------------
def _learned(result) -> np.ndarray:
    return nnspec.transition_matrix(SPEC, result.paths["weights"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_counts_rule_learns_the_hand_count_of_the_training_days(backend, trained):
    """P after training is exactly the normalised count of the training part's transitions."""
    from nnspec.data import load_data

    model = nnspec.load(SPEC)
    data = load_data(model.train_spec, model.program, SPEC.parent)
    x, t = data.train.inputs["today"], data.train.targets
    counts = np.zeros((3, 3))
    for today, tomorrow in zip(x.argmax(1), t, strict=True):
        counts[today, tomorrow] += 1
    expected = counts / counts.sum(1, keepdims=True)
    np.testing.assert_allclose(_learned(trained(SPEC, backend)), expected, atol=1e-6)


@pytest.fixture(scope="module")
def seeded_spec(tmp_path_factory):
    """specs/markov.nn with the section's `seed = N`: the seed that draws the weather data (and
    the split); `nnspec train --seed` changes only initial weights and batch orders, which counting
    does not read."""

    def write(seed: int):
        path = tmp_path_factory.mktemp(f"markov{seed}") / "markov.nn"
        text = SPEC.read_text()
        assert text.count("seed    = 0") == 1
        path.write_text(text.replace("seed    = 0", f"seed    = {seed}"))
        return path

    return write


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_the_learned_chain_is_near_the_land_of_oz_for_every_seed_on_both_backends(
    seed, seeded_spec, tmp_path
):
    """Other weather (the section's seed): each learned probability within 0.04 of the true P,
    the stationary distribution within 0.03 of (0.4, 0.2, 0.4), the entropy rate within 0.02 of
    1.4 ln 2; every expectation of the spec met; the two backends identical."""
    spec = seeded_spec(seed)
    learned = {}
    for backend in ["numpy"] + ["torch"] * HAS_TORCH:
        result = nnspec.train(spec, backend, tmp_path / backend)
        assert result.passed, (backend, seed, result.metrics)
        P = nnspec.transition_matrix(spec, result.paths["weights"])
        assert np.abs(P - LAND_OF_OZ).max() < 0.04, (backend, seed, P)
        assert np.abs(nnspec.stationary(P) - [0.4, 0.2, 0.4]).max() < 0.03
        assert abs(nnspec.entropy_rate(P) - 1.4 * math.log(2)) < 0.02
        learned[backend] = P
    if len(learned) == 2:
        np.testing.assert_array_equal(learned["numpy"], learned["torch"])


# ---- the rule's declaration and step -------------------------------------------------------------
def _chain_section(rule: str, layers: str = "markov m: 3") -> str:
    return f"""
network n {{
    input s: 3
    {layers}
    s -> m
}}

train {{
    data = weather
    rule = {rule}
}}
"""


def test_counts_trains_only_a_chain():
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(_chain_section("counts", "dense m: 3, act=softmax"))
    assert caught.value.code == "E507" and "markov" in caught.value.message


def test_a_negative_smoothing_is_refused():
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(_chain_section("counts(smoothing=-1)"))
    assert caught.value.code == "E510" and "smoothing" in caught.value.message


def test_the_counting_step_adds_up_batches_and_smooths():
    """Two batches count as their union; smoothing=1 is Laplace's rule; the step moves P from
    where it is to the normalised counts."""
    from nnspec.rules import RULES
    from nnspec.training.rules import STEPS, Batch

    eye = np.eye(3)
    first = (eye[[0, 0, 1]], eye[[1, 0, 2]])  # 0->1, 0->0, 1->2
    second = (eye[[2, 0]], eye[[2, 1]])  # 2->2, 0->1
    options = RULES["counts"].options(smoothing=1.0)
    P, state = np.full((3, 3), 1 / 3), {}
    for x, t in (first, second):
        batch = Batch(x, t, x @ P, None, None, {"transition": P}, options=options, state=state)
        P = P + STEPS["counts"].numpy(batch, 0.1)["transition"]
    counts = np.array([[1, 2, 0], [0, 0, 1], [0, 0, 1]]) + 1.0
    np.testing.assert_allclose(P, counts / counts.sum(1, keepdims=True))
    np.testing.assert_array_equal(state["counts"], counts - 1)


def test_counting_values_that_are_no_states_is_an_error():
    from nnspec.rules import RULES
    from nnspec.training.rules import STEPS, Batch

    x, t = np.array([[1.8, -0.07], [0.0, 1.0]]), np.eye(2)
    options = RULES["counts"].options()
    batch = Batch(x, t, x, None, None, {"transition": np.full((2, 2), 0.5)}, options=options)
    with pytest.raises(nnspec.NnspecError) as caught:
        STEPS["counts"].numpy(batch, 0.1)
    assert caught.value.code == "R368" and "[1.8, -0.07]" in caught.value.message
    assert caught.value.hint


# ---- a chain that reads state numbers (index) -------------------------------------------------
def test_a_chain_with_index_reads_the_row_of_a_state_number():
    model = nnspec.loads(
        OZ_SPEC.replace("input  today: 3", "input  today: 1").replace(
            "], frozen", "], frozen, index"
        )
    )
    rows = model.to_numpy()(np.array([[2.0], [0.0], [1.0]], np.float32))
    np.testing.assert_allclose(rows, LAND_OF_OZ[[2, 0, 1]], atol=1e-7)
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(OZ_SPEC.replace("], frozen", "], frozen, index"))
    assert caught.value.code == "E255" and "number" in caught.value.message


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_counts_learn_a_chain_from_a_csv_of_state_numbers(backend, tmp_path):
    """Day numbers in, the next day's name as the class: P is the hand count."""
    days = nnspec.sample_states(LAND_OF_OZ, 301, seed=4)
    names = ["rain", "nice", "snow"]
    (tmp_path / "days.csv").write_text(
        "today,tomorrow\n"
        + "".join(f"{a},{names[b]}\n" for a, b in zip(days[:-1], days[1:], strict=True))
    )
    spec = tmp_path / "days.nn"
    spec.write_text(
        "network days {\n input today: 1\n markov tomorrow: 3, index\n today -> tomorrow\n}\n"
        'train {\n data = csv("days.csv", target="tomorrow")\n classes = [rain, nice, snow]\n'
        " rule = counts\n}\n"
    )
    result = nnspec.train(spec, backend, tmp_path / "run")
    expected = normalised(transition_counts(days[:-1], days[1:], 3))
    np.testing.assert_allclose(
        nnspec.transition_matrix(spec, result.paths["weights"]), expected, atol=1e-6
    )
