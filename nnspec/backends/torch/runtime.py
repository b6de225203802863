"""Helpers the generated forward calls: input checks, time shifts, zeros, the spike function."""

from __future__ import annotations

import torch


def prepare(
    name: str, x, dims: tuple[int, ...], time: str | None, steps: int | None
) -> torch.Tensor:
    """Check one input against its declaration and shape it: `[B, *dims]`, or `[B, T, *dims]`
    when timed.

    `time` is None (static), "seq" (the caller gives every step) or "steps" (one value, held
    for `steps` steps, unless one per step is given). Size-1 inputs may leave out their last axis.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input '{name}' must be a torch.Tensor, not {type(x).__name__}")
    lead = 1 if time is None else 2
    if time == "steps" and (
        x.dim() == len(dims) + 1 and tuple(x.shape[1:]) == dims or dims == (1,) and x.dim() == 1
    ):
        x = x.reshape(x.shape[0], *dims)  # one value, held at every step
        return x.unsqueeze(1).expand(x.shape[0], steps, *dims)
    if dims == (1,) and x.dim() == lead:
        x = x.unsqueeze(-1)
    if (
        x.dim() != len(dims) + lead
        or tuple(x.shape[lead:]) != dims
        or (steps is not None and x.shape[1] != steps)
    ):
        want = ["B"] + ([str(steps) if steps else "T"] if time else []) + [str(d) for d in dims]
        raise ValueError(f"input '{name}' must be [{', '.join(want)}], but it is {list(x.shape)}")
    return x


def argument(args: tuple, kwargs: dict, names: list[str], name: str):
    """The input `name` from a call by position or by keyword
    (for input names Python cannot take)."""
    position = names.index(name)
    if position < len(args):
        return args[position]
    if name not in kwargs:
        raise TypeError(f"missing input '{name}'; the network takes {', '.join(names)}")
    return kwargs[name]


def shift(x: torch.Tensor) -> torch.Tensor:
    """[B, T, ...] one step later: zeros at the first step (the value a `~>` link passes)."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)


def along_time(x: torch.Tensor, steps: int) -> torch.Tensor:
    """A static [B, ...] repeated at every step: [B, T, ...] (a view, no copy)."""
    return x.unsqueeze(1).expand(x.shape[0], steps, *x.shape[1:])


def every_step(fn, x: torch.Tensor, *args) -> torch.Tensor:
    """`fn(x, *args)` for x [B, T, ...] and a fn that treats each step alike (a module, a
    linear map); when x holds one value for every step (an `expand`ed view: a static input met
    at every step), computed once and expanded (64 inputs for 20 steps to 128 units: one product
    of 64 rows instead of 1,280), the gradient summed over the steps."""
    if x.dim() > 2 and x.shape[1] > 1 and x.stride(1) == 0:
        once = fn(x[:, :1], *args)
        return once.expand(x.shape[0], x.shape[1], *once.shape[2:])
    return fn(x, *args)


def zeros(ref: torch.Tensor, batch: int, *dims: int) -> torch.Tensor:
    return torch.zeros(batch, *dims, dtype=ref.dtype, device=ref.device)


def step(x: torch.Tensor) -> torch.Tensor:
    """1 where x > 0, else 0; no gradient flows back through it."""
    return (x > 0).to(x.dtype)


class Spike(torch.autograd.Function):
    """Heaviside step at the threshold forward;
    the fast-sigmoid surrogate 1 / (1 + 10 |v - threshold|)^2 backward."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, threshold: float) -> torch.Tensor:
        ctx.save_for_backward(v)
        ctx.threshold = threshold
        return (v >= threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (v,) = ctx.saved_tensors
        return grad / (1 + 10 * (v - ctx.threshold).abs()) ** 2, None


def spike(v: torch.Tensor, threshold: float) -> torch.Tensor:
    return Spike.apply(v, threshold)
