"""The deconvolutional network (issue 18, ../shared/ZOO.md "DN"): specs/dn.nn draws a digit from
its one-hot class through transposed convolutions.

ZOO.md's checks: the output sizes follow PyTorch's formula for ConvTranspose2d, and a transposed
convolution is the adjoint of its convolution (<conv(x), y> = <x, conv_transpose(y)>; the
kernels are tested in tests/test_deconv.py, here on the spec's own layers). What it learns: the
least squared error from a class to its images is each class's mean image, so a drawn digit
must come out nearest its own class's mean, and its r2 close to the class means' 0.42.
"""

import numpy as np
import pytest
import torch
from conftest import SPECS

import nnspec
from nnspec.backends.weights import read_weights
from nnspec.data import load_data

SPEC = SPECS / "dn.nn"


def _size(h: int, kernel: int, stride: int, padding: int) -> int:
    """ConvTranspose2d's output size (dilation 1, no output padding)."""
    return (h - 1) * stride - 2 * padding + kernel


def test_the_sizes_follow_pytorchs_formula_for_transposed_convolutions():
    program = nnspec.load(SPEC).program
    small = program.layer("small").shape.dims
    up1, up2 = program.layer("up1"), program.layer("up2")
    assert small == (16, 2, 2)
    assert up1.shape.dims == (16, _size(2, 4, 2, 1), _size(2, 4, 2, 1)) == (16, 4, 4)
    assert up2.shape.dims == (8, _size(4, 4, 2, 1), _size(4, 4, 2, 1)) == (8, 8, 8)
    assert program.layer("image").shape.dims == (1, 8, 8)


def test_each_deconv_of_the_spec_is_the_adjoint_of_its_convolution():
    """With the layer's own weights (in PyTorch's ConvTranspose2d layout [in, out, k, k]), the
    convolution of the same weights and settings is its adjoint."""
    model = nnspec.load(SPEC)
    net = model.to_torch(seed=3, dtype="float64")
    rng = np.random.default_rng(0)
    for name, (channels, size) in {"up1": (16, 2), "up2": (16, 4)}.items():
        weight = net.state_dict()[f"{name}.weight"]
        x = torch.tensor(rng.normal(size=(2, channels, size, size)))
        up = torch.nn.functional.conv_transpose2d(x, weight, stride=2, padding=1)
        y = torch.tensor(rng.normal(size=up.shape))
        down = torch.nn.functional.conv2d(y, weight, stride=2, padding=1)
        assert float((up * y).sum()) == pytest.approx(float((x * down).sum()), rel=1e-10)


def test_the_data_are_the_digits_the_other_way_round():
    model = nnspec.load(SPEC)
    data = load_data(model.train_spec, model.program)
    codes, images = data.train.inputs["code"], data.train.targets
    assert codes.shape[1:] == (10,) and images.shape[1:] == (1, 8, 8)
    assert (codes.sum(1) == 1).all() and set(np.unique(codes)) == {0.0, 1.0}
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_each_drawn_digit_is_nearest_its_own_class_mean(seed, tmp_path):
    """With other seeds than the spec's: the expectations hold, and the digit drawn for each
    class is nearer that class's mean image than any other class's."""
    result = nnspec.train(SPEC, "numpy", tmp_path, seed=seed)
    assert result.passed, result.expectations
    model = nnspec.load(SPEC)
    run = model.to_numpy(dtype="float64")
    run.load(read_weights(result.paths["weights"], model.program))
    drawn = run.eval()(np.eye(10)).reshape(10, 64)
    data = load_data(model.train_spec, model.program)
    codes, images = data.train.inputs["code"], data.train.targets.reshape(-1, 64)
    means = np.stack([images[codes[:, k] == 1].mean(0) for k in range(10)])
    distances = ((drawn[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    assert list(distances.argmin(1)) == list(range(10))
