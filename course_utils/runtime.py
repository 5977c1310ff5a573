"""The course's environment: seeds, the device, progress bars and the cache folder, each read in one place
so every notebook does them the same way."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

DEVICE_ENV_VAR = "COURSE_DEVICE"
SEED_OFFSET_ENV_VAR = "COURSE_SEED_OFFSET"
# Offset k moves every seed by k * SEED_OFFSET_STRIDE, so "seeds 0-4" under offset 1 share no seed
# with offset 0: another set of seeds is one environment variable away.
SEED_OFFSET_STRIDE = 1000


def seed_offset() -> int:
    """`$COURSE_SEED_OFFSET` (default 0): which set of seeds the course runs with."""
    raw = os.environ.get(SEED_OFFSET_ENV_VAR, "").strip()
    if not raw:
        return 0
    try:
        offset = int(raw)
    except ValueError:
        offset = -1
    if offset < 0:
        raise ValueError(f"{SEED_OFFSET_ENV_VAR}={raw!r} is not a non-negative integer; unset it or use e.g. 1 or 2.")
    return offset


def _check_seed(seed: object) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}.")
    return seed


def course_seed(seed: int) -> int:
    """The seed actually used for the nominal `seed`: shifted by `$COURSE_SEED_OFFSET`.

    Every seeded thing in `course_utils` goes through this once, so a notebook's claims can be
    re-checked on fresh seeds without editing it. Data splits are not shifted: they define the data.
    """
    return _check_seed(seed) + SEED_OFFSET_STRIDE * seed_offset()


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) generators with `course_seed(seed)`."""
    actual = course_seed(seed)
    random.seed(actual)
    np.random.seed(actual % 2**32)
    torch.manual_seed(actual)  # also seeds every CUDA device


def make_generator(seed: int) -> torch.Generator:
    """A CPU `torch.Generator` seeded with `course_seed(seed)` (for batch orders, sampled indices)."""
    return torch.Generator().manual_seed(course_seed(seed))


def numpy_generator(seed: int) -> np.random.Generator:
    """A NumPy generator seeded with `course_seed(seed)`."""
    return np.random.default_rng(course_seed(seed))


def default_device() -> torch.device:
    """CPU unless CUDA is present; `$COURSE_DEVICE` (e.g. "cpu", "cuda:0") overrides both."""
    requested = os.environ.get(DEVICE_ENV_VAR, "").strip()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise ValueError(f"{DEVICE_ENV_VAR}={requested!r} is not a device name; use e.g. 'cpu' or 'cuda'.") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"{DEVICE_ENV_VAR}={requested!r} but this PyTorch sees no CUDA device; "
                f"unset {DEVICE_ENV_VAR} or set it to 'cpu'."
            )
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars are for learners: on by default, off under CI or `COURSE_PROGRESS=0`."""
    if progress is not None:
        return progress
    return not os.environ.get("CI") and os.environ.get("COURSE_PROGRESS", "1") != "0"


def progress_over(items: Iterable[T], *, total: int | None = None, desc: str = "runs") -> Iterator[T]:
    """`items`, with one progress bar over them in JupyterLab (off under CI or `COURSE_PROGRESS=0`).

    For a cell that trains many models: one bar over the runs, not one per tiny run."""
    if not progress_enabled(None):
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, total=total, desc=desc, leave=False)


def default_cache_dir() -> Path:
    """The per-user folder the course decompresses and downloads data into."""
    if os.environ.get("COURSE_CACHE_DIR"):
        return Path(os.environ["COURSE_CACHE_DIR"]).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "why-normalize"
