"""course_utils.curvature against torch.autograd.functional.hessian, numpy and torch.optim."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.curvature import (
    HessianVectorProduct,
    best_fixed_steps,
    condition_number,
    descend_quadratic,
    diagonally_rescaled_condition_number,
    hessian,
    measured_step_limit,
    model_loss,
    mse_hessian,
    mse_minimizer,
    per_example_sgd,
    probe_step_limit,
    top_eigenvalues,
    two_feature_hessian,
)


def small_regression() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1], dtype=torch.float64) + 2
    y = x @ torch.tensor([0.5, -0.2, 3.0], dtype=torch.float64) + 0.1 * torch.randn(
        64, generator=g, dtype=torch.float64
    )
    return x, y


def test_hessian_matches_autograd_functional_on_a_small_network() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x = torch.randn(20, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (20,))
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]

    def loss_of(*flat: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(
            torch.func.functional_call(model, dict(zip(names, flat, strict=True)), (x,)), y
        )

    blocks = torch.autograd.functional.hessian(loss_of, tuple(p.detach() for p in params))
    sizes = [p.numel() for p in params]
    reference = torch.cat(
        [
            torch.cat([blocks[i][j].reshape(sizes[i], sizes[j]) for j in range(len(params))], 1)
            for i in range(len(params))
        ],
        0,
    )
    ours = hessian(lambda: nn.functional.cross_entropy(model(x), y), params)
    assert ours.shape == (sum(sizes), sum(sizes))
    torch.testing.assert_close(ours, reference, rtol=1e-9, atol=1e-12)


def test_mse_hessian_closed_form_equals_autograd_and_does_not_depend_on_the_weights() -> None:
    x, y = small_regression()
    layer = nn.Linear(3, 1).double()
    loss = model_loss(layer, x, y, loss="mse")
    closed_form = mse_hessian(x)
    np.testing.assert_allclose(hessian(loss, [layer.weight, layer.bias]).numpy(), closed_form, rtol=1e-10)
    with torch.no_grad():
        layer.weight.add_(5.0)
    np.testing.assert_allclose(hessian(loss, [layer.weight, layer.bias]).numpy(), closed_form, rtol=1e-10)
    solution = mse_minimizer(x, y)
    np.testing.assert_allclose(solution[:3], [0.5, -0.2, 3.0], atol=0.1)


def test_top_eigenvalues_match_numpy() -> None:
    x, y = small_regression()
    layer = nn.Linear(3, 1).double()
    loss = model_loss(layer, x, y, loss="mse")
    exact = np.sort(np.linalg.eigvalsh(mse_hessian(x)))[::-1]
    found = top_eigenvalues(loss, [layer.weight, layer.bias], k=2, iterations=2000, tolerance=1e-12)
    np.testing.assert_allclose(found.numpy(), exact[:2], rtol=1e-6)
    assert condition_number(mse_hessian(x)) == pytest.approx(exact[0] / exact[-1])
    assert condition_number(torch.tensor(exact.copy())) == pytest.approx(exact[0] / exact[-1])


def test_top_eigenvalue_of_a_bigger_model_by_products_only() -> None:
    torch.manual_seed(1)
    x = torch.randn(500, 40, dtype=torch.float64) * 3
    y = torch.randint(0, 5, (500,))
    layer = nn.Linear(40, 5).double()
    loss = model_loss(layer, x, y)
    exact = np.linalg.eigvalsh(hessian(loss, [layer.weight, layer.bias]).numpy())
    found = top_eigenvalues(loss, list(layer.parameters()), k=3, iterations=3000, tolerance=1e-12)
    np.testing.assert_allclose(found.numpy(), np.sort(exact)[::-1][:3], rtol=1e-5)


def test_hessian_vector_product_is_h_times_v() -> None:
    x, y = small_regression()
    layer = nn.Linear(3, 1).double()
    hvp = HessianVectorProduct(lambda: nn.functional.mse_loss(layer(x).squeeze(1), y), [layer.weight, layer.bias])
    v = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    np.testing.assert_allclose(hvp(v).numpy(), mse_hessian(x) @ v.numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="flat vector of 4"):
        hvp(torch.zeros(3))


def test_bad_input_gets_a_clear_error() -> None:
    with pytest.raises(ValueError, match="requires_grad"):
        hessian(lambda: torch.tensor(1.0), [torch.zeros(2)])
    big = torch.zeros(5000, requires_grad=True)
    with pytest.raises(ValueError, match="top_eigenvalues"):
        hessian(lambda: (big**2).sum(), [big])
    with pytest.raises(ValueError, match="negative"):
        condition_number(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    assert condition_number(torch.tensor([2.0, 0.0])) == math.inf
    with pytest.raises(ValueError, match="2x2"):
        descend_quadratic(np.eye(3), [1.0, 1.0], lr=0.1, steps=3)


def test_gradient_descent_threshold_and_rate_on_a_quadratic() -> None:
    h = np.diag([10.0, 0.1])
    stable = descend_quadratic(h, [1.0, 1.0], lr=0.99 * 2 / 10, steps=5000)
    unstable = descend_quadratic(h, [1.0, 1.0], lr=1.01 * 2 / 10, steps=5000)
    assert not stable.diverged and stable.losses[-1] < 1e-12 * stable.losses[0]
    assert unstable.diverged and unstable.steps < 5000
    kappa = 100.0
    best = descend_quadratic(h, [1.0, 1.0], lr=2 / (10 + 0.1), steps=1000)
    assert best.contraction_rate() == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-9)
    assert best.steps_to(1e-6) is not None and best.steps_to(1e-30) is None


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_descent_follows_torch_optim_step_by_step(optimizer: str) -> None:
    h = np.array([[3.0, 1.2], [1.2, 0.8]])
    w_star = np.array([0.5, -1.0])
    path = descend_quadratic(h, [2.0, 2.0], lr=0.05, steps=40, minimum=w_star, optimizer=optimizer)  # type: ignore[arg-type]
    w = torch.tensor([2.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt = (
        torch.optim.Adam([w], lr=0.05)
        if optimizer == "adam"
        else torch.optim.SGD([w], lr=0.05, momentum=0.9 if optimizer == "momentum" else 0.0)
    )
    ht, target = torch.tensor(h), torch.tensor(w_star)
    for step in range(40):
        opt.zero_grad()
        (0.5 * (w - target) @ ht @ (w - target)).backward()
        opt.step()
        np.testing.assert_allclose(path.points[step + 1], w.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_model_loss_is_the_full_batch_loss_and_binds_its_model() -> None:
    torch.manual_seed(0)
    x, labels, targets = torch.randn(20, 3), torch.randint(0, 4, (20,)), torch.randn(20)
    closures = []
    for _ in range(2):  # closures made in a loop must not all see the last model
        model = nn.Linear(3, 4)
        closures.append((model, model_loss(model, x, labels)))
    for model, closure in closures:
        assert closure().item() == pytest.approx(nn.functional.cross_entropy(model(x), labels).item())
    regression = nn.Linear(3, 1)
    assert model_loss(regression, x, targets, loss="mse")().item() == pytest.approx(
        ((regression(x).squeeze(1) - targets) ** 2).mean().item()
    )
    with pytest.raises(ValueError, match="cross_entropy"):
        model_loss(regression, x, targets, loss="hinge")


def test_two_feature_hessian_is_twice_the_covariance() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 200_000, generator=g, dtype=torch.float64)
    scale, rho = 3.0, 0.6
    features = torch.stack([a, scale * (rho * a + math.sqrt(1 - rho**2) * b)], dim=1)
    empirical = mse_hessian(features - features.mean(dim=0), bias=False)
    assert np.allclose(two_feature_hessian(scale, rho), empirical, rtol=0.02, atol=0.03)
    with pytest.raises(ValueError, match="correlation"):
        two_feature_hessian(1.0, 1.0)


def test_best_fixed_steps_match_the_classical_rates() -> None:
    h = np.diag([8.0, 2.0])  # κ = 4
    steps = best_fixed_steps(h)
    assert steps.gd_lr == pytest.approx(0.2)
    assert steps.momentum == pytest.approx(((2 - 1) / (2 + 1)) ** 2)
    assert steps.momentum_lr == pytest.approx(4 / (math.sqrt(8) + math.sqrt(2)) ** 2)
    # At the best fixed step GD contracts by (κ−1)/(κ+1) per step, and no other step does better.
    gd = descend_quadratic(h, [1.0, 1.0], lr=steps.gd_lr, steps=50)
    assert gd.contraction_rate() == pytest.approx(3 / 5, rel=1e-6)
    assert descend_quadratic(h, [1.0, 1.0], lr=0.9 * steps.gd_lr, steps=50).contraction_rate() > 3 / 5
    with pytest.raises(ValueError, match="positive definite"):
        best_fixed_steps(np.diag([1.0, 0.0]))


def test_diagonal_rescaling_rounds_an_axis_ravine_but_not_a_diagonal_one() -> None:
    assert diagonally_rescaled_condition_number(two_feature_hessian(10.0, 0.0)) == pytest.approx(1.0)
    rotated = two_feature_hessian(1.0, 0.98)
    assert diagonally_rescaled_condition_number(rotated) == pytest.approx(condition_number(rotated))
    # By hand: D H D is the correlation matrix, κ = (1 + ρ)/(1 − ρ) whatever the scale.
    assert diagonally_rescaled_condition_number(two_feature_hessian(7.0, 0.5)) == pytest.approx(1.5 / 0.5)
    with pytest.raises(ValueError, match="positive diagonal"):
        diagonally_rescaled_condition_number(np.diag([1.0, 0.0]))


def test_measured_step_limit_finds_two_over_lambda_max_by_running() -> None:
    g = np.random.default_rng(3)
    for size in (2, 3, 5):
        a = g.normal(size=(size, size))
        h = a @ a.T + 0.1 * np.eye(size)
        assert measured_step_limit(h, relative_precision=1e-3) == pytest.approx(
            2 / np.linalg.eigvalsh(h).max(), rel=3e-3
        )
    # By hand: 10, 20, 30, 40 with a bias gives H = 2·[[750, 25], [25, 1]], λmax = 751 + √(749² + 625)
    by_hand = 2 / (751 + math.sqrt(749**2 + 625))
    assert measured_step_limit(mse_hessian(np.array([10.0, 20.0, 30.0, 40.0]))) == pytest.approx(by_hand, rel=2e-2)
    assert measured_step_limit(np.diag([4.0, 1.0])) <= 0.5  # it returns a rate that survived, never above
    with pytest.raises(ValueError, match="positive diagonal"):
        measured_step_limit(np.diag([1.0, 0.0]))


def test_per_example_sgd_follows_torch_sgd_with_batch_size_one() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(30, 2, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -1.0], dtype=torch.float64)
    steps = per_example_sgd(x, y, start=[0.0, 0.0], lr=0.3)
    layer = nn.Linear(2, 1, bias=False).double()
    nn.init.zeros_(layer.weight)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.3)
    for i in range(30):
        optimizer.zero_grad()
        ((layer(x[i : i + 1]).squeeze() - y[i]) ** 2).backward()
        np.testing.assert_allclose(steps.gradients[i], layer.weight.grad.numpy()[0], rtol=1e-12)  # type: ignore[union-attr]
        optimizer.step()
        np.testing.assert_allclose(steps.path.points[i + 1], layer.weight.detach().numpy()[0], rtol=1e-12, atol=1e-15)
    # The path's losses are the mean loss above its minimum: the targets are exact, so the minimum is (1, -1).
    np.testing.assert_allclose(steps.path.minimum, [1.0, -1.0], atol=1e-12)
    mean_loss = ((x @ torch.tensor(steps.path.points[5]) - y) ** 2).mean().item()
    assert steps.path.losses[5] == pytest.approx(mean_loss, rel=1e-9)
    # Positive inputs: every step's two components share the error's sign; the first step moves both up.
    assert steps.same_sign_share() == 1.0 and (steps.gradients[0] < 0).all()


def test_same_sign_share_counts_by_hand() -> None:
    x = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [1.0, 0.0], [2.0, 2.0]])
    # From w = 0 with targets 1, 1, 1, 1, 0 and a tiny lr the errors are all about -1 (then 0 for the last):
    steps = per_example_sgd(x, np.array([1.0, 1.0, 1.0, 1.0, 0.0]), start=[0.0, 0.0], lr=1e-9)
    # gradients ≈ -2x: same sign, mixed, same sign, a zero component (not counted as same), and for the
    # last example (target 0, error tiny but not zero) same sign again. By hand: 3 of 5.
    assert steps.same_sign_share() == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="non-zero"):
        per_example_sgd(np.ones((2, 2)), np.zeros(2), start=[0.0, 0.0], lr=0.1).same_sign_share()
    with pytest.raises(ValueError, match="examples"):
        per_example_sgd(np.ones((3, 2)), np.zeros(2), start=[0.0, 0.0], lr=0.1)


def test_probe_step_limit_on_linear_regression_matches_the_closed_form() -> None:
    x, y = small_regression()

    def regression() -> nn.Module:
        torch.manual_seed(0)
        return nn.Linear(3, 1).double()

    probe = probe_step_limit(regression, x, y, fractions=(0.9, 1.1), steps=300)
    lambda_max = np.linalg.eigvalsh(mse_hessian(x)).max()
    assert probe.lambda_max == pytest.approx(lambda_max, rel=1e-3)
    # One layer is both the first and the last: the ratio and the share are 1 by definition.
    assert probe.first_to_last_gradient == pytest.approx(1.0) and probe.last_layer_share == pytest.approx(1.0)
    # MSE is exactly quadratic: below 2/λmax the loss never rises above its start, above it it climbs.
    assert probe.peak_loss[0.9] == pytest.approx(1.0) and probe.peak_loss[1.1] > 10


def test_probe_step_limit_reads_the_first_and_last_layers() -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, 4, generator=g), torch.randn(50, generator=g)

    def net() -> nn.Module:
        torch.manual_seed(2)
        return nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 1))

    probe = probe_step_limit(net, x, y, fractions=(0.5,), steps=5)
    model = net()
    loss = model_loss(model, x, y, loss="mse")
    first, last = torch.autograd.grad(loss(), [model[0].weight, model[2].weight])
    assert probe.first_to_last_gradient == pytest.approx((first.norm() / last.norm()).item(), rel=1e-5)
    full = np.linalg.eigvalsh(hessian(loss, list(model.parameters())).double().numpy()).max()
    last_block = np.linalg.eigvalsh(hessian(loss, list(model[2].parameters())).double().numpy()).max()
    assert probe.lambda_max == pytest.approx(full, rel=1e-2)
    assert probe.last_layer_share == pytest.approx(last_block / full, rel=2e-2)
    assert list(probe.peak_loss) == [0.5]
    with pytest.raises(ValueError, match="nn.Linear"):
        probe_step_limit(lambda: nn.Sequential(nn.Identity()), x, y)
