"""Training on in-memory tensors: `fit`, its `History`, and `evaluate`.

A run whose loss turns NaN or inf is a result, not a crash: `fit` stops at that step and the
History says `diverged=True` and when. The notebooks plot and assert on exactly that.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from course_utils.runtime import default_device, make_generator, progress_enabled, seed_everything

OPTIMIZERS = ("sgd", "adam")
LOSSES = ("cross_entropy", "mse", "clipped_probabilities")
CLASSIFICATION_LOSSES = ("cross_entropy", "clipped_probabilities")
KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): how far from 0 and 1 Keras clipped probabilities
Key = TypeVar("Key", bound=Hashable)


def clipped_probability_loss(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy computed from clipped probabilities, as Keras computed it for a softmax
    output layer: −log(clip(softmax(logits)[target], ε, 1 − ε)) with ε = 1e-7.

    Where the true class's probability is below ε (or above 1 − ε) the clip is flat, so that
    example's gradient is exactly zero: a network whose logits are huge and wrong cannot learn.
    Without clipping this is `F.cross_entropy`, up to rounding. `logits` are [..., classes] with
    `target` [...]; `reduction` is "mean" or "none".
    """
    probability = torch.softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    per_item = -torch.log(probability.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON))
    if reduction == "none":
        return per_item
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', not {reduction!r}.")
    return per_item.mean()


class ClippedProbabilityLoss(nn.Module):
    """`clipped_probability_loss` as a loss module (mean over the batch)."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return clipped_probability_loss(logits, target)


@torch.no_grad()
def clipped_share(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Share of the examples `(x, y)` whose true-class probability under `model` lies outside
    [ε, 1 − ε] (ε = `KERAS_EPSILON`): where Keras's clipped loss is flat and its gradient is exactly 0."""
    _check_xy(x, y, "clipped_probabilities", "clipped_share")
    p_true = torch.softmax(model(x), dim=-1).gather(-1, y.unsqueeze(-1))
    return float(((p_true < KERAS_EPSILON) | (p_true > 1 - KERAS_EPSILON)).double().mean())


def gradient_norm(model: nn.Module, x: Tensor, y: Tensor, *, loss: str = "cross_entropy") -> float:
    """Length of the gradient of `loss` (mean over the batch `(x, y)`) with respect to all of
    `model`'s trainable parameters at once. The parameters' `.grad` are left untouched."""
    criterion = _loss_function(loss)
    _check_xy(x, y, loss, "gradient_norm")
    parameters = [p for p in model.parameters() if p.requires_grad]
    gradients = torch.autograd.grad(criterion(_model_output(model, x, loss, y), y), parameters)
    return float(torch.cat([g.flatten() for g in gradients]).norm())


def minibatch_indices(
    n: int, batch_size: int, *, generator: torch.Generator | None = None, shuffle: bool = True
) -> Iterator[Tensor]:
    """Index tensors covering range(n) once, in batches; shuffled with `generator` if asked."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}.")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from torch.split(order, batch_size)


@dataclass
class History:
    """What one call of `fit` measured."""

    step_loss: list[float] = field(default_factory=list)
    epoch_train_loss: list[float] = field(default_factory=list)  # mean step loss of each epoch
    epoch_val_accuracy: list[float] = field(default_factory=list)  # classification runs with x_val
    epoch_val_loss: list[float] = field(default_factory=list)  # any run with x_val
    wall_time: float = 0.0  # seconds spent in the training steps (validation excluded)
    diverged: bool = False
    diverged_at_step: int | None = None  # index into step_loss of the first NaN/inf loss
    # With fit(..., eval_every=k): the steps taken at each evaluation (k, 2k, ...) and the
    # validation accuracy there.
    checkpoint_steps: list[int] = field(default_factory=list)
    checkpoint_val_accuracy: list[float] = field(default_factory=list)
    # With fit(..., stop_at_accuracy=a): the steps taken when validation accuracy first reached a.
    target_reached_at_step: int | None = None

    @property
    def steps(self) -> int:
        return len(self.step_loss)

    @property
    def time_per_step(self) -> float:
        return self.wall_time / self.steps if self.steps else math.nan

    @property
    def final_val_accuracy(self) -> float:
        """The last validation accuracy (for a diverged run: of the model as it was left)."""
        if not self.epoch_val_accuracy:
            raise ValueError("No validation accuracy was recorded: pass x_val and y_val to fit.")
        return self.epoch_val_accuracy[-1]

    def summary(self) -> str:
        if self.diverged:
            return f"diverged at step {self.diverged_at_step} (loss became NaN/inf)"
        parts = [f"{self.steps} steps", f"final train loss {self.epoch_train_loss[-1]:.4f}"]
        if self.epoch_val_accuracy:
            parts.append(f"val accuracy {self.epoch_val_accuracy[-1]:.4f}")
        parts.append(f"{1000 * self.time_per_step:.2f} ms/step")
        return ", ".join(parts)


def _loss_function(loss: str) -> nn.Module:
    if loss not in LOSSES:
        raise ValueError(f"Unknown loss {loss!r}; choose one of {LOSSES}.")
    if loss == "clipped_probabilities":
        return ClippedProbabilityLoss()
    return nn.CrossEntropyLoss() if loss == "cross_entropy" else nn.MSELoss()


def _check_xy(x: Tensor, y: Tensor, loss: str, what: str) -> None:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"{what}: x and y must be torch tensors, got {type(x).__name__}, {type(y).__name__}.")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{what}: x and y must be non-empty and of equal length, got {len(x)} and {len(y)}.")
    if not x.is_floating_point():
        raise TypeError(
            f"{what}: x has dtype {x.dtype}; the model needs floats. Preprocess it first, e.g. "
            "fit_preprocessing('divide_255', x_train)(x) (or 'raw' to keep 0-255 values)."
        )
    if loss in CLASSIFICATION_LOSSES and y.dtype != torch.int64:
        raise TypeError(f"{what}: class labels y must be int64 for {loss}, not {y.dtype}.")
    if loss == "mse" and not y.is_floating_point():
        raise TypeError(f"{what}: regression targets y must be floats for mse, not {y.dtype}.")


def _check_run(
    optimizer: str,
    epochs: int,
    batch_size: int,
    x: Tensor,
    y: Tensor,
    x_val: Tensor | None,
    y_val: Tensor | None,
    loss: str,
    what: str,
) -> None:
    """The checks every training entry point (`fit`, `fit_seeds`) makes of its common arguments."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}.")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, not {epochs!r}.")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}.")
    _check_xy(x, y, loss, what)
    if (x_val is None) != (y_val is None):
        raise ValueError("Pass both x_val and y_val, or neither.")
    if x_val is not None and y_val is not None:
        _check_xy(x_val, y_val, loss, f"{what} (validation data)")


def _check_checkpoints(eval_every: object, stop_at_accuracy: object, has_validation: bool, loss: str) -> None:
    """The checks `fit` makes of `eval_every` and `stop_at_accuracy`."""
    if eval_every is not None and (not isinstance(eval_every, int) or isinstance(eval_every, bool) or eval_every < 1):
        raise ValueError(
            f"eval_every must be a positive integer (steps between evaluations) or None, not {eval_every!r}."
        )
    if stop_at_accuracy is not None and not (
        isinstance(stop_at_accuracy, (int, float))
        and not isinstance(stop_at_accuracy, bool)
        and 0 < stop_at_accuracy <= 1
    ):
        raise ValueError(f"stop_at_accuracy must be an accuracy in (0, 1] or None, not {stop_at_accuracy!r}.")
    for name, value in (("eval_every", eval_every), ("stop_at_accuracy", stop_at_accuracy)):
        if value is None:
            continue
        if not has_validation:
            raise ValueError(f"{name} measures validation accuracy: pass x_val and y_val too.")
        if loss not in CLASSIFICATION_LOSSES:
            raise ValueError(
                f"{name} measures accuracy, which needs a classification loss {CLASSIFICATION_LOSSES}, not {loss!r}."
            )


def _model_output(model: nn.Module, xb: Tensor, loss: str, yb: Tensor) -> Tensor:
    out: Tensor = model(xb)
    # A regression net ends in one unit: [N, 1] against targets [N].
    return out.reshape(yb.shape) if loss == "mse" and out.numel() == yb.numel() else out


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int = 4096) -> float:
    """Classification accuracy of `model` on `(x, y)`, in eval mode, restoring the mode after."""
    _check_xy(x, y, "cross_entropy", "evaluate")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        correct = 0
        for xb, yb in zip(torch.split(x, batch_size), torch.split(y, batch_size), strict=True):
            correct += int((model(xb.to(device)).argmax(dim=1) == yb.to(device)).sum())
    finally:
        model.train(was_training)
    return correct / len(y)


@torch.no_grad()
def mean_loss(model: nn.Module, x: Tensor, y: Tensor, *, loss: str = "cross_entropy") -> float:
    """Mean loss of `model` on `(x, y)` in eval mode (NaN/inf are returned, not raised)."""
    criterion = _loss_function(loss)
    _check_xy(x, y, loss, "mean_loss")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        total = 0.0
        for xb, yb in zip(torch.split(x, 4096), torch.split(y, 4096), strict=True):
            total += float(criterion(_model_output(model, xb.to(device), loss, yb), yb.to(device))) * len(yb)
    finally:
        model.train(was_training)
    return total / len(y)


def fit(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    optimizer: Literal["sgd", "adam"] = "sgd",
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
    x_val: Tensor | None = None,
    y_val: Tensor | None = None,
    momentum: float = 0.0,
    loss: Literal["cross_entropy", "mse", "clipped_probabilities"] = "cross_entropy",
    device: torch.device | str | None = None,
    progress: bool | None = None,
    eval_every: int | None = None,
    stop_at_accuracy: float | None = None,
    shuffle: bool = True,
) -> History:
    """Train `model` in place with mini-batch SGD or Adam; return what was measured.

    `seed` fixes the shuffling and every random generator, so the same seed on the same
    freshly built model gives the same History. Validation runs after each epoch when
    `x_val, y_val` are given. The model and data move to `device` (default: `default_device()`).
    `loss` is "cross_entropy" (of the logits), "mse", or "clipped_probabilities": cross-entropy
    of clipped softmax probabilities, as Keras computed it (see `clipped_probability_loss`).

    `shuffle=False` trains on the rows in the order given (batch i is rows i·batch_size onwards,
    the same in every epoch): for batches drawn beforehand, e.g. with replacement.

    `eval_every=k` also measures the validation accuracy after every k training steps (counted
    over the whole run, across epochs) into `checkpoint_steps` and `checkpoint_val_accuracy`.
    `stop_at_accuracy=a` ends training as soon as a validation accuracy that `fit` measures (at
    those checkpoints, and after each epoch) reaches a, and records the steps taken so far in
    `target_reached_at_step`; the epoch it stops in is then closed as a diverged one is (its mean
    loss so far, and a validation of the model as it was left). Both need `x_val, y_val` and a
    classification loss. Evaluating changes nothing about the training itself (no random draws,
    eval mode), and its time is left out of `wall_time`.
    """
    criterion = _loss_function(loss)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, not {lr!r}.")
    _check_run(optimizer, epochs, batch_size, x, y, x_val, y_val, loss, "fit")
    _check_checkpoints(eval_every, stop_at_accuracy, x_val is not None, loss)
    if not isinstance(shuffle, bool):
        raise TypeError(f"shuffle must be True or False, not {shuffle!r}.")

    seed_everything(seed)
    target = torch.device(device) if device is not None else default_device()
    model.to(target)
    model.train()
    x, y = x.to(target), y.to(target)
    params = list(model.parameters())
    opt: torch.optim.Optimizer = (
        torch.optim.SGD(params, lr=lr, momentum=momentum) if optimizer == "sgd" else torch.optim.Adam(params, lr=lr)
    )
    shuffler = make_generator(seed)
    history = History()

    bar = None
    if progress_enabled(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=f"{optimizer} lr={lr:g}", leave=False)

    for _ in range(epochs):
        start = time.perf_counter()
        epoch_losses: list[float] = []
        for index in minibatch_indices(len(x), batch_size, generator=shuffler, shuffle=shuffle):
            if batch_size >= len(x):  # full batch: the order is irrelevant, skip copying the data
                xb, yb = x, y
            else:
                index = index.to(target)
                xb, yb = x[index], y[index]
            try:
                batch_loss = criterion(_model_output(model, xb, loss, yb), yb)
            except RuntimeError as exc:
                if history.steps:
                    raise
                raise ValueError(
                    f"The model could not be applied to a batch of shape {tuple(xb.shape)} with "
                    f"targets of shape {tuple(yb.shape)}: {exc}. Check in_features/out_features."
                ) from exc
            value = batch_loss.item()
            history.step_loss.append(value)
            if not math.isfinite(value):
                history.diverged, history.diverged_at_step = True, history.steps - 1
                break
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            epoch_losses.append(value)
            if eval_every is not None and x_val is not None and y_val is not None and history.steps % eval_every == 0:
                paused = time.perf_counter()
                accuracy = evaluate(model, x_val, y_val)
                history.checkpoint_steps.append(history.steps)
                history.checkpoint_val_accuracy.append(accuracy)
                start += time.perf_counter() - paused  # validation is not training time
                if stop_at_accuracy is not None and accuracy >= stop_at_accuracy:
                    history.target_reached_at_step = history.steps
                    break
        history.wall_time += time.perf_counter() - start
        if epoch_losses:
            history.epoch_train_loss.append(sum(epoch_losses) / len(epoch_losses))
        if x_val is not None and y_val is not None:
            # Also after a divergence: the accuracy the learner would see from this model.
            history.epoch_val_loss.append(mean_loss(model, x_val, y_val, loss=loss))
            if loss in CLASSIFICATION_LOSSES:
                at_checkpoint = bool(history.checkpoint_steps) and history.checkpoint_steps[-1] == history.steps
                # The model has not changed since a checkpoint at this very step: its accuracy stands.
                accuracy = history.checkpoint_val_accuracy[-1] if at_checkpoint else evaluate(model, x_val, y_val)
                history.epoch_val_accuracy.append(accuracy)
                reached = stop_at_accuracy is not None and accuracy >= stop_at_accuracy
                if reached and history.target_reached_at_step is None and not history.diverged:
                    history.target_reached_at_step = history.steps
        if history.diverged or history.target_reached_at_step is not None:
            break
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history.epoch_train_loss[-1]:.4f}")
    if bar is not None:
        bar.close()
    return history


def seconds_per_step(
    models: Mapping[Key, nn.Module],
    x: Tensor,
    y: Tensor,
    *,
    lr: Mapping[Key, float],
    batch_size: int,
    repeats: int = 5,
) -> dict[Key, float]:
    """Seconds per SGD step of each model: the fastest of `repeats` timed one-epoch `fit` passes
    over `(x, y)` (seeds 0, 1, ...), the models taking turns, so that a busy spell of the machine
    slows them alike and the minimum leaves it out. `lr[key]` is each model's rate; the models are
    trained in place. Validation is not timed (`History.time_per_step`)."""
    if not models:
        raise ValueError("models is empty: give the models to time, e.g. {'plain': net, 'with BN': bn_net}.")
    if set(lr) != set(models):
        raise ValueError(f"lr must give one rate per model: models {list(models)}, rates for {list(lr)}.")
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, not {repeats!r}.")
    timings: dict[Key, list[float]] = {key: [] for key in models}
    for repeat in range(repeats):
        for key, model in models.items():
            history = fit(model, x, y, lr=lr[key], epochs=1, batch_size=batch_size, seed=repeat, progress=False)
            timings[key].append(history.time_per_step)
    return {key: min(times) for key, times in timings.items()}


@dataclass(frozen=True)
class SweepPoint:
    """One run of a learning-rate sweep."""

    lr: float
    history: History

    @property
    def accuracy(self) -> float:
        return self.history.final_val_accuracy

    @property
    def diverged(self) -> bool:
        return self.history.diverged


def sweep_learning_rates(
    make_model: Callable[[], nn.Module],
    x: Tensor,
    y: Tensor,
    lrs: Sequence[float],
    *,
    x_val: Tensor,
    y_val: Tensor,
    seed: int,
    epochs: int,
    batch_size: int,
    optimizer: Literal["sgd", "adam"] = "sgd",
    momentum: float = 0.0,
) -> list[SweepPoint]:
    """Train a fresh `make_model()` (built after seeding with `seed`) at each learning rate."""
    if len(lrs) == 0:
        raise ValueError("lrs is empty: give the learning rates to try, e.g. numpy.logspace(-4, 0, 9).")
    points = []
    for lr in lrs:
        seed_everything(seed)
        model = make_model()
        history = fit(
            model,
            x,
            y,
            optimizer=optimizer,
            lr=float(lr),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            x_val=x_val,
            y_val=y_val,
            momentum=momentum,
            progress=False,
        )
        points.append(SweepPoint(float(lr), history))
    return points


def best_point(points: Sequence[SweepPoint]) -> SweepPoint:
    """The run with the highest validation accuracy (the smaller rate on a tie)."""
    return max(points, key=lambda p: (p.accuracy, -p.lr))


def good_range(points: Sequence[SweepPoint], within: float = 0.02) -> tuple[float, float]:
    """Smallest and largest rate of the unbroken run of rates around the best one whose runs
    did not diverge and reached at least best accuracy − `within`."""
    ordered = sorted(points, key=lambda p: p.lr)
    best = ordered.index(best_point(points))
    threshold = ordered[best].accuracy - within

    def good(p: SweepPoint) -> bool:
        return not p.diverged and p.accuracy >= threshold

    low = high = best
    while low > 0 and good(ordered[low - 1]):
        low -= 1
    while high < len(ordered) - 1 and good(ordered[high + 1]):
        high += 1
    return ordered[low].lr, ordered[high].lr


def largest_rate(points: Sequence[SweepPoint], *, accuracy_above: float | None = None) -> float:
    """The largest rate of a sweep whose run did not diverge and, with `accuracy_above`, reached a
    validation accuracy above it (a rate that still *learns*, not only one whose loss stayed
    finite); 0.0 when no rate did."""
    return max(
        (p.lr for p in points if not p.diverged and (accuracy_above is None or p.accuracy > accuracy_above)),
        default=0.0,
    )


def sgd_losses(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    first_layer_lr: float,
    first_layer_decay: float = 0.0,
    lr: float = 0.1,
    steps: int = 60,
    batch_size: int = 128,
    seed: int = 0,
) -> np.ndarray:
    """Plain SGD with cross-entropy, trains `net` in place and returns the loss of every step.

    The weights of the first `nn.Linear` get their own learning rate and weight decay
    (`first_layer_lr`, `first_layer_decay`); every other parameter, that layer's bias included,
    gets `lr` and no decay. Each step draws `batch_size` examples with replacement from a
    generator seeded with `seed` (`make_generator`: shifted by COURSE_SEED_OFFSET), so two calls
    on data of the same length see the same batches: runs that differ only in the input scale, the
    rates or the decay can be compared step by step.
    """
    first_weights = next((m.weight for m in net.modules() if isinstance(m, nn.Linear)), None)
    if first_weights is None:
        raise ValueError("sgd_losses needs a network with an nn.Linear layer, e.g. mlp(784, 128, 10).")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}.")
    _check_xy(x, y, "cross_entropy", "sgd_losses")
    others = [p for p in net.parameters() if p is not first_weights]
    groups: list[dict[str, Any]] = [
        {"params": [first_weights], "lr": first_layer_lr, "weight_decay": first_layer_decay},
        {"params": others},
    ]
    optimizer = torch.optim.SGD(groups, lr=lr)
    criterion = _loss_function("cross_entropy")
    order = make_generator(seed)
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(x), (batch_size,), generator=order)
        loss = criterion(net(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses)
