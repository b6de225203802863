"""The layer table of a checked network, as Keras' model.summary() or torchinfo print it."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .kinds.base import LITERAL_VALUES, Kind, Options
from .program import Layer, Program


def render_summary(program: Program, width: int = 100, color: bool = False) -> str:
    console = Console(
        file=io.StringIO(),
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        force_jupyter=False,  # in a notebook too: the text, not a display of its own
    )
    title = program.name + (f": {program.description}" if program.description else "")
    # Text, not markup: a description such as "a [/] b" is shown as written, never parsed
    table = Table(title=Text(title), title_justify="left", show_lines=False, header_style="bold")
    table.add_column("Layer", no_wrap=True)
    table.add_column("Kind")
    table.add_column("Output shape", no_wrap=True)
    table.add_column("Params", justify="right")
    table.add_column("Inputs")
    for row in summary_rows(program):
        table.add_row(*map(Text, row))
    console.print(table)
    for line in totals_lines(program):
        console.print(line, markup=False)
    return console.file.getvalue()


def summary_rows(program: Program) -> list[tuple[str, str, str, str, str]]:
    """The table's rows, one a layer: layer, kind, output shape, parameters, inputs (the notebook
    view shows the same rows as HTML)."""
    outputs = {o.name: o for o in program.outputs}
    rows = []
    for layer in program.layers:
        kind = layer.kind.name + options_text(layer.kind, layer.options)
        shape = str(layer.shape)
        if layer.name in outputs and outputs[layer.name].reduce:
            shape += f" -> {outputs[layer.name].reduce} {outputs[layer.name].shape}"
        inputs = ", ".join(
            f"{link.source}{'.' + link.port if link.port else ''}"
            + (" (t-1)" if link.delayed else "")
            for link in layer.inputs
        )
        rows.append((layer.name, kind, shape, params_text(layer), inputs))
    return rows


def totals_lines(program: Program) -> list[str]:
    """The lines under the table: the parameter totals, the inputs and outputs, and how a network
    with a time axis runs."""
    total, trainable = program.param_count, program.trainable_count
    lines = [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        "Inputs: " + ", ".join(f"{name} {program.layer(name).shape}" for name in program.inputs),
        "Outputs: "
        + ", ".join(
            f"{o.name} {o.shape}"
            + (
                f" ({o.reduce} step)"
                if o.reduce == "last"
                else f" ({o.reduce} over steps)"
                if o.reduce
                else ""
            )
            for o in program.outputs
        ),
    ]
    if program.timed:
        lines.append(time_text(program))
    return lines


def params_text(layer: Layer) -> str:
    """A layer's parameter count; one that uses another's parameters names it, and counts
    only those it holds: `shares ea.h`, `64 + enc.weight.T`."""
    count = layer.param_count
    if layer.shares is not None:
        return f"shares {layer.shares}"
    borrowed = [b.name + ".T" * b.transposed for b in layer.borrowed.values()]
    return " + ".join([f"{count:,}"] * (bool(count) or not borrowed) + borrowed)


def time_text(program: Program) -> str:
    """How a network with a time axis runs: step by step through its `~>` links, with cells
    that keep a state, or over whole sequences with no recurrence at all."""
    stepped = [layer.name for layer in program.layers if layer.recurrent]
    if stepped:
        return f"Runs step by step; stepped through time: {', '.join(stepped)}"
    cells = [layer.name for layer in program.layers if layer.kind.stateful]
    if cells:
        return f"Runs over whole sequences; state kept from step to step in: {', '.join(cells)}"
    return "Runs over whole sequences (no recurrence)"


def options_text(kind: Kind, options: Options) -> str:
    """The options as written in a spec, from the kind's schema: positional ones bare, in order,
    then every other required option and every option that differs from its default (a bare
    flag when true; literal weights and centres abbreviated to [...])."""
    fields = type(options).model_fields
    parts = [show_value(getattr(options, k)) for k in kind.positional if fields[k].is_required()]
    for key, info in fields.items():
        value = getattr(options, key)
        if key in kind.positional and info.is_required():
            continue
        if not info.is_required() and value == info.default:
            continue
        if value is True and not info.is_required():
            parts.append(key)
        elif LITERAL_VALUES in info.metadata and isinstance(value, tuple):
            parts.append(f"{key}=[...]")
        else:
            parts.append(f"{key}={show_value(value)}")
    return f" {', '.join(parts)}" if parts else ""


def show_value(value) -> str:
    if value is None:  # a size a block's input leaves open
        return "?"
    if isinstance(value, tuple):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
