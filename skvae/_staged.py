"""Decoded Gaussian variances fitted after the rest of a trained VAE.

:func:`fit_decoded_variance` turns a module whose Gaussian columns share one
variance per column into one whose decoder outputs a variance per row and
column (a heteroscedastic model), keeping everything else as trained: the
encoder, the latent layer and the decoder's means do not change, so the
codes are those of the shared-variance model, while log-likelihoods, draws
and the noise follow the code. The new variance outputs are a linear map of
the decoder's last hidden layer, started at the shared variances and fitted
to the training rows' expected log-likelihood under the posterior, with
early stopping on held-out rows. Torch only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._chunks import chunks
from ._likelihoods import GaussianLikelihood, LikelihoodSet
from ._module import VAEModule

#: Share of the rows held out to stop the fit, at least this many rows.
HELD_OUT_FRACTION = 0.1
MIN_HELD_OUT = 10
#: Epochs without an improvement of the held-out score before stopping, and
#: the most epochs.
PATIENCE = 10
MAX_EPOCHS = 200
#: Improvement (nats per row) that resets the patience.
TOL = 1e-3
#: Rows per forward pass when encoding and scoring.
CHUNK_ROWS = 4096


def _gaussian_block(module: VAEModule) -> int | None:
    """Index of the shared-variance Gaussian block behind a linear output layer."""
    decoder = module.decoder
    if not isinstance(decoder, nn.Sequential) or not isinstance(decoder[-1], nn.Linear):
        return None
    for i, lk in enumerate(module.likelihoods.blocks):
        if isinstance(lk, GaussianLikelihood) and not lk.decoded:
            return i
    return None


def fit_decoded_variance(
    module: VAEModule,
    x: torch.Tensor,
    mask: torch.Tensor | None,
    condition: torch.Tensor | None,
    *,
    floor: torch.Tensor,
    batch_size: int,
    learning_rate: float,
    seed: int,
    max_epochs: int = MAX_EPOCHS,
) -> int:
    """Give ``module`` decoded Gaussian variances, fitted with the rest fixed.

    Parameters
    ----------
    module : VAEModule
        A trained module with an MLP decoder and a shared-variance Gaussian
        block; changed in place: its decoder's output layer gains one output
        per Gaussian column and its Gaussian block becomes decoded.
    x : Tensor of shape (n_rows, n_columns)
        The encoded training rows, missing entries filled.
    mask : Tensor of shape (n_rows, n_variables) or None
        1 for observed entries (None: all observed).
    condition : Tensor of shape (n_rows, n_conditions) or None
        One-hot classes of a conditional module.
    floor : Tensor of shape (n_gaussian,)
        Floor of the decoded variances, in the module's units.
    batch_size : int
        Rows per Adam step.
    learning_rate : float
        Adam step size.
    seed : int
        Seeds the held-out rows, the order of the rows and the posterior
        draws; the global generator is not touched.
    max_epochs : int, default=MAX_EPOCHS
        Most epochs (passes over the training rows).

    Returns
    -------
    n_epochs : int
        Epochs run. The head keeps the epoch with the best held-out score,
        or its start (the shared variances) if no epoch beat that.
    """
    index = _gaussian_block(module)
    if index is None:
        raise ValueError(
            "the module needs an MLP decoder and a shared-variance Gaussian block."
        )
    likelihoods = module.likelihoods
    old = likelihoods.blocks[index]
    cols, pars, mvars = likelihoods._slices[index]
    last = module.decoder[-1]
    trunk = module.decoder[:-1]
    device, dtype = last.weight.device, last.weight.dtype
    gen = torch.Generator(device).manual_seed(seed)
    new = GaussianLikelihood(
        old.n_columns, old.min_variance, variance="decoder", floor=floor
    ).to(device=device, dtype=dtype)
    head = _empty_linear(last.in_features, old.n_columns, device, dtype)
    with torch.no_grad():
        head.weight.zero_()
        # Start at the shared variances: softplus(bias + shift) + floor.
        excess = (old.variance().to(dtype) - new.floor).clamp_min(1e-12)
        head.bias.copy_(excess + torch.log(-torch.expm1(-excess)) - new._shift)
        loc, logvar = _posterior(module, x, mask)
    x_g = x[:, cols]
    mask_g = None if mask is None else mask[:, mvars]

    def hidden(rows: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        z = loc[rows] + torch.exp(0.5 * logvar[rows]) * eps
        if module.n_conditions:
            z = torch.cat([z, condition[rows]], dim=-1)
        return trunk(z)

    def loss(rows: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h = hidden(rows, eps)
            means = last(h)[:, pars]
        params = torch.cat([means, head(h)], dim=-1)
        m = None if mask_g is None else mask_g[rows]
        return -new.log_prob_sum(params, x_g[rows], m).sum()

    n_rows = x.shape[0]
    order = torch.randperm(n_rows, generator=gen, device=device)
    n_held = max(MIN_HELD_OUT, int(round(HELD_OUT_FRACTION * n_rows)))
    if n_held >= n_rows // 2:
        held, train_rows = order, order  # too few rows to hold any out
    else:
        held, train_rows = order[:n_held], order[n_held:]
    held_eps = torch.randn(
        len(held), loc.shape[1], generator=gen, device=device, dtype=dtype
    )

    def held_out_loss() -> float:
        with torch.no_grad():
            total = sum(
                float(loss(held[sl], held_eps[sl]))
                for sl in chunks(len(held), CHUNK_ROWS)
            )
        return total / len(held)

    # The start (the shared variances) is the first candidate: the stage
    # never leaves the held-out rows worse off, and a non-finite score keeps it.
    optimizer = torch.optim.Adam(head.parameters(), lr=learning_rate)
    best_state = [p.detach().clone() for p in head.parameters()]
    best, waited, n_epochs = held_out_loss(), 0, 0
    if not math.isfinite(best):
        best = math.inf
    while n_epochs < max_epochs:
        n_epochs += 1
        perm = train_rows[torch.randperm(len(train_rows), generator=gen, device=device)]
        for rows in perm.split(max(1, int(batch_size))):
            eps = torch.randn(
                len(rows), loc.shape[1], generator=gen, device=device, dtype=dtype
            )
            optimizer.zero_grad(set_to_none=True)
            (loss(rows, eps) / len(rows)).backward()
            optimizer.step()
        score = held_out_loss()
        if score < best - TOL:
            best, waited = score, 0
            best_state = [p.detach().clone() for p in head.parameters()]
        else:
            waited += 1
            if waited >= PATIENCE:
                break
    with torch.no_grad():
        for p, saved in zip(head.parameters(), best_state, strict=True):
            p.copy_(saved)
        out = _empty_linear(
            last.in_features, last.out_features + old.n_columns, device, dtype
        )
        # The variances follow the block's means, before the next blocks.
        end = pars.stop
        out.weight.copy_(torch.cat([last.weight[:end], head.weight, last.weight[end:]]))
        out.bias.copy_(torch.cat([last.bias[:end], head.bias, last.bias[end:]]))
    module.decoder[-1] = out
    blocks = list(likelihoods.blocks)
    blocks[index] = new
    module.likelihoods = LikelihoodSet(blocks)
    module.n_params = module.likelihoods.n_params
    return n_epochs


def _empty_linear(n_in: int, n_out: int, device, dtype) -> nn.Linear:
    """A linear layer with uninitialised weights (no random numbers drawn)."""
    return nn.Linear(n_in, n_out, device="meta").to_empty(device=device).to(dtype)


def _posterior(module: VAEModule, x: torch.Tensor, mask: torch.Tensor | None):
    """Posterior means and log-variances of every row, by chunks."""
    locs, logvars = [], []
    for sl in chunks(x.shape[0], CHUNK_ROWS):
        loc, logvar = module.inference(x[sl], None if mask is None else mask[sl])
        locs.append(loc)
        logvars.append(logvar)
    return torch.cat(locs), torch.cat(logvars)
