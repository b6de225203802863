"""Contrastive divergence for a restricted Boltzmann machine with Bernoulli units (the `rbm`
kind): the update, the Gibbs sampler, and the two measures of how well it models its data.

With v the visible units `[batch, V]`, W the weight `[H, V]`, b the hidden and c the visible
bias, the energy is `E(v, h) = -c.v - b.h - h.W v`, so that

    P(h = 1 | v) = sigmoid(v W^T + b)        P(v = 1 | h) = sigmoid(h W + c)

and the log-likelihood's gradient is `<h v>_data - <h v>_model`. CD-k (Hinton 2002) estimates
the model's term by k steps of Gibbs sampling started at the data: h ~ P(h | v), then k times
v ~ P(v | h), h ~ P(h | v). Persistent CD (Tieleman 2008) starts each update's chains where the
last update left them (`state["chains"]`, the hidden samples `[chains, H]`, zeros at first, as
scikit-learn's BernoulliRBM starts them). Like BernoulliRBM, the positive phase uses the hidden
means given the data, and the negative phase the sampled visibles and their hidden means:

    W += lr (mean_data(P(h|v) v^T) - mean_chains(P(h|v~) v~^T))
    b += lr (mean_data(P(h|v)) - mean_chains(P(h|v~)))
    c += lr (mean_data(v) - mean_chains(v~))

Every random draw comes from the batch's `rng` (`default_rng([seed, step])`), so both backends,
which hand this NumPy code the same weights, make the same draws and the same steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) as (1 + tanh(z / 2)) / 2, in z's dtype: the same function, and no
    exp to overflow (which would need NumPy's error state switched for every call)."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def hidden_means(v: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """P(h = 1 | v): `[n, V]` -> `[n, H]`."""
    return sigmoid(v @ params["weight"].T + params["bias"])


def visible_means(h: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """P(v = 1 | h): `[n, H]` -> `[n, V]`."""
    return sigmoid(h @ params["weight"] + params["visible_bias"])


def bernoulli(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 0/1 sample of each unit with its probability `p`, in p's dtype."""
    return (rng.random(p.shape) < p).astype(p.dtype)


def gibbs(
    h: np.ndarray, params: dict[str, np.ndarray], k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k steps of block Gibbs sampling from the hidden samples `h` `[n, H]`: each step draws
    v ~ P(v | h), then h ~ P(h | v). Returns the last visible sample `[n, V]`, its hidden means
    and the last hidden sample `[n, H]` (where a persistent chain goes on from)."""
    for _ in range(k):
        v = bernoulli(visible_means(h, params), rng)
        means = hidden_means(v, params)
        h = bernoulli(means, rng)
    return v, means, h


def cd_step(batch: Any, lr: float) -> dict[str, np.ndarray]:
    """One CD-k (or persistent CD) update of an rbm on `batch.x` `[n, V]`: what to add to its
    weight, bias and visible_bias (`batch.options`: `k`, `persistent`; `batch.state["chains"]`
    keeps the persistent chains)."""
    params, v, rng = batch.params, batch.x, batch.rng
    k, persistent = batch.options.k, batch.options.persistent
    positive = hidden_means(v, params)
    if persistent:
        start = batch.state.get("chains")
        if start is None:  # scikit-learn's BernoulliRBM: chains of all-zero hidden units
            start = np.zeros_like(positive)
    else:
        start = bernoulli(positive, rng)
    v_model, negative, chains = gibbs(start.astype(v.dtype, copy=False), params, k, rng)
    if persistent:
        batch.state["chains"] = chains
    n, m = len(v), len(v_model)
    return {
        "weight": lr * (positive.T @ v / n - negative.T @ v_model / m),
        "bias": lr * (positive.mean(0) - negative.mean(0)),
        "visible_bias": lr * (v.mean(0) - v_model.mean(0)),
    }


def reconstruction_error(batch: Any) -> float:
    """The mean squared difference between v and its mean-field reconstruction
    P(v = 1 | P(h = 1 | v)), over examples and visible units (no random draws)."""
    v = batch.x
    back = visible_means(hidden_means(v, batch.params), batch.params)
    return float(np.mean((v - back) ** 2, dtype=np.float64))


def free_energy(v: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """F(v) = -c.v - sum_j log(1 + exp((v W^T + b)_j)): `[n, V]` -> `[n]`."""
    z = v @ params["weight"].T + params["bias"]
    return -(v @ params["visible_bias"]) - np.logaddexp(0, z).sum(1)


def pseudo_likelihood(batch: Any) -> float:
    """The mean log pseudo-likelihood of the examples, as scikit-learn's
    `BernoulliRBM.score_samples` estimates it: one visible unit i of each example, drawn at
    random (`batch.rng`), is flipped to give v~, and V * log sigmoid(F(v~) - F(v)) stands for
    sum_i log P(v_i | v_-i) (for binary v; data in [0, 1] are flipped as 1 - v_i)."""
    v = np.asarray(batch.x, dtype=np.float64)
    params = {key: np.asarray(value, dtype=np.float64) for key, value in batch.params.items()}
    flipped = v.copy()
    rows, units = np.arange(len(v)), batch.rng.integers(0, v.shape[1], len(v))
    flipped[rows, units] = 1 - flipped[rows, units]
    gap = free_energy(flipped, params) - free_energy(v, params)
    return float(np.mean(-v.shape[1] * np.logaddexp(0, -gap)))
