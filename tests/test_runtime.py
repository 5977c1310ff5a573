"""The environment helpers: progress over runs is silent under CI and COURSE_PROGRESS=0, and yields every item."""

from __future__ import annotations

import pytest

from course_utils.runtime import progress_enabled, progress_over


def test_progress_over_yields_every_item_with_or_without_a_bar(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("COURSE_PROGRESS", "1")
    assert progress_enabled(None)
    assert list(progress_over(range(5), desc="seeds")) == [0, 1, 2, 3, 4]
    assert "seeds" in capsys.readouterr().err  # tqdm drew a bar outside a notebook
    monkeypatch.setenv("COURSE_PROGRESS", "0")
    assert list(progress_over(iter("abc"))) == ["a", "b", "c"]
    assert capsys.readouterr().err == ""


def test_ci_switches_progress_bars_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("COURSE_PROGRESS", raising=False)
    assert not progress_enabled(None) and progress_enabled(True)
