"""Five seeds at once: `course_utils.batched.fit_seeds` against five sequential `fit` calls.

Main case: the tutorial network mlp(784, 128, 10), one epoch over 12,000 Fashion-MNIST images
(/255), batch 128. Second case, for contrast: the tabular network mlp(30, 64, 2) on the breast
cancer training split (feature z-score), batch 32, 20 epochs. Each with SGD (lr 0.1) and Adam
(lr 1e-3), seeds 0-4. Both sides produce the same five Histories (checked: the largest relative
difference of a step loss is printed); times are whole calls (setup included, no validation),
the median of REPEATS interleaved repeats, so both sides see the same machine load.
Target: fit_seeds >= 3x faster.

Run: `.venv/bin/python benchmarks/batched_seeds.py [--threads N]` (about a minute on a 2-core CPU).
Run it on an otherwise idle machine (the load average is printed with the table): PyTorch's CPU
threads wait for each other, so a busy core slows a 2-thread run many times over. Process CPU
seconds are printed too: with `--threads 1` they hardly depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from course_utils.batched import fit_seeds
from course_utils.data import load_fashion_mnist, load_tabular
from course_utils.models import mlp
from course_utils.preprocessing import fit_preprocessing
from course_utils.runtime import default_device, seed_everything
from course_utils.train import History, fit

SEEDS = list(range(5))
REPEATS = 5
OPTIMIZERS = [("sgd", 0.1), ("adam", 1e-3)]


class Case:
    """One training job: a network, its data and its schedule."""

    def __init__(
        self, name: str, make_model: Callable[[], nn.Module], x: Tensor, y: Tensor, epochs: int, batch_size: int
    ) -> None:
        self.name, self.make_model, self.x, self.y = name, make_model, x, y
        self.epochs, self.batch_size = epochs, batch_size

    def sequential(self, optimizer: str, lr: float) -> list[History]:
        histories = []
        for seed in SEEDS:
            seed_everything(seed)
            histories.append(
                fit(
                    self.make_model(),
                    self.x,
                    self.y,
                    optimizer=optimizer,
                    lr=lr,  # type: ignore[arg-type]
                    epochs=self.epochs,
                    batch_size=self.batch_size,
                    seed=seed,
                    progress=False,
                )
            )
        return histories

    def batched(self, optimizer: str, lr: float) -> list[History]:
        return fit_seeds(
            self.make_model,
            self.x,
            self.y,
            seeds=SEEDS,
            lr=lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=optimizer,
            progress=False,  # type: ignore[arg-type]
            batched=True,
        )


def timed(run: Callable[[str, float], list[History]], optimizer: str, lr: float) -> tuple[float, float, list[History]]:
    """Wall-clock and process CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    histories = run(optimizer, lr)
    return time.perf_counter() - wall, time.process_time() - cpu, histories


def cases() -> list[Case]:
    images, labels = load_fashion_mnist("train")
    images, labels = images[:12_000], labels[:12_000]
    tabular = load_tabular("breast_cancer")
    features = fit_preprocessing("feature_zscore", tabular.x_train)(tabular.x_train)
    return [
        Case(
            "mlp(784,128,10), 12k images, 1 epoch, batch 128",
            lambda: mlp(784, 128, 10),
            fit_preprocessing("divide_255", images)(images),
            labels,
            epochs=1,
            batch_size=128,
        ),
        Case(
            f"mlp(30,64,2), breast cancer ({len(features)} rows), 20 epochs, batch 32",
            lambda: mlp(30, 64, 2),
            features,
            tabular.y_train,
            epochs=20,
            batch_size=32,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="fit_seeds against sequential fit calls")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    torch.set_num_threads(parser.parse_args().threads)
    jobs = cases()
    print(
        f"device {default_device()}, {torch.get_num_threads()} thread(s), {len(SEEDS)} seeds, median of "
        f"{REPEATS}, load average before {os.getloadavg()[0]:.2f}"
    )
    print(f"{'':<10}{'wall-clock seconds':^33}{'CPU seconds':^33}")
    print(f"{'optimizer':<10}" + f"{'5 x fit':>10}{'fit_seeds':>11}{'speed-up':>12}" * 2 + f"{'max rel. diff':>15}")
    for case in jobs:
        print(case.name)
        for optimizer, lr in OPTIMIZERS:
            case.batched(optimizer, lr)  # warm-up: a first call pays one-time costs
            times: dict[str, list[float]] = {key: [] for key in ("fit wall", "fit cpu", "batched wall", "batched cpu")}
            worst = 0.0
            for _ in range(REPEATS):
                wall, cpu, references = timed(case.sequential, optimizer, lr)
                times["fit wall"].append(wall)
                times["fit cpu"].append(cpu)
                wall, cpu, histories = timed(case.batched, optimizer, lr)
                times["batched wall"].append(wall)
                times["batched cpu"].append(cpu)
                for mine, theirs in zip(histories, references, strict=True):  # the same five runs, to rounding
                    worst = max(
                        [worst] + [abs(a - b) / abs(b) for a, b in zip(mine.step_loss, theirs.step_loss, strict=True)]
                    )
            row = f"  {optimizer:<8}"
            for kind in ("wall", "cpu"):
                slow, fast = statistics.median(times[f"fit {kind}"]), statistics.median(times[f"batched {kind}"])
                row += f"{slow:>10.3f}{fast:>11.3f}{slow / fast:>11.2f}x"
            print(row + f"{worst:>15.1e}")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
