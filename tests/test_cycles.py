"""Cycles through `~>` links whose sizes the checker works out: hand-set Elman and Jordan
networks (weights written in the spec, as the primers teach) and a feedback layer fed only through
`~>`. Each checks, and runs on both backends (float64) to a hand computation in NumPy, a loop
over the time steps (a `~>` link passes zeros at the first step).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HAS_TORCH

import nnspec
from nnspec.errors import SpecError

W_IN = np.array([[0.5, -0.3]])  # [inputs, units], as the spec writes weights
W_BACK = np.array([[0.2, 0.1], [-0.4, 0.6]])
B_H = np.array([0.1, -0.2])
W_OUT = np.array([[1.0], [-1.0]])
B_OUT = np.array([0.05])

ELMAN = """
network elman {
    input  x: 1, seq
    dense  h: 2, act=tanh, weights=[[0.5, -0.3], [0.2, 0.1], [-0.4, 0.6]], biases=[0.1, -0.2]
    dense  y: 1, weights=[[1.0], [-1.0]], biases=[0.05]
    x -> h -> y
    h ~> h
}
"""

JORDAN = """
network jordan {
    input  x: 1, seq
    dense  h: 2, act=tanh, weights=[[0.5, -0.3], [0.7, -0.2]], biases=[0.1, -0.2]
    dense  y: 1, weights=[[1.0], [-1.0]], biases=[0.05]
    x -> h -> y
    y ~> h
}
"""

# q comes first and hears only dec's previous value; dense fixes q's size all the same
FEEDBACK = """
network feedback {
    input  x: 1, seq
    dense  q: 3, weights=[[0.3, -0.5, 0.2], [0.4, 0.1, -0.6]], biases=[0.0, 0.1, -0.1]
    dense  dec: 2, act=tanh, weights=[[0.5, -0.3], [0.2, 0.1], [-0.4, 0.6], [0.3, 0.3]]
    dense  y: 1, weights=[[1.0], [-1.0]], biases=[0.05]
    x -> dec -> y
    dec ~> q
    q -> dec
}
"""

X = np.random.default_rng(0).standard_normal((4, 6, 1))  # [batch, steps, features]


def elman(x: np.ndarray) -> np.ndarray:
    """h_t = tanh([x_t, h_{t-1}] W + b), y_t = h_t V + c."""
    h, ys = np.zeros((x.shape[0], 2)), []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ W_IN + h @ W_BACK + B_H)
        ys.append(h @ W_OUT + B_OUT)
    return np.stack(ys, axis=1)


def jordan(x: np.ndarray) -> np.ndarray:
    """h_t = tanh([x_t, y_{t-1}] W + b), y_t = h_t V + c."""
    w_back = np.array([[0.7, -0.2]])
    y, ys = np.zeros((x.shape[0], 1)), []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ W_IN + y @ w_back + B_H)
        y = h @ W_OUT + B_OUT
        ys.append(y)
    return np.stack(ys, axis=1)


def feedback(x: np.ndarray) -> np.ndarray:
    """q_t = dec_{t-1} Q + e, dec_t = tanh([x_t, q_t] W), y_t = dec_t V + c (dec has no biases
    written: its biases start at PyTorch's default draw, read from the run)."""
    w_q = np.array([[0.3, -0.5, 0.2], [0.4, 0.1, -0.6]])
    b_q = np.array([0.0, 0.1, -0.1])
    w_dec = np.array([[0.5, -0.3], [0.2, 0.1], [-0.4, 0.6], [0.3, 0.3]])
    b_dec = nnspec.loads(FEEDBACK).to_numpy(dtype="float64").params["dec.bias"]
    dec, ys = np.zeros((x.shape[0], 2)), []
    for t in range(x.shape[1]):
        q = dec @ w_q + b_q
        dec = np.tanh(np.concatenate([x[:, t], q], axis=1) @ w_dec + b_dec)
        ys.append(dec @ W_OUT + B_OUT)
    return np.stack(ys, axis=1)


CASES = {"elman": (ELMAN, elman), "jordan": (JORDAN, jordan), "feedback": (FEEDBACK, feedback)}


@pytest.mark.parametrize("name", CASES)
def test_checks_with_sizes_from_the_spec(name):
    program = nnspec.loads(CASES[name][0]).program
    assert program.timed
    assert [str(layer.shape) for layer in program.layers if layer.name == "y"] == ["[T, 1]"]


@pytest.mark.parametrize("name", CASES)
def test_numpy_matches_hand_computation(name):
    spec, reference = CASES[name]
    out = nnspec.loads(spec).to_numpy(dtype="float64").eval()(x=X)
    np.testing.assert_allclose(out, reference(X), rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
@pytest.mark.parametrize("name", CASES)
def test_torch_matches_hand_computation(name):
    import torch

    spec, reference = CASES[name]
    module = nnspec.loads(spec).to_torch(dtype="float64").eval()
    with torch.no_grad():
        out = module(x=torch.tensor(X)).numpy()
    np.testing.assert_allclose(out, reference(X), rtol=1e-12, atol=1e-12)


def test_a_size_nothing_fixes_is_still_refused():
    """Two activations in a loop, fed only through `~>`: no layer gives the cycle a size (an
    activation keeps its input's), so E307 stands."""
    spec = """
    network n {
        input x: 2, seq
        relu a
        relu s
        dense y: 1
        a -> s
        s ~> a
        x, s -> y
    }
    """
    with pytest.raises(SpecError) as caught:
        nnspec.loads(spec)
    assert "E307" in {e.code for e in caught.value.errors}


def test_literal_weights_of_the_wrong_height_on_a_cycle_are_e405():
    """The weights must have a row for the delayed input too: 2 rows where 3 are needed is
    E405 naming the size needed, not a false E307."""
    spec = ELMAN.replace("[[0.5, -0.3], [0.2, 0.1], [-0.4, 0.6]]", "[[0.5, -0.3], [0.2, 0.1]]")
    with pytest.raises(SpecError) as caught:
        nnspec.loads(spec)
    assert [e.code for e in caught.value.errors] == ["E405"]
    assert "needs [3, 2]" in caught.value.message
