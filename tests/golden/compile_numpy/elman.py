# elman: compiled by nnspec 0.1.0 from elman.nn (sha256 52948c8bdf29fd08)
# with `nnspec compile elman.nn --to numpy`; it needs no nnspec.
"""elman: Elman network predicting the next value of a sine wave, for NumPy.

Inputs x [B, T, 1]; outputs y [B, T, 1]. `load()` returns the network with the weights in the
.safetensors file of this file's name beside it, `load(path)` those of another safetensors
file; `net(x)` or `net(**inputs)` runs it.
"""

import json
import math
import struct
from pathlib import Path

import numpy as np

NETWORK = "elman"
DTYPE = np.float32
WEIGHTS = Path(__file__).with_suffix(".safetensors")  # nnspec compile writes it
# every parameter and buffer, by the spec's names, with its shape (PyTorch's layouts)
PARAMS = {
    "h.weight": (16, 17),
    "h.bias": (16,),
    "y.weight": (1, 16),
    "y.bias": (1,),
}


HEADER_LIMIT = 100 * 2**20  # bytes: a safetensors header past this is refused, not read
TENSOR_TYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors(path):
    """Every tensor of a safetensors file by name: an 8-byte little-endian header size, a JSON
    header (name -> dtype, shape, data_offsets), then the tensors' little-endian bytes."""
    with open(path, "rb") as file:
        data = file.read()
    (size,) = struct.unpack("<Q", data[:8]) if len(data) >= 8 else (-1,)
    if not 0 <= size <= min(HEADER_LIMIT, len(data) - 8):
        raise ValueError(f"{path} is not a safetensors file: no header of a sensible size")
    try:
        header = json.loads(data[8 : 8 + size])
    except (ValueError, RecursionError):
        raise ValueError(f"{path} is not a safetensors file: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file: its header is not a JSON object")
    body = memoryview(data)[8 + size :]
    return {
        name: _tensor(path, name, entry, body)
        for name, entry in header.items()
        if name != "__metadata__"
    }


def _tensor(path, name, entry, body):
    """One tensor of a safetensors file: `entry` says its dtype, shape and bytes in `body`."""
    try:
        dtype = np.dtype(TENSOR_TYPES[entry["dtype"]])
        shape = tuple(int(n) for n in entry["shape"])
        start, end = (int(n) for n in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: tensor {name!r} lacks a known dtype, shape or offsets") from None
    size = math.prod(shape) * dtype.itemsize
    if min(shape, default=0) < 0 or not 0 <= start <= end <= len(body) or end - start != size:
        raise ValueError(f"{path}: tensor {name!r} does not fit its bytes in the file")
    return np.frombuffer(body[start:end], dtype).reshape(shape)


def _fit(state):
    """The arrays of `state` for PARAMS (a trained GAN's or a checkpoint's under the network's
    name or `weights.`): every name, each of its shape, as DTYPE."""
    for prefix in (NETWORK + ".", "weights."):
        if not set(PARAMS) <= set(state) and any(k.startswith(prefix) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    missing = [name for name in PARAMS if name not in state]
    unexpected = [name for name in state if name not in PARAMS]
    if missing or unexpected:
        raise ValueError(
            f"the weights do not fit {NETWORK}: missing {missing}, unexpected {unexpected}"
        )
    params = {}
    for name, shape in PARAMS.items():
        value = np.asarray(state[name])
        if value.shape != shape:
            got, want = list(value.shape), list(shape)
            raise ValueError(f"{name!r} is {got} in the weights; {NETWORK} needs {want}")
        params[name] = value.astype(DTYPE)
    return params


def _bind(names, args, kwargs):
    """Positional values in input order, then named ones: each input exactly once."""
    if len(args) > len(names):
        raise TypeError(f"the network takes {len(names)} inputs ({', '.join(names)})")
    data = dict(zip(names, args, strict=False))
    for name, value in kwargs.items():
        if name not in names:
            raise TypeError(f"the network has no input {name!r}; its inputs: {', '.join(names)}")
        if name in data:
            raise TypeError(f"input {name!r} is given twice")
        data[name] = value
    missing = [name for name in names if name not in data]
    if missing:
        raise TypeError(f"missing input {', '.join(map(repr, missing))}")
    return [data[name] for name in names]


def _input(name, value, dims, seq=False, steps=None):
    """An input as DTYPE: [B, *dims]; a sequence [B, T, *dims] (`seq`: of any length, or of that
    many steps); one value held for `steps` steps, [B, *dims] (or [B, steps, *dims], one a step).
    A last axis of 1 may be left out."""
    x = np.asarray(value)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"input {name!r} must hold numbers, not {x.dtype}")
    x = x.astype(DTYPE, copy=False)
    if 0 in x.shape:
        raise ValueError(f"input {name!r} receives an empty array, of shape {list(x.shape)}")
    timed = seq is not False or steps is not None
    length = steps if steps is not None else None if seq is True else seq or None
    for inner in [dims] + ([()] if dims == (1,) else []):
        if (not timed or steps is not None) and x.shape[1:] == inner:
            x = x if inner == dims else x[..., None]
            if steps is not None:  # the same value at every step
                x = np.broadcast_to(x[:, None], (x.shape[0], steps) + x.shape[1:])
            return x
        per_step = timed and x.ndim == 2 + len(inner) and x.shape[2:] == inner
        if per_step and (length is None or x.shape[1] == length):
            return x if inner == dims else x[..., None]
    forms = [[]] if not timed or steps is not None else []
    forms += [["T" if length is None else str(length)]] if timed else []
    wanted = " or ".join("[" + ", ".join(["B", *f, *map(str, dims)]) + "]" for f in forms)
    raise ValueError(f"input {name!r} takes {wanted}, but receives {list(x.shape)}")


class Elman:
    """Elman network predicting the next value of a sine wave: x [B, T, 1] -> y [B, T, 1]. Its
    parameters are zeros until `load`.
    """

    inputs = ("x",)
    outputs = ("y",)

    def __init__(self):
        self.params = {name: np.zeros(shape, DTYPE) for name, shape in PARAMS.items()}

    def load(self, state):
        """Take every parameter from `state` (name -> array), checked against PARAMS."""
        self.params = _fit(state)
        return self

    def eval(self):
        """Evaluation mode, the only one this file has."""
        return self

    def __call__(self, *args, **kwargs):
        """The outputs for the inputs, by position or by name: one array, or a dict by
        output name."""
        return self.forward(*_bind(self.inputs, args, kwargs))

    def forward(self, x):
        # elman.nn:8  input  x: 1, seq
        x = _input("x", x, (1,), seq=True)
        p = self.params
        B = x.shape[0]
        T = x.shape[1]
        h_previous = np.zeros((B, 16), DTYPE)
        h_steps = []
        for t in range(T):  # the layers of a cycle through ~>, step by step
            # elman.nn:9  dense  h: 16, act=tanh
            h = np.tanh(np.concatenate([x[:, t], h_previous], -1) @ p["h.weight"].T + p["h.bias"])
            h_steps.append(h)
            h_previous = h
        h = np.stack(h_steps, 1)
        # elman.nn:10  dense  y: 1
        y = h @ p["y.weight"].T + p["y.bias"]
        return y


def load(path=None):
    """The network with the weights of the safetensors file `path`; by default of WEIGHTS beside
    this file."""
    path = WEIGHTS if path is None else path
    return Elman().load(read_safetensors(path))


if __name__ == "__main__":
    # a batch of two zero examples (sequences of 5 steps) through the network
    net = load() if WEIGHTS.exists() else Elman()
    zeros = {"x": np.zeros((2, 5, 1), DTYPE)}
    outputs = net(**zeros)
    if not isinstance(outputs, dict):
        outputs = {net.outputs[0]: outputs}
    for name, value in outputs.items():
        print(f"{name}: {list(value.shape)}")
