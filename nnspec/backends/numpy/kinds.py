"""The NumPy lowering of every kind: one table, `LOWERINGS`, keyed by kind name.

A stateless kind is `lower(ctx, layer, x, p) -> Var`, where `x` is what enters (one
value, fan-in joined; a dict by port for kinds with ports; a list for merges) and `p`
the layer's parameters as `Var`s by key (`p["weight"]`). Arrays carry `ctx.lead` leading
axes: `[B, ...]`, or `[B, T, ...]` for a timed layer over whole arrays. A stateful kind
is a `Stateful` pair: `sequence` over a whole `[B, T, F]` array from a zero state, and
`step` for one `[B, F]` step inside a `~>` loop, `(x_t, state) -> (output, state)`.

Adding a kind to the registry means adding its row here (tests/test_numpy_backend.py
fails, naming the kind, until then).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ...kinds.activation import ACTIVATIONS, Activation
from ...kinds.attention import sinusoids
from ...kinds.conv import pair
from ...kinds.recurrent import layer_suffixes
from ...program import Layer
from . import cells, ops
from .activations import activate
from .autograd import Var, const
from .boltzmann import boltzmann
from .capsules import length, mask, predictions, routing, squash
from .dnc import dnc_step
from .hopfield import hopfield
from .image import conv2d, conv_transpose2d, pool2d, unpool2d, upsample2d
from .markov import markov
from .memory import ntm_step
from .radial import rbf
from .rbm import rbm
from .reservoir import esn_cell, lsm_cell
from .som import som


@dataclass
class Context:
    """What a lowering may read besides its inputs: mode, noise, buffers, the KL terms, the axes."""

    training: bool
    rng: np.random.Generator
    dtype: np.dtype
    params: dict[str, np.ndarray]  # the run's arrays, for batchnorm's running statistics
    kl: list[Var]  # one term per `sample` layer (per step inside a loop)
    # layer -> its value before a final softmax or sigmoid
    logits: dict[str, Var] = field(default_factory=dict)
    lead: int = 1  # leading axes of the arrays: 1 (batch) or 2 (batch, time)
    in_loop: bool = False
    # `enc -> dec.state` from a recurrent layer: decoder -> encoder (plan.handed_states), and
    # each such encoder's final state once it has run (one state per stacked layer)
    handed: dict[str, str] = field(default_factory=dict)
    finals: dict[str, object] = field(default_factory=dict)
    # the class of each example of the batch, (B,), that a `mask` layer keeps in training (the
    # runner's, from the targets; None: the longest capsule)
    labels: np.ndarray | None = None
    # values worked out once per forward and shared by the layers that read the same input:
    # key -> (the Var it was made from, the value), e.g. a graph's normalised adjacency
    shared: dict[tuple, tuple[Var, object]] = field(default_factory=dict)


@dataclass(frozen=True)
class Stateful:
    """A kind that keeps a state from step to step: over a whole sequence,
    or one step inside a loop."""

    sequence: Callable[[Context, Layer, Var, dict[str, Var]], Var]
    step: Callable[[Context, Layer, Var, dict[str, Var], object], tuple[Var, object]]
    doc: str  # what it is composed from, for docs/numpy.md

    @property
    def __doc__(self) -> str:  # read as a function's docstring is
        return self.doc


def feature_axis(dims: tuple[int, ...]) -> int:
    """The axis fan-in joins and softmax runs over: channels for images, else the last."""
    return -3 if len(dims) == 3 else -1


def activated(ctx: Context, layer: Layer, z: Var, act: Activation, axis: int = -1) -> Var:
    """act(z); outside loops the value before a softmax or sigmoid is kept as the layer's logits,
    for stable losses."""
    if act.name in ("softmax", "sigmoid") and not ctx.in_loop:
        ctx.logits[layer.name] = z
    return activate(z, act, axis)


def _folded(x: Var, ctx: Context, inner: Callable[[Var], Var]) -> Var:
    """Apply an image op to [B, T, C, H, W] by folding time into the batch."""
    if ctx.lead == 1:
        return inner(x)
    lead = x.shape[:2]
    y = inner(ops.reshape(x, (-1,) + x.shape[2:]))
    return ops.reshape(y, lead + y.shape[1:])


# ---- capsules ------------------------------------------------------------------------------
def primary_capsules(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x: (B, C, H, W) -> (B, capsules * OH * OW, dim): `conv2d` (image.py), `reshape` to
    (B, capsules, dim, OH, OW), `transpose` the components last, `reshape`, `squash`
    (capsules.py)."""
    o = layer.options
    n = 0 if o.padding == "valid" else o.padding
    y = conv2d(x, p["weight"], p.get("bias"), pair(o.stride), (n, n, n, n))
    batch, _, height, width = y.shape
    y = ops.reshape(y, (batch, o.capsules, o.dim, height, width))
    y = ops.transpose(y, (0, 1, 3, 4, 2))
    return squash(ops.reshape(y, (batch, -1, o.dim)))


def capsules(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """u: (B, N, D) -> (B, capsules, dim): `predictions` (capsules.py), then `routing` by
    agreement, composed of `softmax`, `mul`, `total`, `add` and `squash`."""
    return routing(predictions(x, p["weight"]), layer.options.routing)


def capsule_length(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """v: (..., N, dim) -> (..., N): `length` (capsules.py)."""
    return length(x)


def capsule_mask(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """v: (B, N, dim) -> (B, N * dim): `mask` (capsules.py), by the labels in training
    (`ctx.labels`), by the longest capsule otherwise."""
    return mask(x, ctx.labels if ctx.training else None)


# ---- io and merges -------------------------------------------------------------------------
def passes(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x -> x: nothing; the value passes (the run has shaped the data already; a block's
    `port` passes what it receives)."""
    return x


def add(ctx: Context, layer: Layer, xs: list[Var], p) -> Var:
    """xs of one shape -> that shape: `add`, input by input."""
    total = xs[0]
    for x in xs[1:]:
        total = ops.add(total, x)
    return total


def mul(ctx: Context, layer: Layer, xs: list[Var], p) -> Var:
    """xs of one shape -> that shape: `mul`, input by input."""
    product = xs[0]
    for x in xs[1:]:
        product = ops.mul(product, x)
    return product


def concat(ctx: Context, layer: Layer, xs: list[Var], p) -> Var:
    """xs -> their features joined: `concat` along the feature axis."""
    return ops.concat(xs, feature_axis(layer.shape.dims))


# ---- dense ---------------------------------------------------------------------------------
def dense(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x: (..., in) -> (..., units): `linear`, then the activation."""
    return activated(ctx, layer, ops.linear(x, p["weight"], p.get("bias")), layer.options.act)


def maxout(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x: (..., in) -> (..., units): `linear`, `reshape` to (..., units, pieces), `max_over`
    the pieces (row u * pieces + k of W is piece k of unit u)."""
    o = layer.options
    z = ops.linear(x, p["weight"], p.get("bias"))
    return ops.max_over(ops.reshape(z, z.shape[:-1] + (o.units, o.pieces)), -1)


def embedding(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """tokens (..., k) -> (..., k, dim); (..., dim) when k = 1: `gather_rows` (tokens are
    checked to be whole numbers in range; they take no gradient)."""
    tokens = x.value
    idx = tokens.astype(np.int64)
    vocabulary = layer.options.vocabulary
    if np.any(idx != tokens) or np.any(idx < 0) or np.any(idx >= vocabulary):
        bad = tokens[(idx != tokens) | (idx < 0) | (idx >= vocabulary)].flat[0]
        raise ValueError(
            f"embedding '{layer.name}' takes whole numbers from 0 to {vocabulary - 1}, "
            f"but receives {bad!r}"
        )
    return ops.gather_rows(p["weight"], idx[..., 0] if idx.shape[-1] == 1 else idx)


# ---- images --------------------------------------------------------------------------------
def conv(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x: (..., C, H, W) -> (..., channels, OH, OW): `conv2d` (image.py), then the activation."""
    o = layer.options
    relu = o.act.name == "relu"  # taken inside conv2d's node: one array and one pass fewer

    def convolve(v: Var) -> Var:
        pads = layer.kind.pads(o, *v.shape[-2:])  # padding=same depends on the image's size
        return conv2d(
            v, p["weight"], p.get("bias"), pair(o.stride), pads, pair(o.dilation), o.groups, relu
        )

    y = _folded(x, ctx, convolve)
    return y if relu else activated(ctx, layer, y, o.act, axis=-3)


def deconv(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x: (..., C, H, W) -> (..., channels, OH, OW): `conv_transpose2d` (image.py), then the
    activation."""
    o = layer.options
    relu = o.act.name == "relu" and o.groups == 1  # taken inside the node, as conv's
    shape = pair(o.stride), pair(o.padding), pair(o.output_padding), pair(o.dilation), o.groups
    y = _folded(x, ctx, lambda v: conv_transpose2d(v, p["weight"], p.get("bias"), *shape, relu))
    return y if relu else activated(ctx, layer, y, o.act, axis=-3)


def pool(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x: (..., C, H, W) -> (..., C, OH, OW): `pool2d` (image.py), max or mean, with padding and
    the output size of the layer's shape (ceil mode keeps the windows past the end)."""
    o = layer.options
    size = pair(o.size)
    stride = pair(o.stride) if o.stride is not None else size
    out = layer.shape.dims[1:]
    return _folded(x, ctx, lambda v: pool2d(v, o.mode, size, stride, pair(o.padding), out))


def unpool(ctx: Context, layer: Layer, x: dict[str, Var], p) -> Var:
    """x (..., C, OH, OW), like (..., C, H, W) -> (..., C, H, W): `unpool2d` (image.py), x put
    back at the maxima of the pool's windows over `like` (what entered the pool)."""
    pool = layer.options._pool
    size = pair(pool.size)
    stride = pair(pool.stride) if pool.stride is not None else size
    if ctx.lead == 1:
        return unpool2d(x["x"], x["like"], size, stride, pair(pool.padding))
    lead = x["x"].shape[:2]
    values, like = (ops.reshape(v, (-1,) + v.shape[2:]) for v in (x["x"], x["like"]))
    y = unpool2d(values, like, size, stride, pair(pool.padding))
    return ops.reshape(y, lead + y.shape[1:])


def global_pool(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x: (..., C, H, W) -> (..., C): `pool2d` with one window as large as the image, then the
    1 x 1 image reshaped to its channels."""
    o = layer.options

    def whole(v: Var) -> Var:
        window = tuple(v.shape[-2:])
        return ops.reshape(pool2d(v, o.mode, window, window), v.shape[:2])

    return _folded(x, ctx, whole)


def flatten(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """(..., C, H, W) or (..., N, F) -> (..., C*H*W): `reshape`, row-major."""
    return ops.reshape(x, x.shape[: ctx.lead] + (-1,))


def reshape(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """(..., any) -> (..., shape): `reshape`, row-major, the `-1` filled in by the checker."""
    return ops.reshape(x, x.shape[: ctx.lead] + tuple(layer.shape.dims))


def upsample(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x (..., C, H, W) -> (..., C, factor * H, factor * W) or (..., C, *size): `upsample2d`
    (image.py), nearest or bilinear, over any leading axes."""
    return upsample2d(x, layer.shape.dims[1:], layer.options.mode)


# ---- normalisation -------------------------------------------------------------------------
def dropout(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x -> x's shape: `mul_const` by the mask over `1 - rate` in training (mask:
    `rng.random(shape) >= rate`); the value itself in evaluation."""
    return dropped(ctx, x, layer.options.rate)


def dropped(ctx: Context, x: Var, rate: float) -> Var:
    """x, each value zeroed with probability `rate` and the rest scaled by 1 / (1 - rate), in
    training; x itself in evaluation."""
    if not ctx.training or rate == 0.0:
        return x
    keep = ctx.rng.random(x.shape, dtype=ctx.dtype) >= rate  # 1 with probability 1 - rate
    return ops.mul_const(x, keep.astype(ctx.dtype) * (1.0 / (1.0 - rate)))


def noise(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x -> x's shape, corrupted in training (the noise is a constant: the gradient passes
    where a value is kept); the value itself in evaluation. gaussian: `add_const` of
    `amount * rng.standard_normal`; mask: `mul_const` by `rng.random(shape) >= amount`;
    salt_pepper: `mul_const` by that mask, then `add_const` of 0 or 1 (half each) where dropped.
    """
    kind, amount = layer.options.type, layer.options.amount
    if not ctx.training or amount == 0.0:
        return x
    if kind == "gaussian":
        return ops.add_const(x, amount * ctx.rng.standard_normal(x.shape, dtype=ctx.dtype))
    keep = (ctx.rng.random(x.shape, dtype=ctx.dtype) >= amount).astype(ctx.dtype)
    kept = ops.mul_const(x, keep)
    if kind == "mask":
        return kept
    salt = ctx.rng.integers(0, 2, x.shape).astype(ctx.dtype)
    return ops.add_const(kept, (1.0 - keep) * salt)


def _normalise(x: Var, axes: tuple[int, ...], eps: float) -> tuple[Var, Var, Var]:
    """(x - mean) / sqrt(var + eps) over `axes` (biased variance) -> (normalised, mean, var)."""
    mu = ops.mean(x, axes, keepdims=True)
    centred = ops.sub(x, mu)
    var = ops.mean(ops.mul(centred, centred), axes, keepdims=True)
    inverse = ops.power(ops.add_const(var, eps), -0.5)
    return ops.mul(centred, inverse), mu, var


def _affine(x: Var, p, image: bool) -> Var:
    """x * W + b with W, b per feature (per channel for images: shaped (C, 1, 1))."""
    W, b = p["weight"], p["bias"]
    if image:
        W, b = ops.reshape(W, W.shape + (1, 1)), ops.reshape(b, b.shape + (1, 1))
    return ops.add(ops.mul(x, W), b)


MOMENTUM = 0.1  # PyTorch's default for the running statistics


def batchnorm(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x -> x's shape, per feature (channel for images) over every other axis: `mean`, `sub`,
    `mul`, `add_const`, `power(-0.5)`, `mul`, `add`; the running statistics are updated in place,
    as PyTorch keeps them."""
    image = len(layer.shape.dims) == 3
    axis = x.ndim + feature_axis(layer.shape.dims)
    axes = tuple(a for a in range(x.ndim) if a != axis)
    shape = (-1, 1, 1) if image else (-1,)
    names = {  # a shared batchnorm keeps its owner's statistics
        key: layer.param_name(key) for key in ("running_mean", "running_var", "num_batches_tracked")
    }
    running_mean, running_var = ctx.params[names["running_mean"]], ctx.params[names["running_var"]]
    eps = layer.options.eps
    if not ctx.training:
        centred = ops.add_const(x, -running_mean.reshape(shape))
        return _affine(ops.mul_const(centred, (running_var.reshape(shape) + eps) ** -0.5), p, image)
    count = x.value.size // x.shape[axis]
    if count < 2:
        raise ValueError(
            f"batchnorm '{layer.name}' needs more than one value per feature in training, "
            f"got {x.shape}"
        )
    normalised, mu, var = _normalise(x, axes, eps)
    running_mean *= 1.0 - MOMENTUM
    running_mean += MOMENTUM * mu.value.reshape(-1)
    running_var *= 1.0 - MOMENTUM
    running_var += (MOMENTUM * count / (count - 1)) * var.value.reshape(-1)  # the unbiased variance
    ctx.params[names["num_batches_tracked"]] += 1
    return _affine(normalised, p, image)


def layernorm(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """x -> x's shape, per example over the last axis (over C, H, W for images): `mean`,
    `sub`, `mul`, `add_const`, `power(-0.5)`, `mul`, `add`."""
    axes = (-3, -2, -1) if len(layer.shape.dims) == 3 else (-1,)
    normalised, _, _ = _normalise(x, axes, layer.options.eps)
    return ops.add(ops.mul(normalised, p["weight"]), p["bias"])


# ---- attention and graphs ------------------------------------------------------------------
def _heads(x: Var, heads: int) -> Var:
    """(B, L, D) -> (B, heads, L, D / heads)."""
    batch, length, dim = x.shape
    return ops.transpose(ops.reshape(x, (batch, length, heads, dim // heads)), (0, 2, 1, 3))


def attention(ctx: Context, layer: Layer, x: dict[str, Var], p) -> Var:
    """query (B, L, Fq), key (B, S, Fk), value (B, S, Fv) -> (B, L, dim), attending over S:
    `linear` (q, k, v, out), `reshape` and `transpose` into heads, `matmul`, `scale`,
    `add_const` of a `-inf` causal mask, `softmax`. Stepped on a `~>` cycle, the query is one
    step (B, Fq), `reshape`d to (B, 1, Fq) and back, and the keys and values every step."""
    o = layer.options
    query = x["query"]
    key = x.get("key", query)
    value = x.get("value", key)  # as the kind's shape rule: the value defaults to the key
    if ctx.in_loop:  # one step's query against every step of the keys (check.py allows only so)
        one = ops.reshape(query, (query.shape[0], 1, query.shape[-1]))
        out = attention(
            replace(ctx, in_loop=False), layer, {"query": one, "key": key, "value": value}, p
        )
        return ops.reshape(out, (out.shape[0], out.shape[-1]))
    q = _heads(ops.linear(query, p["weight_q"], p.get("bias_q")), o.heads)
    k = _heads(ops.linear(key, p["weight_k"], p.get("bias_k")), o.heads)
    v = _heads(ops.linear(value, p["weight_v"], p.get("bias_v")), o.heads)
    scores = ops.scale(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), 1.0 / math.sqrt(q.shape[-1]))
    if o.causal:  # item i sees keys j <= i
        length, keys = scores.shape[-2:]
        mask = np.where(np.arange(keys)[None, :] > np.arange(length)[:, None], -np.inf, 0.0).astype(
            ctx.dtype
        )
        scores = ops.add_const(scores, mask)
    mixed = ops.matmul(activate(scores, Activation(name="softmax")), v)
    batch, heads, length, width = mixed.shape
    joined = ops.reshape(ops.transpose(mixed, (0, 2, 1, 3)), (batch, length, heads * width))
    return ops.linear(joined, p["weight_o"], p.get("bias_o"))


_SHARED = 8  # values a Context keeps in `shared` at most


def _normalisation(ctx: Context, adjacency: Var) -> tuple[np.ndarray, ...]:
    """`ops.normalisation(adjacency.value)`, made once per forward: the gcn layers that read the
    same adjacency share it, as a hand-written network normalises once."""
    key = ("normalisation", id(adjacency))
    made = ctx.shared.get(key)
    if made is None or made[0] is not adjacency:
        if len(ctx.shared) >= _SHARED:  # a context kept from step to step (free_run) stays small
            ctx.shared.clear()
        made = ctx.shared[key] = (adjacency, ops.normalisation(adjacency.value))
    return made[1]


def gcn(ctx: Context, layer: Layer, x: dict[str, Var], p) -> Var:
    """features (..., N, F), adjacency (..., N, N) -> (..., N, units): `linear`, then
    `propagate` (D^-1/2 (A + I) D^-1/2 times it, one node; the normalisation made once per
    forward for every layer reading the same adjacency), `add`, the activation; the adjacency
    gets its gradient too, when one is asked for."""
    features, adjacency = x["features"], x["adjacency"]
    made = _normalisation(ctx, adjacency)
    y = ops.propagate(adjacency, ops.linear(features, p["weight"]), made)
    if "bias" in p:
        y = ops.add(y, p["bias"])
    return activated(ctx, layer, y, layer.options.act)


def readout(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """(..., N, F) or (B, T, F) -> (..., F): `mean`, `total` or `max_over` over axis -2 (at a
    tie the maxima share the gradient)."""
    mode = layer.options.mode
    if mode == "mean":
        return ops.mean(x, -2)
    if mode == "sum":
        return ops.total(x, -2)
    return ops.max_over(x, -2)


def posenc(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """(..., L, d) -> the same: `add_const` of `sinusoids` (kinds/attention.py), or `add` of
    `take` of the learned weight's first L rows."""
    steps = x.shape[-2]
    if "weight" not in p:
        return ops.add_const(x, sinusoids(steps, x.shape[-1], ctx.dtype))
    max_len = p["weight"].shape[0]
    if steps > max_len:
        raise ValueError(
            f"a learned positional encoding has {max_len} positions (max_len), but the sequence "
            f"has {steps} steps"
        )
    return ops.add(x, ops.take(p["weight"], slice(0, steps)))


def last(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """(B, T, ...) -> (B, ...): `take` of the last step."""
    return ops.take(x, (slice(None), -1))


def first(ctx: Context, layer: Layer, x: Var, p) -> Var:
    """(B, T, ...) -> (B, ...): `take` of the first step."""
    return ops.take(x, (slice(None), 0))


# ---- generative ----------------------------------------------------------------------------
def sample(ctx: Context, layer: Layer, x: dict[str, Var], p) -> Var:
    """mean, logvar (B, ...) -> z (B, ...): `exp`, `scale`, `mul_const` (the noise), `add` in
    training, the mean in evaluation; its KL term, from `sub`, `mul`, `exp`, `total`, `scale`, goes
    to ctx.kl."""
    mean, logvar = x["mean"], x["logvar"]
    inner = ops.sub(ops.sub(ops.add_const(logvar, 1.0), ops.mul(mean, mean)), ops.exp(logvar))
    # summed per example, averaged over the batch
    ctx.kl.append(ops.scale(ops.total(inner), -0.5 / mean.shape[0]))
    if not ctx.training:
        return mean
    shape = np.broadcast_shapes(mean.shape, logvar.shape)
    noise = ctx.rng.standard_normal(shape, dtype=ctx.dtype)
    return ops.add(mean, ops.mul_const(ops.exp(ops.scale(logvar, 0.5)), noise))


# ---- stateful kinds --------------------------------------------------------------------------
def _through_time(
    step_fn: Callable[[Var, object], tuple[Var, object]], xg: Var, state: object = None
) -> Var:
    """Run a cell over (B, T, ...) from `state` (None: zeros) -> the outputs stacked (B, T, ...)."""
    outputs = []
    for xt in ops.unstack_time(xg):
        out, state = step_fn(xt, state)
        outputs.append(out)
    return ops.stack_time(outputs)


def _rnn_cell(layer: Layer, p) -> Callable:
    recurrent = np.ascontiguousarray(p["weight_hh"].value.T)  # once for every step

    def cell(xg, h):
        h = cells.rnn_step(xg, h, p["weight_hh"], p.get("bias_hh"), layer.options.act, recurrent)
        return h, h

    return cell


def _gru_cell(layer: Layer, p) -> Callable:
    def cell(xg, h):
        h = cells.gru_step(xg, h, p["weight_hh"], p.get("bias_hh"))
        return h, h

    return cell


def _lif_cell(layer: Layer, p) -> Callable:
    o = layer.options
    return lambda xg, v: cells.lif_step(xg, v, o.decay, o.threshold)


def _stateful(
    make_cell: Callable, doc: str, weight: str = "weight_ih", bias: str = "bias_ih"
) -> Stateful:
    """A kind stepped by a composed cell; over a whole sequence the input projection runs once,
    for every step. `h0` is the state before the first step (None: zeros)."""

    def sequence(ctx, layer, x, p, h0=None):
        return _through_time(make_cell(layer, p), ops.linear(x, p[weight], p.get(bias)), h0)

    def step(ctx, layer, x, p, state):
        return make_cell(layer, p)(ops.linear(x, p[weight], p.get(bias)), state)

    return Stateful(sequence, step, doc)


def _memory(step_of: Callable, doc: str) -> Stateful:
    """A memory kind (ntm, dnc): `step_of(x_t, state, params, options) -> (out, state)`, stepped
    over the sequence, or once a step on a `~>` cycle."""

    def sequence(ctx, layer, x, p):
        return _through_time(lambda xt, state: step_of(xt, state, p, layer.options), x)

    def step(ctx, layer, x, p, state):
        return step_of(x, state, p, layer.options)

    return Stateful(sequence, step, doc)


def _lstm_sequence(ctx, layer, x, p, h0=None):
    return cells.lstm_sequence(
        x, p["weight_ih"], p.get("bias_ih"), p["weight_hh"], p.get("bias_hh"), h0
    )


def _gru_sequence(ctx, layer, x, p, h0=None):
    return cells.gru_sequence(
        ops.linear(x, p["weight_ih"], p.get("bias_ih")), p["weight_hh"], p.get("bias_hh"), h0
    )


def _lstm_step(ctx, layer, x, p, state):
    h, c = cells.lstm_cell(
        ops.linear(x, p["weight_ih"], p.get("bias_ih")), state, p["weight_hh"], p.get("bias_hh")
    )
    return h, (h, c)


def _stacked(one: Stateful, cell_state: Callable[[Var], object] = lambda h0: h0) -> Stateful:
    """`layers=N`: N cells of `one`, each reading the one below through `dropped` (not after the
    last), as nn.LSTM(num_layers=N, dropout=p) runs them; a step's state is one per layer. The
    main input is x[None]; a `state` port's vector x["state"] starts every layer (as
    `cell_state(h0)`: lstm's (h0, zeros))."""

    def own(layer: Layer, p: dict[str, Var], suffix: str) -> dict[str, Var]:
        return {key.removesuffix(suffix): v for key, v in p.items() if key.endswith(suffix)}

    def between(ctx: Context, layer: Layer, k: int, x: Var) -> Var:
        o = layer.options
        return x if k == o.layers - 1 else dropped(ctx, x, o.dropout)

    def sequence(ctx, layer, x, p):
        if layer.name in ctx.handed or layer.name in ctx.handed.values():
            return handing(ctx, layer, x, p)
        x, h0 = x[None], x.get("state")
        backwards = (slice(None), slice(None, None, -1))  # the time axis reversed
        for k, suffix in enumerate(layer_suffixes(layer.options)):
            y = one.sequence(ctx, layer, x, own(layer, p, suffix), h0)
            if layer.options.bidirectional:  # the `_reverse` cell from the last step, turned back
                mine = own(layer, p, suffix + "_reverse")
                back = one.sequence(ctx, layer, ops.take(x, backwards), mine, h0)
                y = ops.concat([y, ops.take(back, backwards)], -1)
            x = between(ctx, layer, k, y)
        return x

    def handing(ctx, layer, x, p):
        """An encoder that hands its final state on, or a decoder that starts from one: step by
        step (the gradient reaches the encoder through every layer's h and c), the final state
        kept in ctx.finals."""
        state, outputs = None, []
        for xt in ops.unstack_time(x[None]):
            out, state = step(ctx, layer, x | {None: xt}, p, state)
            outputs.append(out)
        ctx.finals[layer.name] = state
        return ops.stack_time(outputs)

    def step(ctx, layer, x, p, state):
        x, h0 = x[None], x.get("state")
        suffixes = layer_suffixes(layer.options)
        if state is None and layer.name in ctx.handed:  # the encoder's final state
            state = ctx.finals[ctx.handed[layer.name]]
        if state is None:  # the first step: from the state port, or zeros (None)
            state = (None if h0 is None else cell_state(h0),) * len(suffixes)
        states = []
        for k, suffix in enumerate(suffixes):
            x, s = one.step(ctx, layer, x, own(layer, p, suffix), state[k])
            states.append(s)
            x = between(ctx, layer, k, x)
        return x, tuple(states)

    return Stateful(sequence, step, one.doc)


def _with_zero_cell(h0: Var) -> tuple[Var, Var]:
    """An lstm's first state from a `state` vector: (h0, c = zeros)."""
    return h0, const(np.zeros(h0.shape, h0.value.dtype))


def _activation_layer(name: str) -> Callable:
    def lower(ctx: Context, layer: Layer, x: Var, p) -> Var:
        act = Activation(name=name, alpha=getattr(layer.options, "alpha", None))
        return activated(ctx, layer, x, act, feature_axis(layer.shape.dims))

    lower.__name__ = name
    lower.__doc__ = f"x -> x's shape: `{name}`, its row of the activations' table."
    return lower


LOWERINGS: dict[str, Callable | Stateful] = {
    "input": passes,
    "port": passes,
    "dense": dense,
    "maxout": maxout,
    "embedding": embedding,
    "conv": conv,
    "deconv": deconv,
    "pool": pool,
    "unpool": unpool,
    "global_pool": global_pool,
    "flatten": flatten,
    "reshape": reshape,
    "upsample": upsample,
    "dropout": dropout,
    "noise": noise,
    "batchnorm": batchnorm,
    "layernorm": layernorm,
    "add": add,
    "mul": mul,
    "concat": concat,
    "rnn": _stacked(
        _stateful(
            _rnn_cell,
            "x (B, T, F) -> (B, T, units): one `linear` over the whole sequence for the input "
            "side, then per step `linear`, the activation, `add` (cells.rnn_step); `layers=N` "
            "runs N in turn, `dropped` between.",
        )
    ),
    "lstm": _stacked(
        Stateful(
            _lstm_sequence,
            _lstm_step,
            "x (B, T, F) -> (B, T, units): `lstm_sequence` (cells.py), the input side and the "
            "recurrence fused, a backward of its own; `layers=N` runs N in turn, `dropped` "
            "between.",
        ),
        _with_zero_cell,
    ),
    "gru": _stacked(
        Stateful(
            _gru_sequence,
            _stateful(_gru_cell, "").step,
            "x (B, T, F) -> (B, T, units): one `linear` over the whole sequence for the input "
            "side, then `gru_sequence` (cells.py), fused: a backward of its own; in a loop, per "
            "step `linear`, `split`, sigmoid and tanh, `add`, `mul`, `sub` (cells.gru_step); "
            "`layers=N` runs N in turn, `dropped` between.",
        )
    ),
    "last": last,
    "first": first,
    "attention": attention,
    "posenc": posenc,
    "gcn": gcn,
    "rbf": rbf,
    "readout": readout,
    "sample": sample,
    "som": som,
    "markov": markov,
    "rbm": rbm,
    "boltzmann": boltzmann,
    "hopfield": hopfield,
    "primary_capsules": primary_capsules,
    "capsules": capsules,
    "length": capsule_length,
    "mask": capsule_mask,
    "lif": _stateful(
        _lif_cell,
        "x (B, T, F) -> spikes (B, T, units): one `linear` over the whole sequence, then per step "
        "`scale` (decay), `add`, `spike`, `add_const` (the reset, a constant: no gradient).",
        "weight",
        "bias",
    ),
    "esn": _stateful(
        esn_cell,
        "x (B, T, F) -> (B, T, units): one `linear` over the whole sequence for the input side, "
        "then per step `linear`, `add`, tanh, `scale` and `add` (reservoir.esn_step).",
        "weight_ih",
        "bias",
    ),
    "lsm": _stateful(
        lsm_cell,
        "x (B, T, F) -> spikes (B, T, units): one `linear` over the whole sequence, then per step "
        "`linear` of the last spikes, `add`, and lif's `scale`, `add`, `spike`, `add_const` "
        "(reservoir.lsm_step).",
        "weight_ih",
        "bias",
    ),
    "ntm": _memory(
        ntm_step,
        "x (B, T, F) -> (B, T, controller + heads * width): per step `lstm_cell` (cells.py) on "
        "the input and the vectors read, then memory.py's `heads`, one primitive for the heads' "
        "linear maps, addressing (`cosine`, `softmax`, interpolation, `shift`, `sharpen`), "
        "`write` and `read`, its backward written out (`ntm_step_composed`: the same of those "
        "primitives, the reference).",
    ),
    "dnc": _memory(
        dnc_step,
        "x (B, T, F) -> (B, T, controller + heads * width): per step `lstm_cell` (cells.py) on "
        "the input and the vectors read, `linear` to the interface, then dnc.py's `usage`, "
        "`allocation`, memory.py's `cosine` and `softmax` (content), `write_weighting`, "
        "memory.py's `write`, `links`, `precedence`, `directions`, `read_weighting` and "
        "memory.py's `read`.",
    ),
    **{name: _activation_layer(name) for name in ACTIVATIONS},
}
