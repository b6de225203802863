"""The grammar cache is read back by lark with pickle, so a cache file that someone other than
the user could have written is never loaded: it is removed unread and the parser tables are
built afresh (nnspec/parse.py, `_cache_file`). Each case plants a hostile file, one whose
unpickling would create a marker (a folder), where the cache would be, and parses a spec."""

import os
import pickle
import stat

import pytest
from conftest import EXAMPLES, run_with_cache

# parse a spec in a fresh interpreter, so that the parser is built from the planted cache
CHECK = "import sys, nnspec; print(len(nnspec.load(sys.argv[1]).program.layers))"


class Hostile:
    """Unpickling this calls `os.mkdir(marker)`: the marker exists once it has run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def plant(path, marker) -> None:
    """A file laid out as lark's cache is (a hash line, then pickles), with the payload first."""
    path.write_bytes(b"0" * 64 + b"\n" + pickle.dumps(Hostile(marker)))


def check_xor(cache_home) -> str:
    return run_with_cache(cache_home, CHECK, str(EXAMPLES / "xor.nn"), timeout=60)


def test_the_planted_file_would_run_code_if_unpickled(tmp_path):
    """The hostile file is what it claims: loading it as lark does creates the marker."""
    marker = tmp_path / "marker"
    plant(tmp_path / "cache", marker)
    with open(tmp_path / "cache", "rb") as f:
        f.readline()
        pickle.load(f)
    assert marker.exists()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="file modes are POSIX")
def test_a_cache_file_others_may_write_is_removed_unread(tmp_path):
    folder = tmp_path / "cache" / "nnspec"
    folder.mkdir(parents=True, mode=0o700)
    cache, marker = folder / "grammar.lark-cache", tmp_path / "marker"
    plant(cache, marker)
    cache.chmod(0o666)
    expected = check_xor(tmp_path / "fresh")
    assert check_xor(tmp_path / "cache") == expected
    assert not marker.exists()
    # rebuilt in its place, the user's alone, and read back from then on
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert cache.read_bytes()[:64] != b"0" * 64
    assert check_xor(tmp_path / "cache") == expected


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="file modes are POSIX")
def test_a_cache_folder_others_may_write_is_not_used(tmp_path):
    folder = tmp_path / "cache" / "nnspec"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    cache, marker = folder / "grammar.lark-cache", tmp_path / "marker"
    plant(cache, marker)
    cache.chmod(0o600)  # even a file of the user's: anyone could have replaced it
    expected = check_xor(tmp_path / "fresh")
    assert check_xor(tmp_path / "cache") == expected
    assert not marker.exists()
    assert cache.read_bytes().startswith(b"0" * 64)  # left alone, neither read nor rewritten


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="file modes are POSIX")
def test_a_link_in_place_of_the_cache_file_is_removed_unread(tmp_path):
    folder = tmp_path / "cache" / "nnspec"
    folder.mkdir(parents=True, mode=0o700)
    target, marker = tmp_path / "elsewhere", tmp_path / "marker"
    plant(target, marker)
    (folder / "grammar.lark-cache").symlink_to(target)
    expected = check_xor(tmp_path / "fresh")
    assert check_xor(tmp_path / "cache") == expected
    assert not marker.exists()
    assert not (folder / "grammar.lark-cache").is_symlink()
    assert target.read_bytes().startswith(b"0" * 64)  # what the link pointed to is untouched


@pytest.mark.skipif(
    not hasattr(os, "getuid") or os.getuid() != 0, reason="giving a file away needs root"
)
def test_a_cache_file_of_another_user_is_removed_unread(tmp_path):
    folder = tmp_path / "cache" / "nnspec"
    folder.mkdir(parents=True, mode=0o700)
    cache, marker = folder / "grammar.lark-cache", tmp_path / "marker"
    plant(cache, marker)
    cache.chmod(0o600)
    os.chown(cache, 65534, 65534)  # nobody
    expected = check_xor(tmp_path / "fresh")
    assert check_xor(tmp_path / "cache") == expected
    assert not marker.exists()
    assert cache.stat().st_uid == os.getuid()
