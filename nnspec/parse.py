"""Parse: `.nn` text -> syntax tree (`SpecFile`), or a `SpecError` with a caret.

The grammar (grammars/nnspec.lark) is loaded once, its parser tables cached in the user's cache
folder. The transformer is handed to lark's LALR parser, so the syntax tree is built while
parsing, with no parse tree in between (1.4x faster), and without lark's `propagate_positions`
(every rule has a builder, which takes its span from the tokens). The cyclic garbage collector is
paused meanwhile (it tripled parse time on 100,000-line specs), and `collector_paused`
(collector.py) pauses it across the later stages too. The transformer only converts: every
check happens in later stages.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from . import syntax as s
from .collector import collector_paused
from .errors import Source, Span, SpecError
from .shipped import grammar_text

KEYWORDS = frozenset({"network", "block", "train", "use", "output", "expect"})
SOFT_KEYWORDS = frozenset({"let"})  # a keyword only where the grammar wants one: names elsewhere
MAX_NESTING = 64  # brackets deeper than this are a mistake, not a spec
MAX_OPERATORS = 100  # operators nested deeper than this (`1 + 1 + ...`): a mistake, and the stack

_OPERATORS = frozenset({"+", "-", "*", "/", "//"})
_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {"RPAR", "RSQB", "RBRACE"}


def parse(source: Source) -> s.SpecFile:
    """Parse one file's text into its syntax tree; raise `SpecError` (E1xx) on a syntax error."""
    if "\r" in source.text:
        _refuse_lone_carriage_returns(source)
    parser, builder = _parser()
    with _LOCK, collector_paused():
        builder.source = source
        builder.postlex.reset(source)
        try:
            return parser.parse(source.text)
        except UnexpectedInput as error:
            raise _syntax_error(error, source, builder.postlex, parser) from None
        except VisitError as error:  # a conversion failed: unwrap our own SpecError
            if isinstance(error.orig_exc, SpecError):
                raise error.orig_exc from None
            raise


def _refuse_lone_carriage_returns(source: Source) -> None:
    """E102 at the first `\r` that is not followed by `\n`: lines end at `\n` or `\r\n`, and a
    file with old Mac line ends would otherwise be one long line to the parser."""
    lone = re.search(r"\r(?!\n)", source.text)
    if lone is None:
        return
    line = source.text.count("\n", 0, lone.start()) + 1
    column = lone.start() - (source.text.rfind("\n", 0, lone.start()) + 1) + 1
    raise SpecError(
        "E102",
        "a carriage return (\\r) that ends no line: nnspec reads lines that end in \\n or \\r\\n",
        Span(source, line, column, line, column + 1),
        "save the file with Unix (LF) or Windows (CRLF) line endings",
    )


def decode(data: bytes, path: str) -> Source:
    """Bytes of a spec file -> `Source`; invalid UTF-8 or NUL bytes are E101 at the bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        text = data.decode("utf-8", errors="replace")
        before = data[: error.start].decode("utf-8", errors="replace")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        raise SpecError(
            "E101",
            f"the file is not UTF-8 text: byte 0x{data[error.start]:02x} cannot be decoded",
            Span(Source(path, text), line, column, line, column + 1),
            "save the file as UTF-8; a .nn spec is plain text",
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        column = text.index("\x00") - (text.rfind("\n", 0, text.index("\x00")) + 1) + 1
        source = Source(path, text)
        raise SpecError(
            "E101",
            "the file holds NUL bytes: it looks like a binary file, not a spec",
            Span(source, line, column, line, column + 1),
            "a .nn spec is plain UTF-8 text",
        )
    return Source(path, text)


# ---- the parser, built once ---------------------------------------------------------
_LOCK = threading.Lock()


class _BracketPostLexer:
    """Drops newlines inside ( ) and [ ], so lists and calls may span lines; bounds nesting."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.open: list[Token] = []
        self.source: Source | None = None

    def reset(self, source: Source) -> None:
        self.open = []
        self.source = source

    def process(self, stream):
        open_ = self.open
        for token in stream:
            kind = token.type
            if kind in _OPENERS:
                open_.append(token)
                if len(open_) > MAX_NESTING:
                    raise SpecError(
                        "E105",
                        f"brackets nested more than {MAX_NESTING} deep",
                        _token_span(self.source, token),
                        "flatten the value; no option needs this much nesting",
                    )
            elif kind in _CLOSERS:
                if open_ and _OPENERS[open_[-1].type] == kind:
                    open_.pop()
            elif kind == "_NL" and open_ and open_[-1].type != "LBRACE":
                continue
            yield token


class _SyntaxBuilder(Transformer):
    """Parse-tree rule -> syntax model, one method per rule (a table, read top to bottom)."""

    source: Source

    def __init__(self, postlex: _BracketPostLexer) -> None:
        super().__init__()
        self.postlex = postlex

    def _span(self, children) -> Span:
        """From the first positioned child to the last (lark filters anonymous tokens out; an
        optional part left out is None, and an empty list has no position either)."""
        first, last = 0, len(children) - 1
        while not _located(children[first]):
            first += 1
        while not _located(children[last]):
            last -= 1
        line, column = _start(children[first])
        end_line, end_column = _end(children[last])
        return Span(self.source, line, column, end_line, end_column)

    def _name(self, token: Token) -> s.Name:
        return s.Name(span=_token_span(self.source, token), text=str(token))

    # files
    def start(self, items):
        groups = {s.Use: [], s.Block: [], s.Network: [], s.Train: [], s.Let: []}
        for item in items:
            groups[type(item)].append(item)
        return s.SpecFile(
            path=self.source.path,
            uses=tuple(groups[s.Use]),
            blocks=tuple(groups[s.Block]),
            networks=tuple(groups[s.Network]),
            trains=tuple(groups[s.Train]),
            lets=tuple(groups[s.Let]),
        )

    def use(self, children):
        return s.Use(span=self._span(children), path=self._string(children[0]))

    def params(self, names):
        return tuple(self._name(name) for name in names)

    def block(self, children):
        name, params, body = children
        return s.Block(
            span=self._span(children), name=self._name(name), params=params or (), body=body
        )

    def network(self, children):
        name, description, body = children
        return s.Network(
            span=self._span(children),
            name=self._name(name),
            description=self._string(description) if description is not None else None,
            body=body,
        )

    def body(self, statements):
        return tuple(statements)

    # bodies
    def layer(self, children):
        kind, name, args = children
        return s.Layer(
            span=self._span(children), kind=self._name(kind), name=self._name(name), args=args or ()
        )

    def let(self, children):
        word, name, value = children
        if word != "let":  # `dense d = 3`: a layer with `=` where its options want `:`
            line = self.source.text.splitlines()[name.end_line - 1]
            column = line.index("=", name.end_column - 1) + 1
            raise SpecError(
                "E103",
                "unexpected '='",
                Span(self.source, name.end_line, column, name.end_line, column + 1),
                f"a layer's options follow ':', as in '{word} {name}: ...'; "
                f"a constant is 'let {name} = ...'",
            )
        return s.Let(span=self._span([name, value]), name=self._name(name), value=value)

    def connection(self, children):
        links = []
        for i in range(0, len(children) - 2, 2):
            sources, arrow, targets = children[i], children[i + 1], children[i + 2]
            span = _token_span(self.source, arrow)
            links.extend(
                s.Link(span=span, source=source, target=target, delayed=arrow == "~>")
                for source in sources
                for target in targets
            )
        return s.Connection(span=self._span(children), links=tuple(links))

    def endpoints(self, endpoints):
        return endpoints

    def endpoint(self, children):
        layer, port = children
        return s.Endpoint(
            span=self._span(children),
            layer=self._name(layer),
            port=self._name(port) if port else None,
        )

    def output(self, items):
        return s.Output(span=self._span(items), items=tuple(items))

    def output_item(self, children):
        name, reduce = children
        return s.OutputItem(
            span=self._span(children),
            name=self._name(name),
            reduce=self._name(reduce) if reduce else None,
        )

    # train sections
    def train(self, children):
        network, *entries = (c for c in children if not (isinstance(c, Token) and c.type != "NAME"))
        return s.Train(
            span=self._span(children),
            network=self._name(network) if network is not None else None,
            settings=tuple(e for e in entries if isinstance(e, s.Setting)),
            expects=tuple(e for e in entries if isinstance(e, s.Expect)),
        )

    def setting(self, children):
        key, value = children
        return s.Setting(span=self._span(children), key=self._name(key), value=value)

    def expect(self, children):
        output, metric, op, value = children
        name = self._name(output)
        if metric is not None:  # OUTPUT.metric: one name, spanning both
            name = s.Name(span=self._span([output, metric]), text=f"{output}.{metric}")
        return s.Expect(span=self._span(children), metric=name, op=str(op), value=value)

    # values
    def option(self, children):
        key, value = children
        return s.Arg(span=self._span(children), key=self._name(key), value=value)

    def args(self, items) -> tuple[s.Arg, ...]:
        return tuple(
            item if isinstance(item, s.Arg) else s.Arg(span=item.span, key=None, value=item)
            for item in items
        )

    def number(self, children):
        token = children[0]
        span = _token_span(self.source, token)
        text = str(token)
        try:
            value = int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:  # more digits than Python converts
            value = float("inf")
        if value in (float("inf"), float("-inf")) or abs(value) > 10**308:
            raise SpecError(
                "E106",
                f"number out of range: {_shorten(text)}",
                span,
                "numbers must be finite and below about 1e308",
            )
        return s.Number(span=span, value=value)

    def string(self, children):
        return self._string(children[0])

    def _string(self, token: Token) -> s.String:
        span = _token_span(self.source, token)
        body, out, i = str(token)[1:-1], [], 0
        while i < len(body):
            char = body[i]
            if char == "\\":
                escaped = body[i + 1]
                if escaped not in '"\\':
                    raise SpecError(
                        "E107",
                        f"unknown escape '\\{escaped}' in a string",
                        span,
                        'strings know two escapes: \\" for a quote and \\\\ for a backslash',
                    )
                char, i = escaped, i + 1
            out.append(char)
            i += 1
        return s.String(span=span, value="".join(out))

    def symbol(self, children):
        return s.Symbol(span=_token_span(self.source, children[0]), name=str(children[0]))

    def open(self, children):
        return s.Open(span=_token_span(self.source, children[0]))

    def list(self, children):
        items = tuple(item for item in children if item is not None and not isinstance(item, Token))
        return s.ListValue(span=self._span(children), items=items)

    def dict(self, children):
        items = tuple(item for item in children if isinstance(item, s.Arg))
        return s.DictValue(span=self._span(children), items=items)

    def pair(self, children):
        key, value = children
        return s.Arg(span=self._span(children), key=self._name(key), value=value)

    def call(self, children):
        name, args = children
        return s.Call(span=self._span(children), name=self._name(name), args=args or ())

    # arithmetic: the span runs from the left operand to the right one
    def _binary(self, op: str, children) -> s.Binary:
        left, right = children[0], children[-1]  # a MINUS token sits between
        span = self._span(children)
        depth = _depth(span, max(_depth_of(left), _depth_of(right)))
        return s.Binary(span=span, op=op, left=left, right=right, depth=depth)

    def add(self, children):
        return self._binary("+", children)

    def sub(self, children):
        return self._binary("-", children)

    def mul(self, children):
        return self._binary("*", children)

    def div(self, children):
        return self._binary("/", children)

    def floordiv(self, children):
        return self._binary("//", children)

    def paren(self, children):
        return replace(children[1], span=self._span(children))

    def negate(self, children):
        span = self._span(children)
        operand = children[-1]
        return s.Negate(span=span, operand=operand, depth=_depth(span, _depth_of(operand)))


def _depth_of(value: s.Value) -> int:
    return value.depth if isinstance(value, (s.Binary, s.Negate)) else 0


def _depth(span: Span, below: int) -> int:
    """The depth of an operator over operands `below` deep; E105 past `MAX_OPERATORS`."""
    if below >= MAX_OPERATORS:
        raise SpecError(
            "E105",
            f"an expression nested more than {MAX_OPERATORS} operators deep (in a chain such as "
            "1 + 1 + ... + 1, each operator holds the ones before it)",
            span,
            "split it into constants: 'let a = ...', then use a (each constant starts anew)",
        )
    return below + 1


def _token_span(source: Source, token: Token) -> Span:
    return Span(source, token.line, token.column, token.end_line, token.end_column)


def _located(item) -> bool:
    return isinstance(item, (Token, s.Node, tuple, list)) and bool(item)


def _start(item) -> tuple[int, int]:
    if isinstance(item, Token):
        return item.line, item.column
    if isinstance(item, s.Node):
        return item.span.line, item.span.column
    return _start(item[0])


def _end(item) -> tuple[int, int]:
    if isinstance(item, Token):
        return item.end_line, item.end_column
    if isinstance(item, s.Node):
        return item.span.end_line, item.span.end_column
    return _end(item[-1])


def _shorten(text: str) -> str:
    return text if len(text) <= 24 else text[:12] + "..." + text[-8:]


@lru_cache(maxsize=1)
def _parser() -> tuple[Lark, _SyntaxBuilder]:
    grammar = grammar_text()
    postlex = _BracketPostLexer()
    builder = _SyntaxBuilder(postlex)
    cache = _cache_file()
    parser = Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        postlex=postlex,
        transformer=builder,
        maybe_placeholders=True,
        cache=cache,
    )
    if cache:
        _make_private(Path(cache))
    return parser, builder


def _cache_file() -> str | bool:
    """Where lark keeps the parser tables it computes from the grammar (35 ms at every start
    otherwise), or False for no cache. Lark reads the file back with pickle, before it compares
    the hash of the grammar stored in it, so a file someone else could write would run their
    code: the cache lives in a folder of the user's own (`nnspec` in the user's cache folder,
    created with mode 0700), which is used only when it is the user's and no one else may write
    to it; a cache file there that is not the user's, not a plain file, or writable by others is
    removed unread, and the tables are built afresh. Without such a folder there is no cache."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nnspec"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(os.lstat(folder), stat.S_ISDIR):
            return False
        path = folder / "grammar.lark-cache"
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return str(path)
        if not _private(info, stat.S_ISREG):
            path.unlink()  # the folder is the user's, so its files may be removed
    except (OSError, RuntimeError):  # RuntimeError: no home folder to be found
        return False
    return str(path)


def _private(info: os.stat_result, is_type) -> bool:
    """Whether a file or folder is of the expected type (`stat.S_ISDIR`, `stat.S_ISREG`: not a
    symbolic link), owned by this user, and writable by no one else (where the system has user
    ids: on Windows the user's profile folder is private by its access lists)."""
    if not is_type(info.st_mode):
        return False
    if not hasattr(os, "getuid"):
        return True
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _make_private(path: Path) -> None:
    """Lark writes the cache file with the process's umask: make it the user's alone (mode 0600),
    so that a umask of 002 does not get it refused and rebuilt at every start."""
    try:
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != 0o600:
            os.chmod(path, 0o600)
    except OSError:  # not written (a read-only folder): the next start builds the tables again
        pass


# ---- syntax errors ----------------------------------------------------------------------
_READABLE = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "_NL": "the end of the line",
    "ARROW": "'->' or '~>'",
    "COMPARE": "a comparison (>=, <=, >, <)",
    "$END": "the end of the file",
}


def _describe(terminal: str, parser: Lark) -> str:
    if terminal in _READABLE:
        return _READABLE[terminal]
    try:
        pattern = parser.get_terminal(terminal).pattern
    except KeyError:
        return terminal.lower()
    return f"'{pattern.value}'" if pattern.type == "str" else terminal.lower()


def _syntax_error(
    error: UnexpectedInput, source: Source, postlex: _BracketPostLexer, parser: Lark
) -> SpecError:
    if isinstance(error, UnexpectedCharacters):
        return _bad_character(error, source)
    assert isinstance(error, UnexpectedToken)
    token = error.token
    expected = sorted({_describe(t, parser) for t in error.expected if not t.startswith("__")})
    if token.type == "$END":
        return _unexpected_end(source, postlex, expected)
    inner = postlex.open[-1] if postlex.open else None
    if (
        inner is not None
        and inner.type != "LBRACE"
        and (token.line > inner.line or token.type == "RBRACE")
    ):
        # a bracket left open swallows the line ends after it
        return _unexpected_end(source, postlex, expected)
    span = _token_span(source, token)
    if str(token) in _OPERATORS and token.type not in ("STRING", "NAME"):
        # an operator out of place reads as a stray character, as before arithmetic existed
        hint = (
            "links are written '->' (same step) or '~>' (previous step)"
            if str(token) == "-"
            else "arithmetic goes where a value goes, as in 'dense h: 4 * d'"
        )
        return SpecError("E102", f"unexpected character '{token}'", span, hint)
    shown = "end of line" if token.type == "_NL" else f"'{token}'"
    if token.type.lower() in KEYWORDS and "NAME" in error.expected:
        return SpecError(
            "E108",
            f"'{token}' is a keyword and cannot be used as a name",
            span,
            f"choose another name; the keywords are {', '.join(sorted(KEYWORDS))}",
        )
    if token.type == "_NL":
        span = Span(source, token.line, token.column, token.line, token.column + 1)
    return SpecError("E103", f"unexpected {shown}", span, _hint(token, error.expected, expected))


def _hint(token: Token, terminals: set[str], expected: list[str]) -> str:
    if "COLON" in terminals and token.type in ("NUMBER", "LSQB", "NAME"):
        return "a layer's arguments follow a colon, as in 'dense h: 8, act=relu'"
    if token.type == "EQUAL" and "ARROW" in terminals:
        return "links are written 'a -> b'; options belong to a layer: 'dense h: 8, act=relu'"
    if token.type == "_NL" and "NAME" in terminals and "ARROW" not in terminals:
        return "the statement is incomplete: " + _expected_text(expected)
    return _expected_text(expected)


def _expected_text(expected: list[str]) -> str:
    if len(expected) == 1:
        return f"expected {expected[0]}"
    return "expected one of: " + ", ".join(expected)


def _unexpected_end(source: Source, postlex: _BracketPostLexer, expected: list[str]) -> SpecError:
    if postlex.open:
        opener = postlex.open[-1]
        closer = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}[opener.type]
        return SpecError(
            "E104",
            f"'{opener}' is never closed",
            _token_span(source, opener),
            f"add the matching '{closer}'",
        )
    lines = source.text.rstrip().splitlines() or [""]
    line = len(lines)
    span = Span(source, line, len(lines[-1]) + 1, line, len(lines[-1]) + 2)
    return SpecError("E104", "unexpected end of the file", span, _expected_text(expected))


def _bad_character(error: UnexpectedCharacters, source: Source) -> SpecError:
    span = Span(source, error.line, error.column, error.line, error.column + 1)
    char = error.char
    if char == '"':
        return SpecError(
            "E107",
            "a string is not closed on its line",
            span,
            'end the string with " on the same line',
        )
    shown = repr(char)[1:-1] if not char.isprintable() else char
    hint = None
    if char.isalpha():
        hint = "names use the letters A-Z and a-z, digits and _"
    elif char in "{}":
        hint = "braces open and close a network, block or train section"
    elif char == "-":
        hint = "links are written '->' (same step) or '~>' (previous step)"
    elif char in "%^":
        hint = "arithmetic knows + - * / // and ( ): write 4 * d, d // 2 or (d + 1) * 2"
    else:
        hint = (
            "a spec is made of names, numbers, \"strings\", [ ], ( ), { }, ':', ',', '=', "
            "'->', '~>' and arithmetic (+ - * / //); '#' starts a comment"
        )
    return SpecError("E102", f"unexpected character '{shown}'", span, hint)
