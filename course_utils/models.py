"""Multi-layer perceptrons with a named activation and a named weight initialization."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from course_utils.runtime import make_generator

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,  # negative slope 0.01, PyTorch's default
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}

INITS: tuple[str, ...] = (
    "default",  # PyTorch's own nn.Linear init: kaiming_uniform_(a=sqrt(5)) = U(±1/sqrt(fan_in))
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "normal",  # N(0, init_std**2)
    "keras",  # Keras Dense's defaults: glorot_uniform weights (= xavier_uniform, gain 1), zero biases
)

# The gain each activation asks of Kaiming init (torch.nn.init.calculate_gain's names).
_KAIMING_NONLINEARITY = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "gelu": "relu",  # GELU has no gain of its own in PyTorch; ReLU's is the usual stand-in
    "identity": "linear",
}


def _check_choice(kind: str, value: str, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ValueError(f"Unknown {kind} {value!r}; valid names are: {', '.join(valid)}.")


def init_linear(layer: nn.Linear, init: str, activation: str, init_std: float | None = None) -> None:
    """Re-initialize one linear layer in place; every init but "default" zeroes the bias."""
    _check_choice("init", init, INITS)
    _check_choice("activation", activation, tuple(ACTIVATIONS))
    if init == "default":
        layer.reset_parameters()
        return
    weight = layer.weight
    if init == "normal":
        if init_std is None or not init_std > 0 or not math.isfinite(init_std):
            raise ValueError('init="normal" needs a positive init_std, e.g. init_std=0.01.')
        nn.init.normal_(weight, mean=0.0, std=init_std)
    elif init in ("xavier_uniform", "keras"):
        nn.init.xavier_uniform_(weight)
    elif init == "xavier_normal":
        nn.init.xavier_normal_(weight)
    else:
        fill = nn.init.kaiming_uniform_ if init == "kaiming_uniform" else nn.init.kaiming_normal_
        nonlinearity = _KAIMING_NONLINEARITY[activation]
        slope = 0.01 if nonlinearity == "leaky_relu" else 0.0
        fill(weight, a=slope, nonlinearity=nonlinearity)  # type: ignore[arg-type]  # a name from the table above
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def mlp(
    in_features: int,
    hidden: int | Sequence[int],
    out_features: int,
    activation: str = "relu",
    init: str = "default",
    batch_norm: bool = False,
    *,
    init_std: float | None = None,
    input_batch_norm: bool = False,
    bias: bool = True,
) -> nn.Sequential:
    """Flatten → (BatchNorm1d) → [Linear → (BatchNorm1d) → activation] per hidden width → Linear.

    `batch_norm` puts a BatchNorm1d after every hidden Linear; `input_batch_norm` puts one on the
    inputs themselves, in front of the first Linear, where it learns the input normalization.

    `hidden` is one width or a list of widths (one per hidden layer; [] gives a linear model).
    The leading Flatten lets the model take images [N, 28, 28] or flat vectors [N, 784] alike.
    The last layer gets the same init as the others, with the activation's gain.
    `bias=False` leaves out every Linear's bias: then the network is a product of weight matrices
    and activations, so its signal scales exactly with the input for ReLU and identity. Its weights
    are those `bias=True` draws for the same seed (the biases are drawn, then dropped), so the two
    networks differ by their biases only.
    """
    _check_choice("activation", activation, tuple(ACTIVATIONS))
    _check_choice("init", init, INITS)
    widths = [hidden] if isinstance(hidden, int) else list(hidden)
    for name, value in [("in_features", in_features), ("out_features", out_features)] + [
        ("hidden width", w) for w in widths
    ]:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}.")

    layers: list[nn.Module] = [nn.Flatten()]
    if input_batch_norm:
        layers.append(nn.BatchNorm1d(in_features))
    previous = in_features
    for width in widths:
        linear = nn.Linear(previous, width)
        init_linear(linear, init, activation, init_std)
        if not bias:
            linear.register_parameter("bias", None)  # drawn above and dropped: the weights bias=True draws
        layers.append(linear)
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[activation]())
        previous = width
    head = nn.Linear(previous, out_features)
    init_linear(head, init, activation, init_std)
    if not bias:
        head.register_parameter("bias", None)
    layers.append(head)
    return nn.Sequential(*layers)


def small_cnn(
    in_channels: int = 1,
    classes: int = 10,
    *,
    channels: Sequence[int] = (8, 16),
    image_size: int = 28,
    activation: str = "relu",
) -> nn.Sequential:
    """[Conv2d 3×3 (padding 1) → activation → MaxPool2d 2] per entry of `channels` → Flatten → Linear.

    A small convolutional network for images [N, in_channels, image_size, image_size], with
    PyTorch's default init: notebook 06 diagnoses it as it diagnoses an MLP. Each pooling halves
    the image side (rounding down), so `image_size` must survive len(channels) halvings.
    """
    _check_choice("activation", activation, tuple(ACTIVATIONS))
    widths = list(channels)
    for name, value in [("in_channels", in_channels), ("classes", classes), ("image_size", image_size)] + [
        ("channel count", c) for c in widths
    ]:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}.")
    if not widths:
        raise ValueError("channels is empty: give one channel count per convolution, e.g. (8, 16).")
    side = image_size >> len(widths)
    if side < 1:
        raise ValueError(
            f"{len(widths)} poolings leave nothing of a {image_size}×{image_size} image: use fewer convolutions."
        )
    layers: list[nn.Module] = []
    previous = in_channels
    for width in widths:
        layers += [nn.Conv2d(previous, width, 3, padding=1), ACTIVATIONS[activation](), nn.MaxPool2d(2)]
        previous = width
    layers += [nn.Flatten(), nn.Linear(previous * side * side, classes)]
    return nn.Sequential(*layers)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def scale_weights_(model: nn.Module, gain: float) -> nn.Module:
    """Multiply every nn.Linear weight of `model` by `gain`, in place (biases untouched); return the model.

    A weight init times `gain` has `gain` times its std: `scale_weights_(mlp(..., init="kaiming_normal"), 4)`
    gives the Kaiming init for an activation whose slope at 0 is 1/4 (sigmoid) rather than 1.
    """
    if not math.isfinite(gain):
        raise ValueError(f"gain must be a finite number, not {gain}.")
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(gain)
    return model


__all__ = ["ACTIVATIONS", "INITS", "count_parameters", "init_linear", "lsuv_", "mlp", "scale_weights_"]


def lsuv_(
    model: nn.Module,
    x: Tensor,
    *,
    target_std: float = 1.0,
    tolerance: float = 0.02,
    max_rounds: int = 10,
    orthogonal: bool = True,
    seed: int = 0,
) -> list[float]:
    """Layer-sequential unit-variance init (Mishkin & Matas, 2016), in place; returns the stds.

    For every nn.Linear in forward order: optionally draw an orthogonal weight matrix, zero the
    bias, then divide the weight by the std its output has on the batch `x`, until that std is
    within `tolerance` of `target_std` (at most `max_rounds` passes). The data, not a formula,
    sets each layer's scale, so it adapts to whatever inputs and activations the model has.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point() or len(x) < 2:
        raise TypeError("lsuv_ needs a float batch of at least 2 examples, preprocessed like the training data.")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("lsuv_ found no nn.Linear layer to initialize.")
    if not target_std > 0:
        raise ValueError(f"target_std must be positive, not {target_std}.")
    generator = make_generator(seed)
    device = next(model.parameters()).device
    x = x.to(device)
    captured: dict[str, Tensor] = {}
    stds: list[float] = []
    with torch.no_grad():
        for layer in linears:
            if orthogonal:
                weight = torch.empty_like(layer.weight, device="cpu")
                nn.init.orthogonal_(weight, generator=generator)
                layer.weight.copy_(weight)
            if layer.bias is not None:
                layer.bias.zero_()
            handle = layer.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out))
            try:
                for _ in range(max_rounds):
                    model(x)
                    std = captured["out"].std().item()
                    if not math.isfinite(std) or std == 0:
                        raise ValueError(
                            f"A layer's output std on the batch is {std}: the signal died or overflowed "
                            "before reaching it. Check the batch's preprocessing."
                        )
                    if abs(std - target_std) <= tolerance * target_std:
                        break
                    layer.weight.mul_(target_std / std)
                model(x)
                stds.append(captured["out"].std().item())
            finally:
                handle.remove()
    return stds
