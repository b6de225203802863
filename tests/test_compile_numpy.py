"""The NumPy target (`nnspec compile --to numpy`): one standalone .py file per network.

Every network of every spec in specs/, examples/ and tests/specs/ok/ (and a few written here for
kinds and settings those leave out) is compiled, written with its weights into a folder, copied
to another, and run there in one subprocess in which `import nnspec` and `import torch` fail; its
outputs must equal the NumPy backend's in evaluation, on the same weights, for several batch
sizes and sequence lengths. The files for specs/xor.nn and specs/elman.nn are held as golden
files; regenerate them after a deliberate change with
NNSPEC_UPDATE_GOLDEN=1 pytest tests/test_compile_numpy.py.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    EXAMPLES,
    ROOT,
    SPECS,
    TEST_SPECS,
    compiles_to,
    import_file,
    spec_inputs,
    spec_models,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

import nnspec
from nnspec.backends.init import initial_params
from nnspec.compile import emit
from nnspec.compile.common import weights_file
from nnspec.compile.numpy_kinds import CANNOT, LOWERINGS
from nnspec.errors import SpecError
from nnspec.kinds import REGISTRY

GOLDEN = Path(__file__).resolve().parent / "golden" / "compile_numpy"
SPEC_FILES = (
    sorted(SPECS.glob("*.nn"))
    + sorted(EXAMPLES.glob("*.nn"))
    + sorted((TEST_SPECS / "ok").glob("*.nn"))
)
# kinds and settings the spec folders leave out: stateful cells stepping inside a `~>` loop,
# images at every step, a held input, global pooling, padding and ceil mode, two outputs, and
# layer names that Python (a builtin, `p`, `np`, `T`) or the writer (`T` and `T_previous`, a long
# name) would trip on
EXTRA = """
network cells_in_a_loop "every stateful kind on one cycle through a ~> link" {
    input x: 3, seq
    lstm  l: 4
    gru   g: 5
    rnn   r: 3, act=relu
    lif   s: 4, threshold=0.3
    dense y: 2, act=tanh
    x -> l -> g -> r -> s -> y
    y ~> l
}

network frames "an image at every step" {
    input  v: [2, 7, 7], seq
    conv   c: 3, kernel=3, stride=2, padding=same, act=relu
    pool   p: avg, size=2, padding=1, ceil
    global_pool gp: max
    dense  y: 2
    v -> c -> p -> gp -> y
}

network awkward_names "names that Python or the writer would trip on" {
    input  range: 3, seq
    input  p: 2
    dense  encoder_hidden_state_projection: 40, act=leaky_relu(alpha=0.2)
    dense  T: 5, act=tanh
    dense  np: 4
    dense  T_previous: 3
    dense  len: 2, act=softmax
    range, p -> encoder_hidden_state_projection -> T -> np -> T_previous -> len
    T ~> T
    np ~> encoder_hidden_state_projection
}

network two_heads "two outputs, by name" {
    input x: 4
    dense h: 3, act=relu
    dense a: 2
    dense b: 1, act=sigmoid
    x -> h -> a
    h -> b
    output a, b
}

network held "one value held for four steps, read a step late" {
    input  x: 1, steps=4
    input  c: 2
    dense  d: 3, act=gelu
    rnn    r: 3
    dense  y: 2, act=softmax
    x, c -> d -> r -> y
    x ~> y
    output y: mean
}
"""
# batch sizes and, for sequences of any length, numbers of steps
CASES = ((1, 4), (3, 1), (8, 7))


def _networks(folder: Path) -> list[tuple[str, object]]:
    """(a key, the model) for every network of the spec folders, and of EXTRA."""
    named = [
        (f"{p.parent.name}/{p.stem}/{m.name}", m)
        for p in SPEC_FILES
        for m in spec_models(p)
        if compiles_to(m, "numpy")
    ]
    return named + [(f"extra/{m.name}", m) for m in nnspec.load_all(_extra(folder))]


def _extra(folder: Path) -> Path:
    path = folder / "extra.nn"
    path.write_text(EXTRA)
    return path


def _inputs(model, batch: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    return {
        name: value.astype(np.float32)
        for name, value in spec_inputs(model.program, batch, steps, seed).items()
    }


def _expected(model, params, inputs, dtype: str = "float32") -> dict[str, np.ndarray]:
    run = model.to_numpy(dtype=dtype)
    if dtype != "float32":
        params = {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in params.items()}
        inputs = {k: v.astype(dtype) for k, v in inputs.items()}
    run.load(params)
    with np.errstate(all="ignore"):
        y = run.eval()(**inputs)
    return y if isinstance(y, dict) else {model.program.outputs[0].name: y}


def _stub(folder: Path) -> Path:
    """A folder for PYTHONPATH in which `import nnspec` and `import torch` raise ImportError."""
    for name in ("nnspec", "torch"):
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    return folder


RUNNER = """
import importlib.util, json, sys
import numpy as np

for name in ("nnspec", "torch"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} was importable")
for entry in json.load(open(sys.argv[1])):
    spec = importlib.util.spec_from_file_location(entry["module"], entry["file"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cases = np.load(entry["inputs"])
    outputs = {}
    for dtype in ("float32", "float64"):  # as shipped, then with DTYPE set to float64
        module.DTYPE = np.dtype(dtype).type
        net = module.load() if entry["weights"] is None else module.load(entry["weights"])
        for i in range(entry["cases"]):
            with np.errstate(all="ignore"):
                y = net(**{n: cases[f"{i}__{n}"] for n in entry["names"]})
            y = y if isinstance(y, dict) else {net.outputs[0]: y}
            outputs.update({f"{dtype}/{i}__{n}": v for n, v in y.items()})
    np.savez(entry["outputs"], **outputs)
assert not any(m.startswith(("nnspec", "torch")) for m in sys.modules)
"""


def _run_compiled(tmp_path: Path, jobs: list[dict]) -> None:
    """Run every job's file from a copy of its folder, in one subprocess without nnspec."""
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(jobs))
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(_stub(tmp_path / "stub"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-B", str(runner), str(manifest)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr


def _prepare(folder: Path, key: str, model, params, weights: bytes | None = None) -> dict:
    """Compile `model` into a folder of its own under `folder`/made: the file, its weights
    (STEM.safetensors beside it, which `load()` reads, or `weights` as weights.safetensors, which
    `load(path)` is given), its inputs, and what the NumPy backend gives for them. Returns the
    manifest's entry for the copy of that folder under `folder`/copied."""
    stem = key.replace("/", "__")
    source = folder / "made" / stem  # a folder each: two networks may share a name
    source.mkdir(parents=True)
    (source / f"{stem}.py").write_bytes(emit(model, "numpy", params))
    if weights is None:  # as `nnspec compile` writes them
        (source / f"{stem}.safetensors").write_bytes(weights_file(params))
    else:
        (source / "weights.safetensors").write_bytes(weights)
    cases, expected, exact = {}, {}, {}
    for i, (batch, steps) in enumerate(CASES):
        inputs = _inputs(model, batch, steps, seed=i)
        cases.update({f"{i}__{n}": v for n, v in inputs.items()})
        expected.update({f"{i}__{n}": v for n, v in _expected(model, params, inputs).items()})
        in64 = _expected(model, params, inputs, "float64")
        exact.update({f"{i}__{n}": v for n, v in in64.items()})
    np.savez(source / f"{stem}.inputs.npz", **cases)
    copy = folder / "copied" / stem
    return {
        "module": stem,
        "file": str(copy / f"{stem}.py"),
        "weights": None if weights is None else str(copy / "weights.safetensors"),
        "inputs": str(copy / f"{stem}.inputs.npz"),
        "outputs": str(folder / f"{stem}.outputs.npz"),
        "names": list(model.program.inputs),
        "cases": len(CASES),
        "expected": expected,
        "exact": exact,
    }


def _shaken(params: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Every float parameter and buffer drawn anew, so that the weights the initial ones leave
    alike (batchnorm's statistics, norms' scales, zero biases) differ: a mix-up shows."""
    rng = np.random.default_rng(seed)
    shaken = {}
    for name, value in params.items():
        if value.dtype.kind != "f":
            shaken[name] = value
            continue
        drawn = rng.normal(0.0, 0.5, value.shape)
        if name.endswith("running_var"):
            drawn = np.abs(drawn) + 0.5
        shaken[name] = drawn.astype(value.dtype)
    return shaken


@pytest.mark.slow
def test_every_network_runs_without_nnspec_and_equals_the_numpy_backend(tmp_path, trained):
    """Every network with its initial weights of seed 0 (read by `load()` from beside the file)
    and with every weight drawn anew (by `load(path)`), and examples/xor.nn with a trained run's
    weights.safetensors: the compiled file's outputs equal the NumPy backend's to 1e-6, and to
    1e-9 with the file's DTYPE set to float64 against the backend in float64."""
    jobs = []
    for i, (key, model) in enumerate(_networks(tmp_path)):
        params = initial_params(model.program, 0)
        jobs.append(_prepare(tmp_path, key, model, params))
        shaken = _shaken(params, i)
        jobs.append(_prepare(tmp_path, f"shaken/{key}", model, shaken, weights_file(shaken)))
    xor = nnspec.load(EXAMPLES / "xor.nn")
    path = trained(EXAMPLES / "xor.nn", "numpy").paths["weights"]
    jobs.append(_prepare(tmp_path, "trained/xor", xor, load_file(path), path.read_bytes()))
    shutil.copytree(tmp_path / "made", tmp_path / "copied")
    shipped = [{k: v for k, v in job.items() if k not in ("expected", "exact")} for job in jobs]
    _run_compiled(tmp_path, shipped)
    for job in jobs:
        got = np.load(job["outputs"])
        names = sorted(job["expected"])
        assert sorted(got.files) == [f"{t}/{n}" for t in ("float32", "float64") for n in names]
        for name, want in job["expected"].items():
            single, double = got[f"float32/{name}"], got[f"float64/{name}"]
            assert single.dtype == np.float32 and double.dtype == np.float64, (job["module"], name)
            # in float64 the file computes what the backend computes, with no rounding to hide a
            # mix-up behind
            exact = job["exact"][name]
            assert np.allclose(double, exact, rtol=1e-9, atol=1e-9), (job["module"], name)
            if np.allclose(single, want, rtol=1e-6, atol=1e-6):
                continue
            # float32 summed in another order: where drawn weights make large sums or saturate a
            # softmax or sigmoid, the file and the backend part by up to 6e-5 (the shaken an, dcign
            # and resnet_stages); then the file stays near the float64 truth (measured here: the
            # file at most 2.6e-5 of the output's scale from it, the backend 5.4e-5)
            scale = max(1.0, float(np.abs(exact).max()))
            mine, theirs = np.abs(single - exact).max() / scale, np.abs(want - exact).max() / scale
            assert mine <= 1e-4, (job["module"], name, mine, theirs)


# ---- the file itself ---------------------------------------------------------------------------
def _module(tmp_path: Path, model, params=None):
    """The compiled file of `model`, imported from `tmp_path` (into this process)."""
    path = tmp_path / f"{model.name}.py"
    path.write_bytes(emit(model, "numpy", params))
    return import_file(path, f"compiled_{model.name}")


def test_two_compilations_give_the_same_bytes_and_import_only_numpy(tmp_path):
    allowed = {"json", "math", "struct", "pathlib", "numpy", "numpy.lib.stride_tricks"}
    for key, model in _networks(tmp_path):
        first = emit(model, "numpy")
        assert emit(model, "numpy", initial_params(model.program, 1)) == first, key
        tree = ast.parse(first)
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imported <= allowed, (key, imported - allowed)


@pytest.mark.parametrize("name", ["xor", "elman"])
def test_golden_files(name):
    """specs/xor.nn and specs/elman.nn compile to their golden files
    (NNSPEC_UPDATE_GOLDEN=1 rewrites them)."""
    text = emit(nnspec.load(SPECS / f"{name}.nn"), "numpy")
    golden = GOLDEN / f"{name}.py"
    if os.environ.get("NNSPEC_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(text)
    assert text == golden.read_bytes(), (
        f"{golden} differs (NNSPEC_UPDATE_GOLDEN=1 pytest tests/test_compile_numpy.py rewrites it)"
    )


@pytest.mark.slow
def test_every_file_passes_ruff(tmp_path):
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists() and shutil.which("ruff") is None:
        pytest.skip("ruff is not installed")
    folder = tmp_path / "files"
    folder.mkdir()
    for key, model in _networks(tmp_path):
        (folder / (key.replace("/", "__") + ".py")).write_bytes(emit(model, "numpy"))
    for command in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        result = subprocess.run(
            [ruff, *command, "--config", str(ROOT / "pyproject.toml"), str(folder)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_running_the_file_prints_the_output_shapes(tmp_path):
    """`python net.py`: a zero batch through the network, with the weights beside it if there
    are, with zeros otherwise."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(_stub(tmp_path / "stub"))
    for name, shape in (("xor", "[2, 1]"), ("elman", "[2, 5, 1]")):
        model = nnspec.load(SPECS / f"{name}.nn")
        path = tmp_path / f"{name}.py"
        path.write_bytes(emit(model, "numpy"))
        for weights in (False, True):
            if weights:
                save_file(initial_params(model.program, 0), str(tmp_path / f"{name}.safetensors"))
            result = subprocess.run(
                [sys.executable, "-B", str(path)],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout == f"y: {shape}\n"


def test_load_reads_the_weights_beside_the_file_or_a_path(tmp_path):
    model = nnspec.load(SPECS / "xor.nn")
    params = initial_params(model.program, 3)
    module = _module(tmp_path, model)
    save_file(params, str(tmp_path / "xor.safetensors"))
    x = np.array([[0, 1], [1, 1]], np.float32)
    want = _expected(model, params, {"x": x})["y"]
    np.testing.assert_array_equal(module.load()(x), want)
    other = tmp_path / "other.safetensors"
    save_file(initial_params(model.program, 4), str(other))
    net = module.load(other)
    assert not np.array_equal(net(x), want)
    np.testing.assert_array_equal(net(x=x), net.eval()(x))
    # a trained GAN's weights sit under the network's name, a checkpoint's under `weights.`
    for prefix in ("xor.", "weights."):
        prefixed = {prefix + k: v for k, v in params.items()} | {"optimizer.m": np.zeros(2)}
        np.testing.assert_array_equal(module.Xor().load(prefixed)(x), want)
    assert module.Xor()(x).shape == (2, 1)  # zeros until loaded


def test_wrong_weights_and_inputs_are_named(tmp_path):
    model = nnspec.load(SPECS / "xor.nn")
    module = _module(tmp_path, model)
    params = initial_params(model.program, 0)
    net = module.Xor()
    with pytest.raises(ValueError, match=r"missing \['h.bias'\], unexpected \['extra'\]"):
        net.load({k: v for k, v in params.items() if k != "h.bias"} | {"extra": np.zeros(1)})
    with pytest.raises(
        ValueError, match=r"'h.weight' is \[3, 2\] in the weights; xor needs \[2, 2\]"
    ):
        net.load(params | {"h.weight": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"input 'x' takes \[B, 2\], but receives \[4, 3\]"):
        net(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="must hold numbers"):
        net(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="no input 'z'"):
        net(z=np.zeros((1, 2)))
    with pytest.raises(TypeError, match="missing input 'x'"):
        net()
    elman = _module(tmp_path, nnspec.load(SPECS / "elman.nn")).Elman()
    assert elman(np.zeros((2, 6))).shape == (2, 6, 1)  # a last axis of 1 may be left out
    with pytest.raises(ValueError, match=r"takes \[B, T, 1\]"):
        elman(np.zeros((2, 6, 2)))
    with pytest.raises(ValueError, match="receives an empty array"):
        elman(np.zeros((2, 0, 1)))
    held = nnspec.load_all(_extra(tmp_path))[-1]
    assert held.name == "held"
    net = _module(tmp_path, held).Held()
    assert net(np.zeros((2, 1)), np.zeros((2, 2))).shape == (2, 2)  # held for four steps
    assert net(np.zeros((2, 4, 1)), np.zeros((2, 2))).shape == (2, 2)  # or one a step
    with pytest.raises(
        ValueError, match=r"takes \[B, 1\] or \[B, 4, 1\], but receives \[2, 5, 1\]"
    ):
        net(np.zeros((2, 5, 1)), np.zeros((2, 2)))


def test_the_safetensors_reader_refuses_what_is_not_one(tmp_path):
    module = _module(tmp_path, nnspec.load(SPECS / "xor.nn"))
    arrays = {"a": np.arange(6, dtype=np.float64).reshape(2, 3), "n": np.array(7, np.int64)}
    good = tmp_path / "good.safetensors"
    save_file(arrays, str(good), metadata={"columns": "x"})
    read = module.read_safetensors(good)
    assert sorted(read) == ["a", "n"]
    np.testing.assert_array_equal(read["a"], arrays["a"])
    assert read["n"].dtype == np.int64 and read["n"][()] == 7
    data = good.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    bad = {
        "short": b"\x01\x02",
        "huge header": (200 * 2**20).to_bytes(8, "little") + b"{}",
        "past the end": (size + 1000).to_bytes(8, "little") + data[8:],
        "not json": (4).to_bytes(8, "little") + b"{{{{",
        "not an object": (2).to_bytes(8, "little") + b"[]",
    }
    for name, change in (
        ("unknown dtype", {"dtype": "Q7"}),
        ("offsets past the data", {"data_offsets": [0, 10**6]}),
        ("wrong size", {"shape": [3, 3]}),
    ):
        changed = json.dumps(header | {"a": header["a"] | change}).encode()
        bad[name] = len(changed).to_bytes(8, "little") + changed + data[8 + size :]
    for name, content in bad.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(ValueError, match="safetensors|tensor 'a'"):
            module.read_safetensors(path)


def test_every_kind_is_emitted_or_has_a_reason():
    missing = [name for name in REGISTRY if name not in LOWERINGS and name not in CANNOT]
    assert not missing, (
        f"kinds {missing} have no row in nnspec/compile/numpy_kinds.py: add a lowering to "
        "LOWERINGS, or the reason it cannot be compiled to CANNOT (E601)"
    )


def test_a_kind_without_a_lowering_is_e601_at_its_layer(monkeypatch):
    model = nnspec.load(SPECS / "xor.nn")
    monkeypatch.delitem(LOWERINGS, "dense")
    monkeypatch.setitem(CANNOT, "dense", "no reason but this test")
    with pytest.raises(SpecError) as caught:
        emit(model, "numpy")
    error = caught.value
    assert error.code == "E601"
    assert (error.span.line, error.span.column) == (10, 12)
    assert "layer 'h' of kind 'dense' cannot be compiled to numpy: no reason but this test" in (
        error.message
    )
    assert error.hint


# ---- generated networks ------------------------------------------------------------------------
ACTS = ["identity", "tanh", "relu", "sigmoid", "gelu", "softplus", "elu", "leaky_relu(alpha=0.2)"]


@st.composite
def valid_network(draw) -> str:
    """A chain of layers that fit what enters them, from one input (a vector, a sequence, a held
    value or an image), now and then with a `~>` link onto a layer of a sequence, a residual
    `add`, or an output over time."""
    form = draw(st.sampled_from(["vector", "seq", "held", "image"]))
    lines = {
        "vector": "input x: 5",
        "seq": "input x: 3, seq",
        "held": "input x: 3, steps=3",
        "image": "input x: [2, 8, 8]",
    }[form]
    lines, links, previous = [lines], [], "x"
    timed, image, size = form in ("seq", "held"), form == "image", 8
    width = 5 if form == "vector" else 3  # what a `dense skip` from x must give to be added
    for i in range(draw(st.integers(1, 5))):
        name = f"l{i}"
        units = draw(st.integers(2, 6))
        act = draw(st.sampled_from(ACTS))
        if image:
            choices = ["conv", "batchnorm", "layernorm", "relu", "flatten", "global_pool"]
            choices += ["pool", "deconv"] if size >= 4 else []
        else:
            choices = ["dense", "maxout", "dropout", "batchnorm", "layernorm", "softmax", "act"]
            choices += ["rnn", "lstm", "gru", "lif", "attention", "readout"] if timed else []
        kind = draw(st.sampled_from(choices))
        if kind == "conv":
            stride, padding = draw(st.sampled_from([1, 2])), draw(st.sampled_from(["same", 1]))
            k = draw(st.sampled_from([1, 3]))
            line = (
                f"conv {name}: {units}, kernel={k}, stride={stride}, padding={padding}, act={act}"
            )
            size = -(-size // stride) if padding == "same" else (size + 2 - k) // stride + 1
        elif kind == "deconv":
            line, size = f"deconv {name}: {units}, kernel=2, stride=2, act={act}", size * 2
        elif kind == "pool":
            mode, pad = draw(st.sampled_from(["max", "avg"])), draw(st.sampled_from([0, 1]))
            line = f"pool {name}: {mode}, size=2, padding={pad}"
            size = (size + 2 * pad - 2) // 2 + 1
        elif kind in ("flatten", "global_pool"):
            line = f"flatten {name}" if kind == "flatten" else f"global_pool {name}: max"
            image, width = False, None
        elif kind in ("dense", "rnn", "lstm", "gru", "lif", "maxout"):
            extra = {"dense": f", act={act}", "rnn": ", act=relu", "maxout": ", pieces=2"}
            line, width = f"{kind} {name}: {units}{extra.get(kind, '')}", units
            if timed and kind != "maxout" and draw(st.integers(0, 2)) == 0:
                links.append(f"{name} ~> {name}")
        elif kind == "attention":
            causal = draw(st.sampled_from(["true", "false"]))
            line, width = f"attention {name}: heads=2, dim=4, causal={causal}", 4
        elif kind == "readout":
            line, timed = f"readout {name}: {draw(st.sampled_from(['mean', 'sum', 'max']))}", False
        elif kind == "dropout":
            line = f"dropout {name}: 0.3"
        elif kind == "act":  # an activation as a layer: `leaky_relu l2: alpha=0.2`
            line = f"{act.split('(')[0]} {name}" + (": alpha=0.2" if "(" in act else "")
        else:
            line = f"{kind} {name}"
        lines.append(line)
        links.append(f"{previous} -> {name}")
        previous = name
    joinable = form != "image" and width is not None and timed == (form in ("seq", "held"))
    if joinable and draw(st.booleans()):  # a residual join
        lines.append(f"dense skip: {width}")
        lines.append("add join")
        links += ["x -> skip", f"skip, {previous} -> join"]
    if timed and draw(st.booleans()):
        links.append(f"output {links[-1].split()[-1]}: {draw(st.sampled_from(['last', 'mean']))}")
    return "network generated {\n" + "\n".join(f"    {line}" for line in lines + links) + "\n}\n"


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_network(), st.integers(0, 2**16))
def test_generated_networks_equal_the_numpy_backend(tmp_path_factory, text, seed):
    """Generated networks: each that checks clean compiles, and its file (imported here)
    equals the NumPy backend with every weight drawn at random."""
    try:
        model = nnspec.loads(text)
    except SpecError:
        return
    params = _shaken(initial_params(model.program, 0), seed)
    module = _module(tmp_path_factory.mktemp("generated"), model)
    net = next(v for v in vars(module).values() if isinstance(v, type) and hasattr(v, "forward"))
    net = net().load(params)
    for batch, steps in ((1, 3), (4, 2)):
        inputs = _inputs(model, batch, steps, seed)
        want = _expected(model, params, inputs)
        with np.errstate(all="ignore"):
            got = net(**inputs)
        got = got if isinstance(got, dict) else {model.program.outputs[0].name: got}
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6, err_msg=text)
