"""nnspec: neural networks written as small declarative .nn files.

The public interface, in full:

    model = nnspec.load("model.nn")     # parse + check; raises nnspec.SpecError
    model = nnspec.loads(text)          # the same from a string
    print(model.summary())              # layer, kind, output shape, parameters; totals
"""

from .check import Program
from .errors import SpecError
from .kinds import Shape
from .model import Model, load, loads

__version__ = "0.1.0"

__all__ = ["Model", "Program", "Shape", "SpecError", "__version__", "load", "loads"]
