"""Every stage can print itself: the graph and the checked program as plain text.

The golden tests use the same dumps."""

from __future__ import annotations

import networkx as nx

from .program import Program
from .summary import options_text


def dump_graph(graph: nx.MultiDiGraph) -> str:
    """Nodes in declaration order with kind, options and position; then links in file order."""
    out = [f"graph {graph.graph['name']}"]
    for name, data in graph.nodes(data=True):
        kind, span = data["kind"], data["span"]
        options = options_text(kind, data["options"])
        out.append(f"  node {name}: {kind.name}{options}  @{span.line}:{span.column}")
    for u, v, data in sorted(graph.edges(data=True), key=lambda e: e[2]["order"]):
        arrow = "~>" if data["delayed"] else "->"
        port = f".{data['port']}" if data["port"] else ""
        out.append(f"  link {u} {arrow} {v}{port}  @{data['span'].line}:{data['span'].column}")
    outputs = ", ".join(
        name + (f": {reduce}" if reduce else "") for name, reduce, _ in graph.graph["outputs"]
    )
    out.append(f"  output {outputs}")
    return "\n".join(out)


def dump_program(program: Program) -> str:
    """Layers in topological order with output shape and parameter shapes; then the totals."""
    out = [f"program {program.name}{' (timed)' if program.timed else ''}"]
    for layer in program.layers:
        params = ", ".join(
            f"{key} {list(p.shape)}{'' if p.trainable else ' fixed'}"
            + (
                f" = {layer.param_name(key)}{'.T' * layer.borrowed[key].transposed}"
                if key in layer.borrowed
                else ""
            )
            for key, p in layer.params.items()
            if not p.buffer
        )
        flags = " recurrent" if layer.recurrent else ""
        out.append(
            f"  {layer.name}: {layer.kind.name} -> {layer.shape}{flags}"
            + (f"  {{{params}}}" if params else "")
        )
    out.append(
        "  outputs "
        + ", ".join(
            f"{o.name}{': ' + o.reduce if o.reduce else ''} {o.shape}" for o in program.outputs
        )
    )
    out.append(f"  parameters {program.param_count} (trainable {program.trainable_count})")
    return "\n".join(out)
