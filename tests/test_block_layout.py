"""The block layout (nnspec/draw/block.py): a reservoir as the chart draws the ELM, the ESN and the
LSM, input cells, a 3 x 4 block of cells with sparse random links, and the readout's cells; a
handful of cells for a large reservoir, with its real size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import SPECS
from test_draw import links_under_other_cells, loops_touching_other_cells, texts_over_drawing

import nnspec
from nnspec.draw.block import COLS, MAX_INPUTS, MAX_OUTPUTS, ROWS, block_layer, inner_links
from nnspec.draw.page import figure
from nnspec.draw.scene import Line, Loop, Text
from nnspec.kinds import REGISTRY, Cell
from nnspec.model import drawables

RESERVOIR = "network n {{ input x: {d}, seq\n {kind} r: {units}\n dense y: {out}\n x -> r -> y }}"


@pytest.fixture
def as_block(monkeypatch):
    """Make `rnn` and `lif` reservoir kinds (`drawn_as = "block"`), as an echo state and a liquid
    state reservoir are: recurrent and spiking cells in a block."""
    for name in ("rnn", "lif"):
        monkeypatch.setattr(type(REGISTRY[name]), "drawn_as", "block")


def _scene(kind: str, d: int = 3, units: int = 12, out: int = 2, **options):
    model = nnspec.loads(RESERVOIR.format(kind=kind, d=d, units=units, out=out))
    return figure(drawables([model]), **options)


def _cells(scene, layer: str):
    return [c for c in scene.cells() if c.gid.split(":")[2] == layer]


def _links(scene) -> set[frozenset]:
    return {
        frozenset(shape.points)
        for shape in scene.shapes
        if isinstance(shape, Line) and len(shape.points) == 2
    }


def _words(scene) -> str:
    return " | ".join(shape.text for shape in scene.shapes if isinstance(shape, Text))


def test_the_extreme_learning_machine_is_drawn_as_a_block():
    """specs/elm.nn: 64 inputs, 800 frozen random units, 10 outputs; In3 -> 3 x 4 -> Out2 with the
    sizes written under it, as the chart draws the ELM."""
    model = nnspec.load(SPECS / "elm.nn")
    assert [layer.name for layer in block_layer(model.program)] == ["h", "y"]
    scene = figure(drawables([model]))
    inputs, block, outputs = (_cells(scene, name) for name in ("x", "h", "y"))
    assert len(inputs) == MAX_INPUTS and {c.cell for c in inputs} == {Cell.INPUT}
    assert len(block) == ROWS * COLS and {c.cell for c in block} == {Cell.HIDDEN}
    assert len(outputs) == MAX_OUTPUTS and {c.cell for c in outputs} == {Cell.OUTPUT}
    assert len({c.x for c in block}) == COLS and len({c.y for c in block}) == ROWS
    assert [int(c.gid.split(":")[3]) for c in block][:: ROWS * COLS - 1] == [0, 799]
    words = _words(scene)
    for line in ("64 inputs, 3 drawn", "800 units, 3 x 4 drawn", "10 outputs, 2 drawn"):
        assert line in words


@pytest.mark.parametrize("kind, cell", [("rnn", Cell.RECURRENT), ("lif", Cell.SPIKING_HIDDEN)])
def test_reservoir_kinds_draw_their_own_cells_in_the_block(as_block, kind, cell):
    scene = _scene(kind, units=100)
    block = _cells(scene, "r")
    assert len(block) == ROWS * COLS and {c.cell for c in block} == {cell}
    loops = [s for s in scene.shapes if isinstance(s, Loop)]
    assert len(loops) == (len(block) if cell is Cell.RECURRENT else 0)  # a loop on each R cell


def test_inputs_link_to_the_first_column_the_last_column_to_the_readout_and_inside_sparsely():
    scene = figure(drawables([nnspec.load(SPECS / "elm.nn")]))
    inputs, block, outputs = (_cells(scene, name) for name in ("x", "h", "y"))
    first = [c for c in block if c.x == min(b.x for b in block)]
    last = [c for c in block if c.x == max(b.x for b in block)]
    links = _links(scene)

    def pair(a, b):
        return frozenset({(a.x, a.y), (b.x, b.y)})

    assert {pair(a, b) for a in inputs for b in first} <= links
    assert {pair(a, b) for a in last for b in outputs} <= links
    inner = (
        links
        - {pair(a, b) for a in inputs for b in first}
        - {pair(a, b) for a in last for b in outputs}
    )
    assert {pair(a, b) for a, b in itertools.combinations(block, 2)} >= inner  # inside the block
    neighbours = [  # cells of neighbouring columns, or one pitch apart in a column
        (a, b)
        for a, b in itertools.combinations(block, 2)
        if abs(abs(a.x - b.x) - 1.2) < 1e-9 or (a.x == b.x and abs(abs(a.y - b.y) - 1) < 1e-9)
    ]
    assert len(inner) < len(neighbours) / 2  # sparse
    for c in block:  # every cell of the block takes a link and (but the last column's) gives one
        ends = [link for link in links if (c.x, c.y) in link]
        assert ends, c.gid


def test_the_random_links_are_the_same_every_time_and_reach_every_cell():
    assert inner_links("rnnr") == inner_links("rnnr")
    assert inner_links("rnnr") != inner_links("lifr")  # a draw of its own for each reservoir
    for seed in ("a", "b", "elm", "densehh"):
        links = inner_links(seed)
        for k in range(ROWS * COLS):  # cells numbered down each column, column by column
            column = k // ROWS
            if column:  # every cell past the first column is reached from the column before
                assert any(b == k and a // ROWS == column - 1 for a, b in links), (seed, k)
            if column < COLS - 1:  # and every cell before the last reaches the next column
                assert any(a == k and b // ROWS == column + 1 for a, b in links), (seed, k)


@pytest.mark.parametrize("orient", ["lr", "tb"])
@pytest.mark.parametrize("kind", ["rnn", "lif"])
@pytest.mark.parametrize("d, units, out", [(1, 1, 1), (2, 5, 3), (3, 12, 2), (64, 500, 10)])
def test_no_link_passes_under_a_cell_and_cells_stand_a_pitch_apart(
    as_block, kind, d, units, out, orient
):
    scene = _scene(kind, d, units, out, orient=orient, annotate=True)
    assert links_under_other_cells(scene) == []
    assert loops_touching_other_cells(scene) == []
    assert texts_over_drawing(scene) == []
    cells = scene.cells()
    assert len(_cells(scene, "r")) == min(units, ROWS * COLS)
    for a, b in itertools.combinations(cells, 2):
        assert np.hypot(a.x - b.x, a.y - b.y) > 0.99, (a.gid, b.gid)


def test_a_frozen_layer_among_trained_ones_or_without_a_readout_is_laid_out_in_columns():
    deeper = nnspec.loads(
        "network n { input x: 4\n dense h: 50, frozen\n dense k: 8\n dense y: 2\n"
        " x -> h -> k -> y }"
    )
    assert block_layer(deeper.program) is None
    fixed = nnspec.load("tests/specs/ok/every_kind.nn", network="threshold")  # fixed weights only
    assert block_layer(fixed.program) is None
    two = nnspec.loads(
        "network n { input x: 4\n input z: 4\n dense h: 50, frozen\n dense y: 2\n"
        " x -> h\n z -> h\n h -> y }"
    )
    assert block_layer(two.program) is None  # one input only
