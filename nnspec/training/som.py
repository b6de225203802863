"""Kohonen's rule for a self-organising map (`rule = som`), and the map's two measures.

One example x `[d]` at step t of T: the best-matching unit c = argmin_u ||x - W[u]|| (the first
at a tie), then every unit u moves towards x by

    W[u] += lr(t) h(u, c, sigma(t)) (x - W[u])

with h the neighbourhood on the grid, unit u at row i, column j and c at (ci, cj):

    gaussian   exp(-(i - ci)^2 / (2 sigma^2)) exp(-(j - cj)^2 / (2 sigma^2))
    triangle   max(0, sigma - |i - ci|) max(0, sigma - |j - cj|)   (sigma^2 at the winner)

and lr(t), sigma(t) shrinking as MiniSom's decay functions do (`DECAYS`, `SIGMA_DECAYS`):
asymptotic_decay v / (1 + t / (T / 2)) for both by default. These are MiniSom's definitions
(minisom.py 2.3: `_gaussian`, `_triangle`, `update`), so the same initial weights, order and
schedule give the same map.

The measures, as MiniSom defines them: the quantization error, the mean distance from each
input to its best-matching unit's weight; the topographic error, the fraction of inputs whose
best and second-best units are not neighbours on the grid (diagonal neighbours count: grid
distance at most 1.42).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..backends.numpy.som import CHUNK, best_matching, distances

# lr(t) for a learning rate lr0 over T steps, by the rule's `decay` option (MiniSom's names:
# asymptotic_decay, inverse_decay_to_zero, linear_decay_to_zero)
DECAYS: dict[str, Callable[[float, int, int], float]] = {
    "asymptotic": lambda v, t, total: v / (1 + t / (total / 2)),
    "inverse": lambda v, t, total: v * (total / 100.0) / (total / 100.0 + t),
    "linear": lambda v, t, total: v * (1 - t / total),
}
# sigma(t), by the rule's `sigma_decay` (asymptotic_decay, inverse_decay_to_one,
# linear_decay_to_one)
SIGMA_DECAYS: dict[str, Callable[[float, int, int], float]] = {
    "asymptotic": DECAYS["asymptotic"],
    "inverse": lambda v, t, total: v / (1 + t * (v - 1) / total),
    "linear": lambda v, t, total: v + t * (1 - v) / total,
}


def neighbourhood(grid: tuple[int, int], winner: int, sigma: float, kind: str) -> np.ndarray:
    """How much each unit `[rows * cols]` moves with the unit `winner` (row-major index)."""
    rows, cols = grid
    ci, cj = divmod(int(winner), cols)
    i, j = np.arange(rows, dtype=float), np.arange(cols, dtype=float)
    if kind == "gaussian":
        d = 2 * sigma * sigma
        along_i, along_j = np.exp(-np.square(i - ci) / d), np.exp(-np.square(j - cj) / d)
    else:  # triangle
        along_i = np.maximum(sigma - np.abs(ci - i), 0.0)
        along_j = np.maximum(sigma - np.abs(cj - j), 0.0)
    return np.outer(along_i, along_j).reshape(-1)


def kohonen_step(
    x: np.ndarray,
    w: np.ndarray,
    grid: tuple[int, int],
    lr: float,
    sigma: float,
    kind: str,
) -> np.ndarray:
    """x `[d]`, w `[units, d]` -> what to add to w: lr h(u, c, sigma) (x - W[u]) for every u."""
    winner = best_matching(x, w)
    pull = neighbourhood(grid, winner, sigma, kind) * lr
    return pull[:, None] * (x - w)


def quantization_error(x: np.ndarray, w: np.ndarray) -> float:
    """x `[n, d]`, w `[units, d]` -> the mean of ||x_k - W[bmu(x_k)]||."""
    x = x.reshape(len(x), -1).astype(w.dtype, copy=False)
    winners = best_matching(x, w)
    return float(np.sqrt(np.square(x - w[winners]).sum(-1)).mean())


def topographic_error(x: np.ndarray, w: np.ndarray, grid: tuple[int, int]) -> float:
    """x `[n, d]`, w `[units, d]` -> the fraction of inputs whose two nearest units lie more
    than 1.42 apart on the grid (not side by side nor diagonal); 0 on a one-unit map, which has
    no second unit."""
    if len(w) < 2 or len(x) == 0:
        return 0.0
    x = x.reshape(len(x), -1).astype(w.dtype, copy=False)
    rows = max(1, CHUNK // w.size)
    two = np.concatenate(
        [np.argsort(distances(x[k : k + rows], w), axis=1)[:, :2] for k in range(0, len(x), rows)]
    )
    cols = grid[1]
    apart = np.hypot(*(np.diff(np.divmod(two, cols), axis=-1)[..., 0]))
    return float((apart > 1.42).mean())


# ---- the rule's step and measures, on a `Batch` of nnspec/training/rules.py -------------------
def som_step(batch, lr: float) -> dict[str, np.ndarray]:
    """One example (batch = 1, which the checker asks for: E576) moves the map: `kohonen_step`
    with lr and sigma decayed to step `batch.step` of `batch.steps` as the rule's options say;
    the layer gives the grid, sigma and the neighbourhood. -> {"weight": delta [units, d]}."""
    layer, options = batch.layer.options, batch.options
    t, total = batch.step, batch.steps
    rate = DECAYS[options.decay](lr, t, total)
    sigma = SIGMA_DECAYS[options.sigma_decay](layer.sigma, t, total)
    w = batch.w
    delta = np.zeros_like(w)
    for x in batch.x:  # one example (batch = 1)
        delta += kohonen_step(x, w + delta, tuple(layer.grid), rate, sigma, layer.neighbourhood)
    return {"weight": delta}


def batch_quantization_error(batch) -> float:
    """The mean distance from each input of the batch to its best-matching unit's weight."""
    return quantization_error(batch.x, batch.w)


def batch_topographic_error(batch) -> float:
    """The fraction of the batch's inputs whose two best units are not grid neighbours."""
    return topographic_error(batch.x, batch.w, tuple(batch.layer.options.grid))
