"""Losses in NumPy with their gradients: the same numbers as the PyTorch runner's `loss_of`.

`loss_and_grad` returns the loss and its gradient either with respect to the outputs or, when the
loss is computed from the logits (softmax with cross_entropy, sigmoid with bce), to the logits.
"""

from __future__ import annotations

import numpy as np

from ..train_section import TrainConfig, output_loss
from .stopped import TrainingStopped

EPSILON = 1e-12  # PyTorch's guard in binary_cross_entropy's gradient and our clamp before a log


def output_losses(
    config: TrainConfig, activations: dict[str, str | None], targets: dict[str, np.ndarray]
) -> list[tuple[str, str, float]]:
    """(output, loss, weight) for each of several outputs, in output order: the loss the section
    gives it or its default (`output_loss`: classes when its targets are class indices), and its
    weight in the total (`loss_weights`, 1 when not named). Both runners sum them so."""
    return [
        (
            name,
            output_loss(config, name, act, targets[name].dtype.kind in "iu"),
            float(config.loss_weights.get(name, 1.0)),
        )
        for name, act in activations.items()
    ]


def loss_and_grad(
    name: str,
    y: np.ndarray,
    logits: np.ndarray | None,
    act: str,
    target: np.ndarray,
    mask: np.ndarray | None,
) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """(loss, dloss/dy or None, dloss/dlogits or None) of outputs `y` against `target`,
    as `loss_of` says."""
    if mask is not None:
        value, gy, gz = loss_and_grad(
            name, y[mask], None if logits is None else logits[mask], act, target[mask], None
        )
        return value, _scatter(gy, mask, y), _scatter(gz, mask, logits)
    if name == "margin":
        return (*margin_and_grad(y, target), None)
    if target.dtype.kind in "iu":
        if name == "cross_entropy":
            # probabilities without their logits: the log of them
            if logits is None and act == "softmax":
                return _nll_of_probabilities(y, target)
            z = logits if logits is not None else y
            value, grad = _softmax_cross_entropy(z, target)
            return (value, None, grad) if logits is not None else (value, grad, None)
        target = np.eye(y.shape[-1], dtype=y.dtype)[target]
    target = target.astype(y.dtype, copy=False)
    n = y.size
    if name in ("bce", "cross_entropy"):
        if logits is not None and act == "sigmoid":
            z = logits
            value = np.mean(np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z))))
            return float(value), None, (_sigmoid(z) - target) / n
        p = np.clip(y, 0, 1)
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped to -100 as PyTorch does
            value = 0.0 - np.mean(
                target * np.maximum(np.log(p), -100)
                + (1 - target) * np.maximum(np.log(1 - p), -100)
            )
        grad = (p - target) / np.maximum((1 - p) * p, EPSILON) / n
        return float(value), grad * ((y >= 0) & (y <= 1)), None
    diff = y - target
    if name == "sse":
        return float(np.sum(diff * diff)), 2 * diff, None
    mse = float(np.mean(diff * diff))
    if name == "rmse":
        root = np.sqrt(mse)
        return float(root), diff / (n * root) if root > 0 else np.zeros_like(diff), None
    return mse, 2 * diff / n, None


# ---- the margin loss of capsule networks (Sabour, Frosst and Hinton 2017) ----------------------
# m+, m-, lambda: a present class is pushed to a length above 0.9, an absent one below 0.1, and
# absent classes weigh half so that early training does not shrink every capsule
MARGIN = (0.9, 0.1, 0.5)


def margin_targets(y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """T `[..., K]`: one-hot rows for class indices, the values themselves otherwise."""
    if target.dtype.kind in "iu":
        return np.eye(y.shape[-1], dtype=y.dtype)[target]
    return target.astype(y.dtype, copy=False)


def margin_and_grad(y: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """The margin loss of lengths `y` `[..., K]` (`length` after a capsule layer) and its gradient:
    `sum_k T_k max(0, m+ - y_k)^2 + lambda (1 - T_k) max(0, y_k - m-)^2`, summed over the K
    classes and averaged over the rest (examples, steps)."""
    high, low, weight = MARGIN
    t = margin_targets(y, target)
    rows = y.size // y.shape[-1]
    short, over = np.maximum(high - y, 0), np.maximum(y - low, 0)
    value = np.sum(t * short**2 + weight * (1 - t) * over**2) / rows
    return float(value), (-2 * t * short + 2 * weight * (1 - t) * over) / rows


def mask_labels(program, target) -> np.ndarray | None:
    """The class of each example, int `[B]`, that the network's `mask` layers keep in training:
    the class targets of its first output that has them (`length` trained by `loss = margin`);
    None when it has no mask layer or no class targets (a mask then keeps the longest capsule).
    R395 when a class has no capsule in a mask."""
    masks = [layer for layer in program.layers if layer.kind.name == "mask"]
    if not masks or target is None:
        return None
    named = target if isinstance(target, dict) else {program.outputs[0].name: target}
    output, labels = next(
        ((name, t) for name, t in named.items() if t.dtype.kind in "iu" and t.ndim == 1),
        (None, None),
    )
    if labels is None:
        return None
    for layer in masks:
        capsules = program.layer(layer.inputs[0].source).shape.dims[0]
        if labels.size and (labels.max() >= capsules or labels.min() < 0):
            raise TrainingStopped(
                "R395",
                f"mask '{layer.name}' keeps the capsule of each example's class in training, "
                f"but class {int(labels.max())} of output '{output}' is past its "
                f"{capsules} capsules",
                f"give '{layer.name}' a capsule per class: the capsule layer before it needs "
                f"{int(labels.max()) + 1} or more capsules (its classes are those of '{output}')",
            )
    return labels


def _softmax_cross_entropy(z: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    flat, t = z.reshape(-1, z.shape[-1]), target.reshape(-1)
    shifted = flat - flat.max(-1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(-1, keepdims=True))
    rows = np.arange(len(t))
    value = -np.mean((shifted - log_sum)[rows, t])
    grad = np.exp(shifted - log_sum)
    grad[rows, t] -= 1
    return float(value), (grad / len(t)).reshape(z.shape)


def _nll_of_probabilities(y: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, None]:
    flat, t = y.reshape(-1, y.shape[-1]), target.reshape(-1)
    rows = np.arange(len(t))
    picked = flat[rows, t]
    kept = np.maximum(picked, EPSILON)
    grad = np.zeros_like(flat)
    grad[rows, t] = np.where(picked >= EPSILON, -1 / (kept * len(t)), 0)
    return float(-np.mean(np.log(kept))), grad.reshape(y.shape), None


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -z))


def _scatter(
    grad: np.ndarray | None, mask: np.ndarray, like: np.ndarray | None
) -> np.ndarray | None:
    if grad is None:
        return None
    full = np.zeros_like(like)
    full[mask] = grad
    return full


# ---- sparsity penalties (`sparsity=` on a dense layer: nnspec/kinds/sparsity.py) ----------------
def sparse_layers(program) -> dict[str, object]:
    """The layers with a `sparsity=` penalty, name -> its `Sparsity`, in program order."""
    return {
        layer.name: layer.options.sparsity
        for layer in program.layers
        if getattr(layer.options, "sparsity", None) is not None
    }


def penalty_and_grad(sparsity, a: np.ndarray) -> tuple[float, np.ndarray]:
    """(penalty, dpenalty/da) of activations `a` `[N, (T,) units]`, as the PyTorch runner's
    `penalty_of`: M = the rows (examples, and steps), rho_hat `[units]` their mean activation,
    clamped to [eps, 1 - eps] with the dtype's eps (no gradient where clamped).

    kl: beta * sum_j (rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j))),
    gradient beta * (-rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j)) / M for each row;
    l1: weight * sum |a| / M, gradient weight * sign(a) / M."""
    rows = a.size // a.shape[-1]
    if sparsity.name == "l1":
        return float(sparsity.weight * np.abs(a).sum() / rows), sparsity.weight * np.sign(a) / rows
    rho, beta = sparsity.rho, sparsity.beta
    mean = a.reshape(rows, a.shape[-1]).mean(0)
    eps = np.finfo(a.dtype).eps  # 1 - 1e-12 is 1 in float32, whose log(1 - 1) is -inf
    kept = np.clip(mean, eps, 1 - eps)
    value = beta * np.sum(rho * np.log(rho / kept) + (1 - rho) * np.log((1 - rho) / (1 - kept)))
    per_unit = beta * (-rho / kept + (1 - rho) / (1 - kept)) * (kept == mean) / rows
    return float(value), np.broadcast_to(per_unit, a.shape).astype(a.dtype)
