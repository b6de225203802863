"""The `patterns` dataset: random +1/-1 patterns for an associative memory to store, and cues to
recall them from (a Hopfield network's data, `rule = hopfield`).

`data = patterns(count=8, units=100, flips=0.1, cues=1)`: `count` patterns of `units` values,
each +1 or -1 with probability 1/2 (independent, drawn from the section's seed); for each pattern
`cues` cues, each the pattern with `round(flips * units)` of its values, chosen at random, flipped.
The inputs are the cues, the targets the clean patterns: storing the targets and recalling from
the inputs is what the rule and the network do. `units` defaults to the width of the network's
input.
"""

from __future__ import annotations

import numpy as np

from .examples import F32, Examples

DEFAULTS = {"count": 8, "units": None, "flips": 0.1, "cues": 1}


def patterns(
    rng: np.random.Generator,
    steps: int | None,
    count: int = 8,
    units: int = 100,
    flips: float = 0.1,
    cues: int = 1,
) -> Examples:
    """x: cues `[count * cues, units]` of +1/-1, pattern by pattern; y: the clean pattern of each
    cue `[count * cues, units]`."""
    stored = np.where(rng.random((count, units)) < 0.5, -1.0, 1.0)
    targets = np.repeat(stored, cues, axis=0)
    flipped = round(flips * units)
    order = np.argsort(rng.random(targets.shape), axis=1)[:, :flipped]  # distinct per cue
    signs = np.ones_like(targets)
    np.put_along_axis(signs, order, -1.0, axis=1)
    return Examples((targets * signs).astype(F32), targets.astype(F32))
