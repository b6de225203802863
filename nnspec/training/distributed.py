"""Data-parallel training on torch.distributed: `nnspec train FILE --procs N`, and torchrun.

    nnspec train spec.nn --procs 2                      # two processes on this machine
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        -m nnspec train spec.nn                         # eight, across two machines

Every rank builds the same network from the same seed, reads the same data and draws the same
order of examples; each trains on its own contiguous shard of every batch, and
DistributedDataParallel averages the gradients (gloo on the CPU, NCCL on GPUs). Each rank's loss
is weighted by its shard's part of the batch, so the update is the one a single process makes on
the whole batch. Rank 0 alone holds the run folder, evaluates, and writes metrics, plots, weights
and checkpoints; the other ranks take each epoch's metrics from it, so that they stop where it
stops.

`launch` is the parent of `--procs N`: it starts N workers (`worker.work`, each told its rank as
torchrun tells it: RANK, WORLD_SIZE, LOCAL_RANK), relays rank 0's progress, and when one worker
fails it stops the others and says which failed and what is kept (R332). Nothing here imports
torch until a worker joins its group.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import NnspecError
from .stopped import TrainingStopped

RENDEZVOUS = "NNSPEC_RENDEZVOUS"  # the file through which launch()'s workers find each other
# how long a rank waits for the others in one collective (seconds; NNSPEC_TIMEOUT overrides): a
# rank that hangs stops the run after this, where torch's default would wait for 30 minutes
TIMEOUT = 300.0
STOP_SECONDS = 10.0  # how long stopped workers get to end in order before they are killed
WORKER = "from nnspec.training.worker import main; main()"
ONE_PROCESS = "train it in one process: leave out --procs (docs/training.md lists what does)"


class WorkerFailed(TrainingStopped):
    """R332: a worker of a data-parallel run failed, and the others were stopped; `out` holds
    the checkpoint kept, if any. `resumed(command)` names the command that resumes."""

    def __init__(self, message: str, out: Path, kept: int | None):
        self.out, self.kept = out, kept
        super().__init__("R332", message, self._hint(None))

    def _hint(self, command: str | None) -> str:
        if self.kept is None:
            return "train again (nothing of the run can be resumed)"
        how = command or f"nnspec train FILE --out {self.out} --resume --procs N"
        return f"go on from epoch {self.kept}: {how}"

    def resumed(self, command: str) -> WorkerFailed:
        self.hint = self._hint(command)
        return self


class Relayed(NnspecError):
    """An error a worker raised, shown as the worker rendered it."""

    def __init__(self, code: str, message: str, hint: str | None, text: str):
        super().__init__(code, message, hint)
        self.text = text

    def render(self, color: bool = False) -> str:
        return self.text


# ---- what runs in one process only ------------------------------------------------------------
def group_size() -> int:
    """The number of processes this one trains with: WORLD_SIZE, as torchrun and `launch` set
    it; 1 outside a data-parallel run."""
    text = os.environ.get("WORLD_SIZE", "1")
    return int(text) if text.isdigit() else 1


def check_procs(procs: int, backend: str, models: list, config=None, data=None) -> None:
    """Refuse more than one process for what trains in one only: the NumPy backend (R330), a
    GAN, a learning rule, factors, a pretraining stage or graph data (R331)."""
    if procs <= 1:
        return
    if backend == "numpy":
        raise TrainingStopped(
            "R330",
            f"the numpy backend trains in one process, not {procs}",
            "train with --backend torch for --procs, or leave out --procs",
        )
    what = _one_process(models, config, data)
    if what:
        raise TrainingStopped("R331", f"{what} trains in one process, not {procs}", ONE_PROCESS)


def _one_process(models: list, config, data) -> str | None:
    if len(models) > 1:
        return f"a GAN ({' and '.join(m.name for m in models)}, trained in turns)"
    if config is None:
        return None
    if config.rule != "backprop":
        return f"the learning rule '{config.rule}'"
    if config.factors is not None:
        return f"factors = {config.factors} (Kulkarni's procedure)"
    if config.pretrain is not None:
        return "a run with a pretraining stage"
    if data is not None and data.train.mask is not None:
        return "graph data (every node of one graph in each step)"
    return None


def check_shards(program, split, batch: int | None, procs: int) -> None:
    """Every rank needs examples in every batch (and two for batchnorm, which normalises over
    each shard): R331 for a batch that `procs` ranks cannot share."""
    sizes = {split.size} if batch is None else {min(batch, split.size), split.size % batch} - {0}
    least = 2 * procs if any(layer.kind.name == "batchnorm" for layer in program.layers) else procs
    small = min(sizes)
    if small >= least:
        return
    which = "each batch" if small == min(batch or split.size, split.size) else "the last batch"
    need = "two examples for each process (batchnorm)" if least > procs else "an example each"
    raise TrainingStopped(
        "R331",
        f"{which} of the {split.size} training examples holds {small}, too few for {procs} "
        f"processes: each trains on its shard of every batch, and needs {need}",
        f"give --batch so that every batch holds {least} or more, or use fewer processes",
    )


# ---- a worker's group -------------------------------------------------------------------------
@dataclass
class Group:
    """This process's place in a data-parallel run: its rank of `size`, and its device."""

    rank: int
    size: int
    device: object  # torch.device

    @property
    def writes(self) -> bool:
        return self.rank == 0

    def broadcast(self, value):
        """Rank 0's `value` on every rank (any picklable value)."""
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, device=self._device())
        return box[0]

    def sum(self, values: list[float]) -> list[float]:
        """Each of `values` summed over the ranks."""
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self._device())
        dist.all_reduce(tensor)
        return tensor.tolist()

    def _device(self):
        return self.device if getattr(self.device, "type", "cpu") == "cuda" else None


@contextlib.contextmanager
def joined(device: str | None):
    """Join the group that torchrun (or `launch`) started this process in, on this rank's device:
    a CUDA GPU each (cuda:LOCAL_RANK) with NCCL, else the CPU with gloo. R333 when the group
    cannot be formed."""
    import datetime

    import torch
    import torch.distributed as dist

    from ..backends.devices import torch_device

    rank, size = int(os.environ["RANK"]), group_size()
    local = int(os.environ.get("LOCAL_RANK", rank))
    where = _rank_device(device, local, size)
    if where.type == "cuda":
        torch.cuda.set_device(where)
    elif where.type != "cpu":
        raise TrainingStopped(
            "R331",
            f"a data-parallel run computes on CPUs or CUDA GPUs, not on '{where}'",
            "train on --device cpu or cuda, or in one process",
        )
    else:
        torch_device("cpu")
    timeout = float(os.environ.get("NNSPEC_TIMEOUT", TIMEOUT))
    rendezvous = os.environ.get(RENDEZVOUS)
    try:
        dist.init_process_group(
            "nccl" if where.type == "cuda" else "gloo",
            init_method=f"file://{rendezvous}" if rendezvous else "env://",
            rank=rank,
            world_size=size,
            timeout=datetime.timedelta(seconds=timeout),
        )
    except (RuntimeError, ValueError) as error:
        raise TrainingStopped(
            "R333",
            f"process {rank} of {size} could not join the others: {_first_line(error)}",
            "start every process with the same rendezvous (torchrun --rdzv-endpoint HOST:PORT, "
            "or MASTER_ADDR and MASTER_PORT), and check that HOST:PORT can be reached",
        ) from None
    try:
        yield Group(rank, size, where)
    except dist.DistError as error:  # another process ended, or hangs past the timeout
        raise TrainingStopped(
            "R332",
            f"process {rank} of {size} lost the others: {_first_line(error)}; training stopped "
            "(the last checkpoint is kept in the run folder)",
            "see the other processes' messages for why; then go on with --resume",
        ) from None
    finally:
        # the runner and its DistributedDataParallel hold each other (a cycle): collected later,
        # after the group is destroyed or at the interpreter's exit, its reducer can abort the
        # process ("terminate called without an active exception"); so they go first
        gc.collect()
        with contextlib.suppress(RuntimeError, ValueError):
            dist.destroy_process_group()


def _rank_device(device: str | None, local: int, size: int):
    """This rank's device: with a GPU, its own (cuda:LOCAL_RANK); else the CPU."""
    import torch

    from ..backends.devices import best_device, check_name, torch_device

    name = check_name(device) if device is not None else best_device()
    if name.startswith("cuda:") and size > 1:
        raise TrainingStopped(
            "R333",
            f"--device {name} would put every process on one GPU",
            "give --device cuda: each process takes a GPU of its own (cuda:LOCAL_RANK)",
        )
    if name == "cuda":
        there = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if there and local >= there:
            raise TrainingStopped(
                "R333",
                f"process {local} of this machine has no GPU of its own: there are {there}",
                f"start at most {there} processes on this machine, or train on --device cpu",
            )
        return torch_device(f"cuda:{local}")
    return torch_device(name)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


# ---- a rank's runner --------------------------------------------------------------------------
class Sharded:
    """A `TorchRunner` on one rank: it trains on its shard of each batch, with its gradients
    averaged by DistributedDataParallel; rank 0 alone evaluates (the others take its metrics)
    and writes (`writes`). Everything else is the runner's own."""

    def __init__(self, runner, group: Group):
        from torch.nn.parallel import DistributedDataParallel

        self.inner, self.group, self.writes = runner, group, group.writes
        self.bad, self.last = "", False  # a loss not finite in this epoch; its last batch now
        if runner.optimizer is not None:  # a network whose weights are all frozen needs none
            cuda = runner.device.type == "cuda"
            runner.trained = DistributedDataParallel(
                _Terms(runner.net), device_ids=[runner.device] if cuda else None
            )
            runner.update = self._update
        runner.total = self._total

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def batches(self, split, batch: int | None, rng):
        """This rank's contiguous shard of each of the run's batches (all ranks draw the same
        order from the same seed); the runner weights its loss by the shard's part."""
        from .loop import _batches

        self.bad, order = "", _batches(split, batch, rng)
        following = next(order, None)
        while following is not None:
            inputs, target, mask = following
            following = next(order, None)
            self.last = following is None  # the epoch's last batch: the ranks compare notes
            size, rank = len(next(iter(inputs.values()))), self.group.rank
            begin, end = size * rank // self.group.size, size * (rank + 1) // self.group.size
            self.inner.part = (end - begin) / size
            yield (
                {k: v[begin:end] for k, v in inputs.items()},
                _rows(target, begin, end),
                mask,
            )
        self.inner.part = None

    def _update(self, loss) -> float:
        """Backpropagate this shard's part of the loss; DistributedDataParallel averages the
        ranks' gradients, so the part is scaled by their number to give the whole batch's.

        The value returned is the part over the shard's share of the batch (its mean loss, for a
        mean), so that the epoch's running sums, added up over the ranks in `measure`, are one
        process's; no exchange is spent on it. A rank whose loss is not finite does not step; at
        the epoch's last batch the ranks tell each other whether any met one, and then every
        rank reports the loss as NaN (or infinite), so that all stop together (R301), as one
        process would."""
        (loss * self.group.size).backward()
        value = loss.item() / self.inner.part
        if math.isfinite(value):
            self.inner.optimizer.step()
        else:  # which it was: R301 says NaN or infinite
            self.bad = "nan" if math.isnan(value) or self.bad == "nan" else "inf"
        if self.last:
            nan, inf = self.group.sum([float(self.bad == "nan"), float(self.bad == "inf")])
            return float("nan") if nan else float("inf") if inf else value
        return value

    def _total(self, loss) -> float:
        return self.group.sum([loss.item()])[0]

    def measure(self, data, config, running=None) -> dict[str, float]:
        """The epoch's metrics: the ranks' running sums added up, then rank 0's evaluation, on
        every rank."""
        from .loop import measure

        if running is not None:
            rights = list(running.rights)
            sums = self.group.sum(
                [running.loss_sum, running.right, running.count]
                + [running.rights[name] for name in rights]
            )
            running.loss_sum, running.right, running.count = sums[:3]
            running.rights = dict(zip(rights, sums[3:], strict=True))
        return self.group.broadcast(
            measure(self.inner, data, config, running) if self.writes else None
        )

    def broadcast(self, value):
        return self.group.broadcast(value)


def _rows(target, begin: int, end: int):
    if target is None:
        return None
    if isinstance(target, dict):
        return {k: v[begin:end] for k, v in target.items()}
    return target[begin:end]


def _terms_module():
    from torch import nn

    class Terms(nn.Module):
        """The network's forward_with_terms as a module's forward, for DistributedDataParallel
        (which prepares the gradients' reduction in its own forward)."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, **inputs):
            return self.net.forward_with_terms(**inputs)

    return Terms


def _Terms(net):  # noqa: N802 - made on first use, so that importing this module needs no torch
    return _terms_module()(net)


# ---- the parent of --procs N ------------------------------------------------------------------
def launch(models: list, procs: int, out: Path, progress=None, notify=None, **options):
    """Train `models` (loaded from a spec file) in `procs` worker processes on this machine and
    return the fields of rank 0's TrainResult (`worker.result_fields`). `options`: train_models'
    keywords (backend, resume, overwrite, epochs, lr, batch, seed, device, ...). A worker that
    fails stops the others (R332); Ctrl-C or SIGTERM here stops them all in order, keeping the
    last checkpoint."""
    job = {"path": str(models[0].path), "network": models[0].name, "out": str(out), **options}
    with tempfile.TemporaryDirectory(prefix="nnspec-procs-") as scratch:
        workers = _start(job, procs, Path(scratch))
        events: queue.Queue = queue.Queue()
        reader = threading.Thread(target=_read_events, args=(workers[0], events), daemon=True)
        reader.start()
        result = None
        try:
            while True:
                result = _relay(events, progress, notify) or result
                codes = [worker.poll() for worker in workers]
                if all(code is not None for code in codes) or any(codes):
                    break
            if any(codes):  # one failed: the others see it, or are stopped below
                time.sleep(0.5)
                codes = [worker.poll() for worker in workers]
        finally:  # also after Ctrl-C or SIGTERM in this process
            _stop(workers)
            reader.join(timeout=STOP_SECONDS)
            if not reader.is_alive():  # closing a pipe another thread reads would wait for it
                workers[0].stdout.close()
        result = _relay(events, progress, notify) or result
        if not any(worker.returncode for worker in workers) and result and "result" in result:
            return result["result"]
        raise _failure(workers, codes, result, Path(scratch), out, procs)


def _start(job: dict, procs: int, scratch: Path) -> list[subprocess.Popen]:
    workers = []
    base = {**os.environ, RENDEZVOUS: str(scratch / "rendezvous"), "WORLD_SIZE": str(procs)}
    base["NNSPEC_JOB"] = json.dumps(job)
    # the cores shared out, as torchrun does (it gives each process 1), unless told otherwise
    base.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // procs)))
    for rank in range(procs):
        env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank)}
        out = subprocess.PIPE if rank == 0 else open(scratch / f"{rank}.out", "w")  # noqa: SIM115
        err = open(scratch / f"{rank}.err", "w")  # noqa: SIM115
        with out if rank else contextlib.nullcontext(), err:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    text=True,
                    start_new_session=True,  # Ctrl-C reaches this process, which stops them
                )
            )
    return workers


def _read_events(worker: subprocess.Popen, events: queue.Queue) -> None:
    for line in worker.stdout:
        with contextlib.suppress(ValueError):
            events.put(json.loads(line))
    events.put(None)


def _relay(events: queue.Queue, progress, notify) -> dict | None:
    """Pass rank 0's progress on; its last word (a result or an error), if it came."""
    last = None
    try:
        event = events.get(timeout=0.05)
        while True:
            if event is None:
                break
            if "epoch" in event and progress is not None:
                progress(event["epoch"], event["row"])
            elif "notify" in event and notify is not None:
                notify(event["notify"], event["epochs"])
            elif "result" in event or "error" in event:
                last = event
            event = events.get_nowait()
    except queue.Empty:
        pass
    return last


def _stop(workers: list[subprocess.Popen]) -> None:
    """SIGTERM to every worker still running (each stops as after Ctrl-C: its checkpoint whole),
    then SIGKILL to any that has not ended after STOP_SECONDS."""
    for worker in workers:
        if worker.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGTERM)
    ends = time.monotonic() + STOP_SECONDS
    for worker in workers:
        try:
            worker.wait(timeout=max(0.0, ends - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _failure(workers, codes, last, scratch: Path, out: Path, procs: int) -> NnspecError:
    """The error of a run whose workers did not all succeed: rank 0's own error when it gave
    one (a spec, data or folder error, which every rank would give), else R332 naming the worker
    that failed first."""
    first = _error_of(last)
    if first is not None and first.code != "R332":
        return first
    for rank, code in enumerate(codes):
        said = _error_of(_last_event(scratch / f"{rank}.out")) if rank else first
        if code and code not in (130, 143) and said is not None and said.code != "R332":
            return said
    # the codes from before the others were stopped: a kill, else an exit that was no stop
    culprit = next(
        (rank for rank, code in enumerate(codes) if code and code < 0),
        next((rank for rank, code in enumerate(codes) if code not in (None, 0, 130, 143)), 0),
    )
    return WorkerFailed(
        _failed_text(culprit, codes[culprit], workers, scratch, out, procs), out, _kept(out)
    )


def _failed_text(rank, code, workers, scratch: Path, out: Path, procs: int) -> str:
    how = (
        "ended without telling its result"
        if not code
        else f"was killed by {signal.Signals(-code).name}"
        if code < 0
        else "ended with an internal error (a bug in nnspec)"
        if code == 3
        else f"ended with exit code {code}"
    )
    words = _tail(scratch / f"{rank}.err")
    kept = _kept(out)
    place = f"the checkpoint of epoch {kept} is kept in {out}" if kept else "no checkpoint was kept"
    text = (
        f"process {rank + 1} of {procs} (rank {rank}, pid {workers[rank].pid}) {how}; the others "
        f"were stopped, and training stopped ({place})"
    )
    return f"{text}; its last words:\n{words}" if words else text


def _kept(out: Path) -> int | None:
    from .checkpoint import CheckpointError, read

    try:
        return read(out).epoch
    except CheckpointError:
        return None


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(f"    {line}" for line in text[-lines:])


def _last_event(path: Path) -> dict | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            return json.loads(line)
    return None


def _error_of(event: dict | None) -> Relayed | None:
    if not event or "error" not in event:
        return None
    e = event["error"]
    return Relayed(e["code"], e["message"], e["hint"], e["text"])
