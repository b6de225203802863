"""Rendering: a `Scene` -> SVG, PNG or PDF bytes, with matplotlib alone (no Graphviz, no LaTeX).

The output is deterministic: the same scene gives the same bytes (a fixed SVG hash
salt, and no dates or version strings in the files' metadata). Every cell is one
patch whose SVG id is its `gid`, so a reader of the SVG can count cells and read
their fills.
"""

from __future__ import annotations

import io
import math

from .cells import Palette
from .scene import (
    ARROW,
    CELL,
    DOT,
    LINK,
    LOOP,
    P_INCHES,
    P_POINTS,
    Disc,
    Dots,
    Frame,
    Line,
    Loop,
    Scene,
    Text,
)

MARGIN = 0.5  # P of white around the drawing
MARK_WIDTH = LINK * 1.25

_RC = {
    # clip-path ids are hashes; a fixed salt keeps them the same from run to run
    "svg.hashsalt": "nnspec",
    "svg.fonttype": "path",  # text as shapes: the SVG looks the same without the font installed
    "pdf.fonttype": 42,
    "font.family": "DejaVu Sans",  # shipped with matplotlib: the same glyphs on every machine
    "path.simplify": False,
}
_METADATA = {
    "svg": {"Date": None, "Creator": "nnspec"},
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "Creator": "nnspec", "Producer": None},
}
_ALIGN = {
    "center": ("center", "center"),
    "right": ("left", "center"),
    "left": ("right", "center"),
    "above": ("center", "bottom"),
    "below": ("center", "top"),
}
# layers of the drawing, bottom to top: links under the loops under the cells under the text
_Z = {"line": 1, "loop": 2, "frame": 2, "cell": 3, "mark": 4, "text": 5}


def render(scene: Scene, palette: Palette, fmt: str, dpi: float = 200) -> bytes:
    """The scene drawn on a white page one grid pitch per `P_INCHES`, in format `fmt`."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        figure = _figure(scene, palette)
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=dpi, metadata=_METADATA[fmt], facecolor="white")
    return buffer.getvalue()


def _figure(scene: Scene, palette: Palette):
    from matplotlib.figure import Figure

    x0, y0, x1, y1 = scene.bounds()
    x0, y0, x1, y1 = x0 - MARGIN, y0 - MARGIN, x1 + MARGIN, y1 + MARGIN
    figure = Figure(figsize=((x1 - x0) * P_INCHES, (y1 - y0) * P_INCHES), facecolor="white")
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(x0, x1)
    axes.set_ylim(y0, y1)
    axes.set_axis_off()
    _draw_lines(axes, [s for s in scene.shapes if isinstance(s, Line)])
    for shape in scene.shapes:
        if isinstance(shape, Disc):
            _draw_cell(axes, shape, palette)
        elif isinstance(shape, Loop):
            _draw_loop(axes, shape)
        elif isinstance(shape, Dots):
            _draw_dots(axes, shape)
        elif isinstance(shape, Text):
            _draw_text(axes, shape)
        elif isinstance(shape, Frame):
            _draw_frame(axes, shape)
    return figure


def _points(width_in_p: float) -> float:
    return width_in_p * P_POINTS


# ---- links ----------------------------------------------------------------------------------
def _draw_lines(axes, lines: list[Line]) -> None:
    from matplotlib.collections import LineCollection

    solid = [line.points for line in lines if not line.dashed]
    if solid:  # hundreds of straight links: one collection draws them fast and keeps the SVG small
        axes.add_collection(
            LineCollection(
                solid, colors="black", linewidths=_points(LINK), zorder=_Z["line"], capstyle="round"
            )
        )
    for line in lines:
        if line.dashed:
            xs, ys = zip(*line.points, strict=True)
            axes.plot(
                xs, ys, color="black", linewidth=_points(LINK), dashes=(4, 2.5), zorder=_Z["line"]
            )
        if line.arrow and len(line.points) > 1:
            (px, py), (x, y) = line.points[-2], line.points[-1]
            _arrowhead(axes, x, y, x - px, y - py, ARROW)


def _arrowhead(axes, x: float, y: float, dx: float, dy: float, length: float) -> None:
    from matplotlib.patches import Polygon

    norm = math.hypot(dx, dy) or 1.0
    ux, uy = dx / norm, dy / norm
    half = length * 0.4
    base = (x - ux * length, y - uy * length)
    corners = [
        (x, y),
        (base[0] - uy * half, base[1] + ux * half),
        (base[0] + uy * half, base[1] - ux * half),
    ]
    axes.add_patch(
        Polygon(corners, closed=True, facecolor="black", edgecolor="none", zorder=_Z["mark"])
    )


# ---- cells ----------------------------------------------------------------------------------
def _draw_cell(axes, disc: Disc, palette: Palette) -> None:
    from matplotlib.patches import Circle

    axes.add_patch(
        Circle(
            (disc.x, disc.y),
            CELL / 2,
            facecolor=palette.fill(disc.cell),
            edgecolor="black",
            linewidth=_points(LINK),
            zorder=_Z["cell"],
            gid=disc.gid,
        )
    )
    mark = palette.mark(disc.cell, disc.variant)
    if mark is not None:  # the mark's id names its shape and its cell, for readers of the SVG
        _MARKS[mark](axes, disc.x, disc.y).set_gid(f"mark:{mark}@{disc.gid}")


def _outline(axes, corners, closed: bool = True) -> None:
    from matplotlib.patches import Polygon

    return axes.add_patch(
        Polygon(
            corners,
            closed=closed,
            fill=False,
            edgecolor="black",
            linewidth=_points(MARK_WIDTH),
            joinstyle="miter",
            zorder=_Z["mark"],
        )
    )


def _strokes(axes, x: float, y: float, segments) -> None:
    from matplotlib.collections import LineCollection

    moved = [[(x + a, y + b), (x + c, y + d)] for (a, b), (c, d) in segments]
    return axes.add_collection(
        LineCollection(moved, colors="black", linewidths=_points(MARK_WIDTH), zorder=_Z["mark"])
    )


def _ring(axes, x, y):  # 0.64 of the cell's diameter (ZOO.md)
    from matplotlib.patches import Circle

    return axes.add_patch(
        Circle(
            (x, y),
            0.32 * CELL,
            fill=False,
            edgecolor="black",
            linewidth=_points(MARK_WIDTH),
            zorder=_Z["mark"],
        )
    )


def _dot(axes, x, y):
    from matplotlib.patches import Circle

    return axes.add_patch(
        Circle((x, y), 0.11 * CELL, facecolor="black", edgecolor="none", zorder=_Z["mark"])
    )


def _triangle(axes, x, y, down: bool = False):  # apex up, 0.64 wide and 0.56 high (ZOO.md)
    w, h = 0.32 * CELL, 0.28 * CELL
    s = -1 if down else 1
    return _outline(axes, [(x - w, y - s * h), (x + w, y - s * h), (x, y + s * h)])


def _square(axes, x, y):  # 0.53 of the diameter (ZOO.md)
    a = 0.265 * CELL
    return _outline(axes, [(x - a, y - a), (x + a, y - a), (x + a, y + a), (x - a, y + a)])


def _diamond(axes, x, y):
    a = 0.32 * CELL
    return _outline(axes, [(x, y - a), (x + a, y), (x, y + a), (x - a, y)])


def _hourglass(axes, x, y):
    w, h = 0.24 * CELL, 0.28 * CELL
    return _outline(axes, [(x - w, y + h), (x + w, y + h), (x - w, y - h), (x + w, y - h)])


def _eye(axes, x, y):  # attention: an almond with a ring for its pupil, one path
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    w, h, pupil = 0.33 * CELL, 0.19 * CELL, 0.1 * CELL
    upper = [(x + w * math.cos(a), y + h * math.sin(a)) for a in _steps(0.0, math.pi)]
    lower = [(x + w * math.cos(a), y - h * math.sin(a)) for a in _steps(math.pi, 0.0)]
    ring = Path.circle((x, y), pupil)
    almond = Path([*upper, *lower[1:]], closed=True)  # the last point is the first
    return axes.add_patch(
        PathPatch(
            Path.make_compound_path(almond, ring),
            fill=False,
            edgecolor="black",
            linewidth=_points(MARK_WIDTH),
            joinstyle="miter",
            zorder=_Z["mark"],
        )
    )


def _steps(start: float, end: float, count: int = 24) -> list[float]:
    return [start + (end - start) * k / count for k in range(count + 1)]


def _funnel(axes, x, y):  # readout: a wide rim narrowing to a spout, every item gathered into one
    w, rim, neck, spout, low = 0.3 * CELL, 0.22 * CELL, -0.04 * CELL, 0.06 * CELL, -0.27 * CELL
    return _outline(
        axes,
        [
            (x - w, y + rim),
            (x + w, y + rim),
            (x + spout, y + neck),
            (x + spout, y + low),
            (x - spout, y + low),
            (x - spout, y + neck),
        ],
    )


def _spokes(angles: tuple[float, ...], radius: float):
    return [
        (
            (-radius * math.cos(a), -radius * math.sin(a)),
            (radius * math.cos(a), radius * math.sin(a)),
        )
        for a in angles
    ]


_R = 0.3 * CELL
_MARKS = {
    "circle": _ring,
    "dot": _dot,
    "triangle": _triangle,
    "triangle_down": lambda axes, x, y: _triangle(axes, x, y, down=True),
    "square": _square,
    "diamond": _diamond,
    "hourglass": _hourglass,
    "eye": _eye,
    "funnel": _funnel,
    "plus": lambda axes, x, y: _strokes(axes, x, y, _spokes((0, math.pi / 2), _R)),
    "cross": lambda axes, x, y: _strokes(axes, x, y, _spokes((math.pi / 4, -math.pi / 4), _R)),
    "asterisk": lambda axes, x, y: _strokes(
        axes, x, y, _spokes((math.pi / 2, math.pi / 6, -math.pi / 6), _R)
    ),
    "minus": lambda axes, x, y: _strokes(axes, x, y, [((-_R, 0), (_R, 0))]),
    "bars": lambda axes, x, y: _strokes(
        axes, x, y, [((-_R, 0.1 * CELL), (_R, 0.1 * CELL)), ((-_R, -0.1 * CELL), (_R, -0.1 * CELL))]
    ),
    "hash": lambda axes, x, y: _strokes(
        axes,
        x,
        y,
        [((-0.25 * CELL, o), (0.25 * CELL, o)) for o in (-0.09 * CELL, 0.09 * CELL)]
        + [((o, -0.25 * CELL), (o, 0.25 * CELL)) for o in (-0.09 * CELL, 0.09 * CELL)],
    ),
}
MARKS = frozenset(_MARKS)


# ---- loops, ellipses, text, frames ----------------------------------------------------------
def _draw_loop(axes, loop: Loop) -> None:
    from matplotlib.patches import Circle

    axes.add_patch(
        Circle(
            (loop.x, loop.y),
            LOOP / 2,
            fill=False,
            edgecolor="black",
            linewidth=_points(LINK),
            zorder=_Z["loop"],
        )
    )


def _draw_dots(axes, dots: Dots) -> None:
    from matplotlib.patches import Circle

    for x, y in dots.points:
        axes.add_patch(Circle((x, y), DOT, facecolor="black", edgecolor="none", zorder=_Z["mark"]))


def _draw_text(axes, label: Text) -> None:
    ha, va = _ALIGN[label.side]
    axes.text(
        label.x,
        label.y,
        label.text,
        fontsize=label.size,
        fontweight="bold" if label.bold else "normal",
        ha=ha,
        va=va,
        color=label.color,
        zorder=_Z["text"],
    )


def _draw_frame(axes, frame: Frame) -> None:
    from matplotlib.patches import FancyBboxPatch

    axes.add_patch(
        FancyBboxPatch(
            (frame.x0, frame.y0),
            frame.x1 - frame.x0,
            frame.y1 - frame.y0,
            boxstyle="round,pad=0,rounding_size=0.3",
            fill=False,
            edgecolor="#555555",
            linewidth=_points(LINK * 1.5),
            linestyle=(0, (5, 3)),
            zorder=_Z["frame"],
        )
    )
