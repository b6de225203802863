"""`nnspec lsp`: the real server process, driven over the Language Server Protocol (pytest-lsp).

Diagnostics on open and change with exact ranges in UTF-16 code units (a line with non-ASCII
text before the error), several errors at once, an error in a `use`d file, hover, go to
definition (in the file and into a used one), completion, document symbols, formatting, and
garbage (the server answers and stays up). Without pygls, `nnspec lsp` is R104.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from conftest import EXAMPLES, ROOT
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER = [sys.executable, "-m", "nnspec", "lsp"]
pytestmark = pytest.mark.slow  # each test starts a server process


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    )
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, path: Path, text: str | None = None, version: int = 1) -> str:
    uri = path.resolve().as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri,
                language_id="nnspec",
                version=version,
                text=path.read_text() if text is None else text,
            )
        )
    )
    return uri


async def _diagnostics(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


def _range(diagnostic) -> tuple[int, int, int, int]:
    r = diagnostic.range
    return r.start.line, r.start.character, r.end.line, r.end.character


def _at(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


# ---- diagnostics ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_clean_spec_has_no_diagnostics(client, tmp_path):
    uri = _open(client, EXAMPLES / "xor.nn")
    assert await _diagnostics(client, uri) == []


SEVERAL = """\
network n {
    input  x: 2
    dense  h: 4, act=relux
    dense  y: 1
    x -> h -> y
    x -> nowhere
}
"""


@pytest.mark.asyncio
async def test_several_errors_each_at_its_characters(client, tmp_path):
    uri = _open(client, tmp_path / "several.nn", SEVERAL)
    found = await _diagnostics(client, uri)
    by_code = {d.code: d for d in found}
    assert len(found) >= 2, found
    act = next(d for d in found if "relux" in d.message)
    assert _range(act) == (2, 21, 2, 26)  # `relux`, 0-based, end exclusive
    assert "did you mean 'relu'" in act.message
    nowhere = next(d for d in found if "nowhere" in d.message)
    assert _range(nowhere)[:2] == (5, 9)
    assert all(d.source == "nnspec" and d.severity == types.DiagnosticSeverity.Error for d in found)
    assert all(code.startswith("E") for code in by_code)


@pytest.mark.asyncio
async def test_ranges_count_utf16_code_units_after_non_ascii_text(client, tmp_path):
    # é is one UTF-16 unit, 😀 two: the error after them on the line moves by 1 + 2 units more
    # than by characters; the comment line above must not shift the line either
    text = (
        "# ünïcödé 😀 comment\n"
        'network n "Ωmega 😀" {\n'
        "    input  x: 2\n"
        '    dense  y: 1, init="é😀", act=relux\n'
        "    x -> y\n"
        "}\n"
    )
    uri = _open(client, tmp_path / "unicode.nn", text)
    found = await _diagnostics(client, uri)
    relux = [d for d in found if "relux" in d.message]
    assert relux, found
    line = text.splitlines()[3]
    characters = line.index("relux")
    units = len(line[:characters].encode("utf-16-le")) // 2
    assert units == characters + 1
    assert _range(relux[0]) == (3, units, 3, units + 5)


@pytest.mark.asyncio
async def test_diagnostics_follow_changes(client, tmp_path):
    path = tmp_path / "change.nn"
    uri = _open(client, path, SEVERAL)
    assert await _diagnostics(client, uri)
    fixed = SEVERAL.replace("relux", "relu").replace("    x -> nowhere\n", "")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)],
        )
    )
    assert await _diagnostics(client, uri) == []
    # an incremental change that breaks the syntax again: the error is where it is
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=_at(3, 12), end=_at(3, 13)), text=""
                )
            ],
        )
    )
    found = await _diagnostics(client, uri)  # `dense  y 1`: the colon is gone
    assert [d.code for d in found] == ["E103"]
    assert _range(found[0]) == (3, 13, 3, 14)


@pytest.mark.asyncio
async def test_an_error_in_a_used_file_shows_at_the_use(client, tmp_path):
    (tmp_path / "blocks.nn").write_text(
        "block pair(w) {\n    input  a: w\n    dense  b: w, act=nope\n}\n"
    )
    text = 'use "blocks.nn"\nnetwork n {\n    input  x: 2\n    pair   p: 2\n    x -> p\n}\n'
    uri = _open(client, tmp_path / "main.nn", text)
    found = await _diagnostics(client, uri)
    assert found and all(_range(d)[0] == 0 for d in found)
    assert any("blocks.nn:3" in d.message for d in found)


@pytest.mark.asyncio
async def test_garbage_gets_answers_and_the_server_stays_up(client, tmp_path):
    for number, garbage in enumerate(
        ["\x00\x01\x02", "}}}{{{ -> ~> ::: ===", "network" * 300, "\ud800 lone", "é" * 5000, ""]
    ):
        uri = _open(client, tmp_path / f"garbage{number}.nn", garbage)
        found = await _diagnostics(client, uri)
        assert all(d.code for d in found)
        hover = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=_at(0, 3)
            )
        )
        assert hover is None
        await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=_at(40, 99)
            )
        )
        await client.text_document_document_symbol_async(
            types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        await client.text_document_formatting_async(
            types.DocumentFormattingParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                options=types.FormattingOptions(tab_size=4, insert_spaces=True),
            )
        )
    # still up: a real spec is still checked
    uri = _open(client, EXAMPLES / "xor.nn")
    assert await _diagnostics(client, uri) == []


# ---- hover, definition, completion, symbols, formatting -------------------------------------
def _position_of(text: str, needle: str, offset: int = 0, occurrence: int = 0) -> types.Position:
    index = -1
    for _ in range(occurrence + 1):
        index = text.index(needle, index + 1)
    index += offset
    line = text.count("\n", 0, index)
    column = index - (text.rfind("\n", 0, index) + 1)
    before = text.splitlines()[line][:column]
    return _at(line, len(before.encode("utf-16-le")) // 2)


@pytest.mark.asyncio
async def test_hover_tells_kind_shape_parameters_and_documentation(client):
    path = EXAMPLES / "residual.nn"
    text = path.read_text()
    uri = _open(client, path)
    await _diagnostics(client, uri)
    ask = lambda at: client.text_document_hover_async(  # noqa: E731
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=at)
    )
    stem = await ask(_position_of(text, "x -> stem", 6))  # `stem` in a link
    assert "**stem**: dense → [64], 4,160 parameters" in stem.contents.value
    assert "act(x @ W.T + b)" in stem.contents.value  # the kind's documentation
    block = await ask(_position_of(text, "residual r:", 10))  # the layer made by the block
    assert "residual → [64], 49,920 parameters" in block.contents.value
    kind = await ask(_position_of(text, "dense    out", 1))
    assert kind.contents.value.startswith("**dense**: ")


@pytest.mark.asyncio
async def test_definition_of_layers_blocks_networks_and_used_files(client, tmp_path):
    blocks = tmp_path / "blocks.nn"
    blocks.write_text("block pair(w) {\n    input  a: w\n    dense  b: w\n    a -> b\n}\n")
    text = (
        'use "blocks.nn"\nnetwork n {\n    input  x: 2\n    pair   p: 2\n    x -> p\n}\n\n'
        "train n {\n    data = xor\n}\n"
    )
    uri = _open(client, tmp_path / "main.nn", text)
    assert await _diagnostics(client, uri) == []

    async def where(position):
        found = await client.text_document_definition_async(
            types.DefinitionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=position
            )
        )
        return found.uri, found.range.start.line, found.range.start.character

    assert await where(_position_of(text, "x -> p")) == (uri, 2, 11)  # the layer x
    assert await where(_position_of(text, "pair   p", 1)) == (blocks.resolve().as_uri(), 0, 6)
    assert await where(_position_of(text, "blocks.nn", 2)) == (blocks.resolve().as_uri(), 0, 0)
    assert await where(_position_of(text, "train n", 6)) == (uri, 1, 8)  # the network


@pytest.mark.asyncio
async def test_completion_offers_what_fits_the_cursor(client, tmp_path):
    text = (
        "network n {\n    input  x: 2\n    dense  h: 4, act=re\n    dense  y: 1, \n"
        "    x -> \n    \n}\ntrain {\n    loss = \n    data = \n    optimizer = adam(\n}\n"
    )
    uri = _open(client, tmp_path / "complete.nn", text)
    await _diagnostics(client, uri)

    async def labels(line, character):
        found = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=_at(line, character)
            )
        )
        return {item.label for item in found.items}

    assert {"relu", "tanh", "softmax"} <= await labels(2, 23)  # activations after act=
    options = await labels(3, 17)  # the options of dense
    assert {"act", "bias", "weights", "frozen"} <= options and "kernel" not in options
    assert await labels(4, 9) == {"x", "h", "y"}  # layer names in a link
    start = await labels(5, 4)
    assert {"dense", "conv", "lstm", "output"} <= start  # kinds at the start of a statement
    assert {"mse", "cross_entropy"} <= await labels(8, 11)
    assert {"xor", "digits", "csv"} <= await labels(9, 11)
    assert {"lr", "beta1"} <= await labels(10, 21)


@pytest.mark.asyncio
async def test_document_symbols_list_networks_blocks_layers(client):
    uri = _open(client, EXAMPLES / "residual.nn")
    await _diagnostics(client, uri)
    found = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    shown = [(s.name, s.kind, [c.name for c in s.children or []]) for s in found]
    assert shown == [
        ("residual", types.SymbolKind.Function, ["x", "a", "b", "s", "y"]),
        ("deep_residual", types.SymbolKind.Class, ["x", "stem", "r", "out"]),
        ("train", types.SymbolKind.Namespace, []),
    ]


@pytest.mark.asyncio
async def test_formatting_is_nnspec_fmt(client, tmp_path):
    from nnspec.fmt import format_text

    ugly = "network n {\ninput x: 2 # é\ndense y: 1\nx->y\n}\n"
    uri = _open(client, tmp_path / "ugly.nn", ugly)
    await _diagnostics(client, uri)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            options=types.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )
    assert len(edits) == 1 and edits[0].new_text == format_text(ugly)
    assert edits[0].range.start == _at(0, 0)


# ---- raw protocol and a missing pygls -----------------------------------------------------
def _message(payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def test_broken_messages_do_not_stop_the_server():
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
    hover = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "textDocument/hover",
        "params": {"textDocument": {"uri": "file:///nowhere.nn"}, "position": {"line": 0}},
    }
    shutdown = {"jsonrpc": "2.0", "id": 3, "method": "shutdown"}
    stream = (
        _message(init)
        + b"Content-Length: 9\r\n\r\n{not json"
        + _message({"jsonrpc": "2.0", "id": 7, "method": "no/such/method"})
        + _message(hover)
        + _message(shutdown)
        + _message({"jsonrpc": "2.0", "method": "exit"})
    )
    done = subprocess.run(SERVER, input=stream, capture_output=True, timeout=60, cwd=ROOT)
    out = done.stdout.decode()
    assert '"id": 1' in out.replace('"id":1', '"id": 1')
    assert '"id": 3' in out.replace('"id":3', '"id": 3')  # it answered after the garbage


def test_a_message_over_the_limit_is_skipped_and_the_server_goes_on():
    """pygls reads a body as long as its Content-Length says, at once: a claim of 100 GB was a
    MemoryError and a traceback. Now a body over the limit is read through and dropped, and a
    header line over its limit is garbage skipped."""
    from nnspec.lsp import HEADER_LIMIT, MESSAGE_LIMIT

    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
    shutdown = {"jsonrpc": "2.0", "id": 3, "method": "shutdown"}
    big = b" " * (MESSAGE_LIMIT + 1)
    stream = (
        _message(init)
        + b"Content-Length: %d\r\n\r\n%s" % (len(big), big)
        + b"A" * (3 * HEADER_LIMIT)
        + b"\r\n"
        + _message(shutdown)
        + _message({"jsonrpc": "2.0", "method": "exit"})
    )
    done = subprocess.run(SERVER, input=stream, capture_output=True, timeout=120, cwd=ROOT)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0 and '"id": 3' in out.replace('"id":3', '"id": 3'), err
    assert f"skipped a message of {len(big):,} bytes, over the limit of 64 MiB" in err
    claimed = subprocess.run(
        SERVER,
        input=_message(init) + b"Content-Length: 99999999999\r\n\r\n{}",
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )
    assert claimed.returncode == 0 and "MemoryError" not in claimed.stderr.decode()
    assert "skipped a message of 99,999,999,999 bytes" in claimed.stderr.decode()


def test_positions_convert_between_characters_and_code_units():
    from nnspec.lsp import from_units, to_units

    lines = ["a é😀 b"]
    assert [to_units(lines, 0, c) for c in range(6)] == [0, 1, 2, 3, 5, 6]
    assert [from_units(lines, 0, u) for u in (0, 3, 5, 6)] == [0, 3, 4, 5]
    assert to_units(lines, 0, 5, "utf-8") == 9 and to_units(lines, 0, 5, "utf-32") == 5


def test_without_pygls_lsp_is_r104():
    code = (
        "import sys; sys.modules['pygls'] = None; from nnspec.cli import main; "
        "sys.exit(main(['lsp']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert "error[R104]" in done.stderr and "nnspec[lsp]" in done.stderr
