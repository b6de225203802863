"""The checked program: every later stage reads a network as this, and nothing before it.

`check.check(graph) -> Program` makes it: layers in one topological order of the `->` links,
each with its kind and options, what enters it, its output shape and its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from .errors import Span
from .kinds import Kind, Options, Param, Shape


@dataclass(frozen=True, slots=True)
class Link:
    """One link into a layer, in file order."""

    source: str
    port: str | None
    delayed: bool


@dataclass(frozen=True)
class Layer:
    """One checked layer: what it is, what enters it, what leaves it, what it holds."""

    name: str
    kind: Kind
    options: Options
    inputs: tuple[Link, ...]
    shape: Shape
    params: dict[str, Param]
    span: Span
    recurrent: bool  # on a cycle through a ~> link: steps through time

    @property
    def param_count(self) -> int:
        return sum(p.count for p in self.params.values() if not p.buffer)

    @property
    def activation(self) -> str:
        """The activation that ends the layer (`identity` when it has none)."""
        if self.kind.family == "activation":
            return self.kind.name
        act = getattr(self.options, "act", None)
        return act.name if act is not None else "identity"


@dataclass(frozen=True)
class Output:
    name: str
    reduce: str | None  # None: every step (or the value, without time); "last"; "mean"
    shape: Shape


@dataclass(frozen=True)
class Program:
    """A checked network: layers in topological order of the `->` links,
    with shapes and parameters."""

    name: str
    description: str | None
    layers: tuple[Layer, ...]
    inputs: tuple[str, ...]
    outputs: tuple[Output, ...]
    timed: bool  # runs step by step
    graph: nx.MultiDiGraph = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {layer.name: layer for layer in self.layers})

    def layer(self, name: str) -> Layer:
        return self._by_name[name]

    @property
    def param_count(self) -> int:
        return sum(layer.param_count for layer in self.layers)

    @property
    def trainable_count(self) -> int:
        return sum(p.count for layer in self.layers for p in layer.params.values() if p.trainable)

    def parameters(self) -> dict[str, Param]:
        """Every parameter and buffer by its full name (`r2.2.b.weight`), in layer order."""
        return {
            f"{layer.name}.{key}": param
            for layer in self.layers
            for key, param in layer.params.items()
        }
