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


def test_descent_paths_label_the_steps_asked_for_where_the_path_has_them() -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    from course_utils.curvature import descend_quadratic
    from course_utils.plots import plot_descent_paths

    h = np.diag([2.0, 0.02])
    path = descend_quadratic(h, [-1.0, 1.0], lr=0.5, steps=20)
    fig, ax = plt.subplots()
    plot_descent_paths(ax, h, [0.0, 0.0], {"gd": path}, mark_steps=(0, 10, 50), equal_aspect=False)
    labels = {text.get_text(): text.xy for text in ax.texts}
    assert set(labels) == {"step 0", "step 10"}  # the path has no step 50
    np.testing.assert_allclose(labels["step 10"], path.points[10])
    assert ax.get_aspect() == "auto"
    plt.close(fig)


def test_value_histogram_of_bytes_counts_each_value_exactly() -> None:
    values = torch.tensor([0, 0, 7, 255, 255, 255], dtype=torch.uint8)
    fig = value_histogram(values)
    values_drawn, edges = fig.axes[0].patches[0].get_data()[:2]
    assert values_drawn[0] == 2 and values_drawn[7] == 1 and values_drawn[255] == 3 and values_drawn.sum() == 6
    assert edges[0] == -0.5 and edges[-1] == 255.5


def test_depth_histograms_draw_one_ridge_per_layer_where_the_values_are() -> None:
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.axes import Axes

    from course_utils.diagnostics import LayerValues
    from course_utils.plots import depth_histograms

    uniform = torch.rand(400, 8, generator=torch.Generator().manual_seed(0))
    network = LayerValues(
        activations=[uniform * 0.5 - 1, uniform * 0.5 + 0.5, uniform * 0.01, uniform],  # [-1, -½], [½, 1], ~0
        weight_gradients=[torch.full((8, 8), 10**-5.5), torch.full((8, 8), 10**-3.5), torch.zeros(8, 8)],
    )
    fig = depth_histograms({"small": network, "same": network}, [1, 2, 3], bins=40)
    activations_ax, _, gradients_ax, _ = fig.axes  # row by row: activations, then gradients
    assert [ax.get_title() for ax in fig.axes[:2]] == ["small", "same"]
    assert all(len(ax.collections) == 1 and len(ax.collections[0].get_paths()) == 3 for ax in fig.axes)

    def raised(ax: Axes, layer: int) -> np.ndarray:
        """The x of the outline of `layer`'s ridge where it rises above its baseline (layer 1 on top)."""
        vertices = ax.collections[0].get_paths()[layer - 1].vertices
        return np.asarray(vertices[vertices[:, 1] > 3 - layer + 1e-9, 0])

    width = 2 / 40  # the activation row spans the pooled values, about -1 to 1, in 40 bins
    assert raised(activations_ax, 1).min() >= -1 - 1e-6 and raised(activations_ax, 1).max() <= -0.5 + width
    assert raised(activations_ax, 2).min() >= 0.5 - width and raised(activations_ax, 2).max() <= 1 + 1e-6
    assert np.ptp(raised(activations_ax, 3)) <= 2 * width  # a spike at 0
    assert gradients_ax.get_xlim() == (-6.0, -3.0)  # whole decades around 10^-5.5 and 10^-3.5
    for layer, magnitude in ((1, -5.5), (2, -3.5)):
        assert np.abs(raised(gradients_ax, layer) - magnitude).max() <= 3 / 40 + 1e-6
    assert len(raised(gradients_ax, 3)) == 0  # exact zeros are left out: a flat ridge
    assert [t.get_text() for t in activations_ax.get_yticklabels()] == ["layer 3", "layer 2", "layer 1"]
    with pytest.raises(ValueError, match="numbered from 1"):
        depth_histograms({"small": network}, [0, 1])
    with pytest.raises(ValueError, match="no layer 4"):
        depth_histograms({"small": network}, [4])
    plt.close(fig)


def test_unit_map_draws_examples_by_units_and_marks_the_dead_ones() -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    from course_utils.plots import unit_map

    relu = torch.rand(30, 12, generator=torch.Generator().manual_seed(0)) + 0.1
    relu[:, [2, 7]] = 0.0  # two units off on every example shown
    dead = torch.zeros(12, dtype=torch.bool)
    dead[[2, 7]] = True
    fig, (left, right) = plt.subplots(1, 2)
    image = unit_map(left, relu, title="ReLU", dead=dead)
    assert np.shape(image.get_array()) == (30, 12) and image.get_cmap().name == "magma"
    assert image.get_clim() == pytest.approx((0.0, float(np.percentile(relu.double().numpy(), 99))))
    (ticks,) = left.lines
    assert ticks.get_xdata().tolist() == [2, 7]  # exactly the dead columns
    assert left.get_ylim() == (29.5, -0.5)  # the first example on top, the ticks just above it
    tanh = torch.linspace(-1, 1, 24).reshape(4, 6)
    signed = unit_map(right, tanh, title="tanh", value_range=(-1, 1))
    assert signed.get_clim() == (-1, 1) and signed.get_cmap().name == "RdBu_r" and not right.lines
    assert (left.get_xlabel(), left.get_ylabel(), right.get_title()) == ("unit", "example", "tanh")
    unit_map(right, tanh, title="no dead units", value_range=(-1, 1), dead=torch.zeros(6, dtype=torch.bool))
    assert not right.lines  # nothing to mark: no (empty) line either
    with pytest.raises(ValueError, match=r"\[examples, units\]"):
        unit_map(left, relu.flatten(), title="flat")
    with pytest.raises(ValueError, match="one boolean per unit"):
        unit_map(left, relu, title="ReLU", dead=dead[:5])
    plt.close(fig)


def test_unit_histograms_draw_each_unit_with_its_mean_and_std() -> None:
    import matplotlib.pyplot as plt

    from course_utils.plots import unit_histograms

    before = torch.tensor([[0.0, 10.0], [2.0, 30.0], [4.0, 50.0]])  # means 2 and 30, population stds √(8/3), √(800/3)
    after = (before - before.mean(0)) / before.std(0, correction=0)
    fig = unit_histograms({"before": before, "after": after}, bins=4)
    left, right = fig.axes
    assert (left.get_title(), right.get_title(), left.get_ylabel()) == ("before", "after", "examples")
    assert [len(ax.patches) for ax in fig.axes] == [2, 2]  # one histogram per unit
    assert [p.get_data()[0].sum() for p in left.patches] == [3, 3]  # every example counted once
    assert left.patches[0].get_data()[1].tolist() == [0.0, 12.5, 25.0, 37.5, 50.0]  # the panel's own range
    assert right.patches[0].get_data()[1][0] == pytest.approx(-(1.5**0.5))  # (0 - 2)/√(8/3)
    assert left.get_legend_handles_labels()[1] == ["mean 2, std 1.63", "mean 30, std 16.3"]
    assert right.get_legend_handles_labels()[1] == ["mean 0, std 1", "mean 0, std 1"]
    with pytest.raises(ValueError, match=r"\[examples, units\]"):
        unit_histograms({"flat": before.flatten()})
    plt.close(fig)
