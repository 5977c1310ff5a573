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


def test_largest_differences_are_zero_for_twins_and_name_what_differs() -> None:
    from course_utils.batchnorm import largest_differences

    twins = largest_differences(*pair(), batches(3))
    assert set(twins) == {
        "forward",
        "input gradient",
        "γ gradient",
        "β gradient",
        "running mean",
        "running var",
        "eval-mode forward",
    }
    assert max(twins.values()) < 1e-10
    # Momentum 0.2 instead of 0.1 changes nothing in training mode, only the running estimates:
    # after one batch from zero, the running means differ by (0.2 - 0.1) · the batch mean.
    x = batches(1)[0]
    slower, faster = nn.BatchNorm1d(5, momentum=0.1).double(), nn.BatchNorm1d(5, momentum=0.2).double()
    gaps = largest_differences(slower, faster, [x])
    assert gaps["forward"] == gaps["input gradient"] == gaps["γ gradient"] == 0.0
    assert gaps["running mean"] == pytest.approx(0.1 * x.mean(dim=0).abs().max().item(), rel=1e-12)
    assert gaps["eval-mode forward"] > 0 and not slower.training and not faster.training
    with pytest.raises(ValueError, match="at least one batch"):
        largest_differences(slower, faster, [])


def test_evaluating_in_train_mode_uses_each_batch_s_statistics_and_spares_the_model() -> None:
    from course_utils.batchnorm import evaluate_in_train_mode

    model = nn.Sequential(nn.BatchNorm1d(2)).eval()  # γ = 1, β = 0: the outputs are the logits of 2 classes
    x = torch.tensor([[0.0, 10.0], [1.0, 0.0], [5.0, 6.0], [0.0, 7.0]])
    y = torch.tensor([1, 0, 1, 1])
    # In pairs each feature becomes ±1: pair 1 predicts [1, 0] (both right), pair 2 [0, 1] (one right).
    # The running mean starts at 0 and takes 0.1 of each pair's mean: [0.05, 0.5], then [0.295, 1.1].
    result = evaluate_in_train_mode(model, x, y, batch_size=2)
    assert result.accuracy == 0.75
    assert result.running_mean_drift == pytest.approx(1.1)
    # The model itself is untouched: still in eval mode, its running mean still 0, so it predicts
    # from the raw features, [1, 0, 1, 1]: all four right.
    assert not model.training and torch.equal(model[0].running_mean, torch.zeros(2))
    assert torch.equal(model(x).argmax(dim=1), y)
    with pytest.raises(ValueError, match="no last batch of one"):
        evaluate_in_train_mode(model, x[:3], y[:3], batch_size=2)


def test_evaluating_all_test_batches_at_once_matches_the_batch_by_batch_loop() -> None:
    from course_utils.batchnorm import evaluate_in_train_mode
    from course_utils.models import mlp

    torch.manual_seed(0)
    model = mlp(6, [16, 16], 4, batch_norm=True)
    model(torch.randn(64, 6) * 3 + 1)  # one training step's worth of running statistics
    model.eval()
    x, y = torch.randn(48, 6) * 3 + 1, torch.randint(0, 4, (48,))
    looped = nn.Sequential(model)  # a Sequential inside a Sequential: only the loop can run it
    for batch_size in (2, 8, 48):
        together = evaluate_in_train_mode(model, x, y, batch_size=batch_size)
        one_by_one = evaluate_in_train_mode(looped, x, y, batch_size=batch_size)
        assert together.accuracy == one_by_one.accuracy
        assert together.running_mean_drift == pytest.approx(one_by_one.running_mean_drift, rel=1e-5)
        assert together.running_mean_drift > 0
    assert not model.training  # both paths leave the model as it was


def test_shift_and_scale_noise_moves_each_unit_by_one_draw_per_step_and_is_off_in_eval() -> None:
    from course_utils.batchnorm import ShiftAndScaleNoise

    noise = ShiftAndScaleNoise(5, shift_std=0.5, log_scale_std=0.3)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    out = noise(x)
    scale = (out[0] - out[1]) / (x[0] - x[1])  # one scale and one shift per unit, shared by the batch
    shift = out[0] - scale * x[0]
    torch.testing.assert_close(out, x * scale + shift)
    assert not torch.equal(noise(x), out)  # drawn afresh at every step
    noise.eval()
    assert torch.equal(noise(x), x)


def test_shift_and_scale_noise_has_the_spreads_it_is_given() -> None:
    from course_utils.batchnorm import ShiftAndScaleNoise

    torch.manual_seed(0)
    shifts = ShiftAndScaleNoise(40_000, shift_std=0.5, log_scale_std=0.0)(torch.zeros(2, 40_000))
    scales = ShiftAndScaleNoise(40_000, shift_std=0.0, log_scale_std=0.3)(torch.ones(2, 40_000))
    assert shifts[0].std().item() == pytest.approx(0.5, rel=0.03) and abs(shifts[0].mean().item()) < 0.01
    assert scales[0].log().std().item() == pytest.approx(0.3, rel=0.03) and abs(scales[0].log().mean().item()) < 0.01
    with pytest.raises(ValueError, match="≥ 0"):
        ShiftAndScaleNoise(3, shift_std=-1.0, log_scale_std=0.3)


def test_noise_goes_right_after_every_batch_norm_layer() -> None:
    from course_utils.batchnorm import ShiftAndScaleNoise, with_noise_after_batch_norm
    from course_utils.models import mlp

    plain = mlp(6, [4, 3], 2, batch_norm=True)
    noisy = with_noise_after_batch_norm(plain, shift_std=0.5, log_scale_std=0.3)
    kinds = [type(layer).__name__ for layer in noisy]
    assert kinds == [
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "ShiftAndScaleNoise",
        "ReLU",
        "Linear",
        "BatchNorm1d",
        "ShiftAndScaleNoise",
        "ReLU",
        "Linear",
    ]
    assert noisy[1] is plain[1]  # the same layers, not copies
    assert [layer.num_features for layer in noisy if isinstance(layer, ShiftAndScaleNoise)] == [4, 3]
    with pytest.raises(ValueError, match="no BatchNorm1d"):
        with_noise_after_batch_norm(mlp(6, 4, 2), shift_std=0.5, log_scale_std=0.3)
