"""Constants (`let`) and arithmetic (`+ - * / //`, unary `-`, parentheses), evaluated at check time.

Values are read back from the resolver's scopes and from checked programs; errors are held to
their code, position and hint; a hypothesis property compares random integer expressions with
Python's own int arithmetic on the same tree (computed here with `operator`, never `eval`).
"""

from __future__ import annotations

import operator

import pytest
import torch
from conftest import TEST_SPECS
from hypothesis import given, settings
from hypothesis import strategies as st

import nnspec
from nnspec import syntax as s
from nnspec.dump import dump_program
from nnspec.errors import Source
from nnspec.parse import parse
from nnspec.resolve import load_library

NET = "network n {{\n    input x: 4\n    {layer}\n    x -> y\n}}\n"


def constant(expression: str, lets: str = "") -> int | float:
    """The value of `let v = EXPRESSION` in a file that also holds `lets`."""
    library = load_library(Source("<string>", f"{lets}\nlet v = {expression}\n"))
    value = library.scopes["<string>"].constant("v")
    assert isinstance(value, s.Number)
    return value.value


def failure(text: str) -> nnspec.SpecError:
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    return caught.value


# ---- values -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("10 - 3 - 2", 5),  # left-associative
        ("2 * 3 // 4", 1),  # * and // bind alike, left to right
        ("2 * (3 // 4)", 0),
        ("100 // 10 // 3", 3),
        ("-2 * 3", -6),
        ("- (1 + 2) * 2", -6),
        ("-(-4)", 4),
        ("4 - -2", 6),
        ("1 - 2+3", 2),
        ("-7 // 2", -4),  # floors, as Python
        ("7 // -2", -4),
        ("1e-3 * 1000", 1.0),
    ],
)
def test_precedence_and_associativity(expression, expected):
    assert constant(expression) == expected


@pytest.mark.parametrize(
    ("expression", "kind"),
    [("7 // 2", int), ("6 * 2 - 1", int), ("6 / 2", float), ("7 / 2", float), ("1.5 * 2", float)],
)
def test_integers_stay_integers_and_slash_gives_a_real(expression, kind):
    assert type(constant(expression)) is kind
    assert constant("7 / 2") == 3.5


def test_constants_refer_to_each_other_in_any_order():
    lets = "let ff = 4 * d\nlet d = base + 16\nlet base = 16"
    assert constant("ff // 2", lets) == 64


def test_expressions_where_numbers_go_in_sizes_and_options():
    text = (
        "let d = 32\nlet k = 3\n"
        "network n {\n"
        "    let c = d // 4\n"
        "    input x: [1, 2 * 4, 4 + 4]\n"
        "    conv  a: 2 * c, kernel=k, padding=(k - 1) // 2\n"
        "    flatten f\n"
        "    dense y: 4 * d, act=leaky_relu(alpha=1 / 4)\n"
        "    x -> a -> f -> y\n"
        "}\n"
    )
    program = nnspec.loads(text).program
    conv, dense = program.layer("a"), program.layer("y")
    assert (conv.options.channels, conv.options.kernel, conv.shape.dims) == (16, 3, (16, 8, 8))
    assert dense.options.units == 128 and dense.options.act.alpha == 0.25


def test_a_network_constant_shadows_the_file_constant():
    text = "let d = 4\nnetwork n {\n    let d = 6\n    input x: 2\n    dense y: d\n    x -> y\n}\n"
    assert nnspec.loads(text).program.layer("y").options.units == 6


def test_a_block_parameter_in_an_expression_and_block_constants():
    text = (
        "let d = 3\n"
        "block wide(width) {\n"
        "    let d = 100\n"  # the block's own d: not the caller's
        "    let hidden = 4 * width\n"
        "    input x: width\n"
        "    dense a: hidden + d - 100\n"
        "    dense b: width // 2\n"
        "    x -> a -> b\n"
        "}\n"
        "network n {\n"
        "    input x: 2 * d\n"
        "    wide w: 2 * d\n"  # evaluated where it is written: the network's d
        "    x -> w\n"
        "}\n"
    )
    program = nnspec.loads(text).program
    assert program.layer("w.a").options.units == 24
    assert program.layer("w.b").options.units == 3


def test_a_block_no_network_uses_waits_for_its_parameters():
    text = (
        "block wide(width) {\n    let h = 4 * width\n    input x: width\n    dense a: h // 2\n"
        "    x -> a\n}\n" + NET.format(layer="dense y: 2")
    )
    assert nnspec.loads(text).program.layer("y").options.units == 2
    error = failure(text.replace("h // 2", "h // 0 + 1 // 0"))
    assert _at(error) == ("E220", 4, 14, 20) and error.message == "division by zero: 'h // 0'"


def test_train_settings_take_constants_and_arithmetic():
    text = NET.format(layer="dense y: 1, act=sigmoid") + (
        "let n = 50\ntrain {\n    data = xor\n    epochs = 2 * n\n"
        "    optimizer = sgd(lr=1 / 4)\n    expect accuracy >= 3 / 4\n}\n"
    )
    spec = nnspec.loads(text).train_spec
    assert spec.settings["epochs"] == 100 and spec.settings["optimizer"] == ("sgd", {"lr": 0.25})
    assert spec.expects == (("accuracy", ">=", 0.75),)


def test_the_syntax_dump_shows_constants_and_expressions():
    dumped = s.dump(parse(Source("<string>", "let d = (1 + 2) * -x - (3 - 4)\n")))
    assert "let d = (1 + 2) * -x - (3 - 4)  @1:5" in dumped


def test_a_spec_with_constants_checks_to_the_program_of_its_literal_twin():
    with_constants = (
        "let d = 8\nblock pair(w) {\n    input i: w\n    dense a: 2 * w, act=relu\n"
        "    dense b: w\n    i -> a -> b\n}\n"
        "network n {\n    let k = d // 2\n    input x: [1, d, d]\n"
        "    conv c: k, kernel=k - 1, padding=(k - 2) // 2\n    flatten f\n"
        "    pair p: k * d * d, repeat=2\n    dense y: d + 2, act=softmax\n"
        "    x -> c -> f -> p -> y\n}\n"
    )
    literal = (
        "block pair(w) {\n    input i: w\n    dense a: 512, act=relu\n"
        "    dense b: w\n    i -> a -> b\n}\n"
        "network n {\n    input x: [1, 8, 8]\n"
        "    conv c: 4, kernel=3, padding=1\n    flatten f\n"
        "    pair p: 256, repeat=2\n    dense y: 10, act=softmax\n"
        "    x -> c -> f -> p -> y\n}\n"
    )
    ours, theirs = nnspec.loads(with_constants).program, nnspec.loads(literal).program
    assert dump_program(ours) == dump_program(theirs)
    assert ours.param_count == theirs.param_count


# ---- parameter counts -------------------------------------------------------------------------
def test_the_encoder_layer_with_4_d_feed_forward_counts_as_pytorch():
    model = nnspec.load(TEST_SPECS / "ok" / "constants.nn", network="encoder")
    d = 16
    layer = torch.nn.TransformerEncoderLayer(d_model=d, nhead=2, dim_feedforward=4 * d)
    assert model.program.param_count == sum(p.numel() for p in layer.parameters())
    # by hand: q, k, v, out projections; two feed-forward layers; two layer norms
    assert (
        model.program.param_count == 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 4 * d
    )


def test_an_mlp_of_constants_counts_by_hand():
    text = (
        "let d = 12\nnetwork n {\n    input x: d\n    dense h: 4 * d\n    dense y: d // 4\n"
        "    x -> h -> y\n}\n"
    )
    assert nnspec.loads(text).program.param_count == (12 * 48 + 48) + (48 * 3 + 3)


# ---- errors -----------------------------------------------------------------------------------
def _at(error: nnspec.SpecError) -> tuple:
    return error.code, error.span.line, error.span.column, error.span.end_column


def test_division_by_zero_is_at_the_expression():
    error = failure(NET.format(layer="dense y: 8 / (2 - 2)"))
    assert _at(error) == ("E220", 3, 14, 25) and error.message == "division by zero: '8 / (2 - 2)'"


def test_a_fraction_for_a_size_is_at_the_expression():
    error = failure(NET.format(layer="dense y: 2, act=relu\n    dense z: 7 / 2"))
    assert _at(error) == ("E221", 4, 14, 19)
    assert error.hint.endswith(": 7 // 2")


def test_an_exact_real_for_a_size_is_accepted_as_the_number_written():
    assert nnspec.loads(NET.format(layer="dense y: 8 / 2")).program.layer("y").options.units == 4


def test_an_unknown_name_suggests_the_closest_constant():
    error = failure("let depth = 3\n" + NET.format(layer="dense y: 2 * detph"))
    assert _at(error) == ("E320", 4, 18, 23) and error.hint == "did you mean 'depth'?"
    error = failure(NET.format(layer="dense y: 2 * width"))
    assert error.code == "E320" and "let width = ..." in error.hint


@pytest.mark.parametrize(
    ("operand", "what"),
    [('"a"', "a string"), ("[1, 2]", "a list"), ("true", "not a number"), ("f(1)", "a call")],
)
def test_arithmetic_on_a_non_number(operand, what):
    error = failure(NET.format(layer=f"dense y: 2 * {operand}"))
    assert error.code == "E222" and f"is {what}" in error.message and error.span.column == 18


def test_constants_defined_twice_and_in_a_cycle():
    error = failure("let d = 1\nlet d = 2\n" + NET.format(layer="dense y: d"))
    assert _at(error) == ("E321", 2, 5, 6)
    error = failure("let d = d + 1\n" + NET.format(layer="dense y: d"))
    assert error.code == "E322" and error.message == "constant 'd' is defined by itself"
    error = failure("let a = c\nlet b = a * 2\nlet c = b - 1\n" + NET.format(layer="dense y: 2"))
    assert error.code == "E322" and "a -> c -> b -> a" in error.message
    assert len(error.errors) == 1  # one cycle, said once


def test_long_expressions_and_chains_of_constants_are_bounded_not_a_traceback():
    # an operator chain deeper than 100 is E105 at parse time (evaluation recurses)
    assert constant(" + ".join(["1"] * 100)) == 100
    error = failure("let a = " + " + ".join(["1"] * 3000) + "\n" + NET.format(layer="dense y: a"))
    assert error.code == "E105" and "more than 100 operators deep" in error.message
    assert "in a chain such as 1 + 1 + ... + 1" in error.message and "anew" in error.hint
    # 5,000 constants each using the next one down: evaluated in order, not nested
    n = 5000
    chain = "".join(f"let a{i} = a{i - 1} + 1\n" for i in range(n, 0, -1))
    assert constant(f"a{n}", chain + "let a0 = 0") == n
    error = failure(chain + f"let a0 = a{n}\n" + NET.format(layer="dense y: 2"))
    assert error.code == "E322" and len(error.errors) == 1
    assert error.message.endswith("a5000 -> a4999 -> a4998 -> a4997 -> ... -> a1 -> a0 -> a5000")


def test_an_unused_constant_is_still_checked():
    error = failure("let unused = 1 // 0\n" + NET.format(layer="dense y: 2"))
    assert _at(error) == ("E220", 1, 14, 20)


def test_let_is_a_soft_keyword_a_layer_may_be_named_let():
    """The contract's six keywords cannot name layers; `let` is not one of them, so a layer named
    `let` is linked, summed and trained like any other, beside constants defined with `let`."""
    text = (
        "let d = 3\nnetwork n {\n    let e = d * 2\n    input x: 2\n    dense let: e\n"
        "    dense y: d\n    x -> let\n    let -> y\n}\n"
    )
    program = nnspec.loads(text).program
    assert [layer.name for layer in program.layers] == ["x", "let", "y"]
    assert program.layer("let").shape.dims == (6,) and program.layer("y").inputs[0].source == "let"


def test_a_layer_written_with_equals_for_its_colon_is_pointed_at():
    error = failure("network n {\n    input x: 4\n    dense  y =  2\n    x -> y\n}\n")
    assert (error.code, error.message) == ("E103", "unexpected '='")
    assert (error.span.line, error.span.column) == (3, 14)
    assert (
        error.hint
        == "a layer's options follow ':', as in 'dense y: ...'; a constant is 'let y = ...'"
    )


def test_operators_out_of_place_are_stray_characters():
    error = failure("network n {\n    input x: 4\n    dense y: 2\n    x * y\n}\n")
    assert (error.code, error.message) == ("E102", "unexpected character '*'")


# ---- the property: integer arithmetic as Python's ---------------------------------------------
_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv}

leaves = st.integers(min_value=-50, max_value=50).map(lambda n: ("num", n))
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(sorted(_OPS)), inner, inner),
        st.tuples(st.just("neg"), inner),
    ),
    max_leaves=12,
)


def _python(tree) -> int:
    """Python's own int arithmetic on the tree (ZeroDivisionError for a zero divisor)."""
    if tree[0] == "num":
        return tree[1]
    if tree[0] == "neg":
        return -_python(tree[1])
    return _OPS[tree[0]](_python(tree[1]), _python(tree[2]))


def _text(tree) -> str:
    """The tree written fully parenthesised, so that its shape is the tree's."""
    if tree[0] == "num":
        return str(tree[1])
    if tree[0] == "neg":
        return f"-({_text(tree[1])})"
    return f"({_text(tree[1])} {tree[0]} {_text(tree[2])})"


@settings(max_examples=150, deadline=None)
@given(trees)
def test_integer_expressions_evaluate_as_python_ints(tree):
    try:
        expected = _python(tree)
    except ZeroDivisionError:
        with pytest.raises(nnspec.SpecError) as caught:
            constant(_text(tree))
        assert caught.value.code == "E220"
        return
    got = constant(_text(tree))
    assert got == expected and type(got) is int


@settings(max_examples=100, deadline=None)
@given(trees)
def test_shown_expressions_parse_back_to_the_same_value(tree):
    """`syntax.show` writes only the parentheses precedence needs; the value is kept."""
    value = parse(Source("<string>", f"let v = {_text(tree)}\n")).lets[0].value
    try:
        expected = _python(tree)
    except ZeroDivisionError:
        return
    assert constant(s.show(value)) == expected
