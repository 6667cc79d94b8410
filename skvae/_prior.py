"""An autoregressive prior over code sequences, and its training loop.

:class:`CodePrior` models p(c_1, ..., c_L | y) = prod_l p(c_l | c_<l, y) for
the discrete codes of a vector-quantized autoencoder with an LSTM that reads
the sequence in order (for a grid of codes, raster order), starting from a
start token per class (one start token for an unconditional prior).
:func:`fit_prior` trains it by maximum likelihood with early stopping on
held-out sequences. Torch only.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ._chunks import chunks, rows_per_chunk

#: Token embedding and LSTM state sizes.
EMBEDDING_SIZE = 64
HIDDEN_SIZE = 128
#: Training: minibatch size, learning rate, and budgets in optimizer steps
#: turned into epochs for the number of sequences (as the estimators' "auto"
#: budgets are), within the epoch ranges below.
BATCH_SIZE = 128
LEARNING_RATE = 3e-3
MAX_STEPS, MAX_EPOCHS = 5_000, (20, 500)
PATIENCE_STEPS, PATIENCE_EPOCHS = 200, (5, 20)
#: Without held-out rows: a fixed budget, run in full.
FIXED_STEPS, FIXED_EPOCHS = 300, (10, 50)
#: Share of the sequences held out for early stopping, when at least
#: MIN_HELD_OUT of them would be.
VALIDATION_FRACTION = 0.1
MIN_HELD_OUT = 10
#: Gradient norm clip.
MAX_GRAD_NORM = 5.0


class CodePrior(nn.Module):
    """LSTM prior over sequences of ``n_latents`` codes in ``[0, n_embeddings)``.

    Parameters
    ----------
    n_latents : int
        Sequence length.
    n_embeddings : int
        Number of distinct codes.
    n_classes : int, default=0
        Classes of a conditional prior p(codes | y) (0: unconditional); each
        class has its own start token.
    """

    def __init__(self, n_latents: int, n_embeddings: int, n_classes: int = 0) -> None:
        super().__init__()
        self.n_latents = n_latents
        self.n_embeddings = n_embeddings
        self.n_classes = n_classes
        n_tokens = n_embeddings + max(1, n_classes)
        self.tokens = nn.Embedding(n_tokens, EMBEDDING_SIZE, device="meta")
        self.positions = nn.Embedding(n_latents, EMBEDDING_SIZE, device="meta")
        self.lstm = nn.LSTM(
            EMBEDDING_SIZE, HIDDEN_SIZE, batch_first=True, device="meta"
        )
        self.out = nn.Linear(HIDDEN_SIZE, n_embeddings, device="meta")

    @property
    def row_width(self) -> int:
        """Numbers per sequence in the widest tensor (for chunk sizes)."""
        return self.n_latents * max(self.n_embeddings, 4 * HIDDEN_SIZE)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise like torch's defaults, from ``generator`` only."""
        bound = 1.0 / math.sqrt(HIDDEN_SIZE)
        with torch.no_grad():
            self.tokens.weight.normal_(generator=generator)
            self.positions.weight.normal_(generator=generator)
            for weight in self.lstm.parameters():
                weight.uniform_(-bound, bound, generator=generator)
            self.out.weight.uniform_(-bound, bound, generator=generator)
            self.out.bias.uniform_(-bound, bound, generator=generator)

    def _start(self, classes: torch.Tensor | None, n: int, device) -> torch.Tensor:
        """Start token of each sequence: one per class, or the shared one."""
        if self.n_classes and classes is None:
            raise ValueError("this prior is conditional: pass the classes")
        if not self.n_classes:
            return torch.full((n,), self.n_embeddings, device=device)
        return self.n_embeddings + classes.to(device=device, dtype=torch.long)

    def logits(
        self, codes: torch.Tensor, classes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Next-code logits (n, n_latents, n_embeddings) of ``codes`` (n, L)."""
        n = codes.shape[0]
        start = self._start(classes, n, codes.device)
        inputs = torch.cat([start[:, None], codes[:, :-1]], dim=1)
        h, _ = self.lstm(self.tokens(inputs) + self.positions.weight)
        return self.out(h)

    def log_prob(
        self, codes: torch.Tensor, classes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``log p(codes | y)`` per sequence, shape (n,)."""
        logp = self.logits(codes, classes).log_softmax(-1)
        return logp.gather(-1, codes[..., None])[..., 0].sum(-1)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        classes: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Draw ``n`` code sequences (n, n_latents), one position at a time.

        The logits are divided by ``temperature`` (below 1: more typical
        sequences; above: more varied). Draws come from ``generator`` on the
        CPU.
        """
        device = self.out.weight.device
        token = self._start(classes, n, device)
        state = None
        codes = torch.empty((n, self.n_latents), dtype=torch.long, device=device)
        for position in range(self.n_latents):
            x = self.tokens(token) + self.positions.weight[position]
            h, state = self.lstm(x[:, None, :], state)
            logits = self.out(h[:, 0]) / temperature
            probs = logits.double().softmax(-1).cpu()
            token = torch.multinomial(probs, 1, generator=generator)[:, 0].to(device)
            codes[:, position] = token
        return codes


@dataclass
class PriorResult:
    """What :func:`fit_prior` did: losses in nats per sequence, per epoch."""

    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] | None = None
    n_iter: int = 0


def prior_budget(n_sequences: int, validation: bool = True) -> tuple[int, int]:
    """Epochs and early-stopping patience for ``n_sequences`` training rows.

    Without ``validation`` the budget is fixed (the patience equals it).
    """
    steps = max(1, math.ceil(n_sequences / BATCH_SIZE))

    def clip(budget: int, bounds: tuple[int, int]) -> int:
        return int(min(max(math.ceil(budget / steps), bounds[0]), bounds[1]))

    if not validation:
        fixed = clip(FIXED_STEPS, FIXED_EPOCHS)
        return fixed, fixed
    return clip(MAX_STEPS, MAX_EPOCHS), clip(PATIENCE_STEPS, PATIENCE_EPOCHS)


def _mean_nll(prior: CodePrior, codes, classes) -> float:
    """Mean negative log-likelihood per sequence, in chunks, no gradients."""
    total = 0.0
    with torch.no_grad():
        for sl in chunks(codes.shape[0], rows_per_chunk(prior.row_width)):
            c = None if classes is None else classes[sl]
            total -= float(prior.log_prob(codes[sl], c).double().sum())
    return total / codes.shape[0]


def fit_prior(
    prior: CodePrior,
    codes: torch.Tensor,
    classes: torch.Tensor | None = None,
    *,
    seed: int = 0,
    max_iter: int | None = None,
    early_stopping: bool = True,
) -> PriorResult:
    """Train ``prior`` in place on ``codes`` (n, n_latents) by maximum likelihood.

    Adam over shuffled minibatches. With ``early_stopping`` and enough rows,
    :data:`VALIDATION_FRACTION` of them are held out and training stops when
    their mean log-likelihood has not improved for the patience of
    :func:`prior_budget`; the best epoch's weights are kept. ``max_iter``
    (None: the budget's) caps the epochs. All draws come from ``seed``.
    """
    generator = torch.Generator(device=codes.device).manual_seed(seed)
    n = codes.shape[0]
    n_val = int(round(VALIDATION_FRACTION * n)) if early_stopping else 0
    held_out = None
    if n_val >= MIN_HELD_OUT and n - n_val >= 1:
        perm = torch.randperm(n, generator=generator, device=codes.device)
        val, train = perm[:n_val], perm[n_val:]
        held_out = (codes[val], None if classes is None else classes[val])
        codes = codes[train]
        classes = None if classes is None else classes[train]
    epochs, patience = prior_budget(codes.shape[0], held_out is not None)
    if max_iter is not None:
        epochs = int(max_iter)
    params = list(prior.parameters())
    frozen = [not p.requires_grad for p in params]
    for p in params:  # the module keeps them frozen outside this loop
        p.requires_grad_(True)
    try:
        result = _train(
            prior, params, codes, classes, held_out, epochs, patience, generator
        )
    finally:
        for p, was_frozen in zip(params, frozen, strict=True):
            p.requires_grad_(not was_frozen)
    return result


def _train(prior, params, codes, classes, held_out, epochs, patience, generator):
    """The epoch loop of :func:`fit_prior`."""
    optimizer = torch.optim.Adam(params, lr=LEARNING_RATE)
    result = PriorResult(validation_scores=None if held_out is None else [])
    best, best_state, waited = -math.inf, None, 0
    prior.train()
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(
                codes.shape[0], generator=generator, device=codes.device
            )
            total = 0.0
            for start in range(0, codes.shape[0], BATCH_SIZE):
                idx = order[start : start + BATCH_SIZE]
                c = None if classes is None else classes[idx]
                loss = -prior.log_prob(codes[idx], c).mean()
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
                optimizer.step()
                total += float(loss.detach()) * idx.shape[0]
            result.loss_curve.append(total / codes.shape[0])
            result.n_iter += 1
            if held_out is None:
                continue
            prior.eval()
            score = -_mean_nll(prior, *held_out)
            prior.train()
            result.validation_scores.append(score)
            if score > best:
                best, best_state, waited = score, copy.deepcopy(prior.state_dict()), 0
            else:
                waited += 1
                if waited >= patience:
                    break
    if best_state is not None:
        prior.load_state_dict(best_state)
    prior.eval()
    if not math.isfinite(result.loss_curve[-1] if result.loss_curve else 0.0):
        raise FloatingPointError("Training the code prior diverged.")
    return result


def log_prob_chunks(
    prior: CodePrior, codes: torch.Tensor, classes: torch.Tensor | None = None
) -> torch.Tensor:
    """``log p(codes | y)`` per sequence in chunks, without gradients."""
    with torch.no_grad():
        parts = [
            prior.log_prob(codes[sl], None if classes is None else classes[sl])
            for sl in chunks(codes.shape[0], rows_per_chunk(prior.row_width))
        ]
    return torch.cat(parts) if parts else codes.new_zeros(0, dtype=torch.float32)
