"""`shapes`: small grey images of a square, a disc or a triangle whose factors are known, drawn
in groups that vary one factor while the others are held, as Kulkarni et al. (2015) train a deep
convolutional inverse graphics network.

Each image is 16x16 in [0, 1], anti-aliased (each pixel the covered share of 4x4 points in it).
A shape has five factors, in this order:

    x, y    its centre, in pixels from the image's top-left corner, uniform in [5, 11]
    size    its half-width in pixels (a disc's radius), uniform in [2.5, 4.5]
    angle   its rotation in degrees, uniform in [0, 45) (a disc looks the same at every angle)
    shape   0 square, 1 disc, 2 triangle (equilateral, its circumradius 1.2 times `size`)

The 2,400 images come in 150 groups of 16: group g draws every factor once, then draws factor
g % 5 again for each of its images, so within a group one factor varies and the others are held.
`info` holds the `factor_names` and, `per_example` (cut by `split` as the images are), the
`factors` `[2400, 5]` (float32), each image's `group` and the factor its group `varies` (both
`[2400]`, int64): `training/factors.py` reads them.
"""

from __future__ import annotations

import numpy as np

from .examples import F32, Examples

SIZE = 16  # pixels a side
GROUPS, GROUP = 150, 16  # groups of images, and images in a group
NAMES = ("x", "y", "size", "angle", "shape")
SUBSAMPLES = 4  # points a side in each pixel, for anti-aliasing
LOWS = np.array([5.0, 5.0, 2.5, 0.0])  # the continuous factors' ranges
HIGHS = np.array([11.0, 11.0, 4.5, 45.0])


def shapes(rng: np.random.Generator, steps: int | None) -> Examples:
    """x: `[2400, 1, 16, 16]` images; no targets (`target = input`); the factors in `info`."""
    varies = np.repeat(np.arange(GROUPS) % len(NAMES), GROUP)
    held = np.repeat(_draw(rng, GROUPS), GROUP, axis=0)
    fresh = _draw(rng, GROUPS * GROUP)
    rows = np.arange(GROUPS * GROUP)
    factors = held.copy()
    factors[rows, varies] = fresh[rows, varies]
    return Examples(
        draw(factors)[:, None],
        None,
        info={
            "factor_names": NAMES,
            "per_example": {
                "factors": factors.astype(F32),
                "group": np.repeat(np.arange(GROUPS), GROUP).astype(np.int64),
                "varies": varies.astype(np.int64),
            },
        },
    )


def _draw(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` rows of the five factors, each drawn as the module's docstring says."""
    continuous = rng.uniform(LOWS, HIGHS, (count, len(LOWS)))
    return np.column_stack([continuous, rng.integers(0, 3, count)])


def draw(factors: np.ndarray) -> np.ndarray:
    """Images `[N, 16, 16]` (float32) of the shapes whose factors are the rows of `factors`
    `[N, 5]` (x, y, size, angle, shape)."""
    ticks = ((np.arange(SIZE * SUBSAMPLES) + 0.5) / SUBSAMPLES).astype(F32)  # sample points
    px, py = np.meshgrid(ticks, ticks)  # [64, 64]: column, row, in pixels
    inside = np.zeros((len(factors), *px.shape), dtype=bool)
    for kind, covers in enumerate((_square, _disc, _triangle)):
        rows = np.flatnonzero(factors[:, 4] == kind)
        x, y, size, angle = (factors[rows, i, None, None].astype(F32) for i in range(4))
        turn = np.deg2rad(angle)
        # each point in the shape's own frame: centred, turned back, in units of its size
        u = ((px - x) * np.cos(turn) + (py - y) * np.sin(turn)) / size
        v = ((py - y) * np.cos(turn) - (px - x) * np.sin(turn)) / size
        inside[rows] = covers(u, v)
    blocks = inside.reshape(len(factors), SIZE, SUBSAMPLES, SIZE, SUBSAMPLES)
    return blocks.mean(axis=(2, 4), dtype=F32)


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 1


def _disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u**2 + v**2 <= 1


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside the three edges of an equilateral triangle centred at the origin, each edge 0.6
    (half its circumradius, 1.2) from the centre."""
    inside = np.ones(u.shape, dtype=bool)
    for a in np.deg2rad([90.0, 210.0, 330.0]):
        inside &= u * np.cos(a) + v * np.sin(a) <= 0.6
    return inside
