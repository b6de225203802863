"""Training steps on the PyTorch backend: the module, its optimizer, the loss,
checkpoints as arrays."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..backends.devices import torch_device
from ..backends.torch.capsules import Mask
from ..model import Model
from ..train_section import TrainConfig
from .gan import GanRunner
from .losses import MARGIN, mask_labels, output_losses, sparse_layers

OPTIMIZERS = {
    "sgd": lambda p, a: torch.optim.SGD(
        p,
        lr=a["lr"],
        momentum=a.get("momentum", 0.0),
        nesterov=bool(a.get("nesterov", 0)),
        weight_decay=a.get("weight_decay", 0.0),
    ),
    "adam": lambda p, a: torch.optim.Adam(
        p,
        lr=a["lr"],
        betas=(a.get("beta1", 0.9), a.get("beta2", 0.999)),
        eps=a.get("eps", 1e-8),
        weight_decay=a.get("weight_decay", 0.0),
    ),
    "adamw": lambda p, a: torch.optim.AdamW(
        p,
        lr=a["lr"],
        betas=(a.get("beta1", 0.9), a.get("beta2", 0.999)),
        eps=a.get("eps", 1e-8),
        weight_decay=a.get("weight_decay", 0.01),
    ),
    "rmsprop": lambda p, a: torch.optim.RMSprop(
        p,
        lr=a["lr"],
        alpha=a.get("alpha", 0.99),
        eps=a.get("eps", 1e-8),
        momentum=a.get("momentum", 0.0),
        weight_decay=a.get("weight_decay", 0.0),
    ),
}


def make_optimizer(name: str, params: list, args: dict[str, float]) -> torch.optim.Optimizer:
    """torch.optim's optimizer `name` over `params`; with clip=N, the gradients are scaled
    together to a norm of N at most before each of its steps (clip_grad_norm_, in a step
    pre-hook, so that every caller of step() clips: a GAN's two turns, a data-parallel rank after
    the gradients are averaged)."""
    optimizer = OPTIMIZERS[name](params, args)
    clip = args.get("clip")
    if clip is not None:

        def clipped(optimizer, args, kwargs) -> None:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip)

        optimizer.register_step_pre_hook(clipped)
    return optimizer


class TorchRunner:
    """One network on PyTorch: `step` trains on a batch, `predict` evaluates,
    `checkpoint`/`restore` round-trip. The network lives on `device` (None: the CPU); arrays go
    in and come out on the host."""

    backend = "torch"
    # a data-parallel rank's part of each batch (distributed.py); None in one process
    part: float | None = None

    def __init__(
        self, model: Model, config: TrainConfig, dtype: str = "float32", device: str | None = None
    ):
        self.device = torch_device(device)
        torch.manual_seed(config.seed)
        self.net = model.to_torch(seed=config.seed, dtype=dtype).to(self.device)
        # what a training step's forward runs: the network's, or its DistributedDataParallel
        self.trained = self.net.forward_with_terms
        self.dtype = getattr(torch, dtype)
        self.program, self.config = model.program, config
        self.output = model.program.outputs[0]
        self.act = model.program.layer(self.output.name).activation
        self.acts = {o.name: model.program.layer(o.name).activation for o in self.program.outputs}
        self.sparse = sparse_layers(model.program)
        self.masks = [m for m in self.net.modules() if isinstance(m, Mask)]
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = (
            make_optimizer(config.optimizer[0], trainable, config.optimizer[1])
            if trainable
            else None
        )

    def step(
        self, inputs: dict[str, np.ndarray], target: np.ndarray, mask: np.ndarray | None, lr: float
    ) -> tuple[float, np.ndarray]:
        """One update on a batch: its loss and outputs, both taken before the update (several
        outputs: the weighted sum, and the outputs by name; targets come by name too)."""
        # the mode is set at the root, so one flag tells (train() walks every module)
        if not self.net.training:
            self.net.train()
        if self.optimizer is None:  # every weight frozen: nothing moves
            with torch.no_grad():
                loss, y, _ = self._forward(inputs, target, mask)
            return self.total(loss), _arrays(y)
        _set_lr(self.optimizer, lr)
        self.optimizer.zero_grad(set_to_none=True)
        self._label(mask_labels(self.program, target) if self.masks else None)
        loss, y, _ = self._forward(inputs, target, mask, self.trained)
        self._label(None)
        return self.update(loss), _arrays(y)

    def _label(self, labels: np.ndarray | None) -> None:
        """The class of each example that the `mask` layers keep in this step (None: none)."""
        for module in self.masks:
            module.labels = None if labels is None else self._host(labels)

    def update(self, loss: torch.Tensor) -> float:
        """Backpropagate a batch's loss and step, unless the loss is not finite; its value."""
        value = loss.item()
        if math.isfinite(value):
            loss.backward()
            self.optimizer.step()
        return value

    def total(self, loss: torch.Tensor) -> float:
        """The batch's loss as a number (a data-parallel run adds up the ranks' parts)."""
        return loss.item()

    def evaluate(
        self, inputs: dict[str, np.ndarray], target: np.ndarray, mask: np.ndarray | None
    ) -> tuple[float, np.ndarray]:
        """The loss and the outputs in evaluation mode, from one forward pass; for several outputs
        the losses by name: `loss` (the weighted sum) and `OUTPUT.loss`."""
        if self.net.training:
            self.net.eval()
        with torch.no_grad():
            loss, y, parts = self._forward(inputs, target, mask)
        if parts is None:
            return loss.item(), y.cpu().numpy()
        return {"loss": loss.item(), **{k: v.item() for k, v in parts.items()}}, _arrays(y)

    def predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        self.net.eval()
        with torch.no_grad():
            return _arrays(self.net(**self._tensors(inputs)))

    def _forward(
        self, inputs, target, mask, forward=None
    ) -> tuple[torch.Tensor, torch.Tensor, dict | None]:
        """The loss, the outputs and, for several outputs, each one's loss (`OUTPUT.loss`).
        `forward`: what computes the outputs and terms (default: the network's own)."""
        y, terms = (forward or self.net.forward_with_terms)(**self._tensors(inputs))
        if isinstance(y, dict):
            return self._several(y, terms, target, mask)
        logits = terms.get("logits", {}).get(self.output.name)
        loss = self._shared(
            self.config.loss,
            loss_of(
                self.config.loss,
                y,
                logits,
                self.act,
                self._host(target),
                None if mask is None else self._host(mask),
            ),
        )
        # the ELBO per output value: the loss is a mean over values, the KL a sum per example
        if "kl" in terms:
            loss = loss + self._shared("mean", terms["kl"]) / self.output.shape.size
        return loss + self._penalties(terms), y, None

    def _shared(self, name: str, loss: torch.Tensor) -> torch.Tensor:
        """A shard's part of its batch's loss on a data-parallel run: a mean over the shard
        weighted by the shard's share of the batch, a sum (sse) as it is; the ranks' parts add up
        to the loss of the whole batch."""
        return loss if self.part is None or name == "sse" else loss * self.part

    def _host(self, x: np.ndarray) -> torch.Tensor:
        """A target or mask array as a tensor on the network's device."""
        return torch.from_numpy(x).to(self.device)

    def _penalties(self, terms: dict) -> torch.Tensor | float:
        """The sparsity penalties of the layers that declare one, summed."""
        sparse = terms.get("sparse", {})
        penalty = sum((penalty_of(self.sparse[name], a) for name, a in sparse.items()), 0.0)
        return self._shared("mean", penalty) if sparse else penalty

    def _several(self, y: dict, terms: dict, target: dict, mask) -> tuple:
        """Several outputs: the weighted sum of their losses, the outputs, each one's loss."""
        logits, parts, total = terms.get("logits", {}), {}, 0.0
        kept = None if mask is None else self._host(mask)
        for name, loss, weight in output_losses(self.config, self.acts, target):
            part = loss_of(
                loss,
                y[name],
                logits.get(name),
                self.acts[name],
                self._host(target[name]),
                kept,
            )
            parts[f"{name}.loss"] = part
            total = total + weight * self._shared(loss, part)
        if "kl" in terms:  # as for one output: the ELBO per value of the first output
            total = total + self._shared("mean", terms["kl"]) / self.output.shape.size
        return total + self._penalties(terms), y, parts

    def tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device, self.dtype)

    def _tensors(self, inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: self.tensor(v) for k, v in inputs.items()}

    # ---- weights and checkpoints -----------------------------------------------------------------
    def weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.net.state_dict().items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Put `weights` (as `weights()` gives them) back into the network: the best epoch's,
        when early stopping keeps it."""
        self.net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})

    def add_to(self, deltas: dict[str, np.ndarray]) -> None:
        """Add `deltas` to the named weights in place (the learning rules' updates)."""
        state = self.net.state_dict()
        with torch.no_grad():
            for name, delta in deltas.items():
                state[name].add_(torch.from_numpy(np.asarray(delta)).to(state[name]))

    def checkpoint(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {f"weights.{k}": v for k, v in self.weights().items()}
        arrays["random.torch"] = torch.get_rng_state().numpy()
        if self.device.type == "cuda":  # dropout and noise on a GPU draw from its own generator
            arrays["random.cuda"] = torch.cuda.get_rng_state(self.device).numpy()
        meta: dict = {}
        if self.optimizer is not None:
            state = self.optimizer.state_dict()
            meta["param_groups"] = state["param_groups"]
            for index, values in state["state"].items():
                for key, value in values.items():
                    arrays[f"optimizer.{index}.{key}"] = (
                        value.cpu().numpy()
                        if isinstance(value, torch.Tensor)
                        else np.asarray(value)
                    )
        return arrays, meta

    def restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        self.net.load_state_dict(
            {
                k.removeprefix("weights."): torch.from_numpy(v)
                for k, v in arrays.items()
                if k.startswith("weights.")
            }
        )
        torch.set_rng_state(torch.from_numpy(arrays["random.torch"]))
        if self.device.type == "cuda" and "random.cuda" in arrays:
            torch.cuda.set_rng_state(torch.from_numpy(arrays["random.cuda"]), self.device)
        if self.optimizer is not None:
            state: dict = {}
            for key, value in arrays.items():
                if key.startswith("optimizer."):
                    _, index, name = key.split(".", 2)
                    state.setdefault(int(index), {})[name] = torch.from_numpy(value.copy())
            fresh = self.optimizer.state_dict()["param_groups"]
            groups = _groups_like(meta["param_groups"], fresh)
            _check_state(
                state, [p for group in self.optimizer.param_groups for p in group["params"]]
            )
            self.optimizer.load_state_dict({"state": state, "param_groups": groups})


def _arrays(y: torch.Tensor | dict[str, torch.Tensor]) -> np.ndarray | dict[str, np.ndarray]:
    """Outputs as arrays: one, or several by name."""
    if isinstance(y, dict):
        return {name: value.detach().cpu().numpy() for name, value in y.items()}
    return y.detach().cpu().numpy()


def _groups_like(saved, fresh: list[dict]) -> list[dict]:
    """A checkpoint's optimizer groups as this run goes on with them: its learning rate (which a
    schedule moves) and this run's other settings (the spec's, which the checkpoint was checked
    to share), so that a value torch would take but fail on at the next step never gets there.
    Raises ValueError."""
    if not isinstance(saved, list) or len(saved) != len(fresh):
        raise ValueError("its optimizer's parameter groups are not this run's")
    groups = []
    for old, new in zip(saved, fresh, strict=True):
        lr = old.get("lr") if isinstance(old, dict) else None
        rate = isinstance(lr, (int, float)) and not isinstance(lr, bool) and 0 <= lr < math.inf
        if not rate or old.get("params") != new["params"]:
            raise ValueError(f"its optimizer's parameter group {old!r:.80} is not this run's")
        groups.append({**old, **{key: value for key, value in new.items() if key != "lr"}})
    return groups


def _check_state(state: dict[int, dict[str, torch.Tensor]], params: list[torch.Tensor]) -> None:
    """Each tensor of a checkpoint's optimizer state: floating point, for a parameter there is,
    of its shape (a 0-d step); every parameter with state has the same keys. Raises ValueError."""
    if len({frozenset(values) for values in state.values()}) > 1:
        raise ValueError("its optimizer state is not the same for every parameter")
    for index, values in state.items():
        if not 0 <= index < len(params):
            raise ValueError(f"its optimizer state is for parameter {index} of {len(params)}")
        for name, value in values.items():
            shape = [] if name == "step" else list(params[index].shape)
            if not value.is_floating_point() or list(value.shape) != shape:
                raise ValueError(
                    f"its optimizer's {name} of parameter {index} is {value.dtype} "
                    f"{list(value.shape)}, not floats of {shape}"
                )
            if name == "step" and not _steps(value.item()):
                raise ValueError(f"its optimizer's step of parameter {index} is {value.item()}")


def _steps(value: float) -> bool:
    """Whether `value` counts steps taken: a whole number from 1 (Adam divides by
    1 - beta**step)."""
    return math.isfinite(value) and value >= 1 and value == round(value)


def loss_of(
    name: str, y: torch.Tensor, logits: torch.Tensor | None, act: str, target: torch.Tensor, mask
) -> torch.Tensor:
    """The loss of outputs `y` against `target`, from the logits when the output ends in
    softmax/sigmoid.

    Class indices (int64 `[N, *items]`) go with cross_entropy; values shaped like `y` with the
    others.
    `mask` (bool, shaped like the target's leading axes) keeps the items that count.
    """
    if mask is not None:
        y, target = y[mask], target[mask]
        logits = logits[mask] if logits is not None else None
    if name == "margin":  # losses.margin_and_grad, through autograd
        high, low, weight = MARGIN
        classes = target.dtype == torch.int64
        t = F.one_hot(target, y.shape[-1]).to(y.dtype) if classes else target.to(y.dtype)
        per = t * F.relu(high - y) ** 2 + weight * (1 - t) * F.relu(y - low) ** 2
        return per.sum() / (y.numel() // y.shape[-1])
    if target.dtype == torch.int64:
        if name == "cross_entropy":
            # probabilities without their logits (a mean over steps)
            if logits is None and act == "softmax":
                return F.nll_loss(
                    torch.log(y.clamp_min(1e-12)).reshape(-1, y.shape[-1]), target.reshape(-1)
                )
            z = logits if logits is not None else y
            return F.cross_entropy(z.reshape(-1, z.shape[-1]), target.reshape(-1))
        target = F.one_hot(target, y.shape[-1]).to(y.dtype)
    target = target.to(y.dtype)
    if name in ("bce", "cross_entropy"):
        if logits is not None and act == "sigmoid":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.binary_cross_entropy(y.clamp(0, 1), target)
    if name == "sse":
        return ((y - target) ** 2).sum()
    mse = F.mse_loss(y, target)
    return torch.sqrt(mse) if name == "rmse" else mse


def penalty_of(sparsity, a: torch.Tensor) -> torch.Tensor:
    """The sparsity penalty of activations `a` `[N, (T,) units]` (nnspec/kinds/sparsity.py), as
    losses.penalty_and_grad computes it: kl from each unit's mean over the rows, clamped to
    [eps, 1 - eps]; l1 as the sum of |a| over the rows, divided by them."""
    rows = a.numel() // a.shape[-1]
    if sparsity.name == "l1":
        return sparsity.weight * a.abs().sum() / rows
    rho, eps = sparsity.rho, torch.finfo(a.dtype).eps
    mean = a.reshape(rows, a.shape[-1]).mean(0).clamp(eps, 1 - eps)
    kl = rho * torch.log(rho / mean) + (1 - rho) * torch.log((1 - rho) / (1 - mean))
    return sparsity.beta * kl.sum()


class TorchGan(GanRunner):
    """A generator and a discriminator on PyTorch, trained in turns (gan.py)."""

    def __init__(
        self,
        generator: Model,
        discriminator: Model,
        config: TrainConfig,
        dtype: str = "float32",
        device: str | None = None,
    ):
        runner = functools.partial(TorchRunner, device=device)
        super().__init__(generator, discriminator, config, runner, dtype)

    def _loss(self, x: torch.Tensor, label: float) -> torch.Tensor:
        y, logits = self._judged(x)
        return loss_of(self.config.loss, y, logits, self.act, torch.full_like(y, label), None)

    def discriminator_step(self, real: np.ndarray, noise: np.ndarray, lr: float) -> float:
        self.g.net.train(), self.d.net.train()
        with torch.no_grad():
            fake = self.g.net(self.g.tensor(noise))
        _set_lr(self.d.optimizer, lr)
        self.d.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(self.d.tensor(real), 1.0) + self._loss(fake, 0.0)
        if torch.isfinite(loss):
            loss.backward()
            self.d.optimizer.step()
        return loss.item()

    def generator_step(self, noise: np.ndarray, lr: float) -> float:
        _set_lr(self.g.optimizer, lr)
        self.g.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(self.g.net(self.g.tensor(noise)), 1.0)
        if torch.isfinite(loss):
            # the discriminator's gradients too; its next turn sets them to none first
            loss.backward()
            self.g.optimizer.step()
        return loss.item()

    def judge(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        self.d.net.eval()
        with torch.no_grad():
            y, logits = self._judged(self.d.tensor(x))
        return y.cpu().numpy(), None if logits is None else logits.cpu().numpy()


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
