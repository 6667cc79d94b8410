"""The vector-quantized autoencoder as a plain torch module, built from parts.

:class:`VQModule` joins an encoder network, a
:class:`~skvae._quantize.VectorQuantizer`, a decoder network, the per-column
likelihoods and a :class:`~skvae._prior.CodePrior`. It answers the training
loop (:mod:`skvae._training`) and the validation schemes as
:class:`~skvae._module.VAEModule` does: ``loss_terms`` gives the
reconstruction term (plus the commitment term in training mode) and the KL
from the code posterior, a point mass, to the uniform prior of training,
``n_latents * log(n_embeddings)`` nats. The prior's weights are frozen here;
:func:`~skvae._prior.fit_prior` trains them after the autoencoder. Torch
only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._chunks import chunks, rows_per_chunk
from ._conv import ConvDecoder, ConvEncoder, feature_map_size, feature_shape
from ._likelihoods import Likelihood, LikelihoodSet
from ._networks import ACTIVATIONS, initialize, mlp
from ._prior import CodePrior
from ._quantize import VectorQuantizer


class VQModule(nn.Module):
    """Encoder, vector quantizer, decoder, likelihoods and code prior.

    Parameters
    ----------
    encoder : nn.Module
        Maps rows (with the mask appended when ``mask_channel``) to
        ``n_latents * embedding_dim`` values.
    quantizer : VectorQuantizer
        The codebook.
    decoder : nn.Module
        Maps quantized vectors to the likelihoods' parameters.
    likelihoods : LikelihoodSet
        Observation models of the columns.
    prior : CodePrior
        Autoregressive prior over code sequences (its classes are the
        module's conditions).
    commitment_cost : float
        Weight of the commitment term in training.
    mask_channel : bool, default=False
        Whether the encoder also receives the missingness mask.
    feature_map_size : int, default=0
        Floats per row of the largest convolutional feature map (0: none).
    image_shape : tuple of int or None, default=None
        (channels, height, width) of a convolutional module's images.
    """

    def __init__(
        self,
        encoder: nn.Module,
        quantizer: VectorQuantizer,
        decoder: nn.Module,
        likelihoods: LikelihoodSet,
        prior: CodePrior,
        commitment_cost: float,
        *,
        mask_channel: bool = False,
        feature_map_size: int = 0,
        image_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.likelihoods = likelihoods
        self.encoder = encoder
        self.decoder = decoder
        self.quantizer = quantizer
        self.prior = prior
        self.commitment_cost = float(commitment_cost)
        self.mask_channel = mask_channel
        self.feature_map_size = feature_map_size
        self.image_shape = None if image_shape is None else tuple(image_shape)
        self.n_latents = quantizer.n_latents
        self.n_embeddings = quantizer.n_embeddings
        self.embedding_dim = quantizer.embedding_dim
        #: Width of the quantized code vectors (what ``transform`` returns).
        self.n_components = quantizer.n_inputs
        #: Classes of the prior; the decoder itself is unconditional.
        self.n_conditions = prior.n_classes
        self.n_columns = likelihoods.n_columns
        self.n_variables = likelihoods.n_variables
        self.n_params = likelihoods.n_params
        prior.requires_grad_(False)

    @property
    def row_width(self) -> int:
        """Numbers per row in the module's widest tensor (for chunk sizes)."""
        widths = [
            self.n_params,
            self.n_components,
            self.feature_map_size,
            self.n_latents * self.n_embeddings,
        ]
        widths += [m.out_features for m in self.modules() if isinstance(m, nn.Linear)]
        return max(widths)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise every weight from ``generator``; forget the codebook."""
        initialize(self, generator)
        self.quantizer.reset_parameters(generator)
        self.prior.reset_parameters(generator)
        self.likelihoods.reset_parameters(generator)

    # ------------------------------------------------------------------ encode
    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder outputs before quantization, (n, n_latents * embedding_dim)."""
        if self.mask_channel:
            if mask is None:
                mask = x.new_ones((*x.shape[:-1], self.n_variables))
            x = torch.cat([x, mask], dim=-1)
        return self.encoder(x)

    def codes(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (n, n_latents) of encoded rows."""
        return self.quantizer.codes(self.encode(x, mask))

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Quantized vectors of ``codes``."""
        return self.quantizer.lookup(codes)

    # ------------------------------------------------------------------ decode
    def generative(
        self, z: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Decoder outputs of quantized vectors ``z`` (the condition is unused)."""
        return self.decoder(z)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x | z] for every column (a categorical's probability vector)."""
        return self.likelihoods.mean(params)

    def sample_x(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw x ~ p(x | z) for every column."""
        return self.likelihoods.sample(params, generator)

    # ------------------------------------------------------------------ objective
    def uniform_kl(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """KL from a point mass to the uniform code prior, per row: L log K."""
        return like.new_full((n,), self.n_latents * math.log(self.n_embeddings))

    def loss_terms(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        noise: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
        residuals: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row reconstruction term and KL to the uniform code prior.

        In training mode the reconstruction term includes
        ``commitment_cost`` times the commitment term, and the codebook takes
        a moving-average step. ``noise`` and ``condition`` are not used (the
        quantization is deterministic; the decoder is unconditional).
        ``residuals`` accumulates the shared-variance Gaussian columns'
        squared residuals.
        """
        z, _, commitment = self.quantizer(self.encode(x, mask))
        params = self.decoder(z)
        recon = -self.likelihoods.log_prob_sum(params, x, mask)
        if residuals is not None:
            self.likelihoods.add_residuals(residuals, x, mask, params)
        if self.training:
            recon = recon + self.commitment_cost * commitment
        return recon, self.uniform_kl(x.shape[0], recon)

    def iwae_loss(self, *args, **kwargs) -> torch.Tensor:
        """Not defined: the code posterior is a point mass (one draw suffices)."""
        raise ValueError("a vector-quantized module trains with one draw per row")

    def reconstruction(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``log p(x_obs | z_q(x))`` per row and the codes, without training steps."""
        codes = self.codes(x, mask)
        params = self.decoder(self.lookup(codes).to(x.dtype))
        return self.likelihoods.log_prob_sum(params, x, mask), codes

    @torch.no_grad()
    def residual_sums(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        eps: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
        *,
        kl_weight: float = 1.0,
    ) -> list[torch.Tensor] | None:
        """Squared residuals of the shared-variance columns over the rows.

        ``[sums, counts]`` (see :meth:`LikelihoodSet.new_residual_sums`), with
        each row decoded from its codes; None when no column has a shared
        Gaussian variance. ``eps`` and ``kl_weight`` are not used.
        """
        residuals = self.likelihoods.new_residual_sums()
        if residuals is None:
            return None
        for sl in chunks(x.shape[0], rows_per_chunk(self.row_width, live=2)):
            mb = None if mask is None else mask[sl]
            params = self.decoder(self.lookup(self.codes(x[sl], mb)).to(x.dtype))
            self.likelihoods.add_residuals(residuals, x[sl], mb, params)
        return residuals


class _GridHead(nn.Module):
    """Feature map (C, h, w), flattened, to a grid of h * w vectors of size D.

    A 1x1 convolution maps the C channels to D; each position's vector comes
    out in raster order, ``(n, h * w * D)``.
    """

    def __init__(self, shape: tuple[int, int, int], embedding_dim: int) -> None:
        super().__init__()
        self.shape = shape
        self.proj = nn.Conv2d(shape[0], embedding_dim, 1, device="meta")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.proj(h.reshape(h.shape[0], *self.shape))
        return out.permute(0, 2, 3, 1).reshape(h.shape[0], -1)


class _GridTail(nn.Module):
    """The inverse of :class:`_GridHead`: a grid of vectors to a feature map."""

    def __init__(self, shape: tuple[int, int, int], embedding_dim: int) -> None:
        super().__init__()
        self.shape = shape
        self.embedding_dim = embedding_dim
        self.proj = nn.Conv2d(embedding_dim, shape[0], 1, device="meta")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _, h, w = self.shape
        grid = z.reshape(z.shape[0], h, w, self.embedding_dim).permute(0, 3, 1, 2)
        return self.proj(grid).reshape(z.shape[0], -1)


def grid_size(image_shape: Sequence[int]) -> int:
    """Positions of the innermost feature map: the codes of a grid model."""
    _, h, w = feature_shape(image_shape)
    return h * w


def build_vq_module(
    likelihoods: LikelihoodSet | Sequence[Likelihood],
    n_latents: int,
    n_embeddings: int,
    embedding_dim: int,
    hidden_layer_sizes: Sequence[int] = (256, 128),
    activation: str = "relu",
    *,
    commitment_cost: float = 0.25,
    mask_channel: bool = False,
    n_classes: int = 0,
    image_shape: Sequence[int] | None = None,
    grid: bool = False,
    generator: torch.Generator | None = None,
) -> VQModule:
    """A :class:`VQModule` with MLP or convolutional networks, initialised.

    Parameters
    ----------
    likelihoods : LikelihoodSet or sequence of Likelihood
        Observation models, in column order.
    n_latents, n_embeddings, embedding_dim : int
        Codes per row, codebook entries, and the size of each entry.
    hidden_layer_sizes : sequence of int, default=(256, 128)
        Encoder hidden widths of an MLP; the decoder mirrors them.
    activation : str, default="relu"
        Hidden activation name.
    commitment_cost : float, default=0.25
        Weight of the commitment term.
    mask_channel : bool, default=False
        Whether the encoder receives the missingness mask.
    n_classes : int, default=0
        Classes of a conditional prior.
    image_shape : tuple of int, optional
        (channels, height, width): convolutional networks instead of MLPs.
    grid : bool, default=False
        With ``image_shape``: one code per position of the innermost feature
        map (``n_latents`` must be :func:`grid_size`), joined to it by 1x1
        convolutions; otherwise dense layers join the feature map to the
        ``n_latents`` vectors.
    generator : torch.Generator, optional
        Source of the initial weights. The global RNG is never touched.
    """
    if not isinstance(likelihoods, LikelihoodSet):
        likelihoods = LikelihoodSet(likelihoods)
    quantizer = VectorQuantizer(n_latents, n_embeddings, embedding_dim)
    n_inputs = likelihoods.n_columns + (likelihoods.n_variables if mask_channel else 0)
    width = quantizer.n_inputs
    maps = 0
    if image_shape is None:
        hidden = list(hidden_layer_sizes)
        encoder = mlp([n_inputs, *hidden, width], activation)
        decoder = mlp([width, *hidden[::-1], likelihoods.n_params], activation)
    else:
        image_shape = tuple(image_shape)
        n_pixels = math.prod(image_shape)
        if math.prod(image_shape) != likelihoods.n_columns:
            raise ValueError(
                f"image_shape {image_shape} has {n_pixels} pixels but the data "
                f"have {likelihoods.n_columns} columns."
            )
        in_channels = image_shape[0] * (2 if mask_channel else 1)
        shape = feature_shape(image_shape)
        if grid:
            if n_latents != grid_size(image_shape):
                raise ValueError(
                    f"a grid of codes has {grid_size(image_shape)} positions for "
                    f"images of shape {image_shape}; got n_latents={n_latents}."
                )
            head, tail = (
                _GridHead(shape, embedding_dim),
                _GridTail(shape, embedding_dim),
            )
        else:
            head = mlp([math.prod(shape), width], activation)
            tail = mlp([width, math.prod(shape)], activation)
        act = ACTIVATIONS[activation]
        encoder = ConvEncoder(image_shape, in_channels, head, act)
        decoder = ConvDecoder(
            image_shape, tail, act, params_per_pixel=likelihoods.n_params // n_pixels
        )
        maps = feature_map_size(image_shape, in_channels)
    module = VQModule(
        encoder,
        quantizer,
        decoder,
        likelihoods,
        CodePrior(n_latents, n_embeddings, n_classes),
        commitment_cost,
        mask_channel=mask_channel,
        feature_map_size=maps,
        image_shape=image_shape,
    )
    module.to_empty(device="cpu")
    module.reset_parameters(generator)
    return module
