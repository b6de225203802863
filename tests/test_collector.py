"""The garbage collector around start-up (nnspec/collector.py): paused while the front end,
torch and torch._dynamo are imported and the network is built; frozen afterwards only in a
process that nnspec owns (the console script), never in a caller's."""

import gc
import subprocess
import sys
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
