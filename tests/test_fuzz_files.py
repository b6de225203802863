"""Fuzzing past the front end: generated and mutated data files, predict inputs, weights and
checkpoints go to `nnspec.train`, `predict` and `--resume`; only nnspec's own errors may come out.

Every call must end in a result or in an `NnspecError` with a code and a message (which renders),
within CALL_LIMIT seconds (a `signal.alarm`); any other exception, or a hang, fails the test.
The networks are tiny (2 inputs, 3 hidden units) and train for one epoch, so an example that gets
through to training costs milliseconds; the plots, which read no user file, are not drawn.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from safetensors.numpy import load, save

import nnspec
import nnspec.training.plot
from nnspec.errors import NnspecError
from nnspec.training import checkpoint
from nnspec.training.predict import predict

CALL_LIMIT = 20  # seconds per call; a tiny network's run takes a fraction of one
# NNSPEC_FUZZ_EXAMPLES=2000 fuzzes harder; the suite's 40 per test keep the file to seconds
FUZZ = settings(
    max_examples=int(os.environ.get("NNSPEC_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CODE = re.compile(r"[ER]\d{3}")

NETWORK = """\
network fz "two inputs, three hidden units" {{
    input x: 2
    dense h: 3, act=tanh
    dense y: {units}
    x -> h -> y
}}

train {{
    data      = {data}
    loss      = {loss}
    optimizer = adam(lr=0.05)
    batch     = 2
    epochs    = 1
    seed      = 0
}}
"""
# (units, loss): a csv target column is values for mse, classes for cross_entropy
LOSSES = {"mse": (1, "mse"), "classes": (2, "cross_entropy")}
# what bad data may end in: unreadable (E505), not fitting (E506), or numbers so large that the
# loss overflows (R301)
DATA_CODES = ("E505", "E506", "R301")
XOR_CSV = b"a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"


class Hang(BaseException):  # not an Exception, so that no `except Exception` can swallow it
    pass


@contextmanager
def time_limit(seconds: int = CALL_LIMIT):
    def on_alarm(signum, frame):
        raise Hang(f"ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def tally(result) -> None:
    """Count the outcomes, for `pytest --hypothesis-show-statistics`."""
    event(result.code if isinstance(result, NnspecError) else "done")


def clean(call, *args, **kwargs):
    """`call(*args, **kwargs)`'s result, or the `NnspecError` it raised (checked: a code, a
    message, a rendering). Any other exception, or a hang, fails the test."""
    try:
        with time_limit():
            return call(*args, **kwargs)
    except NnspecError as error:
        assert CODE.fullmatch(error.code), f"no error code: {error.code!r}"
        assert error.message.strip(), f"an empty message for {error.code}"
        assert error.render()
        return error
    except Hang as hang:
        pytest.fail(f"{getattr(call, '__name__', call)} {hang}")


@pytest.fixture(scope="module", autouse=True)
def no_plots():
    """The plots read no user file: left out, so that a run costs milliseconds."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nnspec.training.plot, "_start_helper", lambda: None)
        patch.setattr(nnspec.training.plot.Plots, "draw", lambda self, jobs: None)
        yield


class Workspace:
    """A folder of its own for every example (hypothesis runs many per test function, and a
    function-scoped tmp_path would be shared by all of them)."""

    def __init__(self, root: Path):
        self.root, self.count = root, itertools.count()

    def new(self) -> Path:
        folder = self.root / f"e{next(self.count)}"
        folder.mkdir()
        return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("fuzz"))


def write_spec(folder: Path, data: str, target: str = "mse") -> Path:
    units, loss = LOSSES[target]
    path = folder / "fz.nn"
    path.write_text(NETWORK.format(units=units, loss=loss, data=data))
    return path


# ---- mutations of bytes ---------------------------------------------------------------------
@st.composite
def mutated(draw, original: bytes) -> bytes:
    """`original` after one to four edits: a byte flipped or set, a cut, bytes inserted, a part
    deleted or repeated."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        edit = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "repeat"]))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set" and data:
            data[at] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, ord(","), ord('"'), ord("\n")]))
        elif edit == "cut":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif edit == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 32))]
    return bytes(data)


# ---- csv ------------------------------------------------------------------------------------
NUMBERS = st.one_of(
    st.integers(-3, 3).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**400), 10**400).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "0x10", "1_0", " 1 ", "+.5", "1e", "", "-"]),
)
CELLS = st.one_of(
    NUMBERS,
    NUMBERS,
    st.text(max_size=6),
    st.text(st.sampled_from('ab,"\n\r\t ;\\\x00é'), max_size=6),
    NUMBERS.map(lambda text: f'"{text}"'),
)
NAMES = st.one_of(st.sampled_from(["a", "b", "y", "", "y ", '"y"', "Y"]), st.text(max_size=4))


@st.composite
def csv_files(draw) -> bytes:
    """csv text of random headers and cells, quotes, separators, ragged rows, a BOM or none,
    encoded as UTF-8 or another way, sometimes with a few bytes edited."""
    separator = draw(st.sampled_from([",", ",", ",", ";", "\t", ", "]))
    header = draw(st.lists(NAMES, min_size=0, max_size=4))
    if draw(st.booleans()):
        header = ["a", "b", "y"]
    width = len(header)
    rows = draw(
        st.lists(
            st.lists(CELLS, min_size=max(width - 1, 0), max_size=width + 1)
            | st.lists(NUMBERS, min_size=width, max_size=width),
            max_size=6,
        )
    )
    ending = draw(st.sampled_from(["\n", "\r\n", "\r", ""]))
    text = ending.join(separator.join(row) for row in [header, *rows])
    text += draw(st.sampled_from(["", ending, ending * 3]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    data = text.encode(encoding, errors="replace")
    return draw(mutated(data)) if draw(st.booleans()) else data


def train_on(folder: Path, name: str, content: bytes, data: str, target: str, backend: str):
    (folder / name).write_bytes(content)
    spec = write_spec(folder, data, target)
    return clean(nnspec.train, spec, backend=backend, out=folder / "run")


@pytest.mark.slow
@FUZZ
@given(
    content=csv_files() | mutated(XOR_CSV),
    target=st.sampled_from(sorted(LOSSES)),
)
def test_generated_and_mutated_csv_data_train_or_fail_cleanly(workspace, content, target):
    folder = workspace.new()
    result = train_on(folder, "d.csv", content, 'csv("d.csv", target="y")', target, "numpy")
    tally(result)
    if isinstance(result, NnspecError):
        assert result.code in DATA_CODES, result.render()
    else:
        assert result.history and (folder / "run" / "weights.safetensors").is_file()


# ---- npz ------------------------------------------------------------------------------------
DTYPES = st.sampled_from(
    [
        np.float32,
        np.float64,
        np.float16,
        np.int64,
        np.int8,
        np.uint8,
        np.uint64,
        np.bool_,
        np.complex64,
        "U3",
        "S2",
        "M8[s]",
        "m8[s]",
        np.dtype([("a", "f4"), ("b", "i2")]),
    ]
)
# the dtypes of numbers: weights, and data that nearly fits
WEIGHT_DTYPES = st.sampled_from(
    [np.float32, np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_]
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
ARRAY_NAMES = st.sampled_from(["x", "y", "x", "y", "X", "fz", "h", "x.npy", "a/b", "ü"])


@st.composite
def arrays(draw) -> np.ndarray:
    dtype = np.dtype(draw(DTYPES))
    shape = draw(
        st.sampled_from([(4, 2), (4,), (4, 1), (4, 2, 1), (3, 2), (0, 2), (4, 3)]) | SHAPES
    )
    return draw(hnp.arrays(dtype, shape))


def numbers(shape: tuple[int, ...]):
    """Arrays of `shape`, or of one more or fewer examples, of numbers of every kind."""
    shapes = st.sampled_from([shape, (shape[0] + 1, *shape[1:]), (shape[0] - 1, *shape[1:])])
    return st.builds(
        lambda dtype, shape, seed: np.random.default_rng(seed).integers(0, 2, shape).astype(dtype),
        WEIGHT_DTYPES,
        shapes,
        st.integers(0, 2**32),
    ) | hnp.arrays(WEIGHT_DTYPES, shapes)


@st.composite
def npz_files(draw) -> bytes:
    """A valid .npz of arrays of any dtype, shape and name (or of an `x` and a `y` of numbers
    that nearly fit); or a zip of members that are not all arrays; sometimes with a few bytes
    edited."""
    buffer = io.BytesIO()
    if draw(st.integers(0, 3)):
        named = draw(
            st.dictionaries(ARRAY_NAMES, arrays(), max_size=3)
            | st.fixed_dictionaries({"x": numbers((4, 2)), "y": numbers((4, 1)) | numbers((4,))})
        )
        np.savez(buffer, **named) if draw(st.booleans()) else np.savez_compressed(buffer, **named)
    else:
        with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a name twice is one of the cases
            for name in draw(st.lists(st.sampled_from(["x.npy", "y.npy", "x", "d/"]), max_size=3)):
                packing = draw(st.sampled_from(PACKINGS))
                archive.writestr(name, draw(npy_members()), compress_type=packing)
    data = buffer.getvalue()
    return draw(mutated(data)) if draw(st.booleans()) else data


PACKINGS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]


@st.composite
def npy_members(draw) -> bytes:
    """An .npy member: a true one, or one whose header lies about the shape, dtype or length."""
    array = np.zeros((4, 2), dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, array)
    true = buffer.getvalue()
    header = {
        "descr": draw(st.sampled_from(["<f4", "<f8", "|O", "<i8", "|V0", "zz", "<U0"])),
        "fortran_order": draw(st.booleans()),
        "shape": draw(
            st.sampled_from([(4, 2), (8, 2), (2,), (), (10**12, 2), (-1, 2), (2**63 - 1,)])
        ),
    }
    text = repr(header).encode("latin-1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    lied = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + true[128:]
    return draw(st.sampled_from([true, lied, lied[: draw(st.integers(0, len(lied)))], b""]))


@pytest.mark.slow
@FUZZ
@given(content=npz_files(), target=st.sampled_from(sorted(LOSSES)))
def test_generated_and_mutated_npz_data_train_or_fail_cleanly(workspace, content, target):
    folder = workspace.new()
    result = train_on(folder, "d.npz", content, 'npz("d.npz")', target, "numpy")
    tally(result)
    if isinstance(result, NnspecError):
        assert result.code in DATA_CODES, result.render()
    else:
        assert result.history and (folder / "run" / "weights.safetensors").is_file()


# ---- predict: inputs ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch run of the mse network on XOR's four rows: its weights and checkpoint."""
    folder = tmp_path_factory.mktemp("run")
    (folder / "d.csv").write_bytes(XOR_CSV)
    spec = write_spec(folder, 'csv("d.csv", target="y")')
    nnspec.train(spec, backend="numpy", out=folder / "run")
    return folder


def _nested(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2), inner)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=3),
    _nested,
    max_leaves=12,
)
EXAMPLE_ROWS = st.lists(
    st.lists(
        st.floats(allow_nan=True, allow_infinity=True) | st.integers(), min_size=1, max_size=3
    ),
    max_size=4,
)


@st.composite
def json_files(draw) -> bytes:
    """JSON inputs: any value, lists of rows of numbers (ragged, NaN, huge ints), rows by input
    name, very deep nesting; sometimes with a few bytes edited."""
    value = draw(
        JSON_VALUES
        | EXAMPLE_ROWS
        | st.dictionaries(st.sampled_from(["x", "h", "y", "X", ""]), EXAMPLE_ROWS, max_size=2)
    )
    text = json.dumps(value)
    if draw(st.integers(0, 9)) == 0:
        depth = draw(st.integers(100, 100_000))
        text = "[" * depth + text + "]" * depth
    data = text.encode()
    return draw(mutated(data)) if draw(st.booleans()) else data


def predict_on(folder: Path, run: Path, name: str, content: bytes, backend: str):
    (folder / name).write_bytes(content)
    spec = run / "fz.nn"
    result = clean(predict, spec, run / "run" / "weights.safetensors", folder / name, backend)
    tally(result)
    if isinstance(result, NnspecError):
        assert result.code in ("E505", "E506"), result.render()
    else:
        assert set(result) == {"y"} and result["y"].ndim == 2 and result["y"].shape[1:] == (1,)
    return result


@pytest.mark.slow
@FUZZ
@given(content=json_files(), backend=st.sampled_from(["numpy", "torch"]))
def test_generated_and_mutated_json_inputs_predict_or_fail_cleanly(
    workspace, run, content, backend
):
    predict_on(workspace.new(), run, "x.json", content, backend)


@pytest.mark.slow
@FUZZ
@given(
    name_content=st.tuples(st.just("x.csv"), csv_files() | mutated(b"a,b\n0,1\n1,1\n"))
    | st.tuples(st.just("x.npz"), npz_files()),
    backend=st.sampled_from(["numpy", "torch"]),
)
def test_generated_and_mutated_csv_and_npz_inputs_predict_or_fail_cleanly(
    workspace, run, name_content, backend
):
    predict_on(workspace.new(), run, *name_content, backend)


# ---- predict: weights -----------------------------------------------------------------------
PARAMETERS = {"h.weight": (3, 2), "h.bias": (3,), "y.weight": (1, 3), "y.bias": (1,)}


@st.composite
def weight_tensors(draw) -> dict[str, np.ndarray]:
    """The network's tensors, or some of them, with the right shapes or not, of any dtype,
    under their names, a prefix, or other names."""
    prefix = draw(st.sampled_from(["", "", "fz.", "weights.", "other."]))
    names = draw(
        st.lists(
            st.sampled_from([*PARAMETERS, "h", "y.weight.x", "", "z.bias"]),
            unique=True,
            max_size=6,
        )
        | st.just(list(PARAMETERS))
    )
    tensors = {}
    for name in names:
        shape = PARAMETERS.get(name, (2,))
        if draw(st.integers(0, 3)) == 0:
            shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
        tensors[prefix + name] = draw(hnp.arrays(draw(WEIGHT_DTYPES), shape))
    return tensors


@st.composite
def safetensors_headers(draw, original: bytes) -> bytes:
    """`original` with its JSON header edited: a tensor's dtype, shape or offsets, a key, the
    metadata, or the header's length, all written back in the safetensors layout."""
    length = int.from_bytes(original[:8], "little")
    header, body = json.loads(original[8 : 8 + length]), original[8 + length :]
    names = [name for name in header if name != "__metadata__"]
    name = draw(st.sampled_from(names)) if names else "x"
    entry = header.setdefault(name, {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})
    edit = draw(st.sampled_from(["dtype", "shape", "offsets", "entry", "metadata", "length"]))
    if edit == "dtype":
        entry["dtype"] = draw(
            st.sampled_from(["F64", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "C64", "X", 3])
        )
    elif edit == "shape":
        entry["shape"] = draw(st.lists(st.integers(-2, 2**40), max_size=3) | JSON_VALUES)
    elif edit == "offsets":
        entry["data_offsets"] = draw(
            st.lists(st.integers(-1, len(body) + 8), min_size=0, max_size=3) | JSON_VALUES
        )
    elif edit == "entry":
        header[name] = draw(JSON_VALUES)
    elif edit == "metadata":
        header["__metadata__"] = draw(JSON_VALUES)
    text = json.dumps(header).encode()
    length = len(text)
    if edit == "length":
        length = draw(st.integers(0, 2**64 - 1))
    return length.to_bytes(8, "little") + text + body


def weights_files(original: bytes):
    """Weights files: generated tensors, the trained file with bytes or its header edited."""
    return (
        weight_tensors().map(save)
        | mutated(original)
        | safetensors_headers(original)
        | weight_tensors().map(save).flatmap(safetensors_headers)
    )


@pytest.mark.slow
@FUZZ
@given(data=st.data(), backend=st.sampled_from(["numpy", "torch"]))
def test_generated_and_mutated_weights_predict_or_fail_cleanly(workspace, run, data, backend):
    original = (run / "run" / "weights.safetensors").read_bytes()
    content = data.draw(weights_files(original))
    folder = workspace.new()
    (folder / "w.safetensors").write_bytes(content)
    (folder / "x.json").write_text("[[0, 1], [1, 1]]")
    result = clean(predict, run / "fz.nn", folder / "w.safetensors", folder / "x.json", backend)
    tally(result)
    if isinstance(result, NnspecError):
        assert result.code in ("E505", "E506"), result.render()
    else:
        assert result["y"].shape == (2, 1)


# ---- --resume: checkpoints ------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A one-epoch run of the mse network on each backend, to resume: backend -> spec's folder."""
    folders = {}
    for backend in ("numpy", "torch"):
        folder = tmp_path_factory.mktemp(backend)
        (folder / "d.csv").write_bytes(XOR_CSV)
        spec = write_spec(folder, 'csv("d.csv", target="y")')
        nnspec.train(spec, backend=backend, out=folder / "run")
        folders[backend] = folder
    return folders


@st.composite
def edited_json(draw, value):
    """`value` (nested dicts and lists) with one part replaced by another JSON value, changed in
    type, or removed."""
    paths = [()]

    def walk(node, path):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            paths.append((*path, key))
            if isinstance(child, (dict, list)):
                walk(child, (*path, key))

    walk(value, ())
    path = draw(st.sampled_from(paths))
    value = json.loads(json.dumps(value))  # a copy
    if not path:
        return draw(JSON_VALUES)
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    old = parent[path[-1]]
    edit = draw(st.sampled_from(["replace", "retype", "remove", "number"]))
    if edit == "remove":
        del parent[path[-1]]
    elif edit == "retype":
        parent[path[-1]] = str(old) if not isinstance(old, str) else [old]
    elif edit == "number":
        parent[path[-1]] = draw(
            st.sampled_from([-1, 0, 10**40, 0.5, True, None, float("nan"), float("inf")])
        )
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return value


@st.composite
def edited_arrays(draw, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`arrays` with one removed, added, or of another dtype or shape."""
    arrays = dict(arrays)
    name = draw(st.sampled_from(sorted(arrays)))
    edit = draw(st.sampled_from(["remove", "add", "dtype", "shape", "values"]))
    if edit == "remove":
        del arrays[name]
    elif edit == "add":
        arrays[draw(st.sampled_from(["weights.z", "random.numpy", name + "x"]))] = np.zeros(3)
    elif edit == "dtype":
        arrays[name] = arrays[name].astype(draw(WEIGHT_DTYPES))
    elif edit == "shape":
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
        arrays[name] = np.zeros(shape, dtype=arrays[name].dtype)
    else:
        arrays[name] = draw(hnp.arrays(arrays[name].dtype, arrays[name].shape))
    return arrays


def resume_in(folder: Path, spec_folder: Path):
    result = clean(nnspec.train, spec_folder / "fz.nn", out=folder / "run", resume=True, epochs=2)
    return result


@pytest.mark.slow
@FUZZ
@given(data=st.data(), backend=st.sampled_from(["numpy", "torch"]))
def test_mutated_checkpoints_resume_or_fail_cleanly(workspace, runs, data, backend):
    """Bytes flipped, cut or inserted and the header edited: the digest refuses them (R310)."""
    folder = workspace.new()
    shutil.copytree(runs[backend] / "run", folder / "run")
    path = folder / "run" / checkpoint.CHECKPOINT
    original = path.read_bytes()
    content = data.draw(mutated(original) | safetensors_headers(original))
    path.write_bytes(content)
    result = resume_in(folder, runs[backend])
    tally(result)
    if not isinstance(result, NnspecError):  # only an edit that left the contents as they were
        (arrays, metadata), (before, was) = (checkpoint.parse(d) for d in (content, original))
        assert metadata == was and arrays.keys() == before.keys()
        assert all(np.array_equal(arrays[k], before[k]) for k in arrays)
    else:
        assert result.code == "R310", result.render()


@pytest.mark.slow
@FUZZ
@given(data=st.data(), backend=st.sampled_from(["numpy", "torch"]))
def test_checkpoints_edited_with_a_valid_digest_resume_or_fail_cleanly(
    workspace, runs, data, backend
):
    """The state or the arrays changed and the digest written anew, as a program other than
    nnspec might: refused (R302, R310) or resumed, never an internal error."""
    folder = workspace.new()
    shutil.copytree(runs[backend] / "run", folder / "run")
    saved = checkpoint.read(folder / "run")
    state, arrays = dict(saved.state), saved.arrays
    if data.draw(st.booleans()):
        state = data.draw(edited_json(state))
    else:
        arrays = data.draw(edited_arrays(arrays))
    if isinstance(state, dict):
        state.pop("digest", None)
        checkpoint.save(folder / "run", arrays, state)
    else:  # not an object at all: written by hand, as no nnspec would
        header = {"__metadata__": {"nnspec": json.dumps(state)}}
        text = json.dumps(header).encode()
        (folder / "run" / checkpoint.CHECKPOINT).write_bytes(len(text).to_bytes(8, "little") + text)
    result = resume_in(folder, runs[backend])
    tally(result)
    if isinstance(result, NnspecError):
        assert result.code in ("R301", "R302", "R310"), result.render()


# ---- what the fuzzing found, one example each -----------------------------------------------
def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _zip(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _garbled_deflate() -> bytes:
    """An npz_compressed archive whose first member's compressed data begins with garbage."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.zeros((4, 2), np.float32), y=np.zeros((4, 1), np.float32))
    data = bytearray(buffer.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0]
    name, extra = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name + extra
    data[start : start + 4] = b"\xff" * 4
    return bytes(data)


XY = {"y": np.zeros((4, 1), np.float32)}


@pytest.mark.parametrize(
    ("name", "content", "target", "wanted"),
    [
        ("d.csv", b"a,b,y\n1e39,0,1\n0,1,0\n", "mse", "line 2, column 'a' holds 1e+39, beyond"),
        ("d.csv", b"a,b,y\n0,0,1e20\n0,1,0\n", "classes", "holds 1e+20, too large to be a class"),
        ("d.npz", _npz(x=np.full((4, 2), 1e39), **XY), "mse", "example 0 holds 1e+39, beyond"),
        ("d.npz", _npz(x=np.zeros((0, 2)), y=np.zeros((0, 1))), "mse", "'x' in data file"),
        ("d.npz", _zip(x=b"\x00" * 8), "mse", "its member 'x' is not a NumPy array (.npy)"),
        ("d.npz", _garbled_deflate(), "mse", "while decompressing data: invalid block type"),
        (
            "d.npz",
            _npz(x=np.zeros((1, 2)), y=np.zeros((1, 0), np.int64)),
            "classes",
            "array 'y' in data file 'd.npz', example 0 holds no value to be its class",
        ),
    ],
    ids=[
        "csv-beyond-float32",
        "csv-class-1e20",
        "npz-beyond-float32",
        "npz-empty",
        "npz-member",
        "npz-deflate",
        "npz-no-class",
    ],
)
def test_data_the_fuzzing_found_is_a_clean_error(name, content, target, wanted, tmp_path):
    data = f'csv("{name}", target="y")' if name.endswith(".csv") else f'npz("{name}")'
    error = train_on(tmp_path, name, content, data, target, "numpy")
    assert isinstance(error, NnspecError) and error.code in ("E505", "E506"), error
    assert wanted in error.message, error.message


@pytest.mark.parametrize(
    ("content", "code", "wanted"),
    [
        (b"{}", "E506", "has no examples for input 'x' of network 'fz'"),
        (b'{"X": [[0, 1]]}', "E506", "has examples for 'X', which is not an input of network"),
        (b'{"h": [[0, 1, 1]]}', "E506", "has examples for 'h', which is not an input"),
        (b"[" + b"1" * 5000 + b"]", "E505", "Exceeds the limit (4300 digits)"),
        (b"[[1" + b"0" * 400 + b", 0]]", "E505", "holds a number beyond the range"),
        (b"[[3.5e38, 0]]", "E505", "example 0 holds 3.5e+38, beyond the range"),
        (b"[]", "E505", "holds no examples"),
    ],
    ids=["empty-object", "unknown-name", "not-an-input", "digits", "1e400", "float32", "empty"],
)
def test_json_inputs_the_fuzzing_found_are_a_clean_error(content, code, wanted, run, tmp_path):
    (tmp_path / "x.json").write_bytes(content)
    weights = run / "run" / "weights.safetensors"
    error = clean(predict, run / "fz.nn", weights, tmp_path / "x.json", "numpy")
    assert isinstance(error, NnspecError) and error.code == code, error
    assert wanted in error.message, error.message


def _header_edit(data: bytes, name: str, **entry) -> bytes:
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    header[name].update(entry)
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data[8 + length :]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize(
    ("edit", "wanted"),
    [
        (lambda data: _header_edit(data, "h.bias", dtype="BF16", shape=[6]), "of dtype 'BF16'"),
        (lambda data: save({**load(data), "h.bias": np.full(3, np.inf, np.float32)}), "holds inf"),
        (
            lambda data: save({**load(data), "h.bias": np.full(3, 1e39)}),
            "'h.bias' holds values beyond the range of float32",
        ),
    ],
    ids=["bf16", "inf", "beyond-float32"],
)
def test_weights_the_fuzzing_found_are_a_clean_error(edit, wanted, backend, run, tmp_path):
    (tmp_path / "w.safetensors").write_bytes(
        edit((run / "run" / "weights.safetensors").read_bytes())
    )
    (tmp_path / "x.json").write_text("[[0, 1]]")
    error = clean(predict, run / "fz.nn", tmp_path / "w.safetensors", tmp_path / "x.json", backend)
    assert isinstance(error, NnspecError) and error.code == "E505", error
    assert wanted in error.message, error.message


def _rewrite(out: Path, change) -> None:
    """The checkpoint in `out` changed by `change(state, arrays)` and saved with a new digest."""
    saved = checkpoint.read(out)
    state, arrays = json.loads(json.dumps(saved.state)), dict(saved.arrays)
    state.pop("digest", None)
    change(state, arrays)
    checkpoint.save(out, arrays, state)


def _set(*path, value):
    def change(state, arrays):
        for key in path[:-1]:
            state = state[key]
        state[path[-1]] = value

    return change


def _step(value):
    def change(state, arrays):
        for name in [name for name in arrays if name.endswith(".step")]:
            arrays[name] = np.full_like(arrays[name], value)

    return change


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "change", "wanted"),
    [
        ("numpy", _set("epoch", value="1"), "its state is not one nnspec writes (epoch: "),
        ("numpy", _set("settings", "optimizer", value={}), "(settings.optimizer.name: field"),
        ("numpy", _set("overrides", value={"epoch": 3}), "(overrides.epoch: extra inputs"),
        ("numpy", _set("runner", "random", "state", "state", value=-1), "runner.random.state"),
        ("numpy", _step(0), ".step' is 0.0, not a count of steps"),
        ("torch", _step(-1), "it cannot be restored (its optimizer's step of parameter "),
        (
            "torch",
            lambda state, arrays: state["runner"]["param_groups"][0].update(lr="0.1"),
            "it cannot be restored (its optimizer's parameter group",
        ),
        (
            "torch",
            lambda state, arrays: arrays.pop("optimizer.0.exp_avg"),
            "its optimizer state is not the same for every parameter",
        ),
    ],
    ids=["epoch", "optimizer", "overrides", "random", "numpy-step", "torch-step", "lr", "slot"],
)
def test_checkpoints_the_fuzzing_found_are_a_clean_error(backend, change, wanted, runs, tmp_path):
    """Checkpoints nnspec never writes, with a digest of their own: R310, not a failure later."""
    shutil.copytree(runs[backend] / "run", tmp_path / "run")
    _rewrite(tmp_path / "run", change)
    error = resume_in(tmp_path, runs[backend])
    assert isinstance(error, NnspecError) and error.code == "R310", error
    assert wanted in error.message, error.message


# ---- the command line -----------------------------------------------------------------------
def _nnspec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nnspec", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_the_command_line_answers_a_mutated_checkpoint_and_weights_file(runs, tmp_path):
    """A checkpoint of zeros, and one with a digest of its own over an epoch that is text; a
    weights file whose tensor has a dtype NumPy lacks: exit 1, one error each."""
    for name, damage in [
        ("zeros", lambda out: out.joinpath(checkpoint.CHECKPOINT).write_bytes(b"\x00" * 64)),
        ("epoch", lambda out: _rewrite(out, _set("epoch", value="1"))),
    ]:
        out = tmp_path / name
        shutil.copytree(runs["numpy"] / "run", out)
        damage(out)
        done = _nnspec("train", runs["numpy"] / "fz.nn", "--out", out, "--resume")
        assert done.returncode == 1, done.stderr
        assert "error[R310]: " in done.stderr and "hint: " in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    weights = tmp_path / "w.safetensors"
    original = (runs["numpy"] / "run" / "weights.safetensors").read_bytes()
    weights.write_bytes(_header_edit(original, "y.weight", dtype="F8_E4M3", shape=[12]))
    (tmp_path / "x.json").write_text("[[0, 1]]")
    done = _nnspec(
        "predict", runs["numpy"] / "fz.nn", "--weights", weights, "--input", tmp_path / "x.json"
    )
    assert done.returncode == 1 and "error[E505]: " in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
