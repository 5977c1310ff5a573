"""The claims ledger page, docs/claims.md, from the numbers the notebooks recorded.

    python tools/claims_ledger.py render           # docs/results/*.json -> docs/claims.md
    python tools/claims_ledger.py update [DIR]     # copy a fresh run's results (default: the
                                                   # folder `./course test` writes) into
                                                   # docs/results/, then render

Maintainers run `./course test`, then `update`, and commit docs/. A test fails when the page,
the notebooks' claims or a fresh run's numbers disagree with what is committed.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))

from course_utils.results import render_ledger  # noqa: E402

COMMITTED = TOP / "docs" / "results"
PAGE = TOP / "docs" / "claims.md"
FRESH = TOP / "artifacts" / "results"  # where `./course test` has the notebooks write


def load(folder: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def render() -> str:
    return render_ledger(load(COMMITTED))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("render", "update"):
        print(__doc__)
        return 2
    if argv[0] == "update":
        source = Path(argv[1]) if len(argv) > 1 else FRESH
        found = sorted(source.glob("*.json"))
        if not found:
            print(f"No results in {source}: run ./course test first.", file=sys.stderr)
            return 1
        COMMITTED.mkdir(parents=True, exist_ok=True)
        for path in found:
            shutil.copy(path, COMMITTED / path.name)
        print(f"copied {len(found)} result files from {source}")
    PAGE.write_text(render(), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(TOP)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
