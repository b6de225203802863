"""Initial parameters: every parameter and buffer of a program, drawn from one seed with NumPy.

Both backends start from these arrays, so the same seed gives the same network on either.
Each parameter's distribution is declared by its kind (`Param.init`, PyTorch's defaults).
"""

from __future__ import annotations

import numpy as np

from ..kinds import Param
from ..program import Program


def initial_params(
    program: Program, seed: int | None = 0, dtype=np.float32
) -> dict[str, np.ndarray]:
    """`{"h1.weight": array, ...}` in layer order;
    `num_batches_tracked` buffers are int64 as in PyTorch."""
    rng = np.random.default_rng(seed)
    return {name: _draw(param, rng, dtype, name) for name, param in program.parameters().items()}


def _draw(param: Param, rng: np.random.Generator, dtype, name: str) -> np.ndarray:
    how, value = param.init
    if name.endswith("num_batches_tracked"):
        return np.zeros(param.shape, dtype=np.int64)
    if how == "uniform":
        array = rng.uniform(-value, value, size=param.shape)
    elif how == "normal":
        array = rng.normal(0.0, value, size=param.shape)
    elif how == "constant":
        array = np.full(param.shape, value)
    elif how == "literal":
        array = np.array(value, dtype=np.float64).reshape(param.shape)
    else:
        raise ValueError(f"unknown initialisation {how!r} for {name} (this is a bug)")
    return array.astype(dtype)
