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
    floor : Tensor of shape (n_columns,), optional
        A floor per column instead of ``min_variance`` (which still fixes
        where the softplus starts).
    """

    kind = "gaussian"

    def __init__(
        self,
        n_columns: int,
        min_variance: float = 1e-3,
        variance: str = "feature",
        floor: torch.Tensor | None = None,
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
        # Rebuilt from the fitted schema, so not part of the saved weights; a
        # copy restores it after ``to_empty`` (see :meth:`reset_parameters`).
        self._floor = (
            torch.full((n_columns,), self.min_variance)
            if floor is None
            else torch.as_tensor(floor)
            .detach()
            .to("cpu", torch.float32)
            .reshape(n_columns)
            .clone()
        )
        self.register_buffer("floor", self._floor.clone(), persistent=False)
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
        with torch.no_grad():
            self.floor.copy_(self._floor)
        if not self.decoded:
            with torch.no_grad():
                self.raw_variance.zero_()

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and variances; the feature variance has shape (n_columns,)."""
        if self.decoded:
            loc, raw = params[..., : self.n_columns], params[..., self.n_columns :]
        else:
            loc, raw = params, self.raw_variance
        return loc, F.softplus(raw + self._shift) + self.floor

    def variance(self, params: torch.Tensor | None = None) -> torch.Tensor:
        """Variances: per column, or per row and column when decoded."""
        if self.decoded:
            if params is None:
                raise ValueError("a decoded variance needs the decoder outputs.")
            return self._split(params)[1]
        return F.softplus(self.raw_variance + self._shift) + self.floor

    @torch.no_grad()
    def set_variance(self, variance: torch.Tensor) -> None:
        """Set the shared column variances (clipped at the floor).

        Only for ``variance="feature"``; the values are mapped back through the
        softplus so that gradient steps may go on from them.
        """
        if self.decoded:
            raise ValueError("a decoded variance has no shared value to set.")
        excess = (variance - self.floor).clamp_min(1e-12)
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


def make_likelihoods(
    block_sizes: Sequence[int],
    n_categories: Sequence[int],
    *,
    min_variance: float,
    gaussian_variance: str,
    gaussian_floor: torch.Tensor | None = None,
) -> LikelihoodSet:
    """The likelihood blocks of a table: Gaussian, Bernoulli, categorical.

    ``block_sizes`` holds the number of columns of each kind, in that order
    (empty kinds get no block); ``n_categories`` the category counts of the
    categorical columns; ``gaussian_floor`` an optional variance floor per
    Gaussian column (see :class:`GaussianLikelihood`).
    """
    n_gaussian, n_bernoulli, n_categorical = block_sizes
    blocks: list[Likelihood] = []
    if n_gaussian:
        blocks.append(
            GaussianLikelihood(
                n_gaussian,
                min_variance,
                variance=gaussian_variance,
                floor=gaussian_floor,
            )
        )
    if n_bernoulli:
        blocks.append(BernoulliLikelihood(n_bernoulli))
    if n_categorical:
        blocks.append(CategoricalLikelihood(n_categories))
    return LikelihoodSet(blocks)


class LikelihoodSet(nn.Module):
    """The blocks of p(x | z) side by side, each on its slice of the columns.

    Block ``i`` covers the next ``n_columns`` data columns, the next
    ``n_variables`` mask columns and the next ``n_params`` decoder outputs.
    Data columns and variables differ only for categorical blocks (one-hot
    columns, one variable each). Indexing gives the blocks.

    Parameters
    ----------
    blocks : sequence of Likelihood
        Observation models, in column order.
    """

    def __init__(self, blocks: Sequence[Likelihood]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.n_columns = sum(lk.n_columns for lk in blocks)
        self.n_variables = sum(lk.n_variables for lk in blocks)
        self.n_params = sum(lk.n_params for lk in blocks)
        self._slices: list[tuple[slice, slice, slice]] = []
        col = par = var = 0
        for lk in blocks:
            self._slices.append(
                (
                    slice(col, col + lk.n_columns),
                    slice(par, par + lk.n_params),
                    slice(var, var + lk.n_variables),
                )
            )
            col += lk.n_columns
            par += lk.n_params
            var += lk.n_variables

    def __getitem__(self, index: int) -> Likelihood:
        return self.blocks[index]

    def __len__(self) -> int:
        return len(self.blocks)

    def slices(self, index: int) -> tuple[slice, slice, slice]:
        """Block ``index``'s data columns, decoder outputs and mask columns."""
        return self._slices[index]

    def _parts(self):
        return zip(self.blocks, self._slices, strict=True)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise every block's parameters."""
        for lk in self.blocks:
            lk.reset_parameters(generator)

    # ------------------------------------------------------------------ p(x|z)
    def log_prob_sum(
        self,
        params: torch.Tensor,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Log p(x | z) summed over observed variables, shape ``params.shape[:-1]``."""
        if len(self.blocks) == 1:
            return self.blocks[0].log_prob_sum(params, x, mask)
        total = 0.0
        for lk, (cols, pars, mvars) in self._parts():
            m = None if mask is None else mask[..., mvars]
            total = total + lk.log_prob_sum(params[..., pars], x[..., cols], m)
        return total

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Log p(x_j | z) per variable, ``params.shape[:-1] + (n_variables,)``."""
        parts = [
            lk.log_prob(params[..., pars], x[..., cols])
            for lk, (cols, pars, _) in self._parts()
        ]
        return torch.cat(parts, dim=-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x | z] for every column (a categorical's probability vector)."""
        return torch.cat(
            [lk.mean(params[..., pars]) for lk, (_, pars, _) in self._parts()], dim=-1
        )

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw x ~ p(x | z) for every column."""
        return torch.cat(
            [
                lk.sample(params[..., pars], generator)
                for lk, (_, pars, _) in self._parts()
            ],
            dim=-1,
        )

    # ------------------------------------------------------------------ variances
    def _shared(self) -> list:
        """Gaussian blocks with one variance per column, and their slices."""
        return [
            (lk, sl)
            for lk, sl in self._parts()
            if isinstance(lk, GaussianLikelihood) and not lk.decoded
        ]

    def shared_variance_columns(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Columns with a shared Gaussian variance, and those variances.

        Two tensors of the same length: the column indices (in data-column
        order) and their current variances.
        """
        shared = self._shared()
        ref = next(iter(self.parameters()), None)
        device = None if ref is None else ref.device
        if not shared:
            return torch.zeros(0, dtype=torch.long, device=device), torch.zeros(
                0, device=device
            )
        columns = torch.cat(
            [torch.arange(c.start, c.stop, device=device) for _, (c, _, _) in shared]
        )
        return columns, torch.cat([lk.variance() for lk, _ in shared])

    @torch.no_grad()
    def scale_feature_variances(self, factor: float) -> None:
        """Multiply every shared Gaussian variance by ``factor``."""
        for lk, _ in self._shared():
            lk.set_variance(lk.variance() * factor)

    @torch.no_grad()
    def pool_feature_variances(self) -> None:
        """Give every column of a shared Gaussian block the block's mean variance.

        For fitted closed-form variances (each a column's mean squared
        residual) the mean is the pooled estimate of one noise variance for
        all the block's columns, the isotropic noise of probabilistic PCA.
        """
        for lk, _ in self._shared():
            lk.set_variance(lk.variance().mean().expand(lk.n_columns))

    def new_residual_sums(self) -> list[torch.Tensor] | None:
        """Zeroed accumulators for :meth:`add_residuals`, or None.

        None when there is no shared Gaussian variance to update. Otherwise
        ``[sums, counts]``, each of length the number of such columns.
        """
        shared = self._shared()
        if not shared:
            return None
        ref = shared[0][0].raw_variance
        width = sum(lk.n_columns for lk, _ in shared)
        return [ref.new_zeros(width), ref.new_zeros(width)]

    @torch.no_grad()
    def add_residuals(
        self,
        residuals: list[torch.Tensor],
        x: torch.Tensor,
        mask: torch.Tensor | None,
        params: torch.Tensor,
        log_w: torch.Tensor | None = None,
    ) -> None:
        """Add the posterior expected squared residuals of a batch, in place.

        ``params`` are decoder outputs of shape (n, n_params) for one draw
        per row, or (K, n, n_params) with their log-weights ``log_w`` (K, n)
        for K draws, which are averaged with the self-normalized importance
        weights. Entries whose mask is 0 are left out of sums and counts.
        """
        sums, counts = residuals
        weights = None
        if log_w is not None:
            weights = torch.softmax(log_w, dim=0).unsqueeze(-1)  # (K, n, 1)
        col = 0
        for lk, (cols, pars, mvars) in self._shared():
            sq = (x[..., cols] - lk.mean(params[..., pars])).square()
            if weights is not None:
                sq = (weights * sq).sum(0)
            out = slice(col, col + lk.n_columns)
            col += lk.n_columns
            if mask is None:
                sums[out] += sq.sum(0)
                counts[out] += sq.shape[0]
            else:
                obs = mask[:, mvars].to(sq.dtype)
                sums[out] += (sq * obs).sum(0)
                counts[out] += obs.sum(0)

    @torch.no_grad()
    def set_feature_variances(self, residuals: list[torch.Tensor]) -> None:
        """Set each shared Gaussian variance to its mean squared residual.

        ``residuals`` as filled by :meth:`add_residuals`. With the encoder and
        the decoder means fixed this is the variance that maximizes the bound
        (the ELBO for one draw per row; one fixed-point step of the
        importance-weighted bound for K weighted draws). A column with no
        observed entry keeps its variance.
        """
        sums, counts = residuals
        col = 0
        for lk, _ in self._shared():
            sl = slice(col, col + lk.n_columns)
            col += lk.n_columns
            value = torch.where(
                counts[sl] > 0,
                sums[sl] / counts[sl].clamp_min(1.0),
                lk.variance().to(sums),
            )
            lk.set_variance(value)
