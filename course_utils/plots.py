"""Figures the notebooks share. Each function draws into a new figure and returns it."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor


def image_grid(
    images: Tensor,
    labels: Tensor,
    class_names: Sequence[str],
    *,
    per_class: int = 6,
) -> Figure:
    """One row per class: the first `per_class` images of each, titled with the class name."""
    if images.dim() != 3:
        raise ValueError(f"images must be [N, H, W], got shape {tuple(images.shape)}.")
    n_classes = len(class_names)
    fig, axes = plt.subplots(n_classes, per_class, figsize=(per_class * 1.1, n_classes * 1.15))
    for row, name in enumerate(class_names):
        picks = torch.nonzero(labels == row).flatten()[:per_class]
        for col in range(per_class):
            ax = axes[row, col]
            ax.set_axis_off()
            if col < len(picks):
                ax.imshow(images[picks[col]].cpu().numpy(), cmap="gray_r", vmin=0, vmax=255)
        axes[row, 0].set_title(f"{row}: {name}", fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def value_histogram(values: Tensor, *, bins: int = 256, title: str = "", log: bool = True) -> Figure:
    """Histogram of all values of a tensor (e.g. raw 0-255 pixels), log-scaled counts by default."""
    flat = values.flatten().float()
    counts = torch.histc(flat, bins=bins, min=float(flat.min()), max=float(flat.max()))
    edges = torch.linspace(float(flat.min()), float(flat.max()), bins + 1)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.stairs(counts.numpy(), edges.numpy(), fill=True)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("value")
    ax.set_ylabel("count (log scale)" if log else "count")
    ax.set_title(title)
    fig.tight_layout()
    return fig
