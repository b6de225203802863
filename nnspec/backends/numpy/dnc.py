"""The differentiable neural computer in NumPy: the primitives of its usage, allocation, temporal
links and read modes, each forward beside its gradient, and the dnc's step composed from them and
from the ntm's content addressing, write and read (memory.py).

Shapes: memory M (B, N, W) (N slots of width W); usage, precedence and the write weighting
(B, N); the link matrix (B, N, N); the read weightings (B, R, N), one per read head. The formulas
are in nnspec/kinds/dnc.py; the controller is cells.lstm_cell.
"""

from __future__ import annotations

import numpy as np

from ...kinds.dnc import MODES
from ...kinds.memory import MEMORY_START
from . import ops
from .activations import activate, softmax
from .autograd import Var, const, record, record_many
from .cells import lstm_cell
from .memory import SIGMOID, SOFTPLUS, cosine, read, write


# ---- usage and allocation ---------------------------------------------------------------------
def usage(u_prev: Var, w_write: Var, w_read: Var, free: Var) -> Var:
    """u = (u_prev + w_w - u_prev w_w) psi, psi = prod_r (1 - f_r w_r): u_prev and the last
    write weighting (B, N), the last read weightings (B, R, N), the free gates (B, R, 1)."""
    u, ww, wr, f = u_prev.value, w_write.value, w_read.value, free.value
    kept = 1.0 - f * wr  # (B, R, N)
    ones = np.ones_like(kept[:, :1])
    before = np.cumprod(np.concatenate([ones, kept[:, :-1]], 1), 1)  # prod_{s < r}
    after = np.cumprod(np.concatenate([ones, kept[:, :0:-1]], 1), 1)[:, ::-1]  # prod_{s > r}
    psi = before[:, -1] * kept[:, -1]
    q = u + ww - u * ww

    def back(g):
        gq = g * psi
        gkept = (g * q)[:, None, :] * before * after  # d psi / d kept_r: the other heads' product
        return gq * (1.0 - ww), gq * (1.0 - u), -gkept * f, -(gkept * wr).sum(-1, keepdims=True)

    return record(q * psi, (u_prev, w_write, w_read, free), back)


def allocation(u: Var) -> Var:
    """a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i], phi the slots by usage, ascending (the
    lower slot first at a tie), (B, N) -> (B, N). The permutation is held constant: the gradient
    reaches the usages through the sorted values only."""
    order = np.argsort(u.value, -1, kind="stable")
    su = np.take_along_axis(u.value, order, -1)
    ones = np.ones_like(su[:, :1])
    before = np.cumprod(np.concatenate([ones, su[:, :-1]], -1), -1)  # prod_{i<j} su_i
    out = np.empty_like(su)
    np.put_along_axis(out, order, (1.0 - su) * before, -1)

    def back(g):
        gs = np.take_along_axis(g, order, -1)
        n = su.shape[-1]
        later = np.arange(n)[None, :] > np.arange(n)[:, None]  # [k, i]: i > k
        # between[b, k, j] = prod_{k < i < j} su_i (j > k)
        inner = np.cumprod(np.where(later, su[:, None, :], 1.0), -1)
        between = np.concatenate([np.ones_like(inner[..., :1]), inner[..., :-1]], -1)
        rest = ((gs * (1.0 - su))[:, None, :] * between * later).sum(-1)  # sum over j > k
        gsu = before * (rest - gs)
        gu = np.empty_like(gsu)
        np.put_along_axis(gu, order, gsu, -1)
        return (gu,)

    return record(out, (u,), back)


def write_weighting(alloc: Var, content: Var, g_alloc: Var, g_write: Var) -> Var:
    """w_w = g_w (g_a a + (1 - g_a) c): allocation and content (B, N), the gates (B, 1)."""
    a, c, ga, gw = alloc.value, content.value, g_alloc.value, g_write.value
    inner = ga * a + (1.0 - ga) * c

    def back(g):
        gi = g * gw
        return (
            gi * ga,
            gi * (1.0 - ga),
            (gi * (a - c)).sum(-1, keepdims=True),
            (g * inner).sum(-1, keepdims=True),
        )

    return record(gw * inner, (alloc, content, g_alloc, g_write), back)


# ---- temporal links ---------------------------------------------------------------------------
def links(link: Var, precedence: Var, w_write: Var) -> Var:
    """L[i, j] = (1 - w[i] - w[j]) L_prev[i, j] + w[i] p_prev[j], the diagonal zero: L_prev
    (B, N, N), p_prev and w_w (B, N)."""
    L, p, w = link.value, precedence.value, w_write.value
    off = 1.0 - np.eye(L.shape[-1], dtype=L.dtype)
    kept = 1.0 - w[:, :, None] - w[:, None, :]
    out = (kept * L + w[:, :, None] * p[:, None, :]) * off

    def back(g):
        g = g * off
        gl = g * L
        gw = (g * p[:, None, :]).sum(-1) - gl.sum(-1) - gl.sum(-2)
        return g * kept, (g * w[:, :, None]).sum(1), gw

    return record(out, (link, precedence, w_write), back)


def precedence(p_prev: Var, w_write: Var) -> Var:
    """p = (1 - sum_i w_w[i]) p_prev + w_w, (B, N)."""
    p, w = p_prev.value, w_write.value
    kept = 1.0 - w.sum(-1, keepdims=True)

    def back(g):
        return g * kept, g - (g * p).sum(-1, keepdims=True)

    return record(kept * p + w, (p_prev, w_write), back)


def directions(link: Var, w_read: Var) -> list[Var]:
    """The forward and backward weightings f = L w, b = L^T w of each read head: L (B, N, N),
    w (B, R, N) -> f, b (B, R, N)."""
    L, w = link.value, w_read.value
    Lt = L.transpose(0, 2, 1)

    def back(gf, gb):
        gL = gf.transpose(0, 2, 1) @ w + w.transpose(0, 2, 1) @ gb
        return gL, gf @ L + gb @ Lt

    return record_many((w @ Lt, w @ L), (link, w_read), back)


def read_weighting(modes: Var, backward: Var, content: Var, forward: Var) -> Var:
    """w_r = pi_0 b + pi_1 c + pi_2 f: the read modes (B, R, 3), the three weightings (B, R, N)."""
    pi, b, c, f = modes.value, backward.value, content.value, forward.value

    def back(g):
        gpi = np.stack([(g * b).sum(-1), (g * c).sum(-1), (g * f).sum(-1)], -1)
        return gpi, g * pi[..., :1], g * pi[..., 1:2], g * pi[..., 2:]

    return record(
        pi[..., :1] * b + pi[..., 1:2] * c + pi[..., 2:] * f,
        (modes, backward, content, forward),
        back,
    )


def content(memory: Var, key: Var, beta: Var) -> Var:
    """softmax(beta cos(k, M_i)) over the slots, beta = 1 + softplus: key (B, H, W), beta's raw
    output (B, H, 1) -> (B, H, N)."""
    strength = ops.add_const(activate(beta, SOFTPLUS), 1.0)
    return softmax(ops.mul(strength, cosine(memory, key)), -1)


# ---- the dnc ----------------------------------------------------------------------------------
def dnc_start(x: Var, o) -> tuple:
    """The state before the first step: (h, c) None (zeros), the memory at 1e-6, the usage, the
    write weighting, the read weightings, the precedence, the links and the vectors read at
    zeros."""
    batch, dtype, n = x.shape[0], x.value.dtype, o.slots
    zeros = const(np.zeros((batch, n), dtype))
    return (
        None,
        const(np.full((batch, n, o.width), MEMORY_START, dtype)),
        zeros,
        zeros,
        const(np.zeros((batch, o.heads, n), dtype)),
        zeros,
        const(np.zeros((batch, n, n), dtype)),
        const(np.zeros((batch, o.heads * o.width), dtype)),
    )


def dnc_step(x: Var, state: tuple | None, p: dict[str, Var], o) -> tuple[Var, tuple]:
    """One step: x (B, F) -> (out (B, controller + heads * width), the state after it)."""
    controller, memory, u, w_write, w_read, prec, link, r = (
        dnc_start(x, o) if state is None else state
    )
    batch, width, heads = x.shape[0], o.width, o.heads
    xg = ops.linear(ops.concat([x, r], -1), p["weight_ih"], p["bias_ih"])
    h, c = lstm_cell(xg, controller, p["weight_hh"], p["bias_hh"])
    reads = ops.reshape(ops.linear(h, p["read_weight"], p["read_bias"]), (batch, heads, -1))
    r_key, r_beta, free, modes = ops.split(reads, (width, 1, 1, MODES), axis=-1)
    writes = ops.linear(h, p["write_weight"], p["write_bias"])
    w_key, w_beta, erase, add, g_alloc, g_write = ops.split(
        writes, (width, 1, width, width, 1, 1), axis=-1
    )
    u = usage(u, w_write, w_read, activate(free, SIGMOID))
    w_content = content(
        memory, ops.reshape(w_key, (batch, 1, width)), ops.reshape(w_beta, (batch, 1, 1))
    )
    w_write = write_weighting(
        allocation(u),
        ops.reshape(w_content, (batch, -1)),
        activate(g_alloc, SIGMOID),
        activate(g_write, SIGMOID),
    )
    memory = write(memory, w_write, activate(erase, SIGMOID), add)
    link = links(link, prec, w_write)
    prec = precedence(prec, w_write)
    forward, backward = directions(link, w_read)
    w_read = read_weighting(softmax(modes, -1), backward, content(memory, r_key, r_beta), forward)
    r = ops.reshape(read(memory, w_read), (batch, heads * width))
    return ops.concat([h, r], -1), ((h, c), memory, u, w_write, w_read, prec, link, r)
