"""Preprocessing, the course's subject: affine input maps (scale, centre, standardize) and whitening,
each fitted on training data once and then applied, with its statistics inspectable."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

PREPROCESSING_METHODS: tuple[str, ...] = (
    "raw",
    "divide_255",
    "min_max",
    "zscore",
    "feature_zscore",
    "minus_one_to_one",
)

_CHUNK = 4096  # rows per chunk when computing statistics: keeps float64 temporaries small


def _chunked_mean_std(x: Tensor, per_feature: bool) -> tuple[Tensor, Tensor]:
    """Mean and population std (ddof=0) in float64, two passes over row chunks."""
    dims: tuple[int, ...] = (0,) if per_feature else tuple(range(x.dim()))
    count = x.shape[0] if per_feature else x.numel()
    zero = torch.zeros((), dtype=torch.float64)
    mean = sum((chunk.double().sum(dim=dims) for chunk in torch.split(x, _CHUNK)), zero) / count
    squares = sum((((chunk.double() - mean) ** 2).sum(dim=dims) for chunk in torch.split(x, _CHUNK)), zero)
    return mean, (squares / count).sqrt()


@dataclass(frozen=True, eq=False)
class Preprocessing:
    """An affine input map `(x - shift) / scale`, with statistics fitted once and inspectable.

    `shift` and `scale` are in the units of the data it was fitted on (raw 0-255 pixels for
    images); they are scalars, or per-feature tensors for "feature_zscore".
    """

    method: str
    shift: Tensor
    scale: Tensor
    fitted_on: int

    def __call__(self, x: Tensor) -> Tensor:
        per_feature_shape = tuple(self.shift.shape)
        if per_feature_shape and tuple(x.shape[1:]) != per_feature_shape:
            raise ValueError(
                f"This {self.method!r} preprocessing was fitted on samples of shape "
                f"{per_feature_shape}, but got a batch of shape {tuple(x.shape)}. Apply it to "
                "data shaped like the training data, or fit a new one."
            )
        # One float32 copy, then in-place arithmetic: no second full-size temporary.
        return x.to(torch.float32, copy=True).sub_(self.shift).div_(self.scale)

    def inverse(self, z: Tensor) -> Tensor:
        """Back to the original units."""
        return z * self.scale + self.shift

    def __repr__(self) -> str:
        def show(t: Tensor) -> str:
            return f"{t.item():.4g}" if t.dim() == 0 else f"tensor of shape {tuple(t.shape)}"

        return (
            f"Preprocessing(method={self.method!r}, shift={show(self.shift)}, "
            f"scale={show(self.scale)}, fitted_on={self.fitted_on} samples)"
        )


def fit_preprocessing(method: str, x_train: Tensor) -> Preprocessing:
    """Fit one of `PREPROCESSING_METHODS` on the training samples `x_train` ([N, ...]).

    Fit on the training split only and apply the result to every split. "feature_zscore"
    standardizes each feature separately (like scikit-learn's StandardScaler, including its
    rule that a feature with zero variance is only centred): per pixel for images, per column
    for tables; "zscore" and "min_max" use one
    mean/std or min/max over all values; "divide_255" and "minus_one_to_one" need no fitting.
    """
    if method not in PREPROCESSING_METHODS:
        raise ValueError(f"Unknown preprocessing {method!r}; choose one of {PREPROCESSING_METHODS}.")
    if not isinstance(x_train, Tensor) or x_train.dim() < 2 or len(x_train) < 2:
        raise ValueError(
            "x_train must be a tensor of at least 2 samples shaped [N, ...], e.g. the uint8 "
            "images from load_fashion_mnist('train')."
        )
    if x_train.is_floating_point() and not torch.isfinite(x_train).all():
        raise ValueError("x_train contains NaN or inf; clean the data before fitting statistics.")

    def scalar(value: float) -> Tensor:
        return torch.tensor(value, dtype=torch.float32)

    shift, scale = scalar(0.0), scalar(1.0)
    if method == "divide_255":
        scale = scalar(255.0)
    elif method == "minus_one_to_one":
        shift, scale = scalar(127.5), scalar(127.5)
    elif method == "min_max":
        low, high = x_train.min().double(), x_train.max().double()
        shift, scale = low.float(), (high - low).float() if high > low else scalar(1.0)
    elif method in ("zscore", "feature_zscore"):
        mean, std = _chunked_mean_std(x_train, per_feature=method == "feature_zscore")
        # Same rule as scikit-learn: a (near-)constant feature is centred, not divided by ~0.
        std = torch.where(std < 10 * torch.finfo(torch.float64).eps, torch.ones_like(std), std)
        shift, scale = mean.float(), std.float()
    return Preprocessing(method=method, shift=shift, scale=scale, fitted_on=len(x_train))


@dataclass(frozen=True)
class Whitening:
    """x ↦ (x - mean) Wᵀ, with W chosen so the training features become uncorrelated, variance 1.

    "pca" rotates onto the principal axes and rescales them; "zca" rotates back afterwards, so
    each output stays as close as possible to its input feature (W is symmetric).
    """

    method: str
    mean: Tensor  # [features]
    matrix: Tensor  # W, [features, features]
    fitted_on: int

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.mean.numel():
            raise ValueError(
                f"This whitening was fitted on {self.mean.numel()} features; got a batch of shape "
                f"{tuple(x.shape)}. Pass [examples, features] shaped like the training data."
            )
        return ((x.double() - self.mean) @ self.matrix.T).to(torch.float32)


WHITENING_METHODS = ("pca", "zca")


def fit_whitening(method: str, x_train: Tensor, *, eps: float = 1e-12) -> Whitening:
    """Fit PCA or ZCA whitening on [examples, features] training data (population covariance).

    Covariance eigenvalues below `eps` × the largest are raised to it, so that a (near-)constant
    direction is not divided by zero.
    """
    if method not in WHITENING_METHODS:
        raise ValueError(f"Unknown whitening {method!r}; choose one of {WHITENING_METHODS}.")
    if not isinstance(x_train, Tensor) or x_train.dim() != 2 or len(x_train) < 2:
        raise ValueError("x_train must be a [examples, features] tensor with at least 2 examples.")
    x = x_train.double()
    mean = x.mean(dim=0)
    covariance = (x - mean).T @ (x - mean) / len(x)
    values, vectors = torch.linalg.eigh(covariance)
    pca = torch.diag(values.clamp(min=eps * values.max().item()).rsqrt()) @ vectors.T
    matrix = pca if method == "pca" else vectors @ pca
    return Whitening(method=method, mean=mean, matrix=matrix, fitted_on=len(x))
