"""Training: one plan, one loop, for ``fit`` and ``partial_fit`` alike.

:class:`TrainPlan` holds every training choice; :func:`train` runs it on a
:class:`~skvae._module.VAEModule`, and, resumed from an earlier
:class:`TrainResult`, continues it (``partial_fit``). In-memory tensors are
sliced with a random permutation each epoch (no DataLoader); Adam with
gradient clipping; optional KL warm-up, trimming, weight averaging,
closed-form variance steps, early stopping on a validation scheme of
:mod:`skvae._validation`, and a refit on all the data. Torch only.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field, replace

import torch

from ._flat import Weights, flat_parameters
from ._module import VAEModule
from ._validation import VALIDATIONS, Validation, rows_of

#: Gradients are clipped to this global norm (guards against rare spikes).
MAX_GRAD_NORM = 100.0
#: The moving average of the weights is updated every this many steps.
AVERAGE_EVERY = 4
#: Passes that estimate a statistic of the training rows once, at the end of
#: a fit (the closing closed-form variances, the latent usage), read at most
#: this many rows, drawn at random, so that they cost a bounded share of an
#: epoch however many rows there are.
SUMMARY_ROWS = 1 << 15


def summary_rows(
    n_rows: int, generator: torch.Generator, limit: int = SUMMARY_ROWS
) -> torch.Tensor | None:
    """Sorted random indices of ``limit`` of ``n_rows`` rows (None: use all)."""
    if n_rows <= limit:
        return None
    perm = torch.randperm(n_rows, generator=generator, device=generator.device)
    return perm[:limit].sort().values


@dataclass(frozen=True)
class TrainPlan:
    """Every choice of a training run (see the estimators for meanings).

    ``validation`` is None (stop on the training loss), ``"rows"`` (hold out
    ``validation_fraction`` of the rows and score their ELBO) or
    ``"entries"`` (hide that share of the observed entries and score their
    imputation). ``refit`` retrains from the initial weights on all the data
    for the epoch count that validation chose; ``calibrate`` scales the
    closed-form variances to the held-out errors. ``validation_trim``: the
    rows scheme leaves that share of its lowest-scoring held-out rows out of
    the score and the calibration. ``seed`` drives
    minibatches and noise; ``eval_seed`` the fixed draws of validation.
    """

    max_iter: int
    batch_size: int
    learning_rate: float
    beta: float = 1.0
    kl_warmup: int = 0
    tol: float = 1e-4
    n_iter_no_change: int = 10
    n_samples: int = 1
    trim_fraction: float = 0.0
    average_decay: float = 0.0
    variance_step: bool = False
    validation: str | None = None
    validation_fraction: float = 0.1
    validation_samples: int = 50
    validation_trim: float = 0.0
    n_importance_samples: int = 50
    calibrate: bool = False
    refit: bool = False
    seed: int = 0
    eval_seed: int = 0
    verbose: int = 0
    label: str = "skvae fit"


@dataclass
class TrainData:
    """Encoded training rows.

    ``fill`` (the encoded stand-in of a missing entry, per column) and
    ``variable_of_column`` (the variable of each encoded column) are needed
    by the held-out-entries validation only.
    """

    x: torch.Tensor
    mask: torch.Tensor | None = None
    condition: torch.Tensor | None = None
    fill: torch.Tensor | None = None
    variable_of_column: torch.Tensor | None = None


@dataclass
class TrainResult:
    """What training did; pass it back as ``resume`` to continue."""

    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] | None = None
    best_loss: float = float("inf")
    best_validation_score: float | None = None
    n_iter: int = 0
    converged: bool = False
    interrupted: bool = False
    noise_calibration: float = 1.0
    optimizer: torch.optim.Optimizer | None = None


def make_optimizer(module: VAEModule, learning_rate: float) -> torch.optim.Optimizer:
    """Adam; the fused kernel where torch offers it for the device."""
    params = [p for p in module.parameters() if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - old torch
        return torch.optim.Adam(params, lr=learning_rate)


def move_optimizer_state(
    optimizer: torch.optim.Optimizer, device: torch.device
) -> None:
    """Move Adam's moment buffers to ``device`` (in place)."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device)


def clip_gradients(
    params: list[torch.Tensor], max_norm: float, *, synchronize: bool | None = None
) -> None:
    """Scale the gradients in place to a global 2-norm of at most ``max_norm``.

    What ``torch.nn.utils.clip_grad_norm_`` computes (one norm per tensor,
    their norm, a clamped factor), without its per-call checks. With
    ``synchronize`` (the default on the CPU, where reading a value costs
    nothing) the factor is read and the gradients are scaled only when it
    is below 1; otherwise they are always scaled by
    it, with no host synchronisation (an accelerator keeps queueing work).
    Both give the values of ``clip_grad_norm_``.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    if synchronize is None:
        synchronize = factor.device.type == "cpu"
    if synchronize and bool(factor >= 1.0):
        return
    torch._foreach_mul_(grads, factor)


def kl_weight(beta: float, kl_warmup: int, epoch: int) -> float:
    """Linear KL warm-up: ``beta * min(1, (epoch + 1) / kl_warmup)``."""
    if kl_warmup <= 0:
        return beta
    return beta * min(1.0, (epoch + 1) / kl_warmup)


def run_epoch(
    module: VAEModule,
    optimizer: torch.optim.Optimizer,
    data: TrainData,
    plan: TrainPlan,
    *,
    kl_weight: float,
    generator: torch.Generator,
    rows: torch.Tensor | None = None,
    average: list[torch.Tensor] | None = None,
    average_steps: int = 0,
    residuals: list[torch.Tensor] | None = None,
    weights: Weights | None = None,
) -> float:
    """One pass over the rows in random minibatches; the mean loss per row.

    ``rows`` restricts the pass to those row indices (a training split)
    without copying. With ``plan.trim_fraction > 0`` each minibatch's
    highest-loss rows (that share of it) are left out of the gradient (a
    trimmed ELBO); the returned loss still averages over every row. With
    ``plan.n_samples = K > 1`` the loss is the importance-weighted bound with
    K draws per row (IWAE; MIWAE when entries are missing). ``average`` is
    an exponential moving average of the weights with decay
    ``min(plan.average_decay, (1 + t) / (10 + t))`` at step ``t``
    (``average_steps`` steps came before this epoch), taken every
    :data:`AVERAGE_EVERY` steps and at the epoch's last with the decays of
    the steps since multiplied (an average of every fourth step's weights,
    for a quarter of the memory traffic). ``residuals``
    accumulates every row's squared residuals of the shared-variance
    Gaussian columns, trimmed rows included, for a closed-form variance
    update. ``weights`` are the tensors clipped and averaged (by default the
    module's trainable parameters; see :func:`~skvae._flat.flat_parameters`).
    A module with a ``decayed_parameters()`` method (tensors and a rate)
    has those tensors shrunk by ``1 - lr * rate`` after every step
    (decoupled weight decay, as in AdamW).

    Raises
    ------
    FloatingPointError
        If the loss became non-finite.
    """
    x, mask, condition = data.x, data.mask, data.condition
    device = x.device
    n = x.shape[0] if rows is None else rows.shape[0]
    perm = torch.randperm(n, generator=generator, device=device)
    if rows is not None:
        perm = rows[perm]
    shape = (n,) if plan.n_samples == 1 else (plan.n_samples, n)
    # A module may take more noise than its latent draw (word dropout).
    width = getattr(module, "noise_width", module.n_components)
    noise = torch.randn(
        (*shape, width), generator=generator, device=device, dtype=x.dtype
    )
    if weights is None:
        weights = Weights([p for p in module.parameters() if p.requires_grad])
    params, set_to_none = weights.tensors, not weights.flat
    # Decoupled weight decay of the parameters a module names (if any).
    decayed, rate = getattr(module, "decayed_parameters", lambda: ([], 0.0))()
    shrink = 1.0 - optimizer.param_groups[0]["lr"] * rate
    total = torch.zeros((), device=device)
    module.train()
    batch_size = plan.batch_size
    kept, last = 1.0, average_steps + math.ceil(n / batch_size) - 1
    for step, start in enumerate(range(0, n, batch_size), start=average_steps):
        idx = perm[start : start + batch_size]
        xb = x.index_select(0, idx)
        mb = None if mask is None else mask.index_select(0, idx)
        cb = None if condition is None else condition.index_select(0, idx)
        if plan.n_samples == 1:
            eps = noise[start : start + batch_size]
            recon, kl = module.loss_terms(xb, mb, eps, cb, residuals)
            per_row = recon + kl_weight * kl
        else:
            eps = noise[:, start : start + batch_size]
            per_row = module.iwae_loss(xb, mb, eps, cb, kl_weight, residuals)
        loss = per_row.mean()
        objective = loss
        if plan.trim_fraction > 0.0:
            keep = max(1, int(round((1.0 - plan.trim_fraction) * per_row.shape[0])))
            objective = per_row.topk(keep, largest=False, sorted=False).values.mean()
        optimizer.zero_grad(set_to_none=set_to_none)
        objective.backward()
        clip_gradients(params, MAX_GRAD_NORM)
        optimizer.step()
        if decayed:
            with torch.no_grad():
                torch._foreach_mul_(decayed, shrink)
        if average is not None:
            # The share of the average that the steps since its update keep.
            kept *= min(plan.average_decay, (1.0 + step) / (10.0 + step))
            if (step + 1) % AVERAGE_EVERY == 0 or step == last:
                with torch.no_grad():
                    torch._foreach_lerp_(average, params, 1.0 - kept)
                kept = 1.0
        total += loss.detach() * idx.shape[0]
    mean_loss = float(total) / n
    if not math.isfinite(mean_loss):
        raise FloatingPointError(
            "Training diverged: the loss became non-finite. Lower learning_rate, "
            "or check X for extreme values."
        )
    return mean_loss


@torch.no_grad()
def variance_step(
    module: VAEModule,
    data: TrainData,
    *,
    kl_weight: float,
    generator: torch.Generator,
    n_samples: int = 1,
) -> None:
    """Set the shared Gaussian variances to their closed-form optimum.

    One pass over the rows with ``n_samples`` importance-weighted draws per
    row (:func:`refit_feature_variances`); over :data:`SUMMARY_ROWS` rows
    drawn at random when there are more. Every row counts, also under
    trimmed training: variances fitted to the best-fitting rows alone would
    shrink epoch after epoch.
    """
    data = rows_of(data, summary_rows(data.x.shape[0], generator))
    x = data.x
    eps = torch.randn(
        (n_samples, x.shape[0], module.n_components),
        generator=generator,
        device=x.device,
        dtype=x.dtype,
    )
    was_training = module.training
    module.eval()
    refit_feature_variances(
        module, x, data.mask, eps, data.condition, kl_weight=kl_weight
    )
    module.train(was_training)


@torch.no_grad()
def refit_feature_variances(
    module: VAEModule,
    x: torch.Tensor,
    mask: torch.Tensor | None,
    eps: torch.Tensor,
    condition: torch.Tensor | None = None,
    *,
    kl_weight: float = 1.0,
) -> bool:
    """Closed-form update of every shared Gaussian column variance.

    Each variance becomes its column's posterior expected squared residual
    over the rows, with the K draws in ``eps`` (shape (K, n, n_components))
    weighted by their self-normalized importance weights; rows go in
    chunks. Returns whether the module has a shared variance to update.
    """
    residuals = module.residual_sums(x, mask, eps, condition, kl_weight=kl_weight)
    if residuals is None:
        return False
    module.likelihoods.set_feature_variances(residuals)
    return True


# ---------------------------------------------------------------------- the loop
@torch.no_grad()
def _swap(params: list[torch.Tensor], other: list[torch.Tensor]) -> None:
    """Exchange the values of two lists of same-shaped tensors in place."""
    for p, o in zip(params, other, strict=True):
        tmp = p.detach().clone()
        p.copy_(o)
        o.copy_(tmp)


def _progress(plan: TrainPlan, start: int, fractional: bool = False):
    """The epoch bar; ``fractional``: it also moves within epochs (streamed)."""
    from tqdm.auto import tqdm

    bar_format = None
    if fractional:
        bar_format = (
            "{l_bar}{bar}| {n:.2f}/{total_fmt} [{elapsed}<{remaining}, "
            "{rate_fmt}{postfix}]"
        )
    return tqdm(
        total=start + plan.max_iter,
        initial=start,
        desc=plan.label,
        unit="epoch",
        disable=not plan.verbose,
        leave=True,
        bar_format=bar_format,
    )


def _mover(bar, epoch: int):
    """Set the bar to ``epoch`` plus a share of an epoch done (never past it).

    The position is assigned, not accumulated: summed shares could overshoot
    the epoch by a rounding error, which the bar reports as a negative time
    left and a warning.
    """

    def move(done: float) -> None:
        bar.n = epoch + done
        bar.refresh()

    return move


def stream_epoch(
    module: VAEModule,
    optimizer: torch.optim.Optimizer,
    stream,
    plan: TrainPlan,
    *,
    kl_weight: float,
    generator: torch.Generator,
    average: list[torch.Tensor] | None = None,
    average_steps: int = 0,
    residuals: list[torch.Tensor] | None = None,
    progress=None,
    weights: Weights | None = None,
) -> tuple[float, int]:
    """One epoch over streamed buffers of rows: :func:`run_epoch` on each.

    ``stream(generator)`` yields the epoch's :class:`TrainData` buffers and
    ``stream.n_rows`` is their total number of rows; ``progress``, when
    given, is called after each buffer with the share of them done so far
    (at most 1). Returns the mean loss
    per row and the number of steps taken so far (``average_steps`` plus
    this epoch's).
    """
    total, seen = 0.0, 0
    for data in stream(generator):
        n = data.x.shape[0]
        loss = run_epoch(
            module,
            optimizer,
            data,
            plan,
            kl_weight=kl_weight,
            generator=generator,
            average=average,
            average_steps=average_steps,
            residuals=residuals,
            weights=weights,
        )
        average_steps += math.ceil(n / plan.batch_size)
        total += loss * n
        seen += n
        if progress is not None:
            progress(min(1.0, seen / max(1, stream.n_rows)))
    return total / max(1, seen), average_steps


def train(
    module: VAEModule,
    data: TrainData,
    plan: TrainPlan,
    resume: TrainResult | None = None,
    *,
    stream=None,
    validation: Validation | None = None,
) -> TrainResult:
    """Train ``module`` in place for at most ``plan.max_iter`` epochs.

    Stops when the monitored quantity (training loss, or the validation score
    with ``plan.validation``) has not improved by more than ``plan.tol`` for
    ``plan.n_iter_no_change`` epochs after the KL warm-up. With validation,
    the best weights are restored at the end, then (``plan.refit``) the
    module is retrained from its initial weights on all the data for that
    many epochs. Ctrl-C stops training with a warning and keeps the best
    weights.

    ``resume`` continues an earlier run (``partial_fit``): its optimizer
    state, epoch count and loss history carry on, and the variances get no
    closing pass (the epoch's residuals set them).

    With a ``stream`` (see :func:`stream_epoch`), the epochs run over its
    buffers instead of ``data``, which then holds a sample of the rows for
    the closing variance pass; ``validation`` scores rows held out of the
    stream (and no refit follows).
    """
    incremental = resume is not None
    resume = resume if incremental else TrainResult()
    start = resume.n_iter
    generator = torch.Generator(device=data.x.device).manual_seed(plan.seed + start)
    initial = copy.deepcopy(module.state_dict()) if plan.refit else None
    full = data
    rows = None
    if stream is None and plan.validation is not None and not incremental:
        data, rows, validation = VALIDATIONS[plan.validation](data, plan, generator)
    optimizer = resume.optimizer
    if optimizer is None:
        optimizer = make_optimizer(module, plan.learning_rate)
    else:
        move_optimizer_state(optimizer, data.x.device)
    result = replace(
        resume,
        loss_curve=list(resume.loss_curve),
        validation_scores=None if validation is None else [],
        best_validation_score=None if validation is None else -math.inf,
        optimizer=optimizer,
        converged=False,
        interrupted=False,
    )
    params = [p for p in module.parameters() if p.requires_grad]
    with flat_parameters(params, optimizer) as weights:
        _epochs(
            module, data, plan, result, rows, validation, generator, stream, weights
        )
    if plan.variance_step and result.n_iter > start and not incremental:
        # The epochs' residuals came from weights that moved during the epoch
        # (or were averaged since); one pass fits the variances to the final
        # weights.
        variance_step(
            module,
            rows_of(data, rows),
            kl_weight=kl_weight(plan.beta, plan.kl_warmup, result.n_iter - 1),
            generator=generator,
            n_samples=plan.n_samples,
        )
    if validation is not None and plan.calibrate and validation.calibrate:
        result.noise_calibration = validation.calibrate(module)
    refit = initial is not None and stream is None and validation is not None
    if refit and result.validation_scores:
        result = _refit(module, full, plan, result, initial)
    if result.noise_calibration != 1.0:
        module.likelihoods.scale_feature_variances(result.noise_calibration)
    return result


def _epochs(
    module, data, plan, result, rows, validation, generator, stream, weights
) -> None:
    """The epoch loop of :func:`train`; updates ``result`` in place."""
    start = result.n_iter
    params = weights.tensors
    average = None
    if plan.average_decay > 0.0:
        average = [p.detach().clone() for p in params]
    n_rows = data.x.shape[0] if rows is None else rows.shape[0]
    steps = 0
    best_state, no_improvement = None, 0
    bar = _progress(plan, start, fractional=stream is not None)
    try:
        for epoch in range(start, start + plan.max_iter):
            residuals = (
                module.likelihoods.new_residual_sums() if plan.variance_step else None
            )
            weight = kl_weight(plan.beta, plan.kl_warmup, epoch)
            if stream is None:
                loss = run_epoch(
                    module,
                    result.optimizer,
                    data,
                    plan,
                    kl_weight=weight,
                    generator=generator,
                    rows=rows,
                    average=average,
                    average_steps=steps,
                    residuals=residuals,
                    weights=weights,
                )
                steps += math.ceil(n_rows / plan.batch_size)
            else:
                loss, steps = stream_epoch(
                    module,
                    result.optimizer,
                    stream,
                    plan,
                    kl_weight=weight,
                    generator=generator,
                    average=average,
                    average_steps=steps,
                    residuals=residuals,
                    progress=_mover(bar, epoch) if plan.verbose else None,
                    weights=weights,
                )
            if residuals is not None:
                # Adam moves a variance by about the learning rate per step;
                # the epoch's residuals give its optimum.
                module.likelihoods.set_feature_variances(residuals)
            result.loss_curve.append(loss)
            result.n_iter = epoch + 1
            postfix = {"loss": f"{loss:.4g}"}
            if validation is not None:
                module.eval()
                if average is not None:
                    _swap(params, average)
                score = float(validation.score(module))
                postfix["validation"] = f"{score:.4g}"
                improved = score > result.best_validation_score + plan.tol
                if score > result.best_validation_score:
                    result.best_validation_score = score
                    best_state = copy.deepcopy(module.state_dict())
                if average is not None:
                    _swap(params, average)
                result.validation_scores.append(score)
            else:
                improved = loss < result.best_loss - plan.tol
            result.best_loss = min(result.best_loss, loss)
            bar.set_postfix(postfix, refresh=False)
            rest = epoch + 1 - bar.n  # a streamed epoch updated the bar already
            if rest > 1e-9:
                bar.update(rest)
            else:
                bar.refresh()
            warming_up = epoch + 1 < plan.kl_warmup
            no_improvement = 0 if (improved or warming_up) else no_improvement + 1
            if no_improvement >= plan.n_iter_no_change:
                result.converged = True
                break
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=4)
        result.interrupted = True
    finally:
        if result.converged:  # stopped early: the bar ends full
            bar.total = bar.n
            bar.refresh()
        bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    elif average is not None:
        _swap(params, average)


def _refit(
    module: VAEModule,
    data: TrainData,
    plan: TrainPlan,
    selected: TrainResult,
    initial: dict,
) -> TrainResult:
    """Retrain from ``initial`` weights on all of ``data`` for the chosen epochs.

    The epoch count is that of the best validation score. The result keeps
    the selection run's validation history and calibration.
    """
    scores = selected.validation_scores
    best_epoch = scores.index(max(scores)) + 1
    module.load_state_dict(initial)
    refit_plan = replace(
        plan,
        max_iter=best_epoch,
        n_iter_no_change=best_epoch,
        validation=None,
        refit=False,
        calibrate=False,
        seed=plan.seed + 1,
        label="skvae refit (all rows)",
    )
    result = train(module, data, refit_plan)
    return replace(
        result,
        validation_scores=selected.validation_scores,
        best_validation_score=selected.best_validation_score,
        converged=selected.converged,
        interrupted=selected.interrupted,
        noise_calibration=selected.noise_calibration,
    )
