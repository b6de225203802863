"""The pretraining stage, `pretrain = cd(k=1, persistent=false, lr=0.1, epochs=10, batch=10)`:
a deep belief network's greedy layer-wise training (Hinton, Osindero and Teh 2006).

Before the section's own training (backpropagation, which then fine-tunes the whole network),
every `rbm` layer, in the network's order, is trained by contrastive divergence on what enters
it: the training inputs carried through the layers before it, with their weights as they are by
then (in evaluation mode, on NumPy for either backend), so the second rbm of a stack learns from
the first one's hidden means P(h | v). Each rbm gets `epochs` passes over the training part in
shuffled batches of `batch`; the step is `rule = cd`'s (training/contrastive.py) with the same
draws on both backends: batch order from `default_rng([seed, 1, layer])`, each step's sampling
from `default_rng([seed, 2, layer, step])`. An rbm marked `frozen` is pretrained too: frozen
keeps backpropagation from moving its features afterwards (a readout on fixed RBM features).

Each epoch of each rbm writes a row to `pretrain.csv` in the run's folder (`layer`, `epoch`,
reconstruction error and pseudo-likelihood, on the held-out part when there is one, else the
training part) and goes to `progress`. Pretraining runs once, when a run starts: a resumed run
goes on from its checkpoint, which was written after the stage, so it never pretrains twice.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ..atomic import write_atomic
from ..backends.numpy import to_numpy
from ..data.load import Data
from ..program import Program
from ..train_section import TrainConfig
from .contrastive import cd_step, pseudo_likelihood, reconstruction_error
from .rules import Batch, entering
from .stopped import TrainingStopped

FILE = "pretrain.csv"
COLUMNS = ("layer", "epoch", "reconstruction_error", "pseudo_likelihood")


def pretrain(
    runner, program: Program, data: Data, config: TrainConfig, out: Path, progress=None
) -> list[dict]:
    """Train each rbm of `program` in turn by CD on `data`'s training part, as
    `config.pretrain` says, and put the weights into `runner`; returns the rows of pretrain.csv.

    `progress(layer, epoch, row)` is told of each epoch. Raises TrainingStopped (R360) when the
    reconstruction error stops being finite (too large a step); the overflows on the way there
    are not warned of, as the training loop's are not (`loop.fit`)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _pretrain(runner, program, data, config, out, progress)


def _pretrain(runner, program, data, config, out, progress) -> list[dict]:
    settings = config.pretrain_settings
    weights = runner.weights()
    dtype = next(iter(weights.values())).dtype
    shadow = to_numpy(program, seed=config.seed, dtype=np.dtype(dtype).name).eval()
    measured = data.test if data.test is not None and data.test.size else data.train
    rows: list[dict] = []
    # an rbm computing with another one's parameters (shares=) is trained as that one
    owners = [layer for layer in program.layers if layer.kind.name == "rbm" and not layer.borrowed]
    for index, layer in enumerate(owners):
        shadow.load(weights)
        sources = [link.source for link in layer.inputs]
        x, held = (entering(shadow, sources, part.inputs) for part in (data.train, measured))
        params = {key: weights[f"{layer.name}.{key}"] for key in layer.params}
        order = np.random.default_rng([config.seed, 1, index])
        state: dict[str, np.ndarray] = {}
        batches = -(-len(x) // settings.batch)
        for epoch in range(settings.epochs):
            shuffled = order.permutation(len(x))
            for start in range(batches):
                step = epoch * batches + start
                part = x[shuffled[start * settings.batch : (start + 1) * settings.batch]]
                draws = np.random.default_rng([config.seed, 2, index, step])
                batch = _batch(part, params, layer, settings, state, draws, step)
                for key, delta in cd_step(batch, settings.lr).items():
                    params[key] += delta.astype(dtype, copy=False)
            row = _measured(layer, epoch + 1, held, params, settings, config.seed, index)
            rows.append(row)
            if progress is not None:
                progress(layer.name, epoch + 1, row)
        weights.update({f"{layer.name}.{key}": value for key, value in params.items()})
    runner.set_weights(weights)
    write_atomic(out / FILE, lambda path: Path(path).write_text(_csv(rows)))
    return rows


def _batch(x, params, layer, settings, state, rng: np.random.Generator, step: int) -> Batch:
    """A CD step's view: the visible units `x` and the rbm's parameters (the torch and NumPy
    runs alike hand it NumPy arrays)."""
    return Batch(
        x,
        None,
        None,
        params["weight"],
        params["bias"],
        params=params,
        layer=layer,
        options=settings,
        rng=rng,
        step=step,
        state=state,
    )


def _measured(layer, epoch: int, x, params, settings, seed: int, index: int) -> dict:
    """The epoch's row: the rbm's reconstruction error and pseudo-likelihood on `x`."""
    draws = np.random.default_rng([seed, 3, index, epoch])  # the pseudo-likelihood's flips
    batch = _batch(x, params, layer, settings, {}, draws, epoch)
    row = {
        "layer": layer.name,
        "epoch": epoch,
        "reconstruction_error": reconstruction_error(batch),
        "pseudo_likelihood": pseudo_likelihood(batch),
    }
    if not math.isfinite(row["reconstruction_error"]):
        raise TrainingStopped(
            "R360",
            f"pretraining rbm '{layer.name}' diverged in its epoch {epoch}: the reconstruction "
            "error is no longer finite",
            f"lower pretrain's lr (now {settings.lr:g}), e.g. pretrain = cd(lr=0.05)",
        )
    return row


def _csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    return text.getvalue()
