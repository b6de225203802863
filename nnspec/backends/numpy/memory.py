"""Networks with an external memory in NumPy: the primitives of the ntm's addressing, reading and
writing, each forward beside its gradient, and the ntm's step composed from them.

Shapes: memory M (B, N, W) (N slots of width W); one weighting per head, w (B, H, N); a head's
key (B, H, W). The formulas are in nnspec/kinds/memory.py; the controller is cells.lstm_cell.
"""

from __future__ import annotations

import numpy as np

from ...kinds.activation import Activation
from ...kinds.memory import COSINE_EPS, MEMORY_START, SHIFTS
from . import ops
from .activations import activate, softmax
from .autograd import Var, const, record
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


def ntm_step(x: Var, state: tuple | None, p: dict[str, Var], o) -> tuple[Var, tuple]:
    """One step: x (B, F) -> (out (B, controller + heads * width), the state after it)."""
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
