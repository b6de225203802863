"""Feature standardisation, `normalize = true` (issue 16, item 7): each input feature's mean and
deviation from the training split alone, saved with the run, applied to training's evaluation,
by `nnspec predict` and by the compiled files."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, EXAMPLES, import_file

import nnspec
from nnspec.backends.init import initial_params
from nnspec.compile import compile_model
from nnspec.data import load_data
from nnspec.data.standardise import decode, encode, recorded_statistics, statistics
from nnspec.training import train
from nnspec.training.predict import predict

SPEC = """\
network n {
    input x: 3
    dense h: 6, act=tanh
    dense y: 2, act=softmax
    x -> h -> y
}
train {
    data      = npz("DATA")
    SETTINGS
    optimizer = adam(lr=0.05)
    batch     = 8
    epochs    = 5
}
"""


def _arrays(count: int = 40):
    """x `[count, 3]` on very different scales (the last feature constant), y from the first."""
    rng = np.random.default_rng(7)
    x = np.stack(
        [rng.normal(100, 20, count), rng.normal(-3, 0.01, count), np.full(count, 5.0)], axis=1
    ).astype(np.float32)
    return x, (x[:, 0] > 100).astype(np.int64)


def _spec(folder: Path, settings: str, data: str = "d.npz") -> Path:
    path = folder / f"{Path(data).stem}.nn"
    path.write_text(SPEC.replace("DATA", data).replace("SETTINGS", settings))
    return path


def _load(path: Path):
    model = nnspec.load(path)
    return load_data(model.train_spec, model.program)


def test_the_statistics_come_from_the_training_split_alone(tmp_path):
    x, y = _arrays()
    x[::4, 0] += (
        1000  # a quarter of the rows far off: the mean of all rows is not the training one's
    )
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = _load(_spec(tmp_path, "normalize = true\n    split = 0.5"))
    mean, std = data.info["normalize"]["x"]
    train_rows = data.train.inputs["x"] * std + mean  # the raw training rows, back
    matched = [np.flatnonzero(np.abs(x - row).max(axis=1) < 1e-2) for row in train_rows]
    assert all(len(m) == 1 for m in matched)
    index = np.concatenate(matched)
    raw = x[index].astype(np.float64)
    np.testing.assert_allclose(mean, raw.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std[:2], raw.std(axis=0)[:2], rtol=1e-6)
    assert not np.allclose(mean[0], x[:, 0].mean(), rtol=1e-3)  # the held-out rows were not used
    held_out = np.setdiff1d(np.arange(len(x)), index)
    expected = (x[held_out] - mean) / std
    np.testing.assert_array_equal(data.test.inputs["x"], expected.astype(np.float32))
    # the training part is standardised: mean 0 and deviation 1 for the features that vary
    np.testing.assert_allclose(data.train.inputs["x"][:, :2].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.train.inputs["x"][:, :2].std(axis=0), 1, atol=1e-5)


def test_a_constant_feature_is_only_centred(tmp_path):
    x, y = _arrays()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = _load(_spec(tmp_path, "normalize = true"))
    mean, std = data.info["normalize"]["x"]
    assert mean[2] == 5.0 and std[2] == 1.0
    np.testing.assert_array_equal(data.train.inputs["x"][:, 2], 0.0)


def test_without_normalize_nothing_changes(tmp_path):
    x, y = _arrays()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = _load(_spec(tmp_path, "split = 0.25"))
    assert "normalize" not in data.info
    both = np.concatenate([data.train.inputs["x"], data.test.inputs["x"]])
    np.testing.assert_array_equal(np.sort(both, axis=0), np.sort(x, axis=0))


def test_a_sequence_is_standardised_over_its_examples_and_steps():
    program = nnspec.loads(
        "network s {\n    input x: 2, seq\n    rnn r: 3\n    output r: last\n    x -> r\n}\n"
    ).program
    x = np.random.default_rng(0).normal(4, 3, (10, 6, 2)).astype(np.float32)
    mean, std = statistics({"x": x}, np.arange(10), program)["x"]
    assert mean.shape == (2,)
    np.testing.assert_allclose(mean, x.reshape(-1, 2).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(std, x.reshape(-1, 2).std(axis=0), rtol=1e-5)


def test_the_recorded_statistics_read_back_exactly():
    mean = np.array([[1 / 3, -2e-8], [7.5, 1e30]], np.float32)
    std = np.array([[0.1, 1], [3, 2.5]], np.float32)
    ((m, s),) = decode(encode({"x": (mean, std)})).values()
    np.testing.assert_array_equal(m, mean)
    np.testing.assert_array_equal(s, std)
    assert decode("not json") == {} and decode('{"x": 3}') == {}


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_it_trains_as_the_same_network_on_standardised_data(tmp_path, backend):
    x, y = _arrays()
    np.savez(tmp_path / "raw.npz", x=x, y=y)
    raw = x.astype(np.float64)
    std = raw.std(axis=0)
    mean32, std32 = (
        raw.mean(axis=0).astype(np.float32),
        np.where(std > 0, std, 1).astype(np.float32),
    )
    np.savez(tmp_path / "ready.npz", x=(x - mean32) / std32, y=y)
    ours = train(_spec(tmp_path, "normalize = true", "raw.npz"), backend, tmp_path / "a")
    theirs = train(_spec(tmp_path, "seed = 0", "ready.npz"), backend, tmp_path / "b")
    assert ours.history == theirs.history
    assert recorded_statistics(ours.paths["weights"])["x"][0].tolist() == mean32.tolist()
    # predict takes the raw examples and answers as the other network does on standardised ones
    np.savez(tmp_path / "in_raw.npz", x=x)
    np.savez(tmp_path / "in_ready.npz", x=(x - mean32) / std32)
    mine = predict(tmp_path / "raw.nn", ours.paths["weights"], tmp_path / "in_raw.npz", backend)
    other = predict(
        tmp_path / "ready.nn", theirs.paths["weights"], tmp_path / "in_ready.npz", backend
    )
    np.testing.assert_array_equal(mine["y"], other["y"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_and_compiled_files_answer_as_training_evaluated(tmp_path, backend):
    x, y = _arrays()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    path = _spec(tmp_path, "normalize = true\n    split = 0.25\n    metrics = [loss, accuracy]")
    result = train(path, backend, tmp_path / "run")
    weights = result.paths["weights"]
    data = _load(path)  # the held-out examples, standardised as training evaluated them
    mean, std = data.info["normalize"]["x"]
    held_out = data.test.inputs["x"] * std + mean  # back to raw: predict standardises them again
    np.savez(tmp_path / "in.npz", x=held_out)
    p = predict(path, weights, tmp_path / "in.npz", backend)["y"]
    loss = -np.mean(np.log(p[np.arange(len(p)), data.test.targets]))
    assert loss == pytest.approx(result.metrics["loss"], rel=1e-4, abs=1e-6)
    accuracy = np.mean(p.argmax(axis=1) == data.test.targets)
    assert accuracy == pytest.approx(result.metrics["accuracy"])
    model = nnspec.load(path)
    for target in ("torch", "numpy", "onnx"):
        if target == "onnx":
            ort = pytest.importorskip("onnxruntime")
        written = model.compile(
            target, tmp_path / target / f"n{'.onnx' if target == 'onnx' else '.py'}", weights
        )
        if target == "onnx":
            session = ort.InferenceSession(str(written[0]), providers=["CPUExecutionProvider"])
            got = session.run(None, {"x": held_out.astype(np.float32)})[0]
        else:
            module = import_file(written[0], f"normalized_{target}_{backend}")
            net = module.load()
            if target == "torch":
                import torch

                with torch.no_grad():
                    got = net(torch.from_numpy(held_out.astype(np.float32))).numpy()
            else:
                got = net(held_out.astype(np.float32))
        np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-6, err_msg=target)


def test_compile_without_statistics_is_unchanged(tmp_path):
    model = nnspec.loads("network n {\n    input x: 3\n    dense y: 2\n    x -> y\n}\n")
    plain = compile_model(model, "numpy", tmp_path / "a.py")[0].read_bytes()
    assert b"standardis" not in plain


@pytest.mark.slow
@pytest.mark.parametrize("target", ["torch", "numpy", "onnx"])
def test_compiled_files_standardise_every_value_of_an_image(tmp_path, target):
    model = nnspec.load(EXAMPLES / "lenet.nn")
    rng = np.random.default_rng(3)
    shape = model.program.layer("image").shape.dims
    stats = {
        "image": (
            rng.normal(0.3, 0.1, shape).astype(np.float32),
            rng.uniform(0.1, 2, shape).astype(np.float32),
        )
    }
    name = f"lenet{'.onnx' if target == 'onnx' else '.py'}"
    written = compile_model(model, target, tmp_path / name, None, stats)
    x = rng.uniform(0, 1, (5, *shape)).astype(np.float32)
    run = model.to_numpy()
    run.load(initial_params(model.program, 0))
    expected = run.eval()(image=(x - stats["image"][0]) / stats["image"][1])
    if target == "onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(written[0]), providers=["CPUExecutionProvider"])
        got = session.run(None, {"image": x})[0]
    else:
        ruff = subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--check", str(written[0])],
            capture_output=True,
            text=True,
        )
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr
        net = import_file(written[0], f"lenet_standardised_{target}").load()
        if target == "torch":
            import torch

            with torch.no_grad():
                got = net(torch.from_numpy(x)).numpy()
        else:
            got = net(x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_weights_without_the_statistics_of_a_normalized_run_are_refused(tmp_path):
    from safetensors.numpy import save_file

    from nnspec.data.standardise import NORMALIZE

    x, y = _arrays()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    np.savez(tmp_path / "in.npz", x=x[:3])
    path = _spec(tmp_path, "normalize = true")
    model = nnspec.load(path)
    params = initial_params(model.program, 0)
    save_file(params, tmp_path / "bare.safetensors")  # a checkpoint records none either
    wrong = encode({"z": (np.zeros(3, np.float32), np.ones(3, np.float32))})
    save_file(params, tmp_path / "wrong.safetensors", {NORMALIZE: wrong})
    for weights, message in [
        ("bare.safetensors", "records no standardisation, but network 'n' is trained with"),
        ("wrong.safetensors", "records a standardisation of input 'z' [3]"),
    ]:
        with pytest.raises(nnspec.SpecError) as caught:
            predict(path, tmp_path / weights, tmp_path / "in.npz", "numpy")
        assert caught.value.code == "E505" and message in caught.value.message
        assert caught.value.span is None and caught.value.hint
        with pytest.raises(nnspec.SpecError) as caught:
            model.compile("numpy", tmp_path / "out.py", tmp_path / weights)
        assert caught.value.code == "E505" and message in caught.value.message
    assert not (tmp_path / "out.py").exists()
