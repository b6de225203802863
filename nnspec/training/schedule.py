"""Learning-rate schedules: the rate for each epoch (counted from 0), the same on every backend."""

from __future__ import annotations

import math


def learning_rate(
    schedule: tuple[str, dict[str, float]], lr: float, epoch: int, epochs: int
) -> float:
    """constant; step(every, gamma); exponential(gamma); cosine(epochs, min_lr); warmup(epochs)."""
    name, args = schedule
    if name == "constant":
        return lr
    if name == "step":
        return lr * args.get("gamma", 0.1) ** (epoch // int(args.get("every", 10)))
    if name == "exponential":
        return lr * args.get("gamma", 0.95) ** epoch
    if name == "cosine":
        span, low = max(int(args.get("epochs", epochs)), 1), args.get("min_lr", 0.0)
        return low + (lr - low) * (1 + math.cos(math.pi * min(epoch, span) / span)) / 2
    if name == "warmup":
        return lr * min(1.0, (epoch + 1) / max(int(args.get("epochs", 5)), 1))
    raise ValueError(
        f"unknown schedule {name!r} (this is a bug: train_section.py should have refused it)"
    )
