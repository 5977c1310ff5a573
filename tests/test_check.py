"""The exercise checks: "not attempted" for stubs, a hint when wrong, "correct" for solutions.

The solutions themselves live once, in the notebooks' collapsed <details> blocks; this file runs
each of them through its check, so a solution and its check cannot drift apart.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from course_utils import check

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def solutions() -> list[tuple[str, str]]:
    found = []
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] == "markdown" and "<details>" in text:
                for block in re.findall(r"```python\n(.*?)```", text, re.S):
                    found.append((f"{path.stem}:{block.split('(')[0][4:]}", block))
    return found


def stub(*_: object) -> object:
    raise NotImplementedError


@pytest.mark.parametrize("name", [n for n in dir(check) if n.startswith("check_")])
def test_every_check_says_not_attempted_for_the_stub(name: str) -> None:
    result = getattr(check, name)(stub)
    assert result.status == "not attempted" and not result.passed
    assert "NotImplementedError" in result.message


@pytest.mark.parametrize("name", [n for n in dir(check) if n.startswith("check_")])
def test_every_check_turns_a_crash_into_a_hint(name: str) -> None:
    def broken(*_: object) -> object:
        return 1 / 0

    result = getattr(check, name)(broken)
    assert result.status == "wrong" and "ZeroDivisionError" in result.message


def test_wrong_answers_get_specific_hints() -> None:
    sample_std = check.check_pixel_statistics(lambda x: (x.float().mean(0), x.float().std(0)))
    assert sample_std.status == "wrong" and "correction=0" in sample_std.message
    half_right = check.check_equivalent_learning_rate(lambda lr, s: lr / s)
    assert half_right.status == "wrong" and "twice" in half_right.message
    leaky = check.check_standardize(
        lambda a, b: ((a - a.mean(0)) / a.std(0, correction=0), (b - b.mean(0)) / b.std(0, correction=0))
    )
    assert leaky.status == "wrong" and "training mean" in leaky.message


def test_notebook_02_checks_name_the_usual_mistakes() -> None:
    tanh_edge = check.check_sigmoid_flat_beyond(lambda t: math.atanh(math.sqrt(1 - t)))
    assert tanh_edge.status == "wrong" and "tanh" in tanh_edge.message
    any_instead_of_all = check.check_dead_units(lambda z: (z <= 0).any(dim=0))
    assert any_instead_of_all.status == "wrong" and "every" in any_instead_of_all.message
    strict = check.check_dead_units(lambda z: (z < 0).all(dim=0))
    assert strict.status == "wrong" and "z = 0" in strict.message
    no_bias = check.check_predicted_preactivation_std(lambda x: math.sqrt((x * x).mean().item() / 3))
    assert no_bias.status == "wrong" and "bias" in no_bias.message
    variance = check.check_predicted_preactivation_std(lambda x: math.sqrt((x.var().item() + 1 / x.shape[1]) / 3))
    assert variance.status == "wrong" and "mean of x²" in variance.message


def test_every_check_has_a_solution_in_a_notebook() -> None:
    solved = {re.search(r"(check_\w+)\(", code).group(1) for _, code in solutions()}  # type: ignore[union-attr]
    assert solved == {n for n in dir(check) if n.startswith("check_")}


@pytest.mark.parametrize(("where", "code"), solutions(), ids=[w for w, _ in solutions()])
def test_notebook_solution_passes_its_check(where: str, code: str) -> None:
    # As in the notebooks: math, torch and the check functions are already imported there.
    namespace: dict[str, object] = {"math": math, "torch": torch}
    namespace.update({n: getattr(check, n) for n in dir(check) if n.startswith("check_")})
    exec(compile(code, where, "exec"), namespace)  # the block defines the function and checks it
    check_name, function_name = re.search(r"(check_\w+)\((\w+)\)", code).groups()  # type: ignore[union-attr]
    result = getattr(check, check_name)(namespace[function_name])
    assert result.passed, str(result)


def test_notebook_03_to_05_checks_name_the_usual_mistakes() -> None:
    half = check.check_largest_stable_lr(lambda h: 1 / torch.linalg.eigvalsh(h).max().item())
    assert half.status == "wrong" and "twice" in half.message
    diagonal = check.check_largest_stable_lr(lambda h: 2 / h.diagonal().max().item())
    assert diagonal.status == "wrong" and "eigenvalues" in diagonal.message
    signed = check.check_standardized_condition_number(lambda r: (1 + r) / (1 - r))
    assert signed.status == "wrong" and "|ρ|" in signed.message
    halved = check.check_mse_hessian_with_bias(
        lambda x: (
            torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1).T
            @ torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
            / len(x)
        )
    )
    assert halved.status == "wrong" and "factor 2" in halved.message
    default_bound = check.check_default_init_variance(lambda n: 1 / n)
    assert default_bound.status == "wrong" and "a²/3" in default_bound.message
    variance = check.check_kaiming_std(lambda n: 2 / n)
    assert variance.status == "wrong" and "square root" in variance.message
    unbiased = check.check_batch_norm_forward(
        lambda x, g, b, e: g * (x - x.mean(0)) / torch.sqrt(x.var(0, correction=1) + e) + b
    )
    assert unbiased.status == "wrong" and "biased" in unbiased.message
    keras = check.check_update_running_var(lambda r, x, m: m * r + (1 - m) * x.var(0, correction=1))
    assert keras.status == "wrong" and "Keras" in keras.message
    identity = check.check_fold_batch_norm(lambda linear, norm: linear)
    assert identity.status == "wrong" and "running_var" in identity.message
