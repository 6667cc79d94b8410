"""Shared base class of the skvae estimators: parameters, fit, scoring."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, gen_batches
from sklearn.utils.validation import check_is_fitted, validate_data

from ._data import TabularSchema
from ._frame import FrameSchema, is_pandas_frame
from ._likelihoods import LIKELIHOODS
from ._module import VAEModule
from ._training import (
    TrainConfig,
    kl_weight,
    make_optimizer,
    move_optimizer_state,
    negative_elbo,
    run_epoch,
    train,
)
from ._utils import Interval, StrOptions, draw_seeds, make_generator, resolve_device

#: A latent component whose mean KL over the training rows is below this many
#: nats carries (almost) no information about x: it is "inactive".
ACTIVE_KL_THRESHOLD = 0.01
#: Upper bound on the number of floats in one chunk of importance sampling.
_CHUNK_ELEMENTS = 1 << 22
#: Upper bound on the floats of one layer's activations when encoding in
#: chunks: 16 MiB in transform, 8 MiB in the pass at the end of fit (where the
#: encoded training data is also alive).
_TRANSFORM_ACTIVATIONS = 1 << 22
_FIT_ACTIVATIONS = 1 << 21
#: ``batch_size="auto"``: about this many minibatches per epoch, with the
#: batch size kept within ``AUTO_BATCH_RANGE``. Small tables keep the smallest
#: batch; a large one gets fewer, larger steps per epoch, which cost less
#: time per row on a CPU.
AUTO_BATCH_STEPS = 10
AUTO_BATCH_RANGE = (64, 512)


def auto_batch_size(n_rows: int) -> int:
    """Minibatch size of ``batch_size="auto"`` for ``n_rows`` training rows."""
    low, high = AUTO_BATCH_RANGE
    return int(min(max(n_rows // AUTO_BATCH_STEPS, low), high))


class PosteriorCollapseWarning(UserWarning):
    """The fitted encoder ignores its input: no latent component is active."""


class _BaseVAE(BaseEstimator):
    """Model parameters, training and log-likelihood shared by all estimators.

    Subclasses add their own public methods; they reach the fitted model only
    through ``_encode``, ``_posterior_mean``, ``_decode_mean``,
    ``_log_weights`` and ``score_samples``.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [
            StrOptions({"relu", "elu", "gelu", "tanh", "silu", "leaky_relu"})
        ],
        "likelihood": [StrOptions({"auto", "gaussian", "quantile", "bernoulli"}), dict],
        "handle_unknown": [StrOptions({"error", "missing"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Integral, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "min_variance": [Interval(Real, 0, None, closed="neither")],
        "gaussian_variance": [StrOptions({"feature", "decoder"})],
        "variance_update": [StrOptions({"closed_form", "gradient"})],
        "standardize": ["boolean"],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    #: Subclasses that must always see the missingness mask (the imputer) set
    #: this to True; otherwise the mask channel exists only when the training
    #: data has missing entries.
    _always_mask_channel = False

    def __init__(
        self,
        n_components=8,
        *,
        hidden_layer_sizes=(256, 128),
        activation="relu",
        likelihood="auto",
        handle_unknown="error",
        beta=1.0,
        kl_warmup=0,
        max_iter=200,
        batch_size=128,
        learning_rate=1e-3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        n_importance_samples=32,
        min_variance=1e-3,
        gaussian_variance="feature",
        variance_update="gradient",
        standardize=True,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.handle_unknown = handle_unknown
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.n_importance_samples = n_importance_samples
        self.min_variance = min_variance
        self.gaussian_variance = gaussian_variance
        self.variance_update = variance_update
        self.standardize = standardize
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ------------------------------------------------------------------ input
    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        """Float matrix of X with NaN at every missing entry.

        A pandas DataFrame at fit time gets a :class:`FrameSchema` (private
        ``_frame``): label columns become category codes, and later inputs go
        through the same conversion.
        """
        if reset:
            self._frame = (
                FrameSchema.fit(X, self.likelihood) if is_pandas_frame(X) else None
            )
        frame = getattr(self, "_frame", None)
        if frame is None:
            return self._validate_array(X, reset=reset)
        validate_data(self, X, reset=reset, skip_check_array=True)
        if not is_pandas_frame(X):
            X = check_array(X, dtype=None, ensure_all_finite=False)
        X = frame.to_numeric(X, self.handle_unknown)
        return check_array(X, dtype=[np.float64, np.float32], ensure_all_finite=False)

    def _validate_array(self, X, *, reset: bool) -> np.ndarray:
        """Validation of input that is not a pandas DataFrame fitted as one."""
        return validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            # NaN means missing; infinity is caught by the schema's own pass.
            ensure_all_finite=False,
        )

    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must contain positive integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _inference_device(self) -> torch.device:
        return resolve_device(self.device)

    @contextmanager
    def _module_on(self, device: torch.device) -> Iterator[VAEModule]:
        """The fitted module, on ``device`` for the duration of the block."""
        module = self.module_
        if device.type == "cpu":
            yield module
            return
        module.to(device)
        try:
            yield module
        finally:
            module.cpu()

    # ------------------------------------------------------------------ fit
    def _learn_columns(self, X: np.ndarray) -> None:
        """Hook run on the validated input of a first fit (before the schema)."""

    def _model_input(self, X: np.ndarray) -> np.ndarray:
        """The columns of validated X that the model sees (all by default)."""
        return X

    def _model_feature_names(self):
        """Names of the columns returned by :meth:`_model_input`, or None."""
        return getattr(self, "feature_names_in_", None)

    def _model_columns(self) -> np.ndarray:
        """Positions in validated X of the columns of :meth:`_model_input`."""
        return np.arange(self.n_features_in_)

    def _fit_condition(self, y, n_samples: int, *, first: bool, classes=None):
        """Hook: the decoder condition of each training row, or None.

        A conditional subclass returns an array of shape (n_samples,
        n_conditions) built from ``y`` (and ``classes``, for ``partial_fit``);
        by default the model is unconditional and ``y`` is ignored.
        """
        return None

    def _initialize_schema(self, X: np.ndarray) -> None:
        """Draw the seeds and learn the column schema on the first fit."""
        self._init_seed, self._train_seed, self._score_seed = draw_seeds(
            self.random_state, 3
        )
        self._fit_dtype = X.dtype
        likelihood, n_categories = self.likelihood, None
        if self._frame is not None:
            # The frame fixed the kinds of its label columns (and of any
            # column named in a likelihood dict); renumber them for the
            # model's columns.
            kinds, sizes = self._frame.model_kinds()
            position = {int(j): i for i, j in enumerate(self._model_columns())}
            likelihood = {position[j]: k for j, k in kinds.items() if j in position}
            n_categories = {position[j]: k for j, k in sizes.items() if j in position}
        self.schema_ = TabularSchema.fit(
            X,
            likelihood,
            self._model_feature_names(),
            n_categories,
            standardize=self.standardize,
        )

    def _module_options(self) -> dict:
        """Hook: extra keyword arguments of :class:`VAEModule` (none here)."""
        return {}

    def _initialize_module(self, has_missing: bool, n_conditions: int = 0) -> None:
        """Build the torch module (weights from the init seed) on the CPU."""
        likelihoods = []
        for kind, size in zip(
            ("gaussian", "bernoulli", "categorical"),
            self.schema_.block_sizes,
            strict=True,
        ):
            if not size:
                continue
            if kind == "gaussian":
                likelihoods.append(
                    LIKELIHOODS[kind](
                        size, self.min_variance, variance=self.gaussian_variance
                    )
                )
            elif kind == "categorical":
                likelihoods.append(LIKELIHOODS[kind](self.schema_.n_categories))
            else:
                likelihoods.append(LIKELIHOODS[kind](size))
        self.module_ = VAEModule(
            likelihoods,
            n_components=self.n_components,
            hidden_layer_sizes=self._hidden_sizes(),
            activation=self.activation,
            mask_channel=self._always_mask_channel or has_missing,
            n_conditions=n_conditions,
            generator=torch.Generator().manual_seed(self._init_seed),
            **self._module_options(),
        )
        self.n_iter_ = 0
        self.loss_curve_ = []
        self._optimizer = None

    def _fit(self, X, y=None, *, incremental: bool, classes=None):
        device = resolve_device(self.device)
        self._hidden_sizes()
        first = not (incremental and hasattr(self, "module_"))
        X = self._validate_X(X, reset=first)
        condition = self._fit_condition(y, X.shape[0], first=first, classes=classes)
        if first:
            self._learn_columns(X)
        X = self._model_input(X)
        if first:
            self._initialize_schema(X)
        x, mask = self.schema_.encode(X, device)
        if condition is not None:
            condition = torch.as_tensor(condition, dtype=x.dtype, device=device)
        if first:
            self._initialize_module(
                has_missing=mask is not None,
                n_conditions=0 if condition is None else condition.shape[1],
            )
        self.module_.to(device)
        try:
            if incremental:
                self._partial_fit_epoch(x, mask, device, condition)
            else:
                self._fit_epochs(x, mask, device, condition)
            self._record_latent_usage(x, mask, warn=not incremental)
        finally:
            self.module_.cpu()
            if self._optimizer is not None:
                move_optimizer_state(self._optimizer, torch.device("cpu"))
        self.module_.eval()
        return self

    def _config(self, n_train: int) -> TrainConfig:
        return TrainConfig(
            max_iter=self.max_iter,
            batch_size=self._batch_size(n_train),
            beta=float(self.beta),
            kl_warmup=self.kl_warmup,
            tol=float(self.tol),
            n_iter_no_change=self.n_iter_no_change,
            trim_fraction=self._trim_fraction(),
            n_samples=self._train_samples(n_train),
            average_decay=self._average_decay(),
            variance_step=self.variance_update == "closed_form",
            verbose=self.verbose,
        )

    def _batch_size(self, n_train: int) -> int:
        """The minibatch size for ``n_train`` rows (resolves ``"auto"``)."""
        size = self.batch_size
        if size == "auto":
            size = auto_batch_size(n_train)
        return max(1, min(int(size), n_train))

    def _trim_fraction(self) -> float:
        """Share of each minibatch left out of the gradient (0: plain ELBO)."""
        return 0.0

    def _average_decay(self) -> float:
        """Decay of the moving average of the weights (0: no averaging)."""
        return 0.0

    def _train_samples(self, n_train: int) -> int:
        """Importance samples per row in the training bound (1: the ELBO)."""
        return 1

    def _learning_rate(self, n_train: int) -> float:
        """Adam's step size for ``n_train`` training rows."""
        return float(self.learning_rate)

    def _validation_split(self, x, mask, generator, condition=None):
        """Hold out rows for early stopping.

        Returns the training tensors ``(x, mask)``, the training row indices
        (None for all), and a function scoring a module on the held-out part
        (higher is better: here the validation ELBO per row). ``condition``
        is passed only for a conditional model.
        """
        n = x.shape[0]
        n_val = int(round(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(
                f"early_stopping needs at least one training and one validation "
                f"row; got n_samples = {n} with validation_fraction="
                f"{self.validation_fraction}. Pass more rows or set "
                "early_stopping=False."
            )
        perm = torch.randperm(n, generator=generator, device=x.device)
        val_idx, rows = perm[:n_val], perm[n_val:]
        x_val = x[val_idx]
        mask_val = None if mask is None else mask[val_idx]
        cond_val = None if condition is None else condition[val_idx]
        beta, seed = float(self.beta), self._score_seed

        def validate(module: VAEModule) -> float:
            elbo = negative_elbo(
                module, x_val, mask_val, beta=beta, seed=seed, condition=cond_val
            )
            return -float(elbo.mean())

        return x, mask, rows, validate

    def _fit_epochs(self, x, mask, device, condition=None) -> None:
        generator = make_generator(self._train_seed, device)
        validate = rows = None
        if self.early_stopping:
            # Subclasses that are never conditional need not take ``condition``.
            extra = {} if condition is None else {"condition": condition}
            x, mask, rows, validate = self._validation_split(
                x, mask, generator, **extra
            )
        n_train = x.shape[0] if rows is None else rows.shape[0]
        optimizer = make_optimizer(self.module_, self._learning_rate(n_train))
        result = train(
            self.module_,
            optimizer,
            x,
            mask,
            self._config(n_train),
            generator=generator,
            rows=rows,
            validate=validate,
            condition=condition,
        )
        self._optimizer = None
        self.n_iter_ = result.n_iter
        self.loss_curve_ = result.loss_curve
        self.best_loss_ = result.best_loss
        if self.early_stopping:
            self.validation_scores_ = result.validation_scores
            self.best_validation_score_ = result.best_validation_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        # n_iter_no_change >= max_iter asks for a fixed number of epochs.
        can_stop = self.n_iter_no_change < self.max_iter
        if can_stop and not (result.converged or result.interrupted):
            warnings.warn(
                f"Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=5,
            )

    def _partial_fit_epoch(self, x, mask, device, condition=None) -> None:
        if self._optimizer is None:
            self._optimizer = make_optimizer(
                self.module_, self._learning_rate(x.shape[0])
            )
        else:
            move_optimizer_state(self._optimizer, device)
        config = self._config(x.shape[0])
        generator = make_generator(self._train_seed + self.n_iter_, device)
        residuals = self.module_.new_residual_sums() if config.variance_step else None
        loss = run_epoch(
            self.module_,
            self._optimizer,
            x,
            mask,
            batch_size=config.batch_size,
            kl_weight=kl_weight(config.beta, config.kl_warmup, self.n_iter_),
            generator=generator,
            condition=condition,
            trim_fraction=config.trim_fraction,
            n_samples=config.n_samples,
            residuals=residuals,
        )
        if residuals is not None:
            self.module_.set_feature_variances(residuals)
        self.loss_curve_.append(loss)
        self.n_iter_ += 1
        self.best_loss_ = min(getattr(self, "best_loss_", np.inf), loss)
        self.validation_scores_ = None
        self.best_validation_score_ = None

    @torch.no_grad()
    def _record_latent_usage(self, x, mask, *, warn: bool) -> None:
        total = torch.zeros(self.n_components, dtype=torch.float64, device=x.device)
        for sl in gen_batches(x.shape[0], self._encoder_chunk(_FIT_ACTIVATIONS)):
            m = None if mask is None else mask[sl]
            total += self.module_.kl_per_component(x[sl], m).double().sum(0)
        self.kl_per_component_ = (total / x.shape[0]).cpu().numpy()
        active = self.kl_per_component_ > ACTIVE_KL_THRESHOLD
        self.n_active_components_ = int(active.sum())
        if warn and self.n_active_components_ == 0:
            warnings.warn(
                "Posterior collapse: no latent component is active (mean KL per "
                f"component at most {self.kl_per_component_.max():.2g} nats). The "
                "latent codes carry no information about X; try a smaller beta, "
                "kl_warmup, or more iterations.",
                PosteriorCollapseWarning,
                stacklevel=6,
            )

    # ------------------------------------------------------------------ model access
    def _encode(self, X):
        """Validated X, and its encoded tensor and mask on the inference device."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        x, mask = self.schema_.encode(self._model_input(X), self._inference_device())
        return X, x, mask

    @contextmanager
    def _exact_module(self, x, mask):
        """The module and inputs for row-independent results.

        On the CPU, float32 matrix products round differently for different
        batch shapes (up to ~1e-7 absolute on codes of size ~0.1, and ~5e-7
        on log-likelihoods of size ~1), so a row's result would depend on the
        rows beside it. There the block gets a float64 copy of the module and
        the inputs, whose differences fall far below float32 resolution. On
        other devices it gets the module and inputs as they are.
        """
        with torch.inference_mode(), self._module_on(x.device) as module:
            if x.device.type == "cpu":
                module = copy.deepcopy(module).double()
                x = x.double()
                mask = None if mask is None else mask.double()
            yield module, x, mask

    def _posterior_mean(self, x, mask) -> torch.Tensor:
        """E[z | x] per row (see :meth:`_exact_module` for the precision)."""
        with self._exact_module(x, mask) as (module, x, mask):
            parts = [
                module.inference(x[sl], None if mask is None else mask[sl])[0]
                for sl in gen_batches(x.shape[0], self._encoder_chunk())
            ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _score_noise(self) -> torch.Tensor:
        """The K standard-normal draws shared by all rows (fixed at fit time)."""
        gen = torch.Generator().manual_seed(self._score_seed)
        return torch.randn(self.n_importance_samples, self.n_components, generator=gen)

    def _encoder_chunk(self, budget: int = _TRANSFORM_ACTIVATIONS) -> int:
        """Rows per chunk so that one encoder activation has <= budget floats."""
        widest = max([2 * self.n_components, *self._hidden_sizes(), self._maps()])
        return max(256, budget // widest)

    def _importance_chunk(self) -> int:
        """Rows per chunk of K-fold importance sampling (memory stays bounded)."""
        widest = max([self.module_.n_params, *self._hidden_sizes(), self._maps()])
        return max(1, _CHUNK_ELEMENTS // (self.n_importance_samples * widest))

    def _maps(self) -> int:
        """Floats per row of the module's largest convolutional feature map."""
        return getattr(self.module_, "feature_map_size", 0)

    def _to_output(self, values: np.ndarray):
        """Decoded values in the container and dtypes that fit received.

        For a DataFrame: the fit columns, dtypes and categories, numeric
        values at the fit precision (see :meth:`FrameSchema.to_frame`).
        """
        frame = getattr(self, "_frame", None)
        if frame is None:
            return values.astype(self._fit_dtype, copy=False)
        return frame.to_frame(values)

    # ------------------------------------------------------------------ scoring
    def score_samples(self, X):
        """Importance-weighted estimate of log p(x) for each row.

        The estimate is the IWAE bound with ``n_importance_samples`` posterior
        draws, in nats, for the data in their original units (the
        standardization's Jacobian is included). Missing entries are
        marginalized out: a row's score is the log-density of its observed
        entries. The same draws serve every row, so a row's score does not
        depend on the other rows, and repeated calls give identical values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score; NaN marks a missing entry.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Higher means more typical under the model.
        """
        x, mask, log_p = self._importance_map(X, "log_marginal")
        return log_p - self.schema_.log_det_jacobian(x, mask)

    def _importance_map(self, X, method: str):
        """Encode X and apply a module method taking (x, mask, eps) in chunks.

        The method gets the fixed score draws (:meth:`_score_noise`), so a
        row's result does not depend on the other rows. Returns the encoded
        ``x``, its ``mask`` and the method's output as a float64 array.
        """
        _, x, mask = self._encode(X)
        with self._exact_module(x, mask) as (module, xe, me):
            eps = self._score_noise().to(device=xe.device, dtype=xe.dtype)
            fn = getattr(module, method)
            parts = [
                fn(xe[sl], None if me is None else me[sl], eps)
                for sl in gen_batches(xe.shape[0], self._importance_chunk())
            ]
        return x, mask, torch.cat(parts).double().cpu().numpy()

    def score(self, X, y=None):
        """Mean log-likelihood estimate of the rows of X.

        With this as ``score``, model selection tools such as ``GridSearchCV``
        with no ``scoring`` pick the model with the best held-out likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score; NaN marks a missing entry.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples` over the rows.
        """
        return float(np.mean(self.score_samples(X)))
