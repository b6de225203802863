"""The syntax tree: one frozen dataclass per construct of the language, each with its span.

It says what the file says and nothing more: names are not yet resolved, options
not yet validated, blocks not yet expanded. `nnspec check --dump syntax` prints it.

Dataclasses with slots, not pydantic models: only the parser makes these, from tokens it has
already checked, so validating each node checked nothing new. A pydantic node took 1.5 µs to
make (0.9 µs here) and kept a `__dict__` and its set of fields beside it: the syntax tree of a
10,000-layer chain took 82 MB (22 MB here), and its whole check 0.2 to 0.4 s more of about 2 s.
A changed copy is `dataclasses.replace(node, field=value)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import Span

node = dataclass(frozen=True, slots=True, kw_only=True)  # a syntax node: never changed once made


@node
class Node:
    span: Span


@node
class Name(Node):
    text: str


# ---- values ---------------------------------------------------------------------
@node
class Number(Node):
    value: int | float


@node
class String(Node):
    value: str


@node
class Symbol(Node):
    """A bare name used as a value: `tanh`, `max`, `full`, `true`, a block parameter."""

    name: str


@node
class Open(Node):
    """`?`: a size left open, which a block's input takes from where the block is used."""


@node
class ListValue(Node):
    items: tuple[Value, ...]


@node
class DictValue(Node):
    """`{name: value, ...}`: a value per name, such as a loss per output; each item an `Arg`
    with its key."""

    items: tuple[Arg, ...]


@node
class Call(Node):
    """`name(args)`: `sgd(lr=0.5)`, `leaky_relu(alpha=0.1)`, `csv("f.csv", target="y")`."""

    name: Name
    args: tuple[Arg, ...]


@node
class Binary(Node):
    """`left OP right`: arithmetic, evaluated at check time (`nnspec.constants`)."""

    op: Literal["+", "-", "*", "/", "//"]
    left: Value
    right: Value
    depth: int = 1  # operators on the longest path down, this one included (parse bounds it)


@node
class Negate(Node):
    """`-operand` (a minus before a number alone is part of the number)."""

    operand: Value
    depth: int = 1


Value = Number | String | Symbol | Open | ListValue | DictValue | Call | Binary | Negate


@node
class Arg(Node):
    """A positional value (`key` is None), a `key=value` option, or a flag (a bare symbol)."""

    key: Name | None
    value: Value


# ---- network and block bodies ------------------------------------------------------
@node
class Layer(Node):
    kind: Name
    name: Name
    args: tuple[Arg, ...]


@node
class Endpoint(Node):
    layer: Name
    port: Name | None


@node
class Link(Node):
    """One link of a connection statement; the span is its arrow."""

    source: Endpoint
    target: Endpoint
    delayed: bool


@node
class Connection(Node):
    """`a, b -> c ~> d`: every link it makes, in the order they appear."""

    links: tuple[Link, ...]


@node
class Let(Node):
    """`let NAME = value`: a named constant of a file, a network or a block."""

    name: Name
    value: Value


@node
class OutputItem(Node):
    name: Name
    reduce: Name | None


@node
class Output(Node):
    items: tuple[OutputItem, ...]


Statement = Layer | Connection | Output | Let


# ---- files ---------------------------------------------------------------------------
@node
class Use(Node):
    path: String


@node
class Block(Node):
    name: Name
    params: tuple[Name, ...]
    body: tuple[Statement, ...]


@node
class Network(Node):
    name: Name
    description: String | None
    body: tuple[Statement, ...]


@node
class Setting(Node):
    key: Name
    value: Value


@node
class Expect(Node):
    metric: Name
    op: Literal[">=", "<=", ">", "<"]
    value: Value


@node
class Train(Node):
    network: Name | None
    settings: tuple[Setting, ...]
    expects: tuple[Expect, ...]


@node
class SpecFile:
    """Everything one file says, in file order."""

    path: str
    uses: tuple[Use, ...]
    blocks: tuple[Block, ...]
    networks: tuple[Network, ...]
    trains: tuple[Train, ...]
    lets: tuple[Let, ...] = ()


def plain(value: Value):
    """A value as plain Python: numbers, strings, bools, tuples for lists; a symbol as its name;
    a dict as {name: value}; a call as (name, {key or position: value}); `?` as None."""
    if isinstance(value, (Number, String)):
        return value.value
    if isinstance(value, Open):
        return None
    if isinstance(value, Symbol):
        return {"true": True, "false": False}.get(value.name, value.name)
    if isinstance(value, ListValue):
        return tuple(plain(item) for item in value.items)
    if isinstance(value, DictValue):
        return {item.key.text: plain(item.value) for item in value.items}
    if isinstance(value, (Binary, Negate)):  # not evaluated: only ever seen in a message
        return show(value)
    return value.name.text, {
        arg.key.text if arg.key else str(i): plain(arg.value) for i, arg in enumerate(value.args)
    }


def show(value: Value) -> str:
    """A value as it would be written in a spec."""
    if isinstance(value, Number):
        return repr(value.value)
    if isinstance(value, String):
        return '"' + value.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Symbol):
        return value.name
    if isinstance(value, Open):
        return "?"
    if isinstance(value, ListValue):
        return "[" + ", ".join(show(item) for item in value.items) + "]"
    if isinstance(value, DictValue):
        return "{" + ", ".join(f"{i.key.text}: {show(i.value)}" for i in value.items) + "}"
    if isinstance(value, Binary):
        tight = _TIGHTNESS[value.op]
        # left-associative: a right operand as tight as its operator needs parentheses
        left = _operand(value.left, tight)
        right = _operand(value.right, tight + 1)
        return f"{left} {value.op} {right}"
    if isinstance(value, Negate):
        return "-" + _operand(value.operand, 3)
    return f"{value.name.text}({', '.join(show_arg(arg) for arg in value.args)})"


_TIGHTNESS = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2}


def _operand(value: Value, tight: int) -> str:
    """`value` shown as an operand that must bind at least as `tight`ly (parenthesised if not)."""
    if isinstance(value, Binary) and _TIGHTNESS[value.op] < tight:
        return f"({show(value)})"
    return show(value)


def show_arg(arg: Arg) -> str:
    return f"{arg.key.text}={show(arg.value)}" if arg.key else show(arg.value)


def dump(spec: SpecFile) -> str:
    """The syntax tree as indented text, one construct per line with its position."""
    out = [f"file {spec.path}"]
    for use in spec.uses:
        out.append(f"  use {show(use.path)}  @{_at(use)}")
    out.extend(f"  let {let.name.text} = {show(let.value)}  @{_at(let)}" for let in spec.lets)
    for block in spec.blocks:
        out.append(
            f"  block {block.name.text}({', '.join(p.text for p in block.params)})  @{_at(block)}"
        )
        out.extend(_dump_body(block.body))
    for network in spec.networks:
        description = f" {show(network.description)}" if network.description else ""
        out.append(f"  network {network.name.text}{description}  @{_at(network)}")
        out.extend(_dump_body(network.body))
    for train in spec.trains:
        target = f" {train.network.text}" if train.network else ""
        out.append(f"  train{target}  @{_at(train)}")
        out.extend(f"    setting {s.key.text} = {show(s.value)}  @{_at(s)}" for s in train.settings)
        out.extend(
            f"    expect {e.metric.text} {e.op} {show(e.value)}  @{_at(e)}" for e in train.expects
        )
    return "\n".join(out)


def _dump_body(body: tuple[Statement, ...]) -> list[str]:
    out = []
    for statement in body:
        if isinstance(statement, Layer):
            args = ", ".join(show_arg(arg) for arg in statement.args)
            out.append(
                f"    layer {statement.kind.text} "
                f"{statement.name.text}{': ' + args if args else ''}  @{_at(statement)}"
            )
        elif isinstance(statement, Let):
            shown = show(statement.value)
            out.append(f"    let {statement.name.text} = {shown}  @{_at(statement)}")
        elif isinstance(statement, Connection):
            for link in statement.links:
                out.append(
                    f"    link {_endpoint(link.source)} {'~>' if link.delayed else '->'} "
                    f"{_endpoint(link.target)}  @{_at(link)}"
                )
        else:
            items = ", ".join(
                i.name.text + (f": {i.reduce.text}" if i.reduce else "") for i in statement.items
            )
            out.append(f"    output {items}  @{_at(statement)}")
    return out


def _endpoint(endpoint: Endpoint) -> str:
    return endpoint.layer.text + (f".{endpoint.port.text}" if endpoint.port else "")


def _at(node: Node) -> str:
    return f"{node.span.line}:{node.span.column}"
