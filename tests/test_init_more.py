"""`init=` on more kinds with weights (issue 16, item 8): gcn and lif take it as dense does, each
weight started by PyTorch's nn.init function of that name, biases as without it, the same arrays
on both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nnspec
from nnspec.backends.init import initial_params

SPECS = {
    "gcn": "network g {\n    input f: [8, IN]\n    input a: [8, 8]\n    gcn h: UNITS, INIT\n"
    "    f -> h.features\n    a -> h.adjacency\n}\n",
    "lif": "network s {\n    input x: IN, seq\n    lif h: UNITS, INIT\n    output h: last\n"
    "    x -> h\n}\n",
}


def _model(kind: str, init: str, inputs: int = 256, units: int = 512) -> nnspec.Model:
    text = SPECS[kind].replace("INIT", f"init={init}" if init else "bias")
    return nnspec.loads(text.replace("IN", str(inputs)).replace("UNITS", str(units)))


def _params(kind: str, init: str, inputs: int = 256, units: int = 512) -> dict[str, np.ndarray]:
    return initial_params(_model(kind, init, inputs, units).program, 0)


def _torch(fill, rows: int = 512, cols: int = 256) -> np.ndarray:
    torch.manual_seed(0)
    w = torch.empty(rows, cols, dtype=torch.float64)
    fill(w)
    return w.numpy()


@pytest.mark.parametrize("kind", SPECS)
@pytest.mark.parametrize(
    "init, fill, bound",
    [
        ("xavier", torch.nn.init.xavier_uniform_, math.sqrt(6 / (256 + 512))),
        ("kaiming", torch.nn.init.kaiming_uniform_, math.sqrt(6 / 256)),
    ],
)
def test_uniform_initialisers_are_torchs(kind, init, fill, bound):
    ours = _params(kind, init)["h.weight"].astype(np.float64)
    theirs = _torch(fill)
    assert ours.shape == theirs.shape == (512, 256)
    assert np.abs(ours).max() <= bound and np.abs(ours).max() > 0.99 * bound
    assert ours.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.02)


@pytest.mark.parametrize("kind", SPECS)
def test_normal_zeros_uniform_and_orthogonal(kind):
    normal = _params(kind, "normal(0.02)")["h.weight"]
    assert normal.std() == pytest.approx(_torch(lambda w: w.normal_(0, 0.02)).std(), rel=0.02)
    assert not _params(kind, "zeros")["h.weight"].any()
    uniform = _params(kind, "uniform(-0.1, 0.3)")["h.weight"]
    assert uniform.min() >= np.float32(-0.1) and uniform.max() <= np.float32(0.3)
    w = _params(kind, "orthogonal", 64, 32)["h.weight"].astype(np.float64)  # [32, 64]
    np.testing.assert_allclose(w @ w.T, np.eye(32), atol=1e-5)


@pytest.mark.parametrize("kind", SPECS)
def test_biases_start_as_without_init(kind):
    plain, zeros = (_model(kind, init).program.layer("h").params for init in ("", "zeros"))
    assert zeros["bias"] == plain["bias"]  # the same draw: gcn's zeros, lif's U(+-1/sqrt(F))
    assert zeros["weight"].init == ("constant", 0.0) != plain["weight"].init


@pytest.mark.parametrize("kind", SPECS)
def test_both_backends_start_from_the_same_arrays(kind):
    model = _model(kind, "orthogonal", 6, 4)
    state = model.to_torch().state_dict()
    params = model.to_numpy().params
    for name, value in initial_params(model.program, 0).items():
        np.testing.assert_array_equal(state[name].numpy(), value)
        np.testing.assert_array_equal(params[name], value)


def test_a_bad_initialiser_on_these_kinds_is_E207():
    with pytest.raises(nnspec.SpecError) as caught:
        _model("gcn", "normal(-1)")
    assert caught.value.code == "E207" and "std must be >= 0" in caught.value.message
