"""Code generation: a `Plan` -> the source of one straight-line `forward`, and the modules it calls.

The forward reads each layer's module by attribute and calls it, in plan order, the way a
hand-written module would: no walk over the graph and no lookups in tables while it runs.
Loops through `~>` links become Python `for` loops over the time steps.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from torch import nn

from ...program import Layer
from ..plan import Loop, Plan, Read, Source, Step, handed_states
from . import (
    activation,
    attention,
    boltzmann,
    capsules,
    conv,
    dense,
    dnc,
    generative,
    graph,
    hopfield,
    io,
    markov,
    memory,
    merge,
    norm,
    radial,
    rbm,
    recurrent,
    reservoir,
    som,
    spiking,
)
from .lowering import Emit, Lowering, at_step, split_steps

LOWERINGS: dict[str, Lowering] = {}
for _family in (
    io,
    dense,
    conv,
    norm,
    merge,
    recurrent,
    attention,
    graph,
    spiking,
    reservoir,
    generative,
    radial,
    markov,
    rbm,
    boltzmann,
    som,
    hopfield,
    capsules,
    memory,
    dnc,
    activation,
):
    LOWERINGS |= _family.LOWERINGS

TERM = "#term "  # marks the lines that add to the KL term (only `forward_with_terms` keeps them)


@dataclass(frozen=True)
class Generated:
    source: str  # the module's `forward` and `forward_with_terms`
    modules: dict[str, nn.Module]  # layer name -> the module holding its parameters


def generate(plan: Plan, reserved: set[str]) -> Generated:
    """`reserved`: attribute names of the module class, which layer names must not shadow."""
    writer = _Writer(plan, reserved)
    return Generated(writer.source(), writer.modules)


class _Writer:
    def __init__(self, plan: Plan, reserved: set[str]):
        self.plan, self.reserved = plan, reserved
        self.var = _variables([layer.name for layer in plan.program.layers])
        self.handed = handed_states(plan.program)  # decoder -> the encoder whose state it takes
        self.modules: dict[str, nn.Module] = {}
        for layer in plan.program.layers:
            if layer.borrowed and not layer.own_params:
                continue  # it computes with another layer's module or parameters
            module = LOWERINGS[layer.kind.name].module(layer)
            if module is not None:
                for key in layer.borrowed:  # tied=: the weight is the owner's
                    module.register_parameter(key, None)
                self.modules[layer.name] = module
        self.body: list[str] = []
        self.logits: dict[
            str, str
        ] = {}  # output -> the variable holding its value before softmax/sigmoid
        self.wants_logits = {o.name for o in plan.outputs if o.reduce in (None, "last")}

    # ---- the whole function ----------------------------------------------------------------
    def source(self) -> str:
        self._prologue()
        prologue, self.body = self.body, []
        for item in self.plan.items:
            if isinstance(item, Loop):
                self._loop(item)
            elif not item.layer.kind.source:
                self._layer(item, self.body, "")
        outputs = [self._output(o) for o in self.plan.outputs]
        if len(outputs) == 1:
            result = outputs[0]
        else:
            result = (
                "{"
                + ", ".join(
                    f"{o.name!r}: {expr}"
                    for o, expr in zip(self.plan.outputs, outputs, strict=True)
                )
                + "}"
            )
        self.body = _needed(prologue, self.body + [result]) + self.body
        signature = self._signature()
        terms = any(line.lstrip().startswith(TERM) for line in self.body)
        plain = [line for line in self.body if not line.lstrip().startswith(TERM)]
        with_terms = ["_kl = 0.0"] * terms + [line.replace(TERM, "", 1) for line in self.body]
        logits = [
            f"{o.name!r}: {self._reduce(self.logits[o.name], o.reduce)}"
            for o in self.plan.outputs
            if o.name in self.logits
        ]
        # the activations of layers with a sparsity= penalty, which the runner adds to the loss
        sparse = [
            f"{layer.name!r}: {self.var[layer.name]}"
            for layer in self.plan.program.layers
            if getattr(layer.options, "sparsity", None) is not None
        ]
        term_dict = (
            "{"
            + ", ".join(
                ['"kl": _kl'] * terms
                + ['"logits": {' + ", ".join(logits) + "}"] * bool(logits)
                + ['"sparse": {' + ", ".join(sparse) + "}"] * bool(sparse)
            )
            + "}"
        )
        return "\n".join(
            [
                f"def forward(self, {signature}):",
                *_indent(plain),
                f"    return {result}",
                "",
                f"def forward_with_terms(self, {signature}):",
                *_indent(with_terms),
                f"    return {result}, {term_dict}",
                "",
            ]
        )

    def _signature(self) -> str:
        """The inputs by name; names Python cannot take (`lambda`, `torch`) arrive through
        `**inputs`."""
        names = self.plan.program.inputs
        if all(n.isidentifier() and not keyword.iskeyword(n) and n not in _GLOBALS for n in names):
            return ", ".join(names)
        return "*args, **kwargs"

    def _argument(self, name: str) -> str:
        if self._signature().startswith("*"):
            return f"_argument(args, kwargs, {list(self.plan.program.inputs)!r}, {name!r})"
        return name

    def _prologue(self) -> None:
        inputs = self.plan.inputs
        for layer in inputs:
            o, var = layer.options, self.var[layer.name]
            time = "steps" if o.steps is not None else "seq" if o.seq is not False else None
            steps = (
                o.steps if o.steps is not None else (o.seq if o.seq not in (True, False) else None)
            )
            arguments = f"{self._argument(layer.name)}, {layer.shape.dims!r}, {time!r}, {steps!r}"
            self.body.append(f"{var} = _prepare({layer.name!r}, {arguments})")
        self.body.append(f"B = {self.var[inputs[0].name]}.shape[0]")
        timed = [layer for layer in inputs if layer.shape.timed]
        if timed:
            self.body.append(f"T = {self.var[timed[0].name]}.shape[1]")
        ref = next(
            (
                f"{self._module(name)}.{key}"
                for name, m in self.modules.items()
                for key, _ in m.named_parameters()
            ),
            None,
        )
        self.body.append(f"_ref = {ref or self.var[inputs[0].name]}")
        for name in self.plan.shifted:
            if self.plan.program.layer(name).kind.source:
                self.body.append(f"{self._shifted(name)} = _shift({self.var[name]})")

    # ---- one layer ---------------------------------------------------------------------------
    def _layer(
        self,
        step: Step,
        lines: list[str],
        indent: str,
        in_loop: bool = False,
        before: list[str] | None = None,
    ) -> None:
        layer = step.layer
        lowering = LOWERINGS[layer.kind.name]
        e = Emit(
            layer,
            self._module(layer.shares or layer.name),  # a sharer calls its owner's module
            self.var[layer.name],
            step.timed,
            logits=not in_loop and layer.name in self.wants_logits,
            params=self._params(layer),
            keep_final=layer.name in self.handed.values(),
            final=f"{self.var[self.handed[layer.name]]}__final"
            if layer.name in self.handed
            else None,
        )
        x = self._arrange(layer, step.sources)
        (lowering.step if in_loop and lowering.step else lowering.whole)(e, x)
        if e.logits_made:
            self.logits[layer.name] = f"{e.out}__logits"
        lines.extend(indent + line for line in e.lines)
        lines.extend(indent + f"{TERM}_kl = _kl + {term}" for term in e.terms)
        if before is not None:
            before.extend(e.before)
        if not in_loop and layer.name in self.plan.shifted:
            lines.append(indent + f"{self._shifted(layer.name)} = _shift({e.out})")

    def _params(self, layer: Layer) -> dict[str, str]:
        """Each parameter of the layer as an expression: `self.h.weight`; a borrowed one its
        owner's, `.t()` where tied transposes it."""
        found = {}
        for key in layer.params:
            borrowed = layer.borrowed.get(key)
            if borrowed is None:
                found[key] = f"{self._module(layer.name)}.{key}"
            else:
                t = ".t()" * borrowed.transposed
                found[key] = f"{self._module(borrowed.owner)}.{borrowed.key}{t}"
        return found

    def _arrange(self, layer: Layer, sources: tuple[Source, ...]):
        values = [(s, self._read(s)) for s in sources]
        if layer.kind.merges:
            return [value for _, value in values]
        if layer.kind.ports:
            ports: dict[str, list[str]] = {}
            for s, value in values:
                ports.setdefault(s.port or layer.kind.default_port, []).append(value)
            return {port: _join(group, -1) for port, group in ports.items()}
        if not values:
            return None
        first = self.plan.program.layer(sources[0].name).shape
        return _join([value for _, value in values], -3 if len(first.dims) == 3 else -1)

    def _read(self, s: Source) -> str:
        var = self.var[s.name]
        value = {
            Read.VALUE: var,
            Read.SHIFTED: self._shifted(s.name),
            Read.AT_STEP: at_step(var),
            Read.SHIFTED_AT_STEP: at_step(self._shifted(s.name)),
            Read.CURRENT: var,
            Read.PREVIOUS: self._previous(s.name),
        }[s.read]
        return f"_along_time({value}, T)" if s.broadcast else value

    # ---- loops through time ------------------------------------------------------------------
    def _loop(self, loop: Loop) -> None:
        before: list[str] = []
        inside: list[str] = []
        for name in loop.carried:
            dims = ", ".join(map(str, self.plan.program.layer(name).shape.dims))
            before.append(f"{self._previous(name)} = _zeros(_ref, B, {dims})")
        for step in loop.steps:
            self._layer(step, inside, "    ", in_loop=True, before=before)
        # each sequence from outside the loop that its steps read, split once (where the code
        # reads it: a lowering may leave an input unread)
        sequences = dict.fromkeys(
            self.var[s.name] if s.read is Read.AT_STEP else self._shifted(s.name)
            for step in loop.steps
            for s in step.sources
            if s.read in (Read.AT_STEP, Read.SHIFTED_AT_STEP)
        )
        code = "\n".join(inside)
        before.extend(split_steps(seq) for seq in sequences if at_step(seq) in code)
        for name in loop.leaving:
            before.append(f"{self.var[name]}__steps = []")
            inside.append(f"    {self.var[name]}__steps.append({self.var[name]})")
        for name in loop.carried:
            inside.append(f"    {self._previous(name)} = {self.var[name]}")
        self.body.extend(before)
        self.body.append("for t in range(T):")
        self.body.extend(inside)
        for name in loop.leaving:
            self.body.append(f"{self.var[name]} = torch.stack({self.var[name]}__steps, 1)")
            if name in self.plan.shifted:
                self.body.append(f"{self._shifted(name)} = _shift({self.var[name]})")

    def _output(self, output) -> str:
        return self._reduce(self.var[output.name], output.reduce)

    @staticmethod
    def _reduce(var: str, reduce: str | None) -> str:
        return {None: var, "last": f"{var}[:, -1]", "mean": f"{var}.mean(1)"}[reduce]

    # ---- names -------------------------------------------------------------------------------
    def _module(self, name: str) -> str:
        """`self.h1`, `self.r._modules["2"].b`: attribute access where Python allows it."""
        expression = "self"
        for i, part in enumerate(name.split(".")):
            plain = (
                part.isidentifier()
                and not keyword.iskeyword(part)
                and (i > 0 or part not in self.reserved)
            )
            expression += (
                f".{part}" if plain and not hasattr(nn.Module, part) else f"._modules[{part!r}]"
            )
        return expression

    def _shifted(self, name: str) -> str:
        return f"{self.var[name]}__shifted"

    def _previous(self, name: str) -> str:
        return f"{self.var[name]}__previous"


def _needed(prologue: list[str], rest: list[str]) -> list[str]:
    """The prologue's lines whose variable (B, T, _ref) later code reads; inputs are always
    prepared."""
    text = "\n".join(rest)
    kept = []
    for line in reversed(prologue):
        target = line.split(" = ")[0]
        if target not in ("B", "T", "_ref") or re.search(rf"\b{target}\b", text):
            kept.append(line)
            text += "\n" + line
    return kept[::-1]


def _join(values: list[str], axis: int) -> str:
    return values[0] if len(values) == 1 else f"torch.cat([{', '.join(values)}], {axis})"


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _variables(names: list[str]) -> dict[str, str]:
    """A distinct Python variable per layer, numbered so that no two (nor their `__` suffixes)
    collide: `r.2.b` -> `v3_r_2_b`."""
    return {name: f"v{i}_{name.replace('.', '_')}" for i, name in enumerate(names)}


# names the generated code uses besides the layers' variables (inputs must not shadow them)
_GLOBALS = {
    "self",
    "torch",
    "F",
    "_VF",
    "B",
    "T",
    "t",
    "_ref",
    "_kl",
    "_prepare",
    "_shift",
    "_along_time",
    "_every_step",
    "_zeros",
    "_step",
    "_spike",
    "_argument",
    "args",
    "kwargs",
}
