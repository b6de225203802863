"""Kulkarni's training procedure for a deep convolutional inverse graphics network (Kulkarni,
Whitney, Kohli and Tenenbaum 2015), `factors = LAYER` in a train section, on either backend.

The data know their factors (`shapes`: x, y, size, angle, shape) and come in groups in which one
factor varies while the others are held; each training batch is one group (at most `batch`
examples of it). The code layer `LAYER` (a VAE's `sample` layer, or a dense layer of identity
units) carries the factors: unit i carries factor i, for each factor but the last, and the
units after them carry the last one, the intrinsic factor (the shape). In a batch that varies
factor k, the units that carry k are active and every other unit is clamped, as the paper does:

    forward   z_j = mean over the batch of z_j          (the decoder sees it held)
    backward  dL/dz_j = weight * (z_j - mean z_j) / z.size    (the gradient pulls z_j to its
                                                         mean: it learns to ignore factor k)

Active units pass their values and gradients unchanged, so only they can tell the decoder how
the batch's images differ. In evaluation nothing is clamped (and a sample layer gives its mean).
`factor_weight` is `weight`. The clamp acts on the code as its one reader receives it: NumPy
changes the layer's value (`NumpyRun.hooks`), PyTorch the input of the reader's module (a
forward pre-hook), the same numbers.

`factor_correlation` (training/metrics.py) measures the result: |Pearson r| between each
designated unit and its factor, on the part measured.
"""

from __future__ import annotations

import numpy as np

from ..program import Program
from ..train_section import TrainConfig
from .metrics import LATENT_MEASURES
from .stopped import TrainingStopped


# ---- the clamp, on each backend: forward and gradient side by side ---------------------------
def clamp_numpy(z, active: np.ndarray, weight: float):
    """z `Var` `[B, units]` -> the active units as they are, the others at their batch mean;
    their gradient replaced by weight * (z - mean) / z.size."""
    from ..backends.numpy.autograd import record

    mean = z.value.mean(0, keepdims=True)
    value = np.where(active, z.value, mean).astype(z.value.dtype)

    def back(g):
        pull = weight * (z.value - mean) / z.value.size
        return (np.where(active, g, pull).astype(g.dtype),)

    return record(value, (z,), back)


def clamp_torch():
    """The same as a torch autograd function: `Clamp.apply(z, active, weight)`."""
    import torch

    class Clamp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z, active, weight):
            ctx.save_for_backward(z, active)
            ctx.weight = weight
            return torch.where(active, z, z.mean(0, keepdim=True))

        @staticmethod
        def backward(ctx, g):
            z, active = ctx.saved_tensors
            pull = ctx.weight * (z - z.mean(0, keepdim=True)) / z.numel()
            return torch.where(active, g, pull), None, None

    return Clamp


# ---- the runner ---------------------------------------------------------------------------
class FactorRunner:
    """A backend runner trained by Kulkarni's procedure: batches of one group each, the latent
    layer clamped as the module docstring says, and `factor_correlation` measured."""

    def __init__(self, inner, config: TrainConfig, program: Program, data):
        self.inner, self.backend, self.program = inner, inner.backend, program
        self.latent, self.weight, self.seed = config.factors, config.factor_weight, config.seed
        self.parts = _factor_parts(data, config.factors)
        self.names = data.info["factor_names"]
        units = program.layer(self.latent).shape.features
        if units < len(self.names):
            raise TrainingStopped(
                "R387",
                f"factors = {self.latent}: the data have {len(self.names)} factors "
                f"({', '.join(self.names)}), one unit of '{self.latent}' for each but the last and "
                f"one or more for the last, but '{self.latent}' has {units}",
                f"give '{self.latent}' at least {len(self.names)} units",
            )
        self.units = units
        self.reader = next(
            layer.name
            for layer in program.layers
            if any(link.source == self.latent for link in layer.inputs)
        )
        self.measured = {id(data.train.inputs): "train"}
        if data.test is not None:
            self.measured[id(data.test.inputs)] = "test"
        self.active: np.ndarray | None = None  # [1, units] bool while a batch trains
        self.shadow = None  # the NumPy network that measures the codes
        self._install()

    def _install(self) -> None:
        """The clamp on the latent layer's value, in training mode, while a batch trains."""
        if self.backend == "numpy":
            run = self.inner.net

            def hook(z):
                if not run.training or self.active is None:
                    return z
                return clamp_numpy(z, self.active, self.weight)

            run.hooks[self.latent] = hook
            return
        import torch

        clamp = clamp_torch()

        def pre_hook(module, args):
            if not module.training or self.active is None:
                return None
            return (clamp.apply(args[0], torch.from_numpy(self.active), self.weight), *args[1:])

        self.inner.net.get_submodule(self.reader).register_forward_pre_hook(pre_hook)

    def active_units(self, factor: int) -> np.ndarray:
        """`[1, units]` bool: the units that carry `factor` (the last factor: all units after
        the others' own)."""
        active = np.zeros((1, self.units), dtype=bool)
        last = len(self.names) - 1
        if factor < last:
            active[0, factor] = True
        else:
            active[0, last:] = True
        return active

    def batches(self, split, batch: int | None, rng: np.random.Generator):
        """Each epoch's batches: the training part's groups in a random order, each cut into
        batches of at most `batch` (None: whole groups); the clamp is set for each."""
        group, varies = self.parts["train"]["group"], self.parts["train"]["varies"]
        try:
            for g in rng.permutation(np.unique(group)):
                index = np.flatnonzero(group == g)
                self.active = self.active_units(int(varies[index[0]]))
                for begin in range(0, len(index), batch or len(index)):
                    rows = index[begin : begin + (batch or len(index))]
                    target = split.targets
                    yield (
                        {k: v[rows] for k, v in split.inputs.items()},
                        None if target is None else target[rows],
                        None,
                    )
        finally:
            self.active = None

    def step(self, inputs, target, mask, lr):
        return self.inner.step(inputs, target, mask, lr)

    def evaluate(self, inputs, target, mask):
        return self.inner.evaluate(inputs, target, mask)

    def codes(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The latent layer's values `[N, units]` on `inputs`, in evaluation mode (on NumPy,
        with the runner's weights, for either backend)."""
        if self.shadow is None:
            from ..backends.numpy import to_numpy

            weights = self.inner.weights()
            dtype = next(iter(weights.values())).dtype
            self.shadow = to_numpy(self.program, seed=self.seed, dtype=np.dtype(dtype).name)
        self.shadow.load(self.inner.weights())
        value = self.shadow.eval().activations([self.latent], **inputs)[self.latent]
        return value.reshape(len(value), -1)

    def own_measure(self, name: str, inputs, target) -> float | None:
        """`factor_correlation` on the part whose inputs these are (None: another metric)."""
        if name not in LATENT_MEASURES or id(inputs) not in self.measured:
            return None
        factors = self.parts[self.measured[id(inputs)]]["factors"]
        return LATENT_MEASURES[name](self.codes(inputs), factors)

    def __getattr__(self, name: str):  # predict, weights, set_weights, checkpoint, restore
        return getattr(self.inner, name)


def _factor_parts(data, latent: str) -> dict[str, dict[str, np.ndarray]]:
    """Each part's factors, groups and varied factors (`info["per_example"]`, cut as the
    examples are); R386 when the data know no factors."""
    parts = data.info.get("per_example")
    if not parts or "factors" not in parts.get("train", {}):
        raise TrainingStopped(
            "R386",
            f"factors = {latent} trains the latent units to carry the data's factors, but "
            f"dataset '{data.name}' has none",
            "train on data whose factors are known, such as data = shapes",
        )
    return parts
