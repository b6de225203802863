"""What every layer kind declares: options, ports, shape rule, parameter shapes, cell type.

A kind is a small class with typed class attributes and two rules:
`shape(options, x) -> Shape` and `params(options, x) -> {name: Param}`, where `x` is
what enters the layer: one `Shape` (fan-in already concatenated), a dict of port ->
`Shape` for kinds with ports, or a list of (source, `Shape`) for merges.
Rules raise `ShapeError`; the checker turns it into a `SpecError` at the layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


# ---- shapes ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Shape:
    """One example's value at one time step; `timed` adds a time axis of `steps` (None: any length).

    Vectors are `(features,)`, images `(channels, height, width)`, sets of nodes or
    tokens `(items, features)`. Arrays add the batch first: `[B, F]`, `[B, T, F]`, `[B, C, H, W]`.
    """

    dims: tuple[int, ...]
    timed: bool = False
    steps: int | None = None

    @property
    def features(self) -> int:
        return self.dims[self.feature_axis]

    @property
    def feature_axis(self) -> int:
        """Channels for images, the last axis otherwise: the axis that fan-in concatenates."""
        return 0 if len(self.dims) == 3 else len(self.dims) - 1

    @property
    def size(self) -> int:
        return math.prod(self.dims)

    def with_dims(self, *dims: int) -> Shape:
        return Shape(tuple(dims), self.timed, self.steps)

    def static(self) -> Shape:
        return Shape(self.dims)

    def __str__(self) -> str:
        time = [("T" if self.steps is None else str(self.steps))] if self.timed else []
        return "[" + ", ".join(time + [str(d) for d in self.dims]) + "]"


class ShapeError(Exception):
    """A shape rule failed: `option` names the option to point at (None: the layer's name)."""

    def __init__(self, code: str, message: str, hint: str | None = None, option: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint, self.option = code, message, hint, option


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter (or buffer) of a layer, in PyTorch's layout, with how it starts.

    `init` is one of ("uniform", bound), ("range", (a, b)), ("normal", std), ("orthogonal", gain),
    ("constant", value), ("literal", nested tuple of the values), or a reservoir's
    ("sparse_sign", (scale, density)) or ("spectral", (radius, density)) (backends/init.py); the
    defaults mirror PyTorch's modules (`uniform_fan_in` is nn.Linear's and nn.Conv2d's), so both
    backends start alike;
    `init=` on a layer replaces its weights' (`initializers.Init`).
    """

    shape: tuple[int, ...]
    trainable: bool = True
    buffer: bool = False
    init: tuple = ("constant", 0.0)

    @property
    def count(self) -> int:
        return math.prod(self.shape)


def uniform_fan_in(shape: tuple[int, ...], fan_in: int, trainable: bool = True) -> Param:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for linear, convolution and
    recurrent weights."""
    return Param(shape, trainable, init=("uniform", 1.0 / math.sqrt(fan_in)))


def xavier(shape: tuple[int, int]) -> Param:
    """Glorot's uniform: U(+-sqrt(6 / (fan_in + fan_out)))."""
    return Param(shape, init=("uniform", math.sqrt(6.0 / (shape[0] + shape[1]))))


def concat_features(shapes: list[Shape]) -> Shape:
    """Fan-in: values joined along the feature axis; other axes must agree; static values
    follow time."""
    first = shapes[0]
    if len(shapes) == 1:
        return first
    rank = len(first.dims)
    axis = first.feature_axis
    for other in shapes[1:]:
        if len(other.dims) != rank or any(
            a != b for i, (a, b) in enumerate(zip(first.dims, other.dims, strict=True)) if i != axis
        ):
            raise ShapeError(
                "E403",
                "inputs cannot be joined along the feature axis: "
                + ", ".join(str(s) for s in shapes),
                "fan-in concatenates features; the other axes (height, width, items) must agree",
            )
    timed = [s for s in shapes if s.timed]
    steps = {s.steps for s in timed}
    if len(steps - {None}) > 1:
        raise ShapeError(
            "E407",
            "inputs have different numbers of time steps: " + ", ".join(str(s) for s in timed),
        )
    dims = list(first.dims)
    dims[axis] = sum(s.dims[axis] for s in shapes)
    known = steps - {None}
    return Shape(tuple(dims), bool(timed), known.pop() if known else None)


# ---- cell types of the Neural Network Zoo chart --------------------------------------
class Cell(StrEnum):
    """The cell types of the Asimov Institute's chart (fill colour and inner mark in `CELLS`)."""

    INPUT = "input"
    BACKFED_INPUT = "backfed input"
    NOISY_INPUT = "noisy input"
    HIDDEN = "hidden"
    PROBABILISTIC_HIDDEN = "probabilistic hidden"
    SPIKING_HIDDEN = "spiking hidden"
    CAPSULE = "capsule"
    OUTPUT = "output"
    MATCH_INPUT_OUTPUT = "match input output"
    RECURRENT = "recurrent"
    MEMORY = "memory"
    GATED_MEMORY = "gated memory"
    KERNEL = "kernel"
    CONVOLUTION_POOL = "convolution or pool"


# cell type: (fill, inner mark), as measured from the 2019 chart
CELLS: dict[Cell, tuple[str, str | None]] = {
    Cell.INPUT: ("#ffcc00", None),
    Cell.BACKFED_INPUT: ("#ffcc00", "circle"),
    Cell.NOISY_INPUT: ("#ffcc00", "triangle"),
    Cell.HIDDEN: ("#66cc00", None),
    Cell.PROBABILISTIC_HIDDEN: ("#66cc00", "circle"),
    Cell.SPIKING_HIDDEN: ("#66cc00", "triangle"),
    Cell.CAPSULE: ("#66cc00", "square"),
    Cell.OUTPUT: ("#ff6600", None),
    Cell.MATCH_INPUT_OUTPUT: ("#ff6600", "circle"),
    Cell.RECURRENT: ("#0099ff", None),
    Cell.MEMORY: ("#0099ff", "circle"),
    Cell.GATED_MEMORY: ("#0099ff", "triangle"),
    Cell.KERNEL: ("#ff99ff", None),
    Cell.CONVOLUTION_POOL: ("#ff99ff", "circle"),
}


# ---- options -------------------------------------------------------------------------------
def integral_float_to_int(value: Any) -> Any:
    """Accept 1e3 where a count is expected; leave everything else to strict validation."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


def int_to_float(value: Any) -> Any:
    """Accept an integer where a real number is expected (never a bool)."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


Count = Annotated[int, BeforeValidator(integral_float_to_int), Field(ge=1)]
Real = Annotated[float, BeforeValidator(int_to_float)]
Fraction = Annotated[float, BeforeValidator(int_to_float), Field(ge=0.0, lt=1.0)]


@dataclass(frozen=True, slots=True)
class Hint:
    """What to write instead when a value is out of range (E207), declared with the option:
    `units: Annotated[Count, Hint("a layer needs at least one unit")]`."""

    text: str


Units = Annotated[Count, Hint("a layer needs at least one unit")]


class LiteralValues:
    """Marks an option that holds literal values (weights, biases): summaries show it as [...]."""


LITERAL_VALUES = LiteralValues()
Matrix = tuple[tuple[Real, ...], ...]  # literal rows: `weights=[[1, 1], [-1, -1]]`


class Options(BaseModel):
    """Base of every kind's options: immutable, strict, and no unknown keys."""

    # defer_build: a kind's validator is built when a spec first uses it, not at import (most
    # specs use a few of the ~80 kinds: `nnspec check` starts 40 ms sooner)
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True)


class NoOptions(Options):
    pass


class Kind:
    """One layer kind. Subclasses set the class attributes and override the rules they need.

    The subclass's docstring is the kind's documentation (the docs' tables of kinds are made
    from it): its first line says what the layer computes, with its input and output shapes.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    cell: ClassVar[Cell] = Cell.HIDDEN
    Options: ClassVar[type[Options]] = NoOptions
    # options filled by positional values, in order
    positional: ClassVar[tuple[str, ...]] = ()
    # boolean options that may be written bare: `frozen`, `seq`
    flags: ClassVar[tuple[str, ...]] = ()
    # named inputs; () means one input, fan-in concatenated
    ports: ClassVar[tuple[str, ...]] = ()
    # the port an unnamed link feeds (None: links must name a port)
    default_port: ClassVar[str | None] = None
    # ports read as one whole value, never step by step nor repeated along time (a recurrent
    # layer's initial `state`); a kind with them takes its unnamed links as its main input,
    # joined, under the key None
    side_ports: ClassVar[tuple[str, ...]] = ()
    merges: ClassVar[bool] = False  # add/mul/concat: inputs arrive as a list, not concatenated
    source: ClassVar[bool] = False  # `input`: receives no links
    stateful: ClassVar[bool] = False  # keeps its own state from step to step
    needs_time: ClassVar[bool] = False  # only meaningful over time steps
    whole_sequence: ClassVar[bool] = False  # sees every step at once (cannot sit on a ~> cycle)
    internal: ClassVar[bool] = False  # made by the compiler, never written in a spec
    # how the zoo chart lays out a network built on this kind: in columns of cells, as a ring
    # with every pair of cells linked (Markov chain, Hopfield and Boltzmann networks), or as a
    # grid of cells that every input links to (a Kohonen map), or as a 3 x 4 block of randomly
    # and sparsely linked cells (a reservoir: ESN, LSM, ELM); the drawing reads it
    drawn_as: ClassVar[Literal["columns", "ring", "grid", "block"]] = "columns"
    # parameters the forward never reads (an rbm's visible bias, moved by its rule alone): they
    # take no gradient, so no optimizer moves them, on either backend
    unread: ClassVar[tuple[str, ...]] = ()

    def shape(self, options: Options, x: Any) -> Shape:
        raise NotImplementedError

    def params(self, options: Options, x: Any) -> dict[str, Param]:
        return {}

    @property
    def doc(self) -> tuple[str, str]:
        """(what enters and leaves, what it computes): the docstring's first paragraph and the
        rest, each on one line."""
        first, _, rest = (type(self).__doc__ or "").strip().partition("\n\n")
        return " ".join(first.split()), " ".join(rest.split())

    def __repr__(self) -> str:
        return f"<kind {self.name}>"


def need_rank(kind: str, x: Shape, ranks: tuple[int, ...], hint: str) -> None:
    if len(x.dims) not in ranks:
        words = {1: "a vector", 2: "a set of items [N, F]", 3: "an image [C, H, W]"}
        wanted = " or ".join(words[r] for r in ranks)
        raise ShapeError("E402", f"{kind} needs {wanted}, but receives {x}", hint)
