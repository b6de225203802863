"""Property tests: generated and mutated specs go to the checker; only `SpecError` may come out.

A traceback on bad input is a bug (DESIGN.md), and so is a hang: every call runs under a
`signal.alarm` limit of CALL_LIMIT seconds, and running past it fails the test.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from contextlib import contextmanager

import pytest
from conftest import EXAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnspec
from nnspec.check import verify
from nnspec.kinds import REGISTRY, SPEC_KINDS

CALL_LIMIT = 10  # seconds per call to nnspec.loads

SETTINGS = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


class Hang(
    BaseException
):  # a BaseException, so that no `except Exception` inside nnspec can swallow it
    pass


@contextmanager
def time_limit(seconds: int):
    def on_alarm(signum, frame):
        raise Hang(f"nnspec.loads ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_only_spec_errors(text: str, path: str = "<string>", network: str | None = None):
    """`nnspec.loads(text)`: the model, or None on `SpecError`; anything else (or a hang) fails.
    `path` places the text, for the data files its train section names beside it; `network`
    chooses one of a file's several networks."""
    try:
        with time_limit(CALL_LIMIT):
            model = nnspec.loads(text, network, path=path)
    except nnspec.SpecError as error:
        str(error)  # rendering the error must not fail either
        return None
    except Hang:
        pytest.fail(f"nnspec.loads hangs (> {CALL_LIMIT} s) on {text[:200]!r}")
    verify(model.program)
    return model


# ---- (a) random text from spec tokens -----------------------------------------------------------
TOKENS = [
    "network",
    "block",
    "train",
    "use",
    "output",
    "expect",
    "input",
    "dense",
    "add",
    "conv",
    "relu",
    "{",
    "}",
    "->",
    "~>",
    ":",
    ",",
    "=",
    "[",
    "]",
    "(",
    ")",
    ".",
    ";",
    "#",
    "\n",
    " ",
    "  ",
    "\t",
    "x",
    "y",
    "h",
    "a",
    "b",
    "_",
    "r1",
    "act",
    "seq",
    "repeat",
    "steps",
    "frozen",
    "last",
    "mean",
    "weights",
    "true",
    "false",
    "data",
    "loss",
    "epochs",
    ">=",
    "<",
    "-",
    "0",
    "1",
    "-2",
    "0.5",
    "1e-3",
    "64",
    "1e999",
    "-1e999",
    "1e308",
    str(10**400),
    "-" + str(10**40),
    ".5",
    "3.",
    '"x"',
    '""',
    '"a\\"b"',
    '"\\n"',
    '"unclosed',
    "\\",
    "\x00",
    "\ufeff",
    "é",
    "\r",
]

token_text = st.lists(st.sampled_from(TOKENS), max_size=60).map(lambda parts: " ".join(parts))
token_text_tight = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


@pytest.mark.slow
@settings(max_examples=300, **SETTINGS)
@given(st.one_of(token_text, token_text_tight))
def test_random_token_text(text):
    check_only_spec_errors(text)


@settings(max_examples=150, **SETTINGS)
@given(
    st.text(
        alphabet=st.sampled_from(list('network{}->~:,=[]().;#\n \t"\\0123456789eE_xyh')),
        max_size=120,
    )
)
def test_random_characters(text):
    check_only_spec_errors(text)


NETWORK_SHELL = "network n {{\n    input x: 4\n{body}\n}}\n"


@pytest.mark.slow
@settings(max_examples=200, **SETTINGS)
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join))
def test_random_statement_in_a_network(line):
    """Random tokens as one statement inside an otherwise valid network: reaches the resolver and
    checker."""
    check_only_spec_errors(NETWORK_SHELL.format(body=f"    dense h: 2\n    {line}\n    x -> h"))


# ---- (b) mutated examples ------------------------------------------------------------------------
EXAMPLE_TEXTS = {
    path.name: path.read_text(encoding="utf-8") for path in sorted(EXAMPLES.glob("*.nn"))
}
WORDS = [
    "network",
    "block",
    "{",
    "}",
    "->",
    "~>",
    ":",
    ",",
    "=",
    "[",
    "]",
    "(",
    ")",
    "x",
    "h",
    "y",
    "dense",
    "add",
    "input",
    "seq",
    "repeat=0",
    "repeat=-1",
    "repeat=100000",
    "1e999",
    str(10**400),
    "0",
    "-1",
    '"x"',
    "output",
    "train",
    "use",
    "#",
    ";",
    "\n",
    ".",
    "mean",
    "last",
    "99999999999",
]
ODD = st.text(
    alphabet=st.characters(codec="utf-8", categories=("Cc", "Cf", "Zs", "Zl", "So", "Lo", "Mn")),
    min_size=1,
    max_size=4,
)


def test_examples_are_valid():
    assert EXAMPLE_TEXTS, "no examples found"
    for name, text in EXAMPLE_TEXTS.items():
        network = "discriminator" if name == "dcgan.nn" else None  # a GAN's file holds two
        assert check_only_spec_errors(text, str(EXAMPLES / name), network) is not None, name


@st.composite
def mutated_example(draw):
    text = draw(st.sampled_from(sorted(EXAMPLE_TEXTS.values())))
    for _ in range(draw(st.integers(1, 3))):
        text = draw(mutation(text))
    return text


def mutation(text: str):
    n = len(text)
    lines = text.split("\n")

    def delete_span(args):
        i, k = args
        return text[:i] + text[i + k :]

    def duplicate_line(i):
        return "\n".join(lines[: i + 1] + [lines[i]] + lines[i + 1 :])

    def swap_lines(args):
        i, j = args
        out = list(lines)
        out[i], out[j] = out[j], out[i]
        return "\n".join(out)

    def replace_token(args):
        i, word = args
        parts = text.split(" ")
        parts[i % len(parts)] = word
        return " ".join(parts)

    def insert(args):
        i, odd = args
        return text[:i] + odd + text[i:]

    def truncate(i):
        return text[:i]

    position = st.integers(0, n)
    line = st.integers(0, len(lines) - 1)
    return st.one_of(
        st.tuples(position, st.integers(1, 40)).map(delete_span),
        line.map(duplicate_line),
        st.tuples(line, line).map(swap_lines),
        st.tuples(st.integers(0, 10_000), st.sampled_from(WORDS)).map(replace_token),
        st.tuples(position, ODD).map(insert),
        st.tuples(position, st.sampled_from(WORDS)).map(insert),
        position.map(truncate),
    )


@pytest.mark.slow
@settings(max_examples=400, **SETTINGS)
@given(mutated_example())
def test_mutated_examples(text):
    check_only_spec_errors(text)


# ---- (c) structurally valid networks from the registry -------------------------------------------
SMALL_VALUES = st.one_of(
    st.integers(-2, 9).map(str),
    st.sampled_from(
        [
            "0.5",
            "1e-3",
            "relu",
            "tanh",
            "max",
            "avg",
            "mean",
            "sum",
            "same",
            "valid",
            "true",
            "false",
            "[1, 4, 4]",
            "[2, 6, 6]",
            "[3]",
            "[]",
            "leaky_relu(alpha=0.1)",
            '"s"',
            "2.5",
        ]
    ),
)


GOOD = {  # plausible values by option name, so that most generated networks get past the options
    "units": ["1", "2", "3", "4"],
    "channels": ["1", "2"],
    "vocabulary": ["5", "10"],
    "dim": ["2", "4"],
    "heads": ["1", "2"],
    "pieces": ["2", "3"],
    "rate": ["0.5", "0"],
    "alpha": ["0.1", "1"],
    "eps": ["1e-5"],
    "threshold": ["1.0", "0.5"],
    "decay": ["0.9"],
    "act": ["relu", "tanh", "sigmoid", "softmax", "step", "elu(alpha=0.5)"],
    "bias": ["true", "false"],
    "frozen": ["true", "false"],
    "seq": ["true", "false", "3"],
    "causal": ["true", "false"],
    "kernel": ["1", "2", "3", "[1, 2]"],
    "size": ["1", "2", "4", "[1, 4, 4]"],
    "stride": ["1", "2"],
    "padding": ["same", "valid", "1"],
    "mode": ["max", "avg", "mean", "sum"],
    "steps": ["2", "3"],
    "weights": ["[[1, 2]]", "[[0.5], [0.5], [0.5], [0.5]]"],
    "biases": ["[0]", "[0, 1]"],
}


def option_value(key: str):
    """Mostly a plausible value for the option, sometimes any small value."""
    good = st.sampled_from(GOOD.get(key, ["1"]))
    return st.integers(0, 4).flatmap(lambda roll: SMALL_VALUES if roll == 0 else good)


@st.composite
def layer_line(draw, kind_name: str, name: str) -> str:
    kind = REGISTRY[kind_name]
    fields = sorted(kind.Options.model_fields)
    args, given_keys = [], set()
    for key in kind.positional:
        if draw(st.integers(0, 9)) == 0:  # sometimes leave a required value out
            break
        args.append(draw(option_value(key)))
        given_keys.add(key)
    free = [key for key in fields if key not in given_keys or draw(st.integers(0, 9)) == 0]
    for key in draw(st.lists(st.sampled_from(free), max_size=2, unique=True)) if free else []:
        if key in kind.flags and draw(st.booleans()):
            args.append(key)
        else:
            args.append(f"{key}={draw(option_value(key))}")
    if draw(st.integers(0, 9)) == 0:
        args.append(f"repeat={draw(st.sampled_from([2, 3, 1, 0, -1]))}")
    return f"    {kind_name} {name}" + (f": {', '.join(args)}" if args else "")


@st.composite
def registry_network(draw) -> str:
    kinds = sorted(SPEC_KINDS - {"input"})
    count = draw(st.integers(1, 7))
    names = ["x"] + [f"l{i}" for i in range(count)]
    lines = [
        draw(layer_line("input", "x"))
        if draw(st.integers(0, 3)) == 0
        else draw(
            st.sampled_from(
                [
                    "    input x: 4",
                    "    input x: 4, seq",
                    "    input x: [1, 6, 6]",
                    "    input x: 3, steps=3",
                ]
            )
        )
    ]
    for name in names[1:]:
        lines.append(draw(layer_line(draw(st.sampled_from(kinds)), name)))
    for i, name in enumerate(names[1:], start=1):  # a chain, so most networks get somewhere
        if draw(st.integers(0, 7)):
            lines.append(f"    {names[i - 1]} -> {name}")
    for _ in range(draw(st.integers(0, 4))):  # extra links, delayed or into ports
        source, target = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        arrow = draw(st.sampled_from(["->", "~>"]))
        kind = REGISTRY[lines[names.index(target)].split()[0]]
        port = ""
        if kind.ports and draw(st.booleans()):
            port = "." + draw(st.sampled_from(list(kind.ports) + ["nope"]))
        lines.append(f"    {source} {arrow} {target}{port}")
    if draw(st.integers(0, 3)) == 0:
        lines.append(
            f"    output {draw(st.sampled_from(names))}"
            + draw(st.sampled_from(["", ": last", ": mean", ": x"]))
        )
    return "network g {\n" + "\n".join(lines) + "\n}\n"


@pytest.mark.slow
@settings(max_examples=400, **SETTINGS)
@given(registry_network())
def test_registry_networks(text):
    check_only_spec_errors(text)  # verify(model.program) runs on success


def nested_blocks(depth: int, repeat: int, width: int = 4) -> str:
    """Blocks that use blocks: b0 holds a dense layer, each b{k} holds `repeat` copies of b{k-1}."""
    blocks = ["block b0(w) {\n    input i: w\n    dense d: w, act=relu\n    i -> d\n}"]
    for k in range(1, depth):
        blocks.append(
            f"block b{k}(w) {{\n    input i: w\n"
            f"    b{k - 1} inner: w, repeat={repeat}\n    i -> inner\n}}"
        )
    return "\n".join(blocks) + (
        f"\nnetwork n {{\n    input x: {width}\n"
        f"    b{depth - 1} r: {width}, repeat={repeat}\n    x -> r\n}}\n"
    )


@pytest.mark.slow
@settings(max_examples=60, **SETTINGS)
@given(st.integers(1, 6), st.integers(-1, 4), st.integers(1, 5))
def test_blocks(width, repeat, depth):
    """Blocks that use blocks, with odd repeat counts (at most 4**5 copies: a few thousand
    layers)."""
    check_only_spec_errors(nested_blocks(depth, repeat, width))


def test_nested_repeats_are_counted_before_they_are_placed():
    """The first copy of a repeated block tells how many layers every copy places, so nested
    repeats that multiply past 50,000 layers are E406 at the innermost use that shows it, after
    one copy of each level (not after placing 50,000 layers)."""
    with pytest.raises(nnspec.SpecError) as raised:
        nnspec.loads(nested_blocks(3, 100))
    error = raised.value
    assert error.code == "E406" and "more than 50,000 layers" in error.message
    assert error.span.source.line(error.span.line).strip() == "b0 inner: w, repeat=100"


@pytest.mark.slow
def test_a_nest_of_repeats_under_the_limit_checks():
    """The count after the first copy refuses only what would pass the limit: 20,101 layers."""
    assert len(nnspec.loads(nested_blocks(2, 100)).program.layers) == 1 + 100 * 201


@pytest.mark.slow
def test_nested_repeat_explosion_is_an_error():
    """Regression (found by test_blocks; fixed in a962d22, E406 past 50,000 placed layers):
    `repeat` is bounded per level (1..10000) but nested blocks multiply, so this 19-line spec
    expands to about 1,000,000 layers; nnspec.loads ran for minutes (growing memory) instead of
    raising a SpecError. Run in a subprocess so that the hang and its memory stay out of the test
    process."""
    text = nested_blocks(3, 100)
    code = (
        "import sys, nnspec\n"
        "try:\n    nnspec.loads(sys.stdin.read())\n"
        "except nnspec.SpecError:\n    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=text,
            text=True,
            capture_output=True,
            timeout=CALL_LIMIT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"nnspec.loads hangs (> {CALL_LIMIT} s) on nested repeats: {text!r}")
    assert done.returncode == 0, (
        f"expected a SpecError, got exit {done.returncode}: {done.stderr[-2000:]}"
    )


# Inputs on which nnspec raised something other than SpecError, kept as regression cases.
FOUND = {
    # Regression (found by test_registry_networks; fixed in a962d22, now E307 at 'a'): a layer on a
    # `~>` cycle whose shape cannot be inferred (here conv on a vector) failed silently in the
    # exploratory walks of check._infer; in the final walk its delayed consumer 'a' was skipped
    # without an error, so check() crashed building the layers: KeyError: 'a'.
    "conv on a ~> cycle": (
        "network g {\n    input x: 4, seq\n    dense a: 4\n    conv c: 2\n"
        "    x -> a -> c\n    c ~> a\n}\n"
    ),
    # Regression (same cause): `attention b: repeat=2` chains b.1 into a port of b.2 other than its
    # query, so b.2 has no shape (E313 when alone); on a `~>` cycle this was KeyError: 'a'.
    "repeated attention on a ~> cycle": (
        "network g {\n    input x: 4, seq\n    add a\n    attention b: repeat=2\n"
        "    x -> a -> b\n    b ~> a\n}\n"
    ),
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_found_inputs(name):
    check_only_spec_errors(FOUND[name])


# ---- (d) extremes --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n",
        "\n\n\n",
        " \t\r\n\f\v",
        ";;;",
        "#",
        "\ufeff",
        "\x00",
        "\u2028",
        "[" * 10_000,
        "(" * 10_000,
        "{" * 10_000,
        "]" * 10_000,
        "network n { input x: " + "[" * 10_000 + "1" + "]" * 10_000 + " }",
        "network n {\n    input x: " + "[" * 10_000 + "\n}",
        "network n {\n    input x: 4\n    dense h: 2, weights="
        + "[" * 65
        + "]" * 65
        + "\n    x -> h\n}",
        "network n {\n    input x: 4\n    dense h: 2, act="
        + "f(" * 5_000
        + ")" * 5_000
        + "\n    x -> h\n}",
        "network " + "n" * 100_000 + " {\n    input x: 4\n}",
        "network n {\n    input x: 4\n    " + " -> ".join(["x"] * 20_000) + "\n}",
        "network n {\n    input x: 4\n    dense h: 2, weights=["
        + ", ".join(["1"] * 20_000)
        + "]\n    x -> h\n}",
        "network n {\n    input x: 4\n    dense h: " + "9" * 5_000 + "\n    x -> h\n}",
        "network n {\n    input x: 4\n    dense h: 1" + "0" * 400 + ".0\n    x -> h\n}",
        "network n {\n    input x: 4\n    dense h: 1e999\n    x -> h\n}",
        "network n {\n    input x: 4\n    dense h: 1e-999\n    x -> h\n}",
        "network n {\n    input x: 4\n    dense h: 2\n    x -> h\n}\n" + "# comment\n" * 10_000,
        "network n {\n    input x: " + '"' + "a" * 100_000 + '"' + "\n}",
        "\n" * 100_000,
        " " * 100_000,
        ";" * 100_000,
    ],
    ids=lambda text: repr(text[:24]) + f"..{len(text)}",
)
def test_extremes(text):
    check_only_spec_errors(text)


@settings(max_examples=40, **SETTINGS)
@given(st.text(alphabet=st.sampled_from(" \t\r\n\f\v;"), max_size=200))
def test_whitespace_only(text):
    check_only_spec_errors(text)


@settings(max_examples=30, **SETTINGS)
@given(
    st.sampled_from("[({"), st.integers(60, 3_000), st.sampled_from(["", "1", "\n", "x", "]", ")"])
)
def test_deep_nesting(opener, depth, filler):
    inner = opener * depth + filler
    check_only_spec_errors(inner)
    check_only_spec_errors(
        f"network n {{\n    input x: 4\n    dense h: 2, weights={inner}\n    x -> h\n}}"
    )


HUGE = {
    "1e999": "1e999",
    "-1e999": "-1e999",
    "10**400": str(10**400),
    "-10**400": "-" + str(10**400),
    "10**400+.5": "1" + "0" * 400 + ".5",
    "tiny*1e999": "0." + "0" * 400 + "1e999",
}
HUGE_PLACES = {
    "input": "network n {{\n    input x: {v}\n}}",
    # Regression (fixed in a962d22, now E106): an integer literal beyond float range (10**400)
    # passed the parser (parse.py `number` rejected only floats that overflow to inf) and then
    # crashed where a real is expected: OverflowError in kinds/base.py `_real` (float(value)) for
    # leaky_relu/elu alpha, weights, dropout rate, lif threshold/decay, and in settings.py
    # `read_train` (float(value)) for `expect`.
    "leaky_relu alpha": (
        "network n {{\n    input x: 4\n    dense h: 2, act=leaky_relu(alpha={v})\n    x -> h\n}}"
    ),
    "elu alpha": "network n {{\n    input x: 4\n    dense d: 2, act=elu(alpha={v})\n    x -> d\n}}",
    "weights": "network n {{\n    input x: 4\n    dense h: 2, weights=[[{v}]]\n    x -> h\n}}",
    "dropout": "network n {{\n    input x: 4\n    dropout d: {v}\n    x -> d\n}}",
    "lif": (
        "network n {{\n    input x: 4, seq\n    lif d: 3, threshold={v}, decay={v}\n    x -> d\n}}"
    ),
    "expect": (
        "network n {{\n    input x: 4\n    dense h: 2\n    x -> h\n}}\n"
        "train {{\n    data = xor\n    epochs = {v}\n    expect accuracy >= {v}\n}}"
    ),
    # (no bug known below)
    "steps": "network n {{\n    input x: 4, steps={v}\n    dense h: 2\n    x -> h\n}}",
    "conv kernel": (
        "network n {{\n    input x: [1, 4, 4]\n    conv c: 2, kernel={v}\n    x -> c\n}}"
    ),
    "optimizer": (
        "network n {{\n    input x: 4\n    dense h: 2\n    x -> h\n}}\n"
        "train {{\n    data = xor\n    optimizer = sgd(lr={v})\n    split = {v}\n}}"
    ),
    "repeat": (
        "block b(w) {{\n    input i: w\n    dense d: w\n    i -> d\n}}\n"
        "network n {{\n    input x: 4\n    b r: 4, repeat={v}\n    x -> r\n}}"
    ),
}


@pytest.mark.parametrize("number", sorted(HUGE))
@pytest.mark.parametrize("place", sorted(HUGE_PLACES))
def test_huge_numbers(place, number):
    check_only_spec_errors(HUGE_PLACES[place].format(v=HUGE[number]))


ALL_KINDS_ONCE = sorted(SPEC_KINDS)


@pytest.mark.parametrize("kind", ALL_KINDS_ONCE)
@pytest.mark.parametrize(
    "arg",
    [
        "",
        ": 0",
        ": -1",
        ": 1e999",
        ": []",
        ": [[]]",
        ": [0, 0, 0]",
        ': "s"',
        ": x",
        ": 2, 2, 2, 2",
        ": act=nope",
        ": 1" + "0" * 30,
        ": size=0",
        ": stride=0",
        ": rate=2",
        ": heads=0",
    ],
)
def test_every_kind_odd_arguments(kind, arg):
    name = "l"
    text = (
        f"network n {{\n    input x: 4, seq\n    {kind} {name}{arg}\n    x -> {name}\n}}"
        if kind != "input"
        else f"network n {{\n    input x{arg}\n    dense h: 2\n    x -> h\n}}"
    )
    check_only_spec_errors(text)
    check_only_spec_errors(text.replace("input x: 4, seq", "input x: [1, 4, 4]"))
    check_only_spec_errors(text.replace("input x: 4, seq", "input x: 4"))
