"""Devices (`--device cpu|cuda|cuda:N|mps`): a device that is not there is a clear error (R334),
not a failure inside torch; the NumPy backend computes on the CPU only (R330); settings.json
records where a run computed. On a machine with a CUDA GPU, every spec's outputs and gradients
there equal the CPU's, and a network trains there (skipped elsewhere)."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT, SPECS, TEST_SPECS, spec_inputs

import nnspec
from nnspec.backends.devices import DeviceError, check_name
from nnspec.cli import main

torch = pytest.importorskip("torch")

CUDA = torch.cuda.is_available()
MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
XOR = EXAMPLES / "xor.nn"
CLEAN = (
    sorted(EXAMPLES.glob("*.nn"))
    + sorted(SPECS.glob("*.nn"))
    + sorted((TEST_SPECS / "ok").glob("*.nn"))
)


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_the_forms_of_a_device_are_taken(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "mps:0", "cpu:1", "CUDA", ""])
def test_anything_else_is_no_device(name):
    with pytest.raises(DeviceError) as raised:
        check_name(name)
    assert raised.value.code == "R334"
    assert raised.value.message == f"'{name}' is not a device"
    assert (
        raised.value.hint
        == "give cpu, cuda, cuda:N (N a GPU's number) or mps, or leave --device out"
    )


def test_the_command_line_refuses_a_name_that_is_no_device(capsys):
    assert main(["train", str(XOR), "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "argument --device: 'gpu' is not a device: give cpu, cuda, cuda:N" in err


@pytest.mark.skipif(CUDA, reason="this machine has a CUDA GPU")
def test_cuda_where_there_is_none_is_r334(tmp_path, capsys):
    assert main(["train", str(XOR), "--out", str(tmp_path / "r"), "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert (
        f"error[R334]: device 'cuda' is not there: this machine's torch {torch.__version__}" in err
    )
    assert (
        "hint: train on the CPU (--device cpu), or leave --device out for the best available" in err
    )
    assert not (tmp_path / "r").exists()
    with pytest.raises(DeviceError, match="device 'cuda:1' is not there"):
        nnspec.load(XOR).to_torch(device="cuda:1")


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_a_gpu_past_the_last_is_r334():
    count = torch.cuda.device_count()
    with pytest.raises(DeviceError) as raised:
        nnspec.load(XOR).to_torch(device=f"cuda:{count}")
    assert f"this machine has {count} CUDA GPU" in raised.value.message
    assert raised.value.hint.startswith(f"give a number below {count}")


@pytest.mark.skipif(MPS, reason="this machine has mps")
def test_mps_where_there_is_none_is_r334():
    with pytest.raises(DeviceError) as raised:
        nnspec.load(XOR).to_torch(device="mps")
    assert raised.value.message.startswith("device 'mps' is not there: it needs an Apple silicon")


def test_the_numpy_backend_computes_on_the_cpu_only(tmp_path, capsys):
    out = tmp_path / "r"
    assert (
        main(["train", str(XOR), "--out", str(out), "--backend", "numpy", "--device", "cuda"]) == 1
    )
    err = capsys.readouterr().err
    assert "error[R330]: the numpy backend computes on the CPU only, not on 'cuda'" in err
    assert "hint: train with --backend torch on cuda, or leave --device out" in err
    result = nnspec.train(XOR, "numpy", out, epochs=2, device="cpu")
    assert json.loads(result.paths["settings"].read_text())["device"] == "cpu"


def test_settings_record_the_device_and_predict_takes_one(tmp_path, capsys):
    result = nnspec.train(XOR, "torch", tmp_path / "r", epochs=3)
    settings = json.loads(result.paths["settings"].read_text())
    assert settings["device"] == ("cuda:0" if CUDA else "mps:0" if MPS else "cpu")
    assert "procs" not in settings  # one process
    examples = tmp_path / "x.csv"
    examples.write_text("x[0],x[1]\n0,1\n1,1\n")
    weights = str(result.paths["weights"])
    command = ["predict", str(XOR), "--weights", weights, "--input", str(examples)]
    assert main([*command, "--device", "cpu"]) == 0
    on_cpu = capsys.readouterr().out
    assert main([*command, "--backend", "numpy"]) == 0
    assert capsys.readouterr().out == on_cpu
    if not CUDA:
        assert main([*command, "--device", "cuda"]) == 1
        assert "error[R334]: device 'cuda' is not there" in capsys.readouterr().err


# ---- on a GPU -----------------------------------------------------------------------------------
def _run(net, inputs):
    y = net(**inputs)
    outputs = y if isinstance(y, dict) else {"y": y}
    total = sum(v.sum() for v in outputs.values())
    if total.requires_grad:
        total.backward()
    grads = {k: p.grad for k, p in net.named_parameters() if p.grad is not None}
    return {k: v.detach().cpu() for k, v in outputs.items()}, {k: g.cpu() for k, g in grads.items()}


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("path", CLEAN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_computes_on_the_gpu_as_on_the_cpu(path: Path):
    for model in nnspec.load_all(path):
        inputs = {k: torch.from_numpy(v) for k, v in spec_inputs(model.program, 3, 5, 0).items()}
        torch.manual_seed(0)
        cpu = model.to_torch(dtype="float64").eval()
        torch.manual_seed(1)
        again = model.to_torch(dtype="float64").eval()
        y_cpu, g_cpu = _run(cpu, inputs)
        if any(not torch.equal(y_cpu[k], v) for k, v in _run(again, inputs)[0].items()):
            continue  # a network that draws random numbers as it runs: no two runs agree
        gpu = model.to_torch(dtype="float64", device="cuda").eval()
        y_gpu, g_gpu = _run(gpu, {k: v.to("cuda") for k, v in inputs.items()})
        assert y_gpu.keys() == y_cpu.keys() and g_gpu.keys() == g_cpu.keys()
        for k in y_cpu:
            np.testing.assert_allclose(y_gpu[k], y_cpu[k], rtol=1e-6, atol=1e-8, err_msg=k)
        for k in g_cpu:
            np.testing.assert_allclose(g_gpu[k], g_cpu[k], rtol=1e-6, atol=1e-8, err_msg=k)


@pytest.mark.slow
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_a_network_trains_on_the_gpu_as_on_the_cpu(tmp_path):
    lenet = EXAMPLES / "lenet.nn"
    gpu = nnspec.train(lenet, out=tmp_path / "gpu", epochs=3, device="cuda")
    cpu = nnspec.train(lenet, out=tmp_path / "cpu", epochs=3, device="cpu")
    assert json.loads(gpu.paths["settings"].read_text())["device"] == "cuda:0"
    assert gpu.metrics["accuracy"] > 0.8
    assert gpu.metrics["accuracy"] == pytest.approx(cpu.metrics["accuracy"], abs=0.05)
    # it resumes on the CPU from the GPU's checkpoint
    on = nnspec.train(lenet, out=tmp_path / "gpu", resume=True, epochs=4, device="cpu")
    assert on.history[-1]["epoch"] == 4
