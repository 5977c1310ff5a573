"""The claims ledger is current: page = render(committed results) = the notebooks' claims = a fresh run."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).parent.parent
sys.path.insert(0, str(TOP / "tools"))

import claims_ledger  # noqa: E402

NOTEBOOKS = sorted((TOP / "notebooks").glob("*.ipynb"))
UPDATE = "Run ./course test, then `python tools/claims_ledger.py update`, and commit docs/."


def claims_code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and "record_claims(" in "".join(c["source"])]
    assert len(found) == 1, f"{notebook.name}: expected one cell calling record_claims, found {len(found)}"
    return found[0]


def committed(stem: str) -> dict:
    path = claims_ledger.COMMITTED / f"{stem}.json"
    assert path.exists(), f"{path.relative_to(TOP)} is missing. {UPDATE}"
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_page_is_rendered_from_the_committed_results() -> None:
    assert claims_ledger.PAGE.read_text(encoding="utf-8") == claims_ledger.render(), f"docs/claims.md is stale. {UPDATE}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_the_committed_claims_are_the_notebooks_claims(notebook: Path) -> None:
    code = claims_code(notebook)
    assert f'record_claims("{notebook.stem}"' in code
    recorded = committed(notebook.stem)["claims"]
    assert len(recorded) == code.count("Claim("), f"{notebook.name}: claims added or removed. {UPDATE}"
    for claim in recorded:
        for text in (claim["claim"], claim["where"], claim["verdict"]):
            assert json.dumps(text, ensure_ascii=False) in code, f"{notebook.name}: {text!r} changed. {UPDATE}"


def close(fresh: float, old: float) -> bool:
    if math.isinf(fresh) or math.isinf(old) or math.isnan(fresh) or math.isnan(old):
        return fresh == old or (math.isnan(fresh) and math.isnan(old))
    return abs(fresh - old) <= 2e-3 * abs(old) + 1e-6


@pytest.mark.after_notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_a_fresh_run_reproduces_the_committed_numbers(notebook: Path) -> None:
    fresh_dir = Path(os.environ.get("COURSE_RESULTS_DIR", "")) if os.environ.get("COURSE_RESULTS_DIR") else None
    fresh_file = fresh_dir / f"{notebook.stem}.json" if fresh_dir else None
    if fresh_file is None or not fresh_file.exists():
        pytest.skip("the notebooks did not run in this session (`./course test` runs them and sets COURSE_RESULTS_DIR)")
    fresh = json.loads(fresh_file.read_text(encoding="utf-8"))["claims"]
    old = committed(notebook.stem)["claims"]
    assert [(c["claim"], c["where"], c["verdict"]) for c in fresh] == [(c["claim"], c["where"], c["verdict"]) for c in old]
    for new_claim, old_claim in zip(fresh, old):
        assert new_claim["numbers"].keys() == old_claim["numbers"].keys(), f"{new_claim['claim']}: numbers renamed. {UPDATE}"
        for key, value in new_claim["numbers"].items():
            assert close(value, old_claim["numbers"][key]), (
                f"{notebook.name}, {new_claim['claim']!r}: {key} = {value} now, {old_claim['numbers'][key]} committed. {UPDATE}"
            )


# ----------------------------------------------------------------------------- course_utils.results


def test_record_claims_writes_rounded_numbers_and_shows_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from course_utils.results import Claim, record_claims, render_ledger

    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path))
    table = record_claims("99_demo", [Claim("x | y", "§1", "holds", "measured 1.23", {"value": 1.23456789})])
    saved = json.loads((tmp_path / "99_demo.json").read_text(encoding="utf-8"))
    assert saved["claims"][0]["numbers"] == {"value": 1.235}
    assert "| x \\| y | §1 | **holds**: measured 1.23 |" in table._repr_markdown_()
    assert "value = 1.235" in render_ledger([saved])


def test_claims_refuse_unknown_verdicts_and_non_numbers() -> None:
    from course_utils.results import Claim

    with pytest.raises(ValueError, match="verdict"):
        Claim("x", "§1", "mostly true", "")
    with pytest.raises(TypeError, match="int or float"):
        Claim("x", "§1", "holds", "", {"n": "12"})  # type: ignore[dict-item]
