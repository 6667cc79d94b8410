"""Validation schemes of early stopping, as plain functions of the plan.

Each scheme takes the training data, the plan and the run's generator, and
returns the data to train on, the training row indices (None: all) and a
:class:`Validation` that scores a module on what was held out (higher is
better): :func:`hold_out_rows` (the held-out rows' ELBO) and
:func:`hold_out_entries` (the imputation error of hidden observed entries,
with a noise calibration). Torch only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from . import _estimates
from ._chunks import chunks, rows_per_chunk
from ._module import VAEModule

if TYPE_CHECKING:
    from ._training import TrainData, TrainPlan


@dataclass
class Validation:
    """A held-out part of the data: ``score`` (higher is better) of a module.

    ``calibrate`` (held-out entries only) returns the factor that makes the
    module's closed-form variances fit the held-out errors.
    """

    score: Callable[[VAEModule], float]
    calibrate: Callable[[VAEModule], float] | None = None


def rows_of(data: TrainData, rows: torch.Tensor | None) -> TrainData:
    """The training data restricted to ``rows`` (None: all)."""
    if rows is None:
        return data

    def take(t):
        return None if t is None else t.index_select(0, rows)

    return replace(
        data, x=take(data.x), mask=take(data.mask), condition=take(data.condition)
    )


@torch.no_grad()
def negative_elbo(
    module: VAEModule, data: TrainData, *, beta: float, seed: int
) -> torch.Tensor:
    """Per-row negative ELBO with fixed noise (repeatable), shape (n,)."""
    x = data.x
    gen = torch.Generator(device=x.device).manual_seed(seed)
    noise = torch.randn(
        x.shape[0], module.n_components, generator=gen, device=x.device, dtype=x.dtype
    )
    out = []
    for sl in chunks(x.shape[0], rows_per_chunk(module.row_width)):
        recon, kl = module.loss_terms(
            x[sl],
            None if data.mask is None else data.mask[sl],
            noise[sl],
            None if data.condition is None else data.condition[sl],
        )
        out.append(recon + beta * kl)
    return torch.cat(out)


def hold_out_rows(
    data: TrainData, plan: TrainPlan, generator: torch.Generator
) -> tuple[TrainData, torch.Tensor, Validation]:
    """Hold out ``validation_fraction`` of the rows; score their ELBO.

    Returns the training data (unchanged), the training row indices and the
    validation: the held-out rows' mean ELBO, with fixed noise, over all but
    the ``validation_trim`` share of them that score lowest (the calibration
    leaves the same rows out).
    """
    n = data.x.shape[0]
    n_val = int(round(plan.validation_fraction * n))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(
            f"early_stopping needs at least one training and one validation "
            f"row; got n_samples = {n} with validation_fraction="
            f"{plan.validation_fraction}. Pass more rows or set "
            "early_stopping=False."
        )
    perm = torch.randperm(n, generator=generator, device=data.x.device)
    validation = score_rows(rows_of(data, perm[:n_val]), plan)
    return data, perm[n_val:], validation


def score_rows(held_out: TrainData, plan: TrainPlan) -> Validation:
    """The validation on rows held out of training: their mean ELBO.

    With fixed noise, over all but the ``validation_trim`` share of the rows
    that score lowest (the calibration leaves the same rows out).
    """
    n_val = held_out.x.shape[0]
    n_trim = int(plan.validation_trim * n_val)

    def score(module: VAEModule) -> float:
        elbo = negative_elbo(module, held_out, beta=plan.beta, seed=plan.eval_seed)
        if n_trim:  # leave out the n_trim lowest-scoring rows
            elbo = elbo.sort().values[: n_val - n_trim]
        return -float(elbo.mean())

    @torch.no_grad()
    def calibrate(module: VAEModule) -> float:
        """Variance factor (>= 1) that fits the held-out rows' residuals.

        The closed-form variances are the training rows' mean squared
        residuals, which a flexible decoder makes too small; the factor is the
        held-out rows' mean ratio of expected squared residual to variance.
        """
        rows = held_out
        if n_trim:
            elbo = negative_elbo(module, held_out, beta=plan.beta, seed=plan.eval_seed)
            rows = rows_of(held_out, elbo.argsort()[: n_val - n_trim])
        x = rows.x
        gen = torch.Generator(device=x.device).manual_seed(plan.eval_seed)
        eps = torch.randn(
            (plan.validation_samples, x.shape[0], module.n_components),
            generator=gen,
            device=x.device,
            dtype=x.dtype,
        )
        residuals = module.residual_sums(
            x, rows.mask, eps, rows.condition, kl_weight=plan.beta
        )
        if residuals is None:
            return 1.0
        sums, counts = residuals
        _, variances = module.likelihoods.shared_variance_columns()
        if float(counts.sum()) <= 0:
            return 1.0
        return max(1.0, float((sums / variances).sum() / counts.sum()))

    return Validation(score, calibrate)


#: The entries scheme holds out at most this many entries.
MAX_HELD_OUT_ENTRIES = 20_000


def hold_out_entries(
    data: TrainData, plan: TrainPlan, generator: torch.Generator
) -> tuple[TrainData, None, Validation]:
    """Hide ``validation_fraction`` of the observed entries; score their imputation.

    At most :data:`MAX_HELD_OUT_ENTRIES` entries are hidden.

    The score is minus the root mean squared error over the hidden entries,
    in encoded units (for a categorical entry, the Brier score of its
    probability vector). Returns the training data with those entries
    hidden, None (every row trains) and the validation, whose ``calibrate``
    matches the held-out squared errors to the predictive variance.
    """
    x, mask = data.x, data.mask
    w = x.shape[1]
    variable_of_column = data.variable_of_column
    n = x.shape[0]
    p = w if variable_of_column is None else int(variable_of_column.max()) + 1
    if mask is None:
        mask = x.new_ones((n, p))
    observed = torch.nonzero(mask.reshape(-1), as_tuple=True)[0]
    n_val = int(round(plan.validation_fraction * observed.numel()))
    if n_val < 1 or n_val >= observed.numel():
        raise ValueError(
            "early_stopping hides validation_fraction of the observed "
            f"entries; with {observed.numel()} observed entries and "
            f"validation_fraction={plan.validation_fraction} that leaves no "
            "validation or no training entry. Pass more data or set "
            "early_stopping=False."
        )
    # A large table's score is precise with far fewer entries, and each
    # epoch imputes them all.
    n_val = min(n_val, MAX_HELD_OUT_ENTRIES)
    pick = torch.randperm(observed.numel(), generator=generator, device=x.device)
    hidden = observed[pick[:n_val]].sort().values
    x = x.clone(memory_format=torch.contiguous_format)
    mask = mask.clone(memory_format=torch.contiguous_format)
    hidden_rows = torch.unique_consecutive(hidden // p)
    mask.view(-1)[hidden] = 0.0
    if w != p:
        # One-hot columns: hide every column of each hidden variable.
        hid = torch.zeros(n * p, dtype=torch.bool, device=x.device)
        hid[hidden] = True
        hidden = torch.nonzero(hid.view(n, p)[:, variable_of_column].reshape(-1))[:, 0]
    truth = x.reshape(-1)[hidden].clone()
    x.view(-1)[hidden] = data.fill.to(x)[hidden % w]
    x_val, mask_val = x[hidden_rows], mask[hidden_rows]
    # Position of each hidden entry in the flattened (x_val) block.
    where = torch.searchsorted(hidden_rows, hidden // w) * w + hidden % w

    def mapped(module: VAEModule, fn):
        gen = torch.Generator().manual_seed(plan.eval_seed)
        eps = torch.randn(plan.n_importance_samples, module.n_components, generator=gen)
        eps = eps[: plan.validation_samples].to(x.device)
        size = rows_per_chunk(module.row_width, eps.shape[0])
        return [
            fn(module, x_val[sl], mask_val[sl], eps)
            for sl in chunks(x_val.shape[0], size)
        ]

    @torch.no_grad()
    def score(module: VAEModule) -> float:
        filled = torch.cat(mapped(module, _estimates.impute))
        err = filled.reshape(-1)[where] - truth
        return -float((err.square().sum() / n_val).sqrt())

    @torch.no_grad()
    def calibrate(module: VAEModule) -> float:
        """Variance factor that makes the held-out errors fit (>= 1).

        Over the hidden entries of shared-variance Gaussian columns, the
        squared error of the imputation should match the predictive variance:
        the spread of E[x | z_k] plus the column variance.
        """
        columns, variances = module.likelihoods.shared_variance_columns()
        lookup = torch.full((w,), -1, dtype=torch.long, device=x.device)
        lookup[columns] = torch.arange(columns.numel(), device=x.device)
        pick = lookup[where % w]
        keep = pick >= 0
        if not bool(keep.any()):
            return 1.0
        parts = mapped(module, _estimates.impute_spread)
        mean = torch.cat([m for m, _ in parts]).reshape(-1)[where][keep]
        spread = torch.cat([v for _, v in parts]).reshape(-1)[where][keep]
        sq = (mean - truth[keep]).square().sum()
        noise = variances[pick[keep]].sum()
        return max(1.0, float((sq - spread.sum()) / noise))

    return replace(data, x=x, mask=mask), None, Validation(score, calibrate)


VALIDATIONS = {"rows": hold_out_rows, "entries": hold_out_entries}


def validation_on(held_out: TrainData, plan: TrainPlan) -> Validation:
    """The plan's validation scheme on rows held out of a streamed fit.

    ``"rows"`` scores their ELBO (:func:`score_rows`); ``"entries"`` hides
    ``validation_fraction`` of their observed entries and scores the
    imputation of those (:func:`hold_out_entries`).
    """
    if plan.validation == "entries":
        gen = torch.Generator(device=held_out.x.device).manual_seed(plan.seed)
        return hold_out_entries(held_out, plan, gen)[2]
    return score_rows(held_out, plan)
