"""Class labels as text in a csv file (issue 16, item 7): numbered in sorted order, or in the order
a train section's `classes = [...]` states; the order is saved in weights.safetensors, and
`nnspec predict` prints each example's label. Numeric labels keep working as before."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, EXAMPLES

import nnspec
from nnspec.cli import main
from nnspec.data import load_data
from nnspec.errors import NnspecError, SpecError
from nnspec.training import train
from nnspec.training.predict import class_labels, write_outputs
from nnspec.training.recorded import LABELS, recorded_labels

NETWORK = """\
network n {
    input x: 2
    dense y: UNITS, act=softmax
    x -> y
}
"""
# the label follows column a: 0 -> cat, 1 -> dog, 2 -> bird
ROWS = [(0, 0.5, "cat"), (1, 0.2, "dog"), (2, 0.9, "bird"), (0, 0.1, "cat"), (2, 0.4, "bird")]


def _spec(folder: Path, train_lines: str, rows=ROWS, units: int = 3) -> Path:
    (folder / "d.csv").write_text(
        "a,b,kind\n" + "".join(",".join(map(str, row)) + "\n" for row in rows)
    )
    path = folder / "s.nn"
    path.write_text(
        NETWORK.replace("UNITS", str(units))
        + 'train {\n    data = csv("d.csv", target="kind")\n'
        + train_lines
        + "}\n"
    )
    return path


def _data(path: Path):
    model = nnspec.load(path)
    return load_data(model.train_spec, model.program)


def test_text_labels_are_numbered_in_sorted_order(tmp_path):
    data = _data(_spec(tmp_path, ""))
    assert data.kind == "classification" and data.classes == 3
    assert data.info["labels"] == {"y": ["bird", "cat", "dog"]}
    np.testing.assert_array_equal(data.train.targets, [1, 2, 0, 1, 0])


def test_stated_classes_give_the_order(tmp_path):
    data = _data(_spec(tmp_path, "    classes = [cat, dog, bird]\n"))
    assert data.info["labels"] == {"y": ["cat", "dog", "bird"]}
    np.testing.assert_array_equal(data.train.targets, [0, 1, 2, 0, 2])
    features = data.train.inputs["x"]
    np.testing.assert_array_equal(features[:, 0], [0, 1, 2, 0, 2])  # the label column is no feature


def test_strings_and_numbers_in_stated_classes(tmp_path):
    rows = [(0, 0, "Iris setosa"), (1, 0, "2"), (2, 0, "10.0"), (0, 1, "Iris setosa")]
    data = _data(_spec(tmp_path, '    classes = ["Iris setosa", 10, 2]\n', rows))
    np.testing.assert_array_equal(data.train.targets, [0, 2, 1, 0])  # 10.0 is the class 10


def test_numeric_labels_still_number_the_classes(tmp_path):
    rows = [(0, 0, 2), (1, 0, 0), (2, 0, 1)]
    data = _data(_spec(tmp_path, "    loss = cross_entropy\n", rows))
    np.testing.assert_array_equal(data.train.targets, [2, 0, 1])
    assert "labels" not in data.info
    values = _data(_spec(tmp_path, "", rows, units=1))  # no classification asked: values
    assert values.kind == "regression"


def test_a_label_the_classes_do_not_list_is_R340_with_the_line_and_the_labels(tmp_path):
    rows = [*ROWS[:3], (1, 0.3, "dgo")]
    path = _spec(tmp_path, "    classes = [cat, dog, bird]\n", rows)
    with pytest.raises(NnspecError) as caught:
        _data(path)
    error = caught.value
    assert error.code == "R340" and not isinstance(error, SpecError)
    assert "data file 'd.csv' line 5, column 'kind' holds the label 'dgo'" in error.message
    assert "'cat', 'dog', 'bird'" in error.message and "add 'dgo'" in error.hint


def test_more_text_labels_than_units_names_them(tmp_path):
    with pytest.raises(SpecError) as caught:
        _data(_spec(tmp_path, "", units=2))
    error = caught.value
    assert error.code == "E506"
    assert "3 classes ('bird', 'cat', 'dog'), but 'y' gives 2 values" in error.message


def test_stated_classes_must_match_the_output_at_check_time(tmp_path):
    with pytest.raises(SpecError) as caught:
        nnspec.load(_spec(tmp_path, "    classes = [cat, dog]\n"))
    assert caught.value.code == "E540" and "'cat', 'dog'" in caught.value.message
    nnspec.load(_spec(tmp_path, "    classes = [cat, dog]\n", ROWS[:2], units=1))  # one unit: 2


@pytest.mark.parametrize(
    "value", ["cat", "[]", "[cat, 1.5]", "[true, cat]"], ids=["name", "empty", "real", "flag"]
)
def test_classes_is_a_list_of_labels(tmp_path, value):
    with pytest.raises(SpecError) as caught:
        nnspec.load(_spec(tmp_path, f"    classes = {value}\n"))
    assert caught.value.code == "E502" and "list of the class labels" in caught.value.message


def test_text_labels_with_a_loss_of_values_say_why(tmp_path):
    with pytest.raises(SpecError) as caught:
        _data(_spec(tmp_path, "    loss = mse\n", units=1))
    error = caught.value
    assert (
        error.code == "E505" and "line 2, column 'kind' holds 'cat', not a number" in error.message
    )
    assert "cross_entropy" in error.hint


def test_npz_classes_are_named_in_order_and_all_need_a_name(tmp_path):
    path = tmp_path / "n.nn"
    for units, names, y in [(3, "low, mid, high", [0, 1, 2, 1]), (2, "low, mid", [0, 1, 3, 1])]:
        np.savez(tmp_path / "d.npz", x=np.zeros((4, 2), np.float32), y=np.array(y))
        path.write_text(
            NETWORK.replace("UNITS", str(units))
            + f'train {{\n    data = npz("d.npz")\n    classes = [{names}]\n}}\n'
        )
        if units == 3:
            assert _data(path).info["labels"] == {"y": ["low", "mid", "high"]}
    with pytest.raises(NnspecError) as caught:
        _data(path)
    assert caught.value.code == "R340" and "4 classes (0 to 3)" in caught.value.message


def test_labels_of_outputs():
    y = np.array([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]], np.float32)
    assert class_labels({"y": y}, {"y": ["a", "b", "c"]})["y"].tolist() == ["b", "a"]
    one = np.array([[0.2], [0.9]], np.float32)  # one sigmoid unit: the second label from 0.5
    assert class_labels({"y": one}, {"y": ["no", "yes"]})["y"].tolist() == ["no", "yes"]
    text = write_outputs({"y": y}, None, {"y": True}, class_labels({"y": y}, {"y": list("abc")}))
    assert text.splitlines() == [
        "y[0],y[1],y[2],y_class,y_label",
        "0.1,0.7,0.2,1,b",
        "0.8,0.1,0.1,0,a",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_trained_weights_record_the_labels_and_predict_prints_them(tmp_path, backend, capsys):
    rows = [(a % 3, 0.5, ("cat", "dog", "bird")[a % 3]) for a in range(30)]
    path = _spec(
        tmp_path,
        "    classes = [cat, dog, bird]\n    optimizer = adam(lr=0.1)\n    epochs = 60\n",
        rows,
    )
    result = train(path, backend, tmp_path / "run")
    weights = result.paths["weights"]
    assert recorded_labels(weights) == {"y": ["cat", "dog", "bird"]}
    raw = weights.read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert json.loads(header["__metadata__"][LABELS]) == {"y": ["cat", "dog", "bird"]}
    # new examples with their label column left in (not read), columns in another order
    (tmp_path / "new.csv").write_text("kind,b,a\nbird,0.5,2\ncat,0.5,0\n,0.5,1\n")
    code = main(
        ["predict", str(path), "--weights", str(weights), "--input", str(tmp_path / "new.csv")]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "y[0],y[1],y[2],y_class,y_label"
    assert [line.split(",")[-2:] for line in lines[1:]] == [
        ["2", "bird"],
        ["0", "cat"],
        ["1", "dog"],
    ]
    out = tmp_path / "p.json"
    new = str(tmp_path / "new.csv")
    main(["predict", str(path), "--weights", str(weights), "--input", new, "-o", str(out)])
    assert json.loads(out.read_text())["y_label"] == ["bird", "cat", "dog"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_iris_example_meets_its_expectation(tmp_path, backend, seed):
    result = train(EXAMPLES / "iris_csv.nn", backend, tmp_path / "run", seed=seed)
    assert result.passed, result.metrics
    assert recorded_labels(result.paths["weights"]) == {
        "species": ["setosa", "versicolor", "virginica"]
    }


@pytest.mark.parametrize(
    "network, settings, why",
    [
        (NETWORK.replace("UNITS", "2"), "target = input", "target = input reproduces the input"),
        (
            "network n {\n    input x: 2\n    dense a: 2, act=softmax\n    dense b: 1\n"
            "    x -> a, b\n    output a, b\n}\n",
            "",
            "network 'n' has 2 outputs",
        ),
    ],
    ids=["reconstruction", "several outputs"],
)
def test_classes_only_name_the_classes_of_one_output(tmp_path, network, settings, why):
    path = tmp_path / "s.nn"
    path.write_text(
        network + f"train {{\n    data = xor\n    {settings}\n    classes = [a, b]\n}}\n"
    )
    with pytest.raises(SpecError) as caught:
        nnspec.load(path)
    assert caught.value.code == "E540" and why in caught.value.message
