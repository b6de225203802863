"""Resolve: syntax trees -> a graph per network (networkx.MultiDiGraph).

Reads the `use`d files (relative to the file that uses them, cycles reported),
evaluates constants and arithmetic (`let d = 32`, `dense h: 4 * d`: nnspec.constants),
places blocks (parameters substituted, `repeat` chained, inner names dotted),
resolves every name and port of every link, and validates each layer's options
against its kind's schema. Nodes are layers (`kind`, `options`, `span`); edges
are links (`delayed`, `port`, `order`, `span`). Independent mistakes are gathered
and raised together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import networkx as nx
from pydantic import ValidationError

from . import syntax as s
from .collector import collector_paused
from .constants import UNKNOWN, Computed, Scope, evaluate, evaluate_arg
from .errors import Collector, Source, Span, SpecError, did_you_mean
from .kinds import INSTEAD, REGISTRY, SPEC_KINDS, Kind
from .kinds.activation import ACTIVATIONS
from .kinds.base import Hint
from .parse import KEYWORDS, decode, parse
from .reading import SPEC_LIMIT, ReadError, read_regular

MAX_BLOCK_DEPTH = 32
MAX_LAYERS = 50_000  # blocks and repeats multiply; past this a spec is surely a mistake
REDUCES = ("last", "mean")
OPEN_ELSEWHERE = "'?' leaves a size open, which only the size of a block's 'input' can do"


# ---- files ----------------------------------------------------------------------------
@dataclass
class Library:
    """Every file reached from one spec through `use`, and the blocks and networks they define."""

    root: s.SpecFile
    files: dict[str, s.SpecFile] = field(default_factory=dict)
    blocks: dict[str, s.Block] = field(default_factory=dict)
    networks: dict[str, s.Network] = field(default_factory=dict)
    scopes: dict[str, Scope] = field(default_factory=dict)  # each file's constants, by path


def read_source(path: str | os.PathLike, at: Span | None = None) -> Source:
    """The text of a spec file; a missing, unreadable or special file (a FIFO, a device), or one
    over `SPEC_LIMIT`, is E308 at `at` (the `use` that names it), refused before it is read."""
    shown = str(path)
    try:
        data = read_regular(path, "spec file", SPEC_LIMIT, "E308")
    except ReadError as error:
        if error.reason == "missing" and at is None:  # the file named on the command line
            raise SpecError(
                "E308",
                f"spec file '{shown}' is not found",
                None,
                "the path is relative to the current folder: nnspec looked for "
                f"{os.path.abspath(shown)}",
            ) from None
        if error.reason == "missing":
            raise SpecError(
                "E308",
                f"no such file: {shown}",
                at,
                "paths in 'use' are relative to the file that says it",
            ) from None
        if error.reason == "folder":
            raise SpecError(
                "E308",
                f"{shown} is a folder, not a spec file",
                at,
                "name a .nn file (nnspec zoo FOLDER draws every spec in a folder)",
            ) from None
        raise SpecError("E308", error.message, at, error.hint) from None
    return decode(data, shown)


@collector_paused()
def load_library(source: Source) -> Library:
    """Parse `source` and every file it uses, directly or not; gather its blocks and networks."""
    root = parse(source)
    library = Library(root)
    errors = Collector()
    base = Path(source.path).parent if source.path != "<string>" else Path.cwd()
    library.files[_key(source.path)] = root
    _load_uses(root, base, [_key(source.path)], library, errors)
    for spec in library.files.values():
        _define(spec, library, errors)
    for key, spec in list(library.files.items()):
        spec = _constants(spec, library, errors)
        library.files[key] = spec
        if key == _key(source.path):
            library.root = spec
    errors.raise_if_any()
    return library


def _constants(spec: s.SpecFile, library: Library, errors: Collector) -> s.SpecFile:
    """Check the file's constants and evaluate its train sections' values with them (what a
    train section says is plain values from here on)."""
    scope = library.scopes[spec.path] = Scope(spec.lets)
    for error in scope.check():
        _report(errors, error)
    if not spec.trains:
        return spec
    trains = []
    for train in spec.trains:
        settings, expects = [], []
        for setting in train.settings:
            value = _evaluated(setting.value, scope, errors)
            settings.append(replace(setting, value=value))
        for expect in train.expects:
            value = _evaluated(expect.value, scope, errors)
            expects.append(replace(expect, value=value))
        trains.append(replace(train, settings=tuple(settings), expects=tuple(expects)))
    return replace(spec, trains=tuple(trains))


def _evaluated(value: s.Value, scope: Scope, errors: Collector) -> s.Value:
    try:
        value = evaluate(value, scope)
    except SpecError as error:
        _report(errors, error)
        return value
    for open_ in _opens(value):  # a train section's values are all known
        errors.add("E241", OPEN_ELSEWHERE, open_.span, "write a value here")
    return value


def _report(errors: Collector, error: SpecError) -> None:
    """Collect every error of `error`; one already collected (a constant's, at each use) is not
    collected again."""
    for each in error.errors:
        errors.add(each.code, each.message, each.span, each.hint)


def _key(path: str) -> str:
    return path if path == "<string>" else os.path.realpath(path)


def _load_uses(
    spec: s.SpecFile, base: Path, chain: list[str], library: Library, errors: Collector
) -> None:
    for use in spec.uses:
        path = base / use.path.value
        key = _key(str(path))
        if key in chain:
            names = " -> ".join(Path(p).name for p in chain[chain.index(key) :] + [key])
            errors.add(
                "E309",
                f"files use each other in a cycle: {names}",
                use.path.span,
                "move what both need into a third file that both use",
            )
            continue
        if key in library.files:
            continue
        try:
            used = parse(read_source(path, use.path.span))
        except SpecError as error:
            errors.extend(error)
            continue
        library.files[key] = used
        _load_uses(used, path.parent, chain + [key], library, errors)


def _define(spec: s.SpecFile, library: Library, errors: Collector) -> None:
    for definitions, table in ((spec.blocks, library.blocks), (spec.networks, library.networks)):
        for item in definitions:
            name = item.name.text
            # a network may share a kind's name; the kind wins
            if name in SPEC_KINDS and definitions is spec.blocks:
                errors.add(
                    "E310",
                    f"'{name}' is a layer kind and cannot name a block",
                    item.name.span,
                    "choose another name",
                )
            elif name in library.blocks or name in library.networks:
                first = library.blocks.get(name) or library.networks[name]
                errors.add(
                    "E310",
                    f"'{name}' is defined twice (first at {first.name.span})",
                    item.name.span,
                    "rename one of them",
                )
            else:
                table[name] = item
            if name in KEYWORDS:
                errors.add(
                    "E108",
                    f"'{name}' is a keyword and cannot be used as a name",
                    item.name.span,
                    "choose another name",
                )


# ---- graphs ---------------------------------------------------------------------------------
@collector_paused()
def build_graph(library: Library, network: s.Network) -> nx.MultiDiGraph:
    """Place every layer of `network` (blocks expanded) and every link;
    raise `SpecError` on mistakes."""
    builder = _GraphBuilder(library)
    graph = builder.graph
    graph.graph.update(
        name=network.name.text,
        span=network.name.span,
        description=network.description.value if network.description else None,
    )
    scope = builder.scope(network, params={})
    placed = builder.body(
        network.body, prefix="", scope=scope, stack=[network.name.text], in_block=False
    )
    graph.graph["outputs"] = builder.outputs(network.body, placed, network.name, in_block=False)
    builder.errors.raise_if_any()
    return graph


def check_blocks(library: Library) -> None:
    """Check every block of the file that no network of it uses, on its own; raise `SpecError`
    with every mistake found.

    Without the values a use would give its parameters, what depends on them waits (sizes and
    shapes, an option written as a parameter); kinds, the other options, links, ports and
    outputs are checked all the same. A block used by a network is checked where it is placed.
    """
    used = _blocks_used(library)
    errors: dict[tuple, SpecError] = {}  # a block placed inside another reports once
    for block in library.root.blocks:
        name = block.name.text
        if name in used or library.blocks.get(name) is not block:
            continue
        builder = _GraphBuilder(library)
        params = {p.text: s.Symbol(span=p.span, name=UNKNOWN + p.text) for p in block.params}
        scope = builder.scope(block, params)
        placed = builder.body(block.body, f"{name}.", scope, stack=[name], in_block=True)
        if not any(p is None for p in placed.values()):
            builder.outputs(block.body, placed, block.name, in_block=True)
        for error in builder.errors.errors:
            errors.setdefault((error.code, error.span, error.message), error)
    if errors:
        raise SpecError.group(list(errors.values()))


def _blocks_used(library: Library) -> set[str]:
    """The blocks (and networks used as blocks) that the file's networks place, at any depth."""
    used: set[str] = set()
    todo = [network.body for network in library.root.networks]
    while todo:
        for statement in todo.pop():
            if not isinstance(statement, s.Layer):
                continue
            name = statement.kind.text
            definition = library.blocks.get(name) or library.networks.get(name)
            if definition is not None and name not in used:
                used.add(name)
                todo.append(definition.body)
    return used


def _unknown(value) -> bool:
    """Whether a plain value holds a block parameter whose value is not known (`check_blocks`)."""
    if isinstance(value, str):
        return value.startswith(UNKNOWN)
    if isinstance(value, tuple):
        return any(_unknown(item) for item in value)
    if isinstance(value, dict):
        return any(_unknown(item) for item in value.values())
    return False


TIES = ("shares", "tied")  # the options that name the layer whose parameters a layer uses


@dataclass(frozen=True, slots=True)
class Tie:
    """On a node (attribute `shares`): the node whose parameters it uses, all of them
    (`tied` False) or, for a dense layer, the owner's weight transposed (`tied` True); where
    `shares=`/`tied=` is written; the block instance it was written on (None: on the layer)."""

    owner: str
    tied: bool
    span: Span
    block: str | None


@dataclass
class _Instance:
    """A layer statement once placed: its kind or block, its copies (repeat=), its nodes, and
    its shares=/tied= arguments."""

    kind: str
    copies: list[str]
    nodes: list[str]
    ties: list[s.Arg]


@dataclass
class _Placed:
    """What a name in a body stands for once placed: where links enter it and where they leave."""

    entries: dict[str, str]  # port or block-input name -> node
    exit: str | None
    kind: Kind | None  # a plain layer's kind (None for a block)
    span: Span
    is_input: bool = False


class _GraphBuilder:
    def __init__(self, library: Library) -> None:
        self.library = library
        self.graph = nx.MultiDiGraph()
        self.errors = Collector()
        self.order = 0
        self.reported: set[Span] = set()  # an unknown name in a chain is reported once
        self.broken_links = False  # a link failed: which layers feed nothing is not known
        self.lets: dict[int, list[s.Let]] = {}  # the constants of each body, by id of its node
        self.nodes: list[str] = []  # every node in the order placed (a layer's are a run of it)
        self.bodies: list[dict[str, _Instance]] = []  # the layers of each body being placed
        self.copies = 1  # how many times the body being placed is placed: the enclosing repeats

    def scope(self, definition: s.Block | s.Network, params: dict[str, s.Value]) -> Scope:
        """The names a network's or block's body sees: `params`, its own constants, then its
        file's; mistakes in its own constants are collected (once, however often it is placed)."""
        lets = self.lets.get(id(definition))
        if lets is None:  # a block placed 10,000 times is read once
            lets = self.lets[id(definition)] = [
                st for st in definition.body if isinstance(st, s.Let)
            ]
        parent = self.library.scopes.get(definition.span.path)
        if not lets and not params and parent is not None:
            return parent
        scope = Scope(lets, parent, params, owner=definition.name.text)
        if lets:
            for error in scope.check():
                _report(self.errors, error)
        return scope

    # bodies
    def body(
        self, statements, prefix: str, scope: Scope, stack: list[str], in_block: bool
    ) -> dict[str, _Placed]:
        placed: dict[str, _Placed] = {}
        self.bodies.append({})
        for statement in statements:
            if isinstance(statement, s.Layer):
                self.layer(statement, prefix, scope, stack, in_block, placed)
        self.share(self.bodies.pop(), placed)
        for statement in statements:
            if isinstance(statement, s.Connection):
                for link in statement.links:
                    self.link(link, placed)
        return placed

    def layer(
        self, layer: s.Layer, prefix: str, scope, stack, in_block: bool, placed: dict[str, _Placed]
    ) -> None:
        name = layer.name.text
        if name in KEYWORDS:
            self.errors.add(
                "E108",
                f"'{name}' is a keyword and cannot be used as a name",
                layer.name.span,
                "choose another name",
            )
            placed.setdefault(name, None)
            return
        if name in placed:
            first = placed[name].span if placed[name] else layer.name.span
            self.errors.add(
                "E301",
                f"layer '{name}' is declared twice (first at {first})",
                layer.name.span,
                "give each layer a name of its own",
            )
            return
        placed[name] = None  # until it is placed: links to a broken layer are skipped quietly
        start = len(self.nodes)
        ties, rest = self.ties(layer)  # shares= and tied= name a layer, not a value
        try:
            args = tuple(evaluate_arg(arg, scope) for arg in rest)
        except SpecError as error:
            _report(self.errors, error)
            return
        if not self.open_sizes(layer, args, stack, in_block):
            return
        args, repeat = self.repeat(args, layer)
        if repeat is None:
            return
        kind_name = layer.kind.text
        if repeat > 1 and kind_name == "input":
            self.errors.add(
                "E209",
                "an input cannot be repeated",
                layer.name.span,
                "declare each input on its own line",
            )
            return
        copies = (
            [f"{prefix}{name}"]
            if repeat == 1
            else [f"{prefix}{name}.{i}" for i in range(1, repeat + 1)]
        )
        if kind_name in REGISTRY and not REGISTRY[kind_name].internal:
            parts = [
                self.plain_layer(REGISTRY[kind_name], node, layer, args, in_block)
                for node in copies
            ]
        elif kind_name in self.library.blocks or kind_name in self.library.networks:
            parts = self.blocks(kind_name, copies, layer, args, stack)
        else:
            known = SPEC_KINDS | set(self.library.blocks) | set(self.library.networks)
            self.errors.add(
                "E201",
                f"unknown layer kind '{kind_name}'",
                layer.kind.span,
                INSTEAD.get(kind_name.lower()) or did_you_mean(kind_name, known, "kinds"),
            )
            return
        if any(part is None for part in parts):
            return
        for before, after in zip(parts, parts[1:], strict=False):  # repeat chains the copies
            entry = self.single_entry(after, layer.name.span, layer.name.text)
            if before.exit and entry:
                # attention chains into its query
                port = after.kind.default_port if after.kind else None
                self.add_edge(before.exit, entry, delayed=False, port=port, span=layer.name.span)
        first, last = parts[0], parts[-1]
        placed[name] = _Placed(
            first.entries, last.exit, first.kind, layer.name.span, first.is_input
        )
        self.bodies[-1][name] = _Instance(kind_name, copies, self.nodes[start:], ties)

    def open_sizes(self, layer: s.Layer, args: tuple[s.Arg, ...], stack, in_block: bool) -> bool:
        """Whether every `?` among a layer's values stands where a size may be left open: the
        size of a block's `input` (E241 elsewhere, E240 in a network's input), or a value passed
        on to a block's parameter (judged where the block's body puts it)."""
        kind = layer.kind.text
        if kind not in REGISTRY and (kind in self.library.blocks or kind in self.library.networks):
            return True
        ok, position = True, 0
        for arg in args:
            size = kind == "input" and (arg.key.text == "size" if arg.key else position == 0)
            position += arg.key is None and not _flag(arg)
            for open_ in _opens(arg.value):
                if size and in_block:
                    continue
                ok = False
                if size:
                    self.errors.add(
                        "E240",
                        f"input '{layer.name.text}' of network '{stack[-1]}' leaves its size "
                        "open ('?'); a network's inputs take their sizes from the data",
                        open_.span,
                        f"write the size of one example: 'input {layer.name.text}: [1, 8, 8]'; "
                        "'?' belongs in a block's input, whose size comes from where the block "
                        "is used",
                    )
                else:
                    self.errors.add(
                        "E241",
                        OPEN_ELSEWHERE,
                        open_.span,
                        "write a value here; a block's 'input x: [c, ?, ?]' leaves sizes to the "
                        "layers that feed the block",
                    )
        return ok

    # shared weights
    def ties(self, layer: s.Layer) -> tuple[list[s.Arg], tuple[s.Arg, ...]]:
        """Take `shares=NAME` and `tied=NAME` out of a layer's arguments: (those, the rest)."""
        ties, rest = [], []
        for arg in layer.args:
            if arg.key is not None and arg.key.text in TIES:
                ties.append(arg)
            else:
                rest.append(arg)
        return ties, tuple(rest)

    def share(self, instances: dict[str, _Instance], placed: dict[str, _Placed]) -> None:
        """Mark every layer of a body placed with `shares=`/`tied=` with the layer whose
        parameters it uses (node attribute `shares`: a `Tie`); the checker compares their
        parameters. A block instance shares each inner layer with its counterpart; a layer of
        it that shares inside the block is marked again, so that chains end at the owner."""
        for name, instance in instances.items():
            if not instance.ties:
                continue
            tie = self.tie_request(name, instance, instances, placed)
            if tie is None:
                continue
            arg, owner = tie
            tied = arg.key.text == "tied"
            copies = owner.copies * len(instance.copies) if len(owner.copies) == 1 else owner.copies
            block = instance.kind not in REGISTRY
            for mine, theirs in zip(instance.copies, copies, strict=True):
                if not block:
                    self.graph.nodes[mine]["shares"] = Tie(theirs, tied, arg.value.span, None)
                    continue
                for node in instance.nodes:
                    if not node.startswith(mine + "."):
                        continue
                    counterpart = theirs + node[len(mine) :]
                    if counterpart not in self.graph:  # arguments that place other layers
                        self.errors.add(
                            "E231",
                            f"'{node}' has no counterpart '{counterpart}' to share with",
                            arg.value.span,
                            f"give '{name}' the arguments of '{arg.value.name}', so that both "
                            "place the same layers",
                        )
                        return
                    self.graph.nodes[node]["shares"] = Tie(counterpart, False, arg.value.span, name)

    def tie_request(self, name: str, instance, instances, placed) -> tuple | None:
        """(the `shares=`/`tied=` argument, the owner's `_Instance`) of a layer, or None after
        reporting why it cannot be (E208, E230, E231, E233, E234, E236)."""
        first, *others = instance.ties
        if others:
            twice = others[0].key.text == first.key.text
            self.errors.add(
                "E208" if twice else "E236",
                f"option '{first.key.text}' is given twice"
                if twice
                else f"'{name}' has both shares= and tied=",
                others[0].span,
                "keep one of them"
                if twice
                else "shares= uses all of a layer's parameters, tied= a dense layer's weight "
                "transposed: keep one",
            )
            return None
        key = first.key.text
        value = first.value
        if not isinstance(value, s.Symbol) or value.name in ("true", "false"):
            self.errors.add(
                "E230",
                f"{key}= names a layer, got {s.show(value)}",
                value.span,
                f"write {key}=NAME, NAME a layer of the same network or block",
            )
            return None
        owner_name = value.name
        if owner_name == name:
            self.errors.add(
                "E233",
                f"'{name}' cannot use its own parameters ({key}={name})",
                value.span,
                f"name another layer, or drop {key}=",
            )
            return None
        owner = instances.get(owner_name)
        if owner is None:
            if owner_name not in placed:  # a layer that failed has its own error
                self.errors.add(
                    "E230",
                    f"{key}={owner_name}: there is no layer '{owner_name}' here",
                    value.span,
                    did_you_mean(owner_name, placed, "layers")
                    or f"{key}= names a layer or block instance of the same network or block",
                )
            return None
        if owner.ties:
            root = owner.ties[0].value
            via = f"'{owner_name}' itself uses the parameters of '{s.show(root)}'"
            hint = (
                f"write {key}={s.show(root)}"
                if isinstance(root, s.Symbol) and root.name != name
                else "let one layer hold the parameters, and every other name it"
            )
            self.errors.add("E234", f"{key}={owner_name} makes a chain: {via}", value.span, hint)
            return None
        if key == "tied" and (instance.kind != "dense" or owner.kind not in ("dense", "embedding")):
            wrong = name if instance.kind != "dense" else owner_name
            what = instance.kind if instance.kind != "dense" else owner.kind
            self.errors.add(
                "E231",
                f"tied={owner_name} ties a dense layer to a dense or embedding layer's weight, "
                f"but '{wrong}' is {_a(what)}",
                value.span,
                "to use all of another layer's parameters as they are, write shares=NAME",
            )
            return None
        if key == "shares" and owner.kind != instance.kind:
            self.errors.add(
                "E231",
                f"'{name}' is {_a(instance.kind)} and '{owner_name}' {_a(owner.kind)}: "
                "shares= needs a layer of the same kind",
                value.span,
                f"declare '{name}' as {owner.kind}, or share with another {instance.kind}",
            )
            return None
        if len(owner.copies) not in (1, len(instance.copies)):
            self.errors.add(
                "E231",
                f"'{name}' is placed {len(instance.copies)} times and '{owner_name}' "
                f"{len(owner.copies)} times (repeat=): the copies do not pair up",
                value.span,
                "give both the same repeat=, or share with a layer placed once",
            )
            return None
        return first, owner

    def repeat(
        self, args: tuple[s.Arg, ...], layer: s.Layer
    ) -> tuple[tuple[s.Arg, ...], int | None]:
        """Take `repeat=N` out of the arguments (any kind may be repeated)."""
        rest, repeat = [], 1
        for arg in args:
            if arg.key is not None and arg.key.text == "repeat":
                value = s.plain(arg.value)
                if _unknown(value):  # a block checked on its own: one copy stands for them
                    continue
                if (
                    not isinstance(value, int)
                    or isinstance(value, bool)
                    or not 1 <= value <= 10_000
                ):
                    self.errors.add(
                        "E207",
                        f"repeat must be a whole number from 1 to 10000, got {s.show(arg.value)}",
                        arg.value.span,
                        "repeat=3 places three chained copies",
                    )
                    return args, None
                repeat = value
            else:
                rest.append(arg)
        return tuple(rest), repeat

    def plain_layer(
        self, kind: Kind, node: str, layer: s.Layer, args, in_block: bool
    ) -> _Placed | None:
        if kind.source and in_block:
            kind = REGISTRY["port"]
        if self.graph.number_of_nodes() >= MAX_LAYERS:
            raise _too_many(layer)
        options, spans = self.options(kind, layer, args, node)
        if options is None:
            return None
        self.nodes.append(node)
        self.graph.add_node(
            node,
            kind=kind,
            options=options,
            span=layer.name.span,
            kind_span=layer.kind.span,
            option_spans=spans,
        )
        return _Placed(
            {"": node}, node, kind, layer.name.span, is_input=kind.source or kind.internal
        )

    def blocks(
        self, name: str, copies: list[str], layer: s.Layer, args, stack: list[str]
    ) -> list[_Placed | None]:
        """Each copy of a block use. Every copy of this use, and of the uses around it, places
        as many layers as the first: when they would pass MAX_LAYERS, E406 comes at once, not
        after minutes of placing (nested repeats multiply)."""
        outer, parts = self.copies, []
        self.copies = outer * len(copies)
        try:
            for i, node in enumerate(copies):
                before = self.graph.number_of_nodes()
                parts.append(self.block(name, node + ".", layer, args, stack))
                placed = self.graph.number_of_nodes() - before
                if i == 0 and placed * len(copies) * outer > MAX_LAYERS:
                    raise _too_many(layer)
        finally:
            self.copies = outer
        return parts

    def block(
        self, name: str, prefix: str, layer: s.Layer, args, stack: list[str]
    ) -> _Placed | None:
        block = self.library.blocks.get(name)
        definition = block or self.library.networks[name]
        if name in stack:
            chain = " -> ".join(stack[stack.index(name) :] + [name])
            self.errors.add(
                "E311",
                f"block '{name}' uses itself: {chain}",
                layer.kind.span,
                "a block cannot contain itself; unroll it with repeat=N",
            )
            return None
        if len(stack) > MAX_BLOCK_DEPTH:
            self.errors.add(
                "E311", f"blocks nested more than {MAX_BLOCK_DEPTH} deep", layer.kind.span
            )
            return None
        params = self.block_params(block, name, layer, args)
        if params is None:
            return None
        scope = self.scope(definition, params)
        placed = self.body(definition.body, prefix, scope, stack + [name], in_block=True)
        if any(p is None for p in placed.values()):
            return None
        inputs = {n: p.entries[""] for n, p in placed.items() if p.is_input}
        outputs = self.outputs(definition.body, placed, definition.name, in_block=True)
        exit = outputs[0][0] if outputs else None
        return _Placed(inputs, exit, None, layer.name.span)

    def block_params(
        self, block: s.Block | None, name: str, layer: s.Layer, args
    ) -> dict[str, s.Value] | None:
        names = [p.text for p in block.params] if block else []
        values: dict[str, s.Value] = {}
        ok = True
        for i, arg in enumerate(args):
            key = arg.key.text if arg.key else (names[i] if i < len(names) else None)
            if key is None:
                self.errors.add(
                    "E206",
                    f"'{name}' takes {len(names)} value{'s' * (len(names) != 1)} "
                    f"({', '.join(names) or 'none'}), got more",
                    arg.span,
                    "drop the extra values",
                )
                ok = False
            elif key not in names:
                self.errors.add(
                    "E202",
                    f"block '{name}' has no parameter '{key}'",
                    arg.key.span,
                    did_you_mean(key, names + ["repeat", "shares"], "parameters"),
                )
                ok = False
            elif key in values:
                self.errors.add("E208", f"parameter '{key}' is given twice", arg.span)
                ok = False
            else:
                values[key] = arg.value
        missing = [n for n in names if n not in values]
        if missing and ok:
            self.errors.add(
                "E205",
                f"block '{name}' needs {', '.join(missing)}",
                layer.name.span,
                f"write '{name} {layer.name.text}: {', '.join(missing)}' with values",
            )
            ok = False
        return values if ok else None

    def single_entry(self, placed: _Placed, span: Span, name: str) -> str | None:
        if "" in placed.entries:
            return placed.entries[""]
        if len(placed.entries) == 1:
            return next(iter(placed.entries.values()))
        ports = ", ".join(placed.entries) or "none"
        self.errors.add(
            "E313",
            f"'{name}' has several inputs ({ports}); say which one a link feeds",
            span,
            f"write '... -> {name}.PORT'",
        )
        return None

    # options
    def options(self, kind: Kind, layer: s.Layer, args: tuple[s.Arg, ...], node: str):
        fields = kind.Options.model_fields
        values: dict = {}
        spans: dict[str, Span] = {}
        computed: dict[str, Computed] = {}  # the values that arithmetic gives
        position = 0
        ok = True
        for arg in args:
            if arg.key is None:
                bare = arg.value.name if isinstance(arg.value, s.Symbol) else None
                if bare in kind.flags:
                    key, value = bare, True
                elif position < len(kind.positional):
                    key, value = kind.positional[position], s.plain(arg.value)
                    position += 1
                else:
                    ok = False
                    if bare is not None and bare not in ("true", "false"):
                        self.errors.add(
                            "E202",
                            f"{kind.name} has no flag '{bare}'",
                            arg.span,
                            did_you_mean(bare, kind.flags or fields, "options"),
                        )
                    else:
                        takes = ", ".join(kind.positional) or "no values"
                        self.errors.add(
                            "E206",
                            f"too many values for {kind.name}: it takes {takes} by position",
                            arg.span,
                            "name the option: key=value",
                        )
                    continue
            else:
                key, value = arg.key.text, s.plain(arg.value)
                if key not in fields:
                    self.errors.add(
                        "E202",
                        f"{kind.name} has no option '{key}'",
                        arg.key.span,
                        did_you_mean(key, list(fields) + ["repeat", *TIES], "options"),
                    )
                    ok = False
                    continue
            if key in values:
                self.errors.add(
                    "E208", f"option '{key}' is given twice", arg.span, "keep one of them"
                )
                ok = False
                continue
            values[key] = value
            spans[key] = arg.value.span
            if isinstance(arg.value, Computed):
                computed[key] = arg.value
        waiting = {key for key, value in values.items() if _unknown(value)}
        known = {key: value for key, value in values.items() if key not in waiting}
        try:
            options = kind.Options.model_validate(known)
        except ValidationError as error:
            # a block checked on its own: what its parameters give is checked where it is used;
            # after a misspelt option, a missing one is most likely that one: not said twice
            problems = [
                p
                for p in error.errors()
                if (not p["loc"] or p["loc"][0] not in waiting) and (ok or p["type"] != "missing")
            ]
            if problems:
                self.option_errors(problems, kind, layer, node, values, spans, computed)
                return None, spans
            options = kind.Options.model_construct(**known)
        # the values that were given are checked even after a mistake in another option, so
        # that every independent mistake is reported at once
        return (options if ok else None), spans

    def option_errors(
        self, problems: list[dict], kind: Kind, layer: s.Layer, node: str, values, spans, computed
    ) -> None:
        """One message per option for pydantic's `problems` (ValidationError.errors())."""
        seen = set()
        for problem in problems:
            key = str(problem["loc"][0]) if problem["loc"] else ""
            if key in seen:
                continue  # one message per option (a union reports each alternative)
            seen.add(key)
            at = spans.get(key, layer.name.span)
            error_type = problem["type"]
            where = f"{key} of '{node}'"
            given = _show_python(values.get(key))
            if error_type == "missing":
                written = layer.kind.text  # a block's `input` is a `port` inside: say `input`
                how = (
                    f"{written} {layer.name.text}: {key.upper()}"
                    if key in kind.positional
                    else f"{key}=..."
                )
                # the same line of a block placed twice is reported once (Collector drops repeats)
                named = f"'{layer.name.text}' of a block" if kind.internal else f"'{node}'"
                self.errors.add(
                    "E205", f"{written} {named} needs {key}", layer.name.span, f"write '{how}'"
                )
            elif error_type == "activation_option":
                ctx = problem["ctx"]
                self.errors.add(
                    "E202",
                    f"activation {ctx['name']} has no option '{ctx['option']}'",
                    at,
                    did_you_mean(ctx["option"], ctx["known"].split(", "), "options")
                    if ctx["known"] != "no options"
                    else f"{ctx['name']} takes no options",
                )
            elif error_type == "init_value":  # init=: kinds/initializers.py says what is wrong
                ctx = problem["ctx"]
                joint = " " if ctx["message"].startswith("must") else ": "
                self.errors.add("E207", f"{where}{joint}{ctx['message']}", at, ctx["hint"])
            elif error_type == "unknown_activation":
                name = problem["ctx"]["name"]
                self.errors.add(
                    "E204",
                    f"unknown activation '{name}'",
                    at,
                    did_you_mean(name, ACTIVATIONS, "activations"),
                )
            elif error_type in (
                "greater_than_equal",
                "greater_than",
                "less_than",
                "less_than_equal",
            ):
                bound = {
                    "greater_than_equal": ">=",
                    "greater_than": ">",
                    "less_than": "<",
                    "less_than_equal": "<=",
                }[error_type]
                limit = next(iter(problem["ctx"].values()))
                self.errors.add(
                    "E207",
                    f"{where} must be {bound} {limit}, got {given}",
                    at,
                    _range_hint(kind, key),
                )
            elif error_type == "literal_error":
                choices = problem["ctx"]["expected"]
                self.errors.add(
                    "E207",
                    f"{where} must be {choices}, got {given}",
                    at,
                    did_you_mean(
                        str(values.get(key)),
                        [c.strip("'") for c in choices.replace(" or ", ", ").split(", ")],
                        "choices",
                    ),
                )
            elif (
                key in computed
                and isinstance(computed[key].value, float)
                and not computed[key].value.is_integer()
                and "integer" in problem["msg"]
            ):
                text = computed[key].text
                self.errors.add(
                    "E221",
                    f"{where} must be a whole number, but '{text}' gives {computed[key].value:g}",
                    at,
                    "'/' gives a real number; '//' divides whole numbers and rounds down"
                    + (f": {text.replace(' / ', ' // ')}" if " / " in text else ""),
                )
            else:
                self.errors.add(
                    "E203",
                    f"{where} has the wrong type: {problem['msg'][0].lower()}{problem['msg'][1:]}, "
                    f"got {given}",
                    at,
                    _type_hint(kind, key),
                )

    # links
    def link(self, link: s.Link, placed: dict[str, _Placed]) -> None:
        source = self.endpoint(link.source, placed)
        target = self.endpoint(link.target, placed)
        if source is None or target is None:
            return
        if link.source.port is not None:
            self.errors.add(
                "E303",
                f"'{link.source.layer.text}.{link.source.port.text}': "
                "a link leaves a layer as a whole, not from a port",
                link.source.port.span,
                f"write '{link.source.layer.text} -> ...'",
            )
            return
        if source.exit is None:
            return
        entry, port = self.target(link.target, target)
        if entry is not None:
            self.add_edge(source.exit, entry, delayed=link.delayed, port=port, span=link.span)

    def endpoint(self, endpoint: s.Endpoint, placed: dict[str, _Placed]) -> _Placed | None:
        name = endpoint.layer.text
        if name not in placed:
            self.broken_links = True
            if endpoint.layer.span not in self.reported:
                self.reported.add(endpoint.layer.span)
                self.errors.add(
                    "E302",
                    f"unknown layer '{name}'",
                    endpoint.layer.span,
                    did_you_mean(name, placed, "layers"),
                )
            return None
        return placed[name]  # None for a layer that failed: its own error says why

    def target(self, endpoint: s.Endpoint, target: _Placed) -> tuple[str | None, str | None]:
        name = endpoint.layer.text
        if target.kind is None:  # a block: its ports are its input layers
            if endpoint.port is None:
                return self.single_entry(target, endpoint.layer.span, name), None
            port = endpoint.port.text
            if port not in target.entries:
                self.errors.add(
                    "E303",
                    f"'{name}' has no input '{port}'",
                    endpoint.port.span,
                    did_you_mean(port, target.entries, "inputs"),
                )
                return None, None
            return target.entries[port], None
        kind = target.kind
        if endpoint.port is None:
            if kind.ports and kind.default_port is None and not kind.side_ports:
                self.errors.add(
                    "E313",
                    f"{kind.name} '{name}' takes its inputs by port ({', '.join(kind.ports)})",
                    endpoint.layer.span,
                    f"write '... -> {name}.{kind.ports[0]}'",
                )
                return None, None
            return target.entries[""], kind.default_port
        port = endpoint.port.text
        if port not in kind.ports:
            if kind.ports:
                hint = did_you_mean(port, kind.ports, "ports")
            else:
                hint = (
                    f"{kind.name} takes one input; "
                    "several links into it are joined along the features"
                )
            self.errors.add(
                "E303", f"{kind.name} '{name}' has no port '{port}'", endpoint.port.span, hint
            )
            return None, None
        return target.entries[""], port

    def add_edge(
        self, source: str, target: str, delayed: bool, port: str | None, span: Span
    ) -> None:
        self.graph.add_edge(source, target, delayed=delayed, port=port, order=self.order, span=span)
        self.order += 1

    # outputs
    def outputs(
        self, statements, placed: dict[str, _Placed], owner: s.Name, in_block: bool
    ) -> list[tuple[str, str | None, Span]]:
        declared = [
            item
            for statement in statements
            if isinstance(statement, s.Output)
            for item in statement.items
        ]
        if declared:
            outputs = []
            for item in declared:
                if item.name.text not in placed:
                    self.errors.add(
                        "E302",
                        f"unknown layer '{item.name.text}'",
                        item.name.span,
                        did_you_mean(item.name.text, placed, "layers"),
                    )
                    continue
                reduce = item.reduce.text if item.reduce else None
                if reduce is not None and reduce not in REDUCES:
                    self.errors.add(
                        "E207",
                        f"an output keeps 'last' or 'mean' of its steps, not '{reduce}'",
                        item.reduce.span,
                        did_you_mean(reduce, REDUCES, "choices"),
                    )
                    continue
                exit = placed[item.name.text].exit if placed[item.name.text] else None
                if exit is not None:
                    outputs.append((exit, reduce, item.name.span))
            if in_block and len(outputs) > 1:
                self.errors.add(
                    "E305",
                    f"block '{owner.text}' has several outputs; a block has one",
                    declared[1].span,
                )
            return outputs
        feeding = set()
        for statement in statements:
            if isinstance(statement, s.Connection):
                feeding.update(
                    link.source.layer.text for link in statement.links if not link.delayed
                )
        if any(p is None for p in placed.values()) or self.broken_links:
            return []  # a layer or link failed; its error comes first
        candidates = [n for n, p in placed.items() if n not in feeding and not p.is_input]
        if len(candidates) == 1:
            return (
                [(placed[candidates[0]].exit, None, placed[candidates[0]].span)]
                if placed[candidates[0]].exit
                else []
            )
        what = "block" if in_block else "network"
        if not candidates:
            if placed and in_block:  # in a network the checker reports this, after any cycle
                self.errors.add(
                    "E305",
                    f"{what} '{owner.text}' has no output: every layer feeds another",
                    owner.span,
                    "name the output: 'output y'",
                )
            elif not placed:
                self.errors.add(
                    "E305",
                    f"{what} '{owner.text}' has no layers",
                    owner.span,
                    "declare layers: 'input x: 2', 'dense y: 1'",
                )
        else:
            names = ", ".join(f"'{c}'" for c in candidates)
            self.errors.add(
                "E305",
                f"{what} '{owner.text}' has several layers that feed nothing: {names}",
                owner.span,
                f"link them on, or name the outputs: 'output {', '.join(candidates)}'",
            )
        return []


# ---- values ---------------------------------------------------------------------------------
def _opens(value: s.Value) -> list[s.Open]:
    """Every `?` in a value (lists and calls included)."""
    if isinstance(value, s.Open):
        return [value]
    if isinstance(value, (s.ListValue, s.DictValue)):
        inner = value.items
    elif isinstance(value, s.Call):
        inner = value.args
    else:  # a number, string or symbol; arithmetic is evaluated before it is asked
        return []
    items = (item.value if isinstance(item, s.Arg) else item for item in inner)
    return [found for item in items for found in _opens(item)]


def _too_many(layer: s.Layer) -> SpecError:
    return SpecError(
        "E406",
        f"the network has more than {MAX_LAYERS:,} layers once its blocks and repeats are placed",
        layer.name.span,
        "check the repeat= counts of nested blocks: they multiply",
    )


def _flag(arg: s.Arg) -> bool:
    return arg.key is None and isinstance(arg.value, s.Symbol) and arg.value.name == "seq"


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _show_python(value) -> str:
    if isinstance(value, str):
        return value
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], dict)
    ):
        return f"{value[0]}(...)"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show_python(v) for v in value) + "]"
    return repr(value) if not isinstance(value, bool) else str(value).lower()


def _range_hint(kind: Kind, key: str) -> str | None:
    """The hint the option declares for a value out of range (`kinds.base.Hint`), if any."""
    field = kind.Options.model_fields.get(key)
    hints = [m.text for m in field.metadata if isinstance(m, Hint)] if field else []
    return hints[0] if hints else None


def _type_hint(kind: Kind, key: str) -> str | None:
    annotation = (
        str(kind.Options.model_fields[key].annotation) if key in kind.Options.model_fields else ""
    )
    if "bool" in annotation and "int" not in annotation:
        return f"write {key}=true or {key}=false"
    if key in kind.positional or "int" in annotation:
        return f"{key} is a whole number"
    return None
