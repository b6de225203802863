"""TensorBoard event files of a run: `nnspec train FILE --tensorboard DIR` (`tensorboard=DIR`).

    with recording(DIR, models, out, resume_epoch=None, overwrite=False) as board:
        progress = board.observe(progress)     # each epoch's row of metrics.csv, as scalars
        ...fit...
        board.finish(history)                  # a row fit showed no one (epochs = 0)

Written with tensorboardX (the `tensorboard` extra: no TensorFlow, and no torch either), into DIR
itself, in files named `events.out.tfevents.<time>.<host>.<pid>.<ns>.nnspec.<run>`: every column of
metrics.csv but `epoch` as a scalar of its name (`loss`, `train_accuracy`, `lr`, ...) at the
epoch's step, the network's diagram (nnspec's drawing, as an image at step 0) and its layer table
(text). On resume, this run's files keep the steps up to the checkpoint's epoch and lose the rest
(as metrics.csv does), the steps of metrics.csv the files lack (lost to a kill before they were
flushed) are written again, and the resumed epochs follow: each step is in the files once.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

from ..atomic import write_atomic
from .stopped import TrainingStopped

EVENTS = "events.out.tfevents."
FLUSH_SECONDS = 1.0  # events reach the disk at most this long after their epoch (and at the end)
INSTALL = "pip install 'nnspec[tensorboard]' (tensorboardX: it needs no TensorFlow)"


def require() -> None:
    """R336 unless tensorboardX can be imported (it is imported here)."""
    try:
        _tensorboardx()
    except ImportError:
        raise TrainingStopped(
            "R336",
            "--tensorboard needs tensorboardX, which is not installed",
            f"install it with {INSTALL}, or train without --tensorboard",
        ) from None


def own_files(folder: Path, name: str) -> list[Path]:
    """The event files the runs of `name` wrote into `folder`, in the order TensorBoard reads
    them (by name)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{EVENTS}*.nnspec.{name}") if p.is_file())


@contextlib.contextmanager
def recording(
    folder, models, out: Path, resume_epoch: int | None = None, overwrite: bool = False, name=None
):
    """A `Board` writing into `folder` while the block runs (a `Silent` one when `folder` is
    None), closed after, however the block ends. `resume_epoch`: the checkpoint's epoch when the
    run resumes (None: a fresh run). A fresh run into a folder that holds events of an earlier run
    of the same network is refused (R338) unless `overwrite`, which removes them."""
    if folder is None:
        yield Silent()
        return
    board = Board(Path(folder), models, out, resume_epoch, overwrite, name)
    try:
        yield board
    finally:
        board.close()


class Silent:
    """No TensorBoard: progress as it was."""

    def observe(self, progress):
        return progress

    def finish(self, history) -> None:
        return None


class Board:
    """The event files of one run (see the module's docstring)."""

    def __init__(self, folder: Path, models, out: Path, resume_epoch, overwrite: bool, name=None):
        require()
        SummaryWriter = _tensorboardx().SummaryWriter  # noqa: N806 - the class, by its name

        self.folder = folder
        self.name = name or "_".join(model.name for model in models)
        _make(folder)
        earlier = own_files(folder, self.name)
        self.written: set[int] = set()  # the steps whose scalars are in the files
        drawn = False
        if resume_epoch is None and earlier:
            if not overwrite:
                raise TrainingStopped(
                    "R338",
                    f"{folder} already holds the TensorBoard events of a run of '{self.name}' "
                    f"({len(earlier)} file{'s' if len(earlier) > 1 else ''}): a new run would "
                    "write its steps over them",
                    "resume that run (--resume), replace its events (--overwrite), or give "
                    "another folder (--tensorboard DIR)",
                )
            for path in earlier:
                _unlink(path)
        elif resume_epoch is not None:
            for path in earlier:
                steps, images = _keep_until(path, resume_epoch)
                self.written |= steps
                drawn = drawn or images
        try:
            self.writer = SummaryWriter(
                str(folder),
                flush_secs=FLUSH_SECONDS,
                filename_suffix=f".{os.getpid()}.{time.time_ns()}.nnspec.{self.name}",
                **({"purge_step": resume_epoch + 1} if resume_epoch is not None else {}),
            )
        except OSError as error:
            raise _unwritable(folder, error) from None
        self.flushed = time.monotonic()
        if not drawn:
            self._network(models)
        if resume_epoch:  # rows of metrics.csv up to the checkpoint the files lack
            from .loop import _read_rows

            for row in _read_rows(out / "metrics.csv", resume_epoch):
                if row.get("epoch") not in self.written:
                    self.row(row)

    def observe(self, progress):
        """`progress`, after each epoch's row is written as scalars."""

        def observed(epoch: int, row: dict[str, float]) -> None:
            self.row(row)
            if progress is not None:
                progress(epoch, row)

        return observed

    def row(self, row: dict[str, float]) -> None:
        step = int(row.get("epoch", 0))
        for tag, value in row.items():
            if tag != "epoch":
                self.writer.add_scalar(tag, float(value), step)
        self.written.add(step)
        if time.monotonic() - self.flushed >= FLUSH_SECONDS:
            self.writer.flush()
            self.flushed = time.monotonic()

    def finish(self, history: list[dict[str, float]]) -> None:
        """The rows of the run not written yet (an epoch-0 row: a run of no epochs)."""
        for row in history:
            if int(row.get("epoch", 0)) not in self.written:
                self.row(row)

    def close(self) -> None:
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.close()

    def _network(self, models) -> None:
        """The diagram (nnspec's drawing as an image) and the layer table of the run's networks,
        at step 0; the table alone when the drawing cannot be made."""
        table = "\n\n".join(model.summary() for model in models)
        self.writer.add_text("network/summary", "```\n" + table + "\n```", 0)
        image = _diagram(models)
        if image is not None:
            self.writer.add_image("network/diagram", image, 0, dataformats="HWC")


def _tensorboardx():
    """tensorboardX, imported without torch when the run has not loaded torch (a NumPy run):
    tensorboardX imports torch when it can, only to accept tensors, which a NumPy run never hands
    it, and loading torch would cost a NumPy run about a second."""
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        import tensorboardX

        return tensorboardX
    sys.modules["torch"] = None  # `import torch` raises ImportError while tensorboardX loads
    try:
        import tensorboardX
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return tensorboardX


def _diagram(models):
    """The networks' drawing as an array `[H, W, 3]` of uint8, or None when it cannot be drawn."""
    try:
        import numpy as np
        from PIL import Image

        from ..draw import draw
        from ..model import drawables

        with tempfile.TemporaryDirectory(prefix="nnspec-tb-") as scratch:
            path = Path(scratch) / "network.png"
            draw(drawables(models), path)
            with Image.open(path) as picture:
                return np.asarray(picture.convert("RGB"))
    except Exception:  # noqa: BLE001 - any failure to draw leaves the layer table alone
        return None


# ---- event files ---------------------------------------------------------------------------------
def read_records(path: Path) -> list[bytes]:
    """The records of a TFRecord file (what TensorBoard's event files are), each checked against
    its CRC; reading stops at the first record cut short or damaged (a kill in mid-write)."""
    _tensorboardx()
    from tensorboardX.record_writer import masked_crc32c

    data = path.read_bytes()
    records, at = [], 0
    while at + 12 <= len(data):
        header = data[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[at + 8 : at + 12])
        end = at + 12 + length + 4
        if header_crc != masked_crc32c(header) or end > len(data):
            break
        body = data[at + 12 : at + 12 + length]
        if struct.unpack("<I", data[end - 4 : end])[0] != masked_crc32c(body):
            break
        records.append(body)
        at = end
    return records


def frame(record: bytes) -> bytes:
    """One record as a TFRecord file holds it: length, its CRC, the record, its CRC."""
    _tensorboardx()
    from tensorboardX.record_writer import masked_crc32c

    header = struct.pack("<Q", len(record))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + record
        + struct.pack("<I", masked_crc32c(record))
    )


def _keep_until(path: Path, epoch: int) -> tuple[set[int], bool]:
    """Cut the file down to its events up to step `epoch` (and whole records only); the steps of
    its scalars kept, and whether it holds the diagram or the table."""
    _tensorboardx()
    from tensorboardX.proto.event_pb2 import Event

    records = read_records(path)
    kept, steps, drawn = [], set(), False
    for record in records:
        event = Event.FromString(record)
        if event.step > epoch:
            continue
        kept.append(record)
        for value in event.summary.value:
            if value.tag.startswith("network/"):
                drawn = True
            else:
                steps.add(event.step)
    if len(kept) < len(records) or sum(len(frame(r)) for r in records) != path.stat().st_size:
        try:
            write_atomic(path, lambda p: Path(p).write_bytes(b"".join(frame(r) for r in kept)))
        except OSError as error:
            raise _unwritable(path.parent, error) from None
    return steps, drawn


def _make(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".nnspec-probe-")  # noqa: SIM115
        probe.close()
    except OSError as error:
        raise _unwritable(folder, error) from None


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        raise _unwritable(path.parent, error) from None


def _unwritable(folder: Path, error: OSError) -> TrainingStopped:
    why = error.strerror or str(error)
    if isinstance(error, FileExistsError | NotADirectoryError) or (
        folder.exists() and not folder.is_dir()
    ):
        why = "it is a file, not a folder" if folder.is_file() else "a file lies in its path"
    return TrainingStopped(
        "R337",
        f"cannot write TensorBoard events into {folder}: {why}",
        "name a folder you may write to (--tensorboard DIR; one that does not exist is made)",
    )


__all__ = ["Board", "INSTALL", "read_records", "recording", "require"]
