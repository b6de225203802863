"""The docs' tables of kinds, made from the registry: `python docs/make_tables.py [--check]`.

Each table sits in a markdown file between `<!-- table: NAME -->` and `<!-- end table -->`; this
script rewrites what lies between them. With `--check` it writes nothing and exits 1, naming the
files, when a table is stale (tests/test_docs_tables.py runs the check). Adding a kind to the
registry and to each target's table is all it takes for the docs to list it.
"""

from __future__ import annotations

import argparse
import re
import sys
import typing
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # run from a source tree without installing

from nnspec.backends.numpy.kinds import LOWERINGS as NUMPY_LOWERINGS  # noqa: E402
from nnspec.draw.cells import ASIMOV, COLORBLIND, GRAPH_RULES  # noqa: E402
from nnspec.draw.kinds import KIND_DRAWING  # noqa: E402
from nnspec.kinds import REGISTRY, Cell, Kind  # noqa: E402
from nnspec.summary import show_value  # noqa: E402

SPEC_KINDS = [kind for kind in REGISTRY.values() if not kind.internal]  # a spec may name them
KINDS = list(REGISTRY.values())


def _code(text: str) -> str:
    return f"`{text}`"


def _choices(annotation) -> list[str] | None:
    """The values of a `Literal[...]` option (also inside `X | None`), else None."""
    if typing.get_origin(annotation) is typing.Literal:
        return [str(value) for value in typing.get_args(annotation)]
    for arg in typing.get_args(annotation):
        if choices := _choices(arg):
            return choices
    return None


def _positional(kind: Kind) -> str:
    fields = kind.Options.model_fields
    parts = []
    for key in kind.positional:
        choices = _choices(fields[key].annotation)
        parts.append("/".join(_code(c) for c in choices) if choices else key)
    return ", ".join(parts)


def _options(kind: Kind) -> str:
    """Every option that is not positional: `key=default`, a flag bare, a required one `key=`."""
    parts = []
    for key, info in kind.Options.model_fields.items():
        if key in kind.positional:
            continue
        if info.is_required() or info.default is None:
            parts.append(_code(f"{key}="))
        elif key in kind.flags and info.default is False:
            parts.append(_code(key))
        else:
            parts.append(_code(f"{key}={show_value(info.default)}"))
    return ", ".join(parts)


def language_table() -> list[str]:
    rows = ["| kind | positional | options (defaults) | ports | shapes |", "|---|---|---|---|---|"]
    for kind in SPEC_KINDS:
        ports = ", ".join(_code(p) for p in kind.ports)
        row = [_code(kind.name), _positional(kind), _options(kind), ports, kind.doc[0]]
        rows.append("| " + " | ".join(row) + " |")
    return rows


def backends_table() -> list[str]:
    rows = ["| kind | computes |", "|---|---|"]
    rows += [f"| {_code(kind.name)} | {kind.doc[1]} |" for kind in KINDS]
    return rows


def numpy_table() -> list[str]:
    rows = ["| kind | shapes, and what it is composed from |", "|---|---|"]
    for kind in KINDS:
        lowering = NUMPY_LOWERINGS[kind.name]
        doc = " ".join((lowering.__doc__ or "").split())
        rows.append(f"| {_code(kind.name)} | {doc} |")
    return rows


def drawing_cells_table() -> list[str]:
    rows = [
        "| cell type | asimov fill, mark | colorblind fill, mark | nnspec draws it for |",
        "|---|---|---|---|",
    ]
    for cell in Cell:
        looks = [", ".join(filter(None, palette.cells[cell])) for palette in (ASIMOV, COLORBLIND)]
        kinds = ", ".join(
            _code(k.name) for k in KINDS if k.cell is cell and k.family != "activation"
        )
        if cell is Cell.HIDDEN:
            kinds += ", every activation as a layer"
        rule = GRAPH_RULES.get(cell)
        drawn_for = "; ".join(filter(None, [kinds, rule])) or "(no kind yet)"
        rows.append(f"| {cell.value} | {looks[0]} | {looks[1]} | {drawn_for} |")
    return rows


def drawing_kinds_table() -> list[str]:
    rows = [
        "| kind | cell type | links to the cells before | its own cells | its own mark |",
        "|---|---|---|---|---|",
    ]
    for kind in KINDS:
        drawing = KIND_DRAWING[kind.name]
        own = "shares the cells before it" if drawing.folds else "yes"
        mark = drawing.mark or ""
        rows.append(
            f"| {_code(kind.name)} | {kind.cell.value} | {drawing.links} | {own} | {mark} |"
        )
    return rows


TABLES = {
    "language.md": {"kinds": language_table},
    "backends.md": {"kinds": backends_table},
    "numpy.md": {"kinds": numpy_table},
    "drawing.md": {"cells": drawing_cells_table, "kinds": drawing_kinds_table},
}

_REGION = re.compile(r"(<!-- table: (\w+) -->\n)(.*?)(<!-- end table -->)", re.DOTALL)


def rendered(path: Path, tables: dict) -> str:
    """The file's text with each of its tables made anew."""
    text = path.read_text(encoding="utf-8")
    found = {match.group(2) for match in _REGION.finditer(text)}
    if found != set(tables):
        raise SystemExit(f"{path}: expected table markers {sorted(tables)}, found {sorted(found)}")

    def fill(match: re.Match) -> str:
        return match.group(1) + "\n".join(tables[match.group(2)]()) + "\n" + match.group(4)

    return _REGION.sub(fill, text)


def stale_files() -> list[Path]:
    return [
        DOCS / name
        for name, tables in TABLES.items()
        if rendered(DOCS / name, tables) != (DOCS / name).read_text(encoding="utf-8")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a table is stale")
    args = parser.parse_args(argv)
    stale = stale_files()
    if args.check:
        for path in stale:
            print(f"{path}: its tables of kinds are stale; run python docs/make_tables.py")
        return 1 if stale else 0
    for path in stale:
        path.write_text(rendered(path, TABLES[path.name]), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
