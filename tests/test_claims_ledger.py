"""The claims ledger is current: page = render(committed results) = the notebooks' claims, and a
fresh run's numbers lie within the committed ranges (widened by a stated margin)."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import claims_ledger  # from tools/ (pytest's pythonpath, pyproject.toml)
import pytest

TOP = Path(__file__).parent.parent

NOTEBOOKS = sorted((TOP / "notebooks").glob("*.ipynb"))
UPDATE = "Run `.venv/bin/python tools/robustness.py --update-ledger` and commit docs/."

# A fresh run on another machine is one more draw of each number. The committed range comes from
# six runs (tools/robustness.py): three numeric variants of the plain seeds and two other seed
# sets, so it spans roughly what rounding and seeds do. A new draw still falls outside six draws'
# range about 2 times in 7 by chance; widening the range by MARGIN_OF_RANGE of its width on each
# side (a value as far beyond the range as the range is wide is no longer "one more draw"), plus a
# floor relative to the number's size for numbers that did not move in those six runs, makes a
# false alarm rare while a real change still fails.
MARGIN_OF_RANGE = 1.0
RELATIVE_FLOOR = 0.02
ABSOLUTE_FLOOR = 1e-9


def claims_code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = [
        "".join(c["source"]) for c in cells if c["cell_type"] == "code" and "record_claims(" in "".join(c["source"])
    ]
    assert len(found) == 1, f"{notebook.name}: expected one cell calling record_claims, found {len(found)}"
    return found[0]


def committed(stem: str) -> dict:
    path = claims_ledger.COMMITTED / f"{stem}.json"
    assert path.exists(), f"{path.relative_to(TOP)} is missing. {UPDATE}"
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_page_is_rendered_from_the_committed_results() -> None:
    assert claims_ledger.PAGE.read_text(encoding="utf-8") == claims_ledger.render(), (
        f"docs/claims.md is stale. {UPDATE}"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_the_committed_claims_are_the_notebooks_claims(notebook: Path) -> None:
    code = claims_code(notebook)
    assert re.search(rf'record_claims\(\s*"{notebook.stem}"', code), (
        f"{notebook.name} records its claims under another name"
    )
    recorded = committed(notebook.stem)["claims"]
    assert len(recorded) == code.count("Claim("), f"{notebook.name}: claims added or removed. {UPDATE}"
    for claim in recorded:
        for text in (claim["claim"], claim["where"], claim["verdict"]):
            assert json.dumps(text, ensure_ascii=False) in code, f"{notebook.name}: {text!r} changed. {UPDATE}"


def allowed_range(number: dict) -> tuple[float, float]:
    """The committed [low, high], widened by the margin stated above."""
    low, high = number["low"], number["high"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return low, high
    margin = MARGIN_OF_RANGE * (high - low) + RELATIVE_FLOOR * max(abs(low), abs(high)) + ABSOLUTE_FLOOR
    return low - margin, high + margin


def within(fresh: float, number: dict) -> bool:
    low, high = allowed_range(number)
    if math.isnan(fresh):
        return math.isnan(number["low"])
    return low <= fresh <= high


@pytest.mark.after_notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_a_fresh_run_reproduces_the_committed_numbers(notebook: Path) -> None:
    fresh_dir = Path(os.environ.get("COURSE_RESULTS_DIR", "")) if os.environ.get("COURSE_RESULTS_DIR") else None
    fresh_file = fresh_dir / f"{notebook.stem}.json" if fresh_dir else None
    if fresh_file is None or not fresh_file.exists():
        pytest.skip("the notebooks did not run in this session (`./course test` runs them and sets COURSE_RESULTS_DIR)")
    fresh = json.loads(fresh_file.read_text(encoding="utf-8"))["claims"]
    old = committed(notebook.stem)["claims"]

    def texts(claims: list[dict]) -> list[tuple[str, str, str, str]]:
        return [(c["claim"], c["where"], c["verdict"], c["detail"]) for c in claims]

    assert texts(fresh) == texts(old), f"{notebook.name}: a claim, its place, verdict or sentence changed. {UPDATE}"
    for new_claim, old_claim in zip(fresh, old, strict=True):
        assert new_claim["numbers"].keys() == old_claim["numbers"].keys(), (
            f"{new_claim['claim']}: numbers renamed. {UPDATE}"
        )
        for key, value in new_claim["numbers"].items():
            number = old_claim["numbers"][key]
            low, high = allowed_range(number)
            assert within(value, number), (
                f"{notebook.name}, {new_claim['claim']!r}: {key} = {value} now; committed {number['value']} with range "
                f"{number['low']}..{number['high']} over {number['runs']} runs, allowed {low:.4g}..{high:.4g}. "
                f"If the notebook changed: {UPDATE} If not, this machine found a claim less robust than it looked."
            )


# ----------------------------------------------------------------------------- course_utils.results


def test_record_claims_writes_rounded_numbers_and_shows_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from course_utils.results import Claim, record_claims

    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path))
    table = record_claims(
        "99_demo", [Claim("x | y", "§1", "holds", "measured {value:.2f} of {n:.0f}", {"value": 1.23456789, "n": 7})]
    )
    saved = json.loads((tmp_path / "99_demo.json").read_text(encoding="utf-8"))
    assert saved["claims"][0]["numbers"] == {"value": 1.235, "n": 7.0}
    assert saved["claims"][0]["detail"] == "measured {value:.2f} of {n:.0f}"  # the template, filled when shown
    assert "| x \\| y | §1 | **holds**: measured 1.23 of 7 |" in table._repr_markdown_()


def test_claims_refuse_unknown_verdicts_non_numbers_and_numbers_missing_from_the_sentence() -> None:
    from course_utils.results import Claim

    with pytest.raises(ValueError, match="verdict"):
        Claim("x", "§1", "mostly true", "")
    with pytest.raises(TypeError, match="int or float"):
        Claim("x", "§1", "holds", "{n}", {"n": "12"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="do not appear in the detail"):
        Claim("x", "§1", "holds", "typed 0.72 by hand", {"accuracy": 0.72})
    with pytest.raises(KeyError, match="not one of the claim's numbers"):
        Claim("x", "§1", "holds", "{accuracy} and {loss}", {"accuracy": 0.72})
    with pytest.raises(ValueError, match="braces or colons"):
        Claim("x", "§1", "holds", "{a:b}", {"a:b": 1.0})


def test_fill_formats_names_with_spaces_dots_and_slashes() -> None:
    from course_utils.results import fill

    numbers = {"best lr /255": 0.4642, "0-5 accuracy, lr 0.02": 0.74, "n": 3.0}
    assert fill("{best lr /255:.2g} vs {0-5 accuracy, lr 0.02:.1%} over {n:.0f}", numbers) == "0.46 vs 74.0% over 3"
    assert fill("{n}", numbers) == "3"


def test_merge_runs_records_value_low_high_and_runs_and_refuses_a_flipped_verdict() -> None:
    from course_utils.results import merge_runs, render_ledger

    def run(value: float, verdict: str = "holds") -> dict:
        return {
            "notebook": "99_demo",
            "claims": [
                {"claim": "c", "where": "§1", "verdict": verdict, "detail": "got {v:.2f}", "numbers": {"v": value}}
            ],
        }

    merged = merge_runs(run(0.72), [run(0.70), run(0.74)])
    assert merged["claims"][0]["numbers"]["v"] == {"value": 0.72, "low": 0.70, "high": 0.74, "runs": 3}
    page = render_ledger([merged])
    assert "**holds**: got 0.72" in page and "v = 0.72 (0.7–0.74, 3 runs)" in page
    with pytest.raises(ValueError, match="not robust"):
        merge_runs(run(0.72), [run(0.70, verdict="half-true")])


def test_the_fresh_run_margin_accepts_a_new_draw_and_rejects_a_real_change() -> None:
    number = {"value": 0.72, "low": 0.70, "high": 0.74, "runs": 6}
    assert within(0.75, number) and within(0.69, number)  # just outside the six runs: one more draw
    assert not within(0.80, number) and not within(0.60, number)  # far beyond anything seen
    fixed = {"value": 7.0, "low": 7.0, "high": 7.0, "runs": 6}
    assert within(7.0, fixed) and not within(6.0, fixed)  # a count that never moved must not move
    infinite = {"value": math.inf, "low": math.inf, "high": math.inf, "runs": 6}
    assert within(math.inf, infinite) and not within(500.0, infinite)
