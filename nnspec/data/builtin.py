"""The built-in datasets, one builder per name: `BUILTIN[name](rng, steps) -> Examples | Graph`.

`rng` is the NumPy generator drawn from the spec's seed; `steps` is the sequence length the
network's input fixes (`seq=T`), or None for the dataset's default. Each builder takes a few
milliseconds; only `digits` reads a file (shipped in this package, see LICENSE-digits.txt).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from .boltzmann import encoder
from .examples import F32, DataError, Examples, Graph
from .markov import weather
from .nudged import digits_nudged
from .patterns import patterns
from .shapes import shapes

HERE = Path(__file__).resolve().parent


# ---- truth tables --------------------------------------------------------------------------
TRUTH = {
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "nand": (1, 1, 1, 0),
    "nor": (1, 0, 0, 0),
    "xor": (0, 1, 1, 0),
}


def truth_table(name: str, rng: np.random.Generator, steps: int | None) -> Examples:
    """x: the four rows of two bits `[4, 2]` (00, 01, 10, 11);
    y: the gate's bit `[4]`, two classes."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=F32)
    return Examples(x, np.array(TRUTH[name], dtype=np.int64), classes=2)


def negation(rng: np.random.Generator, steps: int | None) -> Examples:
    """x: `[2, 1]` (0, 1); y: the negated bit `[2]`, two classes."""
    return Examples(np.array([[0], [1]], dtype=F32), np.array([1, 0], dtype=np.int64), classes=2)


# ---- images ---------------------------------------------------------------------------------
def digits(rng: np.random.Generator, steps: int | None) -> Examples:
    """The UCI 8x8 handwritten digits: x `[1797, 8, 8]` in [0, 1] (16 grey levels / 16);
    y the digit `[1797]`."""
    with np.load(HERE / "digits.npz") as stored:
        images, labels = stored["images"], stored["labels"]
    return Examples(images.astype(F32) / 16, labels.astype(np.int64), classes=10)


def digits_by_class(rng: np.random.Generator, steps: int | None) -> Examples:
    """The digits the other way round, for networks that draw a digit from its class: x the
    one-hot class `[1797, 10]`, y the image `[1797, 8, 8]` in [0, 1] (values, not classes).

    One class has many images, so a squared error is least for each class's mean image: on all
    1797 digits that leaves an r2 of 0.42 (a mean squared error of 0.042), the best any network
    can do on this data.
    """
    drawn = digits(rng, steps)
    return Examples(np.eye(10, dtype=F32)[drawn.y], drawn.x)


# ---- sequences ------------------------------------------------------------------------------
def sine(rng: np.random.Generator, steps: int | None, count: int = 512) -> Examples:
    """Noisy sine waves: x `[512, T, 1]` (T = 40 by default), y `[512, T, 1]` the next clean value
    at each step.

    Each wave has its own phase and angular frequency (0.15 to 0.3 radians per step);
    the inputs carry Gaussian noise of standard deviation 0.05.
    """
    length = steps or 40
    omega = rng.uniform(0.15, 0.3, (count, 1))
    phase = rng.uniform(0, 2 * np.pi, (count, 1))
    t = np.arange(length + 1)[None, :]
    wave = np.sin(omega * t + phase)
    x = wave[:, :-1] + rng.normal(0, 0.05, (count, length))
    return Examples(
        x[..., None].astype(F32), wave[:, 1:, None].astype(F32), timed=True, per_step=True
    )


def mackey_glass(
    rng: np.random.Generator,
    steps: int | None,
    length: int = 2000,
    tau: int = 17,
    units: int | None = None,
) -> Examples:
    """The Mackey-Glass series (tau = 17, chaotic), one sequence: x `[1, length - 1, 1]` the
    series, y `[1, length - 1, 1]` its next value at each step (one-step forecasting).

    dx/dt = 0.2 x(t - tau) / (1 + x(t - tau)^10) - 0.1 x(t), stepped by one unit of time with
    reservoirpy's `mackey_glass` scheme (x(t - tau) held over the step), from x = 1.2 after a
    history of tau values 1.2 + U(-0.1, 0.1) drawn by reservoirpy's default seed (5555), so the
    series equals reservoirpy's `mackey_glass(length)` whatever the spec's seed. `split` holds out
    the series' last steps (one sequence splits along time; docs/data.md)."""
    history = 1.2 + 0.2 * (np.random.default_rng(5555).random(tau) - 0.5)
    series = np.empty(tau + length)
    series[:tau] = history
    value = 1.2
    for t in range(tau, tau + length):
        series[t] = value
        value = _mackey_glass_step(value, series[t - tau])
    series = series[tau:]
    x, y = series[None, :-1, None], series[None, 1:, None]
    return Examples(x.astype(F32), y.astype(F32), timed=True, per_step=True)


def _mackey_glass_step(x: float, delayed: float, a=0.2, b=0.1, n=10) -> float:
    """One unit of time of the Mackey-Glass equation as reservoirpy steps it: four increments
    from the slope at x, the delayed term held, averaged (k1 + k2 + k3 + k4) / 6."""
    k1 = -b * x + a * delayed / (1 + delayed**n)
    k2 = 2 * k1 - b * k1
    k3 = 2 * k1 - b * k2
    k4 = k1 - b * k3
    return x + (k1 + k2 + k3 + k4) / 6


def adding(rng: np.random.Generator, steps: int | None, count: int = 1000) -> Examples:
    """The adding problem: x `[1000, T, 2]` (T = 50 by default), y `[1000, 1]`.

    At each step a random number in [0, 1) and a marker; exactly two steps are marked, one in
    each half of the sequence; the target is the sum of the two marked numbers.
    """
    length = steps or 50
    if length < 2:
        raise DataError(
            "E506",
            f"the adding problem needs sequences of at least 2 steps, not {length}",
            "declare the input as 'seq' or 'seq=50'",
        )
    values = rng.random((count, length))
    first = rng.integers(0, length // 2, count)
    second = rng.integers(length // 2, length, count)
    marks = np.zeros((count, length))
    marks[np.arange(count), first] = marks[np.arange(count), second] = 1
    target = values[np.arange(count), first] + values[np.arange(count), second]
    return Examples(
        np.stack([values, marks], axis=-1).astype(F32), target[:, None].astype(F32), timed=True
    )


def majority(
    rng: np.random.Generator, steps: int | None, count: int = 2000, vocabulary: int = 32
) -> Examples:
    """Which digit token is the most frequent? x `[2000, T, 1]` tokens in 0..31 (T = 16 by default),
    y `[2000]`, 10 classes.

    Tokens 0..9 are digits, 10..31 filler. The answer appears k times, two other digits
    fewer times each, filler fills the rest, in random order. The answer does not depend on
    the order, so networks without positions (attention, then a mean) can learn it.
    """
    length = steps or 16
    most = length * 5 // 16
    if most < 2:
        raise DataError(
            "E506",
            f"the majority task needs sequences of at least 7 tokens, not {length}",
            "declare the input as 'seq=16'",
        )
    answer = rng.integers(0, 10, count)
    k = rng.integers(max(2, most - 2), most + 1, count)
    others = (answer[:, None] + 1 + np.argsort(rng.random((count, 9)), axis=1)[:, :2]) % 10
    m1, m2 = (rng.integers(1, k) for _ in range(2))
    filler = rng.integers(10, vocabulary, (count, length))
    pos = np.arange(length)[None, :]
    col = lambda v: v[:, None]  # noqa: E731
    tokens = np.where(
        pos < col(k),
        col(answer),
        np.where(
            pos < col(k + m1),
            others[:, :1],
            np.where(pos < col(k + m1 + m2), others[:, 1:], filler),
        ),
    )
    tokens = np.take_along_axis(tokens, np.argsort(rng.random((count, length)), axis=1), axis=1)
    return Examples(
        tokens[..., None].astype(F32),
        answer.astype(np.int64),
        classes=10,
        timed=True,
        info={"vocabulary": vocabulary},
    )


def recall(
    rng: np.random.Generator, steps: int | None, count: int = 2000, keys: int = 16, values: int = 10
) -> Examples:
    """Recall the value stored under a key: x `[2000, T, 27]` (T = 12 by default),
    y `[2000]`, 10 classes.

    Each of the first T - 1 steps stores a pair: a key (one-hot of 16, distinct within a sequence)
    and a value (one-hot of 10); the last step asks for one of the stored keys (its one-hot, no
    value) and sets the query flag, the 27th feature. The answer is the value stored under that
    key: found by matching the query's key against every step's, which is what attention does.
    """
    length = steps or 12
    if not 2 <= length <= keys + 1:
        raise DataError(
            "E506",
            f"the recall task needs sequences of 2 to {keys + 1} steps ({keys} keys), not {length}",
            "declare the input as 'seq=12'",
        )
    pairs = length - 1
    stored = np.argsort(rng.random((count, keys)), axis=1)[:, :pairs]  # distinct keys per sequence
    kept = rng.integers(0, values, (count, pairs))
    asked = rng.integers(0, pairs, count)
    x = np.zeros((count, length, keys + values + 1), dtype=F32)
    n, t = np.arange(count)[:, None], np.arange(pairs)[None, :]
    x[n, t, stored] = 1
    x[n, t, keys + kept] = 1
    x[np.arange(count), -1, stored[np.arange(count), asked]] = 1
    x[:, -1, -1] = 1
    return Examples(
        x,
        kept[np.arange(count), asked].astype(np.int64),
        classes=values,
        timed=True,
        info={"keys": keys, "values": values},
    )


def reverse(
    rng: np.random.Generator, steps: int | None, count: int = 2000, vocabulary: int = 8
) -> Examples:
    """Reverse a sequence of tokens: x `[2000, T, 8]` (T = 8 by default), one-hot tokens drawn
    uniformly from 8; y `[2000, T]`, the same tokens last to first (`y[:, t] = x[:, T - 1 - t]`),
    a class for every step, 8 classes.

    Step t's answer is T - 1 - t steps away, so a network that reads the whole sequence once
    must carry every token to its place; one that looks up the token at position T - 1 - t, as
    an attention decoder does at every step, need not.
    """
    length = steps or 8
    if length < 2:
        raise DataError(
            "E506",
            f"the reverse task needs sequences of at least 2 tokens, not {length}",
            "declare the input as 'seq=8'",
        )
    tokens = rng.integers(0, vocabulary, (count, length))
    x = np.eye(vocabulary, dtype=F32)[tokens]
    return Examples(
        x,
        tokens[:, ::-1].astype(np.int64),
        classes=vocabulary,
        timed=True,
        info={"vocabulary": vocabulary},
    )


def copy(
    rng: np.random.Generator,
    steps: int | None,
    count: int = 1000,
    length: int = 5,
    min_length: int = 1,
    units: int = 9,
) -> Examples:
    """The copy task of the neural Turing machine: x `[1000, T, units]`, y `[1000, T, units - 1]`,
    T = 2 length + 1 by default (sequences of 1 to 5 vectors of 8 bits).

    Each sequence has L vectors of `units - 1` random bits (L drawn from `min_length` to
    `length`), then the delimiter (the last channel, alone), then L empty steps in which the
    target is the sequence again; zeros after, to T. The target is zero everywhere else.
    """
    bits = units - 1
    longest = 2 * length + 1
    total = steps or longest
    if bits < 1 or min_length > length or total < longest:
        raise DataError(
            "E506",
            f"the copy task needs at least 2 channels, min_length <= length and sequences of at "
            f"least 2 length + 1 = {longest} steps; it has {units} channels, min_length "
            f"{min_length}, length {length} and {total} steps",
            "declare the input as 'seq' (any length) and write copy(length=5, min_length=1)",
        )
    x = np.zeros((count, total, units), dtype=F32)
    y = np.zeros((count, total, bits), dtype=F32)
    lengths = rng.integers(min_length, length + 1, count)
    vectors = rng.integers(0, 2, (count, length, bits)).astype(F32)
    for n, size in enumerate(lengths):
        x[n, :size, :bits] = vectors[n, :size]
        x[n, size, bits] = 1.0
        y[n, size + 1 : 2 * size + 1] = vectors[n, :size]
    return Examples(x, y, timed=True, per_step=True, info={"lengths": lengths.tolist()})


# ---- graphs ---------------------------------------------------------------------------------
def karate(rng: np.random.Generator, steps: int | None) -> Graph:
    """Zachary's karate club (networkx): 34 members, identity features `[34, 34]`,
    adjacency `[34, 34]` (0/1, symmetric, no self-loops), labels `[34]`: 0 for Mr. Hi's faction,
    1 for the Officer's."""
    import networkx as nx

    graph = nx.karate_club_graph()
    nodes = sorted(graph.nodes)
    adjacency = nx.to_numpy_array(graph, nodelist=nodes, weight=None, dtype=F32)
    labels = np.array([graph.nodes[n]["club"] != "Mr. Hi" for n in nodes], dtype=np.int64)
    return Graph(np.eye(len(nodes), dtype=F32), adjacency, labels, classes=2)


# ---- points in the plane --------------------------------------------------------------------
def _balanced(rng: np.random.Generator, count: int, classes: int) -> np.ndarray:
    """Class labels `[count]`, as even as they can be, in random order."""
    return rng.permutation(np.arange(count) % classes).astype(np.int64)


def _points(xy: np.ndarray, labels: np.ndarray, classes: int, **info) -> Examples:
    return Examples(xy.astype(F32), labels, classes=classes, info=info)


def moons(rng: np.random.Generator, steps: int | None, count: int = 512) -> Examples:
    """Two interleaving half circles: x `[512, 2]`, y `[512]`, 2 classes; noise 0.1."""
    y = _balanced(rng, count, 2)
    t = rng.uniform(0, np.pi, count)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    xy = np.where(y[:, None] == 0, upper, lower) + rng.normal(0, 0.1, (count, 2))
    return _points(xy, y, 2)


def spirals(rng: np.random.Generator, steps: int | None, count: int = 512) -> Examples:
    """Two interleaved spirals of one and a half turns, radius up to 1:
    x `[512, 2]`, y `[512]`, 2 classes; noise 0.03."""
    y = _balanced(rng, count, 2)
    t = np.sqrt(rng.random(count))
    angle = 3 * np.pi * t + np.pi * y
    xy = t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1) + rng.normal(
        0, 0.03, (count, 2)
    )
    return _points(xy, y, 2)


def circles(rng: np.random.Generator, steps: int | None, count: int = 512) -> Examples:
    """A circle of radius 0.5 inside one of radius 1:
    x `[512, 2]`, y `[512]` (1 = inner), 2 classes; noise 0.05."""
    y = _balanced(rng, count, 2)
    angle = rng.uniform(0, 2 * np.pi, count)
    radius = np.where(y == 1, 0.5, 1.0)[:, None]
    xy = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1) + rng.normal(0, 0.05, (count, 2))
    return _points(xy, y, 2)


def blobs(rng: np.random.Generator, steps: int | None, count: int = 512) -> Examples:
    """Three Gaussian blobs (standard deviation 0.6) centred 2 from the origin, 120 degrees apart:
    x `[512, 2]`, y `[512]`."""
    y = _balanced(rng, count, 3)
    angle = np.pi / 2 + 2 * np.pi / 3 * np.arange(3)
    centres = 2 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return _points(centres[y] + rng.normal(0, 0.6, (count, 2)), y, 3, centres=centres.astype(F32))


def ring(rng: np.random.Generator, steps: int | None, count: int = 2048) -> Examples:
    """A ring of 8 Gaussians (radius 2, standard deviation 0.02), the GAN benchmark: x `[2048, 2]`,
    y `[2048]` the mode of each point; `info` holds the `centres` `[8, 2]` and the `std`."""
    y = _balanced(rng, count, 8)
    angle = 2 * np.pi / 8 * np.arange(8)
    centres = 2 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return _points(
        centres[y] + rng.normal(0, 0.02, (count, 2)), y, 8, centres=centres.astype(F32), std=0.02
    )


# ---- associations ---------------------------------------------------------------------------
def associations(rng: np.random.Generator, steps: int | None) -> Examples:
    """Eight fixed pairs of bipolar (+1/-1) patterns for an associative memory (Hebb's rule):
    x `[8, 16]`, y `[8, 8]`.

    The keys x are rows 1 to 8 of the 16 x 16 Sylvester-Hadamard matrix (entry (r, c) is
    (-1)^popcount(r & c)): mutually orthogonal, eight +1 and eight -1 each. The values y are
    arbitrary 8-value +1/-1 patterns, drawn once from a generator of its own (seed 1949), so the
    pairs are the same for every spec seed. With orthogonal keys, Hebb's outer-product memory
    W = sum_k y_k x_k^T recalls each value exactly: W x_j = 16 y_j. The targets are values, not
    classes.
    """
    rows, cols = np.arange(1, 9)[:, None], np.arange(16)[None, :]
    parity = np.vectorize(lambda v: bin(v).count("1") % 2)(rows & cols)
    keys = 1 - 2 * parity
    values = np.where(np.random.default_rng(1949).random((8, 8)) < 0.5, -1, 1)
    return Examples(keys.astype(F32), values.astype(F32))


Builder = Callable[[np.random.Generator, "int | None"], "Examples | Graph"]

BUILTIN: dict[str, Builder] = {
    **{name: partial(truth_table, name) for name in TRUTH},
    "not": negation,
    "digits": digits,
    "digits_nudged": digits_nudged,
    "digits_by_class": digits_by_class,
    "shapes": shapes,
    "sine": sine,
    "mackey_glass": mackey_glass,
    "adding": adding,
    "majority": majority,
    "recall": recall,
    "reverse": reverse,
    "karate": karate,
    "moons": moons,
    "spirals": spirals,
    "circles": circles,
    "blobs": blobs,
    "ring": ring,
    "associations": associations,
    "encoder": encoder,
    "weather": weather,
    "patterns": patterns,
    "copy": copy,
}
