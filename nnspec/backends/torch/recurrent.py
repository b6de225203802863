"""Recurrent cells in PyTorch: rnn, lstm, gru, holding their parameters in
nn.RNNCell/LSTMCell/GRUCell.

Over a whole sequence, lstm and gru (and rnn with tanh or relu) run PyTorch's fused
sequence kernels with the cell's own parameters, as nn.LSTM does; inside a loop through
`~>` links they run one step at a time.
"""

from __future__ import annotations

from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering, act_code

CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
FUSED = {
    "lstm": "_VF.lstm",
    "gru": "_VF.gru",
    ("rnn", "tanh"): "_VF.rnn_tanh",
    ("rnn", "relu"): "_VF.rnn_relu",
}


def _module(layer: Layer) -> nn.Module:
    _, inputs = layer.params["weight_ih"].shape
    return CELLS[layer.kind.name](inputs, layer.options.units, bias="bias_ih" in layer.params)


def _weights(e: Emit) -> str:
    names = ["weight_ih", "weight_hh"] + (
        ["bias_ih", "bias_hh"] if "bias_ih" in e.layer.params else []
    )
    return "[" + ", ".join(f"{e.module}.{n}" for n in names) + "]"


def _fused(e: Emit) -> str | None:
    kind = e.layer.kind.name
    return FUSED.get(kind) or FUSED.get((kind, e.options.act.name if kind == "rnn" else ""))


def _sequence(e: Emit, x: str) -> None:
    units, bias = e.options.units, "bias_ih" in e.layer.params
    fused = _fused(e)
    if fused is None:  # an rnn with another activation: the input projection at once, then steps
        _rnn_loop(e, x)
        return
    h0 = f"{e.zeros(units)}.unsqueeze(0)"
    hx = f"({h0}, {h0})" if e.layer.kind.name == "lstm" else h0
    e.assign(f"{fused}({x}, {hx}, {_weights(e)}, {bias}, 1, 0.0, self.training, False, True)[0]")


def _rnn_loop(e: Emit, x: str) -> None:
    m, units, h = e.module, e.options.units, e.state("h")
    e.line(f"{h}_in = F.linear({x}, {m}.weight_ih, {m}.bias_ih)")
    e.line(f"{h} = {e.zeros(units)}")
    e.line(f"{h}_steps = []")
    e.line("for t in range(T):")
    step = act_code(e.options.act, f"{h}_in[:, t] + F.linear({h}, {m}.weight_hh, {m}.bias_hh)")
    e.line(f"    {h} = {step}")
    e.line(f"    {h}_steps.append({h})")
    e.assign(f"torch.stack({h}_steps, 1)")


def _step(e: Emit, x: str) -> None:
    kind, units, m = e.layer.kind.name, e.options.units, e.module
    h = e.state("h")
    e.before.append(f"{h} = {e.zeros(units)}")
    if kind == "lstm":
        c = e.state("c")
        e.before.append(f"{c} = {e.zeros(units)}")
        e.line(f"{h}, {c} = {m}({x}, ({h}, {c}))")
    elif kind == "gru":
        e.line(f"{h} = {m}({x}, {h})")
    else:
        e.line(
            f"{h} = "
            + act_code(
                e.options.act,
                f"F.linear({x}, {m}.weight_ih, {m}.bias_ih)"
                f" + F.linear({h}, {m}.weight_hh, {m}.bias_hh)",
            )
        )
    e.assign(h)


LOWERINGS = {kind: Lowering(_sequence, _module, _step) for kind in CELLS}
