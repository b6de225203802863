"""`nnspec fmt`: the canonical layout, comments kept, idempotent, and safe.

Every bundled spec (specs/, examples/) is already formatted; every spec that checks clean in
tests/specs/ok/ formats to the same program and formats twice to the same text; generated and
mutated specs that parse round-trip through the formatter to the same program (hypothesis).
"""

from __future__ import annotations

import re

import pytest
from conftest import EXAMPLES, ROOT, SPECS, TEST_SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnspec
from nnspec import fmt
from nnspec.cli import main
from nnspec.errors import Source, SpecError
from nnspec.fmt import FormatError, format_source, format_text
from nnspec.parse import parse
from nnspec.resolve import read_source

BUNDLED = sorted(SPECS.glob("*.nn")) + sorted(EXAMPLES.glob("*.nn"))
OK = sorted((TEST_SPECS / "ok").glob("*.nn"))
COMMENT = re.compile(r"#[^\n]*")


def _id(path) -> str:
    return str(path.relative_to(ROOT))


def _comments(text: str) -> list[str]:
    """Every comment of a spec, in order (the text after `#`, trailing blanks aside). Only for
    texts whose strings hold no '#', as the specs here."""
    return [c.rstrip() for c in COMMENT.findall(text)]


@pytest.mark.parametrize("path", BUNDLED, ids=_id)
def test_every_bundled_spec_is_formatted(path):
    source = read_source(path)
    assert format_source(source) == source.text, f"run: nnspec fmt {_id(path)}"


@pytest.mark.parametrize("path", OK, ids=_id)
def test_formatting_is_safe_and_idempotent(path):
    source = read_source(path)
    once = format_source(source)  # raises FormatError if the meaning changed
    assert format_text(once, str(path)) == once
    assert _comments(once) == _comments(source.text)


# ---- the layout -----------------------------------------------------------------------
def test_one_statement_per_line_and_the_spacing():
    text = 'network n "d" { input x: 2 ; dense  h:4,act = relu;dense y : 1\nx->h  ~>  y ; h->y }'
    assert format_text(text) == (
        'network n "d" {\n'
        "    input  x: 2\n"
        "    dense  h: 4, act=relu\n"
        "    dense  y: 1\n"
        "    x -> h ~> y\n"
        "    h -> y\n"
        "}\n"
    )


def test_layer_names_line_up_after_the_widest_kind():
    text = "network n {\ninput x: 4\nbatchnorm b\ndense y: 2\nx -> b -> y\n}\n"
    assert format_text(text) == (
        "network n {\n    input     x: 4\n    batchnorm b\n    dense     y: 2\n    x -> b -> y\n}\n"
    )


def test_settings_line_up_and_values_keep_their_text():
    text = (
        "network n {\n    input  x: 2\n    dense  y: 1\n    x -> y\n}\n"
        "train {\ndata=xor\noptimizer=sgd( lr = 1e-3 , momentum=.9 )\n"
        "loss = {y : mse}\nexpect y.accuracy>=1.0\n}\n"
    )
    assert format_text(text).split("train {\n")[1] == (
        "    data      = xor\n"
        "    optimizer = sgd(lr=1e-3, momentum=.9)\n"
        "    loss      = {y: mse}\n"
        "    expect y.accuracy >= 1.0\n"
        "}\n"
    )


def test_arithmetic_keeps_its_parentheses_and_signs():
    text = "let d=4\nnetwork n {\n input x: d\n dense y: (d+1)*2 , act=leaky_relu(alpha=-0.1)\n"
    text += " dense z: -d - -1 + d//2\n x -> y -> z\n}\n"
    out = format_text(text)
    assert "    dense  y: (d + 1) * 2, act=leaky_relu(alpha=-0.1)\n" in out
    assert "    dense  z: -d - -1 + d // 2\n" in out
    assert out.startswith("let d = 4\n\nnetwork n {\n") is False  # blank lines are not invented
    assert out.startswith("let d = 4\nnetwork n {\n")


def test_a_minus_apart_from_its_number_is_written_against_it():
    """`- 0.5` is the number -0.5, written `-0.5`: the safety check sees the same value (found
    by test_mutated_specs_round_trip, which refused the file as R103)."""
    text = "network n {\n input x: 2\n dense y: 2, weights=[[- 0.5, 1], [2, - 3]]\n x -> y\n}\n"
    out = format_source(Source("<string>", text))
    assert "weights=[[-0.5, 1], [2, -3]]" in out
    assert nnspec.loads(out).program.layers[-1].options.weights == ((-0.5, 1.0), (2.0, -3.0))


def test_comments_stay_where_they_were():
    text = (
        "# header\n\n\n"
        "network n {   # after the brace\n"
        "        # about x\n"
        "  input x: 2          # aligned\n"
        "  dense y: 1          # together\n"
        "\n\n"
        "  x -> y # close\n"
        "  # before the end\n"
        "}\n"
        "# between\n"
        "train {\n data = xor\n}\n# the end"
    )
    assert format_text(text) == (
        "# header\n"
        "\n"
        "network n {   # after the brace\n"
        "    # about x\n"
        "    input  x: 2       # aligned\n"  # column 22, as it was
        "    dense  y: 1       # together\n"
        "\n"
        "    x -> y  # close\n"
        "    # before the end\n"
        "}\n"
        "\n"
        "# between\n"
        "train {\n"
        "    data = xor\n"
        "}\n"
        "# the end\n"
    )


def test_comments_that_shared_a_column_move_together():
    text = "network n {\n    input  x: 2 # a\n    dense  y: 1, act=sigmoid # b\n    x -> y\n}\n"
    out = format_text(text)
    # the two comments were at different columns: each moves just after its code
    assert "    input  x: 2  # a\n    dense  y: 1, act=sigmoid  # b\n" in out
    shared = "network n {\n    input  x: 2     # a\n    dense  y: 1, act=sigmoid\n" + (
        "    dense  z: 1, act=sigmoid, bias=false     # b\n    x -> y\n}\n"
    )
    assert "    input  x: 2     # a\n" in format_text(shared)  # room: the column is kept


def test_lines_inside_brackets_keep_their_breaks():
    text = (
        "network n {\n  input x: 2\n"
        "  dense y: 2, weights=[[1, 2],   # first row\n"
        "      # a comment line\n"
        "        [3, 4]], biases=[0,\n"
        "  0]\n  x -> y\n}\n"
        "train {\n  rule = boltzmann(\n  temperatures=[2, 1],\n      sweeps=1\n  )\n}\n"
    )
    assert format_text(text) == (
        "network n {\n"
        "    input  x: 2\n"
        "    dense  y: 2, weights=[[1, 2],  # first row\n"
        "                          # a comment line\n"
        "                          [3, 4]], biases=[0,\n"
        "                                           0]\n"
        "    x -> y\n"
        "}\n"
        "\n"
        "train {\n"
        "    rule = boltzmann(\n"
        "        temperatures=[2, 1],\n"
        "        sweeps=1\n"
        "    )\n"
        "}\n"
    )


def test_blocks_uses_ports_and_outputs():
    text = (
        'use "blocks.nn"\nblock pair(w){input a: w\ninput b: w\nconcat c\na,b->c}\n'
        "network n{input x: 2\ninput y: 2\npair p: 2\nx->p.a\ny->p.b\noutput p:last}"
    )
    assert format_text(text) == (
        'use "blocks.nn"\n'
        "block pair(w) {\n"
        "    input  a: w\n"
        "    input  b: w\n"
        "    concat c\n"
        "    a, b -> c\n"
        "}\n"
        "\n"
        "network n {\n"
        "    input  x: 2\n"
        "    input  y: 2\n"
        "    pair   p: 2\n"
        "    x -> p.a\n"
        "    y -> p.b\n"
        "    output p: last\n"
        "}\n"
    )


def test_non_ascii_text_and_empty_files():
    text = 'network n "Ωmega 😀" {\n input x: 2 # é 😀\n dense y: 1\n x -> y\n}\n'
    assert format_text(text) == (
        'network n "Ωmega 😀" {\n    input  x: 2  # é 😀\n    dense  y: 1\n    x -> y\n}\n'
    )
    assert format_text("") == ""
    assert format_text("\n\n# only a comment\n\n") == "# only a comment\n"


def test_a_syntax_error_is_the_parsers():
    with pytest.raises(SpecError) as error:
        format_text("network n {\n    dense h 4\n}\n")
    assert error.value.code == "E103"


# ---- safety ---------------------------------------------------------------------------
def test_a_layout_that_changes_the_meaning_is_refused(monkeypatch, tmp_path):
    path = tmp_path / "x.nn"
    original = (SPECS / "xor.nn").read_text()
    path.write_text(original.replace("act=tanh", "act=tanh   "))
    before = path.read_text()
    # a formatter that changed a number would make another program
    monkeypatch.setattr(fmt._Formatter, "run", lambda self: self.text.replace("2000", "20"))
    with pytest.raises(FormatError) as error:
        format_source(read_source(path))
    assert error.value.code == "R103"
    assert main(["fmt", str(path)]) == 1
    assert path.read_text() == before  # left as it was


def test_a_layout_that_changes_only_an_error_position_is_fine():
    text = "network n {\ninput x: 2\ndense y: 1, act=nope\nx -> y\n}\n"
    out = format_source(Source("<string>", text))
    assert "    dense  y: 1, act=nope\n" in out


# ---- the command ----------------------------------------------------------------------
UGLY = "network n {\ninput x: 2\ndense y: 1\nx->y\n}\n"


def test_fmt_rewrites_files_and_check_and_diff_say_what_would_change(tmp_path, capsys):
    path = tmp_path / "n.nn"
    path.write_text(UGLY)
    assert main(["fmt", "--check", str(path)]) == 1
    assert "would reformat" in capsys.readouterr().err
    assert main(["fmt", "--diff", str(path)]) == 0
    out = capsys.readouterr().out
    assert "-x->y\n" in out and "+    x -> y\n" in out
    assert path.read_text() == UGLY  # --check and --diff write nothing
    assert main(["fmt", str(path)]) == 0
    assert "reformatted" in capsys.readouterr().err
    assert path.read_text() == format_text(UGLY)
    assert main(["fmt", "--check", str(path)]) == 0
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


def test_a_file_saved_on_windows_keeps_its_line_ends_and_byte_order_mark(tmp_path, capsys):
    """A CRLF file (a Windows editor, git's autocrlf) is formatted with CRLF: a file already in
    the layout is left as it is, and --check passes on it. A byte order mark is kept."""
    path = tmp_path / "n.nn"
    path.write_bytes(UGLY.replace("\n", "\r\n").encode())
    assert main(["fmt", str(path)]) == 0
    assert path.read_bytes() == format_text(UGLY).replace("\n", "\r\n").encode()
    capsys.readouterr()
    assert main(["fmt", "--check", str(path)]) == 0
    assert "would reformat" not in capsys.readouterr().err
    path.write_bytes(b"\xef\xbb\xbf" + UGLY.encode())  # a byte order mark stays too
    assert main(["fmt", str(path)]) == 0
    assert path.read_bytes() == b"\xef\xbb\xbf" + format_text(UGLY).encode()


def test_fmt_goes_on_past_a_bad_file_and_exits_1(tmp_path, capsys):
    bad, good = tmp_path / "bad.nn", tmp_path / "good.nn"
    bad.write_text("network n {\n    dense h 4\n}\n")
    good.write_text(UGLY)
    assert main(["fmt", str(bad), str(good)]) == 1
    err = capsys.readouterr().err
    assert "error[E103]" in err and "1 of 2 files reformatted, 1 with errors" in err
    assert bad.read_text() == "network n {\n    dense h 4\n}\n"
    assert good.read_text() == format_text(UGLY)
    assert main(["fmt", str(tmp_path / "missing.nn")]) == 1
    assert "error[E308]" in capsys.readouterr().err


def test_fmt_reads_stdin_and_writes_stdout(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(UGLY))
    assert main(["fmt", "-"]) == 0
    assert capsys.readouterr().out == format_text(UGLY)


# ---- generated and mutated specs (hypothesis) -------------------------------------------
SETTINGS = dict(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PIECES = [" ", "  ", "\t", "\n", "\n\n", ";", " # note é😀\n", "\n# line\n", ",", "(", "]"]


def _round_trips(text: str) -> None:
    """What parses formats safely (format_source checks the program) and stays formatted; what
    does not parse is the parser's SpecError, never anything else."""
    source = Source("<string>", text)
    try:
        parse(source)
    except SpecError:
        with pytest.raises(SpecError):
            format_text(text)
        return
    once = format_source(source)
    assert format_text(once) == once
    assert len(_comments(once)) == len(_comments(text))


@settings(**SETTINGS)
@given(
    st.sampled_from(BUNDLED),
    st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from(["insert", "delete"]), st.sampled_from(PIECES)),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_specs_round_trip(path, edits):
    text = path.read_text()
    for where, op, piece in edits:
        at = int(where * len(text))
        if op == "insert":
            text = text[:at] + piece + text[at:]
        elif text[at : at + 1] in (" ", "\n", ";"):
            text = text[:at] + text[at + 1 :]
    _round_trips(text)


_name = st.sampled_from(["a", "b", "h", "out", "x2", "let", "units"])
_gap = st.sampled_from(["", " ", "  ", "\t"])
_end = st.sampled_from(["\n", ";", "\n\n", "  # c\n", " ;\n"])


@st.composite
def _spec(draw) -> str:
    gap = lambda: draw(_gap)  # noqa: E731
    lines = [f"network{draw(st.sampled_from([' ', '  ']))}net{gap()}{{{draw(_end)}"]
    names = ["x"]
    lines.append(f"{gap()}input{' ' + gap()}x{gap()}:{gap()}{draw(st.integers(1, 9))}{draw(_end)}")
    for _ in range(draw(st.integers(1, 4))):
        name = draw(_name.filter(lambda n: n not in names))
        units = draw(st.sampled_from(["3", "2 * 2", "(1+1)", "4 - -1", "8 // 3"]))
        act = draw(st.sampled_from(["", ",act=relu", f",{gap()}act{gap()}={gap()}tanh"]))
        lines.append(f"{gap()}dense {gap()}{name}{gap()}:{gap()}{units}{act}{draw(_end)}")
        lines.append(f"{gap()}{names[-1]}{gap()}->{gap()}{name}{draw(_end)}")
        names.append(name)
    lines.append("}")
    if draw(st.booleans()):
        lines.append(f"{draw(_end)}train{gap()}{{data{gap()}={gap()}xor{draw(_end)}epochs=1}}")
    return "".join(lines)


@settings(**SETTINGS)
@given(_spec())
def test_generated_specs_round_trip(text):
    _round_trips(text)


def test_a_comment_after_a_line_that_is_split_follows_its_statement():
    assert format_text("network n { input x: 1; dense y: 1; x -> y }      # c\n") == (
        "network n {\n    input  x: 1\n    dense  y: 1\n    x -> y\n}  # c\n"
    )
    text = "network n {\n input x: 1; dense y: 1          # c\n x -> y\n}\n"
    assert "    dense  y: 1  # c\n" in format_text(text)
