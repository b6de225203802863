"""`rule = lstsq`: a linear readout fitted in closed form on what the layers before it compute.

The readout is the network's output, a dense layer of identity units; what enters it, x `[n, h]`
(an rbf's Gaussian units, a fixed random layer, or the input itself), is computed by the layers
before it as they are (RuleRunner), and t `[n, units]` is the target (classes one-hot). With
A = [x 1] (no column of ones for a layer without a bias), the step solves

    ridge = 0:   min |A B - t|^2                  numpy.linalg.lstsq (the minimum-norm B where
                                                  several fit, as with more units than examples)
    ridge > 0:   (A^T A + ridge D) B = A^T t      D the identity, 0 at the bias: it is not penalised

in float64 and returns B - (W, b) as the rule's step, so the readout becomes B whatever it held.
One step on all the training data fits it (the rule sees `data`); more epochs fit it again to the
same values. A readout with a value at every step (an esn's) is fitted on the steps of every
training sequence after its first `washout` (x `[n, T, h]` and t `[n, T, units]` as rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NnspecError


def fitted_readout(
    x: np.ndarray, t: np.ndarray, bias: bool, ridge: float = 0.0
) -> tuple[np.ndarray, np.ndarray | None]:
    """The least-squares readout of `t` `[n, units]` from `x` `[n, h]`: W `[units, h]` and b
    `[units]` (None without a bias)."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    a = np.hstack([x, np.ones((len(x), 1))]) if bias else x
    if ridge == 0.0:
        solution = np.linalg.lstsq(a, t, rcond=None)[0]
    else:
        penalty = ridge * np.eye(a.shape[1])
        if bias:
            penalty[-1, -1] = 0.0
        solution = np.linalg.solve(a.T @ a + penalty, a.T @ t)
    h = x.shape[1]
    return solution[:h].T, (solution[h] if bias else None)


def washed_out(x: np.ndarray, t: np.ndarray, washout: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows a readout is fitted on: x `[n, h]` and t `[n, units]` as they are, or, over time
    (x `[n, T, h]`, t `[n, T, units]`), every step of every sequence after its first `washout`,
    as rows `[n * (T - washout), ...]`."""
    if x.ndim == 2:
        return x, t
    if washout >= x.shape[1]:
        raise NnspecError(
            "R384",
            f"rule = lstsq(washout={washout}) leaves out the first {washout} steps of every "
            f"training sequence, and they have {x.shape[1]}: no step is left to fit the readout on",
            f"give washout fewer steps than the training sequences have (at most {x.shape[1] - 1})",
        )
    return (
        x[:, washout:].reshape(-1, x.shape[-1]),
        t[:, washout:].reshape(-1, t.shape[-1]),
    )


def least_squares(batch, lr: float) -> dict[str, Any]:
    """The step of `rule = lstsq` on a `Batch` of all the training data: what takes the readout
    to its least-squares (or ridge) fit. `lr` is not read: the fit is exact, not a descent."""
    x, t = washed_out(batch.x, batch.t, batch.options.washout)
    w, b = fitted_readout(x, t, batch.b is not None, batch.options.ridge)
    deltas = {"weight": (w - batch.w).astype(batch.w.dtype)}
    if b is not None:
        deltas["bias"] = (b - batch.b).astype(batch.b.dtype)
    return deltas
