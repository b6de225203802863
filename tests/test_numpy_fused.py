"""Fused NumPy kernels against the primitives they replace: values and gradients equal to 1e-10
in float64 (the composed or step-by-step versions are the references): gru_sequence against
gru_step in a loop, lstm_sequence against ops.linear and lstm_cell in a loop."""

from __future__ import annotations

import numpy as np
import pytest

from nnspec.backends.numpy import cells, ops
from nnspec.backends.numpy.autograd import Var, add_grad, backward


def _leaves(rng, shapes):
    return [Var(rng.standard_normal(s), needs_grad=True) for s in shapes]


def _gradients(out: Var, leaves, g: np.ndarray):
    for leaf in leaves:
        leaf.grad = None
    add_grad(out, g)
    backward([out])
    return [leaf.grad for leaf in leaves]


def _composed_gru(xg, W_hh, b_hh, h0):
    outputs, h = [], h0
    for xt in ops.unstack_time(xg):
        h = cells.gru_step(xt, h, W_hh, b_hh)
        outputs.append(h)
    return ops.stack_time(outputs)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("state", [True, False])
def test_gru_sequence_is_the_composed_gru(bias, state):
    rng = np.random.default_rng(3)
    batch, steps, units = 4, 7, 5
    xg, W_hh = _leaves(rng, [(batch, steps, 3 * units), (3 * units, units)])
    b_hh = _leaves(rng, [(3 * units,)])[0] if bias else None
    h0 = _leaves(rng, [(batch, units)])[0] if state else None
    leaves = [v for v in (xg, W_hh, b_hh, h0) if v is not None]
    g = rng.standard_normal((batch, steps, units))
    fused = cells.gru_sequence(xg, W_hh, b_hh, h0)
    want = _composed_gru(xg, W_hh, b_hh, h0)
    np.testing.assert_allclose(fused.value, want.value, rtol=0, atol=1e-10)
    got_grads = _gradients(fused, leaves, g)
    want_grads = _gradients(want, leaves, g)
    for got, ref in zip(got_grads, want_grads, strict=True):
        assert got is not None
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


def _looped_lstm(x, W_ih, b_ih, W_hh, b_hh, h0):
    """`nn.LSTM`'s layer composed: the input side by `ops.linear`, then `lstm_cell` a step at a
    time."""
    state = None if h0 is None else (h0, Var(np.zeros(h0.shape)))
    outputs = []
    for xt in ops.unstack_time(ops.linear(x, W_ih, b_ih)):
        state = cells.lstm_cell(xt, state, W_hh, b_hh)
        outputs.append(state[0])
    return ops.stack_time(outputs)


@pytest.mark.parametrize("bias", ["both", "input", "none"])
@pytest.mark.parametrize("state", [True, False])
@pytest.mark.parametrize("layout", ["batch-major", "time-major"])
def test_lstm_sequence_is_lstm_cell_stepped(bias, state, layout):
    """Values and the gradients of the input, both weights, the biases and the state; the input
    in either memory layout (a stacked LSTM reads the one below time-major)."""
    rng = np.random.default_rng(4)
    batch, steps, features, units = 3, 6, 4, 5
    value = rng.standard_normal((batch, steps, features))
    if layout == "time-major":
        value = np.ascontiguousarray(value.transpose(1, 0, 2)).transpose(1, 0, 2)
    x = Var(value, needs_grad=True)
    W_ih, W_hh = _leaves(rng, [(4 * units, features), (4 * units, units)])
    b_ih = _leaves(rng, [(4 * units,)])[0] if bias != "none" else None
    b_hh = _leaves(rng, [(4 * units,)])[0] if bias == "both" else None
    h0 = _leaves(rng, [(batch, units)])[0] if state else None
    leaves = [v for v in (x, W_ih, b_ih, W_hh, b_hh, h0) if v is not None]
    g = rng.standard_normal((batch, steps, units))
    fused = cells.lstm_sequence(x, W_ih, b_ih, W_hh, b_hh, h0)
    want = _looped_lstm(x, W_ih, b_ih, W_hh, b_hh, h0)
    np.testing.assert_allclose(fused.value, want.value, rtol=0, atol=1e-10)
    got_grads = _gradients(fused, leaves, g)
    want_grads = _gradients(want, leaves, g)
    for got, ref in zip(got_grads, want_grads, strict=True):
        assert got is not None
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


def test_normalised_adjacency_is_the_composed_one():
    rng = np.random.default_rng(5)
    upper = np.triu(rng.random((3, 6, 6)) < 0.4, 1)
    weights = rng.random((3, 6, 6)) + 0.1  # a weighted graph, so every entry's gradient counts
    a = Var((upper | upper.transpose(0, 2, 1)) * weights, needs_grad=True)
    g = rng.standard_normal((3, 6, 6))
    fused = ops.normalised_adjacency(a)
    want = ops.normalised_adjacency_composed(a)
    np.testing.assert_allclose(fused.value, want.value, rtol=0, atol=1e-10)
    (got,) = _gradients(fused, [a], g)
    (ref,) = _gradients(want, [a], g)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("pieces", [3, 12])  # folded slice by slice, and NumPy's reduce
def test_max_over_splits_the_gradient_at_ties(pieces):
    rng = np.random.default_rng(6)
    value = rng.standard_normal((4, 5, pieces))
    value[0, 0, :2] = 9.0  # a tie of two
    value[1, 2, :] = -1.0  # every piece equal
    x = Var(value, needs_grad=True)
    y = ops.max_over(x, -1)
    np.testing.assert_array_equal(y.value, value.max(axis=-1))
    g = rng.standard_normal((4, 5))
    (got,) = _gradients(y, [x], g)
    at_max = value == value.max(axis=-1, keepdims=True)
    want = at_max * (g / at_max.sum(axis=-1))[..., None]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got[0, 0, 0] == got[0, 0, 1] == g[0, 0] / 2
