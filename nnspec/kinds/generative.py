"""Generative kinds: the reparameterised Gaussian sample of a variational autoencoder."""

from __future__ import annotations

from .base import Cell, Kind, Shape, ShapeError


class Sample(Kind):
    """mean, logvar of one shape -> that shape.

    Training: `z = mean + exp(logvar / 2) * eps`, `eps ~ N(0, 1)`; evaluation: `z = mean`. Its KL
    term, `-0.5 * sum(1 + logvar - mean^2 - exp(logvar))` summed over every axis but the batch and
    averaged over the batch, is returned by `forward_with_terms` as `terms["kl"]` (summed over
    the sample layers) and added to the loss.
    """

    name = "sample"
    family = "generative"
    cell = Cell.PROBABILISTIC_HIDDEN
    ports = ("mean", "logvar")

    def shape(self, o, x: dict[str, Shape]) -> Shape:
        missing = [p for p in self.ports if p not in x]
        if missing:
            raise ShapeError(
                "E313",
                f"{{layer}} gets no {missing[0]}",
                f"link a layer to it: 'a -> z.{missing[0]}'",
            )
        mean, logvar = x["mean"], x["logvar"]
        if mean.dims != logvar.dims:
            raise ShapeError(
                "E401",
                f"shape mismatch at {{layer}}: the mean gives {mean.static()}, "
                f"the logvar gives {logvar.static()}",
                "give the mean and the log-variance the same size",
            )
        return mean if mean.timed else logvar


KINDS = [Sample()]
