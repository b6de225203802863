"""Shared test helpers: where the spec folders are; the backends to train on."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SPECS = ROOT / "specs"
TEST_SPECS = Path(__file__).resolve().parent / "specs"

HAS_TORCH = importlib.util.find_spec("torch") is not None
BACKENDS = [
    pytest.param(
        "torch", marks=pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
    ),
    "numpy",
]


def spec_inputs(
    program, batch: int = 3, steps: int = 4, seed: int = 0, edge_threshold: float = 0.5
) -> dict:
    """NumPy inputs for any network: token numbers for embeddings, 0/1 adjacency for graphs, normal values otherwise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data = {}
    for name in program.inputs:
        layer = program.layer(name)
        shape = (
            (batch,)
            + ((layer.shape.steps or steps,) if layer.shape.timed else ())
            + layer.shape.dims
        )
        readers = [r for r in program.layers if any(link.source == name for link in r.inputs)]
        embeddings = [r.options.vocabulary for r in readers if r.kind.name == "embedding"]
        if embeddings:
            data[name] = rng.integers(0, min(embeddings), shape).astype(float)
        elif any(
            link.source == name and link.port == "adjacency" for r in readers for link in r.inputs
        ):
            data[name] = (rng.random(shape) > edge_threshold).astype(float)
        else:
            data[name] = rng.standard_normal(shape)
    return data
