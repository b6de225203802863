"""`nnspec compile --to torch`: the standalone PyTorch file of every bundled network.

Each file, with its weights, is copied to a folder of its own and run in a subprocess in which
`import nnspec` fails; its outputs equal `to_torch()`'s on the same weights bit for bit, for
several batch sizes and sequence lengths. The emitted text is deterministic, passes ruff, and
matches golden files for xor.nn and elman.nn (regenerate them after a deliberate change with
NNSPEC_UPDATE_GOLDEN=1 pytest tests/test_compile_torch.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, SPECS, TEST_SPECS, import_file, spec_inputs, spec_models

import nnspec
from nnspec.backends.init import initial_params
from nnspec.compile import emit
from nnspec.compile.common import weights_file
from nnspec.compile.torch_target import MODULES, class_name
from nnspec.kinds import REGISTRY

torch = pytest.importorskip("torch")
from safetensors.torch import save_file  # noqa: E402

OK = TEST_SPECS / "ok"
GOLDEN = Path(__file__).resolve().parent / "golden" / "compile"
# the bundled specs, and the clean test specs that use every kind
PATHS = [*sorted(SPECS.glob("*.nn")), *sorted(EXAMPLES.glob("*.nn")), *sorted(OK.glob("*.nn"))]
NETWORKS = [(path, model.name) for path in PATHS for model in spec_models(path)]
BATCHES = (1, 2, 5)
STEPS = (3, 7)  # sequence lengths, for networks whose inputs have none of their own


def _model(path: Path, name: str):
    return next(m for m in spec_models(path) if m.name == name)


def _reference(model, params):
    """`to_torch()` in evaluation mode with `params` (the spec's names -> arrays)."""
    net = model.to_torch().eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    return net


def _write(model, folder: Path, params) -> Path:
    """The compiled file `net.py` and its weights in `folder`, as `nnspec compile` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "net.py").write_bytes(emit(model, "torch", params))
    (folder / "net.safetensors").write_bytes(weights_file(params))
    return folder / "net.py"


def _without_nnspec(folder: Path) -> dict:
    """The environment of a subprocess in which `import nnspec` fails (a stub package first on
    the path raises ImportError), with this process's thread count, so that both sum alike."""
    stub = folder / "stub" / "nnspec"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text('raise ImportError("nnspec is not installed here")\n')
    env = dict(os.environ, PYTHONPATH=str(folder / "stub"))
    env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    return env


# The subprocess: for every network of the manifest, import its file, load() its weights, run
# every case and compare with the expected outputs bit for bit; print what differs as JSON.
RUNNER = """
import importlib.util, json, sys
import torch
from safetensors.torch import load_file

try:
    import nnspec
except ImportError:
    pass
else:
    raise SystemExit("nnspec can be imported here")
torch.set_num_threads(int(sys.argv[2]))
report = {}
for entry in json.load(open(sys.argv[1])):
    spec = importlib.util.spec_from_file_location("net", entry["file"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.load()
    inputs, expected = load_file(entry["inputs"]), load_file(entry["expected"])
    problems = []
    for case in entry["cases"]:
        # a copy: a tensor read from a file may sit unaligned, and BLAS then sums in another order
        x = {name: inputs[f"{case}/{name}"].clone() for name in entry["input_names"]}
        with torch.no_grad():
            y = net(*x.values()) if len(x) == 1 else net(**x)
        if entry["outputs"] is None:
            y = {"": y}
        elif not isinstance(y, dict) or list(y) != entry["outputs"]:
            problems.append(f"{case}: outputs {type(y).__name__}")
            continue
        for name, value in y.items():
            if not torch.equal(value, expected[f"{case}/{name}"]):
                problems.append(f"{case}: output {name!r} differs")
    report[entry["name"]] = {"state": list(net.state_dict()), "problems": problems}
print(json.dumps(report))
"""


def _cases(model):
    """(case name, float32 inputs) for every batch size, and sequence length if it has any."""
    timed = any(model.program.layer(n).shape.timed for n in model.program.inputs)
    for batch in BATCHES:
        for steps in STEPS if timed else (None,):
            arrays = spec_inputs(model.program, batch, steps or 4, seed=batch)
            yield f"b{batch}t{steps}", {k: torch.from_numpy(v).float() for k, v in arrays.items()}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Every bundled network compiled into a folder of its own (copied away from where it was
    written), with the inputs and to_torch()'s outputs of every case; the manifest lists them."""
    root = tmp_path_factory.mktemp("compile_torch")
    manifest, states = [], {}
    for path, name in NETWORKS:
        model = _model(path, name)
        params = initial_params(model.program, seed=1)
        written = _write(model, root / "written" / f"{path.parent.name}_{path.stem}_{name}", params)
        folder = root / "elsewhere" / written.parent.name
        shutil.copytree(written.parent, folder)
        reference = _reference(model, params)
        inputs, expected, cases = {}, {}, []
        for case, x in _cases(model):
            with torch.no_grad():
                y = reference(**x)
            inputs |= {f"{case}/{k}": v for k, v in x.items()}
            expected |= {
                f"{case}/{k}": v for k, v in (y if isinstance(y, dict) else {"": y}).items()
            }
            cases.append(case)
        save_file(inputs, folder / "inputs.safetensors")
        save_file({k: v.contiguous() for k, v in expected.items()}, folder / "expected.safetensors")
        outputs = [o.name for o in model.program.outputs]
        manifest.append(
            {
                "name": folder.name,
                "file": str(folder / "net.py"),
                "inputs": str(folder / "inputs.safetensors"),
                "expected": str(folder / "expected.safetensors"),
                "input_names": list(model.program.inputs),
                "outputs": outputs if len(outputs) > 1 else None,
                "cases": cases,
            }
        )
        states[folder.name] = list(reference.state_dict())
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root, manifest, states


@pytest.mark.slow
def test_every_bundled_network_runs_without_nnspec_and_equals_to_torch(compiled):
    root, manifest, states = compiled
    (root / "run.py").write_text(RUNNER)
    done = subprocess.run(
        [sys.executable, "run.py", "manifest.json", str(torch.get_num_threads())],
        cwd=root,
        env=_without_nnspec(root),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert sorted(report) == sorted(entry["name"] for entry in manifest)
    for name, result in report.items():
        assert result["state"] == states[name], f"{name}: state_dict keys differ from to_torch()"
        assert result["problems"] == [], name


def _ruff(files: list[Path]) -> None:
    """`ruff check` and `ruff format --check` with the project's settings pass on `files`."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    config = Path(__file__).resolve().parent.parent / "pyproject.toml"
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [ruff, *command, "--config", str(config), *map(str, files)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


@pytest.mark.slow
def test_the_emitted_files_pass_ruff(compiled):
    root, _, _ = compiled
    _ruff(sorted((root / "written").glob("*/net.py")))


@pytest.mark.slow
def test_the_emitted_files_import_nothing_of_nnspec_nor_private_torch(compiled):
    root, _, _ = compiled
    for path in sorted((root / "written").glob("*/net.py")):
        text = path.read_text()
        assert "import nnspec" not in text and "from nnspec" not in text, path.parent.name
        assert "_VF" not in text and "pickle" not in text, path.parent.name
        assert "._modules" not in text, path.parent.name
        imports = {
            line.split()[1].split(".")[0]
            for line in text.splitlines()
            if line.lstrip().startswith(("import ", "from "))
        }
        assert imports <= {"pathlib", "torch", "safetensors"}, (path.parent.name, imports)


def test_compiling_twice_gives_the_same_bytes():
    for path in (EXAMPLES / "xor.nn", SPECS / "lstm.nn", EXAMPLES / "residual.nn"):
        first, second = nnspec.load(path), nnspec.load(path)
        assert emit(first, "torch") == emit(second, "torch"), path.name
        params = initial_params(first.program, 0)
        assert weights_file(params) == weights_file(initial_params(second.program, 0))


@pytest.mark.parametrize("name", ["xor", "elman"])
def test_golden_files(name):
    text = emit(nnspec.load(EXAMPLES / f"{name}.nn"), "torch").decode()
    golden = GOLDEN / f"torch_{name}.py"
    if os.environ.get("NNSPEC_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), "run NNSPEC_UPDATE_GOLDEN=1 pytest tests/test_compile_torch.py"
    assert text == golden.read_text()


def test_the_file_reads_like_hand_written_code():
    text = emit(nnspec.load(EXAMPLES / "xor.nn"), "torch").decode()
    assert "class Xor(nn.Module):" in text
    assert "self.h = nn.Linear(2, 2)" in text and "self.y = nn.Linear(2, 1)" in text
    assert "        # xor.nn:10  dense  h: 2, act=tanh\n        h = torch.tanh(self.h(x))" in text
    assert "for " not in text.split("def forward")[1].split("def load")[0]  # no loop: no `~>`
    assert "def load(path=None) -> Xor:" in text and 'if __name__ == "__main__":' in text
    assert "_argument" not in text and "_shift" not in text  # only the helpers it uses


def test_recurrent_layers_run_fused_kernels_and_loops_only_on_cycles():
    lstm = emit(nnspec.load(SPECS / "lstm.nn"), "torch").decode()
    assert "self.m = nn.LSTMCell(2, 32)" in lstm
    assert "m = _run_cell(torch.lstm, self.m, x)" in lstm and "for t in" not in lstm
    elman = emit(nnspec.load(EXAMPLES / "elman.nn"), "torch").decode()
    assert "for t in range(T):" in elman


ODD_NAMES = """
block pair(width) {
    input x: width
    dense keys: width
    dense eval: width
    x -> keys -> eval
}
network n {
    input lambda: 2
    dense eval: 3
    dense forward: 1
    pair  keys: 2
    pair  for: 2, repeat=2
    lambda -> eval -> forward
    lambda -> keys -> for
    output forward
    output for
}
"""


@pytest.mark.slow
def test_layer_names_python_cannot_take_keep_their_state_dict_keys(tmp_path):
    model = nnspec.loads(ODD_NAMES)
    params = initial_params(model.program, 0)
    path = _write(model, tmp_path, params)
    net = import_file(path).load()
    reference = _reference(model, params)
    assert list(net.state_dict()) == list(reference.state_dict())
    x = torch.rand(4, 2)
    with torch.no_grad():
        y, expected = net(x), reference(x)
        assert list(y) == list(expected) == ["forward", "for.2.eval"]
        assert all(torch.equal(y[k], expected[k]) for k in y)
        assert torch.equal(net(**{"lambda": x})["forward"], expected["forward"])
    _ruff([path])


@pytest.mark.parametrize("spec", ["specs/vae.nn", "specs/dff.nn", "tests/specs/ok/every_kind.nn"])
def test_training_mode_draws_the_same_noise(spec, tmp_path):
    """Dropout and `sample` in training mode: with the same seed, the same draws as to_torch()."""
    for i, model in enumerate(spec_models(EXAMPLES.parent / spec)):
        params = initial_params(model.program, 0)
        net = import_file(_write(model, tmp_path / str(i), params)).load().train()
        reference = _reference(model, params).train()
        x = {k: torch.from_numpy(v).float() for k, v in spec_inputs(model.program, 4).items()}
        outputs = []
        for module in (net, reference):
            torch.manual_seed(7)
            with torch.no_grad():
                y = module(**x)
            outputs.append(y if isinstance(y, dict) else {"": y})
        assert all(torch.equal(outputs[0][k], outputs[1][k]) for k in outputs[1]), model.name
        assert all(
            torch.equal(a, b)
            for a, b in zip(net.state_dict().values(), reference.state_dict().values(), strict=True)
        ), f"{model.name}: running statistics"


def test_nested_layer_names_are_nested_modules(tmp_path):
    model = nnspec.load(EXAMPLES / "residual.nn")
    params = initial_params(model.program, 2)
    net = import_file(_write(model, tmp_path, params)).load()
    assert list(net.state_dict()) == list(_reference(model, params).state_dict())
    assert isinstance(net.r.get_submodule("1.a"), torch.nn.Linear)


def test_load_names_a_missing_weights_file(tmp_path):
    (tmp_path / "net.py").write_bytes(emit(nnspec.load(EXAMPLES / "xor.nn"), "torch"))
    module = import_file(tmp_path / "net.py")  # and no xor.safetensors beside it
    with pytest.raises(FileNotFoundError, match="no weights file"):
        module.load()
    assert module.Xor()(torch.zeros(3, 2)).shape == (3, 1)  # constructible with no arguments


def test_a_kind_the_target_lacks_is_an_error_at_the_layer(monkeypatch):
    monkeypatch.delitem(MODULES, "dense")
    with pytest.raises(nnspec.SpecError) as caught:
        emit(nnspec.load(EXAMPLES / "xor.nn"), "torch")
    assert caught.value.code == "E601" and caught.value.span.line == 10
    assert "'dense'" in caught.value.message and caught.value.hint


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_has_an_entry(kind):
    assert kind in MODULES, (
        f"kind '{kind}': add its constructor to MODULES in nnspec/compile/torch_target.py"
    )


@pytest.mark.slow
def test_running_the_file_prints_the_output_shapes(tmp_path):
    for path, name, shown in [
        (EXAMPLES / "xor.nn", "xor", "y: [2, 1]\n"),
        (EXAMPLES / "elman.nn", "elman", "y: [2, 5, 1]\n"),
    ]:
        model = nnspec.load(path)
        folder = tmp_path / name
        _write(model, folder, initial_params(model.program, 0))
        done = subprocess.run(
            [sys.executable, "net.py"],
            cwd=folder,
            env=_without_nnspec(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout == shown


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["examples/xor.nn", "examples/lenet.nn", "specs/lstm.nn"])
def test_export_and_compile_where_to_torch_does(spec, tmp_path):
    model = nnspec.load(EXAMPLES.parent / spec)
    params = initial_params(model.program, 0)
    net = import_file(_write(model, tmp_path, params)).load()
    reference = _reference(model, params)
    x = tuple(torch.from_numpy(v).float() for v in spec_inputs(model.program, 3, 5).values())
    try:
        torch.export.export(reference, x)
    except Exception as error:  # noqa: BLE001 - where to_torch() cannot, nothing is promised
        pytest.skip(f"to_torch() does not export: {type(error).__name__}")
    exported = torch.export.export(net, x)
    assert torch.equal(exported.module()(*x), net(*x))
    try:
        torch.compile(reference, backend="eager", fullgraph=True)(*x)
    except Exception as error:  # noqa: BLE001 - where to_torch() cannot, nothing is promised
        pytest.skip(f"torch.compile cannot run to_torch() here: {type(error).__name__}")
    compiled = torch.compile(net, backend="eager", fullgraph=True)
    assert torch.equal(compiled(*x), net(*x))


def test_a_wrong_input_gets_the_backends_message(tmp_path):
    model = nnspec.load(EXAMPLES / "elman.nn")
    net = import_file(_write(model, tmp_path, initial_params(model.program, 0))).load()
    with pytest.raises(ValueError, match=r"input 'x' must be \[B, T, 1\], but it is \[3, 4, 2\]"):
        net(torch.zeros(3, 4, 2))
    with pytest.raises(ValueError) as expected:
        model.to_torch()(torch.zeros(3, 4, 2))
    assert "input 'x' must be [B, T, 1]" in str(expected.value)


@pytest.mark.parametrize(
    "network, cls",
    [("xor", "Xor"), ("perceptron_and", "PerceptronAnd"), ("attention", "AttentionNet")]
    + [("path", "PathNet"), ("none", "NoneNet"), ("t", "TNet")],
)
def test_the_class_is_named_after_the_network(network, cls):
    assert class_name(network) == cls


@pytest.mark.slow
def test_the_same_bytes_in_processes_of_other_hash_seeds():
    script = (
        "import sys, hashlib, nnspec; from nnspec.compile import emit; "
        "print(hashlib.sha256(b''.join(emit(m, 'torch') for p in sys.argv[1:] "
        "for m in nnspec.load_all(p))).hexdigest())"
    )
    paths = [str(SPECS / "residual.nn"), str(OK / "every_kind.nn")]
    digests = {
        subprocess.run(
            [sys.executable, "-c", script, *paths],
            env=dict(os.environ, PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1
