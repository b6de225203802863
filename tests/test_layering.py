"""Stages never reach back: every import inside the nnspec package goes to its own stage or an
earlier one, and no chain of imports comes back to where it started.

Imports are read with `ast` from every module of the package: module-level and function-level
ones, and those under `if TYPE_CHECKING:`, relative ones resolved. The stages are those of
docs/layout.md, lowest first; a module may import its own stage (without a cycle) or any stage
before it.
"""

import ast
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import networkx as nx
import pytest
from conftest import ROOT

PACKAGE = ROOT / "nnspec"

# stage: the modules in it, lowest stage first (the order docs/layout.md states)
STAGES = [
    (
        "base",
        [
            "nnspec.errors",
            "nnspec.arguments",
            "nnspec.atomic",
            "nnspec.collector",
            "nnspec.reading",
            "nnspec.shipped",
            "nnspec.version",
        ],
    ),
    ("syntax", ["nnspec.syntax", "nnspec.parse", "nnspec.lexer"]),
    ("kinds", ["nnspec.kinds", "nnspec.kinds.*"]),
    ("resolve", ["nnspec.constants", "nnspec.resolve"]),
    ("check", ["nnspec.program", "nnspec.check", "nnspec.rules", "nnspec.train_section"]),
    (
        "backends/draw/data",
        [
            "nnspec.backends",
            "nnspec.backends.*",
            "nnspec.draw",
            "nnspec.draw.*",
            "nnspec.data",
            "nnspec.data.*",
            "nnspec.summary",
            "nnspec.dump",
            "nnspec.compile",
            "nnspec.compile.*",
        ],
    ),
    ("model", ["nnspec.model"]),
    ("training", ["nnspec.training", "nnspec.training.*"]),
    ("editor", ["nnspec.fmt", "nnspec.lsp", "nnspec.lsp.*"]),
    ("cli", ["nnspec", "nnspec.cli", "nnspec.__main__"]),
]
RANK = {name: rank for rank, (name, _) in enumerate(STAGES)}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module of nnspec
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.source} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _package_of(module: str) -> str:
    """The package a module's relative imports start from."""
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _targets(module: str, node: ast.AST) -> list[str]:
    """The nnspec modules one import statement names: `from .x import y` is the module `x.y`
    when there is one, else `x` itself."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "nnspec"]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = _package_of(module).split(".")
        base = base[: len(base) - node.level + 1]
        origin = ".".join(base + ([node.module] if node.module else []))
    else:
        origin = node.module or ""
    if origin.split(".")[0] != "nnspec":
        return []
    named = [f"{origin}.{alias.name}" for alias in node.names]
    submodules = [name for name in named if name in MODULES]
    return submodules + ([origin] if len(submodules) < len(named) else [])


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [
        Import(module, target, path, node.lineno)
        for node in ast.walk(tree)
        for target in _targets(module, node)
    ]


IMPORTS = [each for module in MODULES for each in imports_of(module)]


def stage_of(module: str) -> str | None:
    found = [name for name, patterns in STAGES if any(fnmatchcase(module, p) for p in patterns)]
    return found[0] if len(found) == 1 else None


def test_every_module_has_one_stage():
    lost = [m for m in MODULES if stage_of(m) is None]
    assert lost == [], (
        f"these modules belong to no stage, or to several: {', '.join(lost)}; name each in "
        "exactly one stage of STAGES in tests/test_layering.py, and in docs/layout.md"
    )


def test_the_imports_are_read():
    """The reader sees function-level and relative imports (a guard for the tests below)."""
    seen = {(i.source, i.target) for i in IMPORTS}
    assert ("nnspec.draw.zoo", "nnspec.draw.page") in seen  # from .page import ...
    assert ("nnspec.model", "nnspec.draw") in seen  # inside Model.draw
    assert ("nnspec.backends.torch.codegen", "nnspec.backends.torch.dense") in seen  # from . import
    assert ("nnspec.cli", "nnspec") in seen  # from . import __version__
    assert all(i.target in MODULES for i in IMPORTS), "every import names a module of nnspec"


@pytest.mark.parametrize("stage", [name for name, _ in STAGES])
def test_no_stage_imports_a_later_one(stage: str):
    later = [
        f"{i} (stage '{stage_of(i.target)}', after '{stage}')"
        for i in IMPORTS
        if stage_of(i.source) == stage and RANK[stage_of(i.target) or stage] > RANK[stage]
    ]
    assert later == [], (
        "a stage imports a later one; move what it needs down, or hand it in from the later "
        "stage:\n  " + "\n  ".join(later)
    )


def test_no_import_cycles():
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    lines = {}
    for i in IMPORTS:
        if i.source != i.target:
            graph.add_edge(i.source, i.target)
            lines.setdefault((i.source, i.target), i)
    cycles = sorted(nx.simple_cycles(graph), key=lambda cycle: (len(cycle), cycle))
    shown = [
        " -> ".join([*cycle, cycle[0]])
        + "".join(f"\n      {lines[edge]}" for edge in nx.utils.pairwise(cycle, cyclic=True))
        for cycle in cycles
    ]
    assert shown == [], "import cycles (function-level imports count):\n  " + "\n  ".join(shown)


def test_docs_layout_states_the_same_order():
    text = " ".join((ROOT / "docs" / "layout.md").read_text(encoding="utf-8").split())
    order = " -> ".join(f"`{name}`" for name, _ in STAGES)
    assert order in text, f"docs/layout.md should state the stages in this order: {order}"
