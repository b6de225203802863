"""Work arrays kept from call to call: `scratch(shape, dtype)`.

A training step allocates the same large arrays every time; fresh ones cost a page fault per
4 KiB once the allocator has handed the last step's back to the system, which took as long as
a convolution's arithmetic, or an LSTM step's. The fused kernels (image.conv2d, cells.lstm_sequence)
take their large arrays from here instead of `np.empty`.
"""

from __future__ import annotations

import sys
import threading

import numpy as np


class _Kept(threading.local):
    """Large arrays kept from call to call, by (shape, dtype), one store per thread."""

    def __init__(self) -> None:
        self.arrays: dict[tuple, list[np.ndarray]] = {}


_KEPT = _Kept()
_KEEP_PER_SHAPE, _KEEP_SHAPES = 4, 32
_KEEP_BYTES = 16 << 20  # a larger array is not kept: its page faults are a small part of its use


def scratch(shape: tuple[int, ...], dtype, zeros: bool = False) -> np.ndarray:
    """An array of `shape` (uninitialised, or zeros): one kept from an earlier call that nothing
    refers to any more, else a new one, kept for later calls. An array is reused only when its
    reference count shows that the store alone holds it (no view, gradient or closure does)."""
    dtype = np.dtype(dtype)
    kept = _KEPT.arrays.get((shape, dtype))
    if kept is None:
        if len(_KEPT.arrays) >= _KEEP_SHAPES:
            _KEPT.arrays.clear()
        kept = _KEPT.arrays[(shape, dtype)] = []
    for array in kept:
        if sys.getrefcount(array) == 3:  # the list, this loop's name and getrefcount's argument
            if zeros:
                array.fill(0)
            return array
    array = np.zeros(shape, dtype) if zeros else np.empty(shape, dtype)
    if len(kept) < _KEEP_PER_SHAPE and array.nbytes <= _KEEP_BYTES:
        kept.append(array)
    return array
