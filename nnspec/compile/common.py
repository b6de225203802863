"""What every compiled file says about where it comes from: a header naming the spec, its hash
and nnspec's version (no timestamp, so that two compilations give the same bytes), and for each
layer the spec line it was written on."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..program import Layer
from ..version import __version__


def spec_hash(model) -> str:
    """The first 16 hex digits of the SHA-256 of the spec's text (of the file the network is in)."""
    text = model.program.layers[0].span.source.text if model.program.layers else ""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def harmless(text: str) -> str:
    """`text` of a spec (a network's description) as it may stand in a docstring of an emitted
    file: no backslash (an escape), no three quotes that would end the docstring and let the
    rest run as code."""
    return text.replace("\\", "/").replace('"""', "'''")


def one_line(text: str) -> str:
    """`text` (a file's name, a line of the spec) as it may stand in a comment of an emitted
    file: what is not printable, a line break above all, as "?", so nothing leaves the comment."""
    return "".join(c if c.isprintable() else "?" for c in text)


def header(model, target: str) -> list[str]:
    """The header comment's lines, without the comment marks."""
    name = one_line(Path(model.path).name) if model.path else "<spec>"
    return [
        f"{model.name}: compiled by nnspec {__version__} from {name} (sha256 {spec_hash(model)})",
        f"with `nnspec compile {name} --to {target}`; it needs no nnspec.",
    ]


def spec_line(layer: Layer) -> str:
    """Where `layer` is written and what it says: `xor.nn:4  dense h: 2, act=tanh` (a layer made
    by a block or by `repeat` shows the line that declares it inside the block)."""
    span = layer.span
    text = span.source.line(span.line).strip()
    return one_line(f"{Path(span.source.path).name}:{span.line}  {text}")


def weights_file(params: dict) -> bytes:
    """`params` (the spec's names -> arrays) as the bytes of a safetensors file, the same bytes
    for the same parameters: the weights a compiled file loads by name."""
    import numpy as np
    from safetensors.numpy import save

    # ascontiguousarray makes a 0-d array (num_batches_tracked) 1-d: keep each shape
    return save({k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in params.items()})


def terms(expression: str) -> list[str]:
    """`a @ w.T + b` -> ["a @ w.T", "b"]: the terms of a sum outside brackets, as ruff breaks a
    long one before each `+`."""
    depth, start, parts = 0, 0, []
    for i, char in enumerate(expression):
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(char, 0)
        if depth == 0 and expression.startswith(" + ", i):
            parts.append(expression[start:i])
            start = i + 3
    return parts + [expression[start:]]
