"""Files written whole or not at all: the drawings, and a training run's results and checkpoints."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

# safetensors (Rust) reports a failed write as text, not as an OSError: "... (os error 28)"
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def write_atomic(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """`write(temporary)` fills a temporary file beside `path`, which is then renamed into place:
    readers never see half a file, and an error (or Ctrl-C, or a kill) leaves the old one.

    A write the operating system refuses (a full disk, a read-only file system, a folder that was
    removed) is raised as an OSError that names `path`, not the temporary file, whichever step
    failed; the temporary file is removed in every case but a kill."""
    path = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".part"
        )
    except OSError as error:
        raise _naming(error, path) from None
    os.close(handle)
    try:
        write(temporary)
        # mkstemp makes 0600; give the file the usual permissions
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException as error:
        # the folder may be gone, or read-only now: what cannot be removed is not there to remove,
        # or cannot be (a read-only file system), and the first error is the one to report
        with contextlib.suppress(OSError):
            Path(temporary).unlink(missing_ok=True)
        refused = _os_error(error)
        if refused is None:
            raise
        raise _naming(refused, path) from None
    return path


def make_folders(path: str | os.PathLike) -> None:
    """The folders `path` goes into, made where they are not there; a part of it that is a file
    is an OSError (ENOTDIR) that says so, naming `path` and that part."""
    path = Path(path)
    blocked = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise NotADirectoryError(errno.ENOTDIR, f"{blocked} is a file, not a folder", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)


def _os_error(error: BaseException) -> OSError | None:
    """`error` as the OSError it stands for, or None when it is not the operating system's."""
    if isinstance(error, OSError):
        return error
    found = _RUST_OS_ERROR.search(str(error)) if isinstance(error, Exception) else None
    if found is None:
        return None
    number = int(found.group(1))
    return OSError(number, os.strerror(number))


def _naming(error: OSError, path: Path) -> OSError:
    """The same error, naming the file being written rather than its temporary."""
    if error.errno is None:
        return error
    # OSError(errno, ...) is the subclass the errno stands for (FileNotFoundError, ...)
    return OSError(error.errno, error.strerror or os.strerror(error.errno), str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
