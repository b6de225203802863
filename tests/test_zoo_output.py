"""`nnspec zoo -o OUT`: a name with a picture's extension is that poster alone, any other a
folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES

from nnspec.cli import main

MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "xor.nn").write_text((EXAMPLES / "xor.nn").read_text())
    return folder


@pytest.mark.parametrize("fmt", sorted(MAGIC))
def test_a_picture_name_writes_that_poster_alone(specs, tmp_path, fmt, capsys):
    out = tmp_path / f"poster.{fmt}"
    assert main(["zoo", str(specs), "-o", str(out)]) == 0
    assert out.is_file(), f"{out} should be a {fmt} file, not a folder"
    assert out.read_bytes().startswith(MAGIC[fmt])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["specs", out.name])
    assert capsys.readouterr().out.split() == [str(out)]


def test_any_other_name_is_a_folder_of_posters_and_page(specs, tmp_path):
    out = tmp_path / "gallery"
    assert main(["zoo", str(specs), "-o", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {
        "zoo.svg",
        "zoo.png",
        "zoo.pdf",
        "xor.svg",
        "index.html",
    }


def test_the_zoo_follows_the_charts_order_then_the_networks_beyond_it():
    """The poster and the page place the networks as the Neural Network Zoo chart does
    (perceptron, FF, RBF, DFF, RNN, ..., KN, AN); specs it does not name come after them, in
    file order."""
    from nnspec.draw.zoo import CHART, zoo_entries
    from nnspec.model import zoo_files

    chart = [stem for _, stems in CHART for stem in stems]
    stems = [entry.path.stem for entry in zoo_entries(zoo_files())]
    drawn = [stem for stem in stems if stem in chart]
    assert drawn == [stem for stem in chart if stem in stems]
    assert stems[: len(drawn)] == drawn  # every chart network before any other
    assert stems[0] == "perceptron_and" and drawn[-1] == "attention"
    assert {"gcn", "snn", "hebb", "adaline"} <= set(stems[len(drawn) :])
    beyond = stems[len(drawn) :]
    assert beyond == sorted(beyond)  # the folder's order
