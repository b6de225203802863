"""The chart's attention network (AN): a recurrent encoder, an attention cell and a recurrent
decoder, left to right.

An attention stepping on a `~>` cycle (a decoder's `dec -> a.query`, `a ~> dec`) reads the
decoder's state and feeds the decoder's next step. Laid out by the same-step links alone, the
decoder would stand beside the encoder and the attention after both; the chart draws the flow
the other way round: encoder, attention, decoder, output. `place_columns` gives the columns so,
taking the attention's context (`a ~> dec`) as the link into the decoder and its query from the
cycle as the link back; it does nothing for a network without such an attention.
"""

from __future__ import annotations


def stepped(layer) -> bool:
    """An attention on a `~>` cycle, which steps with it (check.py)."""
    return layer.kind.name == "attention" and layer.recurrent


def place_columns(groups, group_of) -> bool:
    """Columns by the longest path over the links as the chart draws an AN (see above); inputs
    then move up to just before their first reader. False (nothing done) without a stepped
    attention."""
    if not any(stepped(layer) for group in groups for layer in group.layers):
        return False

    def sources(group) -> list:
        found = []
        for link in group.head.inputs:
            source = group_of[link.source]
            if source is group:
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
