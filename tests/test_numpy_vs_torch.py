"""The NumPy backend against PyTorch, kind by kind, in float64, to 1e-6 relative.

Each case is a small spec, the inputs, and the same computation written by hand with
`torch.nn.functional` from the NumPy run's own parameters. Outputs and the gradients of
every trainable parameter and every input are compared. The last test compares the two
backends over every shipped spec (`model.to_torch()` against `model.to_numpy()`).
"""

from __future__ import annotations

import conftest
import numpy as np
import pytest
from conftest import EXAMPLES, SPECS, TEST_SPECS, spec_models

import nnspec

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL = 1e-6
ATOL = 1e-12  # for values that are zero in exact arithmetic (a bias that batchnorm cancels)


def close(ours, theirs, what: str) -> None:
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def check(
    spec: str,
    inputs: dict[str, np.ndarray],
    reference,
    training: bool = False,
    seed: int = 0,
    tokens: tuple[str, ...] = (),
    params: dict[str, np.ndarray] | None = None,
):
    """Run `spec` on both sides and compare outputs and gradients; returns (run, torch params)
    for extra checks.

    reference(p, x) gets torch tensors: p by parameter name (trainable ones require grad),
    x by input name, and returns the output (or a dict by output name). `params` replaces
    some starting values (ones and zeros would hide a scale or a shift).
    """
    run = nnspec.loads(spec).to_numpy(seed=seed, dtype="float64").train(training)
    for name, value in (params or {}).items():
        run.params[name][...] = value
    rng = np.random.default_rng(seed + 1)
    ours = run(**inputs)
    ours = ours if isinstance(ours, dict) else {run.program.outputs[0].name: ours}
    seeds = {name: rng.standard_normal(value.shape) for name, value in ours.items()}
    grads = run.backward(seeds)
    trainable = {n for n, p in run.program.parameters().items() if p.trainable}
    p = {n: torch.tensor(a, requires_grad=n in trainable) for n, a in run.params.items()}
    x = {
        n: torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=n not in tokens)
        for n, a in inputs.items()
    }
    theirs = reference(p, x)
    theirs = theirs if isinstance(theirs, dict) else {run.program.outputs[0].name: theirs}
    assert list(theirs) == list(ours)
    total = sum((theirs[n] * torch.tensor(seeds[n])).sum() for n in ours)
    total.backward()
    for name in ours:
        close(ours[name], theirs[name], f"output {name}")
    for name in trainable:
        close(
            grads[name],
            p[name].grad if p[name].grad is not None else torch.zeros_like(p[name]),
            f"gradient of {name}",
        )
    for name in inputs:
        if name not in tokens:
            close(grads[name], x[name].grad, f"gradient of input {name}")
    return run, p


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- dense, maxout, embedding, activations ----------------------------------------------------
ACTS = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu(alpha=0.1)": lambda z: F.leaky_relu(z, 0.1),
    "elu(alpha=0.7)": lambda z: F.elu(z, 0.7),
    "gelu": F.gelu,
    "softplus": F.softplus,
    "softmax": lambda z: F.softmax(z, -1),
}


@pytest.mark.parametrize("act", ACTS)
def test_dense_with_each_activation(act):
    spec = f"network n {{ input x: 5\n dense y: 4, act={act}\n x -> y }}"
    check(
        spec,
        {"x": normal(6, 5) * 2},
        lambda p, x: ACTS[act](F.linear(x["x"], p["y.weight"], p["y.bias"])),
    )


@pytest.mark.parametrize(
    "act",
    [
        "relu",
        "leaky_relu",
        "elu",
        "gelu",
        "softplus",
        "sigmoid",
        "tanh",
        "softmax",
        "identity",
        "linear",
    ],
)
def test_activation_layers_over_images_and_vectors(act):
    ref = {
        "relu": F.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
        "elu": F.elu,
        "gelu": F.gelu,
        "softplus": F.softplus,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda z: F.softmax(z, 1),
        "identity": lambda z: z,
        "linear": lambda z: z,
    }[act]
    spec = f"network n {{ input x: [3, 4, 4]\n {act} y\n x -> y }}"
    check(spec, {"x": normal(2, 3, 4, 4) * 3}, lambda p, x: ref(x["x"]))


def test_maxout_rows_are_unit_major():
    spec = "network n { input x: 5\n maxout y: 3, pieces=4\n x -> y }"
    check(
        spec,
        {"x": normal(6, 5)},
        lambda p, x: F.linear(x["x"], p["y.weight"], p["y.bias"]).reshape(6, 3, 4).amax(-1),
    )


def test_embedding_of_one_token_and_of_several():
    one = "network n { input t: 1, seq\n embedding e: 10, 3\n dense y: 2\n t -> e -> y }"
    tokens = np.array([[1, 4, 9], [0, 0, 3]], dtype=float)
    check(
        one,
        {"t": tokens},
        lambda p, x: F.linear(
            F.embedding(x["t"].long(), p["e.weight"]), p["y.weight"], p["y.bias"]
        ),
        tokens=("t",),
    )
    several = "network n { input t: 4\n embedding e: 10, 3\n flatten f\n t -> e -> f }"
    check(
        several,
        {"t": np.array([[1, 2, 2, 9], [5, 5, 0, 1]], dtype=float)},
        lambda p, x: F.embedding(x["t"].long(), p["e.weight"]).reshape(2, 12),
        tokens=("t",),
    )


# ---- images -------------------------------------------------------------------------------
@pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel lengths"
)  # PyTorch pads a copy; as intended
@pytest.mark.parametrize(
    "options, torch_padding",
    [
        ("kernel=3, padding=same", "same"),
        ("kernel=4, padding=same", "same"),
        ("kernel=[2, 3], padding=same", "same"),
        ("kernel=3, stride=2, padding=1", 1),
        ("kernel=[3, 2], stride=[2, 1]", 0),
        ("kernel=5, padding=2, act=relu", 2),
        ("kernel=1, bias=false, act=softmax", 0),
    ],
)
def test_conv(options, torch_padding):
    spec = f"network n {{ input x: [3, 9, 8]\n conv c: 5, {options}\n x -> c }}"
    run = nnspec.loads(spec).to_numpy()
    o = run.program.layer("c").options
    act = {"relu": F.relu, "softmax": lambda z: F.softmax(z, 1)}.get(o.act.name, lambda z: z)
    check(
        spec,
        {"x": normal(2, 3, 9, 8)},
        lambda p, x: act(
            F.conv2d(x["x"], p["c.weight"], p.get("c.bias"), stride=o.stride, padding=torch_padding)
        ),
    )


@pytest.mark.parametrize(
    "mode, options",
    [
        ("max", "size=2"),
        ("avg", "size=2"),
        ("max", "size=3, stride=2"),
        ("avg", "size=[2, 3], stride=1"),
        ("max", "size=3"),
    ],
)
def test_pool(mode, options):
    spec = f"network n {{ input x: [2, 7, 8]\n pool p: {mode}, {options}\n x -> p }}"
    o = nnspec.loads(spec).program.layer("p").options
    stride = o.stride if o.stride is not None else o.size
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    check(spec, {"x": normal(3, 2, 7, 8)}, lambda p, x: pool(x["x"], o.size, stride))


def test_max_pool_ties_go_to_the_first_maximum():
    spec = "network n { input x: [1, 4, 4]\n pool p: max, size=2\n x -> p }"
    x = np.zeros((2, 1, 4, 4))
    x[0, 0, 1, 1] = x[0, 0, 0, 1] = 1.0  # two maxima in one window
    check(spec, {"x": x}, lambda p, x: F.max_pool2d(x["x"], 2))


@pytest.mark.parametrize(
    "spec, reference",
    [
        (
            "network n { input x: 3\n maxout m: 2, pieces=3, bias=false\n x -> m }",
            lambda p, x: F.linear(x["x"], p["m.weight"]).unflatten(-1, (2, 3)).amax(-1),
        ),
        ("network n { input x: 3, seq=4\n readout r: max\n x -> r }", lambda p, x: x["x"].amax(-2)),
    ],
)
def test_max_ties_share_the_gradient_as_amax(spec, reference):
    x = (
        np.ones((2, 4, 3)) if "seq" in spec else np.zeros((2, 3))
    )  # every piece, every step equal: all tied
    check(spec, {"x": x}, reference)


def test_lenet_shapes_conv_pool_flatten_dense():
    spec = (EXAMPLES / "lenet.nn").read_text()

    def ref(p, x):
        h = F.max_pool2d(
            F.relu(F.conv2d(x["image"], p["c1.weight"], p["c1.bias"], padding="same")), 2
        )
        h = F.max_pool2d(F.relu(F.conv2d(h, p["c2.weight"], p["c2.bias"], padding="same")), 2)
        h = F.relu(F.linear(h.flatten(1), p["fc.weight"], p["fc.bias"]))
        return F.softmax(F.linear(h, p["out.weight"], p["out.bias"]), -1)

    check(spec, {"image": normal(4, 1, 8, 8)}, ref)


def test_conv_over_time_folds_time_into_the_batch():
    spec = (
        "network n { input x: [2, 5, 5], seq\n conv c: 3, kernel=3\n pool p: avg, size=3\n"
        " flatten f\n x -> c -> p -> f }"
    )

    def ref(p, x):
        b, t = x["x"].shape[:2]
        y = F.avg_pool2d(F.conv2d(x["x"].reshape(b * t, 2, 5, 5), p["c.weight"], p["c.bias"]), 3)
        return y.reshape(b, t, -1)

    check(spec, {"x": normal(2, 4, 2, 5, 5)}, ref)


# ---- normalisation ---------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_over_vectors_and_running_statistics(training):
    spec = "network n { input x: 4\n batchnorm b: eps=1e-3\n x -> b }"
    mean, var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    x = normal(7, 4) * 3 + 1

    def ref(p, x):
        return F.batch_norm(
            x["x"], mean, var, p["b.weight"], p["b.bias"], training=training, momentum=0.1, eps=1e-3
        )

    run, _ = check(
        spec,
        {"x": x},
        ref,
        training=training,
        params={"b.weight": normal(4, seed=4), "b.bias": normal(4, seed=5)},
    )
    close(run.params["b.running_mean"], mean, "running mean")
    close(run.params["b.running_var"], var, "running var")
    assert run.params["b.num_batches_tracked"] == (1 if training else 0)
    assert run.params["b.num_batches_tracked"].dtype == np.int64


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_over_images_and_over_time(training):
    image = "network n { input x: [3, 4, 4]\n batchnorm b\n x -> b }"
    bn = torch.nn.BatchNorm2d(3).double().train(training)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([2.0, 0.5, 1.5]))
        bn.weight.copy_(torch.tensor([1.5, -0.5, 0.7]))
        bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    run = nnspec.loads(image).to_numpy(dtype="float64").train(training)
    run.load({f"b.{k}": v.numpy() for k, v in bn.state_dict().items()})
    x = normal(5, 3, 4, 4)
    ours = run(x)
    seed = normal(*ours.shape, seed=3)
    grads = run.backward(seed)
    xt = torch.tensor(x, requires_grad=True)
    theirs = bn(xt)
    (theirs * torch.tensor(seed)).sum().backward()
    close(ours, theirs, "output")
    close(grads["x"], xt.grad, "input gradient")
    close(grads["b.weight"], bn.weight.grad, "weight gradient")
    close(grads["b.bias"], bn.bias.grad, "bias gradient")
    for name, value in bn.state_dict().items():
        close(run.params[f"b.{name}"], value, name)
    timed = "network n { input x: 3, seq\n batchnorm b\n x -> b }"
    mean, var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    check(
        timed,
        {"x": normal(4, 5, 3)},
        training=training,
        reference=lambda p, x: F.batch_norm(
            x["x"].reshape(20, 3), mean, var, p["b.weight"], p["b.bias"], training=training
        ).reshape(4, 5, 3),
    )


def test_layernorm_over_vectors_and_images():
    vector = "network n { input x: 6\n layernorm l\n dense y: 3\n x -> l -> y }"

    def ref(p, x):
        return F.linear(
            F.layer_norm(x["x"], (6,), p["l.weight"], p["l.bias"]), p["y.weight"], p["y.bias"]
        )

    check(
        vector,
        {"x": normal(5, 6) * 2},
        ref,
        params={"l.weight": normal(6, seed=4), "l.bias": normal(6, seed=5)},
    )
    image = "network n { input x: [2, 3, 3]\n layernorm l: eps=0.1\n x -> l }"
    check(
        image,
        {"x": normal(4, 2, 3, 3)},
        lambda p, x: F.layer_norm(x["x"], (2, 3, 3), p["l.weight"], p["l.bias"], eps=0.1),
        params={"l.weight": normal(2, 3, 3, seed=4), "l.bias": normal(2, 3, 3, seed=5)},
    )


def test_dropout_keeps_with_probability_one_minus_rate_and_rescales():
    spec = "network n { input x: 200\n dropout d: 0.25\n x -> d }"
    run = nnspec.loads(spec).to_numpy(dtype="float64")
    x = np.abs(normal(50, 200)) + 1.0
    y = run(x)
    kept = y != 0
    assert 0.72 < kept.mean() < 0.78
    close(y[kept], x[kept] / 0.75, "kept values")
    g = run.backward(np.ones_like(x))["x"]
    close(g, kept / 0.75, "gradient: the mask, rescaled")
    check(spec, {"x": x}, lambda p, x: F.dropout(x["x"], 0.25, training=False), training=False)


# ---- merges and time -------------------------------------------------------------------------
def test_merges_and_fan_in():
    spec = """network n {
        input a: 3
        input b: 3
        add s
        mul m
        concat c
        dense y: 2
        a, b -> s
        a, b, s -> m
        s, m -> c
        a, c -> y
    }"""

    def ref(p, x):
        s = x["a"] + x["b"]
        m = x["a"] * x["b"] * s
        c = torch.cat([s, m], -1)
        return F.linear(torch.cat([x["a"], c], -1), p["y.weight"], p["y.bias"])

    check(spec, {"a": normal(4, 3), "b": normal(4, 3, seed=1)}, ref)


def test_fan_in_of_images_joins_channels_and_a_static_value_repeats_over_time():
    images = (
        "network n { input a: [2, 3, 3]\n input b: [1, 3, 3]\n conv c: 2, kernel=1\n a, b -> c }"
    )
    check(
        images,
        {"a": normal(2, 2, 3, 3), "b": normal(2, 1, 3, 3, seed=1)},
        lambda p, x: F.conv2d(torch.cat([x["a"], x["b"]], 1), p["c.weight"], p["c.bias"]),
    )
    timed = "network n { input x: 2, seq\n input s: 3\n dense h: 4\n x, s -> h\n output h: mean }"

    def ref(p, x):
        s = x["s"][:, None].expand(-1, 5, -1)
        return F.linear(torch.cat([x["x"], s], -1), p["h.weight"], p["h.bias"]).mean(1)

    check(timed, {"x": normal(3, 5, 2), "s": normal(3, 3, seed=1)}, ref)


def test_delayed_link_outside_a_loop_reads_the_previous_step():
    spec = "network n { input x: 2, seq\n dense h: 3\n x -> h\n x ~> h\n output h: last }"

    def ref(p, x):
        shifted = torch.cat([torch.zeros_like(x["x"][:, :1]), x["x"][:, :-1]], 1)
        return F.linear(torch.cat([x["x"], shifted], -1), p["h.weight"], p["h.bias"])[:, -1]

    check(spec, {"x": normal(3, 6, 2)}, ref)


def test_delayed_link_from_outside_into_a_loop():
    spec = "network n { input x: 2, seq\n dense h: 3, act=tanh\n x -> h\n x ~> h\n h ~> h }"

    def ref(p, x):
        h, previous, hs = (
            torch.zeros(3, 3, dtype=torch.float64),
            torch.zeros(3, 2, dtype=torch.float64),
            [],
        )
        for t in range(6):
            h = torch.tanh(
                F.linear(torch.cat([x["x"][:, t], previous, h], -1), p["h.weight"], p["h.bias"])
            )
            previous = x["x"][:, t]
            hs.append(h)
        return torch.stack(hs, 1)

    check(spec, {"x": normal(3, 6, 2)}, ref)


def _elman(p, x, hidden="h", out="y", act=torch.tanh):
    h = torch.zeros(x.shape[0], p[f"{hidden}.bias"].shape[0], dtype=torch.float64)
    ys = []
    for t in range(x.shape[1]):
        h = act(F.linear(torch.cat([x[:, t], h], -1), p[f"{hidden}.weight"], p[f"{hidden}.bias"]))
        ys.append(F.linear(h, p[f"{out}.weight"], p[f"{out}.bias"]))
    return torch.stack(ys, 1)


def test_elman_and_jordan_loops():
    check(
        (EXAMPLES / "elman.nn").read_text(), {"x": normal(3, 7, 1)}, lambda p, x: _elman(p, x["x"])
    )

    def jordan(p, x):
        y = torch.zeros(x["x"].shape[0], 1, dtype=torch.float64)
        ys = []
        for t in range(x["x"].shape[1]):
            h = torch.tanh(
                F.linear(torch.cat([x["x"][:, t, None], y], -1), p["h.weight"], p["h.bias"])
            )
            y = F.linear(h, p["y.weight"], p["y.bias"])
            ys.append(y)
        return torch.stack(ys, 1)

    check(
        (EXAMPLES / "jordan.nn").read_text(), {"x": normal(3, 7)}, jordan
    )  # size 1 given without its axis


def test_steps_input_is_held_at_every_step_and_outputs_reduce():
    spec = (
        "network n { input x: 3, steps=4\n dense h: 2, act=tanh\n x -> h\n h ~> h\n"
        " output h: mean }"
    )

    def ref(p, x):
        h = torch.zeros(x["x"].shape[0], 2, dtype=torch.float64)
        hs = []
        for _ in range(4):
            h = torch.tanh(F.linear(torch.cat([x["x"], h], -1), p["h.weight"], p["h.bias"]))
            hs.append(h)
        return torch.stack(hs, 1).mean(1)

    check(spec, {"x": normal(5, 3)}, ref)


# ---- recurrent kinds -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bias", [True, False])
def test_recurrent_kinds_over_whole_sequences(kind, bias):
    spec = (
        f"network n {{ input x: 3, seq\n {kind} m: 5{'' if bias else ', bias=false'}\n"
        " dense y: 2\n x -> m -> y }"
    )
    fn = {"rnn": torch._VF.rnn_tanh, "lstm": torch._VF.lstm, "gru": torch._VF.gru}[kind]

    def ref(p, x):
        weights = [
            p[f"m.{k}"]
            for k in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if bias else ())
        ]
        h0 = torch.zeros(1, x["x"].shape[0], 5, dtype=torch.float64)
        state = (h0, h0) if kind == "lstm" else h0
        out = fn(x["x"], state, weights, bias, 1, 0.0, False, False, True)[0]
        return F.linear(out, p["y.weight"], p["y.bias"])

    check(spec, {"x": normal(4, 6, 3)}, ref)


def test_rnn_with_relu_and_each_cell_inside_a_loop():
    relu = "network n { input x: 3, seq\n rnn m: 4, act=relu\n x -> m\n output m: last }"

    def ref(p, x):
        h = torch.zeros(2, 4, dtype=torch.float64)
        for t in range(5):
            h = torch.relu(
                F.linear(x["x"][:, t], p["m.weight_ih"], p["m.bias_ih"])
                + F.linear(h, p["m.weight_hh"], p["m.bias_hh"])
            )
        return h

    check(relu, {"x": normal(2, 5, 3)}, ref)
    for kind, cell in (
        ("lstm", torch.lstm_cell),
        ("gru", torch.gru_cell),
        ("rnn", torch.rnn_tanh_cell),
    ):
        looped = (
            f"network n {{ input x: 3, seq\n {kind} m: 4\n dense y: 2\n x -> m -> y\n y ~> m }}"
        )

        def ref(p, x, cell=cell, kind=kind):
            h = c = torch.zeros(2, 4, dtype=torch.float64)
            y = torch.zeros(2, 2, dtype=torch.float64)
            ys = []
            for t in range(5):
                args = (torch.cat([x["x"][:, t], y], -1),)
                weights = (p["m.weight_ih"], p["m.weight_hh"], p["m.bias_ih"], p["m.bias_hh"])
                if kind == "lstm":
                    h, c = cell(*args, (h, c), *weights)
                else:
                    h = cell(*args, h, *weights)
                y = F.linear(h, p["y.weight"], p["y.bias"])
                ys.append(y)
            return torch.stack(ys, 1)

        check(looped, {"x": normal(2, 5, 3)}, ref)


class _Spike(torch.autograd.Function):
    """s = [v >= threshold]; ds/dv = 1 / (1 + 10 |v - threshold|)^2 (docs/backends.md)."""

    @staticmethod
    def forward(ctx, v, threshold):
        ctx.save_for_backward(v)
        ctx.threshold = threshold
        return (v >= threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        return g / (1 + 10 * (v - ctx.threshold).abs()) ** 2, None


def test_lif_surrogate_gradient_over_a_sequence_and_in_a_loop():
    spec = (
        "network n { input x: 4, steps=6\n lif s: 5, threshold=0.5, decay=0.8\n dense y: 2\n"
        " x -> s -> y\n output y: mean }"
    )

    def run_lif(p, inputs, name="s", threshold=0.5, decay=0.8):
        v = torch.zeros(inputs[0].shape[0], p[f"{name}.weight"].shape[0], dtype=torch.float64)
        spikes = []
        for x in inputs:
            v = decay * v + F.linear(x, p[f"{name}.weight"], p[f"{name}.bias"])
            s = _Spike.apply(v, threshold)
            v = v - s.detach() * threshold
            spikes.append(s)
        return spikes

    def ref(p, x):
        spikes = run_lif(p, [x["x"] * 3] * 6)
        return torch.stack([F.linear(s, p["y.weight"], p["y.bias"]) for s in spikes], 1).mean(1)

    check(
        spec.replace("x -> s", "x -> g -> s").replace(
            "lif s",
            "dense g: 4, weights=[[3,0,0,0],[0,3,0,0],[0,0,3,0],[0,0,0,3]], bias=false, frozen\n"
            " lif s",
        ),
        {"x": normal(3, 4)},
        ref,
    )
    looped = "network n { input x: 3, seq\n lif s: 4, threshold=0.3\n x -> s\n s ~> s }"

    def ref_loop(p, x):
        v = torch.zeros(2, 4, dtype=torch.float64)
        s = torch.zeros(2, 4, dtype=torch.float64)
        spikes = []
        for t in range(5):
            v = 0.9 * v + F.linear(torch.cat([x["x"][:, t], s], -1), p["s.weight"], p["s.bias"])
            s = _Spike.apply(v, 0.3)
            v = v - s.detach() * 0.3
            spikes.append(s)
        return torch.stack(spikes, 1)

    check(looped, {"x": normal(2, 5, 3) * 2}, ref_loop)


# ---- attention, graphs, readout, sample --------------------------------------------------------
def _attend(p, q, k, v, heads, causal, name="a"):
    def project(z, key):
        return F.linear(z, p[f"{name}.weight_{key}"], p.get(f"{name}.bias_{key}"))

    def split(z):
        b, n, d = z.shape
        return z.reshape(b, n, heads, d // heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(
        split(project(q, "q")), split(project(k, "k")), split(project(v, "v")), is_causal=causal
    )
    b, h, n, d = out.shape
    return project(out.transpose(1, 2).reshape(b, n, h * d), "o")


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_over_a_sequence_and_over_items(causal):
    flag = ", causal" if causal else ""
    spec = f"network n {{ input x: 8, seq\n attention a: heads=2{flag}\n x -> a }}"
    check(spec, {"x": normal(3, 5, 8)}, lambda p, x: _attend(p, x["x"], x["x"], x["x"], 2, causal))
    items = (
        f"network n {{ input x: [6, 4]\n attention a: heads=4, dim=8, bias=false{flag}\n x -> a }}"
    )
    check(items, {"x": normal(2, 6, 4)}, lambda p, x: _attend(p, x["x"], x["x"], x["x"], 4, causal))


def test_cross_attention_through_ports():
    spec = (
        "network n { input q: 4, seq\n input kv: 6, seq\n attention a: heads=2, dim=8, causal\n"
        " q -> a.query\n kv -> a.key\n kv -> a.value }"
    )
    check(
        spec,
        {"q": normal(2, 5, 4), "kv": normal(2, 5, 6, seed=1)},
        lambda p, x: _attend(p, x["q"], x["kv"], x["kv"], 2, True),
    )
    sets = (
        "network n { input q: [3, 4]\n input k: [5, 6]\n attention a: heads=1\n q -> a.query\n"
        " k -> a.key }"
    )
    check(
        sets,
        {"q": normal(2, 3, 4), "k": normal(2, 5, 6, seed=1)},
        lambda p, x: _attend(p, x["q"], x["k"], x["k"], 1, False),
    )


def test_gcn_normalises_the_adjacency_and_passes_gradients_to_it():
    spec = (SPECS / "gcn.nn").read_text()
    rng = np.random.default_rng(3)
    a = (rng.random((2, 34, 34)) > 0.8).astype(float)
    a = np.maximum(a, a.transpose(0, 2, 1))

    def layer(p, h, adj, name, act):
        looped = adj + torch.eye(34, dtype=torch.float64)
        d = looped.sum(-1) ** -0.5
        norm = d[..., :, None] * looped * d[..., None, :]
        return act(norm @ F.linear(h, p[f"{name}.weight"]) + p[f"{name}.bias"])

    def ref(p, x):
        h = layer(p, x["features"], x["adjacency"], "g1", F.relu)
        return layer(p, h, x["adjacency"], "g2", lambda z: F.softmax(z, -1))

    check(spec, {"features": normal(2, 34, 34), "adjacency": a}, ref)


@pytest.mark.parametrize("mode", ["mean", "sum", "max"])
def test_readout_over_items_and_over_time(mode):
    reduce = {
        "mean": lambda z: z.mean(-2),
        "sum": lambda z: z.sum(-2),
        "max": lambda z: z.max(-2).values,
    }[mode]
    check(
        f"network n {{ input x: [5, 3]\n readout r: {mode}\n x -> r }}",
        {"x": normal(4, 5, 3)},
        lambda p, x: reduce(x["x"]),
    )
    check(
        f"network n {{ input x: 3, seq\n readout r: {mode}\n x -> r }}",
        {"x": normal(4, 6, 3)},
        lambda p, x: reduce(x["x"]),
    )


@pytest.mark.parametrize("training", [False, True])
def test_sample_and_its_kl_term(training):
    spec = (EXAMPLES / "vae.nn").read_text()
    x = np.random.default_rng(0).random((5, 64))
    run = nnspec.loads(spec).to_numpy(dtype="float64").train(training)
    run.rng = np.random.default_rng(11)
    out, terms = run.forward_with_terms(x)
    seed = normal(*out.shape, seed=2)
    grads = run.backward(seed, terms={"kl": 0.5})
    eps = torch.tensor(
        np.random.default_rng(11).standard_normal((5, 4))
    )  # the same noise the run drew
    trainable = {n for n, p in run.program.parameters().items() if p.trainable}
    p = {n: torch.tensor(a, requires_grad=n in trainable) for n, a in run.params.items()}
    xt = torch.tensor(x, requires_grad=True)
    h = F.relu(F.linear(xt, p["enc.weight"], p["enc.bias"]))
    mu, logvar = (
        F.linear(h, p["mu.weight"], p["mu.bias"]),
        F.linear(h, p["logvar.weight"], p["logvar.bias"]),
    )
    z = mu + torch.exp(logvar / 2) * eps if training else mu
    y = torch.sigmoid(
        F.linear(
            F.relu(F.linear(z, p["dec.weight"], p["dec.bias"])), p["out.weight"], p["out.bias"]
        )
    )
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum() / 5
    ((y * torch.tensor(seed)).sum() + 0.5 * kl).backward()
    close(out, y, "output")
    close(terms["kl"], kl, "kl")
    for name in trainable:
        close(grads[name], p[name].grad, name)
    close(grads["x"], xt.grad, "input gradient")


# ---- every spec: the two backends side by side ---------------------------------------------------
def _torch_backend_ready() -> bool:
    try:
        from nnspec.backends.torch import to_torch  # noqa: F401
    except Exception:
        return False
    return True


SPEC_FILES = (
    sorted(SPECS.glob("*.nn"))
    + sorted(EXAMPLES.glob("*.nn"))
    + sorted((TEST_SPECS / "ok").glob("*.nn"))
)
NETWORKS = [(path, model.name) for path in SPEC_FILES for model in spec_models(path)]
RANDOM_KINDS = {"dropout", "noise", "sample"}


def spec_inputs(program, batch: int = 3, steps: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    return conftest.spec_inputs(program, batch, steps, seed, edge_threshold=0.7)


@pytest.mark.skipif(
    not _torch_backend_ready(),
    reason="the PyTorch backend (nnspec/backends/torch) is not there yet",
)
@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize(
    "path, network", NETWORKS, ids=[f"{p.parent.name}/{p.stem}:{n}" for p, n in NETWORKS]
)
def test_both_backends_agree_on_every_spec(path, network, mode):
    model = nnspec.load(path, network)
    program = model.program
    if mode == "train" and any(
        layer.kind.name in RANDOM_KINDS or getattr(layer.options, "dropout", 0.0)
        for layer in program.layers
    ):  # stacked recurrent layers drop out between them
        pytest.skip("random in training (dropout masks, sampled noise): compared in evaluation")
    run = model.to_numpy(seed=3, dtype="float64").train(mode == "train")
    net = model.to_torch(seed=3, dtype="float64").train(mode == "train")
    assert list(run.params) == list(net.state_dict())
    for name, value in net.state_dict().items():
        close(run.params[name], value, f"initial {name}")
    data = spec_inputs(program)
    tokens = {
        link.source
        for layer in program.layers
        if layer.kind.name == "embedding"
        for link in layer.inputs
    }
    ours, terms = run.forward_with_terms(**data)
    ours = ours if isinstance(ours, dict) else {program.outputs[0].name: ours}
    seeds = {name: normal(*value.shape, seed=9) for name, value in ours.items()}
    grads = run.backward(seeds, terms={"kl": 0.3} if "kl" in terms else None)
    xs = {n: torch.tensor(a, requires_grad=n not in tokens) for n, a in data.items()}
    theirs, their_terms = net.forward_with_terms(**xs)
    theirs = theirs if isinstance(theirs, dict) else {program.outputs[0].name: theirs}
    total = sum((theirs[n] * torch.tensor(seeds[n])).sum() for n in ours)
    assert list(terms) == list(their_terms)
    for name, logits in terms.get("logits", {}).items():
        close(logits, their_terms["logits"][name], f"logits of {name}")
    if "kl" in terms:
        close(terms["kl"], their_terms["kl"], "kl")
        total = total + 0.3 * their_terms["kl"]
    for name in ours:
        close(ours[name], theirs[name], f"output {name}")
    if total.requires_grad:
        total.backward()
    named = dict(net.named_parameters())
    for name, grad in grads.items():
        if name in named:
            reference = (
                named[name].grad if named[name].grad is not None else torch.zeros_like(named[name])
            )
        elif name in tokens:
            continue
        else:
            reference = xs[name].grad if xs[name].grad is not None else torch.zeros_like(xs[name])
        close(grad, reference, f"gradient of {name}")
    for name, value in net.state_dict().items():
        close(run.params[name], value, f"{name} after the step")
