"""Curvature of a loss: Hessians, their top eigenvalues, condition numbers, and descent paths.

Why it matters for normalization: near a minimum the loss is a quadratic bowl whose Hessian H
sets the pace of gradient descent. A step size above 2/λmax diverges; at the best fixed step the
error shrinks by (κ - 1)/(κ + 1) per step, with κ = λmax/λmin. Unnormalized inputs stretch the
bowl into a ravine (large κ). For linear regression with mean squared error the loss *is* that
quadratic, so every claim can be checked exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from course_utils.runtime import make_generator
from course_utils.train import fit

LossFunction = Callable[[], Tensor]

HESSIAN_MAX_PARAMETERS = 4000  # a dense Hessian of this size is 4000² float64 = 128 MB


def _flat_params(params: Sequence[Tensor]) -> list[Tensor]:
    params = list(params)
    if not params or not all(isinstance(p, Tensor) and p.requires_grad for p in params):
        raise ValueError(
            "params must be a non-empty list of tensors with requires_grad=True, e.g. list(model.parameters())."
        )
    return params


def _gradient(loss_fn: LossFunction, params: list[Tensor]) -> Tensor:
    loss = loss_fn()
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError("loss_fn must take no arguments and return a scalar loss tensor.")
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params, strict=True)]
    )


def hessian(loss_fn: LossFunction, params: Sequence[Tensor]) -> Tensor:
    """The full Hessian of `loss_fn()` with respect to `params`, flattened and concatenated.

    Row by row, by differentiating the gradient once more: for small models only (at most
    HESSIAN_MAX_PARAMETERS parameters). For larger ones use `top_eigenvalues`.
    """
    params = _flat_params(params)
    n = sum(p.numel() for p in params)
    if n > HESSIAN_MAX_PARAMETERS:
        raise ValueError(
            f"{n} parameters make a {n}x{n} Hessian; hessian() stops at {HESSIAN_MAX_PARAMETERS}. "
            "Use top_eigenvalues(loss_fn, params, k), which needs only Hessian-vector products."
        )
    gradient = _gradient(loss_fn, params)
    rows = []
    for i in range(n):
        row = torch.autograd.grad(gradient[i], params, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [(r if r is not None else torch.zeros_like(p)).reshape(-1) for r, p in zip(row, params, strict=True)]
            )
        )
    return torch.stack(rows).detach()


class HessianVectorProduct:
    """v ↦ H v for the loss at the current parameters, without ever forming H.

    The gradient's graph is built once and reused, so each product costs about one backward
    pass. Call it as `hvp(v)` with a flat vector of the parameters' total size.
    """

    def __init__(self, loss_fn: LossFunction, params: Sequence[Tensor]) -> None:
        self.params = _flat_params(params)
        self.size = sum(p.numel() for p in self.params)
        self._gradient = _gradient(loss_fn, self.params)
        self.calls = 0

    def __call__(self, v: Tensor) -> Tensor:
        if v.shape != (self.size,):
            raise ValueError(f"v must be a flat vector of {self.size} values, got shape {tuple(v.shape)}.")
        self.calls += 1
        products = torch.autograd.grad(
            self._gradient, self.params, grad_outputs=v.to(self._gradient), retain_graph=True, allow_unused=True
        )
        return torch.cat(
            [
                (h if h is not None else torch.zeros_like(p)).reshape(-1)
                for h, p in zip(products, self.params, strict=True)
            ]
        ).detach()


def top_eigenvalues(
    loss_fn: LossFunction,
    params: Sequence[Tensor],
    k: int = 1,
    *,
    iterations: int = 200,
    tolerance: float = 1e-6,
    seed: int = 0,
) -> Tensor:
    """The k eigenvalues of the Hessian largest in magnitude, by subspace (block power) iteration.

    Each iteration multiplies k vectors by H (Hessian-vector products), re-orthonormalizes them
    and reads the eigenvalue estimates off the small k×k projected matrix (Rayleigh-Ritz). Stops
    when the estimates change by less than `tolerance` (relative) or after `iterations`.
    Returned in descending order. For a convex loss (positive semi-definite Hessian) these are
    the largest eigenvalues; at a non-convex point a large negative one can appear among them.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}.")
    hvp = HessianVectorProduct(loss_fn, params)
    if k > hvp.size:
        raise ValueError(f"k = {k} is more than the {hvp.size} parameters.")
    generator = make_generator(seed)
    dtype = hvp._gradient.dtype
    basis, _ = torch.linalg.qr(torch.randn(hvp.size, k, generator=generator, dtype=torch.float64))
    basis = basis.to(dtype)
    previous = None
    for _ in range(iterations):
        product = torch.stack([hvp(basis[:, j]) for j in range(k)], dim=1)
        projected = basis.T.double() @ product.double()
        values = torch.linalg.eigvalsh((projected + projected.T) / 2)
        values = values[values.abs().argsort(descending=True)]
        if previous is not None and torch.allclose(values, previous, rtol=tolerance, atol=0.0):
            break
        previous = values
        basis, _ = torch.linalg.qr(product.double())
        basis = basis.to(dtype)
    largest_first: Tensor = values.sort(descending=True).values
    return largest_first


def model_loss(model: torch.nn.Module, x: Tensor, y: Tensor, *, loss: str = "cross_entropy") -> LossFunction:
    """The closure `hessian` and `top_eigenvalues` take: the loss of `model` on all of `(x, y)`.

    `loss` is "cross_entropy" (class labels) or "mse" (targets; a one-column output is squeezed).
    The closure binds this model and these tensors, so closures made in a loop stay distinct."""
    if loss == "cross_entropy":
        return lambda: torch.nn.functional.cross_entropy(model(x), y)
    if loss == "mse":
        return lambda: torch.nn.functional.mse_loss(model(x).reshape(y.shape), y)
    raise ValueError(f'loss must be "cross_entropy" or "mse", not {loss!r}.')


def condition_number(matrix_or_eigenvalues: Tensor | np.ndarray) -> float:
    """κ = λmax / λmin of a symmetric positive semi-definite matrix, or of its eigenvalues.

    A singular matrix (λmin = 0) gives inf. A clearly negative eigenvalue raises: κ then no
    longer describes the speed of gradient descent.
    """
    if isinstance(matrix_or_eigenvalues, Tensor):
        values = matrix_or_eigenvalues.detach().cpu().double()
    else:  # np.array copies, so negative-stride views (e.g. a reversed array) are fine too
        values = torch.from_numpy(np.array(matrix_or_eigenvalues, dtype=np.float64))
    if values.dim() == 2:
        if values.shape[0] != values.shape[1]:
            raise ValueError(f"Need a square matrix, got shape {tuple(values.shape)}.")
        values = torch.linalg.eigvalsh((values + values.T) / 2)
    elif values.dim() != 1 or values.numel() == 0:
        raise ValueError("Pass a square symmetric matrix or a 1-D tensor of its eigenvalues.")
    largest, smallest = values.max().item(), values.min().item()
    if smallest < -1e-9 * abs(largest):
        raise ValueError(
            f"The smallest eigenvalue is negative ({smallest:.3g}): not a convex bowl, so there is "
            "no condition number to speak of. Measure it at (or near) a minimum."
        )
    return math.inf if smallest <= 0 else largest / smallest


def diagonally_rescaled_condition_number(h: Tensor | np.ndarray) -> float:
    """κ after the best a per-parameter rescaling can do here: each weight divided by √H_ii (D H D with
    D = diag(1/√H_ii), Jacobi preconditioning). A ravine along the axes becomes round; a ravine along
    a diagonal (correlated features) keeps its κ, which no per-parameter step size, Adam's included, removes."""
    matrix = np.array(h.detach().cpu().double() if isinstance(h, Tensor) else h, dtype=np.float64)
    diagonal = np.diag(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or (diagonal <= 0).any():
        raise ValueError("Pass a square Hessian with a positive diagonal.")
    d = np.diag(1 / np.sqrt(diagonal))
    return condition_number(d @ matrix @ d)


# ----------------------------------------------------------------------------- two-feature bowls


def two_feature_hessian(scale: float, correlation: float) -> np.ndarray:
    """The MSE Hessian 2·Cov of two centred features with stds 1 and `scale` and the given correlation
    (no bias): the smallest model of a scale ravine (scale ≫ 1) and a correlation ravine (|ρ| → 1)."""
    if scale <= 0 or not -1 < correlation < 1:
        raise ValueError(f"Need scale > 0 and -1 < correlation < 1, got {scale} and {correlation}.")
    return 2 * np.array([[1.0, correlation * scale], [correlation * scale, scale**2]])


@dataclass(frozen=True)
class BestFixedSteps:
    """The best fixed step sizes on a quadratic with eigenvalues in [λmin, λmax]: plain gradient descent's
    2/(λmax + λmin), and heavy-ball momentum's (Polyak) rate 4/(√λmax + √λmin)² with momentum
    ((√κ − 1)/(√κ + 1))²."""

    gd_lr: float
    momentum_lr: float
    momentum: float


def best_fixed_steps(h: Tensor | np.ndarray) -> BestFixedSteps:
    """`BestFixedSteps` for the quadratic with Hessian `h` (symmetric positive definite)."""
    values = np.linalg.eigvalsh(np.array(h.detach().cpu().double() if isinstance(h, Tensor) else h, dtype=np.float64))
    largest, smallest = float(values.max()), float(values.min())
    if smallest <= 0:
        raise ValueError(f"The Hessian must be positive definite; its smallest eigenvalue is {smallest:.3g}.")
    root_kappa = math.sqrt(largest / smallest)
    return BestFixedSteps(
        gd_lr=2 / (largest + smallest),
        momentum_lr=(2 / (math.sqrt(largest) + math.sqrt(smallest))) ** 2,
        momentum=((root_kappa - 1) / (root_kappa + 1)) ** 2,
    )


# ----------------------------------------------------------------------------- linear regression


def with_bias_column(x: Tensor | np.ndarray) -> np.ndarray:
    """[x, 1]: the design matrix of a linear model with a bias, in float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    return np.hstack([x, np.ones((len(x), 1))])


def mse_hessian(x: Tensor | np.ndarray, *, bias: bool = True) -> np.ndarray:
    """Hessian of mean((x w + b - y)²), the loss nn.MSELoss computes: 2 X̃ᵀX̃ / N.

    It does not depend on y or on the weights: the loss is exactly quadratic. With `bias` the
    last row and column belong to b.
    """
    design = with_bias_column(x) if bias else np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return 2.0 * design.T @ design / len(design)


def mse_minimizer(x: Tensor | np.ndarray, y: Tensor | np.ndarray, *, bias: bool = True) -> np.ndarray:
    """The least-squares weights (and bias, last) for mean((x w + b - y)²)."""
    design = with_bias_column(x) if bias else np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    solution, *_ = np.linalg.lstsq(design, np.asarray(y, dtype=np.float64).reshape(-1), rcond=None)
    return np.asarray(solution)


# ----------------------------------------------------------------------------- descent on a quadratic


@dataclass(frozen=True)
class QuadraticPath:
    """Where an optimizer went on f(w) = ½ (w - w*)ᵀ H (w - w*) + f*."""

    points: np.ndarray  # [steps + 1, d]: the start, then the point after each step
    losses: np.ndarray  # f(w) - f*, at each point
    minimum: np.ndarray  # w*
    diverged: bool  # stopped because the loss overflowed or exceeded 1e12 × its start

    @property
    def steps(self) -> int:
        return len(self.points) - 1

    def steps_to(self, tolerance: float) -> int | None:
        """The first step after which f(w) - f* stays below `tolerance` × its start (None: never)."""
        threshold = tolerance * self.losses[0]
        above = np.nonzero(self.losses > threshold)[0]
        if self.diverged:
            return None
        if len(above) == 0:
            return 0
        last_above = int(above[-1])
        return last_above + 1 if last_above + 1 <= self.steps else None

    def contraction_rate(self, tail: int = 20) -> float:
        """Per-step factor by which ‖w - w*‖ shrinks, over the last `tail` steps before the
        distance reaches the floor of float64 precision (1e-13 of where it started)."""
        distances = np.linalg.norm(self.points - self.minimum, axis=1)
        resolved = np.nonzero(distances > 1e-13 * distances[0])[0]
        last = int(resolved[-1]) if len(resolved) else 0
        if tail < 1 or tail > last:
            raise ValueError(
                f"tail must be between 1 and {last}, the steps before the path reached its minimum "
                f"to float64 precision; got {tail}."
            )
        return float((distances[last] / distances[last - tail]) ** (1 / tail))


Optimizer = Literal["gd", "momentum", "adam"]


def descend_quadratic(
    hessian_matrix: Tensor | np.ndarray,
    start: Sequence[float] | np.ndarray,
    *,
    lr: float,
    steps: int,
    minimum: Sequence[float] | np.ndarray | None = None,
    optimizer: Optimizer = "gd",
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> QuadraticPath:
    """Run gradient descent (or heavy-ball momentum, or Adam) on the quadratic with Hessian H.

    The gradient at w is H (w - w*). The updates follow PyTorch's SGD (momentum: v ← μv + g,
    w ← w - lr·v) and Adam (bias-corrected moments), written out in float64 for speed on tiny
    problems; the tests compare them with torch.optim step by step. A run whose loss exceeds
    1e12 times its start, or overflows, stops and is marked `diverged`.
    """
    h = np.asarray(hessian_matrix, dtype=np.float64)
    w = np.array(start, dtype=np.float64).reshape(-1)
    if h.shape != (len(w), len(w)):
        raise ValueError(f"The Hessian must be {len(w)}x{len(w)} for a start of {len(w)} values, got {h.shape}.")
    if optimizer not in ("gd", "momentum", "adam"):
        raise ValueError(f"Unknown optimizer {optimizer!r}; choose 'gd', 'momentum' or 'adam'.")
    if not (math.isfinite(lr) and lr > 0) or steps < 0:
        raise ValueError(f"Need a positive finite lr and steps >= 0, got lr={lr}, steps={steps}.")
    w_star = np.zeros_like(w) if minimum is None else np.asarray(minimum, dtype=np.float64).reshape(-1)

    def loss(point: np.ndarray) -> float:
        d = point - w_star
        return 0.5 * float(d @ h @ d)

    points = [w.copy()]
    losses = [loss(w)]
    velocity = np.zeros_like(w)
    first, second = np.zeros_like(w), np.zeros_like(w)
    diverged = False
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, steps + 1):
            g = h @ (w - w_star)
            if optimizer == "gd":
                w = w - lr * g
            elif optimizer == "momentum":
                velocity = momentum * velocity + g if t > 1 else g.copy()
                w = w - lr * velocity
            else:
                first = betas[0] * first + (1 - betas[0]) * g
                second = betas[1] * second + (1 - betas[1]) * g * g
                corrected_first = first / (1 - betas[0] ** t)
                corrected_second = second / (1 - betas[1] ** t)
                w = w - lr * corrected_first / (np.sqrt(corrected_second) + eps)
            value = loss(w)
            points.append(w.copy())
            losses.append(value)
            if not math.isfinite(value) or value > 1e12 * max(losses[0], 1e-300):
                diverged = True
                break
    return QuadraticPath(np.array(points), np.array(losses), w_star, diverged)


def measured_step_limit(h: Tensor | np.ndarray, *, steps: int = 1000, relative_precision: float = 1e-2) -> float:
    """The largest learning rate at which gradient descent on the quadratic with Hessian `h` does not
    blow up, found by running it (not from the eigenvalues): a run "blows up" when its loss after
    `steps` steps is above where it started. Bisection between a rate that survives and one that
    does not, until they are within `relative_precision` of each other; returns the surviving one.
    For a positive definite `h` this is 2/λmax to about that precision, the limit §2 of notebook 03
    derives."""
    matrix = np.array(h.detach().cpu().double() if isinstance(h, Tensor) else h, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or (np.diag(matrix) <= 0).any():
        raise ValueError("Pass a square Hessian with a positive diagonal.")
    if not 0 < relative_precision < 1 or steps < 1:
        raise ValueError(f"Need steps >= 1 and 0 < relative_precision < 1, got {steps} and {relative_precision}.")
    start = np.ones(len(matrix))

    def survives(lr: float) -> bool:
        path = descend_quadratic(matrix, start, lr=lr, steps=steps)
        return not path.diverged and path.losses[-1] <= path.losses[0]

    survived = 2 / np.trace(matrix)  # the trace bounds λmax from above, so this rate is below the limit
    if not survives(survived):
        raise ValueError("Even 2/trace(h) does not converge: is h positive definite?")
    failed = survived * 2
    while survives(failed):
        survived, failed = failed, failed * 2
    while failed / survived > 1 + relative_precision:
        middle = math.sqrt(survived * failed)
        survived, failed = (middle, failed) if survives(middle) else (survived, middle)
    return float(survived)


# ----------------------------------------------------------------------------- one example per step


@dataclass(frozen=True)
class ExampleSteps:
    """Plain stochastic gradient descent on a linear unit ŷ = x·w (no bias), one example per step,
    loss (ŷ - y)² per example."""

    path: QuadraticPath  # the weights after each step, on the bowl of the mean loss over all the examples
    gradients: np.ndarray  # [steps, d]: the gradient each step followed, 2(ŷ - y)·x of its example

    def same_sign_share(self) -> float:
        """The share of the steps whose gradient components are all positive or all negative: steps
        that can only move every weight down together or every weight up together. Steps with a
        zero gradient (the example already fitted) are left out."""
        moving = self.gradients[np.any(self.gradients != 0, axis=1)]
        if len(moving) == 0:
            raise ValueError("No step had a non-zero gradient: every example was already fitted.")
        same = np.all(moving > 0, axis=1) | np.all(moving < 0, axis=1)
        return float(same.mean())


def per_example_sgd(
    x: Tensor | np.ndarray, y: Tensor | np.ndarray, *, start: Sequence[float] | np.ndarray, lr: float
) -> ExampleSteps:
    """SGD with batch size 1 through the rows of `x` in order (one pass): w ← w - lr·2(x_i·w - y_i)·x_i.

    For an example whose inputs are all positive, every component of this gradient has the sign of
    the error (x_i·w - y_i): the step moves all weights up together or all down together. The path's
    losses are those of the mean loss over all the examples, the quadratic with Hessian
    `mse_hessian(x, bias=False)`, measured from its minimum."""
    inputs = np.asarray(x, dtype=np.float64)
    targets = np.asarray(y, dtype=np.float64).reshape(-1)
    w = np.array(start, dtype=np.float64).reshape(-1)
    if inputs.ndim != 2 or inputs.shape != (len(targets), len(w)):
        raise ValueError(
            f"Need x of shape [examples, {len(w)}] and one target per row, got {inputs.shape} and {targets.shape}."
        )
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"Need a positive finite lr, got {lr}.")
    h = mse_hessian(inputs, bias=False)
    w_star = mse_minimizer(inputs, targets, bias=False)
    points, gradients = [w.copy()], []
    for row, target in zip(inputs, targets, strict=True):
        gradient = 2 * (row @ w - target) * row
        w = w - lr * gradient
        points.append(w.copy())
        gradients.append(gradient)
    path_points = np.array(points)
    offsets = path_points - w_star
    losses = 0.5 * np.einsum("ti,ij,tj->t", offsets, h, offsets)
    diverged = not np.all(np.isfinite(losses)) or bool(losses[-1] > 1e12 * max(losses[0], 1e-300))
    return ExampleSteps(QuadraticPath(path_points, losses, w_star, diverged), np.array(gradients))


# ----------------------------------------------------------------------------- the step limit of a network


@dataclass(frozen=True)
class StepLimitProbe:
    """What sets the largest learning rate of one network at its initialization, and whether full-batch
    gradient descent at fractions of 2/λmax climbs."""

    first_to_last_gradient: float  # ‖∂L/∂W‖ of the first nn.Linear's weight over the last nn.Linear's
    lambda_max: float  # the top Hessian eigenvalue over all parameters
    last_layer_share: float  # the top eigenvalue of the last nn.Linear's block alone, over lambda_max
    peak_loss: dict[float, float]  # fraction of 2/λmax -> the run's highest loss over its starting loss


def probe_step_limit(
    make_model: Callable[[], torch.nn.Module],
    x: Tensor,
    y: Tensor,
    *,
    fractions: Sequence[float] = (0.9, 1.1),
    steps: int = 40,
    seed: int = 0,
    loss: Literal["cross_entropy", "mse"] = "mse",
) -> StepLimitProbe:
    """Measure a network's gradients and curvature at initialization, then train a fresh copy for
    `steps` full-batch gradient-descent steps at each fraction of 2/λmax.

    `make_model()` must build the same initialized network every time it is called (seed it inside):
    the probe measures one copy and trains the others. λmax comes from `top_eigenvalues`
    (tolerance 1e-3, `seed` for its random start); training is `course_utils.train.fit`."""
    model = make_model()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError("make_model() must build a network with at least one nn.Linear layer.")
    params = list(model.parameters())
    loss_fn = model_loss(model, x, y, loss=loss)
    first_gradient, last_gradient = torch.autograd.grad(loss_fn(), [linears[0].weight, linears[-1].weight])
    lambda_max = top_eigenvalues(loss_fn, params, tolerance=1e-3, seed=seed)[0].item()
    last_layer = top_eigenvalues(loss_fn, list(linears[-1].parameters()), tolerance=1e-3, seed=seed)[0].item()
    peak_loss = {}
    for fraction in fractions:
        run = fit(
            make_model(),
            x,
            y,
            lr=fraction * 2 / lambda_max,
            epochs=steps,
            batch_size=len(x),
            seed=seed,
            loss=loss,
            progress=False,
        )
        peak_loss[fraction] = float(np.nanmax(run.step_loss) / run.step_loss[0])
    return StepLimitProbe(
        first_to_last_gradient=first_gradient.norm().item() / last_gradient.norm().item(),
        lambda_max=lambda_max,
        last_layer_share=last_layer / lambda_max,
        peak_loss=peak_loss,
    )
