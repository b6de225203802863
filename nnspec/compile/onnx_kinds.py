"""The ONNX lowering of every kind: one table, `LOWERINGS`, keyed by kind name.

A stateless kind is `lower(g, ctx, layer, x, p) -> value`: `g` the builder (onnx_graph.py),
`x` the name of what enters (fan-in joined; a dict by port for kinds with ports; a list for
merges), `p` the layer's parameters as initializer names by key. Values carry `ctx.lead`
leading axes: `[B, ...]`, or `[B, T, ...]` for a timed layer over whole arrays. A stateful kind
is a `Stateful`: its input projection (`project`, over any leading axes) and one step of its
cell (`step`, `[B, F]` in, with its state), which the target runs inside an ONNX Scan; `lstm`
and `gru` over a whole sequence are ONNX's fused LSTM and GRU ops instead (`fused`), their
weights reordered in the graph from PyTorch's gate order to ONNX's. The
emitted model is the network in evaluation mode: dropout passes its input, `sample` its mean,
batchnorm uses its running statistics.

Adding a kind to the registry means adding its row here, or to `CANNOT` with the reason
(tests/test_compile_onnx.py fails, naming the kind, until then).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ..backends.numpy.boltzmann import links as boltzmann_links
from ..errors import SpecError
from ..kinds.activation import ACTIVATIONS, Activation
from ..kinds.attention import sinusoids
from ..kinds.capsules import EPSILON
from ..kinds.conv import interpolation, pair
from ..kinds.recurrent import layer_suffixes
from ..program import Layer, Program
from .onnx_graph import Builder
from .onnx_hopfield import hopfield


@dataclass
class Context:
    """What a lowering may read besides its inputs."""

    program: Program
    root: Builder  # the main graph: batch size, steps, zeros
    lead: int = 1  # leading axes: 1 (batch) or 2 (batch, time)
    source_dims: tuple[int, ...] = ()  # the first source's dims (after the leading axes)


@dataclass(frozen=True)
class Stateful:
    """A kind with a state from step to step: `project(g, layer, x, p)` the input side over any
    leading axes, `step(g, layer, xg, states, p) -> (output, states)` one [B, ...] step; `states`
    names the [B, units] state arrays it carries (zeros at first)."""

    project: Callable
    step: Callable
    states: tuple[str, ...]
    doc: str
    # over a whole [B, T, F] sequence outside a `~>` cycle: ONNX's own fused op, if it has one
    fused: Callable | None = None
    # a stack's one cell (`_stacked`), which a bidirectional layer runs each way, layer by layer
    single: Stateful | None = None

    def start(self, g: Builder, layer: Layer, h0: str | None) -> list[str]:
        """The first value of each state: a `state` port's vector `h0` [B, units] for every
        layer's h (None: zeros), zeros for the rest (an lstm's c, a membrane)."""
        zeros = g.zeros(layer.shape.dims, g)
        return [
            h0 if h0 is not None and name.startswith("h") else zeros
            for name in self.states_of(layer)
        ]

    def states_of(self, layer: Layer) -> tuple[str, ...]:
        """The states `layer` carries: one set per stacked layer (`h0`, `c0`, `h1`, ...)."""
        layers = getattr(layer.options, "layers", 1)
        if layers == 1:
            return self.states
        return tuple(f"{state}{k}" for k in range(layers) for state in self.states)


def feature_axis(dims: tuple[int, ...]) -> int:
    return -3 if len(dims) == 3 else -1


def _rank(ctx: Context, layer: Layer) -> int:
    return ctx.lead + len(layer.shape.dims)


def linear(g: Builder, x: str, weight: str, bias: str | None, rank: int) -> str:
    """x (..., in) -> x W^T + b (..., out): Gemm for [B, in], else MatMul by W^T and Add."""
    if rank == 2:
        return g.op("Gemm", [x, weight] + ([bias] if bias else []), transB=1)
    y = g.op("MatMul", [x, g.op("Transpose", [weight], perm=[1, 0])])
    return g.op("Add", [y, bias]) if bias else y


def activate(g: Builder, x: str, act: Activation, axis: int = -1) -> str:
    """act(x), as the NumPy backend's table (activations.py) computes it."""
    name = act.name
    alpha = 0.0 if act.alpha is None else float(act.alpha)
    if name in ("identity", "linear"):
        return x
    if name == "step":
        return g.op("Cast", [g.op("Greater", [x, g.floats(0.0)])], to=1)
    if name in ("sigmoid", "tanh", "relu"):
        return g.op(name.capitalize(), [x])
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], alpha=alpha)
    if name == "elu":
        return g.op("Elu", [x], alpha=alpha)
    if name == "gelu":  # exact: x * Φ(x) = x (1 + erf(x / sqrt 2)) / 2
        erf = g.op("Erf", [g.op("Mul", [x, g.floats(math.sqrt(0.5))])])
        return g.op("Mul", [g.op("Mul", [x, g.floats(0.5)]), g.op("Add", [erf, g.floats(1.0)])])
    if name == "softplus":  # max(x, 0) + log(1 + exp(-|x|)): no overflow for large x
        tail = g.op("Exp", [g.op("Neg", [g.op("Abs", [x])])])
        return g.op("Add", [g.op("Relu", [x]), g.op("Log", [g.op("Add", [tail, g.floats(1.0)])])])
    if name == "silu":  # x * sigmoid(x): opset 17 has no Swish
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    if name == "mish":  # x * tanh(softplus(x)): Mish comes with opset 18, this graph is 17
        return g.op("Mul", [x, g.op("Tanh", [activate(g, x, Activation(name="softplus"))])])
    if name == "hardtanh":
        return g.op("Clip", [x, g.floats(-1.0), g.floats(1.0)])
    if name == "selu":  # ONNX's defaults are PyTorch's constants, to float32; written out in full
        return g.op("Selu", [x], alpha=1.6732632423543772, gamma=1.0507009873554805)
    if name == "softmax":
        return g.op("Softmax", [x], axis=axis)
    raise KeyError(name)  # every activation of ACTIVATIONS has a branch above (a test says so)


def _folded(g: Builder, ctx: Context, x: str, inner: Callable[[str], str], out: tuple) -> str:
    """An image op on [B, T, C, H, W]: time folded into the batch, then unfolded to `out`."""
    if ctx.lead == 1:
        return inner(x)
    shape = g.op("Shape", [x], start=0, end=2)
    folded = g.op("Reshape", [x, g.ints((-1,) + tuple(ctx.source_dims))])
    y = inner(folded)
    return g.op("Reshape", [y, g.op("Concat", [shape, g.ints(out)], axis=0)])


# ---- io and merges -------------------------------------------------------------------------
def passes(g, ctx, layer, x, p):
    """x -> x: an Identity (a block's port; dropout and noise in evaluation)."""
    return g.op("Identity", [x])


def _fold(op_type: str) -> Callable:
    def lower(g, ctx, layer, xs, p):
        total = xs[0]
        for x in xs[1:]:
            total = g.op(op_type, [total, x])
        return total if len(xs) > 1 else g.op("Identity", [total])

    lower.__doc__ = f"xs of one shape -> that shape: `{op_type}`, input by input."
    return lower


def concat(g, ctx, layer, xs, p):
    """xs -> their features joined: Concat along the feature axis."""
    return g.op("Concat", list(xs), axis=feature_axis(layer.shape.dims))


# ---- dense ---------------------------------------------------------------------------------
def dense(g, ctx, layer, x, p):
    """x (..., in) -> (..., units): Gemm (or MatMul, Add), then the activation."""
    z = linear(g, x, p["weight"], p.get("bias"), _rank(ctx, layer))
    return activate(g, z, layer.options.act)


def maxout(g, ctx, layer, x, p):
    """x (..., in) -> (..., units): linear, Reshape to (..., units, pieces), ReduceMax."""
    o = layer.options
    z = linear(g, x, p["weight"], p.get("bias"), _rank(ctx, layer))
    pieces = g.op("Reshape", [z, g.ints([0] * (_rank(ctx, layer) - 1) + [o.units, o.pieces])])
    return g.op("ReduceMax", [pieces], axes=[-1], keepdims=0)


def embedding(g, ctx, layer, x, p):
    """tokens (..., k) -> (..., k, dim), (..., dim) when k = 1: Cast to int64, Gather rows."""
    tokens = g.op("Cast", [x], to=7)  # int64
    if ctx.source_dims[-1] == 1:
        tokens = g.op("Squeeze", [tokens, g.ints([-1])])
    return g.op("Gather", [p["weight"], tokens], axis=0)


# ---- images --------------------------------------------------------------------------------
def conv(g, ctx, layer, x, p):
    """x (..., C, H, W) -> (..., channels, OH, OW): Conv with the layer's pads, activation."""
    o = layer.options
    top, bottom, left, right = layer.kind.pads(o, *ctx.source_dims[-2:])
    kernel = list(pair(o.kernel))

    def inner(v):
        inputs = [v, p["weight"]] + ([p["bias"]] if "bias" in layer.params else [])
        return g.op(
            "Conv",
            inputs,
            kernel_shape=kernel,
            strides=list(pair(o.stride)),
            pads=[top, left, bottom, right],
            dilations=list(pair(o.dilation)),
            group=o.groups,
        )

    y = _folded(g, ctx, x, inner, layer.shape.dims)
    return activate(g, y, o.act, axis=-3)


def deconv(g, ctx, layer, x, p):
    """x (..., C, H, W) -> (..., channels, OH, OW): ConvTranspose, then the activation; with
    groups, one ConvTranspose per group on its Split of the channels, weight and bias, then
    Concat (onnx's reference evaluator gets a grouped ConvTranspose wrong when the channels in
    and out differ)."""
    o = layer.options
    (ph, pw), opad = pair(o.padding), list(pair(o.output_padding))
    bias = "bias" in layer.params

    def transposed(v, weight, b):
        return g.op(
            "ConvTranspose",
            [v, weight] + ([b] if bias else []),
            kernel_shape=list(pair(o.kernel)),
            strides=list(pair(o.stride)),
            pads=[ph, pw, ph, pw],
            output_padding=opad,
            dilations=list(pair(o.dilation)),
        )

    def inner(v):
        if o.groups == 1:
            return transposed(v, p["weight"], p["bias"] if bias else None)
        n = o.groups
        inputs, outputs = layer.params["weight"].shape[:2]
        vs = g.op("Split", [v, g.ints([inputs // n] * n)], outputs=n, axis=1)
        ws = g.op("Split", [p["weight"], g.ints([inputs // n] * n)], outputs=n, axis=0)
        bs = g.op("Split", [p["bias"], g.ints([outputs] * n)], outputs=n, axis=0) if bias else ws
        parts = [transposed(*group) for group in zip(vs, ws, bs, strict=True)]
        return g.op("Concat", parts, axis=1)

    y = _folded(g, ctx, x, inner, layer.shape.dims)
    return activate(g, y, o.act, axis=-3)


def pool(g, ctx, layer, x, p):
    """x (..., C, H, W) -> (..., C, OH, OW): Pad (-inf for max, zeros for a mean) as far as the
    last window reaches, then MaxPool or AveragePool without padding; a mean whose window runs
    past the padded image is rescaled to divide by its cells inside it, as PyTorch's ceil mode."""
    o = layer.options
    (kh, kw) = size = pair(o.size)
    (sh, sw) = pair(o.stride) if o.stride is not None else size
    ph, pw = pair(o.padding)
    height, width = ctx.source_dims[-2:]
    oh, ow = layer.shape.dims[1:]
    after = (max(ph, (oh - 1) * sh + kh - height - ph), max(pw, (ow - 1) * sw + kw - width - pw))

    def inner(v):
        if ph or pw or after != (0, 0):
            fill = g.floats(-np.inf if o.mode == "max" else 0.0)
            pads = g.ints([0, 0, ph, pw, 0, 0, after[0], after[1]])
            v = g.op("Pad", [v, pads, fill], mode="constant")
        op_type = "MaxPool" if o.mode == "max" else "AveragePool"
        y = g.op(op_type, [v], kernel_shape=[kh, kw], strides=[sh, sw])
        got = ((height + ph + after[0] - kh) // sh + 1, (width + pw + after[1] - kw) // sw + 1)
        if got != (oh, ow):
            y = g.op("Slice", [y, g.ints([0, 0]), g.ints([oh, ow]), g.ints([2, 3])])
        inside = (height + 2 * ph, width + 2 * pw)
        if o.mode != "max" and (after[0] > ph or after[1] > pw):
            rows = np.minimum(np.arange(oh) * sh + kh, inside[0]) - np.arange(oh) * sh
            cols = np.minimum(np.arange(ow) * sw + kw, inside[1]) - np.arange(ow) * sw
            scale = (kh * kw) / np.outer(rows, cols)
            y = g.op("Mul", [y, g.floats(scale)])
        return y

    return _folded(g, ctx, x, inner, layer.shape.dims)


def unpool(g, ctx, layer, x, p):
    """x (..., C, OH, OW), like (..., C, H, W) -> (..., C, H, W): MaxPool of `like` with the
    pool's windows for its Indices (flat over the whole tensor), then ScatterElements of x into
    zeros of `like`'s shape (MaxUnpool in onnxruntime refuses the output sizes a padded or
    ceil-mode pool leaves, smaller than its own formula)."""
    pool = layer.options._pool
    size = pair(pool.size)
    stride = pair(pool.stride) if pool.stride is not None else size
    ph, pw = pair(pool.padding)
    window = {"kernel_shape": list(size), "strides": list(stride), "pads": [ph, pw, ph, pw]}

    def inner(values, like):
        _, at = g.op("MaxPool", [like], outputs=2, ceil_mode=int(pool.ceil), **window)
        shape, flat = g.op("Shape", [like]), g.ints([-1])
        zeros = g.op("Reshape", [g.op("ConstantOfShape", [shape]), flat])
        parts = [zeros, g.op("Reshape", [at, flat]), g.op("Reshape", [values, flat])]
        return g.op("Reshape", [g.op("ScatterElements", parts, axis=0), shape])

    if ctx.lead == 1:
        return inner(x["x"], x["like"])
    lead = g.op("Shape", [x["x"]], start=0, end=2)
    values, like = (
        g.op("Reshape", [v, g.op("Concat", [g.ints([-1]), g.op("Shape", [v], start=2)], axis=0)])
        for v in (x["x"], x["like"])
    )  # time folded into the batch
    return g.op(
        "Reshape", [inner(values, like), g.op("Concat", [lead, g.ints(layer.shape.dims)], axis=0)]
    )


def global_pool(g, ctx, layer, x, p):
    """x (..., C, H, W) -> (..., C): ReduceMax or ReduceMean over H and W."""
    op_type = "ReduceMax" if layer.options.mode == "max" else "ReduceMean"
    return g.op(op_type, [x], axes=[-2, -1], keepdims=0)


def flatten(g, ctx, layer, x, p):
    """(..., C, H, W) or (..., N, F) -> (..., C*H*W): Reshape, row-major."""
    return g.op("Reshape", [x, g.ints([0] * ctx.lead + [-1])])


def reshape(g, ctx, layer, x, p):
    """(..., any) -> (..., shape): Reshape, the leading axes kept (0) and the checker's sizes."""
    return g.op("Reshape", [x, g.ints([0] * ctx.lead + list(layer.shape.dims))])


def upsample(g, ctx, layer, x, p):
    """x (..., C, H, W) -> (..., C, factor * H, factor * W) or (..., C, *size): nearest by a
    factor is Resize (asymmetric, floor: output cell i reads i // factor); bilinear, and nearest
    to a size (which rounds as PyTorch's float32 kernel), are `A_h x A_w^T` by two MatMuls with
    the axes' interpolation matrices (kinds.conv.interpolation, PyTorch's align_corners=False)."""
    o = layer.options
    if o.mode == "nearest" and o.factor is not None:
        scales = g.floats([1.0] * (ctx.lead + 1) + [float(o.factor)] * 2)
        return g.op(
            "Resize",
            [x, "", scales],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
    height, width = ctx.source_dims[-2:]
    out_h, out_w = layer.shape.dims[1:]
    a_h = g.floats(interpolation(height, out_h, o.mode))
    a_w = g.floats(np.asarray(interpolation(width, out_w, o.mode)).T)
    return g.op("MatMul", [g.op("MatMul", [a_h, x]), a_w])


# ---- normalisation -------------------------------------------------------------------------
def batchnorm(g, ctx, layer, x, p):
    """x -> x's shape, per feature (channel for images), with the running statistics:
    (x - mean) / sqrt(var + eps) * weight + bias."""
    image = len(layer.shape.dims) == 3

    def per_feature(name):
        return g.op("Unsqueeze", [name, g.ints([1, 2])]) if image else name

    mean, var = per_feature(p["running_mean"]), per_feature(p["running_var"])
    std = g.op("Sqrt", [g.op("Add", [var, g.floats(layer.options.eps)])])
    normalised = g.op("Div", [g.op("Sub", [x, mean]), std])
    scaled = g.op("Mul", [normalised, per_feature(p["weight"])])
    return g.op("Add", [scaled, per_feature(p["bias"])])


def layernorm(g, ctx, layer, x, p):
    """x -> x's shape, per example over the last axis (C, H, W for images):
    LayerNormalization."""
    axis = -3 if len(layer.shape.dims) == 3 else -1
    return g.op(
        "LayerNormalization", [x, p["weight"], p["bias"]], axis=axis, epsilon=layer.options.eps
    )


# ---- attention and graphs ------------------------------------------------------------------
def attention(g, ctx, layer, x, p):
    """query (B, L, Fq), key (B, S, Fk), value (B, S, Fv) -> (B, L, dim): four linears, heads
    by Reshape and Transpose, MatMul, scale, a causal mask of -inf above the diagonal (Trilu),
    Softmax, MatMul."""
    o = layer.options
    query = x["query"]
    key = x.get("key", query)
    value = x.get("value", key)
    dim = p_shape(layer, "weight_q")[0]
    stepped = layer.recurrent  # in a cycle's Scan: one step's query [B, Fq], every step's keys
    if stepped:
        query = g.op("Unsqueeze", [query, g.ints([1])])

    def heads(v):
        split = g.op("Reshape", [v, g.ints([0, 0, o.heads, dim // o.heads])])
        return g.op("Transpose", [split], perm=[0, 2, 1, 3])

    q = heads(linear(g, query, p["weight_q"], p.get("bias_q"), 3))
    k = heads(linear(g, key, p["weight_k"], p.get("bias_k"), 3))
    v = heads(linear(g, value, p["weight_v"], p.get("bias_v"), 3))
    scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
    scores = g.op("Mul", [scores, g.floats(1.0 / math.sqrt(dim // o.heads))])
    if o.causal:  # item i sees keys j <= i
        sizes = g.op("Shape", [scores], start=2, end=4)
        full = g.op("ConstantOfShape", [sizes], value=_float_tensor(-np.inf))
        scores = g.op("Add", [scores, g.op("Trilu", [full, g.ints(1, scalar=True)], upper=1)])
    mixed = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    joined = g.op("Reshape", [g.op("Transpose", [mixed], perm=[0, 2, 1, 3]), g.ints([0, 0, -1])])
    out = linear(g, joined, p["weight_o"], p.get("bias_o"), 3)
    return g.op("Squeeze", [out, g.ints([1])]) if stepped else out


def p_shape(layer: Layer, key: str) -> tuple[int, ...]:
    return tuple(layer.params[key].shape)


def _float_tensor(value: float):
    from onnx import TensorProto, helper

    return helper.make_tensor("", TensorProto.FLOAT, [1], [value])


def gcn(g, ctx, layer, x, p):
    """features (..., N, F), adjacency (..., N, N) -> (..., N, units): Add the identity,
    D^-1/2 (ReduceSum, Pow) on both sides, MatMul by the features' linear, bias, activation."""
    features, adjacency = x["features"], x["adjacency"]
    nodes = layer.shape.dims[-2]
    looped = g.op("Add", [adjacency, g.floats(np.eye(nodes))])
    degree = g.op("ReduceSum", [looped, g.ints([-1])], keepdims=0)
    inv_sqrt = g.op("Pow", [degree, g.floats(-0.5)])
    rows = g.op("Unsqueeze", [inv_sqrt, g.ints([-1])])
    cols = g.op("Unsqueeze", [inv_sqrt, g.ints([-2])])
    normalised = g.op("Mul", [g.op("Mul", [rows, looped]), cols])
    projected = g.op("MatMul", [features, g.op("Transpose", [p["weight"]], perm=[1, 0])])
    y = g.op("MatMul", [normalised, projected])
    if "bias" in layer.params:
        y = g.op("Add", [y, p["bias"]])
    return activate(g, y, layer.options.act)


def rbf(g, ctx, layer, x, p):
    """x (..., d) -> (..., units): the squared distances |x|^2 - 2 x c^T + |c|^2 (ReduceSum,
    MatMul), Max with 0, Mul by eps^2, Neg, Exp: exp(-(eps_j ||x - c_j||)^2)."""
    c, eps = p["centres"], p["eps"]
    xx = g.op("ReduceSum", [g.op("Mul", [x, x]), g.ints([-1])], keepdims=1)
    cc = g.op("ReduceSum", [g.op("Mul", [c, c]), g.ints([-1])], keepdims=0)
    xc = g.op("MatMul", [x, g.op("Transpose", [c], perm=[1, 0])])
    d2 = g.op("Add", [g.op("Sub", [xx, g.op("Mul", [xc, g.floats(2.0)])]), cc])
    d2 = g.op("Max", [d2, g.floats(0.0)])
    return g.op("Exp", [g.op("Neg", [g.op("Mul", [d2, g.op("Mul", [eps, eps])])])])


def readout(g, ctx, layer, x, p):
    """(..., N, F) or (B, T, F) -> (..., F): ReduceMean, ReduceSum or ReduceMax over axis -2."""
    mode = layer.options.mode
    if mode == "sum":
        return g.op("ReduceSum", [x, g.ints([-2])], keepdims=0)
    return g.op("ReduceMean" if mode == "mean" else "ReduceMax", [x], axes=[-2], keepdims=0)


def som(g, ctx, layer, x, p):
    """x (..., d) -> (..., units): Unsqueeze, Sub the weight (units, d), Mul, ReduceSum: the
    squared distance to every unit; ArgMin (the first at a tie), Equal to each unit's index
    (Unsqueeze, a constant 0 .. units - 1), Cast to float: one-hot."""
    w = p["weight"]
    units = layer.params["weight"].shape[0]
    apart = g.op("Sub", [g.op("Unsqueeze", [x, g.ints([-2])]), w])
    squared = g.op("ReduceSum", [g.op("Mul", [apart, apart]), g.ints([-1])], keepdims=0)
    winners = g.op("ArgMin", [squared], axis=-1, keepdims=0, select_last_index=0)
    hot = g.op("Equal", [g.op("Unsqueeze", [winners, g.ints([-1])]), g.ints(list(range(units)))])
    return g.op("Cast", [hot], to=1)


def posenc(g, ctx, layer, x, p):
    """(..., L, d) -> the same: Add of the encoding [L, d]. Sinusoids of a length the spec fixes
    are a constant (as the NumPy backend makes it, in float64); of any length they are made in
    the graph: Range over L, times each feature's rate, plus pi/2 at odd features (cos a =
    sin(a + pi/2)), Sin. A learned weight is Sliced to its first L rows."""
    width = layer.shape.dims[-1]
    known = layer.shape.steps if layer.shape.timed else layer.shape.dims[0]
    length = g.ints([known]) if known is not None else g.op("Shape", [x], start=-2, end=-1)
    if "weight" in p:
        rows = g.op("Slice", [p["weight"], g.ints([0]), length, g.ints([0])])
        return g.op("Add", [x, rows])
    if known is not None:
        return g.op("Add", [x, g.floats(sinusoids(known, width))])
    steps = g.op(
        "Range", [g.ints(0, scalar=True), g.op("Squeeze", [length]), g.ints(1, scalar=True)]
    )
    t = g.op("Unsqueeze", [g.op("Cast", [steps], to=1), g.ints([1])])
    feature = np.arange(width)
    rate = 10000.0 ** (-(feature - feature % 2) / width)
    phase = (feature % 2) * (np.pi / 2)
    angle = g.op("Add", [g.op("Mul", [t, g.floats(rate)]), g.floats(phase)])
    return g.op("Add", [x, g.op("Sin", [angle])])


def last(g, ctx, layer, x, p):
    """(B, T, ...) -> (B, ...): Gather of step -1 along axis 1."""
    return g.op("Gather", [x, g.ints(-1, scalar=True)], axis=1)


def first(g, ctx, layer, x, p):
    """(B, T, ...) -> (B, ...): Gather of step 0 along axis 1."""
    return g.op("Gather", [x, g.ints(0, scalar=True)], axis=1)


# ---- generative ----------------------------------------------------------------------------
def sample(g, ctx, layer, x, p):
    """mean, logvar -> the mean (evaluation: no noise; the KL term is training's)."""
    return g.op("Identity", [x["mean"]])


def markov(g, ctx, layer, x, p):
    """state (..., S) -> next state (..., S): MatMul by the transition matrix (S, S); with
    `index`, state numbers (..., 1): Cast to int64, Squeeze, Gather rows."""
    if layer.options.index:
        states = g.op("Squeeze", [g.op("Cast", [x], to=7), g.ints([-1])])  # int64
        return g.op("Gather", [p["transition"], states], axis=0)
    return g.op("MatMul", [x, p["transition"]])


def rbm(g, ctx, layer, x, p):
    """v (B, V) -> P(h = 1 | v) (B, units): Gemm with the hidden bias, then Sigmoid (the visible
    bias, the training rule's, is not read)."""
    return activate(g, linear(g, x, p["weight"], p["bias"], _rank(ctx, layer)), layer.options.act)


def boltzmann(g, ctx, layer, x, p):
    """v (B, V) -> P(v_i = 1 given v_-i) (B, V): the effective weights (Add W and its Transpose, Mul
    by half the links), their blocks by MatMul with constant selections of the visible and
    hidden units; with hidden units, every hidden state a constant S, MatMul and
    ReduceLogSumExp over them for v_i = 1 and v_i = 0, Sub; Add the visible part, Sigmoid."""
    o = layer.options
    visible, pick = o.units, np.eye(o.units + o.hidden)
    w = g.op("Add", [p["weight"], g.op("Transpose", [p["weight"]], perm=[1, 0])])
    w = g.op("Mul", [w, g.floats(0.5 * boltzmann_links(o.units, o.hidden, o.groups))])
    to_v, to_h = g.floats(pick[:, :visible]), g.floats(pick[:, visible:])
    rows_v = g.op("MatMul", [g.floats(pick[:visible]), w])  # the visible units' rows (V, N)
    vv, b_v = g.op("MatMul", [rows_v, to_v]), g.op("MatMul", [p["bias"], to_v])
    logits = g.op("Add", [g.op("MatMul", [x, vv]), b_v])
    if not o.hidden:
        return g.op("Sigmoid", [logits])
    hv = g.op("MatMul", [rows_v, to_h])  # W_hv transposed (V, H)
    hh = g.op("MatMul", [g.op("MatMul", [g.floats(pick[visible:]), w]), to_h])
    codes = np.arange(2**o.hidden)[:, None] >> np.arange(o.hidden - 1, -1, -1)[None, :]
    s, s_t = g.floats(codes & 1), g.floats((codes & 1).T)
    pairs = g.op("ReduceSum", [g.op("Mul", [g.op("MatMul", [s, hh]), s]), g.ints([-1])], keepdims=0)
    b_h = g.op("MatMul", [p["bias"], to_h])
    q = g.op("Add", [g.op("Mul", [pairs, g.floats(0.5)]), g.op("MatMul", [s, b_h])])
    c = g.op("Unsqueeze", [g.op("MatMul", [x, hv]), g.ints([1])])
    c0 = g.op("Sub", [c, g.op("Mul", [g.op("Unsqueeze", [x, g.ints([2])]), hv])])
    on = g.op("Add", [g.op("MatMul", [g.op("Add", [c0, hv]), s_t]), q])
    off = g.op("Add", [g.op("MatMul", [c0, s_t]), q])
    lse_on = g.op("ReduceLogSumExp", [on], axes=[-1], keepdims=0)
    lse_off = g.op("ReduceLogSumExp", [off], axes=[-1], keepdims=0)
    return g.op("Sigmoid", [g.op("Add", [logits, g.op("Sub", [lse_on, lse_off])])])


# ---- stateful kinds --------------------------------------------------------------------------
def _project(weight: str = "weight_ih", bias: str = "bias_ih") -> Callable:
    def project(g, layer, x, p, rank):
        return linear(g, x, p[weight], p.get(bias), rank)

    return project


def _split(g: Builder, v: str, units: int, parts: int) -> list[str]:
    return g.op("Split", [v, g.ints([units] * parts)], outputs=parts, axis=-1)


def _rnn_step(g, layer, xg, states, p):
    (h,) = states
    pre = g.op("Add", [xg, linear(g, h, p["weight_hh"], p.get("bias_hh"), 2)])
    h = activate(g, pre, layer.options.act)
    return h, [h]


def _gru_step(g, layer, xg, states, p):
    """PyTorch's GRUCell: r, z, n; n = tanh(xn + r * (h W_hn^T + b_hn)), h' = n + z (h - n)."""
    (h,) = states
    units = layer.options.units
    xr, xz, xn = _split(g, xg, units, 3)
    hr, hz, hn = _split(g, linear(g, h, p["weight_hh"], p.get("bias_hh"), 2), units, 3)
    r = g.op("Sigmoid", [g.op("Add", [xr, hr])])
    z = g.op("Sigmoid", [g.op("Add", [xz, hz])])
    n = g.op("Tanh", [g.op("Add", [xn, g.op("Mul", [r, hn])])])
    h = g.op("Add", [n, g.op("Mul", [z, g.op("Sub", [h, n])])])
    return h, [h]


def _lstm_step(g, layer, xg, states, p):
    """PyTorch's LSTMCell: gates i, f, g, o; c' = σf c + σi tanh g, h' = σo tanh c'."""
    h, c = states
    units = layer.options.units
    z = g.op("Add", [xg, linear(g, h, p["weight_hh"], p.get("bias_hh"), 2)])
    i, f, gate, o = _split(g, z, units, 4)
    c = g.op(
        "Add",
        [
            g.op("Mul", [g.op("Sigmoid", [f]), c]),
            g.op("Mul", [g.op("Sigmoid", [i]), g.op("Tanh", [gate])]),
        ],
    )
    h = g.op("Mul", [g.op("Sigmoid", [o]), g.op("Tanh", [c])])
    return h, [h, c]


def _lif_step(g, layer, xg, states, p):
    """v = decay v_prev + xg; spikes s = (v >= threshold); the membrane after: v - s threshold."""
    (v,) = states
    o = layer.options
    v = g.op("Add", [g.op("Mul", [v, g.floats(o.decay)]), xg])
    s = g.op("Cast", [g.op("GreaterOrEqual", [v, g.floats(o.threshold)])], to=1)
    after = g.op("Sub", [v, g.op("Mul", [s, g.floats(o.threshold)])])
    return s, [after]


def _esn_step(g, layer, xg, states, p):
    """h' = (1 - lr) h + lr tanh(xg + h W_hh^T)."""
    (h,) = states
    lr = float(layer.options.lr)
    new = g.op("Tanh", [g.op("Add", [xg, linear(g, h, p["weight_hh"], None, 2)])])
    h = g.op("Add", [g.op("Mul", [h, g.floats(1.0 - lr)]), g.op("Mul", [new, g.floats(lr)])])
    return h, [h]


def _lsm_step(g, layer, xg, states, p):
    """lif's step on xg + s_prev W_hh^T: the spikes, and the membrane after and the spikes."""
    v, s_prev = states
    current = g.op("Add", [xg, linear(g, s_prev, p["weight_hh"], None, 2)])
    s, (after,) = _lif_step(g, layer, current, [v], p)
    return s, [after, s]


def _fused(op_type: str, order: tuple[int, ...], **attrs) -> Callable:
    """x [B, T, F] -> [B, T, units] by ONNX's `op_type` (time-major, one direction, from zero
    states): PyTorch's gate blocks of weight_ih, weight_hh and the biases taken in `order`
    (Split, Concat), the weights [1, gates * units, F], the two biases joined [1, 2 * gates *
    units]."""

    def reordered(g: Builder, name: str, units: int) -> str:
        blocks = g.op("Split", [name, g.ints([units] * len(order))], outputs=len(order), axis=0)
        return g.op("Concat", [blocks[k] for k in order], axis=0)

    def sequence(g, layer, x, p, h0=None, c0=None, keep=None):
        """From h0 (and an lstm's c0) [B, units], or zeros; `keep`, when given, receives the
        final h (and c) [B, units] (Y_h, Y_c)."""
        units = layer.options.units
        first = g.ints([0])
        inputs = [
            g.op("Transpose", [x], perm=[1, 0, 2]),
            g.op("Unsqueeze", [reordered(g, p["weight_ih"], units), first]),
            g.op("Unsqueeze", [reordered(g, p["weight_hh"], units), first]),
        ]
        if "bias_ih" in p:
            both = [reordered(g, p["bias_ih"], units), reordered(g, p["bias_hh"], units)]
            inputs.append(g.op("Unsqueeze", [g.op("Concat", both, axis=0), first]))
        if h0 is not None:  # initial_h [1, B, units], after B and sequence_lens (or blanks)
            inputs += [""] * (4 - len(inputs)) + ["", g.op("Unsqueeze", [h0, first])]
        if c0 is not None:  # initial_c [1, B, units]
            inputs.append(g.op("Unsqueeze", [c0, first]))
        if keep is None:
            y = g.op(op_type, inputs, hidden_size=units, **attrs)  # [T, 1, B, units]
        else:  # Y, Y_h and (LSTM) Y_c, the last two [1, B, units]
            y, *last = g.op(
                op_type,
                inputs,
                outputs=3 if op_type == "LSTM" else 2,
                hidden_size=units,
                **attrs,
            )
            keep += [g.op("Squeeze", [v, first]) for v in last]
        return g.op("Transpose", [g.op("Squeeze", [y, g.ints([1])])], perm=[1, 0, 2])

    return sequence


class _OneLayer(Mapping):
    """The parameters of one of a stack's layers (`weight_ih_l1`) by the cell's keys
    (`weight_ih`), read from the layer's (and so embedded) only when looked up."""

    def __init__(self, p: Mapping, layer: Layer, suffix: str):
        self.p, self.suffix = p, suffix
        self.keys_ = [k.removesuffix(suffix) for k in layer.params if k.endswith(suffix)]

    def __getitem__(self, key: str) -> str:
        if key not in self.keys_:
            raise KeyError(key)
        return self.p[key + self.suffix]

    def __contains__(self, key: object) -> bool:
        return key in self.keys_

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_)

    def __len__(self) -> int:
        return len(self.keys_)


def _stacked(one: Stateful) -> Stateful:
    """`layers=N`: N cells of `one`, each reading the one below (evaluation: no dropout between
    them); over a whole sequence each layer runs as `one` does, in a loop each carries its own
    states."""
    count = len(one.states)

    def project(g, layer, x, p, rank):
        return one.project(g, layer, x, _OneLayer(p, layer, layer_suffixes(layer.options)[0]), rank)

    def step(g, layer, xg, states, p):
        suffixes = layer_suffixes(layer.options)
        if len(suffixes) == 1:
            return one.step(g, layer, xg, states, p)
        carried, out = [], None
        for k, suffix in enumerate(suffixes):
            own = _OneLayer(p, layer, suffix)
            if out is not None:  # the layer below's output, projected by this layer's weights
                xg = one.project(g, layer, out, own, 2)
            out, after = one.step(g, layer, xg, states[k * count : (k + 1) * count], own)
            carried += after
        return out, carried

    def fused(g, layer, x, p, h0=None, start=None, keep=None):
        """Each layer from h0 [B, units] (zeros without it), or from `start`, an encoder's
        final states in `states_of` order; `keep` receives this layer's, in that order."""
        for k, suffix in enumerate(layer_suffixes(layer.options)):
            own = start[k * count : (k + 1) * count] if start is not None else [h0, None]
            hk, ck = own[0], own[1] if len(own) > 1 else None
            x = one.fused(g, layer, x, _OneLayer(p, layer, suffix), hk, ck, keep)
        return x

    return Stateful(
        project,
        step,
        one.states,
        one.doc + "; `layers=N`: N cells in turn",
        fused if one.fused is not None else None,
        one,
    )


# ---- capsules ----------------------------------------------------------------------------------
def _squash(g: Builder, s: str) -> str:
    """s (..., dim) -> s |s|^2 / ((1 + |s|^2) sqrt(|s|^2 + eps)): ReduceSum, Add, Sqrt, Div, Mul."""
    n = g.op("ReduceSum", [g.op("Mul", [s, s]), g.ints([-1])], keepdims=1)
    root = g.op("Sqrt", [g.op("Add", [n, g.floats(EPSILON)])])
    scale = g.op("Div", [n, g.op("Mul", [g.op("Add", [n, g.floats(1.0)]), root])])
    return g.op("Mul", [s, scale])


def primary_capsules(g, ctx, layer, x, p):
    """x (B, C, H, W) -> (B, capsules * OH * OW, dim): Conv, Reshape to (B, capsules, dim, OH,
    OW), Transpose the components last, Reshape, squash."""
    o = layer.options
    n = 0 if o.padding == "valid" else o.padding
    inputs = [x, p["weight"]] + ([p["bias"]] if "bias" in layer.params else [])
    y = g.op(
        "Conv",
        inputs,
        kernel_shape=list(pair(o.kernel)),
        strides=list(pair(o.stride)),
        pads=[n, n, n, n],
    )
    y = g.op("Reshape", [y, g.ints([0, o.capsules, o.dim, -1])])
    y = g.op("Transpose", [y], perm=[0, 1, 3, 2])
    return _squash(g, g.op("Reshape", [y, g.ints([0, -1, o.dim])]))


def capsules(g, ctx, layer, x, p):
    """u (B, N, D) -> v (B, J, K): Einsum with the weight (N, J, K, D), then the routing
    iterations unrolled: Softmax of the logits over J (uniform at first), Mul, ReduceSum over N,
    squash; the agreement (Mul, ReduceSum) added to the logits between iterations."""
    u_hat = g.op("Einsum", [x, p["weight"]], equation="bnd,njkd->bnjk")
    outputs = layer.shape.dims[0]
    logits = v = None
    for iteration in range(layer.options.routing):
        if logits is None:
            weighted = g.op("Mul", [u_hat, g.floats(1.0 / outputs)])
        else:
            c = g.op("Unsqueeze", [g.op("Softmax", [logits], axis=-1), g.ints([-1])])
            weighted = g.op("Mul", [u_hat, c])
        v = _squash(g, g.op("ReduceSum", [weighted, g.ints([-3])], keepdims=0))
        if iteration < layer.options.routing - 1:
            near = g.op("Mul", [u_hat, g.op("Unsqueeze", [v, g.ints([-3])])])
            agreement = g.op("ReduceSum", [near, g.ints([-1])], keepdims=0)
            logits = agreement if logits is None else g.op("Add", [logits, agreement])
    return v


def capsule_length(g, ctx, layer, x, p):
    """v (..., N, dim) -> (..., N): ReduceSum of Mul, Add eps, Sqrt."""
    n = g.op("ReduceSum", [g.op("Mul", [x, x]), g.ints([-1])], keepdims=0)
    return g.op("Sqrt", [g.op("Add", [n, g.floats(EPSILON)])])


def capsule_mask(g, ctx, layer, x, p):
    """v (B, N, dim) -> (B, N * dim), the longest capsule kept (the model predicts; it never
    trains): ArgMax of the squared lengths, Equal to each capsule's index, Cast, Mul, Reshape."""
    n = g.op("ReduceSum", [g.op("Mul", [x, x]), g.ints([-1])], keepdims=0)
    capsules = ctx.source_dims[0]  # what enters: [N, dim]
    longest = g.op("ArgMax", [n], axis=-1, keepdims=1)
    kept = g.op("Cast", [g.op("Equal", [longest, g.ints(list(range(capsules)))])], to=1)
    y = g.op("Mul", [x, g.op("Unsqueeze", [kept, g.ints([-1])])])
    return g.op("Reshape", [y, g.ints([0, -1])])


def _activation_layer(name: str) -> Callable:
    def lower(g, ctx, layer, x, p):
        act = Activation(name=name, alpha=getattr(layer.options, "alpha", None))
        y = activate(g, x, act, feature_axis(layer.shape.dims))
        return y if y != x else g.op("Identity", [x])

    lower.__name__ = name
    lower.__doc__ = f"x -> x's shape: `{name}`, as the activations' table."
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
    "dropout": passes,
    "noise": passes,
    "batchnorm": batchnorm,
    "layernorm": layernorm,
    "add": _fold("Add"),
    "mul": _fold("Mul"),
    "concat": concat,
    "rnn": _stacked(
        Stateful(
            _project(), _rnn_step, ("h",), "a Scan: x W_ih^T + b_ih, then act(. + h W_hh^T + b_hh)"
        )
    ),
    "lstm": _stacked(
        Stateful(
            _project(),
            _lstm_step,
            ("h", "c"),
            "ONNX's LSTM over a sequence (gates i, f, g, o taken as i, o, f, g); in a cycle, a "
            "Scan over PyTorch's LSTMCell",
            _fused("LSTM", (0, 3, 1, 2)),
        )
    ),
    "gru": _stacked(
        Stateful(
            _project(),
            _gru_step,
            ("h",),
            "ONNX's GRU over a sequence, linear_before_reset as PyTorch (gates r, z, n taken as "
            "z, r, n); in a cycle, a Scan over PyTorch's GRUCell",
            _fused("GRU", (1, 0, 2), linear_before_reset=1),
        )
    ),
    "last": last,
    "first": first,
    "attention": attention,
    "posenc": posenc,
    "gcn": gcn,
    "rbf": rbf,
    "readout": readout,
    "som": som,
    "sample": sample,
    "markov": markov,
    "hopfield": hopfield,
    "rbm": rbm,
    "boltzmann": boltzmann,
    "lif": Stateful(
        _project("weight", "bias"), _lif_step, ("v",), "a Scan: decay, add, spike, reset"
    ),
    "esn": Stateful(_project("weight_ih", "bias"), _esn_step, ("h",), "a Scan: leaky tanh units"),
    "lsm": Stateful(
        _project("weight_ih", "bias"),
        _lsm_step,
        ("v", "s"),
        "a Scan: lif's step on the input and the last spikes",
    ),
    **{name: _activation_layer(name) for name in ACTIVATIONS},
}
LOWERINGS |= {"primary_capsules": primary_capsules, "capsules": capsules, "length": capsule_length}
LOWERINGS["mask"] = capsule_mask

# kind -> why it cannot be compiled to ONNX (E601 at the layer)
CANNOT: dict[str, str] = {
    "ntm": (
        "its memory, addressed and rewritten at every step, has no lowering in this target yet; "
        "the torch target compiles it"
    ),
    "dnc": (
        "its memory, with its usage and temporal links, is addressed and rewritten at every "
        "step and has no lowering in this target yet; the torch target compiles it"
    ),
}


def cannot(layer: Layer, why: str) -> SpecError:
    """E601 at `layer`: this kind or setting has no ONNX form."""
    return SpecError(
        "E601",
        f"layer '{layer.name}' ({layer.kind.name}) cannot be compiled to onnx: {why}",
        layer.span,
        "compile it to a target that has this kind (docs/compile.md lists them; --to torch has "
        "every kind), or change the layer",
    )
