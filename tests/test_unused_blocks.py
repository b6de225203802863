"""Blocks that no network uses are checked on their own: kinds, options, links, ports and outputs,
without their parameters' values (sizes wait for a use). The cases with one expected error are
files in tests/specs/errors/ (`*_in_unused_block.nn`); here, every mistake of a file is reported
at once, and blocks whose options are parameters check clean.
"""

from __future__ import annotations

import pytest
from conftest import TEST_SPECS

import nnspec


def test_every_mistake_of_a_file_of_blocks_is_reported():
    path = TEST_SPECS / "errors" / "E201_unknown_kind_in_unused_block.nn"
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.load_all(path)
    found = [(e.code, e.span.line, e.message) for e in caught.value.errors]
    assert found == [
        ("E201", 7, "unknown layer kind 'dnese'"),
        ("E302", 10, "unknown layer 'zz'"),
    ]


def test_blocks_with_parameters_everywhere_check_clean(tmp_path):
    """Parameters as sizes, activations, a call's argument, repeat counts, nested blocks' values:
    nothing that waits for a value is reported."""
    spec = """
    block inner(width, act) {
        input x: width
        dense h: width, act=act
        x -> h
    }
    block outer(width, slope, times, kernel) {
        input x: [3, width, width]
        conv  c: width, kernel=kernel, act=leaky_relu(slope), repeat=times
        flatten f
        inner i: width, act=tanh
        dense w: 2, weights=[[width, 1], [1, width]]
        x -> c -> f -> i -> w
    }
    """
    path = tmp_path / "blocks.nn"
    path.write_text(spec)
    assert nnspec.load_all(path) == []


def test_a_block_used_by_a_network_is_reported_once(tmp_path):
    path = tmp_path / "n.nn"
    path.write_text(
        "block b(width) {\n input x: width\n dense h: width, unist=2\n x -> h\n}\n"
        "network n {\n input x: 3\n b y: 3\n x -> y\n}\n"
    )
    with pytest.raises(nnspec.SpecError) as caught:
        nnspec.load_all(path)
    assert [e.code for e in caught.value.errors] == ["E202"]
