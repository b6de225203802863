"""Inputs and block ports in PyTorch: inputs are prepared by the generated forward's prologue."""

from __future__ import annotations

from .lowering import Emit, Lowering


def _input(e: Emit, x: None) -> None:
    raise AssertionError("inputs are bound by the forward's arguments (this is a bug)")


def _port(e: Emit, x: str) -> None:
    e.assign(x)


LOWERINGS = {"input": Lowering(_input), "port": Lowering(_port)}
