"""Recurrent cells in PyTorch: rnn, lstm, gru, holding their parameters in
nn.RNNCell/LSTMCell/GRUCell (one layer) or nn.RNN/LSTM/GRU (`layers=N`); and last, first.

Over a whole sequence, lstm and gru (and rnn with tanh or relu) run PyTorch's fused
sequence kernels with the cell's own parameters, as nn.LSTM does (stacked layers call the
nn.LSTM module itself, which drops out between layers in training); inside a loop through
`~>` links they run one step at a time. An rnn with another activation steps through time
in a loop, layer after layer.
"""

from __future__ import annotations

from torch import nn

from ...kinds.recurrent import layer_suffixes
from ...program import Layer
from .lowering import Emit, Lowering, act_code, at_step, split_steps

CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
STACKS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
FUSED = {
    "lstm": "_VF.lstm",
    "gru": "_VF.gru",
    ("rnn", "tanh"): "_VF.rnn_tanh",
    ("rnn", "relu"): "_VF.rnn_relu",
}


def _module(layer: Layer) -> nn.Module:
    o = layer.options
    inputs = layer.params[f"weight_ih{layer_suffixes(o)[0]}"].shape[1]
    if o.layers == 1 and not o.bidirectional:
        return CELLS[layer.kind.name](inputs, o.units, bias=o.bias)
    extra = {"bidirectional": True} if o.bidirectional else {}
    if layer.kind.name == "rnn":  # another activation keeps the weights here and loops
        extra["nonlinearity"] = o.act.name if o.act.name in ("tanh", "relu") else "tanh"
    return STACKS[layer.kind.name](
        inputs, o.units, o.layers, bias=o.bias, batch_first=True, dropout=o.dropout, **extra
    )


NAMES = ("weight_ih", "bias_ih", "weight_hh", "bias_hh")


def _param(e: Emit, key: str) -> str:
    """The module's parameter `key`, or None for a bias the layer does not have."""
    return f"{e.module}.{key}" if key in e.layer.params else "None"


def _weights(e: Emit) -> str:
    names = ["weight_ih", "weight_hh"] + (
        ["bias_ih", "bias_hh"] if "bias_ih" in e.layer.params else []
    )
    return "[" + ", ".join(f"{e.module}.{n}" for n in names) + "]"


def _fused(e: Emit) -> str | None:
    kind = e.layer.kind.name
    return FUSED.get(kind) or FUSED.get((kind, e.options.act.name if kind == "rnn" else ""))


def _start(e: Emit, state: str | None, k: int = 0) -> str:
    """Layer k's state before the first step, [B, units]: the encoder's final h of that layer,
    the `state` port's vector, or zeros."""
    if e.final is not None:
        return f"{e.final}[0][{k}]" if e.layer.kind.name == "lstm" else f"{e.final}[{k}]"
    return state if state is not None else e.zeros(e.options.units)


def _first_cell(e: Emit, k: int = 0) -> str:
    """An lstm's layer-k cell before the first step, [B, units]: the encoder's final c, or zeros."""
    return f"{e.final}[1][{k}]" if e.final is not None else e.zeros(e.options.units)


def _stacked_start(e: Emit, state: str | None) -> tuple[str, str]:
    """(h_0, c_0) [layers, B, units] as nn.LSTM takes them: the encoder's final state, or the
    `state` (or zeros) for every layer's h and zeros for c."""
    o = e.options
    if e.final is not None:
        if e.layer.kind.name == "lstm":
            return f"{e.final}[0]", f"{e.final}[1]"
        return e.final, e.final
    cells = o.layers * (2 if o.bidirectional else 1)  # nn.LSTM's h_0 [layers * directions, B, H]
    zeros = f"_zeros(_ref, {cells}, B, {o.units})"
    if state is None:
        return zeros, zeros
    return f"{state}.unsqueeze(0).expand({cells}, -1, -1).contiguous()", zeros


def _sequence(e: Emit, x: dict) -> None:
    x, state = x[None], x.get("state")
    bias = "bias_ih" in e.layer.params
    fused = _fused(e)
    lstm = e.layer.kind.name == "lstm"
    if fused is None:  # an rnn with another activation: the input projection at once, then steps
        _rnn_loop(e, x, state)
        return
    if e.options.layers > 1 or e.options.bidirectional:  # the module: its kernel, its dropout
        if state is None and e.final is None:
            call = f"{e.module}({x})"
        else:
            h0, c0 = _stacked_start(e, state)
            call = f"{e.module}({x}, {f'({h0}, {c0})' if lstm else h0})"
        if e.keep_final:  # (out, h_n) or (out, (h_n, c_n)), as nn.LSTM gives them
            e.line(f"{e.out}, {e.out}__final = {call}")
        else:
            e.assign(f"{call}[0]")
        return
    if e.final is not None:
        h0, c0 = (f"{e.final}[0]", f"{e.final}[1]") if lstm else (e.final, None)
    else:
        h0 = f"{_start(e, state)}.unsqueeze(0)"
        c0 = f"{e.zeros(e.options.units)}.unsqueeze(0)"
    hx = f"({h0}, {c0})" if lstm else h0
    call = f"{fused}({x}, {hx}, {_weights(e)}, {bias}, 1, 0.0, self.training, False, True)"
    if e.keep_final:  # the fused kernel gives (out, h_n) or (out, h_n, c_n), each [1, B, units]
        e.line(f"{e.out}__all = {call}")
        e.assign(f"{e.out}__all[0]")
        final = f"{e.out}__all[1:]" if lstm else f"{e.out}__all[1]"
        e.line(f"{e.out}__final = {final}")
        return
    e.assign(f"{call}[0]")


def _between(e: Emit, k: int, h: str) -> str:
    """Layer k's output as the next layer reads it: dropped out in training, but after the last."""
    if k == e.options.layers - 1 or not e.options.dropout:
        return h
    return f"F.dropout({h}, {e.options.dropout!r}, self.training)"


def _rnn_loop(e: Emit, x: str, state: str | None) -> None:
    hs = []
    for k, suffix in enumerate(layer_suffixes(e.options)):
        outs = []
        for way in ("", "_reverse") if e.options.bidirectional else ("",):
            h = e.state((f"h{k}" if suffix else "h") + way)
            hs.append(h)
            w_ih, b_ih, w_hh, b_hh = (_param(e, f"{name}{suffix}{way}") for name in NAMES)
            e.line(f"{h}_in = F.linear({x}, {w_ih}, {b_ih})")
            e.line(split_steps(f"{h}_in"))
            e.line(f"{h} = {_start(e, state, k)}")
            e.line(f"{h}_steps = []")
            # the backward cell from the last step to the first, its outputs turned back
            e.line("for t in range(T - 1, -1, -1):" if way else "for t in range(T):")
            step = act_code(e.options.act, f"{at_step(f'{h}_in')} + F.linear({h}, {w_hh}, {b_hh})")
            e.line(f"    {h} = {step}")
            e.line(f"    {h}_steps.append({h})")
            outs.append(f"torch.stack({h}_steps{'[::-1]' if way else ''}, 1)")
        x = _between(e, k, outs[0] if len(outs) == 1 else f"torch.cat([{', '.join(outs)}], -1)")
    if e.keep_final:  # in one statement: an encoder whose outputs nothing else reads
        e.line(f"{e.out}, {e.out}__final = {x}, torch.stack([{', '.join(hs)}], 0)")
    else:
        e.assign(x)


def _step(e: Emit, x: dict) -> None:
    kind, o, m = e.layer.kind.name, e.options, e.module
    x, state = x[None], x.get("state")
    if o.layers > 1:
        _stacked_step(e, x, state)
        return
    h = e.state("h")
    e.before.append(f"{h} = {_start(e, state)}")
    if kind == "lstm":
        c = e.state("c")
        e.before.append(f"{c} = {_first_cell(e)}")
        e.line(f"{h}, {c} = {m}({x}, ({h}, {c}))")
    elif kind == "gru":
        e.line(f"{h} = {m}({x}, {h})")
    else:
        e.line(
            f"{h} = "
            + act_code(
                o.act,
                f"F.linear({x}, {m}.weight_ih, {m}.bias_ih)"
                f" + F.linear({h}, {m}.weight_hh, {m}.bias_hh)",
            )
        )
    e.assign(h)


def _stacked_step(e: Emit, x: str, state: str | None) -> None:
    """One step of N stacked layers: the module on a sequence of one step (its state [N, B, H]
    carried), or, for an rnn with another activation, layer after layer."""
    kind, o, m = e.layer.kind.name, e.options, e.module
    h = e.state("h")
    if kind == "rnn" and _fused(e) is None:
        for k, suffix in enumerate(layer_suffixes(o)):
            hk = e.state(f"h{k}")
            e.before.append(f"{hk} = {_start(e, state, k)}")
            w_ih, b_ih, w_hh, b_hh = (_param(e, f"{name}{suffix}") for name in NAMES)
            pre = f"F.linear({x}, {w_ih}, {b_ih}) + F.linear({hk}, {w_hh}, {b_hh})"
            e.line(f"{hk} = {act_code(o.act, pre)}")
            x = _between(e, k, hk)
        e.assign(x)
        return
    h0, c0 = _stacked_start(e, state)
    e.before.append(f"{h} = {h0}")
    if kind == "lstm":
        c = e.state("c")
        e.before.append(f"{c} = {c0}")
        e.line(f"{h}_out, ({h}, {c}) = {m}({x}.unsqueeze(1), ({h}, {c}))")
    else:
        e.line(f"{h}_out, {h} = {m}({x}.unsqueeze(1), {h})")
    e.assign(f"{h}_out[:, 0]")


def _last(e: Emit, x: str) -> None:
    e.assign(f"{x}[:, -1]")


def _first(e: Emit, x: str) -> None:
    e.assign(f"{x}[:, 0]")


LOWERINGS = {kind: Lowering(_sequence, _module, _step) for kind in CELLS}
LOWERINGS |= {"last": Lowering(_last), "first": Lowering(_first)}
