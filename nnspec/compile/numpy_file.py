"""The compiled NumPy file around its `forward`: the header, the imports, the parameters' table,
the safetensors reader (numpy_helpers.py), the class named after the network, `load`, and what
`python net.py` runs.

    text = file_text(model, params, forward, helpers, variables)
"""

from __future__ import annotations

import re
import textwrap

import numpy as np

from ..program import Layer
from .common import harmless, header
from .numpy_helpers import HELPERS, with_needs
from .numpy_kinds import quoted

WIDTH = 100  # ruff's line length, in the project that writes the file and in the file itself


def _class_name(name: str, reserved: set[str]) -> str:
    """`deep_residual` -> `DeepResidual`."""
    words = [w for w in re.split(r"[\W_]+", name) if w]
    camel = "".join(w[:1].upper() + w[1:] for w in words) or "Network"
    return camel if camel.isidentifier() and camel not in reserved else "Net" + camel


def _shape(shape) -> str:
    """`[B, T, 1]`: a value's array, batch first."""
    return "[" + ", ".join(["B"] + ["T"] * shape.timed + [str(d) for d in shape.dims]) + "]"


def _docstring(text: str, indent: str) -> list[str]:
    """A docstring's lines, wrapped to the line length; quotes and backslashes made harmless."""
    text = harmless(text).strip() or "A network."
    width = WIDTH - len(indent) - 6
    paragraphs = text.split("\n\n")
    lines: list[str] = []
    for paragraph in paragraphs:
        lines.extend(textwrap.wrap(paragraph, width) or [""])
        lines.append("")
    lines = lines[:-1]
    lines[0] = '"""' + lines[0]
    if len(lines) == 1 and len(lines[0]) + 3 + len(indent) <= WIDTH:
        return [indent + lines[0] + '"""']
    return [indent + line if line else "" for line in lines] + [indent + '"""']


def tuple_text(values: list[str]) -> str:
    """A tuple of strings as ruff writes it: `("x",)`."""
    inner = ", ".join(quoted(v) for v in values)
    return f"({inner},)" if len(values) == 1 else f"({inner})"


def file_text(
    model,
    params: dict[str, np.ndarray],
    forward: list[str],
    used: set[str],
    variables: dict[str, str],
    reserved: set[str],
) -> str:
    """The whole file: `forward`'s lines (unindented) inside the class, the helpers in `used`
    (and those they need), `variables` naming each layer's value (the inputs are forward's
    arguments); the class's name avoids `reserved`."""
    program = model.program
    cls = _class_name(model.name, reserved)
    inputs = [program.layer(n) for n in program.inputs]
    signature = ", ".join(variables[n] for n in program.inputs)
    integer = [name for name, a in params.items() if a.dtype.kind in "iu"]
    # the reader first, as a reader of the file meets it; then the helpers the layers use
    reader = ["read_safetensors", "_tensor"]
    helpers = [name for name in with_needs(used | {"_bind"}) if name not in reader]
    helper_text = "\n\n".join(HELPERS[name][0] for name in reader)
    helper_text += "\n\n" + _fit_source(bool(integer)) + "\n\n\n"
    helper_text += "\n\n".join(HELPERS[name][0] for name in helpers)
    shapes = [
        f"    {quoted(name)}: {tuple(int(n) for n in a.shape)!r}," for name, a in params.items()
    ]
    what = ", ".join(f"{layer.name} {_shape(layer.shape)}" for layer in inputs)
    made = ", ".join(f"{o.name} {_shape(o.shape)}" for o in program.outputs)
    lines = [f"# {line}" for line in header(model, "numpy")]
    lines += _docstring(
        f"{model.name}: {program.description or 'a network'}, for NumPy.\n\n"
        f"Inputs {what}; outputs {made}. `load()` returns the network with the weights in "
        f"the .safetensors file of this file's name beside it, `load(path)` those of another "
        "safetensors file; "
        f"`net(x)` or `net(**inputs)` runs it.",
        "",
    )
    lines += ["", "import json", "import math", "import struct", "from pathlib import Path", ""]
    lines += ["import numpy as np"]
    if "_windows" in helpers:
        lines += ["from numpy.lib.stride_tricks import sliding_window_view"]
    lines += [
        "",
        f"NETWORK = {quoted(model.name)}",
        "DTYPE = np.float32",
        'WEIGHTS = Path(__file__).with_suffix(".safetensors")  # nnspec compile writes it',
        "# every parameter and buffer, by the spec's names, with its shape (PyTorch's layouts)",
        "PARAMS = {" if shapes else "PARAMS = {}",
        *shapes,
        *(["}"] if shapes else []),
    ]
    if integer:
        lines += ["# the buffers that count, int64 as in PyTorch"]
        one_line = f"INTEGER = {tuple_text(integer)}"
        if len(one_line) <= WIDTH:
            lines += [one_line]
        else:  # one name a line, the trailing comma keeping ruff's format so
            lines += ["INTEGER = (", *(f"    {quoted(name)}," for name in integer), ")"]
    lines += ["", "", helper_text.rstrip("\n"), "", ""]
    init = [
        "        self.params = {name: np.zeros(shape, DTYPE) for name, shape in PARAMS.items()}"
    ]
    if integer:
        init = [
            "        self.params = {",
            "            name: np.zeros(shape, np.int64 if name in INTEGER else DTYPE)",
            "            for name, shape in PARAMS.items()",
            "        }",
        ]
    body = [
        f"class {cls}:",
        *_docstring(
            f"{program.description or model.name}: {what} -> {made}. Its parameters are zeros "
            "until `load`.",
            "    ",
        ),
        "",
        f"    inputs = {tuple_text(list(program.inputs))}",
        f"    outputs = {tuple_text([o.name for o in program.outputs])}",
        "",
        "    def __init__(self):",
        *init,
        "",
        "    def load(self, state):",
        '        """Take every parameter from `state` (name -> array), checked against PARAMS."""',
        "        self.params = _fit(state)",
        "        return self",
        "",
        "    def eval(self):",
        '        """Evaluation mode, the only one this file has."""',
        "        return self",
        "",
        "    def __call__(self, *args, **kwargs):",
        '        """The outputs for the inputs, by position or by name: one array, or a dict by',
        '        output name."""',
        "        return self.forward(*_bind(self.inputs, args, kwargs))",
        "",
        f"    def forward(self, {signature}):",
        *("        " + line if line else "" for line in forward),
    ]
    lines += body
    lines += ["", "", *LOAD.format(cls=cls).strip("\n").split("\n")]
    zeros = [
        f"{quoted(layer.name)}: np.zeros({(2,) + _zero_shape(layer)!r}, DTYPE)" for layer in inputs
    ]
    zeros_line = f"    zeros = {{{', '.join(zeros)}}}"
    if len(zeros_line) > WIDTH:
        zeros_line = "\n".join(["    zeros = {", *(f"        {z}," for z in zeros), "    }"])
    seq = any(layer.shape.timed and layer.options.steps is None for layer in inputs)
    lines += ["", "", 'if __name__ == "__main__":']
    lines += [
        f"    # a batch of two zero examples{' (sequences of 5 steps)' * seq} through the network",
        f"    net = load() if WEIGHTS.exists() else {cls}()",
        zeros_line,
        "    outputs = net(**zeros)",
        "    if not isinstance(outputs, dict):",
        "        outputs = {net.outputs[0]: outputs}",
        "    for name, value in outputs.items():",
        '        print(f"{name}: {list(value.shape)}")',
    ]
    return "\n".join(lines) + "\n"


def _zero_shape(layer: Layer) -> tuple[int, ...]:
    o = layer.options
    if o.seq is not False and o.steps is None:
        return (5 if o.seq is True else o.seq,) + tuple(layer.shape.dims)
    return tuple(layer.shape.dims)


FIT = '''
def _fit(state):
    """The arrays of `state` for PARAMS (a trained GAN's or a checkpoint's under the network's
    name or `weights.`): every name, each of its shape, as DTYPE."""
    for prefix in (NETWORK + ".", "weights."):
        if not set(PARAMS) <= set(state) and any(k.startswith(prefix) for k in state):
            state = {{k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}}
    missing = [name for name in PARAMS if name not in state]
    unexpected = [name for name in state if name not in PARAMS]
    if missing or unexpected:
        raise ValueError(
            f"the weights do not fit {{NETWORK}}: missing {{missing}}, unexpected {{unexpected}}"
        )
    params = {{}}
    for name, shape in PARAMS.items():
        value = np.asarray(state[name])
        if value.shape != shape:
            got, want = list(value.shape), list(shape)
            raise ValueError(f"{{name!r}} is {{got}} in the weights; {{NETWORK}} needs {{want}}")
        params[name] = value.astype({dtype})
    return params
'''


def _fit_source(integer: bool) -> str:
    dtype = "np.int64 if name in INTEGER else DTYPE" if integer else "DTYPE"
    text = FIT.format(dtype=dtype)
    return text.strip("\n")


LOAD = '''
def load(path=None):
    """The network with the weights of the safetensors file `path`; by default of WEIGHTS beside
    this file."""
    path = WEIGHTS if path is None else path
    return {cls}().load(read_safetensors(path))
'''
