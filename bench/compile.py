"""Inference latency of the compiled files (`nnspec compile`) against the backends they come from.

Six bundled networks, compiled to each target with the same seeded parameters:

  xor        specs/xor.nn, dense 2-2-1
  lenet      specs/lenet.nn, two conv + pool, two dense (dropout off in eval), 8x8 images
  lstm       specs/lstm.nn, lstm 32 over 30 steps, the last step's dense output
  gru        specs/gru.nn, gru 32 over 30 steps, the last step's dense output
  elman      specs/elman.nn, a dense tanh layer on a `~>` cycle, 30 steps (an explicit loop)
  attention  specs/attention.nn, dense 32, one-head self-attention over 12 steps, dense 10

Five contenders run the same inputs at batch 1 and batch 64, interleaved round by round (in a
shuffled order each round), and the table gives the median time per call and three ratios, each
the median over rounds of the two contenders' samples in one round:

  torch file / to_torch()      the emitted .py (torch target) against `model.to_torch()`, both in
                               eval mode under `torch.no_grad()`, tensors made before timing
  onnxruntime / to_torch()     onnxruntime's CPUExecutionProvider on the emitted .onnx (NumPy in,
                               NumPy out) against the same `to_torch()` module
  numpy file / NumPy backend   the emitted .py (numpy target) against `model.to_numpy()` in eval
                               mode with the same parameters loaded (`run.load(params)`)

Every library gets one thread: OPENBLAS/OMP/MKL_NUM_THREADS=1 before NumPy loads,
`torch.set_num_threads(1)`, and onnxruntime's intra_op_num_threads=1 and inter_op_num_threads=1.
Before timing, the script checks that each file gives its reference's outputs (torch and NumPy
files bit for bit, onnxruntime within 1e-5). glibc's malloc is set to keep freed memory, so that
page faults from memory handed back and taken again do not move the results (`keep_freed_memory`).

    python bench/compile.py [--quick] [--rounds N] [--networks NAME ...] [--default-malloc]
                            [--json PATH]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy loads its BLAS

import argparse  # noqa: E402
import ctypes  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nnspec  # noqa: E402
from nnspec.backends.init import initial_params  # noqa: E402

NETWORKS = ["xor", "lenet", "lstm", "gru", "elman", "attention"]
BATCHES = [1, 64]
STEPS = 30  # the sequence length of an input declared `seq` without one (elman)
CONTENDERS = ["to_torch", "torch file", "onnxruntime", "numpy backend", "numpy file"]
RATIOS = {  # column: (emitted, reference)
    "torch file / to_torch": ("torch file", "to_torch"),
    "onnxruntime / to_torch": ("onnxruntime", "to_torch"),
    "numpy file / NumPy backend": ("numpy file", "numpy backend"),
}


def _import(path: Path, name: str):
    """The module in the file at `path`, imported under `name` (the files are not on sys.path)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example_inputs(program, batch: int) -> dict[str, np.ndarray]:
    """Standard normal float32 inputs by the spec's input names: [batch, (steps,) *dims]."""
    rng = np.random.default_rng(batch)
    inputs = {}
    for name in program.inputs:
        shape = program.layer(name).shape
        time_axis = [shape.steps or STEPS] if shape.timed else []
        inputs[name] = rng.standard_normal((batch, *time_axis, *shape.dims), dtype=np.float32)
    return inputs


def contenders(name: str, folder: Path):
    """(the checked program, {contender: a function of the inputs by name -> its output}, a
    function giving each contender its own form of the inputs, so that no conversion is timed:
    tensors for the torch modules, NumPy arrays for the rest)."""
    model = nnspec.load(ROOT / "specs" / f"{name}.nn")
    params = initial_params(model.program, 0)
    model.compile("torch", folder / f"{name}_torch.py", weights=params)
    model.compile("numpy", folder / f"{name}_numpy.py", weights=params)
    model.compile("onnx", folder / f"{name}.onnx", weights=params)

    reference = model.to_torch()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    reference.eval()
    torch_file = _import(folder / f"{name}_torch.py", f"{name}_torch").load()
    run = model.to_numpy()
    run.load(params)
    run.eval()
    numpy_file = _import(folder / f"{name}_numpy.py", f"{name}_numpy").load()
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(folder / f"{name}.onnx"), options, providers=["CPUExecutionProvider"]
    )

    def torch_call(net):
        def call(inputs):
            with torch.no_grad():
                return net(**inputs)

        return call

    calls = {
        "to_torch": torch_call(reference),
        "torch file": torch_call(torch_file),
        "onnxruntime": lambda inputs: session.run(None, inputs)[0],
        "numpy backend": lambda inputs: run(**inputs),
        "numpy file": lambda inputs: numpy_file(**inputs),
    }

    def views(inputs: dict[str, np.ndarray]) -> dict[str, dict]:
        tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
        return {c: tensors if c in ("to_torch", "torch file") else inputs for c in calls}

    return model.program, calls, views


def check_outputs(name: str, calls: dict, views: dict) -> None:
    """Each emitted file gives its reference's outputs: a benchmark of wrong code measures
    nothing."""
    out = {c: np.asarray(calls[c](views[c])) for c in calls}
    same = [
        np.array_equal(out["torch file"], out["to_torch"]),
        np.array_equal(out["numpy file"], out["numpy backend"]),
        np.allclose(out["onnxruntime"], out["numpy backend"], rtol=0, atol=1e-5),
    ]
    if not all(same):
        raise SystemExit(f"{name}: an emitted file disagrees with its reference: {same}")


def time_case(
    calls: dict, views: dict, rounds: int, sample_s: float
) -> tuple[dict[str, float], dict[str, float]]:
    """(median seconds per call of each contender, median of each RATIOS column's per-round
    ratio). The contenders run interleaved round by round (in a new order each round), each
    round timing enough calls to fill about `sample_s`; a ratio compares the two samples of one
    round, taken a few milliseconds apart, so that load from other jobs falls on both alike."""
    names = list(calls)
    repeat = {}
    for c in names:  # warm up (first-call allocations, kernels chosen) and size the samples
        for _ in range(3):
            calls[c](views[c])
        start = time.perf_counter()
        calls[c](views[c])
        once = time.perf_counter() - start
        repeat[c] = max(1, round(sample_s / max(once, 1e-7)))
    samples: dict[str, list[float]] = {c: [] for c in names}
    order = random.Random(0)
    for _ in range(rounds):
        # A shuffled order, and one untimed call before each sample: a contender that always
        # followed another of its library (its code and buffers in the caches) would gain on
        # one that always followed a stranger, as a fixed rotation arranges.
        for c in order.sample(names, len(names)):
            fn, inputs, n = calls[c], views[c], repeat[c]
            fn(inputs)
            start = time.perf_counter()
            for _ in range(n):
                fn(inputs)
            samples[c].append((time.perf_counter() - start) / n)
    seconds = {c: statistics.median(v) for c, v in samples.items()}
    ratios = {
        col: statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))
        for col, (a, b) in RATIOS.items()
    }
    return seconds, ratios


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep what is freed (no memory handed back to the system, no chunk of
    its own mapping), so that a call does not pay page faults that depend on what ran before:
    with the defaults the NumPy lstm at batch 64 took 0 to 450 page faults a call, and its ratio
    moved between 0.5x and 1.2x from run to run. False where that is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    # 32 MiB is the largest mapping threshold glibc takes on 64-bit systems; the arrays here are
    # at most a few MiB.
    trim = libc.mallopt(m_trim_threshold, 1 << 30)
    return bool(trim and libc.mallopt(m_mmap_threshold, 32 << 20))


def commit() -> str:
    """HEAD's short hash, "+changes" when nnspec/ differs from it (what runs is the tree)."""
    try:
        head, changed = (
            subprocess.run(
                ["git", "-C", str(ROOT), *command], capture_output=True, text=True, check=True
            ).stdout.strip()
            for command in (["rev-parse", "--short", "HEAD"], ["status", "--porcelain", "nnspec"])
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if changed else "")


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}" if seconds >= 1e-4 else f"{seconds * 1e6:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 short rounds, for a smoke test")
    parser.add_argument("--rounds", type=int, default=101)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--networks", nargs="+", choices=NETWORKS, default=NETWORKS, help="a few of them only"
    )
    parser.add_argument(
        "--default-malloc", action="store_true", help="leave glibc's malloc as it is set"
    )
    args = parser.parse_args()
    kept = False if args.default_malloc else keep_freed_memory()
    rounds, sample_s = (5, 0.002) if args.quick else (args.rounds, 0.005)
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    print(
        f"Python {platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}, {platform.machine()}, {os.cpu_count()} cores, "
        f"1 thread each, float32, commit {commit()}; median of {rounds} interleaved rounds; "
        f"malloc {'keeps freed memory' if kept else 'as set'}"
    )
    header = (
        "| network | batch | "
        + " | ".join(f"{c} (µs)" for c in CONTENDERS)
        + " | "
        + " | ".join(RATIOS)
        + " |"
    )
    print(header)
    print("|---|---:|" + "---:|" * (len(CONTENDERS) + len(RATIOS)))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.networks:
            program, calls, make_views = contenders(name, Path(tmp))
            results[name] = {}
            for batch in BATCHES:
                views = make_views(example_inputs(program, batch))
                check_outputs(name, calls, views)
                seconds, ratios = time_case(calls, views, rounds, sample_s)
                results[name][str(batch)] = {"seconds": seconds, "ratios": ratios}
                print(
                    f"| {name} | {batch} | "
                    + " | ".join(_us(seconds[c]) for c in CONTENDERS)
                    + " | "
                    + " | ".join(f"{r:.2f}x" for r in ratios.values())
                    + " |",
                    flush=True,
                )
    load_after = os.getloadavg()[0]
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after")
    if args.json:
        machine = {
            "load_average": [load_before, load_after],
            "commit": commit(),
            "malloc_keeps_freed_memory": kept,
        }
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
