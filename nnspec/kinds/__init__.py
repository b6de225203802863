"""The registry of layer kinds: every kind declared once, found by name.

Each family module lists its kinds in `KINDS`; backends and the drawing look kinds
up here, and the tests fail when one of them lacks a kind.
"""

from __future__ import annotations

from . import (
    activation,
    attention,
    boltzmann,
    capsules,
    conv,
    dense,
    dnc,
    generative,
    graph,
    hopfield,
    io,
    markov,
    memory,
    merge,
    norm,
    radial,
    rbm,
    recurrent,
    reservoir,
    som,
    spiking,
)
from .base import CELLS, Cell, Kind, Options, Param, Shape, ShapeError, concat_features

FAMILIES = (
    io,
    dense,
    conv,
    norm,
    merge,
    recurrent,
    attention,
    graph,
    spiking,
    reservoir,
    generative,
    radial,
    markov,
    rbm,
    boltzmann,
    som,
    hopfield,
    capsules,
    memory,
    dnc,
    activation,
)

REGISTRY: dict[str, Kind] = {kind.name: kind for family in FAMILIES for kind in family.KINDS}

# the kinds a spec may name (internal ones are made by the compiler)
SPEC_KINDS = frozenset(name for name, kind in REGISTRY.items() if not kind.internal)

# names PyTorch and Keras users reach for that are not kinds here, with what to write instead
# (a close spelling would otherwise suggest an unrelated kind: 'maxpool' -> 'pool')
INSTEAD: dict[str, str] = {
    "linear_layer": "write 'dense'",
    "fc": "write 'dense'",
    "conv2d": "write 'conv'",
    "convtranspose2d": "write 'deconv'",
    "maxpool": "write 'pool p: max, size=2'",
    "maxpool2d": "write 'pool p: max, size=2'",
    "avgpool": "write 'pool p: avg, size=2'",
    "avgpool2d": "write 'pool p: avg, size=2'",
    "batchnorm2d": "write 'batchnorm'",
    "multiheadattention": "write 'attention' (heads=N)",
}

__all__ = [
    "CELLS",
    "Cell",
    "INSTEAD",
    "Kind",
    "Options",
    "Param",
    "REGISTRY",
    "SPEC_KINDS",
    "Shape",
    "ShapeError",
    "concat_features",
]
