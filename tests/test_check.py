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
from course_utils.models import mlp

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


# The checks of "write this function" exercises; check_prediction and check_choice compare a guess.
FUNCTION_CHECKS = [n for n in dir(check) if n.startswith("check_") and n not in {"check_prediction", "check_choice"}]


def stub(*_: object) -> object:
    raise NotImplementedError


@pytest.mark.parametrize("name", FUNCTION_CHECKS)
def test_every_check_says_not_attempted_for_the_stub(name: str) -> None:
    result = getattr(check, name)(stub)
    assert result.status == "not attempted" and not result.passed
    assert "NotImplementedError" in result.message


@pytest.mark.parametrize("name", FUNCTION_CHECKS)
def test_every_check_turns_a_crash_into_a_hint(name: str) -> None:
    def broken(*_: object) -> object:
        return 1 / 0

    result = getattr(check, name)(broken)
    assert result.status == "wrong" and "ZeroDivisionError" in result.message


def test_wrong_answers_get_specific_hints() -> None:
    sample_std = check.check_pixel_statistics(lambda x: (x.float().mean(0), x.float().std(0)))
    assert sample_std.status == "wrong" and "correction=0" in sample_std.message
    leaky = check.check_standardize(
        lambda a, b: ((a - a.mean(0)) / a.std(0, correction=0), (b - b.mean(0)) / b.std(0, correction=0))
    )
    assert leaky.status == "wrong" and "training mean" in leaky.message


def test_notebook_02_checks_name_the_usual_mistakes() -> None:
    tanh_edge = check.check_sigmoid_flat_beyond(lambda t: math.atanh(math.sqrt(1 - t)))
    assert tanh_edge.status == "wrong" and "tanh" in tanh_edge.message


def test_every_check_has_a_solution_in_a_notebook() -> None:
    solved = {re.search(r"(check_\w+)\(", code).group(1) for _, code in solutions()}  # type: ignore[union-attr]
    assert solved == set(FUNCTION_CHECKS)


@pytest.mark.parametrize(("where", "code"), solutions(), ids=[w for w, _ in solutions()])
def test_notebook_solution_passes_its_check(where: str, code: str) -> None:
    # As in the notebooks: math, torch, mlp and the check functions are already imported there.
    namespace: dict[str, object] = {"math": math, "torch": torch, "mlp": mlp}
    namespace.update({n: getattr(check, n) for n in dir(check) if n.startswith("check_")})
    exec(compile(code, where, "exec"), namespace)  # the block defines the function and checks it
    check_name, function_name = re.search(r"(check_\w+)\((\w+)\)", code).groups()  # type: ignore[union-attr]
    result = getattr(check, check_name)(namespace[function_name])
    assert result.passed, str(result)


def test_notebook_03_to_05_checks_name_the_usual_mistakes() -> None:
    def pca_whiten(x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(0)
        values, vectors = torch.linalg.eigh(centred.T @ centred / len(x))
        return centred @ vectors / values.sqrt()

    rotated = check.check_zca_whiten(pca_whiten)
    assert rotated.status == "wrong" and "PCA" in rotated.message
    standardized = check.check_zca_whiten(lambda x: (x - x.mean(0)) / x.std(0, correction=0))
    assert standardized.status == "wrong" and "correlated" in standardized.message
    sample = check.check_zca_whiten(
        lambda x: (x - x.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(x.T))).T
    )  # a whitening with the N - 1 covariance (Cholesky, not ZCA): the covariance check speaks first
    assert sample.status == "wrong" and "correction=0" in sample.message
    uncentred = check.check_zca_whiten(lambda x: x / x.std(0))
    assert uncentred.status == "wrong" and "mean" in uncentred.message
    relu_std = check.check_leaky_relu_std(lambda n, a: math.sqrt(2 / n))
    assert relu_std.status == "wrong" and "ReLU's" in relu_std.message
    unsquared = check.check_leaky_relu_std(lambda n, a: math.sqrt(2 / ((1 + a) * n)))
    assert unsquared.status == "wrong" and "1 + a²" in unsquared.message
    # PyTorch's own gain for leaky ReLU, an independent statement of the same condition, passes.
    pytorch_gain = check.check_leaky_relu_std(lambda n, a: torch.nn.init.calculate_gain("leaky_relu", a) / math.sqrt(n))
    assert pytorch_gain.passed, str(pytorch_gain)
    per_pixel = check.check_batch_norm_2d(
        lambda x, g, b, e: (
            g[:, None, None] * (x - x.mean(0)) / torch.sqrt(x.var(0, correction=0) + e) + b[:, None, None]
        )
    )
    assert per_pixel.status == "wrong" and "(0, 2, 3)" in per_pixel.message
    keras = check.check_batches_to_forget(lambda m, f: math.ceil(math.log(f) / math.log(m)))
    assert keras.status == "wrong" and "Keras" in keras.message
    unrounded = check.check_batches_to_forget(lambda m, f: math.log(f) / math.log(1 - m))
    assert unrounded.status == "wrong" and "round up" in unrounded.message
    identity = check.check_fold_batch_norm(lambda linear, norm: linear)
    assert identity.status == "wrong" and "running_var" in identity.message


def test_check_prediction_says_how_far_off_by_ratio() -> None:
    from course_utils.check import check_prediction

    why = "the best rate falls with the square of the scale."
    assert check_prediction("lr", None, 1e-3, why=why, factor=3).status == "not attempted"
    right = check_prediction("lr", 2e-3, 1e-3, why=why, factor=3)
    assert right.passed and "within a factor of 2" in right.message and why in right.message
    wrong = check_prediction("lr", 0.1, 1e-3, why=why, factor=3)
    assert wrong.status == "wrong" and "factor of 1e+02 (too high)" in wrong.message
    assert check_prediction("lr", -1.0, 1e-3, why=why, factor=3).status == "wrong"
    assert check_prediction("lr", "soon", 1e-3, why=why, factor=3).status == "wrong"  # never raises


def test_check_prediction_says_how_far_off_by_difference() -> None:
    from course_utils.check import check_prediction

    right = check_prediction("acc", 0.82, 0.85, why="", tolerance=0.05)
    assert right.passed and "0.03 away" in right.message
    wrong = check_prediction("acc", 0.5, 0.85, why="", tolerance=0.05)
    assert not wrong.passed and "(too low)" in wrong.message


def test_check_prediction_refuses_an_unclear_comparison() -> None:
    from course_utils.check import check_prediction

    with pytest.raises(ValueError, match="exactly one"):
        check_prediction("x", 1.0, 1.0, why="", factor=2, tolerance=0.1)
    with pytest.raises(ValueError, match="exactly one"):
        check_prediction("x", 1.0, 1.0, why="")
    with pytest.raises(ValueError, match="positive"):
        check_prediction("x", 1.0, -1.0, why="", factor=2)


def test_check_choice() -> None:
    from course_utils.check import check_choice

    options = ("[0, 1]", "[-1, 1]")
    assert check_choice("range", None, "[-1, 1]", options, why="").status == "not attempted"
    assert check_choice("range", "[-1, 1]", "[-1, 1]", options, why="centred").passed
    assert "choose one of" in check_choice("range", "both", "[-1, 1]", options, why="").message.lower()
    assert check_choice("range", "[0, 1]", "[-1, 1]", options, why="").status == "wrong"
    with pytest.raises(ValueError, match="not one of the options"):
        check_choice("range", "[0, 1]", "[0, 2]", options, why="")


def test_notebook_06_check_names_the_finding_to_fix_first() -> None:
    deep_sigmoid = check.check_healthy_model(lambda: mlp(30, [64] * 6, 2, "sigmoid"))
    assert deep_sigmoid.status == "wrong" and "gradients_vanish" in deep_sigmoid.message
    wrong_shape = check.check_healthy_model(lambda: mlp(30, [64], 10, "relu", "kaiming_normal"))
    assert wrong_shape.status == "wrong" and "(4, 2)" in wrong_shape.message
