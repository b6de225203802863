"""Every spec that must fail does, with the stated error code, position, message and hint.

Specs come from tests/specs/errors/ (one file per situation, named after its code) and
examples/errors/ (the language contract's error examples). A file in tests/specs/errors/
starts with header comments:

    # expect: E201 4:5 unknown layer kind 'dence'     code, line:column, message substring
    # hint: did you mean 'dense'?                      optional: hint substring
    # network: g                                       optional: nnspec.load(path, network=g)

The position may be `-` for an error about the whole file (no span), or
`other.nn:LINE:COL` (relative to the spec) when the error sits in a file that the spec
uses. Files in tests/specs/errors/used/ are helpers that the specs `use`, not cases.
"""

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, TEST_SPECS

import nnspec

ERRORS = TEST_SPECS / "errors"
DOCS = ROOT / "docs" / "errors.md"
PACKAGE = ROOT / "nnspec"


@dataclass(frozen=True)
class Expect:
    code: str
    where: Path | None  # the file the span is in (None: no span)
    line: int | None
    column: int | None
    message: str
    hint: str | None = None
    network: str | None = None


# examples/errors/ states its expectations in prose, so they are written out here.
EXAMPLE_EXPECTS = {
    "cycle_without_delay.nn": ("E304", 7, 7, "a -> b -> a", None),
    "shape_mismatch.nn": ("E401", 6, 11, "'a' gives [16], 'x' gives [8]", None),
    "typo_kind.nn": ("E201", 4, 5, "unknown layer kind 'dence'", "did you mean 'dense'"),
}

_HEADER = re.compile(r"# (expect|hint|network): ?(.*)")
_EXPECT = re.compile(r"(E\d{3}) (?:(-)|(?:(\S+?):)?(\d+):(\d+))(?: (.*))?")


def _read_expect(path: Path) -> Expect:
    if path.parent == EXAMPLES / "errors":
        code, line, column, message, hint = EXAMPLE_EXPECTS[path.name]
        return Expect(code, path, line, column, message, hint)
    meta = {}
    for raw in path.read_bytes().split(b"\n"):
        match = _HEADER.fullmatch(raw.decode("utf-8", errors="replace").rstrip("\r"))
        if not match:
            break
        meta[match.group(1)] = match.group(2)
    assert "expect" in meta, (
        f"{path.name}: the first line must be '# expect: CODE LINE:COL MESSAGE'"
    )
    match = _EXPECT.fullmatch(meta["expect"])
    assert match, f"{path.name}: cannot read the header '# expect: {meta['expect']}'"
    code, nospan, other, line, column, message = match.groups()
    assert path.name.startswith(code + "_"), (
        f"{path.name}: a file is named after the code it expects ({code}_...)"
    )
    where = None if nospan else (path.parent / other if other else path)
    return Expect(
        code,
        where,
        int(line) if line else None,
        int(column) if column else None,
        message or "",
        meta.get("hint"),
        meta.get("network"),
    )


CASES = sorted(ERRORS.glob("*.nn")) + sorted((EXAMPLES / "errors").glob("*.nn"))


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _source_lines(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [
        "".join(c if c.isprintable() or c == "\t" else "?" for c in line)
        for line in text.splitlines()
    ]


def test_cases_exist():
    assert len(CASES) > 50
    assert {p.name for p in (EXAMPLES / "errors").glob("*.nn")} == set(EXAMPLE_EXPECTS)


@pytest.mark.parametrize("path", CASES, ids=_id)
def test_spec_fails_with_expected_error(path: Path):
    expect = _read_expect(path)
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.load(str(path), network=expect.network)
    error = caught.value
    assert error.errors and error.errors[0] is error, (
        "the raised error is the first of the errors it carries"
    )
    assert error.code == expect.code, f"{error.code}: {error.message}"
    assert expect.message in error.message
    if expect.hint is not None:
        assert error.hint is not None and expect.hint in error.hint
    rendered = str(error).splitlines()
    if expect.where is None:
        assert error.span is None
        assert rendered[0] == f"error[{error.code}]: {error.message}"
        return
    assert error.span is not None
    assert os.path.realpath(error.span.path) == os.path.realpath(expect.where)
    assert (error.span.line, error.span.column) == (expect.line, expect.column)
    # path:line:col: error[CODE]: message / source line / caret under the column
    assert (
        rendered[0]
        == f"{error.span.path}:{expect.line}:{expect.column}: error[{error.code}]: {error.message}"
    )
    if expect.where == path:
        assert error.span.path == str(path)
    source = _source_lines(expect.where)[expect.line - 1]
    caret = re.fullmatch(r" {5} \| ( *)(\^+)", rendered[2])
    assert caret, rendered[2]
    if len(source) <= 100:
        assert rendered[1] == f"{expect.line:>5} | {source}"
        assert len(caret.group(1)) == expect.column - 1
    else:  # a long line is shown as a window around the caret
        shown = rendered[1][len(f"{expect.line:>5} | ") :]
        assert rendered[1].startswith(f"{expect.line:>5} | ") and shown.strip(".") in source
        assert shown[len(caret.group(1))] == source[expect.column - 1]
    if error.hint:
        assert rendered[3] == f"  hint: {error.hint}"


CLI_CASES = [
    "E201_unknown_kind.nn",
    "E401_add_mismatch.nn",
    "E304_cycle_without_delay.nn",
    "E502_unknown_loss.nn",
]


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_prints_the_diagnostic_and_exits_1(name: str):
    path = ERRORS / name
    expect = _read_expect(path)
    result = subprocess.run(
        [sys.executable, "-m", "nnspec", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 4, result.stderr
    header, source, caret, hint = lines
    assert re.fullmatch(
        rf"{re.escape(str(path))}:{expect.line}:{expect.column}: error\[{expect.code}\]: .+", header
    )
    assert expect.message in header
    assert source == f"{expect.line:>5} | {_source_lines(path)[expect.line - 1]}"
    assert re.fullmatch(rf" {{6}}\| {{{expect.column}}}\^+", caret), caret
    assert hint.startswith("  hint: ") and expect.hint in hint


def test_cli_reports_every_error_and_counts_them(tmp_path: Path):
    path = tmp_path / "two.nn"
    path.write_text(
        "network n {\n    input x: 4\n    dence h: 8\n    dens  y: 1\n    x -> h -> y\n}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "nnspec", "check", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{path}:3:5: error[E201]: unknown layer kind 'dence'" in result.stderr
    assert f"{path}:4:5: error[E201]: unknown layer kind 'dens'" in result.stderr
    assert result.stderr.rstrip().endswith("2 errors")


def test_independent_errors_are_reported_together():
    text = "network n {\n    input x: 4\n    dence h: 8\n    dens  y: 1\n    x -> h -> y\n}\n"
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text, path="two.nn")
    error = caught.value
    assert len(error.errors) == 2
    assert [(e.code, e.span.line, e.span.column) for e in error.errors] == [
        ("E201", 3, 5),
        ("E201", 4, 5),
    ]
    rendered = str(error)
    assert "two.nn:3:5: error[E201]" in rendered and "two.nn:4:5: error[E201]" in rendered


def test_errors_in_a_network_and_its_train_section_are_reported_together(tmp_path: Path):
    path = tmp_path / "both.nn"
    path.write_text(
        "network n {\n    input x: 2\n    dense y: 1, act=rleu\n    x -> y\n}\n"
        "train {\n    data = xor\n    epocs = 3\n}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "nnspec", "check", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=120,
    )
    assert result.returncode == 1
    assert f"{path}:3:21: error[E204]: unknown activation 'rleu'" in result.stderr
    assert f"{path}:8:5: error[E501]: unknown train setting 'epocs'" in result.stderr
    assert result.stderr.rstrip().endswith("2 errors")
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.load(path)
    assert caught.value.code == "E204"


def _codes_in_package() -> set[str]:
    codes = set()
    for path in PACKAGE.rglob("*.py"):
        codes |= set(re.findall(r"[\"'](E\d{3})[\"']", path.read_text()))
    return codes


def test_every_code_has_a_failing_spec_and_a_doc_section():
    codes = _codes_in_package()
    assert len(codes) > 30
    covered = {p.name[:4] for p in ERRORS.glob("E*.nn")}
    # found by `nnspec compile`, not by `check`: every kind compiles today, so no spec can show
    # it; tests/test_compile_{torch,numpy,onnx}.py raise it for a kind without a lowering
    compile_time = {"E601"}
    assert sorted(codes - covered - compile_time) == [], (
        "add a spec to tests/specs/errors/ for each of these codes"
    )
    documented = set(re.findall(r"^### (E\d{3}): \S", DOCS.read_text(), flags=re.MULTILINE))
    assert sorted(codes - documented) == [], (
        "add a section to docs/errors.md for each of these codes"
    )
    assert sorted(documented - codes) == [], (
        "docs/errors.md documents codes that nnspec no longer raises"
    )
    assert sorted(covered - codes) == [], (
        "tests/specs/errors/ has specs for codes that nnspec no longer raises"
    )
