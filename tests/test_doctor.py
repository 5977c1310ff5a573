"""The doctor on cases the course measured: each code triggered where it must be and silent where it
must not, the model left exactly as it was, and the learning-rate range test on a separable problem."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from torch import Tensor, nn

from course_utils.doctor import (
    SECTION_LINKS,
    Diagnosis,
    DiagnosisTable,
    Finding,
    diagnose,
    input_statistics,
    suggest_learning_rate,
)
from course_utils.models import mlp, scale_weights_

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Every tensor here is tiny: on a busy 2-core machine a second thread only waits for the first
    (the default sweep took 9-16 s on two threads beside another job, 0.2 s on one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------- data


def standardized(rows: int = 512, features: int = 20, seed: int = 0) -> Tensor:
    return torch.randn(rows, features, generator=torch.Generator().manual_seed(seed))


def labels(rows: int = 512, classes: int = 3, seed: int = 0) -> Tensor:
    return torch.randint(0, classes, (rows,), generator=torch.Generator().manual_seed(seed + 100))


def raw_pixels(rows: int = 300) -> Tensor:
    """Fashion-MNIST-like images [N, 28, 28], as floats in 0-255: about half the pixels 0 (00 measured
    50 %), the rest spread over the range."""
    g = torch.Generator().manual_seed(2)
    values = torch.randint(0, 256, (rows, 28, 28), generator=g).float()
    return values * (torch.rand(rows, 28, 28, generator=g) < 0.5)


def breast_cancer() -> tuple[Tensor, Tensor]:
    bunch = load_breast_cancer()
    return torch.as_tensor(bunch.data, dtype=torch.float32), torch.as_tensor(bunch.target)


def zscore_columns(x: Tensor) -> Tensor:
    return (x - x.mean(dim=0)) / x.std(dim=0)


def built(make: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return make()


def kaiming_relu(features: int = 20, depth: int = 3, seed: int = 0) -> nn.Module:
    return built(partial(mlp, features, [64] * depth, 3, init="kaiming_normal"), seed)


def serious(diagnosis: Diagnosis) -> list[str]:
    return [f"{f.severity} {f.code}: {f.message}" for f in diagnosis if f.severity != "info"]


# ---------------------------------------------------------------------------------------- healthy


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_targets", [False, True])
def test_standardized_inputs_through_a_kaiming_relu_mlp_get_no_warning(seed: int, with_targets: bool) -> None:
    x = standardized(seed=seed)
    diagnosis = diagnose(kaiming_relu(seed=seed), x, labels(seed=seed) if with_targets else None)
    assert diagnosis.healthy, serious(diagnosis)
    assert diagnosis.worst is None and len(diagnosis) == 0 and diagnosis.with_gradients == with_targets


def test_a_deep_kaiming_relu_mlp_is_healthy_too() -> None:
    # Deep ReLU networks gather a few dead units per layer even when well initialized.
    diagnosis = diagnose(kaiming_relu(depth=10), standardized(), labels())
    assert diagnosis.healthy, serious(diagnosis)


# ---------------------------------------------------------------------------------------- inputs


def test_raw_pixels_are_not_scaled_and_not_centred() -> None:
    model = built(partial(mlp, 784, [32], 10))
    diagnosis = diagnose(model, raw_pixels())
    scale = diagnosis.finding("inputs_not_scaled")
    assert scale.severity == "problem" and scale.evidence["input RMS"] > 50
    assert "notebook 01 §2" in scale.fix and "02 §2" in scale.sections
    assert "inputs_not_centred" in diagnosis.codes
    scaled = diagnose(model, raw_pixels() / 255)
    assert "inputs_not_scaled" not in scaled.codes
    assert "inputs_not_centred" in scaled.codes  # /255 pixels sit 0.8 spreads from 0 (03 §4)


def test_tiny_inputs_are_not_scaled_either() -> None:
    tiny = diagnose(kaiming_relu(), standardized() * 1e-3).finding("inputs_not_scaled")
    assert tiny.severity == "warning" and "04 §4" in tiny.fix


def test_moderately_large_inputs_are_a_warning() -> None:
    assert diagnose(kaiming_relu(), standardized() * 8).finding("inputs_not_scaled").severity == "warning"
    assert "inputs_not_scaled" not in diagnose(kaiming_relu(), standardized() * 2).codes  # 02 §7: 0-5 is fine


def test_centring_is_judged_per_feature_for_tables_and_per_channel_for_images() -> None:
    shifted = standardized() + torch.linspace(-3, 3, 20)  # each feature off centre, the global mean 0
    assert "inputs_not_centred" in diagnose(kaiming_relu(), shifted).codes
    images = raw_pixels(64).unsqueeze(1) / 255  # [N, 1, 28, 28]
    stats = input_statistics(images)
    assert stats.feature_kind == "channel" and stats.feature_std.shape == (1,)
    centred = (images - images.mean()) / images.std()
    assert input_statistics(centred).offset_ratio < 1e-6


def test_breast_cancer_features_differ_in_scale() -> None:
    x, y = breast_cancer()
    found = diagnose(built(partial(mlp, 30, [32], 2)), x, y).finding("feature_scales_differ")
    assert found.severity == "problem" and found.evidence["largest / smallest std"] > 1e5
    assert "notebook 01 §9" in found.fix
    standardized_diagnosis = diagnose(built(partial(mlp, 30, [32], 2, init="kaiming_normal")), zscore_columns(x), y)
    assert standardized_diagnosis.healthy, serious(standardized_diagnosis)


def test_features_thirty_times_apart_are_a_warning() -> None:
    x = standardized() * torch.tensor([30.0] + [1.0] * 19)
    found = diagnose(kaiming_relu(), x).finding("feature_scales_differ")
    assert found.severity == "warning" and 25 < found.evidence["largest / smallest std"] < 40


def test_a_constant_column_is_found() -> None:
    x = standardized()
    x[:, 7] = 3.0
    found = diagnose(kaiming_relu(), x).finding("constant_features")
    assert found.evidence["constant features"] == 1 and "(7)" in found.message
    assert "constant_features" not in diagnose(kaiming_relu(), standardized()).codes
    # A constant feature is no spread at all, not the smallest spread.
    assert "feature_scales_differ" not in diagnose(kaiming_relu(), x).codes


def test_input_statistics_use_every_row_in_chunks() -> None:
    x = standardized(rows=1000) * 3 + 1
    whole, chunked = input_statistics(x), input_statistics(x, chunk_rows=7)
    assert math.isclose(whole.rms, float((x.double() ** 2).mean().sqrt()), rel_tol=1e-9)
    assert np.allclose(whole.feature_std, chunked.feature_std) and whole.examples == 1000
    assert np.allclose(whole.feature_std, x.double().std(dim=0, correction=0).numpy())


def test_a_first_normalization_layer_makes_input_findings_information() -> None:
    model = built(partial(mlp, 784, [32], 10, input_batch_norm=True))
    diagnosis = diagnose(model, raw_pixels(), labels(300, 10))
    scale = diagnosis.finding("inputs_not_scaled")
    assert scale.severity == "info" and "05 §2" in scale.message
    assert diagnosis.healthy, serious(diagnosis)


# ---------------------------------------------------------------------------------------- activations


def test_a_tanh_net_on_raw_pixels_saturates_its_first_layer() -> None:
    model = built(partial(mlp, 784, [32], 10, "tanh"))
    found = diagnose(model, raw_pixels()).finding("saturated_units")
    assert found.severity == "problem" and "02 §2" in found.sections
    assert next(iter(found.evidence.values())) > 0.9  # 02 §2 measured 0.96
    assert "saturated_units" not in diagnose(model, raw_pixels() / 255).codes


def test_saturation_deep_inside_is_blamed_on_the_init() -> None:
    model = built(partial(mlp, 20, [64] * 4, 3, "tanh", "normal", init_std=1.0))
    found = diagnose(model, standardized()).finding("saturated_units")
    assert found.severity == "problem" and found.sections == ("04 §3",)


def test_a_relu_layer_with_a_very_negative_bias_is_dead() -> None:
    model = kaiming_relu()
    with torch.no_grad():
        model[3].bias.fill_(-100.0)  # the second hidden Linear: its ReLU never fires
    found = diagnose(model, standardized()).finding("dead_units")
    assert found.severity == "problem" and "every unit of relu '4'" in found.message.lower()
    assert "notebook 02 §6" in found.fix


def test_half_dead_first_layer_is_a_problem_and_a_few_dead_units_are_not() -> None:
    model = kaiming_relu(depth=1)
    with torch.no_grad():
        model[1].bias[:40] = -100.0  # 40 of 64 units
    assert diagnose(model, standardized()).finding("dead_units").severity == "problem"
    with torch.no_grad():
        model[1].bias[:] = 0.0
        model[1].bias[:9] = -100.0  # 14 %: above the 10 % warning line
    assert diagnose(model, standardized()).finding("dead_units").severity == "warning"
    with torch.no_grad():
        model[1].bias[:] = 0.0
        model[1].bias[:3] = -100.0  # 5 %
    assert "dead_units" not in diagnose(model, standardized()).codes


def test_no_activation_module_is_reported_as_information() -> None:
    class FunctionalRelu(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.second = nn.Linear(20, 16), nn.Linear(16, 3)

        def forward(self, x: Tensor) -> Tensor:
            return self.second(torch.relu(self.first(x)))

    diagnosis = diagnose(built(FunctionalRelu), standardized())
    assert diagnosis.codes == ("activations_not_found",) and diagnosis.healthy


# ---------------------------------------------------------------------------------------- depth


def test_a_deep_sigmoid_net_loses_its_signal_and_its_gradients() -> None:
    model = built(partial(mlp, 20, [64] * 10, 3, "sigmoid"))
    without_targets = diagnose(model, standardized())
    assert without_targets.finding("signal_shrinks").severity == "problem"
    assert not {"gradients_vanish", "gradients_explode"} & set(without_targets.codes)
    with_targets = diagnose(model, standardized(), labels())
    vanish = with_targets.finding("gradients_vanish")
    assert vanish.severity == "problem" and vanish.evidence["first / last"] < 1e-4
    assert "signal_shrinks" in with_targets.codes


def test_large_weights_make_the_relu_signal_grow() -> None:
    model = built(partial(mlp, 20, [64] * 6, 3, "relu", "normal", init_std=1.0))
    found = diagnose(model, standardized()).finding("signal_grows")
    assert found.evidence["last / first"] > 100 and "04 §3" in found.fix


def test_large_tanh_weights_make_gradients_grow_toward_the_input() -> None:
    model = built(partial(mlp, 20, [64] * 6, 3, "tanh", "normal", init_std=1.0))
    found = diagnose(model, standardized(), labels()).finding("gradients_explode")
    assert found.evidence["first / last"] > 10


def test_pytorchs_default_init_starves_a_deep_relu_net_but_not_a_shallow_one() -> None:
    deep = diagnose(built(partial(mlp, 20, [64] * 10, 3)), standardized(), labels())
    assert "signal_shrinks" in deep.codes  # 04 §1: ×0.41 per layer
    shallow = diagnose(built(partial(mlp, 20, [64] * 2, 3)), standardized(), labels())
    assert shallow.healthy, serious(shallow)


def test_kaiming_signal_is_scaled_up_without_growing() -> None:
    # Scaling every weight by 1.2 multiplies the signal by 1.2 per layer: 1.2⁵ = 2.5 over 6 layers.
    model = scale_weights_(kaiming_relu(depth=6), 1.2)
    assert not {"signal_grows", "signal_shrinks"} & set(diagnose(model, standardized()).codes)


# ---------------------------------------------------------------------------------------- batch norm


def bn_model(*, eval_mode: bool = False) -> nn.Module:
    model = built(partial(mlp, 20, [32], 3, init="kaiming_normal", batch_norm=True))
    return model.eval() if eval_mode else model


@pytest.mark.parametrize(("rows", "severity"), [(2, "problem"), (4, "warning")])
def test_batch_norm_on_a_tiny_batch_is_found(rows: int, severity: str) -> None:
    found = diagnose(bn_model(), standardized(rows), labels(rows)).finding("batchnorm_small_batch")
    assert found.severity == severity and found.evidence["batch size"] == rows
    assert "notebook 05 §7" in found.fix


def test_batch_norm_on_a_large_batch_or_in_eval_mode_is_fine() -> None:
    assert "batchnorm_small_batch" not in diagnose(bn_model(), standardized(256)).codes
    # In eval mode batch norm uses its running statistics: a tiny batch is harmless.
    assert "batchnorm_small_batch" not in diagnose(bn_model(eval_mode=True), standardized(4)).codes


def test_the_training_batch_size_is_checked_when_given() -> None:
    found = diagnose(bn_model(), standardized(256), batch_size=2).finding("batchnorm_small_batch")
    assert found.severity == "problem" and "training batches of 2" in found.message
    assert "batchnorm_small_batch" not in diagnose(bn_model(), standardized(256), batch_size=32).codes
    assert "batchnorm_small_batch" not in diagnose(kaiming_relu(), standardized(), batch_size=2).codes


def test_one_example_through_batch_norm_in_training_mode_says_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"single example.*model\.eval\(\)"):
        diagnose(bn_model(), standardized(1))


# ---------------------------------------------------------------------------------------- other models


class SmallCnn(nn.Module):
    """Conv2d → activation → pool, twice, then a linear head: not an nn.Sequential."""

    def __init__(self, activation: Callable[[], nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            activation(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1),
            activation(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(8 * 7 * 7, 10)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))


def test_a_cnn_is_diagnosed_like_an_mlp() -> None:
    images = raw_pixels(128).unsqueeze(1)
    centred = (images - images.mean()) / images.std()
    healthy = diagnose(built(SmallCnn), centred, labels(128, 10))
    assert healthy.healthy, serious(healthy)
    assert {s.module for s in healthy.layers} >= {"Conv2d", "ReLU", "Linear"}
    raw = diagnose(built(partial(SmallCnn, nn.Tanh)), images, labels(128, 10))
    assert {"inputs_not_scaled", "saturated_units"} <= set(raw.codes)


def test_float_targets_use_mean_squared_error() -> None:
    targets = torch.randn(512, 3, generator=torch.Generator().manual_seed(5))
    diagnosis = diagnose(kaiming_relu(), standardized(), targets)
    assert diagnosis.with_gradients and all(s.grad_norm is not None for s in diagnosis.layers if s.kind == "linear")


# ---------------------------------------------------------------------------------------- unchanged


class Everything(nn.Module):
    """Batch norm, dropout, a frozen layer, a submodule in a mode of its own, and hooks of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = nn.Linear(20, 32)
        self.frozen.requires_grad_(False)
        self.norm = nn.BatchNorm1d(32)
        self.block = nn.Sequential(nn.Tanh(), nn.Dropout(0.5), nn.Linear(32, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.block(self.norm(self.frozen(x))))


def snapshot(model: nn.Module) -> dict[str, object]:
    return {
        "parameters": {n: p.detach().clone() for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "modes": {n: m.training for n, m in model.named_modules()},
        "buffers": {n: b.clone() for n, b in model.named_buffers()},
        "hooks": {
            n: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for n, m in model.named_modules()
        },
        "rng": torch.get_rng_state(),
    }


def assert_same(before: dict[str, object], after: dict[str, object]) -> None:
    for key in ("requires_grad", "modes", "hooks"):
        assert before[key] == after[key], key
    for key in ("parameters", "buffers", "grads"):
        old, new = before[key], after[key]
        assert isinstance(old, dict) and isinstance(new, dict) and old.keys() == new.keys()
        for name in old:
            if old[name] is None or new[name] is None:
                assert old[name] is None and new[name] is None, f"{key} {name}"
            else:
                assert old[name].dtype == new[name].dtype and torch.equal(old[name], new[name]), f"{key} {name}"
    assert torch.equal(before["rng"], after["rng"])  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
@pytest.mark.parametrize("with_targets", [False, True])
def test_the_model_is_left_exactly_as_it_was(mode: str, with_targets: bool) -> None:
    model = built(Everything)
    model.train(mode != "eval")
    if mode == "mixed":
        model.block.eval()  # a submodule in eval mode inside a model in train mode
    model.head.weight.grad = torch.full_like(model.head.weight, 0.5)  # one .grad set, the others None
    model.register_forward_hook(lambda _m, _i, _o: None)  # the learner's own hook stays
    x = standardized(64)
    with torch.no_grad():  # running statistics that a forward pass in train mode would move
        model(x * 3 + 1)
    before = snapshot(model)
    diagnosis = diagnose(model, x, labels(64) if with_targets else None)
    assert_same(before, snapshot(model))
    assert diagnosis.layers and (not with_targets or diagnosis.layers[-1].grad_norm is not None)


def test_a_diagnosis_is_repeatable_and_samples_512_rows() -> None:
    x, y = standardized(2000), labels(2000)
    model = built(Everything)
    first, second = diagnose(model, x, y), diagnose(model, x, y)
    assert first.examples == 512 and first.total_examples == 2000
    assert first.layers == second.layers  # the same sample and the same dropout draws
    assert diagnose(model, x, y, sample_size=100).examples == 100


# ---------------------------------------------------------------------------------------- the Diagnosis


def test_a_diagnosis_lists_problems_first_and_reads_as_text_and_html() -> None:
    x, y = breast_cancer()
    diagnosis = diagnose(built(partial(mlp, 30, [32], 2, "tanh")), x, y)
    severities = [f.severity for f in diagnosis]
    assert severities == sorted(severities, key=["problem", "warning", "info"].index)
    assert diagnosis.worst is not None and diagnosis.worst.severity == "problem"
    assert list(diagnosis) == list(diagnosis.problems) + list(diagnosis.warnings)
    assert not diagnosis.healthy and diagnosis.codes == tuple(f.code for f in diagnosis)
    text = str(diagnosis)
    assert text.startswith("Diagnosis of 512 of 569 examples") and all(code in text for code in diagnosis.codes)
    assert "PROBLEM" in text and "fix:" in text
    page = diagnosis._repr_html_()
    assert page.count("<tr>") == len(diagnosis) + 1 and "02_saturation.ipynb#" in page
    with pytest.raises(KeyError, match="inputs_not_scaled"):
        diagnose(kaiming_relu(), standardized()).finding("inputs_not_scaled")


def test_html_is_escaped() -> None:
    finding = Finding("inputs_not_scaled", "warning", "a < b & c", "fix <it>", {"x<y": 1.0}, ("02 §2",))
    page = Diagnosis((finding,), examples=1, total_examples=1, with_gradients=False)._repr_html_()
    assert "a &lt; b &amp; c" in page and "fix &lt;it&gt;" in page and "x&lt;y" in page


def every_finding() -> list[Finding]:
    x, y = breast_cancer()
    constant = standardized()
    constant[:, 0] = 1.0
    cases = [
        diagnose(built(partial(mlp, 30, [32], 2)), x, y),
        diagnose(built(partial(mlp, 784, [32], 10, "tanh")), raw_pixels()),
        diagnose(kaiming_relu(), standardized() * 1e-3),
        diagnose(kaiming_relu(), constant),
        diagnose(built(partial(mlp, 20, [64] * 10, 3, "sigmoid")), standardized(), labels()),
        diagnose(built(partial(mlp, 20, [64] * 6, 3, "relu", "normal", init_std=1.0)), standardized()),
        diagnose(built(partial(mlp, 20, [64] * 6, 3, "tanh", "normal", init_std=1.0)), standardized(), labels()),
        diagnose(bn_model(), standardized(4)),
        diagnose(built(partial(mlp, 784, [32], 10, input_batch_norm=True)), raw_pixels()),
    ]
    return [f for diagnosis in cases for f in diagnosis]


def test_every_finding_has_numbers_a_one_sentence_fix_and_a_section_that_exists() -> None:
    findings = every_finding()
    assert {f.code for f in findings} >= {
        "inputs_not_scaled",
        "inputs_not_centred",
        "feature_scales_differ",
        "constant_features",
        "saturated_units",
        "dead_units",
        "signal_shrinks",
        "signal_grows",
        "gradients_vanish",
        "gradients_explode",
        "batchnorm_small_batch",
    }
    for f in findings:
        assert f.severity in ("info", "warning", "problem")
        assert f.evidence and all(math.isfinite(v) for v in f.evidence.values()), f
        assert re.search(r"\d", f.message), f"{f.code}: the message should quote a measurement"
        assert f.fix.endswith(".") and re.search(r"notebook \d\d §\d", f.fix), f.fix
        assert f.sections and all(s in SECTION_LINKS and s in f.fix for s in f.sections), f


def test_section_links_point_at_headings_that_exist() -> None:
    for key, link in SECTION_LINKS.items():
        notebook, anchor = link.split("#")
        cells = json.loads((NOTEBOOKS / notebook).read_text(encoding="utf-8"))["cells"]
        headings = {
            line.lstrip("#").strip().replace(" ", "-")
            for cell in cells
            if cell["cell_type"] == "markdown"
            for line in "".join(cell["source"]).splitlines()
            if line.startswith("#")
        }
        assert anchor in headings, f"{key}: no heading {anchor!r} in {notebook}"
        assert notebook.startswith(key[:2]) and anchor.startswith(key.split("§")[1] + "-")


# ---------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("arguments", "error", "advice"),
    [
        ((lambda: None, standardized()), TypeError, "nn.Module"),
        ((None, standardized().numpy()), TypeError, "torch.as_tensor"),
        ((None, torch.zeros(0, 20)), ValueError, "no examples"),
        ((None, torch.zeros(4, 20, dtype=torch.uint8)), TypeError, r"x\.float\(\)"),
        ((None, torch.tensor([[1.0, math.nan]])), ValueError, "NaN"),
        ((None, standardized(), labels(10)), ValueError, "one target per example"),
        ((None, standardized(), labels().int()), TypeError, r"y\.long\(\)"),
        ((None, standardized(), [0] * 512), TypeError, "tensor"),
    ],
)
def test_bad_arguments_say_what_to_do(arguments: tuple[object, ...], error: type[Exception], advice: str) -> None:
    model, *rest = arguments
    with pytest.raises(error, match=advice):
        diagnose(kaiming_relu() if model is None else model, *rest)  # type: ignore[arg-type]


def test_bad_sizes_and_a_model_that_raises_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="sample_size must be a positive integer"):
        diagnose(kaiming_relu(), standardized(), sample_size=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        diagnose(kaiming_relu(), standardized(), batch_size=0)
    model = kaiming_relu()
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"shape \(512, 7\).*as you would to train it"):
        diagnose(model, standardized(features=7))
    assert_same(before, snapshot(model))  # hooks removed even when the model raised
    with pytest.raises(ValueError, match="compares its output with y"):
        diagnose(model, standardized(), torch.randn(512, 5))


# ---------------------------------------------------------------------------------------- learning rate


def separable(rows: int = 400, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """Two Gaussian blobs in 10 dimensions, their centres 4 standard deviations apart."""
    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, 2, (rows,), generator=g)
    x = torch.randn(rows, 10, generator=g) + (2 * y[:, None].float() - 1) * 2 / math.sqrt(10)
    return x * scale, y


SMALL_MLP = partial(mlp, 10, [16], 2)


def test_the_suggested_rate_learns_and_lies_inside_the_learning_range() -> None:
    x, y = separable()
    suggestion = suggest_learning_rate(SMALL_MLP, x, y)
    assert suggestion.rate is not None and suggestion.learning_range is not None
    low, high = suggestion.learning_range
    assert low <= suggestion.rate <= high and low < high
    inside = (suggestion.rates >= low) & (suggestion.rates <= high)
    assert suggestion.learns[inside].all() and not suggestion.diverged[inside].any()
    assert suggestion.accuracies[list(suggestion.rates).index(suggestion.rate)] > 0.9
    assert suggestion.learns_above > suggestion.chance and 150 <= suggestion.steps <= 250
    assert len(suggestion.points) == 3 and "Suggested learning rate" in str(suggestion)


def test_rates_that_diverge_are_results_and_never_suggested() -> None:
    x, y = separable(scale=30.0)  # large inputs: the large rates blow up
    suggestion = suggest_learning_rate(SMALL_MLP, x, y, rates=np.logspace(-4, 1, 6))
    assert suggestion.diverged.any() and suggestion.rate is not None and suggestion.learning_range is not None
    smallest_diverged = suggestion.rates[suggestion.diverged].min()
    assert suggestion.learning_range[1] < smallest_diverged and suggestion.rate < smallest_diverged
    assert np.isinf(suggestion.losses[suggestion.diverged]).all() and not suggestion.learns[suggestion.diverged].any()
    assert "diverged:" in str(suggestion)


def test_nothing_learns_on_random_labels() -> None:
    x, _ = separable()
    noise = torch.randint(0, 2, (len(x),), generator=torch.Generator().manual_seed(9))
    suggestion = suggest_learning_rate(SMALL_MLP, x, noise, rates=[0.01, 0.1, 1.0], steps=50, seeds=[0])
    assert suggestion.rate is None and suggestion.learning_range is None
    assert str(suggestion).startswith("No rate learned")


def test_the_sweep_is_seeded_and_plots() -> None:
    x, y = separable(120)
    runs = [suggest_learning_rate(SMALL_MLP, x, y, rates=[0.03, 0.3], steps=20, seeds=[0, 1]) for _ in range(2)]
    assert np.array_equal(runs[0].accuracies, runs[1].accuracies)
    assert np.array_equal(runs[0].losses, runs[1].losses)
    assert runs[0].rate is not None
    figure = runs[0].plot()
    axes = figure.axes[0]
    drawn = axes.get_legend_handles_labels()[1]
    assert f"suggested {runs[0].rate:.3g}" in drawn and "learning range" in drawn
    assert axes.get_xscale() == "log" and axes.get_ylabel() == "validation accuracy"
    plt.close(figure)


@pytest.mark.parametrize(
    ("change", "error", "advice"),
    [
        ({"make_model": SMALL_MLP()}, TypeError, "function that builds a fresh model"),
        ({"y": separable()[1].float()}, TypeError, "int64 class labels"),
        ({"x": separable()[0][:50]}, ValueError, "one label per example"),
        ({"rates": [0.1]}, ValueError, "two or more positive"),
        ({"rates": [0.1, -1.0]}, ValueError, "two or more positive"),
        ({"rates": [0.1, 0.1]}, ValueError, "repeated"),
        ({"steps": 0}, ValueError, "steps must be an integer"),
        ({"steps": 5000}, ValueError, "steps must be an integer"),
        ({"seeds": []}, ValueError, "seeds is empty"),
        ({"validation_share": 1.5}, ValueError, "validation_share"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_sweep_arguments_say_what_to_do(change: dict[str, object], error: type[Exception], advice: str) -> None:
    x, y = separable()
    arguments: dict[str, object] = {"make_model": SMALL_MLP, "x": x, "y": y, **change}
    with pytest.raises(error, match=advice):
        suggest_learning_rate(**arguments)  # type: ignore[arg-type]


def test_too_few_examples_are_refused() -> None:
    x, y = separable()
    with pytest.raises(ValueError, match="at least 10"):
        suggest_learning_rate(SMALL_MLP, x[:5], y[:5])


def test_a_diagnosis_table_lists_each_case_s_findings_with_links() -> None:
    torch.manual_seed(0)
    cases = {
        "raw <pixels>": diagnose(mlp(784, [32], 10, "tanh"), torch.randint(0, 256, (64, 784)).float()),
        "standardized": diagnose(mlp(784, [32], 10, "relu", "kaiming_normal"), torch.randn(64, 784)),
    }
    table = DiagnosisTable(cases)
    lines = str(table).splitlines()
    assert lines[0].startswith("raw <pixels>") and "saturated_units (problem)" in lines[0]
    assert lines[1].split() == ["standardized", "healthy"]
    page = table._repr_html_()
    assert "raw &lt;pixels&gt;" in page and f'href="{SECTION_LINKS["02 §2"]}"' in page and "healthy" in page
