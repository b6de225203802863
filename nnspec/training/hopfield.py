"""`rule = hopfield`: a Hopfield network stores its patterns in one step, and the measures of
how well it recalls them.

The step sees all the training data at once (the rule's `sees = "data"`): its targets are the
clean patterns t_k (+1/-1), and W becomes Hebb's storage prescription
`W = 1/N sum_k t_k t_k^T` with a zero diagonal (Hopfield 1982), each distinct pattern counted once
(several cues of one pattern store it once). The step returns `W_new - W`, so a second epoch
stores the same patterns again and changes nothing; `lr` is not read.
The cues (the inputs) are never stored: the measures recall from them. Each function takes a
`training.rules.Batch` (NumPy arrays) and is registered there, in `STEPS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends.numpy.hopfield import stored


def store(batch: Any, lr: float) -> dict[str, Any]:
    """batch.t `[patterns, N]` -> what to add to the weight `[N, N]` for it to store them."""
    old = np.asarray(batch.params["weight"])
    patterns = np.unique(np.where(np.asarray(batch.t) > 0, 1.0, -1.0), axis=0)
    return {"weight": (stored(patterns) - old).astype(old.dtype)}


def _right(batch: Any) -> np.ndarray:
    """[examples, N]: whether each recalled value is its pattern's."""
    return np.asarray(batch.y) == np.where(np.asarray(batch.t) > 0, 1.0, -1.0)


def recall(batch: Any) -> float:
    """The fraction of cues recalled exactly: every value of the pattern right."""
    return float(_right(batch).all(1).mean())


def bit_error(batch: Any) -> float:
    """The fraction of recalled values that differ from their pattern's."""
    return float(1.0 - _right(batch).mean())


def overlap(batch: Any) -> float:
    """The mean overlap m = (1/N) sum_i s_i t_i of the recalled state with its pattern: 1 when
    recalled exactly, about 0 for an unrelated state, -1 for the pattern's negative (which the
    network stores as well)."""
    s, t = np.asarray(batch.y, np.float64), np.where(np.asarray(batch.t) > 0, 1.0, -1.0)
    return float((s * t).mean())


MEASURES = {"recall": recall, "bit_error": bit_error, "overlap": overlap}
