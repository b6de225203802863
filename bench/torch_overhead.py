"""PyTorch backend overhead: a training step of the generated module against a hand-written
nn.Module.

For each network, the nnspec module (`nnspec.loads(spec).to_torch()`) and a hand-written
`nn.Module` with the same weights run the same training step (forward, loss, backward,
SGD step) on the same batch, interleaved in rounds (the order alternates each round), and
the median times per step are compared:

  mlp       784-256-128-10, relu, batch 64
  lenet     the lenet example (two conv + pool, two dense), batch 64 of [1, 8, 8]
  lstm      input 32, hidden 128, 50 steps, batch 32, the last step's output
  residual  the residual example (a stem, six residual blocks of 64, a softmax head), batch 64
  elman     a `~>` loop through time: input 8, a tanh layer of 64 fed back, 50 steps, batch 32,
            a linear output at every step (the hand-written loop as a PyTorch user writes it)

    python bench/torch_overhead.py [--rounds N] [--steps N] [--threads N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nnspec  # noqa: E402

MLP = """network mlp {
    input x: 784
    dense h1: 256, act=relu
    dense h2: 128, act=relu
    dense out: 10
    x -> h1 -> h2 -> out
}"""

LSTM = """network lstm {
    input x: 32, seq=50
    lstm  l: 128
    x -> l
    output l: last
}"""

ELMAN = """network elman {
    input x: 8, seq=50
    dense h: 64, act=tanh
    dense y: 1
    x -> h -> y
    h ~> h
}"""


class HandMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.h1, self.h2, self.out = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)

    def forward(self, x):
        return self.out(torch.relu(self.h2(torch.relu(self.h1(x)))))


class HandLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.fc, self.out = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.c1(x)), 2)
        x = F.max_pool2d(torch.relu(self.c2(x)), 2)
        return torch.softmax(self.out(torch.relu(self.fc(x.flatten(1)))), -1)


class HandLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.LSTM(32, 128, batch_first=True)

    def forward(self, x):
        return self.l(x)[0][:, -1]


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.a, self.b = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x):
        return torch.relu(self.b(torch.relu(self.a(x))) + x)


class HandResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(64, 64)
        self.r = nn.ModuleList([Block(64) for _ in range(6)])
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        for block in self.r:
            x = block(x)
        return torch.softmax(self.out(x), -1)


class HandElman(nn.Module):
    def __init__(self):
        super().__init__()
        self.h, self.y = nn.Linear(8 + 64, 64), nn.Linear(64, 1)

    def forward(self, x):
        h, steps = x.new_zeros(x.shape[0], 64), []
        for t in range(x.shape[1]):
            h = torch.tanh(self.h(torch.cat([x[:, t], h], -1)))
            steps.append(h)
        return self.y(torch.stack(steps, 1))


def _copy(hand: nn.Module, ours: nn.Module, rename) -> None:
    """Load our weights into the hand-written module (names mapped by `rename`)."""
    hand.load_state_dict({rename(k): v for k, v in ours.state_dict().items()})


def _module_list_name(name: str) -> str:
    """`r.3.a.weight` (copies counted from 1) -> `r.2.a.weight` (an nn.ModuleList counts from 0)."""
    parts = name.split(".")
    if parts[0] == "r":
        parts[1] = str(int(parts[1]) - 1)
    return ".".join(parts)


def cases():
    lenet = (ROOT / "examples" / "lenet.nn").read_text()
    residual = (ROOT / "examples" / "residual.nn").read_text()
    g = torch.Generator().manual_seed(0)
    return [
        (
            "mlp",
            MLP,
            HandMLP,
            lambda k: k,
            torch.rand(64, 784, generator=g),
            torch.randint(0, 10, (64,), generator=g),
        ),
        (
            "lenet",
            lenet,
            HandLeNet,
            lambda k: k,
            torch.rand(64, 1, 8, 8, generator=g),
            torch.randint(0, 10, (64,), generator=g),
        ),
        (
            "lstm",
            LSTM,
            HandLSTM,
            lambda k: k + "_l0",
            torch.randn(32, 50, 32, generator=g),
            torch.randn(32, 128, generator=g),
        ),
        (
            "residual",
            residual,
            HandResidual,
            _module_list_name,
            torch.rand(64, 64, generator=g),
            torch.randint(0, 10, (64,), generator=g),
        ),
        (
            "elman",
            ELMAN,
            HandElman,
            lambda k: k,
            torch.randn(32, 50, 8, generator=g),
            torch.randn(32, 50, 1, generator=g),
        ),
    ]


def _loss(y, target):
    return F.cross_entropy(y, target) if target.dtype == torch.int64 else F.mse_loss(y, target)


def _steps(net, optimizer, x, target, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        optimizer.zero_grad(set_to_none=True)
        _loss(net(x), target).backward()
        optimizer.step()
    return (time.perf_counter() - start) / n


def measure(name, spec, hand_cls, rename, x, target, rounds: int, steps: int) -> dict:
    ours = nnspec.loads(spec).to_torch(seed=0)
    hand = hand_cls()
    _copy(hand, ours, rename)
    with torch.no_grad():  # the same numbers before timing
        torch.testing.assert_close(ours(x), hand(x))
    nets = {"nnspec": ours, "hand": hand}
    optimizers = {k: torch.optim.SGD(v.parameters(), lr=1e-3) for k, v in nets.items()}
    for k in nets:
        _steps(nets[k], optimizers[k], x, target, max(2, steps // 4))  # warm up
    times = {k: [] for k in nets}
    for i in range(rounds):
        for k in ("nnspec", "hand") if i % 2 == 0 else ("hand", "nnspec"):
            times[k].append(_steps(nets[k], optimizers[k], x, target, steps))
    median = {k: statistics.median(v) for k, v in times.items()}
    return {
        "network": name,
        "nnspec_ms": median["nnspec"] * 1e3,
        "hand_ms": median["hand"] * 1e3,
        "ratio": median["nnspec"] / median["hand"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed block")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), python {platform.python_version()}, "
        f"{args.rounds} rounds x {args.steps} steps, medians"
    )
    print(f"{'network':<10} {'nnspec ms':>10} {'hand ms':>10} {'ratio':>7}")
    results = []
    for case in cases():
        result = measure(*case, rounds=args.rounds, steps=args.steps)
        results.append(result)
        print(
            f"{result['network']:<10} {result['nnspec_ms']:>10.3f} {result['hand_ms']:>10.3f} "
            f"{result['ratio']:>7.3f}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
