"""The learning rules that are not backpropagation, declared once: `perceptron`, `delta`, `hebb`.

A rule's declaration says which layer it trains and how (its documentation), so that the
train-section checker derives E507 from it (`rule_misfit`) before anything trains. Its steps,
one per backend side by side, are in `nnspec/training/rules.py` under the same name (a later
stage: this module imports neither NumPy nor torch). Adding a rule is one `Rule` here and one
`Steps` there; `tests/test_train_section.py` fails, naming the rule and the file, when either
is missing.

A rule trains one layer of its network, its `learner` (by default the one layer with
parameters), and says which networks it fits (`fits`; by default one layer of one of the rule's
`kinds` that goes straight from an input to the output, without time). A rule may see the data
batch by batch (`batches`, the default: every epoch, every batch) or all of it at once (`data`:
least squares, Hopfield storage), which changes the section's defaults to one full batch and one
epoch. Its settings are written `rule = NAME(option=value, ...)` and declared as a pydantic model,
`options` (E510 for what it does not take); the metrics it measures itself (from the
weights and the inputs, not only the outputs) are named in `metrics`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .program import Program


class RuleOptions(BaseModel):
    """A rule's settings, `rule = NAME(option=value, ...)`: a subclass declares each with its
    type and default (a rule without settings keeps this empty model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CountsOptions(RuleOptions):
    """rule = counts(smoothing=A): A added to every transition count before the rows are
    normalised (additive smoothing; 1 is Laplace's rule of succession)."""

    smoothing: float = Field(0.0, ge=0.0, description="added to every count")


class BoltzmannOptions(RuleOptions):
    """rule = boltzmann(temperatures=[8, 4, 2, 1.5], sweeps=10, samples=64): each phase of a
    step (visible units clamped to the data, then free) starts its chains at random, anneals
    them one Gibbs sweep at each temperature, then averages the states of `sweeps` sweeps at
    T = 1 over `samples` chains (Ackley, Hinton and Sejnowski 1985)."""

    temperatures: tuple[Annotated[float, Field(gt=0.0)], ...] = Field(
        (8.0, 4.0, 2.0, 1.5), description="the annealing schedule, one sweep at each"
    )
    sweeps: int = Field(10, ge=1, description="sweeps at T = 1 whose states are averaged")
    samples: int = Field(64, ge=1, description="chains in each phase")


Misfit = tuple[str, str] | None  # why a rule cannot train a network, and what to do instead


class CdOptions(RuleOptions):
    """rule = cd(k=1, persistent=false): k steps of Gibbs sampling per update (CD-k, Hinton
    2002); persistent chains (PCD, Tieleman 2008) go on from one update to the next instead of
    starting at the data."""

    k: int = Field(1, ge=1, description="Gibbs steps per update")
    persistent: bool = Field(False, description="the chains go on from update to update (PCD)")


class PretrainOptions(CdOptions):
    """pretrain = cd(k=1, persistent=false, lr=0.1, epochs=10, batch=10): the stage before
    backpropagation that trains each rbm of the network in turn by contrastive divergence, on
    what the layers before it give (the hidden means of the rbm before)."""

    lr: float = Field(0.1, gt=0.0, description="the CD step size")
    epochs: int = Field(10, ge=1, description="passes over the training data, for each rbm")
    batch: int = Field(10, ge=1, description="examples per update")


class LstsqOptions(RuleOptions):
    """rule = lstsq(ridge=L, washout=N): L * |W|^2 added to the squared error (ridge regression;
    the bias is not penalised); 0 is ordinary least squares (the minimum-norm solution where
    several fit). A readout with a value at every step is fitted on every step of every training
    sequence but its first N (the washout: a reservoir's state still remembers its start)."""

    ridge: float = Field(0.0, ge=0.0, description="the weight penalty, 0 for least squares")
    washout: int = Field(0, ge=0, description="steps left out of the fit at each sequence's start")


Decay = Literal["asymptotic", "inverse", "linear"]


class SomOptions(RuleOptions):
    """rule = som(decay=asymptotic, sigma_decay=asymptotic): how the learning rate and the
    neighbourhood's sigma shrink over the run's steps, as MiniSom's decay functions (asymptotic:
    v / (1 + t / (T / 2)); inverse: to 0, or to 1 for sigma; linear: to 0, or to 1 for sigma)."""

    decay: Decay = Field("asymptotic", description="how the learning rate shrinks")
    sigma_decay: Decay = Field("asymptotic", description="how sigma shrinks")


def som_misfit(program: Program, rule: Rule) -> Misfit:
    """rule = som trains one Kohonen map, the one layer with weights and the output, without
    time; layers before it that hold no weights (flatten) may shape its input."""
    instead = "use rule = backprop"
    learners = [layer for layer in program.layers if layer.params]
    maps = [layer for layer in learners if layer.kind.name == "som"]
    if program.timed:
        return "it steps through time, and the map learns from one vector at a time", instead
    if len(learners) != 1 or not maps:
        names = ", ".join(f"'{layer.name}' ({layer.kind.name})" for layer in learners) or "none"
        return (
            f"rule = som trains one som layer, the only layer with weights, and it has {names}",
            "train a network of one map: input -> som (a flatten between them may shape it)",
        )
    layer = maps[0]
    if [output.name for output in program.outputs] != [layer.name]:
        return (
            f"the map '{layer.name}' must be the network's output",
            f"end the network at '{layer.name}': its one-hot winning unit is the output",
        )
    if not all(p.trainable for p in layer.params.values()):
        return f"the weights of '{layer.name}' are frozen", f"remove frozen from '{layer.name}'"
    return None


@dataclass(frozen=True)
class Rule:
    """A learning rule as the checker and the docs know it.

    name: as a train section writes it (`rule = NAME`).
    doc: who and what, for docs/training.md's table of rules.
    update: what each step adds to the weights W `[units, inputs]`, in the notation of
        docs/training.md: x the input `[batch, inputs]`, z = W x + b the net input and y the
        output `[batch, units]`, t the target `[batch, units]`.
    kinds: the kinds of layer it trains.
    acts: the activations it learns with (None: any).
    needs: why it needs those activations (the start of E507's message).
    instead: E507's hint when the activation does not fit; `{layer}` is the layer's name.
    sees: `batches` (a step per batch) or `data` (one step on all the training data at once).
    options: the settings it takes, `rule = NAME(option=value)`, with their defaults.
    fits: `(program, rule) -> Misfit`: why the rule cannot train `program` (E507), None if it can.
    learner: `program -> name` of the layer the rule moves.
    metrics: the metrics it measures itself (`metrics = [...]`, `expect`), by name.
    """

    name: str
    doc: str
    update: str
    kinds: tuple[str, ...] = ("dense",)
    acts: tuple[str, ...] | None = None
    needs: str = ""
    instead: str = ""
    sees: Literal["batches", "data"] = "batches"
    options: type[RuleOptions] = RuleOptions
    fits: Callable[[Program, Rule], Misfit] = field(default=lambda p, r: one_layer_misfit(p, r))
    learner: Callable[[Program], str] = field(default=lambda p: the_layer_with_weights(p))
    metrics: tuple[str, ...] = ()


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            "perceptron",
            "Rosenblatt: only mistakes move the weights",
            "lr (t - y) x",
            acts=("step",),
            needs="the perceptron rule learns from a thresholded output",
            instead="give '{layer}' act=step, or use rule = delta for a linear unit",
        ),
        Rule(
            "delta",
            "Widrow-Hoff, LMS (ADALINE): the error of the linear net input",
            "lr (t - z) x",
            acts=("identity", "linear", "step"),
            needs="the delta rule learns from a linear unit's net input",
            instead="give '{layer}' act=identity (or step, as ADALINE thresholds its output), "
            "or use rule = backprop",
        ),
        Rule("hebb", "Hebb: the target as the post-synaptic activity", "lr t x"),
        Rule(
            "cd",
            "contrastive divergence (Hinton 2002), persistent with persistent=true (Tieleman "
            "2008): a restricted Boltzmann machine's weights and both biases, with Bernoulli units",
            "lr (<h v^T>_data - <h v^T>_model): the hidden means given the batch times the "
            "batch, minus the hidden means given v~ times v~, v~ the visible units after k steps "
            "of Gibbs sampling; the same without v for b, and v - v~ for the visible bias",
            kinds=("rbm",),
            options=CdOptions,
            fits=lambda program, rule: rbm_misfit(program, rule),
            learner=lambda program: next(
                layer.name for layer in program.layers if layer.kind.name == "rbm"
            ),
            metrics=("reconstruction_error", "pseudo_likelihood"),
        ),
        Rule(
            "som",
            "Kohonen (1982): a self-organising map; each example moves its best-matching unit "
            "and the unit's neighbours on the grid towards it, one example a step (batch = 1)",
            "W[u] += lr(t) h(u, c, sigma(t)) (x - W[u]) for every unit u, c the best-matching "
            "unit, h the layer's gaussian or triangle neighbourhood on the grid (MiniSom's)",
            kinds=("som",),
            options=SomOptions,
            fits=lambda program, rule: som_misfit(program, rule),
            metrics=("quantization_error", "topographic_error"),
        ),
        Rule(
            "lstsq",
            "least squares (Broomhead and Lowe 1988): a linear readout in closed form, on the "
            "activations of fixed layers before it (a radial basis network's Gaussian units)",
            "W, b minimising sum (x W^T + b - t)^2 + ridge sum W^2, solved at once on all the "
            "training data (numpy.linalg.lstsq; the normal equations when ridge > 0); over time, "
            "on every step of every sequence after its first `washout`",
            acts=("identity", "linear"),
            needs="lstsq fits a linear readout",
            instead="give '{layer}' act=identity (a class is then the largest output), "
            "or use rule = backprop",
            sees="data",
            options=LstsqOptions,
            fits=lambda program, rule: readout_misfit(program, rule),
            learner=lambda program: program.outputs[0].name,
        ),
        Rule(
            "boltzmann",
            "Boltzmann machine learning (Ackley, Hinton and Sejnowski 1985): clamped minus free "
            "correlations from Gibbs sampling with annealing",
            "W_ij += lr (<s_i s_j> clamped - <s_i s_j> free) for every linked pair (W stays "
            "symmetric, zero diagonal), b_i += lr (<s_i> clamped - <s_i> free): the visible "
            "units clamped to the batch's rows, then all units free, each phase annealed",
            kinds=("boltzmann",),
            options=BoltzmannOptions,
            metrics=("kl",),
        ),
        Rule(
            "counts",
            "Markov chain: the transition matrix of maximum likelihood, from counted transitions",
            "P = the counts C[i, j] += x_i t_j, each row divided by its sum (after adding "
            "smoothing to every count; a state never seen leaving gets the uniform row)",
            kinds=("markov",),
            sees="data",
            options=CountsOptions,
            metrics=("entropy_rate", "transition_error", "stationary_error"),
        ),
        Rule(
            "hopfield",
            "Hopfield (1982): Hebb's outer products store +1/-1 patterns in a symmetric memory",
            "W = 1/N sum_k t_k t_k^T, zero diagonal: the distinct targets (the clean patterns) "
            "stored at once on all the training data; the cues are recalled, never stored",
            kinds=("hopfield",),
            sees="data",
            metrics=("recall", "bit_error", "overlap"),
        ),
    )
}
BACKPROP = "backprop"  # the default rule: gradients and an optimizer, not an entry here


def rule_names() -> tuple[str, ...]:
    """Every name a section may give `rule`."""
    return (BACKPROP, *RULES)


def rule_metrics() -> tuple[str, ...]:
    """The metrics the rules measure themselves, each once."""
    return tuple(dict.fromkeys(name for rule in RULES.values() for name in rule.metrics))


def rule_misfit(program: Program, rule: Rule) -> Misfit:
    """Why `rule` cannot train `program`, and what to do instead (None: it can)."""
    return rule.fits(program, rule)


def the_layer_with_weights(program: Program) -> str:
    """The one layer with parameters (the learner of a rule that trains a single layer)."""
    return next(layer.name for layer in program.layers if layer.params)


def readout_misfit(program: Program, rule: Rule) -> Misfit:
    """`fits` of a rule that fits one linear readout in closed form: the network's one output is
    a dense layer with an identity activation, whatever fixed layers feed it (the rule moves the
    readout alone; the layers before it keep the weights they start with, or that the data
    places: an rbf's centres). Over time, the readout reads one vector per example or one per
    step (an esn's states, fitted with rule = lstsq(washout=N)), or its outputs averaged over
    time (`output y: mean`: fitted on the states averaged, an lsm's spike rates), never its own
    past outputs."""
    instead = "use rule = backprop"
    looped = [layer.name for layer in program.layers if layer.recurrent]
    if looped:
        return (
            f"'{looped[0]}' steps on a cycle through a ~> link, and {rule.name} fits a readout "
            "to what enters it, which must not depend on the readout",
            "drop the ~> link (nnspec.generate feeds a network's output back as its input), "
            f"or {instead}",
        )
    if len(program.outputs) != 1:
        return f"it has {len(program.outputs)} outputs, and {rule.name} fits one readout", instead
    layer, reduce = program.layer(program.outputs[0].name), program.outputs[0].reduce
    averaged = reduce == "mean" and layer.shape.timed  # fitted on the states averaged over time
    if layer.kind.name != "dense" or (reduce is not None and not averaged):
        return (
            f"{rule.name} fits a dense readout, and the output '{layer.name}' is "
            + (f"a layer of kind {layer.kind.name}" if layer.kind.name != "dense" else "reduced"),
            f"end the network with a dense layer of identity units, or {instead}",
        )
    if layer.borrowed or not all(p.trainable for p in layer.params.values()):
        return (
            f"the weights of the readout '{layer.name}' are frozen or another layer's",
            f"give '{layer.name}' weights of its own to fit, without frozen",
        )
    if layer.activation not in rule.acts:
        return (
            f"{rule.needs}, and '{layer.name}' has act={layer.activation}",
            rule.instead.format(layer=layer.name),
        )
    return None


def rbm_misfit(program: Program, rule: Rule) -> Misfit:
    """`cd`'s `fits`: one rbm, not frozen, the network's only layer with weights (layers without
    weights may come before it, such as a flatten); a readout on it, or a stack of rbms, is
    trained by backpropagation after `pretrain = cd(...)`."""
    stage = "use rule = backprop with pretrain = cd(...), which trains each rbm first"
    learners = [layer for layer in program.layers if layer.params]
    if program.timed:
        return "it steps through time, and rule = cd trains on vectors", "use rule = backprop"
    if not any(layer.kind.name == "rbm" for layer in learners):
        return "rule = cd trains an rbm layer, and it has none", "add one: 'rbm h: 100'"
    if len(learners) != 1:
        names = ", ".join(f"'{layer.name}'" for layer in learners)
        return f"rule = cd trains one rbm and nothing else, and it has {names}", stage
    if not all(p.trainable for p in learners[0].params.values()):
        name = learners[0].name
        return f"the weights of '{name}' are frozen", f"remove frozen from '{name}'"
    return None


def one_layer_misfit(program: Program, rule: Rule) -> Misfit:
    """The default `fits`: one layer of weights, of one of the rule's kinds, straight from an
    input to the output, without time, not frozen, with one of the rule's activations."""
    instead = "use rule = backprop"
    learners = [layer for layer in program.layers if layer.params]
    if program.timed:
        return "it steps through time, and a rule trains one layer of weights without time", instead
    if len(learners) != 1:
        names = ", ".join(f"'{layer.name}'" for layer in learners) or "none"
        return (
            f"a rule trains one layer of weights, and it has {len(learners)} ({names})",
            instead + " for a network of several layers",
        )
    layer, kinds = learners[0], " or ".join(rule.kinds)
    if layer.kind.name not in rule.kinds:
        return (
            f"'{layer.name}' is a {layer.kind.name} layer, and the rules train a {kinds} layer",
            instead,
        )
    if (
        len(layer.inputs) != 1
        or layer.inputs[0].source not in program.inputs
        or [output.name for output in program.outputs] != [layer.name]
    ):
        return (
            f"the rules train a {kinds} layer that goes straight from an input to the output, "
            f"and '{layer.name}' does not",
            instead,
        )
    if not all(p.trainable for p in layer.params.values()):
        return f"the weights of '{layer.name}' are frozen", f"remove frozen from '{layer.name}'"
    if rule.acts is not None and layer.activation not in rule.acts:
        return (
            f"{rule.needs}, and '{layer.name}' has act={layer.activation}",
            rule.instead.format(layer=layer.name),
        )
    return None
