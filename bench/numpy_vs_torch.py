"""Training-step time and peak memory: the NumPy backend against PyTorch on the CPU.

Eleven networks, each trained one step at a time (forward, backward, SGD update):

  mlp        784-256-128-10, relu, batch 64, softmax cross-entropy
  lenet      examples/lenet.nn (conv 8, pool, conv 16, pool, dense 32, softmax 10), 8x8 images,
             batch 32
  lstm, gru, rnn   input 32, hidden 128, 50 steps, batch 32, a fixed random gradient on every
             step's output
  attention  two post-norm transformer encoder blocks (attention of 2 heads, add, layernorm,
             dense 64 relu, dense 32, add, layernorm), 32 wide, 16 steps, batch 32, a fixed
             random gradient on the output (nn.TransformerEncoderLayer, dropout 0)
  gcn        two gcn layers (64 relu, 16) over 32 graphs of 32 nodes, 32 features, the mean
             squared error to a random target
  lif        two layers of leaky integrate-and-fire cells (128, 10), 64 inputs shown for
             20 steps, batch 64, the mean spike rate, a fixed random gradient on it
  conv       conv 16 and conv 32, kernel 3, stride 2, padding 1, relu, dense 10, 3x32x32 images,
             batch 32, softmax cross-entropy
  maxout     maxout 256 of 3 pieces, dense 10, batch 64, softmax cross-entropy
  deconv     a generator: code 32, dense 256 relu, reshape [16, 4, 4], three transposed
             convolutions (16, 8, 3 channels; kernel 4, stride 2, padding 1) up to 3x32x32,
             relu and a sigmoid last, batch 32, the mean squared error to a random target

The PyTorch side is written by hand (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.LSTM, nn.GRU,
nn.RNN,
nn.TransformerEncoderLayer, the gcn and lif loops written out, and `torch.optim.SGD`),
the reference the targets are set against; when the nnspec PyTorch backend is installed,
`model.to_torch()` is timed too. Both libraries get one thread (OPENBLAS/OMP/MKL_NUM_THREADS=1,
set before NumPy is imported, and torch.set_num_threads(1)), float32. Timings interleave the
contenders round by round and report medians. Peak memory is measured in a fresh process per
contender: after one warm-up step and `malloc_trim`, how far the resident set peaks above its level
over five steps (the peak is reset through /proc/self/clear_refs: this part needs Linux and glibc).

The load average before and after the run is printed with the table (the machine is shared).

    python bench/numpy_vs_torch.py [--quick] [--rounds N] [--only CASE ...] [--json PATH]
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


def _recurrent(kind: str) -> str:
    return f"""network {kind} {{
    input x: 32, seq=50
    {kind} m: 128
    x -> m
}}"""


ENCODER = """block encoder(width) {
    input     x: width
    attention a: heads=2
    add       s1
    layernorm n1
    dense     f1: 64, act=relu
    dense     f2: width
    add       s2
    layernorm n2
    x -> a -> s1
    x -> s1
    s1 -> n1 -> f1 -> f2 -> s2
    n1 -> s2
    s2 -> n2
}

network encoder2 {
    input   x: 32, seq=16
    encoder e: 32, repeat=2
    x -> e
}"""
GCN = """network gcn {
    input  features: [32, 32]
    input  adjacency: [32, 32]
    gcn    g1: 64, act=relu
    gcn    g2: 16
    features -> g1.features
    adjacency -> g1.adjacency, g2.adjacency
    g1 -> g2.features
}"""
LIF = """network snn {
    input  x: 64, steps=20
    lif    s1: 128, threshold=1.0, decay=0.9
    lif    s2: 10
    x -> s1 -> s2
    output s2: mean
}"""
CONV = """network strided {
    input x: [3, 32, 32]
    conv  c1: 16, kernel=3, stride=2, padding=1, act=relu
    conv  c2: 32, kernel=3, stride=2, padding=1, act=relu
    flatten f
    dense out: 10
    x -> c1 -> c2 -> f -> out
}"""
DECONV = """network generator {
    input   code: 32
    dense   seed: 256, act=relu
    reshape small: [16, 4, 4]
    deconv  up1: 16, kernel=4, stride=2, padding=1, act=relu
    deconv  up2: 8, kernel=4, stride=2, padding=1, act=relu
    deconv  image: 3, kernel=4, stride=2, padding=1, act=sigmoid
    code -> seed -> small -> up1 -> up2 -> image
}"""
MAXOUT = """network maxout {
    input  x: 784
    maxout m: 256, pieces=3
    dense  out: 10
    x -> m -> out
}"""
# name: (spec text, batch, the inputs' shapes past the batch, the loss, steps per round)
# losses: "ce" softmax cross-entropy on logits, "nll" on probabilities (lenet ends in softmax),
# "grad" sum(G * out) for a fixed random G of the output's shape (bounded outputs only: an
# unbounded one grows without end under it), "mse" the mean squared error to a random target
CASES = {
    "mlp": (MLP, 64, [(784,)], "ce", 20),
    "lenet": ((ROOT / "examples" / "lenet.nn").read_text(), 32, [(1, 8, 8)], "nll", 20),
    "lstm": (_recurrent("lstm"), 32, [(50, 32)], "grad", 3),
    "gru": (_recurrent("gru"), 32, [(50, 32)], "grad", 3),
    "rnn": (_recurrent("rnn"), 32, [(50, 32)], "grad", 5),
    "attention": (ENCODER, 32, [(16, 32)], "grad", 5),
    "gcn": (GCN, 32, [(32, 32), (32, 32)], "mse", 10),
    "lif": (LIF, 64, [(64,)], "grad", 5),
    "conv": (CONV, 32, [(3, 32, 32)], "ce", 5),
    "maxout": (MAXOUT, 64, [(784,)], "ce", 20),
    "deconv": (DECONV, 32, [(32,)], "mse", 10),
}
OUT_SHAPE = {  # the output's shape past the batch, for the "grad" and "mse" losses
    "lstm": (50, 128),
    "gru": (50, 128),
    "rnn": (50, 128),
    "attention": (16, 32),
    "gcn": (32, 16),
    "lif": (10,),
    "deconv": (3, 32, 32),
}


# ---- data and the loss gradient, the same on every side ----------------------------------------
def make_batch(case: str, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """(inputs, target): class labels for "ce" and "nll", a gradient of the output for "grad".

    lenet's and lif's inputs are pixels in [0, 1], gcn's adjacency a symmetric 0/1 matrix."""
    rng = np.random.default_rng(seed)
    _, batch, shapes, loss, _ = CASES[case]
    if case in ("lenet", "lif"):
        xs = [rng.random((batch, *shapes[0]), dtype=np.float32)]
    elif case == "gcn":
        upper = np.triu(rng.random((batch, 32, 32)) < 0.15, 1)
        adjacency = (upper | upper.transpose(0, 2, 1)).astype(np.float32)
        xs = [rng.standard_normal((batch, 32, 32), dtype=np.float32), adjacency]
    else:
        xs = [rng.standard_normal((batch, *s), dtype=np.float32) for s in shapes]
    if loss in ("grad", "mse"):
        return xs, rng.standard_normal((batch, *OUT_SHAPE[case]), dtype=np.float32)
    return xs, rng.integers(0, 10, batch)


def loss_grad_numpy(case: str, out: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/d(out) of the case's loss."""
    batch = out.shape[0]
    loss = CASES[case][3]
    if loss == "ce":
        e = np.exp(out - out.max(-1, keepdims=True))
        g = e / e.sum(-1, keepdims=True)
        g[np.arange(batch), target] -= 1.0
        return g / batch
    if loss == "nll":
        g = np.zeros_like(out)
        g[np.arange(batch), target] = -1.0 / (batch * out[np.arange(batch), target])
        return g
    if loss == "mse":
        return (out - target) * (2.0 / out.size)
    return target


# ---- NumPy backend ----------------------------------------------------------------------------
def numpy_step(case: str):
    spec = CASES[case][0]
    run = nnspec.loads(spec).to_numpy(seed=0)
    xs, target = make_batch(case)

    def step() -> None:
        out = run(*xs)
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

    torch.manual_seed(0)
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
    if case == "conv":
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 8 * 8, 10),
        )
    if case == "deconv":
        return nn.Sequential(
            nn.Linear(32, 256),
            nn.ReLU(),
            nn.Unflatten(1, (16, 4, 4)),
            nn.ConvTranspose2d(16, 16, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )
    if case == "attention":  # post-norm blocks, as the spec: norm(x + attn(x)), norm(. + ff(.))
        block = nn.TransformerEncoderLayer(32, 2, 64, dropout=0.0, batch_first=True)
        return nn.TransformerEncoder(block, 2, enable_nested_tensor=False)

    class Recurrent(nn.Module):
        def __init__(self, cell):
            super().__init__()
            self.m = cell(32, 128, batch_first=True)

        def forward(self, x):
            return self.m(x)[0]

    class Maxout(nn.Module):
        def __init__(self):
            super().__init__()
            self.m, self.out = nn.Linear(784, 256 * 3), nn.Linear(256, 10)

        def forward(self, x):
            return self.out(self.m(x).view(-1, 256, 3).amax(-1))

    class Gcn(nn.Module):  # Kipf and Welling's propagation, D^-1/2 (A + I) D^-1/2, per graph
        def __init__(self):
            super().__init__()
            self.g1 = nn.Linear(32, 64, bias=False)
            self.g2 = nn.Linear(64, 16, bias=False)
            self.b1, self.b2 = nn.Parameter(torch.zeros(64)), nn.Parameter(torch.zeros(16))

        def forward(self, features, adjacency):
            looped = adjacency + torch.eye(adjacency.shape[-1])
            d = looped.sum(-1).pow(-0.5)
            a = d[..., :, None] * looped * d[..., None, :]
            h = torch.relu(a @ self.g1(features) + self.b1)
            return a @ self.g2(h) + self.b2

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v >= 1.0).to(v.dtype)

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            return g / (1.0 + 10.0 * (v - 1.0).abs()) ** 2

    class Lif(nn.Module):  # two layers of leaky integrate-and-fire cells, 20 steps, mean rate
        def __init__(self):
            super().__init__()
            self.s1, self.s2 = nn.Linear(64, 128), nn.Linear(128, 10)

        def forward(self, x):
            xg = self.s1(x)  # the same input at every step
            v1 = v2 = None
            rates = 0.0
            for _ in range(20):
                v1 = xg if v1 is None else 0.9 * v1 + xg
                s1 = Spike.apply(v1)
                v1 = v1 - s1.detach()
                z2 = self.s2(s1)
                v2 = z2 if v2 is None else 0.9 * v2 + z2
                s2 = Spike.apply(v2)
                v2 = v2 - s2.detach()
                rates = rates + s2
            return rates / 20

    if case == "maxout":
        return Maxout()
    if case == "gcn":
        return Gcn()
    if case == "lif":
        return Lif()
    return Recurrent({"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[case])


def torch_step(case: str, backend: bool = False):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    net = nnspec.loads(CASES[case][0]).to_torch(seed=0) if backend else torch_modules(case)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    xs, target = make_batch(case)
    xs, target = [torch.from_numpy(a) for a in xs], torch.from_numpy(target)
    loss_kind = CASES[case][3]

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = net(*xs)
        if loss_kind == "ce":
            loss = F.cross_entropy(out, target)
        elif loss_kind == "nll":
            loss = F.nll_loss(out.log(), target)
        elif loss_kind == "mse":
            loss = F.mse_loss(out, target)
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
    parser.add_argument("--only", nargs="+", choices=list(CASES), help="these rows alone")
    parser.add_argument("--peak", nargs=2, metavar=("CASE", "CONTENDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        print(measure_peak(*args.peak))
        return
    rounds = 3 if args.quick else args.rounds
    contenders = ["numpy", "torch"] + (["torch-backend"] if torch_backend_available() else [])
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
    load_before = os.getloadavg()
    for case in args.only or CASES:
        seconds = time_case(case, contenders, rounds, 1 if args.quick else CASES[case][4])
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
    load_after = os.getloadavg()
    print(
        "load average (1, 5, 15 min) before: "
        + ", ".join(f"{v:.2f}" for v in load_before)
        + "; after: "
        + ", ".join(f"{v:.2f}" for v in load_after)
        + f"; {os.cpu_count()} CPUs"
    )
    results["load"] = {"before": load_before, "after": load_after, "cpus": os.cpu_count()}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
