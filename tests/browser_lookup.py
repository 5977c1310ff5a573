"""Which Chromium or Chrome the browser tests drive, and what happens when there is none.

One place for the lookup, so every browser test finds the same browser. Playwright drives the
browser found here and never downloads one. Outside CI a missing browser skips the browser tests
with one line saying how to get one; under CI (`CI` set) it is a failure, since CI installs one.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

MACOS_APPS = (
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "~/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "~/Applications/Chromium.app/Contents/MacOS/Chromium",
)
ON_PATH = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HOW_TO_GET_ONE = (
    "install Chromium or Google Chrome (Debian/Ubuntu: `sudo apt install chromium`; macOS: Google Chrome "
    "in /Applications), or set COURSE_CHROMIUM=/path/to/chrome"
)


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() not in ("", "0", "false", "no")


def find_chromium(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """$COURSE_CHROMIUM, else Chrome/Chromium in /Applications (macOS), else one on $PATH; None if none."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    chosen = environ.get("COURSE_CHROMIUM")
    if chosen:
        if not Path(chosen).is_file():
            pytest.fail(
                f"COURSE_CHROMIUM={chosen} is not a file: point it at a Chromium or Chrome executable, or unset it"
            )
        return chosen
    if platform == "darwin":
        for app in MACOS_APPS:
            if Path(app).expanduser().is_file():
                return str(Path(app).expanduser())
    for name in ON_PATH:
        found = shutil.which(name, path=environ.get("PATH", os.defpath))
        if found:
            return found
    return None


def chromium_for_tests(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """The browser to drive; without one, skips the calling test (fails it under CI)."""
    found = find_chromium(environ, platform)
    if found:
        return found
    if in_ci(environ):
        pytest.fail(f"CI is set and no Chromium or Chrome was found for the browser tests: {HOW_TO_GET_ONE}")
    pytest.skip(f"browser test skipped: no Chromium or Chrome found; to run it, {HOW_TO_GET_ONE}")


# Headless, no sandbox (root in a container), and nothing fetched in the background: the browser
# tests run offline and check that pages need nothing from outside.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextmanager
def launched_chromium() -> Iterator[object]:
    """A headless Chromium driven by Playwright, closed afterwards (skips without one, as above)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_for_tests(), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield chromium
        finally:
            chromium.close()
