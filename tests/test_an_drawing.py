"""The attention network drawn as the chart draws its AN (issue 18, ../shared/ZOO.md): a
recurrent encoder, a column of memory cells (the encoder's kept states), an attention cell and a
recurrent decoder, then the output (nnspec/draw/attention.py).

Checked on the drawing's scene, as a reader sees it: which cells stand in which column, left to
right (top to bottom in `--orient tb`), their cell types and marks, the links between them, the
ellipsis and annotation of the memory column, and the legend; plain and annotated. An attention
that asks once (specs/attention.nn, not on a cycle) keeps its drawing: no memory column.
"""

import pytest
from test_draw import SPECS, links_under_other_cells, loops_touching_other_cells, models_of, spec
from test_draw_bugs import cells_of, links_between

import nnspec
from nnspec.draw.layout import layout_network
from nnspec.draw.page import figure
from nnspec.draw.scene import Disc, Line, Loop, Text
from nnspec.kinds import Cell

AN = SPECS / "an.nn"
COLUMNS = ["x", "enc", "a.memory", "a", "dec", "out"]  # the chart's AN, left to right


def scene_of(annotate=False, orient="lr", compact=False):
    if compact:
        return layout_network(nnspec.load(AN).program, annotate=annotate, compact=True)
    return figure(models_of(AN), annotate=annotate, orient=orient)


def along(disc: Disc, orient: str) -> float:
    """How far along the flow a cell stands: x left to right, -y top to bottom."""
    return disc.x if orient == "lr" else -disc.y


def looped(scene, cells: list[Disc]) -> list[bool]:
    """Whether each cell has a loop on top of it (a loop is centred above its cell's centre)."""
    loops = [(s.x, s.y) for s in scene.shapes if isinstance(s, Loop)]
    return [
        any(abs(x - d.x) < 1e-9 and 0 < y - d.y < 0.62 for x, y in loops)
        or any(abs(y - d.y) < 1e-9 and 0 < d.x - x < 0.62 for x, y in loops)  # turned (tb)
        for d in cells
    ]


@pytest.mark.parametrize(("annotate", "orient"), [(False, "lr"), (True, "lr"), (True, "tb")])
def test_the_columns_are_encoder_memory_attention_decoder_output(annotate, orient):
    scene = scene_of(annotate, orient)
    columns = {name: {along(d, orient) for d in cells_of(scene, name)} for name in COLUMNS}
    assert all(len(places) == 1 for places in columns.values()), columns  # one column each
    order = sorted(COLUMNS, key=lambda name: columns[name].pop())
    assert order == COLUMNS


def test_each_column_has_the_cell_type_the_chart_gives_it():
    scene = scene_of()
    kinds = {name: {(d.cell, d.variant) for d in cells_of(scene, name)} for name in COLUMNS}
    assert kinds == {
        "x": {(Cell.INPUT, None)},
        "enc": {(Cell.GATED_MEMORY, None)},  # a gru
        "a.memory": {(Cell.MEMORY, None)},  # the kept states: memory cells
        "a": {(Cell.HIDDEN, "attention")},  # the attention cell, with the eye: not recurrent
        "dec": {(Cell.GATED_MEMORY, None)},
        "out": {(Cell.OUTPUT, None)},
    }
    # the encoder and the decoder step (loops on top); the memory and the attention do not
    for name, loops in (("enc", True), ("dec", True), ("a.memory", False), ("a", False)):
        assert set(looped(scene, cells_of(scene, name))) == {loops}, name


def test_the_memory_column_holds_one_cell_per_kept_state():
    """8 kept states of 32 (the bidirectional encoder's 8 steps): as any column past 5, its first
    two and last two cells, an ellipsis and the states' size under the dots."""
    scene = scene_of()
    memory = cells_of(scene, "a.memory")
    assert [int(d.gid.split(":")[3]) for d in memory] == [0, 1, 6, 7]
    labels = [s for s in scene.shapes if isinstance(s, Text) and s.text == "8×32"]
    assert len(labels) == 1 and abs(labels[0].x - memory[0].x) < 1e-9
    assert min(d.y for d in memory) < labels[0].y < max(d.y for d in memory)


def test_the_attention_reads_the_memory_and_the_decoder_asks_and_is_fed_back():
    scene = scene_of()
    x, enc, memory, a, dec, out = (cells_of(scene, name) for name in COLUMNS)
    # every unit of the encoder goes into every kept state, and the attention looks at every one
    assert len(links_between(scene, enc, memory)) == len(enc) * len(memory)
    assert len(links_between(scene, memory, a)) == len(memory) * len(a)
    assert links_between(scene, enc, a) == []  # the keys and values come through the memory
    curves = [s for s in scene.shapes if isinstance(s, Line) and len(s.points) > 2]
    ends = {(s.points[0], s.points[-1], s.dashed) for s in curves}
    top, low = (lambda cells: (cells[0].x, cells[0].y)), (lambda cells: (cells[-1].x, cells[-1].y))
    assert (top(dec), top(a), False) in ends  # the query the decoder asks: the arc back
    assert (top(x), top(dec), False) in ends  # the decoder reads the input too
    assert (top(a), top(out), False) in ends  # the context goes into the answer
    # ... and into the decoder's next step: a dashed arrow under the bottom, a ~> dec
    (fed,) = [s for s in curves if s.dashed]
    assert fed.arrow and fed.points[0] == low(a) and fed.points[-1][0] < low(dec)[0]
    assert links_under_other_cells(scene) == [] and loops_touching_other_cells(scene) == []


def test_the_legend_has_memory_and_attention_cells_and_no_recurrent_one():
    scene = scene_of()
    keys = {s.gid for s in scene.shapes if isinstance(s, Disc) and s.gid.startswith("key:")}
    assert keys == {"key:input", "key:gated-memory", "key:memory", "key:attention", "key:output"}
    texts = {s.text for s in scene.shapes if isinstance(s, Text)}
    assert {"Memory cell", "Attention cell", "Gated memory cell"} <= texts
    assert "Recurrent cell" not in texts


def test_the_memory_column_is_annotated_with_its_states():
    scene = scene_of(annotate=True)
    texts = [s.text for s in scene.shapes if isinstance(s, Text)]
    at = texts.index("a.memory")
    assert texts[at : at + 3] == ["a.memory", "memory 8 x 32", "states of enc"]
    assert "attention [8, 32]" in texts


def test_the_posters_compact_view_keeps_the_memory_column():
    scene = scene_of(compact=True)
    memory = cells_of(scene, "a.memory")
    assert {d.cell for d in memory} == {Cell.MEMORY} and len(memory) == 3  # 4 slots past 4
    assert {d.variant for d in cells_of(scene, "a")} == {"attention"}


def test_a_sequence_of_any_length_keeps_an_open_memory():
    """Keys of no fixed length: the memory drawn as a wide column, `T` states."""
    scene = figure(
        spec("""network open {
    input     x: 4, seq
    gru       enc: 3
    gru       dec: 3
    attention a: dim=3
    dense     out: 4, act=softmax
    x -> enc
    enc -> a.key
    enc -> a.value
    x -> dec
    dec -> a.query
    a ~> dec
    dec -> out
    a -> out
}"""),
        annotate=True,
    )
    assert {d.cell for d in cells_of(scene, "a.memory")} == {Cell.MEMORY}
    texts = {s.text for s in scene.shapes if isinstance(s, Text)}
    assert {"T×3", "memory T x 3"} <= texts


def test_an_attention_off_any_cycle_is_drawn_as_before():
    """specs/attention.nn asks one question: its attention is a hidden cell with the eye, fed
    straight by the layer before it, and nothing is drawn as memory."""
    scene = figure(models_of(SPECS / "attention.nn"))
    assert not [d for d in scene.cells() if ".memory" in d.gid or d.cell is Cell.MEMORY]
    a = cells_of(scene, "a")
    assert {(d.cell, d.variant) for d in a} == {(Cell.HIDDEN, "attention")}
    sources = [d for d in scene.cells() if d.gid.split(":")[2] not in ("a", "y")]
    assert links_between(scene, sources, a)
