"""Remove outputs, execution counts and run metadata from notebooks, in place.

Notebooks are committed stripped: learners run them themselves, and a stored output from an
out-of-order run would be a claim no cell backs. tests/test_notebooks_are_clean.py checks it.
"""

from __future__ import annotations

import sys

import nbformat


def strip(path: str) -> bool:
    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    # Saved widget state and the kernel's exact version only make diffs noisy.
    notebook.metadata.pop("widgets", None)
    notebook.metadata["language_info"] = {"name": "python"}
    if nbformat.writes(notebook) == before:
        return False
    nbformat.write(notebook, path)
    return True


if __name__ == "__main__":
    changed = [path for path in sys.argv[1:] if strip(path)]
    print(f"stripped {len(changed)} of {len(sys.argv) - 1} notebooks" + "".join(f"\n  {p}" for p in changed))
