"""What each kind writes into a compiled NumPy file's `forward`: one table, `LOWERINGS`, keyed by
kind name.

A lowering is `lower(e, x)`: `x` is the source text of what enters the layer (one expression, the
fan-in joined; a dict by port for kinds with ports; a list for merges), and it adds to `e.lines`
the statements that leave the layer's value in `e.out`, in evaluation mode (the file is for
inference: dropout passes its input, batchnorm reads its running statistics, `sample` gives
its mean). A stateful kind (rnn, lstm, gru, lif) runs over the whole sequence through a helper
with its own loop, and inside a `~>` loop steps once, carrying its state in `e.state`.
Each line computes what the NumPy backend's lowering of the kind computes
(backends/numpy/kinds.py), in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..kinds.activation import ACTIVATIONS
from ..kinds.conv import pair
from ..kinds.recurrent import layer_suffixes
from ..program import Layer


@dataclass
class Emit:
    """One layer being written: where its value goes, how its parameters read, what it needs."""

    layer: Layer
    out: str  # the variable that holds the layer's value
    timed: bool  # its arrays are [B, T, ...] (False inside a loop: one step [B, ...])
    in_loop: bool
    params: dict[str, str]  # parameter key -> the expression that reads it
    state: str  # inside a loop, the variable holding a stateful kind's state
    lines: list[str] = field(default_factory=list)
    before: list[str] = field(default_factory=list)  # before the loop: the state's first value
    helpers: set[str] = field(default_factory=set)
    hw: tuple[int, int] = (0, 0)  # an image layer: the height and width of what enters it
    # `enc -> dec.state` from a recurrent layer: the encoder keeps each layer's final state in
    # `{out}_final{k}` (h, or (h, c) for an lstm); a decoder's `final` is its encoder's variable
    keep_final: bool = False
    final: str | None = None

    def let(self, expression: str) -> None:
        self.lines.append(f"{self.out} = {expression}")

    def use(self, name: str) -> str:
        self.helpers.add(name)
        return name

    def p(self, key: str) -> str:
        return self.params[key]

    def bias(self, key: str = "bias") -> str:
        """`+ b` for a linear map, or nothing when the layer has no bias."""
        return f" + {self.params[key]}" if key in self.params else ""

    def optional(self, key: str) -> str:
        return self.params.get(key, "None")


def quoted(text: str) -> str:
    """A string literal as ruff formats it: in double quotes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def feature_axis(layer: Layer) -> int:
    return -3 if len(layer.shape.dims) == 3 else -1


def activation(e: Emit, name: str, alpha: float | None, z: str, axis: int = -1) -> str:
    """`name`(z) as an expression (z is read once)."""
    a = repr(0.0 if alpha is None else float(alpha))
    if name in ("identity", "linear"):
        return z
    if name in ("tanh", "relu"):
        return f"np.tanh({z})" if name == "tanh" else f"np.maximum({z}, 0.0)"
    helper = e.use(f"_{name}")
    if name in ("leaky_relu", "elu"):
        return f"{helper}({z}, {a})"
    if name == "softmax":
        return f"{helper}({z}, {axis})"
    return f"{helper}({z})"  # sigmoid, step, gelu, softplus, silu, mish, hardtanh, selu


def activation_function(e: Emit, act) -> str:
    """The activation as a function of one array (a helper's `act` argument)."""
    plain = {"tanh": "np.tanh", "sigmoid": "_sigmoid", "gelu": "_gelu", "softplus": "_softplus"}
    if act.name in plain:
        name = plain[act.name]
        return e.use(name) if name.startswith("_") else name
    return f"lambda z: {activation(e, act.name, act.alpha, 'z')}"


def folded(e: Emit, call: Callable[[str], str], x: str) -> str:
    """An image op over [B, C, H, W]; over [B, T, C, H, W] with time folded into the batch."""
    if not e.timed:
        return call(x)
    return f"{e.use('_fold_time')}(lambda images: {call('images')}, {x})"


# ---- io and merges -----------------------------------------------------------------------------
def passes(e: Emit, x: str) -> None:
    e.let(x)


def add(e: Emit, xs: list[str]) -> None:
    e.let(" + ".join(xs))


def mul(e: Emit, xs: list[str]) -> None:
    e.let(" * ".join(xs))


def concat(e: Emit, xs: list[str]) -> None:
    axis = feature_axis(e.layer)
    e.let(xs[0] if len(xs) == 1 else f"np.concatenate([{', '.join(xs)}], {axis})")


# ---- dense -------------------------------------------------------------------------------------
def dense(e: Emit, x: str) -> None:
    act = e.layer.options.act
    e.let(activation(e, act.name, act.alpha, f"{x} @ {e.p('weight')}.T{e.bias()}"))


def maxout(e: Emit, x: str) -> None:
    o = e.layer.options
    e.let(f"{x} @ {e.p('weight')}.T{e.bias()}")
    e.let(f"{e.out}.reshape({e.out}.shape[:-1] + ({o.units}, {o.pieces})).max(axis=-1)")


def embedding(e: Emit, x: str) -> None:
    e.let(f"{e.use('_embedding')}({e.p('weight')}, {x}, {quoted(e.layer.name)})")


# ---- images ------------------------------------------------------------------------------------
def conv(e: Emit, x: str) -> None:
    o = e.layer.options
    pads = e.layer.kind.pads(o, *e.hw)
    w, b = e.p("weight"), e.optional("bias")
    more = _spacing(o)
    call = f"{e.use('_conv2d')}({{}}, {w}, {b}, {pair(o.stride)}, {pads}{more})".format
    e.let(activation(e, o.act.name, o.act.alpha, folded(e, call, x), -3))


def deconv(e: Emit, x: str) -> None:
    o = e.layer.options
    w, b = e.p("weight"), e.optional("bias")
    shape = f"{pair(o.stride)}, {pair(o.padding)}, {pair(o.output_padding)}{_spacing(o)}"
    call = f"{e.use('_conv_transpose2d')}({{}}, {w}, {b}, {shape})".format
    e.let(activation(e, o.act.name, o.act.alpha, folded(e, call, x), -3))


def pool(e: Emit, x: str) -> None:
    o = e.layer.options
    size = pair(o.size)
    stride = pair(o.stride) if o.stride is not None else size
    out = tuple(e.layer.shape.dims[1:])
    mode = quoted(o.mode)
    call = f"{e.use('_pool2d')}({{}}, {mode}, {size}, {stride}, {pair(o.padding)}, {out})".format
    e.let(folded(e, call, x))


def unpool(e: Emit, x: dict[str, str]) -> None:
    pool = e.layer.options._pool
    size = pair(pool.size)
    stride = pair(pool.stride) if pool.stride is not None else size
    window = f"{size}, {stride}, {pair(pool.padding)}"
    if not e.timed:
        e.let(f"{e.use('_unpool2d')}({x['x']}, {x['like']}, {window})")
        return
    lead = f"{x['x']}.shape[:2]"
    values, like = (f"{v}.reshape((-1,) + {v}.shape[2:])" for v in (x["x"], x["like"]))
    dims = tuple(e.layer.shape.dims)
    e.let(f"{e.use('_unpool2d')}({values}, {like}, {window})")  # two lines, each one call
    e.let(f"{e.out}.reshape({lead} + {dims})")


def global_pool(e: Emit, x: str) -> None:
    mode = quoted(e.layer.options.mode)
    window = tuple(e.hw)
    call = f"{e.use('_pool2d')}({{}}, {mode}, {window}, {window})[:, :, 0, 0]".format
    e.let(folded(e, call, x))


def flatten(e: Emit, x: str) -> None:
    lead = 2 if e.timed else 1
    e.let(f"{x}.reshape({x}.shape[:{lead}] + (-1,))")


def reshape(e: Emit, x: str) -> None:
    lead = 2 if e.timed else 1
    e.let(f"{x}.reshape({x}.shape[:{lead}] + {tuple(e.layer.shape.dims)})")


def upsample(e: Emit, x: str) -> None:
    size = tuple(e.layer.shape.dims[1:])
    e.let(f"{e.use('_upsample2d')}({x}, {size}, {quoted(e.layer.options.mode)})")


def _spacing(o) -> str:
    """A convolution's dilation and groups, as keywords of the helper where they are not 1."""
    dilation = pair(o.dilation)
    return ("" if dilation == (1, 1) else f", dilation={dilation}") + (
        "" if o.groups == 1 else f", groups={o.groups}"
    )


# ---- normalisation -----------------------------------------------------------------------------
def dropout(e: Emit, x: str) -> None:
    e.let(f"{x}  # dropout drops nothing in evaluation")


def noise(e: Emit, x: str) -> None:
    e.let(f"{x}  # noise corrupts nothing in evaluation")


def batchnorm(e: Emit, x: str) -> None:
    """Evaluation: the running statistics (per channel for images)."""
    eps = e.layer.options.eps
    mean, var, w, b = (e.p(n) for n in ("running_mean", "running_var", "weight", "bias"))
    if len(e.layer.shape.dims) == 3:
        e.let(f"{e.use('_batchnorm2d')}({x}, {mean}, {var}, {w}, {b}, {eps!r})")
    else:
        e.let(f"({x} - {mean}) * ({var} + {eps!r}) ** -0.5 * {w} + {b}")


def layernorm(e: Emit, x: str) -> None:
    axes = (-3, -2, -1) if len(e.layer.shape.dims) == 3 else (-1,)
    eps = e.layer.options.eps
    e.let(f"{e.use('_layernorm')}({x}, {e.p('weight')}, {e.p('bias')}, {axes}, {eps!r})")


# ---- recurrent and spiking ---------------------------------------------------------------------
@dataclass(frozen=True)
class Stateful:
    """A kind with a state: over a whole sequence, or one step inside a `~>` loop."""

    sequence: Callable[[Emit, str], None]
    step: Callable[[Emit, str], None]


def _input_side(e: Emit, x: str, weight: str = "weight_ih", bias: str = "bias_ih") -> str:
    return f"{x} @ {e.p(weight)}.T{e.bias(bias)}"


def _start(h0: str | None) -> str:
    """The extra argument that starts a sequence helper from the `state` port's vector."""
    return "" if h0 is None else f", {h0}"


def _rnn_sequence(e: Emit, x: str, h0: str | None = None) -> None:
    act = activation_function(e, e.layer.options.act)
    whh, bhh = e.p("weight_hh"), e.optional("bias_hh")
    e.let(f"{e.use('_rnn')}({_input_side(e, x)}, {whh}, {bhh}, {act}{_start(h0)})")


def _rnn_step(e: Emit, x: str, h0: str | None = None) -> None:
    act = activation_function(e, e.layer.options.act)
    whh, bhh = e.p("weight_hh"), e.optional("bias_hh")
    e.before.append(f"{e.state} = {h0}")
    e.let(f"{e.use('_rnn_step')}({_input_side(e, x)}, {e.state}, {whh}, {bhh}, {act})")
    e.lines.append(f"{e.state} = {e.out}")


def _gru_sequence(e: Emit, x: str, h0: str | None = None) -> None:
    whh, bhh = e.p("weight_hh"), e.optional("bias_hh")
    e.let(f"{e.use('_gru')}({_input_side(e, x)}, {whh}, {bhh}{_start(h0)})")


def _gru_step(e: Emit, x: str, h0: str | None = None) -> None:
    whh, bhh = e.p("weight_hh"), e.optional("bias_hh")
    e.before.append(f"{e.state} = {h0}")
    e.let(f"{e.use('_gru_step')}({_input_side(e, x)}, {e.state}, {whh}, {bhh})")
    e.lines.append(f"{e.state} = {e.out}")


def _lstm_sequence(e: Emit, x: str, h0: str | None = None) -> None:
    whh, bhh = e.p("weight_hh"), e.optional("bias_hh")
    e.let(f"{e.use('_lstm')}({_input_side(e, x)}, {whh}, {bhh}{_start(h0)})")


def _lstm_step(e: Emit, x: str, h0: str | None = None) -> None:
    whh, bhh = e.p("weight_hh"), e.optional("bias_hh")
    e.before.append(
        f"{e.state} = None" if h0 is None else f"{e.state} = ({h0}, np.zeros_like({h0}))"
    )
    e.lines.append(
        f"{e.state} = {e.use('_lstm_cell')}({_input_side(e, x)}, {e.state}, {whh}, {bhh})"
    )
    e.let(f"{e.state}[0]")


def _handed(e: Emit, lower: Callable, x: str, h0: str | None, in_loop: bool) -> None:
    """A recurrent layer that hands its final state on (`{out}_final{k}` per layer: h, the last
    step of an rnn's or gru's outputs, or (h, c) for an lstm, from `_lstm_from`), or that starts
    each layer from its encoder's (`e.final`). Encoders never sit in a loop."""
    o, lstm = e.layer.options, e.layer.kind.name == "lstm"
    if in_loop and o.layers > 1:
        e.before.append(f"{e.state} = [None] * {o.layers}")
    for k, suffix in enumerate(layer_suffixes(o)):
        own = {key.removesuffix(suffix): v for key, v in e.params.items() if key.endswith(suffix)}
        one = replace(e, params=own, state=f"{e.state}[{k}]" if o.layers > 1 else e.state)
        start = f"{e.final}_final{k}" if e.final is not None else None
        if not lstm:
            lower(one, x, start or h0)
            if e.keep_final:
                e.lines.append(f"{e.out}_final{k} = {e.out}[:, -1]")
        elif in_loop:  # a decoder stepping from its encoder's (h, c)
            whh, bhh = one.p("weight_hh"), one.optional("bias_hh")
            e.before.append(f"{one.state} = {start}")
            cell = e.use("_lstm_cell")
            e.lines.append(
                f"{one.state} = {cell}({_input_side(one, x)}, {one.state}, {whh}, {bhh})"
            )
            e.let(f"{one.state}[0]")
        else:
            whh, bhh = one.p("weight_hh"), one.optional("bias_hh")
            if start is None:
                start = "None" if h0 is None else f"({h0}, np.zeros_like({h0}))"
            call = f"{e.use('_lstm_from')}({_input_side(one, x)}, {whh}, {bhh}, {start})"
            # the final state unpacked beside the outputs (read on only by an encoder's decoder)
            e.lines.append(f"{e.out}, {e.out}_final{k} = {call}")
        x = e.out  # the next layer reads this one's value


def _stacked(one: Stateful) -> Stateful:
    """`layers=N`: N cells of `one`, each reading the one below (the file is for inference: no
    dropout between them); inside a loop the state is a list with one entry per layer. The main
    input is x[None]; the `state` port's vector, x["state"], starts every layer."""

    def stacked(lower: Callable, in_loop: bool) -> Callable[[Emit, dict], None]:
        def run(e: Emit, x: dict) -> None:
            x, h0 = x[None], x.get("state")
            if e.final is not None or e.keep_final:
                _handed(e, lower, x, h0, in_loop)
                return
            o = e.layer.options
            if o.layers == 1 and not o.bidirectional:
                lower(e, x, h0)
                return
            if in_loop:
                e.before.append(f"{e.state} = [None] * {o.layers}")
            for k, suffix in enumerate(layer_suffixes(o)):
                own = {
                    key.removesuffix(suffix): v
                    for key, v in e.params.items()
                    if key.endswith(suffix)
                }
                if o.bidirectional and k:  # both cells read the layer below, kept
                    e.lines.append(f"{e.out}_below = {x}")
                    x = f"{e.out}_below"
                lower(replace(e, params=own, state=f"{e.state}[{k}]"), x, h0)
                if o.bidirectional:  # the `_reverse` cell from the last step, turned back
                    e.lines.append(f"{e.out}_forward = {e.out}")
                    back = suffix + "_reverse"
                    own = {
                        key.removesuffix(back): v
                        for key, v in e.params.items()
                        if key.endswith(back)
                    }
                    lower(replace(e, params=own), f"{x}[:, ::-1]", h0)
                    e.let(f"np.concatenate([{e.out}_forward, {e.out}[:, ::-1]], -1)")
                x = e.out  # the next layer reads this one's value

        return run

    return Stateful(stacked(one.sequence, False), stacked(one.step, True))


def _lif_sequence(e: Emit, x: str) -> None:
    o = e.layer.options
    xg = _input_side(e, x, "weight", "bias")
    e.let(f"{e.use('_lif')}({xg}, {float(o.decay)!r}, {float(o.threshold)!r})")


def _lif_step(e: Emit, x: str) -> None:
    o = e.layer.options
    xg = _input_side(e, x, "weight", "bias")
    e.before.append(f"{e.state} = None")
    settings = f"{float(o.decay)!r}, {float(o.threshold)!r}"
    e.lines.append(f"{e.out}, {e.state} = {e.use('_lif_step')}({xg}, {e.state}, {settings})")


def _reservoir_settings(e: Emit) -> str:
    o = e.layer.options
    if e.layer.kind.name == "esn":
        return f"{e.p('weight_hh')}, {float(o.lr)!r}"
    return f"{e.p('weight_hh')}, {float(o.decay)!r}, {float(o.threshold)!r}"


def _reservoir_sequence(e: Emit, x: str) -> None:
    step = e.use(f"_{e.layer.kind.name}_step")
    xg = _input_side(e, x, "weight_ih", "bias")
    e.let(f"{e.use('_reservoir')}({step}, {xg}, {_reservoir_settings(e)})")


def _reservoir_step(e: Emit, x: str) -> None:
    step = e.use(f"_{e.layer.kind.name}_step")
    xg = _input_side(e, x, "weight_ih", "bias")
    e.before.append(f"{e.state} = None")
    call = f"{step}({xg}, {e.state}, {_reservoir_settings(e)})"
    if e.layer.kind.name == "esn":
        e.lines.append(f"{e.out} = {e.state} = {call}")
    else:
        e.lines.append(f"{e.out}, {e.state} = {call}")


# ---- memory --------------------------------------------------------------------------------------
def _memory(name: str, params: tuple[str, ...]) -> Stateful:
    """A memory kind (ntm, dnc): its helper `_NAME` over a sequence, `_NAME_step` inside a `~>`
    loop, each given the heads, the memory's width and slots, then the weights `params` in the
    order the helper takes them."""

    def settings(e: Emit) -> str:
        o = e.layer.options
        return f"{o.heads}, {o.width}, {o.slots}, " + ", ".join(e.p(p) for p in params)

    def sequence(e: Emit, x: str) -> None:
        e.let(f"{e.use('_' + name)}({x}, {settings(e)})")

    def step(e: Emit, x: str) -> None:
        e.before.append(f"{e.state} = None")
        call = f"{e.use(f'_{name}_step')}({x}, {e.state}, {settings(e)})"
        e.lines.append(f"{e.out}, {e.state} = {call}")

    return Stateful(sequence, step)


CONTROLLER = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


# ---- attention, graphs, generative ---------------------------------------------------------------
def attention(e: Emit, x: dict[str, str]) -> None:
    o = e.layer.options
    query = x["query"]
    key = x.get("key", query)
    value = x.get("value", key)  # as the kind's shape rule: the value defaults to the key
    if e.in_loop:  # stepped on a `~>` cycle: this step's query against every step of the keys
        query = f"{query}[:, None]"
    for source, c in ((query, "q"), (key, "k"), (value, "v")):
        e.lines.append(f"{e.out}_{c} = {source} @ {e.p('weight_' + c)}.T{e.bias('bias_' + c)}")
    heads = f"{e.out}_q, {e.out}_k, {e.out}_v, {o.heads}, {o.causal}"
    e.let(f"{e.use('_attention')}({heads}){'[:, 0]' if e.in_loop else ''}")
    e.let(f"{e.out} @ {e.p('weight_o')}.T{e.bias('bias_o')}")


def gcn(e: Emit, x: dict[str, str]) -> None:
    act = e.layer.options.act
    normalised = f"{e.use('_gcn_adjacency')}({x['adjacency']})"
    z = f"{normalised} @ ({x['features']} @ {e.p('weight')}.T){e.bias()}"
    e.let(activation(e, act.name, act.alpha, z))


def rbf(e: Emit, x: str) -> None:
    e.let(f"{e.use('_rbf')}({x}, {e.p('centres')}, {e.p('eps')})")


def readout(e: Emit, x: str) -> None:
    mode = e.layer.options.mode
    if mode == "mean":
        e.let(f"{x}.sum(axis=-2) * (1.0 / {x}.shape[-2])")
    elif mode == "sum":
        e.let(f"{x}.sum(axis=-2)")
    else:
        e.let(f"{x}.max(axis=-2)")


def posenc(e: Emit, x: str) -> None:
    if "weight" in e.layer.params:
        e.let(f"{e.use('_learned_positions')}({x}, {e.p('weight')})")
    else:
        e.let(f"{x} + {e.use('_sinusoids')}({x}.shape[-2], {x}.shape[-1]).astype({x}.dtype)")


def last(e: Emit, x: str) -> None:
    e.let(f"{x}[:, -1]")


def first(e: Emit, x: str) -> None:
    e.let(f"{x}[:, 0]")


def sample(e: Emit, x: dict[str, str]) -> None:
    e.let(f"{x['mean']}  # in evaluation a sample is its mean")


def hopfield(e: Emit, x: str) -> None:
    """The state recalled from the cue (no gradient: recall is a sign at every update)."""
    o = e.layer.options
    call = f'({x}, {e.p("weight")}, "{o.update}", {o.sweeps}, {o.threshold!r})'
    e.let(f"{e.use('_hopfield')}{call}")


def markov(e: Emit, x: str) -> None:
    if e.layer.options.index:
        e.let(f"{e.use('_chain_rows')}({e.p('transition')}, {x}, {quoted(e.layer.name)})")
        return
    e.let(f"{x} @ {e.p('transition')}  # the next state's distribution")


def rbm(e: Emit, x: str) -> None:
    """P(h = 1 | v): the hidden units' mean (the visible bias is the training rule's)."""
    e.let(activation(e, "sigmoid", None, f"{x} @ {e.p('weight')}.T + {e.p('bias')}"))


def som(e: Emit, x: str) -> None:
    e.let(f"{e.use('_som')}({x}, {e.p('weight')})")


def boltzmann(e: Emit, x: str) -> None:
    """P(v_i = 1 given v_-i), exactly (the hidden units summed out)."""
    o = e.layer.options
    call = f"({x}, {e.p('weight')}, {e.p('bias')}, {o.units}, {o.hidden}, {o.groups})"
    e.let(f"{e.use('_boltzmann')}{call}")


# ---- capsules ----------------------------------------------------------------------------------
def primary_capsules(e: Emit, x: str) -> None:
    o = e.layer.options
    n = 0 if o.padding == "valid" else o.padding
    w, b = e.p("weight"), e.optional("bias")
    e.let(f"{e.use('_conv2d')}({x}, {w}, {b}, {pair(o.stride)}, {(n, n, n, n)})")
    e.let(f"{e.use('_primary_capsules')}({e.out}, {o.capsules}, {o.dim})")


def capsules(e: Emit, x: str) -> None:
    e.let(f"{e.use('_capsule_routing')}({x}, {e.p('weight')}, {e.layer.options.routing})")


def capsule_length(e: Emit, x: str) -> None:
    e.let(f"np.sqrt(({x} * {x}).sum(axis=-1) + 1e-09)")


def capsule_mask(e: Emit, x: str) -> None:
    """The longest capsule kept (the file predicts; it never trains)."""
    e.let(f"{e.use('_capsule_mask')}({x})")


def _activation_layer(name: str) -> Callable[[Emit, str], None]:
    def lower(e: Emit, x: str) -> None:
        alpha = getattr(e.layer.options, "alpha", None)
        e.let(activation(e, name, alpha, x, feature_axis(e.layer)))

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
    "rnn": _stacked(Stateful(_rnn_sequence, _rnn_step)),
    "lstm": _stacked(Stateful(_lstm_sequence, _lstm_step)),
    "gru": _stacked(Stateful(_gru_sequence, _gru_step)),
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
    "lif": Stateful(_lif_sequence, _lif_step),
    "esn": Stateful(_reservoir_sequence, _reservoir_step),
    "lsm": Stateful(_reservoir_sequence, _reservoir_step),
    "ntm": _memory("ntm", CONTROLLER + ("write_weight", "write_bias", "read_weight", "read_bias")),
    "dnc": _memory("dnc", CONTROLLER + ("read_weight", "read_bias", "write_weight", "write_bias")),
    **{name: _activation_layer(name) for name in ACTIVATIONS},
}
LOWERINGS |= {"primary_capsules": primary_capsules, "capsules": capsules, "length": capsule_length}
LOWERINGS["mask"] = capsule_mask

# kinds the NumPy target cannot write, with why (E601 names the kind; a kind that reaches the
# registry with neither a row above nor a reason here is E601 too)
CANNOT: dict[str, str] = {}

__all__ = ["CANNOT", "LOWERINGS", "Emit", "Stateful"]
