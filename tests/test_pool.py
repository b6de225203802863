"""`pool` with `padding` and `ceil`, and `global_pool`, as PyTorch defines them: shapes against
F.max_pool2d / F.avg_pool2d (count_include_pad, ceil_mode), both backends' values (float64) and the
NumPy gradients against torch's, the refusals, and torchvision's ResNet stem written as a spec
against the same layers built from torch.nn.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnspec
from nnspec.errors import SpecError

torch = pytest.importorskip("torch")
F = torch.nn.functional
nn = torch.nn

# (mode, input [C, H, W], the spec's options, F.*_pool2d's arguments)
SETTINGS = {
    "max, padding 1": ("max", [2, 7, 7], "size=3, stride=2, padding=1", (3, 2, 1, False)),
    "avg, padding 1": ("avg", [2, 7, 6], "size=3, stride=2, padding=1", (3, 2, 1, False)),
    "max, ceil": ("max", [2, 6, 7], "size=2, stride=2, ceil", (2, 2, 0, True)),
    "avg, ceil": ("avg", [1, 5, 8], "size=3, stride=2, ceil", (3, 2, 0, True)),
    "avg, padding and ceil": (
        "avg",
        [2, 8, 5],
        "size=3, stride=2, padding=1, ceil",
        (3, 2, 1, True),
    ),
    "max, padding and ceil": (
        "max",
        [2, 5, 5],
        "size=2, stride=2, padding=1, ceil",
        (2, 2, 1, True),
    ),
    "ceil, last window dropped": (
        "avg",
        [1, 5, 5],
        "size=2, stride=3, padding=1, ceil",
        (2, 3, 1, True),
    ),
    "pairs": (
        "max",
        [2, 6, 9],
        "size=[2, 3], stride=[1, 2], padding=[1, 0]",
        ((2, 3), (1, 2), (1, 0), False),
    ),
}


def _torch_pool(mode: str, x, arguments):
    size, stride, padding, ceil = arguments[:4]
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    return pool(x, size, stride, padding, ceil_mode=ceil)


def _spec(mode: str, dims: list[int], options: str) -> str:
    return f"network n {{ input x: {dims}\n pool p: {mode}, {options}\n x -> p }}"


@pytest.mark.parametrize("name", SETTINGS)
def test_shape_values_and_gradients_match_torch(name):
    mode, dims, options, arguments = SETTINGS[name]
    model = nnspec.loads(_spec(mode, dims, options))
    x = np.random.default_rng(0).standard_normal((3, *dims))
    xt = torch.tensor(x, requires_grad=True)
    expected = _torch_pool(mode, xt, arguments)
    assert model.program.layer("p").shape.dims == tuple(expected.shape[1:])
    run = model.to_numpy(dtype="float64")
    ours = run(x=x)
    np.testing.assert_allclose(ours, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        theirs = model.to_torch(dtype="float64")(x=torch.tensor(x)).numpy()
    np.testing.assert_allclose(theirs, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    seed = np.random.default_rng(1).standard_normal(ours.shape)
    (expected * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(run.backward(seed)["x"], xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_global_pool_is_adaptive_pool_to_one(mode):
    model = nnspec.loads(
        f"network n {{ input x: [3, 5, 4], seq\n global_pool g: {mode}\n x -> g }}"
    )
    assert str(model.program.layer("g").shape) == "[T, 3]"
    x = np.random.default_rng(2).standard_normal((2, 4, 3, 5, 4))  # [B, T, C, H, W]
    xt = torch.tensor(x, requires_grad=True)
    pool = F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d
    expected = pool(xt.flatten(0, 1), 1).reshape(2, 4, 3)
    run = model.to_numpy(dtype="float64")
    ours = run(x=x)
    np.testing.assert_allclose(ours, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        theirs = model.to_torch(dtype="float64")(x=torch.tensor(x)).numpy()
    np.testing.assert_allclose(theirs, ours, rtol=1e-12, atol=1e-12)
    seed = np.random.default_rng(3).standard_normal(ours.shape)
    (expected * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(run.backward(seed)["x"], xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "options, code, words",
    [
        ("size=3, padding=2", "E209", "padding 2 is more than half the window of 3"),
        ("size=2, padding=[0, 2]", "E209", "more than half the window of 2 (width)"),
        ("size=5", "E404", "a window of 5 does not fit in height 4"),
    ],
)
def test_refusals(options, code, words):
    with pytest.raises(SpecError) as caught:
        nnspec.loads(_spec("max", [1, 4, 4], options))
    assert caught.value.code == code and words in caught.value.message


def test_global_pool_needs_an_image():
    with pytest.raises(SpecError) as caught:
        nnspec.loads("network n { input x: 4\n global_pool g: avg\n x -> g }")
    assert caught.value.errors[0].code == "E402"


STEM = """
network stem {
    input     x: [3, 32, 32]
    conv      conv1: 64, kernel=7, stride=2, padding=3, bias=false
    batchnorm bn1
    relu      act
    pool      maxpool: max, size=3, stride=2, padding=1
    global_pool avgpool: avg
    x -> conv1 -> bn1 -> act -> maxpool -> avgpool
}
"""


@pytest.mark.parametrize("training", [False, True])
def test_resnet_stem_matches_torchvision_layers(training):
    """torchvision's resnet18 begins conv1 (7x7, stride 2, padding 3, no bias), bn1, relu,
    maxpool (3, stride 2, padding 1) and ends with an adaptive average pool to 1 x 1: the same
    layers from torch.nn give the spec's shapes and values on both backends."""
    torch.manual_seed(0)
    stem = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    ).double()
    head = nn.AdaptiveAvgPool2d((1, 1))
    stem.train(training)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    model = nnspec.loads(STEM)
    shapes = [layer.shape.dims for layer in model.program.layers]
    assert shapes == [(3, 32, 32), (64, 16, 16), (64, 16, 16), (64, 16, 16), (64, 8, 8), (64,)]
    state = {"conv1.weight": stem[0].weight, "bn1.weight": stem[1].weight}
    state |= {f"bn1.{n}": b for n, b in stem[1].named_buffers()} | {"bn1.bias": stem[1].bias}
    state = {n: t.detach().numpy().copy() for n, t in state.items()}
    with torch.no_grad():
        before = stem(x)
        expected = head(before).flatten(1).numpy()
    assert tuple(before.shape[1:]) == (64, 8, 8)
    run = model.to_numpy(dtype="float64").train(training)
    run.load(state)
    module = model.to_torch(dtype="float64").train(training)
    module.load_state_dict({n: torch.tensor(a) for n, a in state.items()})
    with torch.no_grad():
        theirs = module(x=x).numpy()
    np.testing.assert_allclose(run(x=x.numpy()), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(theirs, expected, rtol=1e-10, atol=1e-12)


RESNET18 = """
block basic(c, h) {
    input     x: [c, h, h]
    conv      a: c, kernel=3, padding=1, bias=false
    batchnorm an
    relu      ar
    conv      b: c, kernel=3, padding=1, bias=false
    batchnorm bn
    add       s
    relu      out
    x -> a -> an -> ar -> b -> bn -> s -> out
    x -> s
}

block down(cin, c, h) {
    input     x: [cin, h, h]
    conv      a: c, kernel=3, stride=2, padding=1, bias=false
    batchnorm an
    relu      ar
    conv      b: c, kernel=3, padding=1, bias=false
    batchnorm bn
    conv      d: c, kernel=1, stride=2, bias=false
    batchnorm dn
    add       s
    relu      out
    x -> a -> an -> ar -> b -> bn -> s -> out
    x -> d -> dn -> s
}

network resnet18 {
    input       x: [3, 224, 224]
    conv        conv1: 64, kernel=7, stride=2, padding=3, bias=false
    batchnorm   bn1
    relu        r
    pool        maxpool: max, size=3, stride=2, padding=1
    basic       layer1: 64, 56, repeat=2
    down        layer2: 64, 128, 56
    basic       layer2b: 128, 28
    down        layer3: 128, 256, 28
    basic       layer3b: 256, 14
    down        layer4: 256, 512, 14
    basic       layer4b: 512, 7
    global_pool avgpool: avg
    dense       fc: 1000
    x -> conv1 -> bn1 -> r -> maxpool -> layer1 -> layer2 -> layer2b -> layer3 -> layer3b
    layer3b -> layer4 -> layer4b -> avgpool -> fc
}
"""


def test_resnet18_has_torchvisions_parameter_count():
    """torchvision.models.resnet18() holds 11,689,512 parameters (batchnorm's running statistics
    are buffers, not counted); the spec, with its stem's padded pool and global average pool,
    gives the same number and torchvision's shapes stage by stage."""
    program = nnspec.loads(RESNET18).program
    assert program.param_count == program.trainable_count == 11_689_512
    stages = ["maxpool", "layer1.2.out", "layer2b.out", "layer3b.out", "layer4b.out", "avgpool"]
    assert [program.layer(name).shape.dims for name in stages] == [
        (64, 56, 56),
        (64, 56, 56),
        (128, 28, 28),
        (256, 14, 14),
        (512, 7, 7),
        (512,),
    ]
