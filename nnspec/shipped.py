"""Where the files nnspec ships beside its code are: the grammar and the bundled specs.

A wheel carries them inside the package (`nnspec/grammars`, `nnspec/specs`); a source tree, and
an editable install of one, keeps them at the top level (`grammars/`, `specs/`).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def shipped_folder(name: str) -> Path:
    """The folder `name` (`grammars` or `specs`) in the installed package, or in the source tree."""
    inside = PACKAGE / name
    return inside if inside.is_dir() else PACKAGE.parent / name


def grammar_text() -> str:
    """The grammar of `.nn` files, `grammars/nnspec.lark`."""
    return (shipped_folder("grammars") / "nnspec.lark").read_text(encoding="utf-8")
