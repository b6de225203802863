"""`NumpyRun`: a checked program run with NumPy, forward and backward, by walking its `Plan` once
per call.

    run = to_numpy(program, seed=0, dtype="float32")
    y = run(x)                       # or run(**inputs), run(x1, x2); several outputs: a dict
    grads = run.backward(dL_dy)      # trainable parameter name -> gradient, and each input's

The plan (backends/plan.py) says what runs over whole arrays and what steps through time;
the table in kinds.py says what each kind computes; every primitive records its gradient
(autograd.py), so `backward` walks the recorded nodes back from the outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...program import Layer, Program
from ..init import initial_params
from ..plan import Loop, Read, Source, Step, handed_states, make_plan
from . import ops
from .autograd import Var, add_grad, backward, const
from .kinds import LOWERINGS, Context, Stateful, feature_axis

DTYPES = {"float32": np.float32, "float64": np.float64}


def to_numpy(program: Program, seed: int | None = 0, dtype: str = "float32") -> NumpyRun:
    """The program as a NumPy callable with its own gradients;
    parameters drawn from `seed` (docs/backends.md)."""
    return NumpyRun(program, seed=seed, dtype=dtype)


class NumpyRun:
    """A network in NumPy: `params`, `__call__`, `forward_with_terms`, `backward`, `load`,
    `train`/`eval`."""

    def __init__(self, program: Program, seed: int | None = 0, dtype: str = "float32"):
        name = np.dtype(dtype).name
        if name not in DTYPES:
            raise ValueError(f"dtype must be float32 or float64, not {dtype!r}")
        self.program = program
        self._sparse = tuple(
            layer.name for layer in program.layers if getattr(layer.options, "sparsity", None)
        )
        self.plan = make_plan(program, keep=self._sparse)  # their activations at every step
        self.dtype = np.dtype(name)
        self.params: dict[str, np.ndarray] = initial_params(program, seed, DTYPES[name])
        # its own stream, from the seed
        self.rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        self.training = True
        declared = program.parameters()
        # what the forward never reads takes no gradient (kinds' `unread`: an rbm's visible bias)
        unread = {f"{layer.name}.{key}" for layer in program.layers for key in layer.kind.unread}
        self._trainable = tuple(n for n, p in declared.items() if p.trainable and n not in unread)
        self._keys = {layer.name: tuple(layer.params) for layer in program.layers}
        self._handed = handed_states(program)  # decoder -> the encoder whose state it takes
        self._recorded: _Recorded | None = None
        # layer name -> f(value: Var) -> Var, applied to the layer's value as it is computed
        # (outside loops): a training procedure's change of a value (training/factors.py's clamp)
        self.hooks: dict[str, Any] = {}
        # the class of each example, (B,), that `mask` layers keep while training (the runner
        # sets it for a step; None: the longest capsule, as in evaluation)
        self.labels: np.ndarray | None = None

    # ---- mode and weights ------------------------------------------------------------------
    def train(self, mode: bool = True) -> NumpyRun:
        """Training mode (dropout masks, batch statistics, sampled noise), as `nn.Module.train`."""
        self.training = bool(mode)
        return self

    def eval(self) -> NumpyRun:
        return self.train(False)

    def load(self, state: Mapping[str, Any]) -> None:
        """Copy every parameter and buffer from `state` (name -> array, e.g. a torch
        `state_dict()`), in place."""
        missing = [n for n in self.params if n not in state]
        extra = [n for n in state if n not in self.params]
        if missing or extra:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unexpected {', '.join(extra)}"] if extra else []
            )
            raise ValueError(f"the weights do not fit '{self.program.name}': {'; '.join(parts)}")
        arrays = {n: _as_array(v) for n, v in state.items()}
        for n, a in arrays.items():
            if a.shape != self.params[n].shape:
                raise ValueError(
                    f"'{n}' is {list(a.shape)}, "
                    f"but '{self.program.name}' needs {list(self.params[n].shape)}"
                )
        for n, a in arrays.items():
            np.copyto(self.params[n], a, casting="unsafe")

    # ---- forward ---------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any):
        """The outputs: one array, or a dict by output name (in the order of `output`)."""
        outputs, _ = self.forward_with_terms(*args, **kwargs)
        return outputs

    def forward_with_terms(self, *args: Any, **kwargs: Any):
        """(outputs, terms): terms["kl"] is the KL term summed over `sample` layers (absent without
        them); terms["logits"][name] is an output's value before its final softmax or sigmoid
        (absent without such outputs)."""
        data = _bind(self.program.inputs, args, kwargs)
        leaves, values, steps = self._present(data)
        params = {n: Var(a, n in self._trainable) for n, a in self.params.items()}
        ctx = Context(self.training, self.rng, self.dtype, self.params, [], handed=self._handed)
        ctx.labels = self.labels
        batch = next(iter(leaves.values())).shape[0]
        for item in self.plan.items:
            if isinstance(item, Loop):
                self._loop(item, ctx, values, params, steps, batch)
            elif not item.layer.kind.source:
                values[item.name] = self._step(item, ctx, values, params, steps)
                if item.name in self.hooks:
                    values[item.name] = self.hooks[item.name](values[item.name])
        outputs = {o.name: _reduce(values[o.name], o.reduce) for o in self.plan.outputs}
        logits = {
            o.name: _reduce(ctx.logits[o.name], o.reduce)
            for o in self.plan.outputs
            if o.name in ctx.logits and o.reduce in (None, "last")
        }
        kl = None
        for term in ctx.kl:
            kl = term if kl is None else ops.add(kl, term)
        self._recorded = _Recorded(outputs, logits, kl, leaves, params)
        self._recorded.values = values  # every layer's value, for `activations`
        # the activations of layers with a sparsity= penalty, which the runner adds to the loss
        self._recorded.sparse = {n: values[n] for n in self._sparse}
        arrays = {name: v.value for name, v in outputs.items()}
        result = next(iter(arrays.values())) if len(arrays) == 1 else arrays
        terms = {} if kl is None else {"kl": kl.value[()]}
        if logits:
            terms["logits"] = {name: v.value for name, v in logits.items()}
        if self._recorded.sparse:
            terms["sparse"] = {name: v.value for name, v in self._recorded.sparse.items()}
        return result, terms

    def activations(self, names, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """The values of the layers `names` for these inputs, by name (`[B, ...]`, as the layer
        gives them); a network without `~>` links keeps every layer's value."""
        self.forward_with_terms(*args, **kwargs)
        values = self._recorded.values
        missing = [name for name in names if name not in values]
        if missing:
            raise ValueError(f"no value of {', '.join(missing)} is kept (a layer in a time loop)")
        return {name: values[name].value for name in names}

    def _layer_params(self, layer: Layer, params: dict[str, Var]) -> dict[str, Var]:
        """The layer's parameters by key; a shared one is its owner's `Var` (read transposed
        for a tied layer), so the gradients of every use add up in the owner's."""
        found = {key: params[layer.param_name(key)] for key in self._keys[layer.name]}
        for key, borrowed in layer.borrowed.items():
            if borrowed.transposed:
                found[key] = ops.transpose(found[key], (1, 0))
        return found

    def _step(self, step: Step, ctx: Context, values: dict[str, Var], params, steps: int) -> Var:
        """One layer over whole arrays ([B, T, ...] when timed)."""
        ctx.lead, ctx.in_loop = (2 if step.timed else 1), False
        read = []
        for source in step.sources:
            v = values[source.name]
            if source.read is Read.SHIFTED:
                v = ops.shift_time(v)
            if source.broadcast:
                v = ops.repeat_time(v, steps)
            read.append(v)
        lower = LOWERINGS[step.layer.kind.name]
        x = self._arrange(step.layer, step.sources, read)
        p = self._layer_params(step.layer, params)
        return (
            lower.sequence(ctx, step.layer, x, p)
            if isinstance(lower, Stateful)
            else lower(ctx, step.layer, x, p)
        )

    def _loop(
        self, loop: Loop, ctx: Context, values: dict[str, Var], params, steps: int, batch: int
    ) -> None:
        """The layers of one `~>` cycle, one step at a time;
        the values read after it stacked to [B, T, ...]."""
        ctx.lead, ctx.in_loop = 1, True
        frames = _LoopFrames(
            values,
            lambda name: const(
                np.zeros((batch,) + self.program.layer(name).shape.dims, self.dtype)
            ),
        )
        layer_params = {s.name: self._layer_params(s.layer, params) for s in loop.steps}
        states: dict[
            str, object
        ] = {}  # each stateful layer's own state (h, (h, c), v), None before the first step
        leaving: dict[str, list[Var]] = {name: [] for name in loop.leaving}
        for t in range(steps):
            for step in loop.steps:
                x = self._arrange(
                    step.layer, step.sources, [frames.read(s, t) for s in step.sources]
                )
                lower, p = LOWERINGS[step.layer.kind.name], layer_params[step.name]
                if isinstance(lower, Stateful):
                    frames.current[step.name], states[step.name] = lower.step(
                        ctx, step.layer, x, p, states.get(step.name)
                    )
                else:
                    frames.current[step.name] = lower(ctx, step.layer, x, p)
            for name, stacked in leaving.items():
                stacked.append(frames.current[name])
            frames.next_step()
        for name, stacked in leaving.items():
            values[name] = ops.stack_time(stacked)

    def _arrange(self, layer: Layer, sources: tuple[Source, ...], read: list[Var]):
        """What a kind receives: the sources joined along the feature axis, by port,
        or as a list (merges)."""
        kind = layer.kind
        if kind.merges:
            return read
        if not kind.ports:
            return ops.concat(read, self._feature_axis(sources[0]))
        by_port: dict[str, list[tuple[Source, Var]]] = {}
        for source, v in zip(sources, read, strict=True):
            by_port.setdefault(source.port or kind.default_port, []).append((source, v))
        return {
            port: ops.concat([v for _, v in pairs], self._feature_axis(pairs[0][0]))
            for port, pairs in by_port.items()
        }

    def _feature_axis(self, source: Source) -> int:
        return feature_axis(self.program.layer(source.name).shape.dims)

    # ---- inputs ----------------------------------------------------------------------------
    def _present(self, data: dict[str, Any]) -> tuple[dict[str, Var], dict[str, Var], int]:
        """Each input as given (a leaf that takes a gradient) and shaped as docs/backends.md says;
        the steps T."""
        leaves, values, steps, batch = {}, {}, {}, {}
        for name, raw in data.items():
            layer = self.program.layer(name)
            array = _numeric(raw, name).astype(self.dtype, copy=False)
            dropped, per_step = _match(layer, array.shape)
            leaf = Var(array, True)
            v = ops.reshape(leaf, array.shape + (1,)) if dropped else leaf
            if layer.shape.timed and per_step:
                steps[name] = array.shape[1]
            elif layer.shape.timed:  # one value held for steps=N
                v = ops.repeat_time(v, layer.shape.steps)
                steps[name] = layer.shape.steps
            leaves[name], values[name], batch[name] = leaf, v, array.shape[0]
        _same("batch size (the first axis)", batch)
        _same("number of steps (the second axis)", steps)
        return leaves, values, next(iter(steps.values()), 0)

    # ---- backward --------------------------------------------------------------------------
    def backward(
        self,
        grad_out=None,
        terms: Mapping[str, float] | None = None,
        inputs: bool = True,
        grad_logits: Mapping[str, Any] | None = None,
        grad_sparse: Mapping[str, Any] | None = None,
    ) -> dict[str, np.ndarray]:
        """Gradients of sum(grad_out * outputs) (+ w * kl for terms={"kl": w}), after the forward.

        grad_out: an array shaped as the output, or a dict by output name (missing ones: zero).
        grad_logits: gradients with respect to outputs' logits (`terms["logits"]`), by output name,
        for losses computed from the logits. grad_sparse: gradients with respect to the
        activations of layers with a sparsity= penalty (`terms["sparse"]`), by layer name.
        Returns every trainable parameter's gradient by name
        (frozen ones absent) and each input's, shaped as it was given, under the input's name
        (`inputs=False` skips those).
        """
        recorded = self._recorded
        if recorded is None:
            raise RuntimeError(
                "backward needs a forward pass first: "
                "call the network (run(x)) before run.backward(...)"
            )
        seeds = self._seeds({} if grad_out is None else grad_out, recorded.outputs)
        logit_seeds = self._seeds(grad_logits or {}, recorded.logits, what="logits of output")
        sparse_seeds = self._seeds(grad_sparse or {}, recorded.sparse, what="sparse layer")
        unknown = [key for key in (terms or {}) if key != "kl"]
        if unknown:
            raise ValueError(f"unknown term {unknown[0]!r}: the terms are 'kl'")
        self._recorded = None  # the recorded graph is used once, as PyTorch frees it
        roots = []
        for values, given in (
            (recorded.outputs, seeds),
            (recorded.logits, logit_seeds),
            (recorded.sparse, sparse_seeds),
        ):
            for name, g in given.items():
                add_grad(values[name], g)
                roots.append(values[name])
        for weight in (terms or {}).values():
            # without a sample layer the term is 0, and so is its gradient
            if recorded.kl is not None:
                add_grad(recorded.kl, np.asarray(weight, self.dtype))
                roots.append(recorded.kl)
        if not inputs:
            for leaf in recorded.inputs.values():
                leaf.needs_grad = False
        backward(roots)
        leaves = {n: recorded.params[n] for n in self._trainable} | (
            recorded.inputs if inputs else {}
        )
        given = seeds | logit_seeds | sparse_seeds
        return _handed_out(leaves, {id(g) for g in given.values()})

    def _seeds(self, grads, values: dict[str, Var], what: str = "output") -> dict[str, np.ndarray]:
        """The gradients given for `values` (outputs, or their logits), checked,
        as arrays of the run's dtype."""
        if not isinstance(grads, Mapping):
            if len(values) > 1:
                raise ValueError(
                    f"'{self.program.name}' has outputs {', '.join(values)}: "
                    "give grad_out as a dict by output name"
                )
            grads = {next(iter(values)): grads}
        seeds = {}
        for name, g in grads.items():
            if name not in values:
                raise ValueError(
                    f"no {what} '{name}' in '{self.program.name}'; "
                    f"there are: {', '.join(values) or 'none'}"
                )
            array = np.asarray(g, dtype=self.dtype)
            if array.shape != values[name].shape:
                raise ValueError(
                    f"the gradient of {what} '{name}' must be shaped as it, "
                    f"{list(values[name].shape)}, not {list(array.shape)}"
                )
            seeds[name] = array
        return seeds

    def __repr__(self) -> str:
        mode = "training" if self.training else "eval"
        return (
            f"<NumpyRun {self.program.name}: {len(self.params)} arrays, {self.dtype.name}, {mode}>"
        )


class _LoopFrames:
    """What a layer inside a loop reads at step t (the plan's `Read`): a static value as it is,
    a timed value from outside at t (or t - 1), a value of the loop from this step or the last."""

    def __init__(self, values: dict[str, Var], zeros):
        self.values, self.zeros = values, zeros  # zeros(name): the value before the first step
        self.per_step: dict[
            str, list[Var]
        ] = {}  # timed arrays from outside the loop, cut into steps once
        self.current: dict[str, Var] = {}
        self.previous: dict[str, Var] = {}

    def next_step(self) -> None:
        self.previous, self.current = self.current, {}

    def read(self, source: Source, t: int) -> Var:
        how = source.read
        if how is Read.VALUE:
            return self.values[source.name]
        if how is Read.CURRENT:
            return self.current[source.name]
        if how is Read.PREVIOUS:
            return self.previous[source.name] if t else self.zeros(source.name)
        if how is Read.SHIFTED_AT_STEP and t == 0:
            return self.zeros(source.name)
        if source.name not in self.per_step:
            self.per_step[source.name] = ops.unstack_time(self.values[source.name])
        return self.per_step[source.name][t - 1 if how is Read.SHIFTED_AT_STEP else t]


class _Recorded:
    """What the last forward left for backward: output, logits, KL,
    input and parameter variables."""

    __slots__ = ("outputs", "logits", "kl", "inputs", "params", "sparse", "values")

    def __init__(
        self,
        outputs: dict[str, Var],
        logits: dict[str, Var],
        kl: Var | None,
        inputs: dict[str, Var],
        params: dict[str, Var],
    ):
        self.outputs, self.logits, self.kl, self.inputs, self.params = (
            outputs,
            logits,
            kl,
            inputs,
            params,
        )
        self.sparse: dict[str, Var] = {}


def _reduce(v: Var, reduce: str | None) -> Var:
    if reduce == "last":
        return ops.take(v, (slice(None), -1))
    if reduce == "mean":
        return ops.mean(v, 1)
    return v


def _handed_out(leaves: dict[str, Var], given: set[int]) -> dict[str, np.ndarray]:
    """Each leaf's gradient as an array of its own, zeros where none reached it.

    A leaf's first gradient is kept as the primitive gave it, which may be a read-only view,
    the caller's own `grad_out`, or the same array another leaf got: those are copied.
    """
    grads, taken = {}, set(given)
    for name, leaf in leaves.items():
        g = leaf.grad
        if g is None:
            g = np.zeros(leaf.shape, leaf.value.dtype)
        elif not (leaf.owned or (g.flags.owndata and g.flags.writeable and id(g) not in taken)):
            g = g.copy()
        taken.add(id(g))
        grads[name] = g
    return grads


# ---- binding and checking the inputs ----------------------------------------------------------
def _bind(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict[str, Any]:
    """Positional values in input order, then named ones; every input exactly once."""
    if len(args) > len(names):
        raise TypeError(
            f"the network takes {len(names)} input{'s' * (len(names) != 1)} "
            f"({', '.join(names)}), but {len(args)} were given"
        )
    data = dict(zip(names, args, strict=False))  # fewer values than inputs: the rest by name
    for name, value in kwargs.items():
        if name not in names:
            raise TypeError(f"the network has no input '{name}'; its inputs: {', '.join(names)}")
        if name in data:
            raise TypeError(f"input '{name}' is given twice")
        data[name] = value
    missing = [n for n in names if n not in data]
    if missing:
        raise TypeError(
            f"missing input{'s' * (len(missing) > 1)} {', '.join(repr(m) for m in missing)}"
        )
    return {n: data[n] for n in names}


def _numeric(raw: Any, name: str) -> np.ndarray:
    array = _as_array(raw)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"input '{name}' must hold numbers, not {array.dtype}")
    return array


def _as_array(value: Any) -> np.ndarray:
    """An array from an array-like; a torch tensor is detached first
    (duck-typed: torch is never imported)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _forms(layer: Layer) -> list[tuple[tuple, bool, bool]]:
    """Accepted shapes of an input after the batch: (shape with 'T' for any length, last axis
    dropped, one value per step)."""
    dims, shape = layer.shape.dims, layer.shape
    sizes = [(dims, False)] + ([((), True)] if dims == (1,) else [])
    held = layer.options.steps is not None
    forms = []
    if not shape.timed or held:
        forms += [(d, dropped, False) for d, dropped in sizes]
    if shape.timed:
        time = shape.steps if shape.steps is not None else "T"
        forms += [((time,) + d, dropped, True) for d, dropped in sizes]
    return forms


def _match(layer: Layer, got: tuple[int, ...]) -> tuple[bool, bool]:
    """(last axis dropped, one value per step) for an input array of shape `got`;
    a ValueError if it fits no form."""
    for form, dropped, per_step in _forms(layer):
        if len(got) == 1 + len(form) and all(
            f == "T" or f == g for f, g in zip(form, got[1:], strict=True)
        ):
            if got[0] < 1 or (per_step and got[1] < 1):
                raise ValueError(
                    f"input '{layer.name}' receives an empty array, of shape {list(got)}"
                )
            return dropped, per_step
    wanted = " or ".join(
        "[" + ", ".join(["B"] + [str(f) for f in form]) + "]" for form, _, _ in _forms(layer)
    )
    held = f" (held for {layer.shape.steps} steps)" if layer.options.steps is not None else ""
    raise ValueError(
        f"input '{layer.name}' takes {wanted}{held}, but receives an array of shape {list(got)}"
    )


def _same(what: str, by_input: dict[str, int]) -> None:
    if len(set(by_input.values())) > 1:
        listed = ", ".join(f"'{n}' {v}" for n, v in by_input.items())
        raise ValueError(f"the inputs disagree on the {what}: {listed}")
