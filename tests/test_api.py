"""The public Python interface: load, loads, Model, SpecError (imported from nnspec only)."""

import numpy as np
import pytest
from conftest import EXAMPLES, TEST_SPECS
from safetensors.numpy import load_file

import nnspec
from nnspec.training.predict import predict


def test_load_gives_a_checked_model():
    model = nnspec.load(EXAMPLES / "xor.nn")
    assert model.name == "xor"
    assert model.description == "XOR learned by a 2-2-1 network"
    assert [layer.name for layer in model.program.layers] == ["x", "h", "y"]
    assert model.program.param_count == 2 * 2 + 2 + 2 * 1 + 1
    assert model.train_spec.settings["epochs"] == 2000
    assert model.train_spec.expects == (("accuracy", ">=", 1.0),)


def test_loads_reads_a_string():
    model = nnspec.loads("network n { input x: 3; dense y: 2; x -> y }")
    assert model.program.layer("y").shape == nnspec.Shape((2,))
    assert model.program.layer("y").params["weight"].shape == (2, 3)  # PyTorch's layout


def test_parameter_names_are_dotted_inside_repeated_blocks():
    names = nnspec.load(EXAMPLES / "residual.nn").program.parameters()
    assert "r.2.b.weight" in names and "r.6.a.bias" in names and "stem.weight" in names
    assert names["r.2.b.weight"].shape == (64, 64)


def test_lenet_shapes_and_parameter_counts():
    program = nnspec.load(EXAMPLES / "lenet.nn").program
    shapes = {layer.name: str(layer.shape) for layer in program.layers}
    assert shapes == {
        "image": "[1, 8, 8]",
        "c1": "[8, 8, 8]",
        "p1": "[8, 4, 4]",
        "c2": "[16, 4, 4]",
        "p2": "[16, 2, 2]",
        "f": "[64]",
        "fc": "[32]",
        "out": "[10]",
    }
    # conv: channels * (in_channels * 3 * 3 + 1); dense: units * (inputs + 1)
    assert program.param_count == 8 * (1 * 9 + 1) + 16 * (8 * 9 + 1) + 32 * (64 + 1) + 10 * (32 + 1)


def test_fan_in_concatenates_in_link_order_including_delayed_links():
    program = nnspec.load(EXAMPLES / "elman.nn").program
    h = program.layer("h")
    assert [(link.source, link.delayed) for link in h.inputs] == [("x", False), ("h", True)]
    assert h.params["weight"].shape == (16, 1 + 16)
    assert program.timed and h.recurrent and not program.layer("y").recurrent


def test_jordan_feeds_the_output_back():
    program = nnspec.load(EXAMPLES / "jordan.nn").program
    assert program.layer("h").params["weight"].shape == (16, 1 + 1)
    assert [o.name for o in program.outputs] == ["y"]
    assert {layer.name for layer in program.layers if layer.recurrent} == {"h", "y"}


def test_literal_weights_are_fixed_and_counted_as_non_trainable():
    program = nnspec.load(EXAMPLES / "xor_gates.nn").program
    assert program.param_count == 9 and program.trainable_count == 0
    s = program.layer("s")
    assert s.options.weights == ((-0.5, 0.5), (-0.5, 0.5))  # as written: [inputs, units]
    assert s.params["weight"].shape == (2, 2)


def test_output_reduce_drops_the_time_axis():
    model = nnspec.loads(
        "network n { input x: 4, seq; lstm h: 8; dense y: 2; x -> h -> y; output y: last }"
    )
    (output,) = model.program.outputs
    assert (output.name, output.reduce, str(output.shape)) == ("y", "last", "[2]")


def test_summary_lists_layers_and_totals():
    text = nnspec.load(EXAMPLES / "lenet.nn").summary()
    for expected in (
        "Layer",
        "Output shape",
        "c1",
        "conv 8, padding=same, act=relu",
        "[16, 2, 2]",
        "Total params: 3,658",
        "Trainable params: 3,658",
        "Non-trainable params: 0",
    ):
        assert expected in text


def test_a_file_with_several_networks_needs_a_choice():
    text = (
        "network a { input x: 1; dense y: 1; x -> y }\nnetwork b { input x: 2; dense y: 1; x -> y }"
    )
    with pytest.raises(nnspec.SpecError) as raised:
        nnspec.loads(text)
    assert raised.value.code == "E316" and "a, b" in raised.value.message
    assert nnspec.loads(text, network="b").program.layer("x").shape.dims == (2,)


def test_parameter_budget_rejects_before_allocating():
    with pytest.raises(nnspec.SpecError) as raised:
        nnspec.load(EXAMPLES / "lenet.nn", max_params=1000)
    assert raised.value.code == "E406" and "'c2'" in raised.value.message
    huge = "network n { input x: 100000; dense h: 100000000; x -> h }"
    with pytest.raises(nnspec.SpecError) as raised:
        nnspec.loads(huge)
    assert raised.value.code == "E406" and (raised.value.span.line, raised.value.span.column) == (
        1,
        36,
    )


def test_use_is_relative_to_the_using_file():
    model = nnspec.load(TEST_SPECS / "ok" / "blocks_and_uses.nn")
    names = [layer.name for layer in model.program.layers]
    assert "deep.3.n.h" in names and "mix.g" in names
    assert model.program.layer("first.h").shape.dims == (24,)


def test_repeat_works_for_plain_layers_too():
    program = nnspec.loads(
        "network n { input x: 4; dense h: 8, act=relu, repeat=3; dense y: 1; x -> h -> y }"
    ).program
    assert [layer.name for layer in program.layers] == ["x", "h.1", "h.2", "h.3", "y"]
    assert program.layer("h.2").params["weight"].shape == (8, 8)


def test_spec_error_carries_every_independent_mistake():
    text = "network n {\n input x: 4\n dence a: 8\n dense b: 8, actt=relu\n x -> a -> b\n}"
    with pytest.raises(nnspec.SpecError) as raised:
        nnspec.loads(text, path="n.nn")
    codes = [(e.code, e.span.line) for e in raised.value.errors]
    assert codes == [("E201", 3), ("E202", 4)]
    assert str(raised.value).count("error[") == 2


def test_block_inputs_check_what_they_receive():
    text = (
        "block b(w) { input x: w; dense y: w; x -> y }\n"
        "network n { input x: 3; b inner: 5; x -> inner }"
    )
    with pytest.raises(nnspec.SpecError) as raised:
        nnspec.loads(text)
    assert (
        raised.value.code == "E410"
        and "[5]" in raised.value.message
        and "[3]" in raised.value.message
    )


def test_repeated_attention_chains_into_the_query():
    program = nnspec.loads("network g { input x: 4, seq; attention b: repeat=2; x -> b }").program
    assert [(link.source, link.port) for link in program.layer("b.2").inputs] == [("b.1", "query")]


# ---- arguments out of range: R339 at the door, never a TypeError from deep inside ------------
XOR = EXAMPLES / "xor.nn"


@pytest.mark.parametrize(
    "call, said",
    [
        (lambda: nnspec.load(None), "path must be a path (a str or a pathlib.Path), not NoneType"),
        (lambda: nnspec.load(XOR, max_params="x"), "max_params must be a whole number"),
        (lambda: nnspec.load(XOR, max_params=-1), "max_params must be a whole number of 1 or more"),
        (lambda: nnspec.load_all(XOR, max_params=0), "max_params must be a whole number"),
        (lambda: nnspec.loads(None), "loads takes the spec's text as a str, not NoneType"),
        (lambda: nnspec.loads(XOR.read_bytes()), "loads takes the spec's text as a str, not bytes"),
        (lambda: nnspec.load(XOR).to_numpy(dtype="int32"), "dtype must be one of 'float32'"),
        (lambda: nnspec.load(XOR).to_numpy(seed="a"), "seed must be a whole number of 0 or more"),
        (lambda: nnspec.load(XOR).to_torch(seed=-1), "seed must be a whole number of 0 or more"),
        (lambda: nnspec.load(XOR).summary(width="wide"), "width must be a whole number"),
        (lambda: nnspec.load(XOR).compile("jax"), "target must be one of 'torch', 'numpy', 'onnx'"),
        (lambda: nnspec.load(XOR).compile("numpy", weights=5), "weights must be a path"),
        (lambda: nnspec.load(XOR).draw(None), "path must be a path"),
        (lambda: nnspec.load(XOR).draw("x.svg", annotate="no"), "annotate must be True or False"),
        (lambda: nnspec.train(XOR, "numpy", overwrite="false"), "overwrite must be True or"),
        (lambda: nnspec.train(XOR, "numpy", resume=1), "resume must be True or False, not 1"),
        (lambda: nnspec.train(XOR, "numpy", out=5), "out must be a path"),
        (lambda: nnspec.train(XOR, "numpy", tensorboard=1), "tensorboard must be a path"),
        (lambda: predict(XOR, None, "x.json"), "weights must be a path"),
        (lambda: predict(XOR, "w.safetensors", 3), "inputs must be a path"),
        (lambda: predict(XOR, "w", "x.json", backend="jax"), "backend must be one of 'torch'"),
    ],
)
def test_an_argument_out_of_range_is_r339(call, said):
    with pytest.raises(nnspec.NnspecError) as caught:
        call()
    assert caught.value.code == "R339" and said in caught.value.message, caught.value.message
    assert caught.value.hint


def test_numpy_integers_and_dtypes_are_taken_as_python_ones():
    model = nnspec.load(XOR, max_params=np.int64(100))
    assert model.to_numpy(seed=np.int64(3), dtype=np.float64).dtype == np.float64


def test_a_weights_dict_that_does_not_fit_is_e506_and_one_that_fits_compiles(tmp_path):
    model = nnspec.load(XOR)
    weights = {name: array.tolist() for name, array in model.to_numpy(seed=1).params.items()}
    with pytest.raises(nnspec.NnspecError) as caught:
        model.compile("numpy", tmp_path / "x.py", weights={**weights, "h.weight": [[1.0, 2.0]]})
    assert caught.value.code == "E506"
    assert "'h.weight' is [2, 2] here and [1, 2] in the dict" in caught.value.message
    with pytest.raises(nnspec.NnspecError, match="'y.bias' is not an array of numbers"):
        model.compile("numpy", tmp_path / "x.py", weights={**weights, "y.bias": [[1.0], [1.0, 2]]})
    assert not list(tmp_path.iterdir())
    written = model.compile("numpy", tmp_path / "x.py", weights=weights)  # lists of numbers will do
    assert [path.name for path in written] == ["x.py", "x.safetensors"]
    stored = load_file(tmp_path / "x.safetensors")
    assert all(array.dtype == np.float32 for array in stored.values())
