"""The Boltzmann machine's dataset: `encoder`, the patterns of the 4-2-4 and 4-3-4 encoder
problems of Ackley, Hinton and Sejnowski (1985).

Two groups of four visible units, V1 and V2, see four patterns: in pattern k unit k of V1 and
unit k of V2 are on, the other six off. The two groups have no links between them
(`boltzmann ...: 8, hidden=2, groups=2`), so the machine can only make V2 agree with V1 through
its hidden units, which must come to hold a different code for each pattern (with two hidden
units, 4-2-4, every one of the four 2-bit codes).
"""

from __future__ import annotations

import numpy as np

from .examples import F32, Examples

GROUP = 4  # units per visible group, and patterns


def encoder(rng: np.random.Generator, steps: int | None) -> Examples:
    """x: the four patterns `[4, 8]` (unit k of each group on, as bits 0 and 1); y: the same
    bits `[4, 8]` (each visible unit as the others predict it). The same for every seed."""
    x = np.concatenate([np.eye(GROUP), np.eye(GROUP)], axis=1).astype(F32)
    return Examples(x, x.copy())
