"""The repository's address lives in one place; this writes it everywhere a link needs it.

The one place is `[project.urls] Repository` in pyproject.toml. From it this tool writes:

* the Binder and Colab links of README.md and of every notebook's first cell (one line under the
  title: "Open in Colab · Launch on Binder"), and
* every notebook's first code cell, which on Colab only installs `course_utils` from the
  repository (Colab has PyTorch and the rest, but not the course's own package).

Publishing under another address is one edit to pyproject.toml, then:

    .venv/bin/python tools/links.py          # rewrite the links and the Colab cells
    .venv/bin/python tools/links.py --check  # list what disagrees with pyproject.toml; exit 1 if any

tests/test_colab.py runs the check, and runs the Colab cell in a fresh environment.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((TOP / "notebooks").glob("*.ipynb"))
COLAB_TAG = "colab-install"  # marks the Colab cell, so the tool finds it again

COLAB_CELL = """# @title On Colab only: install the course's package (elsewhere this cell does nothing)
import importlib
import importlib.util
import os
import subprocess
import sys

try:
    import google.colab  # noqa: F401  (importable only on Colab)
except ImportError:
    pass
else:
    if importlib.util.find_spec("course_utils") is None:
        source = os.environ.get("COURSE_PACKAGE", "git+{repository}.git")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", source], check=True)
        importlib.invalidate_caches()"""


def repository() -> str:
    """https://github.com/<owner>/<name>, as pyproject.toml states it."""
    urls = tomllib.loads((TOP / "pyproject.toml").read_text(encoding="utf-8"))["project"].get("urls", {})
    address = str(urls.get("Repository", "")).rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", address):
        raise SystemExit(
            f"pyproject.toml: [project.urls] Repository is {address!r}; set it to "
            "https://github.com/<owner>/<name> (Binder and Colab open GitHub repositories)."
        )
    return address


def launch_line(notebook: str, address: str) -> str:
    slug = address.removeprefix("https://github.com/")
    return (
        f"[Open in Colab](https://colab.research.google.com/github/{slug}/blob/main/notebooks/{notebook}) · "
        f"[Launch on Binder](https://mybinder.org/v2/gh/{slug}/HEAD?urlpath=lab/tree/notebooks/{notebook})"
    )


def colab_cell_source(address: str) -> str:
    return COLAB_CELL.replace("{repository}", address)


def rewrite_readme(text: str, address: str) -> str:
    slug = address.removeprefix("https://github.com/")
    text = re.sub(r"https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/", f"https://mybinder.org/v2/gh/{slug}/", text)
    return re.sub(
        r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/",
        f"https://colab.research.google.com/github/{slug}/",
        text,
    )


def rewrite_notebook(notebook: dict, name: str, address: str) -> dict:
    """The launch line under the title, and the Colab cell as the first code cell."""
    title = notebook["cells"][0]
    lines = "".join(title["source"]).split("\n")
    line = launch_line(name, address)
    if len(lines) > 2 and lines[2].startswith("[Open in Colab]"):
        lines[2] = line
    else:
        lines[1:1] = ["", line]
    title["source"] = "\n".join(lines).splitlines(keepends=True)

    source = colab_cell_source(address)
    cells = notebook["cells"]
    found = [i for i, c in enumerate(cells) if COLAB_TAG in c.get("metadata", {}).get("tags", [])]
    if found:
        cell = cells[found[0]]
    else:
        first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
        cell = {"cell_type": "code", "execution_count": None, "id": "colab-install", "metadata": {}, "outputs": []}
        cells.insert(first_code, cell)
    cell["source"] = source.splitlines(keepends=True)
    # Collapsed in JupyterLab and shown as a form on Colab: set-up, not part of the lesson.
    cell["metadata"] = {"cellView": "form", "jupyter": {"source_hidden": True}, "tags": [COLAB_TAG]}
    return notebook


def dump(notebook: dict) -> str:
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; list the files that disagree")
    args = parser.parse_args(argv)
    address = repository()
    stale = []
    readme = TOP / "README.md"
    wanted = rewrite_readme(readme.read_text(encoding="utf-8"), address)
    if wanted != readme.read_text(encoding="utf-8"):
        stale.append(readme)
        if not args.check:
            readme.write_text(wanted, encoding="utf-8")
    for path in NOTEBOOKS:
        text = path.read_text(encoding="utf-8")
        wanted = dump(rewrite_notebook(json.loads(text), path.name, address))
        if wanted != text:
            stale.append(path)
            if not args.check:
                path.write_text(wanted, encoding="utf-8")
    for path in stale:
        print(f"{'disagrees with' if args.check else 'rewritten from'} pyproject.toml: {path.relative_to(TOP)}")
    if args.check and stale:
        print("Run `.venv/bin/python tools/links.py` to rewrite them.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
