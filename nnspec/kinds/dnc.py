"""The differentiable neural computer (Graves et al. 2016): dnc, the neural Turing machine's
memory with usage-based allocation and a temporal link matrix.

A `dnc` layer holds its controller (an LSTM cell), `heads` read heads and one write head on a
memory of N slots of width W. Each step the controller reads the input and the vectors read at
the step before; from its h a linear map gives the interface (per read head: key k_r, strength
beta_r = 1 + softplus, free gate f = sigmoid, three read modes pi = softmax; the write head: key
k_w, strength beta_w = 1 + softplus, erase e = sigmoid, write vector v (identity), allocation gate
g_a = sigmoid, write gate g_w = sigmoid). Then, with the weightings of the step before:
    psi = prod_r (1 - f_r w_r,prev)                          retention
    u = (u_prev + w_w,prev - u_prev w_w,prev) psi            usage
    a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i]           allocation (phi: u sorted ascending)
    c_w = softmax(beta_w cos(k_w, M_prev,i))                 content
    w_w = g_w (g_a a + (1 - g_a) c_w)                        write weighting
    M = M_prev (1 - w_w e^T) + w_w v^T                       erase, then add
    L[i, j] = (1 - w_w[i] - w_w[j]) L_prev[i, j] + w_w[i] p_prev[j],  L[i, i] = 0   links
    p = (1 - sum_i w_w[i]) p_prev + w_w                      precedence
    f_r = L w_r,prev,  b_r = L^T w_r,prev                    forward, backward
    w_r = pi_r[0] b_r + pi_r[1] softmax(beta_r cos(k_r, M_i)) + pi_r[2] f_r   read weighting
    r = w_r^T M                                              read
with cos as the ntm's (nnspec/kinds/memory.py). The sort's permutation phi is held constant: no
gradient passes through the order of the slots (it is piecewise constant; the paper does the
same), only through the sorted usages; at equal usages the lower slot comes first. The memory
starts at 1e-6 everywhere (as the ntm's), the usage, the weightings, the precedence, the links
and the vectors read at zeros. The layer gives the controller's h and the vectors read, for a
readout (a `dense` layer) after it.

Parameters, in PyTorch's layout ([out, in]): the controller's LSTMCell weight_ih
[4 C, F + heads W], weight_hh [4 C, C], bias_ih, bias_hh [4 C]; read_weight [heads (W + 5), C]
and read_bias (each head's rows: key, beta, free gate, the modes backward, content, forward);
write_weight [3 W + 3, C] and write_bias (key, beta, erase, write vector, g_a, g_w); all from
U(+-1/sqrt(C)), as PyTorch's recurrent cells.
"""

from __future__ import annotations

from .base import Count, Options, Param, Shape, Units, uniform_fan_in
from .memory import MemoryKind, controller_params

MODES = 3  # a read head's modes: backward, content, forward


def read_rows(width: int) -> int:
    """A read head's outputs: key (width), beta, free gate, the three modes."""
    return width + 2 + MODES


def write_rows(width: int) -> int:
    """The write head's outputs: key, beta, erase, write vector (width each but beta), g_a, g_w."""
    return 3 * width + 3


class DNCOptions(Options):
    controller: Units = 32  # the LSTM controller's units
    slots: Units = 16  # memory cells N
    width: Units = 8  # each cell's width W
    heads: Count = 1  # read heads (the write head is one)


class DNC(MemoryKind):
    """`[T, F]` -> `[T, controller + heads * width]`: the controller's output and the vectors
    read, per step.

    A differentiable neural computer: an LSTM controller (`controller` units, reading the input
    and the vectors read at the step before), one write head and `heads` read heads on a memory of
    `slots` cells of `width`; content addressing (cosine similarity, key strength), usage-based
    allocation with free gates, a temporal link matrix that lets each read head follow the order
    of the writes forward or backward; erase and write vectors; backpropagation through time
    trains it all. Memory from 1e-6, usage, links and weightings from zeros.
    """

    name = "dnc"
    Options = DNCOptions
    takes = "a dnc takes one vector per time step"

    def params(self, o, x: Shape) -> dict[str, Param]:
        c, w, h = o.controller, o.width, o.heads
        return {
            **controller_params(c, x.dims[0] + h * w),
            "read_weight": uniform_fan_in((h * read_rows(w), c), c),
            "read_bias": uniform_fan_in((h * read_rows(w),), c),
            "write_weight": uniform_fan_in((write_rows(w), c), c),
            "write_bias": uniform_fan_in((write_rows(w),), c),
        }


KINDS = [DNC()]
