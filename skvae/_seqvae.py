"""SequenceVAE: a VAE with an LSTM decoder for texts and time series."""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from . import _params
from ._base import (
    ACTIVE_KL_THRESHOLD,
    PosteriorCollapseWarning,
    _BaseVAE,
    store_params,
)
from ._chunks import block_rows, chunks
from ._conditions import int_in_range
from ._fitted import FittedVAE, pad_rows
from ._params import document
from ._seqdata import SequenceSchema, as_sequences
from ._sequence import beam_search, build_sequence_module
from ._training import TrainData, TrainResult, move_optimizer_state, train
from ._utils import Interval, StrOptions, _fit_context, draw_seeds, resolve_device

#: Shared parameters of the tabular estimators that a sequence model does
#: not take.
NOT_SHARED = {
    "architecture",
    "image_shape",
    "hidden_layer_sizes",
    "activation",
    "likelihood",
    "handle_unknown",
    "standardize",
    "trim_fraction",
    "refit",
    "gaussian_variance",
    "variance_update",
}


#: ``learning_rate="auto"`` for text (series follow the shared rule).
TEXT_LEARNING_RATE = 1e-2


@document
class SequenceVAE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _BaseVAE):
    """Variational autoencoder for sequences: texts and time series.

    A bidirectional LSTM reads each sequence to a Gaussian posterior
    q(z | x) over ``n_components`` latent variables; an LSTM decoder, whose
    initial state is a function of z and which receives z at every step,
    models p(x | z) one step at a time: a categorical distribution over the
    vocabulary for text, a Gaussian with a decoded variance per channel for
    series (Bowman et al. 2016). Against posterior collapse, the decoder's
    previous-step input is hidden at random in training (``word_dropout``),
    each latent component's KL counts as at least ``free_bits`` nats, and
    the KL weight rises over a warm-up (``kl_warmup``). For series, a linear
    map of the whole series adds to the posterior's parameters and a linear
    map of z to every step's mean, beside the LSTMs (both zero at the
    start, their weights shrinking by the factor ``1 - learning_rate`` after
    every step), so the model contains probabilistic PCA of the series.

    ``X`` is a list (or 1-D array, or Series) of strings, tokenized into
    characters or by ``tokenizer``; or a float array of series, of shape
    (n_samples, n_timesteps) or (n_samples, n_timesteps, n_channels), where
    NaN marks a missing step (left out of the likelihood). ``transform``
    gives posterior means, ``inverse_transform`` decodes codes back to texts
    or series, ``sample`` generates new ones, ``score_samples`` estimates
    log p(x) per sequence and ``interpolate`` decodes a path between two
    sequences.

    Parameters
    ----------
    {n_components}
    tokenizer : callable or None, default=None
        Maps a text to its list of tokens; None splits it into characters.
        Decoded tokens are joined with "" (characters) or " " (a tokenizer).
    min_frequency : int, default=1
        Tokens seen fewer times in fit are replaced by an unknown token.
    max_length : int or None, default=None
        Most tokens per text; None: the longest training text. Longer texts
        are cut to it with a warning. Series keep their length.
    patch_length : int or "auto", default="auto"
        Consecutive time steps of a series that the LSTMs read and write as
        one step (the decoder gives each value of a patch its own Gaussian);
        fewer, wider steps make long series much faster to fit. ``"auto"``:
        the smallest patch that leaves at most 64 steps per series (1 up to
        64 time steps). Ignored for text.
    hidden_size : int, default=64
        State size of the LSTMs (per direction in the encoder).
    embedding_size : int, default=32
        Token embedding size (text) or width of the step input (series).
    word_dropout : float in [0, 1], default=0.25
        Training probability of hiding the decoder's previous-step input,
        which makes the decoder rely on z. 1 hides it always, in scoring and
        generation too: the decoder then never sees the previous steps.
        Higher values move the codes of series from the local features
        that the previous steps do not predict towards the global shape.
    free_bits : float, default=0.1
        Training floor, in nats, of each component's KL per sequence.
    beam_width : int, default=1
        Beams of the text decoding in ``inverse_transform`` and
        ``interpolate`` (1: greedy).
    {shared_parameters}

    Attributes
    ----------
    module_ : SequenceModule
        The fitted torch module (on the CPU, in eval mode).
    schema_ : SequenceSchema
        Vocabulary and padded length (text), or steps, channels, scaling and
        patch length (series).
    patch_length_ : int
        Time steps per model step (series; 1 for text).
    vocabulary_ : list of str
        The tokens of the model, in id order (text; empty for series).
    n_iter_, training_plan_, loss_curve_, best_loss_, validation_scores_, \
best_validation_score_
        Training history, as in :class:`VAETransformer` (nats per sequence).
    kl_per_component_ : ndarray of shape (n_components,)
        Mean KL(q(z_k | x) || N(0, 1)) over the training sequences, in nats.
    n_active_components_ : int
        Components with ``kl_per_component_`` above ``free_bits`` + 0.01
        nats: training gives each component up to ``free_bits`` nats at no
        cost, so a component at that floor is not counted as used. None
        active raises a ``PosteriorCollapseWarning``.

    See Also
    --------
    VAETransformer : The same model for tables and images.

    Notes
    -----
    ``score_samples`` is the importance-weighted bound with
    ``n_importance_samples`` draws shared by every sequence, in nats, with the
    series' scaling Jacobian included: the log-density of the observed
    values in their units, or the log-probability of the tokens and the end
    token. A fit with no active component warns with
    :class:`~skvae.PosteriorCollapseWarning`.

    ``tol`` is in nats per scored step (token or observed value): early
    stopping asks for that gain times the mean number of scored steps per
    sequence. An LSTM step costs many times a step of the tabular networks, so the
    ``"auto"`` training budgets here are 3,000 minibatch steps at most (50 to
    1,000 epochs) and 200 steps of patience, instead of 20,000 and 600;
    without validation data, 1,000 steps (10 to 1,000 epochs).
    ``learning_rate="auto"`` is 1e-2 for text and follows the shared rule for
    series.

    Examples
    --------
    >>> from skvae import SequenceVAE
    >>> texts = ["abab", "cdcdcd", "ab", "cdcd"] * 20
    >>> vae = SequenceVAE(n_components=2, max_iter=3, random_state=0).fit(texts)
    >>> vae.transform(["abab"]).shape
    (1, 2)
    >>> vae.sample(2, random_state=0).shape
    (2,)
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in _params.SHARED_CONSTRAINTS.items() if k not in NOT_SHARED},
        "tokenizer": [callable, None],
        "min_frequency": [Interval(Integral, 1, None, closed="left")],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        "patch_length": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "embedding_size": [Interval(Integral, 1, None, closed="left")],
        "word_dropout": [Interval(Real, 0, 1, closed="both")],
        "free_bits": [Interval(Real, 0, None, closed="left")],
        "beam_width": [Interval(Integral, 1, None, closed="left")],
    }
    # Read by the shared training plan.
    trim_fraction = 0.0
    refit = False
    variance_update = "gradient"
    _weight_average_decay = 0.99
    #: Sequence scores have their own estimator (no refined proposals).
    _refine_scores = False
    # An LSTM step costs many times a tabular one: smaller step budgets; a
    # few dozen sequences make one minibatch, so up to 1,000 epochs.
    _auto_steps = {"max_iter": 3_000, "n_iter_no_change": 200, "fixed": 1_000}
    _auto_epochs = {"max_iter": (50, 1_000), "fixed": (10, 1_000)}

    def __init__(
        self,
        n_components=16,
        *,
        tokenizer=None,
        min_frequency=1,
        max_length=None,
        patch_length="auto",
        hidden_size=64,
        embedding_size=32,
        word_dropout=0.25,
        free_bits=0.1,
        beam_width=1,
        beta=1.0,
        kl_warmup="auto",
        max_iter="auto",
        batch_size="auto",
        learning_rate="auto",
        n_train_samples=1,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change="auto",
        tol=1e-3,
        n_importance_samples=32,
        min_variance=1e-3,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        store_params(self, locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    @property
    def _n_features_out(self):
        return self.n_components

    @property
    def patch_length_(self) -> int:
        check_is_fitted(self)
        return int(self.schema_.patch)

    @property
    def vocabulary_(self) -> list[str]:
        check_is_fitted(self)
        return list(self.schema_.vocabulary)

    # ------------------------------------------------------------------ build
    def _build_module(self, schema, has_missing: bool, n_conditions: int, seed: int):
        """The initialised sequence module for ``schema`` (on the CPU)."""
        return build_sequence_module(
            self.n_components,
            schema.max_length,
            n_tokens=schema.n_tokens,
            n_channels=schema.step_width,
            hidden_size=self.hidden_size,
            embedding_size=self.embedding_size,
            word_dropout=self.word_dropout,
            free_bits=self.free_bits,
            min_variance=self.min_variance,
            linear_path=schema.kind == "series",
            generator=torch.Generator().manual_seed(seed),
        )

    def _active_kl_threshold(self) -> float:
        """Mean KL (nats) above which a component counts as active.

        ``free_bits`` above the usual threshold: training gives that much KL
        away, so a component left at that floor carries no information it
        paid for.
        """
        return ACTIVE_KL_THRESHOLD + self.module_.free_bits

    def _latent_warnings(self):
        """(message, category) of each warning about the fitted latent layer."""
        if self.n_active_components_ == 0:
            yield (
                "Posterior collapse: no latent component carries more than the "
                f"{self.module_.free_bits:.2g} nats that free_bits gives away "
                f"(mean KL per component at most {self.kl_per_component_.max():.2g} "
                "nats), so the decoder ignores the codes. Raise word_dropout, "
                "lower beta, or fit longer.",
                PosteriorCollapseWarning,
            )

    def _check_continuation(self) -> None:
        module = self.module_
        for name in ("n_components", "hidden_size"):
            if getattr(self, name) != getattr(module, name):
                raise ValueError(
                    f"This SequenceVAE was first fitted with {name}="
                    f"{getattr(module, name)}; partial_fit cannot continue with "
                    f"{name}={getattr(self, name)}. Call fit to start over."
                )

    def _sequences(self, X, *, reset: bool):
        """Kind, values and squeeze flag of X; sets or checks ``n_features_in_``."""
        kind, values, squeezed = as_sequences(X)
        if len(values) == 0:
            raise ValueError("X has no sequence; pass at least one.")
        width = 1 if kind == "text" else values.shape[1]
        if reset:
            self.n_features_in_ = width
        elif kind == "series" and self.schema_.kind == "series":
            if values.shape[1] != self.schema_.n_timesteps:
                raise ValueError(
                    f"X has {values.shape[1]} features, but SequenceVAE is "
                    f"expecting {self.schema_.n_timesteps} features as input "
                    "(the number of time steps seen in fit)."
                )
        return kind, values, squeezed

    def _encoded(self, X, *, reset: bool = False):
        """Encoded steps and mask of X, on the inference device."""
        kind, values, _ = self._sequences(X, reset=reset)
        device = resolve_device(self.device)
        return self.schema_.encode(kind, values, self.tokenizer, device)

    # ------------------------------------------------------------------ fit
    def _plan(self, n_rows, n_observed=None, *, incremental=False, held_out=None):
        """The shared plan, with ``tol`` per scored step turned per sequence."""
        plan = super()._plan(
            n_rows, n_observed, incremental=incremental, held_out=held_out
        )
        steps = 1.0 if n_observed is None else n_observed / max(1, n_rows)
        plan = replace(plan, tol=float(self.tol) * steps)
        if self.learning_rate == "auto" and self.schema_.kind == "text":
            plan = replace(plan, learning_rate=TEXT_LEARNING_RATE)
        return plan

    def _fit_stream(self, X, y, *, incremental: bool):
        raise TypeError(
            "SequenceVAE fits in-memory sequences: pass a list of strings or a "
            "numeric array (compute the Dask collection first)."
        )

    def _fit_steps(self, X, y, *, incremental: bool, classes):
        device = resolve_device(self.device)
        first = not (incremental and hasattr(self, "_fitted"))
        if not first:
            self._check_continuation()
        kind, values, squeezed = self._sequences(X, reset=first)
        if first:
            seeds = draw_seeds(self.random_state, 3)
            schema = SequenceSchema.fit(
                kind,
                values,
                tokenizer=self.tokenizer,
                min_frequency=self.min_frequency,
                max_length=self.max_length,
                squeeze=squeezed,
                patch_length=self.patch_length,
            )
            module = self._build_module(schema, True, 0, seeds[0])
            self._fitted = FittedVAE(
                schema, module, score_seed=seeds[2], train_seed=seeds[1]
            )
            self.module_, self.schema_ = module, schema
            self._train_state = None
        x, mask = self._fitted.schema.encode(kind, values, self.tokenizer, device)
        resume = (self._train_state or TrainResult()) if incremental else None
        plan = self._plan(x.shape[0], int(mask.sum()), incremental=incremental)
        module = self.module_
        module.to(device)
        try:
            result = train(module, TrainData(x, mask), plan, resume=resume)
            self._record(result, x, mask, incremental=incremental, plan=plan)
        finally:
            module.cpu()
            state = getattr(self, "_train_state", None)
            if state is not None and state.optimizer is not None:
                move_optimizer_state(state.optimizer, torch.device("cpu"))
        module.eval()
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model on sequences X.

        Parameters
        ----------
        X : list of str, or array-like of shape (n_samples, n_timesteps) or \
(n_samples, n_timesteps, n_channels)
            Texts, or series with NaN at missing steps.
        y : None
            Ignored.

        Returns
        -------
        self : SequenceVAE
            The fitted estimator.
        """
        self._fit(X, y)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Run one epoch over X, continuing from the current state.

        The first call learns the vocabulary (or the series' shape and
        scaling); later calls keep it (new tokens are unknown tokens; longer
        texts are cut, with a warning) and the Adam state.

        Parameters
        ----------
        X : list of str or array-like
            A batch of sequences, as in :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        self : SequenceVAE
            The updated estimator.
        """
        self._fit(X, y, incremental=True)
        return self

    # ------------------------------------------------------------------ rows
    def _map_blocks(self, x, mask, fn, n_draws: int = 1) -> np.ndarray:
        """``fn(module, x, mask)`` over fixed-size blocks of rows (padded)."""
        model = self._model()
        out = []
        with model.running() as module:
            size = block_rows(module.row_width, n_draws)
            for sl in chunks(x.shape[0], size):
                n = sl.stop - sl.start
                xb, mb = pad_rows(x[sl], size), pad_rows(mask[sl], size)
                if n < size:  # padded rows need one step to read
                    mb[n:, 0] = 1.0
                out.append(fn(module, xb, mb)[:n].double().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0,))

    def transform(self, X):
        """Posterior mean E[z | x] of each sequence.

        Parameters
        ----------
        X : list of str or array-like
            Sequences, as in :meth:`fit`.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Latent codes, float64.
        """
        check_is_fitted(self)
        x, mask = self._encoded(X)
        return self._map_blocks(x, mask, lambda m, xb, mb: m.inference(xb, mb)[0])

    def score_samples(self, X):
        """Importance-weighted estimate of log p(x) per sequence, in nats.

        Parameters
        ----------
        X : list of str or array-like
            Sequences, as in :meth:`fit`.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Higher means more typical; for series, in the data's units.
        """
        check_is_fitted(self)
        model = self._model()
        x, mask = self._encoded(X)
        eps = model.score_noise().to(x)
        k = eps.shape[0]

        def bound(module, xb, mb):
            log_w, _ = module.log_weights(xb, mb, eps)
            return torch.logsumexp(log_w.double(), 0) - np.log(k)

        values = self._map_blocks(x, mask, bound, n_draws=k)
        return values - self.schema_.log_det_jacobian(mask)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`: nats per sequence.

        Parameters
        ----------
        X : list of str or array-like
            Sequences, as in :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean estimated log p(x) per sequence, in nats.
        """
        return float(np.mean(self.score_samples(X)))

    # ------------------------------------------------------------------ decode
    def _decode(self, z: torch.Tensor, generator=None, temperature=1.0):
        model = self._model()
        with model.running(torch.device("cpu")) as module:
            z = z.to(torch.float32)
            if generator is None and module.is_text and self.beam_width > 1:
                steps = beam_search(module, z, self.beam_width)
                mask = None
            else:
                steps, mask = module.generate(
                    z, generator=generator, temperature=temperature
                )
        return self.schema_.decode(steps, mask)

    def inverse_transform(self, Z):
        """Decode latent codes: the most likely sequence given each code.

        Greedy decoding, or a beam search with ``beam_width`` beams (text);
        series take each step's mean.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_components)
            Latent codes.

        Returns
        -------
        X : ndarray of shape (n_samples,) of str, or of the fit's series shape
            Texts, or series in the original units.
        """
        check_is_fitted(self)
        Z = check_array(Z, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"Z has {Z.shape[1]} columns, but this SequenceVAE has "
                f"n_components={self.n_components}."
            )
        if Z.size and float(np.abs(Z).max()) > 1e4:
            raise ValueError("Z has values beyond +-1e4; pass codes from transform.")
        return self._decode(torch.as_tensor(Z))

    def sample(self, n_samples=1, *, random_state=None, temperature=1.0):
        """Generate sequences: z ~ N(0, I), then each step from p(x_t | ...).

        Parameters
        ----------
        n_samples : int, default=1
            Number of sequences.
        random_state : int, RandomState instance or None, default=None
            Seed for the draws; None uses the estimator's ``random_state``.
        temperature : float, default=1.0
            Scales the step distributions: below 1 more typical steps, above
            1 more varied ones.

        Returns
        -------
        X_new : ndarray of shape (n_samples,) of str, or series
            Texts or series like the fit input.
        """
        check_is_fitted(self)
        n_samples = int_in_range(n_samples, "n_samples", 1)
        if not isinstance(temperature, Real) or not temperature > 0:
            raise ValueError(
                f"temperature must be a positive float; got {temperature!r}."
            )
        seed = draw_seeds(
            self.random_state if random_state is None else random_state, 1
        )[0]
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n_samples, self.n_components, generator=gen)
        return self._decode(z, generator=gen, temperature=float(temperature))

    def interpolate(self, a, b, n_steps: int = 10):
        """Decode a straight line in latent space between two sequences.

        Parameters
        ----------
        a, b : str, or array-like of shape (n_timesteps,) or \
(n_timesteps, n_channels)
            The two sequences (a text, or one series).
        n_steps : int, default=10
            Decoded sequences along the path, endpoints included (at least 2).

        Returns
        -------
        path : ndarray of shape (n_steps,) of str, or series
            The decoded sequences, from ``a`` to ``b``.
        """
        check_is_fitted(self)
        n_steps = int_in_range(
            n_steps, "n_steps", 2, why=" (the path includes both endpoints)"
        )
        ends = []
        for seq in (a, b):
            if isinstance(seq, str):
                rows = [seq]
            else:
                rows = np.asarray(seq, dtype=np.float64)[None]
            ends.append(self.transform(rows)[0])
        path = torch.as_tensor(np.linspace(ends[0], ends[1], n_steps))
        return self._decode(path)
