"""Metrics measured on a network's outputs, in NumPy, the same for every backend.

Outputs and targets come batch first; `mask` (graphs) picks the items that count.
"""

from __future__ import annotations

import numpy as np


def accuracy(y: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Class indices: the arg-max of the last axis; one unit for two classes:
    above 0.5 is class 1."""
    if target.dtype.kind in "iu":
        right = y.argmax(-1) == target
    else:
        right = ((y > 0.5) == (target > 0.5)).all(-1)
    return float(right[mask].mean() if mask is not None else right.mean())


def mae(y, target, mask=None) -> float:
    return float(_pick(np.abs(y - target), mask).mean())


def rmse(y, target, mask=None) -> float:
    return float(np.sqrt(_pick((y - target) ** 2, mask).mean()))


def r2(y, target, mask=None) -> float:
    y, target = _pick(y, mask), _pick(target, mask)
    total = ((target - target.mean(0)) ** 2).sum()
    return float(1 - ((y - target) ** 2).sum() / total) if total > 0 else float("nan")


def nrmse(y, target, mask=None) -> float:
    """The root mean squared error over the targets' standard deviation (Jaeger 2001's
    normalised error: 1 is as good as always predicting the mean, 0 exact)."""
    y, target = _pick(y, mask), _pick(target, mask)
    spread = float(target.std())
    return float(np.sqrt(((y - target) ** 2).mean())) / spread if spread > 0 else float("nan")


def bit_errors(y, target, mask=None) -> float:
    """Bits wrong per sequence: outputs rounded at 0.5 against the target bits, summed over the
    steps and bits of each sequence, averaged over the sequences (the NTM's copy task)."""
    wrong = (np.asarray(y) > 0.5) != (np.asarray(target) > 0.5)
    return float(_pick(wrong.reshape(len(wrong), -1).sum(-1), mask).mean())


def _pick(values: np.ndarray, mask):
    return values[mask] if mask is not None else values


def flat_epochs(history: list[dict[str, float]], name: str = "loss", tolerance=1e-3) -> int:
    """How many of the last epochs of `history` (rows of metrics.csv) kept `name` within
    `tolerance` of its last value, relative to it: a run that ends far from its expectation after
    many such epochs has stopped learning, and may be stuck in a local minimum."""
    values = [row[name] for row in history if row.get("epoch", 1) and name in row]
    if not values or not np.isfinite(values[-1]):
        return 0
    last, bound = values[-1], tolerance * max(abs(values[-1]), 1e-12)
    count = 0
    for value in reversed(values):
        if not abs(value - last) <= bound:
            break
        count += 1
    return count


MEASURES = {"accuracy": accuracy, "mae": mae, "rmse": rmse, "r2": r2, "nrmse": nrmse}
MEASURES["bit_errors"] = bit_errors


# ---- metrics of a latent code against the data's known factors (`factors = LAYER`) ----------
def factor_correlations(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """|Pearson r| between unit i of `codes` `[N, units]` and factor i of `factors` `[N, F]`, for
    each factor but the last (the intrinsic one, which the units after them carry) `[F - 1]`; a
    unit or factor that never varies correlates 0."""
    count = factors.shape[1] - 1
    a = codes[:, :count] - codes[:, :count].mean(0)
    b = factors[:, :count] - factors[:, :count].mean(0)
    spread = np.sqrt((a**2).sum(0) * (b**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(spread > 0, (a * b).sum(0) / spread, 0.0)
    return np.abs(r)


def factor_correlation(codes: np.ndarray, factors: np.ndarray) -> float:
    """The mean of `factor_correlations`: how well, on average, each designated unit follows its
    own factor (0 for units that ignore their factors, 1 for units that are their factors up to
    scale and sign)."""
    return float(factor_correlations(codes, factors).mean())


LATENT_MEASURES = {"factor_correlation": factor_correlation}  # (codes, factors) -> float
