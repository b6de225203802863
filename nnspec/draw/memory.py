"""Memory cells beneath a controller: the chart's neural Turing machine and differentiable neural
computer, whose controller reads and writes an external memory.

The network is laid out in columns as any other (`layout.py`); each layer of a kind in
`MEMORY_KINDS` (its controller's cells, in its column) then gets `CELLS` memory cells in a row
beneath the whole drawing, centred under its column, each linked to the controller's lowest cell
(the heads read and write there), with the memory's real size written under them. The chart
draws three M cells whatever the size. A link passes under no text: it is cut where it would
cross an annotation. Drawn top to bottom (`orient="tb"`), where the annotations stand to the
right of the cells, the memory lies to their left.
"""

from __future__ import annotations

from ..kinds import Cell
from ..program import Program
from .scene import CELL, Disc, Line, Scene, Text, text

MEMORY_KINDS = ("ntm", "dnc")  # kinds with an external memory of `slots` cells of `width`
CELLS = 3  # memory cells drawn, whatever the memory's size (the chart's three M cells)
DROP = 1.5  # P from the lowest thing drawn to the memory's row
LABEL = 6.5  # points: the memory's size under its cells
CLEAR = 0.08  # P kept free around a text a link is cut at


def add_memory(scene: Scene, program: Program, scope: str, orient: str = "lr") -> None:
    """Memory cells beneath each memory layer's column of `scene` (before it is oriented: the
    side that "tb" turns to the left when `orient` is "tb")."""
    side = 1.0 if orient == "tb" else -1.0  # -1: below, in the scene's own coordinates
    for layer in program.layers:
        if layer.kind.name not in MEMORY_KINDS:
            continue
        prefix = f"cell:{scope}:{layer.name}:"
        cells = [disc for disc in scene.cells() if disc.gid.startswith(prefix)]
        if not cells:
            continue
        end = max(cells, key=lambda disc: side * disc.y)  # the cell nearest the memory
        x = sum(disc.x for disc in cells) / len(cells)
        x0, y0, x1, y1 = scene.bounds()
        y = (y1 if side > 0 else y0) + side * DROP
        texts = [shape.box() for shape in scene.shapes if isinstance(shape, Text)]
        for k in range(CELLS):
            mx = x + (k - (CELLS - 1) / 2)
            for piece in _around(((end.x, end.y), (mx, y)), texts):
                scene.add(Line(piece))
            scene.add(Disc(mx, y, Cell.MEMORY, f"cell:{scope}:{layer.name}.memory:{k}"))
        o = layer.options
        words = f"memory {o.slots} x {o.width}"
        scene.add(
            text(x, y + side * (CELL / 2 + 0.2), words, LABEL, "above" if side > 0 else "below")
        )


def _around(segment, boxes) -> list[tuple[tuple[float, float], ...]]:
    """The pieces of a straight segment outside every box (each widened by CLEAR)."""
    (ax, ay), (bx, by) = segment
    cuts = []
    for left, bottom, right, top in boxes:
        lo, hi = 0.0, 1.0  # Liang-Barsky: the part of the segment inside the box
        for p, q in (
            (-(bx - ax), ax - (left - CLEAR)),
            (bx - ax, (right + CLEAR) - ax),
            (-(by - ay), ay - (bottom - CLEAR)),
            (by - ay, (top + CLEAR) - ay),
        ):
            if p == 0:
                if q < 0:
                    lo, hi = 1.0, 0.0
                continue
            t = q / p
            lo, hi = (max(lo, t), hi) if p < 0 else (lo, min(hi, t))
        if lo < hi:
            cuts.append((lo, hi))
    pieces, start = [], 0.0
    for lo, hi in sorted(cuts):
        if lo > start:
            pieces.append((start, lo))
        start = max(start, hi)
    if start < 1.0:
        pieces.append((start, 1.0))
    point = lambda t: (ax + t * (bx - ax), ay + t * (by - ay))  # noqa: E731
    return [(point(a), point(b)) for a, b in pieces if b - a > 1e-9]
