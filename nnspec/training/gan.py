"""A generative adversarial pair: `train { generator = G; discriminator = D; data = ring }`.

Each batch trains in two turns, as Goodfellow et al. (2014) with the non-saturating generator loss:

1. the discriminator, on the batch's real examples (label 1) and as many generated ones (label 0);
2. the generator, through the discriminator, towards generated examples it labels 1.

Noise is N(0, 1), shaped as the generator's input, drawn from the run's own generator of random
numbers (kept in checkpoints). Measured each epoch: `loss` (the discriminator's, real held-out
examples against generated ones), `train_loss` (the same with the training examples), `g_loss`
(the generator's) and, for datasets made of known modes (`ring`, `blobs`), `coverage`.
A backend supplies `judge`, `sample`, `discriminator_step` and `generator_step`.
"""

from __future__ import annotations

import numpy as np

from ..data.load import Data
from ..model import Model
from ..train_section import TrainConfig
from .losses import loss_and_grad

EVALUATION_SAMPLES = 1000
NEAR = 3  # a generated point counts for a mode within NEAR standard deviations of its centre
SHARE = (
    0.25  # a mode is covered when it holds at least SHARE of a fair share (1/modes) of the samples
)


class GanRunner:
    """The generator's and the discriminator's runners, trained in turns;
    subclasses do the backend's part."""

    def __init__(
        self, generator: Model, discriminator: Model, config: TrainConfig, runner, dtype: str
    ):
        self.g, self.d = runner(generator, config, dtype), runner(discriminator, config, dtype)
        self.backend, self.config = self.g.backend, config
        self.names = (generator.name, discriminator.name)
        noise_input = generator.program.layer(generator.program.inputs[0])
        self.noise_shape = noise_input.shape.dims
        self.real_input = discriminator.program.inputs[0]
        self.judged = discriminator.program.outputs[0].name
        self.act = discriminator.program.layer(self.judged).activation
        self.noise_rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(3)[2])
        self.evaluation_noise = np.random.default_rng(config.seed).standard_normal(
            (EVALUATION_SAMPLES, *self.noise_shape)
        )

    def noise(self, count: int) -> np.ndarray:
        return self.noise_rng.standard_normal((count, *self.noise_shape)).astype(np.float32)

    def step(self, inputs: dict[str, np.ndarray], target, mask, lr: float) -> tuple[float, None]:
        """Both turns on a batch; their losses summed (a NaN in either stops the run)."""
        real = inputs[self.real_input]
        d_loss = self.discriminator_step(real, self.noise(len(real)), lr)
        return d_loss + self.generator_step(self.noise(len(real)), lr), None

    def labelled(
        self, judged: tuple[np.ndarray, np.ndarray | None], label: float
    ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        """The loss (and its gradients) of the discriminator's outputs against one label for all."""
        y, logits = judged
        return loss_and_grad(
            self.config.loss, y, logits, self.act, np.full(y.shape, label, y.dtype), None
        )

    def _judged(self, x):
        """The discriminator's outputs on `x` and their logits (None without),
        as the backend's arrays."""
        y, terms = self.d.net.forward_with_terms(**{self.real_input: x})
        return y, terms.get("logits", {}).get(self.judged)

    def sample(self, noise: np.ndarray) -> np.ndarray:
        """The generator's outputs for `noise`, in evaluation mode."""
        return self.g.predict({self.g.program.inputs[0]: noise})

    # ---- measuring ------------------------------------------------------------------------------
    def measure(self, data: Data, config: TrainConfig, running=None) -> dict[str, float]:
        fakes = self.sample(self.evaluation_noise.astype(np.float32))
        judged_fakes = self.judge(fakes)
        values = {}
        for prefix, part in (
            ("", data.test if data.test is not None else data.train),
            ("train_", data.train),
        ):
            values[prefix + "loss"] = (
                self.labelled(self.judge(part.inputs[self.real_input]), 1.0)[0]
                + self.labelled(judged_fakes, 0.0)[0]
            )
        values["g_loss"] = self.labelled(judged_fakes, 1.0)[0]
        if "centres" in data.info:
            values["coverage"] = coverage(
                fakes.reshape(len(fakes), -1),
                np.asarray(data.info["centres"]),
                float(data.info["std"]),
            )
        return values

    # ---- weights and checkpoints: both networks', each under its network's name ----------------
    def weights(self) -> dict[str, np.ndarray]:
        return {
            f"{name}.{k}": v
            for name, runner in zip(self.names, (self.g, self.d), strict=True)
            for k, v in runner.weights().items()
        }

    def checkpoint(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, meta = {}, {"noise": self.noise_rng.bit_generator.state}
        for role, runner in (("generator", self.g), ("discriminator", self.d)):
            own, meta[role] = runner.checkpoint()
            arrays.update({f"{role}.{k}": v for k, v in own.items()})
        return arrays, meta

    def restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        for role, runner in (("generator", self.g), ("discriminator", self.d)):
            runner.restore(
                {
                    k.removeprefix(f"{role}."): v
                    for k, v in arrays.items()
                    if k.startswith(f"{role}.")
                },
                meta[role],
            )
        self.noise_rng.bit_generator.state = meta["noise"]


def coverage(samples: np.ndarray, centres: np.ndarray, std: float) -> float:
    """The fraction of modes that the samples cover: a mode is covered when at least a quarter of a
    fair share of the samples lies within 3 standard deviations of its centre."""
    distance = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=-1)
    nearest, close = distance.argmin(1), distance.min(1) <= NEAR * std
    counts = np.bincount(nearest[close], minlength=len(centres))
    return float(np.mean(counts >= SHARE * len(samples) / len(centres)))
