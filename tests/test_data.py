"""course_utils.data: finding Fashion-MNIST offline, loading it, batching, tabular sets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import course_utils.data as data
from course_utils.data import (
    DataNotFoundError,
    load_fashion_mnist,
    load_tabular,
    locate_fashion_mnist,
)

RAW = Path("FashionMNIST") / "raw"


def test_debian_package_files_are_decompressed_into_the_cache(
    isolated_data_env: Path, fake_debian_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "DEBIAN_DATA_DIRS", (fake_debian_dir,))
    location = locate_fashion_mnist()
    assert location.root == isolated_data_env
    assert "Debian" in location.source
    for name, (size, _) in data._IDX_FILES.items():
        assert (isolated_data_env / RAW / name).stat().st_size == size
    # The .gz originals are left alone; the cache holds only the checked, decompressed files.
    assert sorted(p.name for p in (isolated_data_env / RAW).iterdir()) == sorted(data._IDX_FILES)

    # Read back through torchvision's loader: shapes, dtypes and the pattern we wrote.
    images, labels = load_fashion_mnist("test")
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10_000,) and labels.dtype == torch.int64
    assert int(images[253, 5, 7]) == 253 % 251 and int(labels[253]) == 3

    # Second time: found in the cache, nothing decompressed again.
    assert locate_fashion_mnist().source.startswith("course cache")


def test_lookup_order_is_root_then_env_then_cache_then_debian(
    isolated_data_env: Path, fake_debian_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(data, "DEBIAN_DATA_DIRS", (fake_debian_dir,))
    assert "Debian" in locate_fashion_mnist().source  # fills the cache
    assert locate_fashion_mnist().source.startswith("course cache")

    env_dir = tmp_path / "usb-stick"
    shutil.copytree(fake_debian_dir, env_dir)  # the four .gz files, flat
    monkeypatch.setenv("COURSE_DATA_DIR", str(env_dir))
    assert locate_fashion_mnist().source.startswith("COURSE_DATA_DIR")

    root_dir = tmp_path / "torchvision-root"
    shutil.copytree(isolated_data_env / RAW, root_dir / RAW)  # torchvision's own layout
    location = locate_fashion_mnist(root_dir)
    assert location.root == root_dir and location.source.startswith("root argument")


def test_missing_root_falls_through_to_the_next_place(
    isolated_data_env: Path, fake_debian_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(data, "DEBIAN_DATA_DIRS", (fake_debian_dir,))
    assert "Debian" in locate_fashion_mnist(tmp_path / "nothing-here").source


def test_no_data_and_no_network_gives_one_clear_error(isolated_data_env: Path) -> None:
    with pytest.raises(DataNotFoundError) as caught:
        locate_fashion_mnist()
    message = str(caught.value)
    assert "internet" in message
    assert "apt install dataset-fashion-mnist" in message
    assert "COURSE_DATA_DIR" in message
    assert "network unreachable (simulated)" in message
    with pytest.raises(DataNotFoundError, match="download disabled"):
        locate_fashion_mnist(download=False)
    with pytest.raises(DataNotFoundError):
        load_fashion_mnist("train")


def test_a_crash_mid_copy_leaves_nothing_that_passes_as_data(
    isolated_data_env: Path, fake_debian_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "DEBIAN_DATA_DIRS", (fake_debian_dir,))
    real_copy = shutil.copyfileobj

    def crash_half_way(src, dst, length=0):  # type: ignore[no-untyped-def]
        dst.write(src.read(1000))
        raise KeyboardInterrupt  # the learner pressed stop, or the laptop died

    monkeypatch.setattr(data.shutil, "copyfileobj", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        locate_fashion_mnist()
    raw = isolated_data_env / RAW
    assert [p for p in raw.iterdir()] == []  # no partial file, under any name

    monkeypatch.setattr(data.shutil, "copyfileobj", real_copy)
    assert "Debian" in locate_fashion_mnist().source


def test_truncated_files_are_never_used(
    isolated_data_env: Path, fake_debian_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = isolated_data_env / RAW
    raw.mkdir(parents=True)
    for name in data._IDX_FILES:
        (raw / name).write_bytes(b"\x00\x00\x08\x03 too short")
    with pytest.raises(DataNotFoundError):
        locate_fashion_mnist()
    monkeypatch.setattr(data, "DEBIAN_DATA_DIRS", (fake_debian_dir,))
    assert "Debian" in locate_fashion_mnist().source  # the bad copies were replaced
    assert (raw / "t10k-labels-idx1-ubyte").stat().st_size == 10_008


def test_a_corrupt_gz_is_reported_not_used(isolated_data_env: Path, tmp_path: Path, fake_debian_dir: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(fake_debian_dir, broken)
    with (broken / "train-labels-idx1-ubyte.gz").open("r+b") as handle:
        handle.truncate(200)
    with pytest.raises((DataNotFoundError, EOFError)):
        locate_fashion_mnist(broken)
    assert not (isolated_data_env / RAW / "train-labels-idx1-ubyte").exists()


def test_split_must_be_train_or_test() -> None:
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_fashion_mnist("validation")  # type: ignore[arg-type]


def test_the_genuine_data_set(real_train: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = real_train
    test_images, test_labels = load_fashion_mnist("test")
    assert images.shape == (60_000, 28, 28) and test_images.shape == (10_000, 28, 28)
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert labels.bincount().tolist() == [6_000] * 10
    assert test_labels.bincount().tolist() == [1_000] * 10
    assert int(images.min()) == 0 and int(images.max()) == 255
    # The published mean pixel of the training set, 0.2860 of full scale.
    assert abs(images.float().mean().item() / 255 - 0.2860) < 5e-4


# ----------------------------------------------------------------------------- batching


# ----------------------------------------------------------------------------- tabular


@pytest.mark.parametrize("name", ["wine", "breast_cancer"])
def test_tabular_sets_have_wildly_different_feature_scales(name: str) -> None:
    split = load_tabular(name)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    assert split.x_train.shape[1] == len(split.feature_names)
    assert len(split.x_test) > 0 and len(split.x_train) > 2 * len(split.x_test)
    spread = split.x_train.std(dim=0)
    assert spread.max() / spread.min() > 1_000  # the "0-1 next to 1-1000" situation
    # Stratified: every class is in both splits with similar shares.
    train_share = split.y_train.bincount() / len(split.y_train)
    test_share = split.y_test.bincount() / len(split.y_test)
    assert (train_share - test_share).abs().max() < 0.05
    again = load_tabular(name)
    assert torch.equal(split.x_train, again.x_train)


def test_diabetes_is_an_unscaled_regression_set() -> None:
    split = load_tabular("diabetes")
    assert split.y_train.dtype == torch.float32 and split.class_names == ()
    assert (len(split.x_train), len(split.x_test)) == (331, 111)
    assert set(split.x_train[:, 1].unique().tolist()) == {1.0, 2.0}  # sex, as coded (not scaled)
    assert 19 <= split.x_train[:, 0].min() and split.x_train[:, 0].max() <= 79  # age in years
    spread = split.x_train.std(dim=0)
    assert spread.max() / spread.min() > 50
    assert 25 <= split.y_train.min() and split.y_train.max() <= 346


def test_digits_are_8x8_images_of_0_to_16_as_features() -> None:
    split = load_tabular("digits")
    assert (len(split.x_train), len(split.x_test)) == (1347, 450)
    assert split.x_train.shape[1] == 64 and split.class_names == tuple(str(d) for d in range(10))
    assert split.x_train.min() == 0 and split.x_train.max() == 16
    assert split.y_train.bincount().min() > 100  # all ten digits, stratified


def test_unknown_tabular_set_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="wine"):
        load_tabular("iris")
    with pytest.raises(ValueError, match="test_fraction"):
        load_tabular("wine", test_fraction=1.5)


def test_read_csv_turns_a_header_and_numbers_into_tensors(tmp_path: Path) -> None:
    path = tmp_path / "patients.csv"
    path.write_text("age,income,label\n30,52000,no\n41,61000.5,yes\n\n25,0,no\n", encoding="utf-8")
    table = data.read_csv(path, target="label")
    assert table.feature_names == ("age", "income") and table.class_names == ("no", "yes")
    assert table.x.dtype == torch.float32 and table.x.tolist() == [[30, 52000], [41, 61000.5], [25, 0]]
    assert table.y is not None and table.y.tolist() == [0, 1, 0] and table.y.dtype == torch.int64


def test_read_csv_orders_numeric_classes_as_numbers_and_reads_regression_targets(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,10\n2,2\n3,10\n", encoding="utf-8")
    classes = data.read_csv(path, target="y")
    assert classes.class_names == ("2", "10") and classes.y is not None and classes.y.tolist() == [1, 0, 1]
    values = data.read_csv(path, target="y", regression=True)
    assert values.y is not None and values.y.dtype == torch.float32 and values.y.tolist() == [10.0, 2.0, 10.0]
    features_only = data.read_csv(path)
    assert features_only.y is None and features_only.x.shape == (3, 2)


@pytest.mark.parametrize(
    "text, target, advice",
    [
        ("a,b\n1,2\n", "c", "no column 'c'"),
        ("a,b\n1,\n", None, "is not a number. Fill or drop"),
        ("a,b\n1,red\n", None, "turn categories into numbers"),
        ("a,b\n1,2,3\n", None, "3 values for 2 columns"),
        ("a,b\n", None, "needs a header row and at least one row"),
    ],
)
def test_read_csv_says_what_to_fix(tmp_path: Path, text: str, target: str | None, advice: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=advice):
        data.read_csv(path, target=target)


def test_read_csv_of_a_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No file at .*nowhere.csv"):
        data.read_csv(tmp_path / "nowhere.csv")
