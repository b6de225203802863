"""The Hopfield network in NumPy: recall from a cue, and the energy that asynchronous recall never
raises. Recall has no gradient (every update is a sign): the lowering returns a constant, and
the checker refuses backpropagation through it (E550)."""

from __future__ import annotations

import numpy as np

from ...kinds.hopfield import TIE
from ...program import Layer
from .autograd import Var, const


def recall(
    cue: np.ndarray, weight: np.ndarray, update: str, sweeps: int, threshold: float = 0.0
) -> np.ndarray:
    """cue (..., N), weight (N, N) -> the state recalled from the cue (..., N), +1/-1.

    The cue is read as +1 where positive, -1 elsewhere. A unit becomes +1 when its net input is
    above `threshold` by more than the tie tolerance (TIE of its row's total absolute weight), -1
    when below by more, else keeps its state. `async`: units 0 .. N - 1 in turn, each seeing the
    newest states; `sync`: all at once. At most `sweeps` sweeps, stopping after one that changes
    nothing (a fixed point of every example). Computed in float64, returned in the cue's dtype.
    """
    cue, w = np.asarray(cue), np.asarray(weight, dtype=np.float64)
    s = np.where(cue > 0, 1.0, -1.0)
    tie = TIE * np.abs(w).sum(1)
    for _ in range(sweeps):
        before = s.copy()
        if update == "sync":
            s = _updated(s @ w.T - threshold, tie, s)
        else:
            for i in range(w.shape[0]):
                s[..., i] = _updated(s @ w[i] - threshold, tie[i], s[..., i])
        if np.array_equal(s, before):
            break
    return s.astype(cue.dtype if cue.dtype.kind == "f" else np.float64)


def _updated(net: np.ndarray, tie, state: np.ndarray) -> np.ndarray:
    """+1 above the threshold, -1 below, the state kept at a tie (`net` is the net input minus
    the threshold)."""
    return np.where(net > tie, 1.0, np.where(net < -tie, -1.0, state))


def energy(state: np.ndarray, weight: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """state (..., N), weight (N, N) -> E (...): -1/2 s W s + threshold * sum s."""
    s = np.asarray(state, dtype=np.float64)
    return -0.5 * np.einsum("...i,ij,...j->...", s, weight, s) + threshold * s.sum(-1)


def stored(patterns: np.ndarray) -> np.ndarray:
    """patterns (P, N) of +1/-1 -> W (N, N) = 1/N sum_k t_k t_k^T with a zero diagonal: Hebb's
    storage prescription (Hopfield 1982)."""
    t = np.asarray(patterns, dtype=np.float64)
    w = t.T @ t / t.shape[1]
    np.fill_diagonal(w, 0.0)
    return w


def hopfield(ctx, layer: Layer, x: Var, p: dict[str, Var]) -> Var:
    """cue (B, N) -> recalled state (B, N): `recall` (update=async or sync, at most `sweeps`
    sweeps), a constant: no gradient (backpropagation through it is refused, E550)."""
    o = layer.options
    return const(recall(x.value, p["weight"].value, o.update, o.sweeps, o.threshold))
