"""Every kind in every table: one test per kind per table, each failure naming the file and entry.

A kind is declared once, in the registry (`nnspec/kinds/FAMILY.py`), and has one entry in each
target's table: the PyTorch lowering (`nnspec/backends/torch/FAMILY.py`), the NumPy lowering
(`nnspec/backends/numpy/kinds.py`), the drawing (`nnspec/draw/kinds.py`); and, in the tests, a
gradient check (`KIND_SPECS` in tests/test_numpy_backend.py) and a clean spec that uses it
(tests/specs/ok/every_kind.nn). The docs' tables are made from the registry (docs/make_tables.py).
A learning rule is declared in `nnspec/rules.py` and stepped in `nnspec/training/rules.py`.

This module never imports torch: the PyTorch table's names are read from its source with `ast`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import nnspec
from nnspec import rules as declared
from nnspec.backends.numpy.kinds import LOWERINGS as NUMPY_LOWERINGS
from nnspec.draw.kinds import KIND_DRAWING
from nnspec.kinds import REGISTRY, SPEC_KINDS, Cell
from nnspec.training import rules as stepping

ROOT = Path(__file__).resolve().parent.parent
TORCH = ROOT / "nnspec" / "backends" / "torch"
KINDS = sorted(REGISTRY)


def _where(name: str) -> str:
    return f"nnspec/kinds/{REGISTRY[name].family}.py"


# ---- reading a table's keys from source, without importing it ---------------------------------
def _dict_keys(node: ast.expr, module: ast.Module, package: str) -> set[str]:
    """The string keys of a dict display, or of a comprehension over a named table."""
    if isinstance(node, ast.Dict):
        keys = set()
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # **other
                keys |= _dict_keys(value, module, package)
            elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                keys.add(key.value)
        return keys
    if isinstance(node, ast.DictComp):
        return _named_keys(node.generators[0].iter, module, package)
    raise AssertionError(f"cannot read the keys of {ast.dump(node)[:80]}")


def _named_keys(node: ast.expr, module: ast.Module, package: str) -> set[str]:
    """The keys of a module-level table (a dict display here, or one imported from nnspec)."""
    assert isinstance(node, ast.Name), f"a table's keys must come from a name: {ast.dump(node)}"
    for statement in module.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        if any(isinstance(t, ast.Name) and t.id == node.id for t in targets):
            return _dict_keys(statement.value, module, package)
        if isinstance(statement, ast.ImportFrom) and node.id in {a.name for a in statement.names}:
            source = importlib.util.resolve_name(
                "." * statement.level + (statement.module or ""), package
            )
            assert not source.startswith("torch"), source
            return set(getattr(importlib.import_module(source), node.id))
    raise AssertionError(f"no table named {node.id}")


@cache
def torch_table() -> dict[str, str]:
    """kind -> the file of nnspec/backends/torch/ whose LOWERINGS has its entry."""
    table = {}
    for path in sorted(TORCH.glob("*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        for statement in module.body:
            target = (
                getattr(statement, "target", None)
                or (getattr(statement, "targets", None) or [None])[0]
            )
            if isinstance(target, ast.Name) and target.id == "LOWERINGS" and statement.value:
                if isinstance(statement.value, ast.Dict) and not statement.value.keys:
                    continue  # codegen's LOWERINGS, filled from the families
                for name in _dict_keys(statement.value, module, "nnspec.backends.torch"):
                    table[name] = path.name
    return table


@cache
def torch_families() -> set[str]:
    """The family modules codegen gathers into its LOWERINGS."""
    module = ast.parse((TORCH / "codegen.py").read_text(encoding="utf-8"))
    loops = [
        n for n in ast.walk(module) if isinstance(n, ast.For) and isinstance(n.iter, ast.Tuple)
    ]
    return {element.id for loop in loops for element in loop.iter.elts}


@cache
def gradient_checks() -> set[str]:
    """The kinds of KIND_SPECS in tests/test_numpy_backend.py."""
    module = ast.parse((ROOT / "tests" / "test_numpy_backend.py").read_text(encoding="utf-8"))
    return _named_keys(ast.Name("KIND_SPECS"), module, "tests")


@cache
def kinds_in_clean_specs() -> set[str]:
    used = set()
    folders = (ROOT / "examples", ROOT / "specs", ROOT / "tests" / "specs" / "ok")
    for path in sorted(path for folder in folders for path in folder.glob("*.nn")):
        for model in nnspec.load_all(path):
            used |= {layer.kind.name for layer in model.program.layers}
    return used


# ---- the registry -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", KINDS)
def test_the_kind_declares_its_cell_and_its_documentation(name):
    kind = REGISTRY[name]
    assert isinstance(kind.cell, Cell), (
        f"kind '{name}' has no cell type: set `cell = Cell....` on its class in {_where(name)}"
    )
    shapes, computes = kind.doc
    assert "->" in shapes and computes, (
        f"kind '{name}': its docstring in {_where(name)} must start with what enters and leaves "
        "('[F] -> [units].'), then a blank line and what it computes (the docs are made from it)"
    )


# ---- one entry per target ---------------------------------------------------------------------
@pytest.mark.parametrize("name", KINDS)
def test_the_kind_has_a_pytorch_lowering(name):
    family = REGISTRY[name].family
    assert name in torch_table(), (
        f"kind '{name}' has no PyTorch lowering: add an entry for it to LOWERINGS in "
        f"nnspec/backends/torch/{family}.py"
    )
    file = torch_table()[name].removesuffix(".py")
    assert file in torch_families(), (
        f"nnspec/backends/torch/{file}.py is not gathered: add `{file}` to the families in "
        "nnspec/backends/torch/codegen.py"
    )


@pytest.mark.parametrize("name", KINDS)
def test_the_kind_has_a_numpy_lowering(name):
    assert name in NUMPY_LOWERINGS, (
        f"kind '{name}' has no NumPy lowering: add a row for it to LOWERINGS in "
        "nnspec/backends/numpy/kinds.py (forward and gradients of new primitives in ops.py or "
        "image.py, side by side)"
    )
    assert " ".join((NUMPY_LOWERINGS[name].__doc__ or "").split()), (
        f"kind '{name}': its NumPy lowering in nnspec/backends/numpy/kinds.py needs a docstring "
        "saying what it is composed from (docs/numpy.md's table is made from it)"
    )


@pytest.mark.parametrize("name", KINDS)
def test_the_kind_has_a_drawing(name):
    assert name in KIND_DRAWING, (
        f"kind '{name}' has no drawing: add a row for it to KIND_DRAWING in nnspec/draw/kinds.py "
        "(how its cells link to the layer before)"
    )
    assert KIND_DRAWING[name].links in ("full", "local", "one", "none"), (
        f"kind '{name}': unknown link pattern '{KIND_DRAWING[name].links}' in nnspec/draw/kinds.py"
    )


# ---- and in the tests -------------------------------------------------------------------------
@pytest.mark.parametrize("name", KINDS)
def test_the_kind_has_a_gradient_check(name):
    assert name in gradient_checks(), (
        f"kind '{name}' has no gradient check: add a spec for it to KIND_SPECS in "
        "tests/test_numpy_backend.py (None, with a reason, if another test covers it)"
    )


@pytest.mark.parametrize("name", sorted(SPEC_KINDS))
def test_the_kind_is_used_by_a_clean_spec(name):
    assert name in kinds_in_clean_specs(), (
        f"kind '{name}' is in no clean spec: add a layer of it to tests/specs/ok/every_kind.nn "
        "(then NNSPEC_UPDATE_GOLDEN=1 pytest tests/test_specs.py writes its golden dump)"
    )


# ---- every learning rule in both of its tables -----------------------------------------------
@pytest.mark.parametrize("rule", sorted(set(declared.RULES) | set(stepping.STEPS)))
def test_every_declared_rule_has_its_steps_and_every_step_its_declaration(rule):
    assert rule in declared.RULES, (
        f"rule '{rule}' has steps in nnspec/training/rules.py (STEPS) but no declaration: "
        f"add Rule('{rule}', ...) to RULES in nnspec/rules.py"
    )
    assert rule in stepping.STEPS, (
        f"rule '{rule}' is declared in nnspec/rules.py but has no steps: "
        f"add '{rule}': Steps(numpy=..., torch=...) to STEPS in nnspec/training/rules.py"
    )
    steps = stepping.STEPS[rule]
    assert callable(steps.numpy) and (steps.torch == stepping.NUMPY or callable(steps.torch))


# ---- no strays --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "table, file",
    [
        (lambda: set(torch_table()), "nnspec/backends/torch/"),
        (lambda: set(NUMPY_LOWERINGS), "nnspec/backends/numpy/kinds.py"),
        (lambda: set(KIND_DRAWING), "nnspec/draw/kinds.py"),
        (gradient_checks, "tests/test_numpy_backend.py"),
    ],
    ids=["torch", "numpy", "drawing", "gradient checks"],
)
def test_a_table_has_no_rows_for_unknown_kinds(table, file):
    strays = sorted(table() - set(REGISTRY))
    assert not strays, f"{file} has entries for kinds the registry does not know: {strays}"


# ---- the docs ---------------------------------------------------------------------------------
def test_the_docs_tables_of_kinds_are_made_from_the_registry():
    spec = importlib.util.spec_from_file_location("make_tables", ROOT / "docs" / "make_tables.py")
    make_tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_tables)
    stale = [str(path.relative_to(ROOT)) for path in make_tables.stale_files()]
    assert not stale, f"stale tables of kinds in {stale}: run python docs/make_tables.py"


@pytest.mark.slow  # a process of its own: seconds
def test_these_checks_run_without_torch():
    """The whole module once more in a process where importing torch fails."""
    code = (
        "import sys; sys.modules['torch'] = None; import pytest; "
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:xdist', {__file__!r}, "
        "'-k', 'not without_torch']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
