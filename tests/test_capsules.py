"""Capsules (Sabour, Frosst and Hinton 2017): the squash and routing by agreement as properties,
both backends against a routing loop written here with PyTorch, the margin loss on both sides,
the compile targets, the errors, and (slow) the capsule network against a plain CNN of its size.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SPECS, TEST_SPECS
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import nnspec
from nnspec.backends.numpy.autograd import Var, add_grad, backward
from nnspec.backends.numpy.capsules import length, predictions, routing, squash
from nnspec.training.losses import MARGIN, margin_and_grad

torch = pytest.importorskip("torch")

CAPSULES = SPECS / "capsules.nn"
TWIN = TEST_SPECS / "ok" / "capsules_cnn_twin.nn"
RTOL = 1e-6
finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


def vectors(rows: int = 5, dim: int = 4):
    return arrays(np.float64, (rows, dim), elements=finite)


# ---- properties ---------------------------------------------------------------------------------
@settings(deadline=None, max_examples=60)
@given(vectors())
def test_squash_keeps_the_direction_and_maps_lengths_into_0_1(s):
    v = squash(Var(s)).value
    n, out = np.linalg.norm(s, axis=-1), np.linalg.norm(v, axis=-1)
    assert np.all(out >= 0) and np.all(out < 1)
    np.testing.assert_allclose(out, n**2 / (1 + n**2) * n / np.sqrt(n**2 + 1e-9), atol=1e-12)
    moving = n > 1e-3
    cosine = (s * v).sum(-1)[moving] / (n * out)[moving]
    np.testing.assert_allclose(cosine, 1.0, rtol=1e-12)


@settings(deadline=None, max_examples=40)
@given(arrays(np.float64, (2, 6, 3, 4), elements=finite), st.integers(1, 5))
def test_couplings_sum_to_one_and_the_first_iteration_is_uniform(u_hat, iterations):
    seen: list[np.ndarray] = []
    v = routing(Var(u_hat), iterations, seen).value
    assert len(seen) == iterations and v.shape == (2, 3, 4)
    for c in seen:
        assert np.all(c >= 0)
        np.testing.assert_allclose(c.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(seen[0], np.full((2, 6, 3), 1 / 3))


@settings(deadline=None, max_examples=40)
@given(arrays(np.float64, (2, 6, 3, 4), elements=finite))
def test_one_iteration_squashes_the_mean_prediction(u_hat):
    v = routing(Var(u_hat), 1).value
    np.testing.assert_allclose(v, squash(Var(u_hat.sum(1) / 3)).value, rtol=1e-12, atol=1e-15)


def test_agreement_draws_the_couplings_to_the_capsule_most_inputs_predict():
    # four inputs predict output 0 alike; output 1 gets predictions that cancel out
    u_hat = np.zeros((1, 4, 2, 2))
    u_hat[0, :, 0] = [1.0, 0.5]
    u_hat[0, :, 1] = [[1, 0], [-1, 0], [0, 1], [0, -1]]
    seen: list[np.ndarray] = []
    routing(Var(u_hat), 3, seen)
    assert np.all(seen[2][0, :, 0] > seen[1][0, :, 0]) and np.all(seen[1][0, :, 0] > 0.5)


# ---- primitives against PyTorch's autograd ------------------------------------------------------
def _vjp(make, *arrays_in: np.ndarray):
    """Our output and the gradients of sum(output * seed) by each input, and the seed."""
    leaves = [Var(a.copy(), needs_grad=True) for a in arrays_in]
    out = make(*leaves)
    seed = np.random.default_rng(3).standard_normal(out.shape)
    add_grad(out, seed)
    backward([out])
    return out.value, [leaf.grad for leaf in leaves], seed


def _torch_vjp(fn, seed, *arrays_in):
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays_in]
    out = fn(*leaves)
    (out * torch.tensor(seed)).sum().backward()
    return out.detach().numpy(), [leaf.grad.numpy() for leaf in leaves]


def test_the_primitives_and_routing_match_pytorchs_autograd():
    from nnspec.backends.torch.capsules import squash as torch_squash

    rng = np.random.default_rng(0)
    u, w = rng.standard_normal((3, 5, 4)), rng.standard_normal((5, 2, 3, 4))
    u[0, 0] = 0.0  # a zero capsule: finite gradients on both sides

    def ours(u, w):
        return length(routing(predictions(u, w), 3))

    def theirs(u, w):
        u_hat = torch.einsum("bnd,njkd->bnjk", u, w)
        b = torch.zeros(u_hat.shape[:-1], dtype=u.dtype)
        for i in range(3):  # the loop of the paper's Procedure 1
            c = torch.softmax(b, -1)
            v = torch_squash((c[..., None] * u_hat).sum(1))
            if i < 2:
                b = b + (u_hat * v[:, None]).sum(-1)
        return torch.sqrt((v * v).sum(-1) + 1e-9)

    out, grads, seed = _vjp(ours, u, w)
    ref, ref_grads = _torch_vjp(theirs, seed, u, w)
    np.testing.assert_allclose(out, ref, rtol=RTOL)
    for g, r in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(g, r, rtol=RTOL, atol=1e-12)
    out, (g,), seed = _vjp(squash, u)
    ref, (r,) = _torch_vjp(torch_squash, seed, u)
    np.testing.assert_allclose(out, ref, rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(g, r, rtol=RTOL, atol=1e-12)
    assert np.all(np.isfinite(g))


def test_both_backends_agree_on_the_capsule_network_in_float64():
    model = nnspec.load(CAPSULES)
    x = np.random.default_rng(1).random((4, 1, 8, 8))
    run = model.to_numpy(seed=0, dtype="float64")
    net = model.to_torch(seed=0, dtype="float64")
    ours, _ = run.forward_with_terms(x)
    seed = np.random.default_rng(2).standard_normal(ours.shape)
    grads = run.backward(seed)
    image = torch.tensor(x, requires_grad=True)
    theirs = net(image)
    (theirs * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=RTOL)
    np.testing.assert_allclose(grads["image"], image.grad.numpy(), rtol=RTOL, atol=1e-12)
    for name, param in net.named_parameters():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), rtol=RTOL, atol=1e-12)


def test_primary_capsules_group_the_channels_type_by_type_then_place_by_place():
    model = nnspec.loads(
        "network n {\n input x: [2, 5, 5]\n primary_capsules p: 3, dim=2, stride=2\n x -> p\n}"
    )
    run = model.to_numpy(seed=0, dtype="float64")
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    v, _ = run.forward_with_terms(x)
    conv = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(run.params["p.weight"]), torch.tensor(run.params["p.bias"]), 2
    ).numpy()  # (2, 6, 2, 2)
    k, h, w = 2, 1, 0  # type 2 at row 1, column 0
    s = conv[:, k * 2 : k * 2 + 2, h, w]
    n = (s * s).sum(-1, keepdims=True)
    np.testing.assert_allclose(v[:, k * 4 + h * 2 + w], s * n / ((1 + n) * np.sqrt(n + 1e-9)))


# ---- the margin loss and the accuracy -----------------------------------------------------------
def test_the_margin_loss_by_hand_and_as_the_torch_runner_computes_it():
    from nnspec.training.torch_runner import loss_of

    high, low, weight = MARGIN
    y = np.array([[0.95, 0.3, 0.05], [0.5, 0.5, 0.0]])
    target = np.array([0, 2])
    value, grad = margin_and_grad(y, target)
    by_hand = (0 + weight * 0.2**2 + 0) + (weight * 0.4**2 + weight * 0.4**2 + high**2)
    assert value == pytest.approx(by_hand / 2)
    assert (high, low, weight) == (0.9, 0.1, 0.5)
    ty = torch.tensor(y, requires_grad=True)
    loss = loss_of("margin", ty, None, "identity", torch.tensor(target), None)
    loss.backward()
    assert loss.item() == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(grad, ty.grad.numpy(), rtol=1e-12)


def test_accuracy_reads_the_longest_capsule():
    from nnspec.training.metrics import accuracy

    lengths = np.array([[0.1, 0.8, 0.2], [0.7, 0.1, 0.9]])
    assert accuracy(lengths, np.array([1, 2])) == 1.0
    assert accuracy(lengths, np.array([1, 0])) == 0.5


# ---- compile targets ----------------------------------------------------------------------------
def test_every_target_compiles_the_capsule_network_to_the_backends_numbers(tmp_path):
    model = nnspec.load(CAPSULES)
    x = np.random.default_rng(4).random((3, 1, 8, 8)).astype(np.float32)
    expected, _ = model.to_numpy(seed=0).forward_with_terms(x)
    written = model.compile("onnx", tmp_path / "capsules.onnx")
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(written[0] if isinstance(written, list) else written))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


# ---- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("input x: [4, 3], seq\n capsules c: 2\n x -> c", "E426"),
        ("input x: [1, 8, 8], seq\n primary_capsules p: 2\n x -> p", "E426"),
        ("input x: 12\n capsules c: 2\n x -> c", "E402"),
        ("input x: [4, 3]\n primary_capsules p: 2\n x -> p", "E402"),
        ("input x: 12\n length y\n x -> y", "E402"),
        ("input x: [4, 3]\n capsules c: 2, routing=0\n x -> c", "E207"),
    ],
)
def test_capsules_are_refused_where_they_cannot_compute(body, code):
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(f"network n {{\n {body}\n}}")
    assert caught.value.code == code


# ---- the network against a plain CNN of its size ------------------------------------------------
def _parameters(path) -> int:
    return sum(p.count for p in nnspec.load(path).program.parameters().values())


def test_the_twin_cnn_is_of_a_similar_size():
    capsules, twin = _parameters(CAPSULES), _parameters(TWIN)
    assert abs(capsules - twin) <= 0.1 * capsules


@pytest.mark.slow
def test_the_capsule_network_reads_digits_at_least_as_well_as_a_plain_cnn(tmp_path):
    ours, theirs = [], []
    for seed in (0, 1, 2):
        for path, accuracies in ((CAPSULES, ours), (TWIN, theirs)):
            out = tmp_path / f"{path.stem}_{seed}"
            result = nnspec.train(path, "torch", out, seed=seed)
            accuracies.append(result.metrics["accuracy"])
    assert np.mean(ours) >= np.mean(theirs), (ours, theirs)
    assert min(ours) >= 0.96
