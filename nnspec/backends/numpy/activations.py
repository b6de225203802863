"""Activations: one row per activation, its forward and its derivative side by side.

Each derivative is written from `x` (what entered), `y` (what left) and `a` (alpha), and
multiplies the incoming gradient `g`. `step` has none: nothing flows back through it.
`softmax` runs over the feature axis and has its own vector-Jacobian product.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...kinds.activation import Activation
from .autograd import Var, record

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)), into `out` if given; exp(-x) overflows to inf for very negative x,
    giving exactly 0."""
    out = np.negative(x, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def _phi_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x), the standard normal CDF, to float64 precision."""
    return 0.5 * (1.0 + erf(x * _SQRT_HALF))


# selu's constants, as PyTorch writes them (Klambauer et al. 2017)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _silu_derivative(x: np.ndarray) -> np.ndarray:
    """d/dx x sigmoid(x) = s (1 + x (1 - s)), s = sigmoid(x)."""
    s = sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _mish_derivative(x: np.ndarray) -> np.ndarray:
    """d/dx x tanh(softplus(x)) = t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x))."""
    t = np.tanh(np.logaddexp(0.0, x)).astype(x.dtype, copy=False)
    return t + x * (1.0 - t * t) * sigmoid(x)


# name: (forward(x, a) -> y, derivative(g, x, y, a) -> dL/dx, or None: no gradient)
Forward = Callable[[np.ndarray, float], np.ndarray]
Derivative = Callable[[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray] | None
TABLE: dict[str, tuple[Forward, Derivative]] = {
    "identity": (lambda x, a: x, lambda g, x, y, a: g),
    "linear": (lambda x, a: x, lambda g, x, y, a: g),
    "step": (lambda x, a: (x > 0).astype(x.dtype), None),
    "sigmoid": (lambda x, a: sigmoid(x), lambda g, x, y, a: g * (y * (1.0 - y))),
    "tanh": (lambda x, a: np.tanh(x), lambda g, x, y, a: g * (1.0 - y * y)),
    "relu": (lambda x, a: np.maximum(x, 0.0), lambda g, x, y, a: g * (x > 0)),
    "leaky_relu": (
        lambda x, a: np.where(x > 0, x, a * x),
        lambda g, x, y, a: g * np.where(x > 0, 1.0, a).astype(x.dtype),
    ),
    "elu": (
        lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0))),
        lambda g, x, y, a: g * np.where(x > 0, 1.0, y + a).astype(x.dtype),
    ),
    "gelu": (
        lambda x, a: x * _phi_cdf(x),
        lambda g, x, y, a: g * (_phi_cdf(x) + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)),
    ),
    "softplus": (
        lambda x, a: np.logaddexp(0.0, x).astype(x.dtype, copy=False),
        lambda g, x, y, a: g * sigmoid(x),
    ),
    "silu": (
        lambda x, a: x * sigmoid(x),
        lambda g, x, y, a: g * _silu_derivative(x),
    ),
    "mish": (
        lambda x, a: x * np.tanh(np.logaddexp(0.0, x)).astype(x.dtype, copy=False),
        lambda g, x, y, a: g * _mish_derivative(x),
    ),
    # PyTorch's gradient is 0 at the ends too: 1 only strictly inside (-1, 1)
    "hardtanh": (
        lambda x, a: np.clip(x, -1.0, 1.0),
        lambda g, x, y, a: g * ((x > -1.0) & (x < 1.0)),
    ),
    "selu": (
        lambda x, a: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
        lambda g, x, y, a: g * np.where(x > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA),
    ),
}


def activate(x: Var, act: Activation, feature_axis: int = -1) -> Var:
    """act(x); softmax runs over `feature_axis` (-1 for vectors, -3 for images)."""
    if act.name in ("identity", "linear"):
        return x
    if act.name == "softmax":
        return softmax(x, feature_axis)
    forward, derivative = TABLE[act.name]
    alpha = 0.0 if act.alpha is None else float(act.alpha)
    y = forward(x.value, alpha)
    if derivative is None:
        return Var(y)  # `step`: nothing flows back

    def back(g):
        return (derivative(g, x.value, y, alpha),)

    return record(y, (x,), back)


def softmax(x: Var, axis: int) -> Var:
    """exp(x) / sum(exp(x)) over `axis`; vjp y * (g - sum(g * y))."""
    e = np.exp(x.value - x.value.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)

    def back(g):
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)

    return record(y, (x,), back)


# ---- erf, vectorised (NumPy has none; gelu needs it exact) -------------------------------------
# erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)):
# 40 terms reach float64 precision for |x| <= 2
_TAYLOR = np.array(
    [2.0 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(40)]
)
# Below _CUT the series (its cancellation grows past it), above it the continued fraction (slow to
# converge below it).
_CUT = 2.0
_FRACTION_DEPTH = 50  # terms of erfc's continued fraction: 2e-16 from |x| = 2 up


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, to about 1e-16:
    a series near 0, erfc's continued fraction beyond."""
    z = np.abs(np.asarray(x, dtype=np.float64))
    near = np.minimum(z, _CUT)
    near2 = near * near
    series = np.full_like(z, _TAYLOR[-1])
    for c in _TAYLOR[-2::-1]:  # Horner in x^2
        series = series * near2 + c
    series *= near
    far = np.maximum(z, _CUT)
    fraction = far.copy()
    # erfc(z) = exp(-z^2)/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...))))
    for k in range(_FRACTION_DEPTH, 0, -1):
        fraction = far + (0.5 * k) / fraction
    tail = 1.0 - np.exp(-far * far) / (math.sqrt(math.pi) * fraction)
    result = np.where(z <= _CUT, series, tail)
    return (np.sign(x) * result).astype(np.result_type(x, np.float32), copy=False)
