"""Messages that misled a new user, each held to its wording (issue 14's list)."""

from __future__ import annotations

import pytest

import nnspec
from nnspec.kinds import SPEC_KINDS
from nnspec.train_section import SETTINGS

NET = "network n {{\n    input x: 2\n    {layer}\n    x -> y\n}}\n"


def trained(line: str) -> str:
    """A one-layer network with `line` in its train section."""
    return (
        NET.format(layer="dense y: 1, act=sigmoid") + f"train {{\n    data = xor\n    {line}\n}}\n"
    )


def _error(text: str) -> nnspec.SpecError:
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    return caught.value


def test_an_operator_the_language_lacks_is_answered_with_the_ones_it_has():
    # arithmetic exists since issue 16: `4 * 2` is a value; `%` is not an operator
    assert nnspec.loads(NET.format(layer="dense y: 4 * 2")).program.layers[-1].options.units == 8
    error = _error(NET.format(layer="dense y: 4 % 2"))
    assert (error.code, error.message) == ("E102", "unexpected character '%'")
    assert error.hint == "arithmetic knows + - * / // and ( ): write 4 * d, d // 2 or (d + 1) * 2"


def test_any_other_unexpected_character_gets_a_hint_too():
    error = _error(NET.format(layer="dense y: 2 @ 3"))
    assert error.code == "E102" and "'#' starts a comment" in error.hint


def test_a_list_of_losses_is_not_answered_with_did_you_mean():
    error = _error(trained("loss = [cross_entropy, mse]"))
    assert error.code == "E502"
    assert error.message == "loss is one name, not [cross_entropy, mse]"
    assert error.hint == "write one of: sse, mse, rmse, cross_entropy, bce, margin"


def test_a_whole_number_written_as_a_decimal_says_how_to_write_it():
    error = _error(trained("epochs = 1e3"))
    assert (error.code, error.message) == ("E502", "epochs must be a whole number >= 0, not 1000.0")
    assert error.hint.startswith("write it as 1000:")
    assert _error(trained("epochs = 2.5")).hint is None  # no whole number to offer


def test_the_list_of_known_kinds_is_never_cut_off():
    error = _error(NET.format(layer="zzqx y: 2"))
    assert error.code == "E201" and "..." not in error.hint
    listed = error.hint.removeprefix("known kinds: ").split(", ")
    assert set(listed) >= SPEC_KINDS, "every kind is listed (and the file's blocks and networks)"


def test_the_list_of_known_settings_is_never_cut_off():
    error = _error(trained("qqqq = 1"))
    assert error.code == "E501" and "..." not in error.hint
    assert error.hint == "known settings: " + ", ".join(sorted(SETTINGS))


@pytest.mark.parametrize(
    "layers, said",
    [
        (
            "dense h: 3\n    dense y: 1\n    x -> h -> y\n    h ~> h",
            "Runs step by step; stepped through time: h",
        ),
        ("lstm h: 3\n    dense y: 1\n    x -> h -> y", "state kept from step to step in: h"),
        (
            "dense h: 3\n    dense y: 1\n    x -> h -> y",
            "Runs over whole sequences (no recurrence)",
        ),
    ],
    ids=["~> link", "lstm", "no recurrence"],
)
def test_the_summary_says_how_a_network_runs_over_time(layers, said):
    model = nnspec.loads(f"network n {{\n    input x: 2, seq\n    {layers}\n}}\n")
    assert said in model.summary().splitlines()[-1]


@pytest.mark.parametrize(
    "kind, said",
    [
        ("avgpool2d", "write 'pool p: avg, size=2'"),
        ("fc", "write 'dense'"),
        ("Conv2d", "write 'conv'"),
        ("maxpool", "write 'pool p: max, size=2'"),
    ],
)
def test_a_kind_from_pytorch_or_keras_is_answered_with_what_to_write(kind, said):
    error = _error(NET.format(layer=f"{kind} y: 2"))
    assert error.code == "E201" and error.message == f"unknown layer kind '{kind}'"
    assert said in error.hint and "sample'?" not in error.hint


def test_a_block_input_without_a_size_is_reported_once_as_an_input():
    text = (
        "block b() {\n    input x\n    dense y: 2\n    x -> y\n}\n"
        "network n {\n    input i: 3\n    b u\n    b v\n    i -> u -> v\n}\n"
    )
    error = _error(text)
    assert len(error.errors) == 1, "the block's line is one mistake, however often it is placed"
    assert (error.code, error.message) == ("E205", "input 'x' of a block needs size")
    assert error.hint == "write 'input x: SIZE'" and (error.span.line, error.span.column) == (2, 11)


def _train_error(tmp_path, network: str, x, y) -> nnspec.SpecError:
    import numpy as np

    from nnspec.training import train

    np.savez(tmp_path / "d.npz", x=np.asarray(x, dtype=float), y=np.asarray(y))
    spec = tmp_path / "n.nn"
    spec.write_text(network + '\ntrain {\n    data = npz("d.npz")\n    epochs = 1\n}\n')
    with pytest.raises(nnspec.SpecError) as caught:
        train(spec, backend="numpy", out=tmp_path / "run")
    return caught.value


def test_an_output_that_is_not_flattened_is_hinted_to_flatten(tmp_path):
    network = "network n {\n    input x: [2, 4]\n    dense y: 3, act=softmax\n    x -> y\n}"
    error = _train_error(tmp_path, network, [[[0.0] * 4] * 2] * 6, [0, 1, 2, 0, 1, 2])
    assert error.code == "E506" and "but 'y' gives [2, 3]" in error.message
    assert error.hint == "flatten before the last layer ('flatten f'), so that 'y' gives [3]"


def test_labels_from_one_are_hinted_that_classes_count_from_zero(tmp_path):
    network = "network n {\n    input x: 2\n    dense y: 3, act=softmax\n    x -> y\n}"
    error = _train_error(tmp_path, network, [[0.0, 1.0]] * 6, [1, 2, 3, 1, 2, 3])
    assert error.code == "E506" and "has 4 classes, but 'y' gives 3 values" in error.message
    assert error.hint == (
        "classes count from 0: the labels run from 1 to 3, so 'y' needs 4 units; "
        "subtract 1 from them for 3"
    )


@pytest.mark.slow  # trains a run to predict with
def test_predict_on_deeply_nested_json_is_a_clean_error(tmp_path, capsys):
    from conftest import EXAMPLES

    from nnspec.cli import main
    from nnspec.training import train

    train(EXAMPLES / "xor.nn", backend="numpy", out=tmp_path / "run", epochs=1)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    weights = tmp_path / "run" / "weights.safetensors"
    code = main(
        ["predict", str(EXAMPLES / "xor.nn"), "--weights", str(weights), "--input", str(deep)]
    )
    err = capsys.readouterr().err
    assert code == 1 and "error[E505]: cannot read input file" in err and "as JSON" in err
    assert "Traceback" not in err and "bug" not in err


@pytest.mark.slow  # trains a run to predict with
def test_predict_says_its_input_is_relative_to_the_current_folder(tmp_path, capsys, monkeypatch):
    from conftest import EXAMPLES

    from nnspec.cli import main
    from nnspec.training import train

    train(EXAMPLES / "xor.nn", backend="numpy", out=tmp_path / "run", epochs=1)
    monkeypatch.chdir(tmp_path)
    weights = str(tmp_path / "run" / "weights.safetensors")
    assert (
        main(["predict", str(EXAMPLES / "xor.nn"), "--weights", weights, "--input", "x.csv"]) == 1
    )
    err = capsys.readouterr().err
    assert "error[E505]: input file 'x.csv' is not found" in err
    assert f"hint: the path is relative to the current folder: nnspec looked for {tmp_path}" in err


def test_an_unknown_option_does_not_hide_an_unknown_activation_on_the_same_layer():
    error = _error(NET.format(layer="dense y: 1, actt=relu, act=rleu"))
    found = [(e.code, e.message) for e in error.errors]
    assert found == [
        ("E202", "dense has no option 'actt'"),
        ("E204", "unknown activation 'rleu'"),
    ]


def test_a_misspelt_required_option_is_not_also_reported_missing():
    error = _error(NET.format(layer="dense y: unit=3"))
    assert [(e.code, e.message) for e in error.errors] == [("E202", "dense has no option 'unit'")]


def test_old_mac_line_ends_are_refused_where_the_first_one_is():
    """A lone \\r would make the file one long line to the parser, its position and the line
    shown at odds; \\r\\n is read as \\n."""
    crlf = NET.format(layer="dense y: 1").replace("\n", "\r\n")
    assert nnspec.loads(crlf).program.layers[-1].name == "y"
    error = _error(NET.format(layer="dense y: 1").replace("\n", "\r"))
    assert error.code == "E102" and (error.span.line, error.span.column) == (1, 12)
    assert "a carriage return (\\r) that ends no line" in error.message
    assert "Unix (LF) or Windows (CRLF)" in error.hint
    mixed = NET.format(layer="dense y: 1").replace("    x -> y\n", "    x -> y\r")
    assert _error(mixed).span.line == 4


def test_the_line_shown_is_the_parser_s_line_when_a_form_feed_comes_before():
    error = _error("network n {\n    input x: 2\f\n    dense y: 1\n    x -> q\n}\n")
    assert (error.code, error.span.line) == ("E302", 4)
    assert error.span.source.line(4) == "    x -> q"


def test_the_caret_lines_up_after_wide_characters_in_a_terminal():
    """A CJK character takes two columns of a terminal; the caret counts columns, not
    characters, so it stands under the mistake."""
    error = _error('network n "入力の網" { input x: 2; dense y: 1; x -> q }\n')
    assert error.code == "E302"
    shown, caret = str(error).splitlines()[1:3]
    assert shown == '    1 | network n "入力の網" { input x: 2; dense y: 1; x -> q }'
    before = 'network n "' + " " * 8 + '" { input x: 2; dense y: 1; x -> '  # 4 wide: 8 columns
    assert caret == "      | " + " " * len(before) + "^"


CSV_NET = NET.format(layer="dense y: 1, act=sigmoid") + (
    'train {\n    data = csv("d.csv", target="label")\n    loss = bce\n}\n'
)


@pytest.mark.parametrize(
    "header, said, hinted",
    [
        ("a;b;label", "one column, 'a;b;label': the columns are separated by semicolons", "commas"),
        ("a\tb\tlabel", "the columns are separated by tabs, not commas", "CSV (comma delimited)"),
        (",a,label", "column 1 of its header row has no name", "to_csv(path, index=False)"),
        ("a,b,label,", "its header row ends in a comma", "remove the comma"),
        ("a,a,label", "its header row names column 'a' twice", "its own name"),
    ],
    ids=["semicolons", "tabs", "pandas-index", "trailing-comma", "twice"],
)
def test_a_csv_header_that_is_not_one_of_named_comma_separated_columns(
    header, said, hinted, tmp_path
):
    """Read as it was, such a header would train on an index column, or say only that the
    target column is not there."""
    (tmp_path / "d.csv").write_text(f"{header}\n" + header.replace("label", "1") + "\n")
    (tmp_path / "n.nn").write_text(CSV_NET)
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.load(tmp_path / "n.nn")
    error = caught.value
    assert error.code == "E505" and said in error.message and hinted in error.hint, error
    assert error.span.line == 7  # the data line


def test_a_missing_data_file_does_not_hide_what_the_settings_ask_of_the_network(tmp_path):
    """check reports every mistake: the file that is not there, and the classes that do not fit
    the output, which the spec alone shows."""
    (tmp_path / "n.nn").write_text(
        NET.format(layer="dense y: 3, act=softmax")
        + 'train {\n    data = csv("pets.csv", target="kind")\n    classes = [cat, dog]\n}\n'
    )
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.load(tmp_path / "n.nn")
    assert [error.code for error in caught.value.errors] == ["E505", "E540"]
    assert "data file 'pets.csv' is not found" in caught.value.errors[0].message


def test_text_of_the_user_is_never_read_as_rich_markup(tmp_path, capsys):
    """The layer table and the run's report print with rich, whose markup ("[bold]", "[/]") a
    description or a folder's name may hold: shown as written, never a MarkupError traceback."""
    from nnspec.cli import main

    spec = tmp_path / "m.nn"
    spec.write_text(
        'network m "a [/] b [red]c[/red]" {\n    input x: 2\n    dense y: 1\n    x -> y\n}\n'
        "train {\n    data = xor\n    loss = mse\n    epochs = 1\n}\n"
    )
    assert main(["summary", str(spec)]) == 0
    assert "m: a [/] b [red]c[/red]" in capsys.readouterr().out
    out = tmp_path / "[/]x [bold]y"
    assert main(["train", str(spec), "--backend", "numpy", "--out", str(out)]) == 0
    assert f"weights: {out / 'weights.safetensors'}" in capsys.readouterr().out
