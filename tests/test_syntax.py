"""The syntax tree's nodes: frozen, slotted, equal by what they say and where."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from nnspec import syntax as s
from nnspec.errors import Source
from nnspec.parse import parse

TEXT = "network n {\n  input x: 4\n  dense h: 8, act=relu\n  x -> h\n}\n"


def _layer(text: str = TEXT) -> s.Layer:
    return parse(Source("n.nn", text)).networks[0].body[1]


def test_a_node_cannot_be_changed_and_keeps_no_dict():
    layer = _layer()
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.name = layer.kind
    assert not hasattr(layer, "__dict__")  # slots: a 10,000-layer tree in a quarter the memory
    assert layer.name.text == "h" and layer.kind.text == "dense"


def test_nodes_are_equal_and_hash_alike_by_content_and_position():
    first, again = _layer(), _layer()
    assert first == again and hash(first) == hash(again)
    moved = _layer(TEXT.replace("  dense", "   dense"))  # one column to the right
    assert moved != first


def test_a_changed_copy_leaves_the_original_as_it_was():
    layer = _layer()
    renamed = dataclasses.replace(layer, name=dataclasses.replace(layer.name, text="k"))
    assert (renamed.name.text, layer.name.text) == ("k", "h")
    assert renamed.args is layer.args


def test_a_syntax_tree_survives_pickling():
    spec = parse(Source("n.nn", TEXT))
    assert pickle.loads(pickle.dumps(spec)) == spec
