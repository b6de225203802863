"""The NumPy backend on its own: finite differences of every primitive and every kind (float64),
time semantics against loops written here by hand, literal weights, every shipped spec, the
API (inputs, outputs, parameters, modes, errors), and a run with torch made unimportable.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT, SPECS, TEST_SPECS, spec_inputs, spec_models

import nnspec
from nnspec.backends.numpy import autograd, cells, ops
from nnspec.backends.numpy.activations import TABLE, activate, erf, softmax
from nnspec.backends.numpy.autograd import Var
from nnspec.backends.numpy.image import conv2d, pool2d
from nnspec.kinds.activation import Activation

# central differences in float64: error about EPS^2 from the curvature, 1e-10 from rounding
EPS = 1e-6
RTOL, ATOL = 1e-6, 1e-8


# ---- the table of lowerings ------------------------------------------------------------------
# ---- finite differences of the primitives -------------------------------------------------------
def _outputs(result) -> list[Var]:
    return list(result) if isinstance(result, (list, tuple)) else [result]


def fd_check(fn, *arrays: np.ndarray) -> None:
    """Compare the recorded gradient of sum(G * fn(*arrays)) with central differences, element by
    element."""
    rng = np.random.default_rng(42)
    leaves = [Var(a.copy(), True) for a in arrays]
    outs = _outputs(fn(*leaves))
    seeds = [rng.standard_normal(o.shape) for o in outs]
    for o, g in zip(outs, seeds, strict=True):
        autograd.add_grad(o, g)
    autograd.backward(outs)

    def loss(values) -> float:
        return sum(
            float((o.value * g).sum())
            for o, g in zip(_outputs(fn(*[Var(v) for v in values])), seeds, strict=True)
        )

    for i, a in enumerate(arrays):
        numeric = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            up, down = [v.copy() for v in arrays], [v.copy() for v in arrays]
            up[i][index] += EPS
            down[i][index] -= EPS
            numeric[index] = (loss(up) - loss(down)) / (2 * EPS)
        analytic = leaves[i].grad if leaves[i].grad is not None else np.zeros_like(a)
        np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=f"argument {i}")


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


CONST = normal(3, 4, seed=9)
TOKENS = np.array([[0, 2, 2], [5, 1, 0]])
PRIMITIVES = {
    "add (broadcast)": (ops.add, [normal(3, 4), normal(4, seed=1)]),
    "sub (broadcast)": (ops.sub, [normal(3, 4), normal(3, 1, seed=1)]),
    "mul (broadcast)": (ops.mul, [normal(2, 3, 4), normal(3, 4, seed=1)]),
    "scale": (lambda x: ops.scale(x, -1.7), [normal(3, 4)]),
    "add_const": (lambda x: ops.add_const(x, CONST), [normal(2, 3, 4)]),
    "mul_const": (lambda x: ops.mul_const(x, CONST), [normal(3, 4)]),
    "power": (lambda x: ops.power(x, -0.5), [np.abs(normal(3, 4)) + 0.5]),
    "exp": (ops.exp, [normal(3, 4)]),
    "total (axes)": (lambda x: ops.total(x, (0, 2)), [normal(2, 3, 4)]),
    "total (all)": (ops.total, [normal(2, 3)]),
    "mean (keepdims)": (lambda x: ops.mean(x, 1, keepdims=True), [normal(2, 3, 4)]),
    "max_over": (lambda x: ops.max_over(x, 1), [normal(2, 5, 3)]),
    "linear": (ops.linear, [normal(2, 3, 4), normal(5, 4, seed=1), normal(5, seed=2)]),
    "linear (no bias)": (ops.linear, [normal(3, 4), normal(2, 4, seed=1)]),
    "linear of a repeated input": (
        lambda x, W, b: ops.linear(ops.repeat_time(x, 3), W, b),
        [normal(2, 4), normal(5, 4, seed=1), normal(5, seed=2)],
    ),
    "matmul (batch broadcast)": (ops.matmul, [normal(2, 1, 3, 4), normal(3, 4, 2, seed=1)]),
    "reshape": (lambda x: ops.reshape(x, (4, 3)), [normal(2, 6)]),
    "transpose": (lambda x: ops.transpose(x, (2, 0, 1)), [normal(2, 3, 4)]),
    "take": (lambda x: ops.take(x, (slice(None), -1)), [normal(2, 3, 4)]),
    "concat": (
        lambda a, b: ops.concat([a, b], -3),
        [normal(2, 1, 3, 3), normal(2, 2, 3, 3, seed=1)],
    ),
    "split": (lambda x: ops.split(x, (1, 3, 2), -1), [normal(2, 6)]),
    "gather_rows": (lambda w: ops.gather_rows(w, TOKENS), [normal(6, 3)]),
    "shift_time": (ops.shift_time, [normal(2, 4, 3)]),
    "repeat_time": (lambda x: ops.repeat_time(x, 4), [normal(2, 3)]),
    "unstack_time": (ops.unstack_time, [normal(2, 4, 3)]),
    "stack_time": (
        lambda a, b, c: ops.stack_time([a, b, c]),
        [normal(2, 3), normal(2, 3, seed=1), normal(2, 3, seed=2)],
    ),
    "softmax (features)": (lambda x: softmax(x, -1), [normal(3, 5)]),
    "softmax (channels)": (lambda x: softmax(x, -3), [normal(2, 3, 2, 2)]),
    "conv2d (same, even kernel)": (
        lambda x, w, b: conv2d(x, w, b, (1, 1), (1, 2, 0, 1)),
        [normal(2, 2, 5, 4), normal(3, 2, 4, 2, seed=1), normal(3, seed=2)],
    ),
    "conv2d (stride 2, padding 1)": (
        lambda x, w, b: conv2d(x, w, b, (2, 2), (1, 1, 1, 1)),
        [normal(2, 2, 5, 5), normal(3, 2, 3, 3, seed=1), normal(3, seed=2)],
    ),
    "conv2d (no bias, strides 2 and 1)": (
        lambda x, w: conv2d(x, w, None, (2, 1), (0, 0, 0, 0)),
        [normal(1, 3, 6, 5), normal(2, 3, 3, 2, seed=1)],
    ),
    "pool2d max": (lambda x: pool2d(x, "max", (2, 2), (2, 2)), [normal(2, 2, 5, 4)]),
    "pool2d max (overlapping)": (lambda x: pool2d(x, "max", (3, 3), (2, 2)), [normal(2, 2, 7, 6)]),
    "pool2d avg": (lambda x: pool2d(x, "avg", (2, 3), (1, 2)), [normal(2, 2, 5, 7)]),
    "lstm_sequence": (
        cells.lstm_sequence,
        [
            normal(2, 4, 3),
            normal(12, 3, seed=1),
            normal(12, seed=2),
            normal(12, 3, seed=3),
            normal(12, seed=4),
        ],
    ),
    "lstm_sequence (no bias)": (
        lambda x, w_ih, w_hh: cells.lstm_sequence(x, w_ih, None, w_hh, None),
        [normal(2, 3, 2), normal(8, 2, seed=1), normal(8, 2, seed=2)],
    ),
    "lstm_cell (first step)": (
        lambda xg, w, b: cells.lstm_cell(xg, None, w, b),
        [normal(2, 12), normal(12, 3, seed=1), normal(12, seed=2)],
    ),
    "lstm_cell": (
        lambda xg, h, c, w, b: cells.lstm_cell(xg, (h, c), w, b),
        [
            normal(2, 12),
            normal(2, 3, seed=1),
            normal(2, 3, seed=2),
            normal(12, 3, seed=3),
            normal(12, seed=4),
        ],
    ),
    "gru_step": (
        lambda xg, h, w, b: cells.gru_step(xg, h, w, b),
        [normal(2, 9), normal(2, 3, seed=1), normal(9, 3, seed=2), normal(9, seed=3)],
    ),
    "gru_step (first step)": (
        lambda xg, w, b: cells.gru_step(xg, None, w, b),
        [normal(2, 9), normal(9, 3, seed=2), normal(9, seed=3)],
    ),
    "rnn_step": (
        lambda xg, h, w, b: cells.rnn_step(xg, h, w, b, Activation(name="tanh")),
        [normal(2, 3), normal(2, 3, seed=1), normal(3, 3, seed=2), normal(3, seed=3)],
    ),
}
PRIMITIVES |= {
    f"activation {name}": (
        lambda x, name=name: activate(x, Activation(name=name, alpha=0.3)),
        [normal(3, 4) * 2],
    )
    for name, (_, derivative) in TABLE.items()
    if derivative is not None
}


@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_gradient_against_finite_differences(name):
    fn, arrays = PRIMITIVES[name]
    fd_check(fn, *arrays)


def test_step_and_spike_pass_what_docs_say():
    x = Var(normal(3, 4), True)
    assert not activate(x, Activation(name="step")).needs_grad  # nothing flows back through step
    v = Var(normal(3, 4) + 1.0, True)
    s = cells.spike(v, 1.0)
    np.testing.assert_array_equal(s.value, (v.value >= 1.0).astype(float))
    g = normal(3, 4, seed=1)
    autograd.add_grad(s, g)
    autograd.backward([s])
    np.testing.assert_allclose(v.grad, g / (1 + 10 * np.abs(v.value - 1.0)) ** 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_of_extreme_values_are_finite_and_silent(dtype):
    x = Var(
        np.array([[-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4]], dtype), True
    )  # warnings are errors in the tests
    for name in list(TABLE) + ["softmax"]:
        y = activate(x, Activation(name=name, alpha=0.5))
        assert y.value.dtype == dtype and np.all(np.isfinite(y.value)), name
        if y.needs_grad:
            autograd.add_grad(y, np.ones_like(y.value))
            autograd.backward([y])
            assert np.all(np.isfinite(x.grad)), name
            x.grad = None


def test_erf_matches_math_erf_to_float64_precision():
    import math

    x = np.linspace(-7, 7, 20001)
    assert np.abs(erf(x) - np.array([math.erf(v) for v in x])).max() < 1e-15


def test_gradients_shared_between_parents_are_not_written_into():
    a, b = Var(normal(2, 3), True), Var(normal(2, 3, seed=1), True)
    s = ops.add(a, b)  # both parents get the very same array
    y = ops.add(ops.mul(s, a), b)
    g = np.ones((2, 3))
    autograd.add_grad(y, g)
    autograd.backward([y])
    np.testing.assert_allclose(a.grad, a.value + s.value)
    np.testing.assert_allclose(b.grad, a.value + 1.0)
    np.testing.assert_array_equal(g, np.ones((2, 3)))


def test_linear_multiplies_a_repeated_input_once_and_equals_the_whole_product():
    """A broadcast view (a static input met at every step) takes the product once: the values
    and every gradient as for the same numbers materialised, repeated along one or two axes."""
    for shape, repeated in (((3, 1, 4), (3, 6, 4)), ((1, 2, 1, 4), (5, 2, 3, 4))):
        x = np.broadcast_to(normal(*shape), repeated)
        W, b, g = normal(7, 4, seed=1), normal(7, seed=2), normal(*repeated[:-1], 7, seed=3)
        results = []
        for value in (x, x.copy()):
            leaves = [Var(value, True), Var(W.copy(), True), Var(b.copy(), True)]
            y = ops.linear(*leaves)
            autograd.add_grad(y, g)
            autograd.backward([y])
            results.append([y.value] + [leaf.grad for leaf in leaves])
        assert ops._repeated_axes(x) and not ops._repeated_axes(x.copy())
        for fast, whole in zip(*results, strict=True):
            np.testing.assert_allclose(fast, whole, rtol=1e-12, atol=1e-12)
        assert results[0][0].flags.writeable  # a fresh array, not a read-only view


# ---- finite differences of every kind, through whole networks ----------------------------------
KIND_SPECS = {
    "input": "input x: 3\n dense y: 2\n x -> y",
    "port": None,  # a block's input: blocks_and_uses.nn, below
    "dense": "input x: 3\n dense h: 4, act=elu\n dense y: 2, bias=false\n x -> h -> y",
    "maxout": "input x: 3\n maxout y: 2, pieces=3\n x -> y",
    "embedding": "input t: 2, seq\n embedding e: 7, 3\n flatten f\n dense y: 2\n t -> e -> f -> y",
    "conv": "input x: [2, 5, 5]\n conv c: 3, kernel=[3, 2], stride=2, padding=1, act=tanh\n x -> c",
    "deconv": "input x: [2, 3, 4]\n deconv d: 3, kernel=[3, 2], stride=2, padding=1, "
    "output_padding=1, act=tanh\n x -> d",
    "pool": "input x: [2, 5, 5]\n pool p: avg, size=2, stride=1\n pool q: max, size=2\n"
    " x -> p -> q",
    "unpool": "input x: [2, 4, 5]\n conv c: 2, kernel=1\n pool p: max, size=2, ceil\n"
    " conv d: 2, kernel=1\n unpool u: of=p\n x -> c -> p -> d -> u",
    "global_pool": "input x: [2, 3, 4], seq\n global_pool g: max\n global_pool h: avg\n"
    " concat c\n x -> g, h\n g, h -> c",
    "flatten": "input x: [2, 3, 3], seq\n flatten f\n dense y: 2\n x -> f -> y",
    "reshape": "input x: 12, seq\n reshape r: [3, 2, -1]\n conv c: 2, kernel=2\n x -> r -> c",
    "upsample": "input x: [2, 3, 2]\n upsample u: 2\n upsample v: 3, mode=bilinear\n"
    " conv c: 2, kernel=2\n x -> u -> v -> c",
    "dropout": "input x: 6\n dropout d: 0.5\n dense y: 2\n x -> d -> y",
    "noise": "input x: 6\n noise d: salt_pepper, 0.5\n dense y: 2\n x -> d -> y",
    "batchnorm": "input x: [2, 3, 3]\n batchnorm b\n flatten f\n dense y: 2\n x -> b -> f -> y",
    "layernorm": "input x: 5, seq\n layernorm l\n dense y: 2\n x -> l -> y",
    "add": "input a: 3\n input b: 3, seq\n add s\n a, b -> s",
    "mul": "input a: 3\n input b: 3\n mul m\n a, b -> m",
    "concat": "input a: [1, 2, 2]\n input b: [2, 2, 2]\n concat c\n a, b -> c",
    "rnn": "input x: 2, seq\n rnn r: 3, act=softplus\n x -> r",
    "lstm": "input x: 2, seq\n lstm l: 3\n dense y: 2\n x -> l -> y\n y ~> l",
    "gru": "input x: 2, seq\n gru g: 3\n x -> g\n output g: last",
    "attention": "input x: 4, seq\n attention a: heads=2, causal\n x -> a",
    "posenc": "input x: 4, seq\n posenc s: sinusoidal\n posenc p: learned, max_len=9\n"
    " attention a: heads=2\n x -> s -> p -> a",
    "last": "input x: 2, seq\n gru g: 3, layers=2\n last l\n dense y: 2\n x -> g -> l -> y",
    "first": "input x: 2, seq\n lstm h: 3, layers=2\n first f\n x -> h -> f",
    "gcn": "input f: [4, 3]\n input a: [4, 4]\n gcn g: 2, act=tanh\n f -> g.features\n"
    " a -> g.adjacency",
    "readout": "input x: [4, 3]\n readout r: max\n x -> r",
    "rbf": "input x: 3\n rbf r: 4, eps=0.7\n"
    " rbf s: 3, centres=[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]], eps=nearest\n"
    " dense y: 2\n x -> r -> s -> y",
    "rbm": "input x: 5\n rbm h: 3\n dense y: 2\n x -> h -> y",
    "markov": "input x: 3\n dense h: 2, act=softmax\n markov m: 2\n dense y: 2\n x -> h -> m -> y",
    "sample": "input x: 3\n dense m: 2\n dense v: 2\n sample z\n x -> m, v\n m -> z.mean\n"
    " v -> z.logvar",
    "som": None,  # no gradient (rule = som moves it; E575): tests/test_som.py
    "hopfield": None,  # no gradient (recall is a sign; rule = hopfield stores it; E550)
    "boltzmann": None,  # no gradient (rule = boltzmann moves it; E555): tests/test_boltzmann.py
    "lif": None,  # its gradient is a surrogate, not the derivative: test_lif_against_a_loop_by_hand
    # fixed weights: the gradient reaches the input and the readout, through every step and the loop
    "esn": "input x: 2, seq\n esn h: 4, sr=1.2, lr=0.4, input_connectivity=1, bias_scaling=0.5\n"
    " dense y: 2\n x -> h -> y\n y ~> h",
    "lsm": None,  # a spike's surrogate gradient, as lif's: tests/test_lsm.py, against a loop
    "primary_capsules": "input x: [2, 5, 5]\n primary_capsules p: 3, dim=2, kernel=[3, 2],"
    " stride=2, padding=1\n x -> p",
    "capsules": "input x: [3, 4]\n capsules c: 2, dim=3, routing=3\n"
    " capsules d: 3, dim=2, routing=2\n length y\n x -> c -> d -> y",
    "length": "input x: [3, 4]\n length y\n x -> y",
    "mask": "input x: [3, 4]\n capsules c: 3, dim=2, routing=2\n mask m\n dense y: 2\n"
    " x -> c -> m -> y",
    "ntm": "input x: 3, seq\n ntm m: 4, slots=5, width=3, heads=2\n dense y: 2\n x -> m -> y\n"
    " y ~> m",
    "dnc": "input x: 3, seq\n dnc m: 4, slots=5, width=3, heads=2\n dense y: 2\n x -> m -> y\n"
    " y ~> m",
    **{name: f"input x: 4\n {name} y\n x -> y" for name in TABLE if name != "step"},
    "softmax": "input x: [3, 2, 2]\n softmax y\n x -> y",
    "step": None,  # no gradient: test_xor_gates_give_the_truth_table
}


def directional_check(run, data: dict[str, np.ndarray], skip: tuple[str, ...] = ()) -> None:
    """Each gradient (parameters and inputs) against a central difference along a random direction.

    The run's generator is reseeded before every forward, so dropout and sampling draw the same
    noise.
    """
    rng = np.random.default_rng(1)

    def forward(values, params):
        saved = {n: a.copy() for n, a in run.params.items()}
        for n, a in params.items():
            run.params[n][...] = a
        run.rng = np.random.default_rng(7)
        out, terms = run.forward_with_terms(**values)
        for n, a in saved.items():
            run.params[n][...] = a
        return out if isinstance(out, dict) else {run.program.outputs[0].name: out}, terms

    out, terms = forward(data, {})
    seeds = {n: rng.standard_normal(v.shape) for n, v in out.items()}
    grads = run.backward(seeds, terms={"kl": 0.7})

    def loss(values, params) -> float:
        out, terms = forward(values, params)
        return sum(float((out[n] * seeds[n]).sum()) for n in out) + 0.7 * float(
            terms.get("kl", 0.0)
        )

    for name, grad in grads.items():
        if name in skip:
            continue
        d = rng.standard_normal(grad.shape)
        if name in run.params:
            up, down = ({name: run.params[name] + s * EPS * d} for s in (1, -1))
            numeric = (loss(data, up) - loss(data, down)) / (2 * EPS)
        else:
            numeric = (
                loss(data | {name: data[name] + EPS * d}, {})
                - loss(data | {name: data[name] - EPS * d}, {})
            ) / (2 * EPS)
        np.testing.assert_allclose(
            float((grad * d).sum()), numeric, rtol=1e-5, atol=1e-8, err_msg=name
        )


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kind", [k for k, spec in KIND_SPECS.items() if spec is not None])
def test_kind_gradient_against_finite_differences(kind, training):
    model = nnspec.loads(f"network n {{ {KIND_SPECS[kind]} }}")
    run = model.to_numpy(seed=2, dtype="float64").train(training)
    data = spec_inputs(model.program)
    directional_check(run, data, skip=("t",) if kind == "embedding" else ())


def test_blocks_ports_and_several_inputs_against_finite_differences():
    model = nnspec.load(TEST_SPECS / "ok" / "blocks_and_uses.nn")
    directional_check(model.to_numpy(seed=0, dtype="float64"), spec_inputs(model.program))


def test_recurrent_links_against_finite_differences():
    model = nnspec.load(TEST_SPECS / "ok" / "recurrent_links.nn")
    directional_check(model.to_numpy(seed=0, dtype="float64"), spec_inputs(model.program, steps=6))


# ---- time, against loops written here -----------------------------------------------------------
def tanh_layer(p, name, x):
    return np.tanh(x @ p[f"{name}.weight"].T + p[f"{name}.bias"])


def test_elman_example_against_a_loop_by_hand():
    model = nnspec.load(EXAMPLES / "elman.nn")
    run = model.to_numpy(seed=0, dtype="float64")
    x = normal(4, 9, 1)
    p = run.params
    h = np.zeros((4, 16))
    ys = []
    for t in range(9):
        h = tanh_layer(p, "h", np.concatenate([x[:, t], h], -1))
        ys.append(h @ p["y.weight"].T + p["y.bias"])
    np.testing.assert_allclose(run(x), np.stack(ys, 1), rtol=1e-12)
    np.testing.assert_allclose(
        run(x[..., 0]), np.stack(ys, 1), rtol=1e-12
    )  # size 1 without its axis
    # backprop through time: the gradient of the last output reaches the first input
    g = np.zeros((4, 9, 1))
    g[:, -1] = 1.0
    assert np.all(run.backward(g)["x"][:, 0] != 0)


def test_two_loops_a_static_input_and_the_last_step():
    model = nnspec.load(TEST_SPECS / "ok" / "recurrent_links.nn")
    run = model.to_numpy(seed=0, dtype="float64")
    x, bias = normal(2, 5, 3), normal(2, 2, seed=1)
    p = run.params
    h, y = np.zeros((2, 8)), np.zeros((2, 2))
    for t in range(5):
        h = tanh_layer(p, "h", np.concatenate([x[:, t], bias, h], -1))
        k = tanh_layer(p, "k", np.concatenate([h, y], -1))
        y = k @ p["y.weight"].T + p["y.bias"]
    np.testing.assert_allclose(run(x=x, bias=bias), y, rtol=1e-12)


def test_steps_input_takes_one_value_or_one_per_step():
    spec = (
        "network n { input x: 3, steps=4\n dense h: 2, act=tanh\n x -> h\n h ~> h\n"
        " output h: mean }"
    )
    run = nnspec.loads(spec).to_numpy(dtype="float64")
    x = normal(5, 3)
    p = run.params
    h, total = np.zeros((5, 2)), 0.0
    for _ in range(4):
        h = tanh_layer(p, "h", np.concatenate([x, h], -1))
        total = total + h
    np.testing.assert_allclose(run(x), total / 4, rtol=1e-12)
    np.testing.assert_allclose(run(np.repeat(x[:, None], 4, 1)), total / 4, rtol=1e-12)
    run(x)
    held = run.backward(np.ones((5, 2)))["x"]
    run(np.repeat(x[:, None], 4, 1))
    per_step = run.backward(np.ones((5, 2)))["x"]
    assert held.shape == (5, 3) and per_step.shape == (5, 4, 3)
    np.testing.assert_allclose(held, per_step.sum(1), rtol=1e-12)


def test_delayed_link_from_outside_a_loop_is_a_shift():
    run = nnspec.loads("network n { input x: 2, seq\n dense h: 3\n x -> h\n x ~> h }").to_numpy(
        dtype="float64"
    )
    x = normal(2, 5, 2)
    shifted = np.concatenate([np.zeros((2, 1, 2)), x[:, :-1]], 1)
    expected = np.concatenate([x, shifted], -1) @ run.params["h.weight"].T + run.params["h.bias"]
    np.testing.assert_allclose(run(x), expected, rtol=1e-12)


def test_lif_against_a_loop_by_hand():
    model = nnspec.load(SPECS / "snn.nn")
    run = model.to_numpy(seed=0, dtype="float64")
    x = np.abs(normal(3, 64)) * 2
    p = run.params

    def layer(name, inputs, threshold=1.0, decay=0.9):
        v, spikes, memb = np.zeros((3, p[f"{name}.bias"].shape[0])), [], []
        for xt in inputs:
            v = decay * v + xt @ p[f"{name}.weight"].T + p[f"{name}.bias"]
            s = (v >= threshold).astype(float)
            spikes.append(s)
            memb.append(v)
            v = v - s * threshold
        return spikes, memb

    s1, v1 = layer("s1", [x] * 20)
    s2, v2 = layer("s2", s1)
    out = run(x)
    np.testing.assert_allclose(out, np.mean(s2, 0), rtol=1e-12)
    assert 0 < out.mean() < 1  # some cells spike, some do not
    # the surrogate through the second layer's bias: sum over steps of dL/ds * ds/dv * dv/db
    # through decay
    g = normal(3, 10, seed=1)
    grads = run.backward(g)
    dv, db = np.zeros((3, 10)), np.zeros(10)
    for t in range(19, -1, -1):
        dv = (g / 20) / (1 + 10 * np.abs(v2[t] - 1.0)) ** 2 + 0.9 * dv
        db += dv.sum(0)
    np.testing.assert_allclose(grads["s2.bias"], db, rtol=1e-10)


# ---- literal weights, every spec, both dtypes ----------------------------------------------------
def test_xor_gates_give_the_truth_table():
    run = nnspec.load(EXAMPLES / "xor_gates.nn").to_numpy()
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    np.testing.assert_array_equal(run(x), [[0], [1], [1], [0]])
    np.testing.assert_array_equal(
        run.params["s.weight"], [[-0.5, -0.5], [0.5, 0.5]]
    )  # [inputs, units] stored [units, inputs]
    grads = run.backward(np.ones((4, 1)))
    assert set(grads) == {"x"}  # every weight is frozen
    np.testing.assert_array_equal(grads["x"], 0.0)  # and nothing flows back through step


SPEC_FILES = (
    sorted(SPECS.glob("*.nn"))
    + sorted(EXAMPLES.glob("*.nn"))
    + sorted((TEST_SPECS / "ok").glob("*.nn"))
)
NETWORKS = [(path, model.name) for path in SPEC_FILES for model in spec_models(path)]


@pytest.mark.parametrize(
    "path, network", NETWORKS, ids=[f"{p.parent.name}/{p.stem}:{n}" for p, n in NETWORKS]
)
def test_every_spec_runs_forward_and_backward(path, network):
    model = nnspec.load(path, network)
    program = model.program
    run = model.to_numpy()
    assert list(run.params) == list(program.parameters())
    for name, param in program.parameters().items():
        assert run.params[name].shape == param.shape
        assert run.params[name].dtype == (
            np.int64 if name.endswith("num_batches_tracked") else np.float32
        )
    data = spec_inputs(program)
    out, terms = run.forward_with_terms(**data)
    outs = out if isinstance(out, dict) else {program.outputs[0].name: out}
    assert list(outs) == [o.name for o in program.outputs]
    for o in program.outputs:
        expected = (
            (3,)
            + ((4 if o.shape.steps is None else o.shape.steps,) if o.shape.timed else ())
            + o.shape.dims
        )
        assert outs[o.name].shape == expected and outs[o.name].dtype == np.float32
        assert np.all(np.isfinite(outs[o.name]))
    assert ("kl" in terms) == any(layer.kind.name == "sample" for layer in program.layers)
    grads = run.backward({n: np.ones_like(v) for n, v in outs.items()}, terms={"kl": 1.0})
    unread = {f"{layer.name}.{k}" for layer in program.layers for k in layer.kind.unread}
    trainable = [n for n, p in program.parameters().items() if p.trainable and n not in unread]
    assert list(grads) == trainable + list(program.inputs)
    for name, grad in grads.items():
        assert grad.shape == (run.params[name].shape if name in run.params else data[name].shape)
        assert grad.dtype == np.float32 and np.all(np.isfinite(grad)) and grad.flags.writeable


def test_float64_on_request_and_float32_close_to_it():
    model = nnspec.load(EXAMPLES / "lenet.nn")
    single, double = model.to_numpy(), model.to_numpy(dtype="float64")
    assert all(a.dtype == np.float64 for a in double.params.values())
    x = normal(4, 1, 8, 8)
    np.testing.assert_allclose(single(x), double(x), rtol=1e-4, atol=1e-6)
    assert model.to_numpy(dtype=np.float64).dtype == np.float64
    with pytest.raises(nnspec.NnspecError, match="R339.*dtype must be one of 'float32', 'float64'"):
        model.to_numpy(dtype="int32")


# ---- parameters and weights ---------------------------------------------------------------------
def test_load_copies_in_place_and_refuses_what_does_not_fit():
    model = nnspec.load(TEST_SPECS / "ok" / "every_kind.nn", "images")
    a, b = model.to_numpy(seed=0), model.to_numpy(seed=1)
    x = normal(2, 3, 32, 32)
    a.eval(), b.eval()
    before = b.params["c1.weight"]
    b.load({n: v.astype(np.float64) for n, v in a.params.items()})
    assert b.params["c1.weight"] is before  # in place: references held elsewhere stay valid
    np.testing.assert_array_equal(a(x), b(x))
    state = dict(a.params)
    with pytest.raises(ValueError, match="missing c1.bias"):
        b.load({n: v for n, v in state.items() if n != "c1.bias"})
    with pytest.raises(ValueError, match="unexpected c9.weight"):
        b.load(state | {"c9.weight": np.zeros(3)})
    with pytest.raises(
        ValueError, match=r"'c1.weight' is \[8, 3, 5\], but 'images' needs \[8, 3, 5, 5\]"
    ):
        b.load(state | {"c1.weight": np.zeros((8, 3, 5))})


def test_batchnorm_running_statistics_follow_pytorchs_rule():
    run = nnspec.loads("network n { input x: 2\n batchnorm b\n x -> b }").to_numpy(dtype="float64")
    x = normal(6, 2) * 2 + 3
    run(x)
    np.testing.assert_allclose(run.params["b.running_mean"], 0.1 * x.mean(0))
    np.testing.assert_allclose(run.params["b.running_var"], 0.9 + 0.1 * x.var(0, ddof=1))
    assert run.params["b.num_batches_tracked"] == 1
    run.eval()(x)
    assert run.params["b.num_batches_tracked"] == 1
    with pytest.raises(ValueError, match="more than one value"):
        run.train()(x[:1])


# ---- inputs, outputs, modes, errors -------------------------------------------------------------
def test_inputs_by_position_or_by_name_and_several_outputs_in_order():
    spec = (
        "network n { input a: 2\n input b: 3\n dense p: 4\n dense q: 1\n a, b -> p\n b -> q\n"
        " output q, p }"
    )
    run = nnspec.loads(spec).to_numpy(dtype="float64")
    a, b = normal(5, 2), normal(5, 3, seed=1)
    by_position, by_name = run(a, b), run(b=b, a=a)
    assert list(by_position) == ["q", "p"]
    for name in by_position:
        np.testing.assert_array_equal(by_position[name], by_name[name])
    grads = run.backward({"p": np.ones((5, 4))})  # q gets none: zero
    np.testing.assert_array_equal(grads["q.weight"], 0.0)
    with pytest.raises(ValueError, match="give grad_out as a dict"):
        run(a, b)
        run.backward(np.ones((5, 4)))


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda run: run(np.zeros((2, 3))),
            r"input 'x' takes \[B, T, 2\], but receives an array of shape \[2, 3\]",
        ),
        (
            lambda run: run(np.zeros((2, 4, 3))),
            r"input 'x' takes \[B, T, 2\], but receives an array of shape \[2, 4, 3\]",
        ),
        (lambda run: run(np.zeros((2, 0, 2))), "empty"),
    ],
)
def test_wrong_input_shapes_name_the_input_and_both_shapes(call, message):
    run = nnspec.loads("network n { input x: 2, seq\n dense y: 1\n x -> y }").to_numpy()
    with pytest.raises(ValueError, match=message):
        call(run)


def test_input_shape_rules_for_held_sized_and_several_inputs():
    held = nnspec.loads("network n { input x: 1, steps=3\n lif s: 2\n x -> s }").to_numpy()
    for shape in [(4,), (4, 1), (4, 3), (4, 3, 1)]:
        assert held(np.ones(shape)).shape == (4, 3, 2)
    with pytest.raises(
        ValueError, match=r"takes \[B, 1\] or \[B\] or \[B, 3, 1\] or \[B, 3\] \(held for 3 steps\)"
    ):
        held(np.ones((4, 5)))
    exact = nnspec.loads(
        "network n { input x: 2, seq=4\n input y: 2, seq\n add s\n x, y -> s }"
    ).to_numpy()
    with pytest.raises(ValueError, match=r"\[B, 4, 2\]"):
        exact(np.ones((1, 3, 2)), np.ones((1, 3, 2)))
    with pytest.raises(ValueError, match="disagree on the number of steps"):
        exact(np.ones((1, 4, 2)), np.ones((1, 3, 2)))
    with pytest.raises(ValueError, match="disagree on the batch size"):
        exact(np.ones((1, 4, 2)), np.ones((2, 4, 2)))
    with pytest.raises(TypeError, match="no input 'z'"):
        exact(x=np.ones((1, 4, 2)), z=1)
    with pytest.raises(TypeError, match="missing input 'y'"):
        exact(np.ones((1, 4, 2)))
    with pytest.raises(ValueError, match="whole numbers from 0 to 6"):
        nnspec.loads("network n { input t: 1\n embedding e: 7, 2\n t -> e }").to_numpy()(
            np.array([1.0, 7.0])
        )


def test_backward_needs_a_forward_and_checks_its_gradient():
    run = nnspec.load(EXAMPLES / "xor.nn").to_numpy()
    with pytest.raises(RuntimeError, match="forward pass first"):
        run.backward(np.ones((4, 1)))
    run(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"shaped as it, \[4, 1\], not \[4\]"):
        run.backward(np.ones(4))
    with pytest.raises(ValueError, match="unknown term"):
        run.backward(np.ones((4, 1)), terms={"l2": 1.0})


def test_gradients_are_arrays_of_their_own():
    run = nnspec.loads("network n { input a: 3\n input b: 3\n add s\n a, b -> s }").to_numpy()
    g = np.ones((2, 3), np.float32)
    run(np.zeros((2, 3)), np.zeros((2, 3)))
    grads = run.backward(g)
    assert grads["a"] is not g and grads["b"] is not g and grads["a"] is not grads["b"]
    grads["a"] += 1.0
    np.testing.assert_array_equal(grads["b"], 1.0)
    np.testing.assert_array_equal(g, 1.0)
    run(np.zeros((2, 3)), np.zeros((2, 3)))
    assert run.backward(g, inputs=False) == {}


def test_modes_dropout_and_sample_and_the_kl_gradient():
    model = nnspec.load(EXAMPLES / "vae.nn")
    run = model.to_numpy(dtype="float64")
    assert run.training and isinstance(run.rng, np.random.Generator)
    x = np.random.default_rng(0).random((4, 64))
    assert not np.allclose(run(x), run(x))  # sampled noise in training
    run.eval()
    np.testing.assert_array_equal(run(x), run(x))
    dropout = nnspec.loads("network n { input x: 8\n dropout d: 0.5\n x -> d }").to_numpy(seed=5)
    masks = [dropout(np.ones((4, 8))) for _ in range(2)]
    again = nnspec.loads("network n { input x: 8\n dropout d: 0.5\n x -> d }").to_numpy(seed=5)
    np.testing.assert_array_equal(masks[0], again(np.ones((4, 8))))  # the same seed, the same masks
    np.testing.assert_array_equal(dropout.eval()(np.ones((4, 8))), 1.0)
    # the KL term alone: its gradient against finite differences of its value
    _, terms = run.forward_with_terms(x)
    grads = run.backward(np.zeros((4, 64)), terms={"kl": 1.0})
    d = normal(*run.params["mu.bias"].shape, seed=3)
    values = []
    for sign in (1, -1):
        run.params["mu.bias"] += sign * EPS * d
        values.append(float(run.forward_with_terms(x)[1]["kl"]))
        run.params["mu.bias"] -= sign * EPS * d
    np.testing.assert_allclose(
        (values[0] - values[1]) / (2 * EPS), (grads["mu.bias"] * d).sum(), rtol=1e-6
    )


def test_logits_of_outputs_and_gradients_given_for_them():
    run = nnspec.load(EXAMPLES / "lenet.nn").to_numpy(dtype="float64")
    x, labels = normal(5, 1, 8, 8), np.array([0, 3, 9, 3, 1])
    y, terms = run.forward_with_terms(x)
    z = terms["logits"]["out"]
    np.testing.assert_allclose(np.exp(z) / np.exp(z).sum(-1, keepdims=True), y, rtol=1e-12)
    onehot = np.eye(10)[labels]
    by_logits = run.backward(
        grad_logits={"out": (y - onehot) / 5}
    )  # cross-entropy, from the logits
    run(x)
    by_outputs = run.backward(-onehot / (5 * y))  # the same loss, from the probabilities
    for name in by_logits:
        np.testing.assert_allclose(
            by_logits[name], by_outputs[name], rtol=1e-8, atol=1e-12, err_msg=name
        )
    run(x)
    with pytest.raises(ValueError, match="no logits of output 'y'"):
        run.backward(grad_logits={"y": z})
    assert (
        "logits"
        not in nnspec.load(EXAMPLES / "elman.nn").to_numpy().forward_with_terms(np.zeros((2, 3)))[1]
    )
    looped = nnspec.loads(
        "network n { input x: 2, seq\n dense y: 2, act=sigmoid\n x -> y\n y ~> y }"
    ).to_numpy()
    assert (
        "logits" not in looped.forward_with_terms(np.zeros((2, 3, 2)))[1]
    )  # inside a loop: none kept


def test_runs_without_torch():
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any import of torch now fails
        import numpy as np
        import nnspec
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from conftest import spec_inputs
        for path in {[str(p) for p in SPEC_FILES]!r}:
            for model in nnspec.load_all(path):
                run = model.to_numpy()
                out = run(**spec_inputs(model.program))
                outs = out if isinstance(out, dict) else {{"y": out}}
                seeds = (
                    {{k: np.ones_like(v) for k, v in outs.items()}}
                    if isinstance(out, dict)
                    else np.ones_like(out)
                )
                run.backward(seeds)
        loaded = [name for name, m in sys.modules.items() if m is not None]
        assert not any(name == "torch" or name.startswith("torch.") for name in loaded)
        print("ok")
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
