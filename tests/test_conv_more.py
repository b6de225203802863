"""`conv` and `deconv` with `dilation` and `groups`, `upsample` to a size, and max `unpool`, as
PyTorch defines them: parameter counts against torch.nn, both backends' values (float64) and the
NumPy gradients (of the input and of every parameter) against F.conv2d, F.conv_transpose2d,
F.interpolate(size=...) and F.max_unpool2d, and the refusals with their codes and hints.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnspec
from nnspec.errors import SpecError

torch = pytest.importorskip("torch")
F = torch.nn.functional
nn = torch.nn


def _against(spec: str, x: np.ndarray, expected_of):
    """Both backends (float64) on `x` against `expected_of(input, params)`, params the NumPy
    run's as tensors by key; the NumPy gradients of `x` and of every parameter against torch's
    for a random output gradient."""
    model = nnspec.loads(spec)
    run = model.to_numpy(dtype="float64")
    params = {k: torch.tensor(v, requires_grad=True) for k, v in run.params.items()}
    xt = torch.tensor(x, requires_grad=True)
    expected = expected_of(xt, params)
    ours = run(x=x)
    np.testing.assert_allclose(ours, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    net = model.to_torch(dtype="float64")
    net.load_state_dict({k: torch.tensor(v) for k, v in run.params.items()})
    with torch.no_grad():
        theirs = net(x=torch.tensor(x)).numpy()
    np.testing.assert_allclose(theirs, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    seed = np.random.default_rng(1).standard_normal(ours.shape)
    (expected * torch.tensor(seed)).sum().backward()
    grads = run.backward(seed)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for key, tensor in params.items():
        np.testing.assert_allclose(grads[key], tensor.grad.numpy(), rtol=1e-10, atol=1e-12)


def _count(spec: str) -> int:
    return nnspec.loads(spec).program.param_count


def _torch_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- conv: dilation and groups ------------------------------------------------------------------
CONVS = [
    # options, nn.Conv2d's keywords (the input has 4 channels)
    ("8, kernel=3, dilation=2", {"dilation": 2}),
    ("8, kernel=[3, 2], dilation=[2, 3], stride=2", {"dilation": (2, 3), "stride": 2}),
    ("8, kernel=3, groups=2", {"groups": 2}),
    ("4, kernel=3, groups=4, padding=1", {"groups": 4, "padding": 1}),  # depthwise
    ("12, kernel=3, groups=4, dilation=2, padding=2", {"groups": 4, "dilation": 2, "padding": 2}),
    ("8, kernel=1, groups=2, bias=false", {"groups": 2, "bias": False}),
]


@pytest.mark.parametrize("options, keywords", CONVS)
def test_conv_counts_and_shapes_are_nn_conv2ds(options, keywords):
    spec = f"network n {{ input x: [4, 9, 10]\n conv c: {options}\n x -> c }}"
    model = nnspec.loads(spec)
    layer = model.program.layer("c")
    channels, kernel = int(options.split(",")[0]), layer.options.kernel
    conv = nn.Conv2d(4, channels, kernel, **keywords)
    assert model.program.param_count == _torch_count(conv)
    assert tuple(layer.params["weight"].shape) == tuple(conv.weight.shape)
    assert tuple(conv(torch.zeros(1, 4, 9, 10)).shape[1:]) == layer.shape.dims


@pytest.mark.parametrize("options, keywords", CONVS)
def test_conv_is_f_conv2d(options, keywords):
    spec = f"network n {{ input x: [4, 9, 10]\n conv c: {options}\n x -> c }}"
    x = np.random.default_rng(3).standard_normal((2, 4, 9, 10))
    keywords = {k: v for k, v in keywords.items() if k != "bias"}
    _against(spec, x, lambda t, p: F.conv2d(t, p["c.weight"], p.get("c.bias"), **keywords))


@pytest.mark.parametrize("stride", [1, 2])
def test_dilated_same_padding_keeps_the_size_as_pytorch_and_tensorflow(stride):
    spec = f"""network n {{ input x: [2, 9, 8]
        conv c: 6, kernel=3, dilation=2, groups=2, stride={stride}, padding=same
        x -> c }}"""
    x = np.random.default_rng(4).standard_normal((2, 2, 9, 8))
    # the dilated kernel reaches 5 cells: in all max((out - 1) * stride + 5 - size, 0) zeros,
    # the smaller half before
    pads = {1: (2, 2, 2, 2), 2: (1, 2, 2, 2)}[stride]  # left, right, top, bottom

    def expected(t, p):
        return F.conv2d(F.pad(t, pads), p["c.weight"], p["c.bias"], stride, 0, 2, 2)

    _against(spec, x, expected)
    if stride == 1:  # PyTorch's own padding="same" agrees
        conv = nn.Conv2d(2, 6, 3, padding="same", dilation=2, groups=2).double()
        model = nnspec.loads(spec)
        run = model.to_numpy(dtype="float64")
        conv.load_state_dict({k[2:]: torch.tensor(v) for k, v in run.params.items()})
        with torch.no_grad():
            np.testing.assert_allclose(run(x=x), conv(torch.tensor(x)).numpy(), rtol=1e-10)


def test_a_depthwise_separable_block_counts_as_mobilenets():
    spec = """network n { input x: [16, 8, 8]
        conv dw: 16, kernel=3, groups=16, padding=same, bias=false
        conv pw: 32, kernel=1, bias=false
        x -> dw -> pw }"""
    by_hand = nn.Sequential(
        nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.Conv2d(16, 32, 1, bias=False)
    )
    assert _count(spec) == _torch_count(by_hand) == 16 * 9 + 16 * 32


def test_groups_over_time_convolve_every_step():
    spec = "network n { input x: [4, 5, 5], seq\n conv c: 4, groups=2, dilation=2\n x -> c }"
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 5, 5))

    def expected(t, p):
        y = F.conv2d(t.flatten(0, 1), p["c.weight"], p["c.bias"], dilation=2, groups=2)
        return y.unflatten(0, (2, 3))

    _against(spec, x, expected)


# ---- deconv: dilation and groups ----------------------------------------------------------------
DECONVS = [
    ("8, kernel=3, dilation=2", {"dilation": 2}),
    ("8, kernel=3, stride=2, groups=2, padding=1", {"stride": 2, "groups": 2, "padding": 1}),
    ("4, kernel=[2, 3], groups=4, dilation=[1, 2]", {"groups": 4, "dilation": (1, 2)}),
    ("6, kernel=3, stride=2, dilation=3, output_padding=2", {"stride": 2, "dilation": 3}),
]


@pytest.mark.parametrize("options, keywords", DECONVS)
def test_deconv_is_f_conv_transpose2d(options, keywords):
    spec = f"network n {{ input x: [4, 5, 6]\n deconv d: {options}\n x -> d }}"
    model = nnspec.loads(spec)
    layer = model.program.layer("d")
    channels = int(options.split(",")[0])
    extra = pair_of(layer.options.output_padding)
    module = nn.ConvTranspose2d(4, channels, layer.options.kernel, output_padding=extra, **keywords)
    assert model.program.param_count == _torch_count(module)
    assert tuple(module(torch.zeros(1, 4, 5, 6)).shape[1:]) == layer.shape.dims
    x = np.random.default_rng(6).standard_normal((2, 4, 5, 6))

    def expected(t, p):
        return F.conv_transpose2d(t, p["d.weight"], p["d.bias"], output_padding=extra, **keywords)

    _against(spec, x, expected)


def pair_of(value):
    return (value, value) if isinstance(value, int) else value


# ---- upsample to a size --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", [(16, 16), (7, 9), (5, 3), (2, 11), (3, 5)])
def test_upsample_to_a_size_is_f_interpolate(mode, size):
    spec = (
        f"network n {{ input x: [2, 3, 5]\n upsample u: size={list(size)}, mode={mode}\n x -> u }}"
    )
    x = np.random.default_rng(sum(size)).standard_normal((3, 2, 3, 5))
    extra = {"align_corners": False} if mode == "bilinear" else {}
    assert nnspec.loads(spec).program.layer("u").shape.dims == (2, *size)
    _against(spec, x, lambda t, p: F.interpolate(t, size=size, mode=mode, **extra))


def test_nearest_rounds_as_pytorchs_float32_kernel():
    """Sizes whose ratio float32 rounds (in / out not a power of two): every output cell copies
    the input cell torch's own nearest copies, in float32 as in float64."""
    for n, m in [(3, 7), (5, 13), (7, 10), (6, 17), (9, 31), (10, 3)]:
        spec = f"network n {{ input x: [1, {n}, {n}]\n upsample u: size={m}\n x -> u }}"
        x = np.arange(n * n, dtype=np.float32).reshape(1, 1, n, n)
        want = F.interpolate(torch.tensor(x), size=(m, m)).numpy()
        np.testing.assert_array_equal(nnspec.loads(spec).to_numpy()(x=x), want)


def test_upsample_to_a_size_counts_as_nn_upsample():
    spec = """network n { input x: [3, 4, 4]
        upsample u: size=[8, 6], mode=bilinear
        conv c: 2, kernel=3
        x -> u -> c }"""
    by_hand = nn.Sequential(nn.Upsample(size=(8, 6), mode="bilinear"), nn.Conv2d(3, 2, 3))
    model = nnspec.loads(spec)
    assert model.program.param_count == _torch_count(by_hand)
    assert tuple(by_hand(torch.zeros(1, 3, 4, 4)).shape[1:]) == model.program.layer("c").shape.dims


# ---- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer, code, words, where",  # where: the text the error points at
    [
        ("conv c: 8, groups=3", "E250", "groups=3 does not divide its 4 input channels", "3"),
        ("conv c: 6, groups=4", "E250", "groups=4 does not divide its 6 output channels", "4"),
        ("deconv d: 6, kernel=2, groups=4", "E250", "does not divide its 6 output", "4"),
        ("conv c: 8, groups=0", "E207", "", "0"),
        ("conv c: 8, dilation=0", "E207", "", "0"),
        ("conv c: 8, kernel=3, dilation=5", "E404", "does not fit in height 8", "3,"),
        ("upsample u: 2, size=[4, 4]", "E251", "give a factor or a size, not both", "[4, 4]"),
        ("upsample u: mode=bilinear", "E251", "neither is given", "u"),
        ("upsample u: size=[4, 0]", "E203", "size of 'u'", "[4, 0]"),  # as kernel=[3, 0]
    ],
)
def test_refusals(layer, code, words, where):
    text = f"network n {{\n input x: [4, 8, 8]\n {layer}\n x -> {layer.split()[1].rstrip(':')}\n}}"
    with pytest.raises(SpecError) as caught:
        nnspec.loads(text)
    error = caught.value
    assert error.code == code and words in error.message and error.hint
    line = text.splitlines()[error.span.line - 1]
    assert line[error.span.column - 1 :].startswith(where)


# ---- unpool --------------------------------------------------------------------------------------
POOLS = [
    # the pool's options, max_pool2d's keywords
    ("size=2", {"kernel_size": 2}),
    ("size=[2, 3], stride=[2, 3]", {"kernel_size": (2, 3), "stride": (2, 3)}),
    ("size=3, stride=2, padding=1", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("size=2, ceil", {"kernel_size": 2, "ceil_mode": True}),
]


def _unpooling(pool: str, seq: str = "") -> str:
    return f"""network n {{
        input  x: [3, 7, 6]{seq}
        conv   c: 4, kernel=3, padding=same
        pool   p: max, {pool}
        conv   d: 4, kernel=1
        unpool u: of=p
        x -> c -> p -> d -> u
    }}"""


@pytest.mark.parametrize("pool, keywords", POOLS)
def test_unpool_is_max_unpool2d_with_the_pools_indices(pool, keywords):
    x = np.random.default_rng(9).standard_normal((2, 3, 7, 6))
    unpooling = {k: v for k, v in keywords.items() if k != "ceil_mode"}

    def expected(t, p):
        c = F.conv2d(t, p["c.weight"], p["c.bias"], padding=1)
        pooled, at = F.max_pool2d(c, return_indices=True, **keywords)
        d = F.conv2d(pooled, p["d.weight"], p["d.bias"])
        return F.max_unpool2d(d, at, output_size=c.shape[-2:], **unpooling)

    _against(_unpooling(pool), x, expected)


def test_unpool_over_time_unpools_every_step():
    x = np.random.default_rng(10).standard_normal((2, 3, 3, 7, 6))  # [B, T, C, H, W]

    def expected(t, p):
        c = F.conv2d(t.flatten(0, 1), p["c.weight"], p["c.bias"], padding=1)
        pooled, at = F.max_pool2d(c, 2, return_indices=True)
        d = F.conv2d(pooled, p["d.weight"], p["d.bias"])
        return F.max_unpool2d(d, at, 2, output_size=c.shape[-2:]).unflatten(0, (2, 3))

    _against(_unpooling("size=2", ", seq"), x, expected)


def test_a_segnet_pair_counts_as_pytorchs_and_gives_the_pools_input_shape():
    model = nnspec.loads(_unpooling("size=2"))
    assert model.program.layer("u").shape.dims == (4, 7, 6)
    by_hand = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1))
    assert model.program.param_count == _torch_count(by_hand)
    assert [(link.source, link.port) for link in model.program.layer("u").inputs] == [
        ("d", "x"),
        ("c", "like"),  # the checker links what enters the pool
    ]


def test_unpool_inside_a_block_names_the_blocks_pool():
    spec = """
    block segnet() {
        input  x: [2, 4, 4]
        pool   p: max, size=2
        unpool u: of=p
        x -> p -> u
    }
    network n {
        input  x: [2, 4, 4]
        segnet s: repeat=2
        x -> s
    }"""
    model = nnspec.loads(spec)
    assert model.program.layer("s.2.u").options.of == "s.2.p"
    x = np.random.default_rng(11).standard_normal((2, 2, 4, 4))
    once = F.max_unpool2d(*F.max_pool2d(torch.tensor(x), 2, return_indices=True), 2)
    twice = F.max_unpool2d(*F.max_pool2d(once, 2, return_indices=True), 2)
    np.testing.assert_allclose(model.to_numpy(dtype="float64")(x=x), twice.numpy())


def test_an_unpool_without_the_checkers_link_is_refused_not_a_crash():
    from nnspec.kinds import Shape, ShapeError
    from nnspec.kinds.conv import Unpool, UnpoolOptions

    with pytest.raises(ShapeError) as caught:
        Unpool().shape(UnpoolOptions(of="p"), {"x": Shape((1, 2, 2))})
    assert caught.value.code == "E252" and caught.value.option == "of"
