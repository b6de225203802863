"""The garbage collector around start-up (nnspec/collector.py): paused while nnspec and its
dependencies are imported (what that built then waits in the oldest generation), while the front
end runs, and while torch and torch._dynamo are imported and the network is built; frozen
afterwards only in a process that nnspec owns (the console script), never in a caller's."""

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

import nnspec
from nnspec import collector
from nnspec.collector import collector_paused

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_collector_is_off_inside_and_as_it_was_after():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: the inner one leaves it off
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_an_error_inside_still_turns_it_back_on():
    with pytest.raises(ValueError), collector_paused():
        raise ValueError
    assert gc.isenabled()


def test_a_callers_process_is_never_frozen(tmp_path):
    """nnspec.train in this (pytest's) process: the start-up is paused, nothing is frozen, and
    the collector is on again after."""
    assert not collector._owned
    frozen = gc.get_freeze_count()
    with collector_paused(freeze=True):
        pass
    result = nnspec.train(EXAMPLES / "xor.nn", "numpy", tmp_path, epochs=2)
    assert result.metrics
    assert gc.get_freeze_count() == frozen and gc.isenabled()


_REPORT = (
    "import atexit, gc, sys\n"
    "atexit.register(lambda: print('frozen', gc.get_freeze_count(), 'enabled', gc.isenabled(),"
    " file=sys.stderr))\n"
    "sys.argv = ['nnspec', *sys.argv[1:]]\n"
    "from nnspec.cli import run\n"
    "run()\n"
)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_the_console_script_freezes_what_its_start_up_built(backend, tmp_path):
    """The `nnspec` command's process is nnspec's: after building the network, what is alive is
    frozen (torch's modules among it, with torch), and training runs with the collector on."""
    if backend == "torch":
        pytest.importorskip("torch")
    code = [sys.executable, "-c", _REPORT, "train", str(EXAMPLES / "xor.nn")]
    done = subprocess.run(
        [*code, "--backend", backend, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    words = done.stderr.split()
    frozen = int(words[words.index("frozen") + 1])
    assert words[words.index("enabled") + 1] == "True"
    assert frozen > (300_000 if backend == "torch" else 50_000)
    assert (tmp_path / "run" / "weights.safetensors").is_file()


def test_python_m_nnspec_is_the_console_script(tmp_path):
    """`python -m nnspec` runs the same entry point: its exit codes are the command's."""
    done = subprocess.run(
        [sys.executable, "-m", "nnspec", "check", str(tmp_path / "missing.nn")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "missing.nn" in done.stderr


_AFTER_IMPORT = (
    "import gc, sys\n"
    "if sys.argv[1] == 'frozen':\n"
    "    gc.freeze()\n"
    "before = gc.get_freeze_count()\n"
    "import nnspec\n"
    "old = len(gc.get_objects(generation=2))\n"
    "print(before, gc.get_freeze_count(), gc.isenabled(), gc.get_count()[0], old)\n"
)


def _after_import(mode: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _AFTER_IMPORT, mode], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_importing_nnspec_puts_what_it_built_in_the_oldest_generation():
    """`import nnspec` in a caller's process: nothing stays frozen, the collector is on, and the
    objects the import built (its dependencies' modules among them) wait in the oldest
    generation, where only a full collection looks, instead of being rescanned by the young
    collections that the caller's allocations start."""
    before, frozen, enabled, young, old = _after_import("plain")
    assert (before, frozen, enabled) == ("0", "0", "True")
    assert int(young) < 700 and int(old) > 50_000  # 700: the young generation's threshold


def test_importing_nnspec_leaves_what_the_caller_froze_frozen():
    """A caller that froze its objects first (a server before it forks) keeps them frozen:
    thawing them is not nnspec's to do, so the import's objects are left as they are."""
    before, frozen, enabled, _, _ = _after_import("frozen")
    # not thawed (0), nor the import's objects frozen with them (more); reference counting
    # still frees a few of the frozen ones
    assert 0 < int(frozen) <= int(before) and enabled == "True"


def test_the_console_script_freezes_its_imports_before_the_command(tmp_path):
    """`nnspec check`: what the imports built is frozen as the command starts."""
    code = [sys.executable, "-c", _REPORT, "check", str(EXAMPLES / "xor.nn")]
    done = subprocess.run(code, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    words = done.stderr.split()
    assert int(words[words.index("frozen") + 1]) > 50_000
    assert words[words.index("enabled") + 1] == "True"


def test_a_checked_model_waits_in_the_oldest_generation_and_is_still_freed():
    """`nnspec.loads`: what the check built and keeps (the model, its graph) goes to the oldest
    generation, so the young collection that the caller's next allocations start does not
    rescan it (0.14 s of a 2-s check of 10,000 layers); once dropped, a collection frees it."""
    layers = "\n".join(f"    dense d{i}: 4, act=relu" for i in range(300))
    links = "\n".join(f"    d{i} -> d{i + 1}" for i in range(299))
    text = f"network n {{\n    input x: 4\n{layers}\n    x -> d0\n{links}\n}}\n"
    assert not gc.get_freeze_count()
    gc.collect()
    model = nnspec.loads(text)
    assert gc.isenabled() and not gc.get_freeze_count()
    assert gc.get_count()[0] < 700  # 700: the young generation's threshold
    graph = model.program.graph
    assert any(o is graph for o in gc.get_objects(generation=2))
    alive = weakref.ref(graph)
    del model, graph
    gc.collect()
    assert alive() is None
