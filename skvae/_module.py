"""The variational autoencoder as a plain torch module, built from parts.

:class:`VAEModule` joins an encoder network, a latent layer
(:class:`~skvae._latent.GaussianLatent`), a decoder network and the
per-column likelihoods (:class:`~skvae._likelihoods.LikelihoodSet`). It
computes the training losses and the importance-weighted quantities from
which every estimate is made. Nothing here knows about numpy or
scikit-learn: tensors in, tensors out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._chunks import chunks, rows_per_chunk
from ._latent import GaussianLatent
from ._likelihoods import Likelihood, LikelihoodSet
from ._networks import build_networks, initialize


class VAEModule(nn.Module):
    """Encoder, latent layer, decoder and likelihoods of a VAE.

    Parameters
    ----------
    encoder : nn.Module
        Maps rows (with the mask appended when ``mask_channel``) to the
        latent layer's inputs.
    latent : GaussianLatent
        Posterior parameterisation and prior.
    decoder : nn.Module
        Maps latent codes (with the condition appended for a conditional
        model) to the likelihoods' parameters.
    likelihoods : LikelihoodSet
        Observation models of the columns.
    mask_channel : bool, default=False
        Whether the encoder also receives the missingness mask (one column
        per variable).
    n_conditions : int, default=0
        Width of a one-hot condition fed to the decoder (0: unconditional).
    feature_map_size : int, default=0
        Floats per row of the largest convolutional feature map (0: none).
    image_shape : tuple of int or None, default=None
        (channels, height, width) of a convolutional module's images.
    """

    def __init__(
        self,
        encoder: nn.Module,
        latent: GaussianLatent,
        decoder: nn.Module,
        likelihoods: LikelihoodSet,
        *,
        mask_channel: bool = False,
        n_conditions: int = 0,
        feature_map_size: int = 0,
        image_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        # Registration order fixes the parameter order (that of the optimizer
        # and of the gradient norm's sum): likelihoods, encoder, decoder,
        # latent.
        self.likelihoods = likelihoods
        self.encoder = encoder
        self.decoder = decoder
        self.latent = latent
        self.mask_channel = mask_channel
        self.n_conditions = n_conditions
        self.feature_map_size = feature_map_size
        self.image_shape = None if image_shape is None else tuple(image_shape)
        #: Latent dimension; encoded columns, variables (mask columns) and
        #: decoder outputs per row.
        self.n_components = latent.n_components
        self.n_columns = likelihoods.n_columns
        self.n_variables = likelihoods.n_variables
        self.n_params = likelihoods.n_params

    @property
    def row_width(self) -> int:
        """Numbers per row in the module's widest tensor (for chunk sizes)."""
        widths = [self.n_params, self.latent.n_inputs, self.feature_map_size]
        widths += [m.out_features for m in self.modules() if isinstance(m, nn.Linear)]
        return max(widths)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise every weight from ``generator``."""
        initialize(self, generator)
        self.latent.reset_parameters(generator)
        self.likelihoods.reset_parameters(generator)

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
        return self.latent.posterior(self.encoder(x))

    def sample_prior(
        self, eps: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Map standard-normal ``eps`` (n, n_components) to draws of p(z | y)."""
        return self.latent.sample_prior(eps, condition)

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

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x | z] for every column (a categorical's probability vector)."""
        return self.likelihoods.mean(params)

    def sample_x(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw x ~ p(x | z) for every column."""
        return self.likelihoods.sample(params, generator)

    # ------------------------------------------------------------------ ELBO
    def loss_terms(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        noise: torch.Tensor,
        condition: torch.Tensor | None = None,
        residuals: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row reconstruction NLL and KL(q(z|x) || p(z)), each (n,).

        ``noise`` is a standard-normal tensor of shape (n, n_components) for
        the reparameterization. ``residuals`` (optional, from
        :meth:`LikelihoodSet.new_residual_sums`) accumulates the squared
        residuals of the shared-variance Gaussian columns at no extra decoder
        cost.
        """
        loc, logvar = self.inference(x, mask)
        z, kl = self.latent.rsample_kl(loc, logvar, noise, condition)
        params = self.generative(z, condition)
        recon = -self.likelihoods.log_prob_sum(params, x, mask)
        if residuals is not None:
            self.likelihoods.add_residuals(residuals, x, mask, params)
        return recon, kl

    def kl_per_component(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per row and latent component, (n, n_components)."""
        return self.latent.kl_per_component(*self.inference(x, mask))

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
            rows (common random numbers). Rows with no observed entry use the
            prior as proposal (their exact posterior).
        condition : Tensor, optional
            Decoder condition of a conditional module.
        kl_weight : float, default=1.0
            Weight of ``log p(z) - log q(z | x)`` (1 gives the importance
            weights proper; 0 the reconstruction term alone).

        Returns
        -------
        log_w : Tensor of shape (K, n)
            ``log p(x_obs | z_k) + kl_weight * (log p(z_k) - log q(z_k | x))``.
        params : Tensor of shape (K, n, n_params)
        """
        loc, logvar = self.proposal(x, mask)
        if eps.dim() == 2:
            eps = eps[:, None, :]
        z, log_pz, log_qz = self.latent.importance_draws(loc, logvar, eps, condition)
        params = self.generative(z, condition)  # (K, n, n_params)
        log_px = self.likelihoods.log_prob_sum(params, x, mask)
        if kl_weight == 1.0:
            return log_px + log_pz - log_qz, params
        return log_px + kl_weight * (log_pz - log_qz), params

    def proposal(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the importance proposal, each (n, n_components).

        The posterior approximation q(z | x), except for rows with no observed
        entry, whose proposal is the standard normal (their exact posterior
        under an unconditional prior).
        """
        loc, logvar = self.inference(x, mask)
        if mask is not None:
            empty = mask.sum(-1, keepdim=True) == 0
            loc = loc.masked_fill(empty, 0.0)
            logvar = logvar.masked_fill(empty, 0.0)
        return loc, logvar

    def log_joint(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        z: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``log p(x_obs | z) + log p(z | y)`` of codes ``z`` (..., n, n_components).

        Up to the same ``0.5 log 2 pi`` terms per component that
        :meth:`GaussianLatent.log_prior` leaves out; shape ``z.shape[:-1]``.
        """
        params = self.generative(z, condition)
        log_px = self.likelihoods.log_prob_sum(params, x, mask)
        return log_px + self.latent.log_prior(z, condition)

    @torch.no_grad()
    def residual_sums(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
        *,
        kl_weight: float = 1.0,
    ) -> list[torch.Tensor] | None:
        """Posterior expected squared residuals of the shared-variance columns.

        ``[sums, counts]`` over the rows of ``x`` (in chunks), with the K
        draws of ``eps`` (shape (K, n, n_components)) weighted by their
        self-normalized importance weights; None when no column has a shared
        Gaussian variance.
        """
        residuals = self.likelihoods.new_residual_sums()
        if residuals is None:
            return None
        size = rows_per_chunk(self.row_width, eps.shape[0], live=2)
        for sl in chunks(x.shape[0], size):
            mb = None if mask is None else mask[sl]
            cb = None if condition is None else condition[sl]
            log_w, params = self.log_weights(x[sl], mb, eps[:, sl], cb, kl_weight)
            self.likelihoods.add_residuals(residuals, x[sl], mb, params, log_w)
        return residuals

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
        """
        log_w, params = self.log_weights(x, mask, eps, condition, kl_weight)
        if residuals is not None:
            self.likelihoods.add_residuals(residuals, x, mask, params, log_w)
        return math.log(log_w.shape[0]) - torch.logsumexp(log_w, dim=0)


def build_module(
    likelihoods: LikelihoodSet | Sequence[Likelihood],
    n_components: int,
    hidden_layer_sizes: Sequence[int] = (128, 64),
    activation: str = "relu",
    *,
    mask_channel: bool = False,
    n_conditions: int = 0,
    image_shape: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
) -> VAEModule:
    """A :class:`VAEModule` with MLP or convolutional networks, initialised.

    Parameters
    ----------
    likelihoods : LikelihoodSet or sequence of Likelihood
        Observation models, in column order.
    n_components : int
        Latent dimension.
    hidden_layer_sizes : sequence of int, default=(128, 64)
        Encoder hidden widths of an MLP; the decoder mirrors them. Empty
        gives a linear encoder and decoder.
    activation : str, default="relu"
        Hidden activation name.
    mask_channel : bool, default=False
        Whether the encoder receives the missingness mask.
    n_conditions : int, default=0
        Number of classes of a conditional model (learned class prior).
    image_shape : tuple of int, optional
        (channels, height, width) of the images that the rows flatten: the
        networks are then convolutional.
    generator : torch.Generator, optional
        Source of the initial weights. The global RNG is never touched.
    """
    if not isinstance(likelihoods, LikelihoodSet):
        likelihoods = LikelihoodSet(likelihoods)
    if image_shape is not None:
        image_shape = tuple(image_shape)
        if math.prod(image_shape) != likelihoods.n_columns:
            raise ValueError(
                f"image_shape {image_shape} has {math.prod(image_shape)} "
                f"pixels but the data have {likelihoods.n_columns} columns."
            )
        if len(likelihoods) != 1 or likelihoods.n_variables != likelihoods.n_columns:
            raise ValueError(
                "a convolutional decoder needs one likelihood for all columns, "
                "with the same number of outputs per column."
            )
    latent = GaussianLatent(n_components, n_conditions)
    n_inputs = likelihoods.n_columns + (likelihoods.n_variables if mask_channel else 0)
    encoder, decoder, maps = build_networks(
        n_inputs,
        latent.n_inputs,
        n_components + n_conditions,
        likelihoods.n_params,
        hidden_layer_sizes=hidden_layer_sizes,
        activation=activation,
        image_shape=image_shape,
        image_channels=2 if mask_channel else 1,
    )
    module = VAEModule(
        encoder,
        latent,
        decoder,
        likelihoods,
        mask_channel=mask_channel,
        n_conditions=n_conditions,
        feature_map_size=maps,
        image_shape=image_shape,
    )
    module.to_empty(device="cpu")
    module.reset_parameters(generator)
    return module
