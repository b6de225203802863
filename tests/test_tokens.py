"""Tokens outside an embedding's vocabulary, in training data or in predict's input, are E506
errors naming the data, the token and the vocabulary, on both backends: never an internal error."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKENDS

import nnspec
from nnspec.cli import main
from nnspec.training import train

SPEC = """network words {{
    input   t: 3
    embedding e: 10, 4
    flatten f
    dense   y: 2, act=softmax
    t -> e -> f -> y
}}
train {{
    data   = npz("{data}")
    epochs = 1
}}
"""


def _spec(tmp_path, tokens: np.ndarray):
    data = tmp_path / "tokens.npz"
    np.savez(data, x=tokens, y=np.arange(len(tokens)) % 2)
    spec = tmp_path / "words.nn"
    spec.write_text(SPEC.format(data=data))
    return spec


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "token, message, hint",
    [
        (12, "holds the token 12, but embedding 'e' reads whole numbers from 0 to 9", "of 13"),
        (-1, "holds the token -1", "counted from 0"),
        (2.5, "holds the token 2.5", "counted from 0"),
    ],
)
def test_a_token_outside_the_vocabulary_in_training_data(tmp_path, backend, token, message, hint):
    tokens = np.tile(np.array([[1.0, 2.0, 3.0]]), (6, 1))
    tokens[4, 1] = token
    with pytest.raises(nnspec.SpecError) as caught:
        train(_spec(tmp_path, tokens), backend=backend, out=tmp_path / "run")
    assert caught.value.code == "E506"
    assert message in caught.value.message and "vocabulary = 10" in caught.value.message
    assert hint in caught.value.hint


def test_a_token_outside_the_vocabulary_in_predict_input(tmp_path, capsys):
    tokens = np.tile(np.array([[1, 2, 3]]), (6, 1))
    spec = _spec(tmp_path, tokens)
    train(spec, backend="numpy", out=tmp_path / "run")
    inputs = tmp_path / "new.npz"
    np.savez(inputs, x=np.array([[1, 2, 10]]))
    weights = tmp_path / "run" / "weights.safetensors"
    code = main(["predict", str(spec), "--weights", str(weights), "--input", str(inputs)])
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "error[E506]" in err
        and "holds the token 10" in err
        and "hint: give 'e' a vocabulary of 11" in err
    )
    assert "bug" not in err and "Traceback" not in err
