"""Capsule primitives, each forward beside its vector-Jacobian product, and routing by agreement
composed from them (kinds/capsules.py says what the kinds compute).

| primitive | forward | back(g) |
|---|---|---|
| `squash(s)` | `s f(n)`, `n = |s|^2`, `f = n / ((1 + n) sqrt(n + eps))` | `g f + 2 s f' (g . s)` |
| `predictions(u, W)` | `u_hat[.., i, j] = W[i, j] @ u[.., i]` | `sum g W`; `sum g u` (batch) |
| `length(v)` | `sqrt(|v|^2 + eps)` over the last axis | `g v / length` |

`routing(u_hat, iterations)` is built from them and ops.py's `mul`, `total`, `add` and
activations.py's `softmax`, so its gradient needs no code of its own; `mask(v, labels)` from
ops.py's `mul_const` and `reshape`.
"""

from __future__ import annotations

import numpy as np

from ...kinds.capsules import EPSILON
from . import ops
from .activations import softmax
from .autograd import Var, record


def squash(s: Var) -> Var:
    """s: (..., dim) -> (..., dim): the same direction, length `|s|^2 / (1 + |s|^2)` in [0, 1)."""
    n = (s.value * s.value).sum(-1, keepdims=True)
    root = np.sqrt(n + EPSILON)
    f = n / ((1 + n) * root)
    # f'(n) = (1 / (1 + n) - n / (2 (n + eps))) / ((1 + n) sqrt(n + eps)): finite at n = 0
    slope = (1 / (1 + n) - 0.5 * n / (n + EPSILON)) / ((1 + n) * root)

    def back(g):
        return (g * f + 2 * s.value * slope * (g * s.value).sum(-1, keepdims=True),)

    return record(s.value * f, (s,), back)


def predictions(u: Var, W: Var) -> Var:
    """u: (..., N, D), W: (N, J, K, D) -> u_hat (..., N, J, K), `u_hat_ij = W_ij u_i`."""

    def back(g):
        gu = np.einsum("...njk,njkd->...nd", g, W.value, optimize=True) if u.needs_grad else None
        gW = None
        if W.needs_grad:
            rows_g = g.reshape((-1,) + g.shape[-3:])
            rows_u = u.value.reshape((-1,) + u.shape[-2:])
            gW = np.einsum("bnjk,bnd->njkd", rows_g, rows_u, optimize=True)
        return gu, gW

    return record(np.einsum("...nd,njkd->...njk", u.value, W.value, optimize=True), (u, W), back)


def length(v: Var) -> Var:
    """v: (..., N, dim) -> (..., N): each capsule's length, `sqrt(|v|^2 + eps)`."""
    y = np.sqrt((v.value * v.value).sum(-1) + EPSILON)

    def back(g):
        return ((g / y)[..., None] * v.value,)

    return record(y, (v,), back)


def routing(u_hat: Var, iterations: int, couplings: list | None = None) -> Var:
    """u_hat: (..., N, J, K) -> v: (..., J, K), routing by agreement (Sabour et al. 2017).

    c = softmax over j of the logits b (zeros at first: uniform couplings `1 / J`),
    `s_j = sum_i c_ij u_hat_ij`, `v_j = squash(s_j)`, then `b_ij += u_hat_ij . v_j` before the
    next iteration. `couplings`, when given, receives each iteration's c (..., N, J).
    """
    *lead, _, outputs, _ = u_hat.shape
    logits = None
    v = None
    for iteration in range(iterations):
        if logits is None:
            c = np.full((*lead, u_hat.shape[-3], outputs), 1.0 / outputs, u_hat.value.dtype)
            weighted = ops.mul_const(u_hat, c[..., None])
        else:
            c_var = softmax(logits, -1)
            c = c_var.value
            weighted = ops.mul(u_hat, ops.reshape(c_var, c.shape + (1,)))
        if couplings is not None:
            couplings.append(c)
        v = squash(ops.total(weighted, axis=-3))
        if iteration < iterations - 1:
            agreement = ops.total(
                ops.mul(u_hat, ops.reshape(v, v.shape[:-2] + (1,) + v.shape[-2:])), -1
            )
            logits = agreement if logits is None else ops.add(logits, agreement)
    return v


def mask(v: Var, labels: np.ndarray | None) -> Var:
    """v: (B, N, dim) -> (B, N * dim): capsule `labels[b]` of example b kept, the others zero
    (labels: (B,) class indices); the longest capsule where `labels` is None."""
    index = np.argmax((v.value * v.value).sum(-1), -1) if labels is None else labels
    kept = np.arange(v.shape[-2]) == np.asarray(index)[:, None]
    return ops.reshape(ops.mul_const(v, kept[..., None].astype(v.value.dtype)), (v.shape[0], -1))
