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


# ----------------------------------------------------------------------------- predict, then measure

NOT_PREDICTED = (
    "Write your prediction in the cell above (replace the None) and run both cells again; "
    "the measurement is revealed once you have committed to a guess."
)


def check_prediction(
    exercise: str,
    prediction: float | None,
    measured: float,
    *,
    why: str,
    factor: float | None = None,
    tolerance: float | None = None,
    unit: str = "",
) -> CheckResult:
    """A predict-then-measure exercise: how far the learner's number is from the measured one.

    Give exactly one of `factor` (positive quantities compared by ratio: within `factor` either
    way counts as right, e.g. 3 for a learning rate on a grid of half-decades) or `tolerance`
    (compared by difference, e.g. 0.05 for an accuracy). `why` is the one-sentence reason shown
    with the verdict, right or wrong. `prediction` None means the learner has not guessed yet.
    """
    if (factor is None) == (tolerance is None):
        raise ValueError("give exactly one of factor= (compare by ratio) or tolerance= (compare by difference).")
    if factor is not None and (factor <= 1 or measured <= 0):
        raise ValueError(f"factor= compares positive numbers and must exceed 1; got {factor} and measured {measured}.")

    def attempt() -> CheckResult:
        if prediction is None:
            return CheckResult(exercise, "not attempted", NOT_PREDICTED)
        guess = float(prediction)
        said = f"You predicted {guess:.3g}{unit}; the notebook measured {measured:.3g}{unit}"
        if factor is not None:
            if guess <= 0:
                return CheckResult(exercise, "wrong", f"{said}. Predict a positive number. {why}")
            off = max(guess / measured, measured / guess)
            direction = "too high" if guess > measured else "too low"
            if off <= factor:
                return CheckResult(exercise, "correct", f"{said}: within a factor of {off:.2g}. {why}")
            return CheckResult(exercise, "wrong", f"{said}: off by a factor of {off:.2g} ({direction}). {why}")
        assert tolerance is not None
        gap = guess - measured
        if abs(gap) <= tolerance:
            return CheckResult(exercise, "correct", f"{said}: {abs(gap):.2g} away. {why}")
        direction = "too high" if gap > 0 else "too low"
        return CheckResult(exercise, "wrong", f"{said}: {abs(gap):.2g} away ({direction}). {why}")

    return _run(exercise, attempt)


def check_choice(exercise: str, prediction: Any, measured: Any, options: Sequence[Any], *, why: str) -> CheckResult:
    """A predict-then-measure exercise with a choice: which of `options` the experiment picked."""
    if measured not in options:
        raise ValueError(f"the measured answer {measured!r} is not one of the options {list(options)}.")

    def attempt() -> CheckResult:
        if prediction is None:
            return CheckResult(exercise, "not attempted", NOT_PREDICTED)
        if prediction not in options:
            return CheckResult(exercise, "wrong", f"Choose one of {list(options)}; you wrote {prediction!r}.")
        if prediction == measured:
            return CheckResult(exercise, "correct", f"You predicted {prediction!r}, and so it measured. {why}")
        said = f"You predicted {prediction!r}; the notebook measured {measured!r}."
        return CheckResult(exercise, "wrong", f"{said} {why}")

    return _run(exercise, attempt)


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


# ----------------------------------------------------------------------------- notebook 03


def check_zca_whiten(zca_whiten: Callable[[Tensor], Tensor]) -> CheckResult:
    """Exercise: ZCA-whiten features x [N, d]: centre, then multiply by the inverse square root of the
    (population) covariance, so the covariance becomes the identity and the data stays unrotated."""
    name = "zca_whiten"

    def attempt() -> CheckResult:
        g = torch.Generator().manual_seed(6)
        mixing = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.3, 0.0], [-2.0, 1.0, 5.0]], dtype=torch.float64)
        x = torch.randn(400, 3, generator=g, dtype=torch.float64) @ mixing + torch.tensor([3.0, -1.0, 10.0])
        answer = zca_whiten(x.clone())
        if not isinstance(answer, Tensor) or answer.shape != x.shape:
            return CheckResult(name, "wrong", "Return a tensor shaped like x: one whitened row per example.")
        centred = x - x.mean(dim=0)
        values, vectors = torch.linalg.eigh(centred.T @ centred / len(x))
        if _close(answer, centred @ vectors @ torch.diag(values**-0.5) @ vectors.T, 1e-6):
            return CheckResult(name, "correct", "")
        if not _close(answer.mean(dim=0), torch.zeros(3, dtype=torch.float64), 1e-6):
            return CheckResult(name, "wrong", "Subtract each feature's mean first: whitened features have mean 0.")
        covariance = answer.double().T @ answer.double() / len(x)
        if _close(covariance, torch.eye(3, dtype=torch.float64) * (len(x) - 1) / len(x), 1e-6):
            return CheckResult(
                name, "wrong", "Use the population covariance (divide by N, correction=0), as the MSE Hessian does."
            )
        if _close(covariance, torch.eye(3, dtype=torch.float64), 1e-6):
            return CheckResult(
                name,
                "wrong",
                "The covariance is the identity, so this whitens, but it rotates the features (PCA whitening): "
                "rotate back with the eigenvectors' transpose, x_c · U Λ^(-1/2) Uᵀ.",
            )
        if _close(covariance.diagonal(), torch.ones(3, dtype=torch.float64), 1e-6):
            return CheckResult(
                name,
                "wrong",
                "Each feature now has variance 1, but they are still correlated: that is standardization. "
                "Use the whole covariance matrix, not only its diagonal.",
            )
        return CheckResult(
            name,
            "wrong",
            "Hint: C = x_cᵀx_c / N for the centred x_c; torch.linalg.eigh(C) gives C = U Λ Uᵀ; "
            "then x_c · U Λ^(-1/2) Uᵀ has covariance I.",
        )

    return _run(name, attempt)


# ----------------------------------------------------------------------------- notebook 04


def check_leaky_relu_std(leaky_relu_std: Callable[[int, float], float]) -> CheckResult:
    """Exercise: the weight std that keeps E[z²] constant through leaky-ReLU layers of slope a below 0."""
    name = "leaky_relu_std"
    return _run(
        name,
        lambda: _check_formula(
            name,
            leaky_relu_std,
            [(784, 0.01), (128, 0.2), (128, 1.0), (10, 0.5)],
            lambda n, a: math.sqrt(2 / ((1 + a * a) * n)),
            [
                (lambda n, a: math.sqrt(2 / n), "That is ReLU's (a = 0): the negative half passes a² of its E[z²]."),
                (lambda n, a: 2 / ((1 + a * a) * n), "That is the variance; take its square root for the std."),
                (
                    lambda n, a: math.sqrt(2 / ((1 + a) * n)),
                    "The negative half is scaled by a, so its square by a²: use 1 + a², not 1 + a.",
                ),
                (
                    lambda n, a: math.sqrt(1 / ((1 + a * a) * n)),
                    "Half the inputs are negative: E[leaky(z)²] = (1 + a²)/2 · E[z²], so the 2 stays.",
                ),
            ],
            "Hint: for z symmetric around 0, E[leaky(z)²] = ½E[z²] + ½a²E[z²]. "
            "Solve fan_in · Var(w) · (1 + a²)/2 = 1 for the std √Var(w).",
        ),
    )


# ----------------------------------------------------------------------------- notebook 05


def check_batch_norm_2d(batch_norm_2d: Callable[[Tensor, Tensor, Tensor, float], Tensor]) -> CheckResult:
    """Exercise: batch norm's training-mode output for images x [N, C, H, W], γ [C], β [C] and eps."""
    name = "batch_norm_2d"

    def attempt() -> CheckResult:
        g = torch.Generator().manual_seed(8)
        x = torch.randn(4, 3, 5, 2, generator=g, dtype=torch.float64) * torch.tensor([3.0, 0.5, 10.0])[:, None, None]
        x = x + torch.tensor([2.0, -1.0, 50.0], dtype=torch.float64)[:, None, None]
        gamma = torch.rand(3, generator=g, dtype=torch.float64) + 0.5
        beta = torch.randn(3, generator=g, dtype=torch.float64)
        eps = 1e-1  # large, so that forgetting it shows
        answer = batch_norm_2d(x.clone(), gamma, beta, eps)
        wanted = torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)
        if not isinstance(answer, Tensor) or answer.shape != x.shape:
            return CheckResult(
                name, "wrong", "Return a tensor shaped like x; reshape γ and β to [1, C, 1, 1] to broadcast them."
            )
        if _close(answer, wanted, 1e-6):
            return CheckResult(name, "correct", "")
        g4, b4 = gamma[None, :, None, None], beta[None, :, None, None]

        def normalized(dims: tuple[int, ...], correction: int = 0, epsilon: float = eps) -> Tensor:
            mean = x.mean(dim=dims, keepdim=True)
            return g4 * (x - mean) / torch.sqrt(x.var(dim=dims, correction=correction, keepdim=True) + epsilon) + b4

        if _close(answer, normalized((0,)), 1e-6):
            return CheckResult(
                name,
                "wrong",
                "That gives every pixel position its own statistics. A channel is one feature: its mean and "
                "variance run over the batch *and* every position, dims (0, 2, 3).",
            )
        if _close(answer, normalized((1, 2, 3)), 1e-6) or _close(answer, normalized((2, 3)), 1e-6):
            return CheckResult(
                name,
                "wrong",
                "That normalizes each image by itself (layer or instance norm). Batch norm averages over the "
                "batch too: dims (0, 2, 3).",
            )
        if _close(answer, normalized((0, 2, 3), correction=1), 1e-6):
            return CheckResult(
                name, "wrong", "Normalize with the biased variance (divide by the count); N - 1 is for running_var."
            )
        if _close(answer, normalized((0, 2, 3), epsilon=0.0), 1e-6):
            return CheckResult(name, "wrong", "Add eps to the variance before the square root.")
        return CheckResult(
            name,
            "wrong",
            "Hint: per channel, the mean and biased variance over dims (0, 2, 3) with keepdim=True; "
            "x̂ = (x - mean)/√(var + eps), then γ·x̂ + β with γ and β shaped [1, C, 1, 1].",
        )

    return _run(name, attempt)


def check_batches_to_forget(batches_to_forget: Callable[[float, float], int]) -> CheckResult:
    """Exercise: training batches until a running estimate's starting value weighs at most `fraction`."""
    name = "batches_to_forget"
    return _run(
        name,
        lambda: _check_formula(
            name,
            batches_to_forget,
            [(0.1, 0.01), (0.1, 0.5), (0.01, 0.01), (0.5, 0.1), (0.3, 0.3)],
            lambda m, f: math.ceil(math.log(f) / math.log(1 - m)),
            [
                (
                    lambda m, f: math.ceil(math.log(f) / math.log(m)),
                    "In PyTorch momentum is the weight of the *new* batch, so the old value keeps (1 - momentum) "
                    "per batch (Keras uses the opposite convention).",
                ),
                (
                    lambda m, f: math.log(f) / math.log(1 - m),
                    "Right formula; now round up to a whole number of batches (math.ceil).",
                ),
                (
                    lambda m, f: math.floor(math.log(f) / math.log(1 - m)),
                    "Round up, not down: after the rounded-down count the old value still weighs more than fraction.",
                ),
                (
                    lambda m, f: 1 / m,
                    "1/momentum is how many recent batches the estimate mostly averages, not when the start is "
                    "forgotten: that depends on fraction.",
                ),
            ],
            "Hint: each batch multiplies the starting value's weight by (1 - momentum); find the smallest k "
            "with (1 - momentum)^k ≤ fraction.",
        ),
    )


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


# ----------------------------------------------------------------------------- notebook 06


def check_healthy_model(make_model: Callable[[], Any]) -> CheckResult:
    """Exercise: a network for the standardized breast-cancer features (30 in, 2 classes) that
    `doctor.diagnose` finds healthy, with targets (so gradients are checked too), for three seeds."""
    from course_utils.data import load_tabular
    from course_utils.doctor import diagnose
    from course_utils.preprocessing import fit_preprocessing

    def attempt() -> CheckResult:
        split = load_tabular("breast_cancer")
        x = fit_preprocessing("feature_zscore", split.x_train)(split.x_train)
        for seed in (0, 1, 2):
            torch.manual_seed(seed)
            model = make_model()
            if not isinstance(model, torch.nn.Module):
                return CheckResult(
                    "Exercise 2", "wrong", f"make_model() returned {type(model).__name__}, not a network."
                )
            with torch.no_grad():
                shape = tuple(model(x[:4]).shape)
            if shape != (4, 2):
                return CheckResult(
                    "Exercise 2",
                    "wrong",
                    f"the network gives outputs of shape {shape} for 4 examples; it needs (4, 2).",
                )
            diagnosis = diagnose(model, x, split.y_train)
            if not diagnosis.healthy:
                worst = diagnosis.findings[0]
                return CheckResult(
                    "Exercise 2",
                    "wrong",
                    f"with seed {seed} the doctor still finds {', '.join(diagnosis.codes)}. Start with {worst.code}:"
                    f" {worst.fix}",
                )
        return CheckResult(
            "Exercise 2", "correct", "Healthy for three seeds: the init suits the activation at this depth."
        )

    return _run("Exercise 2", attempt)
