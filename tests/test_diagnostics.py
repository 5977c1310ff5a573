"""layer_stats against hand computations, on models not built by course_utils."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_utils.diagnostics import (
    DEAD_SHARE,
    EXPLODING_STD,
    SATURATED_SHARE,
    VANISHING_GRADIENT_RATIO,
    VANISHING_SIGNAL_RATIO,
    LayerStats,
    activation_derivative,
    dead_share_from_bias_steps,
    dead_unit_mask,
    dead_unit_share,
    describe_intervals,
    first_hidden,
    flat_intervals,
    hidden_layer_stats,
    hidden_std_ratio,
    layer_stats,
    layer_stats_by_seed,
    layer_values,
    pre_activations,
    signal_verdict,
    stat_by_layer,
    stats_table,
    verdict_tally,
)
from course_utils.models import mlp
from course_utils.preprocessing import fit_preprocessing


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
        ("0", "linear", "Linear", 16),
        ("1", "activation", "Tanh", 16),
        ("2", "linear", "Linear", 16),
        ("3", "activation", "ReLU", 16),
        ("4", "linear", "Linear", 3),
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
    for stat, layer in zip(stats[0::2], model[0::2], strict=True):
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
    for a, b in zip(whole, chunked, strict=True):
        for field in (
            "mean",
            "std",
            "example_std",
            "fraction_saturated",
            "fraction_dead",
            "mean_derivative",
            "grad_norm",
        ):
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
    reference = layer_stats(nn.Sequential(model[0][0], nn.ReLU(), model[1], nn.ReLU(), model[3]), x)
    for a, b in zip(stats, reference, strict=True):
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
    for p, g in zip(model.parameters(), grads, strict=True):
        assert torch.equal(p.grad, g)


def test_frozen_weights_and_norms_without_a_weight_get_no_gradient_norm(
    data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8, affine=False), nn.ReLU(), nn.Linear(8, 3))
    model[0].requires_grad_(False)
    stats = layer_stats(model, x, y)
    assert [(s.kind, s.grad_norm is None) for s in stats] == [
        ("linear", True),
        ("norm", True),
        ("activation", True),
        ("linear", False),
    ]
    expected = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), model[3].weight)[0]
    assert math.isclose(stats[-1].grad_norm or 0.0, float(expected.norm()), rel_tol=1e-5)
    model.requires_grad_(False)  # nothing left to differentiate: no gradient norms, no error
    assert all(s.grad_norm is None for s in layer_stats(model, x, y))


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


def constructed_mlp_stats(
    example_stds: list[float],
    grad_norms: list[float | None],
    *,
    module: str = "Tanh",
    saturated: float = 0.0,
    dead: float = 0.0,
) -> list[LayerStats]:
    """layer_stats as an MLP would give them: a hidden Linear and its activation per entry, then an
    output layer whose outlandish numbers no verdict may look at."""
    stats = []
    for i, (signal, grad) in enumerate(zip(example_stds, grad_norms, strict=True)):
        stats += [
            LayerStats(f"{2 * i}", "linear", "Linear", 8, 0.0, signal, signal, grad_norm=grad),
            LayerStats(
                f"{2 * i + 1}",
                "activation",
                module,
                8,
                0.0,
                1.0,
                1.0,
                fraction_saturated=saturated,
                fraction_dead=dead,
                mean_derivative=0.5,
            ),
        ]
    return [*stats, LayerStats("out", "linear", "Linear", 3, 0.0, 1e9, 1e9, grad_norm=math.nan)]


def test_hidden_layer_stats_leave_out_the_output_layer(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    stats = layer_stats(mlp(6, [8, 8], 3), *data)  # Flatten, Linear, ReLU, Linear, ReLU, Linear
    assert [s.name for s in hidden_layer_stats(stats)] == ["1", "3"]
    assert [s.name for s in hidden_layer_stats(stats, "activation")] == ["2", "4"]
    assert [s.name for s in hidden_layer_stats(layer_stats(mlp(6, [8], 3, batch_norm=True), *data), "norm")] == ["2"]


def test_hidden_std_ratio_is_the_input_scale_in_a_bias_free_relu_net() -> None:
    torch.manual_seed(0)
    model = mlp(6, [16] * 5, 3, init="kaiming_normal", bias=False)  # positively homogeneous
    x = torch.randn(300, 6)
    ratio = hidden_std_ratio(layer_stats(model, 3 * x), layer_stats(model, x))
    assert ratio.shape == (5,) and ratio == pytest.approx([3.0] * 5, rel=1e-5)
    by_hand = hidden_std_ratio(
        constructed_mlp_stats([2.0, 6.0], [1.0, 1.0]), constructed_mlp_stats([1.0, 4.0], [1.0, 1.0])
    )
    assert by_hand.tolist() == [2.0, 1.5]
    with pytest.raises(ValueError, match="like with like"):
        hidden_std_ratio(constructed_mlp_stats([1.0], [1.0]), constructed_mlp_stats([1.0, 1.0], [1.0, 1.0]))


def test_signal_verdict_on_constructed_cases() -> None:
    def verdict(signal: list[float], grads: list[float | None] | None = None, **activation: float | str) -> str:
        return signal_verdict(constructed_mlp_stats(signal, grads or [1.0] * len(signal), **activation))  # type: ignore[arg-type]

    assert verdict([1.0, 0.8, 1.2]) == "alive"  # the output layer's 1e9 and NaN are not looked at
    # explodes: a last hidden layer beyond EXPLODING_STD, or anything not finite
    assert verdict([1.0, 10.0, 1.01 * EXPLODING_STD]) == "explodes"
    assert verdict([1.0, 10.0, EXPLODING_STD]) == "alive"
    assert verdict([1.0, 1.0], [math.inf, 1.0]) == "explodes"
    assert verdict([1.0, math.nan]) == "explodes"
    assert verdict([1.0, 2e3], saturated=0.9) == "explodes"  # explodes is checked first
    # saturates: more than SATURATED_SHARE of the values flat, for a two-sided activation
    assert verdict([1.0, 1.0], saturated=SATURATED_SHARE + 0.01) == "saturates"
    assert verdict([1.0, 1.0], saturated=SATURATED_SHARE) == "alive"
    assert verdict([1.0, 1.0], saturated=0.9, dead=0.9) == "saturates"  # before dies
    assert verdict([1.0, 1.0], saturated=0.9, module="ReLU") == "alive"  # ReLU's off side is not saturation
    # dies: more than DEAD_SHARE of the units flat on every example
    assert verdict([1.0, 1.0], module="ReLU", saturated=0.9, dead=DEAD_SHARE + 0.01) == "dies"
    assert verdict([1.0, 1.0], module="ReLU", dead=DEAD_SHARE) == "alive"
    assert verdict([1.0, 1e-6], dead=0.5) == "dies"  # before vanishes
    # vanishes: the signal between examples, or the first layer's gradient, lost
    assert verdict([1.0, 0.1, 0.99 * VANISHING_SIGNAL_RATIO]) == "vanishes"
    assert verdict([1.0, 0.1, 1.01 * VANISHING_SIGNAL_RATIO]) == "alive"
    assert verdict([1.0, 1.0, 1.0], [0.99 * VANISHING_GRADIENT_RATIO, 0.5, 1.0]) == "vanishes"
    assert verdict([1.0, 1.0, 1.0], [1.01 * VANISHING_GRADIENT_RATIO, 0.5, 1.0]) == "alive"
    assert verdict([0.0, 0.0]) == "vanishes"  # no signal at all from the first layer on
    with pytest.raises(ValueError, match="gradient norms"):
        verdict([1.0, 1.0], [None, None])
    with pytest.raises(ValueError, match="at least one hidden layer"):
        signal_verdict(constructed_mlp_stats([], []))


def test_signal_verdict_on_real_deep_networks() -> None:
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(256, 32, generator=g), torch.randint(0, 4, (256,), generator=g)
    verdicts = {}
    for name, options in {
        "kaiming": {"init": "kaiming_normal"},
        "N(0, 1)": {"init": "normal", "init_std": 1.0},  # E[z²] × 32/2 per ReLU layer
        "N(0, 0.01²)": {"init": "normal", "init_std": 0.01},  # E[z²] × 0.0016 per layer
    }.items():
        torch.manual_seed(0)
        verdicts[name] = signal_verdict(layer_stats(mlp(32, [32] * 12, 4, **options), x, y))  # type: ignore[arg-type]
    assert verdicts == {"kaiming": "alive", "N(0, 1)": "explodes", "N(0, 0.01²)": "vanishes"}


def test_stats_table_lists_every_layer(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    table = stats_table(layer_stats(hand_built(), *data))
    lines = table.splitlines()
    assert len(lines) == 6 and "grad norm" in lines[0] and "Tanh" in lines[2]


def test_stat_by_layer_is_one_row_per_run_one_column_per_layer_with_the_field() -> None:

    def run(scale: float) -> list[LayerStats]:
        return [
            LayerStats("1", "linear", "Linear", 4, 0.0, 2.0 * scale, 1.0, grad_norm=10.0 * scale),
            LayerStats("2", "activation", "Tanh", 4, 0.0, 0.5, 0.4, 0.25 * scale, 0.0, 0.8),
            LayerStats("3", "linear", "Linear", 3, 0.0, 1.0, 0.9, grad_norm=1.0 * scale),
        ]

    runs = [run(1.0), run(2.0)]
    assert stat_by_layer(runs, "grad_norm").tolist() == [[10.0, 1.0], [20.0, 2.0]]
    assert stat_by_layer(runs, "fraction_saturated").tolist() == [[0.25], [0.5]]
    assert stat_by_layer(runs, "std").tolist() == [[2.0, 0.5, 1.0], [4.0, 0.5, 1.0]]
    with pytest.raises(ValueError, match="different numbers of layers"):
        stat_by_layer([run(1.0), run(1.0)[:2]], "grad_norm")
    with pytest.raises(ValueError, match="not a numeric"):
        stat_by_layer(runs, "name")  # type: ignore[arg-type]
    no_targets = [[LayerStats("1", "linear", "Linear", 4, 0.0, 1.0, 1.0)]]
    with pytest.raises(ValueError, match="needs targets"):
        stat_by_layer(no_targets, "grad_norm")


def test_stat_by_layer_on_layer_stats_matches_a_hand_computed_gradient(
    data: tuple[torch.Tensor, torch.Tensor],
) -> None:

    x, y = data
    model = hand_built()
    norms = stat_by_layer([layer_stats(model, x, y)], "grad_norm")
    nn.functional.cross_entropy(model(x), y).backward()
    by_hand = [float(model[i].weight.grad.norm()) for i in (0, 2, 4)]
    assert norms.shape == (1, 3)
    assert norms[0].tolist() == pytest.approx(by_hand, rel=1e-5)


def test_describe_intervals_reads_open_ends_from_the_searched_range() -> None:

    assert describe_intervals([(-20.0, -4.5851), (4.5851, 20.0)]) == "z < -4.5851 or z > 4.5851"
    assert describe_intervals([(-0.7654, -0.7321)]) == "-0.7654 < z < -0.7321"
    assert describe_intervals([]) == "nowhere"
    assert describe_intervals([(-20.0, 20.0)]) == "everywhere in [-20, 20]"
    assert describe_intervals(flat_intervals(nn.ReLU())) == "z < 0.0000"
    narrow = flat_intervals(nn.ReLU(), z_min=-3.0, z_max=3.0)
    assert describe_intervals(narrow, z_min=-3.0, z_max=3.0) == "z < 0.0000"
    assert describe_intervals(narrow) == "-3.0000 < z < 0.0000"  # against the default range: closed
    sigmoid = describe_intervals(flat_intervals(nn.Sigmoid()), decimals=2)
    edge = math.log((1 + math.sqrt(0.96)) / (1 - math.sqrt(0.96)))  # sigmoid' = s(1 - s) = 0.01
    assert sigmoid == f"z < {-edge:.2f} or z > {edge:.2f}"


def test_layer_values_are_the_hand_computed_activations_and_weight_gradients(
    data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = data
    model = hand_built()
    values = layer_values(model, x, y)
    # The same network written out as formulas, on leaf copies of its weights.
    w0, b0, w2, b2, w4, b4 = (p.detach().clone().requires_grad_(True) for p in model.parameters())
    h1 = torch.tanh(x @ w0.T + b0)
    h2 = torch.clamp(h1 @ w2.T + b2, min=0)
    loss = nn.functional.cross_entropy(h2 @ w4.T + b4, y)
    by_hand = torch.autograd.grad(loss, [w0, w2, w4])
    assert [v.shape for v in values.activations] == [(200, 16), (200, 16)]
    assert torch.allclose(values.activations[0], h1.detach(), atol=1e-6)
    assert torch.allclose(values.activations[1], h2.detach(), atol=1e-6)
    assert len(values.weight_gradients) == 3
    for got, want in zip(values.weight_gradients, by_hand, strict=True):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-7)
    assert all(p.grad is None for p in model.parameters())  # the model's own gradients untouched
    norms = [s.grad_norm for s in layer_stats(model, x, y) if s.kind == "linear"]
    assert [float(g.norm()) for g in values.weight_gradients] == pytest.approx(norms, rel=1e-4)


def test_layer_values_refuses_what_it_cannot_measure(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    with pytest.raises(TypeError, match="float"):
        layer_values(hand_built(), x.long(), y)
    with pytest.raises(ValueError, match="one target per example"):
        layer_values(hand_built(), x, y[:5])
    with pytest.raises(ValueError, match="activation modules"):
        layer_values(nn.Linear(6, 3), x, y)
    with pytest.raises(TypeError, match="int64 class labels or float"):
        layer_values(hand_built(), x, y.int())


def test_first_hidden_names_the_first_layer_of_each_kind(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = data
    stats = layer_stats(hand_built(), x)  # Linear, Tanh, Linear, ReLU, Linear
    assert (first_hidden(stats, "linear").name, first_hidden(stats).name) == ("0", "1")
    flattened = layer_stats(mlp(6, [8, 8], 3), x)  # Flatten (not watched), Linear, ReLU, ...
    assert (first_hidden(flattened, "linear").name, first_hidden(flattened).module) == ("1", "ReLU")
    with pytest.raises(ValueError, match="no hidden 'norm' layer"):
        first_hidden(stats, "norm")


def test_pre_activations_are_what_each_activation_receives(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = data
    model = hand_built()
    with torch.no_grad():
        z1 = x @ model[0].weight.T + model[0].bias
        z2 = torch.tanh(z1) @ model[2].weight.T + model[2].bias
    assert torch.allclose(pre_activations(model, x), z1, atol=1e-6)
    assert torch.allclose(pre_activations(model, x, layer=2), z2, atol=1e-6)
    # An in-place ReLU overwrites its input: the negative z must still be there.
    torch.manual_seed(0)
    inplace = nn.Sequential(nn.Linear(6, 5), nn.ReLU(inplace=True), nn.Linear(5, 2))
    z = pre_activations(inplace, x)
    assert (z < 0).any() and torch.allclose(z, inplace[0](x).detach(), atol=1e-6)
    with pytest.raises(ValueError, match="between 1 and 2"):
        pre_activations(model, x, layer=3)
    with pytest.raises(TypeError, match="float"):
        pre_activations(model, x.long())


def test_dead_unit_share_counts_units_off_on_every_example(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = data
    model = hand_built()
    with torch.no_grad():
        model[2].bias[:5] = -1e3  # the ReLU layer: five units that can never fire
    assert dead_unit_share(model, x, layer=2) == pytest.approx(5 / 16)
    assert dead_unit_share(model, x, layer=2) == layer_stats(model, x)[3].fraction_dead  # the ReLU's entry
    assert dead_unit_mask(model, x, layer=2).tolist() == [True] * 5 + [False] * 11
    assert dead_unit_share(model, x) == 0.0  # the tanh layer is nowhere flat on all examples


def test_dead_share_from_bias_steps_keeps_the_initial_weights(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, _ = data
    torch.manual_seed(1)
    initial = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    assert dead_unit_share(initial, x) == 0.0
    trained = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        trained[0].weight.zero_()  # with these weights z = b: every unit with b <= 0 would be dead
        trained[0].bias.copy_(initial[0].bias)
        trained[0].bias[[2, 5]] = -1e3  # two units that a bias step alone kills on every example
    dead_with_trained_weights = float((trained[0].bias <= 0).double().mean())
    assert dead_unit_share(trained, x) == pytest.approx(dead_with_trained_weights) and dead_with_trained_weights > 2 / 8
    before = initial[0].bias.clone()
    assert dead_share_from_bias_steps(initial, trained, x) == pytest.approx(2 / 8)
    assert torch.equal(initial[0].bias, before)  # the initial model is left as it was
    with pytest.raises(ValueError, match="architecture"):
        dead_share_from_bias_steps(initial, nn.Sequential(nn.Linear(6, 4), nn.ReLU()), x)
    with pytest.raises(ValueError, match="with a bias"):
        dead_share_from_bias_steps(nn.Sequential(nn.Linear(6, 8, bias=False), nn.ReLU()), trained, x)


def test_verdict_tally_counts_and_labels_the_majority() -> None:
    alive, vanishing = constructed_mlp_stats([1.0, 1.0], [1.0, 1.0]), constructed_mlp_stats([1.0, 1e-3], [1.0, 1.0])
    counts, label = verdict_tally([alive, vanishing, alive])
    assert counts == {"alive": 2, "vanishes": 1} and counts["explodes"] == 0 and label == "alive 2/3"
    assert verdict_tally([vanishing] * 5) == ({"vanishes": 5}, "vanishes")  # all agree: no count in the label
    with pytest.raises(ValueError, match="at least one network"):
        verdict_tally([])


def test_layer_stats_by_seed_builds_the_network_each_seed_gives() -> None:
    from course_utils.runtime import seed_everything

    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g)
    runs = layer_stats_by_seed(lambda: mlp(6, [8, 8], 3, activation="tanh"), [0, 1], x, y, preprocess=lambda v: 2 * v)
    for seed, stats in zip([0, 1], runs, strict=True):
        seed_everything(seed)
        assert stats == layer_stats(mlp(6, [8, 8], 3, activation="tanh"), 2 * x, y)
    assert runs[0][0].std != runs[1][0].std  # two seeds, two networks


def test_a_feature_map_unit_is_a_channel_alive_if_it_fires_anywhere() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU())
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.copy_(torch.tensor([-1e6, -0.5, 0.0, 1.0]))  # channel 0 never fires
    # Images that are zero except a small bright patch: every window on the border sees only zeros,
    # so channels 1 and 2 are flat there on every example, yet fire on the patch.
    x = torch.zeros(16, 1, 10, 10)
    x[:, :, 4:6, 4:6] = torch.rand(16, 1, 2, 2) + 1
    (stats,) = [s for s in layer_stats(model, x) if s.kind == "activation"]
    assert stats.units == 4, f"a feature map's units are its channels, got {stats.units}"
    assert stats.fraction_dead == 0.25, f"only channel 0 is dead, measured a dead share of {stats.fraction_dead}"
