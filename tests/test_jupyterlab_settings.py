"""tools/jupyterlab_settings.py: the course's JupyterLab defaults, merged into what is there.

That the setting works (closing a tab shuts its kernel down) is checked in a real JupyterLab by
tests/test_browser.py."""

from __future__ import annotations

import json
from pathlib import Path

import jupyterlab_settings
import pytest


def test_it_adds_kernel_shutdown_and_keeps_other_settings(tmp_path: Path) -> None:
    path = jupyterlab_settings.overrides_path(tmp_path)
    path.parent.mkdir(parents=True)
    existing = {
        "@jupyterlab/notebook-extension:tracker": {"kernelShutdown": False, "codeCellConfig": {"lineNumbers": True}},
        "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
    }
    path.write_text(json.dumps(existing))
    assert jupyterlab_settings.main(["--prefix", str(tmp_path)]) == 0
    written = json.loads(path.read_text())
    assert written["@jupyterlab/notebook-extension:tracker"] == {
        "kernelShutdown": True,
        "codeCellConfig": {"lineNumbers": True},
    }
    assert written["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}


def test_it_creates_the_file_and_is_idempotent(tmp_path: Path) -> None:
    jupyterlab_settings.install(tmp_path)
    first = jupyterlab_settings.overrides_path(tmp_path).read_text()
    jupyterlab_settings.install(tmp_path)
    assert jupyterlab_settings.overrides_path(tmp_path).read_text() == first
    assert json.loads(first) == jupyterlab_settings.COURSE_SETTINGS


def test_a_broken_file_is_reported_not_overwritten(tmp_path: Path) -> None:
    path = jupyterlab_settings.overrides_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(SystemExit, match="fix or remove it"):
        jupyterlab_settings.install(tmp_path)
    assert path.read_text() == "{not json"
