"""The NumPy target: a checked network as one standalone `.py` file for inference.

    source = emit(model, params)      # the file's bytes; nnspec compile writes them

The file imports only NumPy and the standard library. It holds a class named after the network
(`xor` -> `Xor`), whose `forward` runs the layers in the plan's order (backends/plan.py), a line
or a few per layer under a comment quoting the spec line; only the layers on a cycle through a
`~>` link step through time in an explicit loop. It copies in only the helpers its layers use
(numpy_helpers.py), reads weights with a small safetensors reader of its own, and offers
`load(path=None)`: the network with the weights of `path`, by default of `NAME.safetensors`
beside the file, which `nnspec compile` writes. Outputs equal the NumPy backend's in evaluation.
"""

from __future__ import annotations

import builtins
import keyword
import re
import textwrap

import numpy as np

from ..backends.plan import Loop, Plan, Read, Source, Step, make_plan
from ..errors import SpecError
from ..program import Layer
from .common import header, spec_line, weights_name
from .numpy_helpers import HELPERS, with_needs
from .numpy_kinds import CANNOT, LOWERINGS, Emit, Stateful, quoted

WIDTH = 100  # ruff's line length in the project that writes the file, and in the file itself
# names the forward reads besides the layers' variables: no layer's variable may shadow them
RESERVED = {"np", "p", "self", "B", "T", "t", "math", "json", "struct", "Path", "DTYPE", "load"}
RESERVED |= {"l", "O", "I"}  # names ruff finds ambiguous (E741)
RESERVED |= set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist)
# what the writer appends to a layer's variable for the values it derives from it
SUFFIXES = ("_previous", "_steps", "_shifted", "_state", "_in", "_q", "_k", "_v")


def emit(model, params: dict[str, np.ndarray]) -> bytes:
    """The file for `model` (its parameters' names and shapes come from `params`)."""
    program = model.program
    for layer in program.layers:
        if layer.kind.name not in LOWERINGS:
            reason = CANNOT.get(layer.kind.name, "the NumPy target has no lowering for it")
            raise SpecError(
                "E601",
                f"layer '{layer.name}' of kind '{layer.kind.name}' cannot be compiled to numpy: "
                f"{reason}",
                layer.span,
                "compile this network to another target (--to torch or onnx), or run it with "
                "nnspec's NumPy backend (model.to_numpy())",
            )
    writer = _Writer(make_plan(program))
    forward = writer.forward()
    return _file(model, params, writer, forward).encode()


class _Writer:
    """The `forward` of one plan, and the helpers it uses."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.program = plan.program
        self.var = _variables(self.program.layers)
        self.helpers: set[str] = set()
        self.body: list[str] = []

    # ---- the whole function ------------------------------------------------------------------
    def forward(self) -> list[str]:
        """The lines of `forward`, unindented (the method's body is indented by the file)."""
        for layer in self.plan.inputs:
            self._input(layer)
        if len(self.plan.inputs) > 1:
            arrays = ", ".join(f"{quoted(n)}: {self.var[n]}" for n in self.program.inputs)
            timed = tuple(n for n in self.program.inputs if self.program.layer(n).shape.timed)
            self.body.append(f"{self._use('_agree')}({{{arrays}}}, {_tuple(list(timed))})")
        prepared, self.body = self.body, []
        blocks: list[tuple[str | None, list[str]]] = []
        for item in self.plan.items:
            if isinstance(item, Loop):
                self._loop(item)
                blocks.append((None, self.body))
            elif not item.layer.kind.source:
                self.body.extend(self._comment(item.layer))
                self.body.extend(self._layer(item, "").lines)
                self._shift(item.name, "")
                blocks.append((item.name, self.body))
            self.body = []
        result = self._result()
        body = _pruned(blocks, result, {self.var[o.name] for o in self.plan.outputs}, self.var)
        lines = body + result
        prologue = ["p = self.params"] if any("p[" in line for line in lines) else []
        text = _code(lines)
        first = self.var[self.program.inputs[0]]
        if re.search(r"(?<![.\w])B\b", text):
            prologue.append(f"B = {first}.shape[0]")
        timed = [n for n in self.program.inputs if self.program.layer(n).shape.timed]
        if re.search(r"(?<![.\w])T\b", text):
            prologue.append(f"T = {self.var[timed[0]]}.shape[1]")
        text = _code(prepared + lines)
        self.helpers = {h for h in self.helpers if re.search(rf"\b{h}\(", text)}
        # the inputs are prepared first, then B and T read from them
        return prepared + prologue + lines

    def _result(self) -> list[str]:
        outputs = [self._reduce(o) for o in self.plan.outputs]
        if len(outputs) == 1:
            return [f"return {outputs[0]}"]
        names = [quoted(o.name) for o in self.plan.outputs]
        pairs = [f"{name}: {value}" for name, value in zip(names, outputs, strict=True)]
        if len(f"return {{{', '.join(pairs)}}}") + 8 > WIDTH:
            return ["return {", *(f"    {pair}," for pair in pairs), "}"]
        return [f"return {{{', '.join(pairs)}}}"]

    def _input(self, layer: Layer) -> None:
        o, var = layer.options, self.var[layer.name]
        dims = tuple(layer.shape.dims)
        extra = ""
        if o.steps is not None:
            extra = f", steps={o.steps}"
        elif o.seq is not False:
            extra = f", seq={o.seq}"
        self.body.extend(self._comment(layer))
        call = f"{self._use('_input')}({quoted(layer.name)}, {var}, {dims!r}{extra})"
        self.body.append(f"{var} = {call}")
        self._shift(layer.name, "")

    def _shift(self, name: str, indent: str) -> None:
        if name in self.plan.shifted:
            var = self.var[name]
            self.body.append(f"{indent}{var}_shifted = {self._use('_shift')}({var})")

    def _comment(self, layer: Layer, indent: str = "") -> list[str]:
        text = f"{indent}# {spec_line(layer)}"
        return [text if len(text) + 8 <= WIDTH else text[: WIDTH - 8 - 3] + "..."]

    def _use(self, name: str) -> str:
        self.helpers.add(name)
        return name

    # ---- one layer ---------------------------------------------------------------------------
    def _layer(self, step: Step, indent: str, in_loop: bool = False) -> Emit:
        """The layer's lines; where one would pass the line length, its parameters (and then
        what enters it) are first bound to variables of their own."""
        layer = step.layer
        keys = {key: f'p["{layer.name}.{key}"]' for key in layer.params}
        emitted = self._try(step, keys, in_loop, [])
        limit = WIDTH - 8 - len(indent)
        if any(len(line) > limit for line in emitted.lines):
            var = self.var[layer.name]
            used = [key for key in layer.params if any(keys[key] in ln for ln in emitted.lines)]
            bound = {key: f"{var}_{key}" for key in layer.params}
            binds = [f"{bound[key]} = {keys[key]}" for key in used]
            emitted = self._try(step, bound, in_loop, binds)
            if any(len(line) > limit for line in emitted.lines):
                emitted = self._try(step, bound, in_loop, binds, joined=f"{var}_in")
        lines = [part for line in emitted.lines for part in _wrap(line, limit)]
        emitted.lines = [indent + line for line in lines]
        emitted.before = [part for line in emitted.before for part in _wrap(line, WIDTH - 8)]
        self.helpers |= emitted.helpers
        return emitted

    def _try(
        self,
        step: Step,
        params: dict[str, str],
        in_loop: bool,
        binds: list[str],
        joined: str | None = None,
    ) -> Emit:
        """The layer written once; `joined` names a variable for what enters it, when that is
        several sources joined."""
        layer = step.layer
        var = self.var[layer.name]
        e = Emit(layer, var, step.timed, in_loop, params, f"{var}_state")
        if layer.kind.name in ("conv", "global_pool"):
            e.hw = tuple(self.program.layer(step.sources[0].name).shape.dims[-2:])
        x = self._arrange(layer, step.sources)
        if joined is not None and isinstance(x, str) and x.startswith("np.concatenate("):
            e.lines.append(f"{joined} = {x}")
            x = joined
        lower = LOWERINGS[layer.kind.name]
        if isinstance(lower, Stateful):
            (lower.step if in_loop else lower.sequence)(e, x)
        else:
            lower(e, x)
        if in_loop:  # bound once, before the loop
            e.before = binds + e.before
        else:
            e.lines = binds + e.lines
        return e

    def _arrange(self, layer: Layer, sources: tuple[Source, ...]):
        values = [(s, self._read(s)) for s in sources]
        if layer.kind.merges:
            return [value for _, value in values]
        if layer.kind.ports:
            ports: dict[str, list[tuple[Source, str]]] = {}
            for s, value in values:
                ports.setdefault(s.port or layer.kind.default_port, []).append((s, value))
            return {port: self._join(group) for port, group in ports.items()}
        return self._join(values)

    def _join(self, values: list[tuple[Source, str]]) -> str:
        """Fan-in: the sources joined along the feature axis (channels for images)."""
        if len(values) == 1:
            return values[0][1]
        axis = -3 if len(self.program.layer(values[0][0].name).shape.dims) == 3 else -1
        return f"np.concatenate([{', '.join(v for _, v in values)}], {axis})"

    def _read(self, s: Source) -> str:
        var = self.var[s.name]
        value = {
            Read.VALUE: var,
            Read.SHIFTED: f"{var}_shifted",
            Read.AT_STEP: f"{var}[:, t]",
            Read.SHIFTED_AT_STEP: f"{var}_shifted[:, t]",
            Read.CURRENT: var,
            Read.PREVIOUS: f"{var}_previous",
        }[s.read]
        return f"{self._use('_along_time')}({value}, T)" if s.broadcast else value

    # ---- loops through time ------------------------------------------------------------------
    def _loop(self, loop: Loop) -> None:
        before: list[str] = []
        inside: list[str] = []
        for name in loop.carried:
            dims = ", ".join(map(str, self.program.layer(name).shape.dims))
            before.append(f"{self.var[name]}_previous = np.zeros((B, {dims}), DTYPE)")
        for step in loop.steps:
            inside.extend(self._comment(step.layer, "    "))
            emitted = self._layer(step, "    ", in_loop=True)
            before.extend(emitted.before)
            inside.extend(emitted.lines)
        for name in loop.leaving:
            before.append(f"{self.var[name]}_steps = []")
            inside.append(f"    {self.var[name]}_steps.append({self.var[name]})")
        for name in loop.carried:
            inside.append(f"    {self.var[name]}_previous = {self.var[name]}")
        self.body.extend(before)
        self.body.append("for t in range(T):  # the layers of a cycle through ~>, step by step")
        self.body.extend(inside)
        for name in loop.leaving:
            self.body.append(f"{self.var[name]} = np.stack({self.var[name]}_steps, 1)")
            self._shift(name, "")

    def _reduce(self, output) -> str:
        var = self.var[output.name]
        return {
            None: var,
            "last": f"{var}[:, -1]",
            "mean": f"{var}.sum(axis=1) * (1.0 / {var}.shape[1])",
        }[output.reduce]


def _wrap(line: str, limit: int) -> list[str]:
    """A line past `limit` that ends in a call, split as ruff formats it: the arguments on a line
    of their own inside the brackets, or, where that is too long too, one argument a line."""
    if len(line) <= limit or not line.endswith((")", "]")):
        return [line]
    depth, start, commas = 0, None, []
    for i in range(len(line) - 1, -1, -1):
        depth += {")": 1, "]": 1, "}": 1, "(": -1, "[": -1, "{": -1}.get(line[i], 0)
        if depth == 1 and line[i] == ",":
            commas.append(i)
        if depth == 0:
            start = i
            break
    if not start or "#" in line:
        return [line]
    head, body = line[: start + 1], line[start + 1 : -1]
    if len(body) + 4 <= limit or line.endswith("]"):
        return [head, "    " + body, line[-1]]
    cuts = [start] + sorted(commas) + [len(line) - 1]
    args = [line[a + 1 : b].strip() for a, b in zip(cuts, cuts[1:], strict=False)]
    lines = [head]
    for arg in args:
        parts = _terms(arg) if len(arg) + 5 > limit else [arg]
        lines += ["    " + parts[0]] + ["    + " + part for part in parts[1:]]
        lines[-1] += ","
    return lines + [")"]


def _terms(expression: str) -> list[str]:
    """`a @ w.T + b` -> ["a @ w.T", "b"]: the terms of a sum outside brackets, as ruff breaks a
    long one before each `+`."""
    depth, start, terms = 0, 0, []
    for i, char in enumerate(expression):
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(char, 0)
        if depth == 0 and expression.startswith(" + ", i):
            terms.append(expression[start:i])
            start = i + 3
    return terms + [expression[start:]]


def _code(lines: list[str]) -> str:
    """The code of `lines` without its comments."""
    return "\n".join(line.split("  #")[0] for line in lines if not line.lstrip().startswith("#"))


def _pruned(
    blocks: list[tuple[str | None, list[str]]], result: list[str], outputs: set[str], var
) -> list[str]:
    """The blocks' lines, less the code of layers whose values nothing reads in evaluation (a
    `sample`'s logvar): their spec line stays, with a note."""
    kept: list[list[str]] = []
    after = _code(result)
    for name, lines in reversed(blocks):
        read = re.search(rf"(?<![.\w]){var[name]}(_shifted)?\b", after) if name else True
        if name is not None and var[name] not in outputs and not read:
            lines = [lines[0], "# (nothing reads it in evaluation: not computed)"]
        kept.append(lines)
        after = _code(lines) + "\n" + after
    return [line for lines in reversed(kept) for line in lines]


def _variables(layers) -> dict[str, str]:
    """A Python variable per layer: its name where Python allows (`r.2.b` -> `r_2_b`), else with
    `v_` before it or a number after it, so that no two (nor what the writer appends: SUFFIXES,
    and `_weight` for a layer's parameter bound to a variable of its own) collide."""
    names = [layer.name for layer in layers]
    keys = sorted({f"_{key}" for layer in layers for key in layer.params})
    suffixes = SUFFIXES + tuple(keys)
    taken: set[str] = set()
    chosen = {}
    for name in names:
        base = re.sub(r"\W", "_", name)
        if not base.isidentifier() or base in RESERVED or base.startswith("_"):
            base = "v_" + base.lstrip("_")
        candidate, n = base, 1
        while not _free(candidate, taken, suffixes):
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        chosen[name] = candidate
    return chosen


def _free(name: str, taken: set[str], suffixes: tuple[str, ...]) -> bool:
    return (
        name not in taken
        and not {name + suffix for suffix in suffixes} & taken
        and not any(name == other + suffix for other in taken for suffix in suffixes)
    )


# ---- the file around the forward ---------------------------------------------------------------
def _class_name(name: str) -> str:
    words = [w for w in re.split(r"[\W_]+", name) if w]
    camel = "".join(w[:1].upper() + w[1:] for w in words) or "Network"
    return camel if camel.isidentifier() and camel not in RESERVED else "Net" + camel


def _shape(shape) -> str:
    """`[B, T, 1]`: a value's array, batch first."""
    return "[" + ", ".join(["B"] + ["T"] * shape.timed + [str(d) for d in shape.dims]) + "]"


def _docstring(text: str, indent: str) -> list[str]:
    """A docstring's lines, wrapped to the line length; quotes and backslashes made harmless."""
    text = text.replace("\\", "/").replace('"""', "'''").strip() or "A network."
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


def _tuple(values: list[str]) -> str:
    inner = ", ".join(quoted(v) for v in values)
    return f"({inner},)" if len(values) == 1 else f"({inner})"


def _file(model, params: dict[str, np.ndarray], writer: _Writer, forward: list[str]) -> str:
    program = model.program
    cls = _class_name(model.name)
    inputs = [program.layer(n) for n in program.inputs]
    signature = ", ".join(writer.var[n] for n in program.inputs)
    helpers = with_needs(writer.helpers | {"_bind"})
    helper_text = "\n\n".join(HELPERS[name][0] for name in helpers)
    integer = [name for name, a in params.items() if a.dtype.kind in "iu"]
    shapes = [
        f"    {quoted(name)}: {tuple(int(n) for n in a.shape)!r}," for name, a in params.items()
    ]
    what = ", ".join(f"{layer.name} {_shape(layer.shape)}" for layer in inputs)
    made = ", ".join(f"{o.name} {_shape(o.shape)}" for o in program.outputs)
    lines = [f"# {line}" for line in header(model, "numpy")]
    lines += _docstring(
        f"{model.name}: {program.description or 'a network'}, for NumPy.\n\n"
        f"Inputs {what}; outputs {made}. `load()` returns the network with the weights in "
        f"{weights_name(model)} beside this file, `load(path)` those of another safetensors file; "
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
        f"WEIGHTS = {quoted(weights_name(model))}  # written beside this file by `nnspec compile`",
        "# every parameter and buffer, by the spec's names, with its shape (PyTorch's layouts)",
        "PARAMS = {" if shapes else "PARAMS = {}",
        *shapes,
        *(["}"] if shapes else []),
    ]
    if integer:
        lines += [f"INTEGER = {_tuple(integer)}  # buffers that count, int64 as in PyTorch"]
    lines += ["", "", READER.strip("\n"), "", "", _fit_source(model.name, bool(integer))]
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
        f"    inputs = {_tuple(list(program.inputs))}",
        f"    outputs = {_tuple([o.name for o in program.outputs])}",
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
        f"    net = load() if Path(__file__).with_name(WEIGHTS).exists() else {cls}()",
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


READER = '''
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
'''

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


def _fit_source(network: str, integer: bool) -> str:
    dtype = "np.int64 if name in INTEGER else DTYPE" if integer else "DTYPE"
    text = FIT.format(dtype=dtype)
    return text.strip("\n")


LOAD = '''
def load(path=None):
    """The network with the weights of the safetensors file `path`; by default of WEIGHTS beside
    this file."""
    path = Path(__file__).with_name(WEIGHTS) if path is None else path
    return {cls}().load(read_safetensors(path))
'''
