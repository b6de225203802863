"""Shared weights (`shares=`) and tied weights (`tied=`): parameter counts against the same
models written in PyTorch, gradients of every use adding up on both backends, the owner's names
in state_dict and weights files, training, predict and resume, the drawing, the three compile
targets, and the errors E230-E236."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EXAMPLES, ROOT, TEST_SPECS, assert_trains_alike, import_file, spec_inputs
from safetensors.numpy import load_file
from torch import nn

import nnspec

SIAMESE = TEST_SPECS / "ok" / "siamese.nn"
SHARED = TEST_SPECS / "ok" / "shared_weights.nn"
TIED = EXAMPLES / "tied_autoencoder.nn"


class TorchSiamese(nn.Module):
    """tests/specs/ok/siamese.nn by hand: one encoder called on both digits."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
        self.same = nn.Linear(32, 1)

    def forward(self, a, b):
        return torch.sigmoid(self.same(torch.cat([self.encoder(a), self.encoder(b)], -1)))

    def from_spec(self, state: dict) -> TorchSiamese:
        names = {"0": "ea.h", "2": "ea.z"}
        with torch.no_grad():
            for name, p in self.encoder.named_parameters():
                layer, key = name.split(".")
                p.copy_(torch.as_tensor(np.asarray(state[f"{names[layer]}.{key}"])))
            self.same.weight.copy_(torch.as_tensor(np.asarray(state["same.weight"])))
            self.same.bias.copy_(torch.as_tensor(np.asarray(state["same.bias"])))
        return self


class TorchTied(nn.Module):
    """examples/tied_autoencoder.nn by hand: the decoder is F.linear with the encoder's W.T."""

    def __init__(self):
        super().__init__()
        self.enc, self.code = nn.Linear(64, 32), nn.Linear(32, 16)
        self.back_bias, self.out_bias = nn.Parameter(torch.zeros(32)), nn.Parameter(torch.zeros(64))

    def forward(self, x):
        code = self.code(torch.relu(self.enc(x)))
        back = torch.relu(nn.functional.linear(code, self.code.weight.t(), self.back_bias))
        return torch.sigmoid(nn.functional.linear(back, self.enc.weight.t(), self.out_bias))


# ---- parameter counts ---------------------------------------------------------------------------
def test_a_siamese_pair_has_the_parameter_count_of_the_same_model_in_pytorch():
    model = nnspec.load(SIAMESE)
    theirs = sum(p.numel() for p in TorchSiamese().parameters())
    assert theirs == 2_641
    assert model.program.param_count == model.program.trainable_count == theirs
    assert sum(p.numel() for p in model.to_torch().parameters()) == theirs
    assert sum(a.size for a in model.to_numpy().params.values()) == theirs
    assert "Total params: 2,641" in model.summary()
    assert "shares ea.h" in model.summary()


def test_the_bundled_siamese_has_the_parameter_count_of_the_same_model_in_pytorch():
    """examples/siamese.nn: the codes, their product, a hidden layer and the answer."""
    encoder = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
    head = nn.Sequential(nn.Linear(3 * 16, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
    theirs = sum(p.numel() for m in (encoder, head) for p in m.parameters())
    assert nnspec.load(EXAMPLES / "siamese.nn").program.param_count == theirs == 3_409


def test_the_budget_counts_a_shared_tensor_once():
    text = SIAMESE.read_text()
    nnspec.loads(text, max_params=2_641)  # counted twice it would be 5,249
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text, max_params=2_640)
    assert caught.value.code == "E406"


def test_a_tied_autoencoder_has_the_parameter_count_of_the_same_model_in_pytorch():
    model = nnspec.load(TIED)
    theirs = sum(p.numel() for p in TorchTied().parameters())
    assert model.program.param_count == theirs == 2_704
    assert "64 + enc.weight.T" in model.summary()


def test_state_dict_keys_are_the_owners():
    model = nnspec.load(SIAMESE)
    keys = ["ea.h.weight", "ea.h.bias", "ea.z.weight", "ea.z.bias", "same.weight", "same.bias"]
    assert list(model.to_torch().state_dict()) == keys
    assert list(model.to_numpy().params) == keys
    assert list(model.program.parameters()) == keys
    tied = ["enc.weight", "enc.bias", "code.weight", "code.bias", "back.bias", "out.bias"]
    assert list(nnspec.load(TIED).to_torch().state_dict()) == tied


def test_chains_through_a_shared_block_end_at_the_owner():
    """A block shared whose layers share and tie inside it: every borrowed tensor is named by
    the layer that holds it, and a tie through a shared tied layer stays transposed."""
    program = nnspec.load(SHARED, "nested").program
    cb = {key: (b.name, b.transposed) for key, b in program.layer("cb.dec").borrowed.items()}
    assert cb == {"weight": ("ca.enc.weight", True), "bias": ("ca.dec.bias", False)}
    assert program.layer("cb.enc2").shares == "ca.enc"
    assert list(program.parameters()) == ["ca.enc.weight", "ca.enc.bias", "ca.dec.bias"]


# ---- gradients ----------------------------------------------------------------------------------
def _bce(y, target):
    return torch.nn.functional.binary_cross_entropy(y, target)


def test_gradients_of_both_uses_add_up_as_in_a_hand_written_siamese():
    model = nnspec.load(SIAMESE)
    net, run = model.to_torch(seed=3, dtype="float64"), model.to_numpy(seed=3, dtype="float64")
    theirs = TorchSiamese().double().from_spec(run.params)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 64)), rng.normal(size=(6, 64))
    target = torch.as_tensor(rng.integers(0, 2, (6, 1)).astype(float))
    ours_y, theirs_y = (
        net(torch.as_tensor(a), torch.as_tensor(b)),
        theirs(torch.as_tensor(a), torch.as_tensor(b)),
    )
    _bce(ours_y, target).backward()
    _bce(theirs_y, target).backward()
    y = run(a, b)
    np.testing.assert_allclose(y, theirs_y.detach().numpy(), rtol=1e-12)
    dy = (y - target.numpy()) / (y * (1 - y)) / y.size  # d BCE / d y
    grads = run.backward(dy, inputs=False)
    hand = dict(theirs.named_parameters())
    names = {"ea.h": "encoder.0", "ea.z": "encoder.2", "same": "same"}
    for name, p in net.named_parameters():
        layer, _, key = name.rpartition(".")
        want = hand[f"{names[layer]}.{key}"].grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), want, rtol=1e-10, atol=1e-14, err_msg=name)
        np.testing.assert_allclose(grads[name], want, rtol=1e-10, atol=1e-14, err_msg=name)
    # the encoder's gradient is the sum of both uses: neither use alone gives it
    one = TorchSiamese().double().from_spec(run.params)
    za = one.encoder(torch.as_tensor(a))
    _bce(
        torch.sigmoid(one.same(torch.cat([za, one.encoder(torch.as_tensor(b)).detach()], -1))),
        target,
    ).backward()
    assert not np.allclose(one.encoder[0].weight.grad.numpy(), hand["encoder.0.weight"].grad)


def test_a_tied_decoder_matches_the_hand_written_one_after_a_step():
    model = nnspec.load(TIED)
    net, run = model.to_torch(seed=1, dtype="float64"), model.to_numpy(seed=1, dtype="float64")
    theirs = TorchTied().double()
    with torch.no_grad():
        for name, value in {
            "enc.weight": "enc.weight",
            "enc.bias": "enc.bias",
            "code.weight": "code.weight",
            "code.bias": "code.bias",
            "back.bias": "back_bias",
            "out.bias": "out_bias",
        }.items():
            theirs.get_parameter(value).copy_(torch.as_tensor(run.params[name]))
    x = torch.as_tensor(np.random.default_rng(1).random((5, 64)))
    for module in (net, theirs):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
        _bce(module(x), x).backward()
        optimizer.step()
    y = run(x.numpy())
    grads = run.backward((y - x.numpy()) / (y * (1 - y)) / y.size, inputs=False)
    stepped = {n: run.params[n] - 0.5 * g for n, g in grads.items()}
    hand = {"back.bias": "back_bias", "out.bias": "out_bias"}
    for name, p in net.state_dict().items():
        want = theirs.get_parameter(hand.get(name, name)).detach().numpy()
        np.testing.assert_allclose(p.numpy(), want, rtol=1e-12, atol=1e-14, err_msg=name)
        np.testing.assert_allclose(stepped[name], want, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("network", ["nested", "tokens", "sequences", "images"])
def test_every_form_of_sharing_agrees_on_both_backends(network):
    model = nnspec.load(SHARED, network)
    net, run = model.to_torch(seed=2, dtype="float64"), model.to_numpy(seed=2, dtype="float64")
    inputs = spec_inputs(model.program, batch=4)
    y = run(**inputs)
    got = net(**{k: torch.as_tensor(v) for k, v in inputs.items()})
    np.testing.assert_allclose(got.detach().numpy(), y, rtol=1e-10, atol=1e-12)
    seed = np.random.default_rng(5).normal(size=y.shape)
    (got * torch.as_tensor(seed)).sum().backward()
    grads = run.backward(seed, inputs=False)
    assert set(grads) == {n for n, p in net.named_parameters()}
    for name, p in net.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads[name], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.slow
def test_a_siamese_pair_trains_alike_on_both_backends(tmp_path):
    digits = np.load(EXAMPLES.parent / "nnspec" / "data" / "digits.npz")
    images, labels = digits["images"].reshape(-1, 64) / 16.0, digits["labels"]
    rng = np.random.default_rng(0)
    first, second = rng.integers(0, len(labels), (2, 400))
    np.savez(
        tmp_path / "pairs.npz",
        a=images[first],
        b=images[second],
        same=(labels[first] == labels[second]).astype(np.float32)[:, None],
    )
    spec = tmp_path / "siamese.nn"
    spec.write_text(
        SIAMESE.read_text()
        + '\ntrain {\n    data = npz("pairs.npz")\n    loss = bce\n    optimizer = adam(lr=1e-2)\n'
        "    batch = 64\n    epochs = 3\n    seed = 0\n}\n"
    )
    ours, _ = assert_trains_alike(nnspec.load(spec), tmp_path)
    assert ours[-1]["loss"] < ours[0]["loss"]


@pytest.mark.slow
def test_a_tied_autoencoder_trains_alike_on_both_backends(tmp_path):
    spec = tmp_path / "tied.nn"
    spec.write_text(TIED.read_text().replace("epochs    = 100", "epochs    = 2"))
    assert_trains_alike(nnspec.load(spec), tmp_path)


# ---- weights files, predict, resume -----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_weights_predict_and_resume_use_the_owners_names(backend, tmp_path):
    spec = tmp_path / "tied.nn"
    spec.write_text(TIED.read_text().replace("epochs    = 100", "epochs    = 2"))
    nnspec.train(spec, backend, tmp_path / "run")
    weights = tmp_path / "run" / "weights.safetensors"
    assert sorted(load_file(weights)) == sorted(nnspec.load(spec).program.parameters())
    again = nnspec.train(spec, backend, tmp_path / "run", resume=True, epochs=3)
    assert [row["epoch"] for row in again.history][-1] == 3
    np.savez(tmp_path / "x.npz", x=np.full((2, 64), 0.5, np.float32))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnspec",
            "predict",
            str(spec),
            "--weights",
            str(weights),
            "--input",
            str(tmp_path / "x.npz"),
            "-o",
            str(tmp_path / "y.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    run = nnspec.load(spec).to_numpy()
    run.load(load_file(weights))
    np.testing.assert_allclose(
        np.load(tmp_path / "y.npz")["out"], run.eval()(np.full((2, 64), 0.5)), rtol=1e-5, atol=1e-6
    )


# ---- drawing and compiling --------------------------------------------------------------------
def test_the_drawing_draws_both_uses(tmp_path):
    """A sharer is drawn as the layer it is: the diagram is the one of the same network with
    two encoders of their own."""
    model = nnspec.load(SIAMESE)
    unshared = nnspec.loads(SIAMESE.read_text().replace(": shares=ea", ""))
    assert unshared.program.param_count > model.program.param_count
    model.draw(tmp_path / "siamese.png")
    assert (tmp_path / "siamese.png").stat().st_size > 1000
    model.draw(tmp_path / "shared.svg")
    unshared.draw(tmp_path / "unshared.svg")
    assert (tmp_path / "shared.svg").read_bytes() == (tmp_path / "unshared.svg").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("target", ["torch", "numpy"])
@pytest.mark.parametrize(
    "spec, network",
    [(SIAMESE, None), (TIED, None)]
    + [(SHARED, n) for n in ("nested", "tokens", "sequences", "images")],
)
def test_compiled_files_read_the_owners_tensors(target, spec, network, tmp_path):
    model = nnspec.load(spec, network)
    paths = model.compile(target, tmp_path / "net.py")
    module = import_file(paths[0], f"shared_{target}_{model.name}")
    compiled = module.load()
    run = model.to_numpy()
    run.eval()
    inputs = spec_inputs(model.program, batch=3)
    want = run(**{k: v.astype(np.float32) for k, v in inputs.items()})
    if target == "torch":
        with torch.no_grad():
            got = compiled(
                **{k: torch.as_tensor(v, dtype=torch.float32) for k, v in inputs.items()}
            )
        got = got.numpy()
        assert list(compiled.state_dict()) == list(model.program.parameters())
    else:
        got = compiled(**{k: v.astype(np.float32) for k, v in inputs.items()})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_the_emitted_files_pass_ruff(tmp_path):
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed")
    files = []
    for spec, network in [(SIAMESE, None), (TIED, None), (SHARED, "nested"), (SHARED, "tokens")]:
        model = nnspec.load(spec, network)
        for target in ("torch", "numpy"):
            files.append(model.compile(target, tmp_path / f"{model.name}_{target}.py")[0])
    config = ROOT / "pyproject.toml"
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [str(ruff), *command, "--config", str(config), *map(str, files)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr


# ---- errors -------------------------------------------------------------------------------------
def _error(text: str) -> nnspec.SpecError:
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.loads(text)
    return caught.value


ENCODER = "block enc() {\n    input x: 4\n    dense h: 4\n    x -> h\n}\n"


@pytest.mark.parametrize(
    "body, code, message",
    [
        ("dense h: 4, shares=3", "E230", "shares= names a layer, got 3"),
        ("dense g: 4\n    dense h: 4, shares=g, tied=g", "E236", "both shares= and tied="),
        ("dense g: 4\n    dense h: 4, shares=g, shares=g", "E208", "given twice"),
        (
            "dense g: 4\n    dense h: 4, weights=[[1, 2, 3, 4]"
            + ", [1, 2, 3, 4]" * 3
            + "], shares=g",
            "E236",
            "weights=",
        ),
        (
            "dense g: 4\n    dense h: 4, shares=k\n    dense k: 4, shares=h\n    h -> k",
            "E234",
            "chain",
        ),
        ("enc g\n    dense h: 4, shares=g", "E231", "'h' is a dense and 'g' an enc"),
        ("dense g: 4, repeat=2\n    dense h: 4, repeat=3, shares=g", "E231", "do not pair up"),
        ("dense g: 4, bias=false\n    dense h: 4, shares=g", "E232", "weight [4, 4]: shared"),
        ("dense g: 4\n    maxout h: 4, tied=g", "E231", "but 'h' is a maxout"),
        ("dense g: 4\n    dense h: 4, frozen, shares=g", "E236", "frozen has nothing to keep"),
    ],
)
def test_mistakes_in_sharing(body, code, message):
    text = ENCODER + f"network n {{\n    input x: 4\n    {body}\n    x -> g -> h\n}}\n"
    text = text.replace("x -> g -> h", "x -> h") if "shares=3" in body else text
    error = _error(text)
    assert (error.code, message in error.message) == (code, True), error.message


def test_a_shared_block_without_parameters_is_e235():
    text = (
        "block act() {\n    input x: 4\n    relu r\n    x -> r\n}\n"
        "network n {\n    input x: 4\n    act a\n    act b: shares=a\n    x -> a -> b\n}\n"
    )
    error = _error(text)
    assert error.code == "E235" and (error.span.line, error.span.column) == (9, 19)


def test_repeat_with_shares_uses_one_owner_for_every_copy():
    text = (
        "network n {\n    input x: 4\n    dense g: 4\n    dense h: 4, repeat=3, shares=g\n"
        "    x -> g -> h\n}\n"
    )
    program = nnspec.loads(text).program
    assert [program.layer(f"h.{i}").shares for i in (1, 2, 3)] == ["g", "g", "g"]
    assert program.param_count == 20


def test_a_shared_block_placing_other_layers_is_e231():
    text = (
        "block stack(n) {\n    input x: 4\n    dense h: 4, repeat=n\n    x -> h\n}\n"
        "network n {\n    input a: 4\n    stack sa: 2\n    stack sb: 3, shares=sa\n    add j\n"
        "    a -> sa -> j\n    a -> sb -> j\n}\n"
    )
    error = _error(text)
    assert error.code == "E231" and "'sb.h.3' has no counterpart 'sa.h.3'" in error.message


def test_a_misspelt_shares_is_suggested():
    text = (
        "network n {\n    input x: 4\n    dense g: 4\n    dense h: 4, share=g\n    x -> g -> h\n}\n"
    )
    error = _error(text)
    assert error.code == "E202" and "did you mean 'shares'?" in error.hint
    block = ENCODER + "network n {\n    input x: 4\n    enc a\n    enc b: shares=a, tide=a\n"
    error = _error(block + "    x -> a -> b\n}\n")
    assert error.code == "E202" and "block 'enc' has no parameter 'tide'" in error.message


def test_the_digit_pairs_are_what_their_script_writes():
    made = import_file(EXAMPLES / "make_digit_pairs.py", "make_digit_pairs").pairs()
    with np.load(EXAMPLES / "digit_pairs.npz") as shipped:
        assert sorted(shipped) == ["a", "b", "same"]
        for name, array in made.items():
            np.testing.assert_array_equal(shipped[name], array, err_msg=name)
    assert made["same"].mean() == 0.5 and made["a"].shape == (1200, 64)
