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
    elif how == "range":  # init=uniform(a, b)
        array = rng.uniform(value[0], value[1], size=param.shape)
    elif how == "normal":
        array = rng.normal(0.0, value, size=param.shape)
    elif how == "orthogonal":
        array = value * _orthogonal(param.shape, rng)
    elif how == "constant":
        array = np.full(param.shape, value)
    elif how == "literal":
        array = np.array(value, dtype=np.float64).reshape(param.shape)
    elif how == "sparse_sign":  # a reservoir's input weights: +-scale where linked
        array = _sparse_sign(param.shape, *value, rng)
    elif how == "spectral":  # a reservoir's recurrent matrix, scaled to a spectral radius
        array = _spectral(param.shape, *value, rng)
    else:
        raise ValueError(f"unknown initialisation {how!r} for {name} (this is a bug)")
    return array.astype(dtype)


def _orthogonal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """`shape` with orthonormal rows as a `[shape[0], rest]` matrix (orthonormal columns when it
    has more rows than columns), as nn.init.orthogonal_: Q of the QR factors of a N(0, 1) draw,
    its columns' signs those of R's diagonal (so Q is uniform over the orthogonal matrices)."""
    rows = shape[0]
    cols = int(np.prod(shape[1:]))
    flat = rng.normal(0.0, 1.0, size=(rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape)


def _sparse_sign(shape: tuple[int, ...], scale: float, density: float, rng) -> np.ndarray:
    """A fraction `density` of the entries linked (drawn at random), each +scale or -scale with
    equal odds, the others 0 (reservoirpy's bernoulli initialiser)."""
    linked = rng.random(shape) < density
    signs = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return np.where(linked, scale * signs, 0.0)


def _spectral(shape: tuple[int, int], radius: float, density: float, rng) -> np.ndarray:
    """A square matrix with a fraction `density` of its entries N(0, 1), the others 0, scaled so
    that its largest eigenvalue's modulus is `radius` (Jaeger's echo state recipe; a matrix
    whose eigenvalues are all 0 stays as drawn)."""
    linked = rng.random(shape) < density
    matrix = np.where(linked, rng.normal(0.0, 1.0, size=shape), 0.0)
    rho = float(np.abs(np.linalg.eigvals(matrix)).max()) if matrix.size else 0.0
    return matrix * (radius / rho) if rho > 1e-12 else matrix
