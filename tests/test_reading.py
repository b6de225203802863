"""Files nnspec reads (docs/reliability.md): only regular files, bounded, nothing run from them.

A FIFO, a device, a socket or a folder is refused at once with the file named and what it is; a
file over its limit is refused by its size before it is read; garbage is answered within seconds;
an npz is never unpickled. Every test that could hang runs under a watchdog that fails it.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES

import nnspec
from nnspec.cli import main
from nnspec.data import load_data, read_inputs
from nnspec.reading import DATA_LIMIT, SPEC_LIMIT, ReadError, open_regular, read_regular

XOR = "network n {\n  input x: 2\n  dense y: 1, act=sigmoid\n  x -> y\n}\n"


@pytest.fixture(autouse=True)
def watchdog():
    """Fail, instead of hanging, any test here that takes more than 20 seconds."""

    def expired(signum, frame):
        raise AssertionError("nnspec hung: the watchdog stopped it after 20 s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path) -> socket.socket:
    """A Unix socket bound at `path` (the caller closes it)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    return server


def _link_to_zero(tmp: Path) -> Path:
    """A symbolic link to /dev/zero: what it points to is refused."""
    (tmp / "zero.nn").symlink_to("/dev/zero")
    return tmp / "zero.nn"


def _check(capsys, *paths) -> str:
    """`nnspec check paths` in this process: exit 1; what it printed on stderr."""
    assert main(["check", *map(str, paths)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    return captured.err


# ---- the reader -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, what",
    [
        (lambda tmp: _fifo(tmp / "f"), "is a FIFO (named pipe), not a regular file"),
        (lambda tmp: Path("/dev/zero"), "is a character device, not a regular file"),
        (lambda tmp: Path("/dev/null"), "is a character device, not a regular file"),
        (lambda tmp: tmp, "is a folder, not a file"),
        (_link_to_zero, "is a character device, not a regular file"),
    ],
)
def test_only_regular_files_are_read(tmp_path: Path, make, what):
    path = make(tmp_path)
    for read in (read_regular, open_regular):
        with pytest.raises(ReadError) as caught:
            read(path, "spec file", SPEC_LIMIT, "E308")
        assert caught.value.code == "E308"
        assert caught.value.message == f"spec file '{path}' {what}"
        assert caught.value.hint


def test_a_socket_is_refused(tmp_path: Path):
    with _socket(tmp_path / "s"), pytest.raises(ReadError) as caught:
        read_regular(tmp_path / "s", "data file", DATA_LIMIT, "E505", shown="s")
    assert caught.value.message == "data file 's' is a socket, not a regular file"
    assert caught.value.reason == "special" and "regular files" in caught.value.hint


def test_a_file_over_its_limit_is_refused_by_its_size(tmp_path: Path):
    path = tmp_path / "big.nn"
    with path.open("wb") as file:
        file.truncate(SPEC_LIMIT + 1)  # sparse: made at once
    with pytest.raises(ReadError) as caught:
        read_regular(path, "spec file", SPEC_LIMIT, "E308")
    assert caught.value.reason == "large"
    assert (
        caught.value.message == f"spec file '{path}' is 16 MiB, more than the 16 MiB nnspec reads"
    )
    with path.open("wb") as file:
        file.truncate(1 << 40)  # a sparse TiB: read, it would take minutes and all the memory
    started = time.monotonic()
    with pytest.raises(ReadError, match="is 1 TiB, more than the 2 GiB"):
        read_regular(path, "data file", DATA_LIMIT, "E505")
    assert time.monotonic() - started < 1
    path.write_bytes(b"x" * 10)
    assert read_regular(path, "spec file", 10) == b"x" * 10
    with pytest.raises(ReadError):
        read_regular(path, "spec file", 9)


def test_a_missing_file_is_a_read_error(tmp_path: Path):
    with pytest.raises(ReadError) as caught:
        read_regular(tmp_path / "nope", "checkpoint", 100)
    assert (caught.value.code, caught.value.reason) == ("R101", "missing")


# ---- specs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, what",
    [
        (lambda tmp: _fifo(tmp / "pipe.nn"), "spec file '{}' is a FIFO (named pipe), not a"),
        (lambda tmp: Path("/dev/zero"), "spec file '{}' is a character device, not a regular"),
        (lambda tmp: tmp, "{} is a folder, not a spec file"),
    ],
)
def test_check_refuses_a_spec_that_is_not_a_regular_file(tmp_path: Path, capsys, make, what):
    path = make(tmp_path)
    started = time.monotonic()
    err = _check(capsys, path)
    assert time.monotonic() - started < 5
    assert f"error[E308]: {what.format(path)}" in err
    assert "hint: nnspec reads only regular files" in err or "folder" in what


def test_check_refuses_a_spec_over_the_limit_unread(tmp_path: Path, capsys):
    path = tmp_path / "huge.nn"
    with path.open("wb") as file:
        file.truncate(SPEC_LIMIT + 1)
    err = _check(capsys, path)
    assert f"error[E308]: spec file '{path}' is 16 MiB, more than the 16 MiB nnspec reads" in err
    assert "hint: nnspec reads such a file only up to 16 MiB" in err


@pytest.mark.parametrize("target", ["/dev/zero", "pipe.nn", "sock.nn"])
def test_a_use_of_a_special_file_is_an_error_at_the_use(tmp_path: Path, capsys, target):
    _fifo(tmp_path / "pipe.nn")
    with _socket(tmp_path / "sock.nn"):
        spec = tmp_path / "main.nn"
        spec.write_text(f'use "{target}"\n{XOR}')
        err = _check(capsys, spec)
    assert f"{spec}:1:5: error[E308]: spec file '" in err
    assert "not a regular file" in err and "hint: nnspec reads only regular files" in err


@pytest.mark.slow
def test_the_command_line_answers_a_fifo_at_once(tmp_path: Path):
    """End to end, in a process of its own: `nnspec check` on a FIFO nobody writes."""
    pipe = _fifo(tmp_path / "pipe.nn")
    result = subprocess.run(
        [sys.executable, "-m", "nnspec", "check", str(pipe)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert f"error[E308]: spec file '{pipe}' is a FIFO (named pipe), not a regular file" in (
        result.stderr
    )


# ---- data and predict's inputs --------------------------------------------------------------
def _model(tmp_path: Path, data: str) -> nnspec.Model:
    spec = tmp_path / "model.nn"
    spec.write_text(f"{XOR}train {{\n  data = {data}\n  loss = bce\n}}\n")
    return nnspec.load(spec)


def _swap_for_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize(
    "data, name",
    [('csv("d.csv", target="label")', "d.csv"), ('npz("d.npz")', "d.npz")],
)
def test_a_data_file_that_is_a_fifo_is_refused_at_check_and_at_train(tmp_path: Path, data, name):
    (tmp_path / "d.csv").write_text("x1,x2,label\n0,0,0\n1,1,1\n")
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 2)), y=np.zeros(2))
    model = _model(tmp_path, data)
    _swap_for_fifo(tmp_path / name)  # after the check: found when the data is read
    with pytest.raises(nnspec.SpecError) as caught:
        load_data(model.train_spec, model.program)
    assert caught.value.code == "E505"
    assert caught.value.message == f"data file '{name}' is a FIFO (named pipe), not a regular file"
    assert "regular files" in caught.value.hint and caught.value.span.line == 7
    with pytest.raises(nnspec.SpecError) as caught:  # and when the spec is checked again
        nnspec.load(tmp_path / "model.nn")
    assert caught.value.code == "E505" and "is not a regular file" in caught.value.message


@pytest.mark.parametrize("data", ['csv("/dev/zero", target="label")', 'npz("/dev/null")'])
def test_a_data_file_that_is_a_device_is_refused_at_check(tmp_path: Path, data):
    with pytest.raises(nnspec.SpecError) as caught:
        _model(tmp_path, data)
    assert caught.value.code == "E505" and "is not a regular file" in caught.value.message


@pytest.mark.parametrize("suffix", [".csv", ".npz", ".json"])
def test_a_predict_input_that_is_a_fifo_is_refused(tmp_path: Path, suffix):
    program = _model(tmp_path, "xor").program
    pipe = _fifo(tmp_path / f"in{suffix}")
    with pytest.raises(nnspec.SpecError) as caught:
        read_inputs(pipe, program)
    assert caught.value.code == "E505"
    assert caught.value.message == f"input file '{pipe}' is a FIFO (named pipe), not a regular file"
    assert "regular files" in caught.value.hint


@pytest.mark.slow
def test_nnspec_predict_answers_an_input_fifo(tmp_path: Path, capsys, trained):
    """The command line, with the weights of a trained run: --input a FIFO is exit 1 at once."""
    signal.alarm(0)  # training (or waiting for another worker's) is no hang: not watched
    weights = trained(EXAMPLES / "xor.nn", "numpy").paths["weights"]
    signal.alarm(20)
    pipe = _fifo(tmp_path / "x.csv")
    command = ["predict", str(EXAMPLES / "xor.nn"), "--weights", str(weights), "--input", str(pipe)]
    assert main(command) == 1
    err = capsys.readouterr().err
    assert f"error[E505]: input file '{pipe}' is a FIFO (named pipe), not a regular file" in err
    assert "hint: nnspec reads only regular files" in err and "Traceback" not in err


def test_an_npz_of_python_objects_is_refused_without_unpickling(tmp_path: Path):
    marker = tmp_path / "unpickled"

    class Trap:
        """Unpickling one creates `marker`: the proof that the file was unpickled."""

        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(tmp_path / "d.npz", x=np.array([Trap(), Trap()], dtype=object), y=np.zeros(2))
    model = _model(tmp_path, 'npz("d.npz")')
    with pytest.raises(nnspec.SpecError) as caught:
        load_data(model.train_spec, model.program)
    assert not marker.exists()
    assert caught.value.code == "E505"
    assert "array 'x' holds Python objects (dtype object), which nnspec does not load" in (
        caught.value.message
    )
    assert "dtype=numpy.float32" in caught.value.hint
    with pytest.raises(nnspec.SpecError) as caught:
        read_inputs(tmp_path / "d.npz", model.program)
    assert not marker.exists() and "holds Python objects" in caught.value.message


def test_an_npz_that_unpacks_past_the_limit_is_refused_from_its_header(tmp_path: Path):
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, dtype=np.float64))
    header["shape"] = (DATA_LIMIT // 8 + 1,)  # a header that promises more than 2 GiB, alone
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as archive, archive.open("x.npy", "w") as npy:
        np.lib.format.write_array_header_1_0(npy, header)
    program = _model(tmp_path, "xor").program
    with pytest.raises(nnspec.SpecError) as caught:
        read_inputs(tmp_path / "d.npz", program)
    assert caught.value.code == "E505"
    assert caught.value.message == (
        f"the arrays in input file '{tmp_path / 'd.npz'}' unpack to more than the 2 GiB "
        "nnspec reads"
    )


# ---- garbage, answered within seconds -------------------------------------------------------
GARBAGE = 200 << 20


def _garbage(path: Path, kind: str) -> Path:
    """200 MiB of random bytes, or of zero bytes (sparse), or of one valid line and then text."""
    with path.open("wb") as file:
        if kind == "zeros":
            file.truncate(GARBAGE)
        elif kind == "random":
            file.write(np.random.default_rng(0).bytes(GARBAGE))
        else:
            file.write(b"x1,x2,label\n0,0,0\n" + b"not,numbers,here\n" * (GARBAGE // 17))
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    "suffix, kind",
    [(".nn", "zeros")]
    + [(suffix, kind) for suffix in (".csv", ".json") for kind in ("zeros", "random", "text")]
    + [(".npz", "zeros"), (".npz", "random")],
)
def test_200_mib_of_garbage_is_answered_within_seconds(tmp_path: Path, capsys, suffix, kind):
    path = _garbage(tmp_path / f"g{suffix}", kind)
    started = time.monotonic()
    if suffix == ".nn":  # over the limit: refused by its size
        assert "more than the 16 MiB nnspec reads" in _check(capsys, path)
    elif suffix == ".json":  # predict's inputs
        with pytest.raises(nnspec.SpecError) as caught:
            read_inputs(path, _model(tmp_path, "xor").program)
        assert caught.value.code == "E505" and f"input file '{path}'" in caught.value.message
    else:  # found when the spec is checked (a csv's header) or when the data is read
        data = f'csv("{path.name}", target="label")' if suffix == ".csv" else f'npz("{path.name}")'
        with pytest.raises(nnspec.SpecError) as caught:
            model = _model(tmp_path, data)
            load_data(model.train_spec, model.program)
        assert caught.value.code == "E505" and f"data file '{path.name}'" in caught.value.message
    assert time.monotonic() - started < 5
