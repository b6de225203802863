"""Array primitives, each forward beside its vector-Jacobian product (`back`).

| primitive | forward | back(g) |
|---|---|---|
| `add(a, b)` / `sub(a, b)` | `a + b` / `a - b` (broadcasting) | `g`, `+-g`, summed to each shape |
| `mul(a, b)` | `a * b` | `g * b`, `g * a` |
| `scale(x, c)` | `c * x`, c a number | `c * g` |
| `add_const(x, c)` / `mul_const(x, c)` | `x + c` / `x * c`, c a constant array | `g` / `g * c` |
| `power(x, p)` | `x ** p` | `g * p * x ** (p - 1)` |
| `exp(x)` | `exp(x)` | `g * exp(x)` |
| `total(x, axes)` / `mean(x, axes)` | sum / mean | `g` spread back
 (divided by the count) |
| `max_over(x, axis)` | max over one axis | `g` split evenly among the maxima (`torch.amax`) |
| `linear(x, W, b)` | `x @ W.T + b` over the last axis | `g @ W`, `g.T @ x`, `sum(g)` |
| `matmul(a, b)` | batched `a @ b` | `g @ b.T`, `a.T @ g` |
| `reshape`, `transpose`, `take(x, index)` | views | the inverse view; `g` placed into zeros |
| `concat(xs, axis)` / `split(x, sizes, axis)` | join / cut | cut / join |
| `gather_rows(W, idx)` | `W[idx]` (embedding) | `g` added to the rows taken |
| `shift_time(x)` | `[0, x_0, ..., x_{T-2}]` along axis 1 | `[g_1, ..., g_{T-1}, 0]` |
| `repeat_time(x, T)` | `[B, ...]` -> `[B, T, ...]` | `sum(g, axis=1)` |
| `unstack_time(x)` / `stack_time(xs)` | `[B, T, ...]` <-> T arrays `[B, ...]` | stack / unstack |
| `normalised_adjacency(a)` | `y = D^-1/2 (a + I) D^-1/2` | `g d_i d_j - d_i^2 (sums of g y)_i/2` |
| `propagate(a, h)` | `normalised_adjacency(a) @ h` | `y^T g`; for a, the row above of `g h^T` |

A `back` never writes into `g` or into any forward array: gradients may be shared.
Activations are in activations.py, convolution and pooling in image.py, recurrent
cells and the spike in cells.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .autograd import Var, record, record_many


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `g` down to `shape`: the gradient of NumPy's broadcasting."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


# ---- arithmetic ----------------------------------------------------------------------------
def add(a: Var, b: Var) -> Var:
    def back(g):
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)

    return record(a.value + b.value, (a, b), back)


def sub(a: Var, b: Var) -> Var:
    def back(g):
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape) if b.needs_grad else None

    return record(a.value - b.value, (a, b), back)


def mul(a: Var, b: Var) -> Var:
    def back(g):
        ga = unbroadcast(g * b.value, a.shape) if a.needs_grad else None
        gb = unbroadcast(g * a.value, b.shape) if b.needs_grad else None
        return ga, gb

    return record(a.value * b.value, (a, b), back)


def scale(x: Var, c: float) -> Var:
    c = float(c)  # a Python number keeps the array's dtype

    def back(g):
        return (g * c,)

    return record(x.value * c, (x,), back)


def add_const(x: Var, c: np.ndarray) -> Var:
    """x + c, where c broadcasts to x's shape and takes no gradient."""

    def back(g):
        return (g,)

    return record(x.value + c, (x,), back)


def mul_const(x: Var, c: np.ndarray) -> Var:
    """x * c, where c broadcasts to x's shape and takes no gradient (a mask, noise)."""

    def back(g):
        return (g * c,)

    return record(x.value * c, (x,), back)


def power(x: Var, p: float) -> Var:
    p = float(p)

    def back(g):
        return (g * (p * x.value ** (p - 1.0)),)

    return record(x.value**p, (x,), back)


def exp(x: Var) -> Var:
    y = np.exp(x.value)

    def back(g):
        return (g * y,)

    return record(y, (x,), back)


# ---- reductions ----------------------------------------------------------------------------
def _axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in ((axis,) if isinstance(axis, int) else axis))


def total(x: Var, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Var:
    """Sum over `axis` (every axis when None)."""
    axes = _axes(axis, x.ndim)

    def back(g):
        kept = g if keepdims else np.expand_dims(g, axes)
        return (np.broadcast_to(kept, x.shape),)

    return record(x.value.sum(axis=axes, keepdims=keepdims), (x,), back)


def mean(x: Var, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Var:
    """Mean over `axis` (every axis when None)."""
    axes = _axes(axis, x.ndim)
    count = math.prod(x.shape[a] for a in axes)
    return scale(total(x, axes, keepdims), 1.0 / count)


_SHORT = 8  # an axis this short is reduced slice by slice: NumPy's reduce is slow along it


def _fold(op: np.ufunc, x: np.ndarray, axis: int) -> np.ndarray:
    """op.reduce(x, axis), keeping the axis (length 1); along a short axis, `op` applied to its
    slices in turn (for maxout's few pieces this is a hundred times faster than the reduce)."""
    n = x.shape[axis]
    if n > _SHORT:
        return op.reduce(x, axis=axis, keepdims=True)
    index = [slice(None)] * x.ndim
    index[axis] = slice(0, 1)
    out = np.array(x[tuple(index)])
    for k in range(1, n):
        index[axis] = slice(k, k + 1)
        op(out, x[tuple(index)], out=out)
    return out


def max_over(x: Var, axis: int) -> Var:
    """Max over one axis; at a tie the gradient is split evenly among the maxima,
    as `torch.amax`."""
    axis %= x.ndim
    y = _fold(np.maximum, x.value, axis)

    def back(g):
        # y and g spread along the axis (np.repeat): compared and multiplied by broadcasting,
        # a short last axis (maxout's pieces) would run inner loops of its length
        pieces = x.shape[axis]
        at_max = x.value == np.repeat(y, pieces, axis=axis)
        share = np.repeat(np.expand_dims(g, axis), pieces, axis=axis)
        if np.count_nonzero(at_max) > g.size:  # a tie: the maxima share
            share /= _fold(np.add, at_max.astype(g.dtype), axis)
        return (np.multiply(at_max, share, out=share),)

    return record(np.squeeze(y, axis), (x,), back)


# ---- matrix products -----------------------------------------------------------------------
def _flat_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (..., k) @ b (k, m) -> (..., m). A contiguous a of more than two axes is multiplied as
    one (rows, k) matrix: np.matmul would take its leading axes as a batch, one product each
    (0.70 ms against 0.50 ms for an LSTM's inputs, 32 sequences of 50 steps, 32 to 512)."""
    if a.ndim > 2 and a.flags.c_contiguous:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + (b.shape[-1],))
    return np.matmul(a, b)


def _repeated_axes(a: np.ndarray) -> tuple[int, ...]:
    """The leading axes along which `a` repeats its values (a broadcast view: stride 0), as a
    static input met at every step is (`repeat_time`)."""
    return tuple(i for i in range(a.ndim - 1) if a.strides[i] == 0 and a.shape[i] > 1)


def linear(x: Var, W: Var, b: Var | None = None, W_t: np.ndarray | None = None) -> Var:
    """x: (..., in), W: (out, in), b: (out,) -> (..., out); PyTorch's `F.linear`.

    `W_t`, W's values transposed into C order, is for a caller that multiplies by the same W
    many times (a recurrent weight, every step of a sequence): OpenBLAS can take up to twice as
    long for a small product with a transposed operand (32 x 128 x 128: 24 against 13 us on an
    AMD EPYC host), and the copy costs about 3 us. An x that repeats along some axes (a static
    input met at every step, a broadcast view) is multiplied once and spread: 64 inputs shown
    for 20 steps to 128 units took 286 us as 1,280 rows of a broadcast view, 13 us once."""
    repeated = _repeated_axes(x.value)
    once = x.value  # the distinct rows: along repeated axes, the first of each
    if repeated:
        ones = tuple(slice(0, 1) if i in repeated else slice(None) for i in range(x.ndim))
        once = np.ascontiguousarray(x.value[ones])
    y = _flat_matmul(once, W.value.T if W_t is None else W_t)
    if b is not None:
        y += b.value
    if repeated:  # spread along the repeats, as a fresh array
        y = np.broadcast_to(y, x.shape[:-1] + y.shape[-1:]).copy()

    def back(g):
        rows = g.reshape(-1, g.shape[-1])
        gx = _flat_matmul(g, W.value) if x.needs_grad else None
        gW = None
        if W.needs_grad:  # with repeats, the gradient summed along them first
            summed = g.sum(axis=repeated, keepdims=True) if repeated else g
            gW = summed.reshape(-1, g.shape[-1]).T @ once.reshape(-1, x.shape[-1])
        gb = rows.sum(axis=0) if b is not None and b.needs_grad else None
        return gx, gW, gb

    return record(y, (x, W) if b is None else (x, W, b), back)


def matmul(a: Var, b: Var) -> Var:
    """Batched a @ b: a (..., n, k), b (..., k, m) -> (..., n, m)."""

    def back(g):
        ga = (
            unbroadcast(np.matmul(g, np.swapaxes(b.value, -1, -2)), a.shape)
            if a.needs_grad
            else None
        )
        gb = (
            unbroadcast(np.matmul(np.swapaxes(a.value, -1, -2), g), b.shape)
            if b.needs_grad
            else None
        )
        return ga, gb

    return record(np.matmul(a.value, b.value), (a, b), back)


# ---- shapes ----------------------------------------------------------------------------------
def reshape(x: Var, shape: tuple[int, ...]) -> Var:
    def back(g):
        return (g.reshape(x.shape),)

    return record(x.value.reshape(shape), (x,), back)


def transpose(x: Var, axes: tuple[int, ...]) -> Var:
    inverse = tuple(np.argsort(axes))

    def back(g):
        return (g.transpose(inverse),)

    return record(x.value.transpose(axes), (x,), back)


def take(x: Var, index) -> Var:
    """x[index] for a basic index (ints and slices): a view; the gradient lands in zeros."""

    def back(g):
        gx = np.zeros(x.shape, g.dtype)
        gx[index] = g
        return (gx,)

    return record(x.value[index], (x,), back)


def concat(xs: Sequence[Var], axis: int) -> Var:
    """Join along `axis`; one value passes as it is."""
    if len(xs) == 1:
        return xs[0]
    bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]

    def back(g):
        return tuple(np.split(g, bounds, axis=axis))

    return record(np.concatenate([x.value for x in xs], axis=axis), tuple(xs), back)


def split(x: Var, sizes: Sequence[int], axis: int) -> list[Var]:
    """Cut along `axis` into pieces of `sizes` (views)."""
    bounds = np.cumsum(sizes)[:-1]

    def back(*gs):
        return (np.concatenate(gs, axis=axis),)

    return record_many(np.split(x.value, bounds, axis=axis), (x,), back)


def gather_rows(W: Var, idx: np.ndarray) -> Var:
    """W: (rows, dim), idx: integer array (...) -> (..., dim): an embedding lookup."""

    def back(g):
        gW = np.zeros(W.shape, g.dtype)
        np.add.at(gW, idx.reshape(-1), g.reshape(-1, W.shape[1]))
        return (gW,)

    return record(W.value[idx], (W,), back)


# ---- time (axis 1 of [B, T, ...]) -------------------------------------------------------------
def shift_time(x: Var) -> Var:
    """The value one step later: zeros at the first step, then x[:, :-1] (a `~>` link)."""
    y = np.zeros_like(x.value)
    y[:, 1:] = x.value[:, :-1]

    def back(g):
        gx = np.zeros_like(g)
        gx[:, :-1] = g[:, 1:]
        return (gx,)

    return record(y, (x,), back)


def repeat_time(x: Var, steps: int) -> Var:
    """[B, ...] -> [B, steps, ...]: a static value met at every step (a read-only view)."""
    y = np.broadcast_to(x.value[:, None], (x.shape[0], steps) + x.shape[1:])

    def back(g):
        return (g.sum(axis=1),)

    return record(y, (x,), back)


def unstack_time(x: Var) -> list[Var]:
    """[B, T, ...] -> T values [B, ...] (views), for a loop that steps through time."""

    def back(*gs):
        return (np.stack(gs, axis=1),)

    return record_many([x.value[:, t] for t in range(x.shape[1])], (x,), back)


def stack_time(xs: Sequence[Var]) -> Var:
    """T values [B, ...] -> [B, T, ...]: what a loop leaves behind."""

    def back(g):
        return tuple(g[:, t] for t in range(len(xs)))

    return record(np.stack([x.value for x in xs], axis=1), tuple(xs), back)


# ---- graphs ------------------------------------------------------------------------------------
def normalisation(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a (..., N, N) -> (y, d, outer): y = D^-1/2 (a + I) D^-1/2, d = D^-1/2 (..., N) from the
    row sums of a + I, outer = d_i d_j; what `normalised_adjacency` and `propagate` compute
    forward, and their gradients read."""
    looped = a + np.eye(a.shape[-1], dtype=a.dtype)
    d = looped.sum(axis=-1) ** -0.5
    outer = d[..., :, None] * d[..., None, :]
    return looped * outer, d, outer


def _normalisation_back(g: np.ndarray, made: tuple[np.ndarray, np.ndarray, np.ndarray]):
    """The gradient of `normalisation`'s y for its gradient g: with M = g * y,
    g d_i d_j - d_i^2 (rowsum(M)_i + colsum(M)_i) / 2, every j of row i alike."""
    y, d, outer = made
    m = g * y
    q = (m.sum(axis=-1) + m.sum(axis=-2)) * (-0.5 * d * d)
    return g * outer + q[..., :, None]


def normalised_adjacency(a: Var) -> Var:
    """a (..., N, N) -> D^-1/2 (a + I) D^-1/2, D the row sums of a + I (Kipf and Welling's
    propagation matrix), as one node (`normalisation`, `_normalisation_back`).
    `normalised_adjacency_composed` is the same from `add_const`, `total`, `power`, `mul`, the
    reference it is tested against (tests/test_numpy_fused.py)."""
    made = normalisation(a.value)

    def back(g):
        return (_normalisation_back(g, made),)

    return record(made[0], (a,), back)


def propagate(a: Var, h: Var, made: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Var:
    """a (..., N, N), h (..., N, F) -> normalised_adjacency(a) @ h as one node; `made` is
    `normalisation(a.value)` when the caller has it already (gcn layers reading one adjacency
    share it). back: `y^T g` for h, and for a (only when it needs one at backward time: an
    input whose gradient is not asked for costs nothing) `_normalisation_back(g h^T)`; tested
    against `matmul(normalised_adjacency_composed(a), h)` (tests/test_numpy_fast_conv.py)."""
    made = made or normalisation(a.value)
    y = made[0]

    def back(g):
        gh = unbroadcast(np.matmul(np.swapaxes(y, -1, -2), g), h.shape) if h.needs_grad else None
        ga = None
        if a.needs_grad:
            ga = unbroadcast(
                _normalisation_back(np.matmul(g, np.swapaxes(h.value, -1, -2)), made), a.shape
            )
        return ga, gh

    return record(np.matmul(y, h.value), (a, h), back)


def normalised_adjacency_composed(a: Var) -> Var:
    """`normalised_adjacency` composed from primitives: the reference for its gradient."""
    nodes = a.shape[-1]
    looped = add_const(a, np.eye(nodes, dtype=a.value.dtype))
    inv_sqrt = power(total(looped, -1), -0.5)  # (..., N): D^-1/2
    rows = reshape(inv_sqrt, inv_sqrt.shape + (1,))
    cols = reshape(inv_sqrt, inv_sqrt.shape[:-1] + (1, nodes))
    return mul(mul(rows, looped), cols)
