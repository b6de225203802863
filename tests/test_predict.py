"""`nnspec predict`: a trained network's outputs for new examples, from csv, npz or json, on
either backend."""

import json

import numpy as np
import pytest
from conftest import BACKENDS, EXAMPLES

from nnspec.cli import main
from nnspec.training import train
from nnspec.training.predict import predict

XOR = [[0, 0], [0, 1], [1, 0], [1, 1]]


@pytest.fixture(scope="session")
def xor_weights(trained):
    result = trained(EXAMPLES / "xor.nn", "numpy")  # read only: the tests write their own files
    assert result.passed
    return result.paths["weights"]


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n" + "".join(f"{a},{b}\n" for a, b in XOR))
    (tmp_path / "x.json").write_text(json.dumps(XOR))
    (tmp_path / "named.json").write_text(json.dumps({"x": XOR}))
    np.savez(tmp_path / "x.npz", x=np.array(XOR, dtype=np.float32))
    return tmp_path


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("source", ["x.csv", "x.json", "named.json", "x.npz"])
def test_predict_gives_xor_from_every_format(source, backend, xor_weights, inputs):
    y = predict(EXAMPLES / "xor.nn", xor_weights, inputs / source, backend)["y"]
    assert y.shape == (4, 1)
    assert (y[:, 0] > 0.5).tolist() == [False, True, True, False]


def test_cli_prints_csv_and_writes_each_format(xor_weights, inputs, capsys, tmp_path):
    assert (
        main(
            [
                "predict",
                str(EXAMPLES / "xor.nn"),
                "--weights",
                str(xor_weights),
                "--input",
                str(inputs / "x.csv"),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "y" and [float(v) > 0.5 for v in lines[1:]] == [False, True, True, False]
    for suffix in ("csv", "npz", "json"):
        out = tmp_path / f"y.{suffix}"
        assert (
            main(
                [
                    "predict",
                    str(EXAMPLES / "xor.nn"),
                    "--weights",
                    str(xor_weights),
                    "--input",
                    str(inputs / "x.json"),
                    "-o",
                    str(out),
                    "--backend",
                    "numpy",
                ]
            )
            == 0
        )
        assert out.exists() and not list(tmp_path.glob(".*part"))
    assert np.allclose(
        np.load(tmp_path / "y.npz")["y"], json.loads((tmp_path / "y.json").read_text())["y"]
    )


def test_a_classifier_also_gets_its_class(tmp_path, capsys):
    spec = tmp_path / "c.nn"
    spec.write_text(
        "network c {\n input x: 2\n dense y: 3, act=softmax\n x -> y\n}\n"
        "train {\n data = blobs\n epochs = 1\n}\n"
    )
    weights = train(spec, "numpy", out=tmp_path / "run").paths["weights"]
    (tmp_path / "x.json").write_text(json.dumps([[0, 0], [2, 2]]))
    assert (
        main(["predict", str(spec), "--weights", str(weights), "--input", str(tmp_path / "x.json")])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "y[0],y[1],y[2],y_class"
    row = [float(v) for v in lines[1].split(",")]
    assert row[3] == int(np.argmax(row[:3]))


@pytest.mark.parametrize(
    "case, code, message",
    [
        ("missing_weights", "E505", "weights file 'nope.safetensors' is not found"),
        ("other_weights", "E506", "does not fit network 'lenet': it lacks"),
        ("wrong_width", "E506", "gives [3] per example, but input 'x' takes [2]"),
        ("ragged", "E505", "is not a list of equally shaped examples of numbers"),
        ("nan", "E505", "holds nan, not a finite number"),
        ("quoted", "E505", 'holds "1", which is not a number'),
        ("null", "E505", "holds null, which is not a number"),
        ("boolean", "E505", "holds true, which is not a number"),
        ("text", "E505", "a .csv, .npz or .json file is needed"),
    ],
)
def test_bad_weights_and_inputs_exit_1_with_a_clear_error(
    case, code, message, xor_weights, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    spec, weights, source = EXAMPLES / "xor.nn", str(xor_weights), "x.json"
    files = {
        "x.json": json.dumps(XOR),
        "wide.json": json.dumps([[0, 0, 1]]),
        "ragged.json": "[[0, 1], [1]]",
        "nan.csv": "a,b\n0,nan\n",
        "quoted.json": '[[0, "1"]]',
        "null.json": "[[0, null]]",
        "boolean.json": "[[true, 0]]",
        "x.txt": "0 1",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    if case == "missing_weights":
        weights = "nope.safetensors"
    elif case == "other_weights":
        spec = EXAMPLES / "lenet.nn"
    else:
        source = {
            "wrong_width": "wide.json",
            "ragged": "ragged.json",
            "nan": "nan.csv",
            "text": "x.txt",
        }.get(case, f"{case}.json")
    assert main(["predict", str(spec), "--weights", weights, "--input", source]) == 1
    err = capsys.readouterr().err
    assert f"error[{code}]" in err and message in err and "Traceback" not in err
    if case == "wrong_width":  # the network is trained: its input is not the user's to declare
        assert "hint: give each example as input 'x' takes it ([2]), as the network was" in err


def test_an_output_file_of_another_kind_is_a_usage_error(xor_weights, tmp_path):
    assert (
        main(
            [
                "predict",
                str(EXAMPLES / "xor.nn"),
                "--weights",
                str(xor_weights),
                "--input",
                "x.csv",
                "-o",
                "y.txt",
            ]
        )
        == 2
    )


def test_predict_makes_the_folder_of_its_output_and_names_a_file_in_the_way(
    xor_weights, tmp_path, capsys
):
    (tmp_path / "x.json").write_text(json.dumps(XOR))
    run = ["predict", str(EXAMPLES / "xor.nn"), "--weights", str(xor_weights)]
    run += ["--input", str(tmp_path / "x.json"), "-o"]
    assert main([*run, str(tmp_path / "new" / "out.csv")]) == 0
    assert (tmp_path / "new" / "out.csv").read_text().startswith("y\n")
    (tmp_path / "blocker").write_text("")
    assert main([*run, str(tmp_path / "blocker" / "out.csv")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'blocker'} is a file, not a folder" in err and "move the file" in err


def test_outputs_that_are_not_finite_are_null_in_json(tmp_path):
    """JSON has no NaN or infinity: a strict reader (JavaScript's JSON.parse) refuses a file that
    holds them, so an output that overflowed is null there; csv keeps nan and inf."""
    from nnspec.training.predict import write_outputs

    outputs = {"y": np.array([[0.5], [np.inf], [np.nan]], np.float32)}
    write_outputs(outputs, str(tmp_path / "y.json"), {"y": False})

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    assert json.loads((tmp_path / "y.json").read_text(), parse_constant=refuse) == {
        "y": [[0.5], [None], [None]]
    }
    assert write_outputs(outputs, None, {"y": False}).split() == ["y", "0.5", "inf", "nan"]
