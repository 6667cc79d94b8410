"""A VAE for sequences: bidirectional LSTM encoder, LSTM decoder given z.

:class:`SequenceModule` models token sequences (a categorical distribution
over the vocabulary at each step) or real-valued series (a Gaussian per step
and channel, with a decoded variance), after Bowman et al. (2016),
"Generating sentences from a continuous space". The encoder reads the whole
sequence in both directions to q(z | x); the decoder is an LSTM whose initial
state is a function of z and which also receives z at every step, next to
the previous step. Against posterior collapse (a decoder that ignores z)
the module offers word dropout (the decoder's previous-step input is hidden
at random in training) and free bits (in training, each component's KL
counts as at least a floor, so the optimizer gains nothing by pushing it
below). Series may also take a linear path beside the LSTMs (the whole
series to the posterior's parameters, z to every step's mean). Steps with
mask 0 (padding after the end of a text, or a missing value of a series)
are not scored.

It answers the training loop like :class:`~skvae._module.VAEModule`:
``loss_terms`` per row, ``log_weights`` and ``iwae_loss`` for importance
sampling; the random numbers of word dropout come from the training noise
(``noise_width`` columns per row), so training stays repeatable with no
generator of its own. Torch only.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ._latent import GaussianLatent
from ._networks import initialize

#: Reserved token ids: padding, start of sequence, end of sequence, unknown.
PAD, BOS, EOS, UNK = 0, 1, 2, 3
N_SPECIAL = 4
#: Decoded log-variances of a series are clamped to this range.
SERIES_LOGVAR_RANGE = (-12.0, 8.0)
_LOG_2PI = math.log(2.0 * math.pi)
#: Decoupled weight decay of a series' linear path, per unit step size:
#: after every optimizer step its weights shrink by the factor
#: ``1 - learning_rate * LINEAR_PATH_DECAY``, so that the linear maps of a
#: long series fitted on a few dozen series grow only as far as the data
#: keep pulling them.
LINEAR_PATH_DECAY = 1.0


class SequenceModule(nn.Module):
    """Sequence VAE over tokens or real-valued series.

    Parameters
    ----------
    n_components : int
        Latent dimension.
    max_length : int
        Steps per sequence (the padded length; for text, tokens plus the end
        token).
    n_tokens : int, default=0
        Vocabulary size, special tokens included (tokens); 0 for series.
    n_channels : int, default=0
        Channels of a series; 0 for tokens.
    hidden_size : int, default=128
        LSTM state size (per direction in the encoder).
    embedding_size : int, default=32
        Token embedding size (tokens), or the width of the step input layer
        (series).
    word_dropout : float, default=0.25
        Training probability of hiding the decoder's previous-step input; 1
        hides it always (an inputless decoder).
    free_bits : float, default=0.1
        Training floor, in nats, of each component's KL per row.
    min_variance : float, default=1e-3
        Floor of a series step's decoded variance.
    linear_path : bool, default=False
        Series only: add a linear map of the whole series to the posterior's
        parameters and a linear map of z to every step's mean, beside the
        LSTMs, so that the module contains probabilistic PCA of the
        flattened series (zero at initialisation), its weights decaying
        in training (:data:`LINEAR_PATH_DECAY`, :meth:`decayed_parameters`).
    """

    def __init__(
        self,
        n_components: int,
        max_length: int,
        *,
        n_tokens: int = 0,
        n_channels: int = 0,
        hidden_size: int = 128,
        embedding_size: int = 32,
        word_dropout: float = 0.25,
        free_bits: float = 0.1,
        min_variance: float = 1e-3,
        linear_path: bool = False,
    ) -> None:
        super().__init__()
        if (n_tokens > 0) == (n_channels > 0):
            raise ValueError("pass n_tokens (text) or n_channels (series), not both")
        self.n_components = n_components
        self.max_length = max_length
        self.n_tokens = n_tokens
        self.n_channels = n_channels
        self.hidden_size = hidden_size
        self.word_dropout = float(word_dropout)
        self.free_bits = float(free_bits)
        self.min_variance = float(min_variance)
        self.is_text = n_tokens > 0
        if self.is_text:
            self.embed = nn.Embedding(n_tokens, embedding_size, device="meta")
            n_out = n_tokens
        else:
            self.embed = nn.Linear(2 * n_channels, embedding_size, device="meta")
            n_out = 2 * n_channels
        self.encoder = nn.LSTM(
            embedding_size,
            hidden_size,
            batch_first=True,
            bidirectional=True,
            device="meta",
        )
        self.to_posterior = nn.Linear(2 * hidden_size, 2 * n_components, device="meta")
        self.latent = GaussianLatent(n_components)
        self.to_state = nn.Linear(n_components, 2 * hidden_size, device="meta")
        self.decoder = nn.LSTM(
            embedding_size + n_components, hidden_size, batch_first=True, device="meta"
        )
        self.out = nn.Linear(hidden_size, n_out, device="meta")
        self.linear_path = bool(linear_path) and not self.is_text
        if self.linear_path:
            width = max_length * n_channels
            self.linear_encoder = nn.Linear(width, 2 * n_components, device="meta")
            self.linear_decoder = nn.Linear(n_components, width, device="meta")
        #: Columns of training noise per row: the latent draw, then one
        #: standard normal per step for word dropout.
        self.noise_width = n_components + max_length
        # The estimators' shared code reads these of every module.
        self.n_conditions = 0
        self.mask_channel = True

    @property
    def row_width(self) -> int:
        """Numbers per row in the widest tensor (for chunk sizes)."""
        steps = self.max_length
        return steps * max(4 * self.hidden_size, self.out.out_features)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise every weight from ``generator`` (torch's default ranges)."""
        initialize(self, generator)
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            if self.is_text:
                self.embed.weight.normal_(generator=generator)
            for lstm in (self.encoder, self.decoder):
                for weight in lstm.parameters():
                    weight.uniform_(-bound, bound, generator=generator)
            if self.linear_path:
                for layer in (self.linear_encoder, self.linear_decoder):
                    for weight in layer.parameters():
                        weight.zero_()

    def decayed_parameters(self) -> tuple[list[torch.Tensor], float]:
        """Parameters with decoupled weight decay, and its rate per unit step."""
        if not self.linear_path:
            return [], 0.0
        layers = (self.linear_encoder, self.linear_decoder)
        return [p for layer in layers for p in layer.parameters()], LINEAR_PATH_DECAY

    # ------------------------------------------------------------------ inputs
    def _step_inputs(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-step encoder inputs: token embeddings, or values with the mask."""
        if self.is_text:
            return self.embed(x.long())
        return self.embed(torch.cat([x * mask, mask], dim=-1))

    def _lengths(self, mask: torch.Tensor) -> torch.Tensor:
        """Steps of each sequence: up to its last unmasked step (at least 1)."""
        steps = mask if mask.dim() == 2 else mask.amax(-1)
        position = torch.arange(1, steps.shape[1] + 1, device=steps.device)
        return (steps * position).amax(-1).clamp(min=1).long()

    # ------------------------------------------------------------------ q(z|x)
    def inference(
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and clamped log-variance, each (n, n_components).

        ``x`` is (n, T) token ids (as floats) or (n, T, C) values with every
        missing value filled; ``mask`` marks the steps (or values) to read.
        """
        packed = pack_padded_sequence(
            self._step_inputs(x, mask),
            self._lengths(mask).cpu(),
            batch_first=True,
            enforce_sorted=False,
        )
        _, (h, _) = self.encoder(packed)
        h = torch.cat([h[0], h[1]], dim=-1)
        params = self.to_posterior(h)
        if self.linear_path:
            params = params + self.linear_encoder((x * mask).flatten(1))
        return self.latent.posterior(params)

    # ------------------------------------------------------------------ p(x|z)
    def _initial_state(self, z: torch.Tensor):
        h, c = torch.tanh(self.to_state(z)).chunk(2, dim=-1)
        return h[None].contiguous(), c[None].contiguous()

    def _previous(
        self, x: torch.Tensor, mask: torch.Tensor, hide: torch.Tensor | None
    ) -> torch.Tensor:
        """Decoder inputs from the previous steps (teacher forcing)."""
        if self.is_text:
            prev = torch.cat([torch.full_like(x[:, :1], BOS), x[:, :-1]], dim=1)
            if hide is not None:
                prev = torch.where(hide, torch.full_like(prev, UNK), prev)
            return self.embed(prev.long())
        values = torch.cat([torch.zeros_like(x[:, :1]), (x * mask)[:, :-1]], dim=1)
        seen = torch.cat([torch.zeros_like(mask[:, :1]), mask[:, :-1]], dim=1)
        if hide is not None:
            keep = (~hide).to(values.dtype)[..., None]
            values, seen = values * keep, seen * keep
        return self.embed(torch.cat([values, seen], dim=-1))

    def step_input(self, previous: torch.Tensor) -> torch.Tensor:
        """Decoder input from the previous step when generating.

        ``previous`` is token ids (text) or values with their observed flags
        (series). An inputless decoder (``word_dropout=1``) gets the hidden
        input it was trained with instead.
        """
        if self.word_dropout >= 1.0:
            if self.is_text:
                previous = torch.full_like(previous, UNK)
            else:
                previous = torch.zeros_like(previous)
        return self.embed(previous)

    def decode_outputs(
        self,
        z: torch.Tensor,
        x: torch.Tensor,
        mask: torch.Tensor,
        hide: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-step outputs (n, T, n_out) given z and the true previous steps."""
        inputs = self._previous(x, mask, hide)
        steps = z[:, None, :].expand(-1, inputs.shape[1], -1)
        # Packed: the decoder runs over each sequence's own steps only, not
        # the padding after its end.
        packed = pack_padded_sequence(
            torch.cat([inputs, steps], dim=-1),
            self._lengths(mask).cpu(),
            batch_first=True,
            enforce_sorted=False,
        )
        h, _ = self.decoder(packed, self._initial_state(z))
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        outputs = self.out(h)
        if self.linear_path:
            mean, logvar = outputs.chunk(2, dim=-1)
            outputs = torch.cat([mean + self._linear_mean(z), logvar], dim=-1)
        return outputs

    def _linear_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The linear path's part of every step's mean, (n, T, C)."""
        return self.linear_decoder(z).reshape(z.shape[0], self.max_length, -1)

    def step_log_prob(
        self, outputs: torch.Tensor, x: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``log p(x | z)`` summed over the unmasked steps, per row."""
        if self.is_text:
            logp = outputs.log_softmax(-1).gather(-1, x.long()[..., None])[..., 0]
            return (logp * mask).sum(-1)
        mean, logvar = outputs.chunk(2, dim=-1)
        var = logvar.clamp(*SERIES_LOGVAR_RANGE).exp() + self.min_variance
        logp = -0.5 * ((x - mean).square() / var + var.log() + _LOG_2PI)
        return (logp * mask).sum((-1, -2))

    def _hide(
        self, extra: torch.Tensor | None, shape: tuple[int, int]
    ) -> torch.Tensor | None:
        """Word-dropout pattern (rows, steps) from standard-normal ``extra``.

        In training only, except that ``word_dropout=1`` hides every input
        always: the decoder then never sees the previous steps.
        """
        if self.word_dropout >= 1.0:
            return torch.ones(shape, dtype=torch.bool, device=self.out.weight.device)
        if extra is None or not self.training or self.word_dropout <= 0.0:
            return None
        # P(N(0, 1) < q) = word_dropout.
        q = math.sqrt(2.0) * torch.erfinv(torch.tensor(2.0 * self.word_dropout - 1.0))
        return extra < q.to(extra)

    # ------------------------------------------------------------------ ELBO
    def _split_noise(self, noise: torch.Tensor, steps: int):
        eps = noise[..., : self.n_components]
        extra = noise[..., self.n_components : self.n_components + steps]
        return eps, (extra if extra.shape[-1] == steps else None)

    def loss_terms(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        noise: torch.Tensor,
        condition: torch.Tensor | None = None,
        residuals: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row reconstruction NLL and KL(q(z | x) || N(0, I)), each (n,).

        In training mode, word dropout hides previous-step inputs (drawn from
        ``noise``'s columns past ``n_components``, when present) and the KL
        counts each component as at least ``free_bits`` nats.
        """
        eps, extra = self._split_noise(noise, x.shape[1])
        loc, logvar = self.inference(x, mask)
        z, kl = self.latent.rsample_kl(loc, logvar, eps)
        if self.training and self.free_bits > 0.0:
            kl = self.latent.kl_per_component(loc, logvar).clamp(min=self.free_bits)
            kl = kl.sum(-1)
        outputs = self.decode_outputs(z, x, mask, self._hide(extra, x.shape[:2]))
        return -self.step_log_prob(outputs, x, mask), kl

    def kl_per_component(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """KL(q(z | x) || N(0, I)) per row and component, (n, n_components)."""
        return self.latent.kl_per_component(*self.inference(x, mask))

    def log_weights(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
        kl_weight: float = 1.0,
    ) -> tuple[torch.Tensor, None]:
        """Importance log-weights (K, n) of K posterior draws per row.

        ``eps`` is (K, n_components) (shared by all rows) or (K, n,
        n_components); columns past ``n_components`` drive word dropout.
        """
        eps, extra = self._split_noise(eps, x.shape[1])
        if eps.dim() == 2:
            eps = eps[:, None, :].expand(-1, x.shape[0], -1)
            extra = None if extra is None else extra[:, None].expand(-1, x.shape[0], -1)
        loc, logvar = self.inference(x, mask)
        z, log_pz, log_qz = self.latent.importance_draws(loc, logvar, eps)
        k, n = z.shape[:2]
        rep = (k, *([1] * (x.dim() - 1)))
        extra = None if extra is None else extra.reshape(k * n, -1)
        hide = self._hide(extra, (k * n, x.shape[1]))
        outputs = self.decode_outputs(
            z.reshape(k * n, -1), x.repeat(rep), mask.repeat(rep), hide
        )
        log_px = self.step_log_prob(outputs, x.repeat(rep), mask.repeat(rep))
        log_px = log_px.reshape(k, n)
        return log_px + kl_weight * (log_pz - log_qz), None

    def iwae_loss(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        eps: torch.Tensor,
        condition: torch.Tensor | None = None,
        kl_weight: float = 1.0,
        residuals: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Per-row negative importance-weighted bound with K draws, shape (n,)."""
        log_w, _ = self.log_weights(x, mask, eps, condition, kl_weight)
        return math.log(log_w.shape[0]) - torch.logsumexp(log_w, dim=0)

    # ------------------------------------------------------------------ generate
    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode z (n, n_components) one step at a time.

        Each step feeds the previous output back: the most likely token (or
        the mean value) with no ``generator``, a draw from the step's
        distribution (logits or standard deviation scaled by
        ``temperature``) with one. Returns the steps, (n, T) token ids or (n,
        T, C) values, and a mask of the steps before (and including) each
        text's end token.
        """
        n = z.shape[0]
        state = self._initial_state(z)
        if self.is_text:
            token = torch.full((n, 1), BOS, dtype=torch.long, device=z.device)
            out = torch.full(
                (n, self.max_length), PAD, dtype=torch.long, device=z.device
            )
        else:
            prev = torch.zeros(
                n, 1, 2 * self.n_channels, device=z.device, dtype=z.dtype
            )
            out = torch.zeros(n, self.max_length, self.n_channels, device=z.device)
        alive = torch.ones(n, dtype=torch.bool, device=z.device)
        mask = torch.zeros(n, self.max_length, device=z.device)
        linear = self._linear_mean(z) if self.linear_path else None
        for t in range(self.max_length):
            step_in = self.step_input(token if self.is_text else prev)
            h, state = self.decoder(torch.cat([step_in, z[:, None, :]], -1), state)
            params = self.out(h[:, 0])
            mask[:, t] = alive.to(mask.dtype)
            if self.is_text:
                # The end token or a vocabulary token; never PAD, BOS or UNK.
                logits = torch.cat(
                    [params[:, EOS : EOS + 1], params[:, N_SPECIAL:]], -1
                )
                if generator is None:
                    choice = logits.argmax(-1)
                else:
                    probs = (logits.double() / temperature).softmax(-1).cpu()
                    choice = torch.multinomial(probs, 1, generator=generator)[:, 0]
                    choice = choice.to(z.device)
                nxt = torch.where(choice == 0, EOS, choice + N_SPECIAL - 1)
                nxt = torch.where(alive, nxt, torch.full_like(nxt, PAD))
                out[:, t] = nxt
                alive = alive & (nxt != EOS)
                token = nxt[:, None]
                if not bool(alive.any()):
                    break
            else:
                mean, logvar = params.chunk(2, dim=-1)
                if linear is not None:
                    mean = mean + linear[:, t]
                value = mean
                if generator is not None:
                    std = logvar.clamp(*SERIES_LOGVAR_RANGE).exp() + self.min_variance
                    noise = torch.randn(mean.shape, generator=generator).to(mean)
                    value = mean + temperature * std.sqrt() * noise
                out[:, t] = value
                prev = torch.cat([value, torch.ones_like(value)], -1)[:, None, :]
        return out, mask


def build_sequence_module(
    n_components: int,
    max_length: int,
    *,
    n_tokens: int = 0,
    n_channels: int = 0,
    hidden_size: int = 128,
    embedding_size: int = 32,
    word_dropout: float = 0.25,
    free_bits: float = 0.1,
    min_variance: float = 1e-3,
    linear_path: bool = False,
    generator: torch.Generator | None = None,
) -> SequenceModule:
    """A :class:`SequenceModule` on the CPU, initialised from ``generator``."""
    module = SequenceModule(
        n_components,
        max_length,
        n_tokens=n_tokens,
        n_channels=n_channels,
        hidden_size=hidden_size,
        embedding_size=embedding_size,
        word_dropout=word_dropout,
        free_bits=free_bits,
        min_variance=min_variance,
        linear_path=linear_path,
    )
    module.to_empty(device="cpu")
    module.reset_parameters(generator)
    return module


@torch.no_grad()
def beam_search(
    module: SequenceModule, z: torch.Tensor, beam_width: int
) -> torch.Tensor:
    """Most likely token sequences given z (n, n_components), by beam search.

    Keeps the ``beam_width`` most likely partial texts of each code; a text
    is complete at its end token, and the most likely complete text (by its
    total log-probability) is returned. Returns (n, max_length) token ids,
    padded after the end token.
    """
    n, steps = z.shape[0], module.max_length
    out = torch.full((n, steps), PAD, dtype=torch.long, device=z.device)
    allowed = torch.full((module.n_tokens,), -torch.inf, device=z.device)
    allowed[EOS] = 0.0
    allowed[N_SPECIAL:] = 0.0
    for i in range(n):
        code = z[i : i + 1]
        h, c = module._initial_state(code)
        tokens = torch.full((1,), BOS, dtype=torch.long, device=z.device)
        scores = torch.zeros(1, device=z.device)
        prefixes = torch.empty((1, 0), dtype=torch.long, device=z.device)
        finished: list[tuple[float, torch.Tensor]] = []
        for _ in range(steps):
            b = tokens.shape[0]
            step_in = torch.cat([module.step_input(tokens), code.expand(b, -1)], -1)
            out_h, (h, c) = module.decoder(step_in[:, None, :], (h, c))
            logp = module.out(out_h[:, 0]).log_softmax(-1) + allowed
            total = (scores[:, None] + logp).reshape(-1)
            best = total.topk(min(beam_width, total.numel())).indices
            source = torch.div(best, module.n_tokens, rounding_mode="floor")
            token = best % module.n_tokens
            prefixes = torch.cat([prefixes[source], token[:, None]], 1)
            scores = total[best]
            ended = token == EOS
            for j in torch.nonzero(ended)[:, 0].tolist():
                finished.append((float(scores[j]), prefixes[j]))
            keep = ~ended
            if len(finished) >= beam_width or not bool(keep.any()):
                break
            tokens, scores, prefixes = token[keep], scores[keep], prefixes[keep]
            h, c = h[:, source[keep]], c[:, source[keep]]
        if not finished:  # no text ended within max_length: the best prefix
            finished.append((float(scores[0]), prefixes[0]))
        seq = max(finished, key=lambda item: item[0])[1][:steps]
        out[i, : seq.shape[0]] = seq
    return out
