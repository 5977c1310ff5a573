"""Notebooks are committed without outputs, and none of them skips a cell or has a fast mode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_the_course_starts_with_notebook_00() -> None:
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped_and_runs_every_cell(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for number, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        where = f"{path.name} cell {number}"
        assert cell.get("outputs") == [], f"{where} has stored outputs: run `./course strip`"
        assert cell.get("execution_count") is None, f"{where} has an execution count: `./course strip`"
        source = "".join(cell["source"])
        assert not re.search(r"NBVAL_SKIP|nbval-skip", source), f"{where} is skipped under nbval"
        assert not re.search(r"\b(FAST|SMOKE|QUICK)_?\w*\b", source), f"{where} has a fast mode"
