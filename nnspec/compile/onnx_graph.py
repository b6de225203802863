"""The graph builder the ONNX target writes with: nodes named after the spec's layers, each with
the spec line it comes from as its `doc_string`, initializers named as the parameters, and the
few shape helpers every lowering needs (the batch size, the number of steps, zeros of a shape).

Only `onnx_target.emit` imports this module, after it has found `onnx` installed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ..program import Layer
from .common import spec_line

FLOAT = TensorProto.FLOAT


class Names:
    """Every value name and node name handed out, across the graph and its loop bodies (ONNX
    wants each value name once in the whole model)."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.nodes: set[str] = set()

    @staticmethod
    def _fresh(taken: set[str], base: str) -> str:
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    def value(self, base: str) -> str:
        return self._fresh(self.values, base)

    def node(self, base: str) -> str:
        return self._fresh(self.nodes, base)


class Builder:
    """Nodes of one graph (the main graph or a loop body); `layer` is the layer being lowered,
    whose name prefixes the nodes and whose spec line is their doc string."""

    def __init__(self, names: Names, params: Mapping[str, np.ndarray], initializers: dict):
        self.names = names
        self.params = params
        self.initializers = initializers  # shared with the main graph: name -> TensorProto
        self.nodes: list = []
        self.layer: Layer | None = None
        self.scope = ""  # node name prefix
        self.doc = ""
        self.batch_of: str | None = None  # the graph input whose first axis is the batch
        self._batch: str | None = None  # [1] int64: the batch size, made once when needed
        self._zeros: dict[tuple[int, ...], str] = {}

    def child(self) -> Builder:
        """A builder for a loop body: the same names and initializers, its own nodes."""
        body = Builder(self.names, self.params, self.initializers)
        body.layer, body.scope, body.doc = self.layer, self.scope, self.doc
        return body

    def at(self, layer: Layer | None, scope: str | None = None, doc: str | None = None) -> None:
        self.layer = layer
        self.scope = scope if scope is not None else (layer.name if layer else "")
        self.doc = doc if doc is not None else (spec_line(layer) if layer else "")

    # ---- nodes -------------------------------------------------------------------------------
    def op(self, op_type: str, inputs: list[str], outputs: int = 1, **attrs):
        """One node; returns its output's name (a list for several outputs)."""
        name = self.names.node(f"{self.scope}/{op_type}" if self.scope else op_type)
        outs = [self.names.value(f"{name}:{k}") for k in range(outputs)]
        node = helper.make_node(op_type, inputs, outs, name=name, **attrs)
        if self.doc:
            node.doc_string = self.doc
        self.nodes.append(node)
        return outs if outputs > 1 else outs[0]

    def finish(self, value: str, want: str, keep: bool = False) -> str:
        """Name the value `want` (and its node after the layer): the last node of this layer is
        renamed when it made `value` and nothing reads it yet (`keep`: something will), else an
        Identity makes `want`."""
        want = self.names.value(want)
        last = self.nodes[-1] if self.nodes else None
        mine = (
            not keep
            and last is not None
            and list(last.output) == [value]
            and last.name.startswith(f"{self.scope}/")
            and not any(value in node.input for node in self.nodes)
        )
        node_name = self.layer.name if self.layer is not None else want
        if mine:
            last.output[0] = want
            if node_name not in self.names.nodes:
                self.names.nodes.add(node_name)
                last.name = node_name
            return want
        if node_name in self.names.nodes:  # the layer's name is taken (by its step in a loop)
            node_name = f"{self.scope}/Identity"
        node = helper.make_node("Identity", [value], [want], name=self.names.node(node_name))
        if self.doc:
            node.doc_string = self.doc
        self.nodes.append(node)
        return want

    def ints(self, values, scalar: bool = False) -> str:
        """An int64 constant: a vector, or a scalar."""
        array = np.array(values, np.int64) if scalar else np.array(list(values), np.int64)
        return self.constant(array)

    def floats(self, array) -> str:
        return self.constant(np.asarray(array, np.float32))

    def constant(self, array: np.ndarray) -> str:
        return self.op("Constant", [], value=numpy_helper.from_array(array, name=""))

    def param(self, name: str) -> str:
        """The initializer named as the parameter, embedded on first use (float32)."""
        if name not in self.initializers:
            array = np.asarray(self.params[name])
            if array.dtype.kind == "f":
                array = array.astype(np.float32)
            self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(array), name)
            self.names.values.add(name)
        return name

    # ---- shapes --------------------------------------------------------------------------------
    def zeros(self, dims: tuple[int, ...], root: Builder) -> str:
        """Zeros [B, *dims] (made in the main graph `root`, once per shape)."""
        if dims not in root._zeros:
            saved = root.scope, root.doc, root.layer
            if root._batch is None:
                root.at(None, scope="batch", doc=f"the batch size of input '{root.batch_of}'")
                root._batch = root.op("Shape", [root.batch_of], start=0, end=1)
            root.at(None, scope="zeros", doc="zeros: the value before the first step")
            shape = root.op("Concat", [root._batch, root.ints(dims)], axis=0)
            zero = helper.make_tensor("", FLOAT, [1], [0.0])
            root._zeros[dims] = root.op("ConstantOfShape", [shape], value=zero)
            root.scope, root.doc, root.layer = saved
        return root._zeros[dims]


class LayerParams(Mapping):
    """A layer's parameters by key (`weight`), as initializer names, embedded when read."""

    def __init__(self, builder: Builder, layer: Layer):
        self.builder, self.layer = builder, layer

    def __getitem__(self, key: str) -> str:
        if key not in self.layer.params:
            raise KeyError(key)
        name = self.builder.param(self.layer.param_name(key))  # a shared one: its owner's
        borrowed = self.layer.borrowed.get(key)
        if borrowed is not None and borrowed.transposed:  # tied=: the owner's weight transposed
            return self.builder.op("Transpose", [name], perm=[1, 0])
        return name

    def __iter__(self) -> Iterator[str]:
        return iter(self.layer.params)

    def __len__(self) -> int:
        return len(self.layer.params)


def tensor_type(name: str, dims: list) -> object:
    """A float32 value info; dims are ints or names (dynamic axes)."""
    return helper.make_tensor_value_info(name, FLOAT, dims)
