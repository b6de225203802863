"""The PyTorch backend: every kind against hand-written PyTorch with the same weights, every spec
lowers and runs forward and backward, state_dict names, time, compile and export."""

from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT, SPECS, TEST_SPECS, spec_inputs

torch = pytest.importorskip("torch")
F = torch.nn.functional

import nnspec  # noqa: E402
from nnspec.backends.init import initial_params  # noqa: E402

CLEAN = (
    sorted(EXAMPLES.glob("*.nn"))
    + sorted(SPECS.glob("*.nn"))
    + sorted((TEST_SPECS / "ok").glob("*.nn"))
)
TOL = dict(rtol=1e-9, atol=1e-10)


def _models(path: Path):
    return nnspec.load_all(path)


def example_inputs(program, batch=3, steps=5, seed=0):
    """`spec_inputs` as float64 tensors."""
    return {k: torch.from_numpy(v) for k, v in spec_inputs(program, batch, steps, seed).items()}


def _total(y):
    return sum(v.sum() for v in y.values()) if isinstance(y, dict) else y.sum()


# ---- coverage ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", CLEAN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_lowers_and_runs_forward_and_backward(path: Path):
    for model in _models(path):
        net = model.to_torch(dtype="float64")
        program = model.program
        assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == {
            k: p.shape for k, p in program.parameters().items()
        }
        y = net(**example_inputs(program))
        outputs = y if isinstance(y, dict) else {program.outputs[0].name: y}
        assert list(outputs) == [o.name for o in program.outputs]
        for output in program.outputs:
            shape = output.shape
            time = [5 if shape.steps is None else shape.steps] if shape.timed else []
            assert tuple(outputs[output.name].shape) == (3, *time, *shape.dims), output.name
        if any(p.requires_grad for p in net.parameters()) and _total(y).requires_grad:
            _total(y).backward()
            trainable = {k for k, p in program.parameters().items() if p.trainable}
            grads = {k for k, p in net.named_parameters() if p.grad is not None}
            assert grads <= trainable and grads, "gradients reach the parameters"


def test_state_dict_names_and_initial_values_follow_the_seed():
    model = nnspec.load(EXAMPLES / "residual.nn")
    net = model.to_torch(seed=3)
    assert list(net.state_dict())[:4] == ["stem.weight", "stem.bias", "r.1.a.weight", "r.1.a.bias"]
    assert "r.6.b.bias" in net.state_dict()
    expected = initial_params(model.program, seed=3)
    for name, value in net.state_dict().items():
        np.testing.assert_allclose(value.numpy(), expected[name], rtol=1e-6)
    other = model.to_torch(seed=4).state_dict()["stem.weight"]
    assert not torch.equal(other, net.state_dict()["stem.weight"])
    net2 = model.to_torch(seed=3)
    net2.load_state_dict(net.state_dict())  # the names round-trip


def test_literal_weights_compute_xor_and_stay_frozen():
    net = nnspec.load(EXAMPLES / "xor_gates.nn").to_torch()
    x = torch.tensor([[0.0, 0], [0, 1], [1, 0], [1, 1]])
    assert net(x).squeeze(1).tolist() == [0.0, 1.0, 1.0, 0.0]
    assert net.s.weight.tolist() == [
        [-0.5, -0.5],
        [0.5, 0.5],
    ]  # [inputs, units] as written, stored [units, inputs]
    assert not any(p.requires_grad for p in net.parameters())


def test_literal_weights_against_hand_computation():
    net = nnspec.loads("""network n {
        input x: 3
        dense y: 2, act=sigmoid, weights=[[1, 2], [3, 4], [5, 6]], biases=[0.5, -0.5]
        x -> y
    }""").to_torch(dtype="float64")
    x = torch.tensor([[1.0, -1.0, 2.0]], dtype=torch.float64)
    W = torch.tensor([[1.0, 2], [3, 4], [5, 6]], dtype=torch.float64)
    torch.testing.assert_close(
        net(x), torch.sigmoid(x @ W + torch.tensor([0.5, -0.5], dtype=torch.float64))
    )
    assert net.y.weight.requires_grad  # literal but not frozen: a starting point


# ---- kinds against hand-written PyTorch --------------------------------------------------------
def _net(text: str, **kw):
    return nnspec.loads(text).to_torch(dtype="float64", **kw)


def _compare(net, hand, inputs: dict, params: list[str]):
    """Outputs and gradients (of inputs and of the named parameters) equal to the hand-written
    ones."""
    ours_in = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in inputs.items()}
    hand_in = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in inputs.items()}
    y = net(**ours_in)
    state = {
        k: v.clone().requires_grad_(True)
        for k, v in net.state_dict().items()
        if v.is_floating_point()
    }
    expected = hand(state, **hand_in)
    torch.testing.assert_close(y, expected, **TOL)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    (expected * g).sum().backward()
    own = dict(net.named_parameters())
    for name in params:
        torch.testing.assert_close(own[name].grad, state[name].grad, **TOL, msg=name)
    for name, value in ours_in.items():
        if value.requires_grad and value.grad is not None:
            torch.testing.assert_close(value.grad, hand_in[name].grad, **TOL)


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


ACTIVATIONS = {
    "identity": lambda x: x,
    "linear": lambda x: x,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu(alpha=0.1)": lambda x: torch.where(x > 0, x, 0.1 * x),
    "elu(alpha=0.5)": lambda x: torch.where(x > 0, x, 0.5 * (torch.exp(x) - 1)),
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / 2**0.5)),
    "softplus": lambda x: torch.log1p(torch.exp(x)),
    "softmax": lambda x: torch.exp(x) / torch.exp(x).sum(-1, keepdim=True),
}


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_dense_with_each_activation(act):
    net = _net(f"network n {{ input x: 5; dense y: 4, act={act}; x -> y }}")
    f = ACTIVATIONS[act]
    _compare(
        net,
        lambda s, x: f(x @ s["y.weight"].T + s["y.bias"]),
        {"x": _x(3, 5)},
        ["y.weight", "y.bias"],
    )


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_each_activation_as_a_layer(act):
    name, _, option = act.partition("(")
    options = f": {option.rstrip(')')}" if option else ""
    net = _net(f"network n {{ input x: 6; {name} y{options}; x -> y }}")
    _compare(net, lambda s, x: ACTIVATIONS[act](x), {"x": _x(3, 6)}, [])


def test_outputs_keep_their_logits_for_stable_losses():
    net = nnspec.load(EXAMPLES / "lenet.nn").to_torch(dtype="float64")
    x = _x(2, 1, 8, 8)
    y, terms = net.forward_with_terms(x)
    torch.testing.assert_close(torch.softmax(terms["logits"]["out"], -1), y, **TOL)
    _, terms = nnspec.load(EXAMPLES / "elman.nn").to_torch().forward_with_terms(torch.rand(2, 3, 1))
    assert "logits" not in terms  # a linear output has none


def test_step_activation_forward_only():
    net = _net("network n { input x: 4; step y; x -> y }")
    x = torch.tensor([[-1.0, 0.0, 0.5, 2.0]], dtype=torch.float64, requires_grad=True)
    y = net(x)
    assert y.tolist() == [[0.0, 0.0, 1.0, 1.0]]
    assert not y.requires_grad  # nothing flows back through a step


def test_fan_in_concatenates_in_link_order():
    net = _net("network n { input a: 2; input b: 3; dense y: 4; b, a -> y }")
    _compare(
        net,
        lambda s, a, b: torch.cat([b, a], -1) @ s["y.weight"].T + s["y.bias"],
        {"a": _x(2, 2), "b": _x(2, 3, seed=1)},
        ["y.weight"],
    )


def test_maxout():
    net = _net("network n { input x: 5; maxout y: 3, pieces=4; x -> y }")

    def hand(s, x):
        return (x @ s["y.weight"].T + s["y.bias"]).reshape(-1, 3, 4).amax(-1)

    _compare(net, hand, {"x": _x(6, 5)}, ["y.weight", "y.bias"])


def test_embedding_of_a_token_sequence():
    net = _net("network n { input t: 1, seq; embedding e: 10, 4; e -> y; dense y: 2; t -> e }")
    tokens = torch.tensor([[[1.0], [9.0], [0.0]], [[3.0], [3.0], [2.0]]], dtype=torch.float64)

    def hand(s, t):
        return s["e.weight"][t.squeeze(-1).long()] @ s["y.weight"].T + s["y.bias"]

    _compare(net, hand, {"t": tokens}, ["e.weight", "y.weight"])


@pytest.mark.parametrize(
    "options,kw",
    [
        ("kernel=3", dict(padding=0)),
        ("kernel=[3, 5], stride=2, padding=2", dict(stride=2, padding=2)),
        pytest.param(
            "kernel=4, padding=same",
            dict(padding="same"),  # the reference warns; ours pads by hand
            marks=pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
        ),
        ("kernel=3, padding=same, act=relu", dict(padding="same")),
    ],
)
def test_conv(options, kw):
    net = _net(f"network n {{ input x: [2, 9, 9]; conv c: 3, {options}; x -> c }}")
    act = torch.relu if "relu" in options else (lambda v: v)

    def hand(s, x):
        return act(F.conv2d(x, s["c.weight"], s["c.bias"], **kw))

    _compare(net, hand, {"x": _x(2, 2, 9, 9)}, ["c.weight", "c.bias"])


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_and_flatten(mode):
    net = _net(
        f"network n {{ input x: [2, 7, 7]; pool p: {mode}, size=3, stride=2; flatten f; "
        "x -> p -> f }"
    )
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    _compare(net, lambda s, x: pool(x, 3, 2).flatten(1), {"x": _x(2, 2, 7, 7)}, [])


def test_conv_over_time_folds_steps_into_the_batch():
    net = _net(
        "network n { input x: [1, 6, 6], seq; conv c: 2; pool p: max; flatten f; x -> c -> p -> f }"
    )

    def hand(s, x):
        return (
            F.max_pool2d(F.conv2d(x.flatten(0, 1), s["c.weight"], s["c.bias"]), 2)
            .flatten(1)
            .unflatten(0, (2, 3))
        )

    _compare(net, hand, {"x": _x(2, 3, 1, 6, 6)}, ["c.weight"])


def test_dropout_is_identity_in_evaluation_and_scales_in_training():
    net = _net("network n { input x: 1000; dropout d: 0.25; x -> d }")
    x = torch.ones(4, 1000, dtype=torch.float64)
    net.eval()
    assert torch.equal(net(x), x)
    net.train()
    y = net(x)
    assert set(torch.unique(y).tolist()) == {0.0, 1 / 0.75}
    assert 0.2 < (y == 0).double().mean().item() < 0.3


@pytest.mark.parametrize(
    "text,module,shape",
    [
        ("input x: 6; batchnorm b; x -> b", torch.nn.BatchNorm1d(6), (8, 6)),
        ("input x: [3, 4, 4]; batchnorm b; x -> b", torch.nn.BatchNorm2d(3), (5, 3, 4, 4)),
    ],
)
def test_batchnorm_training_and_running_statistics(text, module, shape):
    net = _net(f"network n {{ {text} }}")
    module = module.double()
    module.load_state_dict({k.removeprefix("b."): v for k, v in net.state_dict().items()})
    x = _x(*shape)
    for _ in range(2):
        torch.testing.assert_close(net(x), module(x), **TOL)
    for key, value in module.state_dict().items():
        torch.testing.assert_close(net.state_dict()["b." + key], value, **TOL)
    net.eval(), module.eval()
    torch.testing.assert_close(net(x + 1), module(x + 1), **TOL)
    net.train()
    _compare(
        net,
        lambda s, x: F.batch_norm(x, None, None, s["b.weight"], s["b.bias"], True, 0.1, 1e-5),
        {"x": x},
        ["b.weight", "b.bias"],
    )


def test_batchnorm_over_a_sequence_normalises_each_feature_over_batch_and_time():
    net = _net("network n { input x: 4, seq; batchnorm b; x -> b }")
    x = _x(3, 5, 4)

    def hand(s, x):
        scale = torch.sqrt(x.var((0, 1), unbiased=False) + 1e-5)
        return (x - x.mean((0, 1))) / scale * s["b.weight"] + s["b.bias"]

    _compare(net, hand, {"x": x}, ["b.weight"])


@pytest.mark.parametrize(
    "text,shape,axes",
    [("input x: 6", (4, 6), (-1,)), ("input x: [2, 3, 3]", (4, 2, 3, 3), (-3, -2, -1))],
)
def test_layernorm(text, shape, axes):
    net = _net(f"network n {{ {text}; layernorm n; x -> n }}")

    def hand(s, x):
        return F.layer_norm(
            x, x.shape[len(x.shape) - len(axes) :], s["n.weight"], s["n.bias"], 1e-5
        )

    with torch.no_grad():
        net.n.weight.uniform_(0.5, 1.5)
        net.n.bias.uniform_(-1, 1)
    _compare(net, hand, {"x": _x(*shape)}, ["n.weight", "n.bias"])


def test_merges():
    net = _net("""network n {
        input a: 3; input b: 3; add s; mul p; concat c; dense y: 2
        a, b -> s; a, b -> p; s, p, a -> c; c -> y
    }""")

    def hand(s, a, b):
        return torch.cat([a + b, a * b, a], -1) @ s["y.weight"].T + s["y.bias"]

    _compare(net, hand, {"a": _x(2, 3), "b": _x(2, 3, seed=1)}, ["y.weight"])


def test_concat_of_images_joins_channels_and_static_values_follow_time():
    net = _net(
        "network n { input a: [1, 3, 3]; input b: [2, 3, 3]; concat c; flatten f; a, b -> c -> f }"
    )
    _compare(
        net,
        lambda s, a, b: torch.cat([a, b], 1).flatten(1),
        {"a": _x(2, 1, 3, 3), "b": _x(2, 2, 3, 3, seed=1)},
        [],
    )
    net = _net("network n { input a: 2, seq; input b: 3; dense y: 4; a, b -> y }")

    def hand(s, a, b):
        return (
            torch.cat([a, b.unsqueeze(1).expand(-1, a.shape[1], -1)], -1) @ s["y.weight"].T
            + s["y.bias"]
        )

    _compare(net, hand, {"a": _x(2, 4, 2), "b": _x(2, 3, seed=1)}, ["y.weight"])


@pytest.mark.parametrize(
    "kind,module", [("rnn", torch.nn.RNN), ("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)]
)
def test_recurrent_kinds_against_torch_modules(kind, module):
    net = _net(f"network n {{ input x: 3, seq; {kind} r: 5; x -> r }}")
    reference = module(3, 5, batch_first=True).double()

    def hand(s, x):
        params = {f"{k}_l0": s[f"r.{k}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        return torch.func.functional_call(reference, params, (x,))[0]

    _compare(
        net, hand, {"x": _x(2, 6, 3)}, ["r.weight_ih", "r.weight_hh", "r.bias_ih", "r.bias_hh"]
    )


def test_rnn_with_another_activation_and_no_bias():
    net = _net("network n { input x: 3, seq; rnn r: 4, act=sigmoid, bias=false; x -> r }")

    def hand(s, x):
        h, out = torch.zeros(x.shape[0], 4, dtype=x.dtype), []
        for t in range(x.shape[1]):
            h = torch.sigmoid(x[:, t] @ s["r.weight_ih"].T + h @ s["r.weight_hh"].T)
            out.append(h)
        return torch.stack(out, 1)

    _compare(net, hand, {"x": _x(2, 5, 3)}, ["r.weight_ih", "r.weight_hh"])


def _mha(s, q, k, v, heads, causal=False, prefix="a"):
    dim = s[f"{prefix}.weight_q"].shape[0]
    reference = torch.nn.MultiheadAttention(
        dim, heads, batch_first=True, kdim=k.shape[-1], vdim=v.shape[-1]
    ).double()
    params = {
        "out_proj.weight": s[f"{prefix}.weight_o"],
        "out_proj.bias": s[f"{prefix}.bias_o"],
        "in_proj_bias": torch.cat([s[f"{prefix}.bias_{p}"] for p in "qkv"]),
    }
    if q.shape[-1] == k.shape[-1] == v.shape[-1] == dim:
        params["in_proj_weight"] = torch.cat([s[f"{prefix}.weight_{p}"] for p in "qkv"])
    else:
        params |= {f"{p}_proj_weight": s[f"{prefix}.weight_{p}"] for p in "qkv"}
    mask = torch.triu(torch.ones(q.shape[1], k.shape[1], dtype=torch.bool), 1) if causal else None
    return torch.func.functional_call(
        reference, params, (q, k, v), {"attn_mask": mask, "need_weights": False}
    )[0]


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_against_multihead_attention(causal):
    net = _net(
        "network n { input x: 8, seq; "
        f"attention a: heads=2{', causal' if causal else ''}; x -> a }}"
    )
    with torch.no_grad():
        for p in "qkvo":
            getattr(net.a, f"bias_{p}").uniform_(-0.5, 0.5)

    def hand(s, x):
        return _mha(s, x, x, x, 2, causal)

    _compare(
        net,
        hand,
        {"x": _x(3, 5, 8)},
        ["a.weight_q", "a.weight_k", "a.weight_v", "a.weight_o", "a.bias_q"],
    )


def test_cross_attention_through_ports():
    net = _net(
        "network n { input q: 8, seq; input kv: 6, seq; attention a: heads=4; "
        "q -> a.query; kv -> a.key, a.value }"
    )

    def hand(s, q, kv):
        return _mha(s, q, kv, kv, 4)

    _compare(
        net,
        hand,
        {"q": _x(2, 3, 8), "kv": _x(2, 7, 6, seed=1)},
        ["a.weight_q", "a.weight_k", "a.weight_v"],
    )


def test_gcn_and_readout():
    net = _net("""network n {
        input f: [5, 3]; input adj: [5, 5]; gcn g: 4, act=relu; readout r: sum
        f -> g.features; adj -> g.adjacency; g -> r
    }""")
    with torch.no_grad():
        net.g.bias.uniform_(-1, 1)
    adj = torch.tensor(
        [[0, 1, 0, 0, 1], [1, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [1, 0, 0, 0, 0]],
        dtype=torch.float64,
    )

    def hand(s, f, adj):
        a = adj + torch.eye(5, dtype=adj.dtype)
        d = torch.diag_embed(a.sum(-1) ** -0.5)
        return torch.relu(d @ a @ d @ f @ s["g.weight"].T + s["g.bias"]).sum(-2)

    _compare(net, hand, {"f": _x(2, 5, 3), "adj": adj.expand(2, 5, 5)}, ["g.weight", "g.bias"])


@pytest.mark.parametrize(
    "mode,reduce", [("mean", lambda x: x.mean(-2)), ("max", lambda x: x.amax(-2))]
)
def test_readout_over_a_sequence(mode, reduce):
    net = _net(f"network n {{ input x: 3, seq; readout r: {mode}; x -> r }}")
    _compare(net, lambda s, x: reduce(x), {"x": _x(2, 4, 3)}, [])


def test_sample_reparameterises_in_training_and_gives_its_kl_term():
    net = _net(
        "network n { input x: 4; dense mu: 2; dense lv: 2; sample z; "
        "x -> mu, lv; mu -> z.mean; lv -> z.logvar }"
    )
    x = _x(5, 4)
    torch.manual_seed(7)
    z, terms = net.forward_with_terms(x)
    mu, lv = net.mu(x), net.lv(x)
    torch.manual_seed(7)
    eps = torch.randn_like(mu)
    torch.testing.assert_close(z, mu + torch.exp(0.5 * lv) * eps, **TOL)
    kl = (-0.5 * (1 + lv - mu**2 - lv.exp())).sum(1).mean()
    torch.testing.assert_close(terms["kl"], kl, **TOL)
    terms["kl"].backward()
    assert net.mu.weight.grad is not None and net.lv.weight.grad is not None
    net.eval()
    torch.testing.assert_close(net(x), net.mu(x), **TOL)


def test_lif_against_a_hand_written_loop_with_its_surrogate_gradient():
    net = _net(
        "network n { input x: 6, steps=7; lif s: 4, threshold=0.5, decay=0.8; "
        "x -> s; output s: mean }"
    )
    x = torch.rand(3, 6, dtype=torch.float64)

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v >= 0.5).double()

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            return g / (1 + 10 * (v - 0.5).abs()) ** 2

    def hand(s, x):
        v, spikes = torch.zeros(3, 4, dtype=x.dtype), []
        for _ in range(7):
            v = 0.8 * v + x @ s["s.weight"].T + s["s.bias"]
            spike = Spike.apply(v)
            v = v - spike.detach() * 0.5
            spikes.append(spike)
        return torch.stack(spikes, 1).mean(1)

    _compare(net, hand, {"x": x}, ["s.weight", "s.bias"])
    assert net(x).sum() > 0, "some cells spike"


# ---- time ---------------------------------------------------------------------------------------
def test_elman_example_against_a_hand_written_loop():
    net = nnspec.load(EXAMPLES / "elman.nn").to_torch(dtype="float64")

    def hand(s, x):
        h, ys = torch.zeros(x.shape[0], 16, dtype=x.dtype), []
        for t in range(x.shape[1]):
            h = torch.tanh(torch.cat([x[:, t], h], -1) @ s["h.weight"].T + s["h.bias"])
            ys.append(h @ s["y.weight"].T + s["y.bias"])
        return torch.stack(ys, 1)

    _compare(net, hand, {"x": _x(4, 9, 1)}, ["h.weight", "h.bias", "y.weight"])


def test_jordan_example_against_a_hand_written_loop():
    net = nnspec.load(EXAMPLES / "jordan.nn").to_torch(dtype="float64")

    def hand(s, x):
        y, ys = torch.zeros(x.shape[0], 1, dtype=x.dtype), []
        for t in range(x.shape[1]):
            h = torch.tanh(torch.cat([x[:, t], y], -1) @ s["h.weight"].T + s["h.bias"])
            y = h @ s["y.weight"].T + s["y.bias"]
            ys.append(y)
        return torch.stack(ys, 1)

    _compare(net, hand, {"x": _x(4, 9, 1)}, ["h.weight", "h.bias", "y.weight"])


def test_delayed_link_outside_a_cycle_reads_the_previous_step():
    net = _net(
        "network n { input x: 2, seq; dense a: 3; dense y: 2; x -> a; a ~> y; x -> y; output y }"
    )

    def hand(s, x):
        return (
            torch.cat(
                [
                    torch.cat(
                        [
                            torch.zeros_like(x[:, :1, :1]).expand(-1, 1, 3),
                            (x @ s["a.weight"].T + s["a.bias"])[:, :-1],
                        ],
                        1,
                    ),
                    x,
                ],
                -1,
            )
            @ s["y.weight"].T
            + s["y.bias"]
        )

    _compare(net, hand, {"x": _x(2, 4, 2)}, ["a.weight", "y.weight"])


def test_lstm_on_a_cycle_steps_with_its_cell():
    net = _net("network n { input x: 2, seq; lstm l: 3; dense y: 2; x -> l -> y; y ~> l }")

    def hand(s, x):
        cell = torch.nn.LSTMCell(4, 3).double()
        params = {k: s[f"l.{k}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        h = c = torch.zeros(x.shape[0], 3, dtype=x.dtype)
        y, ys = torch.zeros(x.shape[0], 2, dtype=x.dtype), []
        for t in range(x.shape[1]):
            h, c = torch.func.functional_call(cell, params, (torch.cat([x[:, t], y], -1), (h, c)))
            y = h @ s["y.weight"].T + s["y.bias"]
            ys.append(y)
        return torch.stack(ys, 1)

    _compare(net, hand, {"x": _x(2, 5, 2)}, ["l.weight_ih", "l.weight_hh", "y.weight"])


def test_outputs_by_name_with_last_and_mean():
    net = _net(
        "network n { input x: 2, seq; dense a: 3; dense b: 1; "
        "x -> a -> b; output a: last, b: mean }"
    )
    x = _x(2, 4, 2)
    out = net(x)
    assert list(out) == ["a", "b"]
    a = x @ net.a.weight.T + net.a.bias
    torch.testing.assert_close(out["a"], a[:, -1], **TOL)
    torch.testing.assert_close(out["b"], (a @ net.b.weight.T + net.b.bias).mean(1), **TOL)


def test_several_inputs_by_name_or_position():
    net = _net("network n { input a: 2; input b: 1; dense y: 1; a, b -> y }")
    a, b = _x(3, 2), _x(3, 1, seed=1)
    torch.testing.assert_close(net(a, b), net(b=b, a=a))
    torch.testing.assert_close(net(a, b[:, 0]), net(a, b))  # a size-1 input may drop its last axis


def test_held_input_is_presented_at_every_step():
    net = _net("network n { input x: 2, steps=3; rnn r: 2; x -> r }")
    x = _x(4, 2)
    torch.testing.assert_close(net(x), net(x.unsqueeze(1).expand(4, 3, 2)))


def test_wrong_input_shape_is_a_clear_error():
    net = _net("network n { input x: 4; dense y: 2; x -> y }")
    with pytest.raises(ValueError, match=r"input 'x' must be \[B, 4\], but it is \[3, 5\]"):
        net(_x(3, 5))


def test_layer_names_python_cannot_take():
    net = _net(
        "network n { input lambda: 2; dense eval: 3; dense forward: 1; lambda -> eval -> forward }"
    )
    assert set(net.state_dict()) == {"eval.weight", "eval.bias", "forward.weight", "forward.bias"}
    assert net(_x(2, 2)).shape == (2, 1)


# ---- compile and export ---------------------------------------------------------------------
@pytest.mark.slow
def test_feed_forward_specs_export():
    for path in [
        EXAMPLES / "xor.nn",
        EXAMPLES / "lenet.nn",
        EXAMPLES / "residual.nn",
        EXAMPLES / "vae.nn",
    ]:
        model = nnspec.load(path)
        net = model.to_torch().eval()
        args = tuple(v.float() for v in example_inputs(model.program).values())
        exported = torch.export.export(net, args)
        torch.testing.assert_close(exported.module()(*args), net(*args))


def test_feed_forward_spec_compiles():
    model = nnspec.load(EXAMPLES / "xor.nn")
    net = model.to_torch()
    compiled = torch.compile(net, backend="eager", fullgraph=True)
    x = torch.rand(4, 2)
    torch.testing.assert_close(compiled(x), net(x))


def test_the_generated_forward_is_readable_straight_line_code():
    net = nnspec.load(EXAMPLES / "xor.nn").to_torch()
    forward = net.code.split("def forward_with_terms")[0]
    assert "torch.tanh(self.h(" in forward and "self.y(" in forward and "torch.sigmoid(" in forward
    assert "for " not in forward  # no walk over the graph


def test_module_moves_between_dtypes_and_copies():
    import copy

    net = nnspec.load(EXAMPLES / "lenet.nn").to_torch()
    twin = copy.deepcopy(net).double()
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(twin(x.double()).float(), net(x), rtol=1e-5, atol=1e-6)


# ---- generated networks -------------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from test_properties import SETTINGS, registry_network  # noqa: E402


@pytest.mark.slow
@settings(max_examples=200, **SETTINGS)
@given(registry_network())
def test_every_generated_network_that_checks_lowers_and_runs(text):
    """Networks of random kinds, options and links: whatever the checker accepts runs forward
    and backward."""
    try:
        model = nnspec.loads(text)
    except nnspec.SpecError:
        return
    tokens = {layer.name for layer in model.program.layers if layer.kind.source}
    if any(
        link.source not in tokens
        for layer in model.program.layers
        if layer.kind.name == "embedding"
        for link in layer.inputs
    ):
        return  # an embedding fed computed values, not token numbers: nothing to feed it here
    net = model.to_torch(dtype="float64")
    y = net(**example_inputs(model.program, batch=2, steps=3))
    total = _total(y)
    assert torch.isfinite(total) or not torch.isfinite(total)  # computing it must not raise
    if total.requires_grad:
        total.backward()


def test_every_step_takes_a_repeated_input_once_and_equals_the_whole_product():
    """A static input met at every step (an expanded view) goes through the layer once; the
    values and the gradients are those of the same numbers materialised."""
    from nnspec.backends.torch.runtime import every_step

    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3).double()
    base = torch.randn(5, 1, 4, dtype=torch.float64)
    results = []
    for materialise in (False, True):
        x = base.clone().requires_grad_()
        repeated = x.expand(5, 6, 4)
        if materialise:
            repeated = repeated.contiguous()
        layer.zero_grad()
        y = every_step(layer, repeated)
        (y * torch.arange(18.0, dtype=torch.float64).reshape(6, 3)).sum().backward()
        results.append((y.detach().clone(), x.grad, layer.weight.grad.clone()))
    for fast, whole in zip(*results, strict=True):
        torch.testing.assert_close(fast, whole, rtol=1e-12, atol=1e-12)
    calls = []
    every_step(lambda v: calls.append(v.shape) or layer(v), base.expand(5, 6, 4))
    assert calls == [torch.Size([5, 1, 4])]


_STEPPED = {
    "lif": "network n {\n input x: 3, steps=5\n lif s: 4\n x -> s\n}",
    "rnn": "network n {\n input x: 3, seq\n dense d: 3\n rnn r: 4, act=sigmoid, bidirectional\n"
    " x -> d -> r\n}",  # an rnn with an activation of its own: a loop, both ways
    "lsm": "network n {\n input x: 3, seq\n dense d: 3\n lsm r: 6\n x -> d -> r\n}",
    "a ~> cycle": "network n {\n input x: 3, seq\n dense d: 3\n dense h: 4, act=tanh\n"
    " x -> d -> h\n h ~> h\n}",
}


@pytest.mark.parametrize("name", list(_STEPPED))
def test_a_sequence_read_step_by_step_is_split_once(name):
    """A loop through time reads a sequence from outside it as `unbind(1)`'s steps: one
    backward for the whole sequence, not a select per step whose backward fills a zero tensor
    as large as the sequence (the lif layer's training step 9.6 to 6.5 ms); the gradient
    reaches the layers before the loop."""
    net = nnspec.loads(_STEPPED[name]).to_torch(seed=0)
    x = torch.rand(2, 5, 3) if name != "lif" else torch.rand(2, 3)
    out = net(x)
    seen, stack = set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.add(node)
            stack.extend(next_fn for next_fn, _ in node.next_functions)
    kinds = {type(node).__name__ for node in seen}
    assert "UnbindBackward0" in kinds and "SelectBackward0" not in kinds, kinds
    out.sum().backward()
    first = next(p for n, p in net.named_parameters() if n.startswith(("d.", "s.")))
    assert first.grad is not None
