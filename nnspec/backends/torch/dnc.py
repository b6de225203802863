"""The differentiable neural computer in PyTorch: dnc, one module (`DNC`) holding the controller's
and the heads' parameters under the spec's names, stepping through time in a Python loop.

`DNC` imports nothing of nnspec (only torch), so the torch compile target copies its source into
the files it writes (compile/torch_target.py): the compiled file computes what the backend does.
The formulas are in nnspec/kinds/dnc.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .memory import memory_lowering


class DNC(nn.Module):
    """A differentiable neural computer: an LSTM controller, one write head and `heads` read
    heads on a memory of `slots` cells of `width`, with usage-based allocation and a temporal link
    matrix (Graves et al. 2016). x [B, T, F] -> [B, T, controller + heads * width]: the
    controller's h and the vectors read, per step; `step` runs one step."""

    def __init__(self, inputs, controller, slots, width, heads):
        super().__init__()
        self.controller, self.slots, self.width, self.heads = controller, slots, width, heads
        reads = heads * (width + 5)  # each read head's: key, beta, free gate, three modes
        writes = 3 * width + 3  # the write head's: key, beta, erase, write vector, g_a, g_w
        self.weight_ih = nn.Parameter(torch.empty(4 * controller, inputs + heads * width))
        self.weight_hh = nn.Parameter(torch.empty(4 * controller, controller))
        self.bias_ih = nn.Parameter(torch.empty(4 * controller))
        self.bias_hh = nn.Parameter(torch.empty(4 * controller))
        self.read_weight = nn.Parameter(torch.empty(reads, controller))
        self.read_bias = nn.Parameter(torch.empty(reads))
        self.write_weight = nn.Parameter(torch.empty(writes, controller))
        self.write_bias = nn.Parameter(torch.empty(writes))
        for p in self.parameters():
            nn.init.uniform_(p, -(controller**-0.5), controller**-0.5)

    def start(self, x):
        """The state before the first step: h, c at zeros, the memory at 1e-6, the usage, the
        weightings, the precedence, the links and the vectors read at zeros."""
        batch, n = x.shape[0], self.slots
        h = x.new_zeros(batch, self.controller)
        memory = x.new_full((batch, n, self.width), 1e-6)
        u = x.new_zeros(batch, n)
        w_read = x.new_zeros(batch, self.heads, n)
        link = x.new_zeros(batch, n, n)
        return h, h, memory, u, u, w_read, u, link, x.new_zeros(batch, self.heads * self.width)

    @staticmethod
    def content(memory, key, beta):
        """softmax(beta cos(k, M_i)) over the slots, beta = 1 + softplus: key [B, H, W]."""
        dot = key @ memory.transpose(1, 2)  # [B, H, slots]
        norms = key.norm(dim=-1, keepdim=True) * memory.norm(dim=-1).unsqueeze(1)
        return torch.softmax((1 + F.softplus(beta)) * dot / (norms + 1e-8), -1)

    @staticmethod
    def allocation(u):
        """a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i], phi: the slots by usage, ascending (the
        lower slot first at a tie); no gradient through the order itself."""
        su, order = torch.sort(u, dim=-1, stable=True)
        before = torch.cumprod(torch.cat([torch.ones_like(su[:, :1]), su[:, :-1]], -1), -1)
        return torch.zeros_like(u).scatter(-1, order, (1 - su) * before)

    def step(self, x, state=None):
        """One step: x [B, F] -> (out [B, controller + heads * width], the state after it)."""
        h, c, memory, u, w_write, w_read, prec, link, read = (
            self.start(x) if state is None else state
        )
        batch, width = x.shape[0], self.width
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        h, c = torch.lstm_cell(torch.cat([x, read], -1), (h, c), *weights)
        reads = F.linear(h, self.read_weight, self.read_bias).view(batch, self.heads, -1)
        r_key, r_beta, free, modes = reads.split([width, 1, 1, 3], -1)
        writes = F.linear(h, self.write_weight, self.write_bias)
        w_key, w_beta, erase, add, g_alloc, g_write = writes.split(
            [width, 1, width, width, 1, 1], -1
        )
        psi = torch.prod(1 - torch.sigmoid(free) * w_read, 1)  # retention
        u = (u + w_write - u * w_write) * psi
        w_content = self.content(memory, w_key.unsqueeze(1), w_beta.unsqueeze(1)).squeeze(1)
        g_alloc, g_write = torch.sigmoid(g_alloc), torch.sigmoid(g_write)
        w_write = g_write * (g_alloc * self.allocation(u) + (1 - g_alloc) * w_content)
        w = w_write.unsqueeze(-1)  # [B, slots, 1]
        memory = memory * (1 - w * torch.sigmoid(erase).unsqueeze(1)) + w * add.unsqueeze(1)
        off = 1 - torch.eye(self.slots, dtype=x.dtype, device=x.device)
        link = ((1 - w - w_write.unsqueeze(1)) * link + w * prec.unsqueeze(1)) * off
        prec = (1 - w_write.sum(-1, keepdim=True)) * prec + w_write
        forward, backward = w_read @ link.transpose(1, 2), w_read @ link
        pi = torch.softmax(modes, -1)  # backward, content, forward
        w_content = self.content(memory, r_key, r_beta)
        w_read = pi[..., :1] * backward + pi[..., 1:2] * w_content + pi[..., 2:] * forward
        read = (w_read @ memory).reshape(batch, self.heads * width)
        return torch.cat([h, read], -1), (h, c, memory, u, w_write, w_read, prec, link, read)

    def forward(self, x):
        state, steps = None, []
        for x_now in x.unbind(1):  # split once: x[:, t]'s backward fills the whole sequence
            out, state = self.step(x_now, state)
            steps.append(out)
        return torch.stack(steps, 1)


LOWERINGS = {"dnc": memory_lowering(DNC)}
