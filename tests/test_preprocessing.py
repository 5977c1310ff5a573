"""Preprocessing agrees with torchvision's v2 transforms and scikit-learn's scalers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from torchvision.transforms import v2

from course_utils.preprocessing import PREPROCESSING_METHODS, fit_preprocessing, fit_whitening

Data = tuple[torch.Tensor, torch.Tensor]


def flat(x: torch.Tensor) -> np.ndarray:
    return x.reshape(len(x), -1).double().numpy()


def test_divide_255_is_torchvision_to_image_to_dtype(real_train: Data) -> None:
    images = real_train[0][:500]
    ours = fit_preprocessing("divide_255", real_train[0])(images)
    to_float = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    theirs = torch.stack([to_float(img) for img in images]).squeeze(1)
    # torchvision multiplies by float32(1/255) where we divide by 255: at most 1 ulp apart.
    assert (ours - theirs).abs().max().item() <= 6e-8


def test_zscore_is_torchvision_normalize_with_our_statistics(real_train: Data) -> None:
    images = real_train[0]
    prep = fit_preprocessing("zscore", images)
    # Statistics of the 0-1 scaled training pixels (Fashion-MNIST's are about 0.2860, 0.3530).
    mean, std = prep.shift.item() / 255, prep.scale.item() / 255
    assert mean == pytest.approx(0.2860, abs=1e-4) and std == pytest.approx(0.3530, abs=1e-4)
    pipeline = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([mean], [std])])
    theirs = torch.stack([pipeline(img) for img in images[:500]]).squeeze(1)
    torch.testing.assert_close(prep(images[:500]), theirs, rtol=1e-5, atol=1e-5)


def test_feature_zscore_is_sklearn_standard_scaler(real_train: Data) -> None:
    images = real_train[0][:10_000]  # float64 copies of all 60,000 would take ~376 MB
    prep = fit_preprocessing("feature_zscore", images)
    scaler = StandardScaler().fit(flat(images))
    np.testing.assert_allclose(prep.shift.flatten().numpy(), scaler.mean_, rtol=1e-6)
    np.testing.assert_allclose(prep.scale.flatten().numpy(), scaler.scale_, rtol=1e-5)
    held_out = images[-300:]
    np.testing.assert_allclose(flat(prep(held_out)), scaler.transform(flat(held_out)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("method", "scaler"),
    [
        ("zscore", StandardScaler()),
        ("min_max", MinMaxScaler()),
        ("minus_one_to_one", MinMaxScaler(feature_range=(-1, 1))),
        ("divide_255", MinMaxScaler()),  # Fashion-MNIST spans exactly 0..255
    ],
)
def test_global_methods_are_sklearn_scalers_on_all_pixels_as_one_feature(
    real_train: Data, method: str, scaler: StandardScaler | MinMaxScaler
) -> None:
    images = real_train[0][:2000]
    scaler.fit(images.reshape(-1, 1).double().numpy())
    ours = fit_preprocessing(method, images)(images)
    theirs = scaler.transform(images.reshape(-1, 1).double().numpy()).reshape(images.shape)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-5)


def test_constant_features_are_centred_like_sklearn() -> None:
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    prep = fit_preprocessing("feature_zscore", x)
    assert prep.scale[1] == 1.0
    expected = StandardScaler().fit_transform(x.numpy())
    np.testing.assert_allclose(prep(x).numpy(), expected, rtol=1e-6)


def test_statistics_come_from_the_data_they_were_fitted_on() -> None:
    train = torch.tensor([[0.0], [2.0]])
    test = torch.tensor([[100.0], [300.0]])
    prep = fit_preprocessing("zscore", train)
    assert prep.fitted_on == 2 and prep.shift.item() == 1.0 and prep.scale.item() == 1.0
    assert prep(test).tolist() == [[99.0], [299.0]]


@pytest.mark.parametrize("method", PREPROCESSING_METHODS)
def test_every_method_is_affine_and_invertible(method: str) -> None:
    torch.manual_seed(0)
    x = torch.randint(0, 256, (50, 4, 4), dtype=torch.uint8)
    prep = fit_preprocessing(method, x)
    z = prep(x)
    assert z.dtype == torch.float32 and z.shape == x.shape
    torch.testing.assert_close(prep.inverse(z), x.float(), rtol=1e-5, atol=1e-3)
    assert method in repr(prep)


def test_bad_input_gets_a_clear_error() -> None:
    with pytest.raises(ValueError, match="feature_zscore"):
        fit_preprocessing("standardize", torch.zeros(3, 2))
    with pytest.raises(ValueError, match="at least 2 samples"):
        fit_preprocessing("zscore", torch.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        fit_preprocessing("zscore", torch.tensor([[1.0], [float("nan")]]))
    prep = fit_preprocessing("feature_zscore", torch.rand(10, 28, 28))
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        prep(torch.rand(10, 784))


# ----------------------------------------------------------------------------- whitening


@pytest.mark.parametrize("method", ["pca", "zca"])
def test_whitening_makes_training_features_uncorrelated_with_unit_variance(method: str) -> None:
    g = torch.Generator().manual_seed(0)
    mixing = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.3, 0.0], [5.0, -2.0, 0.1]])
    x = torch.randn(400, 3, generator=g) @ mixing.T + torch.tensor([1.0, 50.0, -3.0])
    whitening = fit_whitening(method, x)
    z = whitening(x).double()
    torch.testing.assert_close(z.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.T @ z / len(z), torch.eye(3, dtype=torch.float64), atol=1e-4, rtol=0)
    if method == "zca":
        torch.testing.assert_close(whitening.matrix, whitening.matrix.T)  # symmetric: no rotation left


def test_pca_whitening_matches_scikit_learn_up_to_sign_and_ddof() -> None:
    from sklearn.decomposition import PCA

    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 4, generator=g) @ torch.randn(4, 4, generator=g)
    ours = fit_whitening("pca", x)(x).double().numpy()
    theirs = PCA(whiten=True).fit_transform(x.double().numpy()) * np.sqrt(len(x) / (len(x) - 1))
    ours, theirs = ours[:, ::-1], theirs  # ours ascend by variance, scikit-learn's descend
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), rtol=1e-4, atol=1e-4)


def test_whitening_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="pca"):
        fit_whitening("pcaa", torch.zeros(5, 2))
    with pytest.raises(ValueError, match="fitted on 2 features"):
        fit_whitening("zca", torch.randn(5, 2))(torch.zeros(3, 4))
