"""`nnspec predict FILE --weights W --input X`: a trained network's outputs for new examples.

    outputs = predict("xor.nn", "runs/xor/weights.safetensors", "inputs.csv")  # by output name

The weights are a `weights.safetensors` that `nnspec train` wrote (names as `state_dict()`; a
GAN's are under each network's name, so pick one with `network=`). The inputs are a csv file with
a header row, an .npz archive, or JSON (a list of examples, or lists by input name), shaped for
the network as training data is (docs/data.md), and standardised as training's were when the
weights record it (`normalize = true`). `class_labels` names each example's most likely class
with the labels the weights record (a csv's text labels, or the train section's `classes`).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from .. import arguments
from ..atomic import make_folders, write_atomic
from ..backends.weights import read_weights
from ..data import read_inputs
from ..data.standardise import recorded_statistics, standardise
from ..errors import SpecError
from ..model import Model
from ..model import load as load_spec
from .recorded import recorded_columns
from .threads import choose as choose_threads
from .threads import limited, sequence_steps


def predict(
    path: str | os.PathLike,
    weights: str | os.PathLike,
    inputs: str | os.PathLike,
    backend: str | None = None,
    network: str | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Each output's values for the examples in `inputs`, by output name, batch first; torch
    computes them on `device` (None: the best there is), with `threads` threads (None: one for a
    small network and batch, training/threads.py)."""
    return run_model(load_spec(path, network), weights, inputs, backend, device, threads)


def run_model(
    model: Model,
    weights: str | os.PathLike,
    inputs: str | os.PathLike,
    backend: str | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """`predict` for a model already loaded. A csv input's columns are matched by name with those
    the network was trained on, when its weights file records them (`weights_metadata`)."""
    from . import check_arguments, default_backend

    check_arguments(backend)
    arguments.path("weights", weights, f"runs/{model.name}/weights.safetensors")
    arguments.path("inputs", inputs, "new.csv")
    state = read_weights(weights, model.program)
    examples = read_inputs(inputs, model.program, **recorded_columns(weights))
    examples = standardise(examples, _statistics(model, weights))

    count = choose_threads(
        threads,
        [model.program],
        len(next(iter(examples.values()))),
        sequence_steps(model.program, examples),
    )
    with limited(count, torch=(backend or default_backend()) == "torch"):
        return _outputs(model, state, examples, backend, device)


def _outputs(model: Model, state, examples, backend: str | None, device: str | None):
    """The network's outputs for `examples` (arrays by input name), with the parameters `state`
    on `backend` (and `device`), by output name."""
    from ..backends.devices import device_name, numpy_device
    from . import default_backend

    if (backend or default_backend()) == "torch":
        import torch

        where = device_name(device)
        net = model.to_torch(device=where)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        net.eval()
        with torch.no_grad():
            y = net(**{k: torch.from_numpy(v).to(where) for k, v in examples.items()})
        y = {k: v.cpu().numpy() for k, v in y.items()} if isinstance(y, dict) else y.cpu().numpy()
    else:
        numpy_device(device)
        run = model.to_numpy()
        run.load(state)
        with np.errstate(all="ignore"):  # overflow gives inf, as in torch and in training
            y = run.eval()(**examples)
    return y if isinstance(y, dict) else {model.program.outputs[0].name: y}


def _statistics(model: Model, weights: str | os.PathLike):
    """The standardisation the weights record, each input's statistics fitting its shape (E505
    for a record that does not fit the network)."""
    stats = recorded_statistics(weights)
    if not stats and _normalized(model):
        message, hint = unrecorded(model, weights)
        raise SpecError("E505", message, None, hint)
    for name, (mean, _) in stats.items():
        if name not in model.program.inputs or mean.shape != model.program.layer(name).shape.dims:
            raise SpecError(
                "E505",
                f"weights file '{weights}' records a standardisation of input '{name}' "
                f"{list(mean.shape)} that network '{model.name}' does not have",
                None,
                "predict with the spec the weights were trained from",
            )
    return stats


def _normalized(model: Model) -> bool:
    spec = model.train_spec
    return spec is not None and spec.settings.get("normalize") is True


def unrecorded(model: Model, weights: str | os.PathLike) -> tuple[str, str]:
    """The message and hint for weights without the statistics of a `normalize = true` run:
    the examples would go in unstandardised, and every answer would be wrong."""
    return (
        f"weights file '{weights}' records no standardisation, but network '{model.name}' is "
        "trained with normalize = true: its examples would go in unstandardised",
        "give the run's weights.safetensors, which records the training split's mean and "
        "deviation (a checkpoint.safetensors does not)",
    )


def class_labels(
    outputs: dict[str, np.ndarray], labels: dict[str, list[str]]
) -> dict[str, np.ndarray]:
    """Each labelled output's most likely class as its label, `[N, *items]` of str: the
    largest of K > 1 values, or for one unit (two classes) the second label from 0.5 up. A class
    the labels do not reach is shown by its number."""
    named = {}
    for name, labelled in labels.items():
        if name not in outputs:
            continue
        y = outputs[name]
        index = y.argmax(-1) if y.shape[-1] > 1 else (y[..., 0] >= 0.5).astype(np.int64)
        table = np.array([*labelled, *map(str, range(len(labelled), max(y.shape[-1], 2)))])
        named[name] = table[index]
    return named


def write_outputs(
    outputs: dict[str, np.ndarray],
    out: str | None,
    classes: dict[str, bool],
    labels: dict[str, np.ndarray] | None = None,
) -> str | None:
    """Write the outputs to `out` (.csv, .npz or .json; atomically, its folder made when it is
    not there), or return them as csv text when `out` is None.

    In csv, each example is a row: every output's values flattened (`y` or `y[0]`, `y[1]`, ...) and,
    for an output that ends in softmax (`classes[name]`), its most likely class; then the label
    of that class (`y_label`) for an output in `labels` (`class_labels`). npz and json hold the
    labels as `y_label` beside `y`.
    """
    labels = labels or {}
    if out is not None:
        make_folders(out)  # as draw and compile make theirs
    if out is None or out.endswith(".csv"):
        text = _csv(outputs, classes, labels)
        if out is None:
            return text
        write_atomic(Path(out), lambda p: Path(p).write_text(text))
    elif out.endswith(".npz"):
        named = {f"{k}_label": v for k, v in labels.items()}
        write_atomic(Path(out), lambda p: _savez(p, {**outputs, **named}))
    elif out.endswith(".json"):
        named = {f"{k}_label": v for k, v in labels.items()}
        write_atomic(
            Path(out),
            lambda p: Path(p).write_text(
                json.dumps({k: _json_values(v) for k, v in {**outputs, **named}.items()})
            ),
        )
    return None


def _json_values(values: np.ndarray) -> list:
    """`values` as JSON lists; a value that is not finite (an overflow) as null, since JSON has
    no NaN or infinity (Python's json would write them, and strict readers refuse the file)."""
    if values.dtype.kind != "f" or np.isfinite(values).all():
        return values.tolist()
    return np.where(np.isfinite(values), values, None).tolist()


def _savez(path: str, outputs: dict[str, np.ndarray]) -> None:
    with open(
        path, "wb"
    ) as file:  # a file, so that numpy does not append .npz to the temporary name
        np.savez(file, **outputs)


def _csv(
    outputs: dict[str, np.ndarray], classes: dict[str, bool], labels: dict[str, np.ndarray]
) -> str:
    header, columns = [], []
    for name, y in outputs.items():
        flat = y.reshape(len(y), -1)
        header += [name] if flat.shape[1] == 1 else [f"{name}[{i}]" for i in range(flat.shape[1])]
        columns.append(np.char.mod("%.6g", flat))
        if classes.get(name):
            header.append(f"{name}_class")
            index = y.reshape(-1, y.shape[-1]).argmax(-1).reshape(len(y), -1)
            columns.append(index.astype(str))
        if name in labels:
            header += [f"{name}_label"]
            columns.append(labels[name].reshape(len(y), -1))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(np.concatenate(columns, axis=1).tolist())
    return buffer.getvalue()


__all__ = ["class_labels", "predict", "run_model", "write_outputs"]
