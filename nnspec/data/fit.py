"""Shape a dataset's examples for one network: its inputs (docs/backends.md's layouts) and its
output.

A dataset's examples take the shape of the network's input when the sizes agree: `digits`
(`[8, 8]` per example) feeds `input x: 64` as `[N, 64]`, `input image: [1, 8, 8]` as
`[N, 1, 8, 8]` and `input row: 8, seq` as eight steps of a row, `[N, 8, 8]`.
"""

from __future__ import annotations

import math

import numpy as np

from ..kinds import Shape
from ..program import Output, Program
from .examples import F32, DataError, Graph


def show(dims: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


# ---- inputs ---------------------------------------------------------------------------------
def input_steps(program: Program, name: str) -> tuple[bool, int | None]:
    """Whether input `name` is a sequence (`seq`), and the steps it fixes
    (`seq=T` or `steps=N`; None: any)."""
    options = program.layer(name).options
    if options.steps is not None:
        return False, options.steps
    return (
        options.seq is not False,
        None if options.seq is True or options.seq is False else options.seq,
    )


def fit_input(
    x: np.ndarray, timed: bool, program: Program, name: str, what: str
) -> tuple[np.ndarray, bool]:
    """Examples `[N, *example]` (`[N, T, F]` when `timed`) as input `name` takes them, and whether
    the result has a time axis; the tokens an embedding reads from it checked (E506)."""
    _check_tokens(x, program, name, what)
    return _shaped(x, timed, program, name, what)


def _check_tokens(x: np.ndarray, program: Program, name: str, what: str) -> None:
    """An embedding fed by input `name` reads whole numbers from 0 to its vocabulary - 1 (and a
    markov layer with `index` from 0 to its states - 1)."""
    for layer in program.layers:
        if all(i.source != name for i in layer.inputs):
            continue
        if layer.kind.name == "markov" and layer.options.index:
            _check_states(x, layer, what)
        if layer.kind.name != "embedding":
            continue
        vocabulary = layer.options.vocabulary
        bad = ~np.isfinite(x) | (x != np.round(x)) | (x < 0) | (x >= vocabulary)
        if not bad.any():
            continue
        token = x[bad].flat[0]
        whole = np.isfinite(token) and token == round(token) and token >= 0
        raise DataError(
            "E506",
            f"{what} holds the token {token:g}, but embedding '{layer.name}' reads whole "
            f"numbers from 0 to {vocabulary - 1} (vocabulary = {vocabulary})",
            f"give '{layer.name}' a vocabulary of {int(x[np.isfinite(x)].max()) + 1}"
            if whole
            else "tokens are whole numbers counted from 0: map them to 0, 1, 2, ...",
        )


def _check_states(x: np.ndarray, layer, what: str) -> None:
    """A markov layer with `index` reads state numbers from 0 to its states - 1 (E506)."""
    states = layer.options.states
    bad = ~np.isfinite(x) | (x != np.round(x)) | (x < 0) | (x >= states)
    if bad.any():
        raise DataError(
            "E506",
            f"{what} holds the state number {x[bad].flat[0]:g}, but markov '{layer.name}' is "
            f"a chain of {states} states, numbered 0 to {states - 1}",
            "number the states 0, 1, 2, ... in the data, or give the chain as many states as "
            "there are",
        )


def _shaped(
    x: np.ndarray, timed: bool, program: Program, name: str, what: str
) -> tuple[np.ndarray, bool]:
    """`fit_input`'s reshaping: `[N, *dims]`, or `[N, T, *dims]` for a `seq` input (and for a
    `steps=N` input given a value per step)."""
    dims = program.layer(name).shape.dims
    size = math.prod(dims)
    sequence, steps = input_steps(program, name)
    n, example = len(x), x.shape[1:]
    if timed and (sequence or example[0] == steps) and math.prod(example[1:]) == size:
        _check_steps(example[0], steps, name, what)
        return x.reshape(n, example[0], *dims), True
    total = math.prod(example)
    if not sequence and total == size:
        return x.reshape(n, *dims), False
    if sequence and not timed and total % size == 0:
        _check_steps(total // size, steps, name, what)
        return x.reshape(n, total // size, *dims), True
    takes = _takes(dims, sequence, steps)
    raise MisShapen(
        "E506",
        f"{what} gives {_describe(example, timed)} per example, but input '{name}' takes {takes}",
        _input_hint(name, example, timed),
        f"give each example as input '{name}' takes it ({takes}), as the network was trained on",
    )


class MisShapen(DataError):
    """Examples whose shape the input does not take (E506); `hint` says how to declare the input
    for them (training data), `given` how to give them (a trained network's input)."""

    def __init__(self, code: str, message: str, hint: str, given: str):
        super().__init__(code, message, hint)
        self.given = given


def _check_steps(length: int, steps: int | None, name: str, what: str) -> None:
    if steps is not None and length != steps:
        raise DataError(
            "E506",
            f"{what} gives sequences of {length} steps, but input '{name}' takes {steps}",
            f"declare 'input {name}: ..., seq' to take any length, or seq={length}",
        )


def _describe(example: tuple[int, ...], timed: bool) -> str:
    if timed:
        return f"{example[0]} steps of {show(example[1:])}"
    count = math.prod(example)
    return (
        f"{show(example)} ({count} value{'s' * (count != 1)})"
        if len(example) > 1
        else show(example)
    )


def _takes(dims: tuple[int, ...], sequence: bool, steps: int | None) -> str:
    if sequence:
        return f"a sequence of {show(dims)}" + (f" ({steps} steps)" if steps else "")
    return show(dims)


def _input_hint(name: str, example: tuple[int, ...], timed: bool) -> str:
    if timed:
        return f"declare 'input {name}: {math.prod(example[1:])}, seq'"
    size = math.prod(example)
    return f"declare 'input {name}: {size}' (or another shape of {size} values)"


# ---- targets --------------------------------------------------------------------------------
def fit_classes(
    y: np.ndarray,
    classes: int,
    output: Output,
    what: str,
    steps: int | None = None,
    labels: list[str] | None = None,
) -> tuple[np.ndarray, int]:
    """Class indices `[N, *items]` for output `[*items, K]`: int64 `[N, *items]` when K >= classes;
    one output unit for two classes takes the class as a float `[N, *items, 1]`.
    An output with a value at every step takes a class at every step: `[N, T, *items]`, T the
    input's `steps` when it has a time axis. Also gives K (or 2). `labels`, the classes' labels
    when they have some (text in a csv), are named when the classes do not fit."""
    dims, items = output.shape.dims, y.shape[1:]
    if output.shape.timed:
        if not items:
            raise DataError(
                "E506",
                f"{what} has one class per example, but '{output.name}' gives a value at every "
                "step",
                f"write 'output {output.name}: last' or 'output {output.name}: mean', or give "
                "a class for every step ([examples, steps])",
            )
        given, items = items[0], items[1:]
        wanted = output.shape.steps or steps
        if wanted is not None and given != wanted:
            raise DataError(
                "E506",
                f"{what} has a class for each of {given} steps, but '{output.name}' gives "
                f"{wanted} steps",
                f"give a class for each of the {wanted} steps",
            )
    if dims[:-1] != items:
        wanted = show((*items, max(classes, dims[-1])))
        raise DataError(
            "E506",
            f"{what} has one class per {'example' if not items else 'item of ' + show(items)}, "
            f"but '{output.name}' gives {show(dims)}",
            f"flatten before the last layer ('flatten f'), so that '{output.name}' gives {wanted}"
            if len(dims) > len(items) + 1 and not items
            else f"end the network with {classes} units: 'dense {output.name}: {classes}'",
        )
    if dims[-1] == 1 and classes <= 2:
        return y[..., None].astype(F32), 2
    if dims[-1] < classes and labels is not None:
        named = ", ".join(f"'{label}'" for label in labels[:20])
        raise DataError(
            "E506",
            f"{what} has {classes} classes ({named}{', ...' * (classes > 20)}), but "
            f"'{output.name}' gives {dims[-1]} value{'s' * (dims[-1] > 1)}",
            f"give '{output.name}' {classes} units (one per class)"
            + (", or 1 unit for two classes" if classes == 2 else ""),
        )
    if dims[-1] < classes:
        lowest = int(y.min()) if y.size else 0
        raise DataError(
            "E506",
            f"{what} has {classes} classes, but '{output.name}' gives {dims[-1]} "
            f"value{'s' * (dims[-1] > 1)}",
            f"classes count from 0: the labels run from {lowest} to {classes - 1}, so "
            f"'{output.name}' needs {classes} units; subtract {lowest} from them for {dims[-1]}"
            if lowest > 0 and classes - lowest <= dims[-1]
            else f"give '{output.name}' {classes} units (one per class)"
            + (", or 1 unit for two classes" if classes == 2 else ""),
        )
    return y, dims[-1]


def fit_values(
    y: np.ndarray, per_step: bool, output: Output, what: str, steps: int | None = None
) -> np.ndarray:
    """Target values `[N, *target]` (`[N, T, *target]` when `per_step`) shaped like the output:
    `[N, *dims]`, or `[N, T, *dims]` for an output with a value at every step, T the input's
    `steps` when it has a time axis. An output that keeps the `last` step (or a network without
    time) takes the last step's target, `mean` the mean."""
    dims = output.shape.dims
    if per_step and y.ndim < 2:
        per_step = False  # one value per example: said below for an output at every step
    if per_step:
        if output.shape.timed:
            wanted = output.shape.steps or steps
            if wanted is not None and y.shape[1] != wanted:
                raise DataError(
                    "E506",
                    f"{what} has targets for {y.shape[1]} steps, but '{output.name}' gives "
                    f"{wanted} steps",
                    f"give a target for each of the {wanted} steps ([examples, {wanted}, ...])",
                )
            return _reshape(y, (y.shape[1], *dims), y.shape[2:], output, what, "per step ")
        y = y.mean(axis=1) if output.reduce == "mean" else y[:, -1]
    elif output.shape.timed:
        raise DataError(
            "E506",
            f"{what} has one target per sequence, but '{output.name}' gives a value at every step",
            f"write 'output {output.name}: last'",
        )
    return _reshape(y, dims, y.shape[1:], output, what, "")


def _reshape(
    y: np.ndarray,
    shape: tuple[int, ...],
    given: tuple[int, ...],
    output: Output,
    what: str,
    step: str,
) -> np.ndarray:
    if math.prod(given) != math.prod(output.shape.dims):
        raise DataError(
            "E506",
            f"{what} has {step}targets of {show(given)}, but '{output.name}' gives "
            f"{show(output.shape.dims)}",
            f"give '{output.name}' {math.prod(given)} unit{'s' * (math.prod(given) > 1)}",
        )
    return y.reshape(len(y), *shape).astype(F32)


# ---- graphs ---------------------------------------------------------------------------------
def graph_inputs(graph: Graph, program: Program, what: str) -> dict[str, np.ndarray]:
    """The one graph as a batch of one: the input that feeds a layer's `adjacency` port gets the
    adjacency `[1, nodes, nodes]`, the other input the node features `[1, nodes, F]`."""
    adjacency = {
        link.source
        for layer in program.layers
        for link in layer.inputs
        if link.port == "adjacency" and link.source in program.inputs
    }
    features = [name for name in program.inputs if name not in adjacency]
    if len(adjacency) != 1 or len(features) != 1:
        raise DataError(
            "E506",
            f"{what} is one graph: the network needs one input for the node features and one that "
            f"feeds a layer's adjacency port; it has {', '.join(repr(n) for n in program.inputs)}",
            "input features: [34, 34], input adjacency: [34, 34], adjacency -> g.adjacency",
        )
    arrays = {features[0]: graph.features, next(iter(adjacency)): graph.adjacency}
    for name, array in arrays.items():
        shape: Shape = program.layer(name).shape
        if shape.timed or shape.dims != array.shape:
            raise DataError(
                "E506",
                f"{what} gives input '{name}' {show(array.shape)}, but it is declared {shape}",
                f"declare 'input {name}: {show(array.shape)}'",
            )
    return {name: array[None] for name, array in arrays.items()}
