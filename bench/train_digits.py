"""Whole training runs, start-up included: `nnspec train` against the same loop written by hand.

The residual and lenet examples are trained by their train sections (digits, split 0.2, adam,
batch 32, seed 0; 30 and 20 epochs) in a fresh process each, timed from launch to exit:

  nnspec torch   `nnspec train examples/X.nn --backend torch --out TMP`
  nnspec numpy   `nnspec train examples/X.nn --backend numpy --out TMP`
  PyTorch        this file with `--hand X`: the network as a hand-written nn.Module and a plain loop
                 (same data, split, shuffling, optimizer, lr, batch, epochs and seed); after each
                 epoch it evaluates the held-out loss and accuracy and prints one line; at the end
                 it saves the state_dict with torch.save
  scikit-learn   this file with `--sklearn`: MLPClassifier with residual's 13 hidden layers of 64
                 (relu) and no skip links, adam, lr 1e-3, batch 32, no L2; one `partial_fit` per
                 epoch, then the held-out accuracy (residual only)

Data: the hand-written sides load the shipped `nnspec/data/digits.npz` with `np.load` and draw the
split as nnspec does (SeedSequence(seed).spawn(2), then a permutation); before timing, the script
checks that the arrays equal `nnspec.data.load_data`'s for both examples.

Threads: nnspec chooses its own (docs/training.md, "Threads": one thread when a step's largest
operation is under 20M multiply-adds, which both examples are, so `nnspec train` runs them on one
thread whatever the environment says; `--threads N` overrides it); the hand-written script calls
`torch.set_num_threads(N)` with N the default a fresh torch process reports under the same
environment. Each thread setting runs in its own environment: `default`
(nothing set) and `1` (OMP_NUM_THREADS=1, which sets torch's and OpenBLAS's default to 1).
Contenders run interleaved, one after another within each round, the order rotating each round;
the table gives medians, and each nnspec side's lowest and highest ratio to the hand-written loop
of the same round. Before timing, nnspec's modules are byte-compiled, as installing a wheel
does, and every contender runs once untimed (a warm-up round: the first launch after a pause
reads its libraries from disk, not from the page cache, which a user's repeated runs do).

    python bench/train_digits.py [--rounds N] [--threads default,1] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "nnspec" / "data" / "digits.npz"
# Each example's train section, as the hand-written sides use it.
SECTIONS = {
    "residual": {"lr": 1e-3, "batch": 32, "epochs": 30, "seed": 0, "split": 0.2},
    "lenet": {"lr": 0.01, "batch": 32, "epochs": 20, "seed": 0, "split": 0.2},
}
TARGET = 0.95  # expect accuracy >= 0.95 in both train sections


# ---- the data, loaded by hand --------------------------------------------------------------------
def digits_split(seed: int, split: float):
    """(x_train, y_train, x_test, y_test): x float32 `[N, 8, 8]` in [0, 1], y int64, drawn as
    nnspec draws the split."""
    import numpy as np

    with np.load(DIGITS) as stored:
        x, y = stored["images"].astype(np.float32) / 16, stored["labels"].astype(np.int64)
    _, split_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    held = min(max(round(len(x) * split), 1), len(x) - 1)
    order = split_rng.permutation(len(x))
    train, test = np.sort(order[held:]), np.sort(order[:held])
    return x[train], y[train], x[test], y[test]


def networks():
    """The two examples as hand-written nn.Modules (classes, made on first use: importing this file
    needs no torch); bench/scale.py trains them too."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.a, self.b = nn.Linear(width, width), nn.Linear(width, width)

        def forward(self, x):
            return torch.relu(self.b(torch.relu(self.a(x))) + x)

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Linear(64, 64)
            self.r = nn.ModuleList([Block(64) for _ in range(6)])
            self.out = nn.Linear(64, 10)

        def forward(self, x):  # logits; the softmax is in the loss, and argmax needs none
            x = torch.relu(self.stem(x))
            for block in self.r:
                x = block(x)
            return self.out(x)

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
            self.fc, self.out = nn.Linear(64, 32), nn.Linear(32, 10)

        def forward(self, x):
            x = F.max_pool2d(torch.relu(self.c1(x)), 2)
            x = F.max_pool2d(torch.relu(self.c2(x)), 2)
            return self.out(torch.relu(self.fc(x.flatten(1))))

    return {"residual": Residual, "lenet": LeNet}


# ---- (a) the hand-written PyTorch loop: run as `python bench/train_digits.py --hand NAME` --------
def hand(name: str, threads: int, out: str) -> None:
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    s = SECTIONS[name]

    x_train, y_train, x_test, y_test = digits_split(s["seed"], s["split"])
    shape = (-1, 64) if name == "residual" else (-1, 1, 8, 8)
    x_train, x_test = (
        torch.from_numpy(x_train.reshape(shape)),
        torch.from_numpy(x_test.reshape(shape)),
    )
    y_train, y_test = torch.from_numpy(y_train), torch.from_numpy(y_test)

    torch.manual_seed(s["seed"])
    net = networks()[name]()
    optimizer = torch.optim.Adam(net.parameters(), lr=s["lr"])
    rng = np.random.default_rng(s["seed"])  # the shuffling, as nnspec draws it
    for epoch in range(1, s["epochs"] + 1):
        net.train()
        order = torch.from_numpy(rng.permutation(len(x_train)))
        total = 0.0
        for begin in range(0, len(order), s["batch"]):
            index = order[begin : begin + s["batch"]]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x_train[index]), y_train[index])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        net.eval()
        with torch.no_grad():
            logits = net(x_test)
            test_loss = F.cross_entropy(logits, y_test).item()
            accuracy = (logits.argmax(1) == y_test).float().mean().item()
        print(
            f"epoch {epoch}: train_loss {total / len(x_train):.4g}  loss {test_loss:.4g}  "
            f"accuracy {accuracy:.4f}"
        )
    torch.save(net.state_dict(), Path(out) / "weights.pt")
    print(json.dumps({"accuracy": accuracy, "threads": torch.get_num_threads()}))


# ---- (b) scikit-learn: `python bench/train_digits.py --sklearn` ----------------------------------
def sklearn_mlp(out: str) -> None:
    import pickle
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    s = SECTIONS["residual"]
    x_train, y_train, x_test, y_test = digits_split(s["seed"], s["split"])
    x_train, x_test = x_train.reshape(-1, 64), x_test.reshape(-1, 64)
    mlp = MLPClassifier(
        hidden_layer_sizes=(64,) * 13,
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=s["batch"],
        learning_rate_init=s["lr"],
        shuffle=True,
        random_state=s["seed"],
    )
    classes = np.arange(10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for epoch in range(1, s["epochs"] + 1):
            mlp.partial_fit(x_train, y_train, classes=classes)
            accuracy = mlp.score(x_test, y_test)
            print(f"epoch {epoch}: train_loss {mlp.loss_:.4g}  accuracy {accuracy:.4f}")
    with open(Path(out) / "mlp.pkl", "wb") as file:
        pickle.dump(mlp, file)
    print(json.dumps({"accuracy": accuracy}))


# ---- the harness ---------------------------------------------------------------------------------
def nnspec_command() -> list[str]:
    script = Path(sys.executable).parent / "nnspec"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nnspec"]


def environment(threads: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    }
    if threads != "default":
        env["OMP_NUM_THREADS"] = threads
    return env


def torch_default_threads(env: dict[str, str]) -> int:
    """How many intra-op threads a fresh torch process uses in `env` (what `nnspec train` gets)."""
    done = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip())


def check_same_data() -> None:
    """The hand-written sides' arrays equal nnspec's (load_data) for both examples."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import nnspec
    from nnspec.data import load_data

    for name, s in SECTIONS.items():
        model = nnspec.load(ROOT / "examples" / f"{name}.nn")
        data = load_data(model.train_spec, model.program)
        x_train, y_train, x_test, y_test = digits_split(s["seed"], s["split"])
        ours_train, ours_test = (
            next(iter(data.train.inputs.values())),
            next(iter(data.test.inputs.values())),
        )
        same = (
            np.array_equal(ours_train.reshape(len(x_train), -1), x_train.reshape(len(x_train), -1))
            and np.array_equal(ours_test.reshape(len(x_test), -1), x_test.reshape(len(x_test), -1))
            and np.array_equal(data.train.targets, y_train)
            and np.array_equal(data.test.targets, y_test)
        )
        settings = model.train_spec.settings
        if not same or any(settings[k] != s[k] for k in ("batch", "epochs", "seed", "split")):
            raise SystemExit(f"{name}: the hand-written data or settings differ from nnspec's")


def run_once(
    contender: str, network: str, env: dict[str, str], threads: int
) -> tuple[float, float, int]:
    """(seconds from launch to exit, held-out accuracy reached, exit code) of one fresh process."""
    with tempfile.TemporaryDirectory(prefix="nnspec-bench-") as out:
        if contender.startswith("nnspec"):
            command = nnspec_command() + [
                "train",
                f"examples/{network}.nn",
                "--backend",
                contender.split()[1],
                "--out",
                out,
            ]
        elif contender == "pytorch":
            command = [
                sys.executable,
                __file__,
                "--hand",
                network,
                "--child-threads",
                str(threads),
                "--out",
                out,
            ]
        else:
            command = [sys.executable, __file__, "--sklearn", "--out", out]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode not in (0, 1) or (
            done.returncode == 1 and not contender.startswith("nnspec")
        ):
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
        if contender.startswith("nnspec"):  # exit code 1: trained, but an expectation missed
            with open(Path(out) / "metrics.csv") as file:
                last = file.read().splitlines()
            row = dict(zip(last[0].split(","), last[-1].split(","), strict=True))
            accuracy = float(row["accuracy"])
        else:
            accuracy = json.loads(done.stdout.strip().splitlines()[-1])["accuracy"]
    return seconds, accuracy, done.returncode


COLUMNS = ("nnspec torch", "nnspec numpy", "pytorch", "sklearn")
CONTENDERS = {
    "residual": list(COLUMNS),
    "lenet": list(COLUMNS[:3]),
}  # scikit-learn: an MLP, residual only


SIDES = ("nnspec torch", "nnspec numpy")


def measure(
    threads: str, rounds: int, networks: list[str], contenders: dict[str, list[str]]
) -> dict:
    env = environment(threads)
    n = torch_default_threads(env)
    runs = [(network, c) for network in networks for c in contenders[network]]
    samples: dict[tuple[str, str], list[tuple[float, float, int]]] = {run: [] for run in runs}
    for network, contender in runs:  # the warm-up round, untimed
        seconds = run_once(contender, network, env, n)[0]
        print(
            f"  [threads {threads}, warm-up] {network:<8} {contender:<12} {seconds:7.2f} s",
            file=sys.stderr,
        )
    for r in range(rounds):
        shift = r % len(runs)
        for network, contender in runs[shift:] + runs[:shift]:
            samples[(network, contender)].append(run_once(contender, network, env, n))
            seconds, accuracy, _ = samples[(network, contender)][-1]
            print(
                f"  [threads {threads}, round {r + 1}] {network:<8} {contender:<12} "
                f"{seconds:7.2f} s  accuracy {accuracy:.4f}",
                file=sys.stderr,
            )
    result = {"threads": threads, "torch_threads": n, "networks": {}}
    for network in networks:
        row = {}
        for contender in contenders[network]:
            values = samples[(network, contender)]
            row[contender] = {
                "seconds": statistics.median(v[0] for v in values),
                "all_seconds": [v[0] for v in values],
                "accuracy": [v[1] for v in values],
                "met": all(v[1] >= TARGET for v in values),
            }
        for side in SIDES:
            row[side]["ratio"] = row[side]["seconds"] / row["pytorch"]["seconds"]
            by_round = [
                a / b
                for a, b in zip(
                    row[side]["all_seconds"], row["pytorch"]["all_seconds"], strict=True
                )
            ]
            row[side]["round_ratios"] = by_round
        result["networks"][network] = row
    return result


def report(results: list[dict]) -> None:
    print(
        "| network | torch threads | nnspec torch (s) | nnspec numpy (s) | PyTorch by hand (s) "
        "| scikit-learn (s) | torch / hand | numpy / hand | per round: torch / hand, numpy / hand "
        "| accuracy: nnspec torch, numpy, hand, sklearn |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for result in results:
        for network, row in result["networks"].items():
            seconds = [f"{row[c]['seconds']:.2f}" if c in row else "-" for c in COLUMNS]
            accuracy = [
                f"{statistics.median(row[c]['accuracy']):.3f}" if c in row else "-" for c in COLUMNS
            ]
            threads = (
                f"default ({result['torch_threads']})"
                if result["threads"] == "default"
                else result["threads"]
            )
            print(
                f"| {network} | {threads} | "
                + " | ".join(seconds)
                + f" | {row['nnspec torch']['ratio']:.2f}x | {row['nnspec numpy']['ratio']:.2f}x | "
                + ", ".join(
                    f"{min(ratios):.2f}x to {max(ratios):.2f}x"
                    for ratios in (row[side]["round_ratios"] for side in SIDES)
                )
                + " | "
                + ", ".join(accuracy)
                + " |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds per thread setting (median)"
    )
    parser.add_argument(
        "--threads",
        default="default,1",
        help="comma-separated: default (nothing set) and/or values of OMP_NUM_THREADS",
    )
    parser.add_argument("--quick", action="store_true", help="one round, one thread (a smoke test)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--hand", choices=sorted(SECTIONS), help=argparse.SUPPRESS)
    parser.add_argument("--sklearn", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hand:
        return hand(args.hand, args.child_threads, args.out)
    if args.sklearn:
        return sklearn_mlp(args.out)

    contenders = {k: list(v) for k, v in CONTENDERS.items()}
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print(
            "scikit-learn is not installed (pip install -e '.[bench]'): its column is left out",
            file=sys.stderr,
        )
        contenders["residual"].remove("sklearn")
    check_same_data()
    # nnspec's modules byte-compiled once, as installing a wheel does: an editable install under
    # PYTHONDONTWRITEBYTECODE=1 (as on the machines these numbers come from) recompiles them at
    # every launch
    compileall.compile_dir(ROOT / "nnspec", quiet=1)
    rounds, settings = (1, ["1"]) if args.quick else (args.rounds, args.threads.split(","))
    import numpy
    import torch

    print(
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"NumPy {numpy.__version__}, {os.cpu_count()} cores, "
        f"median of {rounds} interleaved round{'s' * (rounds != 1)}; seconds from launch to exit"
    )
    results = [measure(threads, rounds, list(SECTIONS), contenders) for threads in settings]
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
