"""Composition: network drawings with their titles, GAN pairs, grids of networks, and the legend.

What is drawn comes in as `Drawable`s, built by `nnspec.model` from checked models: the drawing
never reads a spec or a train section itself. Every function returns a `Scene` in grid units;
nothing here plots. A network's drawing keeps its axis at y = 0, so the two halves of a GAN line
up and the arrow between them runs from the generator's output to the discriminator's input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..kinds import Cell
from ..program import Program
from .kinds import KIND_DRAWING
from .layout import layout_network
from .scene import CELL, Disc, Frame, Line, Scene, text, wrap


@dataclass(frozen=True)
class Drawable:
    """One network as a drawing needs it: its checked program, its name and description, the GAN
    it is half of, and whether its outputs are trained to reproduce what it is shown (drawn as
    match input output cells: an autoencoder's, a GAN generator's)."""

    program: Program
    name: str
    description: str | None = None
    gan: tuple[str, str] | None = None  # (generator, discriminator) when it is half of a GAN
    reproduces: bool = False


TITLE, DESCRIPTION, ROLE, KEY = 12.0, 8.5, 9.0, 8.0  # points
GRID_WIDTH = 10.0  # P: one cell of a grid of networks, as on the chart's poster
WRAP = 8.5  # P: descriptions wrap at this width, or at the drawing's when it is wider
TILE_TOP = 0.3  # P between a poster tile's top and its panel's


def entries(drawables: list[Drawable]) -> list[list[Drawable]]:
    """The networks to draw as units: a GAN's generator and discriminator together, every other
    network alone."""
    by_name = {drawable.name: drawable for drawable in drawables}
    grouped, taken = [], set()
    for drawable in drawables:
        if drawable.name in taken:
            continue
        unit = _gan_pair(drawable, by_name) or [drawable]
        grouped.append(unit)
        taken.update(d.name for d in unit)
    return grouped


def _gan_pair(drawable: Drawable, by_name: dict[str, Drawable]) -> list[Drawable] | None:
    """The generator and the discriminator, when both halves of the drawable's GAN are here."""
    if drawable.gan is None:
        return None
    generator, discriminator = drawable.gan
    if generator in by_name and discriminator in by_name and generator != discriminator:
        return [by_name[generator], by_name[discriminator]]
    return None


def entry_scene(entry: list[Drawable], scope: str | None = None, **options) -> Scene:
    """One network with its name and description, or a GAN pair as two marked sub-networks."""
    if len(entry) == 2:
        return _pair(entry, scope, **options)
    return titled(entry[0], scope, **options)


def titled(model: Drawable, scope: str | None = None, **options) -> Scene:
    """The network centred on x = 0, its axis at y = 0, its name and description above it."""
    body = layout_network(
        model.program, scope=_scope(scope, model), reproduces=model.reproduces, **options
    )
    x0, y0, x1, y1 = body.bounds()
    scene = body.moved(-(x0 + x1) / 2, 0.0)
    lines = [text(0.0, 0.0, model.name, TITLE, "above", bold=True)]
    if model.description:
        lines += [
            text(0.0, 0.0, line, DESCRIPTION, "above")
            for line in wrap(model.description, DESCRIPTION, max(x1 - x0, WRAP))
        ]
    y = y1 + 0.35
    for line in reversed(lines):  # stacked upwards from just above the drawing
        scene.add(text(line.x, y, line.text, line.size, "above", bold=line.bold))
        y += line.height
    return scene


def _scope(scope: str | None, model: Drawable) -> str:
    return f"{scope}/{model.name}" if scope else model.name


def _pair(entry: list[Drawable], scope: str | None, **options) -> Scene:
    """Generator and discriminator side by side, each framed and named by its role (unless its own
    name, its title inside the frame, already says it), an arrow between."""
    scene = Scene()
    x = 0.0
    edges = []
    for model, role in zip(entry, ("generator", "discriminator"), strict=True):
        panel = titled(model, scope, **options)
        x0, y0, x1, y1 = panel.bounds()
        panel = panel.moved(x - x0 + 0.4, 0.0)
        frame = Frame(x, y0 - 0.4, x + (x1 - x0) + 0.8, y1 + 0.4)
        scene.extend(panel)
        scene.add(frame)
        if model.name != role:
            scene.add(
                text(
                    frame.x0 + 0.2, frame.y1 + 0.05, role, ROLE, "above", bold=True, color="#555555"
                )
            )
        edges.append(frame)
        x = frame.x1 + 1.6
    left, right = edges[0].x1 + 0.1, edges[1].x0 - 0.1
    scene.add(
        Line(((left, 0.0), (right, 0.0)), arrow=True),
        text((left + right) / 2, 0.12, "samples", KEY - 1, "above"),
    )
    return scene


# ---- grids and the legend ---------------------------------------------------------------------
def grid(panels: list[Scene], columns: int, width: float = GRID_WIDTH, gap: float = 1.2) -> Scene:
    """Panels in rows of `columns` grid cells, each centred in as many cells as it needs, tops
    aligned.

    Each panel takes the first row with room for it (file order otherwise), so that a small network
    fills the gap a wide one left at the end of a row instead of standing alone.
    """
    rows: list[list[tuple[Scene, int]]] = []
    for panel in panels:
        x0, _, x1, _ = panel.bounds()
        span = min(columns, max(1, math.ceil((x1 - x0 + gap) / width)))
        row = next((row for row in rows if sum(s for _, s in row) + span <= columns), None)
        if row is None:
            rows.append(row := [])
        row.append((panel, span))
    scene, top = Scene(), 0.0
    for row in rows:
        bottom, start = top, 0
        for panel, span in row:
            x0, y0, x1, y1 = panel.bounds()
            moved = panel.moved((start + span / 2) * width - (x0 + x1) / 2, top - y1)
            scene.extend(moved)
            bottom = min(bottom, moved.bounds()[1])
            start += span
        top = bottom - gap
    return scene


@dataclass(frozen=True)
class Tile:
    """The tiles of the poster one panel takes: its box (x0, y0, x1, y1), and how many tiles
    wide and tall it is."""

    box: tuple[float, float, float, float]
    across: int = 1
    down: int = 1


def tile_size(
    panels: list[Scene], margin: float = 2 * TILE_TOP, most: float = 1.4
) -> tuple[float, float]:
    """(width, height) of the poster's one tile: as wide as the widest panel and as tall as the
    tallest, `margin` over, leaving out those more than `most` times the median (a GAN's two
    halves side by side, a Kohonen map's fan: they take two tiles, or more)."""
    sizes = [(x1 - x0, y1 - y0) for x0, y0, x1, y1 in (panel.bounds() for panel in panels)]

    def common(values: list[float]) -> float:
        middle = sorted(values)[len(values) // 2]
        return max(v for v in values if v <= most * middle) + margin

    return common([w for w, _ in sizes]), common([h for _, h in sizes])


def taken(panel: Scene, size: tuple[float, float]) -> tuple[int, int]:
    """How many tiles of `size` the panel takes side by side and one above the other, with
    `TILE_TOP` of white around it."""
    x0, y0, x1, y1 = panel.bounds()
    return tuple(
        max(1, math.ceil((extent + 2 * TILE_TOP) / side - 1e-9))
        for extent, side in ((x1 - x0, size[0]), (y1 - y0, size[1]))
    )


def tiles(panels: list[Scene], columns: int, size: tuple[float, float]) -> tuple[Scene, list[Tile]]:
    """Panels in tiles of one `size`, `columns` to a row, in their order row by row, each
    centred across its tiles and at their top (the names of a row in line, as on the chart): a
    panel wider or taller than a tile takes as many side by side or one above the other as it
    needs (`taken`), at the first free place after the panel before it (later panels fill the
    tiles beside a tall one); the scene and each panel's tiles, in the panels' order."""
    width, height = size
    used: set[tuple[int, int]] = set()
    scene, placed = Scene(), []
    at = 0  # the place after the last panel's, counted row by row
    for panel in panels:
        x0, y0, x1, y1 = panel.bounds()
        across, down = taken(panel, size)
        across = min(columns, across)
        while True:
            row, col = divmod(at, columns)
            block = {(row + i, col + j) for i in range(down) for j in range(across)}
            if col + across <= columns and not block & used:
                break
            at += 1
        used |= block
        at += across
        box = (col * width, -(row + down) * height, (col + across) * width, -row * height)
        dx, dy = (box[0] + box[2] - x0 - x1) / 2, box[3] - TILE_TOP - y1
        scene.extend(panel.moved(dx, dy))
        placed.append(Tile(box, across, down))
    return scene, placed


def legend(scene: Scene, width: float) -> Scene:
    """The cell types `scene` uses, in the chart's order, each followed by the kinds with marks of
    their own drawn in it (attention, readout: `KIND_DRAWING`'s order), and the `~>` arrow when it
    has one, in rows `width` wide."""
    used = {(disc.cell, disc.variant) for disc in scene.cells()}
    items = []
    for cell in Cell:
        for variant in [None, *(kind for kind, d in KIND_DRAWING.items() if d.mark)]:
            if (cell, variant) not in used:
                continue
            name = cell.value if variant is None else variant
            label = name.capitalize() + (
                "" if cell in (Cell.KERNEL, Cell.CONVOLUTION_POOL) else " cell"
            )
            key = "key:" + name.replace(" ", "-")
            items.append(
                (
                    [Disc(CELL / 2, 0.0, cell, key, variant)],
                    text(CELL + 0.15, 0.0, label, KEY, "right"),
                )
            )
    if any(isinstance(s, Line) and s.dashed for s in scene.shapes):
        arrow = Line(((0.0, 0.0), (0.8, 0.0)), dashed=True, arrow=True)
        items.append(([arrow], text(0.95, 0.0, "~> value of the previous step", KEY, "right")))
    return _flow(items, width)


def _flow(items, width: float) -> Scene:
    """Legend items left to right, wrapping into rows no wider than `width`, centred."""
    rows, x = [[]], 0.0
    for shapes, label in items:
        size = label.x + label.width
        if x and x + size > width:
            rows.append([])
            x = 0.0
        rows[-1].append((shapes, label, x))
        x += size + 0.6
    scene = Scene()
    for i, row in enumerate(rows):
        _, last, start = row[-1]
        row_width = start + last.x + last.width
        for shapes, label, start in row:
            scene.extend(Scene([*shapes, label]).moved(start - row_width / 2, -i * 0.85))
    return scene


def with_legend(body: Scene, gap: float = 0.8) -> Scene:
    """`body` with the legend of its cell types centred under it."""
    x0, y0, x1, _ = body.bounds()
    key = legend(body, max(x1 - x0, 10.0))
    if not key.shapes:
        return body
    k0, _, k1, k3 = key.bounds()
    scene = Scene(list(body.shapes))
    scene.extend(key.moved((x0 + x1) / 2 - (k0 + k1) / 2, y0 - gap - k3))
    return scene


def figure(drawables: list[Drawable], **options) -> Scene:
    """What `draw` draws: one network, a GAN pair, or every network of a file in a grid; the
    legend below."""
    groups = entries(drawables)
    if len(groups) == 1:
        return with_legend(entry_scene(groups[0], **options))
    return with_legend(grid([entry_scene(g, **options) for g in groups], columns=3))
