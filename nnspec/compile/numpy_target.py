"""The NumPy target: a checked network as one standalone `.py` file for inference.

    source = emit(model, params)      # the file's bytes; nnspec compile writes them

The file imports only NumPy and the standard library. It holds a class named after the network
(`xor` -> `Xor`), whose `forward` runs the layers in the plan's order (backends/plan.py), a line
or a few per layer under a comment quoting the spec line; only the layers on a cycle through a
`~>` link step through time in an explicit loop. It copies in only the helpers its layers use
(numpy_helpers.py), reads weights with a small safetensors reader of its own, and offers
`load(path=None)`: the network with the weights of `path`, by default of `NAME.safetensors`
beside the file, which `nnspec compile` writes. Outputs equal the NumPy backend's in evaluation.

This module writes the `forward` (a walk over the plan, each kind's lines from numpy_kinds.py);
numpy_file.py writes the file around it.
"""

from __future__ import annotations

import builtins
import keyword
import re

import numpy as np

from ..backends.plan import Loop, Plan, Read, Source, Step, handed_states, make_plan
from ..errors import SpecError
from ..program import Layer
from .common import spec_line, terms
from .numpy_file import WIDTH, file_text, tuple_text
from .numpy_kinds import CANNOT, LOWERINGS, Emit, Stateful, quoted

# names the forward reads besides the layers' variables: no layer's variable may shadow them
RESERVED = {"np", "p", "self", "B", "T", "t", "math", "json", "struct", "Path", "DTYPE", "load"}
RESERVED |= {"l", "O", "I"}  # names ruff finds ambiguous (E741)
RESERVED |= set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist)
# what the writer appends to a layer's variable for the values it derives from it
SUFFIXES = (
    "_previous",
    "_steps",
    "_shifted",
    "_state",
    "_in",
    "_q",
    "_k",
    "_v",
    "_forward",
    "_below",
)


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
                "compile it to a target that has this kind (docs/compile.md lists them; --to "
                "torch has every kind), or run it with "
                "nnspec's NumPy backend (model.to_numpy())",
            )
    writer = _Writer(make_plan(program))
    forward = writer.forward()
    return file_text(model, params, forward, writer.helpers, writer.var, RESERVED).encode()


class _Writer:
    """The `forward` of one plan, and the helpers it uses."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.program = plan.program
        self.var = _variables(self.program.layers)
        self.handed = handed_states(self.program)  # decoder -> the encoder whose state it takes
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
            self.body.append(f"{self._use('_agree')}({{{arrays}}}, {tuple_text(list(timed))})")
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
        # called, or passed as a function (an rnn's activation: `_rnn(..., _sigmoid)`)
        self.helpers = {h for h in self.helpers if re.search(rf"(?<![.\w]){h}\b", text)}
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
        keys = {key: _param(layer, key) for key in layer.params}
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
        e.keep_final = layer.name in self.handed.values()
        if layer.name in self.handed:  # it starts from this encoder's final state
            e.final = self.var[self.handed[layer.name]]
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
        parts = terms(arg) if len(arg) + 5 > limit else [arg]
        lines += ["    " + parts[0]] + ["    + " + part for part in parts[1:]]
        lines[-1] += ","
    return lines + [")"]


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
        read = re.search(rf"(?<![.\w]){var[name]}(_shifted|_final\d+)?\b", after) if name else True
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


def _param(layer, key: str) -> str:
    """The expression that reads a layer's parameter: `p["h.weight"]`; a shared one its owner's
    (`p["enc.weight"].T` for a tied layer's weight)."""
    borrowed = layer.borrowed.get(key)
    return f'p["{layer.param_name(key)}"]' + (".T" if borrowed and borrowed.transposed else "")
