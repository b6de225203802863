"""Feature standardisation (`normalize = true`): each input feature less its mean, over its
standard deviation, both measured on the training split alone, and what a weights file records
of them so that `nnspec predict` and compiled files standardise new examples the same way.

    stats = statistics(inputs, train_index, program)   # {input: (mean, std)}, each [*dims]
    inputs = standardise(inputs, stats)                # (x - mean) / std, float32
    metadata = {NORMALIZE: encode(stats)}              # in weights.safetensors
    stats = recorded_statistics("weights.safetensors") # back, or {}

A feature is one value of an example: a column of a csv, a pixel of an image, a feature of a
sequence's step (the mean runs over examples and steps). A feature that never changes in the
training split (deviation 0) is only centred: its deviation is recorded as 1.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..program import Program
from ..reading import DATA_LIMIT, ReadError, open_regular
from .examples import F32

NORMALIZE = "nnspec.normalize"  # the key of a weights file's metadata
HEADER_LIMIT = 100 * 2**20  # safetensors' own bound on a header

Statistics = dict[str, tuple[np.ndarray, np.ndarray]]


def statistics(inputs: dict[str, np.ndarray], index: np.ndarray, program: Program) -> Statistics:
    """Each input's mean and deviation `[*dims]` (float32) over the examples at `index` (the
    training split) and, for an input with a time axis, over its steps; computed in float64.
    A deviation of 0 is given as 1, so that the feature is centred and left at that."""
    stats = {}
    for name, array in inputs.items():
        dims = program.layer(name).shape.dims
        axes = tuple(range(array.ndim - len(dims)))  # the example axis, and time when there is one
        part = array[index].astype(np.float64)
        mean, std = part.mean(axis=axes), part.std(axis=axes)
        stats[name] = (mean.astype(F32), np.where(std > 0, std, 1.0).astype(F32))
    return stats


def standardise(inputs: dict[str, np.ndarray], stats: Statistics) -> dict[str, np.ndarray]:
    """`(x - mean) / std` in float32 for every input `stats` names, `[N, *dims]` or
    `[N, T, *dims]` (the statistics `[*dims]` broadcast over the leading axes); others as given."""
    return {
        name: ((x.astype(F32) - stats[name][0]) / stats[name][1]).astype(F32)
        if name in stats
        else x
        for name, x in inputs.items()
    }


def encode(stats: Statistics) -> str:
    """The statistics as a weights file's metadata records them: JSON, each input's shape, mean
    and std (float32 values written as the float64 numbers they are, so they read back exactly)."""
    return json.dumps(
        {
            name: {"shape": list(mean.shape), "mean": _floats(mean), "std": _floats(std)}
            for name, (mean, std) in stats.items()
        }
    )


def _floats(array: np.ndarray) -> list[float]:
    return [float(v) for v in array.reshape(-1)]


def decode(text: str) -> Statistics:
    """`encode`'s text back as arrays; {} for anything that is not what `encode` writes."""
    try:
        value = json.loads(text)
        stats = {}
        for name, entry in value.items():
            shape = tuple(int(d) for d in entry["shape"])
            mean, std = (
                np.asarray(entry[key], dtype=F32).reshape(shape) for key in ("mean", "std")
            )
            stats[str(name)] = (mean, std)
        return stats
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """A safetensors file's metadata (strings by key; {} when it has none or cannot be read).
    Only its header is read: a length of 8 bytes, then JSON."""
    try:
        with open_regular(path, "weights file", DATA_LIMIT, "E505") as file:
            size = int.from_bytes(file.read(8), "little")
            header = json.loads(file.read(min(size, HEADER_LIMIT)))
        metadata = header.get("__metadata__") or {}
    except (ReadError, OSError, ValueError, AttributeError):
        return {}
    if not isinstance(metadata, dict):
        return {}
    return {str(k): v for k, v in metadata.items() if isinstance(v, str)}


def recorded_statistics(path: str | os.PathLike) -> Statistics:
    """The standardisation a weights file records (`normalize = true`), {} when none."""
    text = read_metadata(path).get(NORMALIZE)
    return decode(text) if text is not None else {}
