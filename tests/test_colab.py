"""Colab: every notebook links to Colab and Binder at one address, and its first code cell installs
the course's package on Colab only (tools/links.py writes both from pyproject.toml)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import links
import pytest

TOP = Path(__file__).parent.parent


def test_every_link_and_colab_cell_agrees_with_pyproject(capsys: pytest.CaptureFixture[str]) -> None:
    assert links.main(["--check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("path", links.NOTEBOOKS, ids=lambda p: p.name)
def test_the_colab_cell_is_the_first_code_cell(path: Path) -> None:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    first_code = next(c for c in cells if c["cell_type"] == "code")
    assert links.COLAB_TAG in first_code["metadata"].get("tags", []), f"{path.name}: run tools/links.py"
    assert "[Open in Colab](https://colab.research.google.com/github/" in "".join(cells[0]["source"])


def test_a_broken_address_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[project.urls]\nRepository = "github.com/x"\n')
    monkeypatch.setattr(links, "TOP", tmp_path)
    with pytest.raises(SystemExit, match="https://github.com/<owner>/<name>"):
        links.repository()


def run_cell(python: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    source = links.colab_cell_source(links.repository())
    # cwd: anywhere but the repository, whose course_utils/ folder `python -c` would import
    return subprocess.run(
        [str(python), "-c", source], env=env, capture_output=True, text=True, timeout=600, cwd=python.parent
    )


def has_course_utils(python: Path, env: dict[str, str]) -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('course_utils') is None)"
    return subprocess.run([str(python), "-c", probe], env=env, cwd=python.parent).returncode == 0


def test_the_colab_cell_installs_the_package_on_colab_only(tmp_path: Path) -> None:
    # A fresh environment without course_utils (nor torch: the cell installs with --no-deps, as
    # Colab has the dependencies), and a local copy of the package standing in for the repository.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    package = tmp_path / "repository"
    package.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(TOP / name, package / name)
    shutil.copytree(TOP / "course_utils", package / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    stand_in = tmp_path / "colab"
    (stand_in / "google" / "colab").mkdir(parents=True)
    (stand_in / "google" / "__init__.py").write_text("")
    (stand_in / "google" / "colab" / "__init__.py").write_text("")
    base = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    nowhere = str(tmp_path / "no-such-package")  # any install attempt from here would fail

    off_colab = run_cell(python, dict(base, COURSE_PACKAGE=nowhere))
    assert off_colab.returncode == 0, off_colab.stderr
    assert not has_course_utils(python, base), "off Colab the cell must not install anything"

    on_colab = dict(base, PYTHONPATH=str(stand_in))
    installed = run_cell(python, dict(on_colab, COURSE_PACKAGE=str(package)))
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert has_course_utils(python, on_colab), "on Colab the cell must install course_utils"

    again = run_cell(python, dict(on_colab, COURSE_PACKAGE=nowhere))
    assert again.returncode == 0, f"with course_utils present the cell must not reinstall: {again.stderr[-2000:]}"
