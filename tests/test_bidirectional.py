"""`bidirectional` on rnn, lstm and gru: parameters named, shaped and counted as
nn.RNN/nn.LSTM/nn.GRU(bidirectional=True)'s, PyTorch's own module giving the layer's outputs from
the same weights, both backends alike (values and gradients), and the errors of a bidirectional
layer where it cannot work."""

from __future__ import annotations

import numpy as np
import pytest

import nnspec
from nnspec.errors import SpecError

torch = pytest.importorskip("torch")

MODULES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
CASES = [
    ("lstm", "", {}),
    ("gru", "", {}),
    ("rnn", "", {"nonlinearity": "tanh"}),
    ("lstm", ", layers=2", {"num_layers": 2}),
    ("gru", ", layers=3, bias=false", {"num_layers": 3, "bias": False}),
    ("rnn", ", act=relu, layers=2", {"nonlinearity": "relu", "num_layers": 2}),
]


def _spec(kind: str, options: str) -> str:
    return f"network n {{\n input x: 3, seq\n {kind} h: 5, bidirectional{options}\n x -> h\n}}"


@pytest.mark.parametrize("kind, options, reference", CASES)
def test_the_layer_is_pytorchs_bidirectional_module(kind, options, reference):
    """Names (`..._l0_reverse`), shapes, order and count as nn.LSTM(3, 5, bidirectional=True);
    loaded with the spec's weights, PyTorch's module gives the layer's outputs, forward and
    backward features joined per step, on both backends."""
    model = nnspec.loads(_spec(kind, options))
    assert model.program.layer("h").shape.dims == (10,)
    theirs = MODULES[kind](3, 5, batch_first=True, bidirectional=True, **reference).double()
    assert model.program.param_count == sum(p.numel() for p in theirs.parameters())
    net = model.to_torch(seed=1, dtype="float64").eval()
    ours = {key.removeprefix("h."): value for key, value in net.state_dict().items()}
    assert list(ours) == list(theirs.state_dict())  # names and nn.LSTM's order
    assert any(name.endswith("_l0_reverse") for name in ours)
    theirs.load_state_dict(ours)
    x = torch.randn(4, 7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = theirs(x)[0].detach().numpy()
    assert expected.shape == (4, 7, 10)
    np.testing.assert_allclose(net(x).detach().numpy(), expected, atol=1e-10)
    run = model.to_numpy(dtype="float64").eval()
    run.load(net.state_dict())
    np.testing.assert_allclose(run(x.numpy()), expected, atol=1e-10)


def test_an_rnn_of_another_activation_steps_both_ways():
    """act=sigmoid has no fused kernel: the backend steps both cells itself, and gets what the
    two directions compute by hand (the backward one from the last step)."""
    model = nnspec.loads(_spec("rnn", ", act=sigmoid, bias=false"))
    net = model.to_torch(seed=0, dtype="float64")
    p = {k: v.numpy() for k, v in net.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((2, 6, 3))

    def run(w_ih, w_hh, xs):
        h, out = np.zeros((2, 5)), []
        for xt in xs:
            h = 1 / (1 + np.exp(-(xt @ w_ih.T + h @ w_hh.T)))
            out.append(h)
        return np.stack(out, 1)

    steps = list(x.transpose(1, 0, 2))
    forward = run(p["h.weight_ih_l0"], p["h.weight_hh_l0"], steps)
    backward = run(p["h.weight_ih_l0_reverse"], p["h.weight_hh_l0_reverse"], steps[::-1])[:, ::-1]
    expected = np.concatenate([forward, backward], -1)
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), expected, atol=1e-12)
    numpy_run = model.to_numpy(dtype="float64")
    numpy_run.load(net.state_dict())
    np.testing.assert_allclose(numpy_run(x), expected, atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_both_backends_take_the_same_gradients(kind):
    """An encoder read to its last step: every parameter's gradient, and the input's, equal."""
    spec = f"""network n {{
    input x: 3, seq
    {kind} h: 4, bidirectional, layers=2
    dense y: 2
    x -> h -> y
    output y: last
}}"""
    model = nnspec.loads(spec)
    net = model.to_torch(seed=0, dtype="float64")
    run = model.to_numpy(dtype="float64")
    run.load(net.state_dict())
    x = np.random.default_rng(1).standard_normal((3, 5, 3))
    g = np.random.default_rng(2).standard_normal((3, 2))
    xt = torch.tensor(x, requires_grad=True)
    net(xt).backward(torch.from_numpy(g))
    run(x)
    grads = run.backward(g)
    for name, param in net.named_parameters():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), atol=1e-9, err_msg=name)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), atol=1e-9)


def test_a_state_vector_starts_both_directions():
    """`s -> h.state` with a bidirectional layer: h_0 of every layer and direction, as nn.GRU's
    h_0 [2, B, units] holding the vector twice."""
    spec = """network n {
    input x: 3, seq
    input s: 5
    gru h: 5, bidirectional
    x -> h
    s -> h.state
}"""
    model = nnspec.loads(spec)
    net = model.to_torch(seed=0, dtype="float64")
    theirs = torch.nn.GRU(3, 5, batch_first=True, bidirectional=True).double()
    theirs.load_state_dict({k.removeprefix("h."): v for k, v in net.state_dict().items()})
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    s = torch.randn(2, 5, dtype=torch.float64)
    expected = theirs(x, s.unsqueeze(0).expand(2, -1, -1).contiguous())[0].detach().numpy()
    np.testing.assert_allclose(net(x, s).detach().numpy(), expected, atol=1e-12)
    run = model.to_numpy(dtype="float64")
    run.load(net.state_dict())
    np.testing.assert_allclose(run(x.numpy(), s.numpy()), expected, atol=1e-12)


def _error(spec: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        nnspec.loads(spec)
    return caught.value


def test_a_bidirectional_layer_on_a_cycle_is_refused():
    error = _error("""network n {
    input x: 3, seq
    gru h: 4, bidirectional
    dense y: 2
    x -> h -> y
    y ~> h
}""")
    assert error.code == "E412"
    assert "bidirectional" in error.message and "cycle" in error.message
    assert error.hint


@pytest.mark.parametrize("which", ["enc", "dec"])
def test_a_bidirectional_layer_hands_no_final_state(which):
    options = {
        "enc": ("lstm e: 4, bidirectional", "lstm d: 4"),
        "dec": ("lstm e: 4", "lstm d: 4, bidirectional"),
    }[which]
    error = _error(f"""network n {{
    input x: 3, seq
    input y: 3, seq
    {options[0]}
    {options[1]}
    x -> e
    y -> d
    e -> d.state
}}""")
    assert error.code == "E414"
    assert "bidirectional" in error.message
