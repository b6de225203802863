"""What drawings can be: the formats, palettes and orientations nnspec draws, and files written
whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from .. import atomic
from ..errors import NnspecError, hint_for
from .cells import PALETTES, Palette

FORMATS = ("svg", "png", "pdf")
ORIENTS = ("lr", "tb")
DPI = 200  # PNGs sharp enough for a slide


class DrawError(NnspecError, ValueError):
    """A drawing cannot be made as asked: an unknown format (R201) or option (R202), or a place
    that cannot be written (R101)."""


def output_format(path: str | os.PathLike) -> str:
    """The format named by the file's extension; anything but .svg, .png and .pdf is a
    `DrawError`."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        why = f"'.{suffix}' is not a format nnspec draws" if suffix else "it has no extension"
        raise DrawError(
            "R201",
            f"cannot draw {os.fspath(path)}: {why}",
            "end the name in .svg, .png or .pdf",
        )
    return suffix


def choose_palette(name: str) -> Palette:
    if name not in PALETTES:
        raise DrawError(
            "R202", f"unknown palette '{name}'", f"choose one of: {', '.join(PALETTES)}"
        )
    return PALETTES[name]


def check_orient(orient: str) -> None:
    if orient not in ORIENTS:
        raise DrawError(
            "R202",
            f"unknown orientation '{orient}'",
            "choose lr (left to right) or tb (top to bottom)",
        )


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` whole or not at all (nnspec.atomic); a place that cannot be written is a
    `DrawError`."""
    path = Path(path)
    try:
        atomic.make_folders(path)
        return atomic.write_atomic(path, lambda temporary: Path(temporary).write_bytes(data))
    except OSError as error:
        raise DrawError(
            "R101", f"cannot write {path}: {error.strerror or error}", hint_for(error)
        ) from None
