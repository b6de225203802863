"""A run's folder (`--out`): checked before the run starts, held by one run at a time, and what a
write that fails in the middle of a run says.

    with hold(out, resume=False, overwrite=False):   # R320 not a folder we can write, R321 in
        ...                                          # use by another run, R322 holds a run
    except OSError as error:
        raise write_failed(error, out)               # R323: the file, why, the epoch kept

The lock is `fcntl.flock` on a file in the folder: the kernel releases it when its process ends,
however it ends, so a run killed with `kill -9` leaves nothing that blocks the next one; the file
itself, left by such a run, means nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import WHY
from .checkpoint import CHECKPOINT, CheckpointError, read
from .stopped import TrainingStopped

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None

LOCK = ".nnspec.lock"
# the files whose presence means the folder holds a run, and every file a run writes
RESULTS = (CHECKPOINT, "metrics.csv", "weights.safetensors")
WRITTEN = (*RESULTS, "settings.json", "metrics.png", "samples.png", "best.safetensors")
OTHER_FOLDER = "train into another folder (--out DIR)"


class FolderError(TrainingStopped):
    """The run folder cannot be used (R320 to R322), or a write into it failed mid-run (R323)."""


class WriteFailed(FolderError):
    """R323: a run's file could not be written; `kept` is the epoch of the checkpoint left whole
    (None: nothing to resume). `resumed(command)` names the command that resumes."""

    def __init__(self, message: str, fix: str, out: Path, kept: int | None):
        self.fix, self.out, self.kept = fix, out, kept
        super().__init__("R323", message, self._hint(None))

    def _hint(self, command: str | None) -> str:
        if self.kept is None:
            return (
                f"{self.fix}, then train again with --overwrite (overwrite=True in Python): "
                "nothing of the run can be resumed"
            )
        how = command or f"nnspec train FILE --out {self.out} --resume (resume=True in Python)"
        return f"{self.fix}, then go on from epoch {self.kept}: {how}"

    def resumed(self, command: str) -> WriteFailed:
        self.hint = self._hint(command)
        return self


@contextlib.contextmanager
def hold(out: Path, *, resume: bool = False, overwrite: bool = False) -> Iterator[None]:
    """Check `out`, make it, and hold it for one run: a file there is R320, another run holding
    it R321, and a new run (not `resume`) into a folder that holds a run's results R322 unless
    `overwrite`, which removes those results first. A `resume` into a folder that is not there
    makes nothing (the checkpoint's absence is the error, R311). Folders made for a run that
    writes nothing are removed again."""
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: go on, or start afresh")
    _check_place(out)
    if resume and not out.is_dir():
        yield
        return
    made = _make(out)
    try:
        with _lock(out):
            if not resume:
                _refuse_or_clear(out, overwrite)
            _remove_temporaries(out)  # left by a run that was killed while it wrote them
            yield
    finally:
        for folder in made:  # deepest first; one that holds anything stays
            with contextlib.suppress(OSError):
                folder.rmdir()


def _check_place(out: Path) -> None:
    blocked = next((p for p in (*reversed(out.parents), out) if _not_a_folder(p)), None)
    if blocked == out:
        raise FolderError(
            "R320",
            f"cannot train into {out}: it is a file, not a folder",
            "name a folder for the run's results (one that does not exist is made), or move "
            "the file out of the way",
        )
    if blocked is not None:
        raise FolderError(
            "R320",
            f"cannot make the run folder {out}: {blocked} is a file, not a folder",
            "name another folder (--out DIR), or move the file out of the way",
        )


def _not_a_folder(path: Path) -> bool:
    return path.exists() and not path.is_dir()


def _make(out: Path) -> list[Path]:
    """Make `out` and the folders above it; the ones made, deepest first."""
    missing = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(out, error) from None
    return missing


def _unwritable(out: Path, error: OSError) -> FolderError:
    why, fix = WHY.get(error.errno, (error.strerror or str(error), ""))
    other = "name a folder you may write to (--out DIR)"
    return FolderError(
        "R320",
        f"cannot write into the run folder {out}: {why}",
        f"{fix}, or {other}" if fix else other,
    )


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """Hold `out/LOCK` (flock) until the block ends, then remove it."""
    path = out / LOCK
    while True:
        try:  # read-only: a folder can be remounted read-only only while no file is open to write
            handle = os.open(path, os.O_RDONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as error:
            raise _unwritable(out, error) from None
        try:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise _in_use(out, path) from None
        except OSError:  # a file system without locks (some network ones): the run goes on
            pass
        # the run before may have removed the file after this one opened it: lock the new one
        if _same_file(handle, path):
            break
        os.close(handle)
    try:
        try:
            path.write_text(f"{os.getpid()}\n")
        except OSError as error:
            raise _unwritable(out, error) from None
        yield
    finally:
        with contextlib.suppress(OSError):  # the folder may be gone, or read-only by now
            if _same_file(handle, path):
                path.unlink()
        os.close(handle)


def _same_file(handle: int, path: Path) -> bool:
    try:
        here, there = os.fstat(handle), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _in_use(out: Path, path: Path) -> FolderError:
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    holder = f" (process {pid})" if pid.isdigit() else ""
    return FolderError(
        "R321",
        f"{out} is in use by another run{holder}: two runs would write into one metrics.csv "
        f"and one checkpoint",
        f"wait for that run to end (or stop it), or {OTHER_FOLDER}",
    )


def _refuse_or_clear(out: Path, overwrite: bool) -> None:
    found = [name for name in RESULTS if (out / name).exists()]
    if not found:
        return
    if not overwrite:
        go_on = "go on with it (--resume), " if CHECKPOINT in found else ""
        raise FolderError(
            "R322",
            f"{out} already holds a run ({', '.join(found)}): a new run would replace its results",
            f"{go_on}replace it (--overwrite), or {OTHER_FOLDER}",
        )
    for name in WRITTEN:
        (out / name).unlink(missing_ok=True)


def _remove_temporaries(out: Path) -> None:
    for name in WRITTEN:
        for temporary in out.glob(f".{name}.*.part"):
            with contextlib.suppress(OSError):
                temporary.unlink()


def write_failed(error: OSError, out: Path) -> WriteFailed:
    """R323 for a write into `out` that the operating system refused mid-run: the file, why, and
    the epoch of the checkpoint that is still whole (read back to be sure of it)."""
    what = Path(error.filename).name if error.filename else "a file"
    if not out.is_dir():
        return WriteFailed(
            f"cannot write {what}: the run folder {out} is gone (removed or moved while the run "
            f"wrote into it); training stopped",
            "give the run a folder that stays (--out DIR)",
            out,
            None,
        )
    why, fix = WHY.get(error.errno, (error.strerror or str(error), "fix the cause"))
    try:
        kept = read(out).epoch
    except CheckpointError:
        kept = None
    place = f"the checkpoint of epoch {kept} is kept" if kept else "no checkpoint was written"
    return WriteFailed(
        f"cannot write {error.filename or what}: {why} ({errno.errorcode.get(error.errno, '?')}); "
        f"training stopped ({place} in {out})",
        fix,
        out,
        kept,
    )
