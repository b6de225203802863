"""Where drawings go: the formats nnspec writes, and files written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from .. import atomic

FORMATS = ("svg", "png", "pdf")


class DrawError(ValueError):
    """A drawing cannot be made as asked: an unknown format or option, or a place that cannot be written."""


def output_format(path: str | os.PathLike) -> str:
    """The format named by the file's extension; anything but .svg, .png and .pdf is a `DrawError`."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        named = f"'.{suffix}'" if suffix else "no extension"
        raise DrawError(
            f"cannot draw {os.fspath(path)}: {named} is not a format nnspec draws; end the name in .svg, .png or .pdf"
        )
    return suffix


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` whole or not at all (nnspec.atomic); a place that cannot be written is a `DrawError`."""
    path = Path(path)
    blocked = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise DrawError(f"cannot write {path}: {blocked} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic.write_atomic(path, lambda temporary: Path(temporary).write_bytes(data))
    except OSError as error:
        raise DrawError(f"cannot write {path}: {error.strerror or error}") from None
