"""Shared fixtures: a fake Fashion-MNIST shaped like Debian's package, and the real data."""

from __future__ import annotations

import gzip
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")  # tests draw figures without a screen


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked after_notebooks check what the notebooks wrote: run them last."""
    items.sort(key=lambda item: item.get_closest_marker("after_notebooks") is not None)


FAKE_COUNTS = {"train": 60_000, "t10k": 10_000}


def fake_idx_bytes(prefix: str, kind: str) -> bytes:
    """A complete IDX file of the real size: image i is filled with i % 251, its label is i % 10."""
    n = FAKE_COUNTS[prefix]
    index = torch.arange(n)
    if kind == "images":
        header = (0x803).to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
        body = (index % 251).to(torch.uint8).repeat_interleave(28 * 28)
    else:
        header = (0x801).to_bytes(4, "big") + n.to_bytes(4, "big")
        body = (index % 10).to(torch.uint8)
    return header + body.numpy().tobytes()


@pytest.fixture(scope="session")
def fake_debian_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-style folder holding the four .gz files, like /usr/share/datasets/fashion-mnist."""
    folder = tmp_path_factory.mktemp("debian") / "fashion-mnist"
    folder.mkdir()
    for prefix in FAKE_COUNTS:
        for kind in ("images", "labels"):
            name = f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
            with gzip.open(folder / name, "wb", compresslevel=1) as handle:
                handle.write(fake_idx_bytes(prefix, kind))
    return folder


@pytest.fixture
def isolated_data_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No COURSE_DATA_DIR, an empty cache, and a download that fails as it does offline."""
    import course_utils.data as data

    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(cache))
    monkeypatch.setattr(data, "DEBIAN_DATA_DIRS", ())

    def offline(_: Path) -> None:
        raise OSError("network unreachable (simulated)")

    monkeypatch.setattr(data, "_download_with_torchvision", offline)
    return cache


@pytest.fixture(scope="session")
def real_train() -> tuple[torch.Tensor, torch.Tensor]:
    """The genuine Fashion-MNIST training split (./course test makes sure it is present)."""
    from course_utils.data import load_fashion_mnist

    return load_fashion_mnist("train")
