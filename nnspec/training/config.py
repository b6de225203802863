"""A train section resolved for a run: `resolve(spec, kind, overrides) -> Config`.

`Config` is the train-section checker's `TrainConfig` (nnspec/train_section.py), the frozen model
whose fields hold every default; this module adds the command line's overrides.
"""

from __future__ import annotations

from ..program import Program
from ..train_section import TrainConfig as Config
from ..train_section import TrainSpec, train_config

__all__ = ["Config", "final_activation", "resolve"]


def resolve(spec: TrainSpec, kind: str, overrides: dict | None = None) -> Config:
    """`spec` resolved for data of `kind` (`Data.kind`); `overrides` may set epochs, lr, batch and
    seed (the command line's --epochs, --lr, --batch, --seed; None: not given)."""
    return train_config(spec, kind, **(overrides or {}))


def final_activation(program: Program, output: str) -> str:
    """The activation that ends an output layer (`identity` when it has none)."""
    return program.layer(output).activation
