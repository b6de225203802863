"""Plan: `Program` -> the order in which a backend runs the layers, with time made explicit.

Both backends lower the same plan, so they agree on what runs over whole sequences and
what steps through time. A `Step` runs one layer over whole arrays, every time step at
once: `[B, T, ...]` for timed values, `[B, ...]` for static ones. A `Loop` steps the layers
of one cycle through `~>` links together, one time step at a time, and stacks the values
that are read after it into `[B, T, ...]`. Nothing here imports an array library.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import networkx as nx

from ..program import Layer, Output, Program


class Read(StrEnum):
    """How a layer reads one of its inputs."""

    # the whole array as computed (static values read inside a loop too)
    VALUE = "value"
    # the whole array one step later: zeros at the first step (a `~>` link)
    SHIFTED = "shifted"
    # inside a loop, the current step of a timed array from outside it: value[:, t]
    AT_STEP = "at_step"
    # inside a loop, the previous step of an array from outside it
    SHIFTED_AT_STEP = "shifted_at_step"
    # inside a loop, this step's value of a layer of the same loop
    CURRENT = "current"
    # inside a loop, the previous step's value of a layer of the same loop (zeros first)
    PREVIOUS = "previous"


@dataclass(frozen=True, slots=True)
class Source:
    """One value entering a layer, in link order."""

    name: str
    port: str | None
    read: Read
    broadcast: bool  # a static value meeting a timed layer: repeated along the time axis


@dataclass(frozen=True, slots=True)
class Step:
    """One layer; in a loop it sees one time step, elsewhere whole arrays."""

    layer: Layer
    sources: tuple[Source, ...]
    timed: bool  # its arrays carry a time axis here (False for every step inside a loop)

    @property
    def name(self) -> str:
        return self.layer.name


@dataclass(frozen=True, slots=True)
class Loop:
    """The layers of one cycle through `~>` links, run step by step in same-step order."""

    steps: tuple[Step, ...]
    carried: tuple[str, ...]  # layers of the loop whose previous value is read inside it
    leaving: tuple[str, ...]  # layers of the loop read after it, or outputs: stacked to [B, T, ...]


@dataclass(frozen=True)
class Plan:
    """What a backend runs, in order;
    `shifted` names the layers whose previous-step arrays are read."""

    program: Program
    items: tuple[Step | Loop, ...]
    shifted: tuple[str, ...]

    @property
    def inputs(self) -> tuple[Layer, ...]:
        return tuple(self.program.layer(name) for name in self.program.inputs)

    @property
    def outputs(self) -> tuple[Output, ...]:
        return self.program.outputs


def handed_states(program: Program) -> dict[str, str]:
    """`{decoder: encoder}` for every `enc -> dec.state` straight from a recurrent layer: the
    decoder starts from the encoder's final state, h (and c) of every stacked layer, not from a
    vector (the checker made them the same kind, units and layers)."""
    found = {}
    for layer in program.layers:
        if not (layer.kind.stateful and "state" in layer.kind.side_ports):
            continue
        for link in layer.inputs:
            kind = program.layer(link.source).kind
            if link.port == "state" and kind.stateful and "state" in kind.side_ports:
                found[layer.name] = link.source
    return found


def make_plan(program: Program, keep: tuple[str, ...] = ()) -> Plan:
    """Order the layers: loops for the cycles through `~>` links, whole-array steps for the rest.

    `keep`: layers whose every step leaves its loop even when nothing reads it after (the layers
    with a sparsity= penalty, whose activations the training loss takes). The condensation of
    the graph (every link, each cycle collapsed to one node) is acyclic; its topological order,
    first layer first where the links allow, is the order of the plan.
    """
    position = {layer.name: i for i, layer in enumerate(program.layers)}
    graph = program.graph
    condensed = nx.condensation(graph)
    members = condensed.graph["mapping"]  # layer -> component
    group_of = {}
    for component, data in condensed.nodes(data=True):
        names = sorted(data["members"], key=position.__getitem__)
        if program.layer(names[0]).recurrent:
            group_of[component] = names
    first = {c: min(position[n] for n in data["members"]) for c, data in condensed.nodes(data=True)}
    order = nx.lexicographical_topological_sort(condensed, key=first.__getitem__)
    read_later = _read_later(program, members)
    shifted: set[str] = set()
    items: list[Step | Loop] = []
    for component in order:
        if component in group_of:
            names = group_of[component]
            steps = tuple(
                _step(program, program.layer(n), members, component, shifted) for n in names
            )
            carried = sorted(
                {s.name for step in steps for s in step.sources if s.read is Read.PREVIOUS},
                key=position.__getitem__,
            )
            leaving = tuple(n for n in names if n in read_later or n in keep)
            items.append(Loop(steps, tuple(carried), leaving))
        else:
            (name,) = condensed.nodes[component]["members"]
            items.append(_step(program, program.layer(name), members, None, shifted))
    return Plan(program, tuple(items), tuple(sorted(shifted, key=position.__getitem__)))


def _step(
    program: Program, layer: Layer, members: dict[str, int], loop: int | None, shifted: set[str]
) -> Step:
    sources = []
    for link in layer.inputs:
        source_timed = program.layer(link.source).shape.timed
        local = loop is not None and members[link.source] == loop
        if local:
            read = Read.PREVIOUS if link.delayed else Read.CURRENT
        else:
            if link.delayed:
                shifted.add(link.source)
            if loop is None:
                read = Read.SHIFTED if link.delayed else Read.VALUE
            elif link.port in getattr(layer.kind, "whole_ports", ()):
                read = Read.VALUE  # a stepped attention's keys and values: every step, each step
            else:
                read = (
                    Read.SHIFTED_AT_STEP
                    if link.delayed
                    else Read.AT_STEP
                    if source_timed
                    else Read.VALUE
                )
        broadcast = (
            loop is None
            and layer.shape.timed
            and not source_timed
            and link.port not in layer.kind.side_ports  # a state is read once, whole
        )
        sources.append(Source(link.source, link.port, read, broadcast))
    return Step(layer, tuple(sources), timed=loop is None and layer.shape.timed)


def _read_later(program: Program, members: dict[str, int]) -> set[str]:
    """Layers read by a layer outside their own component, or named as outputs."""
    later = {output.name for output in program.outputs}
    for layer in program.layers:
        for link in layer.inputs:
            if members[link.source] != members[layer.name]:
                later.add(link.source)
    return later
