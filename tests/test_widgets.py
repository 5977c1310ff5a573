"""GridExplorer: moving a control redraws from the precomputed results, quickly."""

from __future__ import annotations

from typing import Any

import pytest
from matplotlib.figure import Figure

from course_utils.widgets import GridExplorer


def draw(figure: Figure, values: dict[str, Any]) -> None:
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, values["scale"]])
    ax.set_title(f"scale={values['scale']} lr={values['lr']}")


def test_moving_a_control_redraws_with_the_new_value() -> None:
    explorer = GridExplorer({"scale": [1, 4, 255], "lr": [0.1, 1.0]}, draw, initial={"lr": 1.0})
    assert explorer.redraws == 1 and explorer.values == {"scale": 1, "lr": 1.0}
    explorer.controls["scale"].value = 255
    assert explorer.redraws == 2
    assert explorer.last_figure is not None
    assert explorer.last_figure.axes[0].get_title() == "scale=255 lr=1.0"
    assert explorer.last_redraw_seconds > 0  # measured; how fast is the machine's business, not a test's


def test_bad_controls_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        GridExplorer({"scale": []}, draw)
    with pytest.raises(ValueError, match="unknown controls"):
        GridExplorer({"scale": [1]}, draw, initial={"speed": 2})
    with pytest.raises(ValueError, match="not one of its values"):
        GridExplorer({"scale": [1]}, draw, initial={"scale": 3})


def test_the_image_shown_changes_when_a_control_moves() -> None:
    explorer = GridExplorer({"scale": [1, 4, 255], "lr": [0.1]}, draw)
    before = bytes(explorer.image.value)
    assert before.startswith(b"\x89PNG")
    explorer.controls["scale"].value = 4
    assert bytes(explorer.image.value) != before


def test_check_redraw_moves_a_control_and_puts_it_back() -> None:
    explorer = GridExplorer({"scale": [1, 4, 255], "lr": [0.1, 1.0]}, draw)
    seconds = explorer.check_redraw("scale", 255)
    assert seconds > 0
    assert explorer.values == {"scale": 1, "lr": 0.1}  # left where it started
    assert explorer.redraws == 3  # shown, moved, moved back
    assert explorer.last_figure is not None and explorer.last_figure.axes[0].get_title() == "scale=1 lr=0.1"


def test_check_redraw_refuses_unknown_controls_and_non_moves() -> None:
    explorer = GridExplorer({"scale": [1, 4], "lr": [0.1]}, draw)
    with pytest.raises(ValueError, match="no control named"):
        explorer.check_redraw("speed", 2)
    with pytest.raises(ValueError, match="already shows"):
        explorer.check_redraw("scale", 1)
