"""Reading a user's file: only a regular file, no larger than a limit, read once.

A FIFO, a device (`/dev/zero`), a socket or a folder named where nnspec wants a file is refused
at once, before anything is read from it: the path is looked at with `stat` first (so a device is
never opened), then opened with `O_NONBLOCK` (so a FIFO put there in between cannot block the
open) and looked at again on the open descriptor, which is what is read. A file larger than its
limit is refused by its size before it is read. Every refusal is a `ReadError` with the code the
caller gives, a message naming the file and what it is, and a hint; its `reason` says which
refusal it is, so that a caller may word it its own way. The limits are in docs/reliability.md.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from .errors import NnspecError

MiB = 1 << 20
GiB = 1 << 30
SPEC_LIMIT = 16 * MiB  # a spec and every file it `use`s: far above any spec a person writes
DATA_LIMIT = 2 * GiB  # a csv or npz file of data or of `nnspec predict`'s inputs, as stored
JSON_LIMIT = 256 * MiB  # a json file of inputs: read whole, and its numbers as Python objects

SPECIAL = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}
REGULAR_HINT = (
    "nnspec reads only regular files, not pipes, devices or sockets: "
    "save the contents to a file and name that file"
)


class ReadError(NnspecError):
    """A file nnspec will not or cannot read. `reason` is one of "missing", "folder", "special"
    (a FIFO, device or socket), "large" or "unreadable" (what the operating system refused)."""

    def __init__(self, code: str, message: str, hint: str | None, reason: str):
        super().__init__(code, message, hint)
        self.reason = reason


def size_text(size: int) -> str:
    """A size in bytes as a person reads it: `16 MiB`, `2 GiB`, `312 bytes`."""
    for unit, name in ((1 << 40, "TiB"), (GiB, "GiB"), (MiB, "MiB"), (1 << 10, "KiB")):
        if size >= unit:
            return f"{size / unit:.3g} {name}"
    return f"{size} bytes"


def open_regular(
    path: str | os.PathLike, what: str, limit: int, code: str = "R101", shown: str | None = None
) -> BinaryIO:
    """The regular file at `path` opened for reading in binary (the caller closes it), after
    refusing anything else and any file larger than `limit` bytes. Messages name it as
    `what 'shown'` ("data file 'd.csv'"; `shown` defaults to the path). Raises `ReadError`
    with `code`."""
    named = _named(path, what, shown)
    try:
        _refuse(os.stat(path), named, limit, code)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
        descriptor = os.open(path, flags)
    except OSError as error:
        raise _from_os(error, named, code) from None
    try:
        _refuse(os.fstat(descriptor), named, limit, code)
        # reads of a regular file never block; clear the flag so the file reads as usual
        os.set_blocking(descriptor, True)
        return open(descriptor, "rb", closefd=True)
    except BaseException:
        os.close(descriptor)
        raise


def read_regular(
    path: str | os.PathLike, what: str, limit: int, code: str = "R101", shown: str | None = None
) -> bytes:
    """The bytes of the regular file at `path`, read once; anything but a regular file, or more
    than `limit` bytes (by its size before reading, and by what is read should it grow), is
    refused with a `ReadError` carrying `code`. Messages name it as in `open_regular`."""
    named = _named(path, what, shown)
    with open_regular(path, what, limit, code, shown) as file:
        try:
            return _read_bounded(file, os.fstat(file.fileno()).st_size, limit, named, code)
        except OSError as error:
            raise _from_os(error, named, code) from None


def _named(path: str | os.PathLike, what: str, shown: str | None) -> str:
    return f"{what} '{os.fspath(path) if shown is None else shown}'"


def _read_bounded(file: BinaryIO, size: int, limit: int, shown: str, code: str) -> bytes:
    # one read of the whole file when its size is true; more only if it grows while read (or
    # says 0, as files under /proc do), and never past the limit
    parts, total, want = [], 0, size + 1
    while True:
        part = file.read(max(1, min(want, limit + 1 - total)))
        if not part:
            return b"".join(parts)
        parts.append(part)
        total += len(part)
        if total > limit:
            raise _too_large(shown, f"more than {size_text(limit)}", limit, code)
        want = MiB


def _refuse(status: os.stat_result, shown: str, limit: int, code: str) -> None:
    kind = stat.S_IFMT(status.st_mode)
    if kind == stat.S_IFDIR:
        raise ReadError(code, f"{shown} is a folder, not a file", "name a file inside it", "folder")
    if kind != stat.S_IFREG:
        name = SPECIAL.get(kind, "not a regular file")
        raise ReadError(code, f"{shown} is {name}, not a regular file", REGULAR_HINT, "special")
    if status.st_size > limit:
        raise _too_large(shown, size_text(status.st_size), limit, code)


def _too_large(shown: str, size: str, limit: int, code: str) -> ReadError:
    return ReadError(
        code,
        f"{shown} is {size}, more than the {size_text(limit)} nnspec reads",
        f"nnspec reads such a file only up to {size_text(limit)}: check that this is the file "
        "you meant, or make it smaller",
        "large",
    )


def _from_os(error: OSError, shown: str, code: str) -> ReadError:
    if isinstance(error, FileNotFoundError):
        return ReadError(code, f"{shown} is not found", None, "missing")
    if isinstance(error, IsADirectoryError):
        return ReadError(
            code, f"{shown} is a folder, not a file", "name a file inside it", "folder"
        )
    return ReadError(
        code,
        f"cannot read {shown}: {error.strerror or error}",
        "check that the file exists and that you may read it",
        "unreadable",
    )
