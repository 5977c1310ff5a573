"""The course's measurements turned into a diagnosis of *your* network: what is wrong, the numbers that
show it, and the notebook section that explains the fix.

How a learner uses it, before training::

    from course_utils.doctor import diagnose, suggest_learning_rate

    diagnosis = diagnose(model, x_train, y_train)  # y is optional: without it, no gradient checks
    diagnosis              # in JupyterLab: a table of findings, worst first, each with its fix
    print(diagnosis)       # the same as text, in a terminal
    diagnosis.codes        # e.g. ("inputs_not_scaled", "saturated_units")
    diagnosis.healthy      # True when nothing is a warning or a problem
    for finding in diagnosis:  # code, severity, message, fix, evidence (the numbers), sections
        ...

    suggestion = suggest_learning_rate(lambda: mlp(30, [64], 2), x_train, y_train)
    suggestion.rate, suggestion.learning_range
    suggestion.plot()

`diagnose(model, x, y=None)` takes any `nn.Module` that takes a batch `x` (an MLP, a CNN, your own
module). It checks the inputs on all of `x`, then runs one forward pass (and, with `y`, one backward
pass: cross-entropy for int64 class labels, mean squared error for float targets) on a seeded sample
of at most 512 rows, watching every layer with forward hooks as `diagnostics.layer_stats` does:
activation *modules* only (`nn.ReLU()`, not `torch.relu(...)` inside `forward`). The model is left
exactly as it was: parameters, `.grad`s, `requires_grad`, every submodule's train/eval mode, buffers
such as batch norm's running statistics, and its hooks; so is PyTorch's global random state.

Each finding has a stable `code`, a `severity` ("info", "warning", "problem"), a one-sentence
`message` with the measured numbers, a one-sentence `fix` naming the notebook section that explains
it, `evidence` (the numbers, by name) and `sections` (keys of `SECTION_LINKS`, links to those sections).

Where each threshold comes from (notebook § section; numbers from docs/claims.md, the ledger of
measured ranges over six machine and seed variants):

* `inputs_not_scaled`: the inputs' root mean square √E[x²] (every init assumes 1, 04 §2). Warning
  above `INPUT_RMS_HIGH_WARNING` = 5: under PyTorch's default init a first-layer pre-activation has
  std √(E[x²]/3) (02 §2), and above an RMS of 3·√3 ≈ 5.2 that is past tanh's flat edge |z| = 2.99
  (02 §1), while pixels scaled to 0–5 (RMS 2.3) still trained as well as 0–1 (02 §7). Problem above
  `INPUT_RMS_HIGH_PROBLEM` = 50, below raw 0–255 pixels (RMS 116), which saturate 94–96 % of
  first-layer tanh/sigmoid values (02 §2) and collapse SGD to chance (01 §2, §3). Warning below
  `INPUT_RMS_LOW_WARNING` = 0.05, ten times under /255 pixels (0.45), which with ReLU + Kaiming
  already reach the output at 0.4 of the intended size (04 §4).
* `inputs_not_centred`: the distance of the inputs' mean from 0 in units of their spread,
  ‖mean‖ / √(Σ variances) over the features. Warning above `INPUT_OFFSET_WARNING` = 0.5: /255 pixels
  sit at 0.81 (mean 0.286, std 0.353, 00) and centring them takes the pixel Hessian's λ1/λ2 from 8.3
  to 1.6 (03 §4); pixels in [-1, 1] (0.61) still keep far more all-or-nothing ReLUs than z-scores (02 §5).
* `feature_scales_differ`: largest over smallest per-feature std (non-constant features). The
  curvature along a feature grows with the square of its spread (03 §1) and the steps gradient descent
  needs grow with the condition number κ (03 §2), so a spread ratio of 10 is a κ of 100 or more:
  warning above `FEATURE_SPREAD_WARNING` = 10. Problem above `FEATURE_SPREAD_PROBLEM` = 1000: wine's
  features (ratio 2.5·10³) gave weight gradients "more than a thousandfold" apart, a best rate 2·10⁻⁵
  raw vs 10 standardized and accuracy 0.51 vs 1.00 (01 §9).
* `constant_features`: features with zero variance on all of `x` (a plain z-score divides by zero;
  01 §9 standardizes with training statistics). Warning.
* `saturated_units`: per tanh/sigmoid-like layer, the share of values where |f'(z)| < 1 % of 1
  (`diagnostics.SATURATION_THRESHOLD`, the definition of 02 §1). Problem above
  `diagnostics.SATURATED_SHARE` = 0.5 (04 §3's "saturates"; raw pixels: 0.94–0.96, 02 §2); warning
  above `SATURATED_SHARE_WARNING` = 0.1, ten times what /255 or z-scored pixels give (under 1 %, 02 §2).
* `dead_units`: per ReLU-like layer, the share of units flat on every example of the sample. Problem
  when on average over the layers, or in the first one, more than `diagnostics.DEAD_SHARE` = 0.3 are
  dead (04 §3's "dies"; 98 % after the raw-pixel collapse, 02 §6), or when a whole layer is. Warning
  when more than `DEAD_SHARE_WARNING` = 0.1 of the first layer's units are dead: between the
  1.6–3.1 % of all-or-nothing units that z-scored pixels give there at initialization and the
  16–18 % of /255 pixels (02 §5). Deeper layers are judged on the mean only: a well-initialized deep
  ReLU network gathers a few dead units per layer (Kaiming, 20 layers: about 10 % on average).
* `signal_shrinks` / `signal_grows`: how much what the hidden layers pass on (their activations'
  outputs) varies between examples, last hidden layer over first. Problem below
  `diagnostics.VANISHING_SIGNAL_RATIO` = 10⁻² (04 §3's "vanishes") or above its inverse, 10², or
  above `diagnostics.EXPLODING_STD` = 10³ in the last layer (04 §3's "explodes"). Measured on the
  activations' outputs rather than 04 §3's pre-activations, so that a first layer inflated by
  unscaled inputs (reported as such) does not count as signal lost further in.
* `gradients_vanish` / `gradients_explode` (only with `y`): the first hidden layer's weight-gradient
  norm over the last hidden layer's. Problem below `diagnostics.VANISHING_GRADIENT_RATIO` = 10⁻⁴ or
  above 10⁴ (04 §3; an 8-layer sigmoid net: 4·10⁻⁷, 03 §6; tanh + N(0, 1): grows toward the input a
  millionfold, 04 §3); warning beyond `GRADIENT_SPREAD_WARNING` = 10 either way: networks that keep
  their signal have weight gradients "within about ten times of each other" (04 §8), and the 5-layer
  sigmoid net whose layer-1 gradient is 58× smaller than layer 5's did not learn (02 §3).
* `batchnorm_small_batch`: a model with batch norm normalizing with the statistics of a batch of
  fewer than `BATCHNORM_WARNING_BATCH` = 8 examples, the sample diagnosed or the `batch_size` you say
  you train with. Problem at `BATCHNORM_PROBLEM_BATCH` = 2 or fewer: at batch 2 the same network
  reached 0.41–0.51 with batch norm against 0.72–0.74 without (05 §7, the ledger); the same cell
  also prints batch 8, where batch norm is ahead again (0.77 against 0.71, medians of 5 seeds).
* `activations_not_found` (info): no activation module fired, so saturation, dead units and the signal
  were not checked.

If the model's first layer is a normalization layer (it learns the input normalization, 05 §2), the
three input-scale findings are only "info".

`suggest_learning_rate(make_model, x, y)` is the course's learning-rate sweep (`batched.sweep_seeds`,
as in 01 §5 and 05 §3) packaged for your model: a few hundred seeded steps per rate and seed, the
median validation accuracy per rate, the rates that learn and the one to use.
"""

from __future__ import annotations

import html
import math
import numbers
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from course_utils.batched import final_losses, median_accuracy_by_rate, sweep_seeds
from course_utils.diagnostics import (
    DEAD_SHARE,
    EXPLODING_STD,
    SATURATED_SHARE,
    VANISHING_GRADIENT_RATIO,
    VANISHING_SIGNAL_RATIO,
    LayerStats,
    _kind,
    hidden_layer_stats,
    layer_stats,
)
from course_utils.runtime import course_seed, make_generator
from course_utils.train import SweepPoint

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Severity = Literal["info", "warning", "problem"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "problem")  # in increasing order of concern

INPUT_RMS_HIGH_WARNING = 5.0
INPUT_RMS_HIGH_PROBLEM = 50.0
INPUT_RMS_LOW_WARNING = 0.05
INPUT_OFFSET_WARNING = 0.5
FEATURE_SPREAD_WARNING = 10.0
FEATURE_SPREAD_PROBLEM = 1e3
SATURATED_SHARE_WARNING = 0.1
DEAD_SHARE_WARNING = 0.1
GROWING_SIGNAL_RATIO = 1 / VANISHING_SIGNAL_RATIO
GRADIENT_SPREAD_WARNING = 10.0
EXPLODING_GRADIENT_RATIO = 1 / VANISHING_GRADIENT_RATIO
BATCHNORM_WARNING_BATCH = 8
BATCHNORM_PROBLEM_BATCH = 2
DEFAULT_SAMPLE_SIZE = 512

# Activations flat on both sides (or, for LogSigmoid, flat where they are fully "on"): their flat
# region is saturation. Every other activation is ReLU-like: its flat side is "off", so a unit
# flat on every example is dead.
SATURATING_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,  # ReLU6 is a Hardtanh
    nn.Hardsigmoid,
    nn.Softsign,
    nn.LogSigmoid,
)

SEVERITY_COLOURS: dict[Severity, str] = {"problem": "#c62828", "warning": "#e65100", "info": "#546e7a"}

# Heading of each section a finding cites, as the notebook spells it; `SECTION_LINKS` turns them into
# JupyterLab links (the heading's text with spaces as dashes), relative to the notebooks/ folder.
_SECTION_HEADINGS: dict[str, tuple[str, str]] = {
    "01 §2": ("01_scaling_basics.ipynb", "2 · The same experiment with PyTorch's defaults: SGD and Adam"),
    "01 §3": (
        "01_scaling_basics.ipynb",
        "3 · Why SGD collapses on raw pixels, and why Adam with the logits loss does not",
    ),
    "01 §5": ("01_scaling_basics.ipynb", "5 · Where the best learning rate goes when the input scale changes"),
    "01 §9": ("01_scaling_basics.ipynb", "9 · Features on very different scales: the tabular version"),
    "02 §2": ("02_saturation.ipynb", "2 · From input scale to saturated units"),
    "02 §3": ("02_saturation.ipynb", "3 · Gradients layer by layer, after one backward pass"),
    "02 §6": ("02_saturation.ipynb", "6 · Dead ReLUs: the mechanism behind a collapse to chance"),
    "03 §2": ("03_curvature_and_ravines.ipynb", "2 · What κ predicts: the largest step and the speed"),
    "03 §4": ("03_curvature_and_ravines.ipynb", "4 · Centring matters, not only scaling"),
    "04 §3": ("04_initialization.ipynb", "3 · The grid at initialization"),
    "04 §4": ("04_initialization.ipynb", "4 · How far a wrongly scaled input carries its error"),
    "05 §2": ("05_batch_norm.ipynb", "2 · A batch-norm layer in front learns the input normalization"),
    "05 §3": ("05_batch_norm.ipynb", '3 · "It allows higher learning rates"'),
    "05 §7": ("05_batch_norm.ipynb", "7 · Pitfalls, measured"),
}
SECTION_LINKS: dict[str, str] = {
    key: f"{notebook}#{heading.replace(' ', '-')}" for key, (notebook, heading) in _SECTION_HEADINGS.items()
}


@dataclass(frozen=True)
class Finding:
    """One thing `diagnose` found, with the numbers that show it and where the course explains it."""

    code: str  # stable: e.g. "inputs_not_scaled"; test on it, not on the message
    severity: Severity
    message: str  # one sentence, with the measured numbers
    fix: str  # one sentence, naming the notebook section that explains it
    evidence: Mapping[str, float] = field(default_factory=dict)  # the numbers, by what they measure
    sections: tuple[str, ...] = ()  # keys of SECTION_LINKS, e.g. ("02 §2",)


@dataclass(frozen=True)
class Diagnosis:
    """What `diagnose` found: the findings, worst first, and the measurements behind them.

    Iterating gives the findings; in JupyterLab it shows as a table, `print` gives it as text."""

    findings: tuple[Finding, ...]
    examples: int  # rows of x run through the model
    total_examples: int  # rows of x (the input checks use all of them)
    with_gradients: bool  # whether y was given, so gradients were checked
    layers: tuple[LayerStats, ...] = ()  # layer_stats of the sample, in forward order

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.findings)

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "problem")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def worst(self) -> Finding | None:
        """The most serious finding (the first found among equals), or None when there is none."""
        return self.findings[0] if self.findings else None

    @property
    def healthy(self) -> bool:
        """No warning and no problem (info findings allowed)."""
        return not self.problems and not self.warnings

    def finding(self, code: str) -> Finding:
        """The finding with this code; a KeyError naming the codes found when there is none."""
        for found in self.findings:
            if found.code == code:
                return found
        raise KeyError(f"no finding {code!r}; this diagnosis found {list(self.codes) or 'nothing'}.")

    def _headline(self) -> str:
        counts = [
            f"{n} {severity}{'s' if n != 1 else ''}"
            for severity in reversed(SEVERITIES)
            if (n := sum(f.severity == severity for f in self.findings))
        ]
        passes = (
            "one forward and one backward pass"
            if self.with_gradients
            else "one forward pass (no y: gradients not checked)"
        )
        return (
            f"Diagnosis of {self.examples} of {self.total_examples} examples, {passes}: "
            + (", ".join(counts) if counts else "nothing to report")
            + "."
        )

    def __str__(self) -> str:
        lines = [self._headline()]
        width = max((len(f.code) for f in self.findings), default=0)
        indent = " " * (9 + width + 2)
        for f in self.findings:
            lines.append(
                textwrap.fill(
                    f.message,
                    width=110,
                    initial_indent=f"{f.severity.upper():<9}{f.code:<{width}}  ",
                    subsequent_indent=indent,
                )
            )
            lines.append(
                textwrap.fill(f"fix: {f.fix}", width=110, initial_indent=indent, subsequent_indent=indent + "     ")
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colours = SEVERITY_COLOURS
        rows = []
        for f in self.findings:
            evidence = "<br>".join(f"{html.escape(k)} = {v:.4g}" for k, v in f.evidence.items())
            links = " ".join(
                f'<a href="{html.escape(SECTION_LINKS[s], quote=True)}">notebook {html.escape(s)}</a>'
                for s in f.sections
            )
            rows.append(
                "<tr>"
                f'<td style="color:{colours[f.severity]};font-weight:bold">{f.severity}</td>'
                f"<td><code>{html.escape(f.code)}</code></td>"
                f'<td style="text-align:left">{html.escape(f.message)}</td>'
                f'<td style="text-align:left">{html.escape(f.fix)}' + (f"<br>{links}" if links else "") + "</td>"
                f'<td style="text-align:left;font-size:smaller">{evidence}</td>'
                "</tr>"
            )
        header = "<tr><th>severity</th><th>code</th><th>finding</th><th>fix</th><th>evidence</th></tr>"
        table = f"<table>{header}{''.join(rows)}</table>" if rows else ""
        return f"<div><p>{html.escape(self._headline())}</p>{table}</div>"


@dataclass(frozen=True)
class DiagnosisTable:
    """Several diagnoses side by side, one row per case: each finding's code, coloured by severity and
    linked to the section that teaches it (HTML), or marked with its severity (text)."""

    cases: Mapping[str, Diagnosis]

    def __str__(self) -> str:
        width = max((len(name) for name in self.cases), default=0)
        return "\n".join(
            f"{name:<{width}}  "
            + (", ".join(f"{f.code} ({f.severity})" for f in diagnosis if f.severity != "info") or "healthy")
            for name, diagnosis in self.cases.items()
        )

    def _repr_html_(self) -> str:
        rows = []
        for name, diagnosis in self.cases.items():
            found = [
                f'<a href="{html.escape(SECTION_LINKS[f.sections[0]], quote=True)}"'
                f' style="color:{SEVERITY_COLOURS[f.severity]}"'
                f' title="{html.escape(f.severity)}: notebook {html.escape(f.sections[0])}">'
                f"<code>{html.escape(f.code)}</code></a>"
                for f in diagnosis
                if f.severity != "info"
            ]
            rows.append(
                f'<tr><td style="text-align:left">{html.escape(name)}</td>'
                f'<td style="text-align:left">{", ".join(found) or "healthy"}</td></tr>'
            )
        header = "<tr><th>case</th><th>findings, worst first (each links to its section)</th></tr>"
        return f"<table>{header}{''.join(rows)}</table>"


# ---------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class InputStatistics:
    """What `input_statistics` measures of a batch of inputs, over all of its rows."""

    examples: int  # rows of x
    rms: float  # √E[x²] over every value
    offset_ratio: float  # ‖per-feature means‖ / √(Σ per-feature variances): how far the centre is from 0
    feature_std: np.ndarray  # [features] population std of each feature
    feature_kind: Literal["feature", "channel", "value"]  # what a "feature" is for this shape of x


def input_statistics(x: Tensor, *, chunk_rows: int = 4096) -> InputStatistics:
    """The input checks' numbers for `x`, in float64, a chunk of rows at a time (so a large training set
    costs no float64 copy of it).

    A "feature" is a column of [N, F] inputs, a channel (dim 1) of [N, C, H, W] images (the statistics
    normalization uses for images, as torchvision's Normalize), and for [N] or [N, H, W] inputs all
    values together (one channel)."""
    if x.dim() == 2:
        kind: Literal["feature", "channel", "value"] = "feature"
    elif x.dim() >= 4:
        kind = "channel"
    else:
        kind = "value"
    count = 0
    total: Tensor | None = None
    total_sq: Tensor | None = None
    for start in range(0, len(x), chunk_rows):
        chunk = x[start : start + chunk_rows].detach().to("cpu", torch.float64)
        values = (
            chunk
            if kind == "feature"
            else chunk.transpose(0, 1).flatten(1).T
            if kind == "channel"
            else chunk.reshape(-1, 1)
        )
        count += len(values)
        sums, sums_sq = values.sum(dim=0), (values * values).sum(dim=0)
        total = sums if total is None else total + sums
        total_sq = sums_sq if total_sq is None else total_sq + sums_sq
    assert total is not None and total_sq is not None
    mean = total / count
    variance = (total_sq / count - mean * mean).clamp(min=0)
    # Sums of squares lose the variance of a feature whose values are all equal to rounding: call a
    # spread under 1e-12 of the feature's size none at all.
    variance[variance <= (1e-12 * mean.abs()) ** 2] = 0.0
    rms = math.sqrt(float(total_sq.sum()) / (count * len(total)))
    spread = math.sqrt(float(variance.sum()))
    offset_ratio = float(mean.norm()) / spread if spread > 0 else (math.inf if float(mean.norm()) > 0 else 0.0)
    return InputStatistics(
        examples=count if kind == "feature" else len(x),
        rms=rms,
        offset_ratio=offset_ratio,
        feature_std=variance.sqrt().numpy(),
        feature_kind=kind,
    )


def _input_findings(stats: InputStatistics, normalized_by_model: bool) -> list[Finding]:
    findings = []
    # A first normalization layer rescales the inputs itself: what it fixes is no longer a risk (05 §2).
    scale_severity: Callable[[Severity], Severity] = (lambda s: "info") if normalized_by_model else (lambda s: s)
    handled = " (the model's first layer normalizes them, notebook 05 §2)" if normalized_by_model else ""
    if stats.rms > INPUT_RMS_HIGH_WARNING:
        findings.append(
            Finding(
                "inputs_not_scaled",
                scale_severity("problem" if stats.rms > INPUT_RMS_HIGH_PROBLEM else "warning"),
                f"The inputs' root mean square is {stats.rms:.3g}, far above the 1 every weight init assumes"
                f" (raw 0–255 pixels: 116){handled}.",
                "Standardize the inputs with the training split's mean and std (or divide pixels by 255), as"
                " notebook 01 §2 and 02 §2 measure.",
                {"input RMS": stats.rms},
                ("01 §2", "02 §2"),
            )
        )
    elif stats.rms < INPUT_RMS_LOW_WARNING:
        findings.append(
            Finding(
                "inputs_not_scaled",
                scale_severity("warning"),
                f"The inputs' root mean square is {stats.rms:.3g}, far below the 1 every weight init assumes{handled}.",
                "Standardize the inputs with the training split's mean and std: with ReLU the shortfall reaches"
                " the output unchanged (notebook 04 §4).",
                {"input RMS": stats.rms},
                ("04 §4",),
            )
        )
    if stats.examples < 2:  # one example has no spread: nothing more to measure
        return findings
    if stats.offset_ratio > INPUT_OFFSET_WARNING:
        findings.append(
            Finding(
                "inputs_not_centred",
                scale_severity("warning"),
                f"The inputs' mean lies {stats.offset_ratio:.3g} spreads away from 0 (per {stats.feature_kind};"
                f" /255 pixels: 0.81){handled}.",
                "Subtract the training split's mean (per feature, or per channel for images) before scaling"
                " (notebook 03 §4).",
                {"mean / spread": stats.offset_ratio},
                ("03 §4",),
            )
        )
    varying = stats.feature_std[stats.feature_std > 0]
    if len(varying) >= 2:
        ratio = float(varying.max() / varying.min())
        if ratio > FEATURE_SPREAD_WARNING:
            largest, smallest = (
                int(np.argmax(np.where(stats.feature_std > 0, stats.feature_std, -np.inf))),
                int(np.argmin(np.where(stats.feature_std > 0, stats.feature_std, np.inf))),
            )
            findings.append(
                Finding(
                    "feature_scales_differ",
                    scale_severity("problem" if ratio > FEATURE_SPREAD_PROBLEM else "warning"),
                    f"The {stats.feature_kind}s' spreads differ {ratio:.3g}-fold (std {varying.max():.3g} of"
                    f" {stats.feature_kind} {largest} against {varying.min():.3g} of {smallest}){handled}.",
                    "Standardize each feature with the training split's mean and std, so that one learning rate"
                    " suits every weight (notebook 01 §9, and the ravine it makes in 03 §2).",
                    {
                        "largest / smallest std": ratio,
                        "largest std": float(varying.max()),
                        "smallest std": float(varying.min()),
                    },
                    ("01 §9", "03 §2"),
                )
            )
    constant = np.flatnonzero(stats.feature_std == 0)
    if len(constant) and stats.feature_kind != "value":
        shown = ", ".join(str(i) for i in constant[:8]) + (", ..." if len(constant) > 8 else "")
        findings.append(
            Finding(
                "constant_features",
                "warning",
                f"{len(constant)} of {len(stats.feature_std)} {stats.feature_kind}s never change ({shown}).",
                "Drop them, or standardize with max(std, ε): a plain z-score divides them by zero (standardizing"
                " as in notebook 01 §9).",
                {
                    f"constant {stats.feature_kind}s": float(len(constant)),
                    f"{stats.feature_kind}s": float(len(stats.feature_std)),
                },
                ("01 §9",),
            )
        )
    return findings


# ---------------------------------------------------------------------------------------- layers


def _label(stats: LayerStats) -> str:
    return f"{stats.module} '{stats.name}'"


def _activation_findings(stats: Sequence[LayerStats], saturating: set[str]) -> list[Finding]:
    """saturated_units for saturating activations, dead_units for ReLU-like ones; `saturating` holds
    the names of the saturating activation modules."""
    activations = [s for s in stats if s.kind == "activation"]
    flat = [s for s in activations if s.name.split("#")[0] in saturating]
    one_sided = [s for s in activations if s.name.split("#")[0] not in saturating]
    return _saturation_findings(flat) + _dead_unit_findings(one_sided)


def _saturation_findings(layers: Sequence[LayerStats]) -> list[Finding]:
    share = {s.name: float(s.fraction_saturated or 0.0) for s in layers}
    over = [s for s in layers if share[s.name] > SATURATED_SHARE_WARNING]
    if not over:
        return []
    worst = max(over, key=lambda s: share[s.name])
    # Only the first layer saturated: the inputs are too large for it (02 §2). Deeper layers saturated:
    # the weights make every layer's pre-activations too large (04 §3), whatever the inputs.
    inputs_to_blame = over == [layers[0]]
    return [
        Finding(
            "saturated_units",
            "problem" if share[worst.name] > SATURATED_SHARE else "warning",
            f"{share[worst.name]:.0%} of the values of {_label(worst)} sit where it is flat (|f'| < 0.01), in"
            f" {len(over)} of {len(layers)} saturating layers (normalized pixels: under 1 %).",
            "Normalize the inputs so that the first layer's pre-activations stay in the steep region (notebook 02 §2)."
            if inputs_to_blame
            else "Use the init made for the activation (Xavier for tanh) or batch norm before it (notebook 04 §3).",
            {f"saturated share, {_label(s)}": share[s.name] for s in over},
            ("02 §2",) if inputs_to_blame else ("04 §3",),
        )
    ]


def _dead_unit_findings(layers: Sequence[LayerStats]) -> list[Finding]:
    if not layers:
        return []
    share = {s.name: float(s.fraction_dead or 0.0) for s in layers}
    mean = float(np.mean(list(share.values())))
    first, worst = layers[0], max(layers, key=lambda s: share[s.name])
    # Deep ReLU networks gather a few dead units per layer even when well initialized (about 10 % on
    # average at 20 layers with Kaiming's init), so depth is judged on the mean, as 04 §3 does; the
    # first layer, which 02 §5 and §6 measured, on its own; and a layer with no live unit passes nothing on.
    if share[worst.name] == 1.0:
        severity: Severity = "problem"
        what = f"every unit of {_label(worst)} is flat on every example, so nothing passes through it"
    elif mean > DEAD_SHARE or share[first.name] > DEAD_SHARE:
        severity = "problem"
        what = (
            f"{share[first.name]:.0%} of the units of {_label(first)}"
            if share[first.name] > DEAD_SHARE
            else f"on average {mean:.0%} of the units of the {len(layers)} ReLU-like layers"
        ) + " are flat on every example, so no gradient reaches their weights"
    elif share[first.name] > DEAD_SHARE_WARNING:
        severity = "warning"
        what = f"{share[first.name]:.0%} of the units of {_label(first)} are flat on every example"
    else:
        return []
    evidence = {f"dead share, {_label(s)}": share[s.name] for s in layers if share[s.name] > 0}
    evidence["mean dead share"] = mean
    return [
        Finding(
            "dead_units",
            severity,
            f"{what[0].upper()}{what[1:]} (normalized pixels at initialization: 0 %).",
            "Scale and centre the inputs, zero the biases with Kaiming's init and keep the learning rate moderate,"
            " or use a leaky ReLU (notebook 02 §6).",
            evidence,
            ("02 §6",),
        )
    ]


def _signal_findings(stats: Sequence[LayerStats]) -> list[Finding]:
    # The last activation feeds the output layer: all activations are hidden ones.
    hidden = hidden_layer_stats(stats, "activation")
    if len(hidden) < 2:
        return []
    first, last = hidden[0], hidden[-1]
    ratio = last.example_std / max(first.example_std, 1e-30)  # the floor: a first layer with no signal at all
    evidence = {
        f"std between examples, {_label(first)}": first.example_std,
        f"std between examples, {_label(last)}": last.example_std,
        "last / first": ratio,
    }
    spread = f"from {first.example_std:.3g} ({_label(first)}) to {last.example_std:.3g} ({_label(last)})"
    fix = "Use the init made for the activation, Kaiming for ReLU and Xavier for tanh, or batch norm (notebook 04 §3)."
    if not math.isfinite(last.example_std) or ratio > GROWING_SIGNAL_RATIO or last.example_std > EXPLODING_STD:
        return [
            Finding(
                "signal_grows",
                "problem",
                f"How much the hidden layers' outputs differ between examples grows {spread}, ×{ratio:.3g} over"
                f" {len(hidden)} layers.",
                fix,
                evidence,
                ("04 §3",),
            )
        ]
    if ratio < VANISHING_SIGNAL_RATIO:
        return [
            Finding(
                "signal_shrinks",
                "problem",
                f"How much the hidden layers' outputs differ between examples shrinks {spread}, ×{ratio:.3g} over"
                f" {len(hidden)} layers: deep layers barely tell examples apart.",
                fix,
                evidence,
                ("04 §3",),
            )
        ]
    return []


def _gradient_findings(stats: Sequence[LayerStats]) -> list[Finding]:
    hidden = [s for s in hidden_layer_stats(stats, "linear") if s.grad_norm is not None]
    if len(hidden) < 2:
        return []
    first, last = hidden[0], hidden[-1]
    first_norm, last_norm = float(first.grad_norm or 0.0), float(last.grad_norm or 0.0)
    evidence = {
        f"weight-gradient norm, {_label(first)}": first_norm,
        f"weight-gradient norm, {_label(last)}": last_norm,
    }
    if not (math.isfinite(first_norm) and math.isfinite(last_norm)):
        return [
            Finding(
                "gradients_explode",
                "problem",
                f"The weight gradients are not finite ({_label(first)}: {first_norm:.3g},"
                f" {_label(last)}: {last_norm:.3g}).",
                "Scale the inputs and use the init made for the activation (notebook 04 §3).",
                evidence,
                ("04 §3",),
            )
        ]
    ratio = first_norm / last_norm if last_norm > 0 else (math.inf if first_norm > 0 else 1.0)
    evidence["first / last"] = ratio
    between = (
        f"The weight gradient of {_label(first)} is {{}} times {{}} than that of {_label(last)}"
        f" ({first_norm:.3g} against {last_norm:.3g})"
    )
    if ratio < 1 / GRADIENT_SPREAD_WARNING:
        return [
            Finding(
                "gradients_vanish",
                "problem" if ratio < VANISHING_GRADIENT_RATIO else "warning",
                between.format(f"{1 / ratio:.3g}" if ratio > 0 else "infinitely many", "smaller")
                + ", so one learning rate cannot suit both ends.",
                "Use the init made for the activation and avoid deep sigmoid stacks, or add batch norm (notebook 02 §3,"
                " 04 §3).",
                evidence,
                ("02 §3", "04 §3"),
            )
        ]
    if ratio > GRADIENT_SPREAD_WARNING:
        return [
            Finding(
                "gradients_explode",
                "problem" if ratio > EXPLODING_GRADIENT_RATIO else "warning",
                between.format(f"{ratio:.3g}", "larger") + ", so one learning rate cannot suit both ends.",
                "Use the init made for the activation instead of large weights, or add batch norm (notebook 04 §3).",
                evidence,
                ("04 §3",),
            )
        ]
    return []


def _uses_batch_statistics(module: nn.Module) -> bool:
    """A batch-norm layer normalizes with the batch's own statistics (training mode, or no running ones)."""
    return isinstance(module, _BatchNorm) and (module.training or not module.track_running_stats)


def _batchnorm_findings(model: nn.Module, diagnosed_rows: int, batch_size: int | None) -> list[Finding]:
    batch_norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not batch_norms:
        return []
    candidates = []
    if batch_size is not None:
        candidates.append((batch_size, f"training batches of {batch_size}"))
    if any(_uses_batch_statistics(m) for m in batch_norms):
        candidates.append((diagnosed_rows, f"a diagnosed batch of {diagnosed_rows} in training mode"))
    small = [(size, what) for size, what in candidates if size < BATCHNORM_WARNING_BATCH]
    if not small:
        return []
    size, what = min(small)
    return [
        Finding(
            "batchnorm_small_batch",
            "problem" if size <= BATCHNORM_PROBLEM_BATCH else "warning",
            f"{len(batch_norms)} batch-norm layer{'s normalize' if len(batch_norms) != 1 else ' normalizes'} with the"
            " statistics"
            f" of {what}: at batch 2 a network"
            " trained worse with batch norm than without (0.51 against 0.73).",
            f"Train with batches of {BATCHNORM_WARNING_BATCH} or more, or use layer norm, which does not depend on"
            " the batch (notebook 05 §7).",
            {"batch size": float(size), "batch-norm layers": float(len(batch_norms))},
            ("05 §7",),
        )
    ]


# ---------------------------------------------------------------------------------------- diagnose


def _check_arguments(model: object, x: object, y: object, sample_size: object, batch_size: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"diagnose needs a torch.nn.Module as model, got {type(model).__name__}.")
    if not isinstance(x, Tensor):
        raise TypeError(
            f"x must be a torch tensor of examples (first dimension = examples), not {type(x).__name__}; convert"
            " it with torch.as_tensor(x, dtype=torch.float32)."
        )
    if x.dim() == 0 or len(x) == 0:
        raise ValueError(f"x has no examples (shape {tuple(x.shape)}): give a batch, examples first.")
    if not x.is_floating_point():
        raise TypeError(
            f"x has dtype {x.dtype}; the model needs floats. Pass x.float() as it is (diagnose then reports its"
            " scale), or preprocess it first."
        )
    non_finite = int((~torch.isfinite(x)).sum())
    if non_finite:
        raise ValueError(
            f"x holds {non_finite} NaN or infinite values: fill or drop them before diagnosing (a z-score of a"
            " constant feature divides by zero)."
        )
    if y is not None:
        if not isinstance(y, Tensor):
            raise TypeError(f"y must be a torch tensor of targets, not {type(y).__name__}, or None.")
        if len(y) != len(x):
            raise ValueError(f"y has {len(y)} targets for {len(x)} examples of x: give one target per example.")
        if y.dtype != torch.int64 and not y.is_floating_point():
            raise TypeError(
                f"y has dtype {y.dtype}: give int64 class labels (y.long()) for cross-entropy or float targets for"
                " mean squared error."
            )
    for name, value in (("sample_size", sample_size), ("batch_size", batch_size)):
        if value is None and name == "batch_size":
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}.")


@dataclass(frozen=True)
class _ModelState:
    """Everything about a model that a forward and backward pass could change, to check or restore."""

    modes: dict[str, bool]
    buffers: dict[str, Tensor]


def _save_state(model: nn.Module) -> _ModelState:
    return _ModelState(
        modes={name: m.training for name, m in model.named_modules()},
        buffers={name: b.detach().clone() for name, b in model.named_buffers()},
    )


def _restore_state(model: nn.Module, state: _ModelState) -> None:
    for name, module in model.named_modules():
        module.training = state.modes[name]  # not .train(): that would set the children too
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            buffer.copy_(state.buffers[name])


def _model_error(exc: Exception, x: Tensor, y: Tensor | None, model: nn.Module) -> ValueError:
    """What to do when the model could not run on the sample: a ValueError saying so."""
    if len(x) == 1 and any(_uses_batch_statistics(m) for m in model.modules()):
        return ValueError(
            "The model's batch norm cannot normalize a single example in training mode: give diagnose at least"
            f" {BATCHNORM_WARNING_BATCH} examples (notebook 05 §7), or call model.eval() first."
        )
    targets = (
        ""
        if y is None
        else f" and compares its output with y of shape {tuple(y.shape)} (int64 labels: cross-entropy on"
        " [N, classes] logits; floats: mean squared error on outputs of y's shape)"
    )
    return ValueError(
        f"The model raised {type(exc).__name__} on a batch of shape {tuple(x.shape)}, dtype {x.dtype}: {exc}."
        f" diagnose passes x to the model as one batch{targets}: give x (and y) as you would to train it."
    )


def diagnose(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None = None,
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    batch_size: int | None = None,
    seed: int = 0,
) -> Diagnosis:
    """Findings about `model` fed `x`: its inputs, its activations, its signal and, with targets `y`,
    its gradients, each with the numbers and the notebook section that explains the fix (see the
    module's docstring for the codes and where each threshold comes from).

    `x` is a batch of examples, first dimension first, as the model takes it; the input checks use all
    of it, the model sees a sample of `sample_size` rows drawn with `seed` (all rows when fewer). `y`
    (int64 class labels: cross-entropy; floats: mean squared error) adds one backward pass. Give
    `batch_size`, the batch size you train with, for batch norm's check. The model runs in its own
    mode (train or eval, layer by layer) and is left exactly as it was.
    """
    _check_arguments(model, x, y, sample_size, batch_size)
    drawn = torch.randperm(len(x), generator=make_generator(seed))[:sample_size] if len(x) > sample_size else None
    sample_x = (x if drawn is None else x[drawn.to(x.device)]).detach()
    sample_y = None if y is None else (y if drawn is None else y[drawn.to(y.device)]).detach()

    saturating = {name for name, m in model.named_modules() if isinstance(m, SATURATING_ACTIVATIONS)}
    watched = any(_kind(m) is not None for m in model.modules())
    stats: list[LayerStats] = []
    if watched:
        state = _save_state(model)
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        try:
            # Dropout and other random layers draw from PyTorch's generator: seed it for a repeatable
            # diagnosis, inside a fork so that the learner's own random state is left as it was.
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(course_seed(seed))
                stats = layer_stats(model, sample_x, sample_y)
        except Exception as exc:
            raise _model_error(exc, sample_x, sample_y, model) from exc
        finally:
            _restore_state(model, state)

    normalized_by_model = bool(stats) and stats[0].kind == "norm"
    findings = _input_findings(input_statistics(x), normalized_by_model)
    if not any(s.kind == "activation" for s in stats):
        findings.append(
            Finding(
                "activations_not_found",
                "info",
                "No activation module ran, so saturation, dead units and the signal through depth were not checked.",
                "Write activations as modules (nn.ReLU()) rather than functions (torch.relu) so that hooks see them"
                " (notebook 02 §3 measures them the same way).",
                {},
                ("02 §3",),
            )
        )
    findings += _activation_findings(stats, saturating)
    findings += _signal_findings(stats)
    if y is not None:
        findings += _gradient_findings(stats)
    findings += _batchnorm_findings(model, len(sample_x), batch_size)
    order = {severity: rank for rank, severity in enumerate(reversed(SEVERITIES))}
    findings.sort(key=lambda f: order[f.severity])  # stable: within a severity, inputs to outputs
    return Diagnosis(
        findings=tuple(findings),
        examples=len(sample_x),
        total_examples=len(x),
        with_gradients=y is not None,
        layers=tuple(stats),
    )


# ---------------------------------------------------------------------------------------- learning rate

DEFAULT_RATES: tuple[float, ...] = tuple(float(r) for r in np.logspace(-4, 1, 11))  # 10⁻⁴ … 10, half decades
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)
MAX_SWEEP_STEPS = 1000  # a range test is short; longer sweeps: course_utils.batched.sweep_seeds
MAX_VALIDATION_ROWS = 2000
# A rate "learns" when its median validation accuracy is above chance + LEARNS_SHARE·(1 − chance):
# 05 §3 counts a rate as learning when its run reaches 50 % on ten balanced classes (chance 10 %),
# which is this line for LEARNS_SHARE = 4/9; the same share of the way from chance to perfect for
# any number of classes.
LEARNS_SHARE = 4 / 9


@dataclass(frozen=True, eq=False)
class LearningRateSuggestion:
    """What `suggest_learning_rate` measured: one entry per rate (ascending) in every array."""

    rates: np.ndarray
    accuracies: np.ndarray  # median validation accuracy over the seeds
    losses: np.ndarray  # median last training loss over the seeds (inf where most seeds diverged)
    diverged: np.ndarray  # bool: more than half of the seeds' runs diverged (loss NaN/inf)
    learns: np.ndarray  # bool: not diverged, and median accuracy above `learns_above`
    chance: float  # the accuracy of always answering the validation split's most common class
    learns_above: float
    rate: float | None  # the suggested rate: the best median accuracy among the rates that learn
    learning_range: tuple[float, float] | None  # the unbroken run of learning rates around `rate`
    points: dict[int, list[SweepPoint]]  # seed -> one run per rate, as batched.sweep_seeds returns them
    steps: int  # training steps per run (fewer where a run diverged)

    def plot(self, ax: Axes | None = None) -> Figure:
        """Median validation accuracy against the rate (× where most seeds diverged), the line a rate must
        beat to count as learning, the learning range shaded and the suggested rate; returns the figure."""
        import matplotlib.pyplot as plt

        from course_utils.plots import plot_lr_sweep

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
        plot_lr_sweep(ax, self.points, f"median of {len(self.points)} seeds")
        ax.axhline(self.learns_above, color="grey", linestyle=":", label=f"learns: above {self.learns_above:.2f}")
        if self.learning_range is not None and self.rate is not None:
            ax.axvspan(*self.learning_range, color="tab:green", alpha=0.12, label="learning range")
            ax.axvline(self.rate, color="tab:green", linestyle="--", label=f"suggested {self.rate:.3g}")
        ax.set_ylabel("validation accuracy")
        ax.set_title(f"Learning-rate range test, {self.steps} steps per run")
        ax.legend(fontsize="small")
        figure = ax.get_figure()
        assert figure is not None
        return figure  # type: ignore[return-value]  # a SubFigure only when ax was placed in one

    def __str__(self) -> str:
        broken = ", ".join(f"{r:.3g}" for r in self.rates[self.diverged])
        diverged = f"; diverged: {broken}" if broken else ""
        if self.rate is None or self.learning_range is None:
            return (
                f"No rate learned in {self.steps} steps (median validation accuracy above {self.learns_above:.3f};"
                f" best {float(np.max(self.accuracies)):.3f}){diverged}. Diagnose the model first, or try"
                " other rates or more steps."
            )
        best = float(self.accuracies[list(self.rates).index(self.rate)])
        low, high = self.learning_range
        return (
            f"Suggested learning rate {self.rate:.3g} (median validation accuracy {best:.3f} over"
            f" {len(self.points)} seeds, {self.steps} steps); rates {low:.3g} to {high:.3g} learn{diverged}."
        )


def _check_sweep_arguments(
    make_model: object,
    x: object,
    y: object,
    rates: Sequence[float],
    steps: object,
    batch_size: object,
    seeds: Sequence[int],
    validation_share: object,
) -> None:
    if isinstance(make_model, nn.Module) or not callable(make_model):
        raise TypeError(
            "make_model must be a function that builds a fresh model, e.g. lambda: mlp(30, [64], 2): every rate"
            f" and seed trains new weights. Got {type(make_model).__name__}."
        )
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"x and y must be torch tensors, got {type(x).__name__} and {type(y).__name__}.")
    if len(x) != len(y):
        raise ValueError(f"y has {len(y)} labels for {len(x)} examples of x: give one label per example.")
    if len(x) < 10:
        raise ValueError(f"x has {len(x)} examples; a learning-rate sweep needs at least 10 (some are held out).")
    if not x.is_floating_point():
        raise TypeError(f"x has dtype {x.dtype}; the model needs floats: preprocess it, or pass x.float().")
    if y.dtype != torch.int64:
        raise TypeError(
            f"y has dtype {y.dtype}: suggest_learning_rate ranks rates by validation accuracy, so it needs int64"
            " class labels (y.long())."
        )
    if len(rates) < 2 or not all(
        isinstance(r, numbers.Real) and not isinstance(r, bool) and math.isfinite(r) and r > 0 for r in rates
    ):
        raise ValueError(
            f"rates must be two or more positive finite numbers, e.g. numpy.logspace(-4, 1, 11); got {rates!r}."
        )
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_SWEEP_STEPS:
        raise ValueError(
            f"steps must be an integer from 1 to {MAX_SWEEP_STEPS} (a range test is short; for long sweeps use"
            f" course_utils.batched.sweep_seeds), not {steps!r}."
        )
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}.")
    if len(seeds) == 0:
        raise ValueError("seeds is empty: give the seeds to train, e.g. seeds=(0, 1, 2).")
    if not (isinstance(validation_share, (int, float)) and not isinstance(validation_share, bool)) or not (
        0 < validation_share < 1
    ):
        raise ValueError(f"validation_share must be a number between 0 and 1, e.g. 0.2, not {validation_share!r}.")


def suggest_learning_rate(
    make_model: Callable[[], nn.Module],
    x: Tensor,
    y: Tensor,
    *,
    rates: Sequence[float] | np.ndarray | None = None,
    steps: int = 200,
    batch_size: int = 64,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    optimizer: Literal["sgd", "adam"] = "sgd",
    momentum: float = 0.0,
    validation_share: float = 0.2,
) -> LearningRateSuggestion:
    """A learning-rate range test for a classifier: train a fresh `make_model()` for about `steps` steps
    at every rate (default `DEFAULT_RATES`, 10⁻⁴ to 10) and seed, and suggest the rate with the best
    median validation accuracy among those that learn.

    A held-out `validation_share` of the rows (at most `MAX_VALIDATION_ROWS`, drawn with a fixed seed:
    a split defines the data) measures the accuracy; the rest trains, a seeded subset of
    `steps · batch_size` rows at most. Each seed is trained as `fit` trains it, every rate × seed as one
    batched model where the model allows it (`batched.sweep_seeds`). A run whose loss turns NaN or inf
    is a result: it stops there, and a rate where most seeds diverged never learns.
    """
    candidates, seeds = list(DEFAULT_RATES if rates is None else rates), list(seeds)
    _check_sweep_arguments(make_model, x, y, candidates, steps, batch_size, seeds, validation_share)
    swept = sorted(float(r) for r in candidates)
    if len(set(swept)) != len(swept):
        raise ValueError(f"rates has repeated values: {swept}; give each rate once.")

    # The split is part of the data, not of a run: a fixed generator, not shifted by COURSE_SEED_OFFSET.
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).to(x.device)
    validation_rows = min(max(1, round(validation_share * len(x))), MAX_VALIDATION_ROWS, len(x) - 2)
    x_val, y_val = x[order[:validation_rows]], y[order[:validation_rows]]
    train_order = order[validation_rows:][: steps * batch_size]
    x_train, y_train = x[train_order], y[train_order]
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    epochs = max(1, round(steps / steps_per_epoch))

    points = sweep_seeds(
        make_model,
        x_train,
        y_train,
        swept,
        seeds=seeds,
        epochs=epochs,
        batch_size=batch_size,
        x_val=x_val,
        y_val=y_val,
        optimizer=optimizer,
        momentum=momentum,
    )
    accuracies = median_accuracy_by_rate(points)
    losses = np.median(final_losses(points), axis=0)
    diverged = np.array([2 * sum(run[i].diverged for run in points.values()) > len(points) for i in range(len(swept))])
    chance = float(torch.bincount(y_val).max()) / len(y_val)
    learns_above = chance + LEARNS_SHARE * (1 - chance)
    learns = ~diverged & (accuracies > learns_above)

    rate: float | None = None
    learning_range: tuple[float, float] | None = None
    if learns.any():
        # The best median accuracy among the rates that learn; the smaller rate on a tie.
        best = max(np.flatnonzero(learns), key=lambda i: (accuracies[i], -swept[i]))
        low = high = int(best)
        while low > 0 and learns[low - 1]:
            low -= 1
        while high < len(swept) - 1 and learns[high + 1]:
            high += 1
        rate, learning_range = swept[best], (swept[low], swept[high])
    return LearningRateSuggestion(
        rates=np.array(swept),
        accuracies=accuracies,
        losses=losses,
        diverged=diverged,
        learns=learns,
        chance=chance,
        learns_above=learns_above,
        rate=rate,
        learning_range=learning_range,
        points=points,
        steps=epochs * steps_per_epoch,
    )
