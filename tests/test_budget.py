"""The budget report: its table marks misses, and the README shows a row for every notebook."""

from __future__ import annotations

import re
from pathlib import Path

import budget  # from tools/ (pytest's pythonpath, pyproject.toml)

TOP = Path(__file__).parent.parent


def test_the_table_marks_every_miss() -> None:
    rows = [
        {"notebook": "a", "seconds": 30.0, "peak_gb": 1.0, "redraws": 4, "redraw_median": 0.1, "redraw_max": 0.2},
        {"notebook": "b", "seconds": 70.0, "peak_gb": 1.6, "redraws": 4, "redraw_median": 0.2, "redraw_max": 0.4},
    ]
    lines = budget.table(rows).splitlines()
    assert "✗" not in lines[2]
    assert lines[3].count("✗") == 3  # time, memory and redraw all missed
    assert lines[-1].startswith("| **whole course** | **100 s**")


def test_the_readme_shows_the_budget_of_every_notebook() -> None:
    readme = (TOP / "README.md").read_text(encoding="utf-8")
    block = readme.split(budget.START, 1)[1].split(budget.END, 1)[0]
    for notebook in sorted((TOP / "notebooks").glob("*.ipynb")):
        assert re.search(rf"\| `{notebook.stem}` \| \d+ s", block), f"README budget table lacks {notebook.stem}"
    assert "whole course" in block
