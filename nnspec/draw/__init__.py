"""Drawing: checked networks -> diagrams in the style of the Asimov Institute's Neural Network Zoo.

    from nnspec.model import drawables, zoo_files
    model.draw("xor.svg")                        # one network; .svg, .png or .pdf
    draw(drawables(models), "gan.png", palette="colorblind", annotate=True, orient="tb")
    make_zoo(zoo_files("specs"), "zoo")          # poster (SVG, PNG, PDF) and index.html

What is drawn comes in as `Drawable`s (a checked program with its name, description, GAN
pairing and whether it reproduces its input) and `ZooFile`s, built by `nnspec.model`: nothing
here reads a spec or a train section. The stages, in the order data flows: `layout` (a program
-> a `Scene` of cells and links in grid units), `page` (titles, GAN pairs, grids, legend),
`render` (a scene -> bytes, matplotlib only), `zoo` (spec files -> poster and web page).
Nothing here imports torch; matplotlib is imported only when something is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

from .cells import PALETTES
from .output import (
    DPI,
    FORMATS,
    ORIENTS,
    DrawError,
    check_orient,
    choose_palette,
    output_format,
    write_atomic,
)
from .page import Drawable, figure
from .render import render
from .zoo import ZooFile, make_zoo


def draw(
    drawables: Drawable | list[Drawable],
    path: str | os.PathLike,
    *,
    palette: str = "asimov",
    annotate: bool = False,
    orient: str = "lr",
) -> Path:
    """Draw one network (or several, as one figure) to `path`, whose extension picks SVG, PNG or
    PDF.

    palette: 'asimov' (the chart's colours) or 'colorblind'; annotate: names, kinds,
    shapes and activations under the columns; orient: 'lr' (left to right) or 'tb'.
    Raises `DrawError` for an unknown format or option, or a path that cannot be written.
    """
    fmt = output_format(path)
    chosen = choose_palette(palette)
    check_orient(orient)
    units = list(drawables) if isinstance(drawables, (list, tuple)) else [drawables]
    scene = figure(units, annotate=annotate, orient=orient)
    return write_atomic(path, render(scene, chosen, fmt, DPI))


__all__ = [
    "FORMATS",
    "ORIENTS",
    "PALETTES",
    "DrawError",
    "Drawable",
    "ZooFile",
    "draw",
    "make_zoo",
    "output_format",
]
