"""Importance-weighted estimates from K posterior draws per row.

Each function takes a :class:`~skvae._module.VAEModule`, encoded rows ``x``
with their ``mask``, standard-normal draws ``eps`` and an optional decoder
``condition``, and reduces the module's importance log-weights
(:meth:`~skvae._module.VAEModule.log_weights`) to one estimate per row.
They are the only maps that :class:`~skvae._fitted.FittedVAE` runs in chunks.
:func:`refined_log_marginal` also refines each row's proposal by gradient
steps before weighing it (for rows unlike the training rows). Torch only.
"""

from __future__ import annotations

import math

import torch

from ._latent import LOGVAR_RANGE, GaussianLatent
from ._module import VAEModule

log_normal = GaussianLatent.log_normal


def log_marginal(module: VAEModule, x, mask, eps, condition=None) -> torch.Tensor:
    """Importance-weighted (IWAE) estimate of log p(x_obs), shape (n,)."""
    log_w, _ = module.log_weights(x, mask, eps, condition)
    return log_mean_exp(log_w)


def log_mean_exp(log_w: torch.Tensor) -> torch.Tensor:
    """``log (1/K) sum_k exp(log_w[k])`` over the draws (dimension 0)."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def log_marginal_screen(
    module: VAEModule, x, mask, eps, condition=None
) -> torch.Tensor:
    """:func:`log_marginal` and the ELBO per observed variable, shape (n, 2).

    The second column is the mean log-weight over the K draws (an ELBO
    estimate) divided by the row's number of observed variables (``inf``
    for a row with none): the screen that decides whether a row's proposal
    is refined (:func:`refined_log_marginal`).
    """
    log_w, _ = module.log_weights(x, mask, eps, condition)
    per_var = per_variable(log_w.mean(0), mask, module)
    return torch.stack([log_mean_exp(log_w), per_var], dim=-1)


def per_variable(values: torch.Tensor, mask, module: VAEModule) -> torch.Tensor:
    """Per-row ``values`` divided by the row's observed variables (``inf``: none)."""
    if mask is None:
        return values / module.n_variables
    counts = mask.sum(-1)
    return torch.where(
        counts > 0, values / counts.clamp(min=1), torch.full_like(values, math.inf)
    )


#: Adam steps, draws per step, first and last step size of the refined
#: proposal (:func:`refine_proposal`), and the seed of its draws.
REFINE_STEPS = 100
REFINE_DRAWS = 4
REFINE_RATE = 0.3
REFINE_FINAL_RATE = 0.003
REFINE_SEED = 0


def refine_draws(n_components: int, like: torch.Tensor) -> torch.Tensor:
    """The :data:`REFINE_DRAWS` standard-normal draws of every refinement.

    Shape (REFINE_DRAWS, 1, n_components), dtype and device of ``like``;
    from a generator of their own (seed :data:`REFINE_SEED`), so they are
    the same for every row and call and independent of the score draws: a
    proposal fitted to the draws that then weigh it would overstate p(x).
    """
    gen = torch.Generator().manual_seed(REFINE_SEED)
    draws = torch.randn(REFINE_DRAWS, 1, n_components, generator=gen)
    return draws.to(like)


def refine_proposal(
    module: VAEModule, x, mask, loc, logvar, condition=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's Gaussian proposal moved to a higher ELBO, from ``(loc, logvar)``.

    :data:`REFINE_STEPS` Adam steps, their size falling linearly from
    :data:`REFINE_RATE` to :data:`REFINE_FINAL_RATE`, on every row's own
    ELBO, estimated with :func:`refine_draws` (the same draws at every step,
    so the objective is deterministic). The rows' objectives are separate
    and Adam updates each number on its own, so a row's result does not
    depend on the other rows. Runs with gradients (also inside inference
    mode); returns new tensors. The update is written out rather than taken
    from ``torch.optim``: one tensor, updated in place, per block of rows.
    """
    k = loc.shape[-1]
    # Inference tensors cannot take part in autograd: work on copies.
    with torch.inference_mode(False), torch.enable_grad():
        x = x.clone()
        mask = None if mask is None else mask.clone()
        condition = None if condition is None else condition.clone()
        draws = refine_draws(k, x)
        theta = torch.cat([loc, logvar], dim=-1).detach().clone().requires_grad_(True)
        m1, m2 = torch.zeros_like(theta), torch.zeros_like(theta)
        b1, b2 = 0.9, 0.999
        for step in range(1, REFINE_STEPS + 1):
            loc, logvar = theta[..., :k], theta[..., k:]
            z = loc + torch.exp(0.5 * logvar) * draws
            elbo = module.log_joint(x, mask, z, condition) - log_normal(z, loc, logvar)
            (grad,) = torch.autograd.grad(elbo.mean(0).sum(), [theta])
            with torch.no_grad():
                # Adam, ascending; the step size falls linearly.
                m1.lerp_(grad, 1 - b1)
                m2.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                frac = (step - 1) / max(1, REFINE_STEPS - 1)
                rate = REFINE_RATE + frac * (REFINE_FINAL_RATE - REFINE_RATE)
                denom = (m2 / (1 - b2**step)).sqrt_().add_(1e-8)
                theta.addcdiv_(m1, denom, value=rate / (1 - b1**step))
                theta[..., k:].clamp_(*LOGVAR_RANGE)
    theta = theta.detach()
    return theta[..., :k], theta[..., k:]


def refined_log_marginal(
    module: VAEModule, x, mask, eps, condition=None
) -> torch.Tensor:
    """Importance-weighted estimate of log p(x_obs) with a refined proposal, (n,).

    The encoder's q(z | x) is only as good as the training rows made it: on
    a row unlike them it can sit far from the posterior (the amortization
    gap), and the importance weights then underestimate log p(x) by many
    nats. Here each row's proposal is also refined on its own
    (:func:`refine_proposal`), and the K draws of ``eps`` taken from each of
    the two proposals are weighted against their equal mixture (multiple
    importance sampling): like :func:`log_marginal`, the exponential of the
    estimate is an unbiased estimate of p(x_obs), whatever the refinement
    found.
    """
    loc0, logvar0 = module.proposal(x, mask)
    loc1, logvar1 = refine_proposal(module, x, mask, loc0, logvar0, condition)
    if eps.dim() == 2:
        eps = eps[:, None, :]

    def log_weights(loc, logvar):
        z = loc + torch.exp(0.5 * logvar) * eps
        log_q0, log_q1 = log_normal(z, loc0, logvar0), log_normal(z, loc1, logvar1)
        log_q = torch.logaddexp(log_q0, log_q1)
        return module.log_joint(x, mask, z, condition) - (log_q - math.log(2.0))

    return log_mean_exp(
        torch.cat([log_weights(loc0, logvar0), log_weights(loc1, logvar1)])
    )


def reconstruction_log_prob(
    module: VAEModule, x, mask, eps, condition=None
) -> torch.Tensor:
    """Reconstruction probability E_q(z|x)[log p(x_obs | z)], shape (n,).

    The Monte Carlo mean over the K draws (An & Cho, 2015); unlike
    :func:`log_marginal` it leaves out the latent code's own surprise,
    log p(z) - log q(z | x).
    """
    log_px, _ = module.log_weights(x, mask, eps, condition, kl_weight=0.0)
    return log_px.mean(0)


def feature_log_likelihood(
    module: VAEModule, x, mask, eps, condition=None
) -> torch.Tensor:
    """Per-variable log p(x_j | z) under the importance-weighted posterior.

    Shape (n, n_variables); entries whose mask is 0 are NaN.
    """
    log_w, params = module.log_weights(x, mask, eps, condition)
    weights = torch.softmax(log_w, dim=0).unsqueeze(-1)  # (K, n, 1)
    out = (weights * module.likelihoods.log_prob(params, x)).sum(0)
    if mask is not None:
        out = out.masked_fill(mask == 0, float("nan"))
    return out


def impute(module: VAEModule, x, mask, eps, condition=None) -> torch.Tensor:
    """Importance-weighted conditional mean E[x | x_obs], shape (n, n_columns).

    ``sum_k w_k E[x | z_k]`` with self-normalized weights (Mattei &
    Frellsen, 2019). Every column is returned; callers keep the observed
    ones. For a categorical variable this is ``sum_k w_k p(category | z_k)``.
    """
    weights, means = _weighted_means(module, x, mask, eps, condition)
    return (weights * means).sum(0)


def impute_spread(
    module: VAEModule, x, mask, eps, condition=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`impute` and the weighted variance of E[x | z_k] around it.

    Both of shape (n, n_columns): ``sum_k w_k m_k`` and
    ``sum_k w_k (m_k - sum_j w_j m_j)^2`` with ``m_k = E[x | z_k]``, the
    part of the predictive variance that comes from the latent code.
    """
    weights, means = _weighted_means(module, x, mask, eps, condition)
    mean = (weights * means).sum(0)
    return mean, (weights * (means - mean).square()).sum(0)


def _weighted_means(module: VAEModule, x, mask, eps, condition):
    """Self-normalized weights (K, n, 1) and decoder means (K, n, n_columns)."""
    log_w, params = module.log_weights(x, mask, eps, condition)
    return torch.softmax(log_w, dim=0).unsqueeze(-1), module.mean(params)


def sample_missing(
    module: VAEModule, x, mask, eps, condition=None, *, generator=None
) -> torch.Tensor:
    """One draw from p(x | x_obs) per row by sampling-importance-resampling.

    A latent draw z_k is picked with probability w_k, then x ~ p(x | z_k).
    Shape (n, n_columns); callers keep the observed entries.
    """
    log_w, params = module.log_weights(x, mask, eps, condition)
    probs = torch.softmax(log_w, dim=0).T  # (n, K)
    pick = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    rows = torch.arange(x.shape[0], device=x.device)
    return module.sample_x(params[pick, rows], generator)
