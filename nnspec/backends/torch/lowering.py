"""What a kind's PyTorch lowering is: the module holding its parameters, and the code of its
forward.

A lowering writes Python source, not tensors: the code generator collects the lines of every
layer into one straight-line `forward`. `Emit` is the context a lowering writes into.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ...program import Layer


@dataclass
class Emit:
    """One layer being lowered: where its module is, what to assign, and where code goes.

    `timed`: the arrays carry a time axis `[B, T, ...]` (whole-array steps); inside a loop
    every value is one step `[B, ...]` and `timed` is False.
    """

    layer: Layer
    module: str  # expression for the layer's module, e.g. `self.h1`
    out: str  # variable to assign the layer's value to
    timed: bool
    lines: list[str] = field(default_factory=list)  # the layer's code, at its place in the forward
    before: list[str] = field(default_factory=list)  # code before the loop (state set to zeros)
    terms: list[str] = field(default_factory=list)  # expressions added to the KL term
    # an output: keep the value before a final softmax or sigmoid, for stable losses
    logits: bool = False
    logits_made: bool = False
    # parameter key -> its expression (`self.h.weight`; a tied layer's is its owner's, `.t()`)
    params: dict[str, str] = field(default_factory=dict)
    # `enc -> dec.state` from a recurrent layer: the encoder keeps its final state in
    # `{out}__final` ([layers, B, units]; a pair (h, c) for an lstm) and the decoder, whose
    # `final` names it, starts from it
    keep_final: bool = False
    final: str | None = None

    @property
    def options(self) -> Any:
        return self.layer.options

    def line(self, code: str) -> None:
        self.lines.append(code)

    def assign(self, expression: str) -> None:
        self.lines.append(f"{self.out} = {expression}")

    def state(self, what: str) -> str:
        """A variable that lives across the steps of a loop (a cell's hidden state)."""
        return f"{self.out}__{what}"

    def activate(self, act, x: str, axis: int = -1) -> str:
        """`act` applied to the expression `x`; for an output, the value before softmax/sigmoid
        is kept as its logits."""
        if self.logits and act.name in ("softmax", "sigmoid"):
            self.line(f"{self.out}__logits = {x}")
            self.logits_made = True
            x = f"{self.out}__logits"
        return act_code(act, x, axis)

    def zeros(self, *dims: int) -> str:
        return f"_zeros(_ref, B, {', '.join(map(str, dims))})"


def split_steps(sequence: str) -> str:
    """The line that splits `sequence` [B, T, ...] into its steps once, before a loop through
    time reads step t as `at_step(sequence)`: taking `sequence[:, t]` at every step instead would
    make each step's backward fill a zero tensor as large as the whole sequence."""
    return f"{sequence}__at = {sequence}.unbind(1)"


def at_step(sequence: str) -> str:
    """Step t of a sequence that `split_steps` split."""
    return f"{sequence}__at[t]"


@dataclass(frozen=True)
class Lowering:
    """A kind in PyTorch: `module(layer)` builds its parameters' home (None: it has none);
    `whole(e, x)` writes its code over whole arrays; `step(e, x)` one step inside a loop
    (defaults to `whole`, right for every kind without state of its own)."""

    whole: Callable[[Emit, Any], None]
    module: Callable[[Layer], nn.Module | None] = lambda layer: None
    step: Callable[[Emit, Any], None] | None = None


def feature_axis(layer: Layer) -> int:
    """The axis that fan-in joins, counted from the end: channels for images, else the last."""
    return -3 if len(layer.shape.dims) == 3 else -1


# What each activation computes, as `act=` of any layer and as a layer of its own (activation.py):
# name: (x expression, activation, feature axis) -> expression
ACTIVATION_CODE = {
    "identity": lambda x, a, axis: x,
    "linear": lambda x, a, axis: x,
    "step": lambda x, a, axis: f"_step({x})",
    "sigmoid": lambda x, a, axis: f"torch.sigmoid({x})",
    "tanh": lambda x, a, axis: f"torch.tanh({x})",
    "relu": lambda x, a, axis: f"torch.relu({x})",
    "leaky_relu": lambda x, a, axis: f"F.leaky_relu({x}, {a.alpha!r})",
    "elu": lambda x, a, axis: f"F.elu({x}, {a.alpha!r})",
    "gelu": lambda x, a, axis: f"F.gelu({x})",
    "softplus": lambda x, a, axis: f"F.softplus({x})",
    "silu": lambda x, a, axis: f"F.silu({x})",
    "mish": lambda x, a, axis: f"F.mish({x})",
    "hardtanh": lambda x, a, axis: f"F.hardtanh({x})",
    "selu": lambda x, a, axis: f"F.selu({x})",
    "softmax": lambda x, a, axis: f"torch.softmax({x}, {axis})",
}


def act_code(act, x: str, axis: int = -1) -> str:
    """An activation applied to the expression `x`, over `axis` (softmax)."""
    return ACTIVATION_CODE[act.name](x, act, axis)
