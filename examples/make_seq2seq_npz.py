"""Writes examples/seq2seq.npz, the data of examples/seq2seq.nn: 500 sequences of 5 tokens out
of 4, each to be read back reversed.

`source` [500, 5, 4]: the tokens one-hot, what the encoder reads. `fed` [500, 5, 5]: what the
decoder reads at each step, the answer's previous token one-hot (teacher forcing), a start token
(the fifth) at the first step. `out` [500, 5]: the answer, the source's tokens in reverse order,
a class at every step. The tokens are drawn with a fixed seed, so the file is the same on every
run. Run from the project's root: `python examples/make_seq2seq_npz.py`.
"""

from pathlib import Path

import numpy as np

STEPS, TOKENS, COUNT = 5, 4, 500


def arrays(seed: int = 7) -> dict[str, np.ndarray]:
    """The three arrays by the names of the network's inputs and output."""
    tokens = np.random.default_rng(seed).integers(0, TOKENS, (COUNT, STEPS))
    answer = tokens[:, ::-1]
    one_hot = np.eye(TOKENS + 1, dtype=np.float32)
    previous = np.concatenate([np.full((COUNT, 1), TOKENS), answer[:, :-1]], 1)
    return {
        "source": one_hot[tokens][..., :TOKENS],
        "fed": one_hot[previous],
        "out": np.ascontiguousarray(answer, dtype=np.int64),
    }


if __name__ == "__main__":
    np.savez_compressed(Path(__file__).with_name("seq2seq.npz"), **arrays())
