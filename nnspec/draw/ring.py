"""The ring layout: a network of one fully connected population, drawn as the chart draws the
Hopfield network, the Boltzmann machine and the Markov chain: cells on a circle, every pair
linked.

A network is drawn as a ring when it is one layer whose kind has `drawn_as = "ring"`, read from
one input (or none) of the ring's own width, with nothing after the ring but layers that add no
cells of their own (`KIND_DRAWING`'s `folds`). When the ring's kind folds too, its cells are the
input's (the chart's backfed input cells: the cue is written into them and the recalled state
read from them) and carry the input's name; otherwise the ring layer's. Any other network, one
that mixes a ring kind with layers of other kinds, is laid out in columns (`layout.py`).

Each unit's cell type comes from `ring_cells(layer)`: the kind's `ring_cells(options, units)`
when it has one, else `hidden=H` (an option) makes the last H units probabilistic hidden cells
and the rest the kind's cell, else every unit is the kind's cell. A ring of more than `MAX_RING`
units is drawn as `MAX_RING` of them, each kind of cell in proportion (one at least), with the
real size written under it: the chart draws a handful of cells whatever the size.

Sizes follow the chart's geometry (ZOO.md, `scene.py`): the circle is just wide enough for
neighbouring cells to stand one pitch apart, and for the link between a cell's two neighbours to
pass clear of it.
"""

from __future__ import annotations

import math

from ..kinds import Cell
from ..program import Layer, Program
from .kinds import KIND_DRAWING
from .scene import CELL, Disc, Line, Scene, measure, oriented, text

MAX_RING = 8  # the chart's Hopfield network and Markov chain draw 8 cells
LABEL = 6.5  # points: the size under a sampled ring and the annotations
CLEAR = 0.09  # P between a cell's edge and the link between its two neighbours


def ring_layer(program: Program) -> Layer | None:
    """The layer drawn as a ring, when the whole network is that ring (see the module's
    docstring); None: lay it out in columns."""
    rings = [layer for layer in program.layers if layer.kind.drawn_as == "ring"]
    if len(rings) != 1:
        return None
    ring = rings[0]
    feeds = {link.source for link in ring.inputs}
    if len(feeds) > 1 or any(
        not program.layer(name).kind.source
        or program.layer(name).shape.features != ring.shape.features
        for name in feeds
    ):
        return None
    chain = {ring.name}  # the ring and the folding layers read after it (topological order)
    for layer in program.layers:
        if layer is ring or layer.name in feeds:
            continue
        if (
            not KIND_DRAWING[layer.kind.name].folds
            or len(layer.inputs) != 1
            or layer.inputs[0].source not in chain
        ):
            return None
        chain.add(layer.name)
    return ring


def ring_cells(layer: Layer) -> list[Cell]:
    """The cell type of each of the ring's units, in order."""
    units = layer.shape.features
    own = getattr(layer.kind, "ring_cells", None)
    if own is not None:
        return list(own(layer.options, units))
    hidden = getattr(layer.options, "hidden", None)
    if isinstance(hidden, int) and not isinstance(hidden, bool) and 0 < hidden <= units:
        return [layer.kind.cell] * (units - hidden) + [Cell.PROBABILISTIC_HIDDEN] * hidden
    return [layer.kind.cell] * units


def shown_units(cells: list[Cell], most: int = MAX_RING) -> list[int]:
    """The units drawn: all of them when they fit, else `most` spread over each run of one cell
    type in proportion to its length (one of each at least), first and last of a run first."""
    if len(cells) <= most:
        return list(range(len(cells)))
    runs: list[tuple[int, int]] = []  # (start, length) of each run of one cell type
    for i, cell in enumerate(cells):
        if runs and cells[runs[-1][0]] is cell:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    if len(runs) >= most:  # more kinds of cell than room: the first unit of the first runs
        return [start for start, _ in runs[:most]]
    counts = [1] * len(runs)
    for _ in range(most - len(runs)):  # each cell to the run with the most units per drawn cell
        k = max(range(len(runs)), key=lambda r: (runs[r][1] / counts[r], -r))
        counts[k] += 1
    shown = []
    for (start, length), count in zip(runs, counts, strict=True):
        count = min(count, length)
        step = (length - 1) / max(count - 1, 1)
        shown += [start + round(j * step) for j in range(count)]
    return shown


def radius(count: int) -> float:
    """The circle's radius for `count` cells: neighbours one pitch apart, and the link between a
    cell's two neighbours `CLEAR` off its edge."""
    if count <= 1:
        return 0.0
    if count == 2:
        return 0.5
    apart = 1.0 / (2 * math.sin(math.pi / count))
    clear = (CELL / 2 + CLEAR) / (1 - math.cos(2 * math.pi / count))
    return max(apart, clear)


def layout_ring(
    program: Program, ring: Layer, *, scope: str, annotate: bool = False, orient: str = "lr"
) -> Scene:
    """The ring's cells on a circle centred on the network's axis (the first at the top left,
    going clockwise), every pair linked; under it the real size when only some units are drawn,
    and with `annotate` the ring layer's name, kind and shape."""
    cells = ring_cells(ring)
    shown = shown_units(cells)
    r = radius(len(shown))
    step = 2 * math.pi / len(shown)
    start = math.pi / 2 + (step / 2 if len(shown) % 2 == 0 else 0.0)  # a flat top, as the chart
    points = [
        (r * math.cos(start - k * step), r * math.sin(start - k * step)) for k in range(len(shown))
    ]
    scene = Scene()
    for a in range(len(points)):
        for b in range(a + 1, len(points)):
            scene.add(Line((points[a], points[b])))
    owner = _owner(program, ring)
    width = program.layer(owner).shape.features  # units past the input's are the ring's own
    for (x, y), unit in zip(points, shown, strict=True):
        name = owner if unit < width else ring.name
        scene.add(Disc(x, y, cells[unit], f"cell:{scope}:{name}:{unit}"))
    lines = []
    if len(shown) < len(cells):
        lines.append(f"{len(cells)} units, {len(shown)} drawn")
    if annotate:
        lines += [ring.name, f"{ring.kind.name} {ring.shape}"]
    y = -r - CELL / 2 - 0.2
    height = measure("x", LABEL)[1]
    for line in lines:
        scene.add(text(0.0, y, line, LABEL, "below", bold=annotate and line == ring.name))
        y -= height
    return oriented(scene, orient)


def _owner(program: Program, ring: Layer) -> str:
    """Whose cells the ring's are: the input it reads when its kind adds no cells of its own (the
    chart's backfed input cells; units past the input's width, a Boltzmann machine's hidden
    units, stay the ring layer's), else the ring layer's."""
    if KIND_DRAWING[ring.kind.name].folds and ring.inputs:
        return ring.inputs[0].source
    return ring.name
