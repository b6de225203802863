"""`reshape` and `upsample` as PyTorch defines them: shapes and parameter counts against the same
decoder built from torch.nn, both backends' values (float64) and the NumPy gradients against
torch.reshape and F.interpolate (nearest, and bilinear with align_corners=False), the refusals, a
small convolutional decoder (dense -> reshape -> upsample -> conv) trained alike on both
backends, and each compile target against its backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    TEST_SPECS,
    assert_compiled_torch_equals_to_torch,
    assert_trains_alike,
    import_file,
    spec_inputs,
)
from safetensors.numpy import save_file

import nnspec
from nnspec.backends.init import initial_params
from nnspec.compile import emit
from nnspec.errors import SpecError

torch = pytest.importorskip("torch")
F = torch.nn.functional
nn = torch.nn

SPEC = TEST_SPECS / "ok" / "reshape_upsample.nn"


# ---- shapes and counts ---------------------------------------------------------------------------
def test_shapes_and_parameter_count_are_pytorchs():
    model = nnspec.load(SPEC, "decoder")
    shapes = {layer.name: str(layer.shape) for layer in model.program.layers}
    assert shapes["r"] == "[4, 4, 4]" and shapes["u"] == "[4, 8, 8]"
    assert shapes["v"] == "[256]" and shapes["w"] == "[4, 8, 8]" and shapes["y"] == "[1, 8, 8]"
    by_hand = nn.Sequential(
        nn.Linear(10, 64),
        nn.ReLU(),
        nn.Unflatten(1, (4, 4, 4)),
        nn.Upsample(scale_factor=2),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Unflatten(1, (4, 8, 8)),
        nn.Upsample(scale_factor=1, mode="bilinear"),
        nn.Conv2d(4, 1, 3, padding=1),
        nn.Sigmoid(),
    )
    assert model.program.param_count == sum(p.numel() for p in by_hand.parameters()) == 889
    assert tuple(by_hand(torch.zeros(2, 10)).shape[1:]) == model.program.layer("y").shape.dims


@pytest.mark.parametrize(
    "size, target, want",
    [
        ("64", "[1, 8, 8]", (1, 8, 8)),
        ("[1, 8, 8]", "[64]", (64,)),
        ("[1, 8, 8]", "64", (64,)),
        ("[2, 3, 4]", "[-1, 4]", (6, 4)),
        ("[2, 3, 4]", "[4, -1, 3]", (4, 2, 3)),
    ],
)
def test_reshape_gives_the_shape_with_the_rest_filled_in(size, target, want):
    model = nnspec.loads(f"network n {{ input x: {size}\n reshape r: {target}\n x -> r }}")
    assert model.program.layer("r").shape.dims == want
    assert model.program.param_count == 0


@pytest.mark.parametrize(
    "layer, code, words",
    [
        ("reshape r: [1, 8, 9]", "E401", "cannot reshape [64] (64 values) to [1, 8, 9]"),
        ("reshape r: [-1, 7]", "E401", "to [-1, 7] (7 values times a whole number)"),
        ("reshape r: [1, -1, -1]", "E207", "-1 may stand for one size only"),
        ("reshape r: [0, 64]", "E207", "positive whole numbers (-1 once for the rest)"),
        ("reshape r: [1, 1, 8, 8]", "E207", "not [1, 1, 8, 8]"),
        ("upsample u: 2", "E402", "upsample needs an image [C, H, W], but receives [64]"),
        ("upsample u: 0", "E207", ""),
        ("upsample u: 2, mode=bicubic", "E207", ""),
    ],
)
def test_refusals(layer, code, words):
    with pytest.raises(SpecError) as caught:
        nnspec.loads(f"network n {{ input x: 64\n {layer}\n x -> {layer.split()[1][:-1]} }}")
    assert caught.value.code == code and words in caught.value.message
    assert caught.value.hint


# ---- values and gradients against PyTorch's own functions ---------------------------------------
def _against(spec: str, x: np.ndarray, expected_of):
    """Both backends (float64) on `x` against `expected_of(tensor)`, and the NumPy gradient of
    `x` against torch's for a random output gradient."""
    model = nnspec.loads(spec)
    xt = torch.tensor(x, requires_grad=True)
    expected = expected_of(xt)
    run = model.to_numpy(dtype="float64")
    ours = run(x=x)
    np.testing.assert_allclose(ours, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        theirs = model.to_torch(dtype="float64")(x=torch.tensor(x)).numpy()
    np.testing.assert_allclose(theirs, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    seed = np.random.default_rng(1).standard_normal(ours.shape)
    (expected * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(run.backward(seed)["x"], xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("timed", [False, True], ids=["one value", "every step"])
def test_reshape_is_torch_reshape(timed):
    seq = ", seq" if timed else ""
    spec = f"network n {{ input x: [2, 3, 4]{seq}\n reshape r: [4, -1, 2]\n x -> r }}"
    lead = (3, 5) if timed else (3,)
    x = np.random.default_rng(0).standard_normal((*lead, 2, 3, 4))
    _against(spec, x, lambda t: torch.reshape(t, (*lead, 4, 3, 2)))


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("factor", [1, 2, 3])
def test_upsample_is_f_interpolate(mode, factor):
    spec = f"network n {{ input x: [2, 3, 5]\n upsample u: {factor}, mode={mode}\n x -> u }}"
    x = np.random.default_rng(factor).standard_normal((3, 2, 3, 5))
    extra = {"align_corners": False} if mode == "bilinear" else {}
    _against(spec, x, lambda t: F.interpolate(t, scale_factor=factor, mode=mode, **extra))


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample_over_time_upsamples_every_step(mode):
    spec = f"network n {{ input x: [1, 4, 3], seq\n upsample u: 2, mode={mode}\n x -> u }}"
    x = np.random.default_rng(7).standard_normal((2, 3, 1, 4, 3))  # [B, T, C, H, W]
    extra = {"align_corners": False} if mode == "bilinear" else {}

    def expected(t):
        frames = F.interpolate(t.flatten(0, 1), scale_factor=2, mode=mode, **extra)
        return frames.unflatten(0, (2, 3))

    _against(spec, x, expected)


# ---- a convolutional decoder that trains ------------------------------------------------------
DECODER = """
network decoder "digits through a code of 16 and back up: dense, reshape, upsample, conv" {
    input    x: [1, 8, 8]
    flatten  f
    dense    code: 16, act=tanh
    dense    d: 64, act=relu
    reshape  r: [4, 4, 4]
    upsample u: 2
    conv     y: 1, kernel=3, padding=same, act=sigmoid
    x -> f -> code -> d -> r -> u -> y
}

train {
    data      = digits
    target    = input
    split     = 0.2
    loss      = bce
    optimizer = adam(lr=1e-2)
    batch     = 64
    epochs    = 3
    seed      = 0
}
"""


@pytest.mark.slow
def test_a_decoder_trains_alike_on_both_backends(tmp_path):
    ours_history, theirs_history = assert_trains_alike(nnspec.loads(DECODER), tmp_path)
    assert len(ours_history) == len(theirs_history) == 3
    assert ours_history[-1]["loss"] < ours_history[0]["loss"]  # it learns, on both alike


# ---- compiled ---------------------------------------------------------------------------------
NETWORKS = ["decoder", "frames"]


def _case(network: str):
    """The clean spec's network, its parameters drawn from seed 3 and a float32 batch of 3
    (sequences of 4 steps)."""
    model = nnspec.load(SPEC, network)
    params = initial_params(model.program, 3)
    (name,) = model.program.inputs
    x = spec_inputs(model.program, 3, 4, seed=5)[name].astype(np.float32)
    return model, params, {name: x}


def _numpy_backend(model, params, x):
    run = model.to_numpy()
    run.load(params)
    return run.eval()(**x)


@pytest.mark.slow
@pytest.mark.parametrize("network", NETWORKS)
def test_compiled_to_torch_equals_the_torch_backend(tmp_path, network):
    model, params, x = _case(network)
    assert_compiled_torch_equals_to_torch(tmp_path, model, params, x)


@pytest.mark.slow
@pytest.mark.parametrize("network", NETWORKS)
def test_compiled_to_numpy_equals_the_numpy_backend(tmp_path, network):
    model, params, x = _case(network)
    (tmp_path / "net.py").write_bytes(emit(model, "numpy", params))
    save_file(params, str(tmp_path / "net.safetensors"))
    got = import_file(tmp_path / "net.py").load(tmp_path / "net.safetensors")(**x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _numpy_backend(model, params, x), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("network", NETWORKS)
def test_compiled_to_onnx_equals_the_numpy_backend(network):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, params, x = _case(network)
    data = emit(model, "onnx", params)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    ops = {node.op_type for node in proto.graph.node}
    assert "Reshape" in ops and ("Resize" in ops) == (network == "decoder")  # nearest: Resize
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, x)
    want = _numpy_backend(model, params, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
