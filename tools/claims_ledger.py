"""The claims ledger page, docs/claims.md, from the numbers the notebooks recorded.

    python tools/claims_ledger.py render     # docs/results/*.json -> docs/claims.md

docs/results/ is written by `tools/robustness.py --update-ledger`, which runs every notebook under
several numeric and seed variations and records each number's value and range. Maintainers run
that after changing a notebook, then commit docs/. A test fails when the page, the notebooks'
claims or a fresh run's numbers disagree with what is committed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from course_utils.results import render_ledger

TOP = Path(__file__).resolve().parent.parent

COMMITTED = TOP / "docs" / "results"
PAGE = TOP / "docs" / "claims.md"


def load(folder: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def render() -> str:
    return render_ledger(load(COMMITTED))


def main(argv: list[str]) -> int:
    if argv != ["render"]:
        print(__doc__)
        return 2
    PAGE.write_text(render(), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(TOP)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
