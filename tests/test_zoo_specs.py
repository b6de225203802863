"""Every bundled spec with a train section trains to its own expectations, on each backend.

The zoo's specs in specs/ say what they should reach (`expect accuracy >= 0.97`,
`expect loss <= 0.02`, and for the specs that show a failure, such as drn_plain.nn or
rnn_adding.nn, `expect accuracy <= 0.3`). This trains each one as `nnspec train SPEC --backend B`
would, with the spec's own seed, and checks every expectation. Each spec trains in well under a
minute on two CPU cores; its run is shared with the other tests that train the same spec alike
(the `trained` fixture in conftest.py).
"""

from pathlib import Path

import pytest
from conftest import BACKENDS, ROOT, SPECS, spec_models


def _trained_specs() -> list[Path]:
    """The specs in specs/ whose file holds a train section (a GAN's section names its two
    networks)."""
    return [
        path
        for path in sorted(SPECS.glob("*.nn"))
        if any(model.train_spec is not None for model in spec_models(path))
    ]


TRAINED = _trained_specs()


def test_the_zoo_has_specs_that_train():
    names = {path.stem for path in TRAINED}
    assert {
        "ff",
        "dff",
        "lenet",
        "drn",
        "drn_plain",
        "elman",
        "jordan",
        "rnn",
        "lstm",
        "gru",
        "rnn_adding",
        "autoencoder",
        "boltzmann",
        "sae",
        "dae",
        "dn",
        "elm",
        "esn",
        "lsm",
        "dnc",
        "vae",
        "attention",
        "gcn",
        "snn",
        "hopfield",
        "hopfield_capacity",
        "markov",
        "rbm",
        "dbn",
        "som",
        "rbf",
        "rbf_xor",
    } <= names


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", TRAINED, ids=lambda p: p.stem)
def test_spec_trains_to_its_expectations(path: Path, backend: str, trained):
    result = trained(path, backend)
    assert result.expectations, f"{path.relative_to(ROOT)} has a train section but no 'expect' line"
    missed = [
        f"expect {e.metric} {e.op} {e.wanted:g}, reached {e.reached:.4g}"
        for e in result.expectations
        if not e.met
    ]
    reached = ", ".join(f"{name} {value:.4g}" for name, value in sorted(result.metrics.items()))
    assert not missed, (
        f"{path.relative_to(ROOT)} on {backend}: "
        + "; ".join(missed)
        + f" (all metrics: {reached})"
    )
    assert result.passed
