"""A network run free: its output at each step fed back as its next input (an echo state
network generating a series after a warm-up on it; Jaeger 2001's output feedback).

The NumPy run steps every layer one step at a time, as it steps the layers of a `~>` loop (each
stateful kind's `step`, the rest on one `[B, ...]` step), in the plan's order, keeping each
stateful layer's state from step to step: first through the warm-up sequence, then on its own
outputs. `nnspec.generate` is its public face.
"""

from __future__ import annotations

import numpy as np

from ...errors import NnspecError
from ...program import Program
from ..plan import Loop, Read, make_plan
from .autograd import Var, const
from .kinds import LOWERINGS, Context, Stateful

DELAYED = (Read.SHIFTED, Read.SHIFTED_AT_STEP, Read.PREVIOUS)  # a `~>` link: the previous step


def free_run(run, warmup: np.ndarray, steps: int) -> np.ndarray:
    """The `steps` values `[B, steps, F]` that follow `warmup` `[B, T, F]` (T >= 1): the first is
    the network's output after the last warm-up step (its forecast of the next value), each next
    one its output when given the one before as input. `run`: a `NumpyRun` with its weights."""
    program = run.program
    check_free(program)
    stepper = _Stepper(run)
    y = None
    for t in range(warmup.shape[1]):
        y = stepper.step(warmup[:, t].astype(run.dtype))
    generated = []
    for _ in range(steps):
        generated.append(y)
        y = stepper.step(y)
    return np.stack(generated, 1) if generated else np.zeros(warmup.shape[:1] + (0,) + y.shape[1:])


def check_free(program: Program) -> None:
    """R382 unless `program` can run free: one input with a vector per step, one output of the
    same size per step (not reduced), and no layer that sees a whole sequence at once."""
    inputs, outputs = program.inputs, program.outputs
    why = None
    if len(inputs) != 1 or len(outputs) != 1:
        why = f"it has {len(inputs)} inputs and {len(outputs)} outputs, and it needs one of each"
    else:
        x, y = program.layer(inputs[0]), program.layer(outputs[0].name)
        whole = [layer.name for layer in program.layers if layer.kind.whole_sequence]
        if not x.shape.timed or x.options.steps is not None:
            why = f"its input '{x.name}' is not a sequence given step by step ('seq')"
        elif outputs[0].reduce is not None or not y.shape.timed or y.shape.dims != x.shape.dims:
            why = (
                f"its output '{y.name}' is {y.shape}, and its next input must be {x.shape} (a "
                "value per step, not reduced, as wide as the input)"
            )
        elif whole:
            why = f"'{whole[0]}' ({program.layer(whole[0]).kind.name}) sees the whole sequence"
    if why:
        raise NnspecError(
            "R382",
            f"network '{program.name}' cannot run free, its output fed back as its next input: "
            f"{why}",
            "give it one 'seq' input and one output of the input's size at every step, as an "
            "echo state network forecasting its series one step ahead (specs/esn.nn)",
        )


class _Stepper:
    """Every layer of a run, one step at a time, with each stateful layer's state kept."""

    def __init__(self, run):
        self.run, self.program = run, run.program
        plan = make_plan(run.program)
        self.order = [
            step
            for item in plan.items
            for step in (item.steps if isinstance(item, Loop) else (item,))
            if not step.layer.kind.source
        ]
        self.ctx = Context(False, run.rng, run.dtype, run.params, [], lead=1, in_loop=True)
        params = {name: Var(array, False) for name, array in run.params.items()}
        self.params = {s.name: run._layer_params(s.layer, params) for s in self.order}
        self.states: dict[str, object] = {}
        self.previous: dict[str, Var] = {}
        self.output = run.program.outputs[0].name

    def step(self, x: np.ndarray) -> np.ndarray:
        """The network's output `[B, F]` for the input `x` `[B, F]` at the next step."""
        current = {self.program.inputs[0]: const(x)}
        for step in self.order:
            read = [
                self._previous(s.name, len(x)) if s.read in DELAYED else current[s.name]
                for s in step.sources
            ]
            layer, lower = step.layer, LOWERINGS[step.layer.kind.name]
            value = self.run._arrange(layer, step.sources, read)
            p = self.params[step.name]
            if isinstance(lower, Stateful):
                current[step.name], self.states[step.name] = lower.step(
                    self.ctx, layer, value, p, self.states.get(step.name)
                )
            else:
                current[step.name] = lower(self.ctx, layer, value, p)
        self.previous = current
        return current[self.output].value

    def _previous(self, name: str, batch: int) -> Var:
        """A layer's value at the step before (zeros before the first), for a `~>` link."""
        if name in self.previous:
            return self.previous[name]
        dims = self.program.layer(name).shape.dims
        return const(np.zeros((batch,) + dims, self.run.dtype))
