"""`TrainingStopped`: the error of a run that cannot go on."""

from __future__ import annotations

from ..errors import NnspecError


class TrainingStopped(NnspecError):
    """Training cannot go on: a NaN loss (R301; the message names the epoch and the checkpoint
    that is kept), no train section (R303), a checkpoint that cannot be resumed (R302, R310, R311:
    checkpoint.CheckpointError)."""
