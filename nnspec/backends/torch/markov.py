"""The Markov chain in PyTorch: the next-state distribution `x @ P`, or the row `P[x]` of a
state's number (`index`)."""

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
    P = e.params["transition"]
    e.assign(f"{P}[{x}.squeeze(-1).long()]" if e.options.index else f"{x} @ {P}")


LOWERINGS = {"markov": Lowering(_markov, _module)}
