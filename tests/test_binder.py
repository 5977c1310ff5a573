"""What repo2docker (Binder) reads from binder/, and the README's launch links."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml
from packaging.requirements import Requirement

TOP = Path(__file__).parent.parent
BINDER = TOP / "binder"


def test_binder_files_parse() -> None:
    assert re.fullmatch(r"python-3\.\d+\n?", (BINDER / "runtime.txt").read_text())
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("--"):
            requirement = Requirement(line)  # raises on anything pip would reject
            assert str(requirement.specifier).startswith("=="), line
    environment = yaml.safe_load((TOP / "environment.yml").read_text())
    assert environment["name"] and "conda-forge" in environment["channels"]
    subprocess.run(["bash", "-n", str(BINDER / "postBuild")], check=True)


def test_post_build_is_executable_installs_then_fetches_the_data() -> None:
    post_build = BINDER / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    lines = [line for line in post_build.read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "set -euo pipefail"
    install = next(i for i, line in enumerate(lines) if line.startswith("pip install"))
    data = next(i for i, line in enumerate(lines) if "course_utils.data" in line)
    assert install < data  # the data step uses the installed package; it bakes the files into the image


def test_post_build_stops_at_the_first_failure(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "pip").write_text("#!/bin/sh\nexit 3\n")
    (fake_bin / "python").write_text(f"#!/bin/sh\ntouch {tmp_path}/python-ran\n")
    for tool in fake_bin.iterdir():
        tool.chmod(0o755)
    result = subprocess.run(
        ["bash", str(BINDER / "postBuild")],
        cwd=tmp_path,
        capture_output=True,
        env=dict(os.environ, PATH=f"{fake_bin}:/usr/bin:/bin"),
    )
    assert result.returncode == 3 and not (tmp_path / "python-ran").exists()


def test_every_launch_link_in_the_readme_opens_a_notebook_that_exists() -> None:
    readme = (TOP / "README.md").read_text()
    links = re.findall(r"https://mybinder\.org/v2/gh/[^)\s]+", readme)
    assert len(links) >= 6  # the badge and one per notebook
    notebooks = {p.name for p in (TOP / "notebooks").glob("*.ipynb")}
    linked = set()
    for link in links:
        target = re.search(r"urlpath=lab/tree/(notebooks/[\w.-]+\.ipynb)", link)
        assert target, f"launch link without a notebook: {link}"
        assert (TOP / target.group(1)).exists(), f"{link} points at a missing notebook"
        linked.add(Path(target.group(1)).name)
    assert linked == notebooks, f"notebooks without a launch link: {sorted(notebooks - linked)}"
