"""The user's data files: `csv("file.csv", target="label")` and `npz("file.npz")`, read into
`Examples`.

Every problem becomes a `DataError` that names the file, and the line and column (csv) or the
array and example (npz): E505 when the file cannot be read or holds something other than finite
numbers, E506 when it lacks what the spec asks for. Each file is opened once, and only when it is a
regular file within `DATA_LIMIT` (or `JSON_LIMIT`): a FIFO or a device is refused before it is
read (nnspec.reading). Nothing in a data file is run: an npz is loaded without pickle, and an
array of Python objects is refused from its header, before its contents are read.
"""

from __future__ import annotations

import csv
import io
import json
import lzma
import math
import os
import warnings
import zipfile
import zlib
from typing import BinaryIO

import numpy as np

from ..errors import NnspecError, did_you_mean
from ..reading import DATA_LIMIT, JSON_LIMIT, ReadError, open_regular, read_regular, size_text
from ..train_section import csv_header
from .examples import F32, DataError, Examples

CSV_HINT = "every row holds one number per column; fill in or drop missing values"
F32_MAX = float(np.finfo(F32).max)
RANGE_TEXT = "beyond the range of the 32-bit floats that networks compute in (about 3.4e38)"
RANGE_HINT = "scale the values down (standardise them, or take their logarithm)"
CSV_TEXT_HINT = "a csv file is UTF-8 text with a header row"
NPZ_HINT = "save it with numpy.savez(path, x=..., y=...)"


def _open(path: str, shown: str, hint: str | None = None) -> BinaryIO:
    """The data file at `path`, opened once when it is a regular file within `DATA_LIMIT`; every
    refusal is E505 naming it as `shown`."""
    try:
        return open_regular(path, "data file", DATA_LIMIT, "E505", shown=shown)
    except ReadError as error:
        raise _data_error(error, path, shown, hint) from None


def _data_error(error: ReadError, path: str, shown: str, hint: str | None) -> DataError:
    if error.reason == "missing":
        return DataError(
            "E505",
            f"data file '{shown}' is not found",
            hint or f"the path is relative to the spec: nnspec looked for {os.path.abspath(path)}",
        )
    return DataError(error.code, error.message, error.hint)


# ---- csv ------------------------------------------------------------------------------------
def read_csv(
    path: str,
    shown: str,
    target: str | None,
    classify: bool | None,
    features: list[str] | None = None,
    classes: tuple[str, ...] | None = None,
    ignored: tuple[str, ...] = (),
) -> Examples:
    """A csv file with a header row: x `[rows, columns - 1]` (every column but the target, in file
    order; or the `features` named, in their order, when given: then the target column need not
    be there, and is not read), y `[rows]`: class indices when `classify`, else values
    `[rows, 1]`; no y without a target. `classify` None decides by the target column: labels
    that are not all numbers are classes, numbers are values.

    Class labels may be numbers (the class indices themselves) or any text (`setosa`): text
    labels are numbered in the order of the stated `classes` (labels as text: a label missing
    from them is R340), else in sorted order; `info["labels"]` then holds every class's label by
    index. `info` also names x's columns and the target column, so that a trained network's
    inputs can be matched by name later (`nnspec predict`); with `features`, the `ignored`
    columns (a several-output network's targets) may be there too, and are not read."""
    raw = _open(path, shown)
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as file:
        columns = _header(file, shown)
        if target is not None and target not in columns and features is None:
            raise DataError(
                "E506",
                f"data file '{shown}' has no column '{target}'",
                did_you_mean(target, columns, "columns"),
            )
        if features is not None:
            _check_features(columns, features, (target, *ignored) if target else ignored, shown)
        labelled = target is not None and target in columns
        text = columns.index(target) if labelled else None
        table, labels = _numbers(file, shown, columns, text, force_text=classes is not None)
    picked = (
        [columns.index(name) for name in features]
        if features is not None
        else [i for i, column in enumerate(columns) if column != target]
    )
    if not picked:
        raise DataError(
            "E506",
            f"data file '{shown}' has only the target column '{target}', no features",
            "add the columns the network reads",
        )
    x = table[:, picked].astype(F32)
    info: dict[str, object] = {"columns": [columns[i] for i in picked], "target": target}
    if not labelled or features is not None:
        return Examples(x, None, info=info)
    where = _line_of(shown, target, labels)
    if labels is not None:
        labels.check_filled(where)
    if labels is not None and classify is False and not labels.numeric():
        labels.refuse_text(where)
    if labels is not None and classify is not False and (classes or not labels.numeric()):
        indices, known = labels.classes(classes, where)
        return Examples(x, indices, classes=len(known), info={**info, "labels": known})
    y = table[:, text] if labels is None else labels.values(shown, target)
    if not classify:
        return Examples(x, y[:, None].astype(F32), info=info)
    indices = class_indices(y, where)
    return Examples(x, indices, classes=int(indices.max()) + 1, info=info)


def _line_of(shown: str, target: str, labels: Labels | None):
    """`where(row)`: the place of a row's label in messages (its line in the file)."""

    def where(row: int) -> str:
        line = labels.lines[row] if labels is not None else row + 2
        return f"data file '{shown}' line {line}, column '{target}'"

    return where


class Labels:
    """A csv's target column as text, one label a row (`lines`: each row's line in the file)."""

    def __init__(self, texts: list[str], lines: list[int]):
        self.texts, self.lines = texts, lines
        self._numbers = [_number(text) for text in texts]

    def check_filled(self, where) -> None:
        """Every row has a label (E505 at the first that has none)."""
        if "" in self.texts:
            raise DataError("E505", f"{where(self.texts.index(''))} is empty", CSV_HINT)

    def numeric(self) -> bool:
        return all(value is not None for value in self._numbers)

    def values(self, shown: str, target: str) -> np.ndarray:
        """The labels as numbers `[rows]` (all are), each finite and within float32's range."""
        for row, (text, value) in enumerate(zip(self.texts, self._numbers, strict=True)):
            if not math.isfinite(value):
                raise DataError(
                    "E505",
                    f"data file '{shown}' line {self.lines[row]}, column '{target}' holds "
                    f"{text}, not a finite number",
                    CSV_HINT,
                )
        column = np.array(self._numbers, dtype=np.float64)
        return _in_range(column[:, None], shown, [target])[:, 0]

    def refuse_text(self, where) -> None:
        """The labels are values (a regression loss): the first one that is no number is E505."""
        row = next(i for i, value in enumerate(self._numbers) if value is None)
        raise DataError(
            "E505",
            f"{where(row)} holds '{self.texts[row]}', not a number",
            "the loss asks for values; for classes named by text, write loss = cross_entropy "
            "(or leave the loss out)",
        )

    def classes(self, stated: tuple[str, ...] | None, where) -> tuple[np.ndarray, list[str]]:
        """Class indices int64 `[rows]` and the label of each class: in the `stated` order
        (R340 for a label not there), else sorted."""
        known = list(stated) if stated is not None else sorted(set(self.texts), key=_label_order)
        index = {label_key(label): i for i, label in enumerate(known)}
        indices = np.empty(len(self.texts), dtype=np.int64)
        for row, text in enumerate(self.texts):
            found = index.get(label_key(text))
            if found is None:
                # found while the data is read: no position in the spec (docs/errors.md)
                raise NnspecError(
                    "R340",
                    f"{where(row)} holds the label '{text}', which classes does not list "
                    f"(it lists {show_labels(known)})",
                    f"add '{text}' to the train section's classes = [...] (one per output unit), "
                    "or correct the label in the file",
                )
            indices[row] = found
        return indices, known


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _label_order(label: str) -> tuple:
    """Sorted order of labels: numbers by value (2 before 10), then text as Python sorts it."""
    value = _number(label)
    return (0, value, label) if value is not None and math.isfinite(value) else (1, 0.0, label)


def label_key(label: str) -> str:
    """A label as it is matched with the stated classes: its text, and a number by its value
    (`1`, `1.0` and `01` are one class)."""
    value = _number(label)
    if value is None or not math.isfinite(value):
        return label
    return str(int(value)) if value == int(value) else repr(value)


def show_labels(labels: list[str], most: int = 20) -> str:
    """`'a', 'b', 'c'`, the first `most` of them and how many more."""
    shown = ", ".join(f"'{label}'" for label in labels[:most])
    return shown + (f" and {len(labels) - most} more" if len(labels) > most else "")


def name_classes(examples: Examples, stated: tuple[str, ...], what: str) -> Examples:
    """Numbered classes (an npz's integers, a built-in dataset's) named by the stated `classes`
    in order: class 0 is the first. A class with no name there is R340."""
    if examples.y is None or examples.classes is None or "labels" in examples.info:
        return examples
    if examples.classes > len(stated):
        raise NnspecError(
            "R340",
            f"{what} has {examples.classes} classes (0 to {examples.classes - 1}), but classes "
            f"names {len(stated)}: {show_labels(list(stated))}",
            f"name every class, in order from class 0: classes = [{', '.join(stated)}, ...]",
        )
    return Examples(
        examples.x,
        examples.y,
        classes=len(stated),
        timed=examples.timed,
        per_step=examples.per_step,
        named=examples.named,
        named_targets=examples.named_targets,
        info={**examples.info, "labels": list(stated)},
    )


def _check_features(columns: list[str], features: list[str], targets: tuple, shown: str):
    """The header of an input file read for a network trained on `features` (and `targets`):
    every feature there, in any order; the targets may be there (they are not read); nothing
    else."""
    missing = [name for name in features if name not in columns]
    unknown = [name for name in columns if name not in features and name not in targets]
    if not missing and not unknown:
        return
    trained = ", ".join(f"'{name}'" for name in features)
    misfits = [f"it has no column {_names(missing)}"] if missing else []
    misfits += [f"its column {_names(unknown)} is not one the network was trained on"] * bool(
        unknown
    )
    raise DataError(
        "E506",
        f"data file '{shown}' does not match the columns the network was trained on: "
        + "; ".join(misfits),
        f"the network reads the columns {trained} (in any order; the weights file records "
        f"them){_ignoring(targets)}: name the columns so",
    )


def _ignoring(targets: tuple) -> str:
    """', and ignores the target 'label'' (or the targets ...) for E506's hint."""
    if not targets:
        return ""
    return f", and ignores the target{'s' * (len(targets) > 1)} {_names(list(targets))}"


def _names(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _header(file: io.TextIOWrapper, shown: str) -> list[str]:
    """The column names of the header row, from the start of `file`."""
    try:
        header = csv_header(file)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(
            "E505",
            f"cannot read data file '{shown}': {error}",
            getattr(error, "hint", CSV_TEXT_HINT),
        ) from None
    if header is None:
        raise DataError(
            "E505",
            f"data file '{shown}' is empty",
            "a csv file starts with a header row naming its columns",
        )
    return header


def _numbers(
    file: io.TextIOWrapper,
    shown: str,
    columns: list[str],
    text: int | None = None,
    force_text: bool = False,
) -> tuple[np.ndarray, Labels | None]:
    """The rows below the header (`file` stands after it) as `[rows, columns]` float64, every
    value finite; column `text` (the target, when there is one) may hold text: when it does (or
    `force_text`), it comes back as `Labels` too, and its values in the table are NaN.

    NumPy's reader first; when it fails or finds NaN or infinity, a careful pass from the start
    finds the line, and stops there."""
    if not force_text:
        try:
            with warnings.catch_warnings():
                # "input contained no data": _scan says it better
                warnings.simplefilter("ignore", UserWarning)
                table = np.loadtxt(file, delimiter=",", ndmin=2, comments=None, quotechar='"')
            if table.shape[1:] == (len(columns),) and len(table) and np.isfinite(table).all():
                return _in_range(table, shown, columns), None
        except (ValueError, OSError, UnicodeDecodeError):
            pass
    table, labels = _scan(file, shown, columns, text)
    return _in_range(table, shown, columns), labels


def _in_range(table: np.ndarray, shown: str, columns: list[str]) -> np.ndarray:
    """`table` `[rows, columns]`, every value within float32's range (the networks compute in
    float32: a larger value would become infinity)."""
    large = np.abs(table) > F32_MAX
    if large.any():
        row, column = (int(i) for i in np.argwhere(large)[0])
        raise DataError(
            "E505",
            f"data file '{shown}' line {row + 2}, column '{columns[column]}' holds "
            f"{table[row, column]:g}, {RANGE_TEXT}",
            RANGE_HINT,
        )
    return table


def _scan(
    file: io.TextIOWrapper, shown: str, columns: list[str], text: int | None
) -> tuple[np.ndarray, Labels | None]:
    rows, texts, lines = [], [], []
    try:
        file.seek(0)
        reader = csv.reader(file)
        next(reader)
        for row in reader:
            if any(value.strip() for value in row):
                where = f"data file '{shown}' line {reader.line_num}"
                rows.append(_row(row, columns, where, text))
                if text is not None:
                    texts.append(row[text].strip())
                    lines.append(reader.line_num)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(
            "E505",
            f"cannot read data file '{shown}': {error}",
            getattr(error, "hint", CSV_TEXT_HINT),
        ) from None
    if not rows:
        raise DataError(
            "E505",
            f"data file '{shown}' has a header but no rows of data",
            "add one row per example below the header",
        )
    return np.array(rows), Labels(texts, lines) if text is not None else None


def _row(row: list[str], columns: list[str], where: str, text: int | None) -> list[float]:
    """One row's numbers; column `text` is read as text (NaN here)."""
    if len(row) != len(columns):
        raise DataError(
            "E505",
            f"{where} has {len(row)} values, but the header names {len(columns)} columns",
            CSV_HINT,
        )
    values = []
    for i, (column, value_text) in enumerate(zip(columns, row, strict=True)):
        value_text = value_text.strip()
        if i == text:  # a label: checked when it is read (Labels), not when it is left out
            values.append(math.nan)
            continue
        try:
            value = float(value_text)
        except ValueError:
            shown = "is empty" if not value_text else f"holds '{value_text}', not a number"
            raise DataError("E505", f"{where}, column '{column}' {shown}", CSV_HINT) from None
        if not math.isfinite(value):
            raise DataError(
                "E505",
                f"{where}, column '{column}' holds {value_text}, not a finite number",
                CSV_HINT,
            )
        values.append(value)
    return values


CLASS_LIMIT = 2**31 - 1  # far more classes than any network has units for


def class_indices(y: np.ndarray, where) -> np.ndarray:
    """Class labels `[N, ...]` as int64; `where(example)` names the place of the first bad one."""
    if y.size == 0:  # [N, 0]: examples without a class
        raise DataError(
            "E506",
            f"{where(0).rstrip(',')} holds no value to be its class",
            "give each example its class: an array of [N] whole numbers from 0",
        )
    large = y > CLASS_LIMIT  # before any cast to int64, which a larger float would overflow
    if large.any():
        index = np.argwhere(large)[0]
        raise DataError(
            "E505",
            f"{where(int(index[0]))} holds {y[tuple(index)]:g}, too large to be a class",
            "classes are numbered 0, 1, 2, ...; or use a loss such as mse for values",
        )
    bad = (y < 0) | (y != np.round(y))
    if bad.any():
        index = np.argwhere(bad)[0]
        raise DataError(
            "E505",
            f"{where(int(index[0]))} holds {y[tuple(index)]:g}, "
            "not a class (a whole number from 0)",
            "classes are numbered 0, 1, 2, ...; or use a loss such as mse for values",
        )
    return y.astype(np.int64)


# ---- json -----------------------------------------------------------------------------------
def read_json(path: str, shown: str) -> Examples:
    """A list of examples (`[[0, 1], [1, 1]]`: x), or an object of such lists by input name
    (`{"x": ...}`)."""
    try:
        data = read_regular(path, "data file", JSON_LIMIT, "E505", shown=shown)
    except ReadError as error:
        raise _data_error(
            error, path, shown, f"nnspec looked for {os.path.abspath(path)}"
        ) from None
    try:
        value = json.loads(data.decode("utf-8"))
    # ValueError: also an integer of more digits than Python converts (4300), beside the
    # JSONDecodeError and UnicodeDecodeError that derive from it
    except (ValueError, RecursionError) as error:
        raise DataError(
            "E505",
            f"cannot read data file '{shown}' as JSON: {error}",
            "write a list of examples: [[0, 1], [1, 0]]",
        ) from None
    named = value if isinstance(value, dict) else {"x": value}
    arrays = {}
    for name, examples in named.items():
        where = (
            f"'{name}' in data file '{shown}'"
            if isinstance(value, dict)
            else f"data file '{shown}'"
        )
        odd = _not_numbers(examples)
        if odd:
            raise DataError(
                "E505",
                f"{where} holds {json.dumps(odd[0])}, which is not a number",
                'write every value as a JSON number: 1, not "1", true or null',
            )
        try:
            array = np.asarray(examples, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(
                "E505",
                f"{where} is not a list of equally shaped examples of numbers",
                "give every example the same number of values: [[0, 1], [1, 0]]",
            ) from None
        except OverflowError:  # an integer beyond float64 (1e309 and up)
            raise DataError("E505", f"{where} holds a number {RANGE_TEXT}", RANGE_HINT) from None
        _check_array(array, where)
        arrays[name] = array.astype(F32)
    return (
        Examples(None, None, named=arrays)
        if isinstance(value, dict)
        else Examples(arrays["x"], None)
    )


def _not_numbers(examples) -> list:
    """The first value in the nested lists `examples` that is not a JSON number (a string, a
    boolean, null or an object) as a list of one, or an empty list; NumPy would read "1",
    true and null as numbers."""
    stack = [examples]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            return [item]
    return []


# ---- npz ------------------------------------------------------------------------------------
def read_npz(path: str, shown: str) -> dict[str, np.ndarray]:
    """Every array in an .npz archive by name; each holds numbers, all finite,
    with an example axis first.

    Read without pickle: an array of Python objects is refused from its header, before its
    contents are read, and so are arrays that would unpack to more than `DATA_LIMIT`."""
    with _open(path, shown) as file:
        start = file.read(len(NPY_MAGIC))
        file.seek(0)
        if start.startswith(NPY_MAGIC):
            raise DataError(
                "E505",
                f"data file '{shown}' holds one array, not an .npz archive of named arrays",
                NPZ_HINT,
            )
        if not start.startswith(ZIP_MAGIC):
            raise DataError(
                "E505",
                f"cannot read data file '{shown}' as .npz: it is not a zip archive, as an "
                ".npz file is",
                NPZ_HINT,
            )
        try:
            with np.load(file, allow_pickle=False) as loaded:
                _refuse_objects(loaded, shown)
                arrays = {name: loaded[name] for name in loaded.files}
        # what zipfile and its decompressors raise on a damaged archive, or one it cannot read
        # (an encrypted member is RuntimeError, an unknown compression NotImplementedError)
        except (
            OSError,
            ValueError,
            EOFError,
            KeyError,
            RuntimeError,
            NotImplementedError,
            zipfile.BadZipFile,
            zlib.error,
            lzma.LZMAError,
        ) as error:
            raise DataError(
                "E505", f"cannot read data file '{shown}' as .npz: {error}", NPZ_HINT
            ) from None
    for name, array in arrays.items():
        _check_array(array, f"array '{name}' in data file '{shown}'")
    return arrays


NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip's end


def _refuse_objects(loaded: np.lib.npyio.NpzFile, shown: str) -> None:
    """Read every array's header alone: its dtype and shape, never its contents. An array of
    Python objects (which only unpickling could load, running code from the file) or arrays
    unpacking past `DATA_LIMIT` are E505."""
    total = 0
    members = set(loaded.zip.namelist())
    for name in loaded.files:
        # the member NpzFile loads for `name`: itself when there is one of that name (a member
        # that is not an .npy array it gives as bytes, so that one is refused here)
        member = name if name in members else f"{name}.npy"
        with loaded.zip.open(member) as raw:
            if raw.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise DataError(
                    "E505",
                    f"cannot read data file '{shown}' as .npz: its member '{member}' is not a "
                    "NumPy array (.npy)",
                    NPZ_HINT,
                )
        with loaded.zip.open(member) as raw:
            version = np.lib.format.read_magic(raw)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(raw)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(raw)
            else:  # a newer header: loading it without pickle still runs nothing
                continue
        if dtype.hasobject:
            raise DataError(
                "E505",
                f"cannot read data file '{shown}' as .npz: array '{name}' holds Python objects "
                "(dtype object), which nnspec does not load: unpickling them could run code "
                "from the file",
                "store numbers: numpy.savez(path, x=numpy.asarray(x, dtype=numpy.float32), ...)",
            )
        total += math.prod(shape) * dtype.itemsize
        if total > DATA_LIMIT:
            raise DataError(
                "E505",
                f"the arrays in data file '{shown}' unpack to more than the "
                f"{size_text(DATA_LIMIT)} nnspec reads",
                "check that this is the file you meant, or make it smaller",
            )


def _check_array(array: np.ndarray, where: str) -> None:
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
        raise DataError(
            "E505",
            f"{where} holds {array.dtype} values, not real numbers",
            "store numbers: float or integer arrays",
        )
    if array.ndim == 0:
        raise DataError(
            "E505",
            f"{where} is a single number, not one value per example",
            "the first axis counts the examples",
        )
    if len(array) == 0:
        raise DataError(
            "E505", f"{where} holds no examples", "the first axis counts the examples: give some"
        )
    if np.issubdtype(array.dtype, np.floating):
        values = array.reshape(len(array), -1)
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():
            example = int(np.argmin(finite))
            bad = values[example][~np.isfinite(values[example])][0]
            raise DataError(
                "E505",
                f"{where}: example {example} holds {bad}, not a finite number",
                "fill in or drop the missing values before saving",
            )
        # float64 (or longer): a value beyond float32's range is infinity once converted
        large = (np.abs(values) > F32_MAX).any(axis=1) if array.dtype.itemsize > 4 else [False]
        if np.any(large):
            example = int(np.argmax(large))
            bad = values[example][np.abs(values[example]) > F32_MAX][0]
            raise DataError(
                "E505", f"{where}: example {example} holds {bad:g}, {RANGE_TEXT}", RANGE_HINT
            )


def npz_examples(
    arrays: dict[str, np.ndarray],
    shown: str,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    needs_targets: bool,
) -> Examples:
    """Pick the arrays a network needs: named after its inputs and outputs, or `x` and `y` for one
    of each.

    Integer targets are class indices; float targets are values."""
    named = _pick(arrays, shown, inputs, "x", "inputs")
    targets = _pick(arrays, shown, outputs, "y", "outputs") if needs_targets else {}
    counts = {name: len(array) for name, array in {**named, **targets}.items()}
    if len(set(counts.values())) > 1:
        raise DataError(
            "E506",
            f"the arrays in data file '{shown}' disagree on the number of examples: "
            + ", ".join(f"'{name}' has {count}" for name, count in counts.items()),
            "give every array one entry per example",
        )
    named = {name: array.astype(F32) for name, array in named.items()}
    if not targets:
        return Examples(None, None, named=named)
    if len(outputs) == 1:
        y = next(iter(targets.values()))
        if np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
            labels = class_indices(
                y, lambda i: f"array '{next(iter(targets))}' in data file '{shown}', example {i},"
            )
            return Examples(None, labels, classes=int(labels.max()) + 1, named=named)
        return Examples(None, y.astype(F32), named=named)
    return Examples(
        None,
        None,
        named=named,
        named_targets={name: array.astype(F32) for name, array in targets.items()},
    )


def _pick(
    arrays: dict[str, np.ndarray], shown: str, names: tuple[str, ...], default: str, what: str
) -> dict[str, np.ndarray]:
    if all(name in arrays for name in names):
        return {name: arrays[name] for name in names}
    if len(names) == 1 and default in arrays:
        return {names[0]: arrays[default]}
    missing = [name for name in names if name not in arrays]
    wanted = (
        f"'{default}' or '{names[0]}'"
        if len(names) == 1
        else ", ".join(f"'{name}'" for name in missing)
    )
    held = ", ".join(f"'{name}'" for name in arrays) or "nothing"
    raise DataError(
        "E506",
        f"data file '{shown}' has no array {wanted} for the network's {what}; it holds {held}",
        f"save the {what} as "
        + (f"{default}=..." if len(names) == 1 else ", ".join(f"{name}=..." for name in names)),
    )
