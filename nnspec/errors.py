"""Source spans, `NnspecError` (the root of every error nnspec raises at its users) and `SpecError`.

Every failure a user can cause carries a stable code, a message and, where nnspec knows one, a
hint: `NnspecError(code, message, hint)`, printed as `error[CODE]: message` and `  hint: ...`.
Every mistake in a spec, from a stray character to a shape mismatch, is a
`SpecError(code, message, span, hint)`, which adds where: `file:line:col: error[CODE]: ...`, the
source line and a caret. Several independent mistakes travel together: the first error carries
the rest in `errors`. Spec codes are grouped by stage (E1xx syntax, E2xx kinds and values, E3xx
names, links and files, E4xx shapes and sizes, E5xx training and data); failures while a command
runs, outside any spec, are R1xx (files), R2xx (drawing) and R3xx (training). All are documented
in docs/errors.md.
"""

from __future__ import annotations

import errno
import os
import sys
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Source:
    """The text of one spec file, with the path used to name it in messages."""

    path: str
    text: str

    def line(self, number: int) -> str:
        """The text of line `number` (1-based), without its newline: lines end at `\n` (and a
        `\r` before it), as the parser counts them, not at the other breaks `splitlines` knows
        (a form feed, say, is a space to the parser)."""
        lines = self.text.split("\n")
        return lines[number - 1].removesuffix("\r") if 0 < number <= len(lines) else ""


class Span:
    """Where a construct sits in its source: 1-based line and column, half-open end. Spans are
    equal (and hash) by position alone, and are never changed once made.

    A plain class with slots rather than a frozen dataclass: the parser makes one for every node
    of the syntax tree, and a frozen dataclass's `__init__` (five `object.__setattr__` calls)
    took four times as long, a tenth of the time to parse a large spec."""

    __slots__ = ("source", "line", "column", "end_line", "end_column")
    source: Source
    line: int
    column: int
    end_line: int
    end_column: int

    def __init__(self, source: Source, line: int, column: int, end_line: int, end_column: int):
        self.source = source
        self.line = line
        self.column = column
        self.end_line = end_line
        self.end_column = end_column

    def _position(self) -> tuple[int, int, int, int]:
        return self.line, self.column, self.end_line, self.end_column

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Span:
            return NotImplemented
        return self._position() == other._position()

    def __hash__(self) -> int:
        return hash(self._position())

    def __repr__(self) -> str:
        return (
            f"Span(line={self.line}, column={self.column}, end_line={self.end_line}, "
            f"end_column={self.end_column})"
        )

    @property
    def path(self) -> str:
        return self.source.path

    def __str__(self) -> str:
        return f"{self.source.path}:{self.line}:{self.column}"


class NnspecError(Exception):
    """The root of every error nnspec raises at its users: a stable code, a message, a hint.

    The command line prints `render()` and exits 1. `errors` lists every error raised together
    (this one first); `str(error)` renders them all as the command line prints them.
    """

    span: Span | None = None  # where in a spec; only a `SpecError` has one

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.errors: list[NnspecError] = [self]

    def render(self, color: bool = False) -> str:
        """This error alone: `file:line:col: error[CODE]: message`, source line, caret, hint."""
        paint = _painter(color)
        where = f"{self.span}: " if self.span else ""
        code = paint(f"error[{self.code}]", "red")
        lines = [f"{paint(where, 'bold')}{code}: {paint(self.message, 'bold')}"]
        if self.span is not None:
            text = self.span.source.line(self.span.line)
            if text:
                text, span = _window(text, self.span)
                lines.append(f"{self.span.line:>5} | {text}")
                lines.append(f"{'':>5} | {_caret(text, span)}")
        if self.hint:
            lines.append(f"  {paint('hint', 'cyan')}: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return "\n".join(error.render() for error in self.errors)


class SpecError(NnspecError):
    """A mistake in a spec or its data: a stable code, a message, where, and how to fix it."""

    def __init__(self, code: str, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(code, message, hint)
        self.span = span
        self.errors: list[SpecError] = [self]

    @classmethod
    def group(cls, errors: list[SpecError]) -> SpecError:
        """One error that stands for all of `errors`, sorted by position."""
        ordered = sorted(errors, key=_position)
        first = ordered[0]
        first.errors = ordered
        return first


# why the operating system refused a write, as a user reads it, and what to do before trying again
WHY = {
    errno.ENOSPC: ("the disk is full", "free some space"),
    errno.EDQUOT: ("the disk quota is used up", "free some space"),
    errno.EROFS: ("the file system is read-only", "make it writable again"),
    errno.EACCES: ("permission denied", "make the folder writable again"),
    errno.EPERM: ("permission denied", "make the folder writable again"),
    errno.EIO: ("an input/output error (a failing disk?)", "check the disk"),
}


class FileError(NnspecError):
    """A file or folder outside any spec that cannot be read or written (R101): a run's results,
    a checkpoint, a drawing, a zoo's folder."""

    @classmethod
    def from_os(cls, error: OSError) -> FileError:
        """The error the operating system gave, as a user reads it."""
        where = f" {error.filename}" if error.filename is not None else ""
        return cls(
            "R101", f"cannot read or write{where}: {error.strerror or error}", hint_for(error)
        )


def hint_for(error: OSError, then: str = "run it again") -> str:
    """What to do about a refused read or write: the fix `WHY` gives for its errno, or where
    to look."""
    if error.errno in WHY and error.errno not in (errno.EACCES, errno.EPERM):
        return f"{WHY[error.errno][1]}, then {then}"
    if error.errno == errno.ENOTDIR:
        return "choose another path, or move the file out of the way"
    return (
        "check that the path exists, that a folder is where a folder is wanted, "
        "and that you may write there"
    )


def _position(error: NnspecError) -> tuple:
    span = error.span
    return (span.path, span.line, span.column) if span else ("", 0, 0)


_WIDTH = 100  # longer source lines are shown as a window around the caret


def _window(text: str, span: Span) -> tuple[str, Span]:
    """The source line made printable and cut to a window around the span, and the span moved
    to match."""
    text = "".join(c if c.isprintable() or c == "\t" else "?" for c in text)
    if len(text) <= _WIDTH:
        return text, span
    start = max(0, min(span.column - 1 - _WIDTH // 3, len(text) - _WIDTH))
    shown = (
        ("..." if start else "")
        + text[start : start + _WIDTH]
        + ("..." if start + _WIDTH < len(text) else "")
    )
    shift = start - (3 if start else 0)
    end = span.end_column - shift if span.end_line == span.line else len(shown) + 1
    moved = Span(span.source, span.line, span.column - shift, span.line, min(end, len(shown) + 1))
    return shown, moved


def _caret(text: str, span: Span) -> str:
    """Spaces (tabs kept, two under a wide character, none under a combining mark, so the caret
    lines up in a terminal) up to the column, then ^ under each column the token takes."""
    start = max(span.column - 1, 0)
    pad = "".join("\t" if c == "\t" else " " * _cells(c) for c in text[:start])
    width = span.end_column - span.column if span.end_line == span.line else len(text) - start
    token = text[start : start + max(1, min(width, len(text) - start))]
    return pad + "^" * max(1, sum(_cells(c) for c in token))


def _cells(character: str) -> int:
    """How many terminal columns `character` takes: two for East Asian wide and full-width ones
    (CJK, most emoji), none for a combining mark, else one."""
    if unicodedata.combining(character):
        return 0
    return 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1


_STYLES = {"bold": "1", "red": "1;31", "cyan": "36"}


def _painter(color: bool):
    if not color:
        return lambda text, style: text
    return lambda text, style: f"\x1b[{_STYLES[style]}m{text}\x1b[0m" if text else text


def wants_color(stream=None) -> bool:
    """Colour diagnostics only on a terminal, and never when NO_COLOR is set; `stream` defaults
    to the stderr of the moment (not the one at import, which a test may have replaced)."""
    stream = sys.stderr if stream is None else stream
    return stream.isatty() and "NO_COLOR" not in os.environ


class Collector:
    """Gathers independent errors found in one pass, to report them together."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []
        self._seen: set[tuple] = set()

    def add(
        self, code: str, message: str, span: Span | None = None, hint: str | None = None
    ) -> None:
        """Collect one error; the very same error again (a block's line placed twice) is dropped."""
        where = None if span is None else (span.path, span.line, span.column)
        if (code, message, hint, where) not in self._seen:
            self._seen.add((code, message, hint, where))
            self.errors.append(SpecError(code, message, span, hint))

    def extend(self, error: SpecError) -> None:
        self.errors.extend(error.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise SpecError.group(self.errors)


def closest(name: str, known, limit: int = 1) -> list[str]:
    """The known names closest to `name`, for "did you mean ...?"."""
    import difflib

    return difflib.get_close_matches(name, sorted(known), n=limit, cutoff=0.6)


def did_you_mean(name: str, known, what: str = "") -> str | None:
    """A hint naming the closest known name, or listing every known name."""
    match = closest(name, known)
    if match:
        return f"did you mean '{match[0]}'?"
    names = sorted(known)
    if not names:
        return None
    return f"known {what or 'names'}: {', '.join(names)}"
