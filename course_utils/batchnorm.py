"""Batch normalization written out: the same computation as torch.nn.BatchNorm1d, in plain steps.

Notebook 05 checks it against PyTorch to float precision (forward, backward, running buffers,
train and eval mode; `largest_differences`), and then uses PyTorch's own layer. The rest are the
notebook's measuring tools: `evaluate_in_train_mode` (what forgetting `model.eval()` costs) and
`ShiftAndScaleNoise` (the "noisy batch norm" test of the internal-covariate-shift explanation).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn


class BatchNorm1d(nn.Module):
    """Normalize each feature over the batch, then scale by γ (`weight`) and shift by β (`bias`).

    Training mode: use the batch's mean and its *biased* variance (divide by N), and update the
    running estimates with `momentum`: running = (1 - momentum)·running + momentum·batch, where
    the running variance takes the *unbiased* batch variance (divide by N - 1), as PyTorch does.
    Eval mode: use the running estimates, so one example's output does not depend on the others.
    Parameter and buffer names match nn.BatchNorm1d, so state dicts load into either.
    """

    running_mean: Tensor
    running_var: Tensor
    num_batches_tracked: Tensor

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive integer, not {num_features!r}.")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], not {momentum}.")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))  # γ
        self.bias = nn.Parameter(torch.zeros(num_features))  # β
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d({self.num_features}) expects input of shape [batch, {self.num_features}], "
                f"got {tuple(x.shape)}."
            )
        if self.training:
            n = x.shape[0]
            if n < 2:
                raise ValueError(
                    "Batch norm in training mode needs at least 2 examples per batch (one example "
                    "has no variance). Use a larger batch, call model.eval(), or use nn.LayerNorm."
                )
            mean = x.mean(dim=0)
            variance = ((x - mean) ** 2).mean(dim=0)  # biased: what the batch is normalized with
            with torch.no_grad():
                unbiased = variance * n / (n - 1)  # what the running estimate stores
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * unbiased)
                self.num_batches_tracked += 1
        else:
            mean, variance = self.running_mean, self.running_var
        x_hat = (x - mean) / torch.sqrt(variance + self.eps)
        return self.weight * x_hat + self.bias

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


def largest_differences(
    ours: nn.Module, reference: nn.Module, batches: Sequence[Tensor], *, seed: int = 0
) -> dict[str, float]:
    """Run two batch-norm layers side by side and return the largest absolute difference of each
    thing they compute: the training-mode output and input gradient for every batch (with the same
    random upstream gradient, drawn from `seed`), the γ and β gradients accumulated over the
    batches, the running buffers after them, and the eval-mode output on the first batch.

    Both layers are left in eval mode with their buffers updated, as after training.
    """
    if not batches:
        raise ValueError("give at least one batch of shape [N, C].")
    generator = torch.Generator().manual_seed(seed)
    gaps = {"forward": 0.0, "input gradient": 0.0}
    ours.train(), reference.train()
    for batch in batches:
        a, b = batch.clone().requires_grad_(True), batch.clone().requires_grad_(True)
        out_a, out_b = ours(a), reference(b)
        upstream = torch.randn(out_a.shape, generator=generator, dtype=out_a.dtype)
        (out_a * upstream).sum().backward()
        (out_b * upstream).sum().backward()
        assert a.grad is not None and b.grad is not None  # both inputs require gradients
        gaps["forward"] = max(gaps["forward"], _largest_gap(out_a, out_b))
        gaps["input gradient"] = max(gaps["input gradient"], _largest_gap(a.grad, b.grad))
    for name in ("weight", "bias"):
        grad_a, grad_b = getattr(ours, name).grad, getattr(reference, name).grad
        gaps[f"{'γ' if name == 'weight' else 'β'} gradient"] = _largest_gap(grad_a, grad_b)
    for name in ("running_mean", "running_var"):
        gaps[name.replace("_", " ")] = _largest_gap(getattr(ours, name), getattr(reference, name))
    ours.eval(), reference.eval()
    with torch.no_grad():
        gaps["eval-mode forward"] = _largest_gap(ours(batches[0]), reference(batches[0]))
    return gaps


def _largest_gap(a: Tensor, b: Tensor) -> float:
    return float((a - b).detach().abs().max())


class TrainModeEvaluation(NamedTuple):
    accuracy: float  # of predictions made with each test batch's own statistics
    running_mean_drift: float  # how far the evaluation moved any batch-norm running mean


# Modules that act on each feature of each example alone, so they run on [batches, batch, features] as is.
_PER_EXAMPLE = (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.Identity)


@torch.no_grad()
def evaluate_in_train_mode(model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int) -> TrainModeEvaluation:
    """The slip of evaluating without `model.eval()`: classification accuracy on `(x, y)` fed in
    batches of `batch_size` in training mode, where every batch-norm layer normalizes with that
    batch's statistics and updates its running estimates with test data; and the largest change of
    any running mean that caused. `model` itself is untouched.

    An nn.Sequential of Flatten, Linear, batch norm and elementwise activations (what `mlp` builds)
    runs all the test batches at once, as [batches, batch_size, features]: the numbers of the
    batch-by-batch loop that any other model gets (on a copy), many times faster for tiny batches.
    """
    if not isinstance(batch_size, int) or batch_size < 2 or len(y) % batch_size == 1:
        raise ValueError(
            f"batch_size must be an integer ≥ 2 that leaves no last batch of one example (batch norm "
            f"cannot normalize one example by its own statistics), not {batch_size!r} for {len(y)} examples."
        )
    together = _train_mode_all_batches(model, x, batch_size)
    if together is not None:
        logits, drift = together
        return TrainModeEvaluation(float((logits.argmax(dim=1) == y).double().mean()), drift)
    forgetful = copy.deepcopy(model).train()
    means: list[Tensor] = []
    for module in forgetful.modules():
        if isinstance(module, nn.BatchNorm1d | BatchNorm1d) and module.running_mean is not None:
            means.append(module.running_mean)
    before = [mean.clone() for mean in means]
    correct = 0
    for xb, yb in zip(torch.split(x, batch_size), torch.split(y, batch_size), strict=True):
        correct += int((forgetful(xb).argmax(dim=1) == yb).sum())
    drift = max((_largest_gap(mean, start) for mean, start in zip(means, before, strict=True)), default=0.0)
    return TrainModeEvaluation(correct / len(y), drift)


def _train_mode_all_batches(model: nn.Module, x: Tensor, batch_size: int) -> tuple[Tensor, float] | None:
    """Training-mode logits of every test batch at once, and the running means' largest drift; None
    for a model this cannot run (then the caller loops over the batches)."""
    if not isinstance(model, nn.Sequential) or len(x) % batch_size:
        return None
    h = x.reshape(len(x) // batch_size, batch_size, -1)  # [test batches, examples, flattened features]
    drift = 0.0
    for position, layer in enumerate(model):
        if isinstance(layer, nn.Flatten) and position == 0:
            continue  # the reshape above flattened each example already
        if isinstance(layer, _PER_EXAMPLE):
            h = layer(h)
        elif isinstance(layer, nn.BatchNorm1d | BatchNorm1d) and isinstance(layer.momentum, float):
            mean = h.mean(dim=1, keepdim=True)
            centred = h - mean
            h = centred / torch.sqrt((centred**2).mean(dim=1, keepdim=True) + layer.eps)  # the biased variance
            if layer.weight is not None and layer.bias is not None:
                h = layer.weight * h + layer.bias
            if layer.running_mean is not None:
                # One update per test batch, in order: the start keeps (1 - m)^count, batch g adds m(1 - m)^(count-1-g).
                count, m = len(h), layer.momentum
                age = torch.arange(count - 1, -1, -1, dtype=torch.float64)
                final = (1 - m) ** count * layer.running_mean.double() + (m * (1 - m) ** age) @ mean[:, 0].double()
                drift = max(drift, _largest_gap(final, layer.running_mean.double()))
        else:
            return None
    return h.reshape(len(x), -1), drift


class ShiftAndScaleNoise(nn.Module):
    """In training mode, multiply each unit by a random scale exp(N(0, log_scale_std²)) and add a
    random shift N(0, shift_std²), both drawn afresh at every forward pass and shared by the whole
    batch: the distribution of each unit, as the next layer sees it, moves at every step, by design.
    Put after a batch-norm layer it undoes the stability batch norm was invented to give (the
    "noisy batch norm" of Santurkar et al., 2018). In eval mode it is the identity.
    Draws from torch's global generator, so `seed_everything` makes a run repeatable."""

    def __init__(self, num_features: int, *, shift_std: float, log_scale_std: float) -> None:
        super().__init__()
        if shift_std < 0 or log_scale_std < 0:
            raise ValueError(f"the noise's spreads must be ≥ 0, not {shift_std} and {log_scale_std}.")
        self.num_features, self.shift_std, self.log_scale_std = num_features, shift_std, log_scale_std

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        scale = torch.exp(self.log_scale_std * torch.randn(self.num_features, dtype=x.dtype, device=x.device))
        shift = self.shift_std * torch.randn(self.num_features, dtype=x.dtype, device=x.device)
        return x * scale + shift

    def extra_repr(self) -> str:
        return f"{self.num_features}, shift_std={self.shift_std}, log_scale_std={self.log_scale_std}"


def with_noise_after_batch_norm(model: nn.Sequential, *, shift_std: float, log_scale_std: float) -> nn.Sequential:
    """`model` with a `ShiftAndScaleNoise` right after every BatchNorm1d (the layers themselves are
    shared, not copied)."""
    layers: list[nn.Module] = []
    for layer in model:
        layers.append(layer)
        if isinstance(layer, nn.BatchNorm1d | BatchNorm1d):
            layers.append(ShiftAndScaleNoise(layer.num_features, shift_std=shift_std, log_scale_std=log_scale_std))
    if len(layers) == len(model):
        raise ValueError("the model has no BatchNorm1d layer to put noise after.")
    return nn.Sequential(*layers)
