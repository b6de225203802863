"""The grid layout: a Kohonen map drawn as the chart draws it, its input cells each linked to
every cell of a grid.

A network is drawn as a grid when it is one layer whose kind has `drawn_as = "grid"` (`som`),
read from the network's one input through layers that add no cells of their own (`flatten`), with
nothing after the map but such layers. Any other network, one that reads a map's winners with a
dense layer say, is laid out in columns (`layout.py`).

The chart draws a handful of cells whatever the size: at most `MAX_INPUTS` input cells and a grid
of at most `MAX_SIDE` x `MAX_SIDE` units (the first, middle and last rows and columns), with the
real sizes written under the drawing when only some are drawn.

The grid is seen in perspective from the inputs: its rows fan out from them, each unit on a ray
of its own, one row's units going away from the inputs, so that a link from any input passes
clear of every cell it does not join (the same rule as the columns keep: `CELL / 2` plus a
margin) and cells stand a pitch apart at least. `RADIUS`, `DEPTH` and `TURN` were chosen inside
the region where that holds for every grid up to 3 x 3 and up to 3 inputs, not at its edge
(tests/test_grid_layout.py checks each case).
"""

from __future__ import annotations

import math

from ..kinds import Cell
from ..program import Layer, Program
from .kinds import KIND_DRAWING
from .scene import CELL, Disc, Line, Scene, measure, oriented, text

MAX_SIDE = 3  # the chart's Kohonen map is a 3 x 3 grid
MAX_INPUTS = 3  # input cells drawn at most (the chart draws 2)
RADIUS = 4.0  # P from the inputs' axis point to the grid's nearest units
DEPTH = 0.9  # P further away for each column of a row
TURN = 0.26  # radians between neighbouring rays
LABEL = 6.5  # points: the sizes under a sampled grid and the annotations


def grid_layer(program: Program) -> Layer | None:
    """The layer drawn as a grid, when the whole network is that map (see the module's
    docstring); None: lay it out in columns."""
    maps = [layer for layer in program.layers if layer.kind.drawn_as == "grid"]
    if len(maps) != 1 or len(program.inputs) != 1:
        return None
    for layer in program.layers:
        if layer is maps[0] or layer.kind.source:
            continue
        if not KIND_DRAWING[layer.kind.name].folds or len(layer.inputs) != 1:
            return None
    return maps[0]


def shown(count: int, most: int) -> list[int]:
    """The indices drawn of `count`: all when they fit, else the first, the middle ones and the
    last, `most` of them."""
    if count <= most:
        return list(range(count))
    return [round(k * (count - 1) / (most - 1)) for k in range(most)]


def unit_points(rows: int, cols: int) -> list[tuple[float, float]]:
    """Where each drawn unit of a `rows` x `cols` grid sits, row-major: on the ray of its own at
    angle (its rank in row-major order, centred) * TURN, RADIUS + column * DEPTH away."""
    points = []
    for i in range(rows):
        for j in range(cols):
            angle = ((i - (rows - 1) / 2) * cols + (j - (cols - 1) / 2)) * -TURN
            reach = RADIUS + j * DEPTH
            points.append((reach * math.cos(angle), reach * math.sin(angle)))
    return points


def layout_grid(
    program: Program, grid: Layer, *, scope: str, annotate: bool = False, orient: str = "lr"
) -> Scene:
    """The input cells in a column on the network's axis, the map's drawn units fanned out to
    their right, every input linked to every unit; under it the real sizes when only some are
    drawn, and with `annotate` the map's name, kind and shape."""
    source = program.inputs[0]
    features = program.layer(source).shape.size
    inputs = shown(features, MAX_INPUTS)
    rows, cols = grid.options.grid
    kept_rows, kept_cols = shown(rows, MAX_SIDE), shown(cols, MAX_SIDE)
    starts = [(0.0, (len(inputs) - 1) / 2 - k) for k in range(len(inputs))]
    ends = unit_points(len(kept_rows), len(kept_cols))
    scene = Scene()
    for a in starts:
        for b in ends:
            scene.add(Line((a, b)))
    for (x, y), unit in zip(starts, inputs, strict=True):
        scene.add(Disc(x, y, Cell.INPUT, f"cell:{scope}:{source}:{unit}"))
    units = [i * cols + j for i in kept_rows for j in kept_cols]
    for (x, y), unit in zip(ends, units, strict=True):
        scene.add(Disc(x, y, grid.kind.cell, f"cell:{scope}:{grid.name}:{unit}"))
    lines = []
    if len(inputs) < features:
        lines.append(f"{features} inputs, {len(inputs)} drawn")
    if (len(kept_rows), len(kept_cols)) != (rows, cols):
        lines.append(f"{rows} x {cols} units, {len(kept_rows)} x {len(kept_cols)} drawn")
    if annotate:
        lines += [grid.name, f"{grid.kind.name} {grid.shape}, grid {rows} x {cols}"]
    x = sum(p[0] for p in starts + ends) / len(starts + ends)
    y = min(p[1] for p in starts + ends) - CELL / 2 - 0.2
    height = measure("x", LABEL)[1]
    for line in lines:
        scene.add(text(x, y, line, LABEL, "below", bold=annotate and line == grid.name))
        y -= height
    return oriented(scene, orient)
