"""course_utils.plots draws what it says, and refuses what it cannot draw."""

from __future__ import annotations

import pytest
import torch

from course_utils.data import FASHION_MNIST_CLASSES
from course_utils.plots import image_grid, value_histogram


def test_image_grid_has_one_row_per_class() -> None:
    images = torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8)
    labels = torch.arange(40) % 10
    fig = image_grid(images, labels, FASHION_MNIST_CLASSES, per_class=3)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 30 and len(drawn) == 30
    assert fig.axes[0].get_title(loc="left") == "0: T-shirt/top"
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        image_grid(images.flatten(1), labels, FASHION_MNIST_CLASSES)


def test_value_histogram_counts_every_value() -> None:
    values = torch.tensor([0, 0, 0, 255], dtype=torch.uint8)
    fig = value_histogram(values, bins=4)
    heights = fig.axes[0].patches[0].get_data()[0]
    assert heights.tolist() == [3, 0, 0, 1]


def test_sweep_and_loss_curve_plots_mark_what_they_show() -> None:
    import matplotlib.pyplot as plt

    from course_utils.plots import plot_loss_curve, plot_lr_sweep
    from course_utils.train import History, SweepPoint

    ok = History(step_loss=[2.3, 1.0, 0.5], epoch_val_accuracy=[0.8])
    broken = History(step_loss=[2.3, float("inf")], epoch_val_accuracy=[0.1], diverged=True, diverged_at_step=1)
    fig, ax = plt.subplots()
    plot_lr_sweep(ax, [SweepPoint(0.1, ok), SweepPoint(10.0, broken)], "demo")
    assert ax.get_xscale() == "log"
    assert list(ax.lines[0].get_ydata()) == [0.8, 0.1]
    assert len(ax.collections) == 1  # the diverged run's ×
    fig, ax = plt.subplots()
    plot_loss_curve(ax, ok, "smoothed", smooth=2)
    assert ax.get_yscale() == "linear"  # 1.65 to 0.75 spans no decades
    assert list(ax.lines[0].get_ydata()) == pytest.approx([1.65, 0.75])


def test_sweep_over_seeds_draws_the_median_and_marks_where_most_seeds_diverged() -> None:
    import matplotlib.pyplot as plt

    from course_utils.plots import plot_lr_sweep
    from course_utils.train import History, SweepPoint

    def point(lr: float, accuracy: float, diverged: bool = False) -> SweepPoint:
        return SweepPoint(lr, History(step_loss=[1.0], epoch_val_accuracy=[accuracy], diverged=diverged))

    by_seed = {  # three seeds over the same rates; at 1.0 two of three diverge, at 0.1 only one
        0: [point(0.01, 0.5), point(0.1, 0.8), point(1.0, 0.1, diverged=True)],
        1: [point(0.01, 0.6), point(0.1, 0.2, diverged=True), point(1.0, 0.3)],
        2: [point(0.01, 0.4), point(0.1, 0.7), point(1.0, 0.1, diverged=True)],
    }
    fig, ax = plt.subplots()
    plot_lr_sweep(ax, by_seed, "median of 3", color="C3")
    assert list(ax.lines[0].get_xdata()) == [0.01, 0.1, 1.0]
    assert list(ax.lines[0].get_ydata()) == pytest.approx([0.5, 0.7, 0.1])  # medians, by hand
    (crosses,) = ax.collections
    assert crosses.get_offsets().tolist() == [[1.0, pytest.approx(0.1)]]  # only where 2 of 3 diverged
    assert ax.get_xscale() == "log" and ax.get_legend_handles_labels()[1] == ["median of 3"]
    with pytest.raises(ValueError, match="points is empty"):
        plot_lr_sweep(ax, {}, "nothing")
    plt.close(fig)


def test_descent_paths_are_drawn_on_the_contours_and_cut_at_the_frame() -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    from course_utils.curvature import descend_quadratic
    from course_utils.plots import plot_descent_paths

    h = np.diag([2.0, 20.0])
    good = descend_quadratic(h, [-1.0, 1.0], lr=0.05, steps=30)
    bad = descend_quadratic(h, [-1.0, 1.0], lr=0.2, steps=200)
    fig, ax = plt.subplots()
    plot_descent_paths(ax, h, [0.0, 0.0], {"gd 0.05": good, "gd 0.2": bad}, extent=(-2, 2, -2, 2))
    good_line, bad_line = [line for line in ax.lines if line.get_label().startswith("gd")]
    assert len(good_line.get_xdata()) == 31
    assert bad.diverged and len(bad_line.get_xdata()) < bad.steps  # stops where it leaves the frame
    assert any(line.get_marker() == "x" for line in ax.lines)
    with pytest.raises(ValueError, match="2-D"):
        plot_descent_paths(ax, np.eye(3), [0.0, 0.0, 0.0], {})
    plt.close(fig)


def test_value_histogram_of_bytes_counts_each_value_exactly() -> None:
    values = torch.tensor([0, 0, 7, 255, 255, 255], dtype=torch.uint8)
    fig = value_histogram(values)
    values_drawn, edges = fig.axes[0].patches[0].get_data()[:2]
    assert values_drawn[0] == 2 and values_drawn[7] == 1 and values_drawn[255] == 3 and values_drawn.sum() == 6
    assert edges[0] == -0.5 and edges[-1] == 255.5
