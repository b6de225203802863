"""The torch target: a checked network as one standalone PyTorch file.

    source = emit(model, params)      # the bytes of `net.py`

The file imports torch, the standard library and (inside `load`, for the weights) safetensors;
never nnspec. It holds a `torch.nn.Module` subclass named after the network, whose submodules
are the layers' (nested as the names are dotted, so `state_dict()` keys are the spec's
parameter names, those of `to_torch()`), a `forward` with one line or a few per layer, each
under a comment quoting its spec line, and a module-level `load(path=None)`. The weights are
not in the file: `load()` reads `NAME.safetensors` beside it (the compiler writes the
parameters it was given there, see `weights_file`), `load(path)` any file with the spec's names.

The forward is the PyTorch backend's own (the code generator's lines, with readable variable
names), so the file computes exactly what `to_torch()` does. Over a whole sequence the recurrent
cells run the fused kernels that nn.LSTM, nn.GRU and nn.RNN call (`torch.lstm`, `torch.gru`,
`torch.rnn_tanh`, `torch.rnn_relu`) with the cells' own parameters: nn.LSTM itself would name
them `weight_ih_l0`, not the spec's `weight_ih`.
"""

from __future__ import annotations

import inspect
import io
import keyword
import re
import textwrap
import tokenize
from collections.abc import Callable

from torch import nn

from ..backends.plan import Step, make_plan
from ..backends.torch.capsules import Capsules, Mask, PrimaryCapsules, squash
from ..backends.torch.codegen import _Writer
from ..backends.torch.dnc import DNC
from ..backends.torch.memory import NTM
from ..backends.torch.runtime import every_step
from ..errors import SpecError
from ..kinds.capsules import EPSILON
from ..kinds.conv import pair
from ..program import Layer
from .common import harmless, header, spec_line, terms

LINE = 100  # ruff's line length in the project, and so in the emitted file

# ---- the modules: kind -> the constructor's source for a layer (None: no parameters) ----------


def _bias(layer: Layer, name: str = "bias") -> str:
    return "" if name in layer.params else ", bias=False"


def _linear(layer: Layer) -> str:
    units, inputs = layer.params["weight"].shape
    return f"nn.Linear({inputs}, {units}{_bias(layer)})"


def _embedding(layer: Layer) -> str:
    return "nn.Embedding({}, {})".format(*layer.params["weight"].shape)


def _spacing(layer: Layer) -> str:
    """A convolution's dilation and groups, as keywords where they are not 1."""
    o = layer.options
    dilation = pair(o.dilation)
    return ("" if dilation == (1, 1) else f", dilation={dilation}") + (
        "" if o.groups == 1 else f", groups={o.groups}"
    )


def _conv(layer: Layer) -> str:
    o = layer.options
    channels, inputs, kh, kw = layer.params["weight"].shape
    inputs *= o.groups  # the weight holds one group's inputs
    more = _spacing(layer) + _bias(layer)
    if o.padding == "same":
        return f"SameConv2d({inputs}, {channels}, {(kh, kw)}, {pair(o.stride)}{more})"
    padding = 0 if o.padding == "valid" else pair(o.padding)
    stride = pair(o.stride)
    return f"nn.Conv2d({inputs}, {channels}, {(kh, kw)}, {stride}, {padding}{more})"


def _deconv(layer: Layer) -> str:
    o = layer.options
    inputs, channels, kh, kw = layer.params["weight"].shape
    channels *= o.groups  # the weight holds one group's outputs
    shape = f"{(kh, kw)}, {pair(o.stride)}, {pair(o.padding)}, {pair(o.output_padding)}"
    return f"nn.ConvTranspose2d({inputs}, {channels}, {shape}{_spacing(layer)}{_bias(layer)})"


def _batchnorm(layer: Layer) -> str:
    (features,) = layer.params["weight"].shape
    image = len(layer.shape.dims) == 3
    return f"nn.BatchNorm{2 if image else 1}d({features}, eps={layer.options.eps!r})"


def _layernorm(layer: Layer) -> str:
    return f"nn.LayerNorm({tuple(layer.params['weight'].shape)}, eps={layer.options.eps!r})"


def _cell(layer: Layer) -> str:
    o = layer.options
    if o.layers > 1 or o.bidirectional:  # the module nn.LSTM(num_layers=N) is, its names
        return _stack(layer)
    cell = {"rnn": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}[layer.kind.name]
    _, inputs = layer.params["weight_ih"].shape
    return f"nn.{cell}({inputs}, {o.units}{_bias(layer, 'bias_ih')})"


def _stack(layer: Layer) -> str:
    o = layer.options
    stack = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[layer.kind.name]
    _, inputs = layer.params["weight_ih_l0"].shape
    extra = _bias(layer, "bias_ih_l0") + ", batch_first=True"
    extra += f", dropout={o.dropout!r}" if o.dropout else ""
    if layer.kind.name == "rnn" and o.act.name == "relu":
        extra += ', nonlinearity="relu"'
    extra += ", bidirectional=True" if o.bidirectional else ""
    return f"nn.{stack}({inputs}, {o.units}, {o.layers}{extra})"


def _attention(layer: Layer) -> str:
    p, o = layer.params, layer.options
    dim = p["weight_o"].shape[0]
    features = tuple(p[f"weight_{port}"].shape[1] for port in "qkv")
    return f"Attention({dim}, {features}, {o.heads}, causal={o.causal}, bias={o.bias})"


def _posenc(layer: Layer) -> str:
    weight = layer.params.get("weight")
    max_len = weight.shape[0] if weight is not None else None
    return f"Posenc({weight is not None}, {layer.shape.dims[-1]}, {max_len})"


def _gcn(layer: Layer) -> str:
    units, features = layer.params["weight"].shape
    return f"GraphConv({features}, {units}, bias={'bias' in layer.params})"


def _markov(layer: Layer) -> str:
    return f"Transition({layer.params['transition'].shape[0]})"


def _rbm(layer: Layer) -> str:
    units, visible = layer.params["weight"].shape
    return f"Rbm({visible}, {units})"


def _som(layer: Layer) -> str:
    return "KohonenMap({}, {})".format(*layer.params["weight"].shape)


def _hopfield(layer: Layer) -> str:
    o = layer.options
    return f'Hopfield({o.units}, "{o.update}", {o.sweeps}, {o.threshold!r})'


def _boltzmann(layer: Layer) -> str:
    o = layer.options
    return f"Boltzmann({o.units}, {o.hidden}, {o.groups})"


def _rbf(layer: Layer) -> str:
    units, features = layer.params["centres"].shape
    return f"Rbf({features}, {units})"


def _reservoir(layer: Layer) -> str:
    units, inputs = layer.params["weight_ih"].shape
    return f"Reservoir({inputs}, {units})"


def _ntm_module(layer: Layer) -> str:
    o = layer.options
    inputs = layer.params["weight_ih"].shape[1] - o.heads * o.width
    return f"NTM({inputs}, {o.controller}, {o.slots}, {o.width}, {o.heads})"


def _dnc_module(layer: Layer) -> str:
    o = layer.options
    inputs = layer.params["weight_ih"].shape[1] - o.heads * o.width
    return f"DNC({inputs}, {o.controller}, {o.slots}, {o.width}, {o.heads})"


def _none(layer: Layer) -> None:
    return None


MODULES: dict[str, Callable[[Layer], str | None]] = {
    "input": _none,
    "port": _none,
    "dense": _linear,
    "maxout": _linear,
    "embedding": _embedding,
    "conv": _conv,
    "deconv": _deconv,
    "pool": _none,
    "unpool": _none,
    "global_pool": _none,
    "flatten": _none,
    "reshape": _none,
    "upsample": _none,
    "dropout": _none,
    "noise": _none,
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "add": _none,
    "mul": _none,
    "concat": _none,
    "rnn": _cell,
    "lstm": _cell,
    "gru": _cell,
    "last": _none,
    "first": _none,
    "attention": _attention,
    "posenc": _posenc,
    "gcn": _gcn,
    "rbf": _rbf,
    "readout": _none,
    "lif": _linear,
    "sample": _none,
    "boltzmann": _boltzmann,
    "som": _som,
    "markov": _markov,
    "rbm": _rbm,
    "hopfield": _hopfield,
    "esn": _reservoir,
    "lsm": _reservoir,
}
# the activations as layers of their own hold no parameters either
ACTIVATION_KINDS = (
    "identity",
    "linear",
    "step",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "softplus",
    "silu",
    "mish",
    "hardtanh",
    "selu",
    "softmax",
)
MODULES |= dict.fromkeys(ACTIVATION_KINDS, _none)


def _primary_capsules(layer: Layer) -> str:
    o = layer.options
    _, inputs, kh, kw = layer.params["weight"].shape
    padding = 0 if o.padding == "valid" else o.padding
    stride, bias = pair(o.stride), "bias" in layer.params
    return (
        f"PrimaryCapsules({inputs}, {o.capsules}, {o.dim}, {(kh, kw)}, {stride}, {padding}, "
        f"bias={bias})"
    )


def _capsules(layer: Layer) -> str:
    inputs, capsules, dim, dim_in = layer.params["weight"].shape
    return f"Capsules({inputs}, {dim_in}, {capsules}, {dim}, {layer.options.routing})"


MODULES |= {"primary_capsules": _primary_capsules, "capsules": _capsules, "length": _none}
MODULES["mask"] = lambda layer: "Mask()"  # the longest capsule; `labels` while training

# Over a whole sequence (not inside a `~>` loop): the fused kernel each recurrent cell runs.
FUSED = {
    "lstm": "torch.lstm",
    "gru": "torch.gru",
    ("rnn", "tanh"): "torch.rnn_tanh",
    ("rnn", "relu"): "torch.rnn_relu",
}


def _fused(layer: Layer) -> str | None:
    """The kernel of a recurrent layer over a whole sequence; None for other kinds, and for an
    rnn whose activation has none (it steps through time as the backend does)."""
    kind = layer.kind.name
    if kind in ("rnn", "lstm", "gru") and (layer.options.layers > 1 or layer.options.bidirectional):
        return None  # stacked or bidirectional layers call their nn.LSTM module, as the backend
    if kind == "rnn":
        return FUSED.get((kind, layer.options.act.name))
    return FUSED.get(kind) if kind in ("lstm", "gru") else None


# ---- the helpers: copied into a file only when its code calls them -----------------------------

HELPERS: dict[str, str] = {
    "_prepare": '''
def _prepare(name, x, dims, time, steps):
    """Check one input against its declaration and shape it: [B, *dims], or [B, T, *dims] when
    timed. `time` is None (static), "seq" (the caller gives every step) or "steps" (one value,
    held for `steps` steps, unless one per step is given). Size-1 inputs may leave out their
    last axis."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input '{name}' must be a torch.Tensor, not {type(x).__name__}")
    lead = 1 if time is None else 2
    if time == "steps" and (
        x.dim() == len(dims) + 1 and tuple(x.shape[1:]) == dims or dims == (1,) and x.dim() == 1
    ):
        x = x.reshape(x.shape[0], *dims)  # one value, held at every step
        return x.unsqueeze(1).expand(x.shape[0], steps, *dims)
    if dims == (1,) and x.dim() == lead:
        x = x.unsqueeze(-1)
    if (
        x.dim() != len(dims) + lead
        or tuple(x.shape[lead:]) != dims
        or (steps is not None and x.shape[1] != steps)
    ):
        want = ["B"] + ([str(steps) if steps else "T"] if time else []) + [str(d) for d in dims]
        raise ValueError(f"input '{name}' must be [{', '.join(want)}], but it is {list(x.shape)}")
    return x
''',
    "_argument": '''
def _argument(args, kwargs, names, name):
    """The input `name` from a call by position or by keyword (for names Python cannot take)."""
    position = names.index(name)
    if position < len(args):
        return args[position]
    if name not in kwargs:
        raise TypeError(f"missing input '{name}'; the network takes {', '.join(names)}")
    return kwargs[name]
''',
    "_shift": '''
def _shift(x):
    """[B, T, ...] one step later: zeros at the first step (the value a `~>` link passes)."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)
''',
    "_along_time": '''
def _along_time(x, steps):
    """A static [B, ...] repeated at every step: [B, T, ...] (a view, no copy)."""
    return x.unsqueeze(1).expand(x.shape[0], steps, *x.shape[1:])
''',
    "_zeros": '''
def _zeros(ref, batch, *dims):
    """Zeros [batch, *dims] of `ref`'s dtype and device: a state before the first step."""
    return torch.zeros(batch, *dims, dtype=ref.dtype, device=ref.device)
''',
    "_step": '''
def _step(x):
    """1 where x > 0, else 0; no gradient flows back through it."""
    return (x > 0).to(x.dtype)
''',
    "Spike": '''
class Spike(torch.autograd.Function):
    """Heaviside step at the threshold forward; the fast-sigmoid surrogate
    1 / (1 + 10 |v - threshold|)^2 backward."""

    @staticmethod
    def forward(ctx, v, threshold):
        ctx.save_for_backward(v)
        ctx.threshold = threshold
        return (v >= threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad / (1 + 10 * (v - ctx.threshold).abs()) ** 2, None
''',
    "_spike": """
def _spike(v, threshold):
    return Spike.apply(v, threshold)
""",
    "_run_cell": '''
def _run_cell(kernel, cell, x, h0=None):
    """`cell` over every step of x [B, T, F] -> [B, T, units] at once, in the fused kernel
    nn.LSTM, nn.GRU or nn.RNN calls (torch.lstm, torch.gru, torch.rnn_tanh, torch.rnn_relu),
    with the cell's own parameters; the state starts at h0 [B, units] (c at zeros), or zeros."""
    zeros = _zeros(cell.weight_ih, x.shape[0], cell.hidden_size).unsqueeze(0)
    h = zeros if h0 is None else h0.unsqueeze(0)
    state = (h, zeros)
    weights = [cell.weight_ih, cell.weight_hh]
    if cell.bias:
        weights += [cell.bias_ih, cell.bias_hh]
    hx = state if kernel is torch.lstm else h
    return kernel(x, hx, weights, cell.bias, 1, 0.0, cell.training, False, True)[0]
''',
    "_run_cells": '''
def _run_cells(kernel, cell, x, state=None):
    """`cell` over x [B, T, F] as in _run_cell, from an encoder's final state (h [1, B, units],
    or (h, c) for torch.lstm; zeros without it) -> (outputs [B, T, units], the final state in
    the same form), for `enc -> dec.state` straight from a recurrent layer."""
    zeros = _zeros(cell.weight_ih, x.shape[0], cell.hidden_size).unsqueeze(0)
    lstm = kernel is torch.lstm
    if state is None:
        state = (zeros, zeros) if lstm else zeros
    weights = [cell.weight_ih, cell.weight_hh]
    if cell.bias:
        weights += [cell.bias_ih, cell.bias_hh]
    out = kernel(x, state, weights, cell.bias, 1, 0.0, cell.training, False, True)
    return out[0], (out[1], out[2]) if lstm else out[1]
''',
    "_same_pads": '''
def _same_pads(size, kernel, stride):
    """padding=same along one axis: (before, after), as TensorFlow pads: the output keeps
    ceil(size / stride) cells, the odd cell of padding after (at the bottom and the right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2
''',
    "SameConv2d": '''
class SameConv2d(nn.Conv2d):
    """nn.Conv2d with padding=same at any stride: zeros placed as `_same_pads` says, then the
    convolution unpadded (padded by the convolution where the zeros fall evenly)."""

    def __init__(self, inputs, channels, kernel, stride, dilation=1, groups=1, bias=True):
        super().__init__(inputs, channels, kernel, stride, 0, dilation, groups, bias=bias)

    def forward(self, x):
        (kh, kw), (dh, dw), (sh, sw) = self.kernel_size, self.dilation, self.stride
        kh, kw = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the dilated kernel's reach
        top, bottom = _same_pads(x.shape[-2], kh, sh)
        left, right = _same_pads(x.shape[-1], kw, sw)
        if top == bottom and left == right:  # even: the convolution pads, without a copy
            w, b = self.weight, self.bias
            return F.conv2d(x, w, b, self.stride, (top, left), self.dilation, self.groups)
        return super().forward(F.pad(x, (left, right, top, bottom)))
''',
    "Attention": '''
class Attention(nn.Module):
    """query [B, Lq, Fq], key [B, Lk, Fk], value [B, Lk, Fv] -> [B, Lq, dim]: projections,
    heads, scaled dot-product attention, the output projection; weights [dim, F] as nn.Linear."""

    def __init__(self, dim, features, heads, causal, bias):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.weight_q = nn.Parameter(torch.empty(dim, features[0]))
        self.weight_k = nn.Parameter(torch.empty(dim, features[1]))
        self.weight_v = nn.Parameter(torch.empty(dim, features[2]))
        self.weight_o = nn.Parameter(torch.empty(dim, dim))
        for port in "qkvo":
            bias_ = nn.Parameter(torch.zeros(dim)) if bias else None
            self.register_parameter(f"bias_{port}", bias_)
        for weight in (self.weight_q, self.weight_k, self.weight_v, self.weight_o):
            nn.init.xavier_uniform_(weight)

    def forward(self, query, key, value):
        q = self._heads(F.linear(query, self.weight_q, self.bias_q))
        k = self._heads(F.linear(key, self.weight_k, self.bias_k))
        v = self._heads(F.linear(value, self.weight_v, self.bias_v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return F.linear(out.transpose(1, 2).flatten(2), self.weight_o, self.bias_o)

    def _heads(self, x):
        """[B, L, dim] -> [B, heads, L, dim / heads]."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)
''',
    "Posenc": '''
class Posenc(nn.Module):
    """x [B, L, d] -> x + the encoding of positions 0 .. L - 1: Vaswani et al.'s sinusoids
    (computed in float64, then x's dtype; no parameters), or a learned `weight` [max_len, d]."""

    def __init__(self, learned, width, max_len):
        super().__init__()
        weight = nn.Parameter(torch.empty(max_len, width)) if learned else None
        self.register_parameter("weight", weight)

    def forward(self, x):
        steps, width = x.shape[-2], x.shape[-1]
        if self.weight is None:
            t = torch.arange(steps, dtype=torch.float64, device=x.device).unsqueeze(1)
            rate = torch.arange(0, width, 2, dtype=torch.float64, device=x.device)
            angle = t * torch.pow(10000.0, -rate / width)
            pe = torch.zeros(steps, width, dtype=torch.float64, device=x.device)
            pe[:, 0::2] = torch.sin(angle)
            pe[:, 1::2] = torch.cos(angle[:, : width // 2])
            return x + pe.to(x.dtype)
        if steps > self.weight.shape[0]:
            raise ValueError(
                f"a learned positional encoding has {self.weight.shape[0]} positions (max_len), "
                f"but the sequence has {steps} steps"
            )
        return x + self.weight[:steps]
''',
    "Rbm": '''
class Rbm(nn.Module):
    """A restricted Boltzmann machine's weight [units, visible], hidden bias [units] and visible
    bias [visible]; the forward, P(h = 1 | v), reads the first two."""

    def __init__(self, visible, units):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(units, visible))
        self.bias = nn.Parameter(torch.zeros(units))
        self.visible_bias = nn.Parameter(torch.zeros(visible))
''',
    "Boltzmann": '''
class Boltzmann(nn.Module):
    """A Boltzmann machine's weight [N, N] and bias [N] (N = visible + hidden); `links` [N, N]
    (1 where a pair is linked) and `hidden_states` [2^hidden, hidden] are buffers outside the
    state dict."""

    def __init__(self, visible, hidden, groups):
        super().__init__()
        n = visible + hidden
        self.weight = nn.Parameter(torch.zeros(n, n))
        self.bias = nn.Parameter(torch.zeros(n))
        group = torch.cat([torch.arange(visible) // (visible // groups), torch.full((hidden,), -1)])
        apart = (group[:, None] != group[None, :]) & (group[:, None] >= 0) & (group[None, :] >= 0)
        linked = ~torch.eye(n, dtype=torch.bool) & ~apart
        self.register_buffer("links", linked.to(torch.float64), persistent=False)
        codes = torch.arange(2**hidden)[:, None] >> torch.arange(hidden - 1, -1, -1)[None, :]
        self.register_buffer("hidden_states", (codes & 1).to(torch.float64), persistent=False)
''',
    "Reservoir": '''
class Reservoir(nn.Module):
    """A reservoir's fixed weights (esn, lsm): weight_ih [units, inputs], weight_hh [units,
    units], bias [units]; the forward steps through them."""

    def __init__(self, inputs, units):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.zeros(units, inputs), requires_grad=False)
        self.weight_hh = nn.Parameter(torch.zeros(units, units), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(units), requires_grad=False)
''',
    "Rbf": '''
class Rbf(nn.Module):
    """x [..., d] -> exp(-(eps_j ||x - c_j||)^2) [..., units]; centres [units, d], eps [units]."""

    def __init__(self, features, units):
        super().__init__()
        self.centres = nn.Parameter(torch.empty(units, features))
        self.eps = nn.Parameter(torch.ones(units))

    def forward(self, x):
        c = self.centres
        d2 = (x * x).sum(-1, keepdim=True) - 2.0 * (x @ c.T) + (c * c).sum(-1)
        return torch.exp(-d2.clamp_min(0.0) * (self.eps * self.eps))
''',
    "GraphConv": '''
class GraphConv(nn.Module):
    """H' = D^-1/2 (A + I) D^-1/2 H W^T + b, for features H [B, N, F] and adjacency A [B, N, N]."""

    def __init__(self, features, units, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(units, features))
        self.bias = nn.Parameter(torch.zeros(units)) if bias else None
        nn.init.xavier_uniform_(self.weight)

    def forward(self, h, adjacency):
        eye = torch.eye(adjacency.shape[-1], dtype=adjacency.dtype, device=adjacency.device)
        a = adjacency + eye
        d = a.sum(-1).rsqrt()
        out = (d.unsqueeze(-1) * a * d.unsqueeze(-2)) @ F.linear(h, self.weight)
        return out if self.bias is None else out + self.bias
''',
    "Transition": '''
class Transition(nn.Module):
    """A Markov chain's transition matrix `transition` [states, states] ([from, to])."""

    def __init__(self, states):
        super().__init__()
        self.transition = nn.Parameter(torch.empty(states, states))
''',
    "KohonenMap": '''
class KohonenMap(nn.Module):
    """x [..., d] -> [..., units]: a 1 at the unit whose weight [units, d] is nearest x (the
    first at a tie), 0 elsewhere."""

    def __init__(self, units, features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(units, features))

    def forward(self, x):
        w = self.weight
        flat = x.reshape(-1, x.shape[-1]).to(w.dtype)
        rows = max(1, (1 << 22) // w.numel())  # in slices of examples, to bound the memory
        winners = [
            (flat[i : i + rows, None, :] - w).square().sum(-1).argmin(-1)
            for i in range(0, max(len(flat), 1), rows)
        ]
        hot = F.one_hot(torch.cat(winners), w.shape[0]).to(w.dtype)
        return hot.reshape(*x.shape[:-1], w.shape[0])
''',
    "Hopfield": '''
class Hopfield(nn.Module):
    """weight [N, N]; forward(cue [..., N]) -> the recalled state [..., N] of +1/-1: the cue read
    as +1 where positive, then at most `sweeps` sweeps of updates (async: unit by unit in order;
    sync: all at once), a unit kept at a tie (within 1e-6 of its row's absolute weight), stopping
    at a fixed point; in float64, without gradient."""

    def __init__(self, units, update, sweeps, threshold):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(units, units))
        self.update, self.sweeps, self.threshold = update, sweeps, threshold

    def forward(self, cue):
        w = self.weight.detach().double()
        s = torch.where(cue > 0, 1.0, -1.0).double()
        tie = 1e-6 * w.abs().sum(1)
        for _ in range(self.sweeps):
            before = s.clone()
            if self.update == "sync":
                s = self._updated(s @ w.T - self.threshold, tie, s)
            else:
                for i in range(w.shape[0]):
                    s[..., i] = self._updated(s @ w[i] - self.threshold, tie[i], s[..., i])
            if torch.equal(s, before):
                break
        return s.to(cue.dtype if cue.is_floating_point() else torch.float64)

    @staticmethod
    def _updated(net, tie, state):
        """+1 above the threshold, -1 below, the state kept at a tie."""
        return torch.where(net > tie, 1.0, torch.where(net < -tie, -1.0, state))
''',
}
# helpers that call other helpers
NEEDS = {
    "_spike": ("Spike",),
    "SameConv2d": ("_same_pads",),
    "_run_cell": ("_zeros",),
    "_run_cells": ("_zeros",),
}
NEEDS |= {"PrimaryCapsules": ("squash",), "Capsules": ("squash",)}

# names the forward reads besides its variables: a layer's variable never takes one of them
FORWARD_NAMES = {"torch", "nn", "F", "self", "B", "T", "t", "_ref", "_kl", "args", "kwargs"}
# capsules (backends/torch/capsules.py): the backend's modules, their source copied into the file
HELPERS["squash"] = "\n" + inspect.getsource(squash).replace("EPSILON", repr(EPSILON))
HELPERS["PrimaryCapsules"] = "\n" + inspect.getsource(PrimaryCapsules)
HELPERS["Capsules"] = "\n" + inspect.getsource(Capsules)
HELPERS["Mask"] = "\n" + inspect.getsource(Mask)
# the backend's runtime helper, under the name the forward calls
HELPERS["_every_step"] = "\n" + inspect.getsource(every_step).replace(
    "def every_step", "def _every_step"
)
FORWARD_NAMES |= {"range", "l", "O", "I"} | set(HELPERS)  # (l, O, I: ruff's E741)

# memory (backends/torch/memory.py): the backend's NTM module, its source copied into the file
MODULES["ntm"] = _ntm_module
HELPERS["NTM"] = "\n" + inspect.getsource(NTM)
FORWARD_NAMES.add("NTM")
# the differentiable neural computer (backends/torch/dnc.py): its DNC module, copied the same way
MODULES["dnc"] = _dnc_module
HELPERS["DNC"] = "\n" + inspect.getsource(DNC)
FORWARD_NAMES.add("DNC")


# ---- the writer: the PyTorch backend's code generator, written for a file -----------------------


class _FileWriter(_Writer):
    """The backend's generator with readable variables (`h`, not `v1_h`), a comment per layer,
    public module access (`self.h`, `self.r["1"].a`; see `Names`),
    and the fused recurrent kernels called through torch's public functions."""

    def __init__(self, plan):
        super().__init__(plan, set())
        self.var = _variables([layer.name for layer in plan.program.layers])
        self.names = Names([layer.name for layer in plan.program.layers if layer.params])
        self.wants_logits = set()  # the file has no loss to feed: no separate logits

    def _signature(self) -> str:
        names = self.plan.program.inputs
        if all(self.var[n] == n for n in names):
            return ", ".join(names)
        return "*args, **kwargs"

    def _module(self, name: str) -> str:
        return self.names.expression(name)

    def _layer(self, step: Step, lines, indent, in_loop=False, before=None) -> None:
        lines.append(indent + _comment(spec_line(step.layer), len(indent) + 8))
        fused = _fused(step.layer)
        if in_loop or fused is None:
            super()._layer(step, lines, indent, in_loop, before)
            return
        x = self._arrange(step.layer, step.sources)
        var, module = self.var[step.name], self._module(step.layer.shares or step.name)
        if step.name in self.handed or step.name in self.handed.values():
            # an encoder handing its final state on, or a decoder starting from one
            encoder = self.handed.get(step.name)
            start = f", {self.var[encoder]}__final" if encoder else ""
            call = f"_run_cells({fused}, {module}, {x[None]}{start})"
            if step.name in self.handed.values():
                lines.append(f"{indent}{var}, {var}__final = {call}")
            else:
                lines.append(f"{indent}{var} = {call}[0]")
        else:
            state = f", {x['state']}" if "state" in x else ""
            lines.append(f"{indent}{var} = _run_cell({fused}, {module}, {x[None]}{state})")
        if step.name in self.plan.shifted:
            lines.append(f"{indent}{self._shifted(step.name)} = _shift({var})")


def _plain(part: str) -> bool:
    """A name Python reads as an attribute of a module: `h`, not `2`, `lambda` or `eval`."""
    return part.isidentifier() and not keyword.iskeyword(part) and not hasattr(nn.Module, part)


class Names:
    """Where each layer's module sits in the emitted class, as code.

    A container of the dotted names (`r` of `r.1.a`) is an nn.ModuleDict when a part under it
    is no attribute name (`self.r["1"].a`), else an nn.Module (`self.enc.a`); both give the same
    `state_dict()` keys. Names nn.ModuleDict cannot take (`keys`, `eval`), and those at the top,
    go through `getattr`, or `nn.Module.__getattr__` where nn.Module's own attribute (the
    method `eval`) would hide the layer's module.
    """

    def __init__(self, layer_names: list[str]):
        children: dict[str, set[str]] = {}
        for name in layer_names:
            parts = name.split(".")
            for i in range(1, len(parts)):
                children.setdefault(".".join(parts[:i]), set()).add(parts[i])
        self.dicts = {
            prefix
            for prefix, parts in children.items()
            if not all(map(_plain, parts)) and not any(hasattr(nn.ModuleDict, p) for p in parts)
        }

    def expression(self, name: str) -> str:
        """`self.r["1"].a`, `self.enc.a`, `getattr(self, "lambda")`."""
        expression, path = "self", ""
        for part in name.split("."):
            if _plain(part):
                expression += f".{part}"
            elif path in self.dicts:
                expression += f'["{part}"]'
            elif hasattr(nn.Module, part):
                expression = f'nn.Module.__getattr__({expression}, "{part}")'
            else:
                expression = f'getattr({expression}, "{part}")'
            path = f"{path}.{part}" if path else part
        return expression

    def assign(self, name: str, constructor: str) -> str:
        """`self.h = nn.Linear(2, 2)`; `self.r["1"] = nn.Module()`; `setattr(self, "eval", ...)`
        for a name that is no plain attribute (nn.Module's `__setattr__` registers it alike)."""
        *path, last = name.split(".")
        parent = ".".join(path)
        at = self.expression(parent) if path else "self"
        if _plain(last):
            return f"{at}.{last} = {constructor}"
        if parent in self.dicts:
            return f'{at}["{last}"] = {constructor}'
        noqa = "  # noqa: B010" if last.isidentifier() and not keyword.iskeyword(last) else ""
        return f'setattr({at}, "{last}", {constructor}){noqa}'

    def container(self, name: str) -> str:
        return "nn.ModuleDict()" if name in self.dicts else "nn.Module()"


def _variables(names: list[str]) -> dict[str, str]:
    """A distinct Python variable per layer, the name itself where it can be: `r.2.b` ->
    `r_2_b`. None contains `__`, so the generator's own `{var}__steps` never meet a layer's."""
    taken: set[str] = set()
    var = {}
    for name in names:
        base = re.sub(r"_{2,}", "_", name.replace(".", "_"))
        if not base.isidentifier() or keyword.iskeyword(base) or base in FORWARD_NAMES:
            base += "_"
        candidate, n = base, 1
        while candidate in taken or candidate in FORWARD_NAMES:
            n += 1
            candidate = f"{base}{n}"
        taken.add(candidate)
        var[name] = candidate
    return var


def _comment(text: str, indent: int) -> str:
    """`# text`, cut to fit the line length at `indent`."""
    room = LINE - indent - 2
    return "# " + (text if len(text) <= room else text[: room - 3] + "...")


def class_name(network: str) -> str:
    """The network's name as a class: `perceptron_and` -> `PerceptronAnd`."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", network) if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Network"
    if (
        name[0].isdigit()
        or keyword.iskeyword(name)
        or name in HELPERS
        or name in {"Path", "F", "B", "T"}
    ):
        name += "Net"
    return name


def _double_quotes(source: str) -> str:
    """Single-quoted string literals (the generator writes reprs) as ruff format writes them."""
    lines = source.splitlines(keepends=True)
    edits = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        text = token.string
        if (
            token.type == tokenize.STRING
            and text.startswith("'")
            and '"' not in text
            and "\\" not in text
        ):
            edits.append((token.start, token.end, '"' + text[1:-1] + '"'))
    for (row, col), (end_row, end_col), text in reversed(edits):
        assert row == end_row
        line = lines[row - 1]
        lines[row - 1] = line[:col] + text + line[end_col:]
    return "".join(lines)


# ---- the file -----------------------------------------------------------------------------------


def emit(model, params) -> bytes:
    """The standalone PyTorch file of `model`'s network. `params` (the spec's names) are not in
    it: `weights_file(params)` is the `NAME.safetensors` that its `load()` reads."""
    program = model.program
    for layer in program.layers:
        if layer.kind.name not in MODULES:
            raise SpecError(
                "E601",
                f"the torch target cannot compile a '{layer.kind.name}' layer ('{layer.name}')",
                layer.span,
                "compile this network to another target (numpy, onnx), or use another kind",
            )
    cls = class_name(program.name)
    writer = _FileWriter(make_plan(program))
    code = "\n".join(
        [
            *_init_lines(program, writer.names),
            "",
            *_forward_lines(writer),
        ]
    )
    code = _double_quotes(code)
    used = _helpers_used(code)
    weights = 'WEIGHTS = Path(__file__).with_suffix(".safetensors")  # what load() reads'
    sections = [
        "\n".join(
            [
                *(f"# {part}" for line in header(model, "torch") for part in _wrap(line, 2)),
                _docstring(model, cls),
            ]
        )
        + "\n\n"
        + _imports(code + "".join(HELPERS[name] for name in used))
        + "\n\n"
        + weights,
        *(HELPERS[name].strip("\n") for name in used),
        _fit(f"class {cls}(nn.Module):\n" + _indent([f'"""{_class_doc(program)}"""', "", code])),
        _load(cls),
        _main(program, cls, writer),
    ]
    return ("\n\n\n".join(sections) + "\n").encode()


def _init_lines(program, names: Names) -> list[str]:
    lines = ["def __init__(self):", "    super().__init__()"]
    made: set[str] = set()
    for layer in program.layers:
        constructor = MODULES[layer.kind.name](layer)
        if constructor is None or (layer.borrowed and not layer.own_params):
            continue  # no parameters, or only another layer's (shares=)
        parts = layer.name.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix not in made:
                made.add(prefix)
                lines.append("    " + names.assign(prefix, names.container(prefix)))
        lines.append("    " + names.assign(layer.name, constructor))
        for key in layer.borrowed:  # tied=: the weight is the owner's
            lines.append(f'    {names.expression(layer.name)}.register_parameter("{key}", None)')
        for key, param in layer.params.items():
            if not param.trainable and not param.buffer:  # fixed: no gradient, as in to_torch()
                lines.append(f"    {names.expression(layer.name)}.{key}.requires_grad_(False)")
    return lines


def _forward_lines(writer: _FileWriter) -> list[str]:
    source = writer.source().split("\ndef forward_with_terms")[0].rstrip().splitlines()
    signature, body = source[0], source[1:]
    code = "\n".join(line for line in body if not line.lstrip().startswith("#"))
    kept = []
    for line in body:
        target = line.strip().split(" = ")[0]
        if target in ("B", "T", "_ref") and not re.search(rf"\b{target}\b", _after(code, line)):
            continue
        kept.append(line)
    return [signature, *kept]


def _after(code: str, line: str) -> str:
    """The code after `line`'s first appearance in it."""
    return code.split(line.strip(), 1)[1]


def _helpers_used(code: str) -> list[str]:
    used: set[str] = set()
    todo = [name for name in HELPERS if re.search(rf"\b{name}\b", code)]
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo.extend(NEEDS.get(name, ()))
    return [name for name in HELPERS if name in used]


def _imports(code: str) -> str:
    lines = ["from pathlib import Path", "", "import torch", "from torch import nn"]
    if re.search(r"\bF\.", code):
        lines.append("from torch.nn import functional as F")
    return "\n".join(lines)


def _shape(shape, time: str) -> str:
    steps = [str(shape.steps) if shape.steps else time] if shape.timed else []
    return "[" + ", ".join(["B", *steps, *map(str, shape.dims)]) + "]"


def _class_doc(program) -> str:
    inputs = ", ".join(f"{n}: {_shape(program.layer(n).shape, 'T')}" for n in program.inputs)
    outputs = ", ".join(f"{o.name}: {_shape(o.shape, 'T')}" for o in program.outputs)
    text = f"{harmless(program.description or program.name)}: {inputs} -> {outputs}."
    return text if len(text) <= LINE - 10 else f"{program.name}: {inputs} -> {outputs}."


def _docstring(model, cls: str) -> str:
    program = model.program
    single = len(program.inputs) == 1
    call = "net(x)" if single else "net(" + ", ".join(f"{n}=..." for n in program.inputs) + ")"
    result = "a tensor" if len(program.outputs) == 1 else "a dict by output name"
    return "\n".join(
        [
            *_wrap(
                f'"""{harmless(program.description or program.name)}: the PyTorch module `{cls}`.'
            ),
            "",
            "    net = load()  # the compiled weights: this file's name, .safetensors, beside it",
            '    net = load("weights.safetensors")  # or any file with the spec\'s parameter names',
            f"    y = {call}  # {result}",
            "",
            "`python` on this file runs a batch of zeros and prints the output shapes.",
            '"""',
        ]
    )


def _load(cls: str) -> str:
    doc = (
        f'"""`{cls}` in evaluation mode, with the weights of the safetensors file at `path` (by'
        ' the spec\'s parameter names); by default WEIGHTS, the ones it was compiled with."""'
    )
    doc = "\n    ".join(_wrap(doc, 4))
    return f"""def load(path=None) -> {cls}:
    {doc}
    from safetensors.torch import load_file

    path = WEIGHTS if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file {{path}}: give load() a .safetensors file")
    net = {cls}()
    net.load_state_dict(load_file(path))
    return net.eval()"""


def _main(program, cls: str, writer: _FileWriter) -> str:
    zeros = {}
    for name in program.inputs:
        shape = program.layer(name).shape
        time = [shape.steps or 5] if shape.timed else []
        zeros[name] = f"torch.zeros({', '.join(map(str, [2, *time, *shape.dims]))})"
    if len(zeros) == 1:
        call = f"net({next(iter(zeros.values()))})"
    elif writer._signature().startswith("*"):
        call = "net(**{" + ", ".join(f'"{n}": {z}' for n, z in zeros.items()) + "})"
    else:
        call = "net(" + ", ".join(f"{n}={z}" for n, z in zeros.items()) + ")"
    if len(program.outputs) == 1:
        show = [f'    print("{program.outputs[0].name}:", list(y.shape))']
    else:
        show = ["    for name, value in y.items():", '        print(f"{name}:", list(value.shape))']
    lines = [
        'if __name__ == "__main__":',
        f"    net = load() if WEIGHTS.is_file() else {cls}().eval()",
        "    with torch.no_grad():",
        f"        y = {call}",
        *show,
    ]
    return "\n".join(lines)


def _fit(text: str) -> str:
    """Each line longer than LINE split as ruff format splits a call: the arguments on a line of
    their own inside the brackets, or one a line when they do not fit on one (and a sum too long
    for its line one term a line, each after the first starting with `+`)."""
    lines = []
    for line in text.splitlines():
        if len(line) <= LINE or not line.endswith(")"):
            lines.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip()))
        opening = _opening(line)
        head, body = line[: opening + 1], line[opening + 1 : -1]
        if len(indent) + 4 + len(body) <= LINE:
            lines += [head, f"{indent}    {body}", f"{indent})"]
        else:
            lines.append(head)
            for part in _top_level(body):  # a sum too long for its line: one term a line
                pieces = terms(part) if len(indent) + 5 + len(part) > LINE else [part]
                lines += [f"{indent}    {pieces[0]}", *(f"{indent}    + {p}" for p in pieces[1:])]
                lines[-1] += ","
            lines.append(f"{indent})")
    return "\n".join(lines)


def _opening(line: str) -> int:
    """Where the bracket that the line's last `)` closes opens (names hold no brackets)."""
    depth = 0
    for i in range(len(line) - 1, -1, -1):
        depth += {")": 1, "]": 1, "}": 1, "(": -1, "[": -1, "{": -1}.get(line[i], 0)
        if depth == 0:
            return i
    raise AssertionError(f"unbalanced brackets in generated code: {line}")


def _top_level(body: str) -> list[str]:
    """`body` split at its commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(body):
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:i].strip())
            start = i + 1
    return [*parts, body[start:].strip()]


def _wrap(text: str, indent: int = 0) -> list[str]:
    return textwrap.wrap(text, LINE - indent, break_long_words=False, break_on_hyphens=False)


def _indent(lines: list[str]) -> str:
    text = "\n".join(lines)
    return "\n".join("    " + line if line else "" for line in text.splitlines())
