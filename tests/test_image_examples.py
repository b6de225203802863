"""The three image examples that issue 16 asked for: a U-Net (examples/unet.nn), a convolutional
autoencoder (examples/conv_autoencoder.nn) and a DCGAN (examples/dcgan.nn). Each is written again
by hand in PyTorch here: the same parameter count, the same state_dict keys and shapes, and, with
nnspec's parameters loaded, the same outputs as both backends; each trains alike on both backends
(float64, one epoch) and compiles to the three targets, each equal to its backend. That they meet
their `expect` lines on both backends is tests/test_train.py's job, as for every example.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    EXAMPLES,
    assert_compiled_torch_equals_to_torch,
    assert_trains_alike,
    import_file,
)
from safetensors.numpy import save_file

import nnspec
from nnspec.backends.init import initial_params
from nnspec.compile import emit

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class UNet(nn.Module):
    """examples/unet.nn by hand: the dropout that corrupts the input acts in training only."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(1, 8, 3, padding=1)
        self.deep = nn.Conv2d(8, 16, 3, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.mix = nn.Conv2d(16, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 1, 1)

    def forward(self, image):
        down = torch.relu(self.down(F.dropout(image, 0.25, self.training)))
        deep = torch.relu(self.deep(F.max_pool2d(down, 2)))
        up = torch.relu(self.up(deep))
        return torch.sigmoid(self.out(torch.relu(self.mix(torch.cat([up, down], 1)))))


class ConvAutoencoder(nn.Module):
    """examples/conv_autoencoder.nn by hand."""

    def __init__(self):
        super().__init__()
        self.e1 = nn.Conv2d(1, 8, 3, padding=1)
        self.e2 = nn.Conv2d(8, 16, 3, padding=1)
        self.code = nn.Linear(16 * 4 * 4, 16)
        self.grow = nn.Linear(16, 128)
        self.d1 = nn.Conv2d(8, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, image):
        x = torch.relu(self.e2(F.max_pool2d(torch.relu(self.e1(image)), 2)))
        code = torch.relu(self.code(x.flatten(1)))
        small = torch.relu(self.grow(code)).reshape(-1, 8, 4, 4)
        big = F.interpolate(small, scale_factor=2, mode="nearest")
        return torch.sigmoid(self.out(torch.relu(self.d1(big))))


class Generator(nn.Module):
    """examples/dcgan.nn's generator by hand."""

    def __init__(self):
        super().__init__()
        self.seed = nn.Linear(16, 64, bias=False)
        self.n0 = nn.BatchNorm2d(16)
        self.up1 = nn.ConvTranspose2d(16, 16, 4, stride=2, padding=1, bias=False)
        self.n1 = nn.BatchNorm2d(16)
        self.up2 = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, bias=False)
        self.n2 = nn.BatchNorm2d(8)
        self.image = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, noise):
        x = torch.relu(self.n0(self.seed(noise).reshape(-1, 16, 2, 2)))
        x = torch.relu(self.n2(self.up2(torch.relu(self.n1(self.up1(x))))))
        return torch.sigmoid(self.image(x))


class Discriminator(nn.Module):
    """examples/dcgan.nn's discriminator by hand."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 4, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 16, 4, stride=2, padding=1)
        self.real = nn.Linear(16 * 2 * 2, 1)

    def forward(self, image):
        x = F.leaky_relu(self.c2(F.leaky_relu(self.c1(image), 0.2)), 0.2)
        return torch.sigmoid(self.real(x.flatten(1)))


# file, network, the module by hand, its parameter count, the input's shape
CASES = [
    ("unet", "unet", UNet, 2_937, (1, 8, 8)),
    ("conv_autoencoder", "conv_autoencoder", ConvAutoencoder, 8_193, (1, 8, 8)),
    ("dcgan", "generator", Generator, 7_321, (16,)),
    ("dcgan", "discriminator", Discriminator, 2_265, (1, 8, 8)),
]
IDS = [f"{file}:{network}" for file, network, *_ in CASES]


@pytest.mark.parametrize("file, network, module, count, shape", CASES, ids=IDS)
def test_the_count_and_the_state_dict_are_the_hand_written_modules(
    file, network, module, count, shape
):
    program = nnspec.load(EXAMPLES / f"{file}.nn", network).program
    by_hand = module()
    assert program.param_count == sum(p.numel() for p in by_hand.parameters()) == count
    theirs = {k: tuple(v.shape) for k, v in by_hand.state_dict().items()}
    assert {k: p.shape for k, p in program.parameters().items()} == theirs


@pytest.mark.parametrize("file, network, module, count, shape", CASES, ids=IDS)
def test_both_backends_compute_what_the_hand_written_module_does(
    file, network, module, count, shape
):
    """nnspec's parameters loaded into the module by hand: the same outputs in evaluation mode
    (float64), from the torch backend and from the NumPy backend."""
    model = nnspec.load(EXAMPLES / f"{file}.nn", network)
    params = initial_params(model.program, 7, np.float64)
    (name,) = model.program.inputs
    x = np.random.default_rng(8).random((5, *shape))
    by_hand = module().double().eval()
    by_hand.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    net = model.to_torch(dtype="float64").eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    run = model.to_numpy(dtype="float64")
    run.load(params)
    with torch.no_grad():
        want = by_hand(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(net(**{name: torch.from_numpy(x)}).numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(run.eval()(**{name: x}), want, rtol=1e-10, atol=1e-12)


# ---- trains alike on both backends -----------------------------------------------------------
def _one_epoch(file: str) -> str:
    text = (EXAMPLES / f"{file}.nn").read_text()
    assert text.count("epochs ") == 1
    return "\n".join(
        "    epochs = 1" if line.strip().startswith("epochs ") else line
        for line in text.splitlines()
    )


@pytest.mark.slow
@pytest.mark.parametrize("file", ["unet", "conv_autoencoder"])
def test_an_epoch_trains_alike_on_both_backends(file, tmp_path):
    # each backend draws its dropout masks from its own generator: the U-Net's corruption is
    # turned off here, so both runs see the same inputs
    text = _one_epoch(file).replace("dropout noisy: 0.25", "dropout noisy: 0.0")
    assert "0.25" not in text
    ours, theirs = assert_trains_alike(nnspec.loads(text), tmp_path)
    assert len(ours) == len(theirs) == 1


@pytest.mark.slow
def test_the_dcgan_trains_alike_on_both_backends(tmp_path):
    text = _one_epoch("dcgan")
    models = [nnspec.loads(text, "generator"), nnspec.loads(text, "discriminator")]
    ours, theirs = assert_trains_alike(models[0], tmp_path, models)
    assert len(ours) == len(theirs) == 1 and {"loss", "g_loss"} <= set(ours[0])


# ---- compiled ---------------------------------------------------------------------------------
def _case(file: str, network: str, shape: tuple[int, ...]):
    model = nnspec.load(EXAMPLES / f"{file}.nn", network)
    params = initial_params(model.program, 3)
    (name,) = model.program.inputs
    x = np.random.default_rng(5).random((3, *shape)).astype(np.float32)
    return model, params, {name: x}


def _numpy_backend(model, params, x):
    run = model.to_numpy()
    run.load(params)
    return run.eval()(**x)


@pytest.mark.slow
@pytest.mark.parametrize("file, network, module, count, shape", CASES, ids=IDS)
def test_compiled_to_torch_equals_the_torch_backend(tmp_path, file, network, module, count, shape):
    model, params, x = _case(file, network, shape)
    assert_compiled_torch_equals_to_torch(tmp_path, model, params, x)


@pytest.mark.slow
@pytest.mark.parametrize("file, network, module, count, shape", CASES, ids=IDS)
def test_compiled_to_numpy_equals_the_numpy_backend(tmp_path, file, network, module, count, shape):
    model, params, x = _case(file, network, shape)
    (tmp_path / "net.py").write_bytes(emit(model, "numpy", params))
    save_file(params, str(tmp_path / "net.safetensors"))
    got = import_file(tmp_path / "net.py").load(tmp_path / "net.safetensors")(**x)
    np.testing.assert_allclose(got, _numpy_backend(model, params, x), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("file, network, module, count, shape", CASES, ids=IDS)
def test_compiled_to_onnx_equals_the_numpy_backend(file, network, module, count, shape):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, params, x = _case(file, network, shape)
    data = emit(model, "onnx", params)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, x)
    np.testing.assert_allclose(got, _numpy_backend(model, params, x), rtol=1e-5, atol=1e-5)
