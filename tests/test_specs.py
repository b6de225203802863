"""Every spec that must check clean does, and its checked program matches its golden dump.

Specs come from examples/ (the language contract's examples), specs/ (the bundled
zoo) and tests/specs/ok/. Regenerate the golden dumps after a deliberate change with
NNSPEC_UPDATE_GOLDEN=1 pytest tests/test_specs.py.
"""

import os
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, SPECS, TEST_SPECS

import nnspec
from nnspec.check import verify
from nnspec.dump import dump_graph, dump_program

GOLDEN = TEST_SPECS / "golden"
CLEAN = (
    sorted(EXAMPLES.glob("*.nn"))
    + sorted(SPECS.glob("*.nn"))
    + sorted((TEST_SPECS / "ok").glob("*.nn"))
)


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", CLEAN, ids=_id)
def test_checks_clean_and_matches_golden_dump(path: Path):
    models = nnspec.load_all(path)
    assert models, "every clean spec defines at least one network"
    dumps = []
    for model in models:
        verify(model.program)
        dumps += [dump_graph(model.program.graph), dump_program(model.program)]
    text = "\n".join(dumps) + "\n"
    golden = GOLDEN / (path.parent.name + "__" + path.stem + ".txt")
    if os.environ.get("NNSPEC_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), (
        f"no golden dump for {path.name}: run NNSPEC_UPDATE_GOLDEN=1 pytest tests/test_specs.py"
    )
    assert text == golden.read_text()


def test_golden_dumps_have_no_strays():
    expected = {p.parent.name + "__" + p.stem + ".txt" for p in CLEAN}
    assert {p.name for p in GOLDEN.glob("*.txt")} <= expected
