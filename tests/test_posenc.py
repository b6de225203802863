"""Positional encodings (`posenc p: sinusoidal` / `learned`) and the readouts over time (`last`,
`first`): against the formulas written in PyTorch, both backends alike in values and gradients,
their errors at the option."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnspec
from nnspec.errors import SpecError

torch = pytest.importorskip("torch")


def vaswani(steps: int, width: int) -> torch.Tensor:
    """The encoding as the PyTorch tutorial writes it ("Language modeling with nn.Transformer"),
    float64, for an even width; an odd one keeps its last sine column."""
    position = torch.arange(steps, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, width, 2, dtype=torch.float64) * (-math.log(1e4) / width))
    pe = torch.zeros(steps, width, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)[:, : width // 2]
    return pe


def _both(spec: str, seed: int = 0):
    model = nnspec.loads(spec)
    net = model.to_torch(seed=seed, dtype="float64").eval()
    run = model.to_numpy(seed=seed, dtype="float64").train(False)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(run.params[name], value.numpy())
    return model, net, run


@pytest.mark.parametrize("width", [6, 7])
def test_sinusoidal_is_vaswanis_formula_with_no_parameters(width):
    spec = f"network n {{\n input x: {width}, seq\n posenc p: sinusoidal\n x -> p\n}}"
    model, net, run = _both(spec)
    assert model.program.param_count == 0
    x = np.random.default_rng(0).normal(size=(3, 11, width))
    want = torch.tensor(x) + vaswani(11, width)
    torch.testing.assert_close(net(torch.tensor(x)), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(run(x), want.numpy(), rtol=1e-12, atol=1e-12)


def test_learned_is_a_parameter_of_max_len_rows_added_step_by_step():
    spec = "network n {\n input x: 4, seq\n posenc p: learned, max_len=9\n x -> p\n}"
    model, net, run = _both(spec)
    assert {k: v.shape for k, v in model.program.parameters().items()} == {"p.weight": (9, 4)}
    assert model.program.param_count == torch.nn.Embedding(9, 4).weight.numel()
    weight = net.state_dict()["p.weight"]
    assert abs(float(weight.std()) - 1.0) < 0.5  # N(0, 1), as nn.Embedding starts
    x = np.random.default_rng(0).normal(size=(2, 6, 4))
    want = torch.tensor(x) + weight[:6]
    torch.testing.assert_close(net(torch.tensor(x)), want)
    np.testing.assert_allclose(run(x), want.numpy(), rtol=1e-12)


def test_max_len_defaults_to_a_fixed_length_and_items_take_their_count():
    program = nnspec.loads(
        "network n {\n input x: 4, seq=12\n posenc p: learned\n x -> p\n}"
    ).program
    assert program.layer("p").params["weight"].shape == (12, 4)
    program = nnspec.loads("network n {\n input x: [5, 3]\n posenc p: learned\n x -> p\n}").program
    assert program.layer("p").params["weight"].shape == (5, 3)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_a_longer_sequence_than_max_len_is_refused_when_it_comes(backend):
    model = nnspec.loads("network n {\n input x: 4, seq\n posenc p: learned, max_len=5\n x -> p\n}")
    run = model.to_torch() if backend == "torch" else model.to_numpy()
    x = np.zeros((2, 6, 4), np.float32)
    with pytest.raises(ValueError, match="has 5 positions .max_len., but the sequence has 6"):
        run(torch.tensor(x) if backend == "torch" else x)


SPEC = """network n {
    input     x: 6, seq
    posenc    s: sinusoidal
    posenc    p: learned, max_len=8
    attention a: heads=2, causal
    lstm      h: 5, layers=2
    last      l
    first     f
    dense     y: 3
    x -> s -> p -> a -> h -> l -> y
    h -> f -> y
}"""


def test_both_backends_agree_on_values_and_gradients():
    """A causal attention model with both encodings, read at both ends: outputs and every
    gradient to 1e-6 in float64."""
    _, net, run = _both(SPEC, seed=4)
    x = np.random.default_rng(1).normal(size=(3, 7, 6))
    seed = np.random.default_rng(2).normal(size=(3, 3))
    ours = run(x)
    grads = run.backward(seed)
    xt = torch.tensor(x, requires_grad=True)
    theirs = net(xt)
    (theirs * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=1e-6, atol=1e-12)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-6, atol=1e-12, err_msg=name)
    assert not np.any(grads["p.weight"][7:])  # the eighth position is never reached


def test_last_and_first_are_the_ends_of_the_sequence():
    spec = "network n {\n input x: 3, seq\n last l\n first f\n output l, f\n x -> l\n x -> f\n}"
    model, net, run = _both(spec)
    assert model.program.layer("l").shape.timed is False
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    ours = run(x)
    np.testing.assert_array_equal(ours["l"], x[:, -1])
    np.testing.assert_array_equal(ours["f"], x[:, 0])
    grads = run.backward({"l": np.ones((2, 3)), "f": 2 * np.ones((2, 3))})
    want = np.zeros_like(x)
    want[:, -1] += 1
    want[:, 0] += 2
    np.testing.assert_array_equal(grads["x"], want)
    theirs = net(torch.tensor(x))
    np.testing.assert_array_equal(theirs["l"].numpy(), x[:, -1])


@pytest.mark.parametrize(
    "lines, code, at",
    [
        ("input x: 4, seq\n    posenc p: learned", "E261", "learned"),
        ("input x: 4, seq=9\n    posenc p: learned, max_len=8", "E262", "8"),
        ("input x: 4, seq\n    posenc p: sinusoidal, max_len=8", "E209", "8"),
        ("input x: 4, seq\n    posenc p: cosine", "E207", "cosine"),
        ("input x: 4\n    posenc p: sinusoidal", "E402", "p"),
        ("input x: 4\n    last p", "E407", "p"),
        ("input x: [3, 4]\n    first p", "E407", "p"),
    ],
)
def test_errors_point_at_the_value(lines, code, at):
    spec = f"network n {{\n    {lines}\n    x -> p\n}}"
    with pytest.raises(SpecError) as caught:
        nnspec.loads(spec)
    error = caught.value
    assert error.code == code, error
    line = spec.splitlines()[error.span.line - 1]
    assert line[error.span.column - 1 :].startswith(at), (line, error.span)


def test_init_sets_the_attention_projections_and_the_learned_positions():
    """init= on attention re-draws its four projection weights (biases stay zero) as torch's
    nn.init function would, and on a learned posenc its positions; both backends start alike."""
    model = nnspec.loads(
        "network n {\n input x: 32, seq\n posenc p: learned, max_len=64, init=normal(0.02)\n"
        " attention a: heads=4, init=orthogonal\n x -> p -> a\n}"
    )
    net = model.to_torch(seed=1)
    params = net.state_dict()
    for port in "qkvo":
        w = params[f"a.weight_{port}"].double()
        torch.testing.assert_close(w @ w.T, torch.eye(32, dtype=torch.float64), atol=1e-5, rtol=0)
        assert not params[f"a.bias_{port}"].any()
    assert abs(float(params["p.weight"].std()) - 0.02) < 0.002
    run = model.to_numpy(seed=1)
    for name, value in params.items():
        np.testing.assert_array_equal(run.params[name], value.numpy())


def test_init_on_sinusoids_is_E209():
    with pytest.raises(SpecError) as caught:
        nnspec.loads("network n {\n input x: 4, seq\n posenc p: sinusoidal, init=zeros\n x -> p\n}")
    assert caught.value.code == "E209"
    assert "init= is for learned positions" in str(caught.value)
