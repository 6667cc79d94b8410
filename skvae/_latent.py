"""The latent layer of a VAE: posterior q(z | x), prior p(z), and their terms.

:class:`GaussianLatent` reads a diagonal Gaussian posterior from the encoder's
output and holds the prior: N(0, I), or for a conditional model a learned
Gaussian per class. Torch only; the module that uses it knows nothing of its
parameterisation beyond this interface, so other latents (a vector-quantized
one) can take its place.
"""

from __future__ import annotations

import torch
from torch import nn

#: Posterior log-variances are clamped to this range for numerical safety.
LOGVAR_RANGE = (-12.0, 8.0)


class GaussianLatent(nn.Module):
    """Diagonal Gaussian posterior; standard normal or class-wise prior.

    Parameters
    ----------
    n_components : int
        Latent dimension.
    n_conditions : int, default=0
        Number of classes of a conditional model. With classes, the prior
        p(z | y) = N(loc[y], exp(logvar[y])) is learned and starts at N(0, I).
    """

    def __init__(self, n_components: int, n_conditions: int = 0) -> None:
        super().__init__()
        self.n_components = n_components
        if n_conditions:
            self.prior_loc = nn.Parameter(torch.empty(n_conditions, n_components))
            self.prior_logvar = nn.Parameter(torch.empty(n_conditions, n_components))
        else:
            self.register_parameter("prior_loc", None)
            self.register_parameter("prior_logvar", None)

    @property
    def n_inputs(self) -> int:
        """Encoder outputs the posterior reads: a mean and a log-variance."""
        return 2 * self.n_components

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Start the learned prior (if any) at N(0, I)."""
        if self.prior_loc is not None:
            with torch.no_grad():
                self.prior_loc.zero_()
                self.prior_logvar.zero_()

    # ------------------------------------------------------------------ q(z|x)
    def posterior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clamped log-variance from the encoder output ``h``."""
        loc, logvar = h.chunk(2, dim=-1)
        return loc, logvar.clamp(*LOGVAR_RANGE)

    def rsample_kl(
        self,
        loc: torch.Tensor,
        logvar: torch.Tensor,
        noise: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One reparameterized draw per row and its KL(q(z | x) || p(z | y)).

        ``z = loc + std * noise``; the KL in closed form, per row.
        """
        std = torch.exp(0.5 * logvar)
        return loc + std * noise, self.kl(loc, logvar, std, condition)

    def importance_draws(
        self,
        loc: torch.Tensor,
        logvar: torch.Tensor,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """K draws per row with their ``log p(z | y)`` and ``log q(z | x)``.

        ``eps`` has shape (K, 1 or n, n_components); the draws are
        ``loc + std * eps``, of shape (K, n, n_components). The
        ``0.5 log 2 pi`` terms are left out of both log-densities (they
        cancel in importance weights).
        """
        z = loc + torch.exp(0.5 * logvar) * eps
        return z, self.log_prior(z, condition), self.log_posterior(eps, logvar)

    # ------------------------------------------------------------------ p(z)
    def prior(
        self, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Mean and log-variance of p(z | y) per row, or None for N(0, I).

        ``condition`` holds one-hot rows (the class is their argmax). Rows
        index the parameters, so a row's prior does not depend on its batch.
        """
        if self.prior_loc is None or condition is None:
            return None
        index = condition.argmax(-1)
        return self.prior_loc[index], self.prior_logvar[index]

    def sample_prior(
        self, eps: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Map standard-normal ``eps`` (n, n_components) to draws of p(z | y)."""
        prior = self.prior(condition)
        if prior is None:
            return eps
        loc, logvar = prior
        return loc + torch.exp(0.5 * logvar) * eps

    # ------------------------------------------------------------------ terms
    def kl(
        self,
        loc: torch.Tensor,
        logvar: torch.Tensor,
        std: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """KL(q(z | x) || p(z | y)) per row, in closed form (``std`` from logvar)."""
        var = std.square()
        prior = self.prior(condition)
        if prior is None:
            return 0.5 * (loc.square() + var - 1.0 - logvar).sum(-1)
        p_loc, p_logvar = prior
        return 0.5 * (
            p_logvar
            - logvar
            + (var + (loc - p_loc).square()) * torch.exp(-p_logvar)
            - 1.0
        ).sum(-1)

    @staticmethod
    def kl_per_component(loc: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z_k | x) || N(0, 1)) per row and component."""
        return 0.5 * (loc.square() + logvar.exp() - 1.0 - logvar)

    def log_prior(
        self, z: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``log p(z | y)`` up to the ``0.5 log 2 pi`` terms per component."""
        prior = self.prior(condition)
        if prior is None:
            return -0.5 * z.square().sum(-1)
        return self.log_normal(z, *prior)

    @staticmethod
    def log_normal(
        z: torch.Tensor, loc: torch.Tensor, logvar: torch.Tensor
    ) -> torch.Tensor:
        """Diagonal Gaussian ``log N(z; loc, exp(logvar))``, same constants left out."""
        return -0.5 * ((z - loc).square() * torch.exp(-logvar) + logvar).sum(-1)

    @staticmethod
    def log_posterior(eps: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """``log q(z | x)`` of ``z = loc + std * eps``, up to the same constants."""
        return -0.5 * (eps.square() + logvar).sum(-1)
