"""A dataset as it comes, before it meets a network: `Examples` (a table of examples) or `Graph`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import NnspecError

F32 = np.float32


class DataError(NnspecError):
    """A problem with the data (code, message, hint); `load_data` reports it as
    `SpecError(code, message, data line, hint)`."""


@dataclass(frozen=True)
class Examples:
    """Examples batch first, in the dataset's own shape.

    x: `[N, *example]`, or `[N, T, F]` when `timed` (a sequence of T steps of F values).
    y: class indices `[N]` (int64) when `classes` is set, else values `[N, *target]` (float);
       `[N, T, F]` when `per_step` (a value for every step of x); None when the data has no targets.
    named: arrays already named after the network's inputs (an npz file), used instead of x;
    named_targets: arrays named after its outputs (several outputs), used instead of y.
    info: facts about the dataset (ring's centres, majority's vocabulary).
    """

    x: np.ndarray | None
    y: np.ndarray | None
    classes: int | None = None
    timed: bool = False
    per_step: bool = False
    named: dict[str, np.ndarray] | None = None
    named_targets: dict[str, np.ndarray] | None = None
    info: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    """One graph for node classification: features `[nodes, F]`, adjacency `[nodes, nodes]`,
    labels `[nodes]`."""

    features: np.ndarray
    adjacency: np.ndarray
    labels: np.ndarray
    classes: int
    info: dict[str, object] = field(default_factory=dict)

    @property
    def nodes(self) -> int:
        return len(self.labels)
