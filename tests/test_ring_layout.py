"""The ring layout (nnspec/draw/ring.py): a network that is one population of a ring kind
(Hopfield, Boltzmann, Markov) is drawn as the chart draws them: cells on a circle, every pair
linked, a handful of cells for a large ring with its real size written under it.

The layout is general over ring kinds, so most tests here make `dense` a ring kind for the
test (monkeypatch): they need no particular one.
"""

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from test_draw import links_under_other_cells, texts_over_drawing

import nnspec
from nnspec.draw.kinds import KIND_DRAWING, Drawing
from nnspec.draw.page import figure
from nnspec.draw.ring import MAX_RING, radius, ring_cells, ring_layer, shown_units
from nnspec.draw.scene import CELL, Disc, Line, Text
from nnspec.kinds import Cell
from nnspec.kinds.dense import Dense
from nnspec.model import drawables


@pytest.fixture
def dense_ring(monkeypatch):
    """`dense` drawn as a ring whose cells are its input's (as a Hopfield network's are)."""
    monkeypatch.setattr(Dense, "drawn_as", "ring")
    monkeypatch.setitem(KIND_DRAWING, "dense", Drawing("full", folds=True))


def ring_net(units: int, extra: str = "") -> nnspec.Model:
    return nnspec.loads(
        f"network hn {{\n    input x: {units}\n    dense h: {units}\n    x -> h\n{extra}}}\n"
    )


def discs(scene) -> list[Disc]:
    return scene.cells()


@pytest.mark.parametrize("units", [1, 2, 3, 5, 8])
def test_every_unit_is_a_cell_on_one_circle_and_every_pair_is_linked(dense_ring, units):
    scene = figure(drawables([ring_net(units)]))
    cells = discs(scene)
    assert len(cells) == units
    centre = np.mean([[c.x, c.y] for c in cells], axis=0)
    distances = [np.hypot(c.x - centre[0], c.y - centre[1]) for c in cells]
    assert np.allclose(distances, radius(units))
    lines = {
        frozenset(line.points)
        for line in scene.shapes
        if isinstance(line, Line) and len(line.points) == 2
    }
    pairs = {frozenset({(a.x, a.y), (b.x, b.y)}) for a, b in itertools.combinations(cells, 2)}
    assert pairs <= lines and len(pairs) == units * (units - 1) // 2
    # the cells carry the input's name: they are the backfed input cells
    assert {c.gid.split(":")[2] for c in cells} == {"x"}


@pytest.mark.parametrize("units", range(2, 13))
def test_neighbours_stand_a_pitch_apart_and_no_link_passes_under_a_cell(dense_ring, units):
    scene = figure(drawables([ring_net(units)]))
    cells = discs(scene)
    for a, b in itertools.combinations(cells, 2):
        assert np.hypot(a.x - b.x, a.y - b.y) > 0.99
    assert links_under_other_cells(scene) == []


@pytest.mark.parametrize("orient", ["lr", "tb"])
def test_a_large_ring_draws_a_handful_of_cells_and_says_its_size(dense_ring, orient):
    scene = figure(drawables([ring_net(100)]), annotate=True, orient=orient)
    cells = discs(scene)
    assert len(cells) == MAX_RING
    indices = sorted(int(c.gid.split(":")[3]) for c in cells)
    assert indices[0] == 0 and indices[-1] == 99  # first and last unit among those drawn
    words = [s.text for s in scene.shapes if isinstance(s, Text)]
    assert "100 units, 8 drawn" in words and "h" in words and "dense [100]" in words
    assert links_under_other_cells(scene) == [] and texts_over_drawing(scene) == []


def test_a_network_that_mixes_a_ring_kind_with_others_is_laid_out_in_columns(dense_ring):
    mixed = nnspec.loads(
        "network m {\n    input x: 4\n    dense h: 4\n    dense y: 4\n    x -> h -> y\n}\n"
    )
    assert ring_layer(mixed.program) is None  # two ring layers
    assert ring_layer(ring_net(4).program).name == "h"
    with_act = ring_net(4, "    sigmoid s\n    h -> s\n")  # a folding layer after the ring
    assert ring_layer(with_act.program).name == "h"
    narrow = nnspec.loads("network n {\n    input x: 3\n    dense h: 4\n    x -> h\n}\n")
    assert ring_layer(narrow.program) is None  # its input is not its own cells
    cells = discs(figure(drawables([narrow])))
    assert {c.gid.split(":")[2] for c in cells} == {"x", "h"}  # columns: both drawn


def test_a_column_network_is_not_a_ring():
    assert ring_layer(ring_net(4).program) is None  # dense is drawn in columns


def test_each_units_cell_comes_from_the_kind_or_its_hidden_option():
    visible = SimpleNamespace(drawn_as="ring", cell=Cell.BACKFED_INPUT)
    layer = SimpleNamespace(
        kind=visible, options=SimpleNamespace(hidden=5), shape=SimpleNamespace(features=8)
    )
    assert ring_cells(layer) == [Cell.BACKFED_INPUT] * 3 + [Cell.PROBABILISTIC_HIDDEN] * 5
    layer.options = SimpleNamespace()
    assert ring_cells(layer) == [Cell.BACKFED_INPUT] * 8
    own = SimpleNamespace(cell=Cell.INPUT, ring_cells=lambda options, units: [Cell.OUTPUT] * units)
    layer.kind = own
    assert ring_cells(layer) == [Cell.OUTPUT] * 8


def test_a_sampled_ring_keeps_each_kind_of_cell_in_proportion():
    cells = [Cell.BACKFED_INPUT] * 40 + [Cell.PROBABILISTIC_HIDDEN] * 60
    shown = shown_units(cells)
    assert len(shown) == MAX_RING and shown == sorted(set(shown))
    kinds = [cells[i] for i in shown]
    assert kinds.count(Cell.BACKFED_INPUT) == 3 and kinds.count(Cell.PROBABILISTIC_HIDDEN) == 5
    assert {0, 39, 40, 99} <= set(shown)  # each run's first and last unit
    few = [Cell.BACKFED_INPUT] * 99 + [Cell.PROBABILISTIC_HIDDEN]
    assert [cells for cells in (few[i] for i in shown_units(few))].count(
        Cell.PROBABILISTIC_HIDDEN
    ) == 1  # one at least
    assert shown_units(cells[:6]) == list(range(6))


def test_the_circle_is_as_small_as_the_chart_allows():
    for count in range(3, 20):
        r = radius(count)
        neighbours = 2 * r * np.sin(np.pi / count)
        gap = r * (1 - np.cos(2 * np.pi / count)) - CELL / 2
        assert neighbours >= 1 - 1e-9 and gap > 0.03
        assert np.isclose(neighbours, 1.0) or np.isclose(gap, 0.09)


def test_the_hopfield_spec_is_the_charts_ring_of_backfed_input_cells(tmp_path):
    from conftest import SPECS

    scene = figure(drawables(nnspec.load_all(SPECS / "hopfield.nn")))
    cells = discs(scene)
    assert len(cells) == MAX_RING and {c.cell for c in cells} == {Cell.BACKFED_INPUT}
    assert {c.gid.split(":")[2] for c in cells} == {"cue"}  # the cue's cells, fed back
    words = [s.text for s in scene.shapes if isinstance(s, Text)]
    assert "100 units, 8 drawn" in words and "Backfed input cell" in words
    assert links_under_other_cells(scene) == [] and texts_over_drawing(scene) == []
    png = nnspec.load(SPECS / "hopfield.nn").draw(tmp_path / "hn.png")
    assert png.stat().st_size > 1000


def test_units_past_the_inputs_width_carry_the_ring_layers_name(dense_ring, monkeypatch):
    """A kind with units of its own besides its input's (a Boltzmann machine's hidden units,
    given by its `ring_cells`): those cells are named after the ring layer, the rest after the
    input."""

    def with_hidden(options, units):
        return [Cell.BACKFED_INPUT] * units + [Cell.PROBABILISTIC_HIDDEN] * 2

    monkeypatch.setattr(Dense, "ring_cells", staticmethod(with_hidden), raising=False)
    cells = discs(figure(drawables([ring_net(3)])))
    names = {int(c.gid.split(":")[3]): c.gid.split(":")[2] for c in cells}
    assert names == {0: "x", 1: "x", 2: "x", 3: "h", 4: "h"}
    assert [c.cell for c in cells].count(Cell.PROBABILISTIC_HIDDEN) == 2
