"""`init=`: each weight initialiser against PyTorch's nn.init function of the same name.

nnspec draws with its own NumPy generator, so values are compared in distribution: over a
512 x 512 weight the sample's std (or bounds) must match the formula and torch's own sample within
sampling error. Both backends must start from the very same arrays.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nnspec
from nnspec.backends.init import initial_params
from nnspec.summary import options_text


def weights(init: str, inputs: int = 512, units: int = 512, kind: str = "dense") -> np.ndarray:
    """The `[units, inputs]` weight of a dense layer written with `init=...`, seed 0."""
    model = nnspec.loads(
        f"network n {{\n    input x: {inputs}\n    {kind} h: {units}, init={init}\n    x -> h\n}}\n"
    )
    return initial_params(model.program, 0)["h.weight"].astype(np.float64)


def torch_weight(fill, rows: int = 512, cols: int = 512) -> np.ndarray:
    torch.manual_seed(0)
    w = torch.empty(rows, cols, dtype=torch.float64)
    fill(w)
    return w.numpy()


def same_spread(ours: np.ndarray, theirs: np.ndarray, std: float) -> None:
    # 262,144 draws: the sample std is within about 0.3% of the true one; 2% is far outside chance
    assert abs(ours.mean()) < 5 * std / math.sqrt(ours.size)
    assert ours.std() == pytest.approx(std, rel=0.02)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.02)


def test_xavier_is_xavier_uniform():
    ours, theirs = (
        weights("xavier", 256, 512),
        torch_weight(torch.nn.init.xavier_uniform_, 512, 256),
    )
    bound = math.sqrt(6 / (256 + 512))
    assert np.abs(ours).max() <= bound and np.abs(ours).max() > 0.99 * bound
    assert np.abs(theirs).max() <= bound
    same_spread(ours, theirs, bound / math.sqrt(3))


def test_kaiming_is_kaiming_uniform_with_torchs_defaults():
    ours = weights("kaiming", 256, 512)
    theirs = torch_weight(torch.nn.init.kaiming_uniform_, 512, 256)  # a=0, fan_in, leaky_relu
    bound = math.sqrt(6 / 256)  # gain sqrt(2), fan_in = 256 inputs
    assert np.abs(ours).max() <= bound and np.abs(ours).max() > 0.99 * bound
    same_spread(ours, theirs, bound / math.sqrt(3))


@pytest.mark.parametrize("written, std", [("normal(0.02)", 0.02), ("normal(std=0.5)", 0.5)])
def test_normal_is_normal_with_mean_zero(written, std):
    ours = weights(written)
    same_spread(ours, torch_weight(lambda w: torch.nn.init.normal_(w, 0.0, std)), std)
    # a normal's tails: about 0.27% of the draws lie beyond 3 std
    assert np.mean(np.abs(ours) > 3 * std) == pytest.approx(0.0027, abs=0.001)


def test_normal_alone_is_std_one_as_torch():
    same_spread(weights("normal"), torch_weight(torch.nn.init.normal_), 1.0)


@pytest.mark.parametrize("a, b", [(-0.3, 0.1), (2.0, 5.0)])
def test_uniform_is_uniform_between_a_and_b(a, b):
    ours = weights(f"uniform({a}, {b})")
    theirs = torch_weight(lambda w: torch.nn.init.uniform_(w, a, b))
    assert ours.min() >= np.float32(a) and ours.max() <= np.float32(b)
    assert ours.mean() == pytest.approx((a + b) / 2, abs=0.01 * (b - a))
    assert ours.std() == pytest.approx((b - a) / math.sqrt(12), rel=0.02)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.02)
    assert weights("uniform(a=-0.5, b=0.5)").min() >= -0.5


def test_uniform_alone_is_zero_to_one_as_torch():
    ours = weights("uniform", 64, 64)
    assert ours.min() >= 0 and ours.max() <= 1 and ours.mean() == pytest.approx(0.5, abs=0.02)


def test_zeros_is_exactly_zero_and_biases_stay():
    model = nnspec.loads("network n {\n    input x: 7\n    dense h: 5, init=zeros\n    x -> h\n}\n")
    params = initial_params(model.program, 0)
    assert not params["h.weight"].any()
    bound = 1 / math.sqrt(7)  # the bias as without init=: nn.Linear's U(+-1/sqrt(fan_in))
    assert params["h.bias"].any() and np.abs(params["h.bias"]).max() <= bound


@pytest.mark.parametrize(
    "inputs, units",
    [pytest.param(512, 512, marks=pytest.mark.slow), (256, 256), (256, 64), (64, 256)],
)
def test_orthogonal_has_orthonormal_rows_or_columns(inputs, units):
    w = weights("orthogonal", inputs, units)  # [units, inputs]
    gram = w @ w.T if units <= inputs else w.T @ w
    np.testing.assert_allclose(gram, np.eye(min(units, inputs)), atol=1e-5)
    theirs = torch_weight(torch.nn.init.orthogonal_, units, inputs)
    assert w.std() == pytest.approx(theirs.std(), rel=0.02)


def test_orthogonal_is_not_a_fixed_matrix():
    # Q is uniform over the orthogonal matrices (signs of R's diagonal): no bias towards +I
    w = weights("orthogonal", 256, 256)
    assert abs(np.trace(w)) < 5  # E[trace] = 0 and its variance is 1: 5 std away


@pytest.mark.parametrize(
    "layer, shape, fill",
    [
        # Conv2d(32, 64, 3): weight [64, 32, 3, 3], fan_in 32 * 9
        ("conv h: 64, kernel=3, init=kaiming", (64, 32, 3, 3), torch.nn.init.kaiming_uniform_),
        # ConvTranspose2d(32, 16, 4): weight [32, 16, 4, 4]; torch counts fan_in as 16 * 16
        ("deconv h: 16, kernel=4, init=xavier", (32, 16, 4, 4), torch.nn.init.xavier_uniform_),
        ("conv h: 64, kernel=3, init=orthogonal", (64, 32, 3, 3), torch.nn.init.orthogonal_),
    ],
)
def test_convolution_weights_count_fans_as_torch(layer, shape, fill):
    model = nnspec.loads(f"network n {{\n    input x: [32, 9, 9]\n    {layer}\n    x -> h\n}}\n")
    ours = initial_params(model.program, 0)["h.weight"].astype(np.float64)
    torch.manual_seed(0)
    theirs = torch.empty(shape, dtype=torch.float64)
    fill(theirs)
    theirs = theirs.numpy()
    assert ours.shape == shape
    if "orthogonal" in layer:  # [64, 32 * 9]: orthonormal rows
        flat = ours.reshape(shape[0], -1)
        np.testing.assert_allclose(flat @ flat.T, np.eye(shape[0]), atol=1e-5)
    else:  # both uniform: the same bound
        bound = np.abs(theirs).max()
        assert np.abs(ours).max() == pytest.approx(bound, rel=0.01)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.03)


def _inits_spec(epochs: int) -> str:
    return f"""
network n {{
    input  x: 2
    dense  a: 8, act=tanh, init=xavier
    dense  b: 8, act=relu, init=kaiming
    dense  c: 8, act=tanh, init=orthogonal
    dense  d: 8, act=tanh, init=uniform(-0.5, 0.5)
    dense  y: 1, act=sigmoid, init=normal(0.1)
    x -> a -> b -> c -> d -> y
}}

train {{
    data      = xor
    loss      = mse
    optimizer = sgd(lr=0.5)
    batch     = full
    epochs    = {epochs}
    seed      = 0
}}
"""


def test_the_same_seed_gives_both_backends_the_same_values():
    model = nnspec.loads(_inits_spec(2))
    torch_params = {k: v.detach().numpy() for k, v in model.to_torch(seed=3).state_dict().items()}
    numpy_params = model.to_numpy(seed=3).params
    assert set(torch_params) == set(numpy_params)
    for name, value in numpy_params.items():
        np.testing.assert_array_equal(torch_params[name], value, err_msg=name)
    assert not np.array_equal(numpy_params["a.weight"], model.to_numpy(seed=4).params["a.weight"])


def test_recurrent_and_embedding_weights_take_init():
    model = nnspec.loads(
        "network n {\n    input t: 1, seq\n    embedding e: 50, 16, init=normal(0.02)\n"
        "    lstm l: 32, init=orthogonal\n    gru g: 8, init=zeros\n    t -> e -> l -> g\n}\n"
    )
    params = initial_params(model.program, 0)
    assert params["e.weight"].std() == pytest.approx(0.02, rel=0.2)
    for name in ("weight_ih", "weight_hh"):  # each [4 * 32, inputs]: orthonormal columns
        w = params[f"l.{name}"].astype(np.float64)
        np.testing.assert_allclose(w.T @ w, np.eye(w.shape[1]), atol=1e-5)
    assert not params["g.weight_ih"].any() and not params["g.weight_hh"].any()
    assert params["l.bias_ih"].any() and params["g.bias_hh"].any()  # biases as without init=
    torch_params = model.to_torch().state_dict()
    for name, value in model.to_numpy().params.items():
        np.testing.assert_array_equal(torch_params[name].numpy(), value, err_msg=name)


def test_init_is_shown_as_written():
    model = nnspec.loads(_inits_spec(2))
    layer = model.program.layer("d")
    shown = options_text(layer.kind, layer.options)
    assert shown == " 8, act=tanh, init=uniform(a=-0.5, b=0.5)"


@pytest.mark.parametrize(
    "written, message, hint",
    [
        (
            "xavir",
            "init of 'h' must be one of xavier, kaiming, normal(std)",
            "did you mean 'xavier'?",
        ),
        ("normal(-1)", "normal's std must be >= 0, got -1", "normal(0.02)"),
        ("uniform(1, 0)", "uniform's a must be <= b, got a=1 > b=0", "uniform(0, 1)"),
        ("normal(mean=1)", "normal has no setting 'mean'", "std"),
        ("normal(0.1, 0.2)", "normal takes std, got too many values", None),
        ("zeros(1)", "zeros takes no settings", None),
        ('normal("a")', "normal's std must be a number", "normal(std=0.1)"),
        ("3", "must be an initialiser such as xavier", None),
    ],
)
def test_a_bad_init_is_e207_at_the_option(written, message, hint):
    text = f"network n {{\n    input x: 4\n    dense h: 2, init={written}\n    x -> h\n}}\n"
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    error = caught.value
    assert error.code == "E207"
    assert message in error.message
    assert (error.span.line, error.span.column) == (3, 22)
    if hint is not None:
        assert hint in error.hint


def test_init_and_literal_weights_contradict():
    text = "network n {\n    input x: 1\n    dense h: 1, weights=[[2]], init=zeros\n    x -> h\n}\n"
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    assert caught.value.code == "E209" and caught.value.span.column == 37


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_a_spec_with_inits_trains_on_both_backends(backend, tmp_path):
    path = tmp_path / "inits.nn"
    path.write_text(_inits_spec(2))
    result = nnspec.train(path, backend, tmp_path / "run")
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["torch", "numpy", "onnx"])
def test_a_spec_with_inits_compiles_with_its_initial_params(target, tmp_path):
    model = nnspec.loads(_inits_spec(2))
    paths = model.compile(target, tmp_path / f"inits.{'onnx' if target == 'onnx' else 'py'}")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)


def test_init_takes_constants_expressions_and_block_parameters():
    model = nnspec.loads(
        "let s = 0.02\n"
        "block stage(k) {\n    input i: 4\n    dense d: 4, init=k\n    i -> d\n}\n"
        "network n {\n    input x: 4\n    dense h: 64, init=normal(s * 2), repeat=2\n"
        "    dense y: 4, init=uniform(-s, s)\n    stage st: k=orthogonal\n"
        "    x -> h -> y -> st\n}\n"
    )
    params = initial_params(model.program, 0)
    assert params["h.2.weight"].std() == pytest.approx(0.04, rel=0.1)  # 4,096 draws
    assert np.abs(params["y.weight"]).max() <= np.float32(0.02)
    w = params["st.d.weight"].astype(np.float64)
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-6)
