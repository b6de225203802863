# xor: compiled by nnspec 0.1.0 from xor.nn (sha256 41da124d434e8cdc)
# with `nnspec compile xor.nn --to torch`; it needs no nnspec.
"""XOR learned by a 2-2-1 network: the PyTorch module `Xor`.

    net = load()  # the compiled weights: this file's name, .safetensors, beside it
    net = load("weights.safetensors")  # or any file with the spec's parameter names
    y = net(x)  # a tensor

`python` on this file runs a batch of zeros and prints the output shapes.
"""

from pathlib import Path

import torch
from torch import nn

WEIGHTS = Path(__file__).with_suffix(".safetensors")  # what load() reads


def _prepare(name, x, dims, time, steps):
    """Check one input against its declaration and shape it: [B, *dims], or [B, T, *dims] when
    timed. `time` is None (static), "seq" (the caller gives every step) or "steps" (one value,
    held for `steps` steps, unless one per step is given). Size-1 inputs may leave out their
    last axis."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input '{name}' must be a torch.Tensor, not {type(x).__name__}")
    lead = 1 if time is None else 2
    if time == "steps" and (
        x.dim() == len(dims) + 1 and tuple(x.shape[1:]) == dims or dims == (1,) and x.dim() == 1
    ):
        x = x.reshape(x.shape[0], *dims)  # one value, held at every step
        return x.unsqueeze(1).expand(x.shape[0], steps, *dims)
    if dims == (1,) and x.dim() == lead:
        x = x.unsqueeze(-1)
    if (
        x.dim() != len(dims) + lead
        or tuple(x.shape[lead:]) != dims
        or (steps is not None and x.shape[1] != steps)
    ):
        want = ["B"] + ([str(steps) if steps else "T"] if time else []) + [str(d) for d in dims]
        raise ValueError(f"input '{name}' must be [{', '.join(want)}], but it is {list(x.shape)}")
    return x


class Xor(nn.Module):
    """XOR learned by a 2-2-1 network: x: [B, 2] -> y: [B, 1]."""

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(2, 2)
        self.y = nn.Linear(2, 1)

    def forward(self, x):
        x = _prepare("x", x, (2,), None, None)
        # xor.nn:10  dense  h: 2, act=tanh
        h = torch.tanh(self.h(x))
        # xor.nn:11  dense  y: 1, act=sigmoid
        y = torch.sigmoid(self.y(h))
        return y


def load(path=None) -> Xor:
    """`Xor` in evaluation mode, with the weights of the safetensors file at `path` (by the spec's
    parameter names); by default WEIGHTS, the ones it was compiled with."""
    from safetensors.torch import load_file

    path = WEIGHTS if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file {path}: give load() a .safetensors file")
    net = Xor()
    net.load_state_dict(load_file(path))
    return net.eval()


if __name__ == "__main__":
    net = load() if WEIGHTS.is_file() else Xor().eval()
    with torch.no_grad():
        y = net(torch.zeros(2, 2))
    print("y:", list(y.shape))
