"""`conv` with `padding=same` at any stride, as TensorFlow and Keras pad: the output keeps
`ceil(H / stride)` cells and the total padding `max((ceil(H / s) - 1) * s + k - H, 0)` is split
with the smaller half before (the odd zero at the bottom and the right). Shapes for several sizes,
kernels and strides; both backends (float64) against F.pad + F.conv2d written here, and against
each other; the summary and the drawing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnspec
from nnspec.draw.layout import layout_network
from nnspec.kinds.conv import same_pads

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (height, width, kernel, stride) as the spec writes them
CASES = [
    (8, 8, 3, 2),
    (7, 7, 3, 2),
    (9, 6, 4, 3),
    (5, 5, 1, 2),
    (6, 7, [2, 5], [3, 1]),
    (4, 4, 5, 1),
    (3, 10, [3, 2], [2, 4]),
    (2, 2, 7, 3),
]


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, list) else (value, value)


def _spec(height: int, width: int, kernel, stride) -> str:
    return (
        f"network n {{ input x: [2, {height}, {width}]\n"
        f" conv c: 3, kernel={kernel}, stride={stride}, padding=same\n x -> c }}"
    )


def _reference(x: torch.Tensor, weight, bias, kernel, stride) -> torch.Tensor:
    """TensorFlow's 'SAME' written out: the zeros per axis, the odd one after, then no padding."""
    pads = []
    for size, k, s in zip(x.shape[-2:], kernel, stride, strict=True):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, stride)


@pytest.mark.parametrize("height, width, kernel, stride", CASES)
def test_shape_is_ceil_of_size_over_stride(height, width, kernel, stride):
    layer = nnspec.loads(_spec(height, width, kernel, stride)).program.layer("c")
    (sh, sw) = _pair(stride)
    assert layer.shape.dims == (3, math.ceil(height / sh), math.ceil(width / sw))


def test_same_pads_split_as_tensorflow():
    assert same_pads(8, 3, 2) == (0, 1)  # out 4: (4 - 1) * 2 + 3 - 8 = 1, after
    assert same_pads(7, 3, 2) == (1, 1)
    assert same_pads(9, 4, 3) == (0, 1)
    assert same_pads(10, 6, 1) == (2, 3)  # stride 1: PyTorch's padding="same"
    assert same_pads(5, 1, 2) == (0, 0)
    assert same_pads(2, 7, 3) == (2, 3)  # out 1: 7 - 2 = 5 zeros, 3 of them after


@pytest.mark.parametrize("height, width, kernel, stride", CASES)
def test_both_backends_match_pad_then_conv2d(height, width, kernel, stride):
    model = nnspec.loads(_spec(height, width, kernel, stride))
    x = np.random.default_rng(1).standard_normal((3, 2, height, width))
    run = model.to_numpy(seed=2, dtype="float64")
    module = model.to_torch(seed=2, dtype="float64")
    weight = torch.tensor(run.params["c.weight"])
    bias = torch.tensor(run.params["c.bias"])
    expected = _reference(torch.tensor(x), weight, bias, _pair(kernel), _pair(stride)).numpy()
    ours = run(x=x)
    with torch.no_grad():
        theirs = module(x=torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(theirs, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_numpy_gradient_matches_torch():
    model = nnspec.loads(_spec(7, 6, 3, 2))
    x = np.random.default_rng(3).standard_normal((2, 2, 7, 6))
    run = model.to_numpy(seed=4, dtype="float64")
    out = run(x=x)
    seed = np.random.default_rng(5).standard_normal(out.shape)
    grads = run.backward(seed)
    weight = torch.tensor(run.params["c.weight"], requires_grad=True)
    bias = torch.tensor(run.params["c.bias"], requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    (_reference(xt, weight, bias, (3, 3), (2, 2)) * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(grads["c.weight"], weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(grads["c.bias"], bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_timed_images_fold_time_into_the_batch():
    spec = (
        "network n { input x: [1, 5, 5], seq\n conv c: 2, kernel=3, stride=2, padding=same\n"
        " flatten f\n x -> c -> f }"
    )
    model = nnspec.loads(spec)
    x = np.random.default_rng(6).standard_normal((2, 3, 1, 5, 5))  # [B, T, C, H, W]
    ours = model.to_numpy(dtype="float64")(x=x)
    with torch.no_grad():
        theirs = model.to_torch(dtype="float64")(x=torch.tensor(x)).numpy()
    assert ours.shape == (2, 3, 2 * 3 * 3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_summary_and_drawing(tmp_path):
    model = nnspec.loads(_spec(8, 8, 3, 2))
    table = model.summary()
    assert "stride=2, padding=same" in table and "[3, 4, 4]" in table
    assert layout_network(model.program).shapes
    model.draw(tmp_path / "n.svg")
    assert (tmp_path / "n.svg").read_text().startswith("<")
