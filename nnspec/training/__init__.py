"""Training from a spec: `nnspec.train(path)` and `nnspec train FILE`.

    result = nnspec.train("examples/xor.nn", out="runs/xor")
    result.metrics["accuracy"], result.paths["weights"], result.passed

Reads the spec's train section, loads its data (nnspec.data), trains on a backend
(`torch_runner`), and writes into `out`: metrics.csv, metrics.png, weights.safetensors
(names as state_dict()), settings.json and an atomic checkpoint (after the first epoch, the
last, and at most once a second in between). What only some runs use (pretraining, factors,
a learning rule, an rbf's centres) is imported when a run uses it: those stages bring the NumPy
backend, which a run on torch does not otherwise load.
"""

from __future__ import annotations

import importlib.util
import json
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from safetensors.numpy import save_file

from .. import arguments
from ..atomic import write_atomic
from ..backends.devices import best_device, numpy_device
from ..collector import collector_paused
from ..data import load_data
from ..errors import Collector, SpecError
from ..model import Model, check_source, load
from ..program import layer_digests
from ..resolve import read_source
from ..train_section import LARGEST_LR, TrainConfig, check_training, train_config
from . import checkpoint, distributed, folder
from .loop import EarlyStop, Expectation, TrainingStopped, fit
from .plot import Plots
from .recorded import weights_metadata
from .tensorboard import recording
from .tensorboard import require as require_tensorboard
from .threads import check as check_threads
from .threads import choose as choose_threads
from .threads import limited, sequence_steps


@dataclass
class TrainResult:
    """What a run reached: the last epoch's metrics, each expectation, and the files written."""

    network: str
    backend: str
    metrics: dict[str, float]
    expectations: list[Expectation]
    paths: dict[str, Path]
    history: list[dict[str, float]] = field(repr=False, default_factory=list)
    early_stop: EarlyStop | None = None  # early stopping: the epoch kept, and where it stopped

    @property
    def kept_epoch(self) -> int | None:
        """The epoch whose weights the run kept, when early stopping watched a metric."""
        return self.early_stop.epoch if self.early_stop else None

    @property
    def passed(self) -> bool:
        return all(e.met for e in self.expectations)

    def plot(self):
        """The loss and every metric per epoch, as metrics.png shows them: a matplotlib `Figure`
        (in a notebook it shows under the cell; `.savefig(path)` writes it)."""
        from .notebook import result_figure

        return result_figure(self)

    def _repr_html_(self) -> str:
        """In a notebook: the table `nnspec train` prints (metric, reached, expected, ok)."""
        from .notebook import result_html

        return result_html(self)


def train(
    path: str | os.PathLike,
    backend: str | None = None,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    network: str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch: int | None = None,
    seed: int | None = None,
    progress=None,
    procs: int = 1,
    device: str | None = None,
    threads: int | None = None,
    tensorboard: str | os.PathLike | None = None,
) -> TrainResult:
    """Train the network of the spec at `path` by its train section (a GAN: both of its networks).

    Raises SpecError on a bad spec or data, TrainingStopped when training cannot go on. A folder
    that already holds a run is refused (R322) unless `resume` (go on with it) or `overwrite`
    (replace its results); one that another run holds is refused too (R321). `procs`: how many
    processes train it data-parallel on this machine; `device`: cpu, cuda, cuda:N or mps (None:
    the best there is) for the torch backend (docs/training.md). `threads`: how many threads
    torch and NumPy's BLAS compute with (None: one for a small network, else their default;
    docs/training.md, "Threads"); `tensorboard`: a folder for TensorBoard event files.

    `progress(epoch, row)` is called after each epoch with its metrics; by default (None) a
    notebook shows a bar under the cell and elsewhere nothing is shown, True shows a bar anywhere
    (on stderr outside a notebook), False none (training/notebook.py).
    """
    from .notebook import progress_for

    models = training_models(path, network)
    total = epochs if epochs is not None else train_config(models[0].train_spec).epochs
    with progress_for(progress, f"training {' and '.join(m.name for m in models)}", total) as (
        report,
        notify,
    ):
        return train_models(
            models,
            backend,
            out,
            resume=resume,
            overwrite=overwrite,
            epochs=epochs,
            lr=lr,
            batch=batch,
            seed=seed,
            progress=report,
            notify=notify,
            procs=procs,
            device=device,
            threads=threads,
            tensorboard=tensorboard,
        )


def train_models(
    models: list[Model],
    backend: str | None = None,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    epochs: int | None = None,
    lr: float | None = None,
    batch: int | None = None,
    seed: int | None = None,
    progress=None,
    notify=None,
    procs: int = 1,
    device: str | None = None,
    threads: int | None = None,
    tensorboard: str | os.PathLike | None = None,
) -> TrainResult:
    """`train` for networks already loaded by `training_models`: one, or a GAN's generator and
    discriminator.

    With `resume`, the run goes on from the checkpoint in `out` with the settings it was trained
    with (its backend, and the epochs, lr, batch and seed it was given); `epochs` may extend it,
    and a `backend`, `lr`, `batch` or `seed` that differs is refused (R302), as is a checkpoint of
    another network or version of the spec (R302), a damaged one (R310) or none (R311).
    `notify(text, epochs)` is told what a resume takes from the run, and how far it goes.

    `out` is held by this run alone while it trains (training/folder.py: R320 to R322); a write
    into it that fails mid-run (a full disk, a read-only or vanished folder) is R323, naming the
    file, why, and the epoch of the checkpoint kept.

    With `procs` > 1 the run is data-parallel (training/distributed.py): `procs` worker
    processes, started here, or the processes torchrun started this one among (WORLD_SIZE).

    `threads` (R335 unless a whole number >= 1) is set for the run and put back after
    (training/threads.py); `tensorboard` names a folder the run writes TensorBoard event files
    into (training/tensorboard.py; R336 without tensorboardX, R337, R338)."""
    check_arguments(backend, epochs=epochs, lr=lr, batch=batch, seed=seed)
    arguments.flag("resume", resume)
    arguments.flag("overwrite", overwrite)
    for name, place in (("out", out), ("tensorboard", tensorboard)):
        if place is not None:
            arguments.path(name, place, f"runs/{models[0].name}", "folder")
    if threads is not None:
        check_threads(threads)
    if tensorboard is not None:
        require_tensorboard()
    spec = models[0].train_spec
    errors = Collector()
    for model in models:
        check_training(model.program, spec, errors, epochs)
    errors.raise_if_any()
    name = run_name(models)
    out = Path(out) if out is not None else Path("runs") / name
    given = {"epochs": epochs, "lr": lr, "batch": batch, "seed": seed}
    torchrun = distributed.group_size() > 1  # one of the processes torchrun (or launch) started
    if torchrun and procs > 1:
        raise distributed.TrainingStopped(
            "R333",
            f"--procs {procs} in a process that torchrun started: torchrun starts them",
            "leave out --procs under torchrun (its --nproc-per-node says how many)",
        )
    if procs > 1:  # the parent of the workers
        distributed.check_procs(procs, backend or default_backend(), models)
        if not resume:  # what the workers will refuse, found before they start (a resume's
            # settings are the checkpoint's, which rank 0 reads)
            _check_shards_before(models, procs, backend, given)
        fields = distributed.launch(
            models,
            procs,
            out,
            progress,
            notify,
            backend=backend,
            resume=resume,
            overwrite=overwrite,
            device=device,
            threads=threads,
            tensorboard=None if tensorboard is None else str(tensorboard),
            **given,
        )
        return _result_of(fields)
    with distributed.joined(device) if torchrun else nullcontext() as group:
        return _train(
            models,
            backend,
            out,
            given,
            resume,
            overwrite,
            progress,
            notify,
            group,  # a rank's group decides its device
            device=device,
            threads=threads,
            tensorboard=tensorboard,
        )


def _check_shards_before(models: list, procs: int, backend: str | None, given: dict) -> None:
    """The workers' checks of the data and the settings (R331), in the parent, so that a run
    they cannot share is refused before `procs` processes each import torch and load the data."""
    spec = models[0].train_spec
    data = load_data(spec, models[0].program)
    overrides = {key: value for key, value in given.items() if value is not None}
    config = train_config(spec, data.kind, **overrides)
    _check_sharing(procs, backend, models, config, data)


def _check_sharing(procs: int, backend: str | None, models: list, config, data) -> None:
    """R330, R331 for a run that `procs` processes cannot share (the parent checks it before the
    workers start, each rank again with the settings it trains with)."""
    distributed.check_procs(procs, backend or default_backend(), models, config, data)
    distributed.check_shards(models[0].program, data.train, config.batch, procs)


def _train(
    models,
    backend,
    out: Path,
    given,
    resume,
    overwrite,
    progress,
    notify,
    group=None,
    device=None,
    threads=None,
    tensorboard=None,
) -> TrainResult:
    """train_models in this process: alone, or as one rank of `group` (then rank 0 holds the
    folder and writes; the others take the checkpoint from it)."""
    spec, name, writes = models[0].train_spec, run_name(models), group is None or group.writes
    overrides = {key: value for key, value in given.items() if value is not None}
    held = folder.hold(out, resume=resume, overwrite=overwrite) if writes else nullcontext()
    with held:  # R320 to R322
        saved = None
        if resume:  # the checkpoint first: what it holds decides the backend and the settings
            saved = checkpoint.read(out) if writes else None
            saved = group.broadcast(saved) if group else saved
            saved.check_flags(backend, given)
            backend, overrides = saved.backend, {**saved.overrides, **overrides}
        data = load_data(spec, models[-1].program)
        config = train_config(spec, data.kind, **overrides)
        if saved is not None:
            saved.check_settings(config)
        if group is not None:
            _check_sharing(group.size, backend, models, config, data)
        layers = layer_digests([model.program for model in models])
        record = checkpoint.Record(name, checkpoint.kept_settings(config), overrides, layers)
        with (
            Plots() if writes else nullcontext()
        ) as plots:  # from here on, matplotlib loads in a helper process while the network trains
            with collector_paused(freeze=True):  # it imports torch and torch._dynamo
                where = str(group.device) if group else _device(backend, device)
                runner = (
                    make_runner(models[0], config, backend, device=where)
                    if len(models) == 1
                    else make_gan(*models, config, backend, device=where)
                )
            if group is not None:
                runner = distributed.Sharded(runner, group)
            if config.factors is not None:  # Kulkarni's procedure: training/factors.py
                from .factors import FactorRunner

                runner = FactorRunner(runner, config, models[0].program, data)
            if saved is None and len(models) == 1:  # an rbf's centres from the training part
                from .centres import place_centres

                place_centres(runner, models[0].program, data.train, config.seed)
            if saved is not None:
                saved.check_layout(name, checkpoint.layout_of(runner.weights()))
                saved.check_layers(name, layers)
                if notify is not None:
                    notify(_resuming(saved, config), config.epochs)
            count = choose_threads(
                threads,
                [model.program for model in models],
                config.batch or data.train.size,
                sequence_steps(models[0].program, data.train.inputs),
            )
            on_torch = (backend or default_backend()) == "torch"
            events = tensorboard if writes else None  # rank 0 alone writes them
            try:
                with (
                    limited(count, torch=on_torch) as count,
                    recording(events, models, out, saved and saved.epoch, overwrite) as board,
                ):
                    if config.pretrain is not None and saved is None:  # a resumed run has done it
                        from .pretrain import pretrain

                        pretrain(runner, models[0].program, data, config, out)
                    observed = board.observe(progress)
                    outcome = fit(runner, data, config, out, saved or False, observed, record)
                    board.finish(outcome.history)
                paths = (
                    _write_results(runner, config, outcome, out, data, plots, layers, count)
                    if writes
                    else {}
                )
            except OSError as error:  # a write into the run's folder failed: say what is kept
                raise folder.write_failed(error, out) from None
    return TrainResult(
        name,
        runner.backend,
        outcome.metrics,
        outcome.expectations,
        paths,
        outcome.history,
        outcome.kept,
    )


def _result_of(fields: dict) -> TrainResult:
    """A TrainResult from the fields a worker sent (worker.result_fields)."""
    early = fields["early_stop"]
    return TrainResult(
        **{
            **fields,
            "expectations": [Expectation(**e) for e in fields["expectations"]],
            "paths": {k: Path(v) for k, v in fields["paths"].items()},
            "early_stop": EarlyStop(**early) if early else None,
        }
    )


def _resuming(saved: checkpoint.Saved, config: TrainConfig) -> str:
    settings = config.as_dict()
    optimizer = ", ".join(f"{k}={v:g}" for k, v in settings["optimizer"].items() if k != "name")
    return (
        f"resuming {saved.path.parent} from epoch {saved.epoch} to {config.epochs}, with the "
        f"settings it was trained with: backend {saved.backend}, optimizer "
        f"{settings['optimizer']['name']}({optimizer}), batch {settings['batch']}, "
        f"seed {settings['seed']}"
    )


def training_models(path, network: str | None = None) -> list[Model]:
    """The network to train, or a GAN's generator and discriminator (in that order)."""
    try:
        model = load(path, network)
    except SpecError as error:  # several networks: one train section may name a GAN pair
        if network is not None or error.code != "E316":
            raise
        model = next(
            (
                m
                for m in check_source(read_source(path))
                if m.train_spec and "discriminator" in m.train_spec.settings
            ),
            None,
        )
        if model is None:
            raise
    if model.train_spec is None:
        raise TrainingStopped(
            "R303",
            f"network '{model.name}' has no train section",
            "add one, such as train { data = xor; epochs = 100 }",
        )
    settings = model.train_spec.settings
    if "discriminator" in settings:
        return [load(path, str(settings["generator"])), load(path, str(settings["discriminator"]))]
    return [model]


def run_name(models: list[Model]) -> str:
    """A run's name, and its folder under runs/ by default: the network's (a GAN's:
    generator_discriminator)."""
    return "_".join(model.name for model in models)


def make_gan(
    generator: Model,
    discriminator: Model,
    config: TrainConfig,
    backend: str | None = None,
    dtype: str = "float32",
    device: str | None = None,
):
    """A generator and a discriminator on `backend`, trained in turns (gan.py)."""
    if (backend or default_backend()) == "torch":
        from .torch_runner import TorchGan

        return TorchGan(generator, discriminator, config, dtype, device)
    from .numpy_runner import NumpyGan

    numpy_device(device)
    return NumpyGan(generator, discriminator, config, dtype)


def make_runner(
    model: Model,
    config: TrainConfig,
    backend: str | None = None,
    dtype: str = "float32",
    device: str | None = None,
):
    """The network on `backend` (default: torch when it is installed, else numpy), trained as
    `config` says; on `device` for torch (None: the CPU; R334 for one that is not there)."""
    backend = backend or default_backend()
    if backend == "torch":
        from .torch_runner import TorchRunner

        runner = TorchRunner(model, config, dtype, device)
    elif backend == "numpy":
        from .numpy_runner import NumpyRunner

        numpy_device(device)
        runner = NumpyRunner(model, config, dtype)
    else:
        raise ValueError(f"unknown backend {backend!r}: torch or numpy")
    if config.rule == "backprop":
        return runner
    from .rules import RuleRunner

    return RuleRunner(runner, config, model.program)


# ---- the arguments of a call, checked before anything is read (R339) -------------------------
WHOLE_LEAST = {"epochs": 0, "batch": 1, "seed": 0}  # a whole number at least this
SETTINGS_HINT = (
    "give it as the command line's --epochs, --lr, --batch, --seed take it, or leave it out for "
    "the train section's"
)


def check_arguments(backend: str | None, **given) -> None:
    """R339 for a `backend` that is neither torch nor numpy, or a given `epochs`, `batch` or
    `seed` that is no whole number at least WHOLE_LEAST's, or an `lr` that is no number above 0
    within float32 (the command line refuses the same as usage errors)."""
    if backend is not None:
        arguments.one_of(
            "backend",
            backend,
            ("torch", "numpy"),
            "leave it out: torch when it is installed, else numpy",
        )
    for key, least in WHOLE_LEAST.items():
        arguments.whole(key, given.get(key), least, SETTINGS_HINT)
    arguments.number("lr", given.get("lr"), 0, LARGEST_LR, SETTINGS_HINT)


def default_backend() -> str:
    return "torch" if importlib.util.find_spec("torch") is not None else "numpy"


def _where(runner) -> dict:
    """Where the run computed, for settings.json: its device, and its processes when several."""
    group = getattr(runner, "group", None)
    while hasattr(runner, "inner"):  # a rank's, a learning rule's or factors' runner
        runner = runner.inner
    device = getattr(getattr(runner, "g", runner), "device", "cpu")  # a GAN: the generator's
    return {"device": str(device), **({"procs": group.size} if group else {})}


def _device(backend: str | None, device: str | None) -> str | None:
    """The device to train on: the one asked for, else for torch the best there is."""
    if device is None and (backend or default_backend()) == "torch":
        return best_device()
    return device


def _write_results(
    runner,
    config: TrainConfig,
    outcome,
    out: Path,
    data,
    plots: Plots,
    layers: dict[str, str],
    threads: int | None = None,
) -> dict[str, Path]:
    paths = {
        "metrics": out / "metrics.csv",
        "weights": out / "weights.safetensors",
        "settings": out / "settings.json",
        "plot": out / "metrics.png",
        "checkpoint": out / "checkpoint.safetensors",
    }
    metadata = weights_metadata(data, layers)  # the layers and a csv's columns, for predict
    write_atomic(paths["weights"], lambda p: save_file(runner.weights(), p, metadata))
    write_atomic(
        paths["settings"],
        lambda p: Path(p).write_text(
            json.dumps(
                {
                    "backend": runner.backend,
                    **_where(runner),
                    **({"threads": threads} if threads is not None else {}),
                    **config.as_dict(),
                },
                indent=2,
            )
        ),
    )
    drawings = [("history", paths["plot"], {"history": outcome.history})]
    if hasattr(runner, "sample"):  # a GAN: its samples over the real data, when the points are 2-D
        real = data.train.inputs[runner.real_input].reshape(data.train.size, -1)
        if real.shape[1] == 2:
            generated = runner.sample(runner.evaluation_noise.astype(real.dtype)).reshape(-1, 2)
            paths["samples"] = out / "samples.png"
            drawings.append(
                (
                    "samples",
                    paths["samples"],
                    {"real": real.tolist(), "generated": generated.tolist()},
                )
            )
    plots.draw(drawings)
    return paths


__all__ = ["TrainResult", "TrainingStopped", "train"]
