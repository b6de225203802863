"""Threads: nnspec's training step at 1 and 2 threads, on an idle machine and beside a busy one.

Each measurement runs in a fresh process (`--child NAME THREADS`): the network is built as
`nnspec train` builds it (the torch runner of its train section, on its own data), its thread count
is set with `nnspec.training.threads.limited` (torch's intra-op threads and NumPy's BLAS, as
`--threads N` sets them), and after warm-up steps the training step (`runner.step`: forward,
backward, optimizer) is timed over blocks of batches; the median block gives ms per step.

  small   specs/rnn.nn (an Elman RNN, 32 units, batch 32, 40 steps) and specs/gan.nn (two MLPs of
          128 units, batch 64): the networks the issue saw slowed several times over by a second
          thread on a busy two-core machine
  large   an MLP 64-1024-1024-10 on the digits, batch 256 (largest multiply 268M multiply-adds)
  sweep   (--sweep) MLPs 64-W-W-10, batch 64, W = 64 to 1024: where a second thread starts to pay

"Busy neighbour": one other process spinning on the CPU (`while True: pass`) for the whole
measurement, as another job on a shared machine; "idle": nothing else started (the machine may
still run other people's work: the load average is printed with each table). Each network's
largest operation is printed in multiply-adds, as nnspec's rule reads it
(nnspec/training/threads.py: below SMALL_STEP a run uses one thread by default).

    python bench/threads.py [--sweep] [--blocks N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MLP = """\
network mlp{width} "an MLP 64-{width}-{width}-10 on the digits" {{
    input  x: 64
    dense  h1: {width}, act=tanh
    dense  h2: {width}, act=tanh
    dense  y: 10, act=softmax
    x -> h1 -> h2 -> y
}}

train {{
    data      = digits
    loss      = cross_entropy
    optimizer = adam(lr=1e-3)
    batch     = {batch}
    epochs    = 1
    seed      = 0
}}
"""

NETWORKS = {
    "rnn": ("small", lambda: (ROOT / "specs" / "rnn.nn").read_text()),
    "gan": ("small", lambda: (ROOT / "specs" / "gan.nn").read_text()),
    "mlp1024": ("large", lambda: MLP.format(width=1024, batch=256)),
}
SWEEP = {
    f"mlp{w}_b64": ("sweep", lambda w=w: MLP.format(width=w, batch=64))
    for w in (64, 128, 192, 256, 512, 1024)
}
BLOCK_SECONDS = 0.25  # a block of steps lasts about this long


def child(name: str, threads: int, blocks: int) -> dict:
    """Time `name`'s training step at `threads` threads in this process."""
    import tempfile

    from nnspec.data import load_data
    from nnspec.train_section import train_config
    from nnspec.training import make_gan, make_runner, training_models
    from nnspec.training.loop import _batches
    from nnspec.training.threads import limited, step_size

    text = {**NETWORKS, **SWEEP}[name][1]()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.nn"
        path.write_text(text)
        models = training_models(path)
    spec = models[0].train_spec
    data = load_data(spec, models[-1].program)
    config = train_config(spec, data.kind)
    x = next(iter(data.train.inputs.values()))
    steps = x.shape[1] if x.ndim == 3 else None
    size = step_size([m.program for m in models], config.batch or data.train.size, steps)
    with limited(threads, torch=True) as count:
        runner = (
            make_runner(models[0], config, "torch")
            if len(models) == 1
            else make_gan(*models, config, "torch")
        )
        import numpy as np

        rng = np.random.default_rng(0)
        batches = [b for b in _batches(data.train, config.batch, rng)]
        batches = [b for b in batches if _size(b) == (config.batch or data.train.size)] or batches

        def run(n: int) -> float:
            start = time.perf_counter()
            for i in range(n):
                inputs, target, mask = batches[i % len(batches)]
                runner.step(inputs, target, mask, config.lr)
            return time.perf_counter() - start

        run(5)  # warm-up
        per = run(10) / 10
        n = max(3, int(BLOCK_SECONDS / max(per, 1e-6)))
        times = [run(n) / n for _ in range(blocks)]
    return {"name": name, "threads": count, "ms": statistics.median(times) * 1e3, "op": size}


def _size(batch) -> int:
    inputs = batch[0]
    return len(next(iter(inputs.values())))


def measure(name: str, threads: int, blocks: int) -> dict:
    command = [sys.executable, __file__, "--child", name, str(threads), "--blocks", str(blocks)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


class Neighbour:
    """Another process spinning on the CPU while the block runs."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait()


def table(networks: list[str], blocks: int, neighbours: tuple[bool, ...]) -> list[dict]:
    rows = []
    for busy in neighbours:
        for name in networks:
            with Neighbour() if busy else _nothing():
                one = measure(name, 1, blocks)
                two = measure(name, 2, blocks)
            row = {
                "network": name,
                "size": {**NETWORKS, **SWEEP}[name][0],
                "neighbour": busy,
                "op": one["op"],
                "ms_1": one["ms"],
                "ms_2": two["ms"],
                "ratio": two["ms"] / one["ms"],
            }
            rows.append(row)
            print(
                f"  {name:<12} {'busy' if busy else 'idle':<5} largest op {row['op']:>12,}  "
                f"1 thread {row['ms_1']:8.2f} ms  2 threads {row['ms_2']:8.2f} ms  "
                f"2/1 {row['ratio']:.2f}",
                flush=True,
            )
    return rows


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("NAME", "THREADS"), help=argparse.SUPPRESS)
    parser.add_argument("--blocks", type=int, default=7, help="timed blocks per measurement")
    parser.add_argument("--sweep", action="store_true", help="also time MLPs of widths 64-1024")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.blocks)))
        return
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at the start")
    results = {"cores": os.cpu_count(), "load_before": os.getloadavg()[0]}
    results["networks"] = table(list(NETWORKS), args.blocks, (False, True))
    if args.sweep:
        print("sweep:")
        results["sweep"] = table(list(SWEEP), args.blocks, (False, True))
    results["load_after"] = os.getloadavg()[0]
    print(f"load average {results['load_after']:.2f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
