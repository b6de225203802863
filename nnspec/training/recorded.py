"""What a trained network's weights file records of the data it was trained on, in the
safetensors metadata (strings only), so that `nnspec predict` reads new examples as the network
was trained on them and names its classes: a csv's feature columns, in the order the network
reads them, and its target column; the class labels, by output; the standardisation of each
input (`normalize = true`, nnspec.data.standardise).

    save_file(weights, path, weights_metadata(data, layers))   # nnspec.training writes it
    read_inputs(path, program, **recorded_columns(weights))    # nnspec predict reads it
    recorded_labels(weights)                                   # {output: [label, ...]}
"""

from __future__ import annotations

import json
import os

from ..backends.weights import LAYERS
from ..data.standardise import NORMALIZE, encode, read_metadata

# keys of a weights file's metadata
COLUMNS, TARGET, LABELS = "nnspec.columns", "nnspec.target", "nnspec.labels"


def weights_metadata(data, layers: dict[str, str]) -> dict[str, str]:
    """What a weights file records of the network and the data it was trained on (safetensors
    metadata, strings only): its `layers` (`layer_digests`, so that weights of another version
    of the spec are refused), a csv's feature columns in the order the network reads them and
    its target column, the labels of the classes by output (`Data.info["labels"]`) when they
    have labels, and the inputs' standardisation."""
    info = data.info
    columns, target, labels = info.get("columns"), info.get("target"), info.get("labels")
    metadata = {LAYERS: json.dumps(layers)}
    if columns is not None:
        metadata[COLUMNS] = json.dumps(list(columns))
        if target:  # one column's name, or the outputs' columns of a several-output network
            metadata[TARGET] = target if isinstance(target, str) else json.dumps(list(target))
    if isinstance(labels, dict):
        metadata[LABELS] = json.dumps(
            {name: [str(label) for label in values] for name, values in labels.items()}
        )
    if info.get("normalize"):
        metadata[NORMALIZE] = encode(info["normalize"])
    return metadata


def recorded_columns(path: str | os.PathLike) -> dict[str, object]:
    """The csv columns a weights file records (`weights_metadata`), as `read_inputs` takes them:
    `{"features": [...], "target": name}` (several outputs: a list of names), or {} when it
    records none. Only the file's header is read; `read_weights` has already checked the whole
    file."""
    metadata = read_metadata(path)
    try:
        columns = json.loads(metadata[COLUMNS]) if COLUMNS in metadata else None
    except ValueError:
        return {}
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        return {}
    target = metadata.get(TARGET)
    if target is not None and target.startswith("["):
        try:
            target = [str(name) for name in json.loads(target)]
        except (ValueError, TypeError):
            target = None
    return {"features": columns, "target": target}


def recorded_labels(path: str | os.PathLike) -> dict[str, list[str]]:
    """The class labels a weights file records, by output name ({} when none)."""
    try:
        labels = json.loads(read_metadata(path).get(LABELS, "{}"))
    except ValueError:
        return {}
    if not isinstance(labels, dict):
        return {}
    return {
        str(name): [str(label) for label in values]
        for name, values in labels.items()
        if isinstance(values, list)
    }
