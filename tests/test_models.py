"""course_utils.models: structure, every activation and init by its statistics, clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_utils.models import ACTIVATIONS, INITS, count_parameters, init_linear, mlp, scale_weights_, small_cnn


def linears(model: nn.Sequential) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]


def test_tensorflow_tutorial_model_shape() -> None:
    model = mlp(784, 128, 10)
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]
    assert count_parameters(model) == 784 * 128 + 128 + 128 * 10 + 10
    assert mlp(784, 128, 10)(torch.zeros(3, 28, 28)).shape == (3, 10)  # images or flat vectors
    assert mlp(784, 128, 10)(torch.zeros(3, 784)).shape == (3, 10)


def test_depth_widths_and_batch_norm() -> None:
    model = mlp(20, [16, 8, 4], 3, activation="tanh", batch_norm=True)
    kinds = [type(m) for m in model]
    assert kinds.count(nn.BatchNorm1d) == 3 and kinds.count(nn.Tanh) == 3
    assert kinds[1:4] == [nn.Linear, nn.BatchNorm1d, nn.Tanh]
    assert [layer.out_features for layer in linears(model)] == [16, 8, 4, 3]
    assert [type(m) for m in mlp(5, [], 2)] == [nn.Flatten, nn.Linear]  # a linear model


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_activation_builds_and_runs(name: str) -> None:
    model = mlp(4, 6, 2, activation=name)
    assert isinstance(model[2], type(ACTIVATIONS[name]()))
    assert torch.isfinite(model(torch.randn(5, 4))).all()


FAN_IN, FAN_OUT = 400, 300


def weight_std(init: str, activation: str = "relu", init_std: float | None = None) -> float:
    torch.manual_seed(0)
    layer = nn.Linear(FAN_IN, FAN_OUT)
    init_linear(layer, init, activation, init_std)
    return layer.weight.std().item()


@pytest.mark.parametrize(
    ("init", "activation", "expected_std"),
    [
        # PyTorch's default: U(±1/sqrt(fan_in)), variance 1/(3 fan_in) -- not Kaiming for ReLU.
        ("default", "relu", math.sqrt(1 / (3 * FAN_IN))),
        ("xavier_uniform", "tanh", math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("xavier_normal", "tanh", math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("kaiming_uniform", "relu", math.sqrt(2 / FAN_IN)),
        ("kaiming_normal", "relu", math.sqrt(2 / FAN_IN)),
        ("kaiming_normal", "tanh", 5 / 3 / math.sqrt(FAN_IN)),
        ("kaiming_normal", "identity", 1 / math.sqrt(FAN_IN)),
    ],
)
def test_each_init_has_its_textbook_variance(init: str, activation: str, expected_std: float) -> None:
    assert weight_std(init, activation) == pytest.approx(expected_std, rel=0.02)


def test_keras_init_is_glorot_uniform_with_zero_biases() -> None:
    model = mlp(FAN_IN, [FAN_OUT], 10, init="keras")
    for layer in (model[1], model[3]):
        fan_out, fan_in = layer.weight.shape
        limit = math.sqrt(6 / (fan_in + fan_out))  # Keras's glorot_uniform: U(±sqrt(6 / (fan_in + fan_out)))
        assert layer.weight.abs().max().item() <= limit
        assert layer.weight.abs().max().item() > 0.95 * limit
        assert layer.weight.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.05)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_normal_init_uses_the_given_std_and_zero_bias() -> None:
    assert weight_std("normal", init_std=0.01) == pytest.approx(0.01, rel=0.02)
    model = mlp(10, 10, 2, init="xavier_normal")
    assert all(layer.bias.abs().max() == 0 for layer in linears(model))
    default = mlp(10, 10, 2)
    assert all(layer.bias.abs().max() > 0 for layer in linears(default))


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="relu, leaky_relu, tanh, sigmoid, gelu, identity"):
        mlp(4, 4, 2, activation="swish")
    with pytest.raises(ValueError, match=", ".join(INITS)):
        mlp(4, 4, 2, init="he")


@pytest.mark.parametrize("bad_std", [None, 0.0, -1.0, float("inf")])
def test_normal_init_needs_a_positive_std(bad_std: float | None) -> None:
    with pytest.raises(ValueError, match="init_std"):
        mlp(4, 4, 2, init="normal", init_std=bad_std)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_sizes_must_be_positive_integers(bad: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        mlp(4, [8, bad], 2)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="in_features"):
        mlp(bad, 8, 2)  # type: ignore[arg-type]


def test_lsuv_gives_every_linear_layer_unit_output_std_on_the_batch() -> None:
    from course_utils.diagnostics import layer_stats
    from course_utils.models import lsuv_

    torch.manual_seed(0)
    x = torch.rand(256, 784) * 255  # raw-pixel-sized inputs: LSUV does not care
    for model in (
        mlp(784, [64] * 6, 10, activation="tanh"),
        nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3)),
    ):
        stds = lsuv_(model, x)
        assert all(abs(s - 1) <= 0.02 for s in stds)
        measured = [s.std for s in layer_stats(model, x) if s.kind == "linear"]
        assert measured == pytest.approx(stds, rel=1e-3)
        assert all(float(m.bias.detach().abs().max()) == 0 for m in model.modules() if isinstance(m, nn.Linear))


def test_lsuv_rejects_what_it_cannot_use() -> None:
    from course_utils.models import lsuv_

    with pytest.raises(TypeError, match="float batch"):
        lsuv_(mlp(4, 3, 2), torch.zeros(8, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="no nn.Linear"):
        lsuv_(nn.Sequential(nn.ReLU()), torch.zeros(8, 4))
    with pytest.raises(ValueError, match="died or overflowed"):
        lsuv_(mlp(4, 3, 2), torch.zeros(8, 4))


def test_input_batch_norm_sits_in_front_of_the_first_linear_layer() -> None:
    model = mlp(784, [32, 16], 10, input_batch_norm=True, batch_norm=True)
    kinds = [type(m).__name__ for m in model]
    assert kinds == [
        "Flatten",
        "BatchNorm1d",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Linear",
    ]
    assert model[1].num_features == 784
    out = model(torch.rand(8, 28, 28) * 255)
    assert out.shape == (8, 10)


def test_bias_false_leaves_out_every_bias_and_makes_relu_nets_scale_exactly() -> None:
    torch.manual_seed(0)
    model = mlp(6, [8, 8], 3, bias=False)
    assert all(layer.bias is None for layer in linears(model))
    x = torch.randn(4, 6)
    assert torch.allclose(model(7 * x), 7 * model(x), atol=1e-5)
    assert all(layer.bias is not None for layer in linears(mlp(6, [8], 3)))


@pytest.mark.parametrize("init", INITS)
def test_bias_false_draws_the_same_weights_as_bias_true(init: str) -> None:
    """Same seed, same weights: a network with and one without biases differ by the biases only."""
    options = {"init_std": 0.1} if init == "normal" else {}
    torch.manual_seed(5)
    with_bias = mlp(6, [8, 8], 3, activation="tanh", init=init, **options)  # type: ignore[arg-type]
    torch.manual_seed(5)
    without = mlp(6, [8, 8], 3, activation="tanh", init=init, bias=False, **options)  # type: ignore[arg-type]
    for a, b in zip(linears(with_bias), linears(without), strict=True):
        assert torch.equal(a.weight, b.weight) and b.bias is None
        assert "bias" not in dict(b.named_parameters())
    assert count_parameters(without) == count_parameters(with_bias) - (8 + 8 + 3)


def test_scale_weights_multiplies_every_linear_weight_and_leaves_the_rest() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(mlp(5, [4], 3), nn.Sequential(nn.Linear(3, 2)), nn.BatchNorm1d(2))  # nested too
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert scale_weights_(model, 4.0) is model
    for name, p in model.named_parameters():
        is_linear_weight = name.endswith("weight") and not name.startswith("2.")
        assert torch.equal(p, 4.0 * before[name] if is_linear_weight else before[name]), name
    x = torch.randn(7, 5)
    torch.manual_seed(1)
    bias_free = mlp(5, [6, 6], 2, bias=False)
    with torch.no_grad():
        expected = bias_free(x) * 0.5**3  # three weight layers, ReLU homogeneous: the output scales by gain³
        assert torch.allclose(scale_weights_(bias_free, 0.5)(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="finite"):
        scale_weights_(model, math.nan)


def test_small_cnn_takes_images_and_gives_one_logit_per_class() -> None:
    torch.manual_seed(0)
    model = small_cnn(3, 5, channels=(4, 6, 8), image_size=32)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 6, 8]
    assert model[-1].in_features == 8 * 4 * 4  # 32 halved three times
    assert isinstance(small_cnn(activation="tanh")[1], nn.Tanh)


@pytest.mark.parametrize(
    "arguments, advice",
    [
        ({"channels": ()}, "channels is empty"),
        ({"channels": (8, 0)}, "positive integer"),
        ({"image_size": 4, "channels": (2, 2, 2)}, "use fewer convolutions"),
        ({"activation": "swish"}, "valid names"),
    ],
)
def test_small_cnn_refuses_what_cannot_be_built(arguments: dict[str, object], advice: str) -> None:
    with pytest.raises(ValueError, match=advice):
        small_cnn(**arguments)  # type: ignore[arg-type]
