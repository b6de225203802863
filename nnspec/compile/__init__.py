"""`nnspec compile`: a checked network as a standalone file that needs no nnspec.

    path = compile_model(model, "torch", "net.py")            # or "numpy" (net.py), "onnx"
    path = compile_model(model, "onnx", weights=trained)      # parameters by the spec's names

Each target is one module, `<target>_target.py`, with `emit(model, params) -> bytes`: the whole
file, deterministic (the same spec and parameters give the same bytes). `params` holds every
parameter and buffer by the spec's names (`state_dict()` keys, PyTorch's layouts): the seeded
initial ones, or a trained run's. What the file says about its origin comes from `common.py`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np

from ..atomic import make_folders, write_atomic
from ..backends.init import initial_params
from .common import weights_file
from .standardised import Statistics, with_standardisation

# target -> the extension of the file it writes
TARGETS = {"torch": ".py", "numpy": ".py", "onnx": ".onnx"}


def emit(
    model, target: str, params: dict[str, np.ndarray] | None = None, stats: Statistics | None = None
) -> bytes:
    """The file for `target` (see TARGETS), with `params` or the initial parameters of seed 0;
    standardising its inputs by `stats` (input -> mean, std `[*dims]`) when given, as a run
    trained with `normalize = true` does (standardised.py)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: one of {', '.join(TARGETS)}")
    params = _in_order(model, params)
    module = importlib.import_module(f".{target}_target", __name__)
    return with_standardisation(target, module.emit(model, params), stats or {})


def compile_model(
    model,
    target: str,
    path: str | os.PathLike | None = None,
    params: dict[str, np.ndarray] | None = None,
    stats: Statistics | None = None,
) -> list[Path]:
    """Write `emit(model, target, params, stats)` to `path` (default: the network's name with the
    target's extension, in the current folder; its folder is made if need be), whole or not at
    all; a Python file (torch, numpy) gets its parameters beside it, in the `.safetensors` file of
    its own name (`xor.py`: `xor.safetensors`), which its `load()` reads (an ONNX model holds
    them itself). Returns the files written."""
    path = Path(path) if path is not None else Path(model.name + TARGETS[target])
    params = _in_order(model, params)
    written = {path: emit(model, target, params, stats)}
    if target != "onnx":
        written[path.with_suffix(".safetensors")] = weights_file(params)
    make_folders(path)
    for where, data in written.items():
        write_atomic(where, lambda temporary, data=data: Path(temporary).write_bytes(data))
    return list(written)


def _in_order(model, params: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Every parameter and buffer in the program's order (the same file, whatever order they were
    given in); the initial ones of seed 0 when none are given."""
    if params is None:
        return initial_params(model.program, 0)
    wanted = model.program.parameters()
    missing = [name for name in wanted if name not in params]
    extra = [name for name in params if name not in wanted]
    if missing or extra:
        raise ValueError(
            f"the parameters do not fit network '{model.name}': missing {missing}, not in it "
            f"{extra}"
        )
    return {name: params[name] for name in wanted}


__all__ = ["TARGETS", "compile_model", "emit"]
