"""Writes examples/digit_pairs.npz, the data of examples/siamese.nn: 1,200 pairs of 8x8 digits
from nnspec's built-in `digits` (pixels in [0, 1]), half of them two different images of the same
digit and half two images of different digits, in random order, with a fixed seed, so the file is
the same on every run.

Arrays, named after the network's inputs and output: `a` and `b` float32 `[1200, 64]`, `same`
float32 `[1200, 1]` (1 for the same digit, 0 for different digits). Run from the project's root:
`python examples/make_digit_pairs.py`.
"""

from pathlib import Path

import numpy as np

PAIRS = 1200
DIGITS = Path(__file__).resolve().parent.parent / "nnspec" / "data" / "digits.npz"


def pairs(seed: int = 8) -> dict[str, np.ndarray]:
    """`a`, `b` and `same` as the docstring says."""
    rng = np.random.default_rng(seed)
    with np.load(DIGITS) as digits:
        images = digits["images"].reshape(-1, 64).astype(np.float32) / 16.0
        labels = digits["labels"]
    by_digit = [np.flatnonzero(labels == d) for d in range(10)]
    first, second = [], []
    for i in range(PAIRS):
        digit = rng.integers(10)
        other = digit if i % 2 == 0 else (digit + rng.integers(1, 10)) % 10
        a = rng.choice(by_digit[digit])
        b = rng.choice(by_digit[other][by_digit[other] != a])
        first.append(a)
        second.append(b)
    order = rng.permutation(PAIRS)
    first, second = np.array(first)[order], np.array(second)[order]
    same = (labels[first] == labels[second]).astype(np.float32)[:, None]
    return {"a": images[first], "b": images[second], "same": same}


if __name__ == "__main__":
    out = Path(__file__).resolve().with_name("digit_pairs.npz")
    np.savez_compressed(out, **pairs())
    print(f"wrote {out}")
