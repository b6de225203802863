"""Resuming a run: `--resume` continues the run a checkpoint belongs to and refuses one that
does not belong (another network, backend or version of the spec, a damaged file)."""

import numpy as np
import pytest
from conftest import BACKENDS
from safetensors.numpy import load_file

import nnspec

BATCHNORM = """\
network bn "a batchnorm between two dense layers" {
    input  x: 2
    dense  h: 8
    batchnorm n
    dense  y: 1, act=sigmoid
    x -> h -> n -> y
}

train {
    data      = xor
    loss      = mse
    optimizer = adam(lr=0.05)
    batch     = 2
    epochs    = 2
    seed      = 0
}
"""


def _spec(folder, text: str = BATCHNORM):
    path = folder / "bn.nn"
    path.write_text(text)
    return path


def _same_weights(a, b) -> bool:
    a, b = (load_file(str(out / "weights.safetensors")) for out in (a, b))
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_network_with_batchnorm_resumes_to_the_weights_of_an_uninterrupted_run(backend, tmp_path):
    spec = _spec(tmp_path)
    nnspec.train(spec, backend=backend, out=tmp_path / "cut")
    resumed = nnspec.train(spec, backend=backend, out=tmp_path / "cut", resume=True, epochs=4)
    whole = nnspec.train(spec, backend=backend, out=tmp_path / "whole", epochs=4)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert resumed.metrics == whole.metrics
    rows = [
        (out / "metrics.csv").read_text().splitlines()
        for out in (tmp_path / "cut", tmp_path / "whole")
    ]
    assert rows[0] == rows[1] and len(rows[0]) == 1 + 4
    assert _same_weights(tmp_path / "cut", tmp_path / "whole")
