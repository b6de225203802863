"""The rbm kind in PyTorch: a module holding the weight, the hidden bias and the visible bias,
and the forward P(h = 1 | v) = sigmoid(F.linear(v, weight, bias))."""

from __future__ import annotations

import torch
from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering


class Rbm(nn.Module):
    """weight [units, visible], bias [units], visible_bias [visible]: the energy's parameters.

    The forward reads the weight and the hidden bias only, so the visible bias never gets a
    gradient (its `grad` stays None and the optimizers pass it by); the contrastive-divergence
    rules move it."""

    def __init__(self, visible: int, units: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(units, visible))
        self.bias = nn.Parameter(torch.zeros(units))
        self.visible_bias = nn.Parameter(torch.zeros(visible))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(nn.functional.linear(v, self.weight, self.bias))


def _rbm_module(layer: Layer) -> Rbm:
    units, visible = layer.params["weight"].shape
    return Rbm(visible, units)


def _rbm(e: Emit, x: str) -> None:
    linear = f"F.linear({x}, {e.params['weight']}, {e.params['bias']})"
    e.assign(e.activate(e.options.act, linear))


LOWERINGS = {"rbm": Lowering(_rbm, _rbm_module)}
