"""Markov chains: transition counts, the stationary distribution, sampled sequences, and the
`weather` dataset (the Land of Oz chain).

A chain of S states is its row-stochastic transition matrix `P` `[S, S]`: `P[i, j]` is the
probability that state j follows state i. Everything here takes and gives NumPy arrays: the
`counts` rule (nnspec/training/rules.py) counts with `transition_counts` and `normalised`, its
measures and the run's report read `stationary` and `entropy_rate`, and `nnspec.stationary`,
`nnspec.sample_states` and `nnspec.transition_matrix` are these functions at the front door
(docs/training.md, "Markov chains").
"""

from __future__ import annotations

import bisect

import numpy as np

from ..errors import NnspecError
from .examples import F32, Examples

# Kemeny, Snell and Thompson's Land of Oz (Grinstead and Snell, Introduction to Probability,
# example 11.1): never two nice days in a row; after a nice day rain or snow alike; after rain
# or snow the same again half the time, else either of the other two.
OZ_STATES = ("rain", "nice", "snow")
LAND_OF_OZ = np.array([[0.5, 0.25, 0.25], [0.5, 0.0, 0.5], [0.25, 0.25, 0.5]])
WEATHER_DAYS = 10_000  # transitions in `weather`: each probability within about 0.01 (1 sd)
ROW_SUM = 1e-5  # how far a row may sum from 1 (float32 weights are off by about 1e-7)


class ChainError(NnspecError):
    """A matrix that is no Markov chain, or a chain without one stationary distribution."""


# ---- what a chain is --------------------------------------------------------------------------
def checked_chain(P) -> np.ndarray:
    """P as a float64 `[S, S]` array, after checking that it is square with rows that are
    probability distributions (R366 otherwise)."""
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.size == 0:
        raise ChainError(
            "R366",
            f"a transition matrix is square [S, S], but this one is {list(P.shape)}",
            "give one row per state, each with one probability per state",
        )
    return _distributions(P, "row {row} of the transition matrix")


def _distributions(P: np.ndarray, what: str) -> np.ndarray:
    """P `[R, S]` after checking that every row is a probability distribution (R366)."""
    sums = P.sum(1)
    bad = ~np.isfinite(P).all(1) | (P < 0).any(1) | (np.abs(sums - 1) > ROW_SUM)
    if bad.any():
        row = int(np.argmax(bad))
        raise ChainError(
            "R366",
            f"{what.format(row=row + 1)} is not a probability distribution: "
            f"{P[row].tolist()} (sum {sums[row]:g})",
            "every row holds the probabilities of the next state: numbers from 0 to 1 that "
            "sum to 1",
        )
    return P


def stationary(P) -> np.ndarray:
    """The stationary distribution pi `[S]` of the chain `P` `[S, S]`: pi P = pi, sum(pi) = 1.

    Solved as the linear system pi (P - I) = 0 with the row of ones for sum(pi) = 1 (least
    squares on the S + 1 equations, exact when the solution is unique). A chain with more than
    one closed class of states has many stationary distributions, and none is the chain's:
    R365.
    """
    P = checked_chain(P)
    states = len(P)
    system = np.vstack([P.T - np.eye(states), np.ones((1, states))])
    if np.linalg.matrix_rank(system[:-1], tol=1e-10) < states - 1:
        raise ChainError(
            "R365",
            "this chain has more than one stationary distribution: some of its states never "
            "reach the others",
            "a chain has one stationary distribution when every state can reach every other "
            "(give the rule smoothing=, or train it on sequences that visit every state)",
        )
    right = np.zeros(states + 1)
    right[-1] = 1.0
    pi = np.linalg.lstsq(system, right, rcond=None)[0]
    pi = np.clip(pi, 0.0, None)  # rounding leaves -1e-17 where a state is never visited
    return pi / pi.sum()


def entropy_rate(P) -> float:
    """The chain's entropy rate in nats: H = -sum_i pi_i sum_j P_ij log P_ij, the mean
    negative log-likelihood per transition that the true chain gives its own sequences."""
    P = checked_chain(P)
    with np.errstate(divide="ignore", invalid="ignore"):
        rows = -np.where(P > 0, P * np.log(P), 0.0).sum(1)
    return float(stationary(P) @ rows)


def transition_of(program, params: dict[str, np.ndarray], layer: str | None = None) -> np.ndarray:
    """The transition matrix `[S, S]` (float64) of a `markov` layer of `program` (a checked
    `Program`), read from `params` (parameter name -> array); `layer` names it when the network
    has several (R367 when it has none, or several and no name)."""
    chains = [item.name for item in program.layers if item.kind.name == "markov"]
    if layer is None and len(chains) == 1:
        layer = chains[0]
    if layer not in chains:
        named = ", ".join(f"'{name}'" for name in chains) or "none"
        raise ChainError(
            "R367",
            f"network '{program.name}' has no markov layer"
            + (f" named '{layer}'" if layer is not None else "")
            + f" to read a chain from (its markov layers: {named})",
            "name one of its markov layers with layer="
            if chains
            else "give a network with a markov layer",
        )
    found = program.layer(layer)
    key = found.param_name("transition")
    if key not in params:
        raise ChainError(
            "R367",
            f"the weights hold no '{key}', the transition matrix of '{layer}'",
            "give the weights the network was trained to (runs/<network>/weights.safetensors)",
        )
    return checked_chain(params[key])


# ---- counting -----------------------------------------------------------------------------
def transition_counts(states: np.ndarray, following: np.ndarray, count: int) -> np.ndarray:
    """C `[count, count]`: C[i, j] how many times state j follows state i, from the pairs
    (states[k], following[k]) (integer arrays of one length)."""
    counts = np.zeros((count, count))
    np.add.at(counts, (np.asarray(states, np.int64), np.asarray(following, np.int64)), 1.0)
    return counts


def normalised(counts: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """The maximum-likelihood transition matrix of `counts` `[S, S]`: each row divided by its
    sum, after adding `smoothing` to every count (additive, Laplace's for 1). A state never
    seen leaving (an all-zero row without smoothing) gets the uniform row 1 / S."""
    counts = np.asarray(counts, dtype=np.float64) + smoothing
    totals = counts.sum(1, keepdims=True)
    uniform = np.full_like(counts, 1.0 / counts.shape[1])
    return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), uniform)


# ---- sampling -----------------------------------------------------------------------------
def sample_states(P, steps: int, seed: int | np.random.Generator = 0, start=None) -> np.ndarray:
    """A sequence of `steps` states (int64 `[steps]`) run from the chain `P` `[S, S]`.

    `start` is the first state (an index), or a distribution over the states to draw it from;
    None draws it from the stationary distribution, so the whole sequence is stationary. Each
    next state takes one uniform draw of `seed`'s generator, inverted through the cumulative
    row of the current state: the same seed gives the same sequence.
    """
    P = checked_chain(P)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    cumulative = np.cumsum(P, axis=1)
    cumulative[:, -1] = np.inf  # a draw just under 1 never falls past the last state
    first = stationary(P) if start is None else start
    if np.ndim(first) == 0:
        state = int(first)
        if not 0 <= state < len(P):
            raise ChainError(
                "R366",
                f"the chain has states 0 to {len(P) - 1}, so it cannot start in state {state}",
                "give start= a state's index, or a distribution over the states",
            )
    else:
        start = _distributions(np.asarray([first], np.float64), "the start distribution")[0]
        if len(start) != len(P):
            raise ChainError(
                "R366",
                f"the start distribution has {len(start)} values, and the chain {len(P)} states",
                "give one probability per state",
            )
        state = int(np.searchsorted(np.cumsum(start)[:-1], rng.random(), "right"))
    # one bisection per step over plain lists: a Python loop, but 10,000 steps in milliseconds
    rows = cumulative.tolist()
    states = [state]
    for u in rng.random(max(steps - 1, 0)).tolist():
        state = bisect.bisect_right(rows[state], u)
        states.append(state)
    return np.array(states[: max(steps, 0)], dtype=np.int64)


# ---- the dataset --------------------------------------------------------------------------
def chain_examples(
    states: np.ndarray, count: int, P=None, labels: tuple[str, ...] | None = None
) -> Examples:
    """A sequence of states as examples of one transition each: x the one-hot current state
    `[N - 1, count]`, y the next state `[N - 1]` (classes `count`); `info` keeps the chain that
    made them (`chain`, when known) and the states' names (`labels`)."""
    x = np.eye(count, dtype=F32)[states[:-1]]
    info: dict[str, object] = {}
    if P is not None:
        info["chain"] = np.asarray(P, dtype=np.float64)
    if labels is not None:
        info["labels"] = list(labels)
    return Examples(x, states[1:].astype(np.int64), classes=count, info=info)


def weather(rng: np.random.Generator, steps: int | None) -> Examples:
    """The Land of Oz weather: 10,001 days run from its chain (rain, nice, snow), the first day
    drawn from its stationary distribution (0.4, 0.2, 0.4): x the day's weather one-hot
    `[10000, 3]`, y the next day's `[10000]`, 3 classes named rain, nice, snow; `info["chain"]`
    is the true transition matrix."""
    days = sample_states(LAND_OF_OZ, WEATHER_DAYS + 1, rng)
    return chain_examples(days, len(OZ_STATES), LAND_OF_OZ, OZ_STATES)
