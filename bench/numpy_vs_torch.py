"""Training-step time and peak memory: the NumPy backend against PyTorch on the CPU.

Three networks, each trained one step at a time (forward, backward, SGD update):

  mlp    784-256-128-10, relu, batch 64, softmax cross-entropy
  lenet  examples/lenet.nn (conv 8, pool, conv 16, pool, dense 32, softmax 10), 8x8 images, batch 32
  lstm   input 32, hidden 128, 50 steps, batch 32, a fixed random gradient on every step's output

The PyTorch side is written by hand (nn.Linear, nn.Conv2d, nn.LSTM and `torch.optim.SGD`),
the reference the targets are set against; when the nnspec PyTorch backend is installed,
`model.to_torch()` is timed too. Both libraries get one thread (OPENBLAS/OMP/MKL_NUM_THREADS=1,
set before NumPy is imported, and torch.set_num_threads(1)), float32. Timings interleave the
contenders round by round and report medians. Peak memory is measured in a fresh process per
contender: after one warm-up step and `malloc_trim`, how far the resident set peaks above its level
over five steps (the peak is reset through /proc/self/clear_refs: this part needs Linux and glibc).

    python bench/numpy_vs_torch.py [--quick] [--rounds N] [--json PATH]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy loads its BLAS

import argparse  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nnspec  # noqa: E402

LR = 0.01
MLP = """network mlp {
    input x: 784
    dense h1: 256, act=relu
    dense h2: 128, act=relu
    dense out: 10
    x -> h1 -> h2 -> out
}"""
LSTM = """network lstm {
    input x: 32, seq=50
    lstm  m: 128
    x -> m
}"""
CASES = {  # name: (spec text, batch)
    "mlp": (MLP, 64),
    "lenet": ((ROOT / "examples" / "lenet.nn").read_text(), 32),
    "lstm": (LSTM, 32),
}


# ---- data and the loss gradient, the same on every side ----------------------------------------
def make_batch(case: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets): class labels for mlp and lenet, a gradient for every LSTM output."""
    rng = np.random.default_rng(seed)
    _, batch = CASES[case]
    if case == "mlp":
        return rng.standard_normal((batch, 784), dtype=np.float32), rng.integers(0, 10, batch)
    if case == "lenet":
        return rng.random((batch, 1, 8, 8), dtype=np.float32), rng.integers(0, 10, batch)
    return rng.standard_normal((batch, 50, 32), dtype=np.float32), rng.standard_normal(
        (batch, 50, 128), dtype=np.float32
    )


def loss_grad_numpy(case: str, out: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/d(out): softmax cross-entropy on logits (mlp), on probabilities (lenet ends in
    softmax); sum(G * h) (lstm)."""
    batch = out.shape[0]
    if case == "mlp":
        e = np.exp(out - out.max(-1, keepdims=True))
        g = e / e.sum(-1, keepdims=True)
        g[np.arange(batch), target] -= 1.0
        return g / batch
    if case == "lenet":
        g = np.zeros_like(out)
        g[np.arange(batch), target] = -1.0 / (batch * out[np.arange(batch), target])
        return g
    return target


# ---- NumPy backend ----------------------------------------------------------------------------
def numpy_step(case: str):
    spec, _ = CASES[case]
    run = nnspec.loads(spec).to_numpy(seed=0)
    x, target = make_batch(case)

    def step() -> None:
        out = run(x)
        grads = run.backward(loss_grad_numpy(case, out, target), inputs=False)
        for (
            name,
            g,
        ) in grads.items():  # in place, as torch.optim.SGD: the gradients are ours to overwrite
            g *= LR
            run.params[name] -= g

    return step


# ---- PyTorch ----------------------------------------------------------------------------------
def torch_modules(case: str):
    import torch
    from torch import nn

    if case == "mlp":
        return nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
        )
    if case == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding="same"),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding="same"),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, 10),
            nn.Softmax(-1),
        )

    class Lstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = nn.LSTM(32, 128, batch_first=True)

        def forward(self, x):
            return self.m(x)[0]

    torch.manual_seed(0)
    return Lstm()


def torch_step(case: str, backend: bool = False):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    net = nnspec.loads(CASES[case][0]).to_torch(seed=0) if backend else torch_modules(case)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    x, target = (torch.from_numpy(a) for a in make_batch(case))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = net(x)
        if case == "mlp":
            loss = F.cross_entropy(out, target)
        elif case == "lenet":
            loss = F.nll_loss(out.log(), target)
        else:
            loss = (out * target).sum()
        loss.backward()
        opt.step()

    return step


def torch_backend_available() -> bool:
    try:
        from nnspec.backends.torch import to_torch  # noqa: F401
    except Exception:
        return False
    return True


CONTENDERS = {
    "numpy": numpy_step,
    "torch": torch_step,
    "torch-backend": lambda case: torch_step(case, backend=True),
}


# ---- timing --------------------------------------------------------------------------------------
def time_case(case: str, contenders: list[str], rounds: int, steps: int) -> dict[str, float]:
    """Median seconds per step of each contender, the contenders interleaved round by round."""
    fns = {name: CONTENDERS[name](case) for name in contenders}
    for fn in fns.values():
        for _ in range(3):  # warm up: first-call allocations, BLAS buffers
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            samples[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(values) for name, values in samples.items()}


def _status(key: str) -> float:
    """A line of /proc/self/status (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def measure_peak(case: str, contender: str) -> float:
    """In this process: MiB the resident set peaks above its level between steps, over 5
    training steps.

    One step first (library initialisation, kernels chosen on first use), then the freed heap is
    handed back to the system (`malloc_trim`), so the peak counts what a step itself holds.
    """
    step = CONTENDERS[contender](case)
    step()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    base = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text(
        "5"
    )  # reset the peak (VmHWM) to the current resident set
    for _ in range(5):
        step()
    return _status("VmHWM") - base


def peak_memory(case: str, contender: str) -> float:
    """`measure_peak` in a fresh process, so one contender's memory does not hide another's."""
    done = subprocess.run(
        [sys.executable, __file__, "--peak", case, contender],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke test")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--peak", nargs=2, metavar=("CASE", "CONTENDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        print(measure_peak(*args.peak))
        return
    rounds = 3 if args.quick else args.rounds
    contenders = ["numpy", "torch"] + (["torch-backend"] if torch_backend_available() else [])
    steps = {"mlp": 20, "lenet": 20, "lstm": 3}
    print(
        f"Python {platform.python_version()}, NumPy {np.__version__}, {platform.machine()}, "
        f"1 thread each, float32, median of {rounds} interleaved rounds"
    )
    results = {}
    header = (
        "| network | "
        + " | ".join(f"{c} (ms/step)" for c in contenders)
        + " | numpy / torch | "
        + " | ".join(f"{c} peak (MiB)" for c in contenders)
        + " |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for case in CASES:
        seconds = time_case(case, contenders, rounds, 1 if args.quick else steps[case])
        memory = {c: peak_memory(case, c) for c in contenders}
        results[case] = {
            "seconds": seconds,
            "peak_mib": memory,
            "ratio": seconds["numpy"] / seconds["torch"],
        }
        print(
            f"| {case} | "
            + " | ".join(f"{seconds[c] * 1e3:.2f}" for c in contenders)
            + f" | {results[case]['ratio']:.2f}x | "
            + " | ".join(f"{memory[c]:.1f}" for c in contenders)
            + " |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
