"""Cell types and palettes: which zoo cell each drawn layer is, and how each cell type looks.

The chart's legend (fill and inner mark per cell type) lives in the kind registry
(`nnspec.kinds.CELLS`); this module adds the rules that need the whole graph (outputs,
recurrence, noisy inputs) and a second palette for readers with colour-vision deficiencies.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..kinds import CELLS, Cell
from .attention import stepped
from .kinds import KIND_DRAWING

# cell types drawn with a loop on top: they carry their own state from step to step
LOOPED = frozenset({Cell.RECURRENT, Cell.MEMORY, Cell.GATED_MEMORY})


@dataclass(frozen=True)
class Palette:
    """Fill colour and inner mark of every cell type."""

    name: str
    cells: dict[Cell, tuple[str, str | None]]

    def fill(self, cell: Cell) -> str:
        return self.cells[cell][0]

    def mark(self, cell: Cell, variant: str | None = None) -> str | None:
        """The inner mark of `cell`, or of the layer kind `variant` drawn in it (its own mark, the
        same in every palette: `KIND_DRAWING`)."""
        return KIND_DRAWING[variant].mark if variant is not None else self.cells[cell][1]


ASIMOV = Palette("asimov", dict(CELLS))

# Okabe and Ito's yellow and vermillion, with a green, a sky blue and a pink picked so that every
# two families differ by at least 20 CIELAB units under simulated protanopia, deuteranopia and
# tritanopia (tests/test_draw.py checks it; the chart's own colours fall to 7 under the first two),
# all light enough for black marks. Every cell type also has a mark of its own, so the shape
# alone tells them apart, in grey print or for any reader.
_YELLOW, _GREEN, _VERMILLION, _SKY, _PINK = "#f0e442", "#118866", "#d55e00", "#33bbff", "#ffaabb"
COLORBLIND = Palette(
    "colorblind",
    {
        Cell.INPUT: (_YELLOW, None),
        Cell.BACKFED_INPUT: (_YELLOW, "circle"),
        Cell.NOISY_INPUT: (_YELLOW, "triangle"),
        Cell.HIDDEN: (_GREEN, "dot"),
        Cell.PROBABILISTIC_HIDDEN: (_GREEN, "diamond"),
        Cell.SPIKING_HIDDEN: (_GREEN, "asterisk"),
        Cell.CAPSULE: (_GREEN, "square"),
        Cell.OUTPUT: (_VERMILLION, "plus"),
        Cell.MATCH_INPUT_OUTPUT: (_VERMILLION, "cross"),
        Cell.RECURRENT: (_SKY, "triangle_down"),
        Cell.MEMORY: (_SKY, "bars"),
        Cell.GATED_MEMORY: (_SKY, "hourglass"),
        Cell.KERNEL: (_PINK, "hash"),
        Cell.CONVOLUTION_POOL: (_PINK, "minus"),
    },
)

PALETTES = {palette.name: palette for palette in (ASIMOV, COLORBLIND)}

# the cell types that rules over the whole graph give (see `cell_type` below), for the docs
GRAPH_RULES: dict[Cell, str] = {
    Cell.NOISY_INPUT: "an `input` read only through a `dropout` or `noise` (a denoising "
    "autoencoder)",
    Cell.OUTPUT: "the network's outputs (`output ...`, or the layer that feeds nothing), whatever "
    "their kind",
    Cell.MATCH_INPUT_OUTPUT: "outputs trained with `target = input`, and a GAN generator's output",
    Cell.RECURRENT: "any hidden layer on a cycle through a `~>` link but an `attention` stepping "
    "with it (the AN's attention cell)",
    Cell.BACKFED_INPUT: "an `input` an `rbm` reads (its visible units, which it reconstructs)",
}


def variant(layers, cell: Cell) -> str | None:
    """The kind whose own mark a drawn group's cells carry (attention, readout), or None: only
    while the group is drawn as its kind's own cell type, since a graph rule (an output, a
    recurrent layer) wins over the kind, as it does for every other kind."""
    head = layers[0]
    if KIND_DRAWING[head.kind.name].mark is not None and cell is head.kind.cell:
        return head.kind.name
    return None


def cell_type(layers, outputs: set[str], reproduces: bool) -> Cell:
    """The zoo cell of a drawn group: `layers[0]` owns the cells, the rest are folded into it.

    An output wins over everything (orange, as on the chart); it matches the input when
    the network is trained to reproduce what it is given. An input with dropout or noise
    folded in is a noisy input. A hidden layer on a cycle through a `~>` link is recurrent; every
    other layer takes the cell its kind declares in the registry.
    """
    if any(layer.name in outputs for layer in layers):
        return Cell.MATCH_INPUT_OUTPUT if reproduces else Cell.OUTPUT
    head = layers[0]
    if head.kind.source:
        noisy = any(layer.kind.name in ("dropout", "noise") for layer in layers[1:])
        return Cell.NOISY_INPUT if noisy else Cell.INPUT
    if head.kind.cell is Cell.HIDDEN and head.recurrent and not stepped(head):
        return Cell.RECURRENT  # an AN's attention is its own cell; its decoder steps for it
    return head.kind.cell
