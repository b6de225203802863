"""The Boltzmann learning rule (Ackley, Hinton and Sejnowski 1985): `rule = boltzmann(...)`.

Each step runs two phases of Gibbs sampling with annealing (nnspec/backends/numpy/boltzmann.py):

    clamped: the visible units held at the batch's rows (each row in ceil(samples / B) chains),
             the hidden units started at random, cooled through `temperatures` (one sweep at
             each), then `sweeps` sweeps at T = 1 whose states give <s_i s_j>_clamped, <s_i>;
    free:    `samples` chains of every unit started at random, the same schedule: <s_i s_j>_free.

and adds lr * (<s_i s_j>_clamped - <s_i s_j>_free) to every linked pair's weight (both W_ij and
W_ji, so W stays symmetric with a zero diagonal) and lr * (<s_i>_clamped - <s_i>_free) to the
biases: the gradient of the data's log-likelihood, estimated from samples. Every draw comes
from the step's generator (`default_rng([seed, step])`), so both backends, which share this
NumPy step, move the weights alike. Its measure `kl` is KL(data || model) over the visible
states, by enumeration of every state.
"""

from __future__ import annotations

import numpy as np

from ..backends.numpy import boltzmann as bm
from ..program import Layer
from .stopped import TrainingStopped


def phases(
    v: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
    *,
    samples: int,
    temperatures: tuple[float, ...],
    sweeps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(what to add to W per unit of lr `[N, N]`, to b `[N]`) from visible rows v `[B, V]`
    (float64, bits) and the effective weights w `[N, N]`, bias b `[N]`.

    The clamped chains (each row of v in ceil(samples / B) chains, its visible units held) and
    the free ones (`samples` chains) are sampled side by side, in one array."""
    n, visible = len(b), v.shape[1]
    rows = np.repeat(v, -(-samples // len(v)), axis=0)
    start = rng.random((len(rows) + samples, n)) < 0.5
    start[: len(rows), :visible] = rows > 0.5
    clamped = np.zeros_like(start)
    clamped[: len(rows), :visible] = True
    chains = bm.gibbs(start.astype(np.float64), w, b, temperatures, rng, clamped)
    parts = (slice(0, len(rows)), slice(len(rows), None))
    (pairs_on, means_on), (pairs_off, means_off) = bm.correlations(
        chains, w, b, sweeps, rng, clamped, parts
    )
    return pairs_on - pairs_off, means_on - means_off


def step(batch, lr: float) -> dict[str, np.ndarray]:
    """The rule's step on a batch whose x `[B, V]` holds the visible bits (R355 otherwise)."""
    layer, o = batch.layer, batch.options
    v = visible_bits(batch.x, layer)
    linked = bm.layer_links(layer)
    weight, bias = batch.params["weight"], batch.params["bias"]
    w = bm.effective(weight.astype(np.float64), linked)
    pairs, means = phases(
        v,
        w,
        bias.astype(np.float64),
        batch.rng,
        samples=o.samples,
        temperatures=tuple(o.temperatures),
        sweeps=o.sweeps,
    )
    return {
        "weight": (lr * pairs * linked).astype(weight.dtype),
        "bias": (lr * means).astype(bias.dtype),
    }


def kl(batch) -> float:
    """KL(data || model) in nats: the batch's visible rows against the machine's visible
    distribution, every one of its 2^N states enumerated."""
    layer = batch.layer
    units = layer.options.units + layer.options.hidden
    if units > bm.ENUMERABLE:
        raise TrainingStopped(
            "R356",
            f"kl enumerates every state of the Boltzmann machine '{layer.name}', 2^{units} of "
            f"them, and {bm.ENUMERABLE} units ({2**bm.ENUMERABLE:,} states) are the most it takes",
            "leave kl out of metrics and expect (loss = bce on the output measures the fit), or "
            f"give the machine at most {bm.ENUMERABLE} units",
        )
    v = visible_bits(batch.x, layer)
    w = bm.effective(batch.params["weight"].astype(np.float64), bm.layer_links(layer))
    return bm.kl(v, w, batch.params["bias"].astype(np.float64))


def visible_bits(x: np.ndarray, layer: Layer) -> np.ndarray:
    """x `[B, V]` as float64 bits, after checking that every value is 0 or 1 (R355)."""
    v = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    odd = ~np.isin(v, (0.0, 1.0))
    if odd.any():
        row, column = np.argwhere(odd)[0]
        raise TrainingStopped(
            "R355",
            f"the Boltzmann machine '{layer.name}' has binary visible units, but example {row} "
            f"gives unit {column} the value {v[row, column]:g}",
            "give it data of 0s and 1s (threshold grey values first, e.g. at 0.5)",
        )
    return v
