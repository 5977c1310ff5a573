"""Batch normalization written out: the same computation as torch.nn.BatchNorm1d, in plain steps.

Notebook 05 shows this file, checks it against PyTorch to float precision (forward, backward,
running buffers, train and eval mode), and then uses PyTorch's own layer.
"""

from __future__ import annotations

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
