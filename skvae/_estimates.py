"""Importance-weighted estimates from K posterior draws per row.

Each function takes a :class:`~skvae._module.VAEModule`, encoded rows ``x``
with their ``mask``, standard-normal draws ``eps`` and an optional decoder
``condition``, and reduces the module's importance log-weights
(:meth:`~skvae._module.VAEModule.log_weights`) to one estimate per row.
They are the only maps that :class:`~skvae._fitted.FittedVAE` runs in chunks.
Torch only.
"""

from __future__ import annotations

import math

import torch

from ._module import VAEModule


def log_marginal(module: VAEModule, x, mask, eps, condition=None) -> torch.Tensor:
    """Importance-weighted (IWAE) estimate of log p(x_obs), shape (n,)."""
    log_w, _ = module.log_weights(x, mask, eps, condition)
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


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
