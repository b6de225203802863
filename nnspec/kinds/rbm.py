"""The restricted Boltzmann machine as a layer: `rbm`, the hidden units of Bernoulli visible and
hidden units joined by one weight matrix (Smolensky 1986; Hinton 2002).

What enters is the visible vector `v` `[V]` (values in [0, 1]: probabilities or bits); what
leaves is `P(h = 1 | v) = sigmoid(W v + b)` `[H]`, the mean of the hidden units. That forward is
a sigmoid dense layer, so a readout may sit on it and backpropagation may fine-tune it (a deep
belief network). The visible bias `c` `[V]` belongs to the model's energy
`E(v, h) = -c.v - b.h - h.W v`, which the contrastive-divergence rules (`rule = cd`, and the
`pretrain` stage) train; the forward never reads it, so it takes no gradient.
"""

from __future__ import annotations

from .activation import Activation
from .base import Cell, Kind, Options, Param, Shape, Units, need_rank

SIGMOID = Activation(name="sigmoid")
# sklearn's BernoulliRBM starts its weights as N(0, 0.01^2) and its biases at zero; so do we
WEIGHT_STD = 0.01


class RbmOptions(Options):
    units: Units
    frozen: bool = False

    @property
    def act(self) -> Activation:
        """The forward's activation: always the hidden units' mean, a sigmoid."""
        return SIGMOID


class Rbm(Kind):
    """`[V]` -> `[units]`.

    `sigmoid(v @ W.T + b)`: the hidden units' means, P(h = 1) given the visible `v`. Stored
    as weight `[units, V]`, bias `[units]` (the hidden bias) and visible_bias `[V]`, which only
    the contrastive-divergence rules read and move (`rule = cd`, `pretrain = cd(...)`); weights
    start as N(0, 0.01^2), the biases at zero (scikit-learn's BernoulliRBM).
    """

    name = "rbm"
    family = "rbm"
    cell = Cell.PROBABILISTIC_HIDDEN
    Options = RbmOptions
    positional = ("units",)
    flags = ("frozen",)
    # the forward never reads it: no gradient, and so no optimizer step (a rule moves it)
    unread = ("visible_bias",)

    def shape(self, o: RbmOptions, x: Shape) -> Shape:
        need_rank("rbm", x, (1,), "an rbm takes a vector: add a 'flatten' layer before it")
        return x.with_dims(o.units)

    def params(self, o: RbmOptions, x: Shape) -> dict[str, Param]:
        visible, trainable = x.dims[0], not o.frozen
        return {
            "weight": Param((o.units, visible), trainable, init=("normal", WEIGHT_STD)),
            "bias": Param((o.units,), trainable),
            "visible_bias": Param((visible,), trainable),
        }


KINDS = [Rbm()]
