"""Decoded Gaussian variances fitted after the rest of a trained VAE.

:func:`fit_decoded_variance` turns a module whose Gaussian columns share one
variance per column into one whose decoder outputs a variance per row and
column (a heteroscedastic model), so that log-likelihoods, draws and the
noise follow the code. The new variance outputs are a linear map of the
decoder's last hidden layer, started at the shared variances. Three phases
follow, each with early stopping on the same held-out rows and each
starting from (and never ending worse on them than) the previous state:
the variance outputs alone, then the whole decoder, both on the training
rows' expected log-likelihood under the fixed posterior; then the whole
module, encoder included, on the ELBO at a smaller step size. Torch only.
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
#: Step size of the last phase (the whole module) relative to the others'.
ELBO_PHASE_STEP = 1 / 3
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
    kl_weight: float = 1.0,
    verbose: int = 0,
) -> int:
    """Give ``module`` decoded Gaussian variances, then refit it around them.

    Parameters
    ----------
    module : VAEModule
        A trained module with an MLP decoder and a shared-variance Gaussian
        block; changed in place: its decoder's output layer gains one output
        per Gaussian column, its Gaussian block becomes decoded, and its
        decoder, then all of it, are refitted.
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
        Most epochs (passes over the training rows) of each phase.
    kl_weight : float, default=1.0
        Weight of the KL term in the last phase's ELBO (the fit's ``beta``).
    verbose : int, default=0
        1 shows a progress bar over the phases' epochs with the held-out
        loss (nats per row, in the module's units).

    Returns
    -------
    n_epochs : int
        Epochs run, the three phases together. Each phase keeps its epoch
        with the best held-out score, or its start if no epoch beat that:
        the shared variances, the decoder with the fitted variance outputs,
        then the module with the refitted decoder.
    """
    index = _gaussian_block(module)
    if index is None:
        raise ValueError(
            "the module needs an MLP decoder and a shared-variance Gaussian block."
        )
    likelihoods = module.likelihoods
    old = likelihoods.blocks[index]
    cols, pars, mvars = likelihoods.slices(index)
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
    n_rows = x.shape[0]
    order = torch.randperm(n_rows, generator=gen, device=device)
    n_held = max(MIN_HELD_OUT, int(round(HELD_OUT_FRACTION * n_rows)))
    if n_held >= n_rows // 2:
        held, train_rows = order, order  # too few rows to hold any out
    else:
        held, train_rows = order[:n_held], order[n_held:]

    def draws(rows: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Posterior draws of ``rows``, joined to their classes."""
        z = loc[rows] + torch.exp(0.5 * logvar[rows]) * eps
        if module.n_conditions:
            z = torch.cat([z, condition[rows]], dim=-1)
        return z

    # Phase 1: the variance outputs alone, on the Gaussian columns.
    x_g = x[:, cols]
    mask_g = None if mask is None else mask[:, mvars]

    def head_loss(rows: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h = trunk(draws(rows, eps))
            means = last(h)[:, pars]
        params = torch.cat([means, head(h)], dim=-1)
        m = None if mask_g is None else mask_g[rows]
        return -new.log_prob_sum(params, x_g[rows], m).sum()

    stopper = _EarlyStopped(held, train_rows, loc, gen, batch_size, verbose)
    n_epochs = stopper.fit(
        list(head.parameters()), head_loss, learning_rate, max_epochs, "variances"
    )

    # The variances follow the block's means, before the next blocks' outputs.
    out = _empty_linear(
        last.in_features, last.out_features + old.n_columns, device, dtype
    )
    with torch.no_grad():
        end = pars.stop
        out.weight.copy_(torch.cat([last.weight[:end], head.weight, last.weight[end:]]))
        out.bias.copy_(torch.cat([last.bias[:end], head.bias, last.bias[end:]]))
    module.decoder[-1] = out
    blocks = list(likelihoods.blocks)
    blocks[index] = new
    module.likelihoods = LikelihoodSet(blocks)
    module.n_params = module.likelihoods.n_params

    # Phase 2: the whole decoder, on every column.
    def decoder_loss(rows: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        m = None if mask is None else mask[rows]
        params = module.decoder(draws(rows, eps))
        return -module.likelihoods.log_prob_sum(params, x[rows], m).sum()

    n_epochs += stopper.fit(
        list(module.decoder.parameters()),
        decoder_loss,
        learning_rate,
        max_epochs,
        "decoder",
    )

    # Phase 3: the whole module on the ELBO, encoder included.
    def elbo_loss(rows: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        m = None if mask is None else mask[rows]
        c = None if condition is None else condition[rows]
        recon, kl = module.loss_terms(x[rows], m, eps, c)
        return (recon + kl_weight * kl).sum()

    n_epochs += stopper.fit(
        [p for p in module.parameters() if p.requires_grad],
        elbo_loss,
        learning_rate * ELBO_PHASE_STEP,
        max_epochs,
        "model",
    )
    return n_epochs


class _EarlyStopped:
    """Adam on a loss of (rows, noise), stopped early on fixed held-out rows.

    Parameters
    ----------
    held, train_rows : Tensor
        Row indices scored to stop, and those the steps see.
    loc : Tensor of shape (n_rows, n_components)
        Posterior means: their width, dtype and device are the noise's.
    generator : torch.Generator
        Draws the row order, the noise of the steps and, once, that of the
        held-out rows (the same in every phase).
    batch_size : int
        Rows per Adam step.
    verbose : int, default=0
        1 shows each phase's epochs as a progress bar.
    """

    def __init__(
        self,
        held: torch.Tensor,
        train_rows: torch.Tensor,
        loc: torch.Tensor,
        generator: torch.Generator,
        batch_size: int,
        verbose: int = 0,
    ) -> None:
        self.verbose = verbose
        self.held, self.train_rows = held, train_rows
        self.gen, self.batch_size = generator, max(1, int(batch_size))
        self.width = loc.shape[1]
        self.dtype, self.device = loc.dtype, loc.device
        self.held_eps = self._noise(len(held))

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(
            (n, self.width), generator=self.gen, device=self.device, dtype=self.dtype
        )

    def _held_out(self, loss) -> float:
        with torch.no_grad():
            total = sum(
                float(loss(self.held[sl], self.held_eps[sl]))
                for sl in chunks(len(self.held), CHUNK_ROWS)
            )
        return total / len(self.held)

    def fit(
        self,
        params: list[torch.Tensor],
        loss,
        learning_rate: float,
        max_epochs: int,
        label: str = "",
    ) -> int:
        """Train ``params``; keep the best held-out state. Returns the epochs run.

        The start is the first candidate: the held-out rows never end worse
        off, and a non-finite score keeps it. ``label`` names the phase on
        the progress bar.
        """
        from tqdm.auto import tqdm

        optimizer = torch.optim.Adam(params, lr=learning_rate)
        best_state = [p.detach().clone() for p in params]
        best, waited, n_epochs = self._held_out(loss), 0, 0
        if not math.isfinite(best):
            best = math.inf
        train_rows = self.train_rows
        bar = tqdm(
            total=max_epochs,
            desc=f"skvae stage: {label}",
            unit="epoch",
            disable=not self.verbose,
            leave=True,
        )
        while n_epochs < max_epochs:
            n_epochs += 1
            order = torch.randperm(
                len(train_rows), generator=self.gen, device=train_rows.device
            )
            for rows in train_rows[order].split(self.batch_size):
                optimizer.zero_grad(set_to_none=True)
                (loss(rows, self._noise(len(rows))) / len(rows)).backward()
                optimizer.step()
            score = self._held_out(loss)
            bar.update(1)
            bar.set_postfix(held_out=f"{score:.4g}", best=f"{min(best, score):.4g}")
            if score < best - TOL:
                best, waited = score, 0
                best_state = [p.detach().clone() for p in params]
            else:
                waited += 1
                if waited >= PATIENCE:
                    break
        bar.close()
        with torch.no_grad():
            for p, saved in zip(params, best_state, strict=True):
                p.copy_(saved)
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
