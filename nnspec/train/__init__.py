"""Training from a spec: `nnspec.train(path)` and `nnspec train FILE`.

    result = nnspec.train("examples/xor.nn", out="runs/xor")
    result.metrics["accuracy"], result.paths["weights"], result.passed

Reads the spec's train section, loads its data (nnspec.data), trains on a backend
(`torch_runner`), and writes into `out`: metrics.csv, metrics.png, weights.safetensors
(names as state_dict()), settings.json and an atomic checkpoint after every epoch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from safetensors.numpy import save_file

from ..data import load_data
from ..model import Model, load
from .config import Config, resolve
from .loop import Expectation, TrainingStopped, fit, write_atomic


@dataclass
class TrainResult:
    """What a run reached: the last epoch's metrics, each expectation, and the files written."""

    network: str
    backend: str
    metrics: dict[str, float]
    expectations: list[Expectation]
    paths: dict[str, Path]
    history: list[dict[str, float]] = field(repr=False, default_factory=list)

    @property
    def passed(self) -> bool:
        return all(e.met for e in self.expectations)


def train(path: str | os.PathLike, backend: str | None = None, out: str | os.PathLike | None = None, *, resume: bool = False,
          network: str | None = None, epochs: int | None = None, lr: float | None = None, batch: int | None = None,
          seed: int | None = None, progress=None) -> TrainResult:
    """Train the network of the spec at `path` by its train section; raise SpecError on a bad spec or data."""
    model = load(path, network)
    if model.train_spec is None:
        raise TrainingStopped(f"network '{model.name}' has no train section: add one, such as train {{ data = xor; epochs = 100 }}")
    data = load_data(model.train_spec, model.program)
    config = resolve(model.train_spec, data.kind, {"epochs": epochs, "lr": lr, "batch": batch, "seed": seed})
    runner = make_runner(model, config, backend)
    out = Path(out) if out is not None else Path("runs") / model.name
    outcome = fit(runner, data, config, out, resume, progress)
    paths = _write_results(runner, config, outcome, out)
    return TrainResult(model.name, runner.backend, outcome.metrics, outcome.expectations, paths, outcome.history)


def make_runner(model: Model, config: Config, backend: str | None):
    backend = backend or "torch"
    if backend == "torch":
        from .torch_runner import TorchRunner

        return TorchRunner(model, config)
    raise ValueError(f"unknown backend {backend!r}: torch or numpy")


def _write_results(runner, config: Config, outcome, out: Path) -> dict[str, Path]:
    paths = {"metrics": out / "metrics.csv", "weights": out / "weights.safetensors", "settings": out / "settings.json",
             "plot": out / "metrics.png", "checkpoint": out / "checkpoint.safetensors"}
    write_atomic(paths["weights"], lambda p: save_file(runner.weights(), p))
    write_atomic(paths["settings"], lambda p: Path(p).write_text(json.dumps({"backend": runner.backend, **config.as_dict()}, indent=2)))
    from .plot import plot_history

    write_atomic(paths["plot"], lambda p: plot_history(outcome.history, p))
    return paths


__all__ = ["TrainResult", "TrainingStopped", "train"]
