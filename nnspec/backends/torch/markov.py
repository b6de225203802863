"""The Markov chain in PyTorch: the next-state distribution `x @ P`."""

from __future__ import annotations

import torch
from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering


class Transition(nn.Module):
    """Holds a chain's transition matrix `transition` `[states, states]` ([from, to])."""

    def __init__(self, states: int):
        super().__init__()
        self.transition = nn.Parameter(torch.empty(states, states))


def _module(layer: Layer) -> Transition:
    return Transition(layer.params["transition"].shape[0])


def _markov(e: Emit, x: str) -> None:
    e.assign(f"{x} @ {e.params['transition']}")


LOWERINGS = {"markov": Lowering(_markov, _module)}
