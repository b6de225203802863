"""Blocks that take their shape from where they are used (issue 16, item 3).

A block's `input` may leave its size open with `?` (`input x: ?`, `[?, ?, ?]`, `[c, ?, ?]`); each
use takes the open dimensions from what feeds it. Parameter counts and outputs are compared with
the same models written by hand in PyTorch; the errors with their codes, messages, places, hints.
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import (
    EXAMPLES,
    TEST_SPECS,
    assert_compiled_torch_equals_to_torch,
    assert_trains_alike,
    import_file,
    spec_inputs,
)
from safetensors.numpy import save_file

import nnspec
from nnspec.backends.init import initial_params
from nnspec.compile import emit
from nnspec.parse import parse
from nnspec.resolve import OPEN_ELSEWHERE, check_blocks, load_library
from nnspec.syntax import dump

OK = TEST_SPECS / "ok"
EXAMPLE = EXAMPLES / "resnet_digits.nn"

BASIC = """
block basic(c) {
    input     x: [c, ?, ?]
    conv      a: c, kernel=3, padding=1, bias=false
    batchnorm an
    relu      ar
    conv      b: c, kernel=3, padding=1, bias=false
    batchnorm bn
    add       s
    relu      out
    x -> a -> an -> ar -> b -> bn -> s -> out
    x -> s
}

block down(c) {
    input     x: [?, ?, ?]
    conv      a: c, kernel=3, stride=2, padding=1, bias=false
    batchnorm an
    relu      ar
    conv      b: c, kernel=3, padding=1, bias=false
    batchnorm bn
    conv      d: c, kernel=1, stride=2, bias=false
    batchnorm dn
    add       s
    relu      out
    x -> a -> an -> ar -> b -> bn -> s -> out
    x -> d -> dn -> s
}
"""

RESNET18 = (
    BASIC
    + """
network resnet18 {
    input       x: [3, 224, 224]
    conv        conv1: 64, kernel=7, stride=2, padding=3, bias=false
    batchnorm   bn1
    relu        r
    pool        maxpool: max, size=3, stride=2, padding=1
    basic       layer1: 64, repeat=2
    down        layer2: 128
    basic       layer2b: 128
    down        layer3: 256
    basic       layer3b: 256
    down        layer4: 512
    basic       layer4b: 512
    global_pool avgpool: avg
    dense       fc: 1000
    x -> conv1 -> bn1 -> r -> maxpool -> layer1 -> layer2 -> layer2b -> layer3 -> layer3b
    layer3b -> layer4 -> layer4b -> avgpool -> fc
}
"""
)


def _error(text: str) -> nnspec.SpecError:
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    return caught.value


def _at(error: nnspec.SpecError) -> tuple[int, int]:
    return error.span.line, error.span.column


# ---- the same models by hand in PyTorch -------------------------------------------------------
def _torch_basic(torch, c: int):
    nn = torch.nn

    class Basic(nn.Module):
        """torchvision's BasicBlock without a downsample: relu(bn(conv(relu(bn(conv(x))))) + x)."""

        def __init__(self):
            super().__init__()
            self.a, self.an = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.b, self.bn = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            y = self.bn(self.b(torch.relu(self.an(self.a(x)))))
            return torch.relu(y + x)

    return Basic()


def _torch_down(torch, cin: int, c: int):
    nn = torch.nn

    class Down(nn.Module):
        """torchvision's BasicBlock with stride 2 and its 1x1 projection on the skip path."""

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(cin, c, 3, stride=2, padding=1, bias=False)
            self.an = nn.BatchNorm2d(c)
            self.b, self.bn = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.d, self.dn = nn.Conv2d(cin, c, 1, stride=2, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            y = self.bn(self.b(torch.relu(self.an(self.a(x)))))
            return torch.relu(y + self.dn(self.d(x)))

    return Down()


def _torch_resnet(torch, stem: int, stages, classes: int, big_stem: bool, channels: int = 3):
    """A stem, then for each (cin, c) a Down block (cin != c) or a Basic block, then the head."""
    nn = torch.nn
    if big_stem:
        head = [nn.Conv2d(channels, stem, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(stem)]
        head += [nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)]
    else:
        head = [nn.Conv2d(channels, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem)]
        head += [nn.ReLU()]
    blocks = [
        _torch_basic(torch, c) if cin == c else _torch_down(torch, cin, c) for cin, c in stages
    ]
    tail = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(stages[-1][1], classes)]
    return nn.Sequential(*head, *blocks, *tail)


def _torch_vgg(torch):
    nn = torch.nn
    layers, cin = [], 3
    for c in (8, 16, 32, 32):
        layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1)]
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        cin = c
    layers += [nn.Flatten(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(-1)]
    return nn.Sequential(*layers)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _same_model(torch, model, reference, input_shape) -> None:
    """The spec's module holds the reference's tensors in the same order and shapes; with the
    reference's values loaded it gives the reference's outputs, with batch statistics (training)
    and with running ones (evaluation)."""
    net = model.to_torch().double()
    reference = reference.double()
    ours, theirs = net.state_dict(), reference.state_dict()
    assert [tuple(t.shape) for t in ours.values()] == [tuple(t.shape) for t in theirs.values()]
    net.load_state_dict(dict(zip(ours, theirs.values(), strict=True)))
    x = torch.randn(
        4, *input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    for mode in (True, False):
        net.train(mode)
        reference.train(mode)
        with torch.no_grad():
            torch.testing.assert_close(net(x), reference(x), rtol=1e-9, atol=1e-12)


# ---- shapes per use and PyTorch's counts ------------------------------------------------------
def test_one_stage_block_is_sized_anew_at_every_use():
    program = nnspec.load(OK / "open_blocks_vgg.nn").program
    weights = {
        name: program.layer(name).params["weight"].shape
        for name in ("s1.a", "s2.a", "s3.1.a", "s3.2.b")
    }
    assert weights == {
        "s1.a": (8, 3, 3, 3),
        "s2.a": (16, 8, 3, 3),
        "s3.1.a": (32, 16, 3, 3),
        "s3.2.b": (32, 32, 3, 3),
    }
    shapes = [program.layer(f"{s}.p").shape.dims for s in ("s1", "s2", "s3.1", "s3.2")]
    assert shapes == [(8, 8, 8), (16, 4, 4), (32, 2, 2), (32, 1, 1)]


def test_vgg_stages_equal_the_same_model_in_pytorch():
    torch = pytest.importorskip("torch")
    model = nnspec.load(OK / "open_blocks_vgg.nn")
    reference = _torch_vgg(torch)
    assert model.program.param_count == _count(reference) == 39_442
    _same_model(torch, model, reference, (3, 16, 16))


def test_resnet_stages_equal_the_same_model_in_pytorch():
    torch = pytest.importorskip("torch")
    model = nnspec.load(OK / "open_blocks_resnet.nn")
    stages = [(8, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32)]
    reference = _torch_resnet(torch, 8, stages, 10, big_stem=False)
    assert model.program.param_count == _count(reference)
    _same_model(torch, model, reference, (3, 16, 16))


def test_resnet18_from_one_basic_block_has_torchvisions_parameter_count():
    """torchvision.models.resnet18() holds 11,689,512 parameters; here the basic block and the
    downsampling block are each written once and take their channels and sizes from their use."""
    program = nnspec.loads(RESNET18).program
    assert program.param_count == program.trainable_count == 11_689_512
    stages = ["maxpool", "layer1.2.out", "layer2b.out", "layer3b.out", "layer4b.out", "avgpool"]
    assert [program.layer(name).shape.dims for name in stages] == [
        (64, 56, 56),
        (64, 56, 56),
        (128, 28, 28),
        (256, 14, 14),
        (512, 7, 7),
        (512,),
    ]
    torch = pytest.importorskip("torch")
    chans = [(64, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)]
    reference = _torch_resnet(torch, 64, chans + [(512, 512)], 1000, big_stem=True)
    assert _count(reference) == 11_689_512


def test_the_example_equals_the_same_model_in_pytorch():
    torch = pytest.importorskip("torch")
    model = nnspec.load(EXAMPLE)
    nn = torch.nn
    stages = [(8, 8), (8, 16), (16, 16)]
    reference = _torch_resnet(torch, 8, stages, 10, big_stem=False, channels=1)
    reference = nn.Sequential(*reference, nn.Softmax(-1))
    assert model.program.param_count == _count(reference) == 9_794
    _same_model(torch, model, reference, (1, 8, 8))


def test_an_input_open_in_every_way_takes_each_use_as_it_comes():
    program = nnspec.load(OK / "open_blocks_any.nn").program
    assert program.layer("g1.m").shape.dims == (2, 4, 4)
    assert program.layer("g2.m").shape.dims == (32,)
    g3 = program.layer("g3.m").shape
    assert g3.dims == (3,) and g3.timed
    assert program.layer("m1.h").params["weight"].shape == (6, 32)
    # the cycle through '~>' settles: 5 from the rnn and 4 from the layer's own last step
    assert program.layer("loop.h").params["weight"].shape == (4, 9)
    assert program.layer("loop.h").recurrent


def test_open_sizes_are_shown_as_written():
    text = (OK / "open_blocks_vgg.nn").read_text()
    source = nnspec.errors.Source("open.nn", text)
    assert "layer input x: [?, ?, ?]" in dump(parse(source))
    model = nnspec.load(OK / "open_blocks_vgg.nn")
    assert "port [?, ?, ?]" in model.summary()


def test_a_library_of_open_blocks_checks_on_its_own():
    library = load_library(nnspec.errors.Source("<string>", BASIC))
    check_blocks(library)
    error = _error(BASIC.replace("conv      d: c,", "conv      d: ?,"))
    assert error.code == "E241" and _at(error) == (22, 18)


# ---- errors ------------------------------------------------------------------------------
STAGE = """block stage(c) {
    input x: [c, ?, ?]
    conv  a: c, kernel=3, padding=same, act=relu
    pool  p: max, size=2
    x -> a -> p
}
"""


def test_a_fixed_dimension_that_does_not_match_is_e410_at_the_block_line_naming_the_use():
    error = _error(
        STAGE + "network n {\n    input x: [8, 8, 8]\n    stage s1: 8\n    stage s2: 16\n"
        "    x -> s1 -> s2\n}\n"
    )
    assert error.code == "E410" and _at(error) == (2, 11)
    assert error.message == "'s2.x' (block input) is declared [16, ?, ?] but receives [8, 4, 4]"
    assert "'?'" in error.hint


def test_another_number_of_dimensions_is_e410():
    error = _error(STAGE + "network n {\n    input x: 8\n    stage s: 8\n    x -> s\n}\n")
    assert error.code == "E410"
    assert error.message == "'s.x' (block input) is declared [8, ?, ?] but receives [8]"


def test_an_open_input_that_wants_time_steps_says_so():
    text = (
        "block b() {\n    input x: ?, seq\n    relu r\n    x -> r\n}\n"
        "network n {\n    input x: 3\n    b u\n    x -> u\n}\n"
    )
    error = _error(text)
    assert error.code == "E410" and _at(error) == (2, 11)
    assert error.message == "'u.x' (block input) is declared [T, ...] but receives [3]"
    assert "sequence" in error.hint


def test_a_mistake_inside_an_open_block_points_at_the_block_line_and_names_each_use():
    stage = STAGE.replace("[c, ?, ?]", "[?, ?, ?]").replace(", padding=same", "")
    text = stage + (
        "network n {\n    input x: [1, 10, 10]\n    stage s1: 4\n    stage s2: 8\n"
        "    stage s3: 16\n    stage s4: 16\n    x -> s1 -> s2 -> s3 -> s4\n}\n"
    )
    error = _error(text)
    assert error.code == "E404" and error.span.line == 3
    assert error.message.startswith("'s3.a' (conv)")
    assert len(error.errors) == 1, "layers after the failed one wait: one mistake, one message"


def test_an_open_network_input_is_e240():
    error = _error("network n {\n    input x: [1, ?, 8]\n    flatten f\n    x -> f\n}\n")
    assert error.code == "E240" and _at(error) == (2, 18)
    assert "input 'x' of network 'n' leaves its size open" in error.message
    assert "'input x: [1, 8, 8]'" in error.hint and "block" in error.hint
    error = _error("network n {\n    input x: ?\n    flatten f\n    x -> f\n}\n")
    assert error.code == "E240" and _at(error) == (2, 14)


def test_a_network_used_as_a_block_may_leave_its_input_open():
    text = (
        "network inner {\n    input x: [?]\n    dense y: 2\n    x -> y\n}\n"
        "network outer {\n    input x: 5\n    inner i\n    x -> i\n}\n"
    )
    outer = nnspec.loads(text, network="outer").program
    assert outer.layer("i.y").params["weight"].shape == (2, 5)
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text, network="inner")
    assert caught.value.code == "E240"


@pytest.mark.parametrize(
    "layer, at",
    [
        ("dense h: ?", (3, 14)),
        ("dense h: 4, act=?", (3, 21)),
        ("conv h: [?, 2]", (3, 14)),
        ("dropout h: ?", (3, 16)),
    ],
)
def test_an_open_size_outside_a_block_input_is_e241(layer, at):
    error = _error(f"network n {{\n    input x: 4\n    {layer}\n    x -> h\n}}\n")
    assert error.code == "E241" and _at(error) == at
    assert error.message == OPEN_ELSEWHERE


def test_an_open_steps_of_a_block_input_is_e241():
    text = (
        "block b() {\n    input x: ?, steps=?\n    relu r\n    x -> r\n}\n"
        "network n {\n    input x: 3\n    b u\n    x -> u\n}\n"
    )
    error = _error(text)
    assert error.code == "E241" and _at(error) == (2, 23)


def test_an_open_block_argument_is_e241_where_the_use_writes_it():
    error = _error(STAGE + "network n {\n    input x: [3, 8, 8]\n    stage s: ?\n    x -> s\n}\n")
    assert error.code == "E241" and _at(error) == (9, 14)


def test_an_open_value_in_a_train_section_is_e241():
    net = "network n {\n    input x: 4\n    dense y: 1\n    x -> y\n}\n"
    for setting, at in (("epochs = ?", (8, 14)), ("optimizer = adam(lr=?)", (8, 25))):
        error = _error(net + f"train {{\n    data = xor\n    {setting}\n}}\n")
        assert error.code == "E241" and _at(error) == at


def test_arithmetic_on_an_open_size_is_e222():
    error = _error("network n {\n    input x: 4\n    dense h: ? * 2\n    x -> h\n}\n")
    assert error.code == "E222" and _at(error) == (3, 14)
    assert error.message == "arithmetic needs numbers: '?' is an open size in '? * 2'"


def test_an_open_block_input_fed_by_nothing_is_e242():
    text = (
        "block pair() {\n    input x: ?\n    input y: [?]\n    add s\n    x, y -> s\n}\n"
        "network n {\n    input x: 4\n    pair p\n    x -> p.x\n}\n"
    )
    error = _error(text)
    assert error.code == "E242" and _at(error) == (3, 11)
    assert error.message.startswith("'p.y' (block input) leaves its size open ('?')")
    assert "'x -> p.y'" in error.hint


def test_a_block_input_without_any_size_is_still_e205():
    text = (
        "block b() {\n    input x\n    relu r\n    x -> r\n}\n"
        "network n {\n    input i: 3\n    b u\n    i -> u\n}\n"
    )
    assert _error(text).code == "E205"


def test_an_open_block_input_of_bad_dimensions_is_e207():
    text = (
        "block b() {\n    input x: [?, 0]\n    relu r\n    x -> r\n}\n"
        "network n {\n    input i: [2, 3]\n    b u\n    i -> u\n}\n"
    )
    error = _error(text)
    assert error.code == "E207" and _at(error) == (2, 14)
    assert "not [?, 0]" in error.message


# ---- the example: trains, and agrees across backends ------------------------------------------
@pytest.mark.slow
def test_the_example_trains_alike_on_both_backends(tmp_path: Path):
    text = EXAMPLE.read_text().replace("epochs    = 6", "epochs    = 1")
    source = tmp_path / "resnet_digits.nn"
    source.write_text(text)
    ours, theirs = assert_trains_alike(nnspec.load(source), tmp_path)
    assert len(ours) == len(theirs) == 1


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_example_meets_its_expectations_with_other_seeds(backend, seed, trained):
    """Seed 0 is tests/test_train.py's; the expectation holds for the others too."""
    result = trained(EXAMPLE, backend, seed=seed)
    assert result.passed, [(e.metric, e.wanted, e.reached) for e in result.expectations]


# ---- compiled: the checked program is all the compile targets read ---------------------------
COMPILED = [EXAMPLE, OK / "open_blocks_resnet.nn", OK / "open_blocks_any.nn"]


def _case(path: Path):
    """The spec's network with parameters drawn from seed 3, a float32 batch of 3 (4 steps)."""
    model = nnspec.load(path)
    params = initial_params(model.program, 3)
    x = {k: v.astype(np.float32) for k, v in spec_inputs(model.program, 3, 4, seed=5).items()}
    run = model.to_numpy()
    run.load(params)
    return model, params, x, run.eval()(**x)


@pytest.mark.slow
@pytest.mark.parametrize("path", COMPILED, ids=lambda p: p.stem)
def test_compiled_to_torch_equals_the_torch_backend(tmp_path: Path, path: Path):
    pytest.importorskip("torch")
    model, params, x, _ = _case(path)
    assert_compiled_torch_equals_to_torch(tmp_path, model, params, x)


@pytest.mark.slow
@pytest.mark.parametrize("path", COMPILED, ids=lambda p: p.stem)
def test_compiled_to_numpy_equals_the_numpy_backend(tmp_path: Path, path: Path):
    model, params, x, want = _case(path)
    (tmp_path / "net.py").write_bytes(emit(model, "numpy", params))
    save_file(params, str(tmp_path / "net.safetensors"))
    got = import_file(tmp_path / "net.py").load(tmp_path / "net.safetensors")(**x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("path", COMPILED, ids=lambda p: p.stem)
def test_compiled_to_onnx_equals_the_numpy_backend(path: Path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, params, x, want = _case(path)
    data = emit(model, "onnx", params)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
