"""Merges in PyTorch: add, mul, concat."""

from __future__ import annotations

from .lowering import Emit, Lowering, feature_axis


def _add(e: Emit, xs: list[str]) -> None:
    e.assign(" + ".join(xs))


def _mul(e: Emit, xs: list[str]) -> None:
    e.assign(" * ".join(xs))


def _concat(e: Emit, xs: list[str]) -> None:
    e.assign(f"torch.cat([{', '.join(xs)}], {feature_axis(e.layer)})" if len(xs) > 1 else xs[0])


LOWERINGS = {"add": Lowering(_add), "mul": Lowering(_mul), "concat": Lowering(_concat)}
