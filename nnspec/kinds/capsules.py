"""Capsule kinds (Sabour, Frosst and Hinton 2017): primary capsules, a capsule layer routed by
agreement, and capsule lengths.

A capsule is a vector `[dim]` whose length says how likely its entity is present and whose
direction says how it looks; a set of capsules is `[capsules, dim]`. Both capsule kinds end in
the squash, `squash(s) = |s|^2 / (1 + |s|^2) * s / |s|`, which keeps a vector's direction and
maps its length into [0, 1). `length` turns capsules into the lengths that the margin loss and
the accuracy read (the longest capsule is the class); `mask` keeps one capsule of a set, the one
a reconstruction decoder rebuilds the input from.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import Cell, Count, Hint, Kind, Options, Param, Shape, ShapeError, uniform_fan_in
from .conv import Kernel, Pair, _out, pair
from .initializers import InitOption

# the squash divides by sqrt(|s|^2 + EPSILON), so a zero vector stays zero with a finite gradient
EPSILON = 1e-9

Dim = Annotated[Count, Hint("a capsule is a vector of at least one component: dim=8")]
Routing = Annotated[Count, Hint("routing by agreement takes at least one iteration: routing=3")]


def _static(x: Shape) -> None:
    if x.timed:
        raise ShapeError(
            "E426",
            f"{{layer}} receives a value at every time step ({x}), but capsules see one example "
            "at a time",
            "feed it an image or capsules without time, or keep one step first ('last l')",
        )


class PrimaryCapsulesOptions(Options):
    capsules: Count
    dim: Dim = 8
    kernel: Kernel = 3
    stride: Pair = 1
    padding: Literal["valid"] | Annotated[int, Field(ge=0)] = "valid"
    bias: bool = True
    init: InitOption = None


class PrimaryCapsules(Kind):
    """`[C, H, W]` -> `[capsules * H' * W', dim]`, `H' = (H + 2 * padding - kh) // stride + 1`.

    A convolution to `capsules * dim` channels (as `conv`), whose channels are grouped into
    `capsules` capsule types of `dim` components each (channel `k * dim + d` is component `d` of
    type `k`); every type at every cell is one capsule, listed type by type, row by row
    (`[k, h, w]` order), and each is squashed. Stored as PyTorch's Conv2d: weight
    `[capsules * dim, C, kh, kw]`, bias `[capsules * dim]`.
    """

    name = "primary_capsules"
    family = "capsules"
    cell = Cell.CAPSULE
    Options = PrimaryCapsulesOptions
    positional = ("capsules",)
    flags = ("bias",)

    def shape(self, o: PrimaryCapsulesOptions, x: Shape) -> Shape:
        _static(x)
        if len(x.dims) != 3:
            raise ShapeError(
                "E402",
                f"primary capsules need an image [C, H, W], but receive {x}",
                "declare the input as an image: 'input image: [1, 8, 8]'",
            )
        (kh, kw), (sh, sw) = pair(o.kernel), pair(o.stride)
        n = 0 if o.padding == "valid" else o.padding
        h = _out(x.dims[1], kh, sh, n, "height", "kernel")
        w = _out(x.dims[2], kw, sw, n, "width", "kernel")
        return Shape((o.capsules * h * w, o.dim))

    def params(self, o: PrimaryCapsulesOptions, x: Shape) -> dict[str, Param]:
        kh, kw = pair(o.kernel)
        fan_in = x.dims[0] * kh * kw
        channels = o.capsules * o.dim
        params = {"weight": uniform_fan_in((channels, x.dims[0], kh, kw), fan_in)}
        if o.bias:
            params["bias"] = uniform_fan_in((channels,), fan_in)
        return params


class CapsulesOptions(Options):
    capsules: Count
    dim: Dim = 16
    routing: Routing = 3
    init: InitOption = None


class Capsules(Kind):
    """`[N, D]` -> `[capsules, dim]`.

    Each input capsule `u_i` predicts each output capsule: `u_hat_ij = W_ij u_i` (a weight matrix
    `[dim, D]` per pair); then `routing` iterations of routing by agreement: logits `b_ij = 0`;
    `c_ij = softmax_j(b_ij)` (couplings, summing to one over the outputs), `s_j = sum_i c_ij
    u_hat_ij`, `v_j = squash(s_j)`, and, before every iteration but the first,
    `b_ij += u_hat_ij . v_j` (agreement). One iteration gives uniform couplings `1 / capsules`.
    The gradient flows through every iteration. Weight `[N, capsules, dim, D]`, drawn
    U(+-1/sqrt(D)); no bias.
    """

    name = "capsules"
    family = "capsules"
    cell = Cell.CAPSULE
    Options = CapsulesOptions
    positional = ("capsules",)

    def shape(self, o: CapsulesOptions, x: Shape) -> Shape:
        _static(x)
        if len(x.dims) != 2:
            raise ShapeError(
                "E402",
                f"a capsule layer needs capsules [N, dim], but receives {x}",
                "feed it primary capsules ('primary_capsules p: 8, dim=8') or another "
                "capsule layer",
            )
        return Shape((o.capsules, o.dim))

    def params(self, o: CapsulesOptions, x: Shape) -> dict[str, Param]:
        inputs, dim_in = x.dims
        return {"weight": uniform_fan_in((inputs, o.capsules, o.dim, dim_in), dim_in)}


class Length(Kind):
    """`[N, dim]` -> `[N]`.

    The length (Euclidean norm) of each capsule: after squashed capsules, a value in [0, 1) per
    capsule, which the margin loss (`loss = margin`) and `accuracy` (the longest capsule is the
    class) read. `sqrt(|v|^2 + 1e-9)`, so a zero capsule has a finite gradient.
    """

    name = "length"
    family = "capsules"

    def shape(self, o, x: Shape) -> Shape:
        if len(x.dims) != 2:
            raise ShapeError(
                "E402",
                f"length needs capsules [N, dim], but receives {x}",
                "put it after a capsule layer: 'capsules c: 10, dim=16' then 'length y'",
            )
        return x.with_dims(x.dims[0])


class Mask(Kind):
    """`[N, dim]` -> `[N * dim]`.

    Every capsule but one set to zero, then flattened (capsule by capsule), as the reconstruction
    decoder of Sabour, Frosst and Hinton (2017) reads the digit capsules: in training the capsule
    of each example's class (the class targets of the network's output that has them: its
    `length` layer trained by `loss = margin`), otherwise the longest capsule (the class the
    network predicts; without class targets, in training too). The gradient flows into the kept
    capsule alone. No parameters.
    """

    name = "mask"
    family = "capsules"
    cell = Cell.CAPSULE

    def shape(self, o, x: Shape) -> Shape:
        _static(x)
        if len(x.dims) != 2:
            raise ShapeError(
                "E402",
                f"mask keeps one capsule of capsules [N, dim], but receives {x}",
                "put it after a capsule layer: 'capsules c: 10, dim=16' then 'mask m'",
            )
        return Shape((x.dims[0] * x.dims[1],))


KINDS = [PrimaryCapsules(), Capsules(), Length(), Mask()]
