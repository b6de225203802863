"""The onnx target: a checked network as one ONNX model (`ModelProto` bytes), built from the
plan both backends lower (backends/plan.py).

    data = emit(model, params)      # onnx.load_from_string(data) -> a ModelProto

The graph's inputs and outputs carry the spec's input and output names; the batch size is a
dynamic axis (`batch`), and so is the number of steps (`steps`) of a sequence of any length.
The layers on a `~>` cycle run as one ONNX `Scan` over the steps, as do `rnn` and `lif` over a
whole sequence; `lstm` and `gru` over a whole sequence are ONNX's fused `LSTM` and `GRU` (their
weights reordered to ONNX's gate order inside the graph): nothing is unrolled at one length.
Nodes are named after the layers (the node that makes a layer's value has the layer's name;
its helpers are `layer/Op`), each with the spec line it comes from as its `doc_string`; the
parameters are initializers named as the spec names them (`h.weight`, PyTorch's layouts),
float32. The model is the network in evaluation mode (docs/compile.md). Two emissions of the
same spec and parameters give the same bytes.

onnx is an optional extra: it is imported only here, inside `emit`.
"""

from __future__ import annotations

from ..errors import NnspecError
from ..version import __version__

OPSET = 17  # ai.onnx opset: LayerNormalization's first; onnxruntime 1.12 and later load it
IR_VERSION = 8  # the IR version of opset 17 (onnx 1.12)


def emit(model, params) -> bytes:
    """The ONNX model of `model` with `params` (name -> array) as its initializers, serialized."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise NnspecError(
            "R601",
            "compiling to onnx needs the onnx package, which is not installed",
            "install the extra: pip install 'nnspec[onnx]' (onnx and onnxruntime)",
        ) from None
    from .onnx_build import build

    return build(model, params, OPSET, IR_VERSION, __version__).SerializeToString()
