"""nnspec: neural networks written as small declarative .nn files.

The public interface, in full:

    model = nnspec.load("model.nn")     # parse + check; raises nnspec.SpecError
    model = nnspec.loads(text)          # the same from a string
    models = nnspec.load_all("zoo.nn")  # every network of a file, in file order
    print(model.summary())              # layer, kind, output shape, parameters; totals
    result = nnspec.train("model.nn", backend="torch", out="runs/xor")   # metrics, paths, expects
    P = nnspec.transition_matrix(model, "runs/oz/weights.safetensors")  # a markov layer's chain
    nnspec.stationary(P), nnspec.sample_states(P, 100, seed=0)          # and what it implies
    series = nnspec.generate(model, "runs/esn/weights.safetensors", warmup, steps=500)  # run free

Everything nnspec raises at its users is an `nnspec.NnspecError` (code, message, hint); a
mistake in a spec is its subclass `nnspec.SpecError`, which also says where.
"""

import os

from .collector import collector_paused

with collector_paused(age=True):  # nnspec.collector: what importing builds lives long
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


def generate(model, weights=None, warmup=(), steps: int = 100):
    """The network run free for `steps` steps after a warm-up: `warmup` `[T, F]` (`[T]` for one
    feature, `[B, T, F]` for several sequences) drives it step by step, then each output is fed
    back as its next input (output feedback, Jaeger 2001). Returns `[steps, F]` (`[B, steps, F]`
    for a batch): the forecast after the last warm-up step, then its forecasts of its own
    forecasts. `model` is a `Model` or the path of its spec, `weights` a weights file (a trained
    run's weights.safetensors) or a dict of arrays by name (None: the spec's own start); float64
    NumPy. R382 when the network cannot run free, R383 for a warm-up that does not fit it."""
    import numpy as np

    from .backends.numpy.free_run import check_free, free_run
    from .backends.weights import read_weights

    if isinstance(model, str | os.PathLike):
        model = load(model)
    check_free(model.program)
    run = model.to_numpy(dtype="float64").eval()
    if isinstance(weights, str | os.PathLike):
        run.load(read_weights(weights, model.program))
    elif weights is not None:
        run.load(dict(weights))
    series = np.asarray(warmup, dtype=np.float64)
    features = model.program.layer(model.program.inputs[0]).shape.dims
    single = series.ndim < 3
    if series.ndim == 1 and features == (1,):
        series = series[:, None]
    series = series[None] if single else series
    if series.ndim != 3 or series.shape[1] < 1 or series.shape[2:] != features:
        raise NnspecError(
            "R383",
            f"the warm-up of network '{model.program.name}' is {list(np.shape(warmup))}, and it "
            f"takes [T, {features[0]}] (or [B, T, {features[0]}]) with T >= 1",
            "give it the series to run on before it runs free, a row per step",
        )
    generated = free_run(run, series, int(steps))
    return generated[0] if single else generated


__all__ = [
    "Model",
    "NnspecError",
    "Program",
    "Shape",
    "SpecError",
    "__version__",
    "entropy_rate",
    "generate",
    "load",
    "load_all",
    "loads",
    "sample_states",
    "stationary",
    "train",
    "transition_matrix",
]
