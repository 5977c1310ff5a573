"""Figures the notebooks share. Each function draws into a new figure and returns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator
from torch import Tensor

from course_utils.batched import median_accuracy_by_rate
from course_utils.curvature import QuadraticPath
from course_utils.train import History, SweepPoint


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
    if values.dtype == torch.uint8 and bins == 256:
        # Exact counts per byte value, without a float copy (47 million pixels = 188 MB as floats).
        counts = torch.bincount(values.flatten(), minlength=256).double()
        edges = torch.arange(257, dtype=torch.float64) - 0.5
    else:
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


def plain_log_labels(axis: Any) -> None:
    """Label a log axis "1e-05" instead of with mathtext powers, and drop its minor ticks.

    Both are slow to draw (mathtext parsing, dozens of tick objects per redraw); widgets redraw
    these figures on every slider move.
    """
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def plot_lr_sweep(
    ax: Axes, points: Sequence[SweepPoint] | Mapping[int, Sequence[SweepPoint]], label: str, **style: Any
) -> None:
    """Validation accuracy against learning rate (log axis); diverged runs marked with ×.

    `points` is one sweep, or one per seed as `sweep_seeds` returns them (seed -> the same rates):
    then the line is the median accuracy over the seeds at each rate, and × marks the rates at
    which most seeds (more than half) diverged. One sweep is the one-seed case of both."""
    sweeps = list(points.values()) if isinstance(points, Mapping) else [points]
    if not sweeps or not sweeps[0]:
        raise ValueError("points is empty: give a sweep (a list of SweepPoints) or {seed: sweep}.")
    lrs = [p.lr for p in sweeps[0]]
    accuracy = median_accuracy_by_rate(dict(enumerate(sweeps)))
    most_diverged = [2 * sum(sweep[i].diverged for sweep in sweeps) > len(sweeps) for i in range(len(lrs))]
    (line,) = ax.plot(lrs, accuracy, marker="o", markersize=3, label=label, **style)
    if any(most_diverged):
        ax.scatter(
            [lr for lr, broken in zip(lrs, most_diverged, strict=True) if broken],
            [a for a, broken in zip(accuracy, most_diverged, strict=True) if broken],
            marker="x",
            s=40,
            color=line.get_color(),
            zorder=3,
        )
    ax.set_xscale("log")
    plain_log_labels(ax.xaxis)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("test accuracy")


def plot_loss_curve(ax: Axes, history: History, label: str, *, smooth: int = 1, **style: Any) -> None:
    """Per-step training loss (optionally a running mean over `smooth` steps); log y axis when
    the loss spans more than a factor of 30 (on the axes' data so far)."""
    losses = torch.tensor(history.step_loss, dtype=torch.float64)
    finite = torch.isfinite(losses)
    if smooth > 1 and finite.all() and len(losses) >= smooth:
        losses = losses.unfold(0, smooth, 1).mean(dim=1)
    steps = torch.arange(len(losses)) + (smooth - 1 if smooth > 1 and finite.all() else 0)
    ax.plot(steps.numpy(), losses.numpy(), label=label, **style)
    shown = losses[torch.isfinite(losses)]
    # A log axis only where the loss spans decades: log tick labels are slow to render, and
    # widgets redraw this figure on every slider move.
    if len(shown) and shown.min() > 0 and shown.max() / shown.min() > 30:
        ax.set_yscale("log")
        plain_log_labels(ax.yaxis)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")


def plot_descent_paths(
    ax: Axes,
    hessian_matrix: Any,
    minimum: Sequence[float],
    paths: dict[str, QuadraticPath],
    *,
    extent: tuple[float, float, float, float] | None = None,
    levels: int = 12,
    equal_aspect: bool = True,
) -> None:
    """Contours of ½ (w - w*)ᵀ H (w - w*) in a 2-D weight plane, with optimizer paths on top.

    `extent` = (w1 min, w1 max, w2 min, w2 max); by default it frames the minimum and every
    path's start. Contour levels are spaced geometrically, so narrow ravines stay visible.
    A diverged path is drawn until it leaves the frame and ends with an ×.
    """
    h = np.asarray(hessian_matrix, dtype=np.float64)
    w_star = np.asarray(minimum, dtype=np.float64)
    if h.shape != (2, 2) or w_star.shape != (2,):
        raise ValueError("plot_descent_paths draws 2-D problems: a 2x2 Hessian and a minimum of 2 values.")
    if extent is None:
        corners = np.array([w_star] + [p.points[0] for p in paths.values()])
        span = np.maximum(corners.max(0) - corners.min(0), 1e-3)
        low, high = corners.min(0) - 0.25 * span, corners.max(0) + 0.25 * span
        extent = (low[0], high[0], low[1], high[1])
    w1, w2 = np.meshgrid(np.linspace(extent[0], extent[1], 120), np.linspace(extent[2], extent[3], 120))
    d1, d2 = w1 - w_star[0], w2 - w_star[1]
    surface = 0.5 * (h[0, 0] * d1 * d1 + 2 * h[0, 1] * d1 * d2 + h[1, 1] * d2 * d2)
    top = max(float(surface.max()), 1e-12)
    ax.contour(w1, w2, surface, levels=top * np.geomspace(1e-4, 1, levels), colors="0.7", linewidths=0.7)
    ax.plot(*w_star, "k*", ms=10)
    for index, (label, path) in enumerate(paths.items()):
        points = path.points
        inside = np.all((points >= [extent[0], extent[2]]) & (points <= [extent[1], extent[3]]), axis=1)
        # A diverged path is cut where it leaves the frame; others are clipped by the axes.
        shown = points if inside.all() or not path.diverged else points[: int(np.argmin(inside)) + 1]
        (line,) = ax.plot(shown[:, 0], shown[:, 1], ".-", ms=3, lw=1, label=label, color=f"C{index}")
        if path.diverged:
            ax.plot(*shown[-1], "x", ms=9, mew=2, color=line.get_color())
    ax.set(xlim=extent[:2], ylim=extent[2:], xlabel="w₁", ylabel="w₂")
    if equal_aspect:
        ax.set_aspect("equal")
