"""Drawing: zoo cells by cell type, fills and marks, formats, determinism, every bundled spec,
the CLI.

Fills are checked against ZOO.md's legend as written there (not against nnspec's own table),
and cells are counted in the SVG by their ids (`cell:NETWORK:LAYER:INDEX`).
"""

import itertools
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, SPECS, TEST_SPECS, sampled
from hypothesis import assume, given, settings
from test_properties import SETTINGS, registry_network

import nnspec
from nnspec.draw import DrawError, draw
from nnspec.draw.cells import ASIMOV, COLORBLIND, PALETTES
from nnspec.draw.kinds import KIND_DRAWING
from nnspec.draw.page import figure
from nnspec.draw.render import MARKS, render
from nnspec.draw.scene import CELL, LOOP, LOOP_RISE, Disc, Dots, Frame, Line, Loop, Scene, Text
from nnspec.kinds import Cell
from nnspec.model import drawables

SVG = "{http://www.w3.org/2000/svg}"

# ZOO.md's legend: fill and inner mark of every cell type
LEGEND = {
    Cell.INPUT: ("#ffcc00", None),
    Cell.BACKFED_INPUT: ("#ffcc00", "circle"),
    Cell.NOISY_INPUT: ("#ffcc00", "triangle"),
    Cell.HIDDEN: ("#66cc00", None),
    Cell.PROBABILISTIC_HIDDEN: ("#66cc00", "circle"),
    Cell.SPIKING_HIDDEN: ("#66cc00", "triangle"),
    Cell.CAPSULE: ("#66cc00", "square"),
    Cell.OUTPUT: ("#ff6600", None),
    Cell.MATCH_INPUT_OUTPUT: ("#ff6600", "circle"),
    Cell.RECURRENT: ("#0099ff", None),
    Cell.MEMORY: ("#0099ff", "circle"),
    Cell.GATED_MEMORY: ("#0099ff", "triangle"),
    Cell.KERNEL: ("#ff99ff", None),
    Cell.CONVOLUTION_POOL: ("#ff99ff", "circle"),
}


def read_svg(path) -> tuple[dict[str, str], dict[str, str]]:
    """(cell id -> fill, cell id -> mark shape) of every cell drawn in an SVG file (which must be
    valid XML)."""
    root = ET.parse(path).getroot()
    fills, marks = {}, {}
    for group in root.iter(f"{SVG}g"):
        gid = group.get("id", "")
        if gid.startswith("cell:"):
            style = group.find(f"{SVG}path").get("style")
            fills[gid] = re.search(r"fill: (#[0-9a-f]{6})", style).group(1)
        elif gid.startswith("mark:"):
            shape, cell = gid[len("mark:") :].split("@", 1)
            marks[cell] = shape
    return fills, marks


def models_of(path) -> list:
    return drawables(nnspec.load_all(path))


def spec(text: str) -> list:
    return drawables([nnspec.loads(text)])


# ---- the registry and the palettes ---------------------------------------------------------------
def test_every_palette_gives_every_cell_type_a_fill_and_a_known_mark():
    for palette in PALETTES.values():
        assert set(palette.cells) == set(Cell), palette.name
        for cell, (fill, mark) in palette.cells.items():
            assert re.fullmatch(r"#[0-9a-f]{6}", fill) and (mark is None or mark in MARKS), (
                palette.name,
                cell,
            )


def test_the_asimov_palette_is_the_charts_legend():
    assert ASIMOV.cells == LEGEND


def test_colorblind_palette_gives_every_cell_type_its_own_mark():
    shapes = [mark for _, mark in COLORBLIND.cells.values()]
    assert len(set(shapes)) == len(shapes) == len(Cell)


# Machado, Oliveira and Fernandes (2009), severity 1: dichromat vision in linear RGB
DEFICIENCIES = {
    "protanopia": [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ],
    "deuteranopia": [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ],
    "tritanopia": [
        [1.255528, -0.076749, -0.178779],
        [-0.078411, 0.930809, 0.147602],
        [0.004733, 0.691367, 0.303900],
    ],
    "normal vision": np.eye(3).tolist(),
}


def _linear(srgb):
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _lab(linear) -> np.ndarray:
    """CIELAB (D65) of a linear RGB colour."""
    xyz = (
        np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
        @ linear
    )
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _seen(fill: str, deficiency: str) -> np.ndarray:
    rgb = np.array([int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    simulated = np.clip(np.array(DEFICIENCIES[deficiency]) @ _linear(rgb), 0, 1)
    return _lab(simulated)


def closest_families(palette, deficiency: str) -> float:
    """The smallest CIELAB distance between two cell families' fills as a reader with
    `deficiency` sees them."""
    fills = sorted({fill for fill, _ in palette.cells.values()})
    return min(
        float(np.linalg.norm(_seen(a, deficiency) - _seen(b, deficiency)))
        for a, b in itertools.combinations(fills, 2)
    )


@pytest.mark.parametrize("deficiency", DEFICIENCIES)
def test_colorblind_palette_keeps_families_apart(deficiency):
    # 20 CIELAB units: colours a reader names apart at a glance (2.3 is barely noticeable)
    assert closest_families(COLORBLIND, deficiency) >= 20


def test_the_charts_own_colours_merge_for_common_deficiencies():
    """The simulation has teeth: it finds what the chart's readers reported (green and orange,
    yellow and green)."""
    assert (
        closest_families(ASIMOV, "deuteranopia") < 10
        and closest_families(ASIMOV, "protanopia") < 10
    )


def test_colorblind_fills_leave_black_marks_legible():
    for fill, _ in COLORBLIND.cells.values():
        rgb = _linear(np.array([int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5)]))
        luminance = float(np.dot([0.2126, 0.7152, 0.0722], rgb))
        assert (luminance + 0.05) / 0.05 >= 3, fill  # WCAG's 3:1 for graphics


# ---- one test per cell type of the chart's legend ------------------------------------------------
NOISY = """network denoise {
    input   x: 16
    dropout noise: 0.2
    dense   h: 4, act=relu
    dense   y: 16, act=sigmoid
    x -> noise -> h -> y
}
train { data = digits
        target = input }"""

# cell type: (models, layer whose cells show it); None: no spec can produce it yet (see below)
CASES = {
    Cell.INPUT: (lambda: models_of(SPECS / "xor.nn"), "x"),
    Cell.BACKFED_INPUT: None,
    Cell.NOISY_INPUT: (lambda: spec(NOISY), "x"),
    Cell.HIDDEN: (lambda: models_of(SPECS / "xor.nn"), "h"),
    Cell.PROBABILISTIC_HIDDEN: (lambda: models_of(SPECS / "vae.nn"), "z"),
    Cell.SPIKING_HIDDEN: (lambda: models_of(SPECS / "snn.nn"), "s1"),
    Cell.CAPSULE: None,
    Cell.OUTPUT: (lambda: models_of(SPECS / "xor.nn"), "y"),
    Cell.MATCH_INPUT_OUTPUT: (lambda: models_of(SPECS / "autoencoder.nn"), "out"),
    Cell.RECURRENT: (
        lambda: models_of(SPECS / "elman.nn"),
        "h",
    ),  # a dense layer on a cycle through ~>
    Cell.MEMORY: (lambda: models_of(SPECS / "lstm.nn"), "m"),
    Cell.GATED_MEMORY: (lambda: models_of(SPECS / "gru.nn"), "m"),
    Cell.KERNEL: (lambda: models_of(SPECS / "lenet.nn"), "c1"),
    Cell.CONVOLUTION_POOL: (lambda: models_of(SPECS / "lenet.nn"), "p1"),
}


def test_the_cases_cover_the_whole_legend():
    assert set(CASES) == set(Cell) == set(LEGEND)


@pytest.mark.parametrize("cell", list(Cell), ids=lambda c: c.value.replace(" ", "_"))
@pytest.mark.parametrize("palette", ["asimov", "colorblind"])
def test_cell_type_fill_and_mark(cell, palette, tmp_path):
    path = tmp_path / "cells.svg"
    if CASES[cell] is None:
        # backfed inputs (Hopfield, Boltzmann) and capsules have no layer kind yet: draw the cell
        # itself
        path.write_bytes(
            render(Scene([Disc(0.0, 0.0, cell, "cell:test:unit:0")]), PALETTES[palette], "svg")
        )
        layer = "unit"
    else:
        make, layer = CASES[cell]
        draw(make(), path, palette=palette)
    fills, marks = read_svg(path)
    mine = {gid: fill for gid, fill in fills.items() if gid.split(":")[2] == layer}
    assert mine, f"no cells drawn for '{layer}'"
    fill, mark = LEGEND[cell] if palette == "asimov" else COLORBLIND.cells[cell]
    assert set(mine.values()) == {fill}
    assert {marks.get(gid) for gid in mine} == {mark}


# ---- what is drawn -----------------------------------------------------------------------------
def test_one_cell_per_drawn_unit(tmp_path):
    draw(models_of(SPECS / "xor.nn"), tmp_path / "xor.svg")
    fills, _ = read_svg(tmp_path / "xor.svg")
    assert sorted(fills) == [
        "cell:xor:h:0",
        "cell:xor:h:1",
        "cell:xor:x:0",
        "cell:xor:x:1",
        "cell:xor:y:0",
    ]


def test_wide_layers_show_a_few_cells_an_ellipsis_and_their_size(tmp_path):
    models = models_of(SPECS / "dff.nn")  # 64 -> 128 -> 64 -> 10
    draw(models, tmp_path / "dff.svg")
    fills, _ = read_svg(tmp_path / "dff.svg")
    cells = {}
    for gid in fills:
        _, _, layer, index = gid.split(":")
        cells.setdefault(layer, []).append(int(index))
    assert sorted(cells["x"]) == [0, 1, 2, 61, 62, 63]
    assert sorted(cells["h1"]) == [0, 1, 2, 125, 126, 127]
    assert sorted(cells["out"]) == [0, 1, 8, 9]
    scene = figure(models)
    assert len([s for s in scene.shapes if isinstance(s, Dots)]) == 4
    assert {"64", "128", "10"} <= {s.text for s in scene.shapes if isinstance(s, Text)}


def test_the_name_description_and_legend_are_drawn():
    scene = figure(models_of(SPECS / "xor.nn"))
    texts = {s.text for s in scene.shapes if isinstance(s, Text)}
    assert {
        "xor",
        "XOR learned by a 2-2-1 network",
        "Input cell",
        "Hidden cell",
        "Output cell",
    } <= texts
    keys = {s.gid for s in scene.shapes if isinstance(s, Disc) and s.gid.startswith("key:")}
    assert keys == {"key:input", "key:hidden", "key:output"}


def _links(scene: Scene) -> list[Line]:
    return [s for s in scene.shapes if isinstance(s, Line)]


def _cells(scene: Scene, layer: str) -> list[Disc]:
    return [d for d in scene.cells() if d.gid.split(":")[2] == layer]


def test_dense_layers_are_fully_connected_and_convolutions_locally():
    scene = figure(models_of(SPECS / "xor.nn"))
    straight = [line for line in _links(scene) if len(line.points) == 2]
    assert len(straight) == 2 * 2 + 2 * 1
    lenet = figure(models_of(SPECS / "lenet.nn"))
    image, c1 = (
        _cells(lenet, "image"),
        _cells(lenet, "c1"),
    )  # rows 0, 1, 6, 7 of each 8x8 image drawn
    unit = {(d.x, d.y): int(d.gid.split(":")[3]) for d in image + c1}
    between = [
        tuple(unit[p] for p in line.points)
        for line in _links(lenet)
        if {line.points[0][0], line.points[-1][0]} == {image[0].x, c1[0].x}
    ]
    # a 3x3 kernel: each cell sees the drawn rows of its window (itself and its drawn neighbour),
    # none across the ellipsis
    assert sorted(between) == [(0, 0), (0, 1), (1, 0), (1, 1), (6, 6), (6, 7), (7, 6), (7, 7)]


def test_recurrent_cells_have_loops_and_delayed_links_have_a_direction():
    elman = figure(models_of(SPECS / "elman.nn"))
    loops = [s for s in elman.shapes if isinstance(s, Loop)]
    assert len(loops) == len(_cells(elman, "h")) == 4
    jordan = figure(models_of(SPECS / "jordan.nn"))
    arrows = [line for line in _links(jordan) if line.dashed and line.arrow]
    assert len(arrows) == 1 + 1  # y ~> h, and the legend's sample of it
    (y,) = _cells(jordan, "y")
    assert arrows[0].points[0] == (y.x, y.y)  # from the output back to the hidden layer


def test_skip_links_are_arcs_over_the_top_and_blocks_are_drawn_as_their_inner_layers():
    scene = figure(models_of(SPECS / "residual.nn"))
    drawn = {d.gid.split(":")[2] for d in scene.cells()}
    assert {f"r.{i}.{name}" for i in range(1, 7) for name in "abs"} <= drawn
    assert not any(name.endswith((".x", ".y")) for name in drawn)  # ports and the relu share cells
    arcs = [line for line in _links(scene) if len(line.points) > 2]
    tops = max(d.y for d in scene.cells())
    assert len(arcs) == 6 and all(max(y for _, y in arc.points) > tops for arc in arcs)


def test_gan_is_drawn_as_two_marked_sub_networks_side_by_side():
    scene = figure(models_of(SPECS / "gan.nn"))
    frames = sorted((s for s in scene.shapes if isinstance(s, Frame)), key=lambda f: f.x0)
    assert len(frames) == 2 and frames[0].x1 < frames[1].x0
    for frame, network in zip(frames, ("generator", "discriminator"), strict=True):
        mine = [d for d in scene.cells() if d.gid.split(":")[1] == network]
        assert mine and all(frame.x0 < d.x < frame.x1 for d in mine)
    assert {"generator", "discriminator"} <= {
        s.text for s in scene.shapes if isinstance(s, Text) and s.bold
    }
    assert {d.cell for d in scene.cells() if d.gid.startswith("cell:generator:point:")} == {
        Cell.MATCH_INPUT_OUTPUT
    }


def test_annotate_names_each_layer_with_its_kind_shape_and_activation():
    texts = {
        s.text
        for s in figure(models_of(SPECS / "lenet.nn"), annotate=True).shapes
        if isinstance(s, Text)
    }
    assert {"c1", "conv [8, 8, 8]", "relu", "+ flatten f"} <= texts


def test_orient_tb_runs_the_flow_down_the_page():
    models = models_of(SPECS / "xor.nn")
    lr, tb = figure(models), figure(models, orient="tb")
    x_lr, y_lr = _cells(lr, "x")[0], _cells(lr, "y")[0]
    x_tb, y_tb = _cells(tb, "x")[0], _cells(tb, "y")[0]
    assert x_lr.x < y_lr.x and x_tb.y > y_tb.y


# ---- nothing drawn on top of anything else -------------------------------------------------------
def _segment_distance(point, a, b) -> float:
    (px, py), (ax, ay), (bx, by) = point, a, b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy or 1.0)))
    return float(np.hypot(px - ax - t * dx, py - ay - t * dy))


def _links_between_cells(scene: Scene) -> list[Line]:
    """The straight solid links (not the arcs, the dashed `~>` arrows, nor a GAN's arrow)."""
    return [
        line
        for line in _links(scene)
        if len(line.points) == 2 and not line.dashed and not line.arrow
    ]


def loops_touching_other_cells(scene: Scene, clearance: float = 0.3) -> list[tuple[Loop, str]]:
    """Every loop that comes nearer than `clearance` (about half a cell) to a cell other than the
    one it sits on.

    On the chart's own grid (cells one pitch apart) a loop comes within 0.19 P of the cell above it,
    which reads as touching it once the link between the two runs through the loop."""
    found = []
    for loop in (s for s in scene.shapes if isinstance(s, Loop)):
        for disc in scene.cells():
            own = abs(np.hypot(loop.x - disc.x, loop.y - disc.y) - LOOP_RISE) < 1e-9
            if (
                not own
                and np.hypot(loop.x - disc.x, loop.y - disc.y) < LOOP / 2 + CELL / 2 + clearance
            ):
                found.append((loop, disc.gid))
    return found


def links_under_other_cells(scene: Scene) -> list[tuple[tuple, str]]:
    """Every straight link that passes under a cell it does not join (so that it seems to end
    there). Each link against all cells at once: `_segment_distance`'s arithmetic on arrays."""
    found = []
    cells = scene.cells()
    px, py = (np.array([getattr(disc, axis) for disc in cells], dtype=float) for axis in "xy")
    for line in _links_between_cells(scene):
        a, b = line.points
        (ax, ay), (bx, by) = a, b
        joins = (np.hypot(px - ax, py - ay) < 1e-9) | (np.hypot(px - bx, py - by) < 1e-9)
        dx, dy = bx - ax, by - ay
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy or 1.0), 0.0, 1.0)
        near = np.hypot(px - ax - t * dx, py - ay - t * dy) < CELL / 2 + 0.03
        found.extend((line.points, cells[i].gid) for i in np.flatnonzero(near & ~joins))
    return found


def texts_over_drawing(scene: Scene) -> list[tuple[str, str]]:
    """Every text whose box overlaps a cell, or that a straight link crosses (one of 200 points
    along the link lies inside the box). Each text against all links at once, as arrays."""
    found = []
    cells, links = scene.cells(), _links_between_cells(scene)
    t = np.linspace(0.0, 1.0, 200)
    ends = np.array([line.points for line in links], dtype=float).reshape(len(links), 2, 2)
    ax, ay, bx, by = (ends[:, end, axis, None] for end in (0, 1) for axis in (0, 1))  # [links, 1]
    along_x, along_y = ax + t * (bx - ax), ay + t * (by - ay)  # [links, 200]
    for label in (s for s in scene.shapes if isinstance(s, Text)):
        x0, y0, x1, y1 = label.box()
        for disc in cells:  # the box's nearest point to the cell's centre
            nx, ny = min(max(disc.x, x0), x1), min(max(disc.y, y0), y1)
            if np.hypot(disc.x - nx, disc.y - ny) < CELL / 2:
                found.append((label.text, disc.gid))
        inside = (x0 < along_x) & (along_x < x1) & (y0 < along_y) & (along_y < y1)
        found.extend((label.text, f"link {links[i].points}") for i in np.flatnonzero(inside.any(1)))
    return found


RECURRENT = [SPECS / f"{name}.nn" for name in ("elman", "jordan", "rnn", "lstm", "gru")] + [
    EXAMPLES / "elman.nn",
    EXAMPLES / "jordan.nn",
]


@pytest.mark.parametrize("orient", ["lr", "tb"])
@pytest.mark.parametrize("path", RECURRENT, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_loops_keep_clear_of_every_other_cell(path, orient):
    scene = figure(models_of(path), orient=orient)
    loops = [s for s in scene.shapes if isinstance(s, Loop)]
    assert loops, "a recurrent network draws loops"
    assert loops_touching_other_cells(scene) == []
    for a, b in itertools.combinations(loops, 2):  # nor does a loop touch another loop
        assert np.hypot(a.x - b.x, a.y - b.y) > LOOP + 0.1


def test_the_clearance_checks_find_what_they_look_for():
    """The checks have teeth: a loop under the cell above (one pitch apart, as the chart's grid
    puts them), a link through a cell, a label on a cell."""
    cells = [
        Disc(0.0, 0.0, Cell.RECURRENT, "cell:n:h:0"),
        Disc(0.0, 1.0, Cell.RECURRENT, "cell:n:h:1"),
        Disc(1.0, 0.5, Cell.OUTPUT, "cell:n:y:0"),
        Disc(2.0, 0.5, Cell.OUTPUT, "cell:n:z:0"),
    ]
    crowded = Scene(
        [
            *cells,
            Loop(0.0, LOOP_RISE),
            Line(((0.0, 0.0), (2.0, 0.5))),
            Text(1.0, 0.5, "16", 6.5, width=0.3, height=0.3),
        ]
    )
    assert [gid for _, gid in loops_touching_other_cells(crowded)] == ["cell:n:h:1"]
    assert [gid for _, gid in links_under_other_cells(crowded)] == ["cell:n:y:0"]
    assert texts_over_drawing(crowded)[0] == ("16", "cell:n:y:0")


# ---- files ---------------------------------------------------------------------------------------
def test_png_and_pdf_render(tmp_path):
    from matplotlib.image import imread

    model = nnspec.load(SPECS / "lenet.nn")
    png, pdf = model.draw(tmp_path / "lenet.png"), model.draw(tmp_path / "lenet.pdf")
    pixels = imread(png)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300
    kernel = np.array([0xFF, 0x99, 0xFF]) / 255
    assert (
        np.abs(pixels[..., :3] - kernel).max(axis=-1) < 0.02
    ).sum() > 1000  # kernel cells, filled
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_the_same_spec_gives_the_same_bytes(fmt, tmp_path):
    models = models_of(SPECS / "gan.nn")
    first = draw(models, tmp_path / f"a.{fmt}", annotate=True).read_bytes()
    second = draw(models, tmp_path / f"b.{fmt}", annotate=True).read_bytes()
    assert first == second
    assert (
        b"matplotlib" not in first.lower() and b"CreationDate" not in first
    )  # no version, no date


DRAWN = (
    sorted(SPECS.glob("*.nn"))
    + sorted(EXAMPLES.glob("*.nn"))
    + sorted((TEST_SPECS / "ok").glob("*.nn"))
)


@pytest.mark.parametrize("path", sampled(DRAWN), ids=[f"{p.parent.name}/{p.name}" for p in DRAWN])
def test_every_bundled_spec_and_example_draws(path, tmp_path):
    models = models_of(path)
    out = draw(models, tmp_path / "out.svg")
    fills, _ = read_svg(out)
    drawn = {tuple(gid.split(":")[1:3]) for gid in fills}
    for model in models:
        for layer in model.program.layers:
            if not KIND_DRAWING[
                layer.kind.name
            ].folds:  # only these may share the cells of the layer before
                assert (model.name, layer.name) in drawn, f"{model.name}.{layer.name} has no cells"
    assert set(fills.values()) <= {fill for fill, _ in LEGEND.values()}


@pytest.mark.slow
@pytest.mark.parametrize("path", DRAWN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_nothing_is_drawn_over_anything_else(path):
    """No loop touches another cell, no link passes under a cell it does not join, no text lies on
    a cell or a link."""
    models = models_of(path)
    for orient, annotate in (("lr", False), ("lr", True), ("tb", True)):
        scene = figure(models, orient=orient, annotate=annotate)
        assert loops_touching_other_cells(scene) == [], orient
        assert links_under_other_cells(scene) == [], orient
        assert texts_over_drawing(scene) == [], (orient, annotate)


@pytest.mark.slow
@settings(max_examples=30, **SETTINGS)  # 1,500 pass locally; 30 keep the suite quick
@given(registry_network())
def test_any_network_that_checks_draws_every_layer_in_cells_of_its_own(text):
    try:
        model = nnspec.loads(text)
    except nnspec.SpecError:
        assume(False)
    for orient in ("lr", "tb"):
        scene = figure(drawables([model]), annotate=True, orient=orient)
        cells = scene.cells()
        drawn = {cell.gid.split(":")[2] for cell in cells}
        assert {
            layer.name for layer in model.program.layers if not KIND_DRAWING[layer.kind.name].folds
        } <= drawn
        # one grid pitch apart at least: every pair, in itertools.combinations' order
        first, second = np.triu_indices(len(cells), 1)
        x, y = np.array([cell.x for cell in cells]), np.array([cell.y for cell in cells])
        crowded = np.flatnonzero(np.hypot(x[first] - x[second], y[first] - y[second]) < 0.99)
        assert not crowded.size, (cells[first[crowded[0]]].gid, cells[second[crowded[0]]].gid)
        assert loops_touching_other_cells(scene) == [] and links_under_other_cells(scene) == []


def test_model_draw_refuses_unknown_formats_and_options(tmp_path):
    model = nnspec.load(SPECS / "xor.nn")
    with pytest.raises(DrawError, match=r"'\.gif' is not a format"):
        model.draw(tmp_path / "xor.gif")
    with pytest.raises(DrawError, match="unknown palette 'neon'"):
        model.draw(tmp_path / "xor.svg", palette="neon")
    with pytest.raises(DrawError, match="unknown orientation"):
        model.draw(tmp_path / "xor.svg", orient="diagonal")
    assert list(tmp_path.iterdir()) == []


# ---- the command line ----------------------------------------------------------------------------
def nnspec_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nnspec", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.slow
def test_draw_writes_the_picture_and_prints_its_path(tmp_path):
    result = nnspec_cli("draw", SPECS / "xor.nn", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "xor.svg\n", "")
    assert len(read_svg(tmp_path / "xor.svg")[0]) == 5
    chosen = nnspec_cli(
        "draw",
        SPECS / "gan.nn",
        "--network",
        "generator",
        "-o",
        "g/gen.png",
        "--palette",
        "colorblind",
        "--annotate",
        "--orient",
        "tb",
        cwd=tmp_path,
    )
    assert chosen.returncode == 0 and (tmp_path / "g" / "gen.png").read_bytes().startswith(
        b"\x89PNG"
    )


def _nothing_written(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.is_file() and p.name != "blocker"]


@pytest.mark.slow
def test_draw_errors_are_clear_and_leave_no_file(tmp_path):
    cases = [
        (
            ["draw", SPECS / "xor.nn", "-o", "xor.gif"],
            "error[R201]: cannot draw xor.gif: '.gif' is not a format",
        ),
        (
            ["draw", SPECS / "xor.nn", "-o", "picture"],
            "error[R201]: cannot draw picture: it has no extension",
        ),
        (["draw", "missing.nn"], "error[E308]: spec file 'missing.nn' is not found"),
        (
            ["draw", EXAMPLES / "errors" / "typo_kind.nn"],
            "typo_kind.nn:4:5: error[E201]: unknown layer kind 'dence'",
        ),
        (
            ["draw", SPECS / "xor.nn", "-o", "blocker/xor.svg"],
            "error[R101]: cannot write blocker/xor.svg: blocker is a file, not a folder",
        ),
        (["draw", SPECS / "gan.nn", "--network", "gen"], "error[E316]: no network 'gen'"),
        (["draw", TEST_SPECS / "ok" / "lib" / "blocks.nn"], "error[E315]"),
    ]
    (tmp_path / "blocker").write_text("a file where a folder is wanted")
    for args, message in cases:
        result = nnspec_cli(*args, cwd=tmp_path)
        assert result.returncode == 1, args
        assert message in result.stderr and "Traceback" not in result.stderr and result.stdout == ""
    assert _nothing_written(tmp_path)


@pytest.mark.slow
def test_draw_usage_errors_exit_2():
    assert nnspec_cli("draw").returncode == 2
    assert nnspec_cli("draw", SPECS / "xor.nn", "--palette", "neon").returncode == 2
    assert nnspec_cli("draw", SPECS / "xor.nn", "--orient", "up").returncode == 2
    assert "usage: nnspec draw" in nnspec_cli("draw", "--help").stdout


@pytest.mark.slow
def test_draw_and_zoo_never_import_torch(tmp_path):
    (tmp_path / "specs").mkdir()
    for name in ("xor.nn", "gan.nn"):
        (tmp_path / "specs" / name).write_text((SPECS / name).read_text())
    code = (
        "import sys\n"
        "from nnspec.cli import main\n"
        f"assert main(['draw', {str(SPECS / 'lenet.nn')!r}, '-o', 'lenet.png']) == 0\n"
        "assert main(['zoo', 'specs', '-o', 'zoo']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_a_capsule_layer_is_drawn_as_its_capsules_one_cell_each():
    """specs/capsules.nn: the primary capsules [32, 4] are 32 capsules (6 cells, an ellipsis and
    '32×4'), and each drawn length (the output) is linked to the digit capsule it measures."""
    scene = figure(models_of(SPECS / "capsules.nn"))
    primary = _cells(scene, "primary")
    assert len(primary) == 6 and {c.cell for c in primary} == {Cell.CAPSULE}
    assert "32×4" in [s.text for s in scene.shapes if isinstance(s, Text)]
    digit = {(c.x, c.y): c.gid.split(":")[3] for c in _cells(scene, "digits")}
    lengths = _cells(scene, "lengths")
    assert len(lengths) == 4
    for c in lengths:
        linked = [
            digit.get(p)
            for line in _links(scene)
            if (c.x, c.y) in line.points
            for p in line.points
            if p != (c.x, c.y)
        ]
        assert linked == [c.gid.split(":")[3]], c.gid
