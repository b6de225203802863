"""How many threads a run computes with: torch's intra-op threads and NumPy's BLAS threads.

    count = choose(None, [model.program], batch=32, backend="torch")   # the rule below
    with limited(count, torch=True):                                     # set, and put back after
        ...train or predict...

The rule (docs/training.md, "Threads"): `--threads N` (`threads=N`) is used as given. Without it, a
network whose training step is small (under `SMALL_STEP` multiply-adds: a forward pass of one
batch, each layer's weights times the positions they are applied at, from the program's layer
table) uses one thread, and a larger one the libraries' own default (torch's: one a core, or
`OMP_NUM_THREADS`). A small step's matrices are too small to split: a second thread only waits
for the first, and on a machine shared with other work (two cores, a busy neighbour) the waiting
threads slow the run several times over (bench/threads.py measures it; BENCHMARKS.md).

torch's inter-op threads are left as they are: nnspec's modules run eagerly, and do no inter-op
work.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

from ..errors import NnspecError

# a step under this many multiply-adds (forward, one batch) runs on one thread by default;
# bench/threads.py measures 1 and 2 threads on both sides of it
SMALL_STEP = 20_000_000


def largest_op(program, batch: int, steps: int | None = None) -> int:
    """About how many multiply-adds the largest single operation of a forward pass of `batch`
    examples takes: of each layer, its weights (its own and those it borrows, not its buffers)
    times the positions it applies them to at once (an image's pixels, a set's items; a
    sequence's steps, `steps` when the shape leaves them open, unless the layer steps through time,
    as a recurrent kind or a layer on a `~>` cycle does, one step at a time) times the batch."""
    largest = 0
    for layer in program.layers:
        weights = sum(param.count for param in layer.params.values() if not param.buffer)
        shape = layer.shape
        positions = shape.size // max(shape.features, 1)
        if shape.timed and not (layer.kind.stateful or layer.recurrent):
            positions *= shape.steps or steps or 1
        largest = max(largest, weights * positions)
    return largest * max(batch, 1)


def step_size(programs, batch: int, steps: int | None = None) -> int:
    """`largest_op` over every network of the run (a GAN: both)."""
    return max((largest_op(program, batch, steps) for program in programs), default=0)


def choose(threads: int | None, programs, batch: int, steps: int | None = None) -> int | None:
    """The thread count to set: `threads` when given (R335 unless a whole number >= 1), 1 for a
    small step, None (the libraries' default) for a larger one."""
    if threads is not None:
        return check(threads)
    return 1 if step_size(programs, batch, steps) < SMALL_STEP else None


def sequence_steps(program, inputs) -> int | None:
    """The time steps of the data's sequences (`inputs`: arrays by input name, batch first), for
    a network whose shapes leave them open; None without sequences."""
    for name in program.inputs:
        if program.layer(name).shape.timed and name in inputs and inputs[name].ndim >= 2:
            return int(inputs[name].shape[1])
    return None


def check(threads) -> int:
    """`threads` as given, when it is a whole number of 1 or more (R335 otherwise)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise NnspecError(
            "R335",
            f"threads must be a whole number of 1 or more, not {threads!r}",
            f"give --threads N (threads=N) with N from 1 to the machine's {os.cpu_count()} "
            "cores, or leave it out: a small network then uses one thread, a larger one every "
            "core",
        )
    return threads


@contextlib.contextmanager
def limited(threads: int | None, torch: bool = False):
    """While the block runs, torch (when `torch`, or when it is loaded already) and NumPy's BLAS
    compute with `threads` threads (None: as they are); both are put back after. Yields the count
    in effect (what settings.json records)."""
    torch_module = _torch(torch)
    before = torch_module.get_num_threads() if torch_module is not None else None
    with contextlib.ExitStack() as stack:
        if threads is not None:
            blas = _blas_limits()
            if blas is not None:
                stack.enter_context(blas(limits=threads, user_api="blas"))
            if torch_module is not None:
                torch_module.set_num_threads(threads)
                stack.callback(torch_module.set_num_threads, before)
        yield threads if threads is not None else in_effect(torch_module is not None and torch)


def in_effect(torch: bool) -> int:
    """The thread count the libraries compute with now: torch's intra-op threads for the torch
    backend, else the most of NumPy's BLAS libraries (the cores, when neither can be asked)."""
    if torch:
        return _torch(True).get_num_threads()
    if importlib.util.find_spec("threadpoolctl") is not None:
        from threadpoolctl import threadpool_info

        counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        if counts:
            return max(counts)
    return os.cpu_count() or 1


def _torch(wanted: bool):
    """torch, when the run uses it or it is loaded already (never imported for NumPy alone)."""
    if "torch" in sys.modules:
        return sys.modules["torch"]
    if wanted:
        import torch

        return torch
    return None


def _blas_limits():
    """threadpoolctl's `threadpool_limits`, or None without threadpoolctl (BLAS then keeps its
    threads: OMP_NUM_THREADS or OPENBLAS_NUM_THREADS set before the run still choose them)."""
    if importlib.util.find_spec("threadpoolctl") is None:
        return None
    from threadpoolctl import threadpool_limits

    return threadpool_limits


__all__ = [
    "SMALL_STEP",
    "check",
    "choose",
    "in_effect",
    "largest_op",
    "limited",
    "sequence_steps",
    "step_size",
]
