"""Minibatch training loop for :class:`~skvae._module.VAEModule`.

In-memory tensors are sliced with a random permutation each epoch (no
DataLoader); Adam with gradient clipping; optional KL warm-up and early
stopping on a validation split that restores the best weights. Torch only.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._module import VAEModule

#: Gradients are clipped to this global norm (guards against rare spikes).
MAX_GRAD_NORM = 100.0
_EVAL_CHUNK = 8192


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train` (see the estimators for meanings)."""

    max_iter: int = 200
    batch_size: int = 128
    beta: float = 1.0
    kl_warmup: int = 0
    tol: float = 1e-4
    n_iter_no_change: int = 10
    trim_fraction: float = 0.0
    n_samples: int = 1
    average_decay: float = 0.0
    variance_step: bool = False
    verbose: int = 0


@dataclass
class TrainResult:
    """What a call to :func:`train` learned about the run."""

    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] = field(default_factory=list)
    best_loss: float = float("inf")
    best_validation_score: float = -float("inf")
    n_iter: int = 0
    converged: bool = False
    interrupted: bool = False


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


def kl_weight(beta: float, kl_warmup: int, epoch: int) -> float:
    """Linear KL warm-up: ``beta * min(1, (epoch + 1) / kl_warmup)``."""
    if kl_warmup <= 0:
        return beta
    return beta * min(1.0, (epoch + 1) / kl_warmup)


def run_epoch(
    module: VAEModule,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    mask: torch.Tensor | None,
    *,
    batch_size: int,
    kl_weight: float,
    generator: torch.Generator,
    rows: torch.Tensor | None = None,
    condition: torch.Tensor | None = None,
    trim_fraction: float = 0.0,
    n_samples: int = 1,
    average: list[torch.Tensor] | None = None,
    average_decay: float = 0.0,
    average_steps: int = 0,
    residuals: list[torch.Tensor] | None = None,
) -> float:
    """One pass over ``x`` in random minibatches; returns the mean loss per row.

    ``rows`` restricts the pass to those row indices (a training split)
    without copying ``x``. With ``trim_fraction > 0`` each minibatch's
    highest-loss rows (that share of it) are left out of the gradient: a
    trimmed ELBO that keeps outliers in the training data from shaping the
    model. The returned loss still averages over every row. With
    ``n_samples = K > 1`` the loss is the importance-weighted bound with K
    draws per row (IWAE; MIWAE when entries are missing) instead of the ELBO.
    ``average`` (one tensor per trainable parameter) is updated after every
    step to an exponential moving average of the weights with
    ``average_decay``, warmed up as ``min(average_decay, (1 + t) / (10 + t))``
    after ``t`` earlier steps (``average_steps`` before this epoch), so that
    the average follows the weights in the first steps instead of staying
    near their initial values. ``residuals`` (from
    :meth:`VAEModule.new_residual_sums`) accumulates every row's squared
    residuals of the shared-variance Gaussian columns, trimmed rows included,
    for a closed-form variance update after the epoch.

    Raises
    ------
    FloatingPointError
        If the loss became non-finite.
    """
    device = x.device
    n = x.shape[0] if rows is None else rows.shape[0]
    perm = torch.randperm(n, generator=generator, device=device)
    if rows is not None:
        perm = rows[perm]
    shape = (n,) if n_samples == 1 else (n_samples, n)
    noise = torch.randn(
        (*shape, module.n_components), generator=generator, device=device, dtype=x.dtype
    )
    params = [p for p in module.parameters() if p.requires_grad]
    total = torch.zeros((), device=device)
    module.train()
    for step, start in enumerate(range(0, n, batch_size), start=average_steps):
        idx = perm[start : start + batch_size]
        xb = x.index_select(0, idx)
        mb = None if mask is None else mask.index_select(0, idx)
        cb = None if condition is None else condition.index_select(0, idx)
        if n_samples == 1:
            eps = noise[start : start + batch_size]
            recon, kl = module.loss_terms(xb, mb, eps, cb, residuals)
            per_row = recon + kl_weight * kl
        else:
            eps = noise[:, start : start + batch_size]
            per_row = module.iwae_loss(xb, mb, eps, cb, kl_weight, residuals)
        loss = per_row.mean()
        objective = loss
        if trim_fraction > 0.0:
            keep = max(1, int(round((1.0 - trim_fraction) * per_row.shape[0])))
            objective = per_row.topk(keep, largest=False, sorted=False).values.mean()
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM, foreach=True)
        optimizer.step()
        if average is not None:
            with torch.no_grad():
                decay = min(average_decay, (1.0 + step) / (10.0 + step))
                torch._foreach_lerp_(average, params, 1.0 - decay)
        total += loss.detach() * idx.shape[0]
    mean_loss = float(total) / n
    if not math.isfinite(mean_loss):
        raise FloatingPointError(
            "Training diverged: the loss became non-finite. Lower learning_rate, "
            "or check X for extreme values."
        )
    return mean_loss


@torch.no_grad()
def negative_elbo(
    module: VAEModule,
    x: torch.Tensor,
    mask: torch.Tensor | None,
    *,
    beta: float,
    seed: int,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-row negative ELBO with fixed noise (repeatable), shape (n,)."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    noise = torch.randn(
        x.shape[0], module.n_components, generator=gen, device=x.device, dtype=x.dtype
    )
    out = []
    for start in range(0, x.shape[0], _EVAL_CHUNK):
        sl = slice(start, start + _EVAL_CHUNK)
        recon, kl = module.loss_terms(
            x[sl],
            None if mask is None else mask[sl],
            noise[sl],
            None if condition is None else condition[sl],
        )
        out.append(recon + beta * kl)
    return torch.cat(out)


@torch.no_grad()
def variance_step(
    module: VAEModule,
    x: torch.Tensor,
    mask: torch.Tensor | None,
    *,
    kl_weight: float,
    generator: torch.Generator,
    rows: torch.Tensor | None = None,
    condition: torch.Tensor | None = None,
    n_samples: int = 1,
) -> None:
    """Set the shared Gaussian variances to their closed-form optimum.

    One pass of :meth:`VAEModule.refit_feature_variances`; ``rows`` restricts
    the update to the training split. Every row counts, also under trimmed
    training: variances fitted to the best-fitting rows alone would shrink
    epoch after epoch.
    """
    if rows is not None:
        x = x.index_select(0, rows)
        mask = None if mask is None else mask.index_select(0, rows)
        condition = None if condition is None else condition.index_select(0, rows)
    eps = torch.randn(
        (n_samples, x.shape[0], module.n_components),
        generator=generator,
        device=x.device,
        dtype=x.dtype,
    )
    was_training = module.training
    module.eval()
    module.refit_feature_variances(
        x, mask, eps, condition, kl_weight=kl_weight
    )
    module.train(was_training)


@torch.no_grad()
def _swap(params: list[torch.Tensor], other: list[torch.Tensor]) -> None:
    """Exchange the values of two lists of same-shaped tensors in place."""
    for p, o in zip(params, other, strict=True):
        tmp = p.detach().clone()
        p.copy_(o)
        o.copy_(tmp)


def _progress(config: TrainConfig):
    from tqdm.auto import tqdm

    return tqdm(
        total=config.max_iter,
        desc="skvae fit",
        unit="epoch",
        disable=not config.verbose,
        leave=True,
    )


def train(
    module: VAEModule,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    mask: torch.Tensor | None,
    config: TrainConfig,
    *,
    generator: torch.Generator,
    rows: torch.Tensor | None = None,
    validate: Callable[[VAEModule], float] | None = None,
    condition: torch.Tensor | None = None,
) -> TrainResult:
    """Train ``module`` in place for at most ``config.max_iter`` epochs.

    ``rows`` (optional) are the training row indices of ``x``. ``validate``
    (optional) scores the module after each epoch, higher being better (for
    example the ELBO of held-out rows).

    Stops when the monitored quantity (training loss, or the validation score
    when ``validate`` is given) has not improved by more than ``tol`` for
    ``n_iter_no_change`` epochs after the KL warm-up. With a validation
    score, the best weights are restored at the end. Ctrl-C stops training
    with a warning and keeps the best weights.
    """
    result = TrainResult()
    best_state = None
    params = [p for p in module.parameters() if p.requires_grad]
    average = None
    if config.average_decay > 0.0:
        average = [p.detach().clone() for p in params]
    no_improvement = 0
    n_rows = x.shape[0] if rows is None else rows.shape[0]
    bar = _progress(config)
    try:
        for epoch in range(config.max_iter):
            weight = kl_weight(config.beta, config.kl_warmup, epoch)
            residuals = module.new_residual_sums() if config.variance_step else None
            loss = run_epoch(
                module,
                optimizer,
                x,
                mask,
                batch_size=config.batch_size,
                kl_weight=weight,
                generator=generator,
                rows=rows,
                condition=condition,
                trim_fraction=config.trim_fraction,
                n_samples=config.n_samples,
                average=average,
                average_decay=config.average_decay,
                average_steps=epoch * math.ceil(n_rows / config.batch_size),
                residuals=residuals,
            )
            if residuals is not None:
                # Adam moves a variance by about the learning rate per step,
                # so gradient steps alone leave it far from its optimum on
                # small tables; the residuals of the epoch give the optimum.
                module.set_feature_variances(residuals)
            result.loss_curve.append(loss)
            result.n_iter = epoch + 1
            warming_up = epoch + 1 < config.kl_warmup
            postfix = {"loss": f"{loss:.4g}"}
            if validate is not None:
                module.eval()
                if average is not None:
                    _swap(params, average)
                score = float(validate(module))
                postfix["validation"] = f"{score:.4g}"
                improved = score > result.best_validation_score + config.tol
                if score > result.best_validation_score:
                    result.best_validation_score = score
                    best_state = copy.deepcopy(module.state_dict())
                if average is not None:
                    _swap(params, average)
                result.validation_scores.append(score)
            else:
                improved = loss < result.best_loss - config.tol
            result.best_loss = min(result.best_loss, loss)
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
            no_improvement = 0 if (improved or warming_up) else no_improvement + 1
            if no_improvement >= config.n_iter_no_change:
                result.converged = True
                break
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=3)
        result.interrupted = True
    finally:
        bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    elif average is not None:
        _swap(params, average)
    if config.variance_step and result.n_iter > 0:
        # The epochs' residuals came from weights that moved during the epoch
        # (or were averaged since); one pass fits the variances to the final
        # weights.
        variance_step(
            module,
            x,
            mask,
            kl_weight=kl_weight(config.beta, config.kl_warmup, result.n_iter - 1),
            generator=generator,
            rows=rows,
            condition=condition,
            n_samples=config.n_samples,
        )
    return result
