"""Auto-checks for the notebooks' exercises.

Each exercise is a stub that raises `NotImplementedError`. Its check function runs the
learner's function on small made-up data and compares it with a reference, and returns (and
displays) a `CheckResult`: "not attempted" for the untouched stub, a hint when the answer is
wrong, "correct" otherwise. A check never raises, so a notebook with unsolved exercises still
runs from top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

Status = Literal["not attempted", "wrong", "correct"]


@dataclass(frozen=True)
class CheckResult:
    exercise: str
    status: Status
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        mark = {"not attempted": "…", "wrong": "✗", "correct": "✓"}[self.status]
        return f"{mark} {self.exercise}: {self.status}. {self.message}".rstrip()

    def _repr_markdown_(self) -> str:
        return f"**{self}**"


def _run(exercise: str, attempt: Callable[[], CheckResult]) -> CheckResult:
    try:
        result = attempt()
    except NotImplementedError:
        result = CheckResult(exercise, "not attempted", "Replace the `raise NotImplementedError` with your code.")
    except Exception as exc:
        result = CheckResult(exercise, "wrong", f"Your function raised {type(exc).__name__}: {exc}")
    print(result)
    return result


def _close(a: Any, b: Tensor, tol: float = 1e-4) -> bool:
    return isinstance(a, Tensor) and a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=tol, atol=tol)


def _check_formula(
    name: str,
    answer_for: Callable[..., float],
    cases: Sequence[tuple[Any, ...]],
    wanted: Callable[..., float],
    wrong_guesses: list[tuple[Callable[..., float], str]],
    hint: str,
) -> CheckResult:
    answers = [float(answer_for(*case)) for case in cases]

    def matches(rule: Callable[..., float]) -> bool:
        return all(math.isclose(a, rule(*case), rel_tol=1e-6) for a, case in zip(answers, cases, strict=True))

    if matches(wanted):
        return CheckResult(name, "correct", "")
    for guess, message in wrong_guesses:
        if matches(guess):
            return CheckResult(name, "wrong", message)
    return CheckResult(name, "wrong", hint)


# ----------------------------------------------------------------------------- notebook 01


def check_pixel_statistics(pixel_statistics: Callable[[Tensor], tuple[Tensor, Tensor]]) -> CheckResult:
    """Exercise: per-pixel mean and (population) std of uint8 images [N, H, W], as [H, W] floats."""
    name = "pixel_statistics"

    def attempt() -> CheckResult:
        images = torch.randint(0, 256, (64, 5, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        mean, std = pixel_statistics(images)
        want_mean = images.double().mean(dim=0)
        want_std = images.double().std(dim=0, correction=0)
        if not isinstance(mean, Tensor) or mean.shape != (5, 4):
            return CheckResult(name, "wrong", "Average over the images (dim=0): one mean per pixel, shape [H, W].")
        if not _close(mean, want_mean):
            return CheckResult(name, "wrong", "The means are off. Did you convert to float before averaging?")
        if _close(std, images.double().std(dim=0, correction=1)):
            return CheckResult(
                name, "wrong", "Use the population std (correction=0), like scikit-learn's StandardScaler."
            )
        if not _close(std, want_std):
            return CheckResult(name, "wrong", "The stds are off: one std per pixel, over dim=0.")
        return CheckResult(name, "correct", "")

    return _run(name, attempt)


def check_equivalent_learning_rate(equivalent_learning_rate: Callable[[float, float], float]) -> CheckResult:
    """Exercise: the SGD learning rate for inputs multiplied by `scale` that reproduces `lr`."""
    name = "equivalent_learning_rate"

    def attempt() -> CheckResult:
        cases = [(0.1, 255.0), (0.5, 2.0), (1e-3, 0.1)]
        answers = [float(equivalent_learning_rate(lr, scale)) for lr, scale in cases]
        wanted = [lr / scale**2 for lr, scale in cases]
        if all(math.isclose(a, w, rel_tol=1e-9) for a, w in zip(answers, wanted, strict=True)):
            return CheckResult(name, "correct", "")
        if all(math.isclose(a, lr / scale, rel_tol=1e-9) for a, (lr, scale) in zip(answers, cases, strict=True)):
            return CheckResult(
                name,
                "wrong",
                "Close: the gradient grows by `scale`, but so does the effect of each weight change "
                "on the output. Count the factor twice.",
            )
        return CheckResult(
            name,
            "wrong",
            "Hint: with inputs s·x and weights w/s the outputs match; write the SGD step for w/s "
            "and see what learning rate keeps it equal to the step for w.",
        )

    return _run(name, attempt)


def check_standardize(
    standardize: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
) -> CheckResult:
    """Exercise: standardize train and test features with statistics of the training split only."""
    name = "standardize"

    def attempt() -> CheckResult:
        g = torch.Generator().manual_seed(2)
        x_train = torch.randn(50, 3, generator=g) * torch.tensor([1.0, 100.0, 0.01]) + 5
        x_test = torch.randn(20, 3, generator=g) * torch.tensor([2.0, 50.0, 0.02]) - 3
        z_train, z_test = standardize(x_train, x_test)
        mean, std = x_train.mean(dim=0), x_train.std(dim=0, correction=0)
        if not _close(z_train, (x_train - mean) / std, 1e-3):
            return CheckResult(name, "wrong", "The training features should end with mean 0 and std 1 per column.")
        if _close(z_test, (x_test - x_test.mean(0)) / x_test.std(0, correction=0), 1e-3):
            return CheckResult(
                name, "wrong", "The test split was standardized with its own statistics: use the training mean and std."
            )
        if not _close(z_test, (x_test - mean) / std, 1e-3):
            return CheckResult(name, "wrong", "Apply (x - train mean) / train std to the test split too.")
        return CheckResult(name, "correct", "")

    return _run(name, attempt)


# ----------------------------------------------------------------------------- notebook 02


def check_sigmoid_flat_beyond(sigmoid_flat_beyond: Callable[[float], float]) -> CheckResult:
    """Exercise: the z* > 0 with sigmoid'(z) < t exactly when |z| > z*, in closed form."""
    name = "sigmoid_flat_beyond"

    def attempt() -> CheckResult:
        thresholds = (0.01, 0.1, 0.2, 1e-4)
        answers = [float(sigmoid_flat_beyond(t)) for t in thresholds]
        wanted = []
        for t in thresholds:
            s = (1 + math.sqrt(1 - 4 * t)) / 2  # the larger root of s(1 - s) = t
            wanted.append(math.log(s / (1 - s)))
        if all(math.isclose(a, w, rel_tol=1e-6) for a, w in zip(answers, wanted, strict=True)):
            return CheckResult(name, "correct", "")
        if all(
            math.isclose(a, math.atanh(math.sqrt(1 - t)), rel_tol=1e-6)
            for a, t in zip(answers, thresholds, strict=True)
        ):
            return CheckResult(name, "wrong", "That is tanh's edge (1 - tanh² = t). Sigmoid's derivative is s(1 - s).")
        if all(math.isclose(a, math.log((1 - t) / t), rel_tol=1e-6) for a, t in zip(answers, thresholds, strict=True)):
            return CheckResult(
                name, "wrong", "You solved sigmoid(z) = 1 - t. Solve sigmoid'(z) = s(1 - s) = t for s first."
            )
        return CheckResult(
            name,
            "wrong",
            "Hint: write s = sigmoid(z); s(1 - s) = t is a quadratic in s. Take its larger root, then "
            "z = log(s / (1 - s)). For t = 0.01 the answer is about 4.585.",
        )

    return _run(name, attempt)


def check_dead_units(dead_units: Callable[[Tensor], Tensor]) -> CheckResult:
    """Exercise: from ReLU pre-activations [examples, units], the units that never fire."""
    name = "dead_units"

    def attempt() -> CheckResult:
        g = torch.Generator().manual_seed(4)
        z = torch.randn(40, 6, generator=g)
        z[:, 1] = -z[:, 1].abs()  # never fires
        z[:, 4] = -z[:, 4].abs()
        z[3, 4] = 0.5  # fires on one example only: alive
        z[:, 5] = 0.0  # exactly zero: ReLU outputs 0 and passes no gradient, so dead
        answer = dead_units(z)
        wanted = torch.tensor([False, True, False, False, False, True])
        if not isinstance(answer, Tensor) or answer.shape != (6,):
            return CheckResult(
                name, "wrong", "Return one True/False per unit (shape [units]): reduce over the examples, dim=0."
            )
        if torch.equal(answer.bool(), wanted):
            return CheckResult(name, "correct", "")
        if torch.equal(answer.bool(), (z <= 0).any(dim=0)):
            return CheckResult(name, "wrong", "A unit is dead only if it is off for *every* example: all, not any.")
        if torch.equal(answer.bool(), (z < 0).all(dim=0)):
            return CheckResult(
                name, "wrong", "Almost: relu(0) = 0 and its slope there is 0 in PyTorch, so z = 0 is 'off' too."
            )
        return CheckResult(name, "wrong", "Hint: a unit fires on an example when its pre-activation is > 0.")

    return _run(name, attempt)


def check_predicted_preactivation_std(predicted_preactivation_std: Callable[[Tensor], float]) -> CheckResult:
    """Exercise: predicted std of first-layer pre-activations under nn.Linear's default init."""
    name = "predicted_preactivation_std"

    def attempt() -> CheckResult:
        g = torch.Generator().manual_seed(5)
        cases = [
            torch.rand(500, 30, generator=g) * 255,
            torch.randn(500, 30, generator=g),
            torch.rand(500, 8, generator=g),
        ]
        answers = [float(predicted_preactivation_std(x)) for x in cases]

        def predicted(x: Tensor, bias: bool = True, centred: bool = False, correction: int = 0) -> float:
            second_moment = float(x.var(correction=correction)) if centred else float((x * x).mean())
            return math.sqrt((second_moment + (1 / x.shape[1] if bias else 0.0)) / 3)

        def matches(rule: Callable[[Tensor], float]) -> bool:
            return all(math.isclose(a, rule(x), rel_tol=1e-4) for a, x in zip(answers, cases, strict=True))

        if matches(predicted):
            return CheckResult(name, "correct", "")
        if matches(lambda x: predicted(x, bias=False)):
            return CheckResult(
                name, "wrong", "Close: the bias is drawn from the same U(±1/√fan_in) and adds its variance too."
            )

        def centred(bias: bool, correction: int) -> Callable[[Tensor], float]:
            return lambda x: predicted(x, bias=bias, centred=True, correction=correction)

        if any(matches(centred(bias, correction)) for bias in (True, False) for correction in (0, 1)):
            return CheckResult(
                name,
                "wrong",
                "The weights have mean 0, so Var(w·x) = Σ Var(w) E[x²]: it is the mean of x², not the "
                "variance of x. An offset in the inputs adds to the spread of the pre-activations.",
            )
        return CheckResult(
            name,
            "wrong",
            "Hint: w and b ~ U(-1/√n, 1/√n) have variance 1/(3n); z = Σ w_i x_i + b. Add up the "
            "variances, average over the examples, take the square root.",
        )

    return _run(name, attempt)


# ----------------------------------------------------------------------------- notebook 03


def check_largest_stable_lr(largest_stable_lr: Callable[[Tensor], float]) -> CheckResult:
    """Exercise: the largest learning rate for which gradient descent converges on a quadratic with Hessian H."""
    name = "largest_stable_lr"
    g = torch.Generator().manual_seed(6)
    cases: list[tuple[Tensor, ...]] = []
    for size in (2, 3, 5):
        a = torch.randn(size, size, generator=g, dtype=torch.float64)
        cases.append((a @ a.T + 0.1 * torch.eye(size, dtype=torch.float64),))
    cases.append((torch.tensor([[4.0, 1.9], [1.9, 1.0]], dtype=torch.float64),))  # the diagonal misleads here

    def top(h: Tensor) -> float:
        return float(torch.linalg.eigvalsh(h).max())

    return _run(
        name,
        lambda: _check_formula(
            name,
            lambda h: largest_stable_lr(h.clone()),
            cases,
            lambda h: 2 / top(h),
            [
                (
                    lambda h: 1 / top(h),
                    "1/λmax is the step that is best for the steepest direction; the limit is twice that.",
                ),
                (
                    lambda h: 2 / torch.linalg.eigvalsh(h).min().item(),
                    "The steepest direction (largest eigenvalue) diverges first, not the flattest.",
                ),
                (
                    lambda h: 2 / h.diagonal().max().item(),
                    "Use the eigenvalues of H (torch.linalg.eigvalsh), not its diagonal entries.",
                ),
            ],
            "Hint: along an eigenvector with eigenvalue λ one step multiplies the error by (1 - lr·λ). "
            "When does |1 - lr·λ| < 1 hold for every λ?",
        ),
    )


def check_standardized_condition_number(standardized_condition_number: Callable[[float], float]) -> CheckResult:
    """Exercise: κ of the MSE Hessian for two standardized features with correlation rho (and a bias)."""
    name = "standardized_condition_number"
    return _run(
        name,
        lambda: _check_formula(
            name,
            standardized_condition_number,
            [(0.0,), (0.5,), (0.9,), (-0.9,), (0.99,)],
            lambda r: (1 + abs(r)) / (1 - abs(r)),
            [(lambda r: (1 + r) / (1 - r), "Right for ρ ≥ 0. A negative correlation makes a ravine too: use |ρ|.")],
            "Hint: the weights' block of the Hessian is 2·[[1, ρ], [ρ, 1]], with eigenvalues 2(1 ± ρ); "
            "the bias adds an eigenvalue 2, which lies between them.",
        ),
    )


def check_mse_hessian_with_bias(mse_hessian_with_bias: Callable[[Tensor], Tensor]) -> CheckResult:
    """Exercise: the Hessian of nn.MSELoss for a linear model with bias, in closed form."""
    name = "mse_hessian_with_bias"

    def attempt() -> CheckResult:
        g = torch.Generator().manual_seed(7)
        x = torch.randn(30, 3, generator=g, dtype=torch.float64) * 3 + 1
        answer = mse_hessian_with_bias(x)
        design = torch.cat([x, torch.ones(30, 1, dtype=torch.float64)], dim=1)
        wanted = 2 * design.T @ design / 30
        if not isinstance(answer, Tensor) or answer.shape != (4, 4):
            return CheckResult(
                name, "wrong", "Return a (features + 1) x (features + 1) tensor: the last row and column are the bias."
            )
        if _close(answer, wanted, 1e-6):
            return CheckResult(name, "correct", "")
        if _close(answer, wanted / 2, 1e-6):
            return CheckResult(name, "wrong", "nn.MSELoss is mean((ŷ - y)²), without a ½: the factor 2 stays.")
        if _close(answer, wanted * 30 / 29, 1e-6):
            return CheckResult(name, "wrong", "Divide by N, the number of examples the mean runs over, not N - 1.")
        return CheckResult(
            name,
            "wrong",
            "Hint: append a column of ones to x (the bias's input), call it X̃; the loss is "
            "mean((X̃ θ - y)²), so its Hessian is 2 X̃ᵀX̃ / N.",
        )

    return _run(name, attempt)


# ----------------------------------------------------------------------------- notebook 04


def check_default_init_variance(default_init_variance: Callable[[int], float]) -> CheckResult:
    """Exercise: the variance of nn.Linear's default weight init, as a function of fan_in."""
    name = "default_init_variance"
    return _run(
        name,
        lambda: _check_formula(
            name,
            default_init_variance,
            [(784,), (128,), (3,)],
            lambda n: 1 / (3 * n),
            [
                (lambda n: 1 / n, "1/fan_in is the *square of the bound*; a uniform U(-a, a) has variance a²/3."),
                (lambda n: 2 / n, "2/fan_in is Kaiming's variance for ReLU, which PyTorch's default is not."),
                (lambda n: 1 / math.sqrt(3 * n), "That is the standard deviation; the exercise asks for the variance."),
            ],
            "Hint: kaiming_uniform_(a=√5) uses gain √(2/(1+a²)) and bound gain·√(3/fan_in); then Var(U(-b, b)) = b²/3.",
        ),
    )


def check_kaiming_std(kaiming_std: Callable[[int], float]) -> CheckResult:
    """Exercise: the weight std that keeps the second moment constant through ReLU layers."""
    name = "kaiming_std"
    return _run(
        name,
        lambda: _check_formula(
            name,
            kaiming_std,
            [(784,), (128,), (10,)],
            lambda n: math.sqrt(2 / n),
            [
                (lambda n: 2 / n, "That is the variance; take its square root for the std."),
                (
                    lambda n: math.sqrt(1 / n),
                    "√(1/fan_in) suits a linear (or tanh-near-zero) layer; "
                    "ReLU zeroes half the signal, so double the variance.",
                ),
                (
                    lambda n: math.sqrt(1 / (3 * n)),
                    "That is PyTorch's default, which shrinks the signal √6-fold per ReLU layer.",
                ),
            ],
            "Hint: Var(z_next) = fan_in · Var(w) · E[relu(z)²] and E[relu(z)²] = Var(z)/2 for symmetric z. "
            "Solve Var(z_next) = Var(z).",
        ),
    )


def check_xavier_uniform_bound(xavier_uniform_bound: Callable[[int, int], float]) -> CheckResult:
    """Exercise: the bound a of Glorot/Xavier's uniform init U(-a, a)."""
    name = "xavier_uniform_bound"
    return _run(
        name,
        lambda: _check_formula(
            name,
            xavier_uniform_bound,
            [(784, 128), (128, 128), (128, 10)],
            lambda n_in, n_out: math.sqrt(6 / (n_in + n_out)),
            [
                (
                    lambda n_in, n_out: math.sqrt(2 / (n_in + n_out)),
                    "That is the std of Xavier's *normal* init; a uniform U(-a, a) has std a/√3.",
                ),
                (
                    lambda n_in, n_out: 2 / (n_in + n_out),
                    "That is the variance Xavier asks for; you need the bound a with a²/3 equal to it.",
                ),
                (
                    lambda n_in, n_out: math.sqrt(6 / n_in),
                    "Xavier averages the forward and backward conditions: use fan_in + fan_out.",
                ),
            ],
            "Hint: Xavier wants Var(w) = 2/(fan_in + fan_out), and Var(U(-a, a)) = a²/3.",
        ),
    )


# ----------------------------------------------------------------------------- notebook 05


def check_batch_norm_forward(batch_norm_forward: Callable[[Tensor, Tensor, Tensor, float], Tensor]) -> CheckResult:
    """Exercise: batch norm's training-mode output for x [N, C], γ, β and eps."""
    name = "batch_norm_forward"

    def attempt() -> CheckResult:
        g = torch.Generator().manual_seed(8)
        x = torch.randn(6, 4, generator=g, dtype=torch.float64) * 3 + 2
        gamma = torch.rand(4, generator=g, dtype=torch.float64) + 0.5
        beta = torch.randn(4, generator=g, dtype=torch.float64)
        eps = 1e-2  # large, so that forgetting it shows
        answer = batch_norm_forward(x.clone(), gamma, beta, eps)
        wanted = torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)
        if not isinstance(answer, Tensor) or answer.shape != x.shape:
            return CheckResult(name, "wrong", "Return a tensor shaped like x: one normalized value per input value.")
        if _close(answer, wanted, 1e-6):
            return CheckResult(name, "correct", "")
        mean = x.mean(dim=0)
        if _close(answer, gamma * (x - mean) / torch.sqrt(x.var(dim=0, correction=1) + eps) + beta, 1e-6):
            return CheckResult(
                name,
                "wrong",
                "Normalize with the biased batch variance (divide by N); N - 1 is only for the running estimate.",
            )
        if _close(answer, gamma * (x - mean) / x.std(dim=0, correction=0) + beta, 1e-6):
            return CheckResult(name, "wrong", "Add eps to the variance before the square root.")
        if _close(
            answer,
            gamma * (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(x.var(dim=1, correction=0, keepdim=True) + eps)
            + beta,
            1e-6,
        ):
            return CheckResult(
                name,
                "wrong",
                "That normalizes each example over its features (layer norm). "
                "Batch norm averages over the batch: dim=0.",
            )
        return CheckResult(
            name, "wrong", "Hint: mean and biased variance over dim=0, x̂ = (x - mean)/√(var + eps), then γ·x̂ + β."
        )

    return _run(name, attempt)


def check_update_running_var(update_running_var: Callable[[Tensor, Tensor, float], Tensor]) -> CheckResult:
    """Exercise: PyTorch's update of running_var from one training batch."""
    name = "update_running_var"

    def attempt() -> CheckResult:
        g = torch.Generator().manual_seed(9)
        running = torch.rand(3, generator=g, dtype=torch.float64) + 0.5
        batch = torch.randn(5, 3, generator=g, dtype=torch.float64) * 2
        answer = update_running_var(running.clone(), batch, 0.1)
        layer = torch.nn.BatchNorm1d(3, momentum=0.1).double()
        assert layer.running_var is not None  # BatchNorm1d tracks running statistics by default
        with torch.no_grad():
            layer.running_var.copy_(running)
        layer(batch)
        wanted = layer.running_var
        if not isinstance(answer, Tensor) or answer.shape != (3,):
            return CheckResult(name, "wrong", "Return the new running variance: one value per feature.")
        if _close(answer, wanted, 1e-8):
            return CheckResult(name, "correct", "")
        if _close(answer, 0.9 * running + 0.1 * batch.var(dim=0, correction=0), 1e-8):
            return CheckResult(
                name, "wrong", "PyTorch stores the *unbiased* batch variance (divide by N - 1) in running_var."
            )
        if _close(answer, 0.1 * running + 0.9 * batch.var(dim=0, correction=1), 1e-8):
            return CheckResult(
                name,
                "wrong",
                "Momentum weights the *new* batch in PyTorch: (1 - momentum)·running + momentum·batch "
                "(Keras uses the opposite convention).",
            )
        return CheckResult(
            name,
            "wrong",
            "Hint: new = (1 - momentum) · running_var + momentum · (unbiased variance of the batch, per feature).",
        )

    return _run(name, attempt)


def check_fold_batch_norm(
    fold_batch_norm: Callable[[torch.nn.Linear, torch.nn.BatchNorm1d], torch.nn.Linear],
) -> CheckResult:
    """Exercise: merge Linear → BatchNorm1d (eval mode) into one Linear layer."""
    name = "fold_batch_norm"

    def attempt() -> CheckResult:
        torch.manual_seed(10)
        linear, norm = torch.nn.Linear(6, 4).double(), torch.nn.BatchNorm1d(4).double()
        assert norm.running_mean is not None and norm.running_var is not None
        with torch.no_grad():
            norm.running_mean.uniform_(-1, 1)
            norm.running_var.uniform_(0.5, 2)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-1, 1)
        norm.eval()
        x = torch.randn(10, 6, dtype=torch.float64)
        with torch.no_grad():
            wanted = norm(linear(x))
            folded = fold_batch_norm(linear, norm)
            if not isinstance(folded, torch.nn.Linear):
                return CheckResult(name, "wrong", "Return a new nn.Linear with the folded weight and bias.")
            answer = folded.double()(x)
        if _close(answer, wanted, 1e-6):
            return CheckResult(name, "correct", "")
        return CheckResult(
            name,
            "wrong",
            "Hint: in eval mode BN computes γ·(z - running_mean)/√(running_var + eps) + β with z = Wx + b. "
            "Scale each row of W by s = γ/√(running_var + eps); the bias becomes s·(b - running_mean) + β.",
        )

    return _run(name, attempt)
