"""The fast NumPy convolution against the one it replaced: `image.conv2d` (rows `(G, kh, kw,
C / G)` from a channels-last input padded once, the bias as a column of ones; for few channels
held channels first, transposed rows `(C, kh, kw)` from the input padded as it is) against
`image.conv2d_reference` (rows `(C, kh, kw)`, `np.pad`), values and the gradients of x, W and b
equal to 1e-10 in float64, over strides, paddings, dilations, groups, with and without a bias;
and gcn's `ops.propagate` (the normalised adjacency times h, one node, the normalisation made
once per forward) against `matmul(normalised_adjacency_composed(a), h)`."""

from __future__ import annotations

import numpy as np
import pytest

from nnspec.backends.numpy import image
from nnspec.backends.numpy.autograd import Var, add_grad, backward


def _run(conv, x, W, b, g, options, needs=(True, True, True)):
    """conv's output and the gradients of (x, W, b) for the output gradient g."""
    leaves = [Var(x, needs[0]), Var(W, needs[1]), None if b is None else Var(b, needs[2])]
    y = conv(*leaves, *options)
    if y.node is not None:
        add_grad(y, g)
        backward([y])
    return y.value, [None if v is None else v.grad for v in leaves]


@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (2, 1)])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1), (2, 0, 1, 0)])
@pytest.mark.parametrize("dilation", [(1, 1), (2, 1), (3, 1)])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layout", ["first", "last", "many"])
def test_conv2d_is_the_reference_conv2d(stride, pads, dilation, groups, bias, layout):
    """`layout`: 4 channels held channels first (without groups: `_conv2d_few_channels`) or
    channels last (as a convolution's output is), or 8 channels first (rows of 16 numbers:
    conv2d's channels-last rows)."""
    rng = np.random.default_rng(5)
    channels = 8 if layout == "many" else 4
    x = rng.standard_normal((3, channels, 7, 6))
    if layout == "last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    W = rng.standard_normal((6, channels // groups, 3, 2))
    b = rng.standard_normal(6) if bias else None
    options = (stride, pads, dilation, groups)
    y, grads = _run(image.conv2d, x, W, b, None, options, (False, False, False))
    g = rng.standard_normal(y.shape)
    y, grads = _run(image.conv2d, x, W, b, g, options)
    y_ref, grads_ref = _run(image.conv2d_reference, x, W, b, g, options)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-10)
    for got, want in zip(grads, grads_ref, strict=True):
        if want is None:
            assert got is None
        else:
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("layout", ["first", "last"])
@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
def test_conv2d_over_many_windows_is_the_reference_conv2d(layout, stride):
    """Thousands of windows, not a multiple of the block: the products taken block by block
    (`_blocked_matmul` over the windows, `_blocked_inner` for the weight's gradient) and the
    rest after the last whole block."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 3 if layout == "first" else 16, 23, 21))
    if layout == "last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    W, b = rng.standard_normal((7, x.shape[1], 3, 3)), rng.standard_normal(7)
    options = (stride, (1, 1, 1, 1), (1, 1), 1)
    y, _ = _run(image.conv2d, x, W, b, None, options, (False, False, False))
    assert y.shape[0] * y.shape[2] * y.shape[3] > 2 * image.BLOCK or stride == (2, 2)
    g = rng.standard_normal(y.shape)
    got = _run(image.conv2d, x, W, b, g, options)
    want = _run(image.conv2d_reference, x, W, b, g, options)
    for a, c in zip([got[0], *got[1]], [want[0], *want[1]], strict=True):
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-9)


def test_few_channels_held_channels_first_take_the_transposed_rows(monkeypatch):
    """An RGB image takes `_conv2d_few_channels`; a convolution's channels-last output, many
    channels or groups take the channels-last rows."""
    taken = []
    few = image._conv2d_few_channels
    monkeypatch.setattr(image, "_conv2d_few_channels", lambda *a: taken.append(a) or few(*a))
    rng = np.random.default_rng(9)
    options = ((2, 2), (1, 1, 1, 1))
    rgb = Var(rng.standard_normal((2, 3, 8, 8)))
    image.conv2d(rgb, Var(rng.standard_normal((4, 3, 3, 3))), None, *options)
    assert len(taken) == 1
    last = image.conv2d(
        Var(rng.standard_normal((2, 4, 8, 8))),
        Var(rng.standard_normal((4, 4, 1, 1))),
        None,
        (1, 1),
        (0, 0, 0, 0),
    )
    assert not last.value.flags.c_contiguous  # channels last in memory
    image.conv2d(last, Var(rng.standard_normal((4, 4, 3, 3))), None, *options)
    image.conv2d(
        Var(rng.standard_normal((2, 6, 8, 8))),
        Var(rng.standard_normal((4, 6, 3, 3))),
        None,
        *options,
    )
    image.conv2d(rgb, Var(rng.standard_normal((3, 1, 3, 3))), None, *options, (1, 1), 3)
    assert len(taken) == 2  # the 1x1 convolution of 4 channels (rows of 4) took it too


@pytest.mark.parametrize("needs", [(False, True, True), (True, False, True), (True, True, False)])
def test_conv2d_gives_gradients_only_where_they_are_needed(needs):
    rng = np.random.default_rng(6)
    x, W, b = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3)), np.ones(5)
    options = ((2, 2), (1, 1, 1, 1), (1, 1), 1)
    g = rng.standard_normal((2, 5, 4, 4))
    _, grads = _run(image.conv2d, x, W, b, g, options, needs)
    _, grads_ref = _run(image.conv2d_reference, x, W, b, g, options, needs)
    for need, got, want in zip(needs, grads, grads_ref, strict=True):
        assert (got is not None) == need
        if need:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_conv2d_keeps_float32():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    g = rng.standard_normal((2, 4, 4, 4)).astype(np.float32)
    y, grads = _run(image.conv2d, x, W, b, g, ((2, 2), (1, 1, 1, 1)))
    assert y.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in grads)


def _relu_of_reference(x, W, b, *options):
    from nnspec.backends.numpy.activations import activate
    from nnspec.kinds.activation import Activation

    return activate(image.conv2d_reference(x, W, b, *options), Activation(name="relu"))


@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_with_relu_is_relu_of_the_reference_conv2d(stride, groups):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 4, 7, 6))
    W = rng.standard_normal((6, 4 // groups, 3, 3))
    b = rng.standard_normal(6)
    options = (stride, (1, 1, 1, 1), (1, 1), groups)
    g = rng.standard_normal((3, 6, 7 // stride[0] + (stride[0] == 2), 6 // stride[1]))
    y, grads = _run(lambda *a: image.conv2d(*a, relu=True), x, W, b, g, options)
    y_ref, grads_ref = _run(_relu_of_reference, x, W, b, g, options)
    assert (y == 0).any() and (y > 0).any()
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-10)
    for got, want in zip(grads, grads_ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_arrays_kept_for_reuse_are_not_reused_while_a_graph_holds_them():
    """Two forwards before either backward: the second may not write into the first's
    windows (nor its output); each backward is still the reference's."""
    rng = np.random.default_rng(11)
    x1, x2 = rng.standard_normal((2, 2, 3, 8, 8))
    W, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    g1, g2 = rng.standard_normal((2, 2, 4, 4, 4))
    options = ((2, 2), (1, 1, 1, 1), (1, 1), 1)
    leaves = [[Var(x, True), Var(W, True), Var(b, True)] for x in (x1, x2)]
    outs = [image.conv2d(*vs, *options, relu=True) for vs in leaves]
    for x, g, vs, out in zip((x1, x2), (g1, g2), leaves, outs, strict=True):
        y_ref, grads_ref = _run(_relu_of_reference, x, W, b, g, options)
        np.testing.assert_allclose(out.value, y_ref, rtol=0, atol=1e-10)
        add_grad(out, g)
        backward([out])
        for v, want in zip(vs, grads_ref, strict=True):
            np.testing.assert_allclose(v.grad, want, rtol=0, atol=1e-10)


GCN = """network gcn {
    input  features: [5, 3]
    input  adjacency: [5, 5]
    gcn    g1: 4, act=relu
    gcn    g2: 2
    features -> g1.features
    adjacency -> g1.adjacency, g2.adjacency
    g1 -> g2.features
}"""


def test_gcn_layers_reading_one_adjacency_normalise_it_once(monkeypatch):
    import nnspec
    from nnspec.backends.numpy import ops

    made = []
    normalise = ops.normalisation

    def counted(a):
        made.append(a)
        return normalise(a)

    monkeypatch.setattr(ops, "normalisation", counted)
    run = nnspec.loads(GCN).to_numpy(seed=0)
    rng = np.random.default_rng(8)
    upper = np.triu(rng.random((2, 5, 5)) < 0.4, 1)
    adjacency = (upper | upper.transpose(0, 2, 1)).astype(np.float64)
    run(rng.standard_normal((2, 5, 3)), adjacency)
    assert len(made) == 1
    run(rng.standard_normal((2, 5, 3)), adjacency)
    assert len(made) == 2  # once per forward


@pytest.mark.parametrize("needs", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("shared", [True, False])
def test_propagate_is_the_composed_normalised_adjacency_times_h(needs, shared):
    from nnspec.backends.numpy import ops

    rng = np.random.default_rng(9)
    upper = np.triu(rng.random((3, 6, 6)) < 0.4, 1)
    a = (upper | upper.transpose(0, 2, 1)) * rng.random((3, 6, 6))
    h = rng.standard_normal((3, 6, 4))
    g = rng.standard_normal((3, 6, 4))
    results = []
    for fused in (True, False):
        leaves = [Var(a, needs[0]), Var(h, needs[1])]
        if fused:
            made = ops.normalisation(a) if shared else None
            y = ops.propagate(*leaves, made)
        else:
            y = ops.matmul(ops.normalised_adjacency_composed(leaves[0]), leaves[1])
        add_grad(y, g)
        backward([y])
        results.append([y.value] + [leaf.grad for leaf in leaves])
    for got, want in zip(*results, strict=True):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (2, 1)])
@pytest.mark.parametrize("padding", [(0, 0), (1, 1), (2, 0)])
@pytest.mark.parametrize("output_padding", [(0, 0), (1, 0)])
@pytest.mark.parametrize("dilation", [(1, 1), (2, 1)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("outputs", [5, 9], ids=["few-outputs", "many-outputs"])
def test_conv_transpose2d_is_the_reference_conv_transpose2d(
    stride, padding, output_padding, dilation, bias, outputs
):
    """The fast transposed convolution (blocks by stride phase forward, conv2d's rows back)
    against `conv_transpose2d_reference`, values and gradients to 1e-10 in float64; with 5
    output channels (kernel rows of 2 * 5 < 16 numbers) the output comes channels first and
    its gradient's windows as `_conv2d_few_channels` takes an image's, with 9 channels last."""
    if output_padding[0] >= max(stride[0], dilation[0]):
        pytest.skip("output_padding must be smaller than the stride or the dilation")
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 4, 5, 6))
    W = rng.standard_normal((4, outputs, 3, 2))
    b = rng.standard_normal(outputs) if bias else None
    options = (stride, padding, output_padding, dilation)
    y, _ = _run(image.conv_transpose2d, x, W, b, None, options, (False, False, False))
    g = rng.standard_normal(y.shape)
    y, grads = _run(image.conv_transpose2d, x, W, b, g, options)
    y_ref, grads_ref = _run(image.conv_transpose2d_reference, x, W, b, g, options)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-10)
    for got, want in zip(grads, grads_ref, strict=True):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("outputs", [3, 9], ids=["few-outputs", "many-outputs"])
def test_conv_transpose2d_over_many_windows_is_the_reference(outputs):
    """Thousands of output windows, not a multiple of the block: an RGB output's weight gradient
    taken block by block (`_blocked_inner`) and the rest after the last whole block."""
    rng = np.random.default_rng(14)
    x, W, b = rng.standard_normal((5, 4, 11, 10)), rng.standard_normal((4, outputs, 4, 4)), None
    options = ((2, 2), (1, 1), (0, 0), (1, 1))
    y, _ = _run(image.conv_transpose2d, x, W, b, None, options, (False, False, False))
    assert y.shape[0] * y.shape[2] * y.shape[3] > 2 * image.BLOCK
    g = rng.standard_normal(y.shape)
    got = _run(image.conv_transpose2d, x, W, b, g, options)
    want = _run(image.conv_transpose2d_reference, x, W, b, g, options)
    for a, c in zip([got[0], *got[1][:2]], [want[0], *want[1][:2]], strict=True):
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-9)


@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
@pytest.mark.parametrize("outputs", [3, 4], ids=["few-outputs", "many-outputs"])
def test_conv_transpose2d_with_relu_is_relu_of_the_reference(stride, outputs):
    rng = np.random.default_rng(13)
    x, W = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, outputs, 4, 4))
    b = np.ones(outputs)
    options = (stride, (1, 1), (0, 0), (1, 1), 1)
    y, _ = _run(image.conv_transpose2d, x, W, b, None, (*options, True), (False,) * 3)
    g = rng.standard_normal(y.shape)
    y, grads = _run(image.conv_transpose2d, x, W, b, g, (*options, True))
    z, _ = _run(image.conv_transpose2d_reference, x, W, b, None, options, (False,) * 3)
    _, grads_ref = _run(image.conv_transpose2d_reference, x, W, b, g * (z > 0), options)
    np.testing.assert_allclose(y, np.maximum(z, 0.0), rtol=0, atol=1e-10)
    for got, want in zip(grads, grads_ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
