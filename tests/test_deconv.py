"""The `deconv` kind (transposed convolution), as a user meets it: its shape rule and parameters
against torch.nn.ConvTranspose2d, its errors, the NumPy primitive by finite differences and
against torch.nn.functional.conv_transpose2d (float64, 1e-6 relative), a spec through both
backends, the summary and the drawing, and a few epochs of training on each backend.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import BACKENDS

import nnspec
from nnspec.backends.numpy import autograd
from nnspec.backends.numpy.autograd import Var
from nnspec.backends.numpy.image import conv2d, conv_transpose2d
from nnspec.draw.layout import layout_network
from nnspec.draw.scene import Line
from nnspec.kinds import Cell

torch = pytest.importorskip("torch")
F = torch.nn.functional

EPS = 1e-6  # central differences in float64
RTOL, ATOL = 1e-6, 1e-10

# (input [C, H, W], the spec's options, nn.ConvTranspose2d's arguments past in and out channels)
SETTINGS = {
    "stride 1": ([3, 4, 4], "kernel=3", dict(kernel_size=3)),
    "stride 2": ([2, 4, 5], "kernel=4, stride=2", dict(kernel_size=4, stride=2)),
    "padding": ([2, 5, 5], "kernel=3, padding=1", dict(kernel_size=3, padding=1)),
    "output_padding": (
        [3, 4, 4],
        "kernel=3, stride=2, padding=1, output_padding=1",
        dict(kernel_size=3, stride=2, padding=1, output_padding=1),
    ),
    "non-square kernel, pairs": (
        [2, 3, 6],
        "kernel=[2, 5], stride=[3, 1], padding=[0, 2], output_padding=[2, 0]",
        dict(kernel_size=(2, 5), stride=(3, 1), padding=(0, 2), output_padding=(2, 0)),
    ),
    "no bias": ([1, 2, 2], "kernel=2, stride=2, bias=false", dict(kernel_size=2, stride=2)),
}


def _deconv_spec(dims: list[int], options: str, channels: int = 5) -> str:
    return f"network n {{ input x: {dims}\n deconv d: {channels}, {options}\n x -> d }}"


# ---- the shape rule and the parameters -------------------------------------------------------
@pytest.mark.parametrize("name", SETTINGS)
def test_shape_and_parameters_equal_conv_transpose2d(name):
    dims, options, arguments = SETTINGS[name]
    layer = nnspec.loads(_deconv_spec(dims, options)).program.layer("d")
    bias = "bias=false" not in options
    reference = torch.nn.ConvTranspose2d(dims[0], 5, bias=bias, **arguments)
    y = reference(torch.zeros(1, *dims))
    assert layer.shape.dims == tuple(y.shape[1:])
    assert layer.param_count == sum(p.numel() for p in reference.parameters())
    assert {k: p.shape for k, p in layer.params.items()} == {
        k: tuple(p.shape) for k, p in reference.named_parameters()
    }
    # PyTorch draws weight and bias from U(+-1/sqrt(fan_in)) with ConvTranspose2d's fan-in
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(reference.weight)
    for param in layer.params.values():
        assert param.init == ("uniform", pytest.approx(1 / math.sqrt(fan_in)))


def test_the_drawn_initial_weights_follow_the_declared_bound():
    model = nnspec.loads(_deconv_spec([3, 4, 4], "kernel=[3, 2]", channels=6))
    weight = model.to_numpy(seed=1, dtype="float64").params["d.weight"]
    bound = 1 / math.sqrt(6 * 3 * 2)
    assert weight.shape == (3, 6, 3, 2) and np.abs(weight).max() <= bound
    assert np.abs(weight).max() > 0.9 * bound  # spread over the whole range, not a narrower one


# ---- errors --------------------------------------------------------------------------------------
ERRORS = {
    "output_padding as large as the stride": (
        "network n {\n input x: [2, 4, 4]\n deconv d: 3, kernel=3, stride=2, output_padding=2\n"
        " x -> d\n}",
        "E209",
        (3, "output_padding="),
        "'d' (deconv): output_padding 2 must be smaller than the stride 2 (height)",
    ),
    "output_padding without a stride": (
        "network n {\n input x: [2, 4, 4]\n deconv d: 3, kernel=3, output_padding=[0, 1]\n"
        " x -> d\n}",
        "E209",
        (3, "output_padding="),
        "'d' (deconv): output_padding 1 must be smaller than the stride 1 (width)",
    ),
    "a kernel of 0": (
        "network n {\n input x: [2, 4, 4]\n deconv d: 3, kernel=0\n x -> d\n}",
        "E207",
        (3, "kernel="),
        "kernel of 'd' must be >= 1, got 0",
    ),
    "an input that is not an image": (
        "network n {\n input x: 16\n deconv d: 3, kernel=3\n x -> d\n}",
        "E402",
        (3, "d:"),
        "deconv needs an image [C, H, W], but receives [16]",
    ),
    "padding that leaves nothing": (
        "network n {\n input x: [2, 2, 2]\n deconv d: 3, kernel=2, padding=2\n x -> d\n}",
        "E404",
        (3, "padding="),
        "'d' (deconv): padding 2 leaves no height: (2 - 1) * 1 - 2 * 2 + 2 + 0 = -1",
    ),
    "no kernel": (
        "network n {\n input x: [2, 4, 4]\n deconv d: 3\n x -> d\n}",
        "E205",
        (3, "d:"),
        "deconv 'd' needs kernel",
    ),
}


@pytest.mark.parametrize("name", ERRORS)
def test_a_bad_deconv_is_a_spec_error_at_the_option(name):
    text, code, (line, before), message = ERRORS[name]
    # the caret: the value after `before` ("kernel=": its value), or the layer's name ("d:")
    source_line = text.splitlines()[line - 1]
    column = source_line.index(before) + (1 if before == "d:" else len(before) + 1)
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    error = caught.value
    assert (error.code, error.message) == (code, message)
    assert (error.span.line, error.span.column) == (line, column)
    assert error.hint  # every diagnostic says what to do


# ---- the NumPy primitive -------------------------------------------------------------------------
def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# (stride, padding, output_padding, kernel)
PRIMITIVE_SETTINGS = {
    "stride 1": ((1, 1), (0, 0), (0, 0), (3, 3)),
    "stride 2, padding, output_padding": ((2, 2), (1, 1), (1, 1), (3, 3)),
    "mixed strides, non-square kernel": ((2, 3), (0, 1), (1, 2), (2, 4)),
    "output_padding past the padding": ((3, 1), (0, 0), (2, 0), (2, 2)),
    "padding past the kernel": ((3, 2), (2, 1), (1, 0), (5, 2)),
}


def _primitive(setting: str, bias: bool = True):
    stride, padding, output_padding, kernel = PRIMITIVE_SETTINGS[setting]
    arrays = [normal(2, 3, 3, 4), normal(3, 2, *kernel, seed=1)] + (
        [normal(2, seed=2)] if bias else []
    )

    def fn(x, w, b=None):
        return conv_transpose2d(x, w, b, stride, padding, output_padding)

    return fn, arrays, dict(stride=stride, padding=padding, output_padding=output_padding)


def _backward(fn, arrays, seed_grad=None):
    """(output, gradients of every argument) of sum(G * fn(*arrays)), G random unless given."""
    leaves = [Var(a.copy(), True) for a in arrays]
    y = fn(*leaves)
    g = normal(*y.shape, seed=5) if seed_grad is None else seed_grad
    autograd.add_grad(y, g)
    autograd.backward([y])
    return y.value, [leaf.grad for leaf in leaves], g


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no bias"])
@pytest.mark.parametrize("setting", PRIMITIVE_SETTINGS)
def test_conv_transpose2d_gradient_against_finite_differences(setting, bias):
    fn, arrays, _ = _primitive(setting, bias)
    _, grads, g = _backward(fn, arrays)

    def loss(values) -> float:
        return float((fn(*[Var(v) for v in values]).value * g).sum())

    for i, a in enumerate(arrays):
        numeric = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            up, down = [v.copy() for v in arrays], [v.copy() for v in arrays]
            up[i][index] += EPS
            down[i][index] -= EPS
            numeric[index] = (loss(up) - loss(down)) / (2 * EPS)
        np.testing.assert_allclose(grads[i], numeric, rtol=RTOL, atol=1e-8, err_msg=f"argument {i}")


@pytest.mark.parametrize("setting", PRIMITIVE_SETTINGS)
def test_conv_transpose2d_is_the_adjoint_of_conv2d(setting):
    """<conv(y), x> = <y, conv_transpose(x)> for the same weights, stride and padding (ZOO.md)."""
    fn, (x, w, _), arguments = _primitive(setting)
    y = normal(*fn(Var(x), Var(w)).shape, seed=7)
    (top, left) = arguments["padding"]
    conv = conv2d(Var(y), Var(w), None, arguments["stride"], (top, top, left, left)).value
    assert conv.shape == x.shape
    np.testing.assert_allclose((conv * x).sum(), (y * fn(Var(x), Var(w)).value).sum(), rtol=1e-12)


@pytest.mark.parametrize("setting", PRIMITIVE_SETTINGS)
def test_conv_transpose2d_equals_torch(setting):
    fn, arrays, arguments = _primitive(setting)
    ours, grads, g = _backward(fn, arrays)
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    theirs = F.conv_transpose2d(*tensors, **arguments)
    (theirs * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=RTOL, atol=ATOL)
    for i, (grad, tensor) in enumerate(zip(grads, tensors, strict=True)):
        np.testing.assert_allclose(grad, tensor.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=str(i))


@pytest.mark.parametrize("name", SETTINGS)
def test_the_layer_equals_conv_transpose2d_with_the_same_parameters(name):
    dims, options, arguments = SETTINGS[name]
    model = nnspec.loads(_deconv_spec(dims, options + ", act=tanh"))
    run = model.to_numpy(seed=4, dtype="float64")
    x = normal(3, *dims, seed=6)
    y = run(x)
    g = normal(*y.shape, seed=7)
    grads = run.backward(g)
    reference = torch.nn.ConvTranspose2d(dims[0], 5, bias="d.bias" in run.params, **arguments)
    reference = reference.double()
    reference.load_state_dict({k[2:]: torch.tensor(v) for k, v in run.params.items()})
    xt = torch.tensor(x, requires_grad=True)
    theirs = torch.tanh(reference(xt))
    (theirs * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y, theirs.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=RTOL, atol=ATOL)
    for key, param in reference.named_parameters():
        np.testing.assert_allclose(
            grads[f"d.{key}"], param.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=key
        )


# ---- a spec with a deconv: both backends, the summary, the drawing -------------------------------
UPSAMPLER = """
network upsampler "a 4x4 image grown to 8x8, then read" {
    input   image: [2, 4, 4]
    deconv  up: 3, kernel=4, stride=2, padding=1, act=relu
    conv    c: 4, kernel=3, act=tanh
    flatten f
    dense   y: 3
    image -> up -> c -> f -> y
}
"""


def test_both_backends_agree_on_a_spec_with_a_deconv():
    model = nnspec.loads(UPSAMPLER)
    assert model.program.layer("up").shape.dims == (3, 8, 8)
    run = model.to_numpy(seed=3, dtype="float64")
    net = model.to_torch(seed=3, dtype="float64")
    assert list(run.params) == list(net.state_dict())
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(run.params[name], value.numpy(), err_msg=name)
    x = normal(4, 2, 4, 4, seed=8)
    ours = run(x)
    g = normal(*ours.shape, seed=9)
    grads = run.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    theirs = net(xt)
    (theirs * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grads["image"], xt.grad.numpy(), rtol=RTOL, atol=ATOL)
    for name, param in net.named_parameters():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), rtol=RTOL, atol=ATOL)


def test_summary_shows_the_deconv(tmp_path):
    path = tmp_path / "upsampler.nn"
    path.write_text(UPSAMPLER)
    result = subprocess.run(
        [sys.executable, "-m", "nnspec", "summary", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"COLUMNS": "200"},  # one table row per layer
    )
    assert result.returncode == 0 and result.stderr == ""
    row = next(line for line in result.stdout.splitlines() if " up " in line)
    assert "deconv 3, kernel=4, stride=2, padding=1, act=relu" in row
    assert "[3, 8, 8]" in row and f"{2 * 3 * 4 * 4 + 3:,}" in row
    total = 2 * 3 * 16 + 3 + 3 * 4 * 9 + 4 + (4 * 6 * 6) * 3 + 3
    assert f"Total params: {total:,}" in result.stdout


def test_the_deconv_is_drawn_as_the_chart_draws_deconvolutions(tmp_path):
    model = nnspec.loads(UPSAMPLER)
    model.draw(tmp_path / "d.png")
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scene = layout_network(model.program)
    cells = {}
    for disc in scene.cells():
        cells.setdefault(disc.gid.split(":")[2], []).append(disc)
    # the chart's deconvolutional network: In -> CP -> CP -> K -> Out, the deconvolutions as
    # "convolution or pool" cells, the kernel after them as kernel cells
    assert {disc.cell for disc in cells["up"]} == {Cell.CONVOLUTION_POOL}
    assert {disc.cell for disc in cells["c"]} == {Cell.KERNEL}
    # local links: each deconv cell sees a few input cells, not all of them
    image_x, up_x = cells["image"][0].x, cells["up"][0].x
    between = [
        line
        for line in scene.shapes
        if isinstance(line, Line) and {line.points[0][0], line.points[-1][0]} == {image_x, up_x}
    ]
    assert between and len(between) < len(cells["image"]) * len(cells["up"])


# ---- training -----------------------------------------------------------------------------------
DECODER = """
network decoder "digits through a strided conv and back up through a deconv" {
    input  x: [1, 8, 8]
    conv   down: 6, kernel=3, stride=2, padding=1, act=relu
    deconv up: 1, kernel=4, stride=2, padding=1, act=sigmoid
    x -> down -> up
}

train {
    data      = digits
    target    = input
    split     = 0.2
    loss      = bce
    optimizer = adam(lr=1e-2)
    batch     = 64
    epochs    = 4
    seed      = 0
}
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_network_with_a_deconv_trains_on_both_backends(backend, tmp_path):
    path = tmp_path / "decoder.nn"
    path.write_text(DECODER)
    result = nnspec.train(path, backend, tmp_path / "run")
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 4 and all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]
