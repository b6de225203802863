"""The Pygments lexer for `.nn` files: every token of every bundled spec has a type other than
Error, the parts of the language get their types, and pyproject registers it for Pygments."""

from __future__ import annotations

import importlib
import tomllib

import pytest
from conftest import EXAMPLES, ROOT, SPECS, TEST_SPECS
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String

from nnspec.lexer import NnspecLexer, css, highlight_html

SPEC_FILES = sorted(SPECS.glob("*.nn")) + sorted(EXAMPLES.glob("*.nn"))
SPEC_FILES += sorted((TEST_SPECS / "ok").glob("*.nn"))


def _tokens(text: str) -> list[tuple]:
    return [(kind, value) for kind, value in NnspecLexer().get_tokens(text) if value.strip()]


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_token_of_a_bundled_spec_is_an_error(path):
    text = path.read_text()
    tokens = list(NnspecLexer().get_tokens(text))
    errors = [value for kind, value in tokens if kind in Error]
    assert errors == [], f"{path.name}: the lexer cannot read {errors[:5]}"
    assert "".join(value for _, value in tokens) == text + ("" if text.endswith("\n") else "\n")


def test_each_part_of_the_language_gets_its_type():
    text = (
        '# a comment\nuse "blocks.nn"\nlet d = 4\nnetwork n "desc" {\n'
        "    input  x: d, seq\n    dense  h: 2 * d, act=leaky_relu(alpha=-0.1), bias=false\n"
        "    x -> h; h ~> h\n    output h: last\n}\ntrain {\n    optimizer = sgd(lr=1e-3)\n"
        "    expect accuracy >= 0.9\n}\n"
    )
    tokens = _tokens(text)
    kinds = {value: kind for kind, value in tokens}
    assert kinds["# a comment"] in Comment
    assert kinds['"blocks.nn"'] in String and kinds['"desc"'] in String
    for word in ("use", "network", "train", "output", "expect", "let"):
        assert kinds[word] in Keyword, word
    assert kinds["input"] is Keyword.Type and kinds["dense"] is Keyword.Type
    assert kinds["x"] in Name and kinds["d"] in Name
    assert (Name.Variable, "h") in tokens  # a layer's name where it is declared
    assert kinds["leaky_relu"] is Name.Function and kinds["sgd"] is Name.Function
    assert kinds["->"] in Operator and kinds["~>"] in Operator and kinds[">="] in Operator
    assert kinds["1e-3"] in Number and kinds["0.9"] in Number
    assert kinds["false"] is Keyword.Constant


def test_html_and_its_style_sheet():
    page = highlight_html("network n {\n    input  x: 2\n}\n")
    assert '<span class="k">network</span>' in page and '<span class="kt">input</span>' in page
    assert ".highlight .kt" in css()
    assert 'style="' in highlight_html("network n {\n}\n", inline=True)


def test_pyproject_registers_the_lexer_for_pygments():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["pygments.lexers"]["nnspec"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is NnspecLexer


def test_pygments_finds_it_when_nnspec_is_installed_with_the_entry_point():
    from importlib.metadata import entry_points

    if not [e for e in entry_points(group="pygments.lexers") if e.name == "nnspec"]:
        pytest.skip("this installation of nnspec predates the entry point: pip install -e .")
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    assert isinstance(get_lexer_by_name("nnspec"), NnspecLexer)
    assert isinstance(get_lexer_for_filename("model.nn"), NnspecLexer)


def test_nnspec_check_imports_neither_pygments_nor_pygls():
    import subprocess
    import sys

    code = (
        "import sys; from nnspec.cli import main; code = main(['check', 'specs/xor.nn']); "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pygments', 'pygls')); "
        "assert code == 0 and loaded == [], loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
