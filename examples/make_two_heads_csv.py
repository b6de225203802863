"""Writes examples/two_heads.csv, the data of examples/two_heads.nn: 300 points around three
centres, each with its cluster (0, 1 or 2: a class) and its distance from the origin (a value).

The points are drawn from normal distributions (deviation 0.7) around (-2, 0), (2, 0) and
(0, 2.5), rounded to a thousandth, with a fixed seed, so the file is the same on every run. Run
from the project's root: `python examples/make_two_heads_csv.py`.
"""

from pathlib import Path

import numpy as np

CENTRES = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])


def rows(seed: int = 16, count: int = 300) -> list[str]:
    """One line per point: x, y, its cluster and its distance from the origin."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, len(CENTRES), count)
    points = CENTRES[cluster] + rng.normal(0, 0.7, (count, 2))
    distance = np.sqrt((points**2).sum(1))
    return [
        f"{x:.3f},{y:.3f},{k},{d:.3f}"
        for (x, y), k, d in zip(points, cluster, distance, strict=True)
    ]


if __name__ == "__main__":
    lines = ["x,y,cluster,distance", *rows()]
    Path(__file__).with_name("two_heads.csv").write_text("\n".join(lines) + "\n")
