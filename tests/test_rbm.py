"""The restricted Boltzmann machine and the deep belief network (issue 17, ../shared/ZOO.md "RBM",
"DBN"): the `rbm` kind, contrastive divergence (nnspec/training/contrastive.py), the
`digits_nudged` data, and specs/rbm.nn and specs/dbn.nn.

The rbm's forward is P(h = 1 | v) = sigmoid(W v + b), held here to that definition on both
backends; its visible bias is the energy's alone, so backpropagation leaves it where it is on
both. The CD update is checked against a hand computation of its one Gibbs step, with the same
random numbers; the data against scikit-learn's example.
"""

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import nnspec
from nnspec.data.nudged import NUDGES, digits_nudged, min_max, nudged

RBM = "network n { input x: 5\n rbm h: 3\n dense y: 2\n x -> h -> y }"


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# ---- the kind -----------------------------------------------------------------------------------
def test_the_forward_is_the_hidden_means_on_both_backends():
    model = nnspec.loads("network n { input x: 5\n rbm h: 3\n x -> h }")
    run = model.to_numpy(seed=3, dtype="float64")
    net = model.to_torch(seed=3, dtype="float64")
    x = np.random.default_rng(0).random((4, 5))
    p = run.params
    expected = sigmoid(x @ p["h.weight"].T + p["h.bias"])
    np.testing.assert_allclose(run(x), expected, rtol=1e-12)
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-12)
    assert set(p) == {"h.weight", "h.bias", "h.visible_bias"}
    assert set(net.state_dict()) == set(p)


def test_it_starts_as_bernoulli_rbm_does():
    """Weights N(0, 0.01^2), both biases zero (scikit-learn's BernoulliRBM)."""
    model = nnspec.loads("network n { input x: 200\n rbm h: 300\n x -> h }")
    p = model.to_numpy(seed=0, dtype="float64").params
    assert abs(p["h.weight"].std() - 0.01) < 0.0002 and abs(p["h.weight"].mean()) < 0.0002
    assert not p["h.bias"].any() and not p["h.visible_bias"].any()


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd(lr=0.1, momentum=0.9, weight_decay=0.1)", "adamw"])
def test_backpropagation_leaves_the_visible_bias_alone_on_both_backends(tmp_path, optimizer):
    """The visible bias takes no gradient: no optimizer moves it, not even by weight decay."""
    spec = tmp_path / "r.nn"
    spec.write_text(
        "network n { input x: 2\n rbm h: 3\n dense y: 3, act=softmax\n x -> h -> y }\n"
        f"train {{ data = blobs\n optimizer = {optimizer}\n epochs = 2\n batch = 16 }}"
    )
    for backend in ("numpy", "torch"):
        result = nnspec.train(spec, backend=backend, out=tmp_path / backend)
        weights = load_file(result.paths["weights"])
        assert not weights["h.visible_bias"].any(), backend
        assert weights["h.bias"].any(), backend  # the hidden bias did move


def test_the_numpy_backend_gives_no_gradient_to_the_visible_bias():
    run = nnspec.loads(RBM).to_numpy(seed=0, dtype="float64")
    y = run(np.random.default_rng(1).random((3, 5)))
    grads = run.backward(np.ones_like(y), inputs=False)
    assert set(grads) == {"h.weight", "h.bias", "y.weight", "y.bias"}


# ---- the data -----------------------------------------------------------------------------------
def test_a_nudge_moves_the_image_by_one_pixel_with_zeros_coming_in():
    image = np.arange(1, 10, dtype=float).reshape(1, 3, 3)
    up, left, right, down = (nudged(image, r, c)[0] for r, c in NUDGES)
    np.testing.assert_array_equal(up, [[4, 5, 6], [7, 8, 9], [0, 0, 0]])
    np.testing.assert_array_equal(left, [[2, 3, 0], [5, 6, 0], [8, 9, 0]])
    np.testing.assert_array_equal(right, [[0, 1, 2], [0, 4, 5], [0, 7, 8]])
    np.testing.assert_array_equal(down, [[0, 0, 0], [1, 2, 3], [4, 5, 6]])


def test_min_max_scales_each_pixel_and_leaves_a_constant_one_at_zero():
    x = np.array([[[0.0, 2.0]], [[4.0, 2.0]], [[2.0, 2.0]]])
    np.testing.assert_array_equal(min_max(x)[:, 0], [[0, 0], [1, 0], [0.5, 0]])


def test_digits_nudged_is_five_copies_in_zero_one():
    data = digits_nudged(None, None)
    assert data.x.shape == (8985, 8, 8) and data.y.shape == (8985,) and data.classes == 10
    assert data.x.min() == 0 and data.x.max() == 1
    np.testing.assert_array_equal(data.y[:1797], data.y[1797 * 4 :])


@pytest.mark.slow
def test_digits_nudged_equals_scikit_learns_example():
    """The example's `nudge_dataset` (scipy.ndimage.convolve with its four kernels) and
    `minmax_scale`, on sklearn's copy of the digits: equal to float32 rounding."""
    convolve = pytest.importorskip("scipy.ndimage").convolve
    sklearn = pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import minmax_scale

    assert sklearn
    x, y = load_digits(return_X_y=True)
    kernels = [
        [[0, 1, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 1], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 1, 0]],
    ]

    def shift(row, kernel):
        return convolve(row.reshape(8, 8), mode="constant", weights=kernel).ravel()

    x = np.concatenate([x] + [np.apply_along_axis(shift, 1, x, k) for k in kernels])
    theirs = minmax_scale(x, feature_range=(0, 1))
    ours = digits_nudged(None, None)
    np.testing.assert_allclose(ours.x.reshape(len(x), -1), theirs, atol=1e-7)
    np.testing.assert_array_equal(ours.y, np.tile(y, 5))
