"""The steps of the learning rules without gradients, one entry per rule of `nnspec/rules.py`.

The network is one layer fed by its input (the train-section checker makes sure of it, from the
rule's declaration). With x the input, z = W x + b the layer's net input, y its output and t the
target, a batch adds

    perceptron (Rosenblatt):    lr * (t - y) x     y = step(z), so only mistakes move the weights
    delta (Widrow-Hoff, LMS):   lr * (t - z) x     the net input, before any threshold (ADALINE)
    hebb:                       lr * t x           the target as the post-synaptic activity

to W (and the same without x to b), summed over the batch's examples. The backend's runner
computes the outputs, the loss and the metrics; the rule only moves the weights.

Each rule's `Steps` hold its update per backend, side by side: `numpy` on NumPy arrays, and
`torch` on torch tensors, or `NUMPY` where the NumPy update is right for PyTorch as it is (the
runner hands it NumPy copies of the weights and adds the result back: `weights()`, `add_to()`).
A rule that sees all the data at once (`sees = "data"` in its declaration: least squares,
Hopfield storage) has the same kind of step, given the whole training data as one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..data import markov
from ..program import Layer, Program
from ..rules import RULES, RuleOptions
from ..train_section import TrainConfig
from . import boltzmann
from .contrastive import cd_step, pseudo_likelihood, reconstruction_error
from .hopfield import MEASURES as HOPFIELD_MEASURES
from .hopfield import store
from .readout import least_squares
from .som import batch_quantization_error, batch_topographic_error, som_step


@dataclass(frozen=True)
class Batch:
    """What a step sees, as one backend's arrays (NumPy's or torch's).

    x: the learner's input `[batch, inputs]` (computed by the layers before it, when an input
    does not feed it directly); t: the target, one value per unit `[batch, units]`; y: the
    network's output `[batch, units]`; w: the learner's weight `[units, inputs]`; b: its bias
    `[units]` (None without one); params: every parameter of the learner by key (`weight`,
    `bias`, `visible_bias`, ...); layer: the learner as the program declares it (its options);
    options: the rule's settings (`rule = NAME(option=value)`, defaults filled in); rng: this
    step's random numbers, `default_rng([seed, step])`, the same draws on either backend; step,
    steps: this step's index from 0 and the run's number of steps (epochs times batches), for
    schedules that decay; state: NumPy arrays the rule keeps from step to step (persistent
    chains), saved in checkpoints and restored on resume. A step may put new arrays into it.
    """

    x: Any
    t: Any
    y: Any
    w: Any
    b: Any
    params: dict[str, Any] = field(default_factory=dict)
    layer: Layer | None = None
    options: RuleOptions = RuleOptions()
    rng: np.random.Generator | None = None
    step: int = 0
    steps: int = 1
    state: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def z(self):
        """The net input W x + b `[batch, units]`."""
        return self.x @ self.w.T + (0 if self.b is None else self.b)


# A step: (batch, lr) -> what to add to the learner's parameters, by key ("weight", "bias").
Step = Callable[[Batch, float], dict[str, Any]]
NUMPY = "numpy"  # in `Steps.torch`: the NumPy step serves PyTorch too
ARRAYS = ("x", "t", "y", "w", "b")  # the fields of a `Batch` that are one backend's arrays


@dataclass(frozen=True)
class Steps:
    """A rule's update on each backend, and what it measures itself.

    loss: `batch -> float`, the loss the rule reports instead of the section's (a
    reconstruction or quantization error; None: the section's loss of the outputs), given a
    batch as it trains and, to evaluate, a whole part as one batch. measures: its own metrics by
    name (the rule's `metrics`), each `batch -> float` on a whole part.
    """

    numpy: Step
    torch: Step | Literal["numpy"]
    loss: Callable[[Batch], float] | None = None
    measures: dict[str, Callable[[Batch], float]] = field(default_factory=dict)


def _moved_by(signal: Callable[[Batch], Any]) -> Step:
    """An error-correcting step: lr * signal^T x to W, lr * the signal summed to b.

    `signal(batch)`: `[batch, units]`; NumPy and torch spell `.T`, `@` and `.sum(0)` alike.
    """

    def step(batch: Batch, lr: float) -> dict[str, Any]:
        s = signal(batch)
        deltas = {"weight": lr * s.T @ batch.x}
        if batch.b is not None:
            deltas["bias"] = lr * s.sum(0)
        return deltas

    return step


# ---- counts: a Markov chain's transitions, counted -------------------------------------------
def _counted(batch: Batch, lr: float) -> dict[str, Any]:
    """The chain of maximum likelihood: C += x^T t (the one-hot current and next states of each
    transition: C[i, j] counts j after i), kept in the rule's state across batches and epochs,
    then P = normalised(C, smoothing); the step adds P - P_old. `lr` is not read: counting has no
    step size."""
    x = _current(batch)
    _states(batch.t, "next state")
    counts = batch.state.get("counts", 0.0) + x.T @ np.asarray(batch.t, np.float64)
    batch.state["counts"] = counts
    old = batch.params["transition"]
    new = markov.normalised(counts, batch.options.smoothing)
    return {"transition": (new - old).astype(old.dtype)}


def _current(batch: Batch) -> np.ndarray:
    """The current states `[batch, states]` (float64), checked (R368): the rows as they come, or
    with `index` the one-hot rows of the state numbers `[batch, 1]`."""
    x = np.asarray(batch.x, np.float64)
    if batch.layer is None or not batch.layer.options.index:
        _states(x, "state")
        return x
    count = batch.layer.options.states
    numbers = x[:, 0]
    bad = (numbers != np.round(numbers)) | (numbers < 0) | (numbers >= count)
    if bad.any():
        raise markov.ChainError(
            "R368",
            f"rule = counts counts transitions between states, but a training example's state "
            f"number is {numbers[bad][0]:g}, and the chain's states are 0 to {count - 1}",
            "number the states 0, 1, 2, ... in the data",
        )
    return np.eye(count)[numbers.astype(np.int64)]


def _states(rows: np.ndarray, what: str) -> None:
    """Each row is a state as a distribution over the chain's states (one-hot for a known
    state): R368 otherwise, before anything is counted."""
    rows = np.asarray(rows, np.float64)
    bad = ~np.isfinite(rows).all(1) | (rows < 0).any(1) | (np.abs(rows.sum(1) - 1) > 1e-5)
    if bad.any():
        row = rows[int(np.argmax(bad))].tolist()
        raise markov.ChainError(
            "R368",
            f"rule = counts counts transitions between states, but a training example's {what} "
            f"is {row}, not a distribution over the chain's states",
            "give the chain one-hot states and the next state as the class (data = weather), "
            "or train this network by another rule",
        )


def _next_state_nll(batch: Batch) -> float:
    """The mean negative log-likelihood of the next states, nats per transition: -mean log
    (x P)[next] (a probability of 0 counts as 1e-12)."""
    picked = (np.asarray(batch.y, np.float64) * batch.t).sum(1)
    return float(-np.log(np.maximum(picked, 1e-12)).mean())


def _entropy_rate(batch: Batch) -> float:
    """The learned chain's entropy rate (nats per transition; data.markov.entropy_rate)."""
    return markov.entropy_rate(batch.params["transition"])


def _transition_error(batch: Batch) -> float:
    """The largest difference between the learned P and the transition frequencies counted on
    the part measured (its rows normalised, without smoothing; rows of states it never leaves
    are left out)."""
    counts = _current(batch).T @ np.asarray(batch.t, np.float64)
    seen = counts.sum(1) > 0
    counted = markov.normalised(counts)
    return float(np.abs(batch.params["transition"] - counted)[seen].max(initial=0.0))


def _stationary_error(batch: Batch) -> float:
    """The largest difference between the learned chain's stationary distribution and how often
    the part measured is in each state (a long run of a chain visits each state as often as its
    stationary probability)."""
    visits = _current(batch).mean(0)
    return float(np.abs(markov.stationary(batch.params["transition"]) - visits).max())


STEPS: dict[str, Steps] = {
    "perceptron": Steps(numpy=_moved_by(lambda b: b.t - b.y), torch=NUMPY),
    "delta": Steps(numpy=_moved_by(lambda b: b.t - b.z), torch=NUMPY),
    "hebb": Steps(numpy=_moved_by(lambda b: b.t), torch=NUMPY),
    "cd": Steps(
        numpy=cd_step,
        torch=NUMPY,  # one NumPy step and one generator for both: the same draws, the same update
        loss=reconstruction_error,
        measures={
            "reconstruction_error": reconstruction_error,
            "pseudo_likelihood": pseudo_likelihood,
        },
    ),
    "som": Steps(
        numpy=som_step,
        torch=NUMPY,  # the same update of the same weights on either backend
        loss=batch_quantization_error,
        measures={
            "quantization_error": batch_quantization_error,
            "topographic_error": batch_topographic_error,
        },
    ),
    "lstsq": Steps(numpy=least_squares, torch=NUMPY),
    "boltzmann": Steps(numpy=boltzmann.step, torch=NUMPY, measures={"kl": boltzmann.kl}),
    "counts": Steps(
        numpy=_counted,
        torch=NUMPY,
        loss=_next_state_nll,
        measures={
            "entropy_rate": _entropy_rate,
            "transition_error": _transition_error,
            "stationary_error": _stationary_error,
        },
    ),
    "hopfield": Steps(numpy=store, torch=NUMPY, measures=HOPFIELD_MEASURES),
}


class RuleRunner:
    """A backend runner whose weights move by a learning rule instead of an optimizer.

    The rule's learner is one layer; its input is an input of the network, or what the layers
    before it compute (with the weights as they are, in evaluation mode, on NumPy for either
    backend: `_learner_input`). The runner counts its steps (`Batch.step`) and keeps the rule's
    `state`, both in its checkpoints."""

    def __init__(self, inner, config: TrainConfig, program: Program):
        rule = RULES[config.rule]
        layer = program.layer(rule.learner(program))
        self.inner, self.rule, self.backend = inner, config.rule, inner.backend
        self.program, self.layer, self.keys = program, layer.name, tuple(layer.params)
        self.declared, self.options, self.seed = layer, config.rule_settings, config.seed
        self.sources = tuple(link.source for link in layer.inputs)
        self.direct = len(self.sources) == 1 and self.sources[0] in program.inputs
        # a readout with a value at every step: [n, T, ...]; or its output averaged over time
        # (`output y: mean`), fitted on what enters it averaged over the steps after the washout
        self.averaged = layer.shape.timed and program.outputs[0].reduce == "mean"
        self.per_step = layer.shape.timed and not self.averaged
        self.shadow = None  # the NumPy network that computes an indirect input (_learner_input)
        self.count, self.steps = 0, 1
        self.state: dict[str, np.ndarray] = {}
        self.steps_of = steps = STEPS[config.rule]
        self.sees_data = rule.sees == "data"
        self.update = (
            steps.numpy if self.backend == "numpy" or steps.torch == NUMPY else _on_tensors(steps)
        )

    def plan_steps(self, total: int) -> None:
        """The run's number of steps (the loop tells it before the first)."""
        self.steps = max(1, int(total))

    def step(
        self, inputs: dict[str, np.ndarray], target: np.ndarray, mask: np.ndarray | None, lr: float
    ) -> tuple[float, np.ndarray]:
        loss, y = self.inner.evaluate(inputs, target, mask)
        batch = self._batch(inputs, target, y, self.count)
        if self.steps_of.loss is not None:
            loss = float(self.steps_of.loss(batch))
        deltas = self.update(batch, lr)
        self.inner.add_to({f"{self.layer}.{name}": delta for name, delta in deltas.items()})
        self.count += 1
        if self.sees_data:  # one step fits the whole data: its training figures are the fit's
            return self.evaluate(inputs, target, mask)
        return loss, y

    def evaluate(
        self, inputs: dict[str, np.ndarray], target: np.ndarray, mask: np.ndarray | None
    ) -> tuple[float, np.ndarray]:
        """The loss and the outputs on a part: the rule's own loss, when it has one."""
        loss, y = self.inner.evaluate(inputs, target, self.washed(inputs, mask))
        if self.steps_of.loss is None:
            return loss, y
        return float(self.steps_of.loss(self._batch(inputs, target, y, self.count))), y

    def washed(self, inputs: dict[str, np.ndarray], mask: np.ndarray | None) -> np.ndarray | None:
        """`mask` without the first `washout` steps of every sequence (`[n, T]`), for a readout
        fitted with a washout: they are not scored either (a reservoir's state still remembers its
        start there). As it is without one."""
        washout = getattr(self.options, "washout", 0)
        if not washout or not self.per_step:
            return mask
        count, steps = next(iter(inputs.values())).shape[:2]
        kept = np.arange(steps)[None, :] >= washout
        return np.broadcast_to(kept, (count, steps)) & (True if mask is None else mask)

    def own_measure(self, name: str, inputs: dict[str, np.ndarray], target) -> float | None:
        """The rule's metric `name` on a whole part (None: the rule does not measure it)."""
        measure = self.steps_of.measures.get(name)
        if measure is None:
            return None
        _, y = self.inner.evaluate(inputs, target, None)
        return float(measure(self._batch(inputs, target, y, self.count)))

    def _batch(self, inputs, target, y, step: int) -> Batch:
        weights = self.inner.weights()
        params = {key: weights[f"{self.layer}.{key}"] for key in self.keys}
        w = params.get("weight")
        dtype = w.dtype if w is not None else np.float32
        x = self._learner_input(inputs, weights).astype(dtype)
        units = w.shape[0] if w is not None and w.ndim == 2 else int(np.prod(y.shape[1:]))
        t = None if target is None else _as_units(target, units, self.per_step).astype(dtype)
        return Batch(
            x,
            t,
            y.reshape(len(x), -1) if t is None or y.size != t.size else y.reshape(t.shape),
            w,
            params.get("bias"),
            params=params,
            layer=self.declared,
            options=self.options,
            rng=np.random.default_rng([self.seed, step]),
            step=step,
            steps=self.steps,
            state=self.state,
        )

    def _learner_input(self, inputs: dict[str, np.ndarray], weights) -> np.ndarray:
        """What enters the learner `[batch, inputs]`: its input, or the values of the layers that
        feed it (joined along features), from a NumPy copy of the network in evaluation mode."""
        timed = self.per_step or self.averaged
        if self.direct:
            x = inputs[self.sources[0]]
            x = x if timed else x.reshape(len(x), -1)
        else:
            if self.shadow is None:
                from ..backends.numpy import to_numpy

                dtype = next(iter(weights.values())).dtype if weights else np.float32
                self.shadow = to_numpy(self.program, seed=self.seed, dtype=np.dtype(dtype).name)
            self.shadow.load(weights)
            x = entering(self.shadow.eval(), self.sources, inputs, timed)
        if self.averaged and x.ndim == 3:
            return x[:, getattr(self.options, "washout", 0) :].mean(1)
        return x

    def checkpoint(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, meta = self.inner.checkpoint()
        arrays.update({f"rule.{key}": value for key, value in self.state.items()})
        return arrays, {**meta, "rule_step": self.count}

    def restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        self.state = {
            k.removeprefix("rule."): v for k, v in arrays.items() if k.startswith("rule.")
        }
        self.count = int(meta.get("rule_step", 0))
        self.inner.restore(
            {k: v for k, v in arrays.items() if not k.startswith("rule.")},
            {k: v for k, v in meta.items() if k != "rule_step"},
        )

    def __getattr__(self, name: str):  # predict, weights, set_weights, add_to
        return getattr(self.inner, name)


def entering(run, sources, inputs: dict[str, np.ndarray], per_step: bool = False) -> np.ndarray:
    """What enters a layer fed by `sources`, `[batch, features]`: their values on `inputs`, each
    flattened per example, joined along features (`run`: a `NumpyRun` with the weights to use);
    `per_step`: a vector per step `[batch, T, features]`, joined along features."""
    values = run.activations(sources, **inputs)
    if per_step:
        return np.concatenate([values[name] for name in sources], -1)
    return np.concatenate([values[name].reshape(len(values[name]), -1) for name in sources], 1)


def _on_tensors(steps: Steps) -> Step:
    """The rule's torch step, given the batch as tensors; its deltas back as NumPy arrays."""
    import torch

    def step(batch: Batch, lr: float) -> dict[str, np.ndarray]:
        def tensor(a):
            return None if a is None else torch.from_numpy(a)

        tensors = replace(
            batch,
            **{name: tensor(getattr(batch, name)) for name in ARRAYS},
            params={key: tensor(value) for key, value in batch.params.items()},
        )
        return {name: delta.numpy() for name, delta in steps.torch(tensors, lr).items()}

    return step


def _as_units(target: np.ndarray, units: int, per_step: bool = False) -> np.ndarray:
    """Targets as one value per output unit: class indices become one-hot rows (one unit: the
    index itself); `per_step`: `[batch, T, units]`, a row per step."""
    if per_step:
        if target.dtype.kind in "iu" and units > 1:
            return np.eye(units)[target.reshape(len(target), -1)]
        return target.reshape(len(target), target.shape[1], -1)
    if target.dtype.kind in "iu":
        return (
            target.reshape(-1, 1).astype(float) if units == 1 else np.eye(units)[target.reshape(-1)]
        )
    return target.reshape(len(target), -1)
