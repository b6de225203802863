"""Constants and arithmetic: `let` names and expressions -> plain syntax values, at check time.

A tiny language of its own; nothing is ever evaluated as Python code. Numbers combine by
`+ - * / //` and unary `-` as Python's int and float do (`/` always gives a real, `//` floors,
integers stay integers under `+ - * //`). A name stands for a constant or a block parameter of the
scope it is written in: a block's parameters and constants, then the constants of the network or
block, then those of its file (a constant may shadow one of an outer scope). Constants may refer to
each other in any order; a cycle is an error.

`evaluate(value, scope)` returns the value with every name of the scope replaced and every
expression computed (a `Computed` number, spanning the expression as written); a bare name the
scope does not know stays a symbol (`relu`, `max`, `same`). Errors raise `SpecError` at the
expression: E220 (division by zero, out of range), E222 (an operand that is not a number), E320
(an unknown name in an expression); `Scope.check` reports E321 (a constant defined twice) and
E322 (a cycle of constants).
"""

from __future__ import annotations

import math
import operator
from dataclasses import replace

from . import syntax as s
from .errors import SpecError, did_you_mean

UNKNOWN = "<parameter> "  # a block parameter without a value (no name can start so)
LIMIT = 10**308  # past this a number is not a size or a rate but a mistake (and ints grow)

_APPLY = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
}


@s.node
class Computed(s.Number):
    """A number that an expression gives; `text` is the expression as written (`4 * d`)."""

    text: str


class Scope:
    """The names visible where a value is written: parameters (values already evaluated where
    the block is used), this scope's constants (evaluated when first asked for), then `parent`'s.
    """

    def __init__(
        self,
        lets=(),
        parent: Scope | None = None,
        params: dict[str, s.Value] | None = None,
        owner: str = "",
    ) -> None:
        self.parent = parent
        self.params = params or {}
        self.lets: dict[str, s.Let] = {}
        self.values: dict[str, s.Value] = {}
        self.failed: dict[str, SpecError] = {}
        self.errors: list[SpecError] = []  # definitions: a constant defined twice
        self._open: list[str] = []  # constants being evaluated, outermost first
        for let in lets:
            name = let.name.text
            if name in self.params:
                self.errors.append(
                    SpecError(
                        "E321",
                        f"'{name}' is a parameter of block '{owner}'; a constant cannot take "
                        "its name",
                        let.name.span,
                        "rename the constant",
                    )
                )
            elif name in self.lets:
                self.errors.append(
                    SpecError(
                        "E321",
                        f"constant '{name}' is defined twice "
                        f"(first at {self.lets[name].name.span})",
                        let.name.span,
                        "rename one of them, or remove one",
                    )
                )
            else:
                self.lets[name] = let

    def names(self) -> set[str]:
        """Every name visible here."""
        own = set(self.params) | set(self.lets)
        return own | self.parent.names() if self.parent else own

    def lookup(self, symbol: s.Symbol) -> s.Value | None:
        """What `symbol` stands for here, or None: a parameter's value as the use wrote it, a
        constant's value at the place the name is written."""
        name = symbol.name
        if name in self.params:
            return self.params[name]
        if name in self.lets:
            return replace(self.constant(name, symbol), span=symbol.span)
        return self.parent.lookup(symbol) if self.parent is not None else None

    def constant(self, name: str, at: s.Node | None = None) -> s.Value:
        """The value of this scope's constant `name` (raises its error if it has one)."""
        if name in self.values:
            return self.values[name]
        if name in self.failed:
            raise self.failed[name]
        let = self.lets[name]
        if name in self._open:  # a cycle through another scope's lookup: said as one
            self._cycle(self._open[self._open.index(name) :] + [name])
            raise self.failed[name]
        self._open.append(name)
        try:
            value = evaluate(let.value, self)
        except SpecError as error:
            self.failed.setdefault(name, error)
            raise self.failed[name] from None
        finally:
            self._open.pop()
        self.values[name] = value
        return value

    def check(self) -> list[SpecError]:
        """Every mistake in this scope's own constants (each evaluated once, even if unused).

        They are evaluated in an order where what a constant uses comes first (a post-order
        walk, without recursion, that also finds the cycles), so that a long chain of constants
        does not nest evaluations (and the stack) as deep as the chain."""
        errors = list(self.errors)
        for name in self._order():
            try:
                self.constant(name)
            except SpecError as error:
                errors.extend(e for e in error.errors if e not in errors)
        return errors

    def _order(self) -> list[str]:
        """This scope's constants, each after those it uses; a cycle found on the way is marked
        failed (E322) for every constant on it."""
        uses = {
            name: [n for n in _names(let.value) if n in self.lets]
            for name, let in self.lets.items()
        }
        order: list[str] = []
        seen: set[str] = set()
        for root in self.lets:
            if root in seen:
                continue
            seen.add(root)
            path, stack = [root], [iter(uses[root])]
            while stack:
                following = next(stack[-1], None)
                if following is None:
                    stack.pop()
                    order.append(path.pop())
                elif following in path:
                    self._cycle(path[path.index(following) :] + [following])
                elif following not in seen:
                    seen.add(following)
                    path.append(following)
                    stack.append(iter(uses[following]))
        return order

    def _cycle(self, cycle: list[str]) -> None:
        if cycle[0] in self.failed:
            return
        message = (
            f"constant '{cycle[0]}' is defined by itself"
            if len(cycle) == 2
            else "constants refer to each other in a cycle: "
            + " -> ".join(cycle if len(cycle) <= 10 else cycle[:4] + ["..."] + cycle[-3:])
        )
        error = SpecError(
            "E322",
            message,
            self.lets[cycle[0]].name.span,
            "give one of them a number: 'let d = 32'",
        )
        for member in cycle:
            self.failed.setdefault(member, error)


def _names(value: s.Value) -> list[str]:
    """The names a value mentions, in order (a parsed expression is at most 100 deep)."""
    if isinstance(value, s.Symbol):
        return [value.name]
    if isinstance(value, s.Binary):
        return _names(value.left) + _names(value.right)
    if isinstance(value, s.Negate):
        return _names(value.operand)
    if isinstance(value, s.ListValue):
        return [n for item in value.items for n in _names(item)]
    if isinstance(value, s.Call):
        return [n for arg in value.args for n in _names(arg.value)]
    if isinstance(value, s.DictValue):
        return [n for item in value.items for n in _names(item.value)]
    return []


def evaluate(value: s.Value, scope: Scope) -> s.Value:
    """`value` with the scope's names replaced and its arithmetic done; raise `SpecError`."""
    if isinstance(value, (s.Number, s.String, s.Open)):
        return value
    if isinstance(value, s.Symbol):
        found = scope.lookup(value)
        return value if found is None else found
    if isinstance(value, s.ListValue):
        items = tuple(evaluate(item, scope) for item in value.items)
        if all(a is b for a, b in zip(items, value.items, strict=True)):
            return value
        return s.ListValue(span=value.span, items=items)
    if isinstance(value, s.Call):
        args = tuple(evaluate_arg(arg, scope) for arg in value.args)
        if all(a is b for a, b in zip(args, value.args, strict=True)):
            return value
        return s.Call(span=value.span, name=value.name, args=args)
    if isinstance(value, s.DictValue):  # the values evaluated, the names kept
        pairs = tuple(evaluate_arg(item, scope) for item in value.items)
        if all(a is b for a, b in zip(pairs, value.items, strict=True)):
            return value
        return s.DictValue(span=value.span, items=pairs)
    if isinstance(value, s.Negate):
        operand = _operand(value.operand, value, scope)
        if operand is None:
            return s.Symbol(span=value.span, name=UNKNOWN + s.show(value))
        return _number(-operand, value)
    left = _operand(value.left, value, scope)
    right = _operand(value.right, value, scope)
    if value.op in ("/", "//") and right == 0:  # known even where the left side waits
        zero = s.show(value.right)
        raise SpecError(
            "E220",
            f"division by zero: '{s.show(value)}'",
            value.span,
            "divide by a number other than 0"
            if isinstance(value.right, s.Number)
            else f"'{zero}' is 0 here; divide by a number other than 0",
        )
    if left is None or right is None:
        return s.Symbol(span=value.span, name=UNKNOWN + s.show(value))
    return _number(_APPLY[value.op](left, right), value)


def evaluate_arg(arg: s.Arg, scope: Scope) -> s.Arg:
    if type(arg.value) is s.Number:  # the most common value: nothing to do
        return arg
    value = evaluate(arg.value, scope)
    return arg if value is arg.value else s.Arg(span=arg.span, key=arg.key, value=value)


def _operand(node: s.Value, expression: s.Value, scope: Scope) -> int | float | None:
    """The number an operand of `expression` stands for; None for a parameter not yet known."""
    value = evaluate(node, scope)
    if isinstance(value, s.Number):
        return value.value
    if isinstance(value, s.Symbol) and value.name.startswith(UNKNOWN):
        return None
    shown, expr = s.show(node), s.show(expression)
    if isinstance(node, s.Symbol) and value is node and node.name not in ("true", "false"):
        known = sorted(n for n in scope.names() if not n.startswith(UNKNOWN))
        hint = did_you_mean(node.name, known, "constants") or (
            f"define it with 'let {node.name} = ...' in the file, the network or the block"
        )
        raise SpecError("E320", f"unknown name '{node.name}' in '{expr}'", node.span, hint)
    if isinstance(node, s.Symbol) and value is not node:
        what = f"'{shown}' stands for {s.show(value)}, not a number"
    else:
        kind = {
            s.String: "a string",
            s.ListValue: "a list",
            s.Call: "a call",
            s.Open: "an open size",
        }
        what = f"'{shown}' is {kind.get(type(value), 'not a number')}"
    raise SpecError(
        "E222",
        f"arithmetic needs numbers: {what} in '{expr}'",
        node.span,
        "only numbers, and constants or block parameters that stand for numbers, "
        "combine with + - * / //",
    )


def _number(result: int | float, expression: s.Value) -> Computed:
    if (isinstance(result, float) and not math.isfinite(result)) or abs(result) > LIMIT:
        raise SpecError(
            "E220",
            f"'{s.show(expression)}' gives a number out of range",
            expression.span,
            "numbers must be finite and below about 1e308",
        )
    return Computed(span=expression.span, value=result, text=s.show(expression))
