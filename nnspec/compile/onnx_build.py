"""The ONNX graph of a plan: inputs, whole-array steps, Scans for `~>` cycles and for recurrent
kinds over whole sequences (ONNX's LSTM and GRU for those two), outputs. Only
`onnx_target.emit` imports it (it imports onnx).

Value names: the graph input `x` and output `y` are the spec's names; a layer's value in the
main graph is the layer's name (an output reduced over time, `output y: last`, keeps its
steps under `y/steps`); inside a Scan's body a layer's step value is `h/step`, what the body
receives `h+y/previous` (the carried values) and `h+y/at_step` (the step of a timed array).
"""

from __future__ import annotations

from pathlib import Path

from onnx import TensorProto, helper

from ..backends.plan import Loop, Read, Source, Step, handed_states, make_plan
from ..kinds.recurrent import layer_suffixes
from ..program import Layer, Program
from .common import header, spec_line
from .onnx_graph import Builder, LayerParams, Names, tensor_type
from .onnx_kinds import CANNOT, LOWERINGS, Context, Stateful, _OneLayer, cannot, feature_axis

BATCH, STEPS = "batch", "steps"


def build(model, params, opset: int, ir_version: int, version: str):
    """The ModelProto (checked by the caller's tests with onnx.checker, full_check)."""
    program: Program = model.program
    plan = make_plan(program)
    for layer in program.layers:  # every layer has a lowering, or a diagnostic, before any work
        kind = layer.kind.name
        if kind in CANNOT:
            raise cannot(layer, CANNOT[kind])
        if kind not in LOWERINGS:
            raise cannot(layer, f"the onnx target has no lowering of '{kind}'")
    names = Names()
    initializers: dict = {}
    g = Builder(names, params, initializers)
    names.values.update(program.inputs)
    walk = _Walk(program, g)
    graph_inputs = walk.inputs()
    for item in plan.items:
        if isinstance(item, Loop):
            walk.loop(item)
        elif not item.layer.kind.source:
            walk.step(item)
    graph_outputs = walk.outputs()
    graph = helper.make_graph(
        g.nodes,
        program.name,
        graph_inputs,
        graph_outputs,
        initializer=list(initializers.values()),
        doc_string=program.description or "",
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=ir_version,
        producer_name="nnspec",
        producer_version=version,
        doc_string="\n".join(header(model, "onnx")),
    )
    source = Path(model.path).name if model.path else "<spec>"
    helper.set_model_props(onnx_model, {"nnspec.network": program.name, "nnspec.spec": source})
    return onnx_model


class _Walk:
    """The main graph, layer by layer: `values` maps each layer to its value's name."""

    def __init__(self, program: Program, g: Builder):
        self.program, self.g = program, g
        self.values: dict[str, str] = {}
        self.shifted: dict[str, str] = {}
        self.reduced = {o.name for o in program.outputs if o.reduce is not None}
        self.timed_input: Layer | None = None  # the first input with a time axis
        self._steps: str | None = None
        # `enc -> dec.state` from a recurrent layer: decoder -> encoder, and each such
        # encoder's final states [B, units] (in Stateful.states_of order: h0, c0, h1, ...)
        self.handed = handed_states(program)
        self.finals: dict[str, list[str]] = {}

    def _name(self, layer: Layer) -> str:
        return f"{layer.name}/steps" if layer.name in self.reduced else layer.name

    # ---- inputs and outputs ------------------------------------------------------------------
    def inputs(self) -> list:
        """One graph input per spec input: [batch, *dims], [batch, steps, *dims] for a sequence
        (`steps` dynamic, or its fixed length); an input held for `steps=N` is given once,
        [batch, *dims], and repeated along time here."""
        g, infos = self.g, []
        for name in self.program.inputs:
            layer = self.program.layer(name)
            shape = layer.shape
            held = layer.options.steps is not None
            g.at(layer)
            if shape.timed and not held:
                time = shape.steps if shape.steps is not None else STEPS
                infos.append(tensor_type(name, [BATCH, time, *shape.dims]))
            else:
                infos.append(tensor_type(name, [BATCH, *shape.dims]))
            if shape.timed and self.timed_input is None:
                self.timed_input = layer
            if g.batch_of is None:
                g.batch_of = name
            g.at(layer)
            value = name
            if held:
                g.scope = f"{name}/held"
                once = g.op("Unsqueeze", [name, g.ints([1])])
                times = g.ints([1, shape.steps] + [1] * len(shape.dims))
                value = g.finish(g.op("Expand", [once, times]), f"{name}/held")
            self.values[name] = value
        return infos

    def outputs(self) -> list:
        g, infos = self.g, []
        for output in self.program.outputs:
            layer = self.program.layer(output.name)
            g.at(layer, scope=f"{output.name}/{output.reduce}")
            value = self.values[output.name]
            if output.reduce == "last":
                value = g.op("Gather", [value, g.ints(-1, scalar=True)], axis=1)
            elif output.reduce == "mean":
                value = g.op("ReduceMean", [value], axes=[1], keepdims=0)
            if output.reduce is not None:
                g.finish(value, output.name)
            shape = output.shape
            time = [shape.steps if shape.steps is not None else STEPS] if shape.timed else []
            infos.append(tensor_type(output.name, [BATCH, *time, *shape.dims]))
        return infos

    # ---- whole-array steps ----------------------------------------------------------------
    def step(self, step: Step) -> None:
        """One layer over whole arrays; a stateful kind over a timed array runs as a Scan (or
        its fused ONNX op)."""
        g, layer = self.g, step.layer
        g.at(layer)
        read = []
        for source in step.sources:
            v = self.values[source.name]
            if source.read is Read.SHIFTED:
                v = self._shifted(source.name)
            if source.broadcast:
                dims = self.program.layer(source.name).shape.dims
                g.at(layer)
                once = g.op("Unsqueeze", [v, g.ints([1])])
                times = g.op(
                    "Concat", [g.ints([1]), self._steps_1d(), g.ints([1] * len(dims))], axis=0
                )
                v = g.op("Expand", [once, times])
            read.append(v)
        g.at(layer)
        lower = LOWERINGS[layer.kind.name]
        ctx = Context(self.program, g, 2 if step.timed else 1, self._joined_dims(step.sources))
        x = self._arrange(g, layer, step.sources, read)
        p = LayerParams(g, layer)
        if isinstance(lower, Stateful):
            if not step.timed:
                raise cannot(layer, "a recurrent kind needs a sequence")
            value = self._sequence(layer, lower, x, p)
        else:
            value = lower(g, ctx, layer, x, p)
        self.values[layer.name] = g.finish(value, self._name(layer))

    def _sequence(self, layer: Layer, lower: Stateful, x: str, p) -> str:
        """A stateful kind over [B, T, F]: its input projection over every step at once, then a
        Scan over the steps carrying its state, the outputs stacked to [B, T, units]."""
        g = self.g
        x, h0 = (x[None], x.get("state")) if isinstance(x, dict) else (x, None)
        encoder = self.handed.get(layer.name)
        start = self.finals[encoder] if encoder is not None else None  # its final states
        keep = [] if layer.name in self.handed.values() else None  # this one's, when handed on
        if keep is not None:
            self.finals[layer.name] = keep
        if getattr(layer.options, "bidirectional", False):
            return self._both_ways(layer, lower.single, x, p, h0)
        if lower.fused is not None:
            return lower.fused(g, layer, x, p, h0, start, keep)
        xg = lower.project(g, layer, x, p, 3)
        zeros = start or lower.start(g, layer, h0)  # a `state` port's vector, or zeros

        def body(b: Builder, steps: list[str], carried: list[str]):
            b.at(layer)
            out, states = lower.step(b, layer, steps[0], carried, LayerParams(b, layer))
            return states, [out]

        (stacked,) = self._scan(
            layer.name,
            spec_line(layer),
            [
                (z, f"{layer.name}/{state}")
                for z, state in zip(zeros, lower.states_of(layer), strict=True)
            ],
            [(xg, f"{layer.name}/input_at_step", 3)],
            body,
            keep,
        )
        g.at(layer)
        return g.op("Transpose", [stacked], perm=_swap(len(layer.shape.dims) + 2))

    def _both_ways(self, layer: Layer, one: Stateful, x: str, p, h0: str | None) -> str:
        """A bidirectional layer, layer by layer: its cell (ONNX's LSTM or GRU, or a Scan) over
        the sequence, the `_reverse` cell over it reversed (Slice, step -1) and its outputs
        turned back, the two joined per step (Concat), as nn.LSTM(bidirectional=True) does."""
        g = self.g
        units = layer.options.units

        def backwards(v: str) -> str:
            return g.op(
                "Slice",
                [v, g.ints([-1]), g.ints([-(2**63)]), g.ints([1]), g.ints([-1])],
            )

        for suffix in layer_suffixes(layer.options):
            outs = []
            for way in ("", "_reverse"):
                own = _OneLayer(p, layer, suffix + way)
                seq = backwards(x) if way else x
                if one.fused is not None:
                    y = one.fused(g, layer, seq, own, h0)
                else:
                    xg = one.project(g, layer, seq, own, 3)
                    zeros = g.zeros((units,), g)
                    starts = [
                        h0 if h0 is not None and n.startswith("h") else zeros for n in one.states
                    ]

                    def body(b: Builder, steps: list[str], carried: list[str], own=suffix + way):
                        b.at(layer)
                        mine = _OneLayer(LayerParams(b, layer), layer, own)
                        out, states = one.step(b, layer, steps[0], carried, mine)
                        return states, [out]

                    (stacked,) = self._scan(
                        f"{layer.name}{suffix}{way}",
                        spec_line(layer),
                        [
                            (z, f"{layer.name}/{n}{suffix}{way}")
                            for z, n in zip(starts, one.states, strict=True)
                        ],
                        [(xg, f"{layer.name}/input_at_step{suffix}{way}", 3)],
                        body,
                    )
                    g.at(layer)
                    y = g.op("Transpose", [stacked], perm=_swap(3))
                outs.append(backwards(y) if way else y)
            x = g.op("Concat", outs, axis=-1)
        return x

    # ---- loops ---------------------------------------------------------------------------------
    def loop(self, loop: Loop) -> None:
        """The layers of one `~>` cycle as one ONNX Scan over the steps: carried, the previous
        values read inside it and each stateful layer's state; scanned, the timed arrays read at
        each step (or at the step before); stacked, the values read after it."""
        g, program = self.g, self.program
        names = [s.name for s in loop.steps]
        doc = "\n".join(spec_line(s.layer) for s in loop.steps)
        g.at(loop.steps[0].layer, scope="+".join(names), doc=doc)
        scanned: dict[tuple[str, Read], int] = {}  # (source, read) -> its scan input
        # (outer [B, T, ...] value, the name of its step in the body, its rank)
        scan_inputs: list[tuple[str, str, int]] = []
        for step in loop.steps:
            for source in step.sources:
                how = source.read
                if (
                    how in (Read.AT_STEP, Read.SHIFTED_AT_STEP)
                    and (source.name, how) not in scanned
                ):
                    outer = (
                        self._shifted(source.name)
                        if how is Read.SHIFTED_AT_STEP
                        else self.values[source.name]
                    )
                    scanned[(source.name, how)] = len(scan_inputs)
                    at = "previous_step" if how is Read.SHIFTED_AT_STEP else "at_step"
                    rank = len(program.layer(source.name).shape.dims) + 2
                    scan_inputs.append((outer, f"{source.name}/{at}", rank))
        if not scan_inputs:  # a Scan needs one: the first timed input sets the number of steps
            first = next(n for n in program.inputs if program.layer(n).shape.timed)
            rank = len(program.layer(first).shape.dims) + 2
            scan_inputs.append((self.values[first], f"{first}/at_step", rank))
        stateful = [s for s in loop.steps if isinstance(LOWERINGS[s.layer.kind.name], Stateful)]
        initial = [(g.zeros(program.layer(n).shape.dims, g), f"{n}/previous") for n in loop.carried]
        for s in stateful:
            lower = LOWERINGS[s.layer.kind.name]
            h0 = next((self.values[i.name] for i in s.sources if i.port == "state"), None)
            starts = (  # an encoder's final states, a `state` port's vector, or zeros
                self.finals[self.handed[s.name]]
                if s.name in self.handed
                else lower.start(g, s.layer, h0)
            )
            names = lower.states_of(s.layer)
            initial += [(v, f"{s.name}/{n}") for v, n in zip(starts, names, strict=True)]

        def body(b: Builder, steps: list[str], carried: list[str]):
            previous = dict(zip(loop.carried, carried, strict=False))
            states: dict[str, list[str]] = {}
            k = len(loop.carried)
            for s in stateful:
                count = len(LOWERINGS[s.layer.kind.name].states_of(s.layer))
                states[s.name], k = carried[k : k + count], k + count
            current: dict[str, str] = {}
            for step in loop.steps:
                layer = step.layer
                read = []
                for source in step.sources:
                    how = source.read
                    if how is Read.VALUE:
                        read.append(self.values[source.name])
                    elif how is Read.CURRENT:
                        read.append(current[source.name])
                    elif how is Read.PREVIOUS:
                        read.append(previous[source.name])
                    else:
                        read.append(steps[scanned[(source.name, how)]])
                b.at(layer)
                lower = LOWERINGS[layer.kind.name]
                ctx = Context(program, g, 1, self._joined_dims(step.sources))
                x = self._arrange(b, layer, step.sources, read)
                p = LayerParams(b, layer)
                if isinstance(lower, Stateful):
                    x = x[None] if isinstance(x, dict) else x  # its state was read before
                    xg = lower.project(b, layer, x, p, 2)
                    value, states[step.name] = lower.step(b, layer, xg, states[step.name], p)
                else:
                    value = lower(b, ctx, layer, x, p)
                kept = value in states.get(step.name, ())  # the state carried on reads it
                current[step.name] = b.finish(value, f"{layer.name}/step", keep=kept)
            out = [current[n] for n in loop.carried]
            for s in stateful:
                out += states[s.name]
            return out, [current[n] for n in loop.leaving]

        stacked = self._scan("+".join(names), doc, initial, scan_inputs, body)
        for name, value in zip(loop.leaving, stacked, strict=True):
            layer = program.layer(name)
            g.at(layer)
            batch_first = g.op("Transpose", [value], perm=_swap(len(layer.shape.dims) + 2))
            self.values[name] = g.finish(batch_first, self._name(layer))

    def _scan(
        self,
        scope: str,
        doc: str,
        initial: list[tuple[str, str]],
        scan_inputs: list[tuple[str, str, int]],
        body_of,
        finals: list[str] | None = None,
    ) -> list[str]:
        """An ONNX Scan over the steps: `initial` the carried values' first values (with their
        names inside the body), `scan_inputs` [B, T, ...] values (with the names of their steps
        inside the body, and their ranks) cut into steps, `body_of(builder, step_values,
        carried) -> (carried', stacked)`; returns the stacked values time-major, [T, B, ...].
        The Scan runs along axis 0 (the one axis onnx's reference evaluator scans), so its
        inputs are transposed to it here. `finals`, when given, receives the carried values'
        last values."""
        g = self.g
        saved = g.layer
        g.at(saved, scope=scope, doc=doc)
        time_major = [g.op("Transpose", [v], perm=_swap(rank)) for v, _, rank in scan_inputs]
        b = g.child()
        b.at(saved, scope=scope, doc=doc)
        carried_in = [g.names.value(name) for _, name in initial]
        step_in = [g.names.value(name) for _, name, _ in scan_inputs]
        carried_out, stacked = body_of(b, step_in, carried_in)
        b.at(saved, scope=scope, doc=doc)
        # body outputs are values of their own (one value may be carried and stacked both)
        outs = [b.op("Identity", [v]) for v in carried_out + stacked]
        body = helper.make_graph(
            b.nodes,
            f"{scope}/body",
            [
                helper.make_tensor_value_info(v, TensorProto.FLOAT, None)
                for v in carried_in + step_in
            ],
            [helper.make_tensor_value_info(v, TensorProto.FLOAT, None) for v in outs],
        )
        g.at(saved, scope=scope, doc=doc)
        results = g.op(
            "Scan",
            [v for v, _ in initial] + time_major,
            outputs=len(initial) + len(stacked),
            body=body,
            num_scan_inputs=len(scan_inputs),
        )
        results = results if isinstance(results, list) else [results]
        if finals is not None:
            finals += results[: len(initial)]
        return results[len(initial) :]

    # ---- helpers -------------------------------------------------------------------------------
    def _steps_1d(self) -> str:
        """[1] int64: the number of steps (of the first timed input), made once."""
        if self._steps is None:
            g, layer = self.g, self.timed_input
            saved = g.scope, g.doc, g.layer
            g.at(None, scope="steps", doc=f"the number of steps of input '{layer.name}'")
            if layer.shape.steps is not None:
                self._steps = g.ints([layer.shape.steps])
            else:
                self._steps = g.op("Shape", [layer.name], start=1, end=2)
            g.scope, g.doc, g.layer = saved
        return self._steps

    def _shifted(self, name: str) -> str:
        """The timed array of `name` one step later, zeros first: [B, T, ...]."""
        if name not in self.shifted:
            g = self.g
            layer = self.program.layer(name)
            saved = g.scope, g.doc, g.layer
            g.at(layer, scope=f"{name}/shifted")
            v = self.values[name]
            first = g.zeros((1,) + layer.shape.dims, g)
            rest = g.op("Slice", [v, g.ints([0]), g.ints([-1]), g.ints([1])])
            self.shifted[name] = g.op("Concat", [first, rest], axis=1)
            g.scope, g.doc, g.layer = saved
        return self.shifted[name]

    def _joined_dims(self, sources: tuple[Source, ...]) -> tuple[int, ...]:
        """The dims of what enters, fan-in joined along the first source's feature axis."""
        if not sources:
            return ()
        dims = list(self.program.layer(sources[0].name).shape.dims)
        if not dims:
            return ()
        axis = feature_axis(tuple(dims))
        dims[axis] = sum(self.program.layer(s.name).shape.dims[axis] for s in sources)
        return tuple(dims)

    def _arrange(self, b: Builder, layer: Layer, sources: tuple[Source, ...], read: list[str]):
        """What a kind receives: the sources joined along the feature axis, by port, or a list."""
        kind = layer.kind
        if kind.merges:
            return read
        if not kind.ports:
            return self._join(b, sources, read)
        by_port: dict[str, list[tuple[Source, str]]] = {}
        for source, v in zip(sources, read, strict=True):
            by_port.setdefault(source.port or kind.default_port, []).append((source, v))
        return {
            port: self._join(b, tuple(s for s, _ in pairs), [v for _, v in pairs])
            for port, pairs in by_port.items()
        }

    def _join(self, b: Builder, sources: tuple[Source, ...], read: list[str]) -> str:
        if len(read) == 1:
            return read[0]
        axis = feature_axis(self.program.layer(sources[0].name).shape.dims)
        return b.op("Concat", read, axis=axis)


def _swap(rank: int) -> list[int]:
    """The permutation that swaps the batch and time axes of a rank-`rank` array."""
    return [1, 0] + list(range(2, rank))
