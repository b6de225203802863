"""Graph kinds: graph convolution over node features, and readout to one vector."""

from __future__ import annotations

from typing import Literal

from .activation import IDENTITY, Act
from .base import Kind, Options, Param, Shape, ShapeError, Units, xavier
from .initializers import InitOption


class GCNOptions(Options):
    units: Units
    act: Act = IDENTITY
    bias: bool = True
    init: InitOption = None


class GCN(Kind):
    """features `[N, F]`, adjacency `[N, N]` -> `[N, units]`.

    `act(Â @ (x @ W.T) + b)` with `Â = D^-1/2 (A + I) D^-1/2`, `D` the row sums of `A + I`; one
    adjacency `[N, N]` per example.
    """

    name = "gcn"
    family = "graph"
    Options = GCNOptions
    ports = ("features", "adjacency")
    positional = ("units",)
    flags = ("bias",)

    def shape(self, o: GCNOptions, x: dict[str, Shape]) -> Shape:
        missing = [p for p in self.ports if p not in x]
        if missing:
            raise ShapeError(
                "E313",
                f"{{layer}} gets no {missing[0]}",
                f"link a layer to it: 'a -> g.{missing[0]}'",
            )
        features, adjacency = x["features"], x["adjacency"]
        if len(features.dims) != 2:
            raise ShapeError(
                "E402",
                f"the features of {{layer}} must be [nodes, features], not {features}",
                "declare them as 'input x: [34, 34]' (34 nodes with 34 features)",
            )
        nodes = features.dims[0]
        if adjacency.dims != (nodes, nodes):
            raise ShapeError(
                "E401",
                f"{{layer}} has {nodes} nodes but its adjacency is {adjacency}",
                f"give an adjacency of [{nodes}, {nodes}]",
            )
        return features.with_dims(nodes, o.units)

    def params(self, o: GCNOptions, x: dict[str, Shape]) -> dict[str, Param]:
        params = {
            "weight": xavier((o.units, x["features"].dims[1]))
        }  # Glorot, zero bias, as Kipf and Welling
        if o.bias:
            params["bias"] = Param((o.units,))
        return params


class ReadoutOptions(Options):
    mode: Literal["mean", "sum", "max"]


class Readout(Kind):
    """`[N, F]` or `[T, F]` -> `[F]`.

    Mean, sum or max over the items (or over time): axis -2; at an exact tie both backends split
    the gradient evenly among the maxima (`torch.amax`).
    """

    name = "readout"
    family = "graph"
    Options = ReadoutOptions
    positional = ("mode",)
    whole_sequence = True

    def shape(self, o: ReadoutOptions, x: Shape) -> Shape:
        if len(x.dims) == 2 and not x.timed:
            return Shape((x.dims[1],))
        if len(x.dims) == 1 and x.timed:
            return Shape(x.dims)
        raise ShapeError(
            "E402", f"readout needs node features [N, F] or a sequence [T, F], but receives {x}"
        )


KINDS = [GCN(), Readout()]
