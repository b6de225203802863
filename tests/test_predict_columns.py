"""`nnspec predict` reads a csv input's columns by name, as the network was trained on them: the
weights file records the training csv's feature columns and target column."""

import json

import numpy as np
import pytest
from conftest import BACKENDS, EXAMPLES

from nnspec.cli import main
from nnspec.errors import SpecError
from nnspec.training import train
from nnspec.training.predict import predict
from nnspec.training.recorded import COLUMNS, TARGET

# y follows column 'a' alone: a network that reads 'b' in place of 'a' answers the opposite
SPEC = """\
network p {
    input x: 2
    dense y: 1, act=sigmoid
    x -> y
}
train {
    data      = csv("train.csv", target="label")
    loss      = mse
    optimizer = adam(lr=0.1)
    batch     = full
    epochs    = 150
}
"""
ROWS = [(0, 1), (1, 0)] * 4  # (a, b): label = a


@pytest.fixture(scope="module", params=BACKENDS)
def run(request, tmp_path_factory):
    """A network trained on train.csv (columns a, label, b) on one backend."""
    folder = tmp_path_factory.mktemp(f"columns_{request.param}")
    (folder / "p.nn").write_text(SPEC)
    lines = ["a,label,b"] + [f"{a},{a},{b}" for a, b in ROWS]
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    result = train(folder / "p.nn", request.param, folder / "run")
    return folder, result.paths["weights"], request.param


def _predict(run, header: str, rows: list[tuple]) -> np.ndarray:
    folder, weights, backend = run
    path = folder / f"in_{header.replace(',', '_')}.csv"
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return predict(folder / "p.nn", weights, path, backend)["y"][:, 0]


def test_the_weights_file_records_the_training_columns(run):
    _, weights, _ = run
    raw = weights.read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert json.loads(header["__metadata__"][COLUMNS]) == ["a", "b"]
    assert header["__metadata__"][TARGET] == "label"


def test_swapped_columns_give_the_same_answers(run):
    ordered = _predict(run, "a,b", [(0, 1), (1, 0)])
    assert (ordered > 0.5).tolist() == [False, True]  # it learnt y = a
    swapped = _predict(run, "b,a", [(1, 0), (0, 1)])
    np.testing.assert_array_equal(swapped, ordered)


def test_the_target_column_is_not_read(run):
    ordered = _predict(run, "a,b", [(0, 1), (1, 0)])
    # the target column, anywhere and holding anything, changes nothing
    with_target = _predict(run, "label,b,a", [(7, 1, 0), (-3, 0, 1)])
    np.testing.assert_array_equal(with_target, ordered)


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("a", "it has no column 'b'"),
        ("a,b,c", "its column 'c' is not one the network was trained on"),
        ("a,c", "it has no column 'b'; its column 'c' is not one"),
        ("x1,x2", "it has no column 'a', 'b'; its column 'x1', 'x2' is not one"),
    ],
)
def test_a_missing_or_unknown_column_is_named(run, header, named):
    with pytest.raises(SpecError) as error:
        _predict(run, header, [tuple(range(len(header.split(","))))])
    assert error.value.code == "E506"
    assert named in error.value.message
    assert "the network reads the columns 'a', 'b' (in any order" in error.value.hint
    assert "ignores the target 'label'" in error.value.hint


def test_the_command_line_says_which_column_is_missing(run, capsys):
    folder, weights, backend = run
    (folder / "short.csv").write_text("b\n1\n")
    command = ["predict", str(folder / "p.nn"), "--weights", str(weights)]
    assert main([*command, "--input", str(folder / "short.csv"), "--backend", backend]) == 1
    err = capsys.readouterr().err
    assert "error[E506]" in err and "no column 'a'" in err and "Traceback" not in err


def test_weights_that_record_no_columns_read_them_in_file_order(trained, tmp_path):
    """xor.nn trains on a built-in dataset: its weights name no columns, and any header will do."""
    weights = trained(EXAMPLES / "xor.nn", "numpy").paths["weights"]
    (tmp_path / "x.csv").write_text("u,v\n0,0\n0,1\n1,0\n1,1\n")
    y = predict(EXAMPLES / "xor.nn", weights, tmp_path / "x.csv", "numpy")["y"][:, 0]
    assert (y > 0.5).tolist() == [False, True, True, False]
