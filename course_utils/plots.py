"""Figures the notebooks share. Each function draws into a new figure and returns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator
from torch import Tensor

from course_utils.batched import median_accuracy_by_rate
from course_utils.curvature import QuadraticPath
from course_utils.diagnostics import LayerValues
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
    mark_steps: Sequence[int] = (),
) -> None:
    """Contours of ½ (w - w*)ᵀ H (w - w*) in a 2-D weight plane, with optimizer paths on top.

    `extent` = (w1 min, w1 max, w2 min, w2 max); by default it frames the minimum and every
    path's start. Contour levels are spaced geometrically, so narrow ravines stay visible.
    A diverged path is drawn until it leaves the frame and ends with an ×. `mark_steps` labels
    each path's point after those steps ("step 100"), where the path has them.
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
        for step in (s for s in mark_steps if s < len(shown)):
            ax.annotate(
                f"step {step}",
                shown[step],
                xytext=(6, 0),
                textcoords="offset points",
                fontsize=8,
                va="center",
                color=line.get_color(),
            )
    ax.set(xlim=extent[:2], ylim=extent[2:], xlabel="w₁", ylabel="w₂")
    if equal_aspect:
        ax.set_aspect("equal")


def depth_histograms(values: Mapping[str, LayerValues], layers: Sequence[int], *, bins: int = 60) -> Figure:
    """Histograms through depth, one column per network (`values`: its title -> its `layer_values`).

    Top row: the values each hidden layer's activation outputs; bottom row: log₁₀ |∂loss/∂w| over
    that layer's weights (exact zeros left out). One ridge per layer of `layers` (1-based: layer 1
    is `activations[0]` and `weight_gradients[0]`), the first on top, each scaled to the same
    height, so a narrow distribution shows as a spike. Each row shares its x axis across the
    columns: a ridge that narrows or moves left is a signal or gradient that shrinks.
    """
    if not values or not layers:
        raise ValueError("depth_histograms needs at least one network and one layer to draw.")
    shown = [layer - 1 for layer in layers]
    for title, network in values.items():
        if min(shown) < 0 or max(shown) >= min(len(network.activations), len(network.weight_gradients)):
            raise ValueError(f"{title!r} has no layer {max(layers)} (layers are numbered from 1): {list(layers)}.")
    activations = {t: [v.activations[i].flatten().double() for i in shown] for t, v in values.items()}
    magnitudes = {
        t: [(g := v.weight_gradients[i].flatten().double().abs())[g > 0].log10() for i in shown]
        for t, v in values.items()
    }
    fig, axes = plt.subplots(2, len(values), figsize=(3.4 * len(values) + 1, 7), sharex="row", sharey=True)
    axes = np.asarray(axes).reshape(2, len(values))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(layers)))
    rows = ((activations, "activation output", False), (magnitudes, "log₁₀ |∂loss/∂w|", True))
    for row, (per_network, label, whole_decades) in enumerate(rows):
        pooled = torch.cat([v[torch.isfinite(v)] for per_layer in per_network.values() for v in per_layer])
        low, high = (float(pooled.min()), float(pooled.max())) if len(pooled) else (-1.0, 1.0)
        if whole_decades:
            low, high = float(np.floor(low)), float(np.ceil(high))
        low, high = (low, high) if high > low else (low - 1, high + 1)
        edges = np.linspace(low, high, bins + 1)
        for column, (title, per_layer) in enumerate(per_network.items()):
            ridges = []
            for depth, data in enumerate(per_layer):
                counts, _ = np.histogram(data[torch.isfinite(data)].numpy(), bins=edges)
                base = len(layers) - 1 - depth  # layer 1 on top
                top = base + 0.9 * np.repeat(counts / max(counts.max(), 1), 2)
                outline = np.column_stack([np.repeat(edges, 2)[1:-1], top])
                ridges.append(np.vstack([[edges[0], base], outline, [edges[-1], base]]))
            ax = axes[row, column]
            ax.add_collection(PolyCollection(ridges, facecolors=colors, edgecolors="none"), autolim=False)
            margin = 0 if whole_decades else 0.04 * (high - low)  # room for spikes at the edges (saturation)
            ax.set(xlim=(low - margin, high + margin), ylim=(-0.2, len(layers)), xlabel=label)
            if row == 0:
                ax.set_title(title, fontsize=10)
    axes[0, 0].set_yticks(range(len(layers)), [f"layer {layer}" for layer in reversed(layers)])
    for ax in axes[:, 0]:
        ax.tick_params(axis="y", labelsize=8)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.94, bottom=0.08, hspace=0.28, wspace=0.08)
    return fig


def unit_histograms(stages: Mapping[str, Tensor], *, bins: int = 30) -> Figure:
    """A few units' distributions through a transformation, one panel per stage.

    `stages` maps a panel's title to that stage's values, [examples, units]: each unit (column)
    is one translucent histogram in its own colour, labelled with its mean and its std over the
    examples (the population std, which batch norm divides by). Each panel has its own x range,
    since the point is usually how different the ranges are.
    """
    if not stages:
        raise ValueError("unit_histograms needs at least one stage: {title: [examples, units] values}.")
    for title, values in stages.items():
        if values.dim() != 2:
            raise ValueError(f"{title!r}: values must be [examples, units], got shape {tuple(values.shape)}.")
    fig, axes = plt.subplots(1, len(stages), figsize=(3.4 * len(stages), 3.1), squeeze=False)
    for ax, (title, values) in zip(axes[0], stages.items(), strict=True):
        data = values.detach().double().cpu()
        low, high = float(data.min()), float(data.max())
        edges = np.linspace(low, high if high > low else low + 1, bins + 1)
        for unit in range(data.shape[1]):
            column = data[:, unit]
            counts, _ = np.histogram(column.numpy(), bins=edges)
            mean, std = round(float(column.mean()), 2) + 0.0, float(column.std(correction=0))  # + 0.0: no "-0"
            ax.stairs(counts, edges, fill=True, alpha=0.4, color=f"C{unit}", label=f"mean {mean:g}, std {std:.3g}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("value")
        ax.legend(fontsize=7, loc="upper left", frameon=False)
        ax.set_ylim(top=ax.get_ylim()[1] * 1.45)  # room for the legend above the bars
    axes[0, 0].set_ylabel("examples")
    fig.tight_layout()
    return fig


def unit_map(
    ax: Axes,
    values: Tensor,
    *,
    title: str,
    value_range: tuple[float, float] | None = None,
    dead: Tensor | None = None,
) -> AxesImage:
    """A layer seen from inside: `values` [examples, units] as an image, one row per example and one
    column per unit. Returns the image (for a colour bar).

    With `value_range`, e.g. (-1, 1) for tanh, a diverging map spans it: saturated values show as
    solid red or blue, values near 0 pale. Without it (ReLU's outputs, all >= 0) black is 0 and the
    colours rise to the 99th percentile. `dead`, booleans [units] (e.g. from
    `diagnostics.dead_unit_mask` on the whole training set), puts a red tick above each dead unit.
    """
    if values.dim() != 2 or values.numel() == 0:
        raise ValueError(f"values must be a non-empty [examples, units] tensor, got shape {tuple(values.shape)}.")
    if dead is not None and dead.shape != values.shape[1:]:
        raise ValueError(f"dead must hold one boolean per unit ({values.shape[1]}), got shape {tuple(dead.shape)}.")
    data = values.detach().double().cpu().numpy()
    if value_range is None:
        top = float(np.percentile(data, 99))
        image = ax.imshow(data, aspect="auto", interpolation="nearest", cmap="magma", vmin=0, vmax=top or 1.0)
    else:
        low, high = value_range
        image = ax.imshow(data, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=low, vmax=high)
    columns = np.flatnonzero(dead.cpu().numpy()) if dead is not None else np.array([], dtype=np.int64)
    if len(columns):  # an empty unclipped line would give the axes a bogus extent (and wreck a layout)
        ax.plot(columns, np.full(len(columns), -0.5), "v", color="red", ms=3, clip_on=False, label="dead")
    ax.set_title(title, fontsize=10)
    ax.set(xlabel="unit", ylabel="example", ylim=(len(data) - 0.5, -0.5))
    return image
