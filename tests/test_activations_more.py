"""silu, mish, hardtanh and selu (issue 16, item 8): each equals PyTorch's own function (F.silu,
F.mish, F.hardtanh, F.selu), values and gradients in float64, on both backends, as a layer of its
own and as a layer's `act=`; a spec using each checks, has PyTorch's parameter count, trains alike
on both backends, and compiles to every target with the backends' outputs.

The NumPy backend's hand-written derivatives are also checked against finite differences by
tests/test_numpy_backend.py (its tables take every activation of the backend's TABLE).
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
from nnspec.kinds.activation import ACTIVATIONS

torch = pytest.importorskip("torch")
F = torch.nn.functional

NEW = {"silu": F.silu, "mish": F.mish, "hardtanh": F.hardtanh, "selu": F.selu}
SPEC = TEST_SPECS / "ok" / "activations_more.nn"
# a grid through every kink (hardtanh's ends at -1 and 1, selu's 0), and values far out where
# exp, sigmoid and softplus saturate
GRID = np.concatenate([np.linspace(-6.0, 6.0, 49), [-40.0, -25.0, -1e-9, 1e-9, 25.0, 40.0]])


def _reference(name: str, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's function at x and the gradient of sum(g * f(x)), in float64."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = NEW[name](xt)
    y.backward(torch.tensor(g))
    return y.detach().numpy(), xt.grad.numpy()


def _on_backend(model, backend: str, params: dict, x: np.ndarray, g: np.ndarray):
    """(output, gradient of sum(g * output) with respect to x, parameters' gradients) of a
    one-input, one-output network in float64."""
    if backend == "numpy":
        run = model.to_numpy(dtype="float64")
        run.load(params)
        y = run(x)
        grads = run.backward(g)
        return y, grads.pop("x"), grads
    net = model.to_torch(dtype="float64")
    net.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    xt = torch.tensor(x, requires_grad=True)
    y = net(xt)
    y.backward(torch.tensor(g))
    grads = {k: p.grad.numpy() for k, p in net.named_parameters()}
    return y.detach().numpy(), xt.grad.numpy(), grads


def test_the_four_are_in_the_registry_with_a_gradient():
    assert {name for name in NEW if ACTIVATIONS[name].differentiable} == set(NEW)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", NEW)
def test_the_layer_equals_pytorchs_function(name, backend):
    model = nnspec.loads(f"network n {{ input x: {GRID.size}; {name} y; x -> y }}")
    x = np.stack([GRID, -GRID, 0.5 * GRID])
    g = np.random.default_rng(0).standard_normal(x.shape)
    y, dx, _ = _on_backend(model, backend, {}, x, g)
    want_y, want_dx = _reference(name, x, g)
    np.testing.assert_allclose(y, want_y, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", NEW)
def test_act_of_a_dense_layer_equals_pytorchs_function(name, backend):
    model = nnspec.loads(f"network n {{ input x: 4; dense y: 6, act={name}; x -> y }}")
    rng = np.random.default_rng(1)
    params = {"y.weight": 2.0 * rng.standard_normal((6, 4)), "y.bias": rng.standard_normal(6)}
    x, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 6))
    y, dx, grads = _on_backend(model, backend, params, x, g)
    xt = torch.tensor(x, requires_grad=True)
    w, b = (torch.tensor(params[k], requires_grad=True) for k in ("y.weight", "y.bias"))
    want = NEW[name](xt @ w.T + b)
    want.backward(torch.tensor(g))
    np.testing.assert_allclose(y, want.detach().numpy(), rtol=1e-13, atol=1e-15)
    for got, expected in ((dx, xt), (grads["y.weight"], w), (grads["y.bias"], b)):
        np.testing.assert_allclose(got, expected.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_float32_saturates_without_warnings_on_the_numpy_backend():
    x = np.array([[-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4]], np.float32)
    for name in NEW:
        run = nnspec.loads(f"network n {{ input x: 7; {name} y; x -> y }}").to_numpy()
        y = run(x)  # warnings are errors in the tests
        dx = run.backward(np.ones_like(x))["x"]
        assert y.dtype == dx.dtype == np.float32, name
        want_y, want_dx = _reference(name, x.astype(np.float64), np.ones(x.shape))
        np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-6, atol=1e-6, err_msg=name)


# ---- a spec as a user writes it ----------------------------------------------------------------
MLP = """network n "every new activation, as act= and as a layer" {
    input  x: 2
    dense  a: 8, act=silu
    mish   m
    dense  b: 8, act=selu
    hardtanh t
    dense  c: 6, act=mish
    selu   s
    dense  d: 6, act=hardtanh
    silu   u
    dense  y: 2, act=softmax
    x -> a -> m -> b -> t -> c -> s -> d -> u -> y
}
train {
    data = moons
    loss = cross_entropy
    optimizer = adam(lr=0.01)
    epochs = 3
    batch = 16
}
"""


def test_the_parameter_count_is_pytorchs():
    model = nnspec.loads(MLP)
    by_hand = torch.nn.Sequential(
        torch.nn.Linear(2, 8),
        torch.nn.SiLU(),
        torch.nn.Mish(),
        torch.nn.Linear(8, 8),
        torch.nn.SELU(),
        torch.nn.Hardtanh(),
        torch.nn.Linear(8, 6),
        torch.nn.Mish(),
        torch.nn.SELU(),
        torch.nn.Linear(6, 6),
        torch.nn.Hardtanh(),
        torch.nn.SiLU(),
        torch.nn.Linear(6, 2),
    )
    assert model.program.param_count == sum(p.numel() for p in by_hand.parameters()) == 206


@pytest.mark.slow
def test_the_spec_trains_alike_on_both_backends(tmp_path):
    ours_history, theirs_history = assert_trains_alike(nnspec.loads(MLP), tmp_path)
    assert len(ours_history) == len(theirs_history) == 3
    assert ours_history[-1]["loss"] < ours_history[0]["loss"]  # it learns, on both alike


# ---- compiled -----------------------------------------------------------------------------------
def _case():
    """The clean spec using all four (an image through a conv, then vectors), its parameters
    drawn from seed 3 and a float32 batch of 3."""
    model = nnspec.load(SPEC)
    params = initial_params(model.program, 3)
    x = spec_inputs(model.program, 3, 4, seed=5)["x"].astype(np.float32) * 3.0
    return model, params, x


@pytest.mark.slow
def test_compiled_to_torch_equals_the_torch_backend(tmp_path):
    model, params, x = _case()
    assert_compiled_torch_equals_to_torch(tmp_path, model, params, {"x": x})


@pytest.mark.slow
def test_compiled_to_numpy_equals_the_numpy_backend(tmp_path):
    model, params, x = _case()
    (tmp_path / "acts.py").write_bytes(emit(model, "numpy", params))
    save_file(params, str(tmp_path / "acts.safetensors"))
    got = import_file(tmp_path / "acts.py").load(tmp_path / "acts.safetensors")(x)
    run = model.to_numpy()
    run.load(params)
    want = run.eval()(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_compiled_to_onnx_equals_the_numpy_backend():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, params, x = _case()
    data = emit(model, "onnx", params)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17  # mish and silu built from ops of opset 17
    ops = {node.op_type for node in proto.graph.node}
    assert {"Selu", "Clip", "Sigmoid", "Tanh"} <= ops and "Mish" not in ops
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x})
    run = model.to_numpy()
    run.load(params)
    np.testing.assert_allclose(got, run.eval()(x), rtol=1e-5, atol=1e-5)
