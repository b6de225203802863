"""The Python interface's arguments, checked at its door (R339): a value out of range or of the
wrong kind is named here, before anything is read or written, rather than failing deep inside a
run, a lowering or a file with an exception that says nothing of nnspec.

    whole("batch", batch, least=1)
    one_of("target", target, ("torch", "numpy", "onnx"))
    flag("overwrite", overwrite)
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from .errors import NnspecError

HINT = "give a value in range, or leave the argument out for its default"


def refuse(message: str, hint: str | None = None) -> None:
    raise NnspecError("R339", message, hint or HINT)


def whole(name: str, value, least: int, hint: str | None = None) -> None:
    """R339 unless `value` is None or a whole number (not a bool; a NumPy integer will do) of
    `least` or more."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least
    ):
        refuse(f"{name} must be a whole number of {least} or more, not {value!r}", hint)


def number(name: str, value, above: float, most: float, hint: str | None = None) -> None:
    """R339 unless `value` is None or a real number (not a bool) above `above`, `most` at most."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, numbers.Real) or not above < value <= most
    ):
        refuse(f"{name} must be a number above {above:g} (at most {most:.3g}), not {value!r}", hint)


def one_of(name: str, value, choices, hint: str | None = None) -> None:
    """R339 unless `value` is one of `choices`."""
    if value not in choices:
        shown = ", ".join(repr(choice) for choice in choices)
        refuse(f"{name} must be one of {shown}, not {value!r}", hint)


def flag(name: str, value) -> None:
    """R339 unless `value` is True or False (a NumPy bool will do): "no" or 0 are not taken to
    mean False, since `overwrite="false"` would replace a run."""
    if not isinstance(value, (bool, np.bool_)):
        refuse(f"{name} must be True or False, not {value!r}", f"write {name}=True or {name}=False")


def path(name: str, value, example: str, what: str = "file") -> None:
    """R339 unless `value` is a path: a str or an os.PathLike (`example` shows one, of a `what`:
    a file or a folder)."""
    if not isinstance(value, (str, os.PathLike)):
        refuse(
            f"{name} must be a path (a str or a pathlib.Path), not {type(value).__name__}",
            f"give the {what}'s name, such as {example!r}",
        )
