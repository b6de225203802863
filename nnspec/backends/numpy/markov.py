"""The Markov chain in NumPy: the next-state distribution, a matrix product."""

from __future__ import annotations

from ...program import Layer
from . import ops
from .autograd import Var


def markov(ctx, layer: Layer, x: Var, p: dict[str, Var]) -> Var:
    """x (..., states) -> (..., states): `matmul` by the transition matrix P (states, states),
    `x @ P`; its gradient reaches x (`g @ P.T`) and P (`x.T @ g`), though only a frozen chain
    is ever backpropagated through (a learned one is counted: rule = counts)."""
    return ops.matmul(x, p["transition"])
