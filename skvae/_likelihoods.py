"""Per-column observation models p(x | z), as small torch modules.

Each likelihood owns a contiguous block of columns of the (encoded) data, a
contiguous block of variables (columns of the missingness mask) and a
contiguous block of decoder outputs. It knows nothing about numpy or sklearn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_LOG_2PI = math.log(2.0 * math.pi)


class Likelihood(nn.Module):
    """Base class: a block of columns and the decoder outputs that model them.

    Parameters
    ----------
    n_columns : int
        Number of data columns in the block. For every kind but the
        categorical one this is also the number of variables (of
        missingness-mask columns).
    """

    kind: str = ""

    def __init__(self, n_columns: int) -> None:
        super().__init__()
        self.n_columns = n_columns

    @property
    def n_params(self) -> int:
        """Number of decoder outputs this block consumes."""
        return self.n_columns

    @property
    def n_variables(self) -> int:
        """Number of variables (mask columns) the block models."""
        return self.n_columns

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Log-probability per variable, shape ``(..., n_variables)``."""
        raise NotImplementedError

    def log_prob_sum(
        self,
        params: torch.Tensor,
        x: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Log-probability summed over the observed variables, shape ``(...,)``."""
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


class CategoricalLikelihood(Likelihood):
    """A block of categorical variables, each with its own number of categories.

    The data of variable ``j`` are ``n_categories[j]`` one-hot columns; the
    decoder gives one logit per category, and p(x_j | z) is their softmax.
    :meth:`log_prob` returns one term per variable (not per column), so the
    missingness mask has one column per variable.

    Parameters
    ----------
    n_categories : sequence of int
        Number of categories of each variable (each >= 1).
    """

    kind = "categorical"

    def __init__(self, n_categories: Sequence[int]) -> None:
        sizes = [int(k) for k in n_categories]
        if not sizes or min(sizes) < 1:
            raise ValueError(f"n_categories must be positive ints, got {sizes}.")
        super().__init__(sum(sizes))
        self.n_categories = tuple(sizes)
        for name, value in self._index_tensors().items():
            self.register_buffer(name, value, persistent=False)

    def _index_tensors(self) -> dict[str, torch.Tensor]:
        """Constant index tensors that map columns to variables."""
        sizes = torch.tensor(self.n_categories)
        n_vars, n_cols, widest = len(sizes), int(sizes.sum()), int(sizes.max())
        offsets = sizes.cumsum(0) - sizes
        within = torch.arange(widest)
        variable = torch.repeat_interleave(torch.arange(n_vars), sizes)
        # Padded (n_variables, widest) view of the columns; padding points at
        # the variable's first column and is masked out.
        pad = within[None, :] >= sizes[:, None]
        index = torch.where(pad, offsets[:, None], offsets[:, None] + within[None, :])
        # (n_columns, n_variables) 0/1 matrix: sums columns within each variable.
        assign = torch.zeros(n_cols, n_vars)
        assign[torch.arange(n_cols), variable] = 1.0
        return {
            "_variable": variable,
            "_position": torch.arange(n_cols) - offsets[variable],
            "_index": index,
            "_pad": pad,
            "_assign": assign,
        }

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Refill the index buffers (after ``to_empty``); no learned weights."""
        with torch.no_grad():
            for name, value in self._index_tensors().items():
                getattr(self, name).copy_(value)

    @property
    def n_variables(self) -> int:
        """Number of categorical variables."""
        return len(self.n_categories)

    def _padded(self, values: torch.Tensor) -> torch.Tensor:
        """(..., n_variables, widest) view with -inf in the padding."""
        return values[..., self._index].masked_fill(self._pad, -math.inf)

    def log_probs(self, params: torch.Tensor) -> torch.Tensor:
        """Log-probability of every category, shape ``params.shape``."""
        lse = torch.logsumexp(self._padded(params), dim=-1)
        return params - lse[..., self._variable]

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Log-probability of each variable's one-hot value, ``(..., n_variables)``."""
        return (x * self.log_probs(params)) @ self._assign

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The probability vector of each variable (one-hot layout)."""
        return self.log_probs(params).exp()

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """One-hot draws (Gumbel-max: one uniform per category)."""
        u = torch.rand(
            params.shape, generator=generator, device=params.device, dtype=params.dtype
        )
        gumbel = -torch.log(-torch.log(u.clamp_min(torch.finfo(u.dtype).tiny)))
        pick = self._padded(params + gumbel).argmax(-1)  # (..., n_variables)
        return (pick[..., self._variable] == self._position).to(params.dtype)


LIKELIHOODS: dict[str, type[Likelihood]] = {
    GaussianLikelihood.kind: GaussianLikelihood,
    BernoulliLikelihood.kind: BernoulliLikelihood,
    CategoricalLikelihood.kind: CategoricalLikelihood,
}
