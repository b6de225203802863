"""The compact view the poster draws (`layout_network(..., compact=True)`): a long chain of
repeated copies shortened to its first few, with its real depth written under it.

A layer placed with `repeat=N` (a block or a kind) becomes N chained copies named `NAME.1...`,
`NAME.N...` (`resolve.py`). When the copies would take more than `CHAIN_MOST` columns (a copy
takes a column for each of its layers that has cells of its own, an `add` folded into the layer
before it as the compact view draws it), only the first copies that fill `KEEP_COLUMNS` columns
are kept (one at least): a layer after the chain that read a dropped copy reads the last kept
copy's counterpart instead, and that link is the cut, drawn as three dots in place of its links.
The single-network drawing keeps the full view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..program import Layer, Program
from .kinds import KIND_DRAWING

CHAIN_MOST = 6  # columns a chain of copies may take before it is shortened
KEEP_COLUMNS = 4  # columns of copies kept when it is


@dataclass(frozen=True)
class Shortened:
    """A program with its long chains cut: `cuts` are the (source, target) links that stand for
    the dropped copies, `note` the line written under the drawing."""

    program: Program
    cuts: frozenset[tuple[str, str]]
    note: str | None


def _copy_of(name: str) -> tuple[str, int, str] | None:
    """(chain, copy number, the rest of the name) of a repeated layer's name, outermost first:
    `r.3.a` -> ('r', 3, '.a')."""
    parts = name.split(".")
    for i, part in enumerate(parts[1:], start=1):
        if part.isdigit():
            rest = ".".join(parts[i + 1 :])
            return ".".join(parts[:i]), int(part), f".{rest}" if rest else ""
    return None


def _columns(layer: Layer) -> int:
    """The columns a layer takes in the compact view: none when it shares the cells before it."""
    return 0 if KIND_DRAWING[layer.kind.name].folds or layer.kind.name == "add" else 1


def depth(program: Program) -> int:
    """The network's depth: the most layers with parameters on one path from an input."""
    found: dict[str, int] = {}
    for layer in program.layers:
        before = [found[link.source] for link in layer.inputs if not link.delayed]
        found[layer.name] = max(before, default=0) + (1 if layer.own_params else 0)
    return max(found.values(), default=0)


def shorten(program: Program) -> Shortened:
    """The program with every chain of copies longer than `CHAIN_MOST` columns cut after its
    first copies (see the module's docstring); the program itself when none is."""
    chains: dict[str, dict[int, list[Layer]]] = {}
    for layer in program.layers:
        found = _copy_of(layer.name)
        if found is not None:
            chains.setdefault(found[0], {}).setdefault(found[1], []).append(layer)
    keep: dict[str, int] = {}
    for chain, copies in chains.items():
        if sorted(copies) != list(range(1, len(copies) + 1)) or len(copies) < 2:
            continue
        per_copy = max(1, sum(_columns(layer) for layer in copies[1]))
        if per_copy * len(copies) > CHAIN_MOST:
            keep[chain] = max(1, KEEP_COLUMNS // per_copy)
    keep = {chain: k for chain, k in keep.items() if k < len(chains[chain])}
    if not keep:
        return Shortened(program, frozenset(), None)

    def dropped(name: str) -> bool:
        found = _copy_of(name)
        return found is not None and found[0] in keep and found[1] > keep[found[0]]

    def counterpart(name: str) -> str:
        chain, _, rest = _copy_of(name)
        return f"{chain}.{keep[chain]}{rest}"

    layers, cuts = [], set()
    for layer in program.layers:
        if dropped(layer.name):
            continue
        inputs = []
        for link in layer.inputs:
            if dropped(link.source):
                link = replace(link, source=counterpart(link.source))
                cuts.add((link.source, layer.name))
            inputs.append(link)
        layers.append(replace(layer, inputs=tuple(inputs)))
    outputs = tuple(
        replace(output, name=counterpart(output.name)) if dropped(output.name) else output
        for output in program.outputs
    )
    notes = [f"{chain} repeated {len(chains[chain])} times, {k} drawn" for chain, k in keep.items()]
    note = f"{depth(program)} layers deep; " + "; ".join(notes)
    return Shortened(replace(program, layers=tuple(layers), outputs=outputs), frozenset(cuts), note)
