"""Integer classes at every time step, `[N, T]`, for an output with a value at every step (a
tagger): the loss is the cross entropy averaged over every step of every example, accuracy the
fraction of steps classified right, alike on both backends."""

import numpy as np
import pytest
from conftest import BACKENDS

from nnspec.errors import SpecError
from nnspec.training import train
from nnspec.training.predict import predict

SPEC = """\
network tag {{
    input x: 3, {seq}
    lstm h: 8
    dense y: {units}, act={act}
    x -> h -> y
}}
train {{
    data      = npz("tag.npz")
    optimizer = adam(lr=0.05)
    batch     = 16
    epochs    = {epochs}
    expect accuracy >= 0.9
}}
"""


def _tagger(folder, y_of, units=4, act="softmax", epochs=25, seq="seq", steps=5, n=96):
    """A spec and its data: x `[n, steps, 3]`, y `[n, steps]` class indices from `y_of(x)`."""
    x = np.random.default_rng(0).normal(size=(n, steps, 3)).astype(np.float32)
    np.savez(folder / "tag.npz", x=x, y=y_of(x).astype(np.int64))
    (folder / "tag.nn").write_text(SPEC.format(units=units, act=act, epochs=epochs, seq=seq))
    return folder / "tag.nn", x


def _largest(x):  # the class of a step: which of x's 3 values, or their negated sum, is largest
    return np.argmax(np.concatenate([x, -x.sum(-1, keepdims=True)], -1), -1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_loss_and_accuracy_are_over_every_step(backend, tmp_path):
    """Before training (0 epochs), the loss and accuracy the run reports equal those computed by
    hand from the network's own outputs `[N, T, K]` and the classes `[N, T]`."""
    spec, x = _tagger(tmp_path, _largest, epochs=0)
    result = train(spec, backend, tmp_path / "run")
    p = predict(spec, result.paths["weights"], tmp_path / "tag.npz", backend)["y"]
    y = _largest(x)
    assert p.shape == (*y.shape, 4)
    picked = np.take_along_axis(p, y[..., None], -1)[..., 0]
    np.testing.assert_allclose(result.metrics["loss"], -np.log(picked).mean(), rtol=1e-4)
    assert result.metrics["accuracy"] == pytest.approx((p.argmax(-1) == y).mean())


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tagger_learns_a_class_at_every_step(backend, seed, tmp_path):
    spec, _ = _tagger(tmp_path, _largest)
    result = train(spec, backend, tmp_path / "run", seed=seed)
    assert result.passed, result.metrics


@pytest.mark.slow
def test_both_backends_agree_and_one_unit_takes_two_classes(tmp_path):
    """Two classes at every step with one sigmoid unit `[N, T, 1]`: the same run on both
    backends."""
    spec, _ = _tagger(tmp_path, lambda x: x[..., 0] > 0, units=1, act="sigmoid", epochs=3)
    runs = [train(spec, b, tmp_path / b).history for b in ("numpy", "torch")]
    for numpy_row, torch_row in zip(*runs, strict=True):
        for name, value in numpy_row.items():
            assert torch_row[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_a_class_for_each_of_other_steps_is_named(tmp_path):
    """An input of 6 fixed steps, classes for 5: E506 naming both counts."""
    spec, _ = _tagger(tmp_path, _largest, seq="seq=6", steps=6)
    np.savez(
        tmp_path / "tag.npz",
        x=np.zeros((8, 6, 3), np.float32),
        y=np.zeros((8, 5), np.int64),
    )
    with pytest.raises(SpecError) as error:
        train(spec, "numpy", tmp_path / "run")
    assert error.value.code == "E506"
    assert "a class for each of 5 steps, but 'y' gives 6 steps" in error.value.message


def test_one_class_per_sequence_for_an_output_at_every_step_says_both_ways_out(tmp_path):
    spec, _ = _tagger(tmp_path, lambda x: _largest(x)[:, -1])
    with pytest.raises(SpecError) as error:
        train(spec, "numpy", tmp_path / "run")
    assert error.value.code == "E506"
    assert "one class per example, but 'y' gives a value at every step" in error.value.message
    assert "'output y: last'" in error.value.hint
    assert "a class for every step ([examples, steps])" in error.value.hint


SEQUENCE = """\
network s {
    input x: 2, seq
    lstm r: 3
    dense y: 1
    x -> r -> y
}
train {
    data      = npz("d.npz")
    loss      = mse
    optimizer = adam(lr=0.05)
    batch     = 2
    epochs    = 1
}
"""


@pytest.mark.parametrize(
    ("shape", "said"),
    [
        ((4,), "has one target per sequence, but 'y' gives a value at every step"),
        ((4, 1), "has targets for 1 steps, but 'y' gives 8 steps"),
        ((4, 1, 1), "has targets for 1 steps, but 'y' gives 8 steps"),
        ((4, 5, 1), "has targets for 5 steps, but 'y' gives 8 steps"),
    ],
)
def test_value_targets_per_step_must_have_the_inputs_steps(shape, said, tmp_path):
    """Targets for an output at every step, for 8 steps of input: one per sequence, or another
    number of steps, is E506 (it was an internal error, or silently broadcast)."""
    (tmp_path / "s.nn").write_text(SEQUENCE)
    x = np.zeros((4, 8, 2), np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(shape, np.float32))
    with pytest.raises(SpecError) as error:
        train(tmp_path / "s.nn", "numpy", tmp_path / "run")
    assert error.value.code == "E506"
    assert said in error.value.message


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(4, 8), (4, 8, 1)])
def test_value_targets_at_every_step_train(shape, backend, tmp_path):
    (tmp_path / "s.nn").write_text(SEQUENCE)
    x = np.zeros((4, 8, 2), np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.ones(shape, np.float32))
    assert train(tmp_path / "s.nn", backend, tmp_path / "run").metrics["loss"] > 0


def test_classes_for_other_steps_than_the_inputs_are_named(tmp_path):
    """A sequence of any length, 6 steps in the data, classes for 5: E506."""
    spec, _ = _tagger(tmp_path, _largest, steps=6)
    np.savez(tmp_path / "tag.npz", x=np.zeros((8, 6, 3), np.float32), y=np.zeros((8, 5), np.int64))
    with pytest.raises(SpecError) as error:
        train(spec, "numpy", tmp_path / "run")
    assert "a class for each of 5 steps, but 'y' gives 6 steps" in error.value.message
