"""Networks with an external memory in PyTorch: ntm, one module (`NTM`) holding the controller's
and the heads' parameters under the spec's names, stepping through time in a Python loop.

Each step runs the controller (`torch.lstm_cell`), then the heads' whole step (both addressings,
the writes, the read) as one autograd function, `NTM.Heads`, whose backward is written out: a
few nodes a step for torch's autograd instead of about 80. `NTM.step_composed` is the same step of
torch's operations, autograd differentiating them: the reference the fused step is tested
against (tests/test_ntm.py, equal to 1e-10 in float64).

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
        """One step: x [B, F] -> (out [B, controller + heads * width], the state after it): the
        controller, then the heads' whole step as one autograd function (`Heads`, its backward
        written out), which computes what `step_composed` does."""
        h, c, memory, w_read, w_write, read = self.start(x) if state is None else state
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        h, c = torch.lstm_cell(torch.cat([x, read], -1), (h, c), *weights)
        heads = (self.write_weight, self.write_bias, self.read_weight, self.read_bias)
        memory, w_read, w_write, read = NTM.Heads.apply(h, memory, w_read, w_write, *heads)
        return torch.cat([h, read], -1), (h, c, memory, w_read, w_write, read)

    def step_composed(self, x, state=None):
        """`step` of torch's operations, torch's autograd differentiating them (about 80 nodes
        a step): the reference `step` equals."""
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

    class Heads(torch.autograd.Function):
        """The heads' step: (h [B, C], memory, the read and write weightings, write_weight,
        write_bias, read_weight, read_bias) -> (the memory after the writes, the read weightings,
        the write weightings, the vectors read [B, heads * width]); `step_composed`'s heads, with
        the vector-Jacobian product written out."""

        @staticmethod
        def forward(
            ctx, h, memory, w_read, w_write, write_weight, write_bias, read_weight, read_bias
        ):
            batch, heads = h.shape[0], w_write.shape[1]
            width = memory.shape[2]
            writes = F.linear(h, write_weight, write_bias).view(batch, heads, -1)
            ww, saved_w = NTM.address_forward(memory, w_write, writes[..., : width + 6])
            erase = torch.sigmoid(writes[..., width + 6 : 2 * width + 6])
            add = writes[..., 2 * width + 6 :]
            before, kept, m = [], [], memory
            for k in range(heads):  # erase, then add, head after head
                w = ww[:, k].unsqueeze(-1)
                before.append(m)
                kept.append(1 - w * erase[:, k].unsqueeze(1))
                m = m * kept[k] + w * add[:, k].unsqueeze(1)
            reads = F.linear(h, read_weight, read_bias).view(batch, heads, -1)
            wr, saved_r = NTM.address_forward(m, w_read, reads)
            ctx.saved = (saved_w, saved_r, erase, add, before, kept)
            ctx.save_for_backward(h, write_weight, read_weight, m, wr, ww)
            return m, wr, ww, (wr @ m).reshape(batch, heads * width)

        @staticmethod
        def backward(ctx, g_memory, g_read, g_write, g_r):
            saved_w, saved_r, erase, add, before, kept = ctx.saved
            h, write_weight, read_weight, m, wr, ww = ctx.saved_tensors
            batch, heads, width = h.shape[0], ww.shape[1], m.shape[2]
            g_r = g_r.reshape(batch, heads, width)
            gm = g_memory + wr.transpose(1, 2) @ g_r  # the read
            gm_read, g_read_prev, g_reads = NTM.address_back(
                saved_r, wr, g_read + g_r @ m.transpose(1, 2)
            )
            gm = gm + gm_read
            g_reads = g_reads.reshape(batch, -1)
            g_ww, g_erase, g_add = g_write.clone(), torch.empty_like(erase), torch.empty_like(add)
            for k in reversed(range(heads)):  # the writes, the last head's first
                w, mk, e = ww[:, k].unsqueeze(-1), before[k], erase[:, k].unsqueeze(1)
                g_ww[:, k] += (gm * (add[:, k].unsqueeze(1) - mk * e)).sum(-1)
                g_erase[:, k] = -(gm * mk * w).sum(1)
                g_add[:, k] = (gm * w).sum(1)
                gm = gm * kept[k]
            gm_write, g_write_prev, g_head = NTM.address_back(saved_w, ww, g_ww)
            g_writes = torch.cat([g_head, g_erase * erase * (1 - erase), g_add], -1)
            g_writes = g_writes.reshape(batch, -1)
            gh = g_reads @ read_weight + g_writes @ write_weight
            ctx.saved = None
            return (
                gh,
                gm + gm_write,
                g_read_prev,
                g_write_prev,
                g_writes.T @ h,
                g_writes.sum(0),
                g_reads.T @ h,
                g_reads.sum(0),
            )

    @staticmethod
    def address_forward(memory, w_prev, head):
        """`address` without autograd: the weighting, and what `address_back` needs."""
        width = memory.shape[2]
        key, beta_raw, gate_raw, shift_raw, gamma_raw = head.split([width, 1, 1, 3, 1], -1)
        beta, g = F.softplus(beta_raw), torch.sigmoid(gate_raw)
        s, gamma = torch.softmax(shift_raw, -1), 1 + F.softplus(gamma_raw)
        nk, nm = key.norm(dim=-1), memory.norm(dim=-1)  # content
        den = nk.unsqueeze(-1) * nm.unsqueeze(1) + 1e-8
        cos = key @ memory.transpose(1, 2) / den
        wc = torch.softmax(beta * cos, -1)
        wg = w_prev + g * (wc - w_prev)  # interpolation
        ahead, behind = wg.roll(-1, -1), wg.roll(1, -1)  # w[i + 1], w[i - 1]
        ws = s[..., :1] * ahead + s[..., 1:2] * wg + s[..., 2:] * behind  # shift
        power = (ws / ws.amax(-1, keepdim=True)) ** gamma  # sharpening
        total = power.sum(-1, keepdim=True)
        saved = (memory, w_prev, key, beta_raw, gate_raw, gamma_raw, beta, g, s, gamma, nk, nm)
        return power / total, (*saved, den, cos, wc, wg, ahead, behind, ws, power, total)

    @staticmethod
    def address_back(saved, w, gw):
        """The gradients of the memory, of the last weighting and of the head's outputs, from
        the weighting's `gw` (`w`: the weighting)."""
        memory, w_prev, key, beta_raw, gate_raw, gamma_raw, beta, g, s, gamma, nk, nm = saved[:12]
        den, cos, wc, wg, ahead, behind, ws, power, total = saved[12:]
        gp = (gw - (gw * w).sum(-1, keepdim=True)) / total  # sharpening
        positive = ws > 0
        safe = torch.where(positive, ws, torch.ones_like(ws))
        g_ws = torch.where(positive, gp * gamma * power / safe, torch.zeros_like(ws))
        g_gamma = (gp * power * safe.log()).sum(-1, keepdim=True)
        g_wg = s[..., :1] * g_ws.roll(1, -1) + s[..., 1:2] * g_ws + s[..., 2:] * g_ws.roll(-1, -1)
        g_s = torch.stack(
            [(g_ws * ahead).sum(-1), (g_ws * wg).sum(-1), (g_ws * behind).sum(-1)], -1
        )
        g_wc = g * g_wg  # interpolation
        g_g = (g_wg * (wc - w_prev)).sum(-1, keepdim=True)
        g_z = wc * (g_wc - (g_wc * wc).sum(-1, keepdim=True))  # content
        g_beta = (g_z * cos).sum(-1, keepdim=True)
        g_cos = beta * g_z
        g_dot = g_cos / den
        g_den = -g_cos * cos / den
        g_nk = (g_den * nm.unsqueeze(1)).sum(-1)
        g_nm = (g_den * nk.unsqueeze(-1)).sum(1)
        g_key = (
            g_dot @ memory
            + torch.where(nk > 0, g_nk / nk, torch.zeros_like(nk)).unsqueeze(-1) * key
        )
        g_memory = g_dot.transpose(1, 2) @ key
        g_memory = (
            g_memory + torch.where(nm > 0, g_nm / nm, torch.zeros_like(nm)).unsqueeze(-1) * memory
        )
        g_head = torch.cat(
            [
                g_key,
                g_beta * torch.sigmoid(beta_raw),  # softplus' slope
                g_g * g * (1 - g),
                s * (g_s - (g_s * s).sum(-1, keepdim=True)),
                g_gamma * torch.sigmoid(gamma_raw),
            ],
            -1,
        )
        return g_memory, g_wg - g_wc, g_head

    def forward(self, x):
        state, steps = None, []
        for x_now in x.unbind(1):  # split once: x[:, t]'s backward fills the whole sequence
            out, state = self.step(x_now, state)
            steps.append(out)
        return torch.stack(steps, 1)


def memory_lowering(module: type[nn.Module]) -> Lowering:
    """The lowering of a memory kind (ntm, dnc) whose module takes (inputs, controller, slots,
    width, heads) and has `step(x, state) -> (out, state)`: over a whole sequence a call, on a
    `~>` cycle a step a time with its state carried."""

    def build(layer: Layer) -> nn.Module:
        o = layer.options
        inputs = layer.params["weight_ih"].shape[1] - o.heads * o.width
        return module(inputs, o.controller, o.slots, o.width, o.heads)

    def sequence(e: Emit, x: str) -> None:
        e.assign(f"{e.module}({x})")

    def step(e: Emit, x: str) -> None:
        state = e.state("memory")
        e.before.append(f"{state} = None")
        e.line(f"{e.out}, {state} = {e.module}.step({x}, {state})")

    return Lowering(sequence, build, step)


LOWERINGS = {"ntm": memory_lowering(NTM)}
