"""course_utils.batchnorm.BatchNorm1d against torch.nn.BatchNorm1d, to float precision."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.batchnorm import BatchNorm1d


def pair(features: int = 5, momentum: float = 0.1) -> tuple[BatchNorm1d, nn.BatchNorm1d]:
    ours, theirs = (
        BatchNorm1d(features, momentum=momentum).double(),
        nn.BatchNorm1d(features, momentum=momentum).double(),
    )
    gamma = torch.rand(features, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5
    beta = torch.randn(features, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():  # non-trivial γ and β, the same in both
        for layer in (ours, theirs):
            layer.weight.copy_(gamma)
            layer.bias.copy_(beta)
    return ours, theirs


def batches(count: int, size: int = 16, features: int = 5) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    scale = torch.tensor([1.0, 10.0, 0.1, 3.0, 100.0], dtype=torch.float64)[:features]
    return [torch.randn(size, features, generator=g, dtype=torch.float64) * scale + 5 for _ in range(count)]


def test_training_forward_backward_and_running_buffers_match_pytorch() -> None:
    ours, theirs = pair()
    for x in batches(7):
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yb = ours(xa), theirs(xb)
        torch.testing.assert_close(ya, yb, rtol=1e-12, atol=1e-12)
        upstream = torch.randn_like(ya)
        (ya * upstream).sum().backward()
        (yb * upstream).sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.bias.grad, theirs.bias.grad, rtol=1e-10, atol=1e-12)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(theirs, name), rtol=1e-12, atol=1e-12)


def test_eval_mode_uses_running_statistics_like_pytorch() -> None:
    ours, theirs = pair()
    for x in batches(5):
        ours(x), theirs(x)
    ours.eval(), theirs.eval()
    single = batches(1, size=1)[0]  # one example: fine in eval mode
    torch.testing.assert_close(ours(single), theirs(single), rtol=1e-12, atol=1e-12)
    before = ours.running_mean.clone()
    ours(single)
    assert torch.equal(ours.running_mean, before)  # eval mode never updates the buffers


def test_running_variance_is_unbiased_and_state_dicts_are_interchangeable() -> None:
    ours, theirs = pair(momentum=1.0)  # momentum 1: the buffers hold the last batch's statistics
    x = batches(1)[0]
    ours(x)
    torch.testing.assert_close(ours.running_var, x.var(dim=0, correction=1))
    assert not torch.allclose(ours.running_var, x.var(dim=0, correction=0))
    theirs.load_state_dict(ours.state_dict())
    torch.testing.assert_close(theirs.running_var, ours.running_var)


def test_clear_errors() -> None:
    layer = BatchNorm1d(3)
    with pytest.raises(ValueError, match="at least 2 examples"):
        layer(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\[batch, 3\]"):
        layer(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1d(3, momentum=0.0)
