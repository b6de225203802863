"""`nnspec predict FILE --weights W --input X`: a trained network's outputs for new examples.

    outputs = predict("xor.nn", "runs/xor/weights.safetensors", "inputs.csv")  # by output name

The weights are a `weights.safetensors` that `nnspec train` wrote (names as `state_dict()`; a
GAN's are under each network's name, so pick one with `network=`). The inputs are a csv file with
a header row, an .npz archive, or JSON (a list of examples, or lists by input name), shaped for
the network as training data is (docs/data.md).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load

from ..atomic import write_atomic
from ..data import read_inputs
from ..errors import SpecError
from ..model import Model
from ..model import load as load_spec
from ..reading import DATA_LIMIT, ReadError, read_regular


def predict(
    path: str | os.PathLike,
    weights: str | os.PathLike,
    inputs: str | os.PathLike,
    backend: str | None = None,
    network: str | None = None,
) -> dict[str, np.ndarray]:
    """Each output's values for the examples in `inputs`, by output name, batch first."""
    return run_model(load_spec(path, network), weights, inputs, backend)


def run_model(
    model: Model, weights: str | os.PathLike, inputs: str | os.PathLike, backend: str | None = None
) -> dict[str, np.ndarray]:
    """`predict` for a model already loaded."""
    state = read_weights(weights, model)
    examples = read_inputs(inputs, model.program)
    from . import default_backend

    if (backend or default_backend()) == "torch":
        import torch

        net = model.to_torch()
        net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        net.eval()
        with torch.no_grad():
            y = net(**{k: torch.from_numpy(v) for k, v in examples.items()})
        y = {k: v.numpy() for k, v in y.items()} if isinstance(y, dict) else y.numpy()
    else:
        run = model.to_numpy()
        run.load(state)
        with np.errstate(all="ignore"):  # overflow gives inf, as in torch and in training
            y = run.eval()(**examples)
    return y if isinstance(y, dict) else {model.program.outputs[0].name: y}


def read_weights(path: str | os.PathLike, model: Model) -> dict[str, np.ndarray]:
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
    wanted = {name: list(param.shape) for name, param in model.program.parameters().items()}
    for prefix in (f"{model.name}.", "weights."):
        if not set(wanted) <= set(arrays) and any(k.startswith(prefix) for k in arrays):
            arrays = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
    missing = [name for name in wanted if name not in arrays]
    misfits = ([f"it lacks {_some(missing)}"] if missing else []) + [
        f"'{name}' is {shape} here and {list(arrays[name].shape)} in the file"
        for name, shape in wanted.items()
        if name in arrays and list(arrays[name].shape) != shape
    ]
    misfits += _extras({name: list(v.shape) for name, v in arrays.items()}, wanted)
    if misfits:
        more = f"; and {len(misfits) - 4} more" if len(misfits) > 4 else ""
        raise SpecError(
            "E506",
            f"weights file '{shown}' does not fit network '{model.name}': "
            f"{'; '.join(misfits[:4])}{more}",
            None,
            "these weights were trained for another network or another version of this spec: "
            "give the weights.safetensors that nnspec train wrote for it, or train it again",
        )
    for name in wanted:
        _check_values(arrays[name], name, shown)
    return {name: arrays[name] for name in wanted}


def _check_values(array: np.ndarray, name: str, shown: str) -> None:
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
            f"weights file '{shown}': '{name}' {bad}",
            None,
            "give the weights.safetensors that nnspec train wrote (a run whose loss became NaN "
            "keeps the weights of its last good epoch)",
        )


def _extras(arrays: dict[str, list[int]], wanted: dict[str, list[int]]) -> list[str]:
    """The file's tensors this network has not, in name order: a whole layer the network lacks
    as one entry (`the file's layer 'n' (bias, weight)`), others one by one."""
    layers = {name.rpartition(".")[0] for name in wanted}
    extras: dict[str, list[str]] = {}
    for name in sorted(set(arrays) - set(wanted)):
        layer, _, key = name.rpartition(".")
        extras.setdefault(layer if layer and layer not in layers else name, []).append(key)
    return [
        f"the file's '{group}' {arrays[group]} is not in this network"
        if group in arrays
        else f"the file's layer '{group}' ({', '.join(keys)}) is not in this network"
        for group, keys in extras.items()
    ]


def _some(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def write_outputs(
    outputs: dict[str, np.ndarray], out: str | None, classes: dict[str, bool]
) -> str | None:
    """Write the outputs to `out` (.csv, .npz or .json; atomically), or return them as csv text
    when `out` is None.

    In csv, each example is a row: every output's values flattened (`y` or `y[0]`, `y[1]`, ...) and,
    for an output that ends in softmax (`classes[name]`), its most likely class.
    """
    if out is None or out.endswith(".csv"):
        text = _csv(outputs, classes)
        if out is None:
            return text
        write_atomic(Path(out), lambda p: Path(p).write_text(text))
    elif out.endswith(".npz"):
        write_atomic(Path(out), lambda p: _savez(p, outputs))
    elif out.endswith(".json"):
        write_atomic(
            Path(out),
            lambda p: Path(p).write_text(json.dumps({k: v.tolist() for k, v in outputs.items()})),
        )
    return None


def _savez(path: str, outputs: dict[str, np.ndarray]) -> None:
    with open(
        path, "wb"
    ) as file:  # a file, so that numpy does not append .npz to the temporary name
        np.savez(file, **outputs)


def _csv(outputs: dict[str, np.ndarray], classes: dict[str, bool]) -> str:
    header, columns = [], []
    for name, y in outputs.items():
        flat = y.reshape(len(y), -1)
        header += [name] if flat.shape[1] == 1 else [f"{name}[{i}]" for i in range(flat.shape[1])]
        columns.append(flat)
        if classes.get(name):
            header.append(f"{name}_class")
            columns.append(
                y.reshape(-1, y.shape[-1]).argmax(-1).reshape(len(y), -1).astype(np.float64)
            )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in np.concatenate(columns, axis=1):
        writer.writerow([f"{v:.6g}" for v in row])
    return buffer.getvalue()


__all__ = ["predict", "read_weights", "run_model", "write_outputs"]
