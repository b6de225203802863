"""The Boltzmann machine in NumPy: its energy, exact enumeration, Gibbs sampling, its forward.

A machine has N = V + H stochastic binary units s in {0, 1}: the V visible units first, then
the H hidden ones. Its energy is E(s) = -1/2 s^T W s - b^T s, with W `[N, N]` read as its
symmetric part with a zero diagonal and without the links `links(...)` leaves out (so any
weight file is a proper machine), and P(s) = exp(-E(s) / T) / Z at temperature T (1 for the
distribution the machine models). A unit's conditional is a logistic of its energy gap:
P(s_i = 1 | the rest) = sigmoid((b_i + sum_j W_ij s_j) / T).

Everything here is plain NumPy on float arrays, shared by the NumPy lowering (`forward`), the
learning rule (nnspec/training/rules.py: `gibbs`, `correlations`) and the rule's measure
(`kl`), so both backends compute, and draw, the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...program import Layer
from .autograd import Var, const

ENUMERABLE = 16  # the most units whose 2^N states `exact` enumerates (65,536 states)


def links(visible: int, hidden: int, groups: int = 1) -> np.ndarray:
    """Which pairs are linked, `[N, N]` booleans: every pair but a unit with itself, and, with
    `groups` > 1, no link between visible units of different groups (the visible units split
    in `groups` equal runs; what one group tells another passes through the hidden units)."""
    n = visible + hidden
    linked = ~np.eye(n, dtype=bool)
    group = np.concatenate([np.arange(visible) // (visible // groups), np.full(hidden, -1)])
    apart = (group[:, None] != group[None, :]) & (group[:, None] >= 0) & (group[None, :] >= 0)
    return linked & ~apart


def layer_links(layer: Layer) -> np.ndarray:
    o = layer.options
    return links(o.units, o.hidden, o.groups)


def effective(w: np.ndarray, linked: np.ndarray) -> np.ndarray:
    """The weights the energy reads: W's symmetric part, 0 on the diagonal and where unlinked."""
    return np.where(linked, 0.5 * (w + w.T), 0.0)


def states(n: int, dtype=np.float64) -> np.ndarray:
    """Every binary state of n units `[2^n, n]`, unit 0 the most significant bit."""
    codes = np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)[None, :]
    return (codes & 1).astype(dtype)


def energy(s: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """E(s) = -1/2 s^T W s - b^T s for states s `[..., N]` -> `[...]` (W already effective)."""
    return -0.5 * np.einsum("...i,ij,...j->...", s, w, s) - s @ b


def exact(w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(every state `[2^N, N]`, its probability `[2^N]`, log Z) by enumeration (W effective)."""
    all_states = states(len(b), w.dtype)
    minus = -energy(all_states, w, b)
    log_z = float(np.logaddexp.reduce(minus))
    return all_states, np.exp(minus - log_z), log_z


def marginals(w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(s_i = 1) for every unit `[N]`, exactly."""
    all_states, p, _ = exact(w, b)
    return p @ all_states


def visible_distribution(w: np.ndarray, b: np.ndarray, visible: int) -> np.ndarray:
    """P(v) over the 2^V visible states `[2^V]` (the hidden units summed out), in the order of
    `states(visible)`."""
    _, p, _ = exact(w, b)
    return p.reshape(2**visible, -1).sum(1)


def kl(data: np.ndarray, w: np.ndarray, b: np.ndarray) -> float:
    """KL(P_data || P_model) in nats over the visible states: P_data the share of each binary
    row of `data` `[rows, V]`, P_model the machine's visible distribution (W effective)."""
    visible = data.shape[1]
    code = (data > 0.5).astype(np.int64) @ (1 << np.arange(visible - 1, -1, -1))
    share = np.bincount(code, minlength=2**visible) / len(data)
    model = visible_distribution(w, b, visible)
    seen = share > 0
    return float(np.sum(share[seen] * (np.log(share[seen]) - np.log(model[seen]))))


def conditionals(v: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(v_i = 1 | the other visible units) for visible rows v `[B, V]` -> `[B, V]`, exactly:
    the hidden units are summed out over their 2^H states (W effective, `[V + H, V + H]`).

    With F(v) = -log sum_h exp(-E(v, h)) the free energy, unit i's log-odds is
    F(v with v_i = 0) - F(v with v_i = 1) = b_i + sum_j W_ij v_j + LSE_h(h . c1 + q_h) -
    LSE_h(h . c0 + q_h), where c0 and c1 are the hidden units' input from v with v_i set to 0
    and to 1, and q_h = 1/2 h^T W_hh h + b_h . h.
    """
    visible = v.shape[1]
    w_vv, w_hv, w_hh = w[:visible, :visible], w[visible:, :visible], w[visible:, visible:]
    hidden_states = states(len(b) - visible, w.dtype)  # [S, H]
    q = 0.5 * np.einsum("si,ij,sj->s", hidden_states, w_hh, hidden_states)
    q = q + hidden_states @ b[visible:]
    c0 = (v @ w_hv.T)[:, None, :] - v[:, :, None] * w_hv.T[None]  # [B, V, H]
    lse0 = np.logaddexp.reduce(c0 @ hidden_states.T + q, axis=-1)  # [B, V]
    lse1 = np.logaddexp.reduce((c0 + w_hv.T[None]) @ hidden_states.T + q, axis=-1)
    logits = v @ w_vv + b[:visible] + lse1 - lse0
    return 1.0 / (1.0 + np.exp(-logits))


def forward(v: np.ndarray, weight: np.ndarray, bias: np.ndarray, linked: np.ndarray):
    """The layer's value: `conditionals` of the effective weights, in v's dtype."""
    w = effective(weight.astype(np.float64), linked)
    return conditionals(v.astype(np.float64), w, bias.astype(np.float64)).astype(v.dtype)


def gibbs(
    s: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    temperatures: Sequence[float],
    rng: np.random.Generator,
    clamped: np.ndarray | None = None,
) -> np.ndarray:
    """Sequential Gibbs sweeps over chains s `[C, N]` (changed in place and returned), one sweep
    per temperature: unit by unit in order, s_i is set to 1 with probability
    sigmoid((b_i + W_i . s) / T), except where `clamped` `[C, N]` (booleans) holds it. W
    effective. The draws are one `rng.random((sweeps, N, C))`, so a seed gives the same chains."""
    draws = rng.random((len(temperatures), len(b), len(s)))
    for sweep, temperature in enumerate(temperatures):
        for i in range(len(b)):
            gap = (s @ w[:, i] + b[i]) / temperature
            new = draws[sweep, i] < 1.0 / (1.0 + np.exp(-gap))
            s[:, i] = new if clamped is None else np.where(clamped[:, i], s[:, i], new)
    return s


def correlations(
    s: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    sweeps: int,
    rng: np.random.Generator,
    clamped: np.ndarray | None = None,
    parts: Sequence[slice] = (slice(None),),
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(<s_i s_j> `[N, N]`, <s_i> `[N]`) at T = 1 for each part of the chains s `[C, N]` (slices
    of its rows), averaged over the part's chains and over `sweeps` further sweeps of `gibbs`
    (the states after each), from chains at equilibrium."""
    sums = [(np.zeros_like(w), np.zeros_like(b)) for _ in parts]
    for _ in range(sweeps):
        s = gibbs(s, w, b, (1.0,), rng, clamped)
        for (pairs, means), part in zip(sums, parts, strict=True):
            pairs += s[part].T @ s[part]
            means += s[part].sum(0)
    counts = [sweeps * len(s[part]) for part in parts]
    return [(p / c, m / c) for (p, m), c in zip(sums, counts, strict=True)]


def boltzmann(ctx, layer: Layer, x: Var, p) -> Var:
    """v (B, V) -> P(v_i = 1 given v_-i) (B, V): `conditionals` of the effective weights, in
    float64, by enumeration of the 2^hidden hidden states; a constant (no gradient: the Boltzmann
    rule, not backpropagation, moves the weights)."""
    linked = layer_links(layer)
    return const(forward(x.value, p["weight"].value, p["bias"].value, linked))
