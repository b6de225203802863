"""The plot of a run: loss and each metric per epoch (matplotlib, Agg: no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: list[dict[str, float]], path: str) -> None:
    """Losses on one panel, every other metric on a second; held-out solid, training dashed."""
    epochs = [row["epoch"] for row in history]
    names = [k for k in history[0] if k not in ("epoch", "lr")]
    losses = [n for n in names if n.endswith("loss")]
    others = [n for n in names if not n.endswith("loss")]
    figure, axes = plt.subplots(1, 2 if others else 1, figsize=(10 if others else 5.5, 3.6), squeeze=False)
    for ax, group, title in zip(axes[0], (losses, others), ("loss", "metrics")):
        for name in group:
            ax.plot(epochs, [row[name] for row in history], "--" if name.startswith("train_") else "-", label=name, marker="." if len(epochs) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)


def plot_samples(real, generated, path: str) -> None:
    """A GAN's generated points over the real ones (2-D data): what the coverage number means."""
    figure, ax = plt.subplots(figsize=(4.6, 4.6))
    ax.scatter(real[:, 0], real[:, 1], s=6, c="#999999", alpha=0.5, label="real", linewidths=0)
    ax.scatter(generated[:, 0], generated[:, 1], s=6, c="#d62728", alpha=0.6, label="generated", linewidths=0)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, loc="upper right", markerscale=3)
    ax.set_title("samples")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)
