"""Layout: a checked network -> a `Scene` of zoo cells in columns, with their links.

One walk over the program's layers (already in topological order) groups them
into drawn columns; every size follows the chart's geometry (ZOO.md, `scene.py`):
cells 0.62 P across on a grid of pitch P, each column centred on the network's
axis, links under the cells, loops on recurrent cells, skip links as arcs over the
top, and `~>` links as dashed arrows under the bottom.

Where the chart's grid would draw one thing over another, the layout makes room
instead: the cells of a looped column stand 1.25 P apart so that no loop touches
the cell above it, and two columns stand as far apart as their steepest link needs
to pass clear of every cell, loop and size it does not join (tall columns of wide
layers). The tests check both on every bundled spec and on generated networks.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from ..kinds import Cell
from ..program import Layer, Link, Program
from . import attention
from .block import block_layer, layout_block
from .cells import LOOPED, cell_type, variant
from .compact import shorten
from .grid import grid_layer, layout_grid
from .kinds import KIND_DRAWING, window
from .memory import add_memory
from .ring import layout_ring, ring_layer
from .scene import (
    ARC_RISE,
    CELL,
    DOT,
    LOOP,
    LOOP_RISE,
    Disc,
    Dots,
    Line,
    Loop,
    Scene,
    arc,
    measure,
    oriented,
    text,
    trim_end,
)

MAX_FULL = 5  # the chart draws 1 to 5 cells per column; wider layers get an ellipsis
GAP = 2  # empty slots between two layers that share a column
LOOP_PITCH = (
    1.25  # cells of a looped column stand further apart: each loop keeps 0.44 P from the cell above
)
LEVEL = 0.35  # how much higher each arc that spans another one rises
LABEL = 6.5  # points: sizes in an ellipsis and annotations
LABEL_GAP = 0.35  # P between the sizes or annotations of neighbouring columns
CLEAR = 0.06  # P of white a link keeps from any cell, loop or size it passes
ARC_CLEAR = 0.15  # P of white an arc keeps from the cells it passes over or under
DOT_STEP, DOT_GAP = 0.12, 0.12  # between an ellipsis' dots, and between them and the size
# the compact view (the poster): a few cells per column, at most COMPACT_FULL drawn cell for cell
COMPACT_FULL = 4
COMPACT_GAP = 1  # empty slots between two layers that share a column
CUT_ROOM = 1.0  # P added where a shortened chain's dropped copies stand (three dots)
CUT_STEP = 0.16  # P between the cut's dots


@dataclass(eq=False)
class Group:
    """The cells of one layer, and of the layers folded into it (they add no cells of their own)."""

    layers: list[Layer]
    cell: Cell = Cell.HIDDEN
    variant: str | None = None  # the kind whose own mark the cells carry (attention, readout)
    size: int = 1  # real breadth: units, or the height of an image
    slots: int = 1  # drawn slots, the ellipsis included
    looped: bool = False  # a loop on every cell: recurrent, memory, or with a `~>` link onto itself
    pitch: float = 1.0  # distance between neighbouring slots
    room: float = 0.0  # extra space at the ellipsis, for a size wider than the slot
    column: int = 0
    top: float = 0.0  # v of the first slot
    u: float = 0.0  # position along the flow
    # an AN's stepped attention: the column of memory cells of the states it scores has their
    # (steps, features) as `kept`; the attention's own group holds it as `memory` (attention.py)
    kept: tuple[int | None, int] | None = None
    memory: Group | None = None

    @property
    def head(self) -> Layer:
        return self.layers[0]

    @property
    def name(self) -> str:
        """The name its cells' ids carry: its head's (`a.memory` for an AN's memory column)."""
        return self.head.name if self.kept is None else f"{self.head.name}.memory"

    @property
    def ellipsis(self) -> int | None:
        return self.slots // 2 if self.slots < self.size else None

    def shown(self) -> list[tuple[int, int]]:
        """(slot, index) of every drawn cell: the first and last units around the ellipsis."""
        if self.ellipsis is None:
            return [(k, k) for k in range(self.size)]
        return [
            (k, k if k < self.ellipsis else self.size - (self.slots - k))
            for k in range(self.slots)
            if k != self.ellipsis
        ]

    def at(self, slot: int) -> tuple[float, float]:
        beyond = self.ellipsis is not None and slot > self.ellipsis
        return self.u, self.top - slot * self.pitch - (self.room if beyond else 0.0)

    @property
    def bottom(self) -> float:
        return self.at(self.slots - 1)[1]

    @property
    def height(self) -> float:
        return self.top - self.bottom


class Share(NamedTuple):
    """The units one link brings into its target: `units` of them (the source layer's features),
    from unit `offset` of the target on when the target lays its sources one after another."""

    offset: int
    units: int


@dataclass
class Wiring:
    """The links of a network, sorted by how they are drawn
    (a `~>` link onto its own group is its loop)."""

    # to the next column, with the units the link brings and their offset in the target's fan-in
    direct: list[tuple[Group, Group, Share]] = field(default_factory=list)
    # further on: an arc over the top
    skips: list[tuple[Group, Group]] = field(default_factory=list)
    # `~>` to another group: an arrow under the bottom
    delays: list[tuple[Group, Group]] = field(default_factory=list)
    # standing for a shortened chain's dropped copies (the compact view): three dots between
    cuts: list[tuple[Group, Group]] = field(default_factory=list)


@dataclass(frozen=True)
class Obstacle:
    """Something drawn in a column (a cell, a loop, an ellipsis' dots or size)
    that links must pass clear of."""

    v: float  # its centre along the column
    along: float  # half its extent along the flow; a round one's radius
    across: float  # half its extent along the column
    round: bool = True
    # (group id, slot) of the cell it belongs to: that cell's own links may cross it
    owner: tuple[int, int] | None = None

    def spacing(self, end: float, rise: float) -> float:
        """How far apart two neighbouring columns must stand for a straight link that leaves this
        one at `end` and climbs `rise` to the other to pass clear of it.

        0 when the link heads away.
        """
        offset = self.v - end
        if offset * rise <= 0:
            return 0.0
        if self.round:
            # the link's distance from the centre, d |offset| / hypot(d, rise), reaches the radius
            radius = self.along + CLEAR
            return (
                radius * abs(rise) / math.sqrt(offset**2 - radius**2)
                if abs(offset) > radius
                else 0.0
            )
        # the link has climbed past the box's near edge by the time it leaves the box
        half = self.across + CLEAR
        return (
            (self.along + CLEAR) * abs(rise) / (abs(offset) - half) if abs(offset) > half else 0.0
        )


def layout_network(
    program: Program,
    *,
    scope: str | None = None,
    reproduces: bool = False,
    annotate: bool = False,
    orient: str = "lr",
    compact: bool = False,
) -> Scene:
    """The network's cells, links and labels, centred on its axis; `scope` prefixes the cells' ids.

    `reproduces`: the outputs are trained to reproduce the input (match input output cells).
    A network that is one ring kind's population (Hopfield, Boltzmann, Markov) is drawn as a
    ring instead (`ring.py`), a Kohonen map as a grid (`grid.py`), a reservoir as a block
    (`block.py`).

    `compact`: the poster's view, a few cells per column: layers of more than `COMPACT_FULL`
    units drawn as 3 cells and an ellipsis (4 from 20 units up; 2 past 3 units where layers
    share a column),
    an `add` drawn in the cells of the layer before it (the chart's DRN: skip arcs over every
    second column), and a long chain of repeated copies shortened to its first few with its
    real depth written under it (`compact.py`).
    """
    ring = ring_layer(program)
    if ring is not None:
        return layout_ring(
            program, ring, scope=scope or program.name, annotate=annotate, orient=orient
        )
    grid = grid_layer(program)  # a Kohonen map: its inputs linked to a grid (`grid.py`)
    if grid is not None:
        return layout_grid(
            program, grid, scope=scope or program.name, annotate=annotate, orient=orient
        )
    block = block_layer(program)  # a reservoir: a 3 x 4 block of randomly linked cells
    if block is not None:
        return layout_block(
            program, *block, scope=scope or program.name, annotate=annotate, orient=orient
        )
    cuts, note = frozenset(), None
    if compact:
        short = shorten(program)
        program, cuts, note = short.program, short.cuts, short.note
    groups, group_of = _groups(program, compact)
    attention.add_memory_columns(groups, group_of, Group)  # an AN's kept states
    outputs = {output.name for output in program.outputs}
    # an rbm's visible units take its reconstruction back: the inputs it reads are backfed
    backfed = {
        link.source for layer in program.layers if layer.kind.name == "rbm" for link in layer.inputs
    }
    for group in groups:
        group.cell = cell_type(group.layers, outputs, reproduces)
        if group.cell is Cell.INPUT and group.head.name in backfed:
            group.cell = Cell.BACKFED_INPUT
        group.variant = variant(group.layers, group.cell)
        group.size = _breadth(_shown_layer(group))
        group.slots = _slots(group.size, compact)
        group.looped = group.cell in LOOPED or any(
            link.delayed and group_of[link.source] is group for link in group.head.inputs
        )
        if group.kept is not None:  # memory cells, one per kept state, with no loops
            group.cell, group.variant, group.looped = Cell.MEMORY, None, False
            group.size = group.kept[0] or MAX_FULL + 1  # any length: an ellipsis and T
            group.slots = _slots(group.size, compact)
        group.pitch = LOOP_PITCH if group.looped else 1.0
    _place_columns(groups, group_of)
    if compact:  # layers that share a column: 2 cells and an ellipsis each past 3 units
        sharing = Counter(group.column for group in groups)
        for group in groups:
            if sharing[group.column] > 1 and group.size > 3:
                group.slots = 3
    for group in groups:
        if group.ellipsis is not None:
            upper, lower = _free(group)
            group.room = max(0.0, _ellipsis_span(group, orient) - (upper - lower))
    columns = _stack(groups, group_of, COMPACT_GAP if compact else GAP)
    wiring = _wire(groups, group_of, cuts)
    captions = {id(g): _caption(g) for g in groups} if annotate else {}
    _space(columns, wiring, captions, orient)
    scene = Scene()
    _draw_cuts(scene, wiring, columns)
    _draw_links(scene, wiring, columns)
    _draw_cells(scene, groups, scope or program.name, orient)
    if annotate:
        _draw_captions(scene, columns, captions, orient)
    if note is not None:
        x0, y0, x1, _ = scene.bounds()
        scene.add(text((x0 + x1) / 2, y0 - 0.2, note, LABEL, "below"))
    add_memory(scene, program, scope or program.name, orient)  # an ntm's memory cells (`memory.py`)
    return oriented(scene, orient)


def _slots(size: int, compact: bool) -> int:
    """The slots a layer of `size` units is drawn in, its ellipsis' included."""
    if compact:
        return size if size <= COMPACT_FULL else 4 if size < 20 else 5
    return size if size <= MAX_FULL else 5 if size < 20 else 7


# ---- grouping and cell types ----------------------------------------------------------------
def _groups(program: Program, compact: bool = False) -> tuple[list[Group], dict[str, Group]]:
    consumers = Counter(link.source for layer in program.layers for link in layer.inputs)
    groups: list[Group] = []
    group_of: dict[str, Group] = {}
    steps = _steps(program) if compact else {}
    for layer in program.layers:  # topological: a layer's host is grouped before it
        host = _host(layer, consumers, group_of)
        if host is None and compact:
            host = _sum_host(layer, consumers, group_of, steps)
        if host is None:
            host = Group([layer])
            groups.append(host)
        else:
            host.layers.append(layer)
        group_of[layer.name] = host
    return groups, group_of


def _host(layer: Layer, consumers: Counter, group_of: dict[str, Group]) -> Group | None:
    """The group whose cells `layer` shares, or None when it gets cells of its own."""
    if not KIND_DRAWING[layer.kind.name].folds or len(layer.inputs) != 1 or layer.recurrent:
        return None
    link = layer.inputs[0]
    if link.delayed:
        return None
    host = group_of[link.source]
    if layer.kind.internal:  # a block's input port passes its value on unchanged
        return host
    if consumers[link.source] != 1:  # the value before it is used elsewhere too: keep both visible
        return None
    if host.head.kind.source and layer.kind.name not in ("dropout", "noise"):  # noise only
        return None
    return host


def _shown_layer(group: Group) -> Layer:
    """The layer whose units the group's cells stand for: its head, or the first image among the
    layers folded into it (a dense layer reshaped into a small image, the seed of a
    deconvolutional decoder, is drawn as the image's rows, so that the columns grow from the code
    as the chart's inverse pyramid does)."""
    return next((layer for layer in group.layers if len(layer.shape.dims) == 3), group.head)


def _steps(program: Program) -> dict[str, int]:
    """How many layers with cells of their own lie on the longest path to each layer."""
    found: dict[str, int] = {}
    for layer in program.layers:
        before = [found[link.source] for link in layer.inputs if not link.delayed]
        own = not KIND_DRAWING[layer.kind.name].folds and layer.kind.name != "add"
        found[layer.name] = max(before, default=0) + own
    return found


def _sum_host(
    layer: Layer, consumers: Counter, group_of: dict[str, Group], steps: dict[str, int]
) -> Group | None:
    """In the compact view, the group an `add` is drawn in: its first source's, when that feeds
    nothing else and every other source lies further back (its link becomes a skip arc)."""
    if layer.kind.name != "add" or layer.recurrent or any(link.delayed for link in layer.inputs):
        return None
    first, *others = layer.inputs
    if consumers[first.source] != 1 or group_of[first.source].head.kind.source:
        return None
    if not others or any(steps[o.source] >= steps[first.source] for o in others):
        return None
    return group_of[first.source]


def _breadth(layer: Layer) -> int:
    """How many units a column stands for: features,
    or the height of an image (convolutions are local in space)."""
    dims = layer.shape.dims
    return dims[1] if len(dims) == 3 else _units(layer)


def _units(layer: Layer) -> int:
    """The units a layer brings to the next: its features, or its capsules (a capsule layer's
    [N, D] is N capsules of D values each, one cell each)."""
    dims = layer.shape.dims
    return dims[0] if len(dims) == 2 and layer.kind.cell is Cell.CAPSULE else layer.shape.features


# ---- columns --------------------------------------------------------------------------------
def _same_step_sources(group: Group, group_of: dict[str, Group]) -> list[Group]:
    return [group_of[link.source] for link in group.head.inputs if not link.delayed]


def _place_columns(groups: list[Group], group_of: dict[str, Group]) -> None:
    """Longest path from the inputs; then each input moves up to just before its first reader."""
    if attention.place_columns(groups, group_of):  # an AN: encoder, memory, attention, decoder
        return
    for group in groups:
        sources = _same_step_sources(group, group_of)
        group.column = 1 + max(s.column for s in sources) if sources else 0
    readers: dict[int, list[int]] = {}
    for group in groups:
        for source in _same_step_sources(group, group_of):
            readers.setdefault(id(source), []).append(group.column)
    for group in groups:
        if group.head.kind.source and id(group) in readers:
            group.column = min(readers[id(group)]) - 1


def _stack(groups: list[Group], group_of: dict[str, Group], gap: int = GAP) -> list[list[Group]]:
    """Groups sharing a column stacked top to bottom near their sources,
    the column centred on the axis."""
    by_column: dict[int, list[Group]] = {}
    for group in groups:
        by_column.setdefault(group.column, []).append(group)
    columns = [by_column[c] for c in sorted(by_column)]
    for i, members in enumerate(columns):  # numbered again, in case moving inputs emptied a column
        for group in members:
            group.column = i
    for members in columns:
        members.sort(key=lambda g: -_pull(g, group_of))  # stable: ties keep the file's order
        members[:] = _inputs_beside_siblings(members, groups, group_of)
        top = (sum(g.height for g in members) + (gap + 1) * (len(members) - 1)) / 2
        for group in members:
            group.top = top
            top -= group.height + gap + 1
    return columns


def _inputs_beside_siblings(
    members: list[Group], groups: list[Group], group_of: dict[str, Group]
) -> list[Group]:
    """`members` with each input that shares its column with layers (it was moved up to just
    before its reader) standing beside the reader's other sources, in the reader's fan-in order:
    a vector joined to a flattened image under the image, as the `concat` lays them, so that
    their links do not cross. An input has no sources to pull it anywhere else."""
    inputs = [g for g in members if g.head.kind.source]
    if len(inputs) in (0, len(members)):
        return members
    order = [g for g in members if not g.head.kind.source]
    for loose in inputs:
        reader = next((g for g in groups if loose in _same_step_sources(g, group_of)), None)
        fan = list(dict.fromkeys(_same_step_sources(reader, group_of))) if reader else [loose]
        at = fan.index(loose)
        before = next((s for s in reversed(fan[:at]) if s in order), None)
        after = next((s for s in fan[at + 1 :] if s in order), None)
        if before is not None:
            order.insert(order.index(before) + 1, loose)
        elif after is not None:
            order.insert(order.index(after), loose)
        else:  # no sibling here: where the sort put it, among the layers it was sorted with
            order.insert(min(members.index(loose), len(order)), loose)
    return order


def _pull(group: Group, group_of: dict[str, Group]) -> float:
    """The mean height of the group's sources in earlier columns (already stacked)."""
    heights = [
        (s.top + s.bottom) / 2
        for s in _same_step_sources(group, group_of)
        if s.column < group.column
    ]
    return sum(heights) / len(heights) if heights else 0.0


def _space(
    columns: list[list[Group]], wiring: Wiring, captions: dict[int, list[str]], orient: str
) -> None:
    """Columns one pitch apart, as on the chart, or wider where a size or an annotation needs the
    room, or where a link between them would otherwise pass under a cell, a loop or a size it does
    not join (steep links between tall columns)."""
    needed = _link_room(wiring, [_obstacles(members, orient) for members in columns])
    u = 0.0
    for i, members in enumerate(columns):
        if i:
            labels = (
                _reach(columns[i - 1], captions, orient)
                + _reach(members, captions, orient)
                + LABEL_GAP
            )
            u += max(1.0, labels, needed.get(i, 0.0))
        for group in members:
            group.u = u


def _link_room(wiring: Wiring, obstacles: list[list[Obstacle]]) -> dict[int, float]:
    """For each column, how far it must stand from the one before
    for its links to clear every obstacle."""
    needed: dict[int, float] = {}
    for source, target, share in wiring.direct:
        for s, t in _pairs(source, target, share):
            a, b = source.at(s)[1], target.at(t)[1]
            room = max(
                [
                    o.spacing(a, b - a)
                    for o in obstacles[source.column]
                    if o.owner != (id(source), s)
                ]
                + [
                    o.spacing(b, a - b)
                    for o in obstacles[target.column]
                    if o.owner != (id(target), t)
                ],
                default=0.0,
            )
            needed[target.column] = max(needed.get(target.column, 0.0), room)
    return needed


def _obstacles(members: list[Group], orient: str) -> list[Obstacle]:
    """Every cell, loop, and ellipsis (its dots and its size) of a column."""
    found = []
    for group in members:
        for slot, _ in group.shown():
            v = group.at(slot)[1]
            found.append(Obstacle(v, CELL / 2, CELL / 2, owner=(id(group), slot)))
            if group.looped:
                found.append(Obstacle(v + LOOP_RISE, LOOP / 2, LOOP / 2, owner=(id(group), slot)))
        if group.ellipsis is not None:
            dots, (along, across), anchor = _ellipsis_parts(group, orient)
            found.append(Obstacle(dots[1], DOT, DOT_STEP + DOT, round=False))
            found.append(Obstacle(anchor - across / 2, along / 2, across / 2, round=False))
    return found


def _reach(members: list[Group], captions: dict[int, list[str]], orient: str) -> float:
    """How far a column's drawing reaches along the flow, on either side of it."""
    reach = CELL / 2
    for group in members:
        if group.ellipsis is not None:
            reach = max(reach, _size_extent(group, orient)[0] / 2)
    if captions:
        reach = max(reach, _caption_extent(members, captions, orient))
    return reach


# ---- links ----------------------------------------------------------------------------------
def _wire(
    groups: list[Group], group_of: dict[str, Group], cuts: frozenset[tuple[str, str]] = frozenset()
) -> Wiring:
    """Every link, sorted by how it is drawn. A fan-in counts the units each source brings (its
    layer's features), not the cells its group draws: a flattened image brings all its pixels,
    although its group is drawn as the image's rows. The links into a group's other layers come
    from its own cells but for an `add` drawn in the cells before it (the compact view); a link
    in `cuts` stands for a shortened chain's dropped copies (three dots, no line)."""
    wiring = Wiring()
    seen: set[tuple[int, int, str]] = set()
    for group in groups:
        offsets: Counter = Counter()
        for layer, link in _entering(group, group_of):
            source = group_of[link.source]
            if (link.source, layer.name) in cuts:
                wiring.cuts.append((source, group))
                continue
            units = _units(next(x for x in source.layers if x.name == link.source))
            offset = offsets[link.port]
            if _stacks_fan_in(group.head):
                offsets[link.port] += units
            how = (
                "delay"
                if link.delayed
                else "direct"
                if group.column - source.column == 1
                else "skip"
            )
            key = (id(source), id(group), how if how != "direct" else f"direct{offset}")
            if key in seen:
                continue
            seen.add(key)
            _classify(wiring, source, group, link, how, Share(offset, units))
        if group.memory is not None:  # an AN's attention looks at every kept state
            how = "direct" if group.column - group.memory.column == 1 else "skip"
            _classify(wiring, group.memory, group, None, how, Share(0, group.memory.size))
    return wiring


def _entering(group: Group, group_of: dict[str, Group]) -> list[tuple[Layer, Link]]:
    """(layer, link) of every link into the group: the head's, and those of its other layers
    that come from another group."""
    found = [(group.head, link) for link in group.head.inputs if attention.enters(group, link)]
    for layer in group.layers[1:]:
        found += [(layer, link) for link in layer.inputs if group_of[link.source] is not group]
    return found


def _classify(
    wiring: Wiring, source: Group, group: Group, link: Link | None, how: str, share: Share
) -> None:
    if how == "delay":
        if source is not group:  # onto itself: the group's loop
            wiring.delays.append((source, group))
    elif how == "direct":
        wiring.direct.append((source, group, share))
    else:
        wiring.skips.append((source, group))


def _stacks_fan_in(layer: Layer) -> bool:
    """Fan-in lays the sources one after another along the drawn axis
    (not for add/mul, nor images: they join channels)."""
    return layer.kind.name not in ("add", "mul") and len(layer.shape.dims) != 3


def _pairs(source: Group, target: Group, share: Share) -> list[tuple[int, int]]:
    """(source slot, target slot) of every drawn link between two neighbouring columns.

    A target that lays its sources one after another links each of its cells to the source whose
    units it holds: to that very unit when the source's group draws its units, else to the cell
    as far along the source's cells as the unit is along its units (a flattened image's pixels
    come from the image's rows, first to last)."""
    pattern = KIND_DRAWING[target.head.kind.name].links
    if pattern == "full":
        return [(s, t) for s, _ in source.shown() for t, _ in target.shown()]
    pairs = []
    for t, index in target.shown():
        if pattern == "local":
            # the drawn units of its window (none from across an ellipsis), at least the nearest
            scale = (source.size - 1) / max(target.size - 1, 1)
            centre, half = index * scale, window(target.head) / 2 * max(scale, 1.0)
            near = sorted(source.shown(), key=lambda c: (abs(c[1] - centre), c[0]))[
                : window(target.head)
            ]
            pairs += [
                (s, t) for k, (s, unit) in enumerate(near) if k == 0 or abs(unit - centre) <= half
            ]
            continue
        if _stacks_fan_in(target.head):
            wanted = index - share.offset
            if not 0 <= wanted < share.units:
                continue
            if share.units != source.size:
                wanted = round(wanted * (source.size - 1) / max(share.units - 1, 1))
        else:
            wanted = round(index * (source.size - 1) / max(target.size - 1, 1))
        s, _ = min(source.shown(), key=lambda c: (abs(c[1] - wanted), c[0]))
        pairs.append((s, t))
    return pairs


def _draw_cuts(scene: Scene, wiring: Wiring, columns: list[list[Group]]) -> None:
    """Each cut: `CUT_ROOM` more between its two columns (and every column after them), and three
    dots midway, at the mean height of the two groups."""
    for _source, target in wiring.cuts:
        for members in columns[target.column :]:
            for group in members:
                group.u += CUT_ROOM
    for source, target in wiring.cuts:
        u = (source.u + target.u) / 2
        v = (source.top + source.bottom + target.top + target.bottom) / 4
        scene.add(Dots(tuple((u + k * CUT_STEP, v) for k in (-1, 0, 1))))


def _draw_links(scene: Scene, wiring: Wiring, columns: list[list[Group]]) -> None:
    """Neighbouring columns by their kind's pattern; skips as arcs over the top (under the bottom
    when they leave a group below the axis, which an arc over the top would cross); `~>` dashed
    arrows under the bottom. An arc clears every column it passes, loops included."""
    for source, target, share in wiring.direct:
        for s, t in _pairs(source, target, share):
            scene.add(Line((source.at(s), target.at(t))))
    over = [(s, t, False) for s, t in wiring.skips if s.top + s.bottom >= 0]
    under = [(s, t, False) for s, t in wiring.skips if s.top + s.bottom < 0] + [
        (s, t, True) for s, t in wiring.delays
    ]
    for (source, target, _), level in _levels(over):
        passed = [columns[c][0] for c in _spanned(source, target)]
        top = max(first.top + (LOOP_RISE + LOOP / 2 if first.looped else 0.0) for first in passed)
        clear = [point for first in passed[1:-1] for point in _profile(first, above=True)]
        start, end = source.at(source.shown()[0][0]), target.at(target.shown()[0][0])
        scene.add(Line(arc(start, end, top + ARC_RISE + LEVEL * level, clear)))
    for (source, target, delayed), level in _levels(under):
        passed = [columns[c][-1] for c in _spanned(source, target)]
        low = min(last.bottom for last in passed)
        clear = [point for last in passed[1:-1] for point in _profile(last, above=False)]
        start, end = source.at(source.shown()[-1][0]), target.at(target.shown()[-1][0])
        points = arc(start, end, low - ARC_RISE - LEVEL * level, clear)
        scene.add(
            Line(trim_end(points, CELL / 2), dashed=True, arrow=True) if delayed else Line(points)
        )


def _spanned(source: Group, target: Group) -> range:
    return range(min(source.column, target.column), max(source.column, target.column) + 1)


def _profile(group: Group, above: bool) -> list[tuple[float, float]]:
    """Points an arc passing over the group's first cell and its loop (or under its last cell) must
    stay beyond: the outline of each, ARC_CLEAR out."""
    sign = 1 if above else -1
    circles = [(group.top, CELL / 2)] if above else [(group.bottom, CELL / 2)]
    if above and group.looped:
        circles.append((group.top + LOOP_RISE, LOOP / 2))
    return [
        (
            group.u + (r + ARC_CLEAR) * math.cos(k * math.pi / 8),
            v + sign * (r + ARC_CLEAR) * math.sin(k * math.pi / 8),
        )
        for v, r in circles
        for k in range(9)
    ]


def _levels(arcs: list[tuple]) -> list[tuple[tuple, int]]:
    """Each arc (source, target, ...) with its level:
    one above every shorter arc whose span overlaps its own."""
    placed: list[tuple[float, float, int]] = []
    result = []
    for item in sorted(
        arcs, key=lambda a: (abs(a[1].column - a[0].column), min(a[0].column, a[1].column))
    ):
        lo, hi = sorted((item[0].column, item[1].column))
        level = 1 + max((lvl for a, b, lvl in placed if a < hi and lo < b), default=-1)
        placed.append((lo, hi, level))
        result.append((item, level))
    return result


# ---- cells ----------------------------------------------------------------------------------
def _draw_cells(scene: Scene, groups: list[Group], scope: str, orient: str) -> None:
    for group in groups:
        shown = group.shown()
        if group.looped:  # recurrent columns also link neighbouring cells
            for (a, _), (b, _) in zip(shown, shown[1:], strict=False):
                if b == a + 1:
                    scene.add(Line((group.at(a), group.at(b))))
        for slot, index in shown:
            u, v = group.at(slot)
            if group.looped:
                scene.add(Loop(u, v + LOOP_RISE))
            gid = f"cell:{scope}:{group.name}:{index}"
            scene.add(Disc(u, v, group.cell, gid, group.variant))
        if group.ellipsis is not None:
            dots, _, anchor = _ellipsis_parts(group, orient)
            scene.add(Dots(tuple((group.u, v) for v in dots)))
            scene.add(text(group.u, anchor, _size_text(group), LABEL, "below"))


# ---- wide layers: a few cells, an ellipsis, the real size -------------------------------------
def _size_text(group: Group) -> str:
    if group.kept is not None:  # an AN's memory: its states
        return attention.size_text(group)
    return "×".join(str(d) for d in _shown_layer(group).shape.dims)


def _size_extent(group: Group, orient: str) -> tuple[float, float]:
    """(along the flow, along the column) of a wide layer's size:
    text reads left to right in both orientations."""
    width, height = measure(_size_text(group), LABEL)
    return (width, height) if orient == "lr" else (height, width)


def _ellipsis_span(group: Group, orient: str) -> float:
    """The room the dots and the size take along the column."""
    return 2 * DOT_STEP + DOT_GAP + _size_extent(group, orient)[1]


def _free(group: Group) -> tuple[float, float]:
    """(upper, lower) ends of the free space in the ellipsis' slot: below the cell before it, above
    the cell after it and that cell's loop."""
    above, below = group.at(group.ellipsis - 1)[1], group.at(group.ellipsis + 1)[1]
    return above - CELL / 2 - 2 * CLEAR, below + (
        LOOP_RISE + LOOP / 2 if group.looped else CELL / 2
    ) + 2 * CLEAR


def _ellipsis_parts(
    group: Group, orient: str
) -> tuple[tuple[float, ...], tuple[float, float], float]:
    """The ellipsis as (v of its three dots, the size's extent, v of the size's edge nearest the
    dots), centred in the free space of its slot: dots first, then the size (under the dots, or
    after them in 'tb')."""
    upper, lower = _free(group)
    first = (upper + lower + _ellipsis_span(group, orient)) / 2
    dots = tuple(first - k * DOT_STEP for k in range(3))
    return dots, _size_extent(group, orient), first - 2 * DOT_STEP - DOT_GAP


# ---- annotations ----------------------------------------------------------------------------
def _caption(group: Group) -> list[str]:
    """Name; kind and output shape; activation; the layers drawn in the same cells."""
    if group.kept is not None:  # an AN's memory column
        return attention.caption(group)
    head = group.head
    lines = [head.name, f"{head.kind.name} {head.shape}"]
    act = getattr(head.options, "act", None)
    if act is not None and act.name != "identity":
        lines.append(str(act))
    lines += [
        f"+ {layer.kind.name} {layer.name}" for layer in group.layers[1:] if not layer.kind.internal
    ]
    return lines


def _caption_extent(members: list[Group], captions: dict[int, list[str]], orient: str) -> float:
    """Half the room a column's annotation takes along the flow."""
    if orient == "lr":
        return (
            max(
                measure(line, LABEL, i == 0)[0]
                for g in members
                for i, line in enumerate(captions[id(g)])
            )
            / 2
        )
    return len(members) * measure("x", LABEL)[1] / 2


def _draw_captions(
    scene: Scene, columns: list[list[Group]], captions: dict[int, list[str]], orient: str
) -> None:
    """Annotations under each column (beside each row, top to bottom);
    after the links, below everything."""
    base = scene.bounds()[1] - 0.3
    height = measure("x", LABEL)[1]
    for members in columns:
        u = members[0].u
        if orient == "lr":
            v = base
            for group in members:
                for i, line in enumerate(captions[id(group)]):
                    scene.add(text(u, v, line, LABEL, "below", bold=i == 0))
                    v -= height
                v -= height / 2
        else:
            for j, group in enumerate(members):
                lines = captions[id(group)]
                shift = (j - (len(members) - 1) / 2) * height
                scene.add(
                    text(u + shift, base, f"{lines[0]}: " + ", ".join(lines[1:]), LABEL, "below")
                )
