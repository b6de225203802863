"""The onnx target (`nnspec compile --to onnx`): every bundled network compiled, accepted by
onnx's checker (full_check), run by onnxruntime and by onnx's reference evaluator, and equal to
the NumPy backend in evaluation mode (float32, within 1e-5) at two batch sizes and, for a
sequence of any length, two lengths; names, doc strings, dynamic axes, loops, determinism, the
diagnostics (R601 without onnx, E601 for a kind with no lowering).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import (
    EXAMPLES,
    ROOT,
    SPECS,
    TEST_SPECS,
    compiles_to,
    sampled,
    spec_inputs,
    spec_models,
)

onnx = pytest.importorskip(
    "onnx", reason="the onnx extra is not installed (pip install 'nnspec[onnx]')"
)
ort = pytest.importorskip(
    "onnxruntime", reason="the onnx extra is not installed (pip install 'nnspec[onnx]')"
)
from onnx.reference import ReferenceEvaluator  # noqa: E402

import nnspec  # noqa: E402
from nnspec.backends.init import initial_params  # noqa: E402
from nnspec.compile import (  # noqa: E402
    compile_model,
    emit,
    onnx_target,  # noqa: E402
)
from nnspec.compile.common import spec_line  # noqa: E402
from nnspec.errors import NnspecError, SpecError  # noqa: E402
from nnspec.kinds import REGISTRY  # noqa: E402

BUNDLED = sorted(SPECS.glob("*.nn")) + sorted(EXAMPLES.glob("*.nn"))
NETWORKS = [
    (path, model.name)
    for path in BUNDLED
    for model in spec_models(path)
    if compiles_to(model, "onnx")
]
TESTED = [
    (path, model.name)
    for path in sorted((TEST_SPECS / "ok").glob("*.nn"))
    for model in spec_models(path)
    if compiles_to(model, "onnx")
]


def _ids(networks):
    return [f"{p.parent.name}/{p.stem}:{n}" for p, n in networks]


def _compiled(model, params=None):
    params = initial_params(model.program, 0) if params is None else params
    return emit(model, "onnx", params), params


def _inputs(program, batch: int, steps: int) -> dict[str, np.ndarray]:
    """float32 inputs as the ONNX graph takes them: an input held for `steps=N` once, [B, F]."""
    data = spec_inputs(program, batch, steps, seed=batch + steps, edge_threshold=0.7)
    for name in data:
        if program.layer(name).options.steps is not None:
            data[name] = data[name][:, 0]
    return {name: a.astype(np.float32) for name, a in data.items()}


def _session(data: bytes):
    options = ort.SessionOptions()
    options.log_severity_level = 3  # no warnings on stderr
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _lengths(program) -> list[int]:
    """Two sequence lengths when some input is a sequence of any length, else one."""
    free = any(
        program.layer(n).shape.timed
        and program.layer(n).shape.steps is None
        and program.layer(n).options.steps is None
        for n in program.inputs
    )
    return [4, 9] if free else [4]


def _agrees(model, reference: bool = True) -> None:
    """The compiled model, checked, equals the NumPy backend (eval mode, the same parameters)
    on onnxruntime and (with `reference`) onnx's reference evaluator."""
    program = model.program
    data, params = _compiled(model)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    session = _session(data)
    evaluator = ReferenceEvaluator(proto) if reference else None
    run = model.to_numpy()
    run.load(params)
    run.eval()
    names = [o.name for o in session.get_outputs()]
    assert names == [o.name for o in program.outputs]
    for batch in (1, 3):
        for steps in _lengths(program):
            feeds = _inputs(program, batch, steps)
            with np.errstate(all="ignore"):
                want = run(**feeds)
            want = want if isinstance(want, dict) else {names[0]: want}
            runs = [session.run(None, feeds)]
            if evaluator is not None:
                runs.append(evaluator.run(None, feeds))
            for got in runs:
                for name, value in zip(names, got, strict=True):
                    assert value.dtype == np.float32
                    assert value.shape == want[name].shape, (name, batch, steps)
                    np.testing.assert_allclose(
                        value, want[name], rtol=1e-5, atol=1e-5, err_msg=f"{name} b{batch} t{steps}"
                    )


# ---- every network --------------------------------------------------------------------------
@pytest.mark.parametrize("path, network", sampled(NETWORKS), ids=_ids(NETWORKS))
def test_every_bundled_network_equals_the_numpy_backend(path, network):
    _agrees(nnspec.load(path, network))


@pytest.mark.slow
@pytest.mark.parametrize("path, network", TESTED, ids=_ids(TESTED))
def test_every_test_spec_equals_the_numpy_backend(path, network):
    _agrees(nnspec.load(path, network))


RUN_ELSEWHERE = """
import glob
import sys

sys.modules["nnspec"] = None  # as on a machine without nnspec
try:
    import nnspec  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("nnspec can be imported")
import numpy as np
import onnxruntime as ort

options = ort.SessionOptions()
options.log_severity_level = 3
for case in sorted(glob.glob("*.in.npz")):
    session = ort.InferenceSession(case.split("__")[0] + ".onnx", options)
    with np.load(case) as inputs:
        outputs = session.run(None, dict(inputs))
    names = [o.name for o in session.get_outputs()]
    np.savez(case.replace(".in.npz", ".out.npz"), **dict(zip(names, outputs)))
"""


@pytest.mark.slow
def test_every_bundled_model_runs_where_nnspec_cannot_be_imported(tmp_path):
    """Each model file and its inputs in a folder of their own, run by onnxruntime in a process
    in which `import nnspec` fails: the outputs equal the NumPy backend's."""
    expected = {}
    for path, network in NETWORKS:
        model = nnspec.load(path, network)
        data, params = _compiled(model)
        key = f"{path.parent.name}_{path.stem}_{network}"
        (tmp_path / f"{key}.onnx").write_bytes(data)
        run = model.to_numpy()
        run.load(params)
        run.eval()
        for batch in (1, 3):
            for steps in _lengths(model.program):
                feeds = _inputs(model.program, batch, steps)
                case = f"{key}__b{batch}_t{steps}"
                np.savez(tmp_path / f"{case}.in.npz", **feeds)
                with np.errstate(all="ignore"):
                    want = run(**feeds)
                expected[case] = (
                    want if isinstance(want, dict) else {model.program.outputs[0].name: want}
                )
    (tmp_path / "run.py").write_text(RUN_ELSEWHERE)
    subprocess.run(
        [sys.executable, "run.py"], cwd=tmp_path, check=True, capture_output=True, timeout=300
    )
    for case, want in expected.items():
        with np.load(tmp_path / f"{case}.out.npz") as got:
            assert sorted(got.files) == sorted(want), case
            for name, value in want.items():
                np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-5, err_msg=case)


# pool settings PyTorch defines (padding counts in a mean; ceil keeps the windows past the end)
POOLS = {
    "avg, padding": ("avg", [2, 7, 6], "size=3, stride=2, padding=1"),
    "avg, ceil": ("avg", [1, 5, 8], "size=3, stride=2, ceil"),
    "avg, padding and ceil": ("avg", [2, 8, 5], "size=3, stride=2, padding=1, ceil"),
    "max, padding and ceil": ("max", [2, 5, 5], "size=2, stride=2, padding=1, ceil"),
    "avg, last window dropped": ("avg", [1, 5, 5], "size=2, stride=3, padding=1, ceil"),
    "max, pairs": ("max", [2, 6, 9], "size=[2, 3], stride=[1, 2], padding=[1, 0]"),
}


@pytest.mark.parametrize("setting", POOLS)
def test_pool_settings(setting):
    mode, dims, options = POOLS[setting]
    text = f"network n {{ input x: {dims}\n pool p: {mode}, {options}\n x -> p }}"
    _agrees(nnspec.loads(text))


# small networks for what the bundled ones do not reach: kinds with a state inside a `~>`
# cycle, a static value meeting a sequence, a link from the previous step outside a cycle,
# images over time, global pools
SMALL = {
    "cells in a cycle": """network n {
        input x: 3, seq
        rnn   r: 4
        lstm  l: 5
        gru   g: 4
        lif   s: 3, threshold=0.5
        dense y: 2, act=tanh
        x -> r -> l -> g -> s -> y
        y ~> r
    }""",
    "static into a sequence, shifted reads": """network n {
        input x: 2, seq
        input c: 3
        dense h: 4, act=relu
        dense k: 2
        x, c -> h
        h ~> k
        h -> k
        output k: mean
    }""",
    "a cycle reading the previous step of a layer outside it": """network n {
        input x: 2, seq
        dense a: 3, act=tanh
        dense h: 4, act=tanh
        x -> a -> h
        a ~> h
        h ~> h
    }""",
    "images over time": """network n {
        input  x: [2, 6, 6], seq
        conv   c: 3, kernel=3, padding=same, act=relu
        pool   p: avg, size=2
        global_pool gp: max
        x -> c -> p -> gp
    }""",
    "sets of items: maxout, norms, dense, flatten": """network n {
        input     x: [3, 4]
        maxout    m: 2, pieces=3
        layernorm l
        batchnorm b
        dense     d: 5
        flatten   f
        x -> m -> l -> b -> d -> f
    }""",
    "maxout over time, a readout of the steps": """network n {
        input   x: 4, seq
        maxout  m: 2, pieces=3
        readout r: sum
        x -> m -> r
    }""",
    "softmax over channels, images joined": """network n {
        input   x: [2, 5, 5]
        softmax s
        conv    c: 2, kernel=3, padding=same
        concat  k
        x -> s
        x -> c
        s, c -> k
    }""",
    "an embedding of several tokens, a gcn without bias": """network n {
        input     t: 3
        embedding e: 10, 4
        input     a: [3, 3]
        gcn       g: 2, bias=false
        t -> e -> g.features
        a -> g.adjacency
    }""",
    "an activation layer in a cycle": """network n {
        input x: 3, seq
        dense a: 4
        relu  r
        x -> a -> r
        r ~> a
    }""",
    "global average pool, batchnorm on images, layernorm on images": """network n {
        input  x: [3, 5, 5]
        batchnorm b
        layernorm l
        conv   c: 4, kernel=3, stride=2
        global_pool g: avg
        x -> b -> l -> c -> g
    }""",
}


@pytest.mark.parametrize("name", SMALL)
def test_small_networks(name):
    _agrees(nnspec.loads(SMALL[name]))


def test_trained_weights_are_the_initializers():
    model = nnspec.load(SPECS / "xor.nn")
    rng = np.random.default_rng(5)
    params = {k: rng.standard_normal(v.shape) for k, v in initial_params(model.program, 0).items()}
    data, _ = _compiled(model, params)
    proto = onnx.load_from_string(data)
    found = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert sorted(found) == sorted(params)
    for name, array in params.items():
        assert found[name].dtype == np.float32
        np.testing.assert_array_equal(found[name], array.astype(np.float32))
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    run = model.to_numpy()
    run.load(params)
    np.testing.assert_allclose(_session(data).run(None, {"x": x})[0], run.eval()(x), atol=1e-6)


# ---- what the file promises ---------------------------------------------------------------------
def test_versions_names_axes_and_doc_strings():
    model = nnspec.load(SPECS / "elman.nn")
    program = model.program
    proto = onnx.load_from_string(_compiled(model)[0])
    assert proto.ir_version == onnx_target.IR_VERSION == 8
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", onnx_target.OPSET)]
    assert proto.producer_name == "nnspec"
    assert "elman.nn" in proto.doc_string and "sha256" in proto.doc_string
    graph = proto.graph
    assert graph.name == "elman"

    def dims(info):
        return [d.dim_param or d.dim_value for d in info.type.tensor_type.shape.dim]

    assert [(i.name, dims(i)) for i in graph.input] == [("x", ["batch", "steps", 1])]
    assert [(o.name, dims(o)) for o in graph.output] == [("y", ["batch", "steps", 1])]
    assert sorted(t.name for t in graph.initializer) == sorted(program.parameters())
    # the ~> cycle is one Scan over the steps, not unrolled: its body holds h's step
    (scan,) = [n for n in graph.node if n.op_type == "Scan"]
    assert scan.doc_string == spec_line(program.layer("h"))
    body = onnx.helper.get_attribute_value(scan.attribute[0])
    by_name = {n.name: n for n in list(graph.node) + list(body.node)}
    for layer in program.layers[1:]:
        assert by_name[layer.name].doc_string == spec_line(layer) == by_name[layer.name].doc_string
    assert spec_line(program.layer("h")) == "elman.nn:9  dense  h: 16, act=tanh"
    assert by_name["y"].op_type == "Add" and list(by_name["y"].output) == ["y"]
    # every node says where it comes from: a layer's nodes its spec line, the few shared
    # helpers (the batch size, the zeros before the first step) what they are
    lines = {spec_line(layer) for layer in program.layers}
    for node in list(graph.node) + list(body.node):
        layer = node.name.split("/")[0].split("+")[0]
        if layer in {lay.name for lay in program.layers}:
            assert node.doc_string in lines, node.name
        else:
            assert layer in ("batch", "zeros") and node.doc_string, node.name


def test_node_names_follow_the_layers():
    model = nnspec.load(SPECS / "lenet.nn")
    graph = onnx.load_from_string(_compiled(model)[0]).graph
    names = {n.name for n in graph.node}
    for layer in model.program.layers[1:]:
        assert layer.name in names
    for node in graph.node:
        layer = node.name.split("/")[0]
        assert layer in {lay.name for lay in model.program.layers} | {"zeros", "batch", "steps"}
    assert {t.name for t in graph.initializer} == {
        n for n in model.program.parameters() if not n.endswith("num_batches_tracked")
    }


def test_two_compilations_give_the_same_bytes(tmp_path, monkeypatch):
    model = nnspec.load(SPECS / "jordan.nn")
    first, _ = _compiled(model)
    assert _compiled(nnspec.load(SPECS / "jordan.nn"))[0] == first
    compile_model(model, "onnx", tmp_path / "given.onnx")
    monkeypatch.chdir(tmp_path)
    compile_model(model, "onnx")  # the network's name in the current folder
    # one file each: the model holds its parameters
    assert sorted(p.name for p in tmp_path.iterdir()) == ["given.onnx", "jordan.onnx"]
    assert (tmp_path / "given.onnx").read_bytes() == (tmp_path / "jordan.onnx").read_bytes()
    assert (tmp_path / "jordan.onnx").read_bytes() == first


GOLDEN = ROOT / "tests" / "golden" / "compile_onnx"


@pytest.mark.parametrize("name", ["xor", "elman"])
def test_golden_files(name):
    """specs/xor.nn and specs/elman.nn compile to their golden models, byte for byte
    (NNSPEC_UPDATE_GOLDEN=1 rewrites them); a difference is shown as onnx prints the graphs."""
    data = emit(nnspec.load(SPECS / f"{name}.nn"), "onnx")
    golden = GOLDEN / f"{name}.onnx"
    if os.environ.get("NNSPEC_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(data)
    if data != golden.read_bytes():
        ours = onnx.printer.to_text(onnx.load_from_string(data))
        theirs = onnx.printer.to_text(onnx.load_from_string(golden.read_bytes()))
        assert ours == theirs, (
            f"{golden} differs (NNSPEC_UPDATE_GOLDEN=1 pytest tests/test_compile_onnx.py "
            "rewrites it)"
        )
        pytest.fail(f"{golden} differs in bytes only (NNSPEC_UPDATE_GOLDEN=1 rewrites it)")


@pytest.mark.slow
def test_the_same_bytes_in_another_process():
    code = (
        "import sys, nnspec; from nnspec.compile import emit; "
        "sys.stdout.buffer.write(emit(nnspec.load(sys.argv[1]), 'onnx'))"
    )
    for spec in ("snn.nn", "residual.nn"):
        model = nnspec.load(SPECS / spec)
        out = subprocess.run(
            [sys.executable, "-c", code, str(SPECS / spec)],
            capture_output=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": "7"},
        ).stdout
        assert out == _compiled(model)[0]


def test_held_inputs_fixed_lengths_and_fused_cells():
    snn = onnx.load_from_string(_compiled(nnspec.load(SPECS / "snn.nn"))[0]).graph
    dims = [d.dim_param or d.dim_value for d in snn.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 64]
    lstm = onnx.load_from_string(_compiled(nnspec.load(SPECS / "lstm.nn"))[0]).graph
    dims = [d.dim_param or d.dim_value for d in lstm.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 30, 2]
    # a whole sequence through lstm (gru) is ONNX's fused op; in a `~>` cycle a Scan of cells
    ops = [n.op_type for n in lstm.node]
    assert (ops.count("LSTM"), ops.count("Scan")) == (1, 0)
    gru = onnx.load_from_string(_compiled(nnspec.load(SPECS / "gru.nn"))[0]).graph
    ops = [n.op_type for n in gru.node]
    assert (ops.count("GRU"), ops.count("Scan")) == (1, 0)
    cycle = onnx.load_from_string(_compiled(nnspec.loads(SMALL["cells in a cycle"]))[0]).graph
    ops = [n.op_type for n in cycle.node]
    assert (ops.count("LSTM"), ops.count("GRU"), ops.count("Scan")) == (0, 0, 1)


# ---- diagnostics -------------------------------------------------------------------------------
def test_without_onnx_a_clear_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    with pytest.raises(NnspecError) as caught:
        emit(nnspec.load(SPECS / "xor.nn"), "onnx")
    assert caught.value.code == "R601"
    assert "pip install 'nnspec[onnx]'" in caught.value.hint


def test_the_package_imports_without_onnx():
    code = (
        "import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
        "import nnspec, nnspec.compile, nnspec.compile.onnx_target\n"
        "from nnspec.compile import emit\n"
        "try:\n    emit(nnspec.load(sys.argv[1]), 'onnx')\n"
        "except nnspec.NnspecError as e:\n    print(e.code)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(SPECS / "xor.nn")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "R601"


def test_a_kind_without_a_lowering_is_an_error_at_the_layer(monkeypatch):
    from nnspec.compile import onnx_kinds

    monkeypatch.delitem(onnx_kinds.LOWERINGS, "dense")
    model = nnspec.load(SPECS / "xor.nn")
    with pytest.raises(SpecError) as caught:
        emit(model, "onnx")
    error = caught.value
    assert error.code == "E601"
    assert error.span == model.program.layer("h").span
    assert (error.span.line, error.span.column) == (10, 12)
    assert "layer 'h' (dense) cannot be compiled to onnx" in error.message
    assert "--to torch has every kind" in error.hint


def test_every_kind_is_lowered_or_has_a_diagnostic():
    from nnspec.compile import onnx_kinds

    missing = sorted(set(REGISTRY) - set(onnx_kinds.LOWERINGS) - set(onnx_kinds.CANNOT))
    assert missing == [], (
        f"add a row for {', '.join(missing)} to LOWERINGS (or CANNOT, with the reason) in "
        "nnspec/compile/onnx_kinds.py"
    )
    assert sorted(set(onnx_kinds.LOWERINGS) - set(REGISTRY)) == []
