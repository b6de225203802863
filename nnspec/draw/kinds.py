"""How each layer kind is drawn: one row per kind, as the backends keep theirs.

`links` says how a layer's cells connect to the cells before them:
  full   every cell to every cell (dense layers, recurrent cells, attention, ...)
  local  each cell to its nearest few (convolution and pooling windows)
  one    each cell to its counterpart (element-wise layers, merges, sampling)
  none   receives no links (inputs)
`folds` marks kinds that add no cells of their own (a block's input port, flatten,
dropout, an activation used as a layer): they share the cells of the layer before
them when that layer feeds nothing else. `mark` gives a kind the chart has no cell
type for a mark of its own, drawn inside its cells in place of the cell type's mark
while they are of the kind's own cell type (an attention layer that is the network's
output is drawn as an output), with its own entry in the legend. A kind missing here
fails tests/test_draw.py with the name of this file.
"""

from __future__ import annotations

from typing import NamedTuple

from ..kinds.activation import ACTIVATIONS


class Drawing(NamedTuple):
    links: str
    folds: bool = False
    mark: str | None = None  # a shape of nnspec.draw.render.MARKS


KIND_DRAWING: dict[str, Drawing] = {
    "input": Drawing("none"),
    "port": Drawing("one", folds=True),
    "dense": Drawing("full"),
    "maxout": Drawing("full"),
    "embedding": Drawing("full"),
    "conv": Drawing("local"),
    "deconv": Drawing("local"),
    "pool": Drawing("local"),
    "unpool": Drawing("local"),
    "global_pool": Drawing("local"),
    "flatten": Drawing("one", folds=True),
    "reshape": Drawing("one", folds=True),
    "upsample": Drawing("local"),
    "dropout": Drawing("one", folds=True),
    "noise": Drawing("one", folds=True),
    "batchnorm": Drawing("one"),
    "layernorm": Drawing("one"),
    "add": Drawing("one"),
    "mul": Drawing("one"),
    "concat": Drawing("one"),
    "rnn": Drawing("full"),
    "lstm": Drawing("full"),
    "gru": Drawing("full"),
    "last": Drawing("one", folds=True),  # one step of the cells before
    "first": Drawing("one", folds=True),
    "attention": Drawing("full", mark="eye"),  # it looks at every step
    "posenc": Drawing("one"),
    "gcn": Drawing("full"),
    "rbf": Drawing("full"),  # the chart's RBF: hidden cells, each fed by every input
    "readout": Drawing("full", mark="funnel"),  # every item gathered into one
    "lif": Drawing("full"),
    "sample": Drawing("one"),
    # its cells are the input's (backfed input) and its hidden units' (the ring layout)
    "boltzmann": Drawing("full", folds=True),
    "som": Drawing("full"),  # every input to every unit of the map (the grid layout)
    "markov": Drawing("full", folds=True),  # its states are its input's: one ring, all pairs linked
    "rbm": Drawing("full"),  # every visible unit to every hidden unit
    # the ring layout: its units are its cue's cells, fed back (the chart's backfed input)
    "hopfield": Drawing("full", folds=True),
    "primary_capsules": Drawing("local"),  # a convolution, its channels grouped into capsules
    "capsules": Drawing("full"),  # every capsule predicts every capsule of the next layer
    "length": Drawing("one"),  # one length per capsule, drawn as cells of its own (the output)
    "mask": Drawing("one"),  # each capsule to its counterpart, all but one of them zeroed
    # reservoirs: recurrent (esn) or spiking (lsm) cells, drawn as the chart's 3x4 block
    "esn": Drawing("full"),
    "lsm": Drawing("full"),
    # the controller's cells, fed by every input, with memory cells beneath them (draw/memory.py)
    "ntm": Drawing("full"),
    "dnc": Drawing("full"),
    # every activation used as a layer applies its function cell by cell
    **{name: Drawing("one", folds=True) for name in ACTIVATIONS},
}


def window(layer) -> int:
    """How many cells before it a `local` cell sees: its kernel or pooling window (at most 3)."""
    options = layer.options
    size = getattr(options, "kernel", None) or getattr(options, "size", None) or 3
    height = size if isinstance(size, int) else size[0]
    return max(1, min(height, 3))
