"""Recurrent and spiking cells, one step at a time: lstm, gru, rnn, lif.

`rnn`, `gru` and `lif` are composed from primitives (ops.py, activations.py), so backprop
through time falls out of the recorded steps; over a whole sequence `gru` runs `gru_sequence`,
one node with a hand-written backward, tested against the composed `gru_step`. `lstm` is one
primitive with a hand-written backward (`_lstm_step` and `_lstm_step_back`, side by side): it
is the kind whose speed is measured against `nn.LSTM`, and fusing a step into one node saves a
dozen recorded operations per step. `lstm_sequence` runs it over a whole sequence, its input
side included (one node, BPTT in one backward loop, the input's and weights' gradients as
batched matmuls after it); `lstm_cell` is one step inside a `~>` loop. The `spike` primitive
carries the surrogate gradient of `lif`.

Every cell starts from a zero state, or from the vector its `state` port gives; `None` stands
for zeros, so the first step skips the recurrent matmul.
"""

from __future__ import annotations

import numpy as np

from ...kinds.activation import Activation
from . import ops
from .activations import activate, sigmoid
from .autograd import Var, record, record_many
from .scratch import scratch as _scratch

SIGMOID, TANH = Activation(name="sigmoid"), Activation(name="tanh")


# ---- spike: the surrogate gradient of lif ------------------------------------------------------
def spike(v: Var, threshold: float) -> Var:
    """s = 1 where v >= threshold, else 0; ds/dv is the surrogate 1 / (1 + 10 |v - threshold|)^2."""
    s = (v.value >= threshold).astype(v.value.dtype)

    def back(g):
        return (g / (1.0 + 10.0 * np.abs(v.value - threshold)) ** 2,)

    return record(s, (v,), back)


def lif_step(xg: Var, v_prev: Var | None, decay: float, threshold: float) -> tuple[Var, Var]:
    """xg: (B, U) = x W^T + b -> spikes s (B, U) and the membrane after reset;
    the reset passes no gradient."""
    v = xg if v_prev is None else ops.add(ops.scale(v_prev, decay), xg)
    s = spike(v, threshold)
    return s, ops.add_const(v, s.value * -threshold)


# ---- rnn and gru, composed -------------------------------------------------------------------
def rnn_step(
    xg: Var,
    h: Var | None,
    W_hh: Var,
    b_hh: Var | None,
    act: Activation,
    W_hh_t: np.ndarray | None = None,
) -> Var:
    """xg: (B, H) = x W_ih^T + b_ih -> h_t = act(xg + h W_hh^T + b_hh); `W_hh_t`: W_hh's values
    transposed into C order, made once for a whole sequence (`ops.linear`'s `W_t`)."""
    if h is not None:
        pre = ops.add(xg, ops.linear(h, W_hh, b_hh, W_hh_t))
    else:  # h W_hh^T is zero: only the bias is left
        pre = xg if b_hh is None else ops.add(xg, b_hh)
    return activate(pre, act)


def gru_step(xg: Var, h: Var | None, W_hh: Var, b_hh: Var | None) -> Var:
    """xg: (B, 3H) = x W_ih^T + b_ih, gates r, z, n as PyTorch's GRUCell -> h_t (B, H)."""
    units = W_hh.shape[1]
    xr, xz, xn = ops.split(xg, (units, units, units), axis=-1)
    if h is None:  # h W_hh^T is zero: only the bias is left
        if b_hh is None:
            hr = hz = hn = None
        else:
            hr, hz, hn = ops.split(b_hh, (units, units, units), axis=-1)
    else:
        hr, hz, hn = ops.split(ops.linear(h, W_hh, b_hh), (units, units, units), axis=-1)
    r = activate(xr if hr is None else ops.add(xr, hr), SIGMOID)
    z = activate(xz if hz is None else ops.add(xz, hz), SIGMOID)
    n = activate(xn if hn is None else ops.add(xn, ops.mul(r, hn)), TANH)
    if h is None:  # (1 - z) n + z * 0
        return ops.sub(n, ops.mul(z, n))
    return ops.add(n, ops.mul(z, ops.sub(h, n)))


# ---- gru, fused -------------------------------------------------------------------------------
def gru_sequence(xg: Var, W_hh: Var, b_hh: Var | None, h0: Var | None = None) -> Var:
    """xg (B, T, 3H) = x W_ih^T + b_ih, W_hh (3H, H), b_hh (3H,) -> h (B, T, H), from h0 (B, H)
    (zeros without it): `gru_step` over every step as one node, with a backward of its own.

    `gru_step` stays the reference it is tested against (tests/test_numpy_fused.py). Time runs
    along the first axis inside; h[t] is the state before step t. The backward takes every
    elementwise slope of every step at once, so its loop keeps only the recurrence (one
    multiply and one matmul per step), and the weight gradient is one matmul.
    """
    batch, steps, width = xg.shape
    units = width // 3
    dtype = xg.value.dtype
    a = np.array(xg.value.transpose(1, 0, 2), order="C")  # (T, B, 3H), written into below
    b_n = None
    if b_hh is not None:  # b_r and b_z add outright; b_n sits inside r * (h W_n^T + b_n)
        a[..., : 2 * units] += b_hh.value[: 2 * units]
        b_n = b_hh.value[2 * units :]
    recurrent = np.ascontiguousarray(W_hh.value.T)  # (H, 3H)
    h = np.zeros((steps + 1, batch, units), dtype)
    if h0 is not None:
        h[0] = h0.value
    rz = np.empty((steps, batch, 2 * units), dtype)  # sigma(r), sigma(z)
    n = np.empty((steps, batch, units), dtype)
    hn = np.zeros((steps, batch, units), dtype)  # h W_n^T + b_n, what r multiplies
    hg = np.empty((batch, width), dtype)
    for t in range(steps):
        if t or h0 is not None:
            np.matmul(h[t], recurrent, out=hg)
            a[t, :, : 2 * units] += hg[:, : 2 * units]
            np.copyto(hn[t], hg[:, 2 * units :])
        if b_n is not None:
            hn[t] += b_n
        sigmoid(a[t, :, : 2 * units], out=rz[t])
        r, z = rz[t, :, :units], rz[t, :, units:]
        np.multiply(r, hn[t], out=n[t])
        n[t] += a[t, :, 2 * units :]
        np.tanh(n[t], out=n[t])
        np.subtract(h[t], n[t], out=h[t + 1])  # h_t = n + z (h_prev - n)
        h[t + 1] *= z
        h[t + 1] += n[t]

    def back(g):
        r, z = rz[..., :units], rz[..., units:]
        # dL/dh times these gives dL/d(h W^T + b) for r, z, n (slopes (T, B, 3, H))
        slopes = np.empty((steps, batch, 3, units), dtype)
        dn = (1.0 - z) * (1.0 - n * n)  # dh -> the pre-activation of n
        np.multiply(dn * hn, r * (1.0 - r), out=slopes[:, :, 0])
        np.multiply(h[:-1] - n, z * (1.0 - z), out=slopes[:, :, 1])
        np.multiply(dn, r, out=slopes[:, :, 2])
        gt = g.transpose(1, 0, 2)
        dhg = np.empty((steps, batch, 3, units), dtype)
        dh_all = np.empty((steps, batch, units), dtype)
        carried = None
        for t in range(steps - 1, -1, -1):
            dh = dh_all[t]
            if carried is None:
                np.copyto(dh, gt[t])
            else:
                np.add(gt[t], carried, out=dh)
            np.multiply(slopes[t], dh[:, None, :], out=dhg[t])
            if t or h0 is not None:
                carried = dh * z[t]
                carried += dhg[t].reshape(batch, width) @ W_hh.value
        dxg = dhg.copy()
        np.multiply(dh_all, dn, out=dxg[:, :, 2])  # x's n part is outside r *
        dhg = dhg.reshape(steps, batch, width)
        first = 0 if h0 is not None else 1  # from zeros, the first step has no h @ W^T
        gW = (
            dhg[first:].reshape(-1, width).T @ h[first:steps].reshape(-1, units)
            if W_hh.needs_grad
            else None
        )
        gb = dhg.reshape(-1, width).sum(axis=0) if b_hh is not None and b_hh.needs_grad else None
        grads = [dxg.reshape(steps, batch, width).transpose(1, 0, 2), gW]
        grads += [] if b_hh is None else [gb]
        return grads + ([] if h0 is None else [carried])

    parents = (xg, W_hh) + (() if b_hh is None else (b_hh,)) + (() if h0 is None else (h0,))
    return record(h[1:].transpose(1, 0, 2), parents, back)


# ---- lstm, fused ----------------------------------------------------------------------------
def _gates(a: np.ndarray) -> tuple[np.ndarray, ...]:
    """(..., 4H) -> the four (..., H) views, in PyTorch's order i, f, g, o."""
    units = a.shape[-1] // 4
    return tuple(a[..., k * units : (k + 1) * units] for k in range(4))


def _lstm_step(
    z: np.ndarray,
    c_prev: np.ndarray,
    acts: np.ndarray,
    c: np.ndarray,
    tc: np.ndarray,
    h: np.ndarray,
) -> None:
    """z: (B, 4H) pre-activations -> acts [σ(i), σ(f), tanh(g), σ(o)], c = σf c_prev + σi tanh g,
    tanh(c), h (written into)."""
    sigmoid(z, out=acts)
    i, f, g, o = _gates(acts)
    np.tanh(_gates(z)[2], out=g)
    np.multiply(i, g, out=c)
    c += f * c_prev
    np.tanh(c, out=tc)
    np.multiply(o, tc, out=h)


def _lstm_slopes(
    acts: np.ndarray, c_prev: np.ndarray, tc: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The local derivatives of `_lstm_step`, for any leading axes (`lstm_cell`'s one step).

    Returns (ifg (..., 3, H): what dL/dc multiplies to give dL/dz for i, f, g;
    o (..., H): what dL/dh multiplies for o; h_to_c (..., H): dc/dh through tanh(c)).
    """
    i, f, g, o = _gates(acts)
    ifg = np.empty(acts.shape[:-1] + (3, tc.shape[-1]), acts.dtype)
    np.multiply(g, i * (1.0 - i), out=ifg[..., 0, :])  # dc/di = g, times σ'
    np.multiply(c_prev, f * (1.0 - f), out=ifg[..., 1, :])  # dc/df = c_prev
    np.multiply(i, 1.0 - g * g, out=ifg[..., 2, :])  # dc/dg = i, times tanh'
    return ifg, tc * (o * (1.0 - o)), o * (1.0 - tc * tc)


def _lstm_step_back(
    dh: np.ndarray, dc: np.ndarray | None, slopes: tuple, f: np.ndarray, dz: np.ndarray
) -> np.ndarray:
    """The reverse of `_lstm_step`: dL/dh, dL/dc (None: 0) -> dL/dz written into dz (B, 4, H);
    returns dL/dc_prev."""
    ifg, o, h_to_c = slopes
    dc_total = dh * h_to_c
    if dc is not None:
        dc_total += dc
    np.multiply(ifg, dc_total[:, None, :], out=dz[:, :3])
    np.multiply(dh, o, out=dz[:, 3])
    return dc_total * f


def lstm_cell(
    xg: Var, state: tuple[Var, Var] | None, W_hh: Var, b_hh: Var | None
) -> tuple[Var, Var]:
    """One step inside a loop: xg (B, 4H) = x_t W_ih^T + b_ih,
    state (h, c) or None (zeros) -> (h, c)."""
    batch, width = xg.shape
    units = width // 4
    z = xg.value + (0.0 if b_hh is None else b_hh.value)
    if state is not None:
        z += state[0].value @ W_hh.value.T
    c_prev = np.zeros((batch, units), z.dtype) if state is None else state[1].value
    acts, c, tc, h = (
        np.empty_like(z),
        np.empty_like(c_prev),
        np.empty_like(c_prev),
        np.empty_like(c_prev),
    )
    _lstm_step(z, c_prev, acts, c, tc, h)
    parents = [xg, W_hh] + ([] if b_hh is None else [b_hh]) + ([] if state is None else list(state))

    def back(gh, gc):
        dz = np.empty((batch, 4, units), z.dtype)
        dc_prev = _lstm_step_back(gh, gc, _lstm_slopes(acts, c_prev, tc), _gates(acts)[1], dz)
        dz = dz.reshape(batch, width)
        grads = [dz, dz.T @ state[0].value if state is not None and W_hh.needs_grad else None]
        grads += [] if b_hh is None else [dz.sum(axis=0)]
        grads += [] if state is None else [dz @ W_hh.value, dc_prev]
        return grads

    return tuple(record_many((h, c), tuple(parents), back))


# lstm_sequence keeps the gates gate-major, in this order: o, i, f (the sigmoids, one slice),
# then g, and c_prev after them, so that [i, f] * [g, c_prev] is one product and [i, f, g]
# (what dL/dc reaches) one slice
_ORDER = (3, 0, 1, 2)  # the PyTorch gate (i, f, g, o) in each slot
_HALVED = np.array([0.5, 0.5, 0.5, 1.0])[:, None, None]  # sigma(x) = (1 + tanh(x / 2)) / 2


def _slots(W: np.ndarray) -> np.ndarray:
    """A (4H, ...) weight or bias in PyTorch's gate order as (4, H, ...) in `_ORDER` (a copy)."""
    return W.reshape(4, W.shape[0] // 4, *W.shape[1:])[list(_ORDER)]


def _unslot(g: np.ndarray) -> np.ndarray:
    """The reverse of `_slots`: (4, H, ...) in `_ORDER` -> (4H, ...) in PyTorch's order."""
    out = np.empty_like(g)
    out[list(_ORDER)] = g
    return out.reshape(-1, *g.shape[2:])


def lstm_sequence(
    x: Var,
    W_ih: Var,
    b_ih: Var | None,
    W_hh: Var,
    b_hh: Var | None,
    h0: Var | None = None,
) -> Var:
    """x (B, T, F), W_ih (4H, F), b_ih (4H,), W_hh (4H, H), b_hh (4H,) -> h (B, T, H), from h0
    (B, H) (a `state` port; zeros without it) and a zero cell: `nn.LSTM`'s layer, the input side
    included.

    `lstm_cell` (the step-level `_lstm_step`, `_lstm_step_back`) after `ops.linear` is the
    reference it is tested against (tests/test_numpy_fused.py). Inside, time runs along the
    second axis of the gates (5, T + 1, B, H), gate-major in `_ORDER`: the input side is one
    batched matmul of the time-major inputs (a column of ones for both biases) by four (F, H)
    blocks straight into that layout, the recurrent product per step one batched matmul of
    four (H, H) blocks, and every elementwise call runs over whole (B, H) blocks (a gate's slice
    of a (B, 4H) row block is strided, and costs NumPy about twice as much). The four gates take
    one tanh (sigma(x) = (1 + tanh(x / 2)) / 2, the halves folded into the weights). The
    backward takes every step's slopes at once, so its loop keeps one batched matmul, one sum
    and five elementwise calls per step; the input's gradient and the weights' are batched
    matmuls over the whole sequence after it. Its work arrays come from `scratch.scratch`, kept
    between calls. h comes out time-major in memory, so a stacked LSTM reads its input without a
    copy.
    """
    batch, steps, features = x.shape
    units = W_hh.shape[1]
    dtype = x.value.dtype
    biases = [b for b in (b_ih, b_hh) if b is not None]
    ones = bool(biases)
    # the inputs time-major, (T * B, F [+ 1]): a column of ones for the biases
    rows = _scratch((steps, batch, features + ones), dtype)
    np.copyto(rows[..., :features], x.value.transpose(1, 0, 2))
    if ones:
        rows[..., features] = 1.0
    rows = rows.reshape(steps * batch, -1)
    input_blocks = _slots(W_ih.value)  # (4, H, F)
    if ones:
        bias = sum(b.value for b in biases)
        input_blocks = np.concatenate([input_blocks, _slots(bias)[:, :, None]], axis=2)
    input_blocks = (input_blocks.transpose(0, 2, 1) * _HALVED).astype(dtype, order="C")
    # per step: o, i, f, g (pre-activations, then activations in place), c_prev
    gates = np.empty((5, steps + 1, batch, units), dtype)
    gates[4, 0] = 0.0
    np.matmul(rows, input_blocks, out=gates[:4, :steps].reshape(4, steps * batch, units))
    blocks = _slots(W_hh.value)  # (4, H out, H in), for backward
    forward_blocks = (blocks.transpose(0, 2, 1) * _HALVED).astype(dtype, order="C")
    h = np.zeros((steps + 1, batch, units), dtype)
    if h0 is not None:
        h[0] = h0.value
    tc = np.empty((steps, batch, units), dtype)
    hw = np.empty((4, batch, units), dtype)
    products = np.empty((2, batch, units), dtype)
    for t in range(steps):
        a = gates[:, t]
        if t or h0 is not None:
            np.matmul(h[t], forward_blocks, out=hw)
            a[:4] += hw
        np.tanh(a[:4], out=a[:4])
        a[:3] *= 0.5
        a[:3] += 0.5
        np.multiply(a[1:3], a[3:5], out=products)  # i g, f c_prev
        np.add(products[0], products[1], out=gates[4, t + 1])
        np.tanh(gates[4, t + 1], out=tc[t])
        np.multiply(a[0], tc[t], out=h[t + 1])

    def back(gr):
        a = gates[:, :steps]
        # dL/dz = slope * [dh, dc, dc, dc]; each step's dz is written over its slope
        dz = _scratch((4, steps, batch, units), dtype)
        np.subtract(1.0, a[:3], out=dz[:3])
        dz[:3] *= a[:3]  # sigma (1 - sigma)
        np.multiply(a[3], a[3], out=dz[3])
        np.subtract(1.0, dz[3], out=dz[3])  # 1 - tanh^2
        dz[0] *= tc  # o by tanh(c)
        dz[1:3] *= a[3:5]  # i by g, f by c_prev
        dz[3] *= a[1]  # g by i
        h_to_c = np.multiply(h[1:], tc, out=_scratch(tc.shape, dtype))
        np.subtract(a[0], h_to_c, out=h_to_c)  # o (1 - tanh(c)^2)
        # what reaches h_t: each gate's back-product (slots 0 to 3) and the output's gradient
        into_h = _scratch((steps, 5, batch, units), dtype)
        np.copyto(into_h[:, 4], gr.transpose(1, 0, 2))
        dh_sum, dc, carried = np.empty((3, batch, units), dtype)
        for t in range(steps - 1, -1, -1):
            if t == steps - 1:
                dh = into_h[t, 4]
            else:
                np.matmul(dz[:, t + 1], blocks, out=into_h[t, :4])
                dh = np.add.reduce(into_h[t], axis=0, out=dh_sum)
            np.multiply(dh, h_to_c[t], out=dc)
            if t < steps - 1:
                dc += carried
            np.multiply(dz[1:, t], dc, out=dz[1:, t])
            np.multiply(dz[0, t], dh, out=dz[0, t])
            if t:
                np.multiply(dc, a[2, t], out=carried)
        flat = dz.reshape(4, steps * batch, units)
        gx = gW_ih = gW_hh = gb = None
        if x.needs_grad:  # (T, B, F) summed over the gates, handed back as (B, T, F)
            gx = np.matmul(flat, _slots(W_ih.value)).sum(axis=0)
            gx = gx.reshape(steps, batch, features).transpose(1, 0, 2)
        if W_ih.needs_grad or any(b.needs_grad for b in biases):  # the biases' in the last column
            both = np.matmul(flat.transpose(0, 2, 1), rows)  # (4, H, F [+ 1])
            gW_ih = _unslot(both[:, :, :features])
            gb = _unslot(both[:, :, features]) if ones else None
        if W_hh.needs_grad:  # without h0, h[0] is zeros: the first step's rows add nothing
            first = 0 if h0 is not None else 1
            late = dz[:, first:].reshape(4, -1, units)
            gW_hh = _unslot(np.matmul(late.transpose(0, 2, 1), h[first:steps].reshape(-1, units)))
        grads = [gx, gW_ih if W_ih.needs_grad else None]
        grads += [] if b_ih is None else [gb if b_ih.needs_grad else None]
        grads += [gW_hh]
        grads += [] if b_hh is None else [gb if b_hh.needs_grad else None]
        return grads + ([] if h0 is None else [np.matmul(dz[:, 0], blocks).sum(axis=0)])

    parents = tuple(v for v in (x, W_ih, b_ih, W_hh, b_hh, h0) if v is not None)
    return record(h[1:].transpose(1, 0, 2), parents, back)
