"""The neural Turing machine (issue 18, ../shared/ZOO.md "NTM"): the `ntm` kind
(nnspec/kinds/memory.py), its primitives (backends/numpy/memory.py, backends/torch/memory.py),
the `copy` dataset, the `bit_errors` metric and specs/ntm.nn.

Addressing, reading and writing are worked by hand here, on both backends: content (cosine
similarity, key strength), interpolation, circular shift, sharpening, erase and add, the read.
"""

import math

import numpy as np
import pytest
import torch
from conftest import SPECS
from test_numpy_backend import directional_check

import nnspec
from nnspec.backends.numpy import memory as npm
from nnspec.backends.numpy.autograd import Var
from nnspec.backends.torch.memory import NTM
from nnspec.data.builtin import copy
from nnspec.training.metrics import bit_errors

SPEC = SPECS / "ntm.nn"


def _inverse_softplus(y: float) -> float:
    return math.log(math.expm1(y))


def _head(key, beta, gate, shift, gamma) -> np.ndarray:
    """A head's raw outputs (B=1, H=1, W+6) that address with these values: beta = softplus,
    gate = sigmoid, shift = softmax, gamma = 1 + softplus."""
    with np.errstate(divide="ignore"):
        raw_shift = np.log(np.asarray(shift, float))
    raw = [
        *key,
        _inverse_softplus(beta),
        math.log(gate / (1 - gate)),
        *raw_shift,
        _inverse_softplus(gamma - 1),
    ]
    return np.asarray(raw, float)[None, None, :]


def _address_numpy(memory, w_prev, head) -> np.ndarray:
    w = npm.address(Var(memory), Var(w_prev), Var(head), memory.shape[-1])
    return w.value[0, 0]


def _address_torch(memory, w_prev, head) -> np.ndarray:
    ntm = NTM(1, 2, memory.shape[1], memory.shape[2], 1).double()
    w = ntm.address(*(torch.tensor(a) for a in (memory, w_prev, head)))
    return w.numpy()[0, 0]


BACKENDS = {"numpy": _address_numpy, "torch": _address_torch}
MEMORY = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]])  # 4 slots of width 2


# ---- addressing, by hand --------------------------------------------------------------------
def test_cosine_similarity_of_a_key_with_every_slot():
    k = Var(np.array([[[2.0, 0.0]]]))
    got = npm.cosine(Var(MEMORY), k).value[0, 0]
    # [1, 0] . [2, 0] / (1 * 2), then 0, then 2 / (sqrt 2 * 2), then -2 / 2
    np.testing.assert_allclose(got, [1.0, 0.0, 1 / math.sqrt(2), -1.0], rtol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_content_addressing_is_a_softmax_of_the_similarities_times_beta(backend):
    """Gate 1 (the last weighting forgotten), shift 0, gamma 1: content alone."""
    head = _head([2.0, 0.0], beta=3.0, gate=1 - 1e-12, shift=[0, 1, 0], gamma=1 + 1e-13)
    got = BACKENDS[backend](MEMORY, np.array([[[0.0, 0.0, 0.0, 1.0]]]), head)
    e = [math.exp(3.0 * c) for c in (1.0, 0.0, 1 / math.sqrt(2), -1.0)]
    # to the 1e-8 that keeps the cosine's denominator from zero (|k| |M_i| + 1e-8)
    np.testing.assert_allclose(got, [v / sum(e) for v in e], rtol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_strong_key_focuses_on_the_most_similar_slot(backend):
    head = _head([0.0, 5.0], beta=60.0, gate=1 - 1e-12, shift=[0, 1, 0], gamma=1 + 1e-13)
    got = BACKENDS[backend](MEMORY, np.array([[[1.0, 0.0, 0.0, 0.0]]]), head)
    # [0, 1] has cosine 1, [1, 1] 1/sqrt(2): e^(60 (1/sqrt 2 - 1)) = 2.3e-8 of it
    assert got[1] > 0.9999999 and got.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_interpolation_mixes_the_content_weighting_with_the_last(backend):
    """Equal memory rows give a uniform content weighting [1/4] * 4; gate 0.25 keeps 3/4 of the
    last weighting [0, 0, 1, 0]: [1/16, 1/16, 1/16 + 3/4, 1/16]."""
    memory = np.ones((1, 4, 2))
    head = _head([1.0, 2.0], beta=1.0, gate=0.25, shift=[0, 1, 0], gamma=1 + 1e-13)
    got = BACKENDS[backend](memory, np.array([[[0.0, 0.0, 1.0, 0.0]]]), head)
    np.testing.assert_allclose(got, [1 / 16, 1 / 16, 13 / 16, 1 / 16], rtol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ([0, 0, 1], [0.4, 0.1, 0.2, 0.3]),  # +1: each weight one slot on, the last to the first
        ([1, 0, 0], [0.2, 0.3, 0.4, 0.1]),  # -1: one slot back, the first to the last
        ([0.5, 0, 0.5], [0.3, 0.2, 0.3, 0.2]),  # half each way: (w[i + 1] + w[i - 1]) / 2
        ([0.25, 0.5, 0.25], [0.2, 0.2, 0.3, 0.3]),  # w[i] / 2 + (w[i + 1] + w[i - 1]) / 4
    ],
)
def test_the_circular_shift_moves_the_weighting_by_minus_one_zero_or_one(backend, shift, expected):
    """Gate ~0 keeps the last weighting [0.1, 0.2, 0.3, 0.4]; gamma 1 keeps it unsharpened."""
    head = _head([1.0, 0.0], beta=1.0, gate=1e-15, shift=shift, gamma=1 + 1e-13)
    got = BACKENDS[backend](MEMORY, np.array([[[0.1, 0.2, 0.3, 0.4]]]), head)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sharpening_raises_to_gamma_and_normalises(backend):
    """[0.1, 0.2, 0.3, 0.4] squared: [1, 4, 9, 16] / 30."""
    head = _head([1.0, 0.0], beta=1.0, gate=1e-15, shift=[0, 1, 0], gamma=2.0)
    got = BACKENDS[backend](MEMORY, np.array([[[0.1, 0.2, 0.3, 0.4]]]), head)
    np.testing.assert_allclose(got, [1 / 30, 4 / 30, 9 / 30, 16 / 30], rtol=1e-9)


def test_sharpening_leaves_a_zero_weight_zero_and_its_gradients_finite():
    w, gamma = Var(np.array([[[0.0, 0.25, 0.75]]]), True), Var(np.array([[[3.0]]]), True)
    out = npm.sharpen(w, gamma)
    np.testing.assert_allclose(out.value[0, 0], [0, 1 / 28, 27 / 28], rtol=1e-12)
    gw, ggamma = out.node.back(np.array([[[1.0, 2.0, 3.0]]]))
    assert np.isfinite(gw).all() and np.isfinite(ggamma).all() and gw[0, 0, 0] == 0


# ---- reading and writing, by hand ----------------------------------------------------------
def test_a_read_is_the_weighted_sum_of_the_slots():
    w = np.array([[[0.25, 0.0, 0.75, 0.0]]])
    r = npm.read(Var(MEMORY), Var(w)).value[0, 0]
    np.testing.assert_allclose(r, [0.25 * 1 + 0.75 * 1, 0.75 * 1])


def test_a_write_erases_then_adds_where_the_head_points():
    memory = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    w, erase, add = np.array([[1.0, 0.5, 0.0]]), np.array([[1.0, 0.5]]), np.array([[10.0, 20.0]])
    got = npm.write(*(Var(a) for a in (memory, w, erase, add))).value[0]
    # slot 0 (weight 1): 1 (1 - 1) + 10, 2 (1 - 0.5) + 20
    # slot 1 (weight 0.5): 3 (1 - 0.5) + 5, 4 (1 - 0.25) + 10; slot 2 (weight 0) untouched
    np.testing.assert_allclose(got, [[10.0, 21.0], [6.5, 13.0], [5.0, 6.0]])


def _run_step(backend: str, x: np.ndarray, params: dict[str, np.ndarray], o):
    if backend == "numpy":
        p = {k: Var(v) for k, v in params.items()}
        out, state = npm.ntm_step(Var(x), None, p, o)
        return out.value, state[1].value
    ntm = NTM(x.shape[1], o.controller, o.slots, o.width, o.heads).double()
    ntm.load_state_dict({k: torch.tensor(v) for k, v in params.items()})
    out, state = ntm.step(torch.tensor(x))
    return out.detach().numpy(), state[2].detach().numpy()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_the_first_step_writes_its_add_vector_to_slot_zero_and_reads_it_back(backend):
    """A controller whose h is fixed by its biases (zero weights), and heads whose outputs are
    their biases: the write head keeps its weighting on slot 0 (gate ~0, shift 0, gamma 1),
    erases it fully and adds [1, -2, 3]; the read head, with the same addressing, reads
    exactly that back. The layer gives h and the vector read."""
    model = nnspec.loads("network n { input x: 2, seq\n ntm m: 4, slots=5, width=3\n x -> m }")
    layer = model.program.layer("m")
    o = layer.options
    params = {k: np.zeros(p.shape) for k, p in layer.params.items()}
    # every gate's pre-activation is 1: c = s(1) tanh(1), h = s(1) tanh(c)
    params["bias_ih"][:] = 1.0
    rows = _head([0.0, 0.0, 1.0], beta=1.0, gate=1e-15, shift=[0, 1, 0], gamma=1 + 1e-13)[0, 0]
    params["read_bias"][:] = rows
    params["write_bias"][:] = np.concatenate([rows, [40.0] * 3, [1.0, -2.0, 3.0]])
    out, memory = _run_step(backend, np.array([[0.3, -0.7]]), params, o)
    s = 1 / (1 + math.exp(-1))
    h = s * math.tanh(s * math.tanh(1.0))
    np.testing.assert_allclose(out[0, :4], [h] * 4, rtol=1e-12)
    np.testing.assert_allclose(out[0, 4:], [1.0, -2.0, 3.0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(memory[0, 0], [1.0, -2.0, 3.0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(memory[0, 1:], 1e-6, rtol=1e-9)  # the other slots untouched


# ---- the kind, on both backends ------------------------------------------------------------
NET = """network n {
    input x: 5, seq
    ntm   m: 6, slots=7, width=3, heads=2
    dense y: 4, act=sigmoid
    x -> m -> y
}"""


def test_the_shape_and_the_parameters_follow_the_options():
    program = nnspec.loads(NET).program
    layer = program.layer("m")
    assert layer.shape.dims == (6 + 2 * 3,) and layer.shape.timed
    shapes = {k: p.shape for k, p in layer.params.items()}
    assert shapes == {
        "weight_ih": (24, 5 + 6),
        "weight_hh": (24, 6),
        "bias_ih": (24,),
        "bias_hh": (24,),
        "read_weight": (2 * 9, 6),
        "read_bias": (18,),
        "write_weight": (2 * 15, 6),
        "write_bias": (30,),
    }


def test_both_backends_agree_over_a_sequence_and_inside_a_loop():
    rng = np.random.default_rng(0)
    for spec in (NET, NET.replace("x -> m -> y", "x -> m -> y\n y ~> m")):
        model = nnspec.loads(spec)
        run = model.to_numpy(seed=4, dtype="float64")
        net = model.to_torch(seed=4, dtype="float64")
        x = rng.normal(size=(3, 9, 5))
        np.testing.assert_allclose(
            run(x), net(torch.tensor(x)).detach().numpy(), rtol=1e-6, atol=1e-9
        )


def test_the_gradient_over_a_whole_sequence_against_finite_differences():
    """KIND_SPECS (tests/test_numpy_backend.py) checks it inside a ~> loop; here over a whole
    sequence, with two heads."""
    model = nnspec.loads(NET)
    run = model.to_numpy(seed=1, dtype="float64")
    x = np.random.default_rng(3).normal(size=(2, 4, 5))
    directional_check(run, {"x": x})


def test_the_gradients_agree_with_torchs():
    model = nnspec.loads(NET)
    run = model.to_numpy(seed=5, dtype="float64")
    net = model.to_torch(seed=5, dtype="float64")
    x = np.random.default_rng(1).normal(size=(2, 6, 5))
    g = np.random.default_rng(2).normal(size=(2, 6, 4))
    grads = run.backward(g) if run(x) is not None else None
    out = net(torch.tensor(x))
    (out * torch.tensor(g)).sum().backward()
    for name, param in net.named_parameters():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), rtol=1e-6, atol=1e-10)


# ---- the fused step against the composed one -----------------------------------------------
def _sequence_numpy(step, params, xs, gs, o):
    from nnspec.backends.numpy.autograd import add_grad, backward

    p = {k: Var(v.copy(), True) for k, v in params.items()}
    x = [Var(v, True) for v in xs]
    state, outs = None, []
    for xt in x:
        out, state = step(xt, state, p, o)
        outs.append(out)
    for out, g in zip(outs, gs, strict=True):
        add_grad(out, g)
    add_grad(state[1], np.cos(np.arange(state[1].value.size)).reshape(state[1].shape))
    backward([*outs, state[1]])
    return [out.value for out in outs], {k: v.grad for k, v in p.items()}, [v.grad for v in x]


def test_the_fused_numpy_step_equals_the_composed_one_values_and_gradients():
    """memory.py's ntm_step (the heads' step one primitive, its backward written out) against
    ntm_step_composed (of the primitives tested by hand above), over 6 steps with two heads, in
    float64: outputs, every parameter's gradient and the inputs' to 1e-10. Weights twice as large
    as their initialisation, so that the gates and the sharpening are far from their middle."""
    layer = nnspec.loads(NET).program.layer("m")
    rng = np.random.default_rng(0)
    params = {k: rng.uniform(-0.8, 0.8, p.shape) for k, p in layer.params.items()}
    xs, gs = rng.normal(size=(6, 3, 5)), rng.normal(size=(6, 3, 12))
    composed = _sequence_numpy(npm.ntm_step_composed, params, xs, gs, layer.options)
    fused = _sequence_numpy(npm.ntm_step, params, xs, gs, layer.options)
    for want, got in zip(composed[0] + composed[2], fused[0] + fused[2], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert set(fused[1]) == set(params)
    for name, want in composed[1].items():
        np.testing.assert_allclose(fused[1][name], want, rtol=1e-10, atol=1e-12, err_msg=name)


def test_the_fused_torch_step_equals_the_composed_one_values_and_gradients():
    """NTM.step (the heads' step one autograd function, NTM.Heads) against NTM.step_composed
    (torch's operations, torch's autograd) in float64, as above."""
    torch.manual_seed(0)
    net = NTM(5, 6, 7, 3, 2).double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    x, g = torch.randn(3, 6, 5, dtype=torch.float64), torch.randn(3, 6, 12, dtype=torch.float64)

    def run(step):
        net.zero_grad()
        xs = x.clone().requires_grad_()
        state, outs = None, []
        for t in range(x.shape[1]):
            out, state = step(xs[:, t], state)
            outs.append(out)
        y = torch.stack(outs, 1)
        ((y * g).sum() + state[2].cos().sum()).backward()
        grads = {k: p.grad.clone() for k, p in net.named_parameters()}
        return y.detach().numpy(), xs.grad.numpy(), grads

    composed, fused = run(net.step_composed), run(net.step)
    np.testing.assert_allclose(fused[0], composed[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused[1], composed[1], rtol=1e-10, atol=1e-12)
    for name, want in composed[2].items():
        np.testing.assert_allclose(fused[2][name], want, rtol=1e-10, atol=1e-12, err_msg=name)


# ---- the copy task and its metric ----------------------------------------------------------
def test_the_copy_data_recall_each_sequence_after_its_delimiter():
    data = copy(np.random.default_rng(0), None, count=50, length=4, min_length=2, units=5)
    assert data.x.shape == (50, 9, 5) and data.y.shape == (50, 9, 4)
    for n, size in enumerate(data.info["lengths"]):
        assert 2 <= size <= 4
        x, y = data.x[n], data.y[n]
        np.testing.assert_array_equal(y[size + 1 : 2 * size + 1], x[:size, :4])
        assert x[size, 4] == 1 and x[:, 4].sum() == 1 and not x[size:, :4].any()
        assert not y[: size + 1].any() and not y[2 * size + 1 :].any()


def test_bit_errors_count_the_wrong_bits_of_each_sequence():
    target = np.zeros((2, 3, 4))
    y = np.full((2, 3, 4), 0.2)
    y[0, 0, :3] = 0.9  # three bits wrong in the first sequence
    target[1, 2, 0] = 1.0  # one missed in the second
    assert bit_errors(y, target) == 2.0


def test_early_stopping_takes_fewer_bit_errors_as_better():
    """specs/ntm.nn stops once bit_errors has not fallen for a few epochs (early_stop): fewer
    wrong bits are the better epoch, as a lower loss."""
    from nnspec.training.loop import _better

    assert _better(0.5, 1.0, "bit_errors", 0.0) and not _better(1.0, 0.5, "bit_errors", 0.0)
    assert not _better(0.0, 0.0, "bit_errors", 0.0)  # no copy better than a perfect one


# ---- nnspec compile ------------------------------------------------------------------------
def test_the_torch_target_compiles_it_to_the_backends_numbers(tmp_path):
    import importlib.util

    from nnspec.compile import compile_model

    model = nnspec.loads(NET)
    params = {k: v for k, v in model.to_numpy(seed=3, dtype="float64").params.items()}
    path = compile_model(model, "torch", tmp_path / "net.py", params)[0]
    spec = importlib.util.spec_from_file_location("ntm_net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.load().double()
    x = np.random.default_rng(0).normal(size=(2, 5, 5))
    want = model.to_numpy(seed=3, dtype="float64")(x)
    np.testing.assert_allclose(net(torch.tensor(x)).detach().numpy(), want, rtol=1e-6)


def test_the_numpy_target_compiles_it_to_the_backends_numbers(tmp_path):
    """Over a sequence and inside a ~> loop, two heads, the spec's own network: the compiled
    NumPy file (forward only) equals the backend in float32 to 1e-6, with drawn weights."""
    from conftest import assert_numpy_file_computes_as_the_backend

    loop = NET.replace("x -> m -> y", "x -> m -> y\n y ~> m")
    assert_numpy_file_computes_as_the_backend((NET, loop, SPEC.read_text()), tmp_path)


def test_the_onnx_target_says_it_cannot_compile_it():
    from nnspec.compile import emit
    from nnspec.errors import SpecError

    with pytest.raises(SpecError) as error:
        emit(nnspec.loads(NET), "onnx")
    assert error.value.code == "E601" and "ntm" in str(error.value)
    assert "the torch target compiles it" in str(error.value)


# ---- specs/ntm.nn --------------------------------------------------------------------------
def _longer(result, length: int) -> float:
    """The bit errors per sequence of `length` vectors (8 `length` bits) of a trained run."""
    from nnspec.backends.weights import read_weights

    model = nnspec.load(SPEC)
    run = model.to_numpy(dtype="float64")
    run.load(read_weights(result.paths["weights"], model.program))
    longer = copy(np.random.default_rng(7), None, count=200, length=length, min_length=length)
    return bit_errors(run.eval()(longer.x), longer.y)


@pytest.mark.slow
def test_the_spec_copies_longer_sequences_than_it_saw(trained):
    """The spec's own run (seed 1, NumPy: shared with tests/test_zoo_specs.py), trained on 1 to 4
    vectors, copies 5 and 6 (40 and 48 bits a sequence; an untrained network gets about half of
    them wrong): at most 1.5 and 2 bits wrong per sequence (measured here: 0.19 and 0.43)."""
    result = trained(SPEC, "numpy")
    assert result.passed, result.expectations
    assert _longer(result, 5) <= 1.5 and _longer(result, 6) <= 2.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [5])
def test_another_seed_learns_to_copy_and_copies_longer_sequences(seed, tmp_path):
    """Another seed that finds the copy (specs/ntm.nn's header: 7 of seeds 0 to 15 copy 6 vectors
    with at most 2.2 wrong bits of 48) stops near zero bit errors and copies 6 vectors with at most
    2 wrong bits of 48 (measured here with seed 5: 0 kept at epoch 21, 0.02 at 6 vectors; 21 s of
    CPU). Seed 5 stayed on the plateau of the first epochs with the former settings (one head of
    each, Adam)."""
    result = nnspec.train(SPEC, "numpy", tmp_path, seed=seed)
    assert result.passed, result.expectations
    assert result.early_stop is not None and result.early_stop.value <= 0.1
    assert _longer(result, 6) <= 2.0


@pytest.mark.slow
def test_a_seed_that_copies_only_the_trained_lengths(tmp_path):
    """specs/ntm.nn's header: 9 of seeds 0 to 15 meet the expectation with a solution that copies
    the trained lengths only. Seed 0: no wrong bit on 1 to 4 vectors (measured here: 0, kept at
    epoch 17), but 6 vectors come back with many wrong bits (7.3 of 48), where the seeds that
    find the copy get under 2.2."""
    result = nnspec.train(SPEC, "numpy", tmp_path, seed=0)
    assert result.passed, result.expectations
    assert result.early_stop is not None and result.early_stop.value <= 0.1
    assert _longer(result, 6) > 5.0


# ---- the drawing ---------------------------------------------------------------------------
@pytest.mark.parametrize("annotate", [False, True])
def test_three_memory_cells_beneath_the_controller_each_linked_to_it(annotate):
    from nnspec.draw.layout import layout_network
    from nnspec.draw.scene import Line, Text

    program = nnspec.load(SPEC).program
    scene = layout_network(program, annotate=annotate)
    cells = scene.cells()
    memory = [c for c in cells if c.gid.startswith("cell:ntm:m.memory:")]
    controller = [c for c in cells if c.gid.startswith("cell:ntm:m:")]
    assert len(memory) == 3 and all(c.cell.value == "memory" for c in memory)
    assert all(c.cell.value == "hidden" for c in controller)
    lowest = min(controller, key=lambda c: c.y)
    assert max(m.y for m in memory) < min(c.y for c in cells if c not in memory)  # beneath all
    assert abs(sum(m.x for m in memory) / 3 - sum(c.x for c in controller) / len(controller)) < 1e-9
    for m in memory:  # a link from the controller's lowest cell reaches each memory cell
        ends = [line.points[-1] for line in scene.shapes if isinstance(line, Line)]
        assert (m.x, m.y) in ends
    starts = {line.points[0] for line in scene.shapes if isinstance(line, Line)}
    assert (lowest.x, lowest.y) in starts
    texts = [s.box() for s in scene.shapes if isinstance(s, Text)]
    for line in scene.shapes:  # no link of the memory's passes under a text
        if isinstance(line, Line) and line.points[-1] in {(m.x, m.y) for m in memory}:
            for (x0, y0), (x1, y1) in zip(line.points, line.points[1:], strict=False):
                for t in range(11):
                    px, py = x0 + t / 10 * (x1 - x0), y0 + t / 10 * (y1 - y0)
                    assert not any(a < px < c and b < py < d for a, b, c, d in texts)
