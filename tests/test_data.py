"""The data layer: built-in datasets, csv and npz files, shaped for a network and split
(docs/data.md)."""

from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT, SPECS

import nnspec
import nnspec.data
from nnspec.data import BUILTIN, load_data
from nnspec.train_section import DATASETS

FIXTURES = ROOT / "tests" / "data"


def _model(tmp_path: Path, network: str, train: str, name: str = "model.nn") -> nnspec.Model:
    """A spec with one network (its body) and one train section (its settings), written to
    tmp_path."""
    path = tmp_path / name
    path.write_text(f"network n {{\n{network}\n}}\ntrain {{\n{train}\n}}\n")
    return nnspec.load(path)


def _data(tmp_path: Path, network: str, train: str):
    model = _model(tmp_path, network, train)
    return load_data(model.train_spec, model.program)


def _error(tmp_path: Path, network: str, train: str) -> nnspec.SpecError:
    model = _model(tmp_path, network, train)
    with pytest.raises(nnspec.SpecError) as caught:
        load_data(model.train_spec, model.program)
    return caught.value


def _assert_at_data_line(error: nnspec.SpecError, code: str, message: str, hint: str):
    """The error has the code, names what the message says, points at the `data = ...` value,
    and hints."""
    assert error.code == code, error.message
    assert message in error.message, error.message
    assert hint in (error.hint or ""), error.hint
    line = error.span.source.line(error.span.line)
    assert line.lstrip().startswith("data") and error.span.column == line.index("=") + 3, line


CLASSIFIER = "input x: 2\ndense y: 2, act=softmax\nx -> y"
POINTS = "input x: 2\ndense y: 1, act=sigmoid\nx -> y"


# ---- the table of datasets ------------------------------------------------------------------
def test_every_dataset_the_checker_accepts_is_built_and_no_other():
    assert set(BUILTIN) == set(DATASETS)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_dataset_is_float32_finite_and_the_same_for_the_same_seed(name: str):
    first, again = (BUILTIN[name](np.random.default_rng(7), None) for _ in range(2))
    arrays = [first.features, first.adjacency] if hasattr(first, "adjacency") else [first.x]
    for array in arrays:
        assert array.dtype == np.float32 and np.isfinite(array).all()
    for mine, theirs in zip(vars(first).values(), vars(again).values(), strict=True):
        if isinstance(mine, np.ndarray):
            np.testing.assert_array_equal(mine, theirs)


def _spec_models() -> list:
    """Every bundled spec and example with a train section (a GAN's data feeds its
    discriminator)."""
    models = []
    for path in sorted(SPECS.glob("*.nn")) + sorted(EXAMPLES.glob("*.nn")):
        gan = path.name in ("gan.nn", "dcgan.nn")
        model = nnspec.load(path, network="discriminator" if gan else None)
        if model.train_spec is not None:
            models.append(pytest.param(model, id=f"{path.parent.name}/{path.name}"))
    return models


@pytest.mark.parametrize("model", _spec_models())
def test_every_bundled_spec_gets_data_shaped_for_its_network(model: nnspec.Model):
    data = load_data(model.train_spec, model.program)
    program = model.program
    assert set(data.train.inputs) == set(program.inputs)
    for name, array in data.train.inputs.items():
        shape = program.layer(name).shape
        sequence = program.layer(name).options.seq is not False
        assert array.dtype == np.float32
        assert array.shape[2 if sequence else 1 :] == shape.dims, name
    output = program.outputs[0]
    targets = data.train.targets
    if data.kind == "outputs":  # several outputs: a target for each, classes or values
        for output in program.outputs:
            y, classes = targets[output.name], data.outputs[output.name]
            if classes:
                assert y.dtype == np.int64 and y.max() < output.shape.dims[-1] == classes
            else:
                assert y.dtype == np.float32 and y.shape[1:] == output.shape.dims
    elif data.kind == "generative":
        assert targets is None
    elif data.kind in ("classification", "graph") and targets.dtype == np.int64:
        steps = 1 if output.shape.timed and output.reduce is None else 0  # a class per step
        assert (
            targets.shape[1 + steps :] == output.shape.dims[:-1]
            and targets.max() < output.shape.dims[-1] == data.classes
        )
    else:
        assert (
            targets.dtype == np.float32
            and targets.shape[-len(output.shape.dims) :] == output.shape.dims
        )
    assert (data.test is None) == (model.train_spec.settings.get("split", 0) == 0)


# ---- digits ---------------------------------------------------------------------------------
def test_digits_are_the_uci_test_set():
    examples = BUILTIN["digits"](np.random.default_rng(0), None)
    assert examples.x.shape == (1797, 8, 8) and examples.classes == 10
    assert np.bincount(examples.y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert examples.x.min() == 0 and examples.x.max() == 1
    np.testing.assert_array_equal(
        np.unique(examples.x * 16), np.arange(17)
    )  # 16 grey levels and blank
    np.testing.assert_array_equal(examples.x[0, 0] * 16, [0, 0, 5, 13, 9, 1, 0, 0])
    assert examples.y[:10].tolist() == list(range(10))


def test_digits_ship_with_their_licence():
    licence = (Path(nnspec.data.__file__).parent / "LICENSE-digits.txt").read_text()
    assert "CC BY 4.0" in licence and "Alpaydin" in licence and "Kaynak" in licence


def test_digits_take_the_shape_of_the_input(tmp_path: Path):
    def inputs(declared: str):
        return _data(
            tmp_path,
            f"input x: {declared}\nflatten f\ndense y: 10, act=softmax\nx -> f -> y",
            "data = digits",
        ).train.inputs["x"]

    vectors = _data(
        tmp_path, "input x: 64\ndense y: 10, act=softmax\nx -> y", "data = digits"
    ).train.inputs["x"]
    images = inputs("[1, 8, 8]")
    assert vectors.shape == (1797, 64) and images.shape == (1797, 1, 8, 8)
    np.testing.assert_array_equal(images.reshape(1797, 64), vectors)
    rows = _data(
        tmp_path,
        "input x: 8, seq\nrnn h: 4\ndense y: 10, act=softmax\nx -> h -> y\noutput y: last",
        "data = digits",
    ).train.inputs["x"]
    np.testing.assert_array_equal(rows, images[:, 0])  # eight steps, one row of the image each
    held = _data(
        tmp_path, "input x: 64, steps=5\nlif s: 10\nx -> s\noutput s: mean", "data = digits"
    ).train
    assert held.inputs["x"].shape == (1797, 64) and held.targets.shape == (1797,)


def test_split_holds_out_a_fraction_chosen_by_the_seed(tmp_path: Path):
    network = "input x: 64\ndense y: 10, act=softmax\nx -> y"
    data = _data(tmp_path, network, "data = digits\nsplit = 0.2\nseed = 3")
    assert (data.train.size, data.test.size) == (1438, 359)
    every = np.concatenate([data.train.inputs["x"], data.test.inputs["x"]])
    assert len(np.unique(every, axis=0)) == len(
        np.unique(BUILTIN["digits"](None, None).x.reshape(1797, 64), axis=0)
    )
    again = _data(tmp_path, network, "data = digits\nsplit = 0.2\nseed = 3")
    other = _data(tmp_path, network, "data = digits\nsplit = 0.2\nseed = 4")
    np.testing.assert_array_equal(data.test.targets, again.test.targets)
    assert not np.array_equal(data.test.inputs["x"], other.test.inputs["x"])
    whole = _data(tmp_path, network, "data = digits")
    assert whole.test is None and whole.train.targets[:10].tolist() == list(range(10))  # data order


def test_target_input_reproduces_the_input(tmp_path: Path):
    data = _data(
        tmp_path,
        "input x: 64\ndense h: 8\ndense out: 64\nx -> h -> out",
        "data = digits\ntarget = input\nsplit = 0.1",
    )
    assert data.kind == "reconstruction" and data.classes is None
    np.testing.assert_array_equal(data.train.targets, data.train.inputs["x"])
    np.testing.assert_array_equal(data.test.targets, data.test.inputs["x"])


# ---- truth tables ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "gate, bits",
    [
        ("and", [0, 0, 0, 1]),
        ("or", [0, 1, 1, 1]),
        ("nand", [1, 1, 1, 0]),
        ("nor", [1, 0, 0, 0]),
        ("xor", [0, 1, 1, 0]),
    ],
)
def test_truth_tables(tmp_path: Path, gate: str, bits: list[int]):
    one_unit = _data(tmp_path, POINTS, f"data = {gate}")
    np.testing.assert_array_equal(one_unit.train.inputs["x"], [[0, 0], [0, 1], [1, 0], [1, 1]])
    assert (
        one_unit.train.targets.dtype == np.float32
        and one_unit.train.targets.ravel().tolist() == bits
    )
    two_units = _data(tmp_path, CLASSIFIER, f"data = {gate}")
    assert two_units.train.targets.dtype == np.int64 and two_units.train.targets.tolist() == bits
    assert one_unit.classes == two_units.classes == 2 and one_unit.kind == "classification"


def test_not_has_one_input_bit(tmp_path: Path):
    data = _data(tmp_path, "input x: 1\ndense y: 1, act=sigmoid\nx -> y", "data = not")
    assert data.train.inputs["x"].tolist() == [[0], [1]] and data.train.targets.tolist() == [
        [1],
        [0],
    ]


# ---- sequences ------------------------------------------------------------------------------
SINE_NET = "input x: 1, seq\ndense h: 4, act=tanh\ndense y: 1\nx -> h -> y\nh ~> h"


def test_sine_targets_are_the_next_value_at_every_step(tmp_path: Path):
    data = _data(tmp_path, SINE_NET, "data = sine")
    x, y = data.train.inputs["x"], data.train.targets
    assert data.kind == "regression" and x.shape == y.shape == (512, 40, 1)
    assert (
        np.abs(y[:, :-1] - x[:, 1:]).max() < 0.3
    )  # the next input is the target plus noise (sd 0.05)
    assert 0.02 < np.std(y[:, :-1] - x[:, 1:]) < 0.08
    last = _data(tmp_path, SINE_NET + "\noutput y: last", "data = sine")
    np.testing.assert_array_equal(last.train.targets, y[:, -1])


def test_a_sequence_length_in_the_input_is_honoured(tmp_path: Path):
    data = _data(tmp_path, SINE_NET.replace("seq", "seq=25"), "data = sine")
    assert data.train.inputs["x"].shape == (512, 25, 1) == data.train.targets.shape
    adding = _data(
        tmp_path,
        "input x: 2, seq=10\ngru m: 8\ndense y: 1\nx -> m -> y\noutput y: last",
        "data = adding",
    )
    assert adding.train.inputs["x"].shape == (1000, 10, 2)


def test_sine_feeds_a_held_input_per_step_and_a_static_input_whole(tmp_path: Path):
    held = _data(
        tmp_path, "input x: 1, steps=20\nlif s: 4\ndense y: 1\nx -> s -> y", "data = sine"
    ).train
    assert held.inputs["x"].shape == (512, 20, 1) == held.targets.shape
    window = _data(tmp_path, "input x: 40\ndense y: 1\nx -> y", "data = sine").train
    steps = _data(tmp_path, SINE_NET, "data = sine").train  # the same waves, step by step
    np.testing.assert_array_equal(window.inputs["x"], steps.inputs["x"][..., 0])
    np.testing.assert_array_equal(
        window.targets, steps.targets[:, -1]
    )  # the value after the window


def test_adding_marks_two_numbers_one_in_each_half_and_sums_them():
    examples = BUILTIN["adding"](np.random.default_rng(0), None)
    values, marks = examples.x[..., 0], examples.x[..., 1]
    assert examples.x.shape == (1000, 50, 2) and examples.y.shape == (1000, 1)
    assert (marks.sum(axis=1) == 2).all() and (marks[:, :25].sum(axis=1) == 1).all()
    np.testing.assert_allclose(examples.y[:, 0], (values * marks).sum(axis=1), rtol=1e-6)


def test_majority_answer_is_the_most_frequent_digit_token():
    examples = BUILTIN["majority"](np.random.default_rng(0), None)
    tokens = examples.x[..., 0].astype(int)
    assert examples.x.shape == (2000, 16, 1) and tokens.min() >= 0 and tokens.max() <= 31
    counts = np.stack([(tokens == digit).sum(axis=1) for digit in range(10)], axis=1)
    answers = counts.argmax(axis=1)
    np.testing.assert_array_equal(answers, examples.y)
    assert (np.sort(counts, axis=1)[:, -1] > np.sort(counts, axis=1)[:, -2]).all()  # no ties
    assert set(np.unique(examples.y)) == set(range(10))


def test_self_attention_over_tokens_takes_the_majority_task(tmp_path: Path):
    network = (
        "input tokens: 1, seq=16\nembedding e: 32, 32\nattention a: heads=4\nreadout pooled: mean\n"
        "dense out: 10, act=softmax\ntokens -> e -> a -> pooled -> out"
    )
    data = _data(tmp_path, network, "data = majority")
    assert data.train.inputs["tokens"].shape == (2000, 16, 1) and data.classes == 10


def test_recall_answer_is_the_value_stored_under_the_asked_key():
    examples = BUILTIN["recall"](np.random.default_rng(0), None)
    x = examples.x
    assert x.shape == (2000, 12, 27) and examples.y.shape == (2000,) and examples.classes == 10
    keys, values, flag = x[..., :16], x[..., 16:26], x[..., 26]
    assert (keys[:, :-1].sum(axis=-1) == 1).all() and (values[:, :-1].sum(axis=-1) == 1).all()
    assert (flag[:, :-1] == 0).all() and (flag[:, -1] == 1).all()  # pairs first, the question last
    assert (keys[:, -1].sum(axis=-1) == 1).all() and (values[:, -1] == 0).all()
    stored = keys[:, :-1].argmax(axis=-1)
    assert all(len(set(row)) == 11 for row in stored)  # a key is stored once per sequence
    asked = keys[:, -1].argmax(axis=-1)
    where = (stored == asked[:, None]).argmax(axis=1)
    assert (stored[np.arange(2000), where] == asked).all()
    np.testing.assert_array_equal(values[np.arange(2000), where].argmax(axis=-1), examples.y)
    assert set(np.unique(examples.y)) == set(range(10)) and len(np.unique(where)) == 11


def test_attention_spec_takes_the_recall_task():
    model = nnspec.load(SPECS / "attention.nn")
    data = load_data(model.train_spec, model.program)
    assert (
        data.train.inputs["x"].shape == (1600, 12, 27)
        and data.test.size == 400
        and data.classes == 10
    )


# ---- graphs ---------------------------------------------------------------------------------
GCN = (
    "input features: [34, 34]\ninput adjacency: [34, 34]\n"
    "gcn g1: 4, act=relu\ngcn g2: 2, act=softmax\n"
    "features -> g1.features\nadjacency -> g1.adjacency, g2.adjacency\ng1 -> g2.features"
)


def test_karate_is_one_graph_with_a_label_per_node(tmp_path: Path):
    data = _data(tmp_path, GCN, "data = karate")
    adjacency, features = data.train.inputs["adjacency"], data.train.inputs["features"]
    assert data.kind == "graph" and data.classes == 2 and data.test is None
    assert adjacency.shape == features.shape == (1, 34, 34)
    np.testing.assert_array_equal(features[0], np.eye(34))
    assert (
        (adjacency == adjacency.transpose(0, 2, 1)).all()
        and adjacency.sum() == 2 * 78
        and adjacency[0].trace() == 0
    )
    assert data.train.targets.shape == (1, 34) and data.train.targets[0, [0, 33]].tolist() == [0, 1]
    assert np.bincount(data.train.targets[0]).tolist() == [17, 17] and data.train.mask.all()


def test_karate_split_holds_out_nodes_with_masks(tmp_path: Path):
    data = _data(tmp_path, GCN, "data = karate\nsplit = 0.2")
    train, test = data.train.mask, data.test.mask
    assert (
        (train.sum(), test.sum()) == (27, 7) and not (train & test).any() and (train | test).all()
    )
    assert data.train.size == 27 and data.test.size == 7
    assert data.test.inputs["adjacency"] is data.train.inputs["adjacency"]


def test_karate_finds_the_adjacency_by_port_not_by_name(tmp_path: Path):
    swapped = (
        GCN.replace("features", "f")
        .replace("adjacency", "a")
        .replace("g1.f", "g1.features")
        .replace("g1.a", "g1.adjacency")
        .replace("g2.a", "g2.adjacency")
        .replace("g2.f", "g2.features")
    )
    data = _data(tmp_path, swapped, "data = karate")
    np.testing.assert_array_equal(data.train.inputs["f"][0], np.eye(34))


def test_karate_needs_an_adjacency_input(tmp_path: Path):
    error = _error(tmp_path, "input x: 34\ndense y: 2, act=softmax\nx -> y", "data = karate")
    _assert_at_data_line(error, "E506", "dataset 'karate' is one graph", "adjacency")


# ---- points in the plane --------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, classes", [("moons", 2), ("spirals", 2), ("circles", 2), ("blobs", 3), ("ring", 8)]
)
def test_point_sets_are_balanced_2d_classification(tmp_path: Path, name: str, classes: int):
    data = _data(tmp_path, f"input x: 2\ndense y: {classes}, act=softmax\nx -> y", f"data = {name}")
    counts = np.bincount(data.train.targets)
    assert (
        data.train.inputs["x"].shape[1:] == (2,)
        and len(counts) == classes
        and counts.max() - counts.min() <= 1
    )


def test_ring_points_sit_near_their_centres():
    ring = BUILTIN["ring"](np.random.default_rng(0), None)
    centres = ring.info["centres"]
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2, rtol=1e-6)
    assert np.linalg.norm(ring.x - centres[ring.y], axis=1).max() < 0.1


def test_circles_inner_class_is_the_small_circle():
    circles = BUILTIN["circles"](np.random.default_rng(0), None)
    radius = np.linalg.norm(circles.x, axis=1)
    assert radius[circles.y == 1].max() < 0.75 < radius[circles.y == 0].min()


def test_associations_are_fixed_bipolar_pairs_with_orthogonal_keys(tmp_path: Path):
    pairs = BUILTIN["associations"](np.random.default_rng(0), None)
    again = BUILTIN["associations"](np.random.default_rng(1), None)
    np.testing.assert_array_equal(pairs.x, again.x)
    np.testing.assert_array_equal(pairs.y, again.y)
    assert pairs.x.shape == (8, 16) and pairs.y.shape == (8, 8) and pairs.classes is None
    assert set(np.unique(pairs.x)) == set(np.unique(pairs.y)) == {-1.0, 1.0}
    np.testing.assert_array_equal(pairs.x @ pairs.x.T, 16 * np.eye(8))
    assert len({tuple(v) for v in pairs.y}) == 8
    memory = pairs.y.T @ pairs.x  # Hebb's outer-product memory recalls every value exactly
    np.testing.assert_array_equal(np.sign(pairs.x @ memory.T), pairs.y)
    data = _data(tmp_path, "input x: 16\ndense y: 8, act=tanh\nx -> y", "data = associations")
    assert data.kind == "regression" and data.classes is None
    np.testing.assert_array_equal(data.train.targets, pairs.y)


def test_gan_data_feeds_the_discriminator():
    discriminator = nnspec.load(SPECS / "gan.nn", network="discriminator")
    data = load_data(discriminator.train_spec, discriminator.program)
    assert (
        data.kind == "generative"
        and data.train.inputs["point"].shape == (2048, 2)
        and data.train.targets is None
    )
    assert data.info["centres"].shape == (8, 2)
    generator = nnspec.load(SPECS / "gan.nn", network="generator")
    with pytest.raises(ValueError, match="discriminator"):
        load_data(generator.train_spec, generator.program)


# ---- shapes that do not fit -----------------------------------------------------------------
@pytest.mark.parametrize(
    "network, train, message, hint",
    [
        (
            "input x: 3\ndense y: 10, act=softmax\nx -> y",
            "data = digits",
            "dataset 'digits' gives [8, 8] (64 values) per example, but input 'x' takes [3]",
            "declare 'input x: 64'",
        ),
        (
            "input x: 64\ndense y: 3, act=softmax\nx -> y",
            "data = digits",
            "dataset 'digits' has 10 classes, but 'y' gives 3 values",
            "give 'y' 10 units",
        ),
        (
            "input x: 2, seq\nlstm m: 4\ndense y: 1\nx -> m -> y",
            "data = adding",
            "one target per sequence, but 'y' gives a value at every step",
            "output y: last",
        ),
        (
            "input x: 64, steps=4\nlif s: 10\nx -> s",
            "data = digits",
            "one class per example, but 's' gives a value at every step",
            "output s: mean",
        ),
        (
            "input x: 3, seq\nrnn h: 4\ndense y: 3\nx -> h -> y",
            "data = sine",
            "dataset 'sine' gives 40 steps of [1] per example, "
            "but input 'x' takes a sequence of [3]",
            "'input x: 1, seq'",
        ),
        (
            "input x: 8, seq=4\nrnn h: 4\ndense y: 10\nx -> h -> y\noutput y: last",
            "data = digits",
            "dataset 'digits' gives sequences of 8 steps, but input 'x' takes 4",
            "seq=8",
        ),
        (
            "input a: 2\ninput b: 2\nconcat c\ndense y: 1\na, b -> c -> y",
            "data = xor",
            "dataset 'xor' feeds one input, but network 'n' has 2: 'a', 'b'",
            "npz",
        ),
        (
            "input x: 2\ndense a: 1\ndense b: 1\nx -> a, b\noutput a, b",
            "data = xor",
            "dataset 'xor' has one target per example, but network 'n' has 2 outputs",
            "output NAME",
        ),
        (
            "input x: 64\ndense y: 32\nx -> y",
            "data = digits\ntarget = input",
            "input 'x' (target = input) has targets of [64], but 'y' gives [32]",
            "give 'y' 64 units",
        ),
        (
            "input x: 1, seq=3\nrnn h: 4\ndense y: 1\nx -> h -> y",
            "data = majority",
            "the majority task needs sequences of at least 7 tokens",
            "seq=16",
        ),
        (
            "input x: 27, seq=20\nrnn h: 4\ndense y: 10\nx -> h -> y\noutput y: last",
            "data = recall",
            "the recall task needs sequences of 2 to 17 steps (16 keys), not 20",
            "seq=12",
        ),
        (
            "input x: 2\ndense y: 1\nx -> y",
            "loss = mse",
            "this train section names no data",
            "data = digits",
        ),
    ],
)
def test_data_that_does_not_fit_is_an_error_at_the_data_line(
    tmp_path: Path, network, train, message, hint
):
    error = _error(tmp_path, network, train)
    assert message in error.message and hint in error.hint
    if "data" in train:
        _assert_at_data_line(error, error.code, message, hint)
        assert error.code == "E506"
    else:
        assert error.code == "E502" and error.span.source.line(error.span.line).startswith("train")


# ---- csv files ------------------------------------------------------------------------------
def _csv(
    tmp_path: Path,
    text: str,
    train: str = 'data = csv("d.csv", target="label")\nloss = bce',
    network: str = POINTS,
):
    (tmp_path / "d.csv").write_text(text)
    return _data(tmp_path, network, train)


def _csv_error(tmp_path: Path, text: str, network: str = POINTS) -> nnspec.SpecError:
    model = _model(tmp_path, network, 'data = csv("d.csv", target="label")\nloss = bce')
    (tmp_path / "d.csv").write_text(
        text
    )  # written after the check, as a file can change before training
    with pytest.raises(nnspec.SpecError) as caught:
        load_data(model.train_spec, model.program)
    return caught.value


def test_csv_features_are_the_columns_but_the_target(tmp_path: Path):
    data = _csv(tmp_path, "x1,label,x2\n1,0,2\n3,1,4\n5,1,6\n")
    np.testing.assert_array_equal(data.train.inputs["x"], [[1, 2], [3, 4], [5, 6]])
    assert data.kind == "classification" and data.train.targets.ravel().tolist() == [0, 1, 1]


def test_csv_is_read_relative_to_the_spec_or_to_base_dir(tmp_path: Path):
    for folder, labels in (("data", "0\n1,1,1"), ("moved/data", "1\n1,1,0")):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "d.csv").write_text(f"x1,x2,label\n0,0,{labels}\n")
    (tmp_path / "specs" / "deep").mkdir(parents=True)
    (tmp_path / "moved" / "a" / "b").mkdir(parents=True)
    path = tmp_path / "specs" / "deep" / "model.nn"
    path.write_text(
        f"network n {{\n{CLASSIFIER}\n}}\n"
        'train {\ndata = csv("../../data/d.csv", target="label")\nloss = bce\n}\n'
    )
    model = nnspec.load(path)
    assert load_data(model.train_spec, model.program).train.targets.tolist() == [0, 1]
    moved = load_data(model.train_spec, model.program, base_dir=tmp_path / "moved" / "a" / "b")
    assert moved.train.targets.tolist() == [1, 0]


def test_csv_target_is_a_value_for_regression_losses(tmp_path: Path):
    data = _csv(
        tmp_path,
        "a,b,label\n1,2,0.5\n3,4,-1.5\n",
        'data = csv("d.csv", target="label")\nloss = mse',
    )
    assert data.kind == "regression" and data.train.targets.dtype == np.float32
    assert data.train.targets.tolist() == [[0.5], [-1.5]]
    measured = _csv(
        tmp_path,
        "a,b,label\n1,2,0\n3,4,1\n",
        'data = csv("d.csv", target="label")\nloss = mse\nexpect accuracy >= 1',
    )
    assert measured.kind == "classification"


def test_csv_rows_feed_a_sequence_input(tmp_path: Path):
    (tmp_path / "d.csv").write_text("t1,t2,t3,t4,label\n0,1,2,3,4\n1,2,3,4,5\n")
    data = _data(
        tmp_path,
        "input x: 1, seq\nrnn h: 4\ndense y: 1\nx -> h -> y\noutput y: last",
        'data = csv("d.csv", target="label")\nloss = mse',
    )
    assert data.train.inputs["x"].shape == (2, 4, 1) and data.train.targets.tolist() == [[4], [5]]


def test_csv_with_target_input_has_no_target_column(tmp_path: Path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,4\n")
    data = _data(tmp_path, "input x: 2\ndense y: 2\nx -> y", 'data = csv("d.csv")\ntarget = input')
    np.testing.assert_array_equal(data.train.targets, [[1, 2], [3, 4]])


def test_csv_quoted_values_blank_lines_and_a_bom_are_read(tmp_path: Path):
    data = _csv(tmp_path, '\ufeff"x1","x2","label"\n"1", 2 ,0\n\n3,4,1\n')
    np.testing.assert_array_equal(data.train.inputs["x"], [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "x1,x2,label\n0,0,0\n1,nan,1\n",
            "data file 'd.csv' line 3, column 'x2' holds nan, not a finite number",
        ),
        ("x1,x2,label\n0,inf,0\n", "line 2, column 'x2' holds inf, not a finite number"),
        ("x1,x2,label\n0,0,0\n1,,1\n", "line 3, column 'x2' is empty"),
        ("x1,x2,label\n0,0,0\n1,one,1\n", "line 3, column 'x2' holds 'one', not a number"),
        ("x1,x2,label\n0,0,0\n1,1\n", "line 3 has 2 values, but the header names 3 columns"),
        ("x1,x2,label\n0,0,0\n1,1,0.5\n", "line 3, column 'label' holds 0.5, not a class"),
        ("x1,x2,label\n0,0,-1\n", "line 2, column 'label' holds -1, not a class"),
        ("x1,x2,label\n", "has a header but no rows of data"),
        ("", "data file 'd.csv' is empty"),
        (b"x1,x2,label\n0,\xff,0\n", "cannot read data file 'd.csv'"),
    ],
)
def test_bad_csv_values_name_the_file_line_and_column(tmp_path: Path, text, message):
    (tmp_path / "d.csv").write_text("x1,x2,label\n0,0,0\n")
    model = _model(tmp_path, POINTS, 'data = csv("d.csv", target="label")\nloss = bce')
    if isinstance(text, bytes):
        (tmp_path / "d.csv").write_bytes(text)
    else:
        (tmp_path / "d.csv").write_text(text)
    with pytest.raises(nnspec.SpecError) as caught:
        load_data(model.train_spec, model.program)
    _assert_at_data_line(caught.value, "E505", message, "")
    assert caught.value.hint


def test_csv_problems_found_when_the_data_is_read(tmp_path: Path):
    (tmp_path / "d.csv").write_text("x1,x2,label\n0,0,0\n")
    model = _model(tmp_path, POINTS, 'data = csv("d.csv", target="label")\nloss = bce')
    (tmp_path / "d.csv").write_text("x1,x2,class\n0,0,0\n")
    with pytest.raises(nnspec.SpecError) as caught:
        load_data(model.train_spec, model.program)
    _assert_at_data_line(
        caught.value,
        "E506",
        "data file 'd.csv' has no column 'label'",
        "known columns: class, x1, x2",
    )
    (tmp_path / "d.csv").unlink()
    with pytest.raises(nnspec.SpecError) as caught:
        load_data(model.train_spec, model.program)
    _assert_at_data_line(
        caught.value, "E505", "data file 'd.csv' is not found", str(tmp_path / "d.csv")
    )
    (tmp_path / "d.csv").write_text("x1,x2,x3,label\n0,0,0,0\n1,1,1,1\n")
    with pytest.raises(nnspec.SpecError) as caught:
        load_data(model.train_spec, model.program)
    _assert_at_data_line(
        caught.value,
        "E506",
        "data file 'd.csv' gives [3] per example, but input 'x' takes [2]",
        "input x: 3",
    )
    (tmp_path / "d.csv").write_text("label\n0\n1\n")
    with pytest.raises(nnspec.SpecError) as caught:
        load_data(model.train_spec, model.program)
    _assert_at_data_line(
        caught.value, "E506", "has only the target column 'label'", "add the columns"
    )


def test_split_of_one_example_is_an_error(tmp_path: Path):
    (tmp_path / "d.csv").write_text("x1,x2,label\n0,0,0\n")
    error = _error(tmp_path, POINTS, 'data = csv("d.csv", target="label")\nloss = bce\nsplit = 0.5')
    _assert_at_data_line(error, "E506", "has 1 example: nothing to hold out", "split = 0")


# ---- checked with the spec ------------------------------------------------------------------
@pytest.mark.parametrize(
    "train, code, message, at",
    [
        (
            'data = csv("nowhere.csv", target="label")',
            "E505",
            "data file 'nowhere.csv' is not found",
            '"nowhere',
        ),
        ('data = npz("sub")', "E505", "data file 'sub' is a folder, not a file", '"sub'),
        (
            'data = csv("d.csv", target="lable")',
            "E506",
            "data file 'd.csv' has no column 'lable'",
            '"lable',
        ),
        ('data = csv("d.csv")', "E502", "csv needs the column that holds the targets", "csv"),
        (
            'data = csv(3, target="label")',
            "E502",
            "csv needs the path of the file as a string",
            "3",
        ),
        (
            'data = csv("d.csv", target=label)',
            "E502",
            "the target column is named by a string, not label",
            "label)",
        ),
        ('data = csv("d.csv", "label", 3)', "E502", "csv takes 2 values at most", "csv"),
        (
            'data = csv("empty.csv", target="label")',
            "E505",
            "data file 'empty.csv' is empty",
            '"empty',
        ),
        (
            'data = csv("bad.csv", target="label")',
            "E505",
            "cannot read data file 'bad.csv'",
            '"bad',
        ),
    ],
)
def test_data_files_are_checked_with_the_spec(tmp_path: Path, train, code, message, at):
    (tmp_path / "d.csv").write_text("x1,x2,label\n0,0,0\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bad.csv").write_bytes(b"x1,\xff\n")
    (tmp_path / "sub").mkdir()
    with pytest.raises(nnspec.SpecError) as caught:
        _model(tmp_path, POINTS, train)
    error = caught.value
    assert (error.code, error.span.line, error.span.column) == (code, 7, train.index(at) + 1), (
        error.code,
        error.span,
        error.message,
    )
    assert message in error.message and error.hint


def test_a_csv_with_positional_target_and_target_input_check_clean(tmp_path: Path):
    (tmp_path / "d.csv").write_text("x1,x2,label\n0,0,0\n1,1,1\n")
    data = _data(tmp_path, POINTS, 'data = csv("d.csv", "label")\nloss = bce')
    assert data.train.targets.tolist() == [[0], [1]]
    assert _model(
        tmp_path, "input x: 3\ndense y: 3\nx -> y", 'data = csv(path="d.csv")\ntarget = input'
    ).train_spec


# ---- npz files ------------------------------------------------------------------------------
def test_npz_x_and_y(tmp_path: Path):
    np.savez(tmp_path / "d.npz", x=np.arange(8.0).reshape(4, 2), y=np.array([0, 1, 1, 0]))
    data = _data(tmp_path, CLASSIFIER, 'data = npz("d.npz")')
    assert data.kind == "classification" and data.train.targets.tolist() == [0, 1, 1, 0]
    assert data.train.inputs["x"].dtype == np.float32 and data.train.inputs["x"].shape == (4, 2)
    np.savez(tmp_path / "d.npz", x=np.arange(8.0).reshape(4, 2), y=np.linspace(0, 1, 4))
    assert _data(tmp_path, POINTS, 'data = npz("d.npz")').train.targets.shape == (4, 1)


def test_npz_arrays_named_after_inputs_and_outputs(tmp_path: Path):
    network = (
        "input a: 2\ninput b: [1, 2, 2]\nflatten f\nconcat c\ndense p: 1\ndense q: 2\n"
        "b -> f\na, f -> c -> p, q\noutput p, q"
    )
    np.savez(
        tmp_path / "d.npz", a=np.zeros((5, 2)), b=np.ones((5, 4)), p=np.zeros(5), q=np.ones((5, 2))
    )
    data = _data(tmp_path, network, 'data = npz("d.npz")\nsplit = 0.4')
    assert data.train.inputs["b"].shape == (3, 1, 2, 2) and data.test.inputs["a"].shape == (2, 2)
    assert data.train.targets["p"].shape == (3, 1) and data.test.targets["q"].shape == (2, 2)


def test_npz_sequences_keep_their_time_axis(tmp_path: Path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 7, 2)), y=np.ones((3, 7, 1)))
    data = _data(
        tmp_path, "input x: 2, seq\nrnn h: 4\ndense y: 1\nx -> h -> y", 'data = npz("d.npz")'
    )
    assert data.train.inputs["x"].shape == (3, 7, 2) and data.train.targets.shape == (3, 7, 1)


@pytest.mark.parametrize(
    "arrays, code, message",
    [
        (
            {"inputs": np.zeros((3, 2)), "y": np.zeros(3)},
            "E506",
            "data file 'd.npz' has no array 'x' or 'x' for the network's inputs; "
            "it holds 'inputs', 'y'",
        ),
        (
            {"x": np.zeros((3, 2))},
            "E506",
            "has no array 'y' or 'y' for the network's outputs; it holds 'x'",
        ),
        (
            {"x": np.zeros((3, 2)), "y": np.zeros(4)},
            "E506",
            "disagree on the number of examples: 'x' has 3, 'y' has 4",
        ),
        (
            {"x": np.array([[0, 1], [2, np.nan]]), "y": np.zeros(2)},
            "E505",
            "array 'x' in data file 'd.npz': example 1 holds nan",
        ),
        (
            {"x": np.array([["a", "b"]]), "y": np.zeros(1)},
            "E505",
            "array 'x' in data file 'd.npz' holds <U1 values, not real numbers",
        ),
        (
            {"x": np.zeros((3, 3)), "y": np.zeros(3)},
            "E506",
            "array 'x' of data file 'd.npz' gives [3] per example, but input 'x' takes [2]",
        ),
        (
            {"x": np.zeros((3, 2)), "y": np.array([0, -2, 1])},
            "E505",
            "array 'y' in data file 'd.npz', example 1, holds -2",
        ),
        (
            {"x": np.float64(3), "y": np.zeros(1)},
            "E505",
            "array 'x' in data file 'd.npz' is a single number",
        ),
    ],
)
def test_bad_npz_arrays_name_the_file_and_array(tmp_path: Path, arrays, code, message):
    np.savez(tmp_path / "d.npz", **arrays)
    error = _error(tmp_path, POINTS, 'data = npz("d.npz")')
    _assert_at_data_line(error, code, message, "")
    assert error.hint


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as file:  # a file object: np.save would add .npy to a name
        np.save(file, array)


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda path: path.write_text("not a zip"), "cannot read data file 'd.npz' as .npz"),
        (lambda path: _save_npy(path, np.zeros(3)), "holds one array, not an .npz archive"),
        (
            lambda path: np.savez(path, x=np.array([{}], dtype=object), y=np.zeros(1)),
            "cannot read data file 'd.npz' as .npz",
        ),
    ],
)
def test_files_that_are_not_npz_archives(tmp_path: Path, write, message):
    write(tmp_path / "d.npz")
    error = _error(tmp_path, POINTS, 'data = npz("d.npz")')
    _assert_at_data_line(error, "E505", message, "numpy.savez")
