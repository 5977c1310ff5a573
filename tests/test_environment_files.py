"""The pins agree everywhere: requirements.txt, binder/requirements.txt and environment.yml."""

from __future__ import annotations

import re
from pathlib import Path

TOP = Path(__file__).parent.parent
# conda-forge names the CPU-only PyTorch build "pytorch-cpu".
CONDA_NAMES = {"pytorch-cpu": "torch"}


def pip_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, version = line.split("==")
            pins[name.lower()] = version.split("+")[0]  # 2.14.1+cpu pins the same release
    return pins


def conda_pins(path: Path) -> dict[str, str]:
    pins = {}
    for match in re.finditer(r"^\s*-\s*([\w.-]+)=([\w.]+)\s*$", path.read_text(), re.M):
        name, version = match.groups()
        if name != "python":
            pins[CONDA_NAMES.get(name, name).lower()] = version
    return pins


def test_every_requirement_is_pinned_exactly() -> None:
    for name in ("requirements.txt", "requirements-test.txt", "requirements-hub.txt"):
        for line in (TOP / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            assert not line or "==" in line, f"{name}: {line!r} is not pinned with =="


def test_binder_uses_the_same_pins_with_cpu_wheels() -> None:
    # Binder's image brings the JupyterLab its hub extension runs with; pinning ours would replace it.
    course_pins = {k: v for k, v in pip_pins(TOP / "requirements.txt").items() if k != "jupyterlab"}
    assert pip_pins(TOP / "binder" / "requirements.txt") == course_pins
    assert "+cpu" in (TOP / "binder" / "requirements.txt").read_text()


def test_conda_environment_uses_the_same_pins() -> None:
    assert conda_pins(TOP / "environment.yml") == pip_pins(TOP / "requirements.txt")
