"""The grid layout (nnspec/draw/grid.py): a Kohonen map as the chart draws it, its input cells each
linked to every cell of a grid; a handful of cells for a large map, with its real size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import SPECS
from test_draw import links_under_other_cells, texts_over_drawing

import nnspec
from nnspec.draw.grid import MAX_INPUTS, MAX_SIDE, grid_layer, shown
from nnspec.draw.page import figure
from nnspec.draw.scene import Line, Text
from nnspec.kinds import Cell
from nnspec.model import drawables

MAP = "network n {{ input x: {d}\n som m: [{rows}, {cols}]\n x -> m }}"


def _map(d: int, rows: int, cols: int) -> nnspec.Model:
    return nnspec.loads(MAP.format(d=d, rows=rows, cols=cols))


def _links(scene) -> set[frozenset]:
    return {
        frozenset(shape.points)
        for shape in scene.shapes
        if isinstance(shape, Line) and len(shape.points) == 2
    }


@pytest.mark.parametrize("d, rows, cols", [(1, 1, 1), (2, 3, 3), (3, 2, 3), (2, 1, 3), (3, 3, 1)])
def test_every_input_cell_is_linked_to_every_cell_of_the_grid(d, rows, cols):
    scene = figure(drawables([_map(d, rows, cols)]))
    cells = scene.cells()
    inputs = [c for c in cells if c.gid.split(":")[2] == "x"]
    units = [c for c in cells if c.gid.split(":")[2] == "m"]
    assert len(inputs) == d and {c.cell for c in inputs} == {Cell.INPUT}
    assert len(units) == rows * cols and {c.cell for c in units} == {Cell.HIDDEN}
    assert {int(c.gid.split(":")[3]) for c in units} == set(range(rows * cols))
    pairs = {frozenset({(a.x, a.y), (b.x, b.y)}) for a in inputs for b in units}
    assert pairs == _links(scene)  # every input to every unit, and no other link


@pytest.mark.parametrize("orient", ["lr", "tb"])
@pytest.mark.parametrize("d", [1, 2, 3, 64])
@pytest.mark.parametrize("rows, cols", list(itertools.product([1, 2, 3, 30], [1, 2, 3, 20])))
def test_no_link_passes_under_a_cell_and_cells_stand_a_pitch_apart(d, rows, cols, orient):
    scene = figure(drawables([_map(d, rows, cols)]), orient=orient, annotate=True)
    assert links_under_other_cells(scene) == []
    assert texts_over_drawing(scene) == []
    cells = scene.cells()
    for a, b in itertools.combinations(cells, 2):
        assert np.hypot(a.x - b.x, a.y - b.y) > 0.99, (a.gid, b.gid)


def test_a_large_map_draws_a_handful_of_cells_and_says_its_size():
    """specs/som.nn: 64 inputs and a 20 x 20 map, drawn as 3 inputs and 3 x 3 units (rows and
    columns 0, 10 and 19), with both sizes written under them."""
    model = nnspec.load(SPECS / "som.nn")
    scene = figure(drawables([model]))
    units = sorted(int(c.gid.split(":")[3]) for c in scene.cells() if ":m:" in c.gid)
    assert units == [i * 20 + j for i in (0, 10, 19) for j in (0, 10, 19)]
    assert sum(":x:" in c.gid for c in scene.cells()) == MAX_INPUTS
    words = " ".join(shape.text for shape in scene.shapes if isinstance(shape, Text))
    assert "64 inputs, 3 drawn" in words and "20 x 20 units, 3 x 3 drawn" in words
    assert shown(20, MAX_SIDE) == [0, 10, 19] and shown(2, MAX_SIDE) == [0, 1]


def test_a_map_read_by_other_layers_is_laid_out_in_columns():
    model = nnspec.load("tests/specs/ok/som_map.nn", network="kohonen_readout")
    assert grid_layer(model.program) is None
    flattened = nnspec.loads(
        "network n { input x: [1, 4, 4]\n flatten f\n som m: [2, 2]\n x -> f -> m }"
    )
    assert grid_layer(flattened.program).name == "m"  # a flatten adds no cells of its own


def test_the_map_renders(tmp_path):
    png = nnspec.load(SPECS / "som.nn").draw(tmp_path / "som.png")
    assert png.stat().st_size > 10_000
