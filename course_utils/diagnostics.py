"""Per-layer diagnostics built on forward hooks: what each layer's units are doing.

`layer_stats(model, x, y)` runs `x` through any model built from modules (an `nn.Sequential` of
your own, nested or not, or one from `course_utils.models`) and reports, for every activation
module, the mean and std of its output, the share of saturated values, the share of dead units and
the mean derivative; for every layer with a weight (Linear, Conv, normalization), the mean and std
of its output and, when `y` is given, the norm of the loss gradient with respect to that weight.

"Saturated" means the activation is flat there: |f'(z)| < `threshold` (0.01 by default) at the
pre-activation z. A unit is "dead" on `x` when it is flat for every example, so no gradient passes
through it at all: for ReLU, a unit that never fires.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

from course_utils.runtime import seed_everything

# Element-wise activations the hooks recognise (functional calls such as torch.relu inside a
# custom forward are invisible to hooks: use the module form).
ELEMENTWISE_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Softsign,
    nn.Tanhshrink,
    nn.LogSigmoid,
)
_NORMS: tuple[type[nn.Module], ...] = (_NormBase, nn.LayerNorm, nn.GroupNorm)

SATURATION_THRESHOLD = 0.01

LayerKind = Literal["activation", "linear", "norm"]


def activation_derivative(activation: nn.Module, z: Tensor) -> Tensor:
    """f'(z) element-wise, by autograd, for an element-wise activation module f."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        # .forward, not __call__: inside a hook, calling the module would run the hook again.
        # An in-place activation may not overwrite a leaf that requires grad: give it a copy.
        given = z.clone() if getattr(activation, "inplace", False) else z
        (derivative,) = torch.autograd.grad(activation.forward(given).sum(), z)
    return derivative


def flat_intervals(
    activation: nn.Module,
    *,
    threshold: float = SATURATION_THRESHOLD,
    z_min: float = -20.0,
    z_max: float = 20.0,
    step: float = 1e-4,
) -> list[tuple[float, float]]:
    """The intervals of [z_min, z_max] where |f'(z)| < threshold, measured on a grid of `step`.

    An interval that reaches the edge of the range is open on that side: report it as
    "z < end" or "z > start".
    """
    if not z_min < z_max or step <= 0:
        raise ValueError(f"Need z_min < z_max and step > 0, got {z_min}, {z_max}, {step}.")
    # Integer multiples of `step`, so that z = 0 (where ReLU's slope switches) is on the grid.
    z = torch.arange(math.ceil(z_min / step), math.floor(z_max / step) + 1, dtype=torch.float64) * step
    flat = activation_derivative(activation, z).abs() < threshold
    # Edges of runs of True: where `flat` switches on (+1) and off (-1).
    padded = torch.cat([torch.tensor([False]), flat, torch.tensor([False])]).to(torch.int8)
    changes = torch.diff(padded)
    starts = torch.nonzero(changes == 1).flatten()
    ends = torch.nonzero(changes == -1).flatten() - 1
    return [(round(float(z[s]), 9), round(float(z[e]), 9)) for s, e in zip(starts, ends, strict=True)]


@dataclass(frozen=True)
class LayerStats:
    """One layer's statistics over all examples of `x` (None where a number does not apply)."""

    name: str  # the module's name in model.named_modules(); "#2" marks a module's second call
    kind: LayerKind
    module: str  # the module's class name, e.g. "Tanh"
    units: int  # output values per example; channels for feature maps [N, C, H, W]
    mean: float  # of the output, over examples and units
    std: float
    example_std: float  # how much the output varies *between examples*: √(mean over units of Var)
    fraction_saturated: float | None = None  # activations: share of values with |f'(z)| < threshold
    fraction_dead: float | None = None  # activations: share of units (channels of feature maps) flat on every example
    mean_derivative: float | None = None  # activations: mean f'(z)
    grad_norm: float | None = None  # layers with a trainable weight, when y is given: ‖∂loss/∂weight‖


class _Accumulator:
    """Running sums for one layer call, chunk after chunk, in float64."""

    def __init__(self, name: str, kind: LayerKind, module: nn.Module) -> None:
        self.name, self.kind, self.module = name, kind, module
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.saturated = 0
        self.derivative_total = 0.0
        self.ever_live: Tensor | None = None
        self.unit_total: Tensor | None = None
        self.unit_total_sq: Tensor | None = None
        self.examples = 0
        self.grad: Tensor | None = None

    def add_output(self, output: Tensor) -> None:
        values = output.detach().flatten(1).double()
        self.count += values.numel()
        self.total += float(values.sum())
        self.total_sq += float((values * values).sum())
        if self.ever_live is None:
            units = output.shape[1] if output.dim() >= 4 else values.shape[1]
            self.ever_live = torch.zeros(units, dtype=torch.bool, device=values.device)
            self.unit_total = torch.zeros(values.shape[1], dtype=torch.float64, device=values.device)
            self.unit_total_sq = torch.zeros_like(self.unit_total)
        assert self.unit_total is not None and self.unit_total_sq is not None
        self.unit_total += values.sum(dim=0)
        self.unit_total_sq += (values * values).sum(dim=0)
        self.examples += len(values)

    def add_derivative(self, derivative: Tensor, threshold: float) -> None:
        flat = derivative.flatten(1).abs() < threshold
        self.saturated += int(flat.sum())
        self.derivative_total += float(derivative.double().sum())
        assert self.ever_live is not None
        if derivative.dim() >= 4:
            # Feature maps [N, C, H, W]: a unit is a channel, one filter seen at every position (as batch
            # norm counts them). Positions whose window holds only padding or always-constant pixels are
            # flat whatever the filter; they do not make a filter dead.
            flat = flat.reshape(len(derivative), derivative.shape[1], -1).all(dim=2)
        self.ever_live |= ~flat.all(dim=0)

    def result(self) -> LayerStats:
        mean = self.total / self.count
        variance = max(self.total_sq / self.count - mean * mean, 0.0)
        assert self.ever_live is not None and self.unit_total is not None and self.unit_total_sq is not None
        unit_mean = self.unit_total / self.examples
        unit_variance = (self.unit_total_sq / self.examples - unit_mean * unit_mean).clamp(min=0)
        stats = LayerStats(
            name=self.name,
            kind=self.kind,
            module=type(self.module).__name__,
            units=int(self.ever_live.numel()),
            mean=mean,
            std=math.sqrt(variance),
            example_std=math.sqrt(float(unit_variance.mean())),
        )
        if self.kind == "activation":
            stats = LayerStats(
                **{
                    **stats.__dict__,
                    "fraction_saturated": self.saturated / self.count,
                    "fraction_dead": float((~self.ever_live).double().mean()),
                    "mean_derivative": self.derivative_total / self.count,
                },
            )
        if self.grad is not None:
            stats = LayerStats(**{**stats.__dict__, "grad_norm": float(self.grad.norm())})
        return stats


def _kind(module: nn.Module) -> LayerKind | None:
    if isinstance(module, ELEMENTWISE_ACTIVATIONS):
        return "activation"
    if isinstance(module, _NORMS):
        return "norm"
    if isinstance(getattr(module, "weight", None), nn.Parameter) and not list(module.children()):
        return "linear"
    return None


def layer_stats(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None = None,
    *,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    threshold: float = SATURATION_THRESHOLD,
    batch_size: int = 8192,
) -> list[LayerStats]:
    """Statistics of every activation and weighted layer of `model` over all examples of `x`.

    `x` is fed in chunks of `batch_size`, each passed through `preprocess` first when given (so a
    whole uint8 training set can be measured without a float copy of it). With `y` (int64 class
    labels: cross-entropy; floats: mean squared error) the full-batch gradient norm of each
    trainable weight is reported too (frozen ones get None); existing `.grad`s are left untouched.
    The model runs in its current mode (call `model.eval()` for inference behaviour); its buffers,
    such as batch-norm running statistics, are restored afterwards.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"layer_stats needs a torch.nn.Module, got {type(model).__name__}.")
    if not isinstance(x, Tensor) or len(x) == 0:
        raise TypeError("x must be a non-empty torch tensor of examples (first dimension = examples).")
    if preprocess is None and not x.is_floating_point():
        raise TypeError(
            f"x has dtype {x.dtype}; the model needs floats. Pass preprocess=..., e.g. "
            "fit_preprocessing('divide_255', x_train), or convert x with x.float()."
        )
    if y is not None:
        if not isinstance(y, Tensor) or len(y) != len(x):
            raise ValueError(f"y must be a tensor with one target per example of x ({len(x)}).")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}.")

    watched = {m: (n, k) for n, m in model.named_modules() if (k := _kind(m)) is not None}
    if not watched:
        raise ValueError(
            "layer_stats found no layer to watch: it records nn.Linear/nn.Conv and other leaf "
            "modules with a weight, normalization layers, and element-wise activation modules "
            "(course_utils.diagnostics.ELEMENTWISE_ACTIVATIONS). Activations called as functions "
            "(torch.relu(...) inside forward) are invisible to hooks: use nn.ReLU() modules."
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    accumulators: list[_Accumulator] = []
    call_index = 0  # position of the current hook call within one forward pass
    pending_outputs: list[tuple[_Accumulator, Tensor]] = []

    def keep_input(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        # An in-place activation overwrites its input; keep the pre-activation for f'(z).
        saved_inputs[module] = inputs[0].detach().clone()

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal call_index
        name, kind = watched[module]
        if first_chunk:
            calls = sum(a.module is module for a in accumulators)
            accumulators.append(_Accumulator(name if calls == 0 else f"{name}#{calls + 1}", kind, module))
        accumulator = accumulators[call_index]
        call_index += 1
        accumulator.add_output(output)
        if kind == "activation":
            pre_activation = saved_inputs.pop(module, inputs[0])
            accumulator.add_derivative(activation_derivative(module, pre_activation), threshold)
        if y is not None:
            pending_outputs.append((accumulator, output))

    saved_buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    saved_inputs: dict[nn.Module, Tensor] = {}
    handles = [m.register_forward_hook(hook) for m in watched]
    handles += [m.register_forward_pre_hook(keep_input) for m in watched if getattr(m, "inplace", False)]
    try:
        first_chunk = True
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size]
            chunk = (preprocess(chunk) if preprocess is not None else chunk).to(device)
            call_index = 0
            pending_outputs.clear()
            with torch.set_grad_enabled(y is not None):
                output = model(chunk)
                if y is not None:
                    _add_weight_gradients(output, y[start : start + batch_size].to(device), len(x), pending_outputs)
            first_chunk = False
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(saved_buffers[name])
    return [a.result() for a in accumulators]


def _add_weight_gradients(output: Tensor, y: Tensor, total: int, layers: Sequence[tuple[_Accumulator, Tensor]]) -> None:
    if y.dtype == torch.int64:
        loss = nn.functional.cross_entropy(output, y, reduction="sum") / total
    elif y.is_floating_point():
        loss = nn.functional.mse_loss(output, y.reshape(output.shape), reduction="sum") / (total * output[0].numel())
    else:
        raise TypeError(f"y must hold int64 class labels or float targets, not {y.dtype}.")
    # Frozen weights (requires_grad=False) and normalization layers without an affine weight have
    # no gradient to measure: autograd refuses them, so they are left without a grad norm.
    weighted = [
        a
        for a, _ in layers
        if a.kind != "activation"
        and isinstance(weight := getattr(a.module, "weight", None), Tensor)
        and weight.requires_grad
    ]
    if not weighted or not loss.requires_grad:
        return
    weights: list[Tensor] = [a.module.weight for a in weighted]  # type: ignore[misc]
    # A module called twice is listed twice; both entries get the gradient of its one weight.
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    for accumulator, grad in zip(weighted, grads, strict=True):
        if grad is not None:
            accumulator.grad = grad.detach().clone() if accumulator.grad is None else accumulator.grad + grad


def hidden_layer_stats(stats: Sequence[LayerStats], kind: LayerKind = "linear") -> list[LayerStats]:
    """The hidden layers of an MLP in `layer_stats(model, ...)`: its `kind` entries without the output layer.

    For kind "linear" that drops the last weighted layer (the output layer); activations and
    normalization layers in an MLP built by `course_utils.models.mlp` are all hidden.
    """
    entries = [s for s in stats if s.kind == kind]
    return entries[:-1] if kind == "linear" else entries


def hidden_std_ratio(stats: Sequence[LayerStats], reference: Sequence[LayerStats]) -> np.ndarray:
    """Per hidden Linear layer, the std of its output in `stats` over that in `reference`.

    Both come from `layer_stats` on networks of the same architecture (the same network on two
    inputs, say): the ratio says how far one input's scale differs from the other's at each depth.
    """
    ours, base = hidden_layer_stats(stats), hidden_layer_stats(reference)
    if len(ours) != len(base):
        raise ValueError(f"stats has {len(ours)} hidden Linear layers, reference {len(base)}: compare like with like.")
    return np.array([a.std / b.std for a, b in zip(ours, base, strict=True)])


@dataclass(frozen=True)
class LayerValues:
    """Every value behind `layer_stats`' summaries, for one batch: what histograms are drawn from.

    `activations[i]` is the output [N, units] of the i-th activation module call, in forward order;
    `weight_gradients[i]` is ∂loss/∂weight of the i-th layer with a weight, in the order
    `model.modules()` lists them (forward order for an `nn.Sequential`; for an MLP the last one is
    the output layer's).
    """

    activations: list[Tensor]
    weight_gradients: list[Tensor]


def layer_values(model: nn.Module, x: Tensor, y: Tensor) -> LayerValues:
    """One forward and one backward pass of the batch `x` (targets `y`) through `model`: every
    activation module's output and every weight's loss gradient, as tensors (detached copies).

    The loss is the one `layer_stats` uses: mean cross-entropy for int64 class labels, mean squared
    error for float targets. The model's own `.grad`s are left untouched.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"layer_values needs a torch.nn.Module, got {type(model).__name__}.")
    if not isinstance(x, Tensor) or not x.is_floating_point() or len(x) == 0:
        raise TypeError("x must be a non-empty float tensor of examples (preprocess it first).")
    if not isinstance(y, Tensor) or len(y) != len(x):
        raise ValueError(f"y must be a tensor with one target per example of x ({len(x)}).")
    activations = [m for m in model.modules() if _kind(m) == "activation"]
    weighted = [m for m in model.modules() if _kind(m) == "linear"]
    if not activations or not weighted:
        raise ValueError("layer_values needs a model with activation modules and layers with a weight.")
    outputs: list[Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach().clone())) for m in activations]
    try:
        with torch.enable_grad():
            prediction = model(x)
            if y.dtype == torch.int64:
                loss = nn.functional.cross_entropy(prediction, y)
            elif y.is_floating_point():
                loss = nn.functional.mse_loss(prediction, y.reshape(prediction.shape))
            else:
                raise TypeError(f"y must hold int64 class labels or float targets, not {y.dtype}.")
            weights: list[Tensor] = [m.weight for m in weighted]  # type: ignore[misc]
            grads = torch.autograd.grad(loss, weights, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    unused_as_zero = [torch.zeros_like(w) if g is None else g.detach() for w, g in zip(weights, grads, strict=True)]
    return LayerValues(activations=outputs, weight_gradients=unused_as_zero)


# The thresholds of `signal_verdict`. They are this course's own rules of thumb, not taken from a
# paper, set in notebook 04 §3 for 20-layer, 128-wide MLPs at initialization (one forward and one
# backward pass on 512 Fashion-MNIST images; five networks per combination). The networks there that
# keep their signal have, on standardized inputs, a last-layer std between images of 0.1-1, 0.1-0.75
# of their first layer's, and a first-layer gradient within a factor of 10 of the last's; most
# failures miss by orders of magnitude (ReLU + N(0, 1) grows to 10¹⁷, tiny weights lose 10⁻¹⁹).
# Three sit near a line: sigmoid + N(0, 1) (0.53-0.58 of its values saturated, against 0.5), ReLU +
# PyTorch's default on raw pixels (0.28-0.32 of its units dead, against 0.3: it dies or vanishes,
# the signal is lost either way) and tanh + Kaiming on raw pixels (its last layer's std between
# images 0.0075-0.0087 of its saturated first layer's, against 0.01).
EXPLODING_STD = 1e3  # last hidden layer's std between examples above this: "explodes"
SATURATED_SHARE = 0.5  # mean share of saturated activation values above this: "saturates"
DEAD_SHARE = 0.3  # mean share of dead units per activation layer above this: "dies"
VANISHING_SIGNAL_RATIO = 1e-2  # last / first hidden layer's std between examples below this: "vanishes"
VANISHING_GRADIENT_RATIO = 1e-4  # first / last hidden layer's weight-gradient norm below this: "vanishes"

# Activations whose flat side is where they are off: their "saturation" is counted as dead units.
_ONE_SIDED = ("ReLU",)

SignalVerdict = Literal["explodes", "saturates", "dies", "vanishes", "alive"]


def signal_verdict(stats: Sequence[LayerStats]) -> SignalVerdict:
    """What happens to the signal in an MLP at initialization, from `layer_stats(model, x, y)`.

    Checked in this order, on the hidden layers (`hidden_layer_stats`); the first that applies wins:

    * "explodes": a std or gradient norm is not finite, or the last hidden layer's std between
      examples exceeds `EXPLODING_STD`;
    * "saturates": on average more than `SATURATED_SHARE` of the activation values sit where the
      activation is flat (not for ReLU, whose flat side is its "off" side: that is dying);
    * "dies": on average more than `DEAD_SHARE` of each layer's units are flat on every example;
    * "vanishes": the std between examples falls by more than `VANISHING_SIGNAL_RATIO` from the
      first hidden layer to the last, or the first layer's weight gradient is more than
      `VANISHING_GRADIENT_RATIO` times smaller than the last's;
    * otherwise "alive".

    `stats` needs gradient norms: call `layer_stats` with targets `y`.
    """
    linear, active = hidden_layer_stats(stats, "linear"), hidden_layer_stats(stats, "activation")
    if not linear or not active:
        raise ValueError("signal_verdict needs the layer_stats of an MLP with at least one hidden layer.")
    signal = [s.example_std for s in linear]
    grads = [s.grad_norm for s in linear]
    if any(g is None for g in grads):
        raise ValueError("signal_verdict needs gradient norms: call layer_stats(model, x, y) with targets y.")
    gradients = [float(g) for g in grads if g is not None]
    if not all(math.isfinite(v) for v in signal + gradients) or signal[-1] > EXPLODING_STD:
        return "explodes"
    saturated = float(np.mean([s.fraction_saturated for s in active]))
    if saturated > SATURATED_SHARE and not any(s.module in _ONE_SIDED for s in active):
        return "saturates"
    if float(np.mean([s.fraction_dead for s in active])) > DEAD_SHARE:
        return "dies"
    if (
        signal[-1] < VANISHING_SIGNAL_RATIO * max(signal[0], 1e-30)  # the floor: a first layer with no signal at all
        or gradients[0] < VANISHING_GRADIENT_RATIO * gradients[-1]
    ):
        return "vanishes"
    return "alive"


def verdict_tally(stats_per_network: Sequence[Sequence[LayerStats]]) -> tuple[Counter[SignalVerdict], str]:
    """The `signal_verdict`s of several networks (one `layer_stats` result each, e.g. one per seed):
    how many got each verdict, and a label for a table: the majority's verdict, followed by "k/n"
    when only k of the n networks agree (e.g. "dies 3/5")."""
    if len(stats_per_network) == 0:
        raise ValueError("verdict_tally needs the layer_stats of at least one network.")
    counts = Counter(signal_verdict(stats) for stats in stats_per_network)
    majority, agreeing = counts.most_common(1)[0]
    return counts, majority + ("" if agreeing == len(stats_per_network) else f" {agreeing}/{len(stats_per_network)}")


def layer_stats_by_seed(
    make_model: Callable[[], nn.Module],
    seeds: Iterable[int],
    x: Tensor,
    y: Tensor | None = None,
    *,
    preprocess: Callable[[Tensor], Tensor] | None = None,
) -> list[list[LayerStats]]:
    """`layer_stats(model, x, y, preprocess=...)` of one new network per seed: `seed_everything(seed)`,
    then `make_model()`, so each is the network any other cell seeded the same way builds (and
    COURSE_SEED_OFFSET shifts these seeds too)."""
    runs = []
    for seed in seeds:
        seed_everything(seed)
        runs.append(layer_stats(make_model(), x, y, preprocess=preprocess))
    return runs


def stats_table(stats: Sequence[LayerStats], *, decimals: int = 4) -> str:
    """A plain-text table of `layer_stats` results, one row per layer ("-" where not applicable)."""
    columns = ("name", "module", "units", "mean", "std", "example std", "saturated", "dead", "mean f'", "grad norm")

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.{decimals}g}" if abs(value) >= 1e4 else f"{value:.{decimals}f}"

    rows = [
        (
            s.name,
            s.module,
            str(s.units),
            number(s.mean),
            number(s.std),
            number(s.example_std),
            number(s.fraction_saturated),
            number(s.fraction_dead),
            number(s.mean_derivative),
            number(s.grad_norm),
        )
        for s in stats
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


LayerStatField = Literal[
    "mean", "std", "example_std", "fraction_saturated", "fraction_dead", "mean_derivative", "grad_norm"
]


def stat_by_layer(stats_per_run: Sequence[Sequence[LayerStats]], field: LayerStatField) -> np.ndarray:
    """One `LayerStats` field as an array [run, layer]: one row per `layer_stats` result (a seed, say),
    one column per layer that has the field, in forward order.

    Layers where the field does not apply (None) are left out: "fraction_saturated" gives the
    activation layers, "grad_norm" the layers with a weight. E.g. the median over seeds of each
    layer's gradient norm: `np.median(stat_by_layer(stats_per_seed, "grad_norm"), axis=0)`.
    """

    if field not in get_args(LayerStatField):
        raise ValueError(f"{field!r} is not a numeric LayerStats field.")
    if len(stats_per_run) == 0:
        raise ValueError("stats_per_run is empty: give one layer_stats result per run.")
    rows = [[value for s in stats if (value := getattr(s, field)) is not None] for stats in stats_per_run]
    if len({len(row) for row in rows}) != 1:
        raise ValueError(f"the runs have different numbers of layers with {field}: {[len(row) for row in rows]}.")
    if not rows[0]:
        hint = " (grad_norm needs targets: layer_stats(model, x, y))" if field == "grad_norm" else ""
        raise ValueError(f"no layer has a value for {field}{hint}.")
    return np.array(rows, dtype=np.float64)


def describe_intervals(
    intervals: Sequence[tuple[float, float]],
    *,
    z_min: float | None = None,
    z_max: float | None = None,
    decimals: int = 4,
) -> str:
    """The result of `flat_intervals` in words, e.g. "z < -4.5851 or z > 4.5851" ("nowhere" if empty).

    An interval that reaches an end of the range `flat_intervals` searched is open on that side,
    so give the same `z_min` and `z_max` as to `flat_intervals` (by default, its own).
    """

    grid = inspect.signature(flat_intervals).parameters
    low = float(grid["z_min"].default) if z_min is None else z_min
    high = float(grid["z_max"].default) if z_max is None else z_max
    parts = []
    for start, end in intervals:
        if start <= low and end >= high:
            return f"everywhere in [{low:g}, {high:g}]"
        if start <= low:
            parts.append(f"z < {end:.{decimals}f}")
        elif end >= high:
            parts.append(f"z > {start:.{decimals}f}")
        else:
            parts.append(f"{start:.{decimals}f} < z < {end:.{decimals}f}")
    return " or ".join(parts) or "nowhere"


def first_hidden(stats: Sequence[LayerStats], kind: LayerKind = "activation") -> LayerStats:
    """The first hidden layer's entry of `kind` in `layer_stats(model, ...)` of an MLP: its weighted
    layer ("linear": the statistics of its pre-activations z) or its activation ("activation": of f(z)).

    A name for what an index such as `stats[1]` would hide (which entry is first depends on the model).
    """
    entries = hidden_layer_stats(stats, kind)
    if not entries:
        raise ValueError(f"these layer_stats have no hidden {kind!r} layer; the kinds are {[s.kind for s in stats]}.")
    return entries[0]


def _activation_module(model: nn.Module, layer: int) -> nn.Module:
    found = [m for m in model.modules() if _kind(m) == "activation"]
    if not 1 <= layer <= len(found):
        raise ValueError(f"layer must be between 1 and {len(found)} (the model's activation modules), not {layer}.")
    return found[layer - 1]


def pre_activations(model: nn.Module, x: Tensor, *, layer: int = 1) -> Tensor:
    """The pre-activations z that the `layer`-th activation module of `model` receives on `x` (1 is the
    first hidden layer's), as [examples, units]: the numbers its units compute before f is applied."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("x must be a float tensor of examples (preprocess it first).")
    activation = _activation_module(model, layer)
    seen: list[Tensor] = []
    # A pre-hook: it sees z before an in-place activation overwrites it.
    handle = activation.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().clone()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0].flatten(1)


def dead_unit_mask(model: nn.Module, x: Tensor, *, layer: int = 1) -> Tensor:
    """Which units of the `layer`-th activation module (1 = the first hidden layer) are dead on `x`, as
    booleans [units]: flat (|f'(z)| < SATURATION_THRESHOLD) on every example, so no gradient reaches
    their weights from any of them. For ReLU: the units that fire on none of the examples."""
    flat = activation_derivative(_activation_module(model, layer), pre_activations(model, x, layer=layer)).abs()
    return (flat < SATURATION_THRESHOLD).all(dim=0)


def dead_unit_share(model: nn.Module, x: Tensor, *, layer: int = 1) -> float:
    """The share of the `layer`-th activation module's units that are dead on `x` (see `dead_unit_mask`)."""
    return float(dead_unit_mask(model, x, layer=layer).double().mean())


def dead_share_from_bias_steps(initial: nn.Module, trained: nn.Module, x: Tensor) -> float:
    """How many first-hidden-layer units the bias steps alone would have killed.

    `trained` is `initial` after training. The answer is `dead_unit_share` on `x` of a copy of
    `initial` that takes its first weighted layer's bias from `trained` and keeps its own initial
    weights: a bias step shifts a unit's z by the same amount on every example, so it alone can put
    all of them below zero; what the weight steps did is left out. Neither model is changed.
    """
    hybrid = copy.deepcopy(initial)
    target, source = (_first_bias(model) for model in (hybrid, trained))
    if target.shape != source.shape:
        raise ValueError("trained must have the architecture of initial: its first layer's bias does not match.")
    with torch.no_grad():
        target.copy_(source)
    return dead_unit_share(hybrid, x)


def _first_bias(model: nn.Module) -> Tensor:
    first = next((m for m in model.modules() if _kind(m) == "linear"), None)
    bias = getattr(first, "bias", None)
    if not isinstance(bias, Tensor):
        raise ValueError("both models need a first weighted layer with a bias (e.g. nn.Linear(..., bias=True)).")
    return bias
