"""nnspec: neural networks written as small declarative .nn files.

The public interface, in full:

    model = nnspec.load("model.nn")     # parse + check; raises nnspec.SpecError
    model = nnspec.loads(text)          # the same from a string
    models = nnspec.load_all("zoo.nn")  # every network of a file, in file order
    print(model.summary())              # layer, kind, output shape, parameters; totals
    result = nnspec.train("model.nn", backend="torch", out="runs/xor")   # metrics, paths, expects

Everything nnspec raises at its users is an `nnspec.NnspecError` (code, message, hint); a
mistake in a spec is its subclass `nnspec.SpecError`, which also says where.
"""

from .errors import NnspecError, SpecError
from .kinds import Shape
from .model import Model, load, load_all, loads
from .program import Program
from .version import __version__


def train(path, backend=None, out=None, **options):
    """Train the network of the spec at `path` by its train section; see nnspec.training.train."""
    from .training import train as run

    return run(path, backend, out, **options)


__all__ = [
    "Model",
    "NnspecError",
    "Program",
    "Shape",
    "SpecError",
    "__version__",
    "load",
    "load_all",
    "loads",
    "train",
]
