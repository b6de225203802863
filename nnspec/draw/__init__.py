"""Drawing: checked networks -> diagrams in the style of the Asimov Institute's Neural Network Zoo.

    from nnspec.draw import draw, make_zoo
    draw(model, "xor.svg")                       # one network; .svg, .png or .pdf
    draw(models, "gan.png", palette="colorblind", annotate=True, orient="tb")
    make_zoo("specs", "zoo")                     # poster (SVG, PNG, PDF) and index.html

The stages, in the order data flows: `layout` (a program -> a `Scene` of cells and
links in grid units), `page` (titles, GAN pairs, grids, legend), `render` (a scene ->
bytes, matplotlib only), `zoo` (a folder of specs -> poster and web page).
Nothing here imports torch; matplotlib is imported only when something is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

from .cells import PALETTES, Palette
from .output import FORMATS, DrawError, output_format, write_atomic

ORIENTS = ("lr", "tb")
DPI = 200  # PNGs sharp enough for a slide


def draw(
    models,
    path: str | os.PathLike,
    *,
    palette: str = "asimov",
    annotate: bool = False,
    orient: str = "lr",
) -> Path:
    """Draw one model (or several, as one figure) to `path`, whose extension picks SVG, PNG or PDF.

    palette: 'asimov' (the chart's colours) or 'colorblind'; annotate: names, kinds,
    shapes and activations under the columns; orient: 'lr' (left to right) or 'tb'.
    Raises `DrawError` for an unknown format or option, or a path that cannot be written.
    """
    from .page import figure
    from .render import render

    fmt = output_format(path)
    chosen = choose_palette(palette)
    check_orient(orient)
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    scene = figure(models, annotate=annotate, orient=orient)
    return write_atomic(path, render(scene, chosen, fmt, DPI))


def make_zoo(
    directory: str | os.PathLike | None = None, out: str | os.PathLike = "zoo", **options
) -> list[Path]:
    """Every network in `directory` (default: the bundled specs) as a poster and a web page in `out`."""
    from .zoo import make_zoo as make

    return make(directory, out, **options)


def choose_palette(name: str) -> Palette:
    if name not in PALETTES:
        raise DrawError(f"unknown palette '{name}'; choose one of: {', '.join(PALETTES)}")
    return PALETTES[name]


def check_orient(orient: str) -> None:
    if orient not in ORIENTS:
        raise DrawError(
            f"unknown orientation '{orient}'; choose lr (left to right) or tb (top to bottom)"
        )


__all__ = ["FORMATS", "ORIENTS", "PALETTES", "DrawError", "draw", "make_zoo", "output_format"]
