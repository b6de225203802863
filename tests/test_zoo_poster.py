"""The poster reads like the chart (issue 18): tiles of one size in the chart's order, and a
compact view (nnspec/draw/compact.py, `layout_network(compact=True)`) with a few cells per
column, long chains of repeated copies shortened with their real depth written under them, and
wide inputs drawn small; the single-network drawing keeps the full view."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import SPECS, spec_models
from test_draw import links_under_other_cells, loops_touching_other_cells, texts_over_drawing

import nnspec
from nnspec.draw.compact import CHAIN_MOST, KEEP_COLUMNS, depth, shorten
from nnspec.draw.kinds import KIND_DRAWING
from nnspec.draw.page import entries, entry_scene, figure, tile_size, tiles
from nnspec.draw.scene import P_INCHES, Dots, Line, Scene, Text
from nnspec.draw.zoo import poster, poster_columns
from nnspec.model import drawables

A1 = (23.39, 33.11)  # inches, portrait


def _compact(path_or_model) -> Scene:
    models = path_or_model if isinstance(path_or_model, list) else spec_models(path_or_model)
    return entry_scene(entries(drawables(list(models)))[0], compact=True)


def _words(scene: Scene) -> list[str]:
    return [shape.text for shape in scene.shapes if isinstance(shape, Text)]


def _layers(scene: Scene) -> set[str]:
    return {cell.gid.split(":")[2] for cell in scene.cells()}


def test_the_drn_is_drawn_with_a_few_blocks_and_its_real_depth():
    """specs/drn.nn: 10 residual blocks of 2 dense layers; the poster draws the first 2 (their
    adds in the cells before them: one skip arc over every second column, as the chart), three
    dots, the output, and '22 layers deep' under it; `nnspec draw` draws all 10."""
    scene = _compact(SPECS / "drn.nn")
    drawn = _layers(scene)
    assert {"r.1.a", "r.1.b", "r.2.a", "r.2.b", "out"} <= drawn
    assert not {name for name in drawn if name.startswith(("r.3.", "r.10."))}
    assert not {name for name in drawn if name.endswith(".s")}  # the adds share b's cells
    assert "22 layers deep; r repeated 10 times, 2 drawn" in _words(scene)
    arcs = [s for s in scene.shapes if isinstance(s, Line) and len(s.points) > 2]
    assert len(arcs) == 2  # one skip arc per block drawn
    dots = [s for s in scene.shapes if isinstance(s, Dots) and len({y for _, y in s.points}) == 1]
    assert len(dots) == 1  # the cut: three dots in a row, along the flow
    (a, _), _, (b, _) = dots[0].points
    out = [c.x for c in scene.cells() if ":out:" in c.gid]
    last = [c.x for c in scene.cells() if ":r.2.b:" in c.gid]
    assert max(last) < a < b < min(out)  # between the last block drawn and the output
    full = figure(list(drawables(spec_models(SPECS / "drn.nn"))))
    assert {f"r.{i}.{x}" for i in range(1, 11) for x in "abs"} <= _layers(full)
    assert not any(isinstance(s, Text) and "layers deep" in s.text for s in full.shapes)


def test_a_chain_is_shortened_only_past_its_limit_and_links_on_from_its_last_copy_drawn():
    text = "network n {{ input x: 3\n dense h: 8, repeat={n}\n dense y: 2\n x -> h -> y }}"
    short = nnspec.loads(text.format(n=CHAIN_MOST)).program
    assert shorten(short).program is short and shorten(short).note is None
    long = nnspec.loads(text.format(n=10)).program
    cut = shorten(long)
    kept = [layer.name for layer in cut.program.layers]
    assert kept == ["x", *(f"h.{i}" for i in range(1, KEEP_COLUMNS + 1)), "y"]
    assert [link.source for link in cut.program.layer("y").inputs] == [f"h.{KEEP_COLUMNS}"]
    assert cut.cuts == {(f"h.{KEEP_COLUMNS}", "y")}
    assert depth(long) == 11 and cut.note == "11 layers deep; h repeated 10 times, 4 drawn"
    scene = entry_scene(drawables([nnspec.loads(text.format(n=10))]), compact=True)
    # no line across the cut: the output's cells are linked to nothing
    ys = {(c.x, c.y) for c in scene.cells() if ":y:" in c.gid}
    lines = [s for s in scene.shapes if isinstance(s, Line)]
    assert not [line for line in lines if set(line.points) & ys]


def test_wide_layers_take_a_few_cells_and_wide_inputs_sharing_a_column_fewer():
    """specs/gcn.nn: two inputs of 34 nodes in one column, 2 cells and an ellipsis each (the full
    view draws 6 and an ellipsis each: a tall fan); no column of the compact view has more than
    4 cells."""
    compact, full = (
        _compact(SPECS / "gcn.nn"),
        figure(list(drawables(spec_models(SPECS / "gcn.nn")))),
    )

    def cells(scene, layer):
        return [c for c in scene.cells() if c.gid.split(":")[2] == layer]

    for layer in ("features", "adjacency"):
        assert len(cells(compact, layer)) == 2 and len(cells(full, layer)) == 6
    for path in (SPECS / "dff.nn", SPECS / "autoencoder.nn", SPECS / "lstm.nn"):
        scene = _compact(path)
        for layer in _layers(scene):
            assert len(cells(scene, layer)) <= 4, (path.name, layer)


def test_the_deconvolutional_network_grows_from_its_code():
    """specs/dn.nn, as the chart's inverse pyramid: after the code, each column at least as tall
    as the one before (the dense seed reshaped into a 2 x 2 image is drawn as its 2 rows)."""
    scene = figure(list(drawables(spec_models(SPECS / "dn.nn"))))
    heights = []
    for layer in ("seed", "up1", "up2", "image"):
        ys = [c.y for c in scene.cells() if c.gid.split(":")[2] == layer]
        heights.append(max(ys) - min(ys))
    assert heights == sorted(heights) and heights[0] < heights[-1]
    assert len([c for c in scene.cells() if ":seed:" in c.gid]) == 2


def _panels(paths) -> list[Scene]:
    return [
        entry_scene(group, scope=path.stem, compact=True)
        for path in paths
        for group in entries(drawables(list(spec_models(path))))
    ]


def test_tiles_are_of_one_size_in_order_and_hold_their_panels():
    paths = [SPECS / f"{name}.nn" for name in ("xor", "gan", "lstm", "som", "drn", "rbm", "dn")]
    panels = _panels(paths)
    size = tile_size(panels)
    columns = poster_columns(panels, size)
    scene, placed = tiles(panels, columns, size)
    width, height = size
    for panel, tile in zip(panels, placed, strict=True):
        x0, y0, x1, y1 = tile.box
        assert np.isclose(x1 - x0, tile.across * width) and np.isclose(y1 - y0, tile.down * height)
        pw, ph = panel.bounds()[2] - panel.bounds()[0], panel.bounds()[3] - panel.bounds()[1]
        assert pw <= x1 - x0 and ph <= y1 - y0  # the panel fits its tiles
    for a, b in itertools.combinations(placed, 2):  # no two share a tile
        assert (
            a.box[2] <= b.box[0] + 1e-9
            or b.box[2] <= a.box[0] + 1e-9
            or a.box[3] <= b.box[1] + 1e-9
            or b.box[3] <= a.box[1] + 1e-9
        )
    starts = [(-tile.box[3] // height, tile.box[0] // width) for tile in placed]
    assert starts == sorted(starts)  # row by row, in the panels' order
    assert placed[1].across >= 2  # the GAN's two halves take two tiles or more
    assert placed[3].down == 2  # the Kohonen map's fan two rows


@pytest.mark.parametrize("name", ["drn", "gcn", "vae", "rnn", "lenet", "gan"])
def test_the_compact_view_draws_nothing_over_anything_else(name):
    _check(SPECS / f"{name}.nn")


def _check(path):
    scene = _compact(path)
    assert loops_touching_other_cells(scene) == [], path.name
    assert links_under_other_cells(scene) == [], path.name
    assert texts_over_drawing(scene) == [], path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(SPECS.glob("*.nn")), ids=lambda p: p.name)
def test_the_compact_view_of_every_bundled_spec_is_clear_and_draws_every_layer_it_keeps(path):
    _check(path)
    for group in entries(drawables(list(spec_models(path)))):
        scene = entry_scene(group, compact=True)
        drawn = {tuple(c.gid.split(":")[1:3]) for c in scene.cells()}
        for model in group:
            kept = shorten(model.program).program
            for layer in kept.layers:
                if not KIND_DRAWING[layer.kind.name].folds and layer.kind.name != "add":
                    assert (model.name, layer.name) in drawn, (path.name, layer.name)


@pytest.mark.slow
def test_the_whole_poster_is_one_page_legible_on_an_a1_sheet_in_the_charts_order():
    """Every bundled network on one page that an A1 sheet holds at the drawing's own scale (text at
    6.5 pt at the least) or shrunk a little: printed on A1 no text is below 5.5 pt; tiles of one
    size, most networks in one."""
    from nnspec.draw.zoo import zoo_entries
    from nnspec.model import zoo_files

    zoo = zoo_entries(zoo_files())
    panels = [entry_scene(e.networks, scope=e.slug, compact=True) for e in zoo]
    scene, placed = poster(panels, "nnspec zoo", "subtitle")
    x0, y0, x1, y1 = scene.bounds()
    sides = sorted(((x1 - x0) * P_INCHES, (y1 - y0) * P_INCHES))
    shrink = max(1.0, sides[0] / A1[0], sides[1] / A1[1])
    smallest = min(s.size for s in scene.shapes if isinstance(s, Text))
    assert smallest >= 6.5 and smallest / shrink >= 5.5, (sides, shrink)
    width, height = tile_size(panels)
    assert all(np.isclose((t.box[2] - t.box[0]) / t.across, width) for t in placed)
    assert all(np.isclose((t.box[3] - t.box[1]) / t.down, height) for t in placed)
    assert sum(t.across * t.down > 1 for t in placed) <= len(placed) // 5  # most take one tile
