"""The course budget: run every notebook, record its time, its kernel's peak memory and how long
each widget takes to redraw; print the table, and with --readme put it into README.md.

    .venv/bin/python tools/budget.py [--readme] [notebooks/NN_name.ipynb ...]

Targets: at most 60 s and 1.5 GB per notebook, 5 minutes for the whole course on a 2-core CPU,
0.3 s per widget redraw. Run it on a quiet machine: anything else running slows the numbers.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TOP = Path(__file__).resolve().parent.parent
README = TOP / "README.md"
START, END = "<!-- budget:start -->", "<!-- budget:end -->"
TARGETS = {"seconds": 60.0, "peak_gb": 1.5, "course_seconds": 300.0, "redraw_seconds": 0.3}

# Appended to a copy of each notebook: peak memory of this kernel, and every widget slider moved
# through up to four of its values, timing each redraw callback.
PROBE = """
import gc as _gc, json as _json, resource as _resource
from course_utils.widgets import GridExplorer as _GridExplorer
_redraws = []
for _explorer in [o for o in _gc.get_objects() if isinstance(o, _GridExplorer)]:
    for _slider in _explorer.controls.values():
        _start = _slider.value
        for _value in [v for _, v in _slider.options][:4]:
            if _value != _slider.value:
                _slider.value = _value
                _redraws.append(_explorer.last_redraw_seconds)
        _slider.value = _start
print("BUDGET " + _json.dumps({"peak_rss_kb": _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss,
                               "redraws": _redraws}))
"""


def measure(path: Path) -> dict:
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - started
    timings = [c.metadata.get("execution", {}) for c in notebook.cells[:-1] if c.cell_type == "code"]
    begin = min(datetime.fromisoformat(t["iopub.execute_input"].replace("Z", "+00:00")) for t in timings)
    end = max(datetime.fromisoformat(t["shell.execute_reply"].replace("Z", "+00:00")) for t in timings)
    probe_output = "".join(o.get("text", "") for o in notebook.cells[-1].outputs if o.get("output_type") == "stream")
    probe_line = next(line for line in probe_output.splitlines() if line.startswith("BUDGET "))
    probe = json.loads(probe_line[len("BUDGET ") :])
    redraws = sorted(probe["redraws"])
    return {
        "notebook": path.stem,
        "seconds": (end - begin).total_seconds(),
        "wall_seconds": wall,
        "peak_gb": probe["peak_rss_kb"] / 1024**2,
        "redraws": len(redraws),
        "redraw_median": redraws[len(redraws) // 2] if redraws else None,
        "redraw_max": redraws[-1] if redraws else None,
    }


def table(rows: list[dict]) -> str:
    def flag(ok: bool) -> str:
        return "" if ok else " ✗"

    lines = [
        "| notebook | run time | peak memory | widget redraws (median / max) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        redraw = (
            "-"
            if r["redraw_max"] is None
            else f"{r['redraw_median']:.2f} s / {r['redraw_max']:.2f} s ({r['redraws']} moves)"
            f"{flag(r['redraw_max'] <= TARGETS['redraw_seconds'])}"
        )
        lines.append(
            f"| `{r['notebook']}` | {r['seconds']:.0f} s{flag(r['seconds'] <= TARGETS['seconds'])} | "
            f"{r['peak_gb']:.2f} GB{flag(r['peak_gb'] <= TARGETS['peak_gb'])} | {redraw} |"
        )
    total = sum(r["seconds"] for r in rows)
    lines.append(
        f"| **whole course** | **{total:.0f} s**{flag(total <= TARGETS['course_seconds'])} | "
        f"max {max(r['peak_gb'] for r in rows):.2f} GB | |"
    )
    return "\n".join(lines)


BROWSER_MEMORY = TOP / "artifacts" / "browser" / "memory.json"


def binder_line() -> str:
    """Memory as Binder counts it (server plus open kernels, 00 → 06 in JupyterLab, each tab closed
    after its notebook), as tests/test_browser.py last measured it; Binder's limit is 2 GB."""
    if not BROWSER_MEMORY.exists():
        return "Binder-style memory: not measured yet (`./course test tests/test_browser.py` measures it)."
    m = json.loads(BROWSER_MEMORY.read_text(encoding="utf-8"))
    return (
        f"Binder-style memory, JupyterLab's server plus the kernels open while going through 00 → 06 in a "
        f"browser, closing each tab (which shuts its kernel down): peak **{m['peak_gb']:.2f} GB**, "
        f"{m['kernels_at_peak']} kernel at the peak (Binder's limit: 2 GB; measured by tests/test_browser.py "
        f"on {m['date']}, {m['machine']})."
    )


def main(argv: list[str]) -> int:
    write = "--readme" in argv
    paths = [Path(a) for a in argv if not a.startswith("--")] or sorted((TOP / "notebooks").glob("*.ipynb"))
    os.environ.setdefault("COURSE_PROGRESS", "0")
    rows = []
    for path in paths:
        row = measure(path)
        rows.append(row)
        print(
            f"{row['notebook']}: {row['seconds']:.1f} s, {row['peak_gb']:.2f} GB, redraw max {row['redraw_max']}",
            flush=True,
        )
    text = table(rows)
    print(text)
    if write:
        stamp = (
            f"Measured by `tools/budget.py` on {datetime.now():%Y-%m-%d}: {os.cpu_count()} CPU cores, "
            f"{platform.machine()}, Python {platform.python_version()}; kernel time from the first cell "
            "to the last, peak resident memory of the kernel. Targets: ≤ 60 s and ≤ 1.5 GB per notebook, "
            "≤ 5 min for the course, ≤ 0.3 s per redraw (✗ marks a miss)."
        )
        block = f"{START}\n{stamp}\n\n{text}\n\n{binder_line()}\n{END}"
        readme = README.read_text(encoding="utf-8")
        if START in readme:
            readme = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, readme, flags=re.S)
        else:
            readme = readme.replace("## Set-up", f"## Budget\n\n{block}\n\n## Set-up", 1)
        README.write_text(readme, encoding="utf-8")
    misses = [
        r
        for r in rows
        if r["seconds"] > TARGETS["seconds"]
        or r["peak_gb"] > TARGETS["peak_gb"]
        or (r["redraw_max"] or 0) > TARGETS["redraw_seconds"]
    ]
    return 1 if misses or sum(r["seconds"] for r in rows) > TARGETS["course_seconds"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
