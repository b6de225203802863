"""batchnorm in training needs two values or more per feature in every batch: a batch of one
example of vectors is R305 before training starts, on both backends, never an internal error."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKENDS

import nnspec
from nnspec.training import train

pytestmark = pytest.mark.slow  # trains

NET = """network n {{
    input x: {size}
    {norm}
    dense y: 2, act=softmax
    x -> b -> {into}y
}}
train {{
    data   = npz("d.npz")
    batch  = {batch}
    epochs = 2
}}
"""


def _run(tmp_path, backend, batch, examples=5, image=False):
    shape = (examples, 1, 2, 2) if image else (examples, 3)
    np.savez(
        tmp_path / "d.npz", x=np.random.default_rng(0).random(shape), y=np.arange(examples) % 2
    )
    spec = tmp_path / "n.nn"
    norm = "batchnorm b\n    flatten f" if image else "batchnorm b"
    size = "[1, 2, 2]" if image else "3"
    spec.write_text(NET.format(size=size, norm=norm, into="f -> " if image else "", batch=batch))
    # overwrite: a test may train several runs in turn into its one folder
    return train(spec, backend=backend, out=tmp_path / "run", overwrite=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "batch, said",
    [
        (2, "the last batch of each epoch holds 1 (5 examples in batches of 2)"),
        (1, "each batch holds 1 example"),
    ],
)
def test_a_batch_of_one_vector_is_refused_before_training(tmp_path, backend, batch, said):
    with pytest.raises(nnspec.NnspecError) as caught:
        _run(tmp_path, backend, batch)
    assert caught.value.code == "R305"
    assert (
        f"batchnorm 'b' needs two values or more per feature in every training batch, but {said}"
        == caught.value.message
    )
    assert "layernorm" in caught.value.hint
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_batches_that_leave_no_single_example_train(tmp_path, backend):
    assert _run(tmp_path, backend, "full").history[-1]["epoch"] == 2
    assert _run(tmp_path, backend, 1, image=True).history[-1]["epoch"] == 2  # 4 values per channel
