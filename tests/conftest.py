"""Shared test helpers: where the spec folders are."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SPECS = ROOT / "specs"
TEST_SPECS = Path(__file__).resolve().parent / "specs"
