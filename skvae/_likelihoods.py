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
    """Normal(loc, variance) with a variance floor.

    The variance is ``min_variance + softplus(raw)``: it can shrink towards the
    floor but never below it, so the density stays bounded. ``raw`` is either
    one learned parameter per column (``variance="feature"``: every row shares
    a column's variance) or a second decoder output per column
    (``variance="decoder"``: each latent code gets its own variance, a
    heteroscedastic model).

    Parameters
    ----------
    n_columns : int
        Number of columns.
    min_variance : float
        Variance floor, in the units of the (standardized) data.
    variance : {"feature", "decoder"}
        Where the variance comes from (see above). With ``"decoder"`` the block
        consumes ``2 * n_columns`` decoder outputs: the means, then the raw
        variances.
    """

    kind = "gaussian"

    def __init__(
        self, n_columns: int, min_variance: float = 1e-3, variance: str = "feature"
    ) -> None:
        super().__init__(n_columns)
        if variance not in ("feature", "decoder"):
            raise ValueError(
                f"variance must be 'feature' or 'decoder', got {variance!r}."
            )
        self.min_variance = float(min_variance)
        self.decoded = variance == "decoder"
        # softplus(raw + shift) starts at unit variance when raw is near 0 (the
        # data are standardized); the shift is a constant, not a parameter.
        self._shift = math.log(math.expm1(max(1.0 - self.min_variance, 1e-6)))
        if self.decoded:
            self.register_parameter("raw_variance", None)
        else:
            self.raw_variance = nn.Parameter(torch.empty(n_columns))

    @property
    def n_params(self) -> int:
        """Decoder outputs: the means, plus the raw variances if decoded."""
        return self.n_columns * (2 if self.decoded else 1)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Start at unit variance (the data are standardized)."""
        if not self.decoded:
            with torch.no_grad():
                self.raw_variance.zero_()

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and variances; the feature variance has shape (n_columns,)."""
        if self.decoded:
            loc, raw = params[..., : self.n_columns], params[..., self.n_columns :]
        else:
            loc, raw = params, self.raw_variance
        return loc, F.softplus(raw + self._shift) + self.min_variance

    def variance(self, params: torch.Tensor | None = None) -> torch.Tensor:
        """Variances: per column, or per row and column when decoded."""
        if self.decoded:
            if params is None:
                raise ValueError("a decoded variance needs the decoder outputs.")
            return self._split(params)[1]
        return F.softplus(self.raw_variance + self._shift) + self.min_variance

    @torch.no_grad()
    def set_variance(self, variance: torch.Tensor) -> None:
        """Set the shared column variances (clipped at the floor).

        Only for ``variance="feature"``; the values are mapped back through the
        softplus so that gradient steps may go on from them.
        """
        if self.decoded:
            raise ValueError("a decoded variance has no shared value to set.")
        excess = (variance - self.min_variance).clamp_min(1e-12)
        # softplus^{-1}(v) = v + log(1 - exp(-v)), stable for large and small v.
        raw = excess + torch.log(-torch.expm1(-excess))
        self.raw_variance.copy_(raw.to(self.raw_variance) - self._shift)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Elementwise Gaussian log-density."""
        loc, var = self._split(params)
        return -0.5 * ((x - loc).square() / var + var.log() + _LOG_2PI)

    def log_prob_sum(
        self,
        params: torch.Tensor,
        x: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Summed log-density; shared variances are folded into matmuls."""
        loc, var = self._split(params)
        sq = (x - loc).square()
        if self.decoded:
            terms = sq / var + var.log()
            if mask is not None:
                return -0.5 * ((terms * mask).sum(-1) + _LOG_2PI * mask.sum(-1))
            return -0.5 * (terms.sum(-1) + _LOG_2PI * self.n_columns)
        const = var.log() + _LOG_2PI
        if mask is None:
            return -0.5 * (sq @ var.reciprocal() + const.sum())
        return -0.5 * ((sq * mask) @ var.reciprocal() + mask @ const)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The first decoder outputs are the mean."""
        return params[..., : self.n_columns] if self.decoded else params

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Mean plus Gaussian noise of the modelled variance."""
        loc, var = self._split(params)
        noise = torch.randn(
            loc.shape, generator=generator, device=loc.device, dtype=loc.dtype
        )
        return loc + noise * var.sqrt()


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
