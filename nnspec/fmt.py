"""`nnspec fmt`: one canonical layout for `.nn` specs, every comment kept where it was.

The layout: four spaces per level of braces; one statement per line (`;` splits a line); a
layer's name, in every network or block, in one column after the widest kind (at least six
wide, as `output` and `expect` are); a train section's `=` in one column after its longest key;
one space around `->`, `~>`, comparisons, arithmetic and a setting's or constant's `=`, none
around an option's `=`; `, ` and `: `; lists, calls and dicts tight inside their brackets.
Numbers and strings keep the text they were written with. A line that continues inside `(` or
`[` keeps its breaks: its next lines line up after the bracket, or four spaces in when the
bracket ends its line. A comment on a line of its own moves to the indentation of what it sits
in; a comment after code keeps its column where the code leaves room (and lines that shared a
column keep sharing one), else it moves two spaces after the code. Runs of blank lines become
one; none opens or closes a body; one follows a top-level `}`.

It is safe: the formatted text must parse to the same syntax tree (positions aside) and check to
the same programs as the original, or the file is left as it was with R103. Formatting twice
changes nothing. The layout is computed from lark's own tokens (the contextual lexer the parser
uses) and a concrete parse tree that keeps every token; comments are read from the text between
tokens.
"""

from __future__ import annotations

import difflib
import re
import sys
import threading
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree

from . import syntax as s
from .errors import NnspecError, Source, SpecError

INDENT = 4
KIND_WIDTH = 6  # a layer's kind column is at least this wide (`input  x: 2`)
COMMENT_GAP = 2  # spaces at least between code and a comment after it
OPENERS = {"(": ")", "[": "]"}
_BLOCKS = ("block", "network", "train")
_LOCK = threading.Lock()


class FormatError(NnspecError):
    """A file the formatter will not write (R103: the layout would change what the spec says)."""


# ---- the public functions ----------------------------------------------------------------
def format_text(text: str, path: str = "<string>") -> str:
    """`text` in the canonical layout; raises `SpecError` when it does not parse. Its lines end
    as the text's first line does (a file saved on Windows keeps CRLF). Not checked for safety:
    `format_source` is."""
    from .parse import parse

    source = Source(path, text.removeprefix("\ufeff"))
    parse(source)  # nnspec's own parser: its syntax errors, with their codes and hints
    formatted = _Formatter(source.text).run()
    windows = source.text.partition("\n")[0].endswith("\r")
    return formatted.replace("\n", "\r\n") if windows else formatted


def format_source(source: Source) -> str:
    """The canonical layout of `source`, checked to mean what the original means (the same
    syntax tree, positions aside, and the same checked programs, or the same errors); raises
    `SpecError` for a spec that does not parse and `FormatError` (R103) when the check fails."""
    formatted = format_text(source.text, source.path)
    if formatted != source.text:
        _check_same(source, Source(source.path, formatted))
    return formatted


def run_fmt(paths: list[str], report, check: bool = False, diff: bool = False) -> bool:
    """`nnspec fmt`: format each file in place (`-` reads stdin and writes stdout); with `check`
    or `diff` write nothing, and say which files would change (`diff`: print a unified diff).
    `report(error)` prints an error (the command line's way). Returns True when a file has an
    error, or, with `check`, would change."""

    failed = changed = 0
    for path in paths:
        try:
            if path == "-":
                text = sys.stdin.read()
                source = Source("<stdin>", text.removeprefix("\ufeff"))
            else:
                from .resolve import read_source

                source = read_source(path)
                text = source.text
            formatted = format_source(source)
        except NnspecError as error:
            failed += 1
            report(error)
            continue
        if path == "-" and not (check or diff):
            sys.stdout.write(formatted)
            continue
        if formatted == text:
            continue
        changed += 1
        if diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    formatted.splitlines(keepends=True),
                    f"{path} (original)",
                    f"{path} (formatted)",
                )
            )
        if check or diff:
            print(f"would reformat {path}", file=sys.stderr)
        else:
            _write(path, _with_mark(path, formatted))
            print(f"reformatted {path}", file=sys.stderr)
    if len(paths) > 1 and (changed or failed):
        verb = "would be reformatted" if check or diff else "reformatted"
        tail = f", {failed} with errors" if failed else ""
        print(f"{changed} of {len(paths)} files {verb}{tail}", file=sys.stderr)
    return bool(failed or (check and changed))


def _with_mark(path: str, text: str) -> str:
    """`text` with the byte order mark the file at `path` starts with, if it does (some Windows
    editors write one): formatting keeps it, as it keeps the line ends."""
    with open(path, "rb") as file:
        return "\ufeff" + text if file.read(3) == b"\xef\xbb\xbf" else text


def _write(path: str, text: str) -> None:
    from .atomic import write_atomic

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8", newline="") as file:
            file.write(text)

    write_atomic(path, write)


# ---- safety ----------------------------------------------------------------------------
_POSITION = re.compile(r"  @\d+:\d+$", re.MULTILINE)


def _check_same(original: Source, formatted: Source) -> None:
    from .parse import parse

    def refuse(what: str) -> FormatError:
        return FormatError(
            "R103",
            f"formatting {original.path} would change {what}; the file is left as it was",
            "this is a bug in nnspec fmt: please report it with the spec",
        )

    try:
        after = parse(formatted)
    except SpecError:
        raise refuse("whether it parses") from None
    if _plain(parse(original)) != _plain(after):
        raise refuse("what it says")
    if _checked(original) != _checked(formatted):
        raise refuse("the programs it checks to")


def _plain(node):
    """A syntax tree as plain tuples, without spans: what the file says, not where. A minus
    before a number, `- 0.5`, is the number `-0.5`, as the formatter writes it."""
    if isinstance(node, s.Negate) and isinstance(node.operand, s.Number):
        return _plain(replace(node.operand, value=-node.operand.value))
    if isinstance(node, (s.Node, s.SpecFile)):
        return (type(node).__name__,) + tuple(
            (each.name, _plain(getattr(node, each.name)))
            for each in fields(node)
            if each.name not in ("span", "depth", "path")
        )
    if isinstance(node, tuple):
        return tuple(_plain(item) for item in node)
    return node


def _checked(source: Source) -> tuple:
    """The programs a spec checks to, as their dumps without positions; or its error codes."""
    from .dump import dump_graph, dump_program
    from .model import check_source

    try:
        models = check_source(source)
    except SpecError as error:
        return ("errors",) + tuple(sorted(each.code for each in error.errors))
    return tuple(
        _POSITION.sub("", dump_graph(m.program.graph)) + "\n" + dump_program(m.program)
        for m in models
    )


# ---- the parser that keeps every token ------------------------------------------------
@lru_cache(maxsize=1)
def _concrete_parser() -> Lark:
    from .parse import _BracketPostLexer, _cache_file
    from .shipped import grammar_text

    cache = _cache_file()  # the parser's tables, cached beside nnspec's own parser's
    if isinstance(cache, str):
        cache = str(Path(cache).with_name("fmt-grammar.lark-cache"))
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        postlex=_BracketPostLexer(),
        propagate_positions=True,
        maybe_placeholders=True,
        keep_all_tokens=True,
        cache=cache,
    )


@dataclass
class _Tok:
    text: str
    type: str
    role: str  # the rule the token belongs to: option, setting, negate, dict, ...
    start: int  # offsets into the text
    end: int


def _tokens(tree: Tree) -> list[_Tok]:
    out: list[_Tok] = []

    def walk(node: Tree) -> None:
        for child in node.children:
            if isinstance(child, Tree):
                walk(child)
            elif isinstance(child, Token) and child.type != "_NL":
                out.append(
                    _Tok(str(child), child.type, str(node.data), child.start_pos, child.end_pos)
                )

    walk(tree)
    return out


@dataclass
class _Unit:
    """One line's worth of the file as it will be laid out: a statement, the head of a block,
    network or train section (up to its `{`), or the `}` that closes one."""

    kind: str  # "statement", "open", "close"
    depth: int
    tokens: list[_Tok]
    rule: str = ""  # layer, setting, connection, use, let, ...
    width: int = 0  # the column width of a layer's kind or a setting's key in its body


@dataclass
class _Line:
    text: str  # the code, indented; "" for a blank line
    comment: str | None = None
    column: int | None = None  # the comment's column in the original (0-based)
    blank: bool = False


@dataclass
class _Formatter:
    text: str
    lines: list[_Line] = field(default_factory=list)

    def run(self) -> str:
        parser = _concrete_parser()
        with _LOCK:  # the post-lexer keeps state while it runs
            parser.options.postlex.reset(Source("<fmt>", self.text))
            tree = parser.parse(self.text)
        units = self._units(tree)
        previous_end = 0
        previous: _Unit | None = None
        for unit in units:
            self._gap(previous_end, unit.tokens[0].start, previous, unit)
            self._unit(unit)
            previous_end, previous = unit.tokens[-1].end, unit
        self._gap(previous_end, len(self.text), previous, None)
        while self.lines and self.lines[-1].blank:
            self.lines.pop()
        self._place_comments()
        if not self.lines:
            return ""
        return "\n".join(self._shown(line) for line in self.lines) + "\n"

    # the units, from the parse tree
    def _units(self, tree: Tree) -> list[_Unit]:
        units: list[_Unit] = []
        for item in tree.children:
            if not isinstance(item, Tree):
                continue
            rule = str(item.data)
            if rule not in _BLOCKS:
                units.append(_Unit("statement", 0, _tokens(item), rule))
                continue
            if rule == "train":  # "train" [NAME] "{" entries "}": the head is up to "{"
                children = item.children
                brace = next(i for i, c in enumerate(children) if isinstance(c, Token) and c == "{")
                head_tokens = _tokens(Tree(rule, children[: brace + 1]))
            else:  # "block" NAME "(" [params] ")" body, "network" NAME [STRING] body
                *head, body = item.children
                children = body.children
                brace = 0
                head_tokens = _tokens(Tree(rule, head)) + _tokens(Tree("body", children[:1]))
            children = children[brace + 1 :]
            units.append(_Unit("open", 0, head_tokens, rule))
            inner = [
                _Unit("statement", 1, _tokens(c), str(c.data))
                for c in children
                if isinstance(c, Tree)
            ]
            key = "layer" if rule != "train" else "setting"
            widths = [len(u.tokens[0].text) for u in inner if u.rule == key]
            width = max(widths, default=0)
            if rule != "train":
                width = max(width, KIND_WIDTH)
            for u in inner:
                u.width = width
            units.extend(inner)
            close = [c for c in children if isinstance(c, Token) and c == "}"][-1]
            units.append(
                _Unit("close", 0, [_Tok("}", "RBRACE", "body", close.start_pos, close.end_pos)])
            )
        return units

    # the text between two units: comments and blank lines
    def _gap(self, start: int, end: int, before: _Unit | None, after: _Unit | None) -> None:
        trailing, inner = _read_gap(self.text, start, end, at_start=before is None)
        if trailing is not None:
            line_start = self.text.rfind("\n", 0, start) + 1
            first = before.tokens[0].start
            if first >= line_start and self.text[line_start:first].strip():
                # the line held more than this statement (`a; b  # c`, a one-line network):
                # its column belonged to that line, not to this statement's
                trailing = (trailing[0], None)
            self._attach(trailing)
        # a comment line takes the indentation of what follows it (inside a body before its `}`)
        depth = 0 if after is None else after.depth + (after.kind == "close")
        opens = before is not None and before.kind == "open"
        for item in inner:
            if item is None:
                if self.lines and not self.lines[-1].blank and not opens:
                    self.lines.append(_Line("", blank=True))
            else:
                self.lines.append(_Line(" " * (INDENT * depth) + item))
                opens = False
        if after is not None and after.kind == "close":
            while self.lines and self.lines[-1].blank:
                self.lines.pop()
        if (
            before is not None
            and before.kind == "close"
            and before.depth == 0
            and after is not None
        ):
            # one blank line after a top-level `}`, before anything that follows
            index = self._after_close
            if index >= len(self.lines) or not self.lines[index].blank:
                self.lines.insert(index, _Line("", blank=True))

    def _attach(self, comment: tuple[str, int]) -> None:
        line = self.lines[-1]
        line.comment, line.column = comment

    # one unit, on one line or, inside brackets, on the lines it was written on
    def _unit(self, unit: _Unit) -> None:
        indent = " " * (INDENT * unit.depth)
        text = indent
        stack: list[list] = []  # per open bracket: [column after it, hanging?, line indent]
        line_indent = len(indent)
        previous: _Tok | None = None
        for index, token in enumerate(unit.tokens):
            if previous is not None:
                trailing, inner = _read_gap(self.text, previous.end, token.start)
                broken = _has_break(self.text, previous.end, token.start)
                if broken and stack:
                    if trailing is not None:
                        self.lines.append(_Line(text.rstrip()))
                        self._attach(trailing)
                    else:
                        self.lines.append(_Line(text.rstrip()))
                    top = stack[-1]
                    if previous.text in OPENERS:
                        top[1] = True
                    if token.text in (")", "]"):
                        column = top[2]
                    else:
                        column = top[2] + INDENT if top[1] else top[0]
                    for item in inner:
                        if item is not None:
                            self.lines.append(_Line(" " * column + item))
                    text = " " * column
                    line_indent = column
                else:
                    text += _space(previous, token)
            text += token.text
            if index == 0 and unit.rule in ("layer", "setting") and unit.width:
                text += " " * (unit.width - len(token.text))
            if token.text in OPENERS and token.type in ("LPAR", "LSQB"):
                stack.append([len(text), False, line_indent])
            elif token.text in (")", "]") and stack:
                stack.pop()
            previous = token
        self.lines.append(_Line(text.rstrip()))
        if unit.kind == "close" and unit.depth == 0:
            self._after_close = len(self.lines)

    _after_close: int = 0

    # comments after code: their columns
    def _place_comments(self) -> None:
        lines = self.lines
        i = 0
        while i < len(lines):
            if lines[i].comment is None or lines[i].column is None:
                i += 1
                continue
            j = i
            while (
                j + 1 < len(lines)
                and lines[j + 1].comment is not None
                and lines[j + 1].column == lines[i].column
                and lines[j + 1].text
            ):
                j += 1
            group = lines[i : j + 1]
            column = max([lines[i].column] + [len(x.text) + COMMENT_GAP for x in group])
            for line in group:
                line.column = column
            i = j + 1

    @staticmethod
    def _shown(line: _Line) -> str:
        if line.blank:
            return ""
        if line.comment is None:
            return line.text
        if not line.text:
            return line.comment
        if line.column is None:
            return line.text + " " * COMMENT_GAP + line.comment
        return line.text.ljust(line.column) + line.comment


def _space(previous: _Tok, token: _Tok) -> str:
    """The space between two tokens on one line: "" or " "."""
    p, t = previous.text, token.text
    if t in (",", ")", "]", ".", ":") or (t == "}" and token.role == "dict"):
        return ""
    if p in ("(", "[", ".") or (p == "{" and previous.role == "dict"):
        return ""
    if (p == "=" and previous.role == "option") or (t == "=" and token.role == "option"):
        return ""
    if p == "-" and previous.role == "negate":
        return ""
    if t == "(" and previous.type == "NAME":
        return ""
    return " "


def _has_break(text: str, start: int, end: int) -> bool:
    return "\n" in text[start:end]


def _read_gap(
    text: str, start: int, end: int, at_start: bool = False
) -> tuple[tuple[str, int] | None, list[str | None]]:
    """The text between two tokens: the comment after the first token on its line (with its
    column), then each later line as a comment or None for a blank line (the last part, up to
    the next token, counts only when it holds a comment)."""
    parts = text[start:end].split("\n")
    trailing = None
    if not at_start:
        first = parts.pop(0)
        if "#" in first:
            at = start + first.index("#")
            column = at - (text.rfind("\n", 0, at) + 1)
            trailing = (text[at : start + len(first)].rstrip(), column)
    inner: list[str | None] = []
    for number, part in enumerate(parts):
        last = number == len(parts) - 1
        stripped = part.lstrip(" \t\r\f;").rstrip()
        if stripped.startswith("#"):
            inner.append(stripped.rstrip())
        elif not last:
            inner.append(None)
    return trailing, inner
