"""Networks with an external memory in NumPy: the primitives of the ntm's addressing, reading and
writing, each forward beside its gradient, and the ntm's step composed from them
(`ntm_step_composed`, the reference); `ntm_step`, what the backend runs, fuses the heads' whole
step into one primitive (`heads`) with its backward written out, about twice as fast.

Shapes: memory M (B, N, W) (N slots of width W); one weighting per head, w (B, H, N); a head's
key (B, H, W). The formulas are in nnspec/kinds/memory.py; the controller is cells.lstm_cell.
"""

from __future__ import annotations

import numpy as np

from ...kinds.activation import Activation
from ...kinds.memory import COSINE_EPS, MEMORY_START, SHIFTS
from . import ops
from .activations import activate, sigmoid, softmax
from .autograd import Var, const, record, record_many
from .cells import lstm_cell

SIGMOID, SOFTPLUS = Activation(name="sigmoid"), Activation(name="softplus")


# ---- addressing -------------------------------------------------------------------------------
def cosine(memory: Var, key: Var) -> Var:
    """K[b, h, i] = k.M_i / (|k| |M_i| + eps): each head's key against every slot, (B, H, N)."""
    M, k = memory.value, key.value
    dot = k @ M.transpose(0, 2, 1)  # (B, H, N)
    nk = np.sqrt((k * k).sum(-1))  # (B, H)
    nm = np.sqrt((M * M).sum(-1))  # (B, N)
    den = nk[:, :, None] * nm[:, None, :] + COSINE_EPS
    out = dot / den

    def back(g):
        g_dot = g / den
        g_den = -g * out / den
        g_nk = (g_den * nm[:, None, :]).sum(-1)  # (B, H)
        g_nm = (g_den * nk[:, :, None]).sum(1)  # (B, N)
        gk = g_dot @ M + np.divide(g_nk, nk, out=np.zeros_like(nk), where=nk > 0)[..., None] * k
        gM = g_dot.transpose(0, 2, 1) @ k
        gM += np.divide(g_nm, nm, out=np.zeros_like(nm), where=nm > 0)[..., None] * M
        return gM, gk

    return record(out, (memory, key), back)


def shift(w: Var, s: Var) -> Var:
    """Circular shift: out[i] = s_-1 w[i + 1] + s_0 w[i] + s_+1 w[i - 1] (indices mod N);
    w (B, H, N), s (B, H, 3)."""
    ahead, behind = np.roll(w.value, -1, -1), np.roll(w.value, 1, -1)  # w[i + 1], w[i - 1]
    sv = s.value
    out = sv[..., :1] * ahead + sv[..., 1:2] * w.value + sv[..., 2:] * behind

    def back(g):
        gw = sv[..., :1] * np.roll(g, 1, -1) + sv[..., 1:2] * g + sv[..., 2:] * np.roll(g, -1, -1)
        gs = np.stack([(g * ahead).sum(-1), (g * w.value).sum(-1), (g * behind).sum(-1)], -1)
        return gw, gs

    return record(out, (w, s), back)


def sharpen(w: Var, gamma: Var) -> Var:
    """w^gamma / sum(w^gamma) over the slots; w (B, H, N) >= 0, gamma (B, H, 1) >= 1. The
    powers are taken of w over its largest value (the same result, and their sum at least 1: none
    underflows to all zeros in float32). A zero weight stays zero and passes no gradient to gamma
    (log 0 never taken)."""
    x, e = w.value, gamma.value
    p = (x / x.max(-1, keepdims=True)) ** e
    total = p.sum(-1, keepdims=True)
    out = p / total
    positive = x > 0
    log = np.log(np.where(positive, x, 1.0))

    def back(g):
        gp = (g - (g * out).sum(-1, keepdims=True)) / total
        gw = gp * np.where(positive, e * p / np.where(positive, x, 1.0), 0.0)
        ggamma = (gp * p * log).sum(-1, keepdims=True)
        return gw, ggamma

    return record(out, (w, gamma), back)


def address(memory: Var, w_prev: Var, head: Var, width: int) -> Var:
    """Each head's weighting (B, H, N) from its outputs (B, H, width + 6): key, beta, gate,
    three shifts, gamma; content, interpolation, shift, sharpening."""
    key, beta, gate, s, gamma = ops.split(head, (width, 1, 1, SHIFTS, 1), axis=-1)
    w = softmax(ops.mul(activate(beta, SOFTPLUS), cosine(memory, key)), -1)
    g = activate(gate, SIGMOID)
    w = ops.add(w_prev, ops.mul(g, ops.sub(w, w_prev)))  # g w_c + (1 - g) w_prev
    w = shift(w, softmax(s, -1))
    return sharpen(w, ops.add_const(activate(gamma, SOFTPLUS), 1.0))


# ---- reading and writing ----------------------------------------------------------------------
def read(memory: Var, w: Var) -> Var:
    """r = w M: (B, H, N) weightings, (B, N, W) memory -> (B, H, W)."""
    M, wv = memory.value, w.value

    def back(g):
        return wv.transpose(0, 2, 1) @ g, g @ M.transpose(0, 2, 1)

    return record(wv @ M, (memory, w), back)


def write(memory: Var, w: Var, erase: Var, add: Var) -> Var:
    """One head's write: M (1 - w e^T) + w a^T; w (B, N), erase and add (B, W)."""
    M, wv, ev, av = memory.value, w.value[:, :, None], erase.value[:, None, :], add.value
    kept = 1.0 - wv * ev

    def back(g):
        gw = (g * (av[:, None, :] - M * ev)).sum(-1)
        ge = -(g * M * wv).sum(1)
        ga = (g * wv).sum(1)
        return g * kept, gw, ge, ga

    return record(M * kept + wv * av[:, None, :], (memory, w, erase, add), back)


# ---- the ntm ----------------------------------------------------------------------------------
def ntm_start(x: Var, o) -> tuple:
    """The state before the first step: (h, c) None (zeros), the memory at 1e-6, every head's
    weighting on slot 0, the vectors read at zeros."""
    batch, dtype = x.shape[0], x.value.dtype
    memory = const(np.full((batch, o.slots, o.width), MEMORY_START, dtype))
    w = np.zeros((batch, o.heads, o.slots), dtype)
    w[:, :, 0] = 1.0
    return None, memory, const(w), const(w), const(np.zeros((batch, o.heads * o.width), dtype))


def ntm_step_composed(x: Var, state: tuple | None, p: dict[str, Var], o) -> tuple[Var, tuple]:
    """One step: x (B, F) -> (out (B, controller + heads * width), the state after it), composed
    of the primitives above (about 45 recorded operations a step): the reference `ntm_step`
    equals."""
    controller, memory, w_read, w_write, r = ntm_start(x, o) if state is None else state
    batch, width, heads = x.shape[0], o.width, o.heads
    xg = ops.linear(ops.concat([x, r], -1), p["weight_ih"], p["bias_ih"])
    h, c = lstm_cell(xg, controller, p["weight_hh"], p["bias_hh"])
    writes = ops.reshape(ops.linear(h, p["write_weight"], p["write_bias"]), (batch, heads, -1))
    head, erase, add = ops.split(writes, (width + 3 + SHIFTS, width, width), axis=-1)
    w_write = address(memory, w_write, head, width)
    erase = activate(erase, SIGMOID)
    for k in range(heads):  # erase, then add, head after head
        w, e, a = (ops.take(v, (slice(None), k)) for v in (w_write, erase, add))
        memory = write(memory, w, e, a)
    reads = ops.reshape(ops.linear(h, p["read_weight"], p["read_bias"]), (batch, heads, -1))
    w_read = address(memory, w_read, reads, width)
    r = ops.reshape(read(memory, w_read), (batch, heads * width))
    return ops.concat([h, r], -1), ((h, c), memory, w_read, w_write, r)


# ---- the ntm, fused ---------------------------------------------------------------------------
# What the backend runs: the controller as above (`linear`, `lstm_cell`), then the heads' whole
# step (their linear maps, both addressings, the writes and the read) as one primitive, `heads`,
# whose backward is written out below: 5 recorded operations a step instead of about 45. It
# computes what ntm_step_composed does, step by step in the same order (tests/test_ntm.py: equal
# to 1e-10 in float64, values and gradients).
def _rolled(a: np.ndarray, by: int) -> np.ndarray:
    """np.roll(a, by, -1) for by = +-1, without np.roll's overhead on small arrays."""
    if by == 1:
        return np.concatenate((a[..., -1:], a[..., :-1]), -1)
    return np.concatenate((a[..., 1:], a[..., :1]), -1)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x).astype(x.dtype, copy=False)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _address_forward(M: np.ndarray, w_prev: np.ndarray, raw: np.ndarray, width: int):
    """`address` on arrays: the weighting (B, H, N), and what `_address_back` needs."""
    k = raw[..., :width]
    beta_raw, gate_raw = raw[..., width : width + 1], raw[..., width + 1 : width + 2]
    shift_raw, gamma_raw = raw[..., width + 2 : width + 2 + SHIFTS], raw[..., width + 2 + SHIFTS :]
    beta, g, s = _softplus(beta_raw), sigmoid(gate_raw), _softmax(shift_raw)
    gamma = _softplus(gamma_raw) + 1.0
    dot = k @ M.transpose(0, 2, 1)  # content: cosine, times beta, softmax
    nk, nm = np.sqrt((k * k).sum(-1)), np.sqrt((M * M).sum(-1))
    den = nk[:, :, None] * nm[:, None, :] + COSINE_EPS
    K = dot / den
    wc = _softmax(beta * K)
    wg = w_prev + g * (wc - w_prev)  # interpolation
    ahead, behind = _rolled(wg, -1), _rolled(wg, 1)  # w[i + 1], w[i - 1]
    ws = s[..., :1] * ahead + s[..., 1:2] * wg + s[..., 2:] * behind  # shift
    power = (ws / ws.max(-1, keepdims=True)) ** gamma  # sharpening
    total = power.sum(-1, keepdims=True)
    w = power / total
    saved = (M, w_prev, k, beta_raw, gate_raw, gamma_raw, beta, g, s, gamma, nk, nm, den, K, wc)
    return w, (*saved, wg, ahead, behind, ws, power, total, w)


def _address_back(saved, gw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vector-Jacobian product of `_address_forward`: the gradients of the memory, of the last
    weighting and of the head's outputs, from the weighting's."""
    M, w_prev, k, beta_raw, gate_raw, gamma_raw, beta, g, s, gamma, nk, nm, den, K, wc = saved[:15]
    wg, ahead, behind, ws, power, total, w = saved[15:]
    gp = (gw - (gw * w).sum(-1, keepdims=True)) / total  # sharpening
    positive = ws > 0
    safe = np.where(positive, ws, 1.0)
    g_ws = gp * np.where(positive, gamma * power / safe, 0.0)
    g_gamma = (gp * power * np.log(safe)).sum(-1, keepdims=True)
    g_wg = s[..., :1] * _rolled(g_ws, 1) + s[..., 1:2] * g_ws + s[..., 2:] * _rolled(g_ws, -1)
    g_s = np.stack([(g_ws * ahead).sum(-1), (g_ws * wg).sum(-1), (g_ws * behind).sum(-1)], -1)
    g_wc = g * g_wg  # interpolation
    g_prev = g_wg - g_wc
    g_g = (g_wg * (wc - w_prev)).sum(-1, keepdims=True)
    g_z = wc * (g_wc - (g_wc * wc).sum(-1, keepdims=True))  # content
    g_beta = (g_z * K).sum(-1, keepdims=True)
    g_K = beta * g_z
    g_dot = g_K / den
    g_den = -g_K * K / den
    g_nk = (g_den * nm[:, None, :]).sum(-1)
    g_nm = (g_den * nk[:, :, None]).sum(1)
    gk = g_dot @ M + np.divide(g_nk, nk, out=np.zeros_like(nk), where=nk > 0)[..., None] * k
    gM = g_dot.transpose(0, 2, 1) @ k
    gM += np.divide(g_nm, nm, out=np.zeros_like(nm), where=nm > 0)[..., None] * M
    g_raw = np.concatenate(
        (
            gk,
            g_beta * sigmoid(beta_raw),
            g_g * g * (1.0 - g),
            s * (g_s - (g_s * s).sum(-1, keepdims=True)),
            g_gamma * sigmoid(gamma_raw),
        ),
        -1,
    )
    return gM, g_prev, g_raw


def heads(
    h: Var, memory: Var, w_read: Var, w_write: Var, p: dict[str, Var], width: int
) -> list[Var]:
    """The heads' step as one primitive: from the controller's h (B, C), the memory and the last
    weightings to [the memory after the writes, the read weightings, the write weightings, the
    vectors read (B, heads * width)]: the write heads address and write (erase, then add, head
    after head), then the read heads address the written memory and read."""
    Ww, bw, Wr, br = p["write_weight"], p["write_bias"], p["read_weight"], p["read_bias"]
    hv, batch, rows = h.value, h.shape[0], width + 3 + SHIFTS
    count = w_write.shape[1]
    writes = (hv @ Ww.value.T + bw.value).reshape(batch, count, -1)
    ww, saved_w = _address_forward(memory.value, w_write.value, writes[..., :rows], width)
    erase, add = sigmoid(writes[..., rows : rows + width]), writes[..., rows + width :]
    before, kept, M = [], [], memory.value
    for k in range(count):  # erase, then add, head after head
        wk = ww[:, k, :, None]
        before.append(M)
        kept.append(1.0 - wk * erase[:, k, None, :])
        M = M * kept[k] + wk * add[:, k, None, :]
    reads = (hv @ Wr.value.T + br.value).reshape(batch, count, -1)
    wr, saved_r = _address_forward(M, w_read.value, reads, width)
    r = wr @ M

    def back(g_memory, g_read, g_write, g_r):
        g_r = g_r.reshape(batch, count, width)
        gM = g_memory + wr.transpose(0, 2, 1) @ g_r  # the read
        gM_read, g_read_prev, g_reads = _address_back(saved_r, g_read + g_r @ M.transpose(0, 2, 1))
        gM = gM + gM_read
        g_reads = g_reads.reshape(batch, -1)
        gh = g_reads @ Wr.value
        g_ww, g_erase, g_add = g_write.copy(), np.empty_like(erase), np.empty_like(add)
        for k in reversed(range(count)):  # the writes, the last head's first
            wk, Mk, ek = ww[:, k, :, None], before[k], erase[:, k, None, :]
            g_ww[:, k] += (gM * (add[:, k, None, :] - Mk * ek)).sum(-1)
            g_erase[:, k] = -(gM * Mk * wk).sum(1)
            g_add[:, k] = (gM * wk).sum(1)
            gM = gM * kept[k]
        gM_write, g_write_prev, g_head = _address_back(saved_w, g_ww)
        g_writes = np.concatenate((g_head, g_erase * erase * (1.0 - erase), g_add), -1)
        g_writes = g_writes.reshape(batch, -1)
        gh += g_writes @ Ww.value
        return (
            gh,
            gM + gM_write,
            g_read_prev,
            g_write_prev,
            g_writes.T @ hv,
            g_writes.sum(0),
            g_reads.T @ hv,
            g_reads.sum(0),
        )

    parents = (h, memory, w_read, w_write, Ww, bw, Wr, br)
    return record_many((M, wr, ww, r.reshape(batch, count * width)), parents, back)


def ntm_step(x: Var, state: tuple | None, p: dict[str, Var], o) -> tuple[Var, tuple]:
    """One step: x (B, F) -> (out (B, controller + heads * width), the state after it); the
    controller's `linear` and `lstm_cell`, then `heads`."""
    controller, memory, w_read, w_write, r = ntm_start(x, o) if state is None else state
    xg = ops.linear(ops.concat([x, r], -1), p["weight_ih"], p["bias_ih"])
    h, c = lstm_cell(xg, controller, p["weight_hh"], p["bias_hh"])
    memory, w_read, w_write, r = heads(h, memory, w_read, w_write, p, o.width)
    return ops.concat([h, r], -1), ((h, c), memory, w_read, w_write, r)
