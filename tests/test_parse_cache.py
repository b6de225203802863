"""The parser tables lark computes from the grammar, cached in the user's cache folder: the same
results from a fresh start, from the cache, from a damaged cache and with no cache folder at all."""

import pytest
from conftest import EXAMPLES, run_with_cache

pytestmark = pytest.mark.slow  # every example parsed in fresh processes, with and without a cache

# Every example's checked program, as text: what a parser built any way must agree on.
DUMP = """
import sys
from pathlib import Path
import nnspec
from nnspec.dump import dump_program
for path in sorted(Path(sys.argv[1]).glob("*.nn")):
    for model in nnspec.load_all(path):
        print(path.name, model.summary(), dump_program(model.program))
"""


def run(cache_home) -> str:
    return run_with_cache(cache_home, DUMP, str(EXAMPLES))


def test_a_cached_parser_reads_every_example_as_a_fresh_one_does(tmp_path):
    fresh = run(tmp_path)
    cache = tmp_path / "nnspec" / "grammar.lark-cache"
    assert cache.stat().st_size > 1000
    assert run(tmp_path) == fresh
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])  # damaged: rebuilt, silently
    assert run(tmp_path) == fresh
    cache.write_bytes(
        b"0" * 64 + b"\n" + cache.read_bytes().split(b"\n", 1)[1]
    )  # another grammar's: rebuilt
    assert run(tmp_path) == fresh


def test_without_a_cache_folder_the_parser_is_built_each_time(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    assert run(blocked) == run(tmp_path)
