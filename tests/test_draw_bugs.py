"""Drawing bugs a new user found (issue 14): a `concat` of a flattened image and a vector drew the
vector with no links; two output heads stacked in one column read as one layer; attention and
readout layers looked like dense layers.

Each is checked on the drawing's scene (cells, links, legend in grid units), not on pixels; the
marks also in the SVG, where each mark's id names its shape and its cell.
"""

import math

import pytest
from test_draw import SPECS, links_under_other_cells, models_of, read_svg, spec

from nnspec.draw import draw
from nnspec.draw.cells import PALETTES
from nnspec.draw.kinds import KIND_DRAWING
from nnspec.draw.page import figure
from nnspec.draw.render import MARKS
from nnspec.draw.scene import Disc, Line, Text
from nnspec.kinds import Cell


def cells_of(scene, layer: str) -> list[Disc]:
    """The drawn cells of `layer`, by unit index."""
    found = [d for d in scene.cells() if d.gid.split(":")[2] == layer]
    return sorted(found, key=lambda d: int(d.gid.split(":")[3]))


def links_between(scene, sources: list[Disc], targets: list[Disc]) -> list[tuple[int, int]]:
    """(source unit, target unit) of every straight link from a cell of `sources` to one of
    `targets`."""
    at = {(d.x, d.y): int(d.gid.split(":")[3]) for d in sources}
    to = {(d.x, d.y): int(d.gid.split(":")[3]) for d in targets}
    return sorted(
        (at[a], to[b])
        for line in scene.shapes
        if isinstance(line, Line) and len(line.points) == 2
        for a, b in (line.points, line.points[::-1])
        if a in at and b in to
    )


# ---- a concat of a flattened image and a vector ---------------------------------------------
def joined(order: str) -> str:
    return f"""network mixed {{
    input   image: [1, 8, 8]
    input   v: 3
    conv    c: 4, kernel=3, padding=1, act=relu
    flatten f
    concat  j
    dense   y: 2, act=softmax
    image -> c -> f
    {order} -> j -> y
}}"""


def test_a_vector_joined_after_a_flattened_image_links_to_the_concats_last_cells():
    scene = figure(spec(joined("f, v")))
    v, c, j = cells_of(scene, "v"), cells_of(scene, "c"), cells_of(scene, "j")
    assert [int(d.gid.split(":")[3]) for d in j] == [0, 1, 2, 256, 257, 258]  # 4*8*8 + 3 units
    # the vector's units are the concat's last three: each to its counterpart
    assert links_between(scene, v, j) == [(0, 256), (1, 257), (2, 258)]
    # the image's pixels are the first 256: its first row feeds the concat's first cells
    assert links_between(scene, c, j) == [(0, 0), (0, 1), (0, 2)]
    # the vector stands under the image, as the concat lays them: no link crosses a cell
    assert max(d.y for d in v) < min(d.y for d in c)
    assert links_under_other_cells(scene) == []


def test_a_vector_joined_before_a_flattened_image_links_to_the_concats_first_cells():
    scene = figure(spec(joined("v, f")))
    v, c, j = cells_of(scene, "v"), cells_of(scene, "c"), cells_of(scene, "j")
    assert links_between(scene, v, j) == [(0, 0), (1, 1), (2, 2)]
    # pixels 0, 1, 2 and 253, 254, 255 of the image: its first row and its last
    assert links_between(scene, c, j) == [(7, 256), (7, 257), (7, 258)]
    assert min(d.y for d in v) > max(d.y for d in c)
    assert links_under_other_cells(scene) == []


def test_every_cell_after_a_flattened_image_has_a_link():
    """The same counting, with one source: a batchnorm of 256 units after a convolution whose
    flattened image is drawn as its 8 rows had links only into its first cells."""
    scene = figure(
        spec("""network n {
    input     image: [1, 8, 8]
    conv      c: 4, kernel=3, padding=1
    flatten   f
    batchnorm bn
    dense     y: 2
    image -> c -> f -> bn -> y
}""")
    )
    c, bn = cells_of(scene, "c"), cells_of(scene, "bn")
    assert [int(d.gid.split(":")[3]) for d in bn] == [0, 1, 2, 253, 254, 255]
    # the first pixels from the image's first row, the last from its last
    assert links_between(scene, c, bn) == [(0, 0), (0, 1), (0, 2), (7, 253), (7, 254), (7, 255)]


# ---- two output heads ---------------------------------------------------------------------
HEADS = """network heads "two output heads" {
    input x: 4
    dense h: 3, act=relu
    dense a: 2, act=softmax
    dense b: 1
    x -> h
    h -> a
    h -> b
    output a, b
}"""


@pytest.mark.parametrize("orient", ["lr", "tb"])
def test_two_output_heads_stand_apart_as_two_layers(orient):
    scene = figure(spec(HEADS), orient=orient)
    a, b = cells_of(scene, "a"), cells_of(scene, "b")
    assert {d.cell for d in a + b} == {Cell.OUTPUT}
    # along the column: the flow's axis is x in 'lr', y in 'tb'
    along = (lambda d: d.y) if orient == "lr" else (lambda d: d.x)
    flow = (lambda d: d.x) if orient == "lr" else (lambda d: d.y)
    assert len({flow(d) for d in a + b}) == 1  # side by side, at the same depth
    pitch = abs(along(a[0]) - along(a[1]))
    first, second = sorted((a, b), key=lambda head: -max(along(d) for d in head))
    gap = min(along(d) for d in first) - max(along(d) for d in second)
    # two empty slots between them: three times the pitch inside a head, not one slot more
    assert gap == pytest.approx(3 * pitch)
    assert links_under_other_cells(scene) == []


def test_each_head_is_linked_to_the_layer_before_it_and_annotated_on_its_own():
    scene = figure(spec(HEADS), annotate=True)
    h, a, b = cells_of(scene, "h"), cells_of(scene, "a"), cells_of(scene, "b")
    assert len(links_between(scene, h, a)) == 3 * 2 and len(links_between(scene, h, b)) == 3
    names = [s for s in scene.shapes if isinstance(s, Text) and s.bold and s.text in "ab"]
    assert sorted(s.text for s in names) == ["a", "b"]


# ---- attention and readout ------------------------------------------------------------------
ATTENTION = """network att "attention and readout" {
    input     x: 4, seq=6
    dense     e: 3
    attention a: heads=1
    readout   r: mean
    dense     y: 2, act=softmax
    x -> e -> a -> r -> y
}"""


def test_attention_and_readout_cells_carry_marks_of_their_own():
    scene = figure(spec(ATTENTION))
    assert {(d.cell, d.variant) for d in cells_of(scene, "a")} == {(Cell.HIDDEN, "attention")}
    assert {(d.cell, d.variant) for d in cells_of(scene, "r")} == {(Cell.HIDDEN, "readout")}
    assert {d.variant for d in cells_of(scene, "e")} == {None}  # a dense layer keeps the plain cell


def test_the_legend_names_attention_and_readout_cells():
    scene = figure(spec(ATTENTION))
    keys = {s.gid: s for s in scene.shapes if isinstance(s, Disc) and s.gid.startswith("key:")}
    assert set(keys) == {"key:input", "key:hidden", "key:attention", "key:readout", "key:output"}
    assert keys["key:attention"].variant == "attention"
    assert keys["key:readout"].variant == "readout"
    texts = {s.text for s in scene.shapes if isinstance(s, Text)}
    assert {"Hidden cell", "Attention cell", "Readout cell"} <= texts


def test_the_kinds_marks_differ_from_every_cell_types_mark_in_every_palette():
    own = {kind: d.mark for kind, d in KIND_DRAWING.items() if d.mark}
    assert own == {"attention": "eye", "readout": "funnel"}
    assert len(set(own.values())) == len(own) and set(own.values()) <= MARKS
    for palette in PALETTES.values():
        assert not set(own.values()) & {mark for _, mark in palette.cells.values()}, palette.name


@pytest.mark.parametrize("palette", ["asimov", "colorblind"])
def test_the_svg_draws_the_marks(palette, tmp_path):
    fills, marks = read_svg(draw(spec(ATTENTION), tmp_path / "att.svg", palette=palette))
    shape = {
        layer: {marks.get(gid) for gid in fills if gid.split(":")[2] == layer} for layer in "aer"
    }
    assert shape == {"a": {"eye"}, "r": {"funnel"}, "e": {PALETTES[palette].mark(Cell.HIDDEN)}}
    legend = {cell: mark for cell, mark in marks.items() if cell.startswith("key:")}
    assert legend["key:attention"] == "eye" and legend["key:readout"] == "funnel"


def test_the_bundled_attention_network_draws_its_attention_cells():
    scene = figure(models_of(SPECS / "attention.nn"))
    assert {d.variant for d in cells_of(scene, "a")} == {"attention"}


def test_an_output_is_drawn_as_an_output_whatever_its_kind():
    """As for every kind, the graph rule wins: a readout that ends the network is an output
    cell, and the legend has no readout entry."""
    scene = figure(
        spec("""network pooled {
    input   x: 4, seq=6
    dense   e: 3
    readout r: max
    x -> e -> r
}""")
    )
    assert {(d.cell, d.variant) for d in cells_of(scene, "r")} == {(Cell.OUTPUT, None)}
    assert not any(isinstance(s, Disc) and s.gid == "key:readout" for s in scene.shapes)


def test_the_marks_stay_inside_their_cells():
    """Every point of the eye and the funnel lies within the cell (0.62 P across) it marks."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from nnspec.draw.render import _MARKS
    from nnspec.draw.scene import CELL

    axes = Figure().add_subplot()
    for shape in ("eye", "funnel"):
        artist = _MARKS[shape](axes, 1.0, 2.0)
        path = artist.get_path().transformed(artist.get_patch_transform())
        assert all(math.dist(p, (1.0, 2.0)) < CELL / 2 for p in path.vertices), shape
