"""The wheel works outside the source tree: built, installed into a fresh virtual environment in
a temporary folder, and run from there on a spec it ships (the grammar and the specs travel
inside the package)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment: a minute


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(map(str, args))}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
    return done


def test_the_wheel_installs_and_checks_a_bundled_spec_outside_the_tree(tmp_path: Path):
    wheels = tmp_path / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        tmp_path,
    )
    (wheel,) = wheels.glob("nnspec-*.whl")

    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        tmp_path,
    )

    where = tmp_path / "elsewhere"
    where.mkdir()
    package = Path(
        _run(
            [str(python), "-c", "import nnspec, os; print(os.path.dirname(nnspec.__file__))"], where
        ).stdout.strip()
    )
    assert ROOT not in package.parents, f"nnspec was imported from the source tree: {package}"
    assert (package / "grammars" / "nnspec.lark").is_file(), "the grammar is not in the wheel"
    spec = package / "specs" / "xor.nn"
    assert spec.is_file(), "the bundled specs are not in the wheel"

    nnspec = env / "bin" / "nnspec"
    checked = _run([str(nnspec), "check", str(spec)], where)
    assert checked.stdout == "" and checked.stderr == ""
    summary = _run([str(nnspec), "summary", str(spec)], where)
    assert "Total params: 9" in summary.stdout
