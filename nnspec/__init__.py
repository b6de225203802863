"""nnspec: neural networks written as small declarative .nn files.

The public interface, in full:

    model = nnspec.load("model.nn")     # parse + check; raises nnspec.SpecError
    model = nnspec.loads(text)          # the same from a string
    models = nnspec.load_all("zoo.nn")  # every network of a file, in file order
    print(model.summary())              # layer, kind, output shape, parameters; totals
    result = nnspec.train("model.nn", backend="torch", out="runs/xor")   # metrics, paths, expects
    P = nnspec.transition_matrix(model, "runs/oz/weights.safetensors")  # a markov layer's chain
    nnspec.stationary(P), nnspec.sample_states(P, 100, seed=0)          # and what it implies

Everything nnspec raises at its users is an `nnspec.NnspecError` (code, message, hint); a
mistake in a spec is its subclass `nnspec.SpecError`, which also says where.
"""

import os

from .errors import NnspecError, SpecError
from .kinds import Shape
from .model import Model, load, load_all, loads
from .program import Program
from .version import __version__


def train(path, backend=None, out=None, **options):
    """Train the network of the spec at `path` by its train section; see nnspec.training.train."""
    from .training import train as run

    return run(path, backend, out, **options)


# The chain's functions import the data stage when first called, so `import nnspec` stays quick.
def stationary(P):
    """The stationary distribution `[S]` of the transition matrix `P` `[S, S]` (R365 when the
    chain has several, R366 when P is no chain); nnspec.data.markov.stationary."""
    from .data import markov

    return markov.stationary(P)


def entropy_rate(P) -> float:
    """The entropy rate of the chain `P` in nats per transition; nnspec.data.markov."""
    from .data import markov

    return markov.entropy_rate(P)


def sample_states(P, steps: int, seed=0, start=None):
    """`steps` states (int64) run from the chain `P`, the first drawn from the stationary
    distribution (or `start`: a state or a distribution); nnspec.data.markov.sample_states."""
    from .data import markov

    return markov.sample_states(P, steps, seed, start)


def transition_matrix(model, weights=None, layer: str | None = None):
    """The transition matrix `[S, S]` of the markov layer of `model` (a `Model`, or the path of
    its spec), with the parameters of `weights` (a weights file such as
    runs/<network>/weights.safetensors, or a dict of arrays by name; None: the spec's own, its
    `transition=` or the uniform chain); `layer` names the layer when there are several. See
    docs/training.md, "Markov chains"."""
    from .backends.init import initial_params
    from .backends.weights import read_weights
    from .data.markov import transition_of

    if isinstance(model, str | os.PathLike):
        model = load(model)
    if weights is None:
        params = initial_params(model.program)
    elif isinstance(weights, str | os.PathLike):
        params = read_weights(weights, model.program)
    else:
        params = dict(weights)
    return transition_of(model.program, params, layer)


__all__ = [
    "Model",
    "NnspecError",
    "Program",
    "Shape",
    "SpecError",
    "__version__",
    "entropy_rate",
    "load",
    "load_all",
    "loads",
    "sample_states",
    "stationary",
    "train",
    "transition_matrix",
]
