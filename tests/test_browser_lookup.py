"""The browser lookup (tests/browser_lookup.py): which browser, and skip or fail without one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from browser_lookup import chromium_for_tests, find_chromium, in_ci

TOP = Path(__file__).parent.parent


def fake_browser(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("name", ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"])
def test_finds_each_linux_name_on_path(tmp_path: Path, name: str) -> None:
    browser = fake_browser(tmp_path / "bin", name)
    assert find_chromium({"PATH": str(tmp_path / "bin")}, "linux") == str(browser)


def test_course_chromium_wins_and_must_exist(tmp_path: Path) -> None:
    fake_browser(tmp_path / "bin", "chromium")
    chosen = fake_browser(tmp_path / "elsewhere", "my-chrome")
    environ = {"PATH": str(tmp_path / "bin"), "COURSE_CHROMIUM": str(chosen)}
    assert find_chromium(environ, "linux") == str(chosen)
    with pytest.raises(pytest.fail.Exception, match="COURSE_CHROMIUM=.*is not a file"):
        find_chromium({**environ, "COURSE_CHROMIUM": str(tmp_path / "missing")}, "linux")


def test_macos_looks_in_applications(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ~/Applications is one of the places looked in: a fake home holds a Chrome app there.
    monkeypatch.setenv("HOME", str(tmp_path))
    chrome = fake_browser(tmp_path / "Applications/Google Chrome.app/Contents/MacOS", "Google Chrome")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_chromium({"PATH": str(empty)}, "darwin") == str(chrome)
    assert find_chromium({"PATH": str(empty)}, "linux") is None  # the .app path is a macOS place only


def test_without_a_browser_skips_outside_ci_and_fails_under_ci(tmp_path: Path) -> None:
    empty = {"PATH": str(tmp_path)}  # a PATH with no browser on it
    assert find_chromium(empty, "linux") is None
    with pytest.raises(pytest.skip.Exception, match="no Chromium or Chrome found.*COURSE_CHROMIUM"):
        chromium_for_tests(empty, "linux")
    for value in ("", "0", "false"):
        with pytest.raises(pytest.skip.Exception):
            chromium_for_tests({**empty, "CI": value}, "linux")
    with pytest.raises(pytest.fail.Exception, match="CI is set and no Chromium or Chrome"):
        chromium_for_tests({**empty, "CI": "true"}, "linux")
    assert in_ci({"CI": "1"}) and not in_ci({})


def test_browser_test_without_a_browser_is_skipped_in_one_line(tmp_path: Path) -> None:
    # The real tests/test_browser.py, as `./course test` runs it, on a PATH with no browser.
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "COURSE_CHROMIUM")}
    environ["PATH"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_browser.py", "-p", "no:cacheprovider", "-rs", "-q"],
        cwd=TOP,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # One reason, the same for every browser test (pytest lists it once per test function).
    reasons = {line.split(": ", 1)[1] for line in skipped}
    assert len(reasons) == 1 and "no Chromium or Chrome found" in reasons.pop(), result.stdout[-3000:]
