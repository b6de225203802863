"""Radial basis units in NumPy: the Gaussian primitive with its gradient, and the `rbf` lowering."""

from __future__ import annotations

import numpy as np

from ...program import Layer
from .autograd import Var, record


def squared_distances(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """x (n, d), c (units, d) -> ||x_i - c_j||^2 (n, units), by BLAS: |x|^2 - 2 x c^T + |c|^2,
    kept from going below 0 by rounding."""
    d2 = (x * x).sum(1)[:, None] - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]
    return np.maximum(d2, 0.0)


def gaussian_rbf(x: Var, c: Var, eps: Var) -> Var:
    """x (..., d), centres (units, d), eps (units) -> exp(-(eps_j ||x - c_j||)^2) (..., units).

    With g the output's gradient and G = -g phi eps^2 (the gradient of the squared distances):
    dx = 2 (G.sum(-1) x - G c), dc = 2 (G^T 1 c - G^T x), deps = -2 eps sum(g phi d2).
    """
    lead, d = x.shape[:-1], x.shape[-1]
    flat = x.value.reshape(-1, d)
    d2 = squared_distances(flat, c.value)
    e2 = eps.value * eps.value
    phi = np.exp(-d2 * e2)

    def back(g: np.ndarray):
        g = g.reshape(phi.shape)
        gp = g * phi
        big = -gp * e2
        dx = 2.0 * (big.sum(1)[:, None] * flat - big @ c.value) if x.needs_grad else None
        dc = 2.0 * (big.sum(0)[:, None] * c.value - big.T @ flat) if c.needs_grad else None
        de = -2.0 * eps.value * (gp * d2).sum(0) if eps.needs_grad else None
        return (None if dx is None else dx.reshape(x.shape)), dc, de

    return record(phi.reshape(*lead, phi.shape[1]), (x, c, eps), back)


def rbf(ctx, layer: Layer, x: Var, p: dict[str, Var]) -> Var:
    """x (..., d) -> (..., units): `gaussian_rbf` of the centres and eps."""
    return gaussian_rbf(x, p["centres"], p["eps"])
