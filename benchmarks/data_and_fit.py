"""Two measurements that justify how course_utils trains, run in one process.

1. Data path: samples per second of mini-batches indexed from in-memory tensors (course_utils)
   against torchvision's per-sample path, DataLoader(FashionMNIST(transform=ToImage+ToDtype)).
   Target: the in-memory path is at least 20x faster.
2. Training loop: `course_utils.train.fit` against a bare hand-written loop, same model, data,
   optimizer and batch order. Target: fit costs at most 1.10x the bare loop.

Run: `.venv/bin/python benchmarks/data_and_fit.py` (about a minute on a 2-core CPU).
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.datasets import FashionMNIST
from torchvision.transforms import v2

from course_utils.data import load_fashion_mnist, locate_fashion_mnist
from course_utils.models import mlp
from course_utils.preprocessing import fit_preprocessing
from course_utils.runtime import seed_everything
from course_utils.train import fit, minibatch_indices

BATCH = 128
REPEATS = 3


def in_memory_samples_per_second(images: torch.Tensor) -> float:
    start = time.perf_counter()
    x = fit_preprocessing("divide_255", images)(images)  # one-time cost, counted
    generator = torch.Generator().manual_seed(0)
    seen = 0
    for index in minibatch_indices(len(x), BATCH, generator=generator):
        seen += len(x[index])
    return seen / (time.perf_counter() - start)


def dataloader_samples_per_second(root: str, limit: int) -> float:
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    dataset = FashionMNIST(root, train=True, transform=transform, download=False)
    loader = DataLoader(
        dataset, batch_size=BATCH, shuffle=True, num_workers=0, generator=torch.Generator().manual_seed(0)
    )
    start = time.perf_counter()
    seen = 0
    for xb, _ in loader:
        seen += len(xb)
        if seen >= limit:
            break
    return seen / (time.perf_counter() - start)


def bare_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, seed: int) -> float:
    """The minimal loop a learner would write, same batch order as fit."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for index in minibatch_indices(len(x), BATCH, generator=generator):
        loss = loss_fn(model(x[index]), y[index])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(torch.get_num_threads())
    images, labels = load_fashion_mnist("train")
    root = str(locate_fashion_mnist().root)

    memory = max(in_memory_samples_per_second(images) for _ in range(REPEATS))
    loader = max(dataloader_samples_per_second(root, limit=15_000) for _ in range(REPEATS))
    print(f"in-memory batches : {memory:>12,.0f} samples/s")
    print(f"DataLoader + v2   : {loader:>12,.0f} samples/s")
    print(f"data path ratio   : {memory / loader:.1f}x (target >= 20x)")

    x = fit_preprocessing("divide_255", images)(images)[:30_000]
    y = labels[:30_000]
    fit_times, bare_times = [], []
    for repeat in range(REPEATS):  # interleaved, so both see the same machine load
        seed_everything(repeat)
        model = mlp(784, 128, 10)
        history = fit(model, x, y, lr=0.1, epochs=1, batch_size=BATCH, seed=repeat, progress=False)
        fit_times.append(history.wall_time)
        seed_everything(repeat)
        bare_times.append(bare_loop(mlp(784, 128, 10), x, y, lr=0.1, seed=repeat))
    best_fit, best_bare = min(fit_times), min(bare_times)
    print(f"fit, 1 epoch      : {best_fit:.3f} s ({1e3 * best_fit / history.steps:.2f} ms/step)")
    print(f"bare loop, 1 epoch: {best_bare:.3f} s")
    print(f"fit / bare ratio  : {best_fit / best_bare:.3f}x (target <= 1.10x)")


if __name__ == "__main__":
    main()
