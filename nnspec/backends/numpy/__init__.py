"""The NumPy backend: a checked program run with NumPy, with its own reverse-mode gradients.

No torch anywhere on this path. `to_numpy(program, seed=0, dtype="float32")` returns a
`NumpyRun` (run.py); the kinds are lowered in kinds.py from the primitives of ops.py,
activations.py, image.py and cells.py, whose gradients autograd.py walks back.
See docs/numpy.md.
"""

from .run import NumpyRun, to_numpy

__all__ = ["NumpyRun", "to_numpy"]
