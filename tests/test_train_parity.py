"""The two backends train alike: in float64, the same spec, seed and batches end with the same
weights.

Each case runs `fit` on PyTorch and on NumPy and compares every weight: the optimizers (SGD with
momentum, Nesterov and weight decay, Adam, AdamW, RMSprop), the losses (from logits or from the
outputs, with a mask), schedules, the learning rules and a GAN's turns.
"""

import numpy as np
import pytest
from conftest import EXAMPLES, assert_trains_alike

import nnspec
from nnspec.training import training_models

pytest.importorskip("torch")

MLP = """network n {{
    input x: 2
    dense h: 6, act=tanh
    dense y: {units}, act={act}
    x -> h -> y
}}
train {{
    data = {data}
    {settings}
    epochs = 3
    batch = 16
}}
"""


@pytest.mark.parametrize(
    "optimizer",
    [
        "sgd(lr=0.1)",
        "sgd(lr=0.1, momentum=0.9)",
        "sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=0.01)",
        "adam(lr=0.01)",
        "adam(lr=0.01, beta1=0.5, weight_decay=0.001)",
        "adamw(lr=0.01)",
        "rmsprop(lr=0.01)",
        "rmsprop(lr=0.01, momentum=0.5, weight_decay=0.01)",
        "sgd(lr=0.1, momentum=0.9, clip=0.05)",  # clipped in (nearly) every step
        "adam(lr=0.01, clip=0.1)",
    ],
)
def test_optimizers_take_the_same_steps(optimizer, tmp_path):
    settings = f"loss = cross_entropy\n    optimizer = {optimizer}\n    schedule = cosine"
    assert_trains_alike(
        nnspec.loads(MLP.format(units=2, act="softmax", data="moons", settings=settings)), tmp_path
    )


@pytest.mark.parametrize(
    "loss, act, data",
    [
        ("mse", "identity", "xor"),
        ("sse", "tanh", "xor"),
        ("rmse", "identity", "xor"),
        ("bce", "sigmoid", "xor"),
        ("bce", "identity", "and"),
        ("cross_entropy", "softmax", "spirals"),
        ("cross_entropy", "identity", "moons"),
        ("mse", "softmax", "moons"),
    ],
)
def test_losses_give_the_same_gradients(loss, act, data, tmp_path):
    units = 1 if data in ("xor", "and") else 2
    settings = f"loss = {loss}\n    optimizer = sgd(lr=0.05, momentum=0.5)"
    if loss == "bce" and act == "identity":  # outputs outside [0, 1] are clamped: keep them inside
        act = "sigmoid"
        settings += "\n    metrics = [accuracy]"
    assert_trains_alike(
        nnspec.loads(MLP.format(units=units, act=act, data=data, settings=settings)), tmp_path
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "example", ["residual", "lenet", "elman"]
)  # not vae: each backend draws its own noise
def test_examples_train_alike(example, tmp_path):
    text = (EXAMPLES / f"{example}.nn").read_text()
    model = nnspec.loads(
        text.replace("epochs    = 30", "epochs = 1").replace("epochs    = 20", "epochs = 1")
    )
    if model.train_spec.settings.get("epochs", 10) > 1:
        pytest.fail(f"{example}.nn: could not shorten its training for the test")
    assert_trains_alike(model, tmp_path)


@pytest.mark.slow
def test_a_graph_trains_alike_with_its_node_mask(tmp_path):
    text = (EXAMPLES.parent / "specs" / "gcn.nn").read_text()
    model = nnspec.loads(text.replace("epochs    = 200", "epochs = 5"))
    assert_trains_alike(model, tmp_path)


@pytest.mark.parametrize(
    "rule, act, data",
    [("perceptron", "step", "or"), ("delta", "identity", "and"), ("hebb", "tanh", "nand")],
)
def test_learning_rules_move_the_weights_alike(rule, act, data, tmp_path):
    text = (
        f"network n {{\n input x: 2\n dense y: 1, act={act}\n x -> y\n}}\n"
        f"train {{\n data = {data}\n rule = {rule}\n batch = 1\n epochs = 4\n}}\n"
    )
    assert_trains_alike(nnspec.loads(text), tmp_path)


@pytest.mark.slow
def test_a_gan_trains_alike(tmp_path):
    spec = tmp_path / "gan.nn"
    spec.write_text((EXAMPLES.parent / "specs" / "gan.nn").read_text())
    models = training_models(spec)
    settings = models[0].train_spec.settings
    settings["epochs"] = 1  # a dict inside a frozen dataclass: shortened for this test only
    assert_trains_alike(models[0], tmp_path, models)


def test_clip_bounds_each_step_by_the_gradients_norm():
    """sgd(lr, clip=N) without momentum moves the weights by lr * N at most in a step, every
    gradient scaled by one factor (the backends take the same clipped steps: above)."""
    from nnspec.training.optimizers import SGD, clip_scale

    rng = np.random.default_rng(0)
    grads = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    norm = np.sqrt(sum((g**2).sum() for g in grads.values()))
    assert clip_scale(grads.values(), 2 * norm) == 1.0 and clip_scale(grads.values(), None) is None
    for clip in (0.5, norm / 2):
        params = {name: np.zeros_like(g) for name, g in grads.items()}
        SGD({"lr": 1.0, "clip": clip}).step(params, grads, lr=1.0)
        moved = np.sqrt(sum((p**2).sum() for p in params.values()))
        assert moved == pytest.approx(min(clip, norm), rel=1e-5)
        for name in grads:  # one factor for every weight: the direction is kept
            assert np.allclose(params[name], -grads[name] * clip / (norm + 1e-6))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_an_update_block_by_block_is_the_whole_update(dtype, layout):
    """subtract_scaled(p, g, s) is `p -= s * g` to the bit, over several blocks and a part one,
    for any layout (a transposed gradient takes the plain route), and leaves g as it was."""
    from nnspec.training.optimizers import BLOCK, subtract_scaled

    rng = np.random.default_rng(1)
    shape = (3, BLOCK // 2 + 7)  # a block and a half and a bit: three blocks, the last a part
    p = rng.normal(size=shape).astype(dtype)
    g = (
        rng.normal(size=shape[::-1]).astype(dtype).T
        if layout == "transposed"
        else (rng.normal(size=shape).astype(dtype))
    )
    kept, expected = g.copy(), p - dtype(0.01) * g
    subtract_scaled(p, g, 0.01)
    assert np.array_equal(p, expected) and np.array_equal(g, kept)
