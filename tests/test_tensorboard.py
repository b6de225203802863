"""`nnspec train --tensorboard DIR`: TensorBoard event files that hold every value of metrics.csv,
the learning rate and the network's diagram, with no step written twice after a resume.

The event files are read back here with a TFRecord reader of this file's own (each record's length
and CRCs checked) and tensorboardX's protobuf classes, not with nnspec's reader."""

from __future__ import annotations

import csv
import io
import json
import math
import struct
import sys
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("tensorboardX")

import nnspec  # noqa: E402
from nnspec.cli import main  # noqa: E402
from nnspec.training import tensorboard  # noqa: E402

SPEC = """\
network tiny "a 2-4-1 network on XOR" {
    input  x: 2
    dense  h: 4, act=tanh
    dense  y: 1, act=sigmoid
    x -> h -> y
}

train {
    data      = xor
    loss      = bce
    optimizer = adam(lr=0.05)
    schedule  = cosine
    batch     = 2
    epochs    = 6
    seed      = 0
}
"""


def _spec(folder: Path) -> Path:
    path = folder / "tiny.nn"
    path.write_text(SPEC)
    return path


def _masked_crc(data: bytes) -> int:
    from tensorboardX.crc32c import crc32c

    crc = crc32c(data) & 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _events(folder: Path) -> list:
    """Every event of every event file in `folder`, in the order TensorBoard reads them; every
    record whole, its CRCs right."""
    tensorboard._tensorboardx()  # tensorboardX without torch, as nnspec imports it
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack_from("<Q", data, at)
            (length_crc,) = struct.unpack_from("<I", data, at + 8)
            assert length_crc == _masked_crc(data[at : at + 8]), path
            body = data[at + 12 : at + 12 + length]
            (body_crc,) = struct.unpack_from("<I", data, at + 12 + length)
            assert len(body) == length and body_crc == _masked_crc(body), path
            events.append(Event.FromString(body))
            at += 12 + length + 4
    return events


def _scalars(folder: Path) -> list[tuple[str, int, float]]:
    return [
        (value.tag, event.step, value.simple_value)
        for event in _events(folder)
        for value in event.summary.value
        if value.HasField("simple_value")
    ]


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "metrics.csv").read_text())))


def _assert_events_equal_metrics(folder: Path, out: Path) -> None:
    """Each value of metrics.csv (each column but `epoch`, each row) is a scalar of the column's
    name at the row's epoch, once; and the files hold nothing else."""
    scalars = _scalars(folder)
    counts = Counter((tag, step) for tag, step, _ in scalars)
    assert [key for key, n in counts.items() if n > 1] == [], "a step written twice"
    found = {(tag, step): value for tag, step, value in scalars}
    wanted = {
        (column, int(row["epoch"])): float(text)
        for row in _rows(out)
        for column, text in row.items()
        if column != "epoch"
    }
    assert found.keys() == wanted.keys()
    for key, value in wanted.items():  # metrics.csv holds 6 significant digits
        assert math.isclose(found[key], value, rel_tol=2e-6, abs_tol=1e-12), (key, found[key])


def test_the_event_files_hold_every_value_of_metrics_csv_and_the_diagram(tmp_path, capsys):
    board, out = tmp_path / "tb", tmp_path / "run"
    code = main(
        ["train", str(_spec(tmp_path)), "--backend", "numpy", "--out", str(out)]
        + ["--tensorboard", str(board)]
    )
    assert code == 0, capsys.readouterr().err
    _assert_events_equal_metrics(board, out)
    tags = {tag for tag, _, _ in _scalars(board)}
    assert {"lr", "loss", "accuracy", "train_loss", "train_accuracy"} <= tags
    lrs = [value for tag, _, value in sorted(_scalars(board), key=lambda s: s[1]) if tag == "lr"]
    assert lrs[0] == pytest.approx(0.05) and lrs[-1] < lrs[0]  # the cosine schedule, per epoch
    images = [
        value.image
        for event in _events(board)
        for value in event.summary.value
        if value.image.width
    ]
    assert len(images) == 1
    png = images[0].encoded_image_string
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (images[0].width, images[0].height) and width > 100 < height
    texts = [
        value.tensor.string_val[0].decode()
        for event in _events(board)
        for value in event.summary.value
        if value.tag.startswith("network/summary")
    ]
    assert len(texts) == 1 and "dense" in texts[0] and "tiny" in texts[0]


def test_tensorboardx_loads_without_torch_for_a_numpy_run():
    """tensorboardX imports torch when it can; nnspec loads it without torch (a NumPy run would
    pay a second for it), and torch still imports after."""
    import subprocess

    code = (
        "import sys\n"
        "from nnspec.training import tensorboard\n"
        "tensorboard.require()\n"
        "from tensorboardX import SummaryWriter\n"
        "print('torch' in sys.modules, 'tensorboardX' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_a_resumed_run_writes_each_step_once(tmp_path):
    """A run cut at epoch 3 whose events went on to epoch 5 (written before a kill, after the
    checkpoint) and end in half a record: resumed to epoch 6, its files hold each step once, with
    the values of metrics.csv, the diagram once, and the half record gone."""
    spec, board, out = _spec(tmp_path), tmp_path / "tb", tmp_path / "run"
    nnspec.train(spec, backend="numpy", out=out, epochs=3, tensorboard=board)
    (first,) = tensorboard.own_files(board, "tiny")
    from tensorboardX import SummaryWriter

    # the steps a killed run wrote past its checkpoint, into a file of its own, as a second
    # writer of the run would have
    stray = SummaryWriter(str(board), filename_suffix=".1.2.nnspec.tiny")
    for step in (4, 5):
        stray.add_scalar("loss", 99.0, step)
    stray.close()
    with first.open("ab") as handle:  # and half a record, cut short by the kill
        handle.write(struct.pack("<Q", 40) + b"\x00\x01")
    resumed = nnspec.train(spec, out=out, resume=True, epochs=6, tensorboard=board)
    assert resumed.history[-1]["epoch"] == 6
    _assert_events_equal_metrics(board, out)
    assert sorted({step for _, step, _ in _scalars(board)}) == [1, 2, 3, 4, 5, 6]
    drawn = [v for e in _events(board) for v in e.summary.value if v.tag == "network/diagram"]
    assert len(drawn) == 1


def test_a_resume_writes_the_steps_its_files_lack(tmp_path):
    """Events lost before they reached the disk (or a first run without --tensorboard): the
    resumed run writes the rows of metrics.csv up to its checkpoint, then its own."""
    spec, board, out = _spec(tmp_path), tmp_path / "tb", tmp_path / "run"
    nnspec.train(spec, backend="numpy", out=out, epochs=2)
    nnspec.train(spec, out=out, resume=True, epochs=4, tensorboard=board)
    _assert_events_equal_metrics(board, out)
    assert sorted({step for _, step, _ in _scalars(board)}) == [1, 2, 3, 4]


def test_a_torch_run_writes_the_same_tags(tmp_path):
    pytest.importorskip("torch")
    spec, board, out = _spec(tmp_path), tmp_path / "tb", tmp_path / "run"
    nnspec.train(spec, backend="torch", out=out, epochs=2, tensorboard=board)
    _assert_events_equal_metrics(board, out)
    assert json.loads((out / "settings.json").read_text())["backend"] == "torch"


def test_a_fresh_run_into_a_folder_with_its_events_is_refused_unless_overwrite(tmp_path, capsys):
    spec, board = _spec(tmp_path), tmp_path / "tb"
    nnspec.train(spec, backend="numpy", out=tmp_path / "a", epochs=2, tensorboard=board)
    argv = ["train", str(spec), "--backend", "numpy", "--epochs", "3", "--tensorboard", str(board)]
    assert main([*argv, "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert f"error[R338]: {board} already holds the TensorBoard events of a run of 'tiny'" in err
    assert "hint: resume that run (--resume), replace its events (--overwrite)" in err
    assert not (tmp_path / "b" / "metrics.csv").exists()  # refused before training
    assert main([*argv, "--out", str(tmp_path / "b"), "--overwrite"]) == 0
    _assert_events_equal_metrics(board, tmp_path / "b")


def test_without_tensorboardx_the_flag_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # `import tensorboardX` fails
    code = main(
        ["train", str(_spec(tmp_path)), "--out", str(tmp_path / "r")] + ["--tensorboard", "tb"]
    )
    err = capsys.readouterr().err
    assert (
        code == 1 and "error[R336]: --tensorboard needs tensorboardX, which is not installed" in err
    )
    assert "hint: install it with pip install 'nnspec[tensorboard]'" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_a_folder_that_cannot_hold_events_is_named(tmp_path, capsys):
    blocker = tmp_path / "tb"
    blocker.write_text("not a folder")
    code = main(
        ["train", str(_spec(tmp_path)), "--backend", "numpy", "--out", str(tmp_path / "r")]
        + ["--tensorboard", str(blocker)]
    )
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"error[R337]: cannot write TensorBoard events into {blocker}: it is a file" in err
    assert "hint: name a folder you may write to (--tensorboard DIR" in err


def test_a_network_that_cannot_be_drawn_still_gets_its_layer_table(tmp_path, monkeypatch):
    import nnspec.draw

    def fails(*args, **kwargs):
        raise RuntimeError("no drawing today")

    monkeypatch.setattr(nnspec.draw, "draw", fails)
    board = tmp_path / "tb"
    nnspec.train(_spec(tmp_path), backend="numpy", out=tmp_path / "r", epochs=1, tensorboard=board)
    tags = [value.tag for event in _events(board) for value in event.summary.value]
    assert "network/diagram" not in tags and any(t.startswith("network/summary") for t in tags)
