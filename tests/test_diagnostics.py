"""layer_stats against hand computations, on models not built by course_utils."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_utils.data import fit_preprocessing
from course_utils.diagnostics import activation_derivative, flat_intervals, layer_stats, stats_table
from course_utils.models import mlp


def hand_built() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 6, generator=g) * torch.tensor([1.0, 3.0, 0.1, 10.0, 1.0, 2.0])
    return x, torch.randint(0, 3, (200,), generator=g)


def test_statistics_match_a_hand_computation(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    model = hand_built()
    stats = layer_stats(model, x, y)
    assert [(s.name, s.kind, s.module, s.units) for s in stats] == [
        ("0", "linear", "Linear", 16), ("1", "activation", "Tanh", 16), ("2", "linear", "Linear", 16),
        ("3", "activation", "ReLU", 16), ("4", "linear", "Linear", 3),
    ]
    with torch.no_grad():
        z1 = model[0](x)
        h1 = torch.tanh(z1)
        z2 = model[2](h1)
        h2 = torch.relu(z2)
    assert stats[0].mean == pytest.approx(float(z1.mean()), abs=1e-6)
    assert stats[0].std == pytest.approx(float(z1.std(correction=0)), rel=1e-5)
    assert stats[1].std == pytest.approx(float(h1.std(correction=0)), rel=1e-5)
    per_unit_variance = h1.var(dim=0, correction=0)
    assert stats[1].example_std == pytest.approx(float(per_unit_variance.mean().sqrt()), rel=1e-5)
    tanh_slope = 1 - h1**2
    assert stats[1].fraction_saturated == pytest.approx(float((tanh_slope < 0.01).double().mean()))
    assert stats[1].mean_derivative == pytest.approx(float(tanh_slope.mean()), rel=1e-5)
    assert stats[3].fraction_dead == pytest.approx(float((h2 <= 0).all(dim=0).double().mean()))
    assert stats[3].fraction_saturated == pytest.approx(float((z2 <= 0).double().mean()))
    assert stats[1].grad_norm is None and stats[1].fraction_dead is not None
    assert stats[0].fraction_saturated is None

    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    for stat, layer in zip(stats[0::2], model[0::2]):
        assert stat.grad_norm == pytest.approx(float(layer.weight.grad.norm()), rel=1e-4)


def test_a_dead_relu_unit_is_found(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = data
    model = hand_built()
    with torch.no_grad():
        model[2].bias[:5] = -1e3  # five units that can never fire
        model[2].bias[5:] = 1e3  # and eleven that always do
    relu = layer_stats(model, x)[3]
    assert relu.fraction_dead == pytest.approx(5 / 16)
    assert relu.fraction_saturated == pytest.approx(5 / 16)


def test_chunks_preprocessing_and_mse_give_the_same_numbers() -> None:
    g = torch.Generator().manual_seed(3)
    pixels = torch.randint(0, 256, (300, 4, 4), dtype=torch.uint8, generator=g)
    target = torch.randn(300, 2, generator=g)
    model = mlp(16, [8, 8], 2, activation="sigmoid")
    scale = fit_preprocessing("divide_255", pixels)
    whole = layer_stats(model, scale(pixels), target)
    chunked = layer_stats(model, pixels, target, preprocess=scale, batch_size=7)
    for a, b in zip(whole, chunked):
        for field in ("mean", "std", "example_std", "fraction_saturated", "fraction_dead", "mean_derivative", "grad_norm"):
            va, vb = getattr(a, field), getattr(b, field)
            assert (va is None and vb is None) or va == pytest.approx(vb, rel=1e-4, abs=1e-9), field
    model.zero_grad()
    nn.functional.mse_loss(model(scale(pixels)), target).backward()
    assert whole[0].grad_norm == pytest.approx(float(model[1].weight.grad.norm()), rel=1e-4)


def test_nested_reused_and_inplace_modules() -> None:
    torch.manual_seed(0)
    shared = nn.ReLU(inplace=True)
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 5), shared), nn.Linear(5, 5), shared, nn.Linear(5, 1))
    x = torch.randn(50, 4)
    stats = layer_stats(model, x)
    assert [s.name for s in stats] == ["0.0", "0.1", "1", "0.1#2", "3"]
    reference = layer_stats(
        nn.Sequential(model[0][0], nn.ReLU(), model[1], nn.ReLU(), model[3]), x
    )
    for a, b in zip(stats, reference):
        assert (a.mean, a.fraction_saturated, a.fraction_dead) == pytest.approx(
            (b.mean, b.fraction_saturated, b.fraction_dead)
        )


def test_leaves_the_model_and_its_gradients_as_they_were(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Sigmoid(), nn.Linear(8, 3))
    model.train()
    nn.functional.cross_entropy(model(x[:10]), y[:10]).backward()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    stats = layer_stats(model, x, y, batch_size=64)
    assert [s.kind for s in stats] == ["linear", "norm", "activation", "linear"]
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    for p, g in zip(model.parameters(), grads):
        assert torch.equal(p.grad, g)


def test_bad_input_says_what_to_do() -> None:
    model = hand_built()
    with pytest.raises(TypeError, match="preprocess="):
        layer_stats(model, torch.zeros(3, 6, dtype=torch.uint8))
    with pytest.raises(ValueError, match="one target per example"):
        layer_stats(model, torch.zeros(3, 6), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="nn.ReLU"):
        layer_stats(nn.Sequential(nn.Flatten()), torch.zeros(3, 6))
    with pytest.raises(TypeError, match="nn.Module"):
        layer_stats(lambda t: t, torch.zeros(3, 6))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int64 class labels or float"):
        layer_stats(model, torch.zeros(3, 6), torch.zeros(3, dtype=torch.int32))


def test_flat_intervals_match_closed_forms() -> None:
    # sigmoid'(z) = s(1 - s) = 0.01 and tanh'(z) = 1 - t^2 = 0.01, solved for z.
    s = (1 + math.sqrt(1 - 4 * 0.01)) / 2
    sigmoid_edge = math.log(s / (1 - s))
    tanh_edge = math.atanh(math.sqrt(0.99))
    (left, right) = flat_intervals(nn.Sigmoid())
    assert left[1] == pytest.approx(-sigmoid_edge, abs=2e-4) and right[0] == pytest.approx(sigmoid_edge, abs=2e-4)
    (left, right) = flat_intervals(nn.Tanh())
    assert left[1] == pytest.approx(-tanh_edge, abs=2e-4) and right[0] == pytest.approx(tanh_edge, abs=2e-4)
    assert flat_intervals(nn.LeakyReLU()) == []  # slope 0.01 is not below 0.01
    ((start, end),) = flat_intervals(nn.ReLU(), z_min=-1, z_max=1)
    assert start == -1 and end == pytest.approx(0, abs=2e-4)
    assert activation_derivative(nn.Sigmoid(), torch.zeros(3)).tolist() == [0.25] * 3


def test_stats_table_lists_every_layer(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    table = stats_table(layer_stats(hand_built(), *data))
    lines = table.splitlines()
    assert len(lines) == 6 and "grad norm" in lines[0] and "Tanh" in lines[2]
