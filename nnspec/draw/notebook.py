"""A network in Jupyter: `Model`'s repr methods show its diagram and its layer table
(examples/tour.ipynb). Imported only when a notebook asks for them; matplotlib only as the
diagram is drawn.

    model = nnspec.load("xor.nn")
    model          # the diagram (image/svg+xml), and as HTML the diagram above the layer table
"""

from __future__ import annotations

import base64
import html

from ..program import Program
from .output import DPI, DrawError, choose_palette
from .page import Drawable, figure
from .render import render

# the columns of `nnspec summary`, each with its alignment
COLUMNS = (
    ("Layer", "left"),
    ("Kind", "left"),
    ("Output shape", "left"),
    ("Params", "right"),
    ("Inputs", "left"),
)


def notebook_bundle(drawables: list[Drawable]) -> dict[str, str]:
    """What a notebook shows for one network (`drawables` as `nnspec.model.drawables` makes
    them): its diagram, the SVG `model.draw("x.svg")` writes, and as HTML that diagram above the
    layer table of `nnspec summary`. A network nnspec cannot draw shows its table and why."""
    program = drawables[0].program
    try:
        svg = render(figure(drawables), choose_palette("asimov"), "svg", DPI).decode()
    except DrawError as error:
        note = f"<p><em>no diagram: {html.escape(error.message)} [{error.code}]</em></p>"
        return {"text/html": note + summary_html(program)}
    return {"image/svg+xml": svg, "text/html": svg_image(svg) + summary_html(program)}


def svg_image(svg: str) -> str:
    """The SVG as an image of its own (a data URI), so that its ids and styles stay inside it."""
    data = base64.b64encode(svg.encode()).decode("ascii")
    return f'<img alt="network diagram" src="data:image/svg+xml;base64,{data}">'


def summary_html(program: Program) -> str:
    """The layer table of `nnspec summary` as an HTML table, and the lines under it."""
    from ..summary import summary_rows, totals_lines

    head = "".join(f'<th style="text-align:{align}">{name}</th>' for name, align in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="text-align:{align}">{html.escape(cell)}</td>'
            for cell, (_, align) in zip(row, COLUMNS, strict=True)
        )
        + "</tr>"
        for row in summary_rows(program)
    )
    title = program.name + (f": {program.description}" if program.description else "")
    totals = "<br>".join(html.escape(line) for line in totals_lines(program))
    return (
        f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>{totals}</p>"
    )
