"""What a trained network's weights file records of the data it was trained on, in the
safetensors metadata (strings only), so that `nnspec predict` reads new examples as the network
was trained on them: a csv's feature columns, in the order the network reads them, and its
target column.

    save_file(weights, path, weights_metadata(data) or None)   # nnspec.training writes it
    read_inputs(path, program, **recorded_columns(weights))    # nnspec predict reads it
"""

from __future__ import annotations

import json
import os

from ..reading import DATA_LIMIT, ReadError, open_regular

COLUMNS, TARGET = "nnspec.columns", "nnspec.target"  # keys of a weights file's metadata
HEADER_LIMIT = 100 * 2**20  # safetensors' own bound on a header


def weights_metadata(data) -> dict[str, str]:
    """What a weights file records of the data it was trained on (safetensors metadata, strings
    only): a csv's feature columns in the order the network reads them, and its target column."""
    columns, target = data.info.get("columns"), data.info.get("target")
    if columns is None:
        return {}
    return {COLUMNS: json.dumps(list(columns))} | ({TARGET: str(target)} if target else {})


def recorded_columns(path: str | os.PathLike) -> dict[str, object]:
    """The csv columns a weights file records (`weights_metadata`), as `read_inputs` takes them:
    `{"features": [...], "target": name}`, or {} when it records none. Only the file's header is
    read (a length of 8 bytes, then JSON); `read_weights` has already checked the whole file."""
    try:
        with open_regular(path, "weights file", DATA_LIMIT, "E505") as file:
            size = int.from_bytes(file.read(8), "little")
            header = json.loads(file.read(min(size, HEADER_LIMIT)))
        metadata = header.get("__metadata__") or {}
        columns = json.loads(metadata[COLUMNS]) if COLUMNS in metadata else None
    except (ReadError, OSError, ValueError, AttributeError):
        return {}
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        return {}
    return {"features": columns, "target": metadata.get(TARGET)}
