"""The Boltzmann machine in PyTorch: a module holding the weight and the bias (and, as buffers
outside the state dict, which pairs are linked and every hidden state), and the forward
P(v_i = 1 given v_-i) computed exactly in float64, detached: the Boltzmann rule moves the weights,
never a gradient (the same numbers as nnspec/backends/numpy/boltzmann.py's `conditionals`)."""

from __future__ import annotations

import torch
from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering


class Boltzmann(nn.Module):
    """weight [N, N] and bias [N] of N = visible + hidden units; `links` [N, N] (1 where a pair
    is linked) and `hidden_states` [2^hidden, hidden] (every hidden state, the first hidden
    unit the most significant bit) are buffers kept out of the state dict."""

    def __init__(self, visible: int, hidden: int, groups: int):
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


def _module(layer: Layer) -> Boltzmann:
    o = layer.options
    return Boltzmann(o.units, o.hidden, o.groups)


def _boltzmann(e: Emit, x: str) -> None:
    """The free energy's difference with v_i = 1 and with v_i = 0, the hidden states summed out
    by logsumexp; the effective weights are W's symmetric part where linked."""
    o, m, w, v = e.options, e.module, e.state("w"), e.state("v")
    visible = o.units
    weight, bias = e.params["weight"], e.params["bias"]
    s, c0, q, hv = e.state("s"), e.state("c0"), e.state("q"), f"{w}[{visible}:, :{visible}].T"
    e.line(f"{w} = (0.5 * ({weight} + {weight}.T)).detach().double() * {m}.links")
    e.line(f"{v} = {x}.detach().double()")
    e.line(f"{s} = {m}.hidden_states.double()")
    e.line(f"{c0} = ({v} @ {hv}).unsqueeze(1) - {v}.unsqueeze(2) * {hv}")
    hidden_bias = e.state("hb")  # its own line: with a compiled file's names the sum runs long
    e.line(f"{hidden_bias} = {bias}.detach().double()[{visible}:]")
    e.line(f"{q} = 0.5 * (({s} @ {w}[{visible}:, {visible}:]) * {s}).sum(1) + {s} @ {hidden_bias}")
    gap = (
        f"torch.logsumexp(({c0} + {hv}) @ {s}.T + {q}, -1)"
        f" - torch.logsumexp({c0} @ {s}.T + {q}, -1)"
    )
    e.line(f"{e.state('gap')} = {gap}")
    visible_part = f"{v} @ {w}[:{visible}, :{visible}] + {bias}.detach().double()[:{visible}]"
    e.assign(f"torch.sigmoid({visible_part} + {e.state('gap')}).to({x}.dtype)")


LOWERINGS = {"boltzmann": Lowering(_boltzmann, _module)}
