"""The user's data files: `csv("file.csv", target="label")` and `npz("file.npz")`, read into
`Examples`.

Every problem becomes a `DataError` that names the file, and the line and column (csv) or the
array and example (npz): E505 when the file cannot be read or holds something other than finite
numbers, E506 when it lacks what the spec asks for.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
import zipfile

import numpy as np

from ..errors import did_you_mean
from ..train_section import csv_columns
from .examples import F32, DataError, Examples

CSV_HINT = "every row holds one number per column; fill in or drop missing values"


# ---- csv ------------------------------------------------------------------------------------
def read_csv(path: str, shown: str, target: str | None, classify: bool) -> Examples:
    """A csv file with a header row: x `[rows, columns - 1]` (every column but the target, in file
    order), y `[rows]`: class indices when `classify`, else values `[rows, 1]`; no y without a
    target."""
    columns = _header(path, shown)
    if target is not None and target not in columns:
        raise DataError(
            "E506",
            f"data file '{shown}' has no column '{target}'",
            did_you_mean(target, columns, "columns"),
        )
    table = _numbers(path, shown, columns)
    features = [i for i, column in enumerate(columns) if column != target]
    if not features:
        raise DataError(
            "E506",
            f"data file '{shown}' has only the target column '{target}', no features",
            "add the columns the network reads",
        )
    x = table[:, features].astype(F32)
    if target is None:
        return Examples(x, None)
    y = table[:, columns.index(target)]
    if not classify:
        return Examples(x, y[:, None].astype(F32))
    labels = class_indices(y, lambda row: f"data file '{shown}' line {row + 2}, column '{target}'")
    return Examples(x, labels, classes=int(labels.max()) + 1)


def _header(path: str, shown: str) -> list[str]:
    try:
        columns = csv_columns(path)
    except FileNotFoundError:
        raise DataError(
            "E505",
            f"data file '{shown}' is not found",
            f"the path is relative to the spec: nnspec looked for {os.path.abspath(path)}",
        ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(
            "E505",
            f"cannot read data file '{shown}': {error}",
            "a csv file is UTF-8 text with a header row",
        ) from None
    if columns is None:
        raise DataError(
            "E505",
            f"data file '{shown}' is empty",
            "a csv file starts with a header row naming its columns",
        )
    return columns


def _numbers(path: str, shown: str, columns: list[str]) -> np.ndarray:
    """The rows below the header as `[rows, columns]` float64, every value finite.

    NumPy's reader first; when it fails or finds NaN or infinity, a careful pass finds the line."""
    try:
        with warnings.catch_warnings():
            # "input contained no data": _scan says it better
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(
                path,
                delimiter=",",
                skiprows=1,
                ndmin=2,
                comments=None,
                quotechar='"',
                encoding="utf-8-sig",
            )
        if table.shape[1:] == (len(columns),) and len(table) and np.isfinite(table).all():
            return table
    except (ValueError, OSError, UnicodeDecodeError):
        pass
    return _scan(path, shown, columns)


def _scan(path: str, shown: str, columns: list[str]) -> np.ndarray:
    rows = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            next(reader)
            for row in reader:
                if any(value.strip() for value in row):
                    rows.append(_row(row, columns, f"data file '{shown}' line {reader.line_num}"))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(
            "E505",
            f"cannot read data file '{shown}': {error}",
            "a csv file is UTF-8 text with a header row",
        ) from None
    if not rows:
        raise DataError(
            "E505",
            f"data file '{shown}' has a header but no rows of data",
            "add one row per example below the header",
        )
    return np.array(rows)


def _row(row: list[str], columns: list[str], where: str) -> list[float]:
    if len(row) != len(columns):
        raise DataError(
            "E505",
            f"{where} has {len(row)} values, but the header names {len(columns)} columns",
            CSV_HINT,
        )
    values = []
    for column, text in zip(columns, row, strict=True):
        text = text.strip()
        try:
            value = float(text)
        except ValueError:
            shown = "is empty" if not text else f"holds '{text}', not a number"
            raise DataError("E505", f"{where}, column '{column}' {shown}", CSV_HINT) from None
        if not math.isfinite(value):
            raise DataError(
                "E505", f"{where}, column '{column}' holds {text}, not a finite number", CSV_HINT
            )
        values.append(value)
    return values


def class_indices(y: np.ndarray, where) -> np.ndarray:
    """Class labels `[N, ...]` as int64; `where(example)` names the place of the first bad one."""
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
        with open(path, encoding="utf-8") as file:
            value = json.load(file)
    except FileNotFoundError:
        raise DataError(
            "E505",
            f"data file '{shown}' is not found",
            f"nnspec looked for {os.path.abspath(path)}",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
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
        try:
            array = np.asarray(examples, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(
                "E505",
                f"{where} is not a list of equally shaped examples of numbers",
                "give every example the same number of values: [[0, 1], [1, 0]]",
            ) from None
        _check_array(array, where)
        arrays[name] = array.astype(F32)
    return (
        Examples(None, None, named=arrays)
        if isinstance(value, dict)
        else Examples(arrays["x"], None)
    )


# ---- npz ------------------------------------------------------------------------------------
def read_npz(path: str, shown: str) -> dict[str, np.ndarray]:
    """Every array in an .npz archive by name; each holds numbers, all finite,
    with an example axis first."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(
            "E505",
            f"data file '{shown}' is not found",
            f"the path is relative to the spec: nnspec looked for {os.path.abspath(path)}",
        ) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(
            "E505",
            f"cannot read data file '{shown}' as .npz: {error}",
            "save it with numpy.savez(path, x=..., y=...)",
        ) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(
            "E505",
            f"data file '{shown}' holds one array, not an .npz archive of named arrays",
            "save it with numpy.savez(path, x=..., y=...)",
        )
    try:
        with loaded:
            arrays = {name: loaded[name] for name in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(
            "E505",
            f"cannot read data file '{shown}' as .npz: {error}",
            "save it with numpy.savez(path, x=..., y=...)",
        ) from None
    for name, array in arrays.items():
        _check_array(array, f"array '{name}' in data file '{shown}'")
    return arrays


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
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array).reshape(len(array), -1).all(axis=1)
        if not finite.all():
            example = int(np.argmin(finite))
            bad = array[example][~np.isfinite(array[example])].flat[0]
            raise DataError(
                "E505",
                f"{where}: example {example} holds {bad}, not a finite number",
                "fill in or drop the missing values before saving",
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
