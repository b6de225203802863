"""Data-parallel training speed: images per second for 1 and 2 processes, `nnspec train --procs N`
against a hand-written DistributedDataParallel loop with the same settings.

The residual and lenet examples train on digits as their train sections say (split 0.2, adam,
batch 32 global, seed 0), for --epochs epochs:

  nnspec   `nnspec.train(examples/X.nn, procs=N)`: one process as it trains today, or N workers
           (gloo); the parent takes the time of each epoch's end from the progress callback
  by hand  this file with `--hand X`, N processes (gloo, a file rendezvous): the network as an
           nn.Module (bench/train_digits.py's), DistributedDataParallel, each rank its contiguous
           shard of every batch of 32 in nnspec's order, the loss weighted by the shard's part;
           each epoch rank 0 evaluates the held-out loss and accuracy and the ranks all-reduce
           the running loss; one process runs the same loop without DDP

Images per second are the training images of the epochs after the first, over the time from the
first epoch's end to the last's (start-up and the first epoch left out), so the numbers are the
steady state. Every process gets one thread (OMP_NUM_THREADS=1): the 2-process runs use two cores
where the 1-process runs use one. Contenders alternate within each round; the table gives medians
and the ratios nnspec / by hand (what holds across machines) and 2 / 1 processes.

    python bench/scale.py [--rounds N] [--epochs N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from train_digits import SECTIONS, digits_split, networks  # noqa: E402

EXAMPLES = {name: ROOT / "examples" / f"{name}.nn" for name in SECTIONS}


# ---- the hand-written loop: `python bench/scale.py --hand NAME --rank R --size N ...` -----------
def hand(name: str, rank: int, size: int, epochs: int, rendezvous: str) -> None:
    """Train as nnspec does, on `size` ranks; rank 0 prints the time at each epoch's end."""
    import numpy as np
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
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
    trained = net
    if size > 1:
        dist.init_process_group(
            "gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=size
        )
        trained = DistributedDataParallel(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=s["lr"])
    rng = np.random.default_rng(s["seed"])
    for _ in range(epochs):
        net.train()
        order = torch.from_numpy(rng.permutation(len(x_train)))
        total = torch.zeros(1, dtype=torch.float64)
        for begin in range(0, len(order), s["batch"]):
            index = order[begin : begin + s["batch"]]
            lo, hi = len(index) * rank // size, len(index) * (rank + 1) // size
            part = (hi - lo) / len(index)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(trained(x_train[index[lo:hi]]), y_train[index[lo:hi]]) * part
            (loss * size).backward()
            optimizer.step()
            total += loss.detach().double() * len(index)
        if size > 1:
            dist.all_reduce(total)
        net.eval()
        if rank == 0:
            with torch.no_grad():
                logits = net(x_test)
                test_loss = F.cross_entropy(logits, y_test).item()
                accuracy = (logits.argmax(1) == y_test).float().mean().item()
            print(
                json.dumps({"t": time.time(), "loss": test_loss, "accuracy": accuracy}), flush=True
            )
        if size > 1:
            dist.barrier()
    if size > 1:
        dist.destroy_process_group()


def time_hand(name: str, procs: int, epochs: int) -> list[float]:
    """Each epoch's end (seconds since the epoch), from rank 0 of `procs` hand-written ranks."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            sys.executable,
            __file__,
            "--hand",
            name,
            "--size",
            str(procs),
            "--epochs",
            str(epochs),
            "--rendezvous",
            str(Path(scratch) / "rendezvous"),
        ]
        ranks = [
            subprocess.Popen(
                [*command, "--rank", str(rank)], env=env, stdout=subprocess.PIPE, text=True
            )
            for rank in range(procs)
        ]
        out = ranks[0].communicate()[0]
        for rank in ranks[1:]:
            rank.wait()
    return [json.loads(line)["t"] for line in out.splitlines()]


# ---- nnspec: `python bench/scale.py --nnspec NAME --procs N --epochs E` -------------------------
def run_nnspec(name: str, procs: int, epochs: int) -> None:
    import nnspec

    with tempfile.TemporaryDirectory() as scratch:
        nnspec.train(
            EXAMPLES[name],
            "torch",
            Path(scratch) / "run",
            epochs=epochs,
            procs=procs,
            progress=lambda epoch, row: print(json.dumps({"t": time.time()}), flush=True),
        )


def time_nnspec(name: str, procs: int, epochs: int) -> list[float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        __file__,
        "--nnspec",
        name,
        "--procs",
        str(procs),
        "--epochs",
        str(epochs),
    ]
    out = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True).stdout
    return [json.loads(line)["t"] for line in out.splitlines()]


def images_per_second(ends: list[float], images: int) -> float:
    return images * (len(ends) - 1) / (ends[-1] - ends[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--hand", help=argparse.SUPPRESS)
    parser.add_argument("--nnspec", help=argparse.SUPPRESS)
    parser.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--procs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--rendezvous", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hand:
        return hand(args.hand, args.rank, args.size, args.epochs, args.rendezvous)
    if args.nnspec:
        return run_nnspec(args.nnspec, args.procs, args.epochs)
    timings: dict[str, list[float]] = {}
    for round_ in range(args.rounds):
        for name in SECTIONS:
            images = len(digits_split(SECTIONS[name]["seed"], SECTIONS[name]["split"])[0])
            runs = [("nnspec", 1), ("hand", 1), ("nnspec", 2), ("hand", 2)]
            for who, procs in runs[round_ % 4 :] + runs[: round_ % 4]:
                timer = time_nnspec if who == "nnspec" else time_hand
                rate = images_per_second(timer(name, procs, args.epochs), images)
                timings.setdefault(f"{name} {who} {procs}", []).append(rate)
                print(
                    f"round {round_ + 1}: {name} {who} {procs} process(es): {rate:,.0f} images/s",
                    file=sys.stderr,
                )
    medians = {key: statistics.median(values) for key, values in timings.items()}
    print("| spec | processes | nnspec images/s | by hand images/s | nnspec / by hand |")
    print("|---|---|---|---|---|")
    for name in SECTIONS:
        for procs in (1, 2):
            ours, theirs = medians[f"{name} nnspec {procs}"], medians[f"{name} hand {procs}"]
            print(f"| {name} | {procs} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} |")
    print()
    print("| spec | nnspec 2 / 1 processes | by hand 2 / 1 processes |")
    print("|---|---|---|")
    for name in SECTIONS:
        ours = medians[f"{name} nnspec 2"] / medians[f"{name} nnspec 1"]
        theirs = medians[f"{name} hand 2"] / medians[f"{name} hand 1"]
        print(f"| {name} | {ours:.2f} | {theirs:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"timings": timings, "medians": medians}, indent=2))


if __name__ == "__main__":
    main()
