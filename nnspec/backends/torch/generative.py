"""The reparameterised sample in PyTorch: noise while training, the mean in evaluation;
its KL term."""

from __future__ import annotations

from .lowering import Emit, Lowering


def _sample(e: Emit, x: dict[str, str]) -> None:
    mean, logvar = x["mean"], x["logvar"]
    e.assign(
        f"({mean} + torch.exp(0.5 * {logvar}) * torch.randn_like({mean}))"
        f" if self.training else {mean}"
    )
    e.terms.append(
        f"(-0.5 * (1 + {logvar} - {mean} ** 2 - torch.exp({logvar}))).flatten(1).sum(1).mean()"
    )


LOWERINGS = {"sample": Lowering(_sample)}
