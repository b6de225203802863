"""The Hopfield network in PyTorch: a module holding the weight [N, N] whose forward recalls the
state a cue settles in, in float64 and detached (recall is a sign at every update: no gradient;
rule = hopfield stores the weights). The same numbers as nnspec/backends/numpy/hopfield.py's
`recall`, update by update."""

from __future__ import annotations

import torch
from torch import nn

from ...kinds.hopfield import TIE
from ...program import Layer
from .lowering import Emit, Lowering


class Hopfield(nn.Module):
    """weight [N, N]; forward(cue [..., N]) -> the recalled state [..., N] of +1/-1: the cue read
    as +1 where positive, then at most `sweeps` sweeps of updates (`async`: unit by unit in
    order; `sync`: all at once), a unit kept at a tie, stopping at a fixed point."""

    def __init__(self, units: int, update: str, sweeps: int, threshold: float):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(units, units))
        self.update, self.sweeps, self.threshold = update, sweeps, threshold

    def forward(self, cue: torch.Tensor) -> torch.Tensor:
        w = self.weight.detach().double()
        s = torch.where(cue > 0, 1.0, -1.0).double()
        tie = TIE * w.abs().sum(1)
        for _ in range(self.sweeps):
            before = s.clone()
            if self.update == "sync":
                s = _updated(s @ w.T - self.threshold, tie, s)
            else:
                for i in range(w.shape[0]):
                    s[..., i] = _updated(s @ w[i] - self.threshold, tie[i], s[..., i])
            if torch.equal(s, before):
                break
        return s.to(cue.dtype if cue.is_floating_point() else torch.float64)


def _updated(net: torch.Tensor, tie: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """+1 above the threshold, -1 below, the state kept at a tie."""
    return torch.where(net > tie, 1.0, torch.where(net < -tie, -1.0, state))


def _module(layer: Layer) -> Hopfield:
    o = layer.options
    return Hopfield(o.units, o.update, o.sweeps, o.threshold)


def _hopfield(e: Emit, x: str) -> None:
    e.assign(f"{e.module}({x})")


LOWERINGS = {"hopfield": Lowering(_hopfield, _module)}
