"""Several seeds (or learning rates) of one small network, trained as one batched computation.

`fit_seeds` trains member i exactly as `fit` trains `seed_everything(seeds[i]); make_model()`: the
same initial weights, batch order, optimizer arithmetic and divergence handling, so each History
matches a sequential `fit` up to float rounding. The members' parameters are stacked along a new
leading dimension and each step is one computation for all of them, which saves the per-step
overhead (Python, autograd, optimizer, kernel launches) S - 1 times: a large gain where that overhead
dominates (small tabular networks: about 4x for 5 seeds on a 2-core CPU; expected on a GPU too, not
measured), a small one where the arithmetic does (mlp(784, 128, 10) on a CPU: about 1.2x). Measured
by benchmarks/batched_seeds.py.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from course_utils.runtime import course_seed, default_device, make_generator, progress_enabled, seed_everything
from course_utils.train import (
    CLASSIFICATION_LOSSES,
    History,
    SweepPoint,
    _check_run,
    _loss_function,
    _model_output,
    clipped_probability_loss,
    fit,
    minibatch_indices,
)

Params = dict[str, Tensor]  # parameter name -> the members' values stacked: [S, *shape]
# (stacked params, inputs, shared) -> outputs [S, B, ...]; inputs are [S, B, ...], or [B, ...]
# shared by all members when `shared` (full-batch training, validation).
Forward = Callable[[Params, Tensor, bool], Tensor]
_EVAL_ROWS = 4096  # rows per validation chunk for one member, like `evaluate`; fewer for many members
_EVAL_MEMBER_ROWS = 4096  # rows × members per chunk: bounds the memory of a pass of a large sweep (a CNN sweep of
# 21 members peaked 0.3 GB higher at 16,384)
_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.Identity)
# The running statistics of each member's BatchNorm1d layers, stacked [S, C] (in the fast forward).
Buffers = dict[str, Tensor]
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults, which `fit` uses


def _learning_rates(lr: float | Sequence[float], count: int) -> list[float]:
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        rates = [float(lr)] * count
    else:
        try:
            rates = [float(value) for value in lr]  # type: ignore[union-attr]
        except (TypeError, ValueError) as exc:
            raise TypeError(f"lr must be a number or a sequence of numbers (one per seed), not {lr!r}.") from exc
        if len(rates) != count:
            raise ValueError(
                f"lr has {len(rates)} values for {count} seeds: give one lr for all seeds or one per "
                "seed (for a sweep, repeat the seeds: seeds=[0, 0, 1, 1], lr=[0.1, 0.01, 0.1, 0.01])."
            )
    for rate in rates:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"lr must be a positive finite number, not {rate!r}.")
    return rates


def _plain_batch_norm(module: nn.Module) -> bool:
    """A BatchNorm1d as `mlp` makes it: affine, tracking running statistics with a fixed momentum."""
    return (
        type(module) is nn.BatchNorm1d and module.affine and module.track_running_stats and module.momentum is not None
    )


def _batch_norm(
    module: nn.BatchNorm1d, name: str, params: Params, buffers: Buffers, h: Tensor, training: bool
) -> Tensor:
    """nn.BatchNorm1d on [S, B, C], each member with its own γ, β and running statistics."""
    weight, bias = params[f"{name}.weight"].unsqueeze(1), params[f"{name}.bias"].unsqueeze(1)
    mean_key, var_key = f"{name}.running_mean", f"{name}.running_var"
    if training:
        if h.shape[1] < 2:  # as nn.BatchNorm1d: one row has no batch variance
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {tuple(h.shape[1:])}"
            )
        mean, variance = h.mean(dim=1, keepdim=True), h.var(dim=1, correction=0, keepdim=True)
        with torch.no_grad():  # as PyTorch: running_var keeps the unbiased variance
            count, m = h.shape[1], float(module.momentum)  # type: ignore[arg-type]
            buffers[mean_key].mul_(1 - m).add_(mean.squeeze(1), alpha=m)
            buffers[var_key].mul_(1 - m).add_(variance.squeeze(1) * (count / max(count - 1, 1)), alpha=m)
    else:
        mean, variance = buffers[mean_key].unsqueeze(1), buffers[var_key].unsqueeze(1)
    return (h - mean) / torch.sqrt(variance + module.eps) * weight + bias


def _linear_stack_forward(model: nn.Module, sample_dims: int, buffers: Buffers) -> tuple[Forward, set[str]] | None:
    """Batched matmuls for an nn.Sequential of Flatten, Linear, BatchNorm1d and elementwise
    activations (what `mlp` builds), and the names of the weights it wants stacked transposed,
    [S, in, out]: CPU batched matmuls run markedly faster on that layout than on transposed views.
    Far less per-step overhead than vmap. Batch norm uses and updates the members' running
    statistics in `buffers` (batch statistics in training mode, running ones in eval mode, as
    `model.training` says). None for any other model."""
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        return None
    layers = list(model.named_children())
    flat_first = isinstance(layers[0][1], nn.Flatten) and layers[0][1].start_dim == 1 and layers[0][1].end_dim == -1
    if not (sample_dims == 1 or flat_first):  # the matmuls below need [S, B, features]
        return None
    if not all(
        isinstance(m, (nn.Linear, *_ELEMENTWISE)) or _plain_batch_norm(m) for _, m in layers[1 if flat_first else 0 :]
    ):
        return None

    def forward(params: Params, h: Tensor, shared: bool) -> Tensor:
        for name, module in layers:
            if isinstance(module, nn.Flatten):
                h = h.flatten(1 if shared else 2)
            elif isinstance(module, nn.BatchNorm1d):
                if shared:  # statistics are per member: give every member its own copy of the rows
                    h, shared = h.expand(len(params[f"{name}.weight"]), *h.shape), False
                h = _batch_norm(module, name, params, buffers, h, model.training)
            elif isinstance(module, nn.Linear):
                weight, bias = params[f"{name}.weight"], params.get(f"{name}.bias")  # [S, in, out], [S, out]
                if shared:  # every member sees the same rows: one matmul against all weights side by side
                    members, width = weight.shape[0], weight.shape[2]
                    side_by_side = weight.transpose(0, 1).reshape(weight.shape[1], members * width)
                    h = h @ side_by_side if bias is None else torch.addmm(bias.flatten(), h, side_by_side)
                    h, shared = h.view(len(h), members, width).transpose(0, 1), False
                else:
                    h = torch.bmm(h, weight) if bias is None else torch.baddbmm(bias.unsqueeze(1), h, weight)
            else:
                h = module(h)
        return h.expand(len(next(iter(params.values()))), *h.shape) if shared else h

    return forward, {f"{name}.weight" for name, m in layers if isinstance(m, nn.Linear)}


def _vmap_forward(template: nn.Module) -> Forward:
    """Any buffer-free model: `functional_call` with each member's parameters, vectorized by vmap."""

    def one(p: Params, xb: Tensor) -> Tensor:
        out: Tensor = functional_call(template, p, (xb,))
        return out

    def forward(params: Params, h: Tensor, shared: bool) -> Tensor:
        out: Tensor = vmap(one, in_dims=(0, None if shared else 0))(params, h)
        return out

    return forward


def _member_losses(out: Tensor, target: Tensor, loss: str) -> Tensor:
    """Each member's mean loss over its batch, [S]: the reduction of `fit`'s criterion, per member."""
    if loss == "cross_entropy":
        per_item = F.cross_entropy(out.movedim(2, 1), target, reduction="none")  # classes on dim 1
    elif loss == "clipped_probabilities":
        per_item = clipped_probability_loss(out, target, reduction="none")
    else:
        if out.numel() == target.numel():  # as in `_model_output`: outputs [B, 1] against targets [B]
            out = out.reshape(target.shape)
        per_item = F.mse_loss(out, target, reduction="none")
    return per_item.flatten(1).mean(dim=1)


@torch.no_grad()
def _validate(
    forward: Forward, params: Params, x: Tensor, y: Tensor, loss: str, device: torch.device
) -> tuple[list[float], list[float]]:
    """Per member: mean loss (as `mean_loss`) and accuracy (as `evaluate`; cross-entropy only)."""
    members = len(next(iter(params.values())))
    totals, correct = [0.0] * members, [0] * members
    rows = max(256, min(_EVAL_ROWS, _EVAL_MEMBER_ROWS // members))
    for xb, yb in zip(torch.split(x, rows), torch.split(y, rows), strict=True):
        xb, yb = xb.to(device), yb.to(device)
        out = forward(params, xb, True)
        losses = _member_losses(out, yb.expand(members, *yb.shape), loss).tolist()
        totals = [total + value * len(yb) for total, value in zip(totals, losses, strict=True)]
        if loss in CLASSIFICATION_LOSSES:
            hits = (out.argmax(dim=2) == yb).sum(dim=1).tolist()
            correct = [c + h for c, h in zip(correct, hits, strict=True)]
    accuracies = [c / len(y) for c in correct] if loss in CLASSIFICATION_LOSSES else []
    return [total / len(y) for total in totals], accuracies


def _structural_problem(models: Sequence[nn.Module], fast: bool) -> str | None:
    """Why the members cannot share one stacked computation, judged from their structure alone."""
    first = models[0]
    if not fast and any(True for _ in first.buffers()):
        return (
            "it has buffers (e.g. BatchNorm running statistics outside an mlp-like nn.Sequential), which a "
            "batched run does not keep per member"
        )
    if not any(True for _ in first.parameters()):
        return "it has no parameters"
    if not all(p.requires_grad for p in first.parameters()):
        return "some of its parameters are frozen (requires_grad=False)"
    signature = [(name, p.shape, p.dtype) for name, p in first.named_parameters()]
    if any(
        type(m) is not type(first) or [(n, p.shape, p.dtype) for n, p in m.named_parameters()] != signature
        for m in models[1:]
    ):
        return "make_model() built members with different parameters"
    return None


def _probe(
    forward: Forward,
    template: nn.Module,
    params: Params,
    buffers: Buffers,
    x: Tensor,
    y: Tensor,
    loss: str,
    validate: bool,
) -> str | None:
    """Run a batched step on two rows, and a batched validation if one is due: the reason it
    failed, or None. Done before training so that a fallback starts from scratch."""
    members = len(next(iter(params.values())))
    xs, ys = x[:2], y[:2]
    saved = {k: b.clone() for k, b in buffers.items()}  # a training-mode probe updates running statistics
    try:
        for shared in (False, True):
            inputs = xs if shared else xs.expand(members, *xs.shape)
            losses = _member_losses(forward(params, inputs, shared), ys.expand(members, *ys.shape), loss)
            torch.autograd.grad(losses.sum(), list(params.values()))
        if validate:
            template.eval()
            _validate(forward, params, xs, ys, loss, x.device)
    except Exception as exc:
        return f"batching it failed ({type(exc).__name__}: {exc})"
    finally:
        template.train()
        for k, b in saved.items():
            buffers[k].copy_(b)
    return None


@dataclass(frozen=True)
class SeedRun:
    """One member of `train_seeds`: its History and the trained model (an ordinary nn.Module)."""

    history: History
    model: nn.Module


def fit_seeds(
    make_model: Callable[[], nn.Module],
    x: Tensor,
    y: Tensor,
    *,
    seeds: Sequence[int],
    lr: float | Sequence[float],
    epochs: int,
    batch_size: int,
    optimizer: Literal["sgd", "adam"] = "sgd",
    momentum: float = 0.0,
    x_val: Tensor | None = None,
    y_val: Tensor | None = None,
    loss: Literal["cross_entropy", "mse", "clipped_probabilities"] = "cross_entropy",
    device: torch.device | str | None = None,
    progress: bool | None = None,
    batched: bool | None = None,
) -> list[History]:
    """One History per seed, each as `fit(seed_everything(s); make_model(), ..., seed=s)` gives it.

    `lr` is one rate for all members or one per seed, so a learning-rate sweep over several seeds
    is one call (repeat the seeds; `sweep_seeds` does that). A member whose loss turns NaN/inf
    stops, as in `fit`; the others go on. `wall_time` of each History is the batched training time
    divided by the number of members (its share of the time), summed over the epochs it trained in.

    `batched=None` trains the members together when the model allows it (an nn.Sequential of
    Flatten, Linear, BatchNorm1d and elementwise activations, as `mlp` builds, or any buffer-free
    model that torch.func.vmap can run) and otherwise, silently, one after another with `fit`;
    `batched=False` always runs them sequentially; `batched=True` raises a ValueError when the
    model cannot be batched. `train_seeds` also returns the trained models.
    """
    return [
        run.history
        for run in train_seeds(
            make_model,
            x,
            y,
            seeds=seeds,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            momentum=momentum,
            x_val=x_val,
            y_val=y_val,
            loss=loss,
            device=device,
            progress=progress,
            batched=batched,
        )
    ]


def train_seeds(
    make_model: Callable[[], nn.Module],
    x: Tensor,
    y: Tensor,
    *,
    seeds: Sequence[int],
    lr: float | Sequence[float],
    epochs: int,
    batch_size: int,
    optimizer: Literal["sgd", "adam"] = "sgd",
    momentum: float = 0.0,
    x_val: Tensor | None = None,
    y_val: Tensor | None = None,
    loss: Literal["cross_entropy", "mse", "clipped_probabilities"] = "cross_entropy",
    device: torch.device | str | None = None,
    progress: bool | None = None,
    batched: bool | None = None,
) -> list[SeedRun]:
    """`fit_seeds`, also returning each member's trained model (rebuilt from the stacked weights)."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give the seeds to train, e.g. seeds=range(5).")
    for seed in seeds:
        course_seed(seed)  # checks each seed (and $COURSE_SEED_OFFSET) before any training
    rates = _learning_rates(lr, len(seeds))
    criterion = _loss_function(loss)
    if not (isinstance(momentum, numbers.Real) and math.isfinite(momentum) and momentum >= 0):
        raise ValueError(f"momentum must be a non-negative number, not {momentum!r}.")
    _check_run(optimizer, epochs, batch_size, x, y, x_val, y_val, loss, "fit_seeds")
    if not (batched is None or isinstance(batched, bool)):
        raise TypeError(f"batched must be True, False or None (choose automatically), not {batched!r}.")

    def build(seed: int) -> nn.Module:
        seed_everything(seed)  # exactly how sweep_learning_rates builds each model
        return make_model()

    def sequential() -> list[SeedRun]:
        runs = []
        for seed, rate in zip(seeds, rates, strict=True):
            model = build(seed)
            history = fit(
                model,
                x,
                y,
                optimizer=optimizer,
                lr=rate,
                epochs=epochs,
                batch_size=batch_size,
                seed=seed,
                x_val=x_val,
                y_val=y_val,
                momentum=momentum,
                loss=loss,
                device=device,
                progress=progress,
            )
            runs.append(SeedRun(history, model))
        return runs

    if batched is False:
        return sequential()
    target = torch.device(device) if device is not None else default_device()
    models = [build(seed) for seed in seeds]
    template = models[0].to(target).train()
    buffers: Buffers = {
        name: torch.stack([dict(m.named_buffers())[name].detach() for m in models]).to(target).clone()
        for name, _ in template.named_buffers()
        if not name.endswith("num_batches_tracked")
    }
    fast = _linear_stack_forward(template, x.dim() - 1, buffers)
    reason = _structural_problem(models, fast is not None)
    if reason is None:
        rows = min(batch_size, len(x))
        xs, ys = x[:rows].to(target), y[:rows].to(target)
        try:
            with torch.no_grad():
                criterion(_model_output(template, xs, loss, ys), ys)
        except RuntimeError:
            return sequential()  # the model does not fit the data at all: `fit` says why, clearly
        forward, transposed = fast or (_vmap_forward(template), set())
        params = {
            name: torch.stack([dict(m.named_parameters())[name].detach() for m in models])
            for name, _ in template.named_parameters()
        }
        params = {
            name: (p.transpose(1, 2) if name in transposed else p).contiguous().to(target).requires_grad_()
            for name, p in params.items()
        }
        reason = _probe(forward, template, params, buffers, xs, ys, loss, validate=x_val is not None)
    if reason is not None:
        if batched:
            raise ValueError(
                f"batched=True, but this model cannot be trained batched: {reason}. "
                "Pass batched=None (or False) to train the seeds one after another with fit."
            )
        return sequential()
    del models  # their parameters were copied into `params`
    seed_everything(seeds[-1])  # leave the global generators as the sequential runs would
    histories, final, final_buffers = _train(
        forward,
        template,
        params,
        buffers,
        x.to(target),
        y.to(target),
        seeds,
        rates,
        epochs,
        batch_size,
        optimizer,
        momentum,
        x_val,
        y_val,
        loss,
        target,
        progress,
    )
    return [
        SeedRun(history, _member_model(template, final, final_buffers, transposed, member, history.steps))
        for member, history in enumerate(histories)
    ]


def _member_model(
    template: nn.Module, params: Params, buffers: Buffers, transposed: set[str], member: int, steps: int
) -> nn.Module:
    """Member `member` of the stacked weights as an ordinary module (a copy of the template)."""
    model = copy.deepcopy(template)
    with torch.no_grad():
        for name, p in model.named_parameters():
            value = params[name][member]
            p.copy_(value.transpose(0, 1) if name in transposed else value)
        for name, b in model.named_buffers():
            if name.endswith("num_batches_tracked"):
                b.fill_(steps)  # one update per training step, as in `fit` (a diverged step is not taken)
            else:
                b.copy_(buffers[name][member])
    return model


def _train(
    forward: Forward,
    template: nn.Module,
    params: Params,
    buffers: Buffers,
    x: Tensor,
    y: Tensor,
    seeds: list[int],
    rates: list[float],
    epochs: int,
    batch_size: int,
    optimizer: str,
    momentum: float,
    x_val: Tensor | None,
    y_val: Tensor | None,
    loss: str,
    device: torch.device,
    progress: bool | None,
) -> tuple[list[History], Params, Buffers]:
    """The batched loop of `fit_seeds`: `fit`'s loop, with one row of every tensor per member.
    Returns the histories and every member's final parameters and buffers, in member order."""
    count = len(seeds)
    histories = [History() for _ in seeds]
    shufflers = [make_generator(seed) for seed in seeds]
    alive = list(range(count))  # the members still training, in the order of the stacked rows
    # Per-member rates in float64, like torch's Python scalars (MPS has no float64: float32 there).
    lr64 = torch.tensor(rates, dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
    state: dict[str, Params] = {"buf": {}, "exp_avg": {}, "exp_avg_sq": {}}
    if optimizer == "adam":
        state["exp_avg"] = {k: torch.zeros_like(p) for k, p in params.items()}
        state["exp_avg_sq"] = {k: torch.zeros_like(p) for k, p in params.items()}
    adam_steps = 0
    bar = None
    if progress_enabled(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=f"{optimizer} x {count} seeds", leave=False)

    # Members that diverged, as they were left: their parameters and buffers, by member index.
    retired: dict[int, tuple[Params, Buffers]] = {}
    for _ in range(epochs):
        start = time.perf_counter()
        trained = list(alive)
        epoch_losses: dict[int, list[float]] = {m: [] for m in alive}
        frozen: list[int] = []  # members that diverged this epoch
        orders = {m: list(minibatch_indices(len(x), batch_size, generator=shufflers[m])) for m in alive}
        for step in range(len(orders[alive[0]])):
            if batch_size >= len(x):  # full batch, as in `fit`: the same rows for all, no gather
                xb, yb, shared = x, y.expand(len(alive), *y.shape), True
            else:
                index = torch.cat([orders[m][step] for m in alive]).to(device)
                # index_select, then a view [S, B, ...]: several times faster than x[index [S, B]]
                xb = x.index_select(0, index).view(len(alive), -1, *x.shape[1:])
                yb, shared = y.index_select(0, index).view(len(alive), -1, *y.shape[1:]), False
            losses = _member_losses(forward(params, xb, shared), yb, loss)
            values = losses.tolist()  # the only sync of the step
            # A NaN member's gradient rows may be NaN; no operation mixes members, and those rows
            # are dropped below, before the update, so nothing of it reaches the others.
            grads = torch.autograd.grad(torch.where(losses.isfinite(), losses, 0.0).sum(), list(params.values()))
            finite = [math.isfinite(v) for v in values]
            for member, value, ok in zip(alive, values, finite, strict=True):
                history = histories[member]
                history.step_loss.append(value)
                if ok:
                    epoch_losses[member].append(value)
                else:
                    history.diverged, history.diverged_at_step = True, history.steps - 1
            with torch.no_grad():
                if not all(finite):  # freeze the diverged members: keep their rows out of everything
                    keep_rows = [row for row, ok in enumerate(finite) if ok]
                    for row in (row for row, ok in enumerate(finite) if not ok):
                        frozen.append(alive[row])
                        retired[alive[row]] = (
                            {k: p[row].detach().clone() for k, p in params.items()},
                            {k: b[row].clone() for k, b in buffers.items()},
                        )
                    keep = torch.tensor(keep_rows, device=device, dtype=torch.long)
                    params = {k: p[keep].requires_grad_() for k, p in params.items()}
                    buffers.update({k: b[keep] for k, b in buffers.items()})  # in place: the forward reads it
                    grads = tuple(g[keep] for g in grads)
                    state = {name: {k: t[keep] for k, t in tensors.items()} for name, tensors in state.items()}
                    lr64, alive = lr64[keep], [alive[row] for row in keep_rows]
                    if not alive:
                        break
                adam_steps += optimizer == "adam"
                _update(params, grads, state, lr64, optimizer, momentum, adam_steps)
        elapsed = time.perf_counter() - start
        for member in trained:
            histories[member].wall_time += elapsed / count  # its share of the batched time
            if epoch_losses[member]:
                histories[member].epoch_train_loss.append(sum(epoch_losses[member]) / len(epoch_losses[member]))
        if x_val is not None and y_val is not None:
            # Also the members that diverged this epoch, as `fit` does: the model as it was left.
            members = alive + frozen
            stacked = {
                k: torch.cat([p.detach(), *(retired[m][0][k].unsqueeze(0) for m in frozen)]) for k, p in params.items()
            }
            training_buffers = dict(buffers)
            buffers.update(
                {
                    k: torch.cat([b, *(retired[m][1][k].unsqueeze(0) for m in frozen)])
                    for k, b in training_buffers.items()
                }
            )
            template.eval()
            val_losses, val_accuracies = _validate(forward, stacked, x_val, y_val, loss, device)
            template.train()
            buffers.update(training_buffers)
            for row, member in enumerate(members):
                histories[member].epoch_val_loss.append(val_losses[row])
                if val_accuracies:
                    histories[member].epoch_val_accuracy.append(val_accuracies[row])
        if bar is not None:
            bar.update(1)
        if not alive:
            break
    if bar is not None:
        bar.close()
    order = alive + sorted(retired)
    final = {
        k: torch.cat([p.detach(), *(retired[m][0][k].unsqueeze(0) for m in sorted(retired))]) for k, p in params.items()
    }
    final_buffers = {
        k: torch.cat([b, *(retired[m][1][k].unsqueeze(0) for m in sorted(retired))]) for k, b in buffers.items()
    }
    rows = torch.tensor([order.index(m) for m in range(count)], device=device, dtype=torch.long)
    return histories, {k: v[rows] for k, v in final.items()}, {k: v[rows] for k, v in final_buffers.items()}


@torch.no_grad()
def _update(
    params: Params,
    grads: Sequence[Tensor],
    state: dict[str, Params],
    lr64: Tensor,
    optimizer: str,
    momentum: float,
    adam_steps: int,
) -> None:
    """One step of torch.optim.SGD or Adam (default settings, as in `fit`), each member at its own lr."""
    if optimizer == "adam":
        correction1 = 1 - _BETA1**adam_steps
        correction2_sqrt = (1 - _BETA2**adam_steps) ** 0.5
        lr64 = lr64 / correction1  # Adam's step size, in float64 like torch's Python scalars
    negated: dict[torch.dtype, Tensor] = {}  # -lr per member, rounded once to each parameter dtype
    for (name, p), grad in zip(params.items(), grads, strict=True):
        if p.dtype not in negated:
            negated[p.dtype] = (-lr64).to(p.dtype)
        rate = negated[p.dtype].view((-1,) + (1,) * (p.dim() - 1))  # broadcast over a member's row
        if optimizer == "sgd":
            if momentum != 0:
                buf = state["buf"].get(name)
                if buf is None:  # torch's first step: the buffer is the gradient itself
                    buf = state["buf"][name] = grad.clone()
                else:
                    buf.mul_(momentum).add_(grad)
                grad = buf
            p.addcmul_(grad, rate)
        else:
            exp_avg, exp_avg_sq = state["exp_avg"][name], state["exp_avg_sq"][name]
            exp_avg.lerp_(grad, 1 - _BETA1)
            exp_avg_sq.mul_(_BETA2).addcmul_(grad, grad, value=1 - _BETA2)
            # torch's formula for a tensor step size (its capturable Adam): the per-member
            # -step_size goes into the denominator, saving a full pass over the parameters.
            denom = exp_avg_sq.sqrt().div_(correction2_sqrt * rate).add_(_EPS / rate)
            p.addcdiv_(exp_avg, denom)


def sweep_seeds(
    make_model: Callable[[], nn.Module],
    x: Tensor,
    y: Tensor,
    lrs: Sequence[float],
    *,
    seeds: Sequence[int],
    epochs: int,
    batch_size: int,
    x_val: Tensor | None = None,
    y_val: Tensor | None = None,
    optimizer: Literal["sgd", "adam"] = "sgd",
    momentum: float = 0.0,
) -> dict[int, list[SweepPoint]]:
    """`sweep_learning_rates` for each seed (seed -> one SweepPoint per rate), every rate × seed
    trained as one batched computation."""
    if len(lrs) == 0:
        raise ValueError("lrs is empty: give the learning rates to try, e.g. numpy.logspace(-4, 0, 9).")
    members = [(float(lr), seed) for seed in seeds for lr in lrs]
    histories = fit_seeds(
        make_model,
        x,
        y,
        seeds=[seed for _, seed in members],
        lr=[lr for lr, _ in members],
        epochs=epochs,
        batch_size=batch_size,
        x_val=x_val,
        y_val=y_val,
        optimizer=optimizer,
        momentum=momentum,
        progress=False,
    )
    points: dict[int, list[SweepPoint]] = {seed: [] for seed in seeds}
    for (lr, seed), history in zip(members, histories, strict=True):
        points[seed].append(SweepPoint(lr, history))
    return points


def best_rate_by_median(points_by_seed: Mapping[int, Sequence[SweepPoint]]) -> float:
    """The rate whose median validation accuracy over the seeds is highest (the smaller on a tie):
    on a coarse grid one seed's best can jump a step; the median over seeds jumps far less often."""
    rates = [p.lr for p in next(iter(points_by_seed.values()))]
    if any([p.lr for p in points] != rates for points in points_by_seed.values()):
        raise ValueError("every seed must have been swept over the same learning rates.")
    medians = [float(np.median([points[i].accuracy for points in points_by_seed.values()])) for i in range(len(rates))]
    return max(zip(medians, rates, strict=True), key=lambda pair: (pair[0], -pair[1]))[1]


def accuracies_at(points_by_seed: Mapping[int, Sequence[SweepPoint]], lr: float) -> np.ndarray:
    """Validation accuracy of each seed's run at learning rate `lr` (seeds in the mapping's order)."""
    found = []
    for seed, points in points_by_seed.items():
        matches = [p.accuracy for p in points if math.isclose(p.lr, lr, rel_tol=1e-9)]
        if not matches:
            rates = ", ".join(f"{p.lr:g}" for p in points)
            raise ValueError(f"seed {seed} has no run at lr={lr:g}; its rates are {rates}.")
        found.append(matches[0])
    return np.array(found)


def median_accuracy_by_rate(points_by_seed: Mapping[int, Sequence[SweepPoint]]) -> np.ndarray:
    """The median validation accuracy over the seeds at each swept rate (in the sweep's order)."""
    rates = [p.lr for p in next(iter(points_by_seed.values()))]
    return np.array([float(np.median(accuracies_at(points_by_seed, lr))) for lr in rates])


def final_losses(points_by_seed: Mapping[int, Sequence[SweepPoint]]) -> np.ndarray:
    """The last training-step loss of every run, as an array [seed, rate] (seeds in the mapping's
    order, rates in the sweep's); `inf` where a run diverged, so a diverged run is never the best."""
    return np.array(
        [[math.inf if p.diverged else p.history.step_loss[-1] for p in points] for points in points_by_seed.values()]
    )


def best_by_final_loss(points_by_seed: Mapping[int, Sequence[SweepPoint]]) -> list[SweepPoint]:
    """Each seed's run with the lowest last training loss (the smaller rate on a tie), in the
    mapping's seed order: the best rate for how far training got, not for held-out accuracy."""
    best = []
    for points, losses in zip(points_by_seed.values(), final_losses(points_by_seed), strict=True):
        best.append(min(zip(losses, points, strict=True), key=lambda pair: (pair[0], pair[1].lr))[1])
    return best
