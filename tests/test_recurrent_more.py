"""Stacked recurrent layers (`layers=N`, `dropout` between them): parameter names, shapes and
counts as nn.LSTM/nn.GRU/nn.RNN(num_layers=N), the same outputs as PyTorch's own modules, and
both backends alike (values and gradients, over a whole sequence and inside a `~>` loop)."""

from __future__ import annotations

import numpy as np
import pytest

import nnspec
from nnspec.errors import SpecError

torch = pytest.importorskip("torch")

MODULES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}


def _stacked(kind: str, options: str = "", loop: bool = False) -> str:
    back = "    y ~> h\n" if loop else ""
    return f"""network n {{
    input x: 3, seq
    {kind} h: 5, layers=3{options}
    dense y: 2
    x -> h -> y
{back}}}"""


def _twins(spec: str, seed: int = 0):
    """The spec on both backends in float64, the NumPy run holding the torch module's values."""
    model = nnspec.loads(spec)
    net = model.to_torch(seed=seed, dtype="float64")
    run = model.to_numpy(seed=seed, dtype="float64")
    for name, value in net.state_dict().items():
        run.params[name][...] = value.numpy()
    return model, net, run


@pytest.mark.parametrize(
    "kind, options, reference",
    [
        ("lstm", ", dropout=0.3", {}),
        ("gru", ", dropout=0.3", {}),
        ("rnn", "", {"nonlinearity": "tanh"}),
        ("rnn", ", act=relu, bias=false", {"nonlinearity": "relu", "bias": False}),
    ],
)
def test_a_stack_is_pytorchs_own_module(kind, options, reference):
    """The same names, shapes and count as nn.LSTM(3, 5, num_layers=3); loaded with the spec's
    parameters, PyTorch's module gives the layer's outputs (evaluation: no dropout)."""
    spec = f"network n {{\n input x: 3, seq\n {kind} h: 5, layers=3{options}\n x -> h\n}}"
    model = nnspec.loads(spec)
    theirs = MODULES[kind](3, 5, 3, batch_first=True, dropout=0.3, **reference).double().eval()
    assert model.program.param_count == sum(p.numel() for p in theirs.parameters())
    net = model.to_torch(dtype="float64").eval()
    ours = {key.removeprefix("h."): value for key, value in net.state_dict().items()}
    assert {k: v.shape for k, v in ours.items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    assert list(ours) == list(theirs.state_dict())  # in nn.LSTM's order too
    theirs.load_state_dict(ours)
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    torch.testing.assert_close(net(x), theirs(x)[0], rtol=1e-6, atol=1e-12)
    run = model.to_numpy(dtype="float64").train(False)
    for name, value in net.state_dict().items():
        run.params[name][...] = value.numpy()
    np.testing.assert_allclose(run(x.numpy()), theirs(x)[0].detach().numpy(), rtol=1e-6)


def test_one_layer_keeps_the_cells_names():
    """layers=1 is the cell of before: `weight_ih`, as nn.LSTMCell, not `weight_ih_l0`."""
    program = nnspec.loads(_stacked("lstm").replace("layers=3", "layers=1")).program
    assert list(program.layer("h").params) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


@pytest.mark.parametrize("loop", [False, True], ids=["sequence", "loop"])
@pytest.mark.parametrize(
    "kind, options",
    [("lstm", ""), ("gru", ""), ("rnn", ""), ("rnn", ", act=sigmoid"), ("rnn", ", bias=false")],
)
def test_both_backends_agree_on_values_and_gradients(kind, options, loop):
    """Outputs and the gradient of every parameter and the input, float64, to 1e-6, over a
    whole sequence (the fused kernels) and stepped inside a `~>` loop."""
    _, net, run = _twins(_stacked(kind, options, loop))
    net.eval()
    run.train(False)
    x = np.random.default_rng(1).normal(size=(4, 6, 3))
    seed = np.random.default_rng(2).normal(size=(4, 6, 2))
    ours = run(x)
    grads = run.backward(seed)
    xt = torch.tensor(x, requires_grad=True)
    theirs = net(xt)
    (theirs * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=1e-6, atol=1e-12)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-6, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_dropout_acts_between_layers_in_training_only(kind):
    """In training the outputs change with the dropout masks (each backend its own), in
    evaluation they are the same on both; with dropout=0 training changes nothing."""
    _, net, run = _twins(_stacked(kind, ", dropout=0.5"))
    x = np.random.default_rng(1).normal(size=(8, 6, 3))
    net.eval()
    run.train(False)
    eval_torch, eval_numpy = net(torch.tensor(x)).detach().numpy(), run(x)
    np.testing.assert_allclose(eval_numpy, eval_torch, rtol=1e-6)
    net.train()
    run.train(True)
    assert not np.allclose(net(torch.tensor(x)).detach().numpy(), eval_torch)
    assert not np.allclose(run(x), eval_numpy)
    _, net, run = _twins(_stacked(kind))
    run.train(True)
    net.train()
    run_eval = nnspec.loads(_stacked(kind)).to_numpy(dtype="float64").train(False)
    for name in run.params:
        run_eval.params[name][...] = run.params[name]
    np.testing.assert_allclose(run(x), run_eval(x), rtol=1e-12)


def test_numpy_dropout_between_layers_is_pytorchs_scaling():
    """Between the layers a value is dropped (0) or kept and scaled by 1 / (1 - p): two rnn
    layers passing their input on (identity weights and activation, no recurrence, no bias)
    turn ones into 0 or 2, about 1 on average, as F.dropout would."""
    spec = (
        "network n {\n input x: 2, seq\n rnn h: 2, layers=2, act=identity, dropout=0.5\n x -> h\n}"
    )
    run = nnspec.loads(spec).to_numpy(dtype="float64").train(True)
    for key in run.params:
        run.params[key][...] = 0.0
    run.params["h.weight_ih_l0"][...] = np.eye(2)
    run.params["h.weight_ih_l1"][...] = np.eye(2)
    x = np.ones((2000, 1, 2))
    y = run(x)
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert abs(y.mean() - 1.0) < 0.05


@pytest.mark.parametrize(
    "line, code, where",
    [
        ("lstm h: 8, dropout=0.5", "E260", "dropout"),
        ("gru h: 8, layers=1, dropout=0.2", "E260", "dropout"),
        ("lstm h: 8, layers=0", "E207", "layers"),
        ("gru h: 8, layers=2, dropout=1", "E207", "dropout"),
        ("rnn h: 8, layers=2.5", "E203", "layers"),
    ],
)
def test_wrong_settings_are_errors_at_the_value(line, code, where):
    spec = f"network n {{\n    input x: 3, seq\n    {line}\n    x -> h\n}}"
    with pytest.raises(SpecError) as caught:
        nnspec.loads(spec)
    error = caught.value
    assert error.code == code, error
    assert error.span.line == 3
    assert spec.splitlines()[2][error.span.column - 1 :].startswith(line.split(f"{where}=")[1]), (
        error.span
    )


# ---- a state from another layer: `enc -> l -> dec.state` -------------------------------------
def _seeded(kind: str, layers: int, options: str = "", loop: bool = False) -> str:
    back = "    y ~> h\n" if loop else ""
    return f"""network n {{
    input x: 3, seq
    input z: 2
    dense s: 5, act=tanh
    {kind} h: 5, layers={layers}{options}
    dense y: 2
    x -> h -> y
    z -> s -> h.state
{back}}}"""


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_a_state_is_pytorchs_h0_for_every_layer(kind, layers):
    """`s -> h.state` is nn.LSTM(x, (h_0, c_0)) with h_0 = s for every layer and c_0 = 0."""
    model = nnspec.loads(_seeded(kind, layers))
    net = model.to_torch(dtype="float64").eval()
    theirs = MODULES[kind](3, 5, layers, batch_first=True).double()
    theirs.load_state_dict(
        {
            key.removeprefix("h.") + ("_l0" if layers == 1 else ""): value
            for key, value in net.state_dict().items()
            if key.startswith("h.")
        }
    )
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    z = torch.randn(4, 2, dtype=torch.float64)
    s = net.s(z).tanh()
    h0 = s.unsqueeze(0).expand(layers, -1, -1).contiguous()
    hx = (h0, torch.zeros_like(h0)) if kind == "lstm" else h0
    want = net.y(theirs(x, hx)[0])
    torch.testing.assert_close(net(x=x, z=z), want, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("loop", [False, True], ids=["sequence", "loop"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind, options", [("lstm", ""), ("gru", ""), ("rnn", ", act=sigmoid")])
def test_a_state_takes_its_gradient_alike_on_both_backends(kind, options, layers, loop):
    _, net, run = _twins(_seeded(kind, layers, options, loop))
    net.eval()
    run.train(False)
    rng = np.random.default_rng(0)
    x, z, seed = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 2)), rng.normal(size=(4, 6, 2))
    ours = run(x=x, z=z)
    grads = run.backward(seed)
    xt, zt = torch.tensor(x, requires_grad=True), torch.tensor(z, requires_grad=True)
    theirs = net(x=xt, z=zt)
    (theirs * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(grads["z"], zt.grad.numpy(), rtol=1e-6, atol=1e-12)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-6, atol=1e-12, err_msg=name)


@pytest.mark.parametrize(
    "lines, code, message",
    [
        (
            "dense enc: 8\n lstm dec: 8\n x -> enc -> dec.state\n x -> dec",
            "E263",
            "receives the sequence [T, 8]",
        ),
        (
            "lstm enc: 8\n last l\n gru dec: 16\n x -> enc -> l -> dec.state\n x -> dec",
            "E263",
            "is one vector [16] per example, but it receives [8]",
        ),
        ("input z: 8\n gru dec: 8\n z -> dec.state\n x -> dec.hidden", "E303", "hidden"),
        (
            "lstm dec: 4\n dense y: 4\n x -> dec -> y\n y ~> dec.state",
            "E263",
            "'y ~> dec.state': the state of 'dec' is read once, before the first step",
        ),
    ],
)
def test_a_state_that_does_not_fit_is_an_error_at_the_layer(lines, code, message):
    spec = f"network n {{\n input x: 3, seq\n {lines}\n}}"
    with pytest.raises(SpecError) as caught:
        nnspec.loads(spec)
    assert caught.value.code == code, caught.value
    assert message in str(caught.value)


# ---- an encoder's final state: `enc -> dec.state` straight from a recurrent layer --------------
def _handed(kind: str, layers: int, options: str = "", loop: bool = False) -> str:
    back = "    y ~> dec\n" if loop else ""
    return f"""network n {{
    input x: 3, seq
    input z: 2, seq
    {kind} enc: 5, layers={layers}{options}
    {kind} dec: 5, layers={layers}{options}
    dense y: 2
    x -> enc -> dec.state
    z -> dec -> y
{back}}}"""


def _pair(net, kind: str, layers: int, **reference):
    """The hand-written PyTorch pair `enc`, `dec` (nn.LSTM(num_layers=layers)) and the head,
    holding the spec's parameters."""
    enc = MODULES[kind](3, 5, layers, batch_first=True, **reference).double()
    dec = MODULES[kind](2, 5, layers, batch_first=True, **reference).double()
    state = net.state_dict()
    for name, module in (("enc", enc), ("dec", dec)):
        module.load_state_dict(
            {
                key.removeprefix(f"{name}.") + ("_l0" if layers == 1 else ""): value
                for key, value in state.items()
                if key.startswith(f"{name}.")
            }
        )
    return enc, dec


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_an_encoders_final_state_is_pytorchs_h_and_c(kind, layers):
    """`enc -> dec.state` is `out, (h, c) = enc(x); dec(z, (h, c))` (Sutskever et al. 2014):
    every stacked layer's h, and an lstm's c, start the decoder's same layer; both backends
    give the hand-written pair's outputs and gradients (float64, to 1e-6)."""
    _, net, run = _twins(_handed(kind, layers))
    net.eval()
    run.train(False)
    enc, dec = _pair(net, kind, layers)
    rng = np.random.default_rng(3)
    x, z, seed = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 6, 2))
    xt, zt = torch.tensor(x, requires_grad=True), torch.tensor(z)
    _, hx = enc(xt)
    want = net.y(dec(zt, hx)[0])
    ours = net(x=torch.tensor(x), z=zt)
    torch.testing.assert_close(ours, want, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(run(x=x, z=z), want.detach().numpy(), rtol=1e-6, atol=1e-12)
    grads = run.backward(seed)
    (want * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=1e-6, atol=1e-12)
    theirs = {f"enc.{k}": p.grad for k, p in enc.named_parameters()}
    theirs |= {f"dec.{k}": p.grad for k, p in dec.named_parameters()}
    for key, grad in theirs.items():
        key = key.removesuffix("_l0") if layers == 1 else key
        assert np.abs(grad.numpy()).max() > 0, key  # the encoder's too, through h and c
        np.testing.assert_allclose(grads[key], grad.numpy(), rtol=1e-6, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("loop", [False, True], ids=["sequence", "loop"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize(
    "kind, options", [("lstm", ""), ("gru", ", bias=false"), ("rnn", ", act=sigmoid")]
)
def test_a_final_state_takes_its_gradient_alike_on_both_backends(kind, options, layers, loop):
    """The decoder over a whole sequence or stepped in a `~>` loop, an rnn with an activation
    PyTorch's kernels lack: both backends' values and gradients alike."""
    _, net, run = _twins(_handed(kind, layers, options, loop))
    net.eval()
    run.train(False)
    rng = np.random.default_rng(4)
    x, z, seed = rng.normal(size=(3, 5, 3)), rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 5, 2))
    ours = run(x=x, z=z)
    grads = run.backward(seed)
    xt = torch.tensor(x, requires_grad=True)
    theirs = net(x=xt, z=torch.tensor(z))
    (theirs * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=1e-6, atol=1e-12)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-6, atol=1e-12, err_msg=name)


def test_the_vector_and_the_final_state_forms_differ():
    """`enc -> l -> dec.state` (last l) gives h_0 = the top layer's last output to every layer
    and c_0 = 0; `enc -> dec.state` gives each layer its own h and c."""
    vector = _handed("lstm", 2).replace("lstm dec", "last l\n    lstm dec")
    vector = vector.replace("enc -> dec.state", "enc -> l -> dec.state")
    _, net, _ = _twins(_handed("lstm", 2))
    other = nnspec.loads(vector).to_torch(dtype="float64").eval()
    other.load_state_dict(net.state_dict())
    x, z = torch.randn(2, 4, 3, dtype=torch.float64), torch.randn(2, 4, 2, dtype=torch.float64)
    assert not torch.allclose(net.eval()(x=x, z=z), other(x=x, z=z))


@pytest.mark.parametrize(
    "enc, dec, message",
    [
        ("lstm enc: 5", "gru dec: 5", "'enc' (lstm of 5 units), so it must be the same: it is gru"),
        ("gru enc: 5", "gru dec: 6", "(gru of 5 units), so it must be the same: it is gru of 6"),
        ("rnn enc: 5, layers=2", "rnn dec: 5", "(rnn of 5 units in 2 layers), so it must be"),
    ],
)
def test_a_final_state_of_another_encoder_is_E263_naming_both(enc, dec, message):
    spec = f"network n {{\n input x: 3, seq\n {enc}\n {dec}\n x -> enc -> dec.state\n x -> dec\n}}"
    with pytest.raises(SpecError) as caught:
        nnspec.loads(spec)
    assert caught.value.code == "E263", caught.value
    assert message in str(caught.value)
    assert caught.value.span.line == 4
    assert "make 'dec'" in caught.value.hint and "as 'enc' is" in caught.value.hint


def test_a_final_state_from_a_cycle_is_E263():
    spec = """network n {
 input x: 3, seq
 lstm enc: 4
 dense f: 3
 lstm dec: 4
 dense y: 2
 x -> enc -> f -> y
 f ~> enc
 x -> dec -> y
 enc -> dec.state
}"""
    with pytest.raises(SpecError) as caught:
        nnspec.loads(spec)
    assert caught.value.code == "E263", caught.value
    assert "steps on a cycle through `~>`" in str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize("loop", [False, True], ids=["sequence", "loop"])
@pytest.mark.parametrize(
    "kind, layers, options",
    [("lstm", 2, ""), ("lstm", 1, ", bias=false"), ("gru", 2, ""), ("rnn", 1, ", act=sigmoid")],
)
def test_a_final_state_compiles_to_what_the_backends_compute(kind, layers, options, loop, tmp_path):
    """The torch, NumPy and ONNX files (ONNX's LSTM/GRU from initial_h/initial_c, giving
    Y_h/Y_c; Scans carrying their states out) equal the NumPy backend, in float32."""
    from conftest import import_file

    from nnspec.backends.init import initial_params
    from nnspec.compile import emit
    from nnspec.compile.common import weights_file

    model = nnspec.loads(_handed(kind, layers, options, loop))
    params = initial_params(model.program, seed=1)
    run = model.to_numpy().train(False)
    run.load(params)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 5, 3)).astype(np.float32)
    z = rng.normal(size=(3, 5, 2)).astype(np.float32)
    want = run(x=x, z=z)
    for target in ("torch", "numpy"):
        (tmp_path / f"{target}_net.safetensors").write_bytes(weights_file(params))
        (tmp_path / f"{target}_net.py").write_bytes(emit(model, target, params))
        net = import_file(tmp_path / f"{target}_net.py").load()
        if target == "torch":
            got = net.eval()(torch.from_numpy(x), torch.from_numpy(z)).detach().numpy()
        else:
            got = net(x, z)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=target)
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    data = emit(model, "onnx", params)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x, "z": z})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg="onnx")


def test_a_state_without_an_input_is_E313():
    with pytest.raises(SpecError) as caught:
        nnspec.loads("network n {\n input z: 8\n gru dec: 8\n z -> dec.state\n}")
    assert caught.value.code == "E313"
    assert "'dec' (gru) has a state but no input" in str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_the_seq2seq_example_learns_for_other_seeds(backend, seed, tmp_path):
    """examples/seq2seq.nn meets its expectation with seeds besides the default
    (tests/test_train.py runs that one)."""
    from conftest import EXAMPLES

    from nnspec.training import train

    result = train(EXAMPLES / "seq2seq.nn", backend, tmp_path / "run", seed=seed)
    assert result.passed, result.metrics
