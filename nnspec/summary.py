"""The layer table of a checked network, as Keras' model.summary() or torchinfo print it."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from .check import Program
from .kinds.base import Options


def render_summary(program: Program, width: int = 100, color: bool = False) -> str:
    console = Console(
        file=io.StringIO(),
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
    )
    title = program.name + (f": {program.description}" if program.description else "")
    table = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    table.add_column("Layer", no_wrap=True)
    table.add_column("Kind")
    table.add_column("Output shape", no_wrap=True)
    table.add_column("Params", justify="right")
    table.add_column("Inputs")
    outputs = {o.name: o for o in program.outputs}
    for layer in program.layers:
        kind = layer.kind.name + options_text(layer.options)
        shape = str(layer.shape)
        if layer.name in outputs and outputs[layer.name].reduce:
            shape += f" -> {outputs[layer.name].reduce} {outputs[layer.name].shape}"
        inputs = ", ".join(
            f"{link.source}{'.' + link.port if link.port else ''}"
            + (" (t-1)" if link.delayed else "")
            for link in layer.inputs
        )
        count = layer.param_count
        table.add_row(layer.name, kind, shape, f"{count:,}" if count else "0", inputs)
    console.print(table)
    total, trainable = program.param_count, program.trainable_count
    console.print(f"Total params: {total:,}")
    console.print(f"Trainable params: {trainable:,}")
    console.print(f"Non-trainable params: {total - trainable:,}")
    console.print(
        "Inputs: " + ", ".join(f"{name} {program.layer(name).shape}" for name in program.inputs)
    )
    console.print(
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
        )
    )
    if program.timed:
        stepped = [layer.name for layer in program.layers if layer.recurrent]
        console.print(
            "Runs step by step"
            + (f"; stepped through time: {', '.join(stepped)}" if stepped else "")
        )
    return console.file.getvalue()


def options_text(options: Options) -> str:
    """The options that differ from their defaults, as written in a spec (literal weights abbreviated)."""
    parts = []
    for key, info in type(options).model_fields.items():
        value = getattr(options, key)
        if info.is_required() and key in (
            "units",
            "channels",
            "size",
            "vocabulary",
            "dim",
            "rate",
            "mode",
        ):
            parts.append(_show(value))
        elif not info.is_required() and value != info.default:
            parts.append(
                key
                if value is True
                else f"{key}={'[...]' if key in ('weights', 'biases') else _show(value)}"
            )
    return f" {', '.join(parts)}" if parts else ""


def _show(value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
