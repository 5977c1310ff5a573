"""Build the course's read-only site: every notebook executed afresh, with its outputs and figures.

    .venv/bin/python tools/build_site.py        # what `./course site` runs; writes artifacts/site/

Sphinx + myst-nb + sphinx-book-theme (pins in requirements-site.txt), configured in site/conf.py.
The sources are staged in artifacts/site-build/source/ (the front page site/index.md, README.md it
includes, notebooks/, docs/*.md) so that the repository keeps its own layout, and built there; the
result replaces artifacts/site/ only when the build passed. Any warning fails the build: a cell that
raises, a broken internal link, a figure that is missing.
tests/test_site.py then opens every page in Chromium.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
OUTPUT = TOP / "artifacts" / "site"
WORK = TOP / "artifacts" / "site-build"


def stage(source: Path) -> None:
    if source.exists():
        shutil.rmtree(source)
    (source / "notebooks").mkdir(parents=True)
    (source / "docs").mkdir()
    shutil.copy(TOP / "site" / "index.md", source / "index.md")
    shutil.copy(TOP / "README.md", source / "README.md")
    if (TOP / "LICENSE").is_file():  # the README's licence section links to it (a download on the site)
        shutil.copy(TOP / "LICENSE", source / "LICENSE")
    for notebook in sorted((TOP / "notebooks").glob("*.ipynb")):
        shutil.copy(notebook, source / "notebooks" / notebook.name)
    for page in sorted((TOP / "docs").glob("*.md")):
        shutil.copy(page, source / "docs" / page.name)


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"where the site goes (default: {OUTPUT})")
    args = parser.parse_args()
    output: Path = args.output.resolve()

    source, html = WORK / "source", WORK / "html"
    stage(source)
    if html.exists():
        shutil.rmtree(html)  # no page of an earlier build survives a renamed notebook
    env = dict(
        os.environ,
        COURSE_PROGRESS="0",  # no progress bars in the pages
        COURSE_RESULTS_DIR=str(WORK / "results"),  # the notebooks' claim records stay out of the cache
    )
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-b",
        "html",
        "-W",  # every warning is an error ...
        "--keep-going",  # ... reported all together
        "-T",  # with the full traceback of a notebook that fails
        "-c",
        str(TOP / "site"),
        "-d",
        str(WORK / "doctrees"),
        str(source),
        str(html),  # myst-nb keeps its files beside this folder, in WORK
    ]
    started = time.monotonic()
    result = subprocess.run(command, env=env, cwd=TOP)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        print(
            f"build_site: the site build failed after {seconds:.0f} s (see the errors above); "
            "fix the notebook or page it names and run `./course site` again.",
            file=sys.stderr,
        )
        return result.returncode
    if output.is_symlink() or output.is_file():
        output.unlink()
    elif output.exists():
        shutil.rmtree(output)
    shutil.move(html, output)  # only a build that passed replaces the site
    pages = [path for path in output.rglob("*.html") if "_static" not in path.parts]  # not the theme's fragments
    print(
        f"build_site: {len(pages)} HTML pages, {folder_size(output) / 1e6:.1f} MB, built in {seconds:.0f} s; "
        f"open {output / 'index.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
