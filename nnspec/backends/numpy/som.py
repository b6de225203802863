"""The Kohonen map in NumPy: distances to every unit and the one-hot best-matching unit.

The map has no gradient (it is trained by `rule = som`, never by backpropagation: the checker
refuses that, E575), so its output is a constant of the computation.
"""

from __future__ import annotations

import numpy as np

from ...program import Layer
from .autograd import Var, const

CHUNK = 1 << 22  # values of the differences (x - W) computed at once


def squared_distances(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x: (..., d), w: (units, d) -> (..., units): the squared Euclidean distance to every unit.

    Computed from the differences, not from |x|^2 - 2 x.w + |w|^2, which loses close calls to
    cancellation and could pick another winner than the other backend does.
    """
    return np.square(x[..., None, :] - w).sum(-1)


def distances(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x: (..., d), w: (units, d) -> (..., units): the Euclidean distance to every unit."""
    return np.sqrt(squared_distances(x, w))


def best_matching(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x: (..., d), w: (units, d) -> (...,) the index of the nearest unit (the first at a tie).

    In slices of examples, so that the differences never take more than about 32 MB.
    """
    flat = x.reshape(-1, x.shape[-1])
    rows = max(1, CHUNK // w.size)
    if len(flat) <= rows:  # one slice (a training step's example)
        return squared_distances(flat, w).argmin(-1).reshape(x.shape[:-1])
    winners = [
        squared_distances(flat[i : i + rows], w).argmin(-1) for i in range(0, len(flat), rows)
    ]
    return np.concatenate(winners).reshape(x.shape[:-1])


def som(ctx, layer: Layer, x: Var, p) -> Var:
    """x (..., d) -> (..., rows * cols): `best_matching` (the distance to every unit's weight,
    its argmin), one-hot; a constant, no gradient."""
    w = p["weight"].value
    winners = best_matching(x.value.astype(w.dtype, copy=False), w)
    return const(np.eye(w.shape[0], dtype=w.dtype)[winners])
