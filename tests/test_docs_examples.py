"""docs/errors.md shows what `nnspec check` prints for each example spec: every pair of a
`model.nn` block and its `$ nnspec check model.nn` block is run, and the output must be the
documented one, character for character. An example beside a csv file gets that file, made from
the header the docs name; a path the docs show as /home/me stands for the example's folder."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from nnspec.cli import main

DOCS = (ROOT / "docs" / "errors.md").read_text()
EXAMPLE = re.compile(
    r"^`model\.nn`(?: \(beside `(?P<file>[^`]+)`, whose header is `(?P<header>[^`]+)`\))?:\n\n"
    r"```[a-z]*\n(?P<spec>(?:(?!```).)*?)\n```\n\n"
    r"```\n\$ nnspec check model\.nn\n(?P<shown>.*?)\n```",
    re.S | re.M,
)
ABRIDGED = {"E105"}  # its spec is written "[[[[ ... 65 levels ... 1 ]]]]", not to be run


def _code(example: re.Match) -> str:
    """The code of the section the example stands in (`### E302: ...`)."""
    heading = DOCS.rfind("\n### ", 0, example.start()) + len("\n### ")
    return DOCS[heading:].split(":", 1)[0]


CASES = [m for m in EXAMPLE.finditer(DOCS) if _code(m) not in ABRIDGED]


def test_the_docs_have_their_examples():
    assert len(CASES) > 100


@pytest.mark.parametrize("example", CASES, ids=[_code(m) for m in CASES])
def test_each_error_example_prints_what_the_docs_show(example, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.nn").write_text(example["spec"] + "\n")
    if example["file"]:
        columns = example["header"].split(",")
        (tmp_path / example["file"]).write_text(
            example["header"] + "\n" + ",".join("0" for _ in columns) + "\n"
        )
    main(["check", "model.nn"])
    shown = capsys.readouterr().err.rstrip("\n").replace(str(tmp_path), "/home/me")
    assert shown == example["shown"]
