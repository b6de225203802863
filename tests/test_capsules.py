"""Capsules (Sabour, Frosst and Hinton 2017): the squash and routing by agreement as properties,
both backends against a routing loop written here with PyTorch, the margin loss on both sides,
the mask and the reconstruction decoder (the true class's capsule in training, the longest
otherwise; `target = {recon: input}`), the compile targets, the errors, and (slow) the capsule
network against a plain CNN of its size and its reconstructions against the mean image.
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
from nnspec.backends.numpy.capsules import length, mask, predictions, routing, squash
from nnspec.data import load_data
from nnspec.train_section import train_config
from nnspec.training import TrainingStopped, make_runner
from nnspec.training.losses import MARGIN, margin_and_grad, mask_labels

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


@pytest.mark.parametrize("training", [True, False])
def test_both_backends_agree_on_the_capsule_network_in_float64(training):
    """Outputs and gradients, with the decoder fed the labelled capsule (training, labels set as
    the runners set them) or the longest (evaluation)."""
    model = nnspec.load(CAPSULES)
    x = np.random.default_rng(1).random((4, 1, 8, 8))
    labels = np.array([3, 0, 9, 3])
    run = model.to_numpy(seed=0, dtype="float64").train(training)
    net = model.to_torch(seed=0, dtype="float64").train(training)
    run.labels = labels
    net.chosen.labels = torch.tensor(labels)
    ours, _ = run.forward_with_terms(x)
    rng = np.random.default_rng(2)
    seeds = {name: rng.standard_normal(value.shape) for name, value in ours.items()}
    grads = run.backward(seeds)
    image = torch.tensor(x, requires_grad=True)
    theirs = net(image)
    sum((theirs[name] * torch.tensor(seed)).sum() for name, seed in seeds.items()).backward()
    for name, value in ours.items():
        np.testing.assert_allclose(value, theirs[name].detach().numpy(), rtol=RTOL, err_msg=name)
    np.testing.assert_allclose(grads["image"], image.grad.numpy(), rtol=RTOL, atol=1e-12)
    for name, param in net.named_parameters():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), rtol=RTOL, atol=1e-12)


# ---- the mask before the decoder ----------------------------------------------------------------
def test_the_mask_keeps_the_labelled_capsule_in_training_and_the_longest_otherwise():
    from nnspec.backends.torch.capsules import Mask

    v = np.random.default_rng(5).standard_normal((3, 4, 2))
    longest = (v * v).sum(-1).argmax(-1)
    labels = (longest + 1) % 4  # never the longest
    for keep, labelled in ((labels, labels), (longest, None)):
        ours = mask(Var(v), labelled).value.reshape(3, 4, 2)
        for b in range(3):
            np.testing.assert_array_equal(ours[b, keep[b]], v[b, keep[b]])
            assert np.count_nonzero(ours[b]) == np.count_nonzero(v[b, keep[b]])
    module = Mask()
    module.labels = torch.tensor(labels)
    kept = mask(Var(v), labels).value
    np.testing.assert_array_equal(module.train()(torch.tensor(v)).numpy(), kept)
    np.testing.assert_array_equal(module.eval()(torch.tensor(v)).numpy(), mask(Var(v), None).value)


def test_the_masks_gradient_reaches_the_kept_capsule_alone_as_in_pytorch():
    """Against PyTorch's autograd here; against finite differences in tests/test_numpy_backend.py
    (its table of kinds)."""
    from nnspec.backends.torch.capsules import Mask

    v, labels = np.random.default_rng(6).standard_normal((3, 4, 2)), np.array([2, 0, 3])
    out, (g,), seed = _vjp(lambda v: mask(v, labels), v)
    module = Mask().train()
    module.labels = torch.tensor(labels)
    ref, (r,) = _torch_vjp(module, seed, v)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(g, r)
    assert np.count_nonzero(np.abs(g).sum(-1)) == 3  # one capsule per example


@pytest.mark.slow
def test_the_runners_give_the_mask_the_class_targets_for_a_step():
    """`mask_labels` takes the class targets of the output that has them; a step on either
    backend (float64) computes its loss with the labelled capsule, the same on both, and leaves
    no labels behind."""
    model = nnspec.load(CAPSULES)
    data = load_data(model.train_spec, model.program)
    config = train_config(model.train_spec, data.kind)
    inputs = {"image": data.train.inputs["image"][:8]}
    targets = {name: value[:8] for name, value in data.train.targets.items()}
    np.testing.assert_array_equal(mask_labels(model.program, targets), targets["lengths"])
    assert mask_labels(model.program, {"recon": targets["recon"]}) is None
    losses = []
    for backend in ("numpy", "torch"):
        runner = make_runner(model, config, backend, "float64")
        losses.append(runner.step(inputs, targets, None, 0.0)[0])
    run = model.to_numpy(seed=0, dtype="float64")
    run.labels = targets["lengths"]
    y = run(**inputs)
    by_hand = margin_and_grad(y["lengths"], targets["lengths"])[0] + 0.392 * np.mean(
        (y["recon"] - targets["recon"]) ** 2
    )
    assert losses[0] == pytest.approx(by_hand, rel=1e-12)
    assert losses[1] == pytest.approx(by_hand, rel=1e-9)
    assert runner.masks[0].labels is None


def test_target_input_for_one_output_gives_it_the_image_and_the_other_the_classes():
    model = nnspec.load(CAPSULES)
    data = load_data(model.train_spec, model.program)
    assert data.kind == "outputs" and data.outputs == {"lengths": 10, "recon": None}
    image, targets = data.test.inputs["image"], data.test.targets
    np.testing.assert_array_equal(targets["recon"], image.reshape(len(image), 64))
    assert targets["lengths"].dtype == np.int64 and targets["lengths"].max() == 9


def test_the_mask_refuses_classes_it_has_no_capsule_for():
    text = (
        CAPSULES.read_text()
        .replace(
            "    mask             chosen",
            "    capsules         few: 3, dim=2, routing=1\n    mask             chosen",
        )
        .replace("digits -> chosen", "digits -> few -> chosen")
    )
    model = nnspec.loads(text)
    data = load_data(model.train_spec, model.program, SPECS)
    config = train_config(model.train_spec, data.kind)
    runner = make_runner(model, config, "numpy")
    with pytest.raises(TrainingStopped) as caught:
        runner.step(data.train.inputs, data.train.targets, None, 0.01)
    error = caught.value
    assert error.code == "R395"
    assert error.message == (
        "mask 'chosen' keeps the capsule of each example's class in training, but class 9 of "
        "output 'lengths' is past its 3 capsules"
    )
    assert error.hint == (
        "give 'chosen' a capsule per class: the capsule layer before it needs 10 or more "
        "capsules (its classes are those of 'lengths')"
    )


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
    """ONNX here (the decoder behind the longest capsule: the model predicts); the NumPy and
    PyTorch files in tests/test_compile_numpy.py and tests/test_compile_torch.py."""
    model = nnspec.load(CAPSULES)
    x = np.random.default_rng(4).random((3, 1, 8, 8)).astype(np.float32)
    expected, _ = model.to_numpy(seed=0).eval().forward_with_terms(x)
    written = model.compile("onnx", tmp_path / "capsules.onnx")
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(written[0] if isinstance(written, list) else written))
    got = session.run(None, {session.get_inputs()[0].name: x})
    names = [o.name for o in session.get_outputs()]
    assert names == ["lengths", "recon"]
    for name, value in zip(names, got, strict=True):
        np.testing.assert_allclose(value, expected[name], rtol=1e-4, atol=1e-6, err_msg=name)


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
        ("input x: 12\n mask m\n x -> m", "E402"),
        ("input x: [4, 3], seq\n mask m\n x -> m", "E426"),
    ],
)
def test_capsules_are_refused_where_they_cannot_compute(body, code):
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(f"network n {{\n {body}\n}}")
    assert caught.value.code == code


# ---- the network against a plain CNN of its size ------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "code"),
    [
        ("target = {recon: labels}", "E502"),
        ("target = {recn: input}", "E530"),
    ],
)
def test_a_target_per_output_names_an_output_and_the_input(setting, code):
    text = CAPSULES.read_text().replace("target       = {recon: input}", setting)
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    assert caught.value.code == code


def _parameters(path, output: str) -> int:
    """The parameters of the layers that `output` depends on (the classifier, not the decoder)."""
    program = nnspec.load(path).program
    before, links = {output}, [output]
    while links:
        for link in program.layer(links.pop()).inputs:
            if link.source not in before:
                before.add(link.source)
                links.append(link.source)
    return sum(program.layer(name).param_count for name in before)


def test_the_twin_cnn_is_of_the_classifiers_size():
    capsules, twin = _parameters(CAPSULES, "lengths"), _parameters(TWIN, "digits")
    assert capsules == 15_040 and twin == 15_930
    assert abs(capsules - twin) <= 0.1 * capsules


@pytest.mark.slow
def test_the_capsule_network_reads_digits_at_least_as_well_as_a_plain_cnn(tmp_path):
    ours, theirs = [], []
    for seed in (0, 1, 2):
        for path, accuracies in ((CAPSULES, ours), (TWIN, theirs)):
            out = tmp_path / f"{path.stem}_{seed}"
            result = nnspec.train(path, "torch", out, seed=seed)
            metric = "lengths.accuracy" if path == CAPSULES else "accuracy"
            accuracies.append(result.metrics[metric])
    assert np.mean(ours) >= np.mean(theirs), (ours, theirs)
    assert min(ours) >= 0.96


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_the_decoder_rebuilds_held_out_digits_far_better_than_the_mean_image(backend, trained):
    """The held-out reconstruction error (each digit rebuilt from its longest capsule) is below
    half that of drawing every digit as the training digits' mean image (measured: 0.38 of it)."""
    result = trained(CAPSULES, backend)
    model = nnspec.load(CAPSULES)
    data = load_data(model.train_spec, model.program)
    mean = data.train.targets["recon"].mean(0)
    baseline = float(np.mean((data.test.targets["recon"] - mean) ** 2))
    assert baseline == pytest.approx(0.076, abs=0.002)
    assert result.metrics["recon.loss"] <= 0.5 * baseline, (result.metrics, baseline)
    assert result.passed


def test_a_target_per_output_also_reads_npz_files_and_single_outputs(tmp_path):
    """An npz holds arrays for the outputs that are not named (here `kind`); with one output,
    `target = {out: input}` is `target = input`."""
    rng = np.random.default_rng(0)
    x = rng.random((20, 4)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, kind=rng.integers(0, 3, 20))
    two = (
        "network n {\n input x: 4\n dense h: 3\n dense kind: 3, act=softmax\n dense back: 4\n"
        " x -> h -> kind\n h -> back\n output kind, back\n}\n"
        'train {\n data = npz("d.npz")\n target = {back: input}\n}\n'
    )
    path = tmp_path / "two.nn"
    path.write_text(two)
    model = nnspec.load(path)
    data = load_data(model.train_spec, model.program)
    assert data.outputs == {"kind": 3, "back": None}
    np.testing.assert_array_equal(data.train.targets["back"], x)
    one = "network m {\n input x: 4\n dense out: 4\n x -> out\n}\ntrain {\n data = digits\n}\n"
    for target in ("input", "{out: input}"):
        text = one.replace("input x: 4", "input x: 64").replace("dense out: 4", "dense out: 64")
        model = nnspec.loads(text.replace("data = digits", f"data = digits\n target = {target}"))
        assert load_data(model.train_spec, model.program).kind == "reconstruction"


def test_a_target_per_output_reads_a_csv_of_the_other_outputs_columns(tmp_path):
    rng = np.random.default_rng(1)
    rows = ["a,b,c,kind"] + [
        ",".join(f"{v:.3f}" for v in rng.random(3)) + f",{k}" for k in rng.integers(0, 2, 12)
    ]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    text = (
        "network n {\n input x: 3\n dense h: 3\n dense kind: 2, act=softmax\n dense back: 3\n"
        " x -> h -> kind\n h -> back\n output kind, back\n}\n"
        'train {\n data = csv("d.csv")\n target = {back: input}\n'
        " loss = {kind: cross_entropy, back: mse}\n}\n"
    )
    path = tmp_path / "n.nn"
    path.write_text(text)
    model = nnspec.load(path)
    data = load_data(model.train_spec, model.program)
    assert data.outputs == {"kind": 2, "back": None}
    np.testing.assert_array_equal(data.train.targets["back"], data.train.inputs["x"])
