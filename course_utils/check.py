"""Auto-checks for the notebooks' exercises.

Each exercise is a stub that raises `NotImplementedError`. Its check function runs the
learner's function on small made-up data and compares it with a reference, and returns (and
displays) a `CheckResult`: "not attempted" for the untouched stub, a hint when the answer is
wrong, "correct" otherwise. A check never raises, so a notebook with unsolved exercises still
runs from top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

Status = Literal["not attempted", "wrong", "correct"]


@dataclass(frozen=True)
class CheckResult:
    exercise: str
    status: Status
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        mark = {"not attempted": "…", "wrong": "✗", "correct": "✓"}[self.status]
        return f"{mark} {self.exercise}: {self.status}. {self.message}".rstrip()

    def _repr_markdown_(self) -> str:
        return f"**{self}**"


def _run(exercise: str, attempt: Callable[[], CheckResult]) -> CheckResult:
    try:
        result = attempt()
    except NotImplementedError:
        result = CheckResult(exercise, "not attempted", "Replace the `raise NotImplementedError` with your code.")
    except Exception as exc:  # noqa: BLE001 - a learner's bug is a hint, not a crash
        result = CheckResult(exercise, "wrong", f"Your function raised {type(exc).__name__}: {exc}")
    print(result)
    return result


def _close(a: Any, b: Tensor, tol: float = 1e-4) -> bool:
    return isinstance(a, Tensor) and a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- notebook 01


def check_pixel_statistics(pixel_statistics: Callable[[Tensor], tuple[Tensor, Tensor]]) -> CheckResult:
    """Exercise: per-pixel mean and (population) std of uint8 images [N, H, W], as [H, W] floats."""
    name = "pixel_statistics"

    def attempt() -> CheckResult:
        images = torch.randint(0, 256, (64, 5, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        mean, std = pixel_statistics(images)
        want_mean = images.double().mean(dim=0)
        want_std = images.double().std(dim=0, correction=0)
        if not isinstance(mean, Tensor) or mean.shape != (5, 4):
            return CheckResult(name, "wrong", "Average over the images (dim=0): one mean per pixel, shape [H, W].")
        if not _close(mean, want_mean):
            return CheckResult(name, "wrong", "The means are off. Did you convert to float before averaging?")
        if _close(std, images.double().std(dim=0, correction=1)):
            return CheckResult(name, "wrong", "Use the population std (correction=0), like scikit-learn's StandardScaler.")
        if not _close(std, want_std):
            return CheckResult(name, "wrong", "The stds are off: one std per pixel, over dim=0.")
        return CheckResult(name, "correct", "")

    return _run(name, attempt)


def check_equivalent_learning_rate(equivalent_learning_rate: Callable[[float, float], float]) -> CheckResult:
    """Exercise: the SGD learning rate for inputs multiplied by `scale` that reproduces `lr`."""
    name = "equivalent_learning_rate"

    def attempt() -> CheckResult:
        cases = [(0.1, 255.0), (0.5, 2.0), (1e-3, 0.1)]
        answers = [float(equivalent_learning_rate(lr, scale)) for lr, scale in cases]
        wanted = [lr / scale**2 for lr, scale in cases]
        if all(math.isclose(a, w, rel_tol=1e-9) for a, w in zip(answers, wanted)):
            return CheckResult(name, "correct", "")
        if all(math.isclose(a, lr / scale, rel_tol=1e-9) for a, (lr, scale) in zip(answers, cases)):
            return CheckResult(
                name, "wrong",
                "Close: the gradient grows by `scale`, but so does the effect of each weight change "
                "on the output. Count the factor twice.",
            )
        return CheckResult(
            name, "wrong",
            "Hint: with inputs s·x and weights w/s the outputs match; write the SGD step for w/s "
            "and see what learning rate keeps it equal to the step for w.",
        )

    return _run(name, attempt)


def check_standardize_with_train_statistics(
    standardize: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
) -> CheckResult:
    """Exercise: standardize train and test features with statistics of the training split only."""
    name = "standardize"

    def attempt() -> CheckResult:
        g = torch.Generator().manual_seed(2)
        x_train = torch.randn(50, 3, generator=g) * torch.tensor([1.0, 100.0, 0.01]) + 5
        x_test = torch.randn(20, 3, generator=g) * torch.tensor([2.0, 50.0, 0.02]) - 3
        z_train, z_test = standardize(x_train, x_test)
        mean, std = x_train.mean(dim=0), x_train.std(dim=0, correction=0)
        if not _close(z_train, (x_train - mean) / std, 1e-3):
            return CheckResult(name, "wrong", "The training features should end with mean 0 and std 1 per column.")
        if _close(z_test, (x_test - x_test.mean(0)) / x_test.std(0, correction=0), 1e-3):
            return CheckResult(name, "wrong", "The test split was standardized with its own statistics: use the training mean and std.")
        if not _close(z_test, (x_test - mean) / std, 1e-3):
            return CheckResult(name, "wrong", "Apply (x - train mean) / train std to the test split too.")
        return CheckResult(name, "correct", "")

    return _run(name, attempt)
