"""The Hopfield network's recall as ONNX: a Loop over the sweeps, each (update=async) a Loop over
the units that updates one column of the state.

The file runs every one of the `sweeps` sweeps: a state that a sweep leaves unchanged (a fixed
point) stays unchanged by every later sweep, so this gives what the backends give when they stop
early. Computed in float32; a tie (a net input within 1e-6 of the row's absolute weight from the
threshold) keeps the unit's state, as on the backends, so the roundings do not matter.
"""

from __future__ import annotations

import numpy as np

from ..kinds.hopfield import TIE
from .onnx_graph import Builder


def hopfield(g: Builder, ctx, layer, x: str, p) -> str:
    """cue (B, N) -> recalled state (B, N): Where(Greater) reads the cue as +1/-1; a Loop of
    `sweeps` iterations carries the state, its body a MatMul with W^T for all units at once
    (sync) or a Loop over the units (async: Gather of row i and of column i, MatMul, Where,
    the column replaced through a one-hot mask); Where(Greater, Where(Less)) keeps a tie."""
    o = layer.options
    w = p["weight"]
    tie = g.op(
        "Mul", [g.op("ReduceSum", [g.op("Abs", [w]), g.ints([1])], keepdims=0), g.floats(TIE)]
    )
    s = g.op("Where", [g.op("Greater", [x, g.floats(0.0)]), g.floats(1.0), g.floats(-1.0)])

    def sweep(b: Builder, state: str) -> str:
        if o.update == "sync":
            net = b.op(
                "Sub",
                [
                    b.op("MatMul", [state, b.op("Transpose", [w], perm=[1, 0])]),
                    b.floats(o.threshold),
                ],
            )
            return _updated(b, net, tie, state)
        return _loop(b, layer, f"{layer.name}/units", b.ints(o.units, scalar=True), state, unit)

    def unit(b: Builder, i: str, state: str) -> str:
        net = b.op(
            "Sub", [b.op("MatMul", [state, b.op("Gather", [w, i], axis=0)]), b.floats(o.threshold)]
        )
        old = b.op("Gather", [state, i], axis=1)
        new = _updated(b, net, b.op("Gather", [tie, i], axis=0), old)
        units = b.op(
            "Range", [b.ints(0, scalar=True), b.ints(o.units, scalar=True), b.ints(1, scalar=True)]
        )
        mask = b.op("Cast", [b.op("Equal", [units, i])], to=1)  # FLOAT
        change = b.op("Mul", [b.op("Unsqueeze", [b.op("Sub", [new, old]), b.ints([1])]), mask])
        return b.op("Add", [state, change])

    return _loop(
        g,
        layer,
        f"{layer.name}/sweeps",
        g.ints(o.sweeps, scalar=True),
        s,
        lambda b, _, v: sweep(b, v),
    )


def _updated(b: Builder, net: str, tie: str, state: str) -> str:
    """+1 above the threshold, -1 below, the state kept at a tie."""
    low = b.op("Where", [b.op("Less", [net, b.op("Neg", [tie])]), b.floats(-1.0), state])
    return b.op("Where", [b.op("Greater", [net, tie]), b.floats(1.0), low])


def _loop(g: Builder, layer, scope: str, trips: str, carried: str, body_of) -> str:
    """An ONNX Loop of `trips` iterations carrying one float value; `body_of(builder, i, value)`
    gives the next value (`i` the iteration, int64)."""
    from onnx import TensorProto, helper

    b = g.child()
    b.at(layer, scope=scope)
    i, cond, value = (g.names.value(f"{scope}/{name}") for name in ("i", "cond", "state"))
    out = b.op("Identity", [body_of(b, i, value)])
    keep = b.op("Identity", [cond])
    body = helper.make_graph(
        b.nodes,
        f"{scope}/body",
        [
            helper.make_tensor_value_info(i, TensorProto.INT64, []),
            helper.make_tensor_value_info(cond, TensorProto.BOOL, []),
            helper.make_tensor_value_info(value, TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info(keep, TensorProto.BOOL, []),
            helper.make_tensor_value_info(out, TensorProto.FLOAT, None),
        ],
    )
    return g.op("Loop", [trips, g.constant(np.array(True)), carried], body=body)
