"""Seeding and device choice: one place for each, so every notebook does them the same way."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV_VAR = "COURSE_DEVICE"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) random generators."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def default_device() -> torch.device:
    """CPU unless CUDA is present; `$COURSE_DEVICE` (e.g. "cpu", "cuda:0") overrides both."""
    requested = os.environ.get(DEVICE_ENV_VAR, "").strip()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise ValueError(
                f"{DEVICE_ENV_VAR}={requested!r} is not a device name; use e.g. 'cpu' or 'cuda'."
            ) from exc
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
