"""Vector quantization: a codebook learned by moving averages, kept in use.

:class:`VectorQuantizer` replaces each of a row's ``n_latents`` encoder
vectors by its nearest codebook entry (van den Oord et al. 2017). The
codebook is not trained by gradients: in training mode each step moves every
entry towards the mean of the vectors assigned to it (exponential moving
averages of counts and sums), and entries that fall out of use are re-seeded
from the step's encoder vectors. Gradients pass the quantization straight
through to the encoder. Torch only.
"""

from __future__ import annotations

import torch
from torch import nn

#: Decay of the codebook's moving averages.
CODEBOOK_DECAY = 0.99
#: Laplace smoothing of the moving-average counts (avoids division by zero).
COUNT_SMOOTHING = 1e-5
#: An entry is dead, and re-seeded, when its moving-average count falls below
#: this share of an evenly used entry's count.
DEAD_SHARE = 0.03
#: Training steps between two checks for dead entries (the first step checks).
RESEED_EVERY = 20


class VectorQuantizer(nn.Module):
    """Nearest-codebook quantization of ``n_latents`` vectors per row.

    Parameters
    ----------
    n_latents : int
        Vectors per row (positions in the code sequence).
    n_embeddings : int
        Codebook entries.
    embedding_dim : int
        Size of each vector.

    Notes
    -----
    The codebook and its moving averages are buffers: they are saved with
    the weights but never seen by an optimizer. A new quantizer has every
    entry dead, so its first training step seeds the whole codebook from
    encoder vectors; later, every :data:`RESEED_EVERY` steps re-seed the
    entries that fell out of use.
    """

    def __init__(self, n_latents: int, n_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.n_latents = n_latents
        self.n_embeddings = n_embeddings
        self.embedding_dim = embedding_dim
        self.register_buffer("codebook", torch.zeros(n_embeddings, embedding_dim))
        self.register_buffer("cluster_size", torch.zeros(n_embeddings))
        self.register_buffer("embed_sum", torch.zeros(n_embeddings, embedding_dim))
        #: Training steps taken since the module was built (dead-entry checks).
        self.steps = 0

    @property
    def n_inputs(self) -> int:
        """Encoder outputs per row: ``n_latents * embedding_dim``."""
        return self.n_latents * self.embedding_dim

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Forget the codebook: every entry dead until the first training step."""
        self.steps = 0
        with torch.no_grad():
            self.codebook.zero_()
            self.cluster_size.zero_()
            self.embed_sum.zero_()

    # ------------------------------------------------------------------ codes
    def nearest(self, vectors: torch.Tensor) -> torch.Tensor:
        """Index of the nearest entry of each row of ``vectors`` (m, D)."""
        book = self.codebook.to(vectors.dtype)
        distance = (
            book.square().sum(-1)[None, :] - 2.0 * vectors @ book.T
        )  # + |v|^2, the same for every entry
        return distance.argmin(-1)

    def codes(self, h: torch.Tensor) -> torch.Tensor:
        """Codes (n, n_latents) of encoder outputs ``h`` (n, n_latents * D)."""
        n = h.shape[0]
        return self.nearest(h.reshape(-1, self.embedding_dim)).reshape(n, -1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Quantized vectors (n, n_latents * D) of ``codes`` (n, n_latents)."""
        return self.codebook[codes].reshape(codes.shape[0], -1)

    def forward(
        self, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize ``h``: straight-through vectors, codes, commitment per row.

        The first output equals the quantized vectors in value and passes
        gradients to ``h`` unchanged; the commitment term is the squared
        distance from each row's vectors to their (fixed) codes, summed over
        the row. In training mode the codebook then takes one moving-average
        step, after re-seeding dead entries from this batch's vectors.
        """
        n = h.shape[0]
        flat = h.reshape(-1, self.embedding_dim)
        if self.training and self.steps % RESEED_EVERY == 0:
            self._reseed_dead(flat.detach())
        index = self.nearest(flat)
        quantized = self.codebook.to(h.dtype)[index]
        commitment = (flat - quantized.detach()).square().reshape(n, -1).sum(-1)
        if self.training:
            self._update(flat.detach(), index)
            self.steps += 1
        straight = flat + (quantized - flat).detach()
        return straight.reshape(n, -1), index.reshape(n, -1), commitment

    # ------------------------------------------------------------------ training
    @torch.no_grad()
    def _update(self, vectors: torch.Tensor, index: torch.Tensor) -> None:
        """One moving-average step of the counts, sums and entries."""
        counts = torch.bincount(index, minlength=self.n_embeddings).to(
            self.cluster_size.dtype
        )
        sums = torch.zeros_like(self.embed_sum).index_add_(
            0, index, vectors.to(self.embed_sum.dtype)
        )
        self.cluster_size.lerp_(counts, 1.0 - CODEBOOK_DECAY)
        self.embed_sum.lerp_(sums, 1.0 - CODEBOOK_DECAY)
        total = self.cluster_size.sum()
        smoothed = (
            (self.cluster_size + COUNT_SMOOTHING)
            / (total + self.n_embeddings * COUNT_SMOOTHING)
            * total
        )
        self.codebook.copy_(self.embed_sum / smoothed[:, None])

    @torch.no_grad()
    def _reseed_dead(self, vectors: torch.Tensor) -> None:
        """Put dead entries on encoder vectors of this batch.

        The vectors are taken at evenly spaced positions of the batch, whose
        rows come in random order: a random sample of the encoder's outputs,
        drawn with no random numbers. Each re-seeded entry starts with an
        evenly used entry's count.
        """
        even = vectors.shape[0] / self.n_embeddings
        dead = torch.nonzero(self.cluster_size < DEAD_SHARE * even)[:, 0]
        n_dead = dead.numel()
        if n_dead == 0:
            return
        m = vectors.shape[0]
        pick = torch.arange(n_dead, device=vectors.device) * m // n_dead % m
        seeds = vectors[pick].to(self.codebook.dtype)
        self.codebook[dead] = seeds
        self.cluster_size[dead] = even
        self.embed_sum[dead] = seeds * even
