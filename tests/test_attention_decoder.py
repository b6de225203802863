"""An attention layer on a `~>` cycle: a decoder that attends at every step (Bahdanau, Cho and
Bengio 2015). Its query comes from the cycle, one step at a time; its keys and values are whole
sequences from outside it. Both backends equal a hand-written reference and each other (values
and gradients), every compile target equals the NumPy backend, the cases that cannot work keep
their errors, and specs/an.nn trains where the same network without attention falls short."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import nnspec
from nnspec.backends.init import initial_params
from nnspec.compile import compile_model, emit
from nnspec.errors import SpecError

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
AN = ROOT / "specs" / "an.nn"

DECODER = """network d {
    input     x: 5, seq
    gru       enc: 6, bidirectional
    gru       dec: 7
    attention a: heads=HEADS, dim=8
    dense     out: 5, act=softmax
    x -> enc
    enc -> a.key
    enc -> a.value
    x -> dec
    dec -> a.query
    a ~> dec
    dec -> out
    a -> out
}"""


def _model(heads: int = 1):
    return nnspec.loads(DECODER.replace("HEADS", str(heads)))


def _softmax(z, axis=-1):
    e = np.exp(z - z.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _reference(p: dict[str, np.ndarray], x: np.ndarray, heads: int) -> np.ndarray:
    """The decoder by hand: PyTorch's bidirectional GRU for the encoder, then per step a GRU cell
    on [x_t, context_{t-1}], that step's query against every encoder state, the context, and the
    softmax of the output layer on [h_t, context_t]."""
    gru = torch.nn.GRU(5, 6, batch_first=True, bidirectional=True).double()
    gru.load_state_dict(
        {k.removeprefix("enc."): torch.from_numpy(v) for k, v in p.items() if k.startswith("enc.")}
    )
    enc = gru(torch.from_numpy(x))[0].detach().numpy()
    cell = torch.nn.GRUCell(5 + 8, 7).double()
    cell.load_state_dict(
        {k.removeprefix("dec."): torch.from_numpy(v) for k, v in p.items() if k.startswith("dec.")}
    )
    k = enc @ p["a.weight_k"].T + p["a.bias_k"]
    v = enc @ p["a.weight_v"].T + p["a.bias_v"]
    batch, steps, width = x.shape[0], x.shape[1], 8 // heads
    k = k.reshape(batch, steps, heads, width)
    v = v.reshape(batch, steps, heads, width)
    h, context, outs = np.zeros((batch, 7)), np.zeros((batch, 8)), []
    for t in range(steps):
        step = torch.from_numpy(np.concatenate([x[:, t], context], -1))
        h = cell(step, torch.from_numpy(h)).detach().numpy()
        q = (h @ p["a.weight_q"].T + p["a.bias_q"]).reshape(batch, heads, width)
        scores = np.einsum("bhd,bshd->bhs", q, k) / np.sqrt(width)
        mixed = np.einsum("bhs,bshd->bhd", _softmax(scores), v).reshape(batch, 8)
        context = mixed @ p["a.weight_o"].T + p["a.bias_o"]
        logits = np.concatenate([h, context], -1) @ p["out.weight"].T + p["out.bias"]
        outs.append(_softmax(logits))
    return np.stack(outs, 1)


@pytest.mark.parametrize("heads", [1, 2])
def test_both_backends_attend_at_every_step_as_the_reference(heads):
    model = _model(heads)
    assert model.program.layer("a").recurrent
    net = model.to_torch(seed=0, dtype="float64")
    p = {k: v.numpy() for k, v in net.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((3, 6, 5))
    expected = _reference(p, x, heads)
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), expected, atol=1e-10)
    run = model.to_numpy(dtype="float64")
    run.load(net.state_dict())
    np.testing.assert_allclose(run(x), expected, atol=1e-10)


def test_the_context_depends_on_every_encoder_step():
    """Changing the last input step changes the decoder's first output: the first step's query
    already sees the last step's key (through the attention, not through the decoder)."""
    run = _model().to_numpy(dtype="float64")
    x = np.random.default_rng(3).standard_normal((2, 6, 5))
    y = np.copy(x)
    y[:, -1] += 1.0
    assert np.abs(run(x)[:, 0] - run(y)[:, 0]).max() > 1e-6


def test_both_backends_take_the_same_gradients():
    model = _model(2)
    net = model.to_torch(seed=1, dtype="float64")
    run = model.to_numpy(dtype="float64")
    run.load(net.state_dict())
    x = np.random.default_rng(1).standard_normal((3, 4, 5))
    g = np.random.default_rng(2).standard_normal((3, 4, 5))
    xt = torch.tensor(x, requires_grad=True)
    net(xt).backward(torch.from_numpy(g))
    run(x)
    grads = run.backward(g)
    for name, param in net.named_parameters():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), atol=1e-9, err_msg=name)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), atol=1e-9)


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load()


def test_every_compile_target_steps_the_attention(tmp_path):
    """torch and numpy files, and the ONNX model (the attention inside the cycle's Scan, on
    onnxruntime and onnx's reference evaluator), equal the NumPy backend."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx.reference import ReferenceEvaluator

    model = nnspec.load(AN)
    params = initial_params(model.program, 0)
    run = model.to_numpy()
    run.load(params)
    x = np.eye(8, dtype=np.float32)[np.random.default_rng(0).integers(0, 8, (3, 8))]
    want = run.eval()(x)
    data = emit(model, "onnx", params)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for got in (session.run(None, {"x": x})[0], ReferenceEvaluator(proto).run(None, {"x": x})[0]):
        np.testing.assert_allclose(got, want, atol=1e-5)
    for target in ("torch", "numpy"):
        net = _load(compile_model(model, target, tmp_path / f"{target}_an.py", params)[0])
        y = net(torch.from_numpy(x)).detach().numpy() if target == "torch" else net(x)
        np.testing.assert_allclose(y, want, atol=1e-5, err_msg=target)


def _error(spec: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        nnspec.loads(spec)
    return caught.value


def _variant(old: str, new: str) -> str:
    spec = DECODER.replace("HEADS", "1")
    assert old in spec
    return spec.replace(old, new)


def test_keys_from_the_cycle_are_refused():
    error = _error(_variant("enc -> a.key", "dec -> a.key"))
    assert error.code == "E408"
    assert "same cycle" in error.message and "key" in error.message
    assert "enc -> a.key" in error.hint


def test_an_attention_without_keys_on_a_cycle_is_refused():
    spec = _variant("    enc -> a.key\n    enc -> a.value\n", "    enc -> out\n")
    error = _error(spec)
    assert error.code == "E408"
    assert "without a key" in error.message


def test_a_causal_stepped_attention_is_refused():
    error = _error(_variant("heads=1", "heads=1, causal"))
    assert error.code == "E413"


# ---- training -----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_the_spec_reverses_its_sequences(backend, seed, tmp_path):
    result = nnspec.train(AN, backend, tmp_path / "run", seed=seed)
    assert result.passed, result.metrics


@pytest.mark.slow
def test_without_attention_the_same_network_falls_short(tmp_path):
    """The decoder started from the encoder's last step instead (`enc -> s -> dec.state`), no
    attention, trained the same way: well under the spec's expectation."""
    text = AN.read_text()
    for line in (
        "    attention a: dim=32\n",
        "    enc -> a.key\n",
        "    enc -> a.value\n",
        "    dec -> a.query\n",
        "    a ~> dec\n",
        "    a -> out\n",
    ):
        assert line in text
        text = text.replace(line, "")
    text = text.replace(
        "    x -> dec\n", "    last      s\n    enc -> s -> dec.state\n    x -> dec\n"
    )
    twin = tmp_path / "twin.nn"
    twin.write_text(text)
    result = nnspec.train(twin, "torch", tmp_path / "run", seed=0)
    assert not result.passed
    assert result.metrics["accuracy"] < 0.8
