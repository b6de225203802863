"""The chart's attention network (AN): a recurrent encoder, memory cells, an attention cell and a
recurrent decoder, left to right.

An attention stepping on a `~>` cycle (a decoder's `dec -> a.query`, `a ~> dec`) scores, at every
step, the decoder's state against every state of its keys and values, whole sequences kept from
outside the cycle (an encoder's). The chart draws those kept states as a column of memory cells
between the encoder and the attention cell, and the attention cell apart from the recurrent
decoder; nnspec does the same:

- `add_memory_columns` gives each stepped attention a column of memory cells of its own, one
  cell per kept state (an ellipsis and `steps×features` past 5), fed by its keys' and values'
  layers and feeding the attention's cells: every unit of the encoder goes into every kept state,
  and the attention looks at every one of them (`enters` and `memory` say which links go where).
- The attention's cells are attention cells, hidden cells with the eye (`cells.cell_type`), not
  recurrent ones: its state from step to step is the decoder's.
- `place_columns` lays the flow out as the chart does: encoder, memory, attention, decoder,
  output. By the same-step links alone the decoder would stand beside the encoder and the
  attention after both; here the attention's context (`a ~> dec`) is the link into the decoder and
  its query from the cycle the link back (an arc over the top).

A network without a stepped attention is drawn as before: nothing here touches it.
"""

from __future__ import annotations

WHOLE = ("key", "value")  # the ports an attention reads whole sequences on: its memory


def stepped(layer) -> bool:
    """An attention on a `~>` cycle, which steps with it (check.py)."""
    return layer.kind.name == "attention" and layer.recurrent


def add_memory_columns(groups: list, group_of: dict, make) -> None:
    """Before each stepped attention's group in `groups`, the group of its memory cells: `make`
    (layout's `Group`) of the attention layer, its `kept` states' (steps, features) given; the
    attention's group holds it as its `memory`."""
    for group in list(groups):
        keys = [link for link in group.head.inputs if link.port == "key"]
        if stepped(group.head) and keys:
            source = group_of[keys[0].source]
            shape = next(x for x in source.layers if x.name == keys[0].source).shape
            steps = shape.steps if shape.timed else shape.dims[0]  # None: any length
            memory = make([group.head], kept=(steps, shape.features))
            groups.insert(groups.index(group), memory)
            group.memory = memory


def enters(group, link) -> bool:
    """Whether `link` of the group's head is drawn into the group: a memory column takes its
    attention's keys and values, and its attention all the other links."""
    if group.kept is not None:
        return link.port in WHOLE
    return group.memory is None or link.port not in WHOLE


def size_text(group) -> str:
    """What a memory column's ellipsis says: its kept states as `steps×features` (`T` for a
    sequence of any length)."""
    steps, features = group.kept
    return f"{steps or 'T'}×{features}"


def caption(group) -> list[str]:
    """A memory column's annotation: its name, `memory STEPS x FEATURES` as the NTM's memory is
    labelled (draw/memory.py), and whose states it keeps."""
    steps, features = group.kept
    sources = dict.fromkeys(link.source for link in group.head.inputs if link.port in WHOLE)
    return [
        group.name,
        f"memory {steps or 'T'} x {features}",
        "states of " + ", ".join(sources),
    ]


def place_columns(groups, group_of) -> bool:
    """Columns by the longest path over the links as the chart draws an AN (see above); inputs
    then move up to just before their first reader. False (nothing done) without a stepped
    attention."""
    if not any(stepped(group.head) for group in groups):
        return False

    def sources(group) -> list:
        if group.kept is not None:  # the memory: what the attention's keys and values come from
            return [group_of[link.source] for link in group.head.inputs if link.port in WHOLE]
        found = [] if group.memory is None else [group.memory]
        for link in group.head.inputs:
            source = group_of[link.source]
            if source is group or not enters(group, link):
                continue
            if stepped(group.head) and (link.port or "query") == "query" and source.head.recurrent:
                continue  # the query the decoder asks: drawn as the link back
            if link.delayed and not stepped(source.head):
                continue
            found.append(source)
        return found

    for group in groups:
        group.column = 0
    for _ in range(len(groups) + 1):  # the longest path, until it settles
        changed = False
        for group in groups:
            column = 1 + max((s.column for s in sources(group)), default=-1)
            if column != group.column:
                group.column, changed = column, True
        if not changed:
            break
    readers: dict[int, list[int]] = {}
    for group in groups:
        for source in sources(group):
            readers.setdefault(id(source), []).append(group.column)
    for group in groups:
        if group.head.kind.source and id(group) in readers:
            group.column = min(readers[id(group)]) - 1
    return True
