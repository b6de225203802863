"""Training steps on the NumPy backend: the run, its optimizer (optimizers.py), the loss
(losses.py).

The same interface as `TorchRunner`: `step` trains on a batch, `evaluate` and `predict` evaluate,
`weights`, `checkpoint` and `restore` give and take plain arrays. No torch on this path.
"""

from __future__ import annotations

import math

import numpy as np

from ..model import Model
from ..train_section import TrainConfig
from .gan import GanRunner
from .losses import loss_and_grad, mask_labels, output_losses, penalty_and_grad, sparse_layers
from .optimizers import make_optimizer


class NumpyRunner:
    """One network on NumPy, trained by backpropagation with PyTorch's update rules."""

    backend = "numpy"

    def __init__(self, model: Model, config: TrainConfig, dtype: str = "float32"):
        self.net = model.to_numpy(seed=config.seed, dtype=dtype)
        self.program, self.config = model.program, config
        self.output = model.program.outputs[0]
        self.act = model.program.layer(self.output.name).activation
        self.acts = {o.name: model.program.layer(o.name).activation for o in self.program.outputs}
        self.optimizer = make_optimizer(config.optimizer)
        self.sparse = sparse_layers(model.program)

    def step(
        self, inputs: dict[str, np.ndarray], target: np.ndarray, mask: np.ndarray | None, lr: float
    ) -> tuple[float, np.ndarray]:
        """One update on a batch: its loss and outputs, both taken before the update (several
        outputs: the weighted sum, and the outputs by name; targets come by name too)."""
        self.net.train()
        self.net.labels = mask_labels(self.program, target)  # what `mask` layers keep
        value, y, seeds = self._forward(inputs, target, mask)
        self.net.labels = None
        if isinstance(value, dict):
            value = value["loss"]
        if math.isfinite(value):
            grads = self.net.backward(inputs=False, **seeds)
            self.optimizer.step(self.net.params, grads, lr)
        return value, y

    def evaluate(
        self, inputs: dict[str, np.ndarray], target: np.ndarray, mask: np.ndarray | None
    ) -> tuple[float, np.ndarray]:
        """The loss and the outputs in evaluation mode, from one forward pass; for several outputs
        the losses by name: `loss` (the weighted sum) and `OUTPUT.loss`."""
        self.net.eval()
        value, y, _ = self._forward(inputs, target, mask)
        return value, y

    def predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        self.net.eval()
        return self.net(**inputs)

    def _forward(self, inputs, target, mask) -> tuple[float, np.ndarray, dict]:
        """The loss and outputs of a forward pass,
        and what `backward` needs to give its gradients."""
        y, terms = self.net.forward_with_terms(**inputs)
        if isinstance(y, dict):
            return self._several(y, terms, target, mask)
        logits = terms.get("logits", {}).get(self.output.name)
        value, grad_y, grad_logits = loss_and_grad(
            self.config.loss, y, logits, self.act, target, mask
        )
        seeds = {
            "grad_out": grad_y,
            "grad_logits": None if grad_logits is None else {self.output.name: grad_logits},
        }
        if "kl" in terms:  # the ELBO per output value, as the PyTorch runner adds it
            weight = 1.0 / self.output.shape.size
            value += float(terms["kl"]) * weight
            seeds["terms"] = {"kl": weight}
        value += self._penalties(terms, seeds)
        return value, y, seeds

    def _penalties(self, terms: dict, seeds: dict) -> float:
        """The sparsity penalties of the layers that declare one, summed; their gradients with
        respect to those layers' activations go into `seeds` for `backward`."""
        total, grads = 0.0, {}
        for name, activations in terms.get("sparse", {}).items():
            penalty, grads[name] = penalty_and_grad(self.sparse[name], activations)
            total += penalty
        if grads:
            seeds["grad_sparse"] = grads
        return total

    def _several(self, y: dict, terms: dict, target: dict, mask) -> tuple[dict, dict, dict]:
        """Several outputs: the losses (`loss`, the weighted sum; `OUTPUT.loss`), the outputs and
        the seeds of `backward`, each output's gradient scaled by its weight."""
        logits = terms.get("logits", {})
        values, grad_out, grad_logits = {"loss": 0.0}, {}, {}
        for name, loss, weight in output_losses(self.config, self.acts, target):
            value, gy, gz = loss_and_grad(
                loss, y[name], logits.get(name), self.acts[name], target[name], mask
            )
            values["loss"] += weight * value
            values[f"{name}.loss"] = value
            if gy is not None:
                grad_out[name] = weight * gy
            if gz is not None:
                grad_logits[name] = weight * gz
        seeds = {"grad_out": grad_out, "grad_logits": grad_logits or None}
        if "kl" in terms:  # as for one output: the ELBO per value of the first output
            weight = 1.0 / self.output.shape.size
            values["loss"] += float(terms["kl"]) * weight
            seeds["terms"] = {"kl": weight}
        values["loss"] += self._penalties(terms, seeds)
        return values, y, seeds

    # ---- weights and checkpoints -----------------------------------------------------------------
    def weights(self) -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in self.net.params.items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Put `weights` (as `weights()` gives them) back into the network: the best epoch's,
        when early stopping keeps it."""
        self.net.load(weights)

    def add_to(self, deltas: dict[str, np.ndarray]) -> None:
        """Add `deltas` to the named weights in place (the learning rules' updates)."""
        for name, delta in deltas.items():
            self.net.params[name] += delta.astype(self.net.params[name].dtype)

    def checkpoint(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {f"weights.{k}": v for k, v in self.weights().items()}
        arrays.update({f"optimizer.{k}": v for k, v in self.optimizer.state().items()})
        return arrays, {"random": self.net.rng.bit_generator.state}

    def restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        self.net.load(
            {k.removeprefix("weights."): v for k, v in arrays.items() if k.startswith("weights.")}
        )
        slots = {
            k.removeprefix("optimizer."): v for k, v in arrays.items() if k.startswith("optimizer.")
        }
        _check_slots(slots, self.net.params)
        self.optimizer.load_state(slots)
        self.net.rng.bit_generator.state = meta["random"]


def _check_slots(slots: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> None:
    """A checkpoint's optimizer state (`name.key` -> array): floating point, for a parameter
    there is, of its shape (a step of one value); every parameter with state has the same keys.
    Raises ValueError, as the next step would fail on any other."""
    keys: dict[str, set[str]] = {}
    for joined, value in slots.items():
        name, _, key = joined.rpartition(".")
        keys.setdefault(name, set()).add(key)
        if name not in params:
            raise ValueError(f"its optimizer state '{joined}' is for no parameter of the network")
        shape = (1,) if key == "step" else params[name].shape
        if not np.issubdtype(value.dtype, np.floating) or value.shape != shape:
            raise ValueError(
                f"its optimizer state '{joined}' is {value.dtype} {list(value.shape)}, "
                f"not floats of {list(shape)}"
            )
        step = float(value[0]) if key == "step" else 1.0
        if not (math.isfinite(step) and step >= 1 and step == round(step)):  # Adam: 1 - b**step
            raise ValueError(f"its optimizer state '{joined}' is {step}, not a count of steps")
    if len({frozenset(k) for k in keys.values()}) > 1:
        raise ValueError("its optimizer state is not the same for every parameter")


class NumpyGan(GanRunner):
    """A generator and a discriminator on NumPy, trained in turns (gan.py)."""

    def __init__(
        self, generator: Model, discriminator: Model, config: TrainConfig, dtype: str = "float32"
    ):
        super().__init__(generator, discriminator, config, NumpyRunner, dtype)

    def _backward(self, judged, label: float, inputs: bool) -> tuple[float, dict[str, np.ndarray]]:
        """Right after the discriminator judged: its loss against `label`, and the gradients."""
        value, grad_y, grad_logits = self.labelled(judged, label)
        grads = self.d.net.backward(
            grad_y,
            inputs=inputs,
            grad_logits=None if grad_logits is None else {self.judged: grad_logits},
        )
        return value, grads

    def discriminator_step(self, real: np.ndarray, noise: np.ndarray, lr: float) -> float:
        self.g.net.train(), self.d.net.train()
        fake = self.g.net(**{self.g.program.inputs[0]: noise})
        total, summed = 0.0, {}
        for x, label in ((real, 1.0), (fake, 0.0)):
            value, grads = self._backward(self._judged(x), label, inputs=False)
            total += value
            for name, grad in grads.items():
                summed[name] = summed[name] + grad if name in summed else grad
        if np.isfinite(total):
            self.d.optimizer.step(self.d.net.params, summed, lr)
        return total

    def generator_step(self, noise: np.ndarray, lr: float) -> float:
        fake = self.g.net(**{self.g.program.inputs[0]: noise})
        value, grads = self._backward(self._judged(fake), 1.0, inputs=True)
        if np.isfinite(value):
            self.g.optimizer.step(
                self.g.net.params, self.g.net.backward(grads[self.real_input], inputs=False), lr
            )
        return value

    def judge(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        self.d.net.eval()
        return self._judged(x)
