"""`nnspec lsp`: a language server for `.nn` specs over stdio (pygls 2, the `lsp` extra).

Diagnostics on open and on every change (nnspec check's errors, each with its code, hint and
exact range); hover (a layer's kind, output shape, parameter count and the kind's
documentation); go to definition (layers, blocks, networks, `use`d files); completion (kinds,
the options of the kind at the cursor, layer names in links, activations, datasets, losses,
optimizers, schedules, rules, metrics, settings); document symbols (networks, blocks, layers,
train sections); formatting through `nnspec fmt`.

Positions: nnspec counts columns in characters; the protocol counts them in the code units the
client and server agreed on (UTF-16 unless the client offers another), which this module
converts, so ranges are right on lines with non-ASCII text. What does not need pygls
(`analyse`, `hover_text`, `complete`, ...) is plain Python, so that the features are the same
whichever way they are reached. A request that fails inside nnspec is logged and answered with
nothing: the server stays up.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from . import syntax as s
from .errors import NnspecError, Source, Span, SpecError
from .reading import SPEC_LIMIT, size_text

LOG = logging.getLogger("nnspec.lsp")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ---- positions: nnspec's characters and the protocol's code units ---------------------------
def units(text: str, encoding: str = "utf-16") -> int:
    """How many code units of `encoding` `text` takes."""
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def to_units(lines: list[str], line: int, column: int, encoding: str = "utf-16") -> int:
    """The 0-based character `column` of 0-based `line` in code units."""
    text = lines[line] if 0 <= line < len(lines) else ""
    return units(text[:column], encoding)


def from_units(lines: list[str], line: int, character: int, encoding: str = "utf-16") -> int:
    """The 0-based character column of a position given in code units."""
    text = lines[line] if 0 <= line < len(lines) else ""
    count = 0
    for index, char in enumerate(text):
        if count >= character:
            return index
        count += units(char, encoding)
    return len(text)


def text_lines(text: str) -> list[str]:
    """The lines as lark counts them (a newline ends a line)."""
    return text.split("\n")


# ---- what a document says: parsed, checked, indexed ---------------------------------------
@dataclass
class Entry:
    """A name in the document: what it is, and the statement's network or block."""

    span: Span
    role: str  # network, block, kind, layer, ref, port, use, target (a network named in train)
    text: str
    container: s.Network | s.Block | None = None
    node: object = None


@dataclass
class Analysis:
    source: Source
    spec: s.SpecFile | None = None
    errors: list[NnspecError] = field(default_factory=list)
    programs: dict = field(default_factory=dict)  # network name -> Program, those that check
    blocks: dict = field(default_factory=dict)  # every block reached, through `use` too
    networks: dict = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)

    def at(self, line: int, column: int) -> Entry | None:
        """The entry under 1-based `line`, 1-based `column`."""
        for entry in self.entries:
            span = entry.span
            inside = span.line == line and span.column <= column <= span.end_column
            if inside and span.path == self.source.path:
                return entry
        return None

    def declaration(self, container, name: str) -> s.Layer | None:
        for statement in getattr(container, "body", ()):
            if isinstance(statement, s.Layer) and statement.name.text == name:
                return statement
        return None


def analyse(path: str, text: str) -> Analysis:
    """Parse and check `text` (the spec at `path`; `use` paths are relative to it)."""
    from .parse import decode, parse

    try:
        source = decode(text.encode("utf-8", "surrogatepass"), path)
    except SpecError as error:
        return Analysis(Source(path, text), errors=list(error.errors))
    result = Analysis(source)
    try:
        result.spec = parse(source)
    except SpecError as error:
        result.errors = list(error.errors)
        return result
    try:
        _index(result)
        _check(result)
    except Exception as error:  # noqa: BLE001 - a bug in nnspec must not stop the server
        LOG.exception("checking %s failed", path)
        result.errors.append(
            NnspecError("R105", f"nnspec could not check this file (a bug in nnspec): {error!r}")
        )
    return result


def _check(result: Analysis) -> None:
    from .check import check
    from .model import check_source
    from .resolve import build_graph, load_library

    try:
        models = check_source(result.source)
    except SpecError as error:
        result.errors = list(error.errors)
        models = None
    try:
        library = load_library(result.source)
    except SpecError:
        return
    result.blocks, result.networks = library.blocks, library.networks
    if models is not None:
        result.programs = {m.name: m.program for m in models}
        return
    for network in library.root.networks:
        try:
            result.programs[network.name.text] = check(build_graph(library, network))
        except SpecError:
            continue


def _index(result: Analysis) -> None:
    spec, add = result.spec, result.entries.append
    for use in spec.uses:
        add(Entry(use.path.span, "use", use.path.value, node=use))
    for container in (*spec.blocks, *spec.networks):
        role = "block" if isinstance(container, s.Block) else "network"
        add(Entry(container.name.span, role, container.name.text, node=container))
        for statement in container.body:
            if isinstance(statement, s.Layer):
                add(Entry(statement.kind.span, "kind", statement.kind.text, container, statement))
                add(Entry(statement.name.span, "layer", statement.name.text, container, statement))
            elif isinstance(statement, s.Connection):
                for link in statement.links:
                    for end in (link.source, link.target):
                        add(Entry(end.layer.span, "ref", end.layer.text, container, end))
                        if end.port is not None:
                            add(Entry(end.port.span, "port", end.port.text, container, end))
            elif isinstance(statement, s.Output):
                for item in statement.items:
                    add(Entry(item.name.span, "ref", item.name.text, container, item))
    for train in spec.trains:
        if train.network is not None:
            add(Entry(train.network.span, "target", train.network.text))
        for setting in train.settings:
            if setting.key.text in ("generator", "discriminator") and isinstance(
                setting.value, s.Symbol
            ):
                add(Entry(setting.value.span, "target", setting.value.name))
    # several entries may share a span (a link's layer twice): one is enough
    unique = {(e.span.line, e.span.column, e.role): e for e in result.entries}
    result.entries = list(unique.values())


# ---- hover ---------------------------------------------------------------------------------
def hover_text(result: Analysis, line: int, column: int) -> str | None:
    """Markdown for the name at 1-based `line`, `column`, or None."""
    from .kinds import REGISTRY

    entry = result.at(line, column)
    if entry is None:
        return None
    if entry.role in ("layer", "ref"):
        layer = result.declaration(entry.container, entry.text)
        if layer is None:
            return None
        return _layer_hover(result, entry.container, layer)
    if entry.role == "kind":
        if entry.text in REGISTRY:
            return _kind_doc(entry.text)
        block = result.blocks.get(entry.text)
        if block is not None:
            return _block_hover(block)
        return None
    if entry.role in ("network", "target"):
        network = result.networks.get(entry.text)
        program = result.programs.get(entry.text)
        if network is None:
            return None
        lines = [f"**network {entry.text}**"]
        if network.description is not None:
            lines.append(network.description.value)
        if program is not None:
            lines.append(
                f"{len(program.layers)} layers, {program.param_count:,} parameters "
                f"({program.trainable_count:,} trainable)"
            )
        return "\n\n".join(lines)
    if entry.role == "block":
        return _block_hover(entry.node)
    if entry.role == "use":
        return f"uses `{entry.text}`: {_used_path(result, entry.node)}"
    if entry.role == "port":
        return f"port `{entry.text}` of `{entry.node.layer.text}`"
    return None


def _kind_doc(kind: str) -> str:
    from .kinds import REGISTRY

    first, rest = REGISTRY[kind].doc
    return "\n\n".join(part for part in (f"**{kind}**: {first}", rest) if part)


def _block_hover(block: s.Block) -> str:
    params = ", ".join(p.text for p in block.params)
    return f"**block {block.name.text}({params})**, defined at {block.name.span}"


def _layer_hover(result: Analysis, container, layer: s.Layer) -> str:
    from .kinds import REGISTRY

    name, kind = layer.name.text, layer.kind.text
    program = result.programs.get(container.name.text) if isinstance(container, s.Network) else None
    head = f"**{name}**: {kind}"
    if program is not None:
        shape, count = _shape_and_count(program, name)
        if shape is not None:
            head += f" → {shape}, {count:,} parameters"
    elif isinstance(container, s.Block):
        head += f" (in block {container.name.text})"
    parts = [head]
    if kind in REGISTRY:
        parts.append(_kind_doc(kind))
    elif kind in result.blocks:
        parts.append(_block_hover(result.blocks[kind]))
    return "\n\n".join(parts)


def _shape_and_count(program, name: str):
    """A layer's output shape and parameter count; for a block's instance, its output's shape
    and the parameters of every layer in it."""
    names = {layer.name for layer in program.layers}
    if name in names:
        layer = program.layer(name)
        return layer.shape, layer.param_count
    inside = [layer for layer in program.layers if layer.name.startswith(name + ".")]
    if not inside:
        return None, 0
    count = sum(layer.param_count for layer in inside)
    inner = {layer.name for layer in inside}
    outputs = {o.name for o in program.outputs}
    leaving = [
        layer
        for layer in inside
        if layer.name in outputs
        or any(
            link.source == layer.name
            for other in program.layers
            if other.name not in inner
            for link in other.inputs
        )
    ]
    return (leaving[-1] if leaving else inside[-1]).shape, count


# ---- go to definition ----------------------------------------------------------------------
def definition(result: Analysis, line: int, column: int) -> tuple[str, Span | None] | None:
    """(the path of the file, the span there, or None for the file itself) of the name at
    1-based `line`, `column`."""
    entry = result.at(line, column)
    if entry is None:
        return None
    if entry.role == "ref":
        layer = result.declaration(entry.container, entry.text)
        return (result.source.path, layer.name.span) if layer is not None else None
    if entry.role == "kind":
        block = result.blocks.get(entry.text)
        return (block.name.span.path, block.name.span) if block is not None else None
    if entry.role == "target":
        network = result.networks.get(entry.text)
        return (network.name.span.path, network.name.span) if network is not None else None
    if entry.role == "use":
        return _used_path(result, entry.node), None
    if entry.role in ("layer", "network", "block"):
        return result.source.path, entry.span
    return None


def _used_path(result: Analysis, use: s.Use) -> str:
    base = Path(result.source.path).parent
    return str(base / use.path.value)


# ---- completion ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    label: str
    kind: str  # kind, block, keyword, option, flag, layer, value, setting, port
    detail: str = ""
    insert: str | None = None


_HEADER = re.compile(r"^\s*(network|block|train)\b\s*([A-Za-z_]\w*)?")
_DECLARATION = re.compile(r"^\s*([A-Za-z_]\w*)\s+([A-Za-z_]\w*)\s*(?::|$|#)")
_TOP = ("network", "block", "train", "use", "let")
_STATEMENT_WORDS = ("output", "let")


def complete(text: str, line: int, column: int, known: Analysis | None = None) -> list[Item]:
    """What may be written at 0-based `line`, character `column` of `text`. Read from the text
    around the cursor, so it works while the file does not parse; `known` (the last analysis
    that parsed) adds the blocks of `use`d files."""
    from .kinds import REGISTRY, SPEC_KINDS

    lines = text_lines(text)
    current = lines[line] if line < len(lines) else ""
    prefix = current[:column].split("#")[0] if "#" not in current[:column] else None
    if prefix is None:  # inside a comment
        return []
    section, section_start = _section(lines, line)
    if section is None:
        if re.fullmatch(r"\s*\w*", prefix):
            return [Item(word, "keyword") for word in _TOP]
        return []
    if section == "train":
        return _train_items(prefix, lines, known)
    declared = _declared(lines, section_start, line)
    blocks = _blocks(lines, known)
    if re.fullmatch(r"\s*\w*", prefix):
        items = [Item(k, "kind", REGISTRY[k].doc[0]) for k in sorted(SPEC_KINDS)]
        items += [Item(b, "block", "a block") for b in sorted(blocks)]
        items += [Item(w, "keyword") for w in _STATEMENT_WORDS]
        items += [Item(n, "layer", k) for n, k in declared.items()]
        return items
    port = re.search(r"([A-Za-z_]\w*)\.(\w*)$", prefix)
    if port and port.group(1) in declared:
        kind = REGISTRY.get(declared[port.group(1)])
        return [Item(p, "port") for p in getattr(kind, "ports", ())]
    if re.search(r"(->|~>)", prefix) or re.match(r"^\s*output\b", prefix):
        if re.search(r"(->|~>|,|output)\s*\w*$", prefix):
            return [Item(n, "layer", k) for n, k in declared.items()]
        return []
    layer = re.match(r"^\s*([A-Za-z_]\w*)\s+[A-Za-z_]\w*\s*:(.*)$", prefix)
    if layer:
        kind_name, args = layer.group(1), layer.group(2)
        value = re.search(r"([A-Za-z_]\w*)\s*=\s*[\w]*$", args)
        if value:
            return _option_values(value.group(1))
        if re.search(r"(^|,)\s*\w*$", args):
            return _options(kind_name, blocks)
        return []
    if re.fullmatch(r"\s*[A-Za-z_]\w*,?(\s*,\s*\w*)*\s*", prefix) and "," in prefix:
        return [Item(n, "layer", k) for n, k in declared.items()]
    return []


def _section(lines: list[str], line: int) -> tuple[str | None, int]:
    """The network, block or train section the cursor's line is in, and its header's line."""
    section, start = None, 0
    for number in range(line + 1):
        text = lines[number].split("#")[0]
        header = _HEADER.match(text)
        if header and "{" in text:
            section, start = header.group(1), number
            if "}" in text[text.index("{") :] and number != line:
                section = None
        elif text.strip().startswith("}") and number != line:
            section = None
    return section, start


def _declared(lines: list[str], start: int, line: int) -> dict[str, str]:
    """The layers declared in the section that starts at `start`: name -> kind."""
    names: dict[str, str] = {}
    for number in range(start + 1, len(lines)):
        text = lines[number].split("#")[0]
        if text.strip().startswith("}"):
            break
        for statement in text.split(";"):
            found = _DECLARATION.match(statement)
            if found and found.group(1) not in ("output", "let") and "->" not in statement:
                names[found.group(2)] = found.group(1)
    return names


def _blocks(lines: list[str], known: Analysis | None) -> set[str]:
    names = {m.group(2) for text in lines if (m := _HEADER.match(text)) and m.group(1) == "block"}
    if known is not None:
        names |= set(known.blocks)
    return {n for n in names if n}


def _options(kind_name: str, blocks: set[str]) -> list[Item]:
    from .kinds import REGISTRY

    kind = REGISTRY.get(kind_name)
    if kind is None:
        return [Item("repeat", "option", "copies of the block, chained", "repeat=")]
    items = []
    for key, info in kind.Options.model_fields.items():
        if key in kind.flags:
            items.append(Item(key, "flag", f"a flag: {key} means {key}=true"))
        else:
            items.append(Item(key, "option", str(info.description or ""), f"{key}="))
    return items


def _option_values(key: str) -> list[Item]:
    from .kinds.activation import ACTIVATIONS

    if key == "act":
        return [Item(name, "value", "activation") for name in ACTIVATIONS]
    if key in ("bias", "frozen", "seq"):
        return [Item("true", "value"), Item("false", "value")]
    return []


def _train_items(prefix: str, lines: list[str], known: Analysis | None) -> list[Item]:
    from . import train_section as t
    from .rules import BACKPROP, RULES

    if re.fullmatch(r"\s*\w*", prefix):
        return [Item(key, "setting", "", f"{key} = ") for key in t.SETTINGS] + [
            Item("expect", "keyword")
        ]
    if re.fullmatch(r"\s*expect\s+\w*", prefix):
        return [Item(m, "value", "metric") for m in t.METRICS]
    call = re.search(r"([A-Za-z_]\w*)\(([^()]*)$", prefix)
    if call:
        options = {**t.OPTIMIZERS, **t.SCHEDULES, **t.FILE_DATA, **t.GENERATED_DATA}
        if re.search(r"(^|,)\s*\w*$", call.group(2)):
            return [Item(o, "option", "", f"{o}=") for o in options.get(call.group(1), ())]
        return []
    setting = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*=\s*\[?([\w\s,]*)", prefix)
    if not setting:
        return []
    key = setting.group(1)
    networks = [m.group(2) for x in lines if (m := _HEADER.match(x)) and m.group(1) == "network"]
    values = {
        "data": [*t.DATASETS, *t.FILE_DATA, *t.GENERATED_DATA],
        "loss": t.LOSSES,
        "optimizer": tuple(t.OPTIMIZERS),
        "schedule": tuple(t.SCHEDULES),
        "rule": (BACKPROP, *RULES),
        "metrics": t.METRICS,
        "generator": networks,
        "discriminator": networks,
        "batch": ("full",),
        "target": ("input",),
    }.get(key, ())
    return [Item(v, "value", key) for v in values if v]


# ---- document symbols --------------------------------------------------------------------
@dataclass
class Symbol:
    name: str
    kind: str  # network, block, layer, train
    span: Span  # the whole construct
    name_span: Span
    detail: str = ""
    children: list[Symbol] = field(default_factory=list)


def symbols(result: Analysis) -> list[Symbol]:
    if result.spec is None:
        return []
    out = []
    for container in sorted((*result.spec.blocks, *result.spec.networks), key=_where):
        role = "block" if isinstance(container, s.Block) else "network"
        layers = [
            Symbol(st.name.text, "layer", st.span, st.name.span, st.kind.text)
            for st in container.body
            if isinstance(st, s.Layer)
        ]
        span = _joined(container.span, [c.span for c in container.body])
        out.append(Symbol(container.name.text, role, span, container.name.span, role, layers))
    for train in result.spec.trains:
        name = "train" + (f" {train.network.text}" if train.network else "")
        where = train.network.span if train.network else train.span
        out.append(Symbol(name, "train", train.span, where, "train section"))
    return sorted(out, key=lambda x: (x.span.line, x.span.column))


def _where(node) -> tuple[int, int]:
    return node.span.line, node.span.column


def _joined(span: Span, inner: list[Span]) -> Span:
    ends = [(x.end_line, x.end_column) for x in [span, *inner]]
    line, column = max(ends)
    return Span(span.source, span.line, span.column, line, column)


# ---- the server --------------------------------------------------------------------------
def serve() -> None:
    """Run the server over stdin and stdout until the client says exit."""
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError:
        raise NnspecError(
            "R104",
            "nnspec lsp needs pygls, which is not installed",
            "install the lsp extra: pip install 'nnspec[lsp]'",
        ) from None
    build_server().start_io(BoundedInput(sys.stdin.buffer))


MESSAGE_LIMIT = 4 * SPEC_LIMIT  # bytes: a message carries at most a spec's text, JSON-escaped
HEADER_LIMIT = 64 * 1024  # bytes of one header line
SKIPPED = {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "nnspec-skipped"}}


class BoundedInput:
    """The server's stdin, its reads bounded: pygls reads a message's body at once, as long as
    its Content-Length says, so a client (or garbage) claiming 100 GB would exhaust memory. A
    header line is read up to HEADER_LIMIT bytes (a longer one is garbage, which the server skips
    line by line); a body over MESSAGE_LIMIT is read through and dropped, said on stderr (the
    editor's log), and the server goes on with the next message."""

    def __init__(self, stream):
        self.stream = stream

    def readline(self) -> bytes:
        return self.stream.readline(HEADER_LIMIT)

    def read(self, size: int) -> bytes:
        if size <= MESSAGE_LIMIT:
            return self.stream.read(size)
        left = size
        while left > 0:
            chunk = self.stream.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        print(
            f"nnspec lsp: skipped a message of {size:,} bytes, over the limit of "
            f"{size_text(MESSAGE_LIMIT)}",
            file=sys.stderr,
        )
        # in the message's place, a notification that changes nothing: the cancelling of a
        # request no one made
        return json.dumps(SKIPPED).encode()


def path_of(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return uri  # an unsaved buffer: `use` paths are then relative to the current folder


def build_server():
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer

    from .version import __version__

    server = LanguageServer("nnspec", __version__)
    known: dict[str, Analysis] = {}  # uri -> the latest analysis
    parsed: dict[str, Analysis] = {}  # uri -> the latest that parsed

    def encoding() -> str:
        value = str(server.workspace.position_encoding or "utf-16")
        return value if value in ("utf-8", "utf-16", "utf-32") else "utf-16"

    def position(span_line: int, span_column: int, text: str) -> types.Position:
        lines = text_lines(text)
        return types.Position(
            line=max(span_line - 1, 0),
            character=to_units(lines, span_line - 1, span_column - 1, encoding()),
        )

    def span_range(span: Span) -> types.Range:
        text = span.source.text
        return types.Range(
            start=position(span.line, span.column, text),
            end=position(span.end_line, span.end_column, text),
        )

    def cursor(uri: str, at: types.Position) -> tuple[Analysis | None, int, int]:
        result = known.get(uri)
        if result is None:
            return None, 0, 0
        lines = text_lines(result.source.text)
        column = from_units(lines, at.line, at.character, encoding())
        return result, at.line + 1, column + 1

    def safe(handler):
        def run(ls, params):
            try:
                return handler(params)
            except Exception:  # noqa: BLE001 - answer nothing, stay up
                LOG.exception("%s failed", handler.__name__)
                return None

        run.__name__ = handler.__name__
        return run

    def diagnose(uri: str, version: int | None) -> None:
        document = server.workspace.get_text_document(uri)
        result = analyse(path_of(uri), document.source)
        known[uri] = result
        if result.spec is not None:
            parsed[uri] = result
        diagnostics = [_diagnostic(types, result, error, span_range) for error in result.errors]
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @safe
    def did_open(params: types.DidOpenTextDocumentParams):
        diagnose(params.text_document.uri, params.text_document.version)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @safe
    def did_change(params: types.DidChangeTextDocumentParams):
        diagnose(params.text_document.uri, params.text_document.version)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @safe
    def did_save(params: types.DidSaveTextDocumentParams):
        diagnose(params.text_document.uri, None)  # the files it uses may have changed

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @safe
    def did_close(params: types.DidCloseTextDocumentParams):
        known.pop(params.text_document.uri, None)
        parsed.pop(params.text_document.uri, None)
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @safe
    def hover(params: types.HoverParams):
        result, line, column = cursor(params.text_document.uri, params.position)
        if result is None:
            return None
        text = hover_text(result, line, column)
        if text is None:
            return None
        entry = result.at(line, column)
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
            range=span_range(entry.span),
        )

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @safe
    def goto(params: types.DefinitionParams):
        result, line, column = cursor(params.text_document.uri, params.position)
        if result is None:
            return None
        found = definition(result, line, column)
        if found is None:
            return None
        path, span = found
        if path == result.source.path:
            uri = params.text_document.uri
        else:
            uri = Path(os.path.abspath(path)).as_uri()
        if span is None:
            start = types.Position(line=0, character=0)
            return types.Location(uri=uri, range=types.Range(start=start, end=start))
        return types.Location(uri=uri, range=span_range(span))

    kinds = {
        "kind": types.CompletionItemKind.Class,
        "block": types.CompletionItemKind.Module,
        "keyword": types.CompletionItemKind.Keyword,
        "option": types.CompletionItemKind.Property,
        "flag": types.CompletionItemKind.Property,
        "layer": types.CompletionItemKind.Variable,
        "value": types.CompletionItemKind.Value,
        "setting": types.CompletionItemKind.Field,
        "port": types.CompletionItemKind.Field,
    }

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[".", "=", ":", ",", ">", " ", "("]),
    )
    @safe
    def completion(params: types.CompletionParams):
        uri = params.text_document.uri
        text = server.workspace.get_text_document(uri).source
        lines = text_lines(text)
        at = params.position
        column = from_units(lines, at.line, at.character, encoding())
        items = complete(text, at.line, column, parsed.get(uri))
        return types.CompletionList(
            is_incomplete=False,
            items=[
                types.CompletionItem(
                    label=item.label,
                    kind=kinds[item.kind],
                    detail=item.detail or item.kind,
                    insert_text=item.insert,
                )
                for item in items
            ],
        )

    symbol_kinds = {
        "network": types.SymbolKind.Class,
        "block": types.SymbolKind.Function,
        "layer": types.SymbolKind.Field,
        "train": types.SymbolKind.Namespace,
    }

    def document_symbol(symbol: Symbol) -> types.DocumentSymbol:
        return types.DocumentSymbol(
            name=symbol.name,
            detail=symbol.detail,
            kind=symbol_kinds[symbol.kind],
            range=span_range(symbol.span),
            selection_range=span_range(symbol.name_span),
            children=[document_symbol(child) for child in symbol.children],
        )

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @safe
    def document_symbols(params: types.DocumentSymbolParams):
        uri = params.text_document.uri
        text = server.workspace.get_text_document(uri).source
        result = analyse(path_of(uri), text) if uri not in known else known[uri]
        return [document_symbol(symbol) for symbol in symbols(result)]

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    @safe
    def formatting(params: types.DocumentFormattingParams):
        from .fmt import format_source

        uri = params.text_document.uri
        text = server.workspace.get_text_document(uri).source
        try:
            formatted = format_source(Source(path_of(uri), text))
        except NnspecError:  # does not parse, or would change: no edit (the diagnostics say why)
            return None
        if formatted == text:
            return []
        lines = text_lines(text)
        end = types.Position(line=len(lines), character=0)
        whole = types.Range(start=types.Position(line=0, character=0), end=end)
        return [types.TextEdit(range=whole, new_text=formatted)]

    return server


def _diagnostic(types, result: Analysis, error: NnspecError, span_range):
    message = error.message + (f"\nhint: {error.hint}" if error.hint else "")
    span = error.span
    if span is not None and span.path != result.source.path:
        # a mistake in a file this one uses: shown at the `use` that reaches it
        message = f"{span}: {message}"
        span = _use_span(result, span.path)
    if span is None:
        start = types.Position(line=0, character=0)
        where = types.Range(start=start, end=start)
    else:
        where = span_range(span)
    return types.Diagnostic(
        range=where,
        message=message,
        severity=types.DiagnosticSeverity.Error,
        code=error.code,
        source="nnspec",
    )


def _use_span(result: Analysis, path: str) -> Span | None:
    """The `use` that names `path`, else the first `use` (the file is reached through it)."""
    if result.spec is None or not result.spec.uses:
        return None
    for use in result.spec.uses:
        if os.path.realpath(_used_path(result, use)) == os.path.realpath(path):
            return use.span
    return result.spec.uses[0].span
