"""Radial basis centres from the training data, placed before the first step of a run.

An `rbf` layer with `centres=data` or `centres=kmeans` (nnspec/kinds/radial.py) needs the
training part to know its centres, so they are chosen here, in the training stage, never in the
registry: once, before training starts (a resumed run keeps those of its checkpoint), from the
training part alone (the held-out part never shapes the network), seeded by the section's seed,
and with NumPy alone, so both backends start from the same centres. `eps=nearest` then sets each
unit's eps from the distance to its nearest other centre. After that the layer trains as any
other: its readout by `rule = lstsq`, or everything by backpropagation.

    data     `units` examples drawn without replacement (kept in their order; all of them, in
             order, when `units` is the size of the training part: one centre per example)
    kmeans   Lloyd's k-means: k-means++ seeding (Arthur and Vassilvitskii 2007), then assign each
             example to its nearest centre and move each centre to its examples' mean, until no
             assignment changes (at most 300 rounds); a centre left without examples moves to
             the example farthest from its own centre
"""

from __future__ import annotations

import numpy as np

from ..data.load import Split
from ..kinds.radial import PLACED, nearest_eps
from ..program import Layer, Program
from .stopped import TrainingStopped

ROUNDS = 300  # Lloyd's rounds at most; k-means on a few hundred points settles in tens


def placed_layers(program: Program) -> list[Layer]:
    """The rbf layers whose centres come from the data."""
    return [
        layer
        for layer in program.layers
        if layer.kind.name == "rbf" and layer.options.centres in PLACED and layer.own_params
    ]


def place_centres(runner, program: Program, train: Split, seed: int) -> None:
    """Choose the centres (and eps, for `eps=nearest`) of every placed rbf layer from `train`,
    in the network's order, and put them into `runner`'s weights."""
    layers = placed_layers(program)
    if not layers:
        return
    weights = runner.weights()
    shadow = None  # a NumPy copy of the network, for an rbf that a layer feeds
    for index, layer in enumerate(layers):
        sources = [link.source for link in layer.inputs]
        if all(source in program.inputs for source in sources):
            parts = [train.inputs[source] for source in sources]
        else:
            if shadow is None:  # the NumPy backend loaded only here, not in every torch run
                from ..backends.numpy import to_numpy

                shadow = to_numpy(program, seed=seed, dtype="float64").eval()
            shadow.load(weights)  # with the centres placed so far
            parts = _computed(shadow, layer, sources, train)
        x = np.concatenate(parts, axis=-1).astype(np.float64)
        x = x.reshape(-1, x.shape[-1])  # every item or step of an example is a point
        rng = np.random.default_rng([seed, index])
        centres = choose_centres(x, layer.options.units, layer.options.centres, rng, layer.name)
        key = layer.param_name("centres")
        weights[key] = centres.astype(weights[key].dtype)
        if layer.options.eps == "nearest":
            key = layer.param_name("eps")
            weights[key] = np.asarray(_nearest(centres, layer.name), weights[key].dtype)
    runner.set_weights(weights)


def _computed(shadow, layer: Layer, sources: list[str], train: Split) -> list[np.ndarray]:
    """What the layers feeding `layer` give on the training part."""
    try:
        values = shadow.activations(sources, **train.inputs)
    except ValueError:  # a layer stepped in a ~> loop keeps no whole value
        raise TrainingStopped(
            "R377",
            f"'{layer.name}' takes its centres from the data, but what enters it is computed "
            "step by step in a ~> loop, where nnspec cannot see it before training",
            "write its centres out (centres=[[...], ...]), or feed it from outside the loop",
        ) from None
    return [values[source] for source in sources]


def _nearest(centres: np.ndarray, name: str) -> tuple[float, ...]:
    eps = nearest_eps(tuple(map(tuple, centres.tolist())))
    if eps is None:
        raise TrainingStopped(
            "R376",
            f"two of the centres that '{name}' took from the data coincide, so eps=nearest "
            "would give a unit no width",
            "give eps a number (eps=1.0), or fewer units than the data has distinct examples",
        )
    return eps


def choose_centres(
    x: np.ndarray, units: int, how: str, rng: np.random.Generator, name: str = "rbf"
) -> np.ndarray:
    """`units` centres `[units, d]` for the examples `x` `[n, d]`, by `how` (`data`, `kmeans`)."""
    if len(x) < units:
        raise TrainingStopped(
            "R375",
            f"'{name}' takes {units} centres from the data, but the training part has only "
            f"{len(x)} examples",
            f"give '{name}' at most {len(x)} units, or write its centres out: centres=[[...], ...]",
        )
    if how == "data":
        return x[np.sort(rng.choice(len(x), units, replace=False))].copy()
    return kmeans(x, units, rng)


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Lloyd's k-means of `x` `[n, d]` into `k` clusters: the centres `[k, d]`."""
    centres = _kmeans_plus_plus(x, k, rng)
    assigned = None
    for _ in range(ROUNDS):
        d2 = _squared_distances(x, centres)
        nearest = d2.argmin(1)
        if assigned is not None and np.array_equal(nearest, assigned):
            break
        assigned = nearest
        counts = np.bincount(nearest, minlength=k)
        sums = np.zeros_like(centres)
        np.add.at(sums, nearest, x)
        empty = counts == 0
        centres = np.where(empty[:, None], centres, sums / np.maximum(counts, 1)[:, None])
        gap = d2[np.arange(len(x)), nearest]
        for j in np.flatnonzero(empty):  # the example worst served takes the empty centre
            far = int(gap.argmax())
            centres[j], gap[far] = x[far], 0.0
    return centres


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k first centres: one example at random, then each next with probability proportional to
    its squared distance from the nearest centre chosen so far (any, uniformly, once every
    example is a centre)."""
    chosen = [int(rng.integers(len(x)))]
    closest = _squared_distances(x, x[chosen])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        p = closest / total if total > 0 else np.full(len(x), 1.0 / len(x))
        chosen.append(int(rng.choice(len(x), p=p)))
        closest = np.minimum(closest, _squared_distances(x, x[chosen[-1:]])[:, 0])
    return x[chosen].astype(np.float64)


def _squared_distances(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """x `[n, d]`, c `[k, d]` -> `[n, k]`, from the differences (exact where x is near c)."""
    return ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)
