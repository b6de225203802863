"""`nnspec compile` as a user runs it: a trained run's weights compiled to each target, the files
run where nnspec cannot be imported, and the same answers as `nnspec predict`; and its errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import EXAMPLES

import nnspec
from nnspec.cli import main
from nnspec.errors import SpecError
from nnspec.training.predict import predict

XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)

# runs a compiled file with nnspec unimportable and prints its outputs for XOR as json
RUN = """
import json, sys
sys.modules["nnspec"] = None  # import nnspec fails
target, path = sys.argv[1], sys.argv[2]
x = [[0, 0], [0, 1], [1, 0], [1, 1]]
if target == "onnx":
    import numpy as np, onnxruntime
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = session.run(None, {"x": np.array(x, np.float32)})[0]
else:
    import importlib.util
    spec = importlib.util.spec_from_file_location("net", path)
    net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(net)
    model = net.load()
    if target == "torch":
        import torch
        with torch.no_grad():
            y = model(torch.tensor(x, dtype=torch.float32)).numpy()
    else:
        import numpy as np
        y = model(np.array(x, np.float32))
print(json.dumps(y.tolist()))
"""


@pytest.fixture(scope="module")
def weights(trained):
    result = trained(EXAMPLES / "xor.nn", "numpy")  # read only
    assert result.passed
    return result.paths["weights"]


def _targets():
    targets = ["torch", "numpy"]
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return targets
    return [*targets, "onnx"]


@pytest.mark.slow
@pytest.mark.parametrize("target", _targets())
def test_a_trained_run_compiles_and_answers_as_predict(target, weights, tmp_path, capsys):
    out = tmp_path / "shipped"
    out.mkdir()
    command = ["compile", str(EXAMPLES / "xor.nn"), "--to", target, "-o", str(out)]
    assert main([*command, "--weights", str(weights)]) == 0
    suffix = ".onnx" if target == "onnx" else ".py"
    written = sorted(p.name for p in out.iterdir())
    assert written == (["xor.onnx"] if target == "onnx" else ["xor.py", "xor.safetensors"])
    assert f"wrote {out / ('xor' + suffix)}" in capsys.readouterr().err
    (tmp_path / "x.npz").write_bytes(b"")
    np.savez(tmp_path / "x.npz", x=XOR)
    expected = predict(EXAMPLES / "xor.nn", weights, tmp_path / "x.npz", "numpy")["y"]
    ran = subprocess.run(
        [sys.executable, "-c", RUN, target, str(out / f"xor{suffix}")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    np.testing.assert_allclose(np.array(json.loads(ran.stdout)), expected, atol=1e-6)


def test_files_compiled_under_other_names_keep_their_own_weights(weights, tmp_path, capsys):
    """Trained weights compiled to trained.py, then the initial ones to initial.py and a folder
    that is not there yet, in one folder: each file loads its own weights."""
    xor = str(EXAMPLES / "xor.nn")
    trained = tmp_path / "trained.py"
    assert (
        main(["compile", xor, "--to", "numpy", "-o", str(trained), "--weights", str(weights)]) == 0
    )
    assert main(["compile", xor, "--to", "torch", "-o", str(tmp_path / "initial.py")]) == 0
    assert main(["compile", xor, "--to", "numpy", "-o", str(tmp_path / "new") + "/"]) == 0
    assert main(["compile", xor, "--to", "numpy", "-o", str(tmp_path / "newer")]) == 0
    assert "wrote " + str(tmp_path / "newer" / "xor.py") in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "initial.py",
        "initial.safetensors",
        "new",
        "newer",
        "trained.py",
        "trained.safetensors",
    ]
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["xor.py", "xor.safetensors"]
    expected = predict(EXAMPLES / "xor.nn", weights, _npz(tmp_path), "numpy")["y"]
    ran = subprocess.run(
        [sys.executable, "-c", RUN, "numpy", str(trained)], capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    np.testing.assert_allclose(np.array(json.loads(ran.stdout)), expected, atol=1e-6)


def _npz(folder):
    np.savez(folder / "x.npz", x=XOR)
    return folder / "x.npz"


def test_model_compile_takes_a_path_or_arrays(weights, tmp_path):
    model = nnspec.load(EXAMPLES / "xor.nn")
    from_file = model.compile("numpy", tmp_path / "a" / "xor.py", weights)
    assert [p.name for p in from_file] == ["xor.py", "xor.safetensors"]
    from safetensors.numpy import load_file

    arrays = load_file(weights)
    from_arrays = model.compile("numpy", tmp_path / "b.py", dict(arrays))
    assert [p.name for p in from_arrays] == ["b.py", "b.safetensors"]  # named as the file is
    assert from_arrays[1].read_bytes() == from_file[1].read_bytes()
    assert from_arrays[0].read_bytes() == from_file[0].read_bytes()  # the file names no path


def test_the_initial_parameters_are_seed_0s(tmp_path):
    model = nnspec.load(EXAMPLES / "xor.nn")
    (path, params) = model.compile("torch", tmp_path / "xor.py")
    from safetensors.numpy import load_file

    saved = load_file(params)
    initial = model.to_numpy().params
    assert saved.keys() == initial.keys()
    for name, value in initial.items():
        np.testing.assert_array_equal(saved[name], value)


@pytest.mark.parametrize("target", ["torch", "numpy"])
def test_no_text_of_the_spec_runs_as_code_in_a_compiled_file(target, tmp_path):
    """A description that closes the docstring, and a file name with a line break in it, stay
    in the docstring and in the comment: the file runs what the network computes, and nothing
    written into the spec."""
    evil = '+ __import__(\\"pathlib\\").Path(\\"ran\\").touch() + '
    text = (
        (EXAMPLES / "xor.nn")
        .read_text()
        .replace('"XOR learned by a 2-2-1 network"', f'"\\\\ \\"\\"\\" {evil} \\"\\"\\""')
    )
    spec = tmp_path / 'evil\nopen("ran", "w").nn'
    spec.write_text(text)
    assert '"""' in nnspec.load(spec).program.description  # the text that would close it
    (path, _) = nnspec.load(spec).compile(target, tmp_path / "net.py")
    done = subprocess.run(
        [sys.executable, "-c", RUN, target, str(path)], cwd=tmp_path, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
    assert len(json.loads(done.stdout)) == 4 and not (tmp_path / "ran").exists()


def test_weights_of_another_network_are_refused(tmp_path, trained):
    other = trained(EXAMPLES / "perceptron_and.nn", "numpy").paths["weights"]
    with pytest.raises(SpecError) as error:
        nnspec.load(EXAMPLES / "xor.nn").compile("numpy", tmp_path / "xor.py", other)
    assert error.value.code == "E506"
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["--to", "numpy", "-o", "x.onnx"], "R602", "the numpy target writes a .py file"),
        (["--to", "onnx", "-o", "x.py"], "R602", "the onnx target writes a .onnx file"),
        (["--to", "torch", "--weights", "missing.safetensors"], "E505", "is not found"),
    ],
)
def test_command_line_mistakes_are_clear(args, code, said, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compile", str(EXAMPLES / "xor.nn"), *args]) == 1
    err = capsys.readouterr().err
    assert f"error[{code}]" in err and said in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_an_unknown_target_is_a_usage_error(capsys):
    assert main(["compile", str(EXAMPLES / "xor.nn"), "--to", "tflite"]) == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


def test_the_docs_show_what_xor_compiles_to():
    """docs/compile.md shows examples/xor.nn's whole torch file: the file written today."""
    from conftest import ROOT

    from nnspec.compile import emit

    docs = (ROOT / "docs" / "compile.md").read_text()
    shown = docs.split("`examples/xor.nn` compiles to:\n\n```python\n")[1].split("\n```")[0]
    assert shown + "\n" == emit(nnspec.load(EXAMPLES / "xor.nn"), "torch").decode()
