"""The Markov chain in NumPy: the next-state distribution, a matrix product."""

from __future__ import annotations

import numpy as np

from ...program import Layer
from . import ops
from .autograd import Var


def markov(ctx, layer: Layer, x: Var, p: dict[str, Var]) -> Var:
    """x (..., states) -> (..., states): `matmul` by the transition matrix P (states, states),
    `x @ P`; its gradient reaches x (`g @ P.T`) and P (`x.T @ g`), though only a frozen chain
    is ever backpropagated through (a learned one is counted: rule = counts). With `index`,
    state numbers (..., 1) -> `gather_rows` of P (checked to be whole numbers in range; they take
    no gradient)."""
    if not layer.options.index:
        return ops.matmul(x, p["transition"])
    numbers = x.value[..., 0]
    states = numbers.astype(np.int64)
    bad = (states != numbers) | (states < 0) | (states >= layer.options.states)
    if np.any(bad):
        raise ValueError(
            f"markov '{layer.name}' takes state numbers from 0 to {layer.options.states - 1}, "
            f"but receives {float(numbers[bad].flat[0]):g}"
        )
    return ops.gather_rows(p["transition"], states)
