"""The block layout: a reservoir drawn as the chart draws the liquid state machine, the extreme
learning machine and the echo state network: input cells, a 3 x 4 block of cells with sparse
random links among them, and the readout's cells.

A network is drawn as a block when it has one layer that is its reservoir (a kind with
`drawn_as = "block"`, an echo state or liquid state reservoir; or a `frozen` dense layer, the
extreme learning machine's random hidden layer, which is never trained), read from the network's
one input through layers that add no cells of their own, and after it at most one layer with
cells of its own (the readout: a frozen dense layer needs one), itself followed only by such
layers. Any other network, one with a frozen layer among trained ones say, is laid out in
columns (`layout.py`).

The chart draws a handful of cells whatever the size: at most `MAX_INPUTS` input cells, a block
of `ROWS` x `COLS` cells and at most `MAX_OUTPUTS` readout cells, with the real sizes written under
the drawing. Every input cell links to every cell of the block's first column and every cell of
its last column to every readout cell; inside the block, each cell links to one or two cells of
the next column and some to a neighbour in their own column, chosen by a fixed random draw
(`inner_links`: the same drawing every time). The columns stand `PITCH` apart and a block of
looped cells (a recurrent reservoir) `LOOPED_PITCH` apart along the column, so that no link passes
under a cell or loop it does not join (tests/test_block_layout.py checks it).
"""

from __future__ import annotations

import random
import zlib

from ..kinds import Cell
from ..program import Layer, Program
from .cells import LOOPED, cell_type
from .grid import shown
from .kinds import KIND_DRAWING
from .scene import CELL, LOOP_RISE, Disc, Line, Loop, Scene, measure, oriented, text

ROWS, COLS = 3, 4  # the chart's reservoirs are 3 x 4 blocks
MAX_INPUTS = 3  # the chart draws In3
MAX_OUTPUTS = 2  # and Out2
PITCH = 1.2  # P between the block's columns, and from the inputs and to the outputs
LOOPED_PITCH = 1.25  # P between looped cells along a column (their loops keep clear)
LABEL = 6.5  # points: the sizes under the drawing and the annotations


def _reservoir(layer: Layer) -> bool:
    return layer.kind.drawn_as == "block" or (
        layer.kind.name == "dense" and bool(getattr(layer.options, "frozen", False))
    )


def _folds(layer: Layer) -> bool:
    return KIND_DRAWING[layer.kind.name].folds and len(layer.inputs) == 1


def block_layer(program: Program) -> tuple[Layer, Layer | None] | None:
    """(the reservoir, its readout or None) when the whole network is drawn as a block (see the
    module's docstring); None: lay it out in columns."""
    found = [layer for layer in program.layers if _reservoir(layer)]
    if len(found) != 1 or len(program.inputs) != 1:
        return None
    reservoir = found[0]
    readout = None
    before = True  # layers in topological order: those before the reservoir only fold
    for layer in program.layers:
        if layer.kind.source:
            continue
        if layer is reservoir:
            before = False
            continue
        if _folds(layer):
            continue
        if before or readout is not None:
            return None
        readout = layer
    if readout is None and reservoir.kind.drawn_as != "block":  # fixed weights, no readout
        return None
    if readout is not None and not _reads(program, readout, reservoir):
        return None
    return reservoir, readout


def _reads(program: Program, reader: Layer, source: Layer) -> bool:
    """`reader` reads `source`, directly or through layers that add no cells."""
    names = {link.source for link in reader.inputs}
    while names:
        if source.name in names:
            return True
        names = {
            link.source
            for name in names
            for link in program.layer(name).inputs
            if _folds(program.layer(name))
        }
    return False


def inner_links(seed: str, rows: int = ROWS, cols: int = COLS) -> list[tuple[int, int]]:
    """The block's own links, as pairs of cell numbers (down each column, then across): each cell
    to one or two cells of the next column, every cell of the next column reached, and a few
    cells to the cell below them, by a random draw seeded with `seed` (the same every time)."""
    draw = random.Random(zlib.crc32(seed.encode()))
    links: set[tuple[int, int]] = set()
    for j in range(cols - 1):
        reached = set()
        for i in range(rows):
            for k in draw.sample(range(rows), min(rows, draw.choice((1, 1, 2)))):
                links.add((j * rows + i, (j + 1) * rows + k))
                reached.add(k)
        for k in set(range(rows)) - reached:  # every cell of the next column gets a link
            links.add((j * rows + draw.randrange(rows), (j + 1) * rows + k))
    for j in range(cols):
        for i in range(rows - 1):
            if draw.random() < 0.3:
                links.add((j * rows + i, j * rows + i + 1))
    return sorted(links)


def layout_block(
    program: Program,
    reservoir: Layer,
    readout: Layer | None,
    *,
    scope: str,
    annotate: bool = False,
    orient: str = "lr",
) -> Scene:
    """The input cells in a column on the network's axis, the block of the reservoir's cells to
    their right, the readout's cells after it; under it the real sizes, and with `annotate` the
    reservoir's name, kind and shape."""
    source = program.inputs[0]
    features = program.layer(source).shape.features
    cell = cell_type([reservoir], set(), False)  # its kind's, recurrent on a ~> cycle
    looped = cell in LOOPED
    inputs = shown(features, MAX_INPUTS)
    units = reservoir.shape.features
    rows, cols = block_shape(units)
    drawn = shown(units, rows * cols)
    starts = _column(0.0, len(inputs), 1.0)
    along = _column(0.0, rows, LOOPED_PITCH if looped else 1.0)
    cells = [(PITCH * (1 + k // rows), along[k % rows][1]) for k in range(len(drawn))]
    scene = Scene()
    for a in starts:
        for b in cells[:rows]:  # the block's first column
            scene.add(Line((a, b)))
    for a, b in inner_links(reservoir.kind.name + reservoir.name, rows, cols):
        if b < len(cells):
            scene.add(Line((cells[a], cells[b])))
    ends: list[tuple[float, float]] = []
    kept: list[int] = []
    if readout is not None:
        kept = shown(readout.shape.features, MAX_OUTPUTS)
        ends = _column(PITCH * (cols + 1), len(kept), 1.0)
        for a in cells[(cols - 1) * rows :]:  # its last column
            for b in ends:
                scene.add(Line((a, b)))
    for (x, y), unit in zip(starts, inputs, strict=True):
        scene.add(Disc(x, y, Cell.INPUT, f"cell:{scope}:{source}:{unit}"))
    for (x, y), unit in zip(cells, drawn, strict=True):
        if looped:
            scene.add(Loop(x, y + LOOP_RISE))
        scene.add(Disc(x, y, cell, f"cell:{scope}:{reservoir.name}:{unit}"))
    for (x, y), unit in zip(ends, kept, strict=True):  # only folding layers after the readout
        scene.add(Disc(x, y, Cell.OUTPUT, f"cell:{scope}:{readout.name}:{unit}"))
    lines = []
    if len(inputs) < features:
        lines.append(f"{features} inputs, {len(inputs)} drawn")
    lines.append(
        f"{units} units, {rows} x {cols} drawn" if units > rows * cols else f"{units} units"
    )
    if readout is not None and len(kept) < readout.shape.features:
        lines.append(f"{readout.shape.features} outputs, {len(kept)} drawn")
    if annotate:
        lines += [reservoir.name, f"{reservoir.kind.name} {reservoir.shape}"]
    points = starts + cells + ends
    x = (min(p[0] for p in points) + max(p[0] for p in points)) / 2
    y = min(p[1] for p in points) - CELL / 2 - 0.2
    height = measure("x", LABEL)[1]
    for line in lines:
        scene.add(text(x, y, line, LABEL, "below", bold=annotate and line == reservoir.name))
        y -= height
    return oriented(scene, orient)


def block_shape(units: int) -> tuple[int, int]:
    """(rows, columns) of the block drawn for `units` units: `ROWS` x `COLS`, or as few columns
    of up to `ROWS` cells as hold a smaller reservoir."""
    rows = min(ROWS, units)
    return rows, min(COLS, -(-units // rows))


def _column(u: float, count: int, step: float) -> list[tuple[float, float]]:
    """`count` points at `u`, `step` apart, centred on the axis."""
    return [(u, ((count - 1) / 2 - k) * step) for k in range(count)]
