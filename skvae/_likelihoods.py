"""Per-column observation models p(x | z), as small torch modules.

Each likelihood owns a contiguous block of columns of the (encoded) data and a
contiguous block of decoder outputs. It knows nothing about numpy or sklearn.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LOG_2PI = math.log(2.0 * math.pi)


class Likelihood(nn.Module):
    """Base class: a block of columns and the decoder outputs that model them.

    Parameters
    ----------
    n_columns : int
        Number of data columns in the block (also the number of variables,
        i.e. of missingness-mask columns).
    """

    kind: str = ""

    def __init__(self, n_columns: int) -> None:
        super().__init__()
        self.n_columns = n_columns

    @property
    def n_params(self) -> int:
        """Number of decoder outputs this block consumes."""
        return self.n_columns

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Elementwise log-probability, shape ``x.shape``."""
        raise NotImplementedError

    def log_prob_sum(
        self,
        params: torch.Tensor,
        x: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Log-probability summed over the observed columns, shape ``x.shape[:-1]``."""
        lp = self.log_prob(params, x)
        if mask is not None:
            lp = lp * mask
        return lp.sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """Expected value E[x | z]."""
        raise NotImplementedError

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Draw x ~ p(x | z)."""
        raise NotImplementedError

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise learnable parameters (none by default)."""


class GaussianLikelihood(Likelihood):
    """Normal(loc, variance) with a learned per-column variance and a floor.

    The variance is ``min_variance + softplus(raw)``: it can shrink towards the
    floor for near-constant columns but never below it, so the density stays
    bounded.

    Parameters
    ----------
    n_columns : int
        Number of columns.
    min_variance : float
        Variance floor, in the units of the (standardized) data.
    """

    kind = "gaussian"

    def __init__(self, n_columns: int, min_variance: float = 1e-3) -> None:
        super().__init__(n_columns)
        self.min_variance = float(min_variance)
        self.raw_variance = nn.Parameter(torch.empty(n_columns))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Start at unit variance (the data are standardized)."""
        target = max(1.0 - self.min_variance, 1e-6)
        with torch.no_grad():
            self.raw_variance.fill_(math.log(math.expm1(target)))

    def variance(self) -> torch.Tensor:
        """Per-column variance, shape (n_columns,)."""
        return F.softplus(self.raw_variance) + self.min_variance

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Elementwise Gaussian log-density."""
        var = self.variance()
        return -0.5 * ((x - params).square() / var + var.log() + _LOG_2PI)

    def log_prob_sum(
        self,
        params: torch.Tensor,
        x: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Summed log-density; the per-column terms are folded into matmuls."""
        var = self.variance()
        sq = (x - params).square()
        const = var.log() + _LOG_2PI
        if mask is None:
            return -0.5 * (sq @ var.reciprocal() + const.sum())
        return -0.5 * ((sq * mask) @ var.reciprocal() + mask @ const)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The decoder output is the mean."""
        return params

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Mean plus Gaussian noise of the learned variance."""
        noise = torch.randn(
            params.shape, generator=generator, device=params.device, dtype=params.dtype
        )
        return params + noise * self.variance().sqrt()


class BernoulliLikelihood(Likelihood):
    """Bernoulli(sigmoid(logits)); also accepts grey levels in [0, 1].

    For values strictly inside (0, 1) the term is the binary cross-entropy, the
    usual choice for images of pixel intensities.
    """

    kind = "bernoulli"

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Elementwise ``-BCE(logits, x)``."""
        if x.shape != params.shape:
            x = x.expand_as(params)
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none")

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """Success probability."""
        return torch.sigmoid(params)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Draw 0/1 values."""
        return torch.bernoulli(torch.sigmoid(params), generator=generator)


LIKELIHOODS: dict[str, type[Likelihood]] = {
    GaussianLikelihood.kind: GaussianLikelihood,
    BernoulliLikelihood.kind: BernoulliLikelihood,
}
