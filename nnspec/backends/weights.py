"""A weights file for a checked program: a safetensors file (only a regular file, no pickle)
whose tensors are the program's parameters by name, each checked: `nnspec predict --weights` and
`nnspec compile --weights` read it so.

    state = read_weights("runs/xor/weights.safetensors", program)   # name -> ndarray
"""

from __future__ import annotations

import json
import os

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load

from ..data.standardise import read_metadata
from ..errors import SpecError
from ..program import Program, layer_changes, layer_digests
from ..reading import DATA_LIMIT, ReadError, read_regular

LAYERS = "nnspec.layers"  # a weights file's record of its network's layers (layer_digests)


def read_weights(path: str | os.PathLike, program: Program) -> dict[str, np.ndarray]:
    """The network's parameters from a safetensors file (only a regular file), checked against
    the spec (a GAN's: by network name; a checkpoint's: under `weights.`): each tensor that is
    missing, shaped otherwise or not in the network is named, with its shape here and in the file
    (E506)."""
    shown = str(path)
    try:
        arrays = load(read_regular(path, "weights file", DATA_LIMIT, "E505"))
    except ReadError as error:
        if error.reason != "missing":
            raise
        raise SpecError(
            "E505",
            f"weights file '{shown}' is not found",
            None,
            "nnspec train writes runs/<network>/weights.safetensors",
        ) from None
    except (SafetensorError, ValueError) as error:
        raise SpecError(
            "E505",
            f"cannot read weights file '{shown}': {error}",
            None,
            "give the weights.safetensors that nnspec train wrote",
        ) from None
    except KeyError as error:  # safetensors' name of a dtype NumPy has not (BF16, F8_E4M3)
        raise SpecError(
            "E505",
            f"cannot read weights file '{shown}': it holds a tensor of dtype {error}, which "
            "nnspec does not read",
            None,
            "save the weights as float32 (or give the weights.safetensors nnspec train wrote)",
        ) from None
    named = f"weights file '{shown}'"
    fitted = fit_weights(arrays, program, named, "the file")
    _check_layers(_recorded_layers(read_metadata(path)), program, named)
    return fitted


def fit_weights(
    arrays: dict, program: Program, named: str, whose: str = "the weights"
) -> dict[str, np.ndarray]:
    """`arrays` (name -> array or nested lists of numbers) checked against the program as
    `read_weights` checks a file's; `named` and `whose` say whose they are in its errors (E506,
    E505): "weights file 'w.safetensors'", "the file"."""
    arrays = {name: _array(value, name, named) for name, value in arrays.items()}
    wanted = {name: list(param.shape) for name, param in program.parameters().items()}
    for prefix in (f"{program.name}.", "weights."):
        arrays = _under(prefix, arrays, wanted)
    missing = [name for name in wanted if name not in arrays]
    misfits = ([f"it lacks {_some(missing)}"] if missing else []) + [
        f"'{name}' is {shape} here and {list(arrays[name].shape)} in {whose}"
        for name, shape in wanted.items()
        if name in arrays and list(arrays[name].shape) != shape
    ]
    misfits += _extras({name: list(v.shape) for name, v in arrays.items()}, wanted, whose)
    if misfits:
        more = f"; and {len(misfits) - 4} more" if len(misfits) > 4 else ""
        raise SpecError(
            "E506",
            f"{named} does not fit network '{program.name}': {'; '.join(misfits[:4])}{more}",
            None,
            "these weights were trained for another network or another version of this spec: "
            "give the weights.safetensors that nnspec train wrote for it, or train it again",
        )
    for name in wanted:
        _check_values(arrays[name], name, named)
    return {name: arrays[name] for name in wanted}


def _under(prefix: str, named: dict, wanted) -> dict:
    """`named` (a file's tensors or layers by name), or those under `prefix` with it taken off
    when the names `wanted` are not all there and some stand under it: a GAN's file holds each
    network's under its name, a checkpoint its weights under `weights.`."""
    if set(wanted) <= set(named) or not any(k.startswith(prefix) for k in named):
        return named
    return {k.removeprefix(prefix): v for k, v in named.items() if k.startswith(prefix)}


def _recorded_layers(metadata: dict[str, str]) -> dict[str, str]:
    """The layer digests a weights file records (`LAYERS`), or a checkpoint (under `nnspec`);
    {} for a file that records none (written by hand, or by an earlier nnspec)."""
    try:
        if LAYERS in metadata:
            layers = json.loads(metadata[LAYERS])
        else:
            layers = json.loads(metadata.get("nnspec", "{}")).get("layers", {})
    except (ValueError, AttributeError):
        return {}
    return layers if isinstance(layers, dict) else {}


def _check_layers(recorded: dict[str, str], program: Program, named: str) -> None:
    """E506 for weights whose parameters fit but whose layers were recorded otherwise: an
    activation, an option or a link changed since they were trained (a GAN's file: this
    network's layers, under its name)."""
    if not recorded:
        return
    mine = layer_digests([program])
    changed = layer_changes(mine, _under(f"{program.name}.", recorded, mine))
    if changed:
        raise SpecError(
            "E506",
            f"{named} was trained for another version of network '{program.name}' (its kinds, "
            f"activations, options or links changed): {changed}",
            None,
            "undo the change to the spec, or train it again (nnspec train) for weights that fit",
        )


def _array(value, name: str, named: str) -> np.ndarray:
    """`value` as an array, lists of numbers as float32, as the network computes (E505 for what
    is no array of numbers: ragged lists, text)."""
    try:
        return value if isinstance(value, np.ndarray) else np.array(value, np.float32)
    except (TypeError, ValueError):
        raise SpecError(
            "E505",
            f"{named}: '{name}' is not an array of numbers",
            None,
            "give each parameter as a NumPy array shaped as the layer table shows it",
        ) from None


def _check_values(array: np.ndarray, name: str, named: str) -> None:
    """Numbers that the network's float32 holds: no NaN or infinity (a run that reached them
    stopped, R301, and kept its last good weights), nothing beyond float32's range (E505)."""
    bad = None
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
        bad = f"holds {array.dtype} values, not real numbers"
    elif np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = f"holds {array[~np.isfinite(array)].flat[0]}, not a finite number"
    elif array.dtype.itemsize > 4 and np.abs(array).max(initial=0) > np.finfo(np.float32).max:
        bad = "holds values beyond the range of float32, which the network computes in"
    if bad is not None:
        raise SpecError(
            "E505",
            f"{named}: '{name}' {bad}",
            None,
            "give the weights.safetensors that nnspec train wrote (a run whose loss became NaN "
            "keeps the weights of its last good epoch)",
        )


def _extras(arrays: dict[str, list[int]], wanted: dict[str, list[int]], whose: str) -> list[str]:
    """The file's tensors this network has not, in name order: a whole layer the network lacks
    as one entry (`the file's layer 'n' (bias, weight)`), others one by one."""
    layers = {name.rpartition(".")[0] for name in wanted}
    extras: dict[str, list[str]] = {}
    for name in sorted(set(arrays) - set(wanted)):
        layer, _, key = name.rpartition(".")
        extras.setdefault(layer if layer and layer not in layers else name, []).append(key)
    return [
        f"{whose}'s '{group}' {arrays[group]} is not in this network"
        if group in arrays
        else f"{whose}'s layer '{group}' ({', '.join(keys)}) is not in this network"
        for group, keys in extras.items()
    ]


def _some(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


__all__ = ["fit_weights", "read_weights"]
