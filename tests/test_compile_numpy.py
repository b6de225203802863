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

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, SPECS, TEST_SPECS, spec_inputs, spec_models
from safetensors.numpy import load_file, save_file

import nnspec
from nnspec.backends.init import initial_params
from nnspec.compile import emit

GOLDEN = Path(__file__).resolve().parent / "golden" / "compile_numpy"
SPEC_FILES = (
    sorted(SPECS.glob("*.nn"))
    + sorted(EXAMPLES.glob("*.nn"))
    + sorted((TEST_SPECS / "ok").glob("*.nn"))
)
# kinds and settings the spec folders leave out: stateful cells stepping inside a `~>` loop,
# images at every step, a held input, global pooling, padding and ceil mode
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
    named = [(f"{p.parent.name}/{p.stem}/{m.name}", m) for p in SPEC_FILES for m in spec_models(p)]
    extra = folder / "extra.nn"
    extra.write_text(EXTRA)
    return named + [(f"extra/{m.name}", m) for m in nnspec.load_all(extra)]


def _inputs(model, batch: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    return {
        name: value.astype(np.float32)
        for name, value in spec_inputs(model.program, batch, steps, seed).items()
    }


def _expected(model, params, inputs) -> dict[str, np.ndarray]:
    run = model.to_numpy()
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
    net = module.load() if entry["weights"] is None else module.load(entry["weights"])
    cases = np.load(entry["inputs"])
    outputs = {}
    for i in range(entry["cases"]):
        with np.errstate(all="ignore"):
            y = net(**{n: cases[f"{i}__{n}"] for n in entry["names"]})
        y = y if isinstance(y, dict) else {net.outputs[0]: y}
        outputs.update({f"{i}__{n}": v for n, v in y.items()})
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


def _prepare(folder: Path, key: str, model, params, weights_path=None) -> dict:
    """Compile `model` into `folder` (the file, its weights, its inputs and what the NumPy
    backend gives for them), and the manifest's entry for the copy in `folder`-copied."""
    stem = key.replace("/", "__")
    source = folder / "made" / stem  # a folder each: two networks may share a name
    source.mkdir(parents=True)
    (source / f"{stem}.py").write_bytes(emit(model, "numpy", params))
    if weights_path is None:
        save_file(params, str(source / f"{model.name}.safetensors"))
    cases, expected = {}, {}
    for i, (batch, steps) in enumerate(CASES):
        inputs = _inputs(model, batch, steps, seed=i)
        cases.update({f"{i}__{n}": v for n, v in inputs.items()})
        expected.update({f"{i}__{n}": v for n, v in _expected(model, params, inputs).items()})
    np.savez(source / f"{stem}.inputs.npz", **cases)
    copy = folder / "copied" / stem
    return {
        "module": stem,
        "file": str(copy / f"{stem}.py"),
        "weights": None if weights_path is None else str(weights_path),
        "inputs": str(copy / f"{stem}.inputs.npz"),
        "outputs": str(folder / f"{stem}.outputs.npz"),
        "names": list(model.program.inputs),
        "cases": len(CASES),
        "expected": expected,
    }


@pytest.mark.slow
def test_every_network_runs_without_nnspec_and_equals_the_numpy_backend(tmp_path, trained):
    """Initial weights of seed 0 for every network, and a trained run's weights.safetensors for
    examples/xor.nn: the compiled file's outputs equal the NumPy backend's to 1e-6."""
    jobs = []
    for key, model in _networks(tmp_path):
        jobs.append(_prepare(tmp_path, key, model, initial_params(model.program, 0)))
    xor = nnspec.load(EXAMPLES / "xor.nn")
    run = trained(EXAMPLES / "xor.nn", "numpy")
    weights = tmp_path / "copied" / "trained__xor" / "weights.safetensors"
    state = load_file(str(run.paths["weights"]))
    jobs.append(_prepare(tmp_path, "trained/xor", xor, state, weights))
    shutil.copytree(tmp_path / "made", tmp_path / "copied")
    shutil.copy(run.paths["weights"], weights)
    _run_compiled(tmp_path, [{k: v for k, v in job.items() if k != "expected"} for job in jobs])
    for job in jobs:
        got = np.load(job["outputs"])
        assert sorted(got.files) == sorted(job["expected"]), job["module"]
        for name, want in job["expected"].items():
            np.testing.assert_allclose(
                got[name], want, rtol=1e-6, atol=1e-6, err_msg=f"{job['module']} {name}"
            )
            assert got[name].dtype == np.float32, (job["module"], name)
