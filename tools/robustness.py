"""Run every notebook under the numeric and seed variations a learner's machine brings, and show
which claims hold, and how far each ledger number moves.

    .venv/bin/python tools/robustness.py [--notebook 05] [--variant plain --variant seeds+1 ...]
                                         [--update-ledger]

Each notebook runs once per variant, in a fresh kernel, every cell even after a failing one (the
executed copy, with its outputs, is kept in artifacts/robustness/<variant>/):

    plain          as on this machine
    generic-cpu    ATEN_CPU_CAPABILITY=default (PyTorch's generic kernels, no AVX2/AVX-512)
    one-thread     OMP_NUM_THREADS=1 (other reduction orders)
    mkl-compatible MKL_CBWR=COMPATIBLE (MKL's conditional-numerical-reproducibility mode)
    seeds+1        COURSE_SEED_OFFSET=1 (every seed of the course shifted: new inits, batch orders)
    seeds+2        COURSE_SEED_OFFSET=2

It prints pass/fail per notebook and variant (with every failing assert and its message), then every
ledger number: its plain-run value and its range over the variants. With --update-ledger (all
variants, all notebooks passing) it writes those ranges to docs/results/ and re-renders
docs/claims.md. About 25 minutes for everything on a 2-core CPU; a maintainer's tool, not part of
`./course test`. Results of each run stay in artifacts/robustness/<variant>/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import claims_ledger  # tools/ is on the path: this file runs as a script

from course_utils.results import merge_runs

TOP = Path(__file__).resolve().parent.parent

OUT = TOP / "artifacts" / "robustness"
VARIANTS: dict[str, dict[str, str]] = {
    "plain": {},
    "generic-cpu": {"ATEN_CPU_CAPABILITY": "default"},
    "one-thread": {"OMP_NUM_THREADS": "1"},
    "mkl-compatible": {"MKL_CBWR": "COMPATIBLE"},
    "seeds+1": {"COURSE_SEED_OFFSET": "1"},
    "seeds+2": {"COURSE_SEED_OFFSET": "2"},
}
# Variables a caller's shell may carry that would silently change a variant.
CLEARED = ("ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS", "MKL_CBWR", "COURSE_SEED_OFFSET", "MKL_NUM_THREADS")


def execute(notebook: Path, executed: Path) -> int:
    """Run every cell of `notebook` in a fresh kernel (errors recorded, not raised) and save it with
    its outputs. On notebooks committed without outputs this checks what `pytest --nbval-lax` checks
    (every cell runs without an error: nbval compares no output of a cell that has no stored run),
    and it goes on past a failing cell, so one run shows every failing claim."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    client.execute()
    nbformat.write(nb, executed)
    return 0


def failures_of(executed: Path) -> list[str]:
    """`cell N: <the failing line> | <the error>` for every cell that raised."""
    import nbformat

    found = []
    for index, cell in enumerate(nbformat.read(executed, as_version=4).cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.get("traceback", [])))
                failing = [m.group(1).strip() for m in re.finditer(r"^-+>\s*\d+\s*(.*)$", trace, re.M)]
                where = failing[-1] if failing else ""
                found.append(f"cell {index}: {where} | {output['ename']}: {output['evalue']}".strip())
    return found


def run_notebook(notebook: Path, variant: str) -> dict:
    """One run of `notebook` under `variant`, in a subprocess that carries the variant's environment."""
    results = OUT / variant
    results.mkdir(parents=True, exist_ok=True)
    executed = results / notebook.name
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(VARIANTS[variant], COURSE_RESULTS_DIR=str(results), COURSE_PROGRESS="0", PYTHONHASHSEED="0")
    (results / f"{notebook.stem}.json").unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--execute", str(notebook), str(executed)],
        cwd=TOP,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0 or not executed.exists():
        failures = [f"the run itself failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"]
    else:
        failures = failures_of(executed)
    return {"passed": not failures, "seconds": seconds, "failures": failures}


def reused(notebook: Path, variant: str) -> dict:
    """The earlier run of `notebook` under `variant`, if it ran the notebook's current cells."""
    import nbformat

    executed = OUT / variant / notebook.name
    if not executed.exists():
        return {"passed": False, "seconds": 0.0, "failures": [f"no earlier run in {executed.parent}"]}
    sources = [c.source for c in nbformat.read(notebook, as_version=4).cells]
    if sources != [c.source for c in nbformat.read(executed, as_version=4).cells]:
        return {"passed": False, "seconds": 0.0, "failures": ["the notebook changed since this run: run it again"]}
    failures = failures_of(executed)
    return {"passed": not failures, "seconds": 0.0, "failures": failures}


def load_numbers(variant: str, stem: str) -> dict | None:
    path = OUT / variant / f"{stem}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebook", action="append", default=[], help="run notebooks whose name contains this")
    parser.add_argument("--variant", action="append", default=[], choices=list(VARIANTS), help="run only these")
    parser.add_argument("--update-ledger", action="store_true", help="write the ranges into docs/results/")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="run nothing: use the runs already in artifacts/robustness/ (refused for a notebook "
        "whose cells changed since its run)",
    )
    parser.add_argument("--execute", nargs=2, metavar=("NOTEBOOK", "EXECUTED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute:
        return execute(Path(args.execute[0]), Path(args.execute[1]))

    notebooks = sorted((TOP / "notebooks").glob("*.ipynb"))
    if args.notebook:
        notebooks = [n for n in notebooks if any(f in n.name for f in args.notebook)]
    variants = args.variant or list(VARIANTS)
    if not notebooks:
        parser.error(f"no notebook matches {args.notebook}")
    if args.update_ledger and variants[0] != "plain":
        parser.error("--update-ledger needs the plain variant (it gives each number's value)")

    outcome: dict[tuple[str, str], dict] = {}
    for notebook in notebooks:
        for variant in variants:
            result = reused(notebook, variant) if args.reuse else run_notebook(notebook, variant)
            outcome[notebook.stem, variant] = result
            status = "pass" if result["passed"] else "FAIL" + "".join(f"\n    {f}" for f in result["failures"])
            print(f"{notebook.stem:<28}{variant:<16}{result['seconds']:6.0f} s  {status}", flush=True)

    print("\n| notebook | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for notebook in notebooks:
        cells = [
            f"{'pass' if outcome[notebook.stem, v]['passed'] else 'FAIL'} {outcome[notebook.stem, v]['seconds']:.0f} s"
            for v in variants
        ]
        print(f"| {notebook.stem} | " + " | ".join(cells) + " |")

    merged = {}
    for notebook in notebooks:
        runs = [
            r for r in (load_numbers(v, notebook.stem) for v in variants if outcome[notebook.stem, v]["passed"]) if r
        ]
        if not runs:
            continue
        merged[notebook.stem] = merge_runs(runs[0], runs[1:])
        print(f"\n{notebook.stem}: value (range over {len(runs)} passing runs)")
        for claim in merged[notebook.stem]["claims"]:
            for name, number in claim["numbers"].items():
                spread = number["high"] - number["low"]
                moved = f"{spread / abs(number['value']):.1%}" if number["value"] else "-"
                print(
                    f"  {claim['claim'][:48]:<50}{name[:36]:<38}{number['value']:>11.4g}  "
                    f"({number['low']:.4g} .. {number['high']:.4g}; moves {moved})"
                )

    summary = OUT / "summary.json"
    summary.write_text(json.dumps({f"{n}|{v}": r for (n, v), r in outcome.items()}, indent=1), encoding="utf-8")
    all_passed = all(r["passed"] for r in outcome.values())
    if args.update_ledger:
        if not all_passed or variants != list(VARIANTS):
            print("\nNot updating the ledger: it needs every variant, all passing.", file=sys.stderr)
            return 1
        claims_ledger.COMMITTED.mkdir(parents=True, exist_ok=True)
        for stem, result in merged.items():
            path = claims_ledger.COMMITTED / f"{stem}.json"
            path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        claims_ledger.PAGE.write_text(claims_ledger.render(), encoding="utf-8")
        print(f"\nwrote {len(merged)} files in docs/results/ and docs/claims.md")
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
