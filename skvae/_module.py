"""The variational autoencoder as a plain torch module.

Nothing here knows about numpy or scikit-learn: tensors in, tensors out. The
estimators in this package own every conversion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._conv import ConvDecoder, ConvEncoder, feature_map_size, feature_shape
from ._likelihoods import GaussianLikelihood, Likelihood

_LOG_2PI = math.log(2.0 * math.pi)
#: Posterior log-variances are clamped to this range for numerical safety.
LOGVAR_RANGE = (-12.0, 8.0)

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Fully connected network; no activation after the last layer.

    Layers are created on the meta device (no random numbers are drawn); call
    :meth:`VAEModule.reset_parameters` to materialise and initialise them.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(n_in, n_out, device="meta"))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _init_linear(layer: nn.Linear, generator: torch.Generator | None) -> None:
    # torch's default nn.Linear initialisation, drawn from a local generator.
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0.0
    with torch.no_grad():
        layer.bias.uniform_(-bound, bound, generator=generator)


def _init_conv(
    layer: nn.Conv2d | nn.ConvTranspose2d, generator: torch.Generator | None
) -> None:
    # torch's default convolution initialisation, drawn from a local generator;
    # its fan-in is weight.shape[1] times the kernel area for both kinds.
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(layer.weight[0].numel())
    with torch.no_grad():
        layer.bias.uniform_(-bound, bound, generator=generator)


class VAEModule(nn.Module):
    """Encoder, decoder and per-block likelihoods of a VAE.

    Parameters
    ----------
    likelihoods : sequence of Likelihood
        Observation models, in column order: block ``i`` covers the next
        ``n_columns`` data columns, the next ``n_variables`` mask columns and
        the next ``n_params`` decoder outputs. Data columns and variables
        differ only for categorical blocks (one-hot columns, one variable
        each).
    n_components : int
        Latent dimension.
    hidden_layer_sizes : sequence of int
        Encoder hidden widths; the decoder mirrors them. Empty gives a linear
        encoder and decoder.
    activation : str
        Hidden activation name.
    mask_channel : bool
        Whether the encoder also receives the missingness mask (one column
        per variable).
    n_conditions : int
        Width of a one-hot condition fed to the decoder (0: unconditional).
    image_shape : tuple of int, optional
        (channels, height, width) of the images that the rows flatten (in
        that order). When given, the encoder and decoder are convolutional
        (:mod:`skvae._conv`), joined to the latent code by one linear layer
        each, and ``hidden_layer_sizes`` is not used.
    generator : torch.Generator, optional
        Source of the initial weights. The global RNG is never touched.
    """

    def __init__(
        self,
        likelihoods: Sequence[Likelihood],
        n_components: int,
        hidden_layer_sizes: Sequence[int] = (128, 64),
        activation: str = "relu",
        mask_channel: bool = False,
        n_conditions: int = 0,
        image_shape: Sequence[int] | None = None,
        class_prior: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.likelihoods = nn.ModuleList(likelihoods)
        self.n_columns = sum(lk.n_columns for lk in likelihoods)
        self.n_variables = sum(lk.n_variables for lk in likelihoods)
        self.n_params = sum(lk.n_params for lk in likelihoods)
        self.n_components = n_components
        self.mask_channel = mask_channel
        self.n_conditions = n_conditions
        hidden = list(hidden_layer_sizes)
        n_in = self.n_columns + (self.n_variables if mask_channel else 0)
        self.image_shape = None if image_shape is None else tuple(image_shape)
        #: Floats per row of the largest convolutional feature map (0: none).
        self.feature_map_size = 0
        if image_shape is None:
            self.encoder = mlp([n_in, *hidden, 2 * n_components], activation)
            self.decoder = mlp(
                [n_components + n_conditions, *hidden[::-1], self.n_params],
                activation,
            )
        else:
            self._build_conv(activation)
        if n_conditions and class_prior:
            # p(z | y) = N(prior_loc[y], exp(prior_logvar[y])), learned; starts
            # at N(0, I).
            self.prior_loc = nn.Parameter(torch.empty(n_conditions, n_components))
            self.prior_logvar = nn.Parameter(
                torch.empty(n_conditions, n_components)
            )
        else:
            self.register_parameter("prior_loc", None)
            self.register_parameter("prior_logvar", None)
        self._slices = []
        self._mask_slices = []
        col = par = var = 0
        for lk in likelihoods:
            self._slices.append(
                (slice(col, col + lk.n_columns), slice(par, par + lk.n_params))
            )
            self._mask_slices.append(slice(var, var + lk.n_variables))
            col += lk.n_columns
            par += lk.n_params
            var += lk.n_variables
        self.to_empty(device="cpu")
        self.reset_parameters(generator)

    def _build_conv(self, activation: str) -> None:
        """Convolutional encoder and decoder, each with one linear layer."""
        if math.prod(self.image_shape) != self.n_columns:
            raise ValueError(
                f"image_shape {self.image_shape} has {math.prod(self.image_shape)} "
                f"pixels but the data have {self.n_columns} columns."
            )
        if (
            len(self.likelihoods) != 1
            or self.n_params % self.n_columns
            or self.n_variables != self.n_columns
        ):
            raise ValueError(
                "a convolutional decoder needs one likelihood for all columns, "
                "with the same number of outputs per column."
            )
        in_channels = self.image_shape[0] * (2 if self.mask_channel else 1)
        n_flat = math.prod(feature_shape(self.image_shape))
        act = _ACTIVATIONS[activation]
        n_latent = self.n_components + self.n_conditions
        self.encoder = ConvEncoder(
            self.image_shape,
            in_channels,
            mlp([n_flat, 2 * self.n_components], activation),
            act,
        )
        self.decoder = ConvDecoder(
            self.image_shape,
            mlp([n_latent, n_flat], activation),
            act,
            params_per_pixel=self.n_params // self.n_columns,
        )
        self.feature_map_size = feature_map_size(self.image_shape, in_channels)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise every weight from ``generator``."""
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                _init_linear(layer, generator)
            elif isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
                _init_conv(layer, generator)
        for lk in self.likelihoods:
            lk.reset_parameters(generator)
        if self.prior_loc is not None:
            with torch.no_grad():
                self.prior_loc.zero_()
                self.prior_logvar.zero_()

    # ------------------------------------------------------------------ p(z|y)
    def prior(
        self, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Mean and log-variance of p(z | y) per row, or None for N(0, I).

        ``condition`` holds one-hot rows (the class is their argmax); a module
        without a learned class prior always uses the standard normal. Rows
        index the parameters, so a row's prior does not depend on its batch.
        """
        if self.prior_loc is None or condition is None:
            return None
        index = condition.argmax(-1)
        return self.prior_loc[index], self.prior_logvar[index]

    def sample_prior(
        self,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Map standard-normal ``eps`` (n, n_components) to draws of p(z | y)."""
        prior = self.prior(condition)
        if prior is None:
            return eps
        loc, logvar = prior
        return loc + torch.exp(0.5 * logvar) * eps

    # ------------------------------------------------------------------ q(z|x)
    def inference(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and clamped log-variance, each (n, n_components).

        ``x`` must hold finite values everywhere (missing entries already
        filled); ``mask`` is 1 for observed entries, one column per variable.
        """
        if self.mask_channel:
            if mask is None:
                mask = x.new_ones((*x.shape[:-1], self.n_variables))
            x = torch.cat([x, mask], dim=-1)
        h = self.encoder(x)
        loc, logvar = h.chunk(2, dim=-1)
        return loc, logvar.clamp(*LOGVAR_RANGE)

    # ------------------------------------------------------------------ p(x|z)
    def generative(
        self, z: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Decoder outputs (the parameters of every likelihood block)."""
        if self.n_conditions:
            if condition is None:
                raise ValueError("this module is conditional: pass a condition")
            condition = condition.expand(*z.shape[:-1], condition.shape[-1])
            z = torch.cat([z, condition], dim=-1)
        return self.decoder(z)

    def log_likelihood(
        self,
        params: torch.Tensor,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Log p(x | z) summed over observed variables, shape ``params.shape[:-1]``."""
        if len(self.likelihoods) == 1:
            return self.likelihoods[0].log_prob_sum(params, x, mask)
        total = 0.0
        for lk, (cols, pars), mvars in zip(
            self.likelihoods, self._slices, self._mask_slices, strict=True
        ):
            m = None if mask is None else mask[..., mvars]
            total = total + lk.log_prob_sum(params[..., pars], x[..., cols], m)
        return total

    def log_likelihood_columns(
        self, params: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """Log p(x_j | z) per variable, shape ``params.shape[:-1] + (n_variables,)``."""
        parts = [
            lk.log_prob(params[..., pars], x[..., cols])
            for lk, (cols, pars) in zip(self.likelihoods, self._slices, strict=True)
        ]
        return torch.cat(parts, dim=-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x | z] for every column, shape ``(..., n_columns)``.

        For a categorical variable this is its vector of probabilities.
        """
        return torch.cat(
            [
                lk.mean(params[..., p])
                for lk, (_, p) in zip(self.likelihoods, self._slices, strict=True)
            ],
            dim=-1,
        )

    def sample_x(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw x ~ p(x | z) for every column."""
        return torch.cat(
            [
                lk.sample(params[..., p], generator)
                for lk, (_, p) in zip(self.likelihoods, self._slices, strict=True)
            ],
            dim=-1,
        )

    # ------------------------------------------------------------------ ELBO
    def loss_terms(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        noise: torch.Tensor,
        condition: torch.Tensor | None = None,
        residuals: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row reconstruction NLL and KL(q(z|x) || N(0, I)), each (n,).

        ``noise`` is a standard-normal tensor of shape (n, n_components) used
        for the reparameterization ``z = loc + std * noise``. ``residuals``
        (optional, from :meth:`new_residual_sums`) accumulates the squared
        residuals of the shared-variance Gaussian columns at no extra decoder
        cost (see :meth:`add_residuals`).
        """
        loc, logvar = self.inference(x, mask)
        std = torch.exp(0.5 * logvar)
        z = loc + std * noise
        params = self.generative(z, condition)
        recon = -self.log_likelihood(params, x, mask)
        if residuals is not None:
            self.add_residuals(residuals, x, mask, params)
        prior = self.prior(condition)
        if prior is None:
            kl = 0.5 * (loc.square() + std.square() - 1.0 - logvar).sum(-1)
        else:
            p_loc, p_logvar = prior
            kl = 0.5 * (
                p_logvar
                - logvar
                + (std.square() + (loc - p_loc).square()) * torch.exp(-p_logvar)
                - 1.0
            ).sum(-1)
        return recon, kl

    def kl_per_component(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per row and latent component, (n, n_components)."""
        loc, logvar = self.inference(x, mask)
        return 0.5 * (loc.square() + logvar.exp() - 1.0 - logvar)

    # ------------------------------------------------------------------ IWAE
    def log_weights(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
        kl_weight: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Importance log-weights and decoder outputs for K posterior draws.

        Parameters
        ----------
        x : Tensor of shape (n, n_columns)
        mask : Tensor of shape (n, n_variables) or None
        eps : Tensor of shape (K, n_components) or (K, n, n_components)
            Standard-normal draws; a (K, n_components) tensor is shared by all
            rows (common random numbers).
            Rows with no observed entry use the prior N(0, I) as proposal
            (their exact posterior), so their weights are all equal.
        condition : Tensor, optional
            Decoder condition of a conditional module.
        kl_weight : float, default=1.0
            Weight of ``log p(z) - log q(z | x)`` (beta of a beta-VAE; 1 gives
            the importance weights proper).

        Returns
        -------
        log_w : Tensor of shape (K, n)
            ``log p(x_obs | z_k) + log p(z_k) - log q(z_k | x)``.
        params : Tensor of shape (K, n, n_params)
        """
        loc, logvar = self.inference(x, mask)
        if mask is not None:
            # A row with nothing observed has the prior as its exact posterior.
            empty = mask.sum(-1, keepdim=True) == 0
            loc = loc.masked_fill(empty, 0.0)
            logvar = logvar.masked_fill(empty, 0.0)
        if eps.dim() == 2:
            eps = eps[:, None, :]
        std = torch.exp(0.5 * logvar)
        z = loc + std * eps  # (K, n, d)
        params = self.generative(z, condition)
        log_px = self.log_likelihood(params, x, mask)
        # log p(z) - log q(z|x): the 0.5 log 2pi terms cancel.
        prior = self.prior(condition)
        if prior is None:
            log_pz = -0.5 * z.square().sum(-1)
        else:
            p_loc, p_logvar = prior
            log_pz = -0.5 * (
                (z - p_loc).square() * torch.exp(-p_logvar) + p_logvar
            ).sum(-1)
        log_qz = -0.5 * (eps.square() + logvar).sum(-1)
        if kl_weight == 1.0:
            return log_px + log_pz - log_qz, params
        return log_px + kl_weight * (log_pz - log_qz), params

    def iwae_loss(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
        kl_weight: float = 1.0,
        residuals: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Per-row negative importance-weighted bound with K draws, shape (n,).

        ``eps`` has shape (K, n, n_components): independent draws per row.
        With ``mask``, only observed entries count (the MIWAE bound).
        ``residuals`` accumulates importance-weighted squared residuals, as
        in :meth:`loss_terms`.
        """
        log_w, params = self.log_weights(x, mask, eps, condition, kl_weight)
        if residuals is not None:
            self.add_residuals(residuals, x, mask, params, log_w)
        return math.log(log_w.shape[0]) - torch.logsumexp(log_w, dim=0)

    def impute(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Importance-weighted conditional mean E[x | x_obs], shape (n, n_columns).

        ``sum_k w_k E[x | z_k]`` with self-normalized weights
        ``w_k ~ p(x_obs | z_k) p(z_k) / q(z_k | x_obs)`` (Mattei & Frellsen,
        2019). Every column is returned; callers keep the observed ones. For a
        categorical variable this is ``sum_k w_k p(category | z_k)``, whose
        argmax is the most probable category under the predictive.
        """
        log_w, params = self.log_weights(x, mask, eps, condition)
        weights = torch.softmax(log_w, dim=0).unsqueeze(-1)  # (K, n, 1)
        return (weights * self.mean(params)).sum(0)

    def impute_spread(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`impute` and the weighted variance of E[x | z_k] around it.

        Both of shape (n, n_columns): ``sum_k w_k m_k`` and
        ``sum_k w_k (m_k - sum_j w_j m_j)^2`` with ``m_k = E[x | z_k]``, the
        part of the predictive variance that comes from the latent code.
        """
        log_w, params = self.log_weights(x, mask, eps, condition)
        weights = torch.softmax(log_w, dim=0).unsqueeze(-1)  # (K, n, 1)
        means = self.mean(params)
        mean = (weights * means).sum(0)
        return mean, (weights * (means - mean).square()).sum(0)

    def sample_missing(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        eps: torch.Tensor,
        generator: torch.Generator | None = None,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One draw from p(x | x_obs) per row by sampling-importance-resampling.

        A latent draw z_k is picked with probability w_k (the importance
        weights of :meth:`log_weights`), then x ~ p(x | z_k). Shape
        (n, n_columns); callers keep the observed entries.
        """
        log_w, params = self.log_weights(x, mask, eps, condition)
        probs = torch.softmax(log_w, dim=0).T  # (n, K)
        pick = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        rows = torch.arange(x.shape[0], device=x.device)
        return self.sample_x(params[pick, rows], generator)

    def feature_log_likelihood(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-column log p(x_j | z) under the importance-weighted posterior.

        The self-normalized importance weights of :meth:`log_weights` average
        the per-variable log-likelihood over the K draws. Shape (n, n_variables);
        entries whose mask is 0 are returned as NaN.
        """
        log_w, params = self.log_weights(x, mask, eps, condition)
        weights = torch.softmax(log_w, dim=0)  # (K, n)
        per_column = self.log_likelihood_columns(params, x)  # (K, n, p)
        out = (weights.unsqueeze(-1) * per_column).sum(0)
        if mask is not None:
            out = out.masked_fill(mask == 0, float("nan"))
        return out

    def reconstruction_log_prob(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Reconstruction probability E_q(z|x)[log p(x_obs | z)], shape (n,).

        The Monte Carlo mean over the K draws ``loc + std * eps`` (An & Cho,
        2015); unlike :meth:`log_marginal` it leaves out the latent code's own
        surprise, log p(z) - log q(z | x).
        """
        # With kl_weight=0 the log-weights are log p(x_obs | z_k) alone.
        log_px, _ = self.log_weights(x, mask, eps, condition, kl_weight=0.0)
        return log_px.mean(0)

    def log_marginal(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Importance-weighted (IWAE) estimate of log p(x_obs), shape (n,)."""
        log_w, _ = self.log_weights(x, mask, eps, condition)
        return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])

    # ------------------------------------------------------------------ M-step
    def _shared_variance_blocks(self) -> list:
        return [
            (lk, cols, pars, mvars)
            for lk, (cols, pars), mvars in zip(
                self.likelihoods, self._slices, self._mask_slices, strict=True
            )
            if isinstance(lk, GaussianLikelihood) and not lk.decoded
        ]

    def shared_variance_columns(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Columns with a shared Gaussian variance, and those variances.

        Two tensors of the same length: the column indices (in data-column
        order) and their current variances.
        """
        blocks = self._shared_variance_blocks()
        ref = next(self.parameters())
        if not blocks:
            return (
                torch.zeros(0, dtype=torch.long, device=ref.device),
                ref.new_zeros(0),
            )
        columns = torch.cat(
            [
                torch.arange(cols.start, cols.stop, device=ref.device)
                for _, cols, _, _ in blocks
            ]
        )
        return columns, torch.cat([lk.variance() for lk, *_ in blocks])

    @torch.no_grad()
    def scale_feature_variances(self, factor: float) -> None:
        """Multiply every shared Gaussian variance by ``factor``."""
        for lk, *_ in self._shared_variance_blocks():
            lk.set_variance(lk.variance() * factor)

    @torch.no_grad()
    def pool_feature_variances(self) -> None:
        """Give every column of a shared Gaussian block the block's mean variance.

        For fitted closed-form variances (each a column's mean squared
        residual) the mean is the pooled estimate of one noise variance for
        all the block's columns, the isotropic noise of probabilistic PCA.
        """
        for lk, *_ in self._shared_variance_blocks():
            lk.set_variance(lk.variance().mean().expand(lk.n_columns))

    def new_residual_sums(self) -> list[torch.Tensor] | None:
        """Zeroed accumulators for :meth:`add_residuals`, or None.

        None when the module has no shared Gaussian variance to update.
        Otherwise ``[sums, counts]``, each of length the number of such
        columns.
        """
        width = sum(lk.n_columns for lk, *_ in self._shared_variance_blocks())
        if width == 0:
            return None
        ref = next(self.parameters())
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
        for lk, cols, pars, mvars in self._shared_variance_blocks():
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
        for lk, *_ in self._shared_variance_blocks():
            sl = slice(col, col + lk.n_columns)
            col += lk.n_columns
            value = torch.where(
                counts[sl] > 0,
                sums[sl] / counts[sl].clamp_min(1.0),
                lk.variance().to(sums),
            )
            lk.set_variance(value)

    @torch.no_grad()
    def refit_feature_variances(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
        *,
        kl_weight: float = 1.0,
        chunk_elements: int = 2**22,
    ) -> bool:
        """Closed-form update of every shared Gaussian column variance.

        One pass over ``x`` with the K draws in ``eps`` (shape
        (K, n, n_components)) through :meth:`add_residuals` and
        :meth:`set_feature_variances`. Rows are processed in chunks of about
        ``chunk_elements`` decoder outputs.

        Returns
        -------
        changed : bool
            Whether the module has a shared Gaussian variance to update.
        """
        residuals = self.new_residual_sums()
        if residuals is None:
            return False
        step = max(1, chunk_elements // max(1, eps.shape[0] * self.n_params))
        for start in range(0, x.shape[0], step):
            sl = slice(start, start + step)
            mb = None if mask is None else mask[sl]
            cb = None if condition is None else condition[sl]
            log_w, params = self.log_weights(x[sl], mb, eps[:, sl], cb, kl_weight)
            self.add_residuals(residuals, x[sl], mb, params, log_w)
        self.set_feature_variances(residuals)
        return True
