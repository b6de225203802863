"""Compiled files of a network trained with `normalize = true`: each standardises its inputs by
the training split's statistics before its first layer, as `nnspec train` evaluated and
`nnspec predict` answers. The statistics are written into the file itself (the mean and deviation
of each input, `[*dims]`), so it standardises whatever weights it loads.

    data = with_standardisation(target, emitted, stats)   # emitted: the file's bytes

A PyTorch or NumPy file gets the statistics as a constant beside its class and one line after each
standardised input is checked (`x = (x - mean) / std`); an ONNX model a Sub and a Div on each
standardised graph input, before every node that read it.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import SpecError

Statistics = dict[str, tuple[np.ndarray, np.ndarray]]
NAME = "STANDARDISE"  # the Python files' constant: input name -> (mean, std)


def check_statistics(model, stats: Statistics, where: str) -> None:
    """Each recorded input is one of the network's, of its shape, and a network trained with
    `normalize = true` has its statistics recorded (E505 naming the file)."""
    program, spec = model.program, model.train_spec
    if not stats and spec is not None and spec.settings.get("normalize") is True:
        raise SpecError(
            "E505",
            f"weights file '{where}' records no standardisation, but network '{model.name}' is "
            "trained with normalize = true: the compiled file would take its examples "
            "unstandardised",
            None,
            "give the run's weights.safetensors, which records the training split's mean and "
            "deviation (a checkpoint.safetensors does not)",
        )
    for name, (mean, _) in stats.items():
        if name not in program.inputs or mean.shape != program.layer(name).shape.dims:
            raise SpecError(
                "E505",
                f"weights file '{where}' records a standardisation of input '{name}' "
                f"{list(mean.shape)} that network '{model.name}' does not have",
                None,
                "compile with the spec the weights were trained from",
            )


def with_standardisation(target: str, emitted: bytes, stats: Statistics) -> bytes:
    """`emitted` (the whole file for `target`) standardising its inputs by `stats`."""
    if not stats:
        return emitted
    if target == "onnx":
        return _onnx(emitted, stats)
    return _python(emitted.decode(), stats, "torch.tensor" if target == "torch" else "np.array")


# ---- the Python files ---------------------------------------------------------------------------
def _python(source: str, stats: Statistics, array: str) -> bytes:
    """The constant and `_standardised` before the first top-level class, and after each
    `VAR = _prepare("NAME", ...)` (torch) or `VAR = _input("NAME", ...)` (NumPy) of a
    standardised input, the line that standardises it."""
    lines = source.split("\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("class "))
    lines[first:first] = [*_constant(stats, array), "", "", *_function(array), "", ""]
    checked = re.compile(r'^(\s+)(\w+) = _(?:prepare|input)\("([^"]+)", ')
    out = []
    for line in lines:
        out.append(line)
        match = checked.match(line)
        if match and match.group(3) in stats:
            indent, var, name = match.groups()
            out.append(f'{indent}{var} = _standardised("{name}", {var})  # normalize = true')
    return "\n".join(out).encode()


def _function(array: str) -> list[str]:
    torch = array == "torch.tensor"
    where = ", on x's device and in its dtype." if torch else "."
    return [
        "def _standardised(name, x):",
        '    """Input `name` standardised: (x - mean) / std, the statistics broadcast over the',
        f'    batch (and time) axes{where}"""',
        f"    mean, std = {NAME}[name]",
        "    return (x - mean.to(x)) / std.to(x)" if torch else "    return (x - mean) / std",
    ]


def _constant(stats: Statistics, array: str) -> list[str]:
    """`STANDARDISE = {...}`: each input's mean and std as float32 arrays of its shape, their
    values wrapped to 100 columns (and left so by the formatter)."""
    dtype = "dtype=torch.float32" if array == "torch.tensor" else "DTYPE"
    lines = [
        "# normalize = true: each input less the training split's mean, over its deviation (a",
        "# feature that never changed there has deviation 1), as training and nnspec predict do",
        "# fmt: off",
        f"{NAME} = {{",
    ]
    for name, pair in stats.items():
        lines.append(f'    "{name}": (')
        for values in pair:
            shape = ", ".join(map(str, values.shape))
            reshape = f".reshape({shape})," if values.ndim != 1 else ","
            lines += _wrapped(f"{array}(", values.reshape(-1), f", {dtype}){reshape}", 8)
        lines.append("    ),")
    return [*lines, "}", "# fmt: on"]


def _wrapped(opening: str, values: np.ndarray, closing: str, indent: int) -> list[str]:
    """`opening[v, v, ...]closing`, the values as float32's shortest decimal forms, on one line
    when it fits 100 columns, else over several between the opening and the closing."""
    pad, items = " " * indent, [str(np.float32(v)) for v in values]
    one = f"{pad}{opening}[{', '.join(items)}]{closing}"
    if len(one) <= 100:
        return [one]
    lines, line = [f"{pad}{opening}["], pad + "    "
    for item in items:
        if len(line) + len(item) + 1 > 100 and line.strip():
            lines.append(line.rstrip())
            line = pad + "    "
        line += item + ", "
    lines.append(line.rstrip())
    return [*lines, f"{pad}]{closing}"]


# ---- ONNX -------------------------------------------------------------------------------------
def _onnx(emitted: bytes, stats: Statistics) -> bytes:
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(emitted)
    graph = model.graph
    first = []
    for name, (mean, std) in stats.items():
        centred, scaled = f"{name}/normalize_sub", f"{name}/normalize"
        _rename_uses(graph, name, scaled)
        graph.initializer.extend(
            [
                numpy_helper.from_array(mean.astype(np.float32), f"{name}/normalize_mean"),
                numpy_helper.from_array(std.astype(np.float32), f"{name}/normalize_std"),
            ]
        )
        first += [
            helper.make_node("Sub", [name, f"{name}/normalize_mean"], [centred], name=centred),
            helper.make_node("Div", [centred, f"{name}/normalize_std"], [scaled], name=scaled),
        ]
    nodes = first + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(deterministic=True)


def _rename_uses(graph, old: str, new: str) -> None:
    """Every node of `graph` and of its subgraphs (a Scan's body) that reads `old` reads `new`."""
    from onnx import AttributeProto

    for node in graph.node:
        for i, value in enumerate(node.input):
            if value == old:
                node.input[i] = new
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                _rename_uses(attribute.g, old, new)
            elif attribute.type == AttributeProto.GRAPHS:
                for sub in attribute.graphs:
                    _rename_uses(sub, old, new)
