"""Interactive controls for precomputed results: move a slider, the figure redraws at once.

Training inside a slider callback would take seconds, so notebooks compute a grid of runs first
and a `GridExplorer` only looks results up and redraws.
"""

from __future__ import annotations

import gc
import io
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from IPython.display import display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DrawFunction = Callable[[Figure, dict[str, Any]], None]


class GridExplorer:
    """One selection slider per control; `draw(figure, values)` fills a fresh figure.

    `controls` maps a label to the values it can take (shown with `format_value`).
    `last_redraw_seconds` is the time of the latest redraw, for the course's 0.3 s budget.
    """

    def __init__(
        self,
        controls: Mapping[str, Sequence[Any]],
        draw: DrawFunction,
        *,
        initial: Mapping[str, Any] | None = None,
        figsize: tuple[float, float] = (10.0, 3.6),
        format_value: Callable[[Any], str] = str,
    ) -> None:
        if not controls or any(len(values) == 0 for values in controls.values()):
            raise ValueError("Every control needs at least one value to choose from.")
        initial = dict(initial or {})
        unknown = set(initial) - set(controls)
        if unknown:
            raise ValueError(f"initial names unknown controls {sorted(unknown)}; controls are {list(controls)}.")
        self._draw = draw
        self._figsize = figsize
        self.controls: dict[str, widgets.SelectionSlider] = {}
        for label, values in controls.items():
            start = initial.get(label, values[0])
            if start not in values:
                raise ValueError(f"initial value {start!r} for {label!r} is not one of its values.")
            self.controls[label] = widgets.SelectionSlider(
                options=[(format_value(v), v) for v in values],
                value=start,
                description=label,
                continuous_update=False,
                style={"description_width": "initial"},
                layout=widgets.Layout(width="460px"),
            )
        # The figure is rendered to PNG here and shown in an Image widget: faster than the
        # inline backend's tight-bbox rendering, and the page never flickers between redraws.
        self.image = widgets.Image(format="png")
        self._dpi = 80
        self.redraws = 0
        self.last_redraw_seconds = 0.0
        self.last_figure: Figure | None = None
        for slider in self.controls.values():
            slider.observe(lambda _change: self.redraw(), names="value")
        self.widget = widgets.VBox([*self.controls.values(), self.image])
        self.redraw()

    @property
    def values(self) -> dict[str, Any]:
        return {label: slider.value for label, slider in self.controls.items()}

    def redraw(self) -> None:
        # No garbage-collection pause in the middle of a redraw: a notebook full of results makes
        # a full collection cost a few hundred milliseconds. Collection resumes right after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._redraw()
        finally:
            if collecting:
                gc.enable()

    def _redraw(self) -> None:
        start = time.perf_counter()
        # A bare Figure on an Agg canvas: no pyplot bookkeeping, nothing to close afterwards.
        figure = Figure(figsize=self._figsize, dpi=self._dpi)
        FigureCanvasAgg(figure)
        self._draw(figure, self.values)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})  # fast to encode
        self.image.value = buffer.getvalue()
        self.last_figure = figure
        self.redraws += 1
        self.last_redraw_seconds = time.perf_counter() - start

    def check_redraw(self, label: str, value: Any) -> float:
        """Move `label` to `value` as a learner would, check the figure redrew exactly once, and move
        it back, so the explorer is left where the notebook's text says it starts. Returns the
        seconds that redraw took (for the course's 0.3 s budget)."""
        if label not in self.controls:
            raise ValueError(f"no control named {label!r}; the controls are {list(self.controls)}.")
        slider = self.controls[label]
        start, before = slider.value, self.redraws
        if value == start:
            raise ValueError(f"{label!r} already shows {value!r}: pick another value, so the move redraws.")
        slider.value = value
        seconds, moved_redraws = self.last_redraw_seconds, self.redraws - before
        slider.value = start
        if moved_redraws != 1:
            raise AssertionError(f"moving {label!r} redrew the figure {moved_redraws} times, expected once.")
        return seconds

    def _ipython_display_(self) -> None:
        display(self.widget)  # type: ignore[no-untyped-call]  # IPython ships no annotations here
