"""Finding and loading the course's data: Fashion-MNIST (offline first) and three small tabular sets.

Everything is returned as in-memory tensors. Training code indexes mini-batches out of them
(`course_utils.train.minibatch_indices`) instead of running a per-sample PIL/DataLoader pipeline,
which is what keeps every notebook inside its time budget on a laptop CPU. What the course does to
the inputs (scaling, standardizing, whitening) lives in `course_utils.preprocessing`.
"""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from course_utils.runtime import default_cache_dir

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# The four IDX files torchvision reads from `<root>/FashionMNIST/raw/`, with their exact
# decompressed sizes and IDX magic numbers. A file that fails either check is never used, so a
# copy interrupted half-way cannot pass as data.
_IDX_FILES: dict[str, tuple[int, int]] = {
    "train-images-idx3-ubyte": (47_040_016, 0x00000803),
    "train-labels-idx1-ubyte": (60_008, 0x00000801),
    "t10k-images-idx3-ubyte": (7_840_016, 0x00000803),
    "t10k-labels-idx1-ubyte": (10_008, 0x00000801),
}

# Where Debian's `dataset-fashion-mnist` package puts the original .gz files
# (`dpkg -L dataset-fashion-mnist`).
DEBIAN_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)

_HOW_TO_GET_THE_DATA = """\
Fashion-MNIST was not found, and downloading it failed. Any one of these fixes it:
  1. Connect to the internet and run again: torchvision downloads it (about 30 MB) into
     {cache}.
  2. On Debian or Ubuntu: `sudo apt install dataset-fashion-mnist`, then run again.
  3. Copy the four files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
     t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), e.g. from a USB stick, into a
     folder and set COURSE_DATA_DIR to that folder.
Searched: {searched}
Download error: {error}"""


class DataNotFoundError(FileNotFoundError):
    """Fashion-MNIST could be found nowhere and could not be downloaded."""


@dataclass(frozen=True)
class DataLocation:
    """Where the data was found: `root` is what torchvision's FashionMNIST takes as its root."""

    root: Path
    source: str


def _is_valid_idx(path: Path, size: int, magic: int) -> bool:
    try:
        if path.stat().st_size != size:
            return False
        with path.open("rb") as handle:
            return int.from_bytes(handle.read(4), "big") == magic
    except OSError:
        return False


def _torchvision_raw_dir(root: Path) -> Path:
    return root / "FashionMNIST" / "raw"


def _has_ready_raw_files(root: Path) -> bool:
    """True when `root` is a torchvision root whose decompressed files are all complete."""
    raw = _torchvision_raw_dir(root)
    return all(_is_valid_idx(raw / name, *check) for name, check in _IDX_FILES.items())


def _find_source_file(folder: Path, name: str) -> Path | None:
    """A complete decompressed copy of `name`, or its .gz, in `folder` or the usual sub-folders."""
    for place in (folder, folder / "raw", _torchvision_raw_dir(folder)):
        if _is_valid_idx(place / name, *_IDX_FILES[name]):
            return place / name
        if (place / f"{name}.gz").is_file():
            return place / f"{name}.gz"
    return None


def _copy_atomically(source: Path, target: Path) -> None:
    """Decompress (or copy) `source` to `target` through a temporary name, checked, then renamed."""
    size, magic = _IDX_FILES[target.name]
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    try:
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rb") as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        if not _is_valid_idx(partial, size, magic):
            raise DataNotFoundError(
                f"{source} is not a complete Fashion-MNIST file (expected {size} bytes once "
                "decompressed). Replace it with a fresh copy."
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _install_into_cache(sources: dict[str, Path], cache: Path) -> None:
    raw = _torchvision_raw_dir(cache)
    raw.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        target = raw / name
        if not _is_valid_idx(target, *_IDX_FILES[name]):
            _copy_atomically(source, target)


def _download_with_torchvision(cache: Path) -> None:
    from torchvision.datasets import FashionMNIST  # imported here: costs seconds

    FashionMNIST(str(cache), train=True, download=True)
    FashionMNIST(str(cache), train=False, download=True)


def locate_fashion_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    system_dirs: tuple[Path, ...] | None = None,
) -> DataLocation:
    """Find Fashion-MNIST without the network if at all possible.

    Looks, in order, in `root`, `$COURSE_DATA_DIR`, the per-user cache, Debian's
    `dataset-fashion-mnist` files, and only then downloads with torchvision into the cache.
    A folder may hold torchvision's `FashionMNIST/raw/` layout or the four files (.gz or
    decompressed) directly; anything not already in torchvision's layout is decompressed into
    the cache, because Debian's .gz files differ byte-wise from the ones torchvision checks.
    `system_dirs` replaces `DEBIAN_DATA_DIRS` (tests point it at a fake package folder).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    candidates: list[tuple[str, Path]] = []
    if root is not None:
        candidates.append(("root argument", Path(root).expanduser()))
    if os.environ.get("COURSE_DATA_DIR"):
        candidates.append(("COURSE_DATA_DIR", Path(os.environ["COURSE_DATA_DIR"]).expanduser()))
    candidates.append(("course cache", cache))
    for folder in DEBIAN_DATA_DIRS if system_dirs is None else system_dirs:
        candidates.append(("Debian package dataset-fashion-mnist", folder))

    for label, folder in candidates:
        if _has_ready_raw_files(folder):
            return DataLocation(root=folder, source=f"{label} ({folder})")
        found = {name: _find_source_file(folder, name) for name in _IDX_FILES}
        if all(path is not None for path in found.values()):
            _install_into_cache({name: path for name, path in found.items() if path}, cache)
            return DataLocation(root=cache, source=f"{label} ({folder}), decompressed into {cache}")

    searched = ", ".join(str(folder) for _, folder in candidates)
    error = "download disabled"
    if download:
        try:
            _download_with_torchvision(cache)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        if _has_ready_raw_files(cache):
            return DataLocation(root=cache, source=f"downloaded by torchvision into {cache}")
    raise DataNotFoundError(_HOW_TO_GET_THE_DATA.format(cache=cache, searched=searched, error=error))


def load_fashion_mnist(
    split: Literal["train", "test"] = "train",
    root: str | os.PathLike[str] | None = None,
) -> tuple[Tensor, Tensor]:
    """Fashion-MNIST as `(images, labels)`: uint8 [N, 28, 28] and int64 [N].

    Read through torchvision's own `FashionMNIST` loader; see `locate_fashion_mnist` for where
    the files are looked for. `split` is "train" (60,000 images) or "test" (10,000).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
    from torchvision.datasets import FashionMNIST  # imported here: costs seconds

    location = locate_fashion_mnist(root)
    dataset = FashionMNIST(str(location.root), train=split == "train", download=False)
    return dataset.data, dataset.targets


# ----------------------------------------------------------------------------- tabular data


@dataclass(frozen=True)
class TabularSplit:
    """A small scikit-learn data set split into float32 features and targets.

    Classification sets have int64 labels and their `class_names`; the regression set has
    float32 targets and no class names.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]


TABULAR_DATASETS = ("wine", "breast_cancer", "diabetes", "digits")


def load_tabular(name: str = "wine", *, test_fraction: float = 0.25, seed: int = 0) -> TabularSplit:
    """A scikit-learn bundled data set whose features have very different scales.

    "wine": 13 features from about 0.1 (hue) to about 1,700 (proline); "breast_cancer": 30
    features from about 0.001 to about 4,000; both classification, split with stratification.
    "diabetes": regression of disease progression (about 25-346) from 10 unscaled features
    (age in years, sex coded 1/2, blood serum measurements up to about 300). "digits": 1,797
    handwritten digits, 8×8 pixels of 0-16 as 64 features (reshape to [N, 1, 8, 8] for images).
    """
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name not in TABULAR_DATASETS:
        raise ValueError(f"Unknown tabular data set {name!r}; choose one of {TABULAR_DATASETS}.")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, not {test_fraction}.")
    regression = name == "diabetes"
    if regression:
        bunch = datasets.load_diabetes(scaled=False)
    else:
        loaders = {
            "wine": datasets.load_wine,
            "breast_cancer": datasets.load_breast_cancer,
            "digits": datasets.load_digits,
        }
        bunch = loaders[name]()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.data,
        bunch.target,
        test_size=test_fraction,
        random_state=seed,
        stratify=None if regression else bunch.target,
    )
    target_dtype = torch.float32 if regression else torch.int64
    return TabularSplit(
        name=name,
        x_train=torch.as_tensor(x_train, dtype=torch.float32),
        y_train=torch.as_tensor(y_train, dtype=target_dtype),
        x_test=torch.as_tensor(x_test, dtype=torch.float32),
        y_test=torch.as_tensor(y_test, dtype=target_dtype),
        feature_names=tuple(str(f) for f in bunch.feature_names),
        class_names=() if regression else tuple(str(c) for c in bunch.target_names),
    )


# ----------------------------------------------------------------------------- your own data


@dataclass(frozen=True)
class Table:
    """A CSV file read by `read_csv`: float32 features and, when a target column was named, its targets."""

    x: Tensor  # [rows, features], float32
    y: Tensor | None  # int64 class indices (or float32 values when `regression`), None without a target
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]  # the target's distinct values, in the order of their indices ("" when none)


def read_csv(path: str | os.PathLike[str], target: str | None = None, *, regression: bool = False) -> Table:
    """Read a CSV file of numbers with a header row, e.g. your own data for `doctor.diagnose`.

    Every column but `target` is a feature and must hold numbers in every row. `target` names the
    column to predict: its distinct values (numbers or words) become classes 0, 1, ... (sorted), or,
    with `regression=True`, float targets. Without `target` the table has features only.
    """
    import csv

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"No file at {file}: give the path of a CSV file (relative to the notebook's folder).")
    with file.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise ValueError(f"{file} has {len(rows)} non-empty lines: it needs a header row and at least one row of data.")
    header = [name.strip() for name in rows[0]]
    if target is not None and target not in header:
        raise ValueError(f"{file} has no column {target!r}; its columns are {header}.")
    target_index = header.index(target) if target is not None else None
    features, targets = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{file}, line {line}: {len(row)} values for {len(header)} columns.")
        values = []
        for column, cell in enumerate(row):
            if column == target_index:
                targets.append(cell.strip())
                continue
            try:
                values.append(float(cell))
            except ValueError:
                raise ValueError(
                    f"{file}, line {line}, column {header[column]!r}: {cell!r} is not a number. Fill or drop missing"
                    " values, turn categories into numbers (e.g. one column per category), or drop the column."
                ) from None
        features.append(values)
    class_names: tuple[str, ...] = ()
    y: Tensor | None = None
    if target is not None and regression:
        try:
            y = torch.tensor([float(t) for t in targets], dtype=torch.float32)
        except ValueError:
            raise ValueError(f"{file}: regression needs numbers in {target!r}; it holds words.") from None
    elif target is not None:
        try:  # numeric labels sort as numbers (2 before 10), words alphabetically
            distinct = sorted(set(targets), key=float)
        except ValueError:
            distinct = sorted(set(targets))
        index = {name: i for i, name in enumerate(distinct)}
        y = torch.tensor([index[t] for t in targets], dtype=torch.int64)
        class_names = tuple(distinct)
    return Table(
        x=torch.tensor(features, dtype=torch.float32),
        y=y,
        feature_names=tuple(name for i, name in enumerate(header) if i != target_index),
        class_names=class_names,
    )


def main() -> None:
    """`python -m course_utils.data`: find (or fetch) Fashion-MNIST and say where it is."""
    location = locate_fashion_mnist()
    print(f"Fashion-MNIST is ready: {location.source}")


if __name__ == "__main__":
    main()
