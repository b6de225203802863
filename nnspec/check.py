"""Check: graph -> `Program`, the checked network every later stage reads.

One topological order of the same-step (`->`) links, computed once; then every
layer's output shape and parameter shapes, by the kind's rules, in that order.
Checks: inputs receive nothing and other layers receive something, every cycle
passes a `~>` link, every layer reaches an output, time is declared where `~>`
needs it, shapes agree, and the parameters fit the budget. All passes are linear
in the size of the graph (cycles are found through strongly connected components).
"""

from __future__ import annotations

from collections import deque

import networkx as nx

from .collector import collector_paused
from .errors import Collector, Span, SpecError
from .kinds import Kind, Param, Shape, ShapeError, concat_features
from .kinds.initializers import Init
from .program import Borrowed, Layer, Link, Output, Program

DEFAULT_MAX_PARAMS = 1_000_000_000


@collector_paused()
def check(graph: nx.MultiDiGraph, max_params: int = DEFAULT_MAX_PARAMS) -> Program:
    """Check a network's graph and infer its shapes;
    raise `SpecError` with every independent mistake."""
    errors = Collector()
    _check_links(graph, errors)
    if not errors.errors:
        _link_references(graph, errors)
    order = _same_step_order(graph, errors)
    errors.raise_if_any()
    outputs = graph.graph["outputs"]
    if not outputs:
        if all(data["kind"].source for _, data in graph.nodes(data=True)):
            errors.add(
                "E305",
                f"network '{graph.graph['name']}' has only inputs",
                graph.graph["span"],
                "add a layer and link to it: 'dense y: 1' and 'x -> y'",
            )
        else:
            errors.add(
                "E305",
                f"network '{graph.graph['name']}' has no output: every layer feeds another",
                graph.graph["span"],
                "name the output: 'output NAME'",
            )
        errors.raise_if_any()
    _check_reach(graph, [name for name, _, _ in outputs], errors)
    timed = _check_time(graph, errors)
    errors.raise_if_any()
    links = {name: _links_in(graph, name) for name in order}
    shapes, params = _infer(graph, order, links, max_params, errors)
    if not errors.errors:
        for name in order:
            if name not in shapes:  # fed only through ~> by layers whose shapes wait on it
                errors.add(
                    "E307",
                    f"'{name}' receives only values from earlier steps, "
                    "so its size cannot be worked out",
                    graph.nodes[name]["span"],
                    f"give '{name}' a same-step input ('->') as well",
                )
                break
    # without time steps there is no `~>` link, and the `->` links have no cycle (ordered above)
    recurrent = _recurrent(graph) if timed else set()
    _check_sequences(graph, order, shapes, recurrent, errors)
    _check_delays(graph, shapes, errors)
    borrowed = _shared(graph, order, params, errors) if not errors.errors else {}
    program_outputs = []
    for name, reduce, span in outputs:
        if name not in shapes:
            continue
        shape = shapes[name]
        if reduce is not None and not shape.timed:
            errors.add(
                "E407",
                f"'{name}' has no time steps to keep the {reduce} of",
                span,
                f"write 'output {name}' without ': {reduce}'",
            )
            continue
        program_outputs.append(Output(name, reduce, shape.static() if reduce else shape))
    errors.raise_if_any()
    layers = tuple(
        Layer(
            name=name,
            kind=graph.nodes[name]["kind"],
            options=graph.nodes[name]["options"],
            inputs=links[name],
            shape=shapes[name],
            params=params[name],
            span=graph.nodes[name]["span"],
            recurrent=name in recurrent,
            borrowed=borrowed.get(name, {}),
        )
        for name in order
    )
    inputs = tuple(layer.name for layer in layers if layer.kind.source)
    return Program(
        graph.graph["name"],
        graph.graph["description"],
        layers,
        inputs,
        tuple(program_outputs),
        timed,
        graph,
    )


def _links_in(graph: nx.MultiDiGraph, name: str) -> tuple[Link, ...]:
    """The links into `name`, in the order they are written."""
    # through the predecessor map rather than `in_edges`, whose views cost more than the links
    edges = [
        (data["order"], source, data)
        for source, keys in graph.pred[name].items()
        for data in keys.values()
    ]
    edges.sort(key=_first)
    return tuple(Link(source, data["port"], data["delayed"]) for _, source, data in edges)


def _first(item: tuple):
    return item[0]


# ---- structure ------------------------------------------------------------------------------
def _check_links(graph: nx.MultiDiGraph, errors: Collector) -> None:
    for name, data in graph.nodes(data=True):
        kind = data["kind"]
        incoming = len(graph.pred[name])  # how many layers link to it (0 or not is what counts)
        if kind.source and incoming:
            _, _, edge = min(graph.in_edges(name, data=True), key=lambda e: e[2]["order"])
            errors.add(
                "E312",
                f"input '{name}' receives a link; inputs take their values from the data",
                edge["span"],
                "feed a hidden layer instead, or declare this layer as 'dense'",
            )
        elif kind.internal and not incoming and _open_size(data["options"]):
            errors.add(
                "E242",
                f"'{name}' (block input) leaves its size open ('?'), but nothing feeds it, "
                "so its size cannot be worked out",
                data["span"],
                f"link a layer to it: 'x -> {name}'; a block's open input takes its size from "
                "what feeds it at each use",
            )
        elif not kind.source and not incoming:
            errors.add(
                "E307",
                f"'{name}' receives no input",
                data["span"],
                f"link a layer to it: 'x -> {name}'",
            )
        for source, _, edge in graph.in_edges(name, data=True) if kind.side_ports else ():
            if edge["delayed"] and edge["port"] in kind.side_ports:
                errors.add(
                    "E263",
                    f"'{source} ~> {name}.{edge['port']}': the {edge['port']} of '{name}' is "
                    "read once, before the first step, when a `~>` link has no value yet",
                    edge["span"],
                    f"link it with '->' ('{source} -> {name}.{edge['port']}') from a layer "
                    "outside the cycle, or feed the earlier step to its input instead",
                )


def _open_size(options) -> bool:
    """Whether a block input's declared size leaves all of it, or a dimension, open (`?`)."""
    size = getattr(options, "size", 0)
    return size is None or (isinstance(size, tuple) and None in size)


def _link_references(graph: nx.MultiDiGraph, errors: Collector) -> None:
    """Layers whose kind names another layer in an option (`unpool u: of=p`): the name is found
    in the layer's own block (E252 when it names no max pool), the pool must lie upstream
    (E253), and what enters the pool is linked to the layer's `like` port, so that every
    stage after the checker sees the dependence as a link. The option then holds the full name
    and the pool's options."""
    for name, data in list(graph.nodes(data=True)):
        key = getattr(data["kind"], "refers", None)
        if key is None:
            continue
        options = data["options"]
        prefix = name.rpartition(".")[0]
        target = f"{prefix}.{getattr(options, key)}" if prefix else getattr(options, key)
        span = data["option_spans"].get(key, data["span"])
        pool = graph.nodes[target] if target in graph else None
        if pool is None or pool["kind"].name != "pool" or pool["options"].mode != "max":
            given = getattr(options, key)
            what = (
                "no layer"
                if pool is None
                else "an average pool"
                if pool["kind"].name == "pool"
                else f"a {pool['kind'].name} layer"
            )
            pools = [
                n.rpartition(".")[2]
                for n, d in graph.nodes(data=True)
                if d["kind"].name == "pool"
                and d["options"].mode == "max"
                and n.rpartition(".")[0] == prefix
            ]
            errors.add(
                "E252",
                f"'{name}' ({data['kind'].name}): {key}={given} names {what}, "
                "but an unpool undoes a max pool",
                span,
                f"name one of the max pools before it: {', '.join(pools)}"
                if pools
                else f"add a max pool before it ('pool p: max, size=2') and write '{key}=p'",
            )
            continue
        if not nx.has_path(graph, target, name):
            errors.add(
                "E253",
                f"the pool '{target}' is not upstream of '{name}': an unpool undoes a pool "
                "that its input has passed through",
                span,
                f"link '{target}' towards '{name}' ('{target} -> ... -> {name}'), "
                "or name another pool",
            )
            continue
        resolved = options.model_copy(update={key: target})
        resolved._pool = pool["options"]
        data["options"] = resolved
        order = max((d["order"] for _, _, d in graph.edges(data=True)), default=0)
        for source, _, link in sorted(graph.in_edges(target, data=True), key=_by_order):
            if not link["delayed"]:
                order += 1
                graph.add_edge(source, name, delayed=False, port="like", order=order, span=span)


def _by_order(edge) -> int:
    return edge[2]["order"]


def _same_step_order(graph: nx.MultiDiGraph, errors: Collector) -> list[str]:
    """Topological order of the `->` links; a cycle among them is E304, naming its layers."""
    same_step = nx.DiGraph()
    same_step.add_nodes_from(graph.nodes)
    same_step.add_edges_from((u, v) for u, v, delayed in graph.edges(data="delayed") if not delayed)
    if not errors.errors:
        declared = {name: i for i, name in enumerate(graph.nodes)}
        try:  # file order where links allow
            return list(nx.lexicographical_topological_sort(same_step, key=declared.__getitem__))
        except nx.NetworkXUnfeasible:  # a cycle: each one is found and named below
            pass
    last_span: dict[tuple[str, str], tuple[int, Span]] = {}  # the link written last, per pair
    for u, v, data in graph.edges(data=True):
        if not data["delayed"]:
            key = (u, v)
            if key not in last_span or data["order"] > last_span[key][0]:
                last_span[key] = (data["order"], data["span"])
    for component in nx.strongly_connected_components(same_step):
        if len(component) == 1:
            (only,) = component
            if not same_step.has_edge(only, only):
                continue
        errors.errors.append(_cycle_error(same_step, component, last_span))
    return []


def _cycle_error(graph: nx.DiGraph, component: set[str], spans) -> SpecError:
    """A cycle in one strongly connected component, reported at the link written last
    (the one that closes it)."""
    (u, v), (_, span) = max(
        (
            (key, value)
            for key, value in spans.items()
            if key[0] in component and key[1] in component
        ),
        key=lambda item: item[1][0],
    )
    path = _path_within(graph, v, u, component)
    cycle = " -> ".join(path + [v])
    return SpecError(
        "E304",
        f"cycle without a delay: {cycle}",
        span,
        "every cycle needs a '~>' link, which passes the previous step's value: "
        f"write '{u} ~> {v}'",
    )


def _path_within(graph: nx.DiGraph, start: str, goal: str, allowed: set[str]) -> list[str]:
    """Shortest path start -> goal inside `allowed` (breadth first; linear in the component)."""
    parent = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for nxt in graph.successors(node):
            if nxt in allowed and nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    path, node = [], goal
    while node is not None:
        path.append(node)
        node = parent[node]
    return path[::-1]


def _check_reach(graph: nx.MultiDiGraph, outputs: list[str], errors: Collector) -> None:
    """Every layer must reach an output (through any link)."""
    reached = set(outputs)
    queue = deque(outputs)
    while queue:
        node = queue.popleft()
        for source in graph.predecessors(node):
            if source not in reached:
                reached.add(source)
                queue.append(source)
    for name, data in graph.nodes(data=True):
        if name not in reached and outputs:
            what = "input" if data["kind"].source else "layer"
            errors.add(
                "E306",
                f"{what} '{name}' reaches no output",
                data["span"],
                f"link it towards an output, remove it, or name it an output: 'output ..., {name}'",
            )


def _check_time(graph: nx.MultiDiGraph, errors: Collector) -> bool:
    timed_inputs = [
        n for n, d in graph.nodes(data=True) if d["kind"].source and _declares_time(d["options"])
    ]
    delayed = [(u, v, d) for u, v, d in graph.edges(data=True) if d["delayed"]]
    if delayed and not timed_inputs:
        u, v, data = min(delayed, key=lambda e: e[2]["order"])
        errors.add(
            "E314",
            f"'{u} ~> {v}' passes a value between time steps, but the network has no time steps",
            data["span"],
            "declare an input as a sequence ('input x: 1, seq') or held for N steps "
            "('input x: 4, steps=10')",
        )
    return bool(timed_inputs or delayed)


def _declares_time(options) -> bool:
    return options.seq is not False or options.steps is not None


def _recurrent(graph: nx.MultiDiGraph) -> set[str]:
    """Layers on a cycle through a `~>` link (strongly connected through all links, or a
    self-loop)."""
    on_cycle = set()
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            on_cycle |= component
        else:
            (only,) = component
            if graph.has_edge(only, only):
                on_cycle.add(only)
    return on_cycle


def _check_sequences(graph, order, shapes, recurrent: set[str], errors: Collector) -> None:
    cycle_of = {
        name: i
        for i, component in enumerate(nx.strongly_connected_components(graph))
        for name in component
    }
    for name in order:
        kind = graph.nodes[name]["kind"]
        if name not in shapes:
            continue
        options = graph.nodes[name]["options"]
        if name in recurrent and getattr(options, "bidirectional", False):
            errors.add(
                "E412",
                f"{kind.name} '{name}' is bidirectional: its backward cell starts from the last "
                "step, so it cannot sit on a cycle through '~>', which runs one step at a time",
                graph.nodes[name]["span"],
                "drop bidirectional, or take it off the cycle (an encoder before it)",
            )
        elif kind.name == "attention" and name in recurrent:
            _check_stepped_attention(graph, name, options, shapes, cycle_of, errors)
        elif kind.whole_sequence and name in recurrent:
            errors.add(
                "E408",
                f"{kind.name} '{name}' sees every step at once, "
                "so it cannot sit on a cycle through '~>'",
                graph.nodes[name]["span"],
                "move it after the recurrent part, or use a recurrent kind",
            )


def _check_stepped_attention(graph, name, options, shapes, cycle_of, errors: Collector) -> None:
    """An attention on a cycle through `~>` steps with it: at every step its query (from the
    cycle) is scored against every step of its keys and values, which must be whole sequences
    from outside the cycle (an encoder's states; Bahdanau, Cho and Bengio 2015)."""
    links = sorted(graph.in_edges(name, data=True), key=lambda e: e[2]["order"])
    ports = {data["port"] or "query" for _, _, data in links}
    for source, _, data in links:
        port = data["port"] or "query"
        on_cycle = cycle_of[source] == cycle_of[name]
        if port != "query" and (
            on_cycle or not shapes.get(source, None) or not shapes[source].timed
        ):
            why = (
                f"its {port} comes from '{source}', on the same cycle"
                if on_cycle
                else f"its {port} '{source}' has no time steps"
            )
            errors.add(
                "E408",
                f"attention '{name}' sits on a cycle through '~>', so it steps with it: {why}, "
                "but the keys and values of a stepped attention must be whole sequences from "
                "outside the cycle",
                data["span"],
                "only the query may come from the cycle: feed key and value from an encoder's "
                f"states, 'enc -> {name}.key', 'enc -> {name}.value'",
            )
            return
    if "key" not in ports:
        errors.add(
            "E408",
            f"attention '{name}' sits on a cycle through '~>', and without a key it attends over "
            "its own query, which the cycle gives one step at a time",
            graph.nodes[name]["span"],
            f"give it keys and values from outside the cycle ('enc -> {name}.key', "
            f"'enc -> {name}.value'): each step's query then attends over every step of them; "
            "or move it after the recurrent part",
        )
        return
    if options.causal:
        errors.add(
            "E413",
            f"attention '{name}' steps on a cycle through '~>' and is causal: each step's query "
            "already attends over every step of its keys, which come from outside the cycle",
            graph.nodes[name]["span"],
            "drop causal",
        )


def _check_delays(graph, shapes, errors: Collector) -> None:
    """A `~>` link passes the previous step's value, so its source must change from step to step."""
    for u, v, data in sorted(graph.edges(data=True), key=lambda e: e[2]["order"]):
        if data["delayed"] and u in shapes and not shapes[u].timed:
            errors.add(
                "E407",
                f"'{u} ~> {v}' passes the previous step's value of '{u}', "
                f"but '{u}' has no time steps",
                data["span"],
                f"'{u}' is the same at every step: link it with '->', "
                "or give it a sequence as input",
            )
            return


# ---- shapes and parameters -------------------------------------------------------------------
def _infer(
    graph: nx.MultiDiGraph,
    order: list[str],
    links: dict[str, tuple[Link, ...]],
    max_params: int,
    errors: Collector,
):
    """Shapes and parameters of every layer, walking the order once; `links` are the links into
    each layer.

    A `~>` link brings the value of a layer later in the order, so a network with
    such links first walks without reporting until the shapes stop changing (two
    walks, three at most), then once more to report. Layers downstream of a failed
    layer are skipped silently, so one mistake gives one message.
    """
    known: dict[str, Shape] = {}
    delayed = any(link.delayed for ls in links.values() for link in ls)
    if delayed:
        for _ in range(4):
            shapes, _ = _walk(graph, order, links, known, max_params, Collector(), final=False)
            if shapes == known:
                break
            known = shapes
    shapes, params = _walk(graph, order, links, known, max_params, errors, final=True)
    if delayed and not errors.errors:
        _check_settled(graph, shapes, known, errors)
    return shapes, params


def _check_settled(
    graph: nx.MultiDiGraph,
    shapes: dict[str, Shape],
    delayed_shapes: dict[str, Shape],
    errors: Collector,
) -> None:
    """A size that feeds itself through `~>` and grows (concat of itself and more) never settles."""
    for u, v, data in sorted(graph.edges(data=True), key=lambda e: e[2]["order"]):
        if data["delayed"] and u in shapes and delayed_shapes.get(u) != shapes[u]:
            errors.add(
                "E411",
                f"the size of '{u}' depends on itself through '{u} ~> {v}' and grows at every step",
                data["span"],
                "give a layer on the cycle a size of its own (a dense layer fixes its width), "
                "or join with add instead of concat",
            )
            return


def _walk(graph, order, links, delayed_shapes, max_params: int, errors: Collector, final: bool):
    shapes: dict[str, Shape] = {}
    params: dict[str, dict[str, Param]] = {}
    total = 0
    for name in order:
        node = graph.nodes[name]
        kind: Kind = node["kind"]
        incoming, complete = [], True
        for link in links[name]:
            shape = (delayed_shapes if link.delayed else shapes).get(link.source)
            if shape is None:
                complete = complete and link.delayed and not final
                continue
            incoming.append((link, shape))
        if not complete:
            continue
        if not incoming and not kind.source:
            own = None if final else _shape_of_its_own(kind, node["options"], links[name])
            if own is not None:
                shapes[name], params[name] = own, {}
            continue
        try:
            incoming = _full_state(graph, name, kind, incoming)
            x = _arrange(kind, incoming)
            shape = kind.shape(node["options"], x)
            if not final:
                # an early walk wants the shapes only (an input may still be unknown); the
                # parameters (literal weights fix the full input width) wait for the last walk
                shapes[name], params[name] = shape, {}
                continue
            layer_params = kind.params(node["options"], x)
            init = getattr(node["options"], "init", None)
            if isinstance(init, Init):  # init= replaces how the layer's weights start
                layer_params = init.apply(layer_params)
            main = [s for link, s in incoming if link.port not in kind.side_ports]
            if kind.needs_time and not all(s.timed for s in main):
                raise ShapeError(
                    "E407",
                    "{layer} steps through time, but its input has no time steps",
                    "declare the input as a sequence ('input x: 1, seq') or held for N steps "
                    "('steps=N')",
                )
        except ShapeError as problem:
            span = (
                node["option_spans"].get(problem.option, node["span"])
                if problem.option
                else node["span"]
            )
            errors.add(
                problem.code,
                problem.message.replace(
                    "{layer}", f"'{name}' ({'block input' if kind.internal else kind.name})"
                ),
                span,
                problem.hint,
            )
            continue
        if shape.size > max_params:
            errors.add(
                "E406",
                f"'{name}' gives {shape.size:,} values per example, "
                f"above the limit of {max_params:,}",
                node["span"],
                "this is surely a mistake in a size; the limit is set by --max-params",
            )
            continue
        total += _own_count(node.get("shares"), layer_params)
        if total > max_params:
            errors.add(
                "E406",
                f"the network has more than {max_params:,} parameters by '{name}' "
                f"({total:,} so far)",
                node["span"],
                "check the sizes; to allow more, raise the limit with --max-params "
                "(max_params= in Python)",
            )
            break
        shapes[name] = shape
        params[name] = layer_params
    return shapes, params


# ---- shared weights (shares=, tied=) ----------------------------------------------------------
def _own_count(tie, params: dict[str, Param]) -> int:
    """The parameters a layer adds to the budget: none of those it uses from another layer."""
    if tie is not None and not tie.tied:
        return 0
    return sum(p.count for k, p in params.items() if not p.buffer and not (tie and k == "weight"))


def _shared(graph: nx.MultiDiGraph, order: list[str], params, errors: Collector) -> dict:
    """Every layer's borrowed parameters, `{layer: {key: Borrowed}}`, each at the layer that
    holds it (a chain through a shared block, or a tied layer shared, followed to its end).

    A sharer must compute with the same parameter shapes as its owner (E232), hold some
    (E235) and not start them itself (E236); a tied layer's weight is the owner's
    transposed for a dense owner and as it is for an embedding (`x @ E.T`, weight tying)."""
    direct: dict[str, dict[str, Borrowed]] = {}
    blocks: dict[Span, bool] = {}  # a shared block instance: whether some layer of it has params
    for name in order:
        tie = graph.nodes[name].get("shares")
        if tie is None or name not in params or tie.owner not in params:
            continue
        mine, theirs = params[name], params[tie.owner]
        node, owner = graph.nodes[name], graph.nodes[tie.owner]
        if tie.block is not None:
            blocks[tie.span] = blocks.get(tie.span, False) or bool(mine)
            if not mine:
                continue
        options = node["options"]
        started = [k for k in ("init", "weights") if getattr(options, k, None) is not None]
        started += ["frozen"] * (getattr(options, "frozen", False) is True)
        if started:
            what = "frozen" if started[0] == "frozen" else f"{started[0]}="
            errors.add(
                "E236",
                f"'{name}' uses the weights of '{tie.owner}', so {what} has nothing "
                "to " + ("keep fixed" if what == "frozen" else "start"),
                node["option_spans"].get(started[0], node["span"]),
                f"drop {what} here; give it to '{tie.owner}', which holds them",
            )
            continue
        if tie.tied:
            transposed = owner["kind"].name == "dense"
            want = theirs["weight"].shape[::-1] if transposed else theirs["weight"].shape
            if mine["weight"].shape != want:
                how = "transposed " if transposed else ""
                errors.add(
                    "E232",
                    f"'{name}' needs a weight of {list(mine['weight'].shape)} ([units, inputs]), "
                    f"but the {how}weight of '{tie.owner}' is {list(want)}",
                    tie.span,
                    f"a tied layer maps back: give '{name}' {want[0]} units and feed it "
                    f"{want[1]} values",
                )
                continue
            direct[name] = {"weight": Borrowed(tie.owner, "weight", transposed)}
            continue
        if not mine:
            errors.add(
                "E235",
                f"'{name}' ({node['kind'].name}) has no parameters to share",
                tie.span,
                "shares= belongs on a layer with weights (dense, conv, lstm, ...) or a block "
                "instance; drop it",
            )
            continue
        shapes = {k: list(p.shape) for k, p in mine.items()}
        owned = {k: list(p.shape) for k, p in theirs.items()}
        if shapes != owned:
            errors.add(
                "E232",
                f"'{name}' computes with {_shapes(shapes)} but '{tie.owner}' holds "
                f"{_shapes(owned)}: shared parameters must have the same shapes",
                tie.span,
                f"give '{name}' the sizes of '{tie.owner}' (units, kernel, bias) and an input "
                "of the same width",
            )
            continue
        direct[name] = {k: Borrowed(tie.owner, k) for k in mine}
    for span, has_params in blocks.items():
        if not has_params:
            errors.add(
                "E235",
                "the block shared here has no layer with parameters",
                span,
                "drop shares=: there is nothing to share",
            )
    return {
        name: {key: _owner_of(direct, b) for key, b in keys.items()}
        for name, keys in direct.items()
    }


def _owner_of(direct: dict, borrowed: Borrowed) -> Borrowed:
    """The layer that holds a borrowed parameter: the chain followed while the owner borrows it
    in turn (a block shared whose layers share inside it), transposes composed."""
    seen = set()
    while borrowed.key in direct.get(borrowed.owner, {}) and borrowed.owner not in seen:
        seen.add(borrowed.owner)
        further = direct[borrowed.owner][borrowed.key]
        borrowed = Borrowed(further.owner, further.key, further.transposed != borrowed.transposed)
    return borrowed


def _shapes(shapes: dict[str, list[int]]) -> str:
    return ", ".join(f"{key} {shape}" for key, shape in shapes.items()) or "no parameters"


def _shape_of_its_own(kind: Kind, options, links: tuple[Link, ...]) -> Shape | None:
    """The shape of a layer fed only through `~>`, before its inputs' shapes are known: a
    first guess, where its options alone fix it (a dense layer's units), for the walks to refine.

    Two stand-in inputs of different widths tell whether the width matters; where it does (an
    activation, a merge), None: the layer waits, and stays unsized (E307) if nothing else sizes
    the cycle. The stand-in has time steps, as every `~>` source must.
    """
    guesses = []
    for width in (1, 2):
        stand_in = Shape((width,), timed=True)
        try:
            x = _arrange(kind, [(link, stand_in) for link in links])
            guesses.append(kind.shape(options, x))
        except ShapeError:
            return None
    return guesses[0] if guesses[0] == guesses[1] else None


def _full_state(graph, name: str, kind: Kind, incoming: list[tuple[Link, Shape]]):
    """`enc -> dec.state` straight from a recurrent layer: the encoder's final state (h, and c
    for an lstm, of every stacked layer) starts the decoder, so both must be the same kind with
    the same units and layers (E263), and the encoder must run over its whole sequence before
    the decoder starts (not on a `~>` cycle). Such a link reaches the shape rules as the one
    vector [units] it amounts to per layer."""
    if not (kind.stateful and "state" in kind.side_ports):
        return incoming
    found = []
    for link, shape in incoming:
        source = graph.nodes[link.source]
        theirs = source["kind"]
        if link.port == "state" and theirs.stateful and "state" in theirs.side_ports:
            mine, o = graph.nodes[name]["options"], source["options"]
            want = (kind.name, mine.units, mine.layers)
            have = (theirs.name, o.units, o.layers)
            if mine.bidirectional or o.bidirectional:
                which = link.source if o.bidirectional else name
                raise ShapeError(
                    "E414",
                    f"{{layer}} starts from the final state of '{link.source}', but '{which}' "
                    "is bidirectional: its final states are two per layer, forward and backward",
                    f"pass one vector instead: '{link.source} -> l -> {name}.state' with "
                    "'last l' (and a dense layer to the units), or drop bidirectional",
                )
            if want != have:
                raise ShapeError(
                    "E263",
                    f"{{layer}} starts from the final state of '{link.source}' "
                    f"({_cells(*have)}), so it must be the same: it is {_cells(*want)}",
                    f"make '{name}' {_cells(*have)} as '{link.source}' is (or the other way "
                    f"round), or pass one vector: '{link.source} -> l -> {name}.state' with "
                    "'last l'",
                )
            if link.source in _recurrent(graph):
                raise ShapeError(
                    "E263",
                    f"{{layer}} starts from the final state of '{link.source}', which steps "
                    "on a cycle through `~>`, so it has no final state before the decoder runs",
                    f"take '{link.source}' off the cycle, or pass its last output: "
                    f"'{link.source} -> l -> {name}.state' with 'last l'",
                )
            shape = shape.static()
        found.append((link, shape))
    return found


def _cells(kind: str, units: int, layers: int) -> str:
    return f"{kind} of {units} units" + (f" in {layers} layers" if layers > 1 else "")


def _arrange(kind: Kind, incoming: list[tuple[Link, Shape]]):
    """What a kind's rules receive: one joined shape, a dict by port, or a list for merges."""
    if kind.source:
        return None
    if kind.merges:
        return [(link.source, shape) for link, shape in incoming]
    if kind.ports:
        by_port: dict[str, list[Shape]] = {}
        for link, shape in incoming:
            by_port.setdefault(link.port, []).append(shape)
        return {port: concat_features(shapes) for port, shapes in by_port.items()}
    return concat_features([shape for _, shape in incoming])


def verify(program: Program) -> None:
    """Invariants between the checker and later stages (run by the tests)."""
    position = {layer.name: i for i, layer in enumerate(program.layers)}
    assert len(position) == len(program.layers) == program.graph.number_of_nodes()
    for layer in program.layers:
        assert layer.shape.size >= 1, layer.name
        for link in layer.inputs:
            assert link.source in position, (layer.name, link.source)
            if not link.delayed:
                assert position[link.source] < position[layer.name], (
                    f"{link.source} comes after {layer.name}"
                )
        if layer.kind.source:
            assert not layer.inputs and layer.name in program.inputs
        if layer.kind.needs_time:
            assert layer.shape.timed, layer.name
    for output in program.outputs:
        assert output.name in position
    assert program.trainable_count <= program.param_count
    owned = program.parameters()
    for layer in program.layers:  # a borrowed parameter is held by a layer that owns it
        for key, borrowed in layer.borrowed.items():
            assert borrowed.name in owned and key in layer.params, (layer.name, key)
