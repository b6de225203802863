"""Networks with an external memory in PyTorch: ntm, one module (`NTM`) holding the controller's
and the heads' parameters under the spec's names, stepping through time in a Python loop.

`NTM` imports nothing of nnspec (only torch), so the torch compile target copies its source into
the files it writes (compile/torch_target.py): the compiled file computes what the backend does.
The formulas are in nnspec/kinds/memory.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...program import Layer
from .lowering import Emit, Lowering


class NTM(nn.Module):
    """A neural Turing machine: an LSTM controller, `heads` write and read heads on a memory of
    `slots` cells of `width` (Graves, Wayne and Danihelka 2014). x [B, T, F] -> [B, T, controller
    + heads * width]: the controller's h and the vectors read, per step; `step` runs one step."""

    def __init__(self, inputs, controller, slots, width, heads):
        super().__init__()
        self.controller, self.slots, self.width, self.heads = controller, slots, width, heads
        rows = width + 6  # a read head's: key, beta, gate, three shifts, gamma
        self.weight_ih = nn.Parameter(torch.empty(4 * controller, inputs + heads * width))
        self.weight_hh = nn.Parameter(torch.empty(4 * controller, controller))
        self.bias_ih = nn.Parameter(torch.empty(4 * controller))
        self.bias_hh = nn.Parameter(torch.empty(4 * controller))
        self.read_weight = nn.Parameter(torch.empty(heads * rows, controller))
        self.read_bias = nn.Parameter(torch.empty(heads * rows))
        self.write_weight = nn.Parameter(torch.empty(heads * (rows + 2 * width), controller))
        self.write_bias = nn.Parameter(torch.empty(heads * (rows + 2 * width)))
        for p in self.parameters():
            nn.init.uniform_(p, -(controller**-0.5), controller**-0.5)

    def start(self, x):
        """The state before the first step: h, c at zeros, the memory at 1e-6, every head's
        weighting on slot 0, the vectors read at zeros."""
        batch = x.shape[0]
        h = x.new_zeros(batch, self.controller)
        memory = x.new_full((batch, self.slots, self.width), 1e-6)
        w = x.new_zeros(batch, self.heads, self.slots)
        w[:, :, 0] = 1.0
        return h, h, memory, w, w, x.new_zeros(batch, self.heads * self.width)

    def address(self, memory, w_prev, head):
        """Each head's weighting [B, heads, slots] from its outputs [B, heads, width + 6]."""
        key, beta, gate, shift, gamma = head.split([self.width, 1, 1, 3, 1], -1)
        dot = key @ memory.transpose(1, 2)  # [B, heads, slots]
        norms = key.norm(dim=-1, keepdim=True) * memory.norm(dim=-1).unsqueeze(1)
        w = torch.softmax(F.softplus(beta) * dot / (norms + 1e-8), -1)  # content
        g = torch.sigmoid(gate)
        w = g * w + (1 - g) * w_prev  # interpolation
        s = torch.softmax(shift, -1)  # shifts -1, 0, +1
        w = s[..., :1] * w.roll(-1, -1) + s[..., 1:2] * w + s[..., 2:] * w.roll(1, -1)
        # sharpening, over the largest weight first (the same value: no power of it underflows
        # to all zeros in float32)
        w = (w / w.amax(-1, keepdim=True).detach()) ** (1 + F.softplus(gamma))
        return w / w.sum(-1, keepdim=True)

    def step(self, x, state=None):
        """One step: x [B, F] -> (out [B, controller + heads * width], the state after it)."""
        h, c, memory, w_read, w_write, read = self.start(x) if state is None else state
        batch, width = x.shape[0], self.width
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        h, c = torch.lstm_cell(torch.cat([x, read], -1), (h, c), *weights)
        writes = F.linear(h, self.write_weight, self.write_bias).view(batch, self.heads, -1)
        w_write = self.address(memory, w_write, writes[..., : width + 6])
        erase = torch.sigmoid(writes[..., width + 6 : 2 * width + 6])
        add = writes[..., 2 * width + 6 :]
        for k in range(self.heads):  # erase, then add, head after head
            w = w_write[:, k].unsqueeze(-1)  # [B, slots, 1]
            memory = memory * (1 - w * erase[:, k].unsqueeze(1)) + w * add[:, k].unsqueeze(1)
        reads = F.linear(h, self.read_weight, self.read_bias).view(batch, self.heads, -1)
        w_read = self.address(memory, w_read, reads)
        read = (w_read @ memory).reshape(batch, self.heads * width)
        return torch.cat([h, read], -1), (h, c, memory, w_read, w_write, read)

    def forward(self, x):
        state, steps = None, []
        for t in range(x.shape[1]):
            out, state = self.step(x[:, t], state)
            steps.append(out)
        return torch.stack(steps, 1)


def _module(layer: Layer) -> NTM:
    o = layer.options
    inputs = layer.params["weight_ih"].shape[1] - o.heads * o.width
    return NTM(inputs, o.controller, o.slots, o.width, o.heads)


def _sequence(e: Emit, x: str) -> None:
    e.assign(f"{e.module}({x})")


def _step(e: Emit, x: str) -> None:
    state = e.state("memory")
    e.before.append(f"{state} = None")
    e.line(f"{e.out}, {state} = {e.module}.step({x}, {state})")


LOWERINGS = {"ntm": Lowering(_sequence, _module, _step)}
