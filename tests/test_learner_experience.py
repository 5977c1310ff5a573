"""What a learner meets when they open a notebook: the answer first, prose ahead of code,
bookkeeping collapsed, a prediction to commit to, the pictures that teach, and words defined.

These read the committed notebooks (no kernel): structure a reviewer would otherwise check by eye.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
LESSONS = [p for p in NOTEBOOKS if not p.name.startswith("00")]
CODE_PER_MARKDOWN = 1.3  # visible code characters per character of prose, at most
SCREEN_LINES = 45  # a visible code cell longer than this does not fit on a laptop screen
# The pictures the course promises, by the tag of the cell that draws each, and its notebook.
PICTURES = {
    "figure:unit-map": "02_saturation",
    "figure:loss-contour": "03_curvature_and_ravines",
    "figure:zigzag": "03_curvature_and_ravines",
    "figure:depth-histograms": "04_initialization",
    "figure:bn-distribution": "05_batch_norm",
}
# Words the course uses before or without a full lesson on them: 00's glossary defines each.
GLOSSARY_TERMS = (
    "pre-activation",
    "saturat",
    "dead unit",
    "fan_in",
    "Kaiming",
    "Xavier",
    "orthogonal",
    "GELU",
    "Hessian",
    "condition number",
    "Hessian-vector product",
    "power iteration",
    "preconditioner",
    "whitening",
    "ZCA",
    "batch norm",
    "learning-rate sweep",
    "seed",
)


def cells(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["cells"])


def text(cell: dict[str, Any]) -> str:
    return "".join(cell["source"])


def hidden(cell: dict[str, Any]) -> bool:
    return bool(cell.get("metadata", {}).get("jupyter", {}).get("source_hidden"))


def anchors(path: Path) -> set[str]:
    """Link targets inside a notebook: JupyterLab's heading ids (the heading's text, spaces as "-").
    JupyterLab strips `id` attributes from HTML in Markdown, so `<a id="...">` anchors never work."""
    found = set()
    for cell in cells(path):
        if cell["cell_type"] == "markdown":
            found |= {heading.strip().replace(" ", "-") for heading in re.findall(r"^#+ (.+)$", text(cell), re.M)}
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_answer_comes_first(path: Path) -> None:
    second = text(cells(path)[1])
    assert cells(path)[1]["cell_type"] == "markdown" and second.startswith("## In short"), (
        f"{path.name}: the second cell should be the '## In short' answer, found {second[:60]!r}"
    )
    if path in LESSONS:
        links = re.findall(r"\]\(#([^)]+)\)", second)
        assert len(links) >= 2, f"{path.name}: 'In short' should link each answer to the section that measures it"
        missing = sorted(set(links) - anchors(path))
        assert not missing, f"{path.name}: 'In short' links to {missing}, which no heading or anchor defines"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_bookkeeping_is_collapsed_and_prose_leads(path: Path) -> None:
    code = markdown = 0
    for number, cell in enumerate(cells(path)):
        source = text(cell)
        if cell["cell_type"] == "markdown":
            markdown += len(source)
            continue
        if re.search(r"record_claims\(|\.check_redraw\(", source):
            assert hidden(cell), f"{path.name} cell {number}: collapse bookkeeping (claims, widget self-tests)"
        if hidden(cell):
            continue
        code += len(source)
        lines = source.count("\n") + 1
        assert lines <= SCREEN_LINES, f"{path.name} cell {number}: {lines} lines of code, more than a screen"
    assert code <= CODE_PER_MARKDOWN * markdown, (
        f"{path.name}: {code} characters of visible code for {markdown} of prose, "
        f"more than {CODE_PER_MARKDOWN}× — move logic to course_utils or collapse bookkeeping"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_asks_for_a_prediction_and_checks_it(path: Path) -> None:
    notebook = cells(path)
    headings = [
        i for i, c in enumerate(notebook) if c["cell_type"] == "markdown" and re.search(r"^#+ .*Predict", text(c), re.M)
    ]
    assert headings, f"{path.name}: no exercise heading containing 'Predict'"
    after = "\n".join(text(c) for c in notebook[headings[0] :] if c["cell_type"] == "code")
    assert re.search(r"= None\b", after), f"{path.name}: the prediction exercise has no `... = None` for the guess"
    assert re.search(r"check_(prediction|choice)\(", after), f"{path.name}: the prediction is never checked"


def test_the_pictures_are_drawn_where_they_teach() -> None:
    for tag, stem in PICTURES.items():
        notebook = cells(next(p for p in NOTEBOOKS if p.stem == stem))
        tagged = [c for c in notebook if tag in c["metadata"].get("tags", [])]
        assert len(tagged) == 1 and tagged[0]["cell_type"] == "code", f"{stem}: expected one code cell tagged {tag!r}"


def test_the_glossary_defines_the_course_s_jargon() -> None:
    start = next(text(c) for c in cells(NOTEBOOKS[0]) if text(c).startswith("## Glossary"))
    missing = [term for term in GLOSSARY_TERMS if term.lower() not in start.lower()]
    assert not missing, f"00's glossary does not define {missing}"


def test_links_between_notebooks_reach_a_heading() -> None:
    by_name = {p.name: p for p in NOTEBOOKS}
    checked = 0
    for path in NOTEBOOKS:
        for cell in cells(path):
            if cell["cell_type"] != "markdown":
                continue
            for target, anchor in re.findall(r"\]\((\d\d_\w+\.ipynb)#([^)\s]+)\)", text(cell)):
                assert target in by_name, f"{path.name} links to {target}, which is not a notebook"
                assert anchor in anchors(by_name[target]), f"{path.name} links to {target}#{anchor}: no such heading"
                checked += 1
    assert checked >= 15, f"expected the checklist's links at least, found {checked} links between notebooks"


def test_every_line_of_the_checklist_links_to_the_section_that_measured_it() -> None:
    path = next(p for p in NOTEBOOKS if p.name.startswith("06"))
    checklist = next(text(c) for c in cells(path) if text(c).startswith("## 6 · The normalization checklist"))
    items = re.split(r"\n(?=\d+\. )", checklist)[1:]
    assert len(items) >= 12, f"the checklist has {len(items)} numbered lines, expected at least 12"
    for item in items:
        assert re.search(r"\]\(\d\d_\w+\.ipynb#[^)\s]+\)", item), (
            f"checklist line without a measured section: {item[:60]!r}"
        )
