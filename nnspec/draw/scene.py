"""A drawing as plain shapes, in units of the chart's grid pitch P, before any plotting.

Layout builds a `Scene`; composition shifts and joins scenes; rendering hands the
shapes to matplotlib. Keeping geometry here lets the tests read a drawing without
parsing an image, and keeps every size in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

from ..kinds import Cell

# ---- the chart's geometry, in units of the grid pitch P (ZOO.md) ------------------------
P_INCHES = 0.4  # one grid pitch on paper
P_POINTS = P_INCHES * 72
CELL = 0.62  # cell diameter
LINK = 0.024  # link width
LOOP = 0.51 * CELL  # loop diameter
LOOP_RISE = 0.55 * CELL  # loop centre above the cell centre
ARC_RISE = 0.5  # apex of an arc beyond the row it passes
ARROW = 0.16  # arrowhead length
DOT = 0.035  # radius of an ellipsis' dots


@dataclass(frozen=True, slots=True)
class Disc:
    """One cell: a filled circle of the cell type's colour, with its inner mark: the cell type's,
    or the mark of the layer kind `variant` when that kind has one of its own (attention)."""

    x: float
    y: float
    cell: Cell
    gid: str
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """A link: a polyline (straight or a sampled curve), under the cells."""

    points: tuple[tuple[float, float], ...]
    dashed: bool = False
    arrow: bool = False  # an arrowhead at the last point


@dataclass(frozen=True, slots=True)
class Loop:
    """The loop on top of a recurrent cell, centred at (x, y); the cell covers its lower part."""

    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Dots:
    """The ellipsis of a wide layer: three small dots."""

    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Text:
    """A text anchored at (x, y) and lying on `side` of it (center, right, left, above, below);
    size in P."""

    x: float
    y: float
    text: str
    size: float  # points
    side: str = "center"
    bold: bool = False
    color: str = "black"
    width: float = 0.0
    height: float = 0.0

    def box(self) -> tuple[float, float, float, float]:
        w, h = self.width, self.height
        left = {
            "center": self.x - w / 2,
            "above": self.x - w / 2,
            "below": self.x - w / 2,
            "right": self.x,
            "left": self.x - w,
        }[self.side]
        bottom = {
            "center": self.y - h / 2,
            "right": self.y - h / 2,
            "left": self.y - h / 2,
            "above": self.y,
            "below": self.y - h,
        }[self.side]
        return left, bottom, left + w, bottom + h


@dataclass(frozen=True, slots=True)
class Frame:
    """A dashed rounded box around a sub-network."""

    x0: float
    y0: float
    x1: float
    y1: float


Shape = Disc | Line | Loop | Dots | Text | Frame


@dataclass
class Scene:
    """The shapes of a drawing, in any order: rendering puts links under cells and text on top."""

    shapes: list[Shape] = field(default_factory=list)

    def add(self, *shapes: Shape) -> None:
        self.shapes.extend(shapes)

    def extend(self, other: Scene) -> None:
        self.shapes.extend(other.shapes)

    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of everything drawn, cells and loops with their full size."""
        boxes = [_box(shape) for shape in self.shapes]
        if not boxes:
            return 0.0, 0.0, 0.0, 0.0
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    def moved(self, dx: float, dy: float) -> Scene:
        return Scene([_map(shape, lambda x, y: (x + dx, y + dy), None) for shape in self.shapes])

    def cells(self) -> list[Disc]:
        return [
            shape
            for shape in self.shapes
            if isinstance(shape, Disc) and shape.gid.startswith("cell:")
        ]


def _box(shape: Shape) -> tuple[float, float, float, float]:
    if isinstance(shape, Disc):
        r = CELL / 2
        return shape.x - r, shape.y - r, shape.x + r, shape.y + r
    if isinstance(shape, Loop):
        r = LOOP / 2
        return shape.x - r, shape.y - r, shape.x + r, shape.y + r
    if isinstance(shape, (Line, Dots)):
        xs, ys = [p[0] for p in shape.points], [p[1] for p in shape.points]
        return min(xs), min(ys), max(xs), max(ys)
    if isinstance(shape, Text):
        return shape.box()
    return shape.x0, shape.y0, shape.x1, shape.y1


def _map(shape: Shape, point, sides: dict[str, str] | None) -> Shape:
    """`shape` with every point passed through `point`; `sides` turns text sides (None: keep)."""
    if isinstance(shape, (Disc, Loop)):
        x, y = point(shape.x, shape.y)
        return replace(shape, x=x, y=y)
    if isinstance(shape, (Line, Dots)):
        return replace(shape, points=tuple(point(x, y) for x, y in shape.points))
    if isinstance(shape, Text):
        x, y = point(shape.x, shape.y)
        return replace(shape, x=x, y=y, side=sides[shape.side] if sides else shape.side)
    (x0, y0), (x1, y1) = point(shape.x0, shape.y0), point(shape.x1, shape.y1)
    return Frame(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


# top to bottom: the flow runs down the page and the chart's "top" becomes the left
_TURN = {"center": "center", "right": "below", "left": "above", "above": "left", "below": "right"}


def oriented(scene: Scene, orient: str) -> Scene:
    """A network laid out left to right, turned to run top to bottom when `orient` is 'tb'."""
    if orient == "lr":
        return scene
    return Scene([_map(shape, lambda x, y: (-y, -x), _TURN) for shape in scene.shapes])


# ---- text --------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def measure(text: str, size: float, bold: bool = False) -> tuple[float, float]:
    """Width and line height of one line of text in P, measured from the font's glyphs."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    if not text.strip():
        return 0.0, size * 1.25 / P_POINTS
    path = TextPath(
        (0, 0),
        text,
        size=size,
        prop=FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"),
    )
    return float(path.get_extents().width) / P_POINTS, size * 1.25 / P_POINTS


def text(x: float, y: float, words: str, size: float, side: str = "center", **style) -> Text:
    width, height = measure(words, size, style.get("bold", False))
    return Text(x, y, words, size, side, width=width, height=height, **style)


def wrap(words: str, size: float, width: float, bold: bool = False) -> list[str]:
    """Word wrap into as few lines as fit in `width` P, each as wide as the others can make it: no
    line is left with a lone word (a single long word stays whole)."""
    lines = _greedy(words, size, width, bold)
    narrow, wide = 0.0, width  # the narrowest width that still needs no more lines
    for _ in range(20):
        middle = (narrow + wide) / 2
        narrow, wide = (
            (narrow, middle)
            if len(_greedy(words, size, middle, bold)) <= len(lines)
            else (middle, wide)
        )
    return _greedy(words, size, wide, bold)


def _greedy(words: str, size: float, width: float, bold: bool) -> list[str]:
    lines: list[str] = []
    for word in words.split():
        if lines and measure(f"{lines[-1]} {word}", size, bold)[0] <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


# ---- curves ------------------------------------------------------------------------------
def arc(
    start: tuple[float, float], end: tuple[float, float], apex: float, clear=(), samples: int = 32
) -> tuple[tuple[float, float], ...]:
    """A cubic Bezier from `start` to `end` whose middle reaches height `apex` (above or below the
    ends), raised (or lowered) further where it would not pass over (or under) every point of
    `clear`.

    Both inner control points sit at one height h, a quarter of the way in from each end: then the
    curve's x does not depend on h, and its y at any x is linear in h, so each point of `clear` is
    met exactly by solving for h.
    """
    (x0, y0), (x3, y3) = start, end
    up = apex >= (y0 + y3) / 2
    h = (apex - (y0 + y3) / 8) / 0.75  # the middle of the curve is at (y0 + y3) / 8 + 3h / 4
    for x, y in clear:
        if x3 != x0 and 0 < (x - x0) / (x3 - x0) < 1:
            a, b, c, d = _bernstein(_along((x - x0) / (x3 - x0)))
            wanted = (y - a * y0 - d * y3) / (b + c)
            h = max(h, wanted) if up else min(h, wanted)
    x1, x2 = x0 + (x3 - x0) / 4, x3 - (x3 - x0) / 4
    points = []
    for i in range(samples + 1):
        a, b, c, d = _bernstein(i / samples)
        points.append((a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * h + c * h + d * y3))
    return tuple(points)


def _bernstein(t: float) -> tuple[float, float, float, float]:
    return (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3


def _along(fraction: float) -> float:
    """The t at which the curve has gone `fraction` of the way from start to end
    (x rises steadily with t)."""
    lo, hi = 0.0, 1.0
    for _ in range(40):
        t = (lo + hi) / 2
        _, b, c, d = _bernstein(t)
        if b / 4 + c * 3 / 4 + d < fraction:
            lo = t
        else:
            hi = t
    return (lo + hi) / 2


def trim_end(
    points: tuple[tuple[float, float], ...], radius: float
) -> tuple[tuple[float, float], ...]:
    """The polyline cut where it enters the circle of `radius` around its last point
    (arrowheads stay visible)."""
    ex, ey = points[-1]
    kept = [p for p in points if math.dist(p, (ex, ey)) > radius]
    if not kept:
        return points
    (px, py) = kept[-1]
    following = points[len(kept)] if len(kept) < len(points) else points[-1]
    # step from the last point outside towards the next one until the circle is reached
    (qx, qy) = following
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if math.dist((px + (qx - px) * mid, py + (qy - py) * mid), (ex, ey)) > radius:
            lo = mid
        else:
            hi = mid
    return tuple(kept) + ((px + (qx - px) * lo, py + (qy - py) * lo),)
