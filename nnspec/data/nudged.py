"""`digits_nudged`: the 8x8 digits and four copies nudged by one pixel, as scikit-learn's "RBM
features for digit classification" example builds its data (`nudge_dataset`, then
`minmax_scale`), in NumPy alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .examples import F32, Examples

# the four one-pixel moves of the example's kernels, in its order: each image's content moves
# up, left, right and down (rows, columns), the pixels moved in from the border are 0
NUDGES = ((-1, 0), (0, -1), (0, 1), (1, 0))


def nudged(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """`images` `[N, H, W]` with their content moved by `rows`, `cols` pixels (-1, 0 or 1),
    zeros where nothing moves in: scipy.ndimage.convolve with a one-hot 3x3 kernel, mode
    constant."""
    h, w = images.shape[1:]
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))  # out[i, j] = images[i - rows, j - cols]
    return padded[:, 1 - rows : 1 - rows + h, 1 - cols : 1 - cols + w]


def min_max(x: np.ndarray) -> np.ndarray:
    """Each pixel scaled to [0, 1] by its minimum and maximum over every image (sklearn's
    `minmax_scale`, per feature; a pixel that never changes becomes 0)."""
    low, high = x.min(0), x.max(0)
    span = np.where(high > low, high - low, 1.0)
    return (x - low) / span


def digits_nudged(rng: np.random.Generator, steps: int | None) -> Examples:
    """x `[8985, 8, 8]` in [0, 1]: the 1797 digits, then the four nudged copies of them all, each
    pixel min-max scaled over the lot; y the digit `[8985]`, ten classes."""
    with np.load(Path(__file__).resolve().parent / "digits.npz") as stored:
        images, labels = stored["images"].astype(np.float64), stored["labels"]
    x = np.concatenate([images] + [nudged(images, r, c) for r, c in NUDGES])
    y = np.tile(labels, len(NUDGES) + 1)
    return Examples(min_max(x).astype(F32), y.astype(np.int64), classes=10)
