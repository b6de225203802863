"""The matrix products under bench/numpy_vs_torch.py's rows: NumPy's BLAS against PyTorch's.

The NumPy backend's training steps are mostly matrix products, handed to the BLAS that NumPy
was built with (OpenBLAS in the wheels from PyPI); PyTorch's CPU wheels bring their own (Intel's
MKL on x86_64). Where one library's product is slower for the same shapes, no layout on top of
it can make a row as fast as the other's, so this script measures that floor: the largest
products of each row's step (forward, and the two of its backward), float32, one thread each,
`np.matmul(a, b, out=c)` against `torch.mm(a, b, out=c)` on the same memory, interleaved round by
round (medians).

    python bench/blas.py [--rounds N] [--json PATH]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

# row: [(M, K, N, what it is)], a product (M x K) @ (K x N)
SHAPES = {
    "mlp": [(64, 784, 256, "first layer forward"), (784, 64, 256, "its weight gradient")],
    "maxout": [
        (64, 784, 768, "forward (256 units of 3 pieces)"),
        (64, 768, 784, "input gradient"),
        (784, 64, 768, "weight gradient"),
    ],
    "lstm": [
        (32, 128, 512, "a step's recurrent product"),
        (1600, 32, 512, "the inputs' product, 50 steps"),
        (128, 1600, 512, "the recurrent weight gradient"),
    ],
    "conv": [
        (8192, 28, 16, "first layer forward (3 channels, 3x3, and the bias)"),
        (2048, 145, 32, "second layer forward (16 channels, 3x3, and the bias)"),
        (2048, 32, 144, "second layer's input gradient (its nine offsets' products as one)"),
        (32, 2048, 145, "second layer's weight gradient"),
    ],
    "deconv": [
        (48, 8, 289, "last layer forward, one image (16 offsets of 3 channels)"),
        (2048, 16, 8, "middle layer forward, one of 16 kernel offsets"),
        (48, 8192, 8, "last layer's weight gradient"),
    ],
    "attention": [(512, 32, 96, "the q, k, v projections"), (512, 32, 64, "the feed-forward in")],
}


def _mean_ms(fn, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e3


def measure(rounds: int) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    for row, shapes in SHAPES.items():
        for m, k, n, what in shapes:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            c = np.empty((m, n), np.float32)
            ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
            repeat = max(5, int(2e7 / (m * k * n)))  # about 20 ms of products a sample
            contenders = {
                "numpy": lambda a=a, b=b, c=c: np.matmul(a, b, out=c),
                "torch": lambda ta=ta, tb=tb, tc=tc: torch.mm(ta, tb, out=tc),
            }
            for fn in contenders.values():
                for _ in range(3):
                    fn()
            samples = {name: [] for name in contenders}
            for _ in range(rounds):
                for name, fn in contenders.items():
                    samples[name].append(_mean_ms(fn, repeat))
            numpy_ms = statistics.median(samples["numpy"])
            torch_ms = statistics.median(samples["torch"])
            rows.append(
                {
                    "row": row,
                    "shape": [m, k, n],
                    "what": what,
                    "numpy_ms": numpy_ms,
                    "torch_ms": torch_ms,
                    "ratio": numpy_ms / torch_ms,
                    "gflops_numpy": 2 * m * k * n / numpy_ms / 1e6,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    import torch

    blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
    print(
        f"NumPy {np.__version__} ({blas['name']} {blas.get('version', '')}), torch "
        f"{torch.__version__}; float32, 1 thread, median of {args.rounds} interleaved rounds"
    )
    print("| row | product (M x K) @ (K x N) | NumPy (ms) | PyTorch (ms) | NumPy / PyTorch |")
    print("|---|---|---:|---:|---:|")
    load_before = os.getloadavg()
    rows = measure(args.rounds)
    for r in rows:
        m, k, n = r["shape"]
        print(
            f"| {r['row']} | {r['what']}: {m} x {k} x {n} | {r['numpy_ms']:.3f} | "
            f"{r['torch_ms']:.3f} | {r['ratio']:.2f}x |"
        )
    load_after = os.getloadavg()
    print(f"load average (1 min): {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    if args.json:
        args.json.write_text(json.dumps({"products": rows, "load": [load_before, load_after]}))


if __name__ == "__main__":
    main()
