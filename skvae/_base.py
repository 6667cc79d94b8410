"""Shared base of the skvae estimators: parameters, input checks, one fit.

``_BaseVAE._fit`` is the one fit skeleton: validate the input, learn the
column schema, build the module, make the training plan, train, and keep
what fit produced in a :class:`~skvae._fitted.FittedVAE`. Subclasses add
public methods and answer one hook, :meth:`_BaseVAE._fit_inputs` (which
columns the model sees, and the decoder condition of each row).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _params, _stream
from ._dask import is_dask_collection
from ._data import TabularSchema
from ._fitted import FittedVAE
from ._frame import FrameSchema, is_pandas_frame
from ._images import resolve_image_shape
from ._likelihoods import make_likelihoods
from ._module import build_module
from ._staged import MAX_EPOCHS as MAX_STAGED_EPOCHS
from ._staged import fit_decoded_variance
from ._training import (
    TrainData,
    TrainPlan,
    TrainResult,
    move_optimizer_state,
    summary_rows,
    train,
)
from ._utils import draw_seeds, resolve_device
from ._validation import validation_on

#: A latent component whose mean KL over the training rows is below this many
#: nats carries (almost) no information about x: it is "inactive".
ACTIVE_KL_THRESHOLD = 0.01


class PosteriorCollapseWarning(UserWarning):
    """The fitted encoder ignores its input: no latent component is active.

    ``fit`` warns with it when the mean KL divergence of every latent
    component from its prior is at most 0.01 nats (``n_active_components_``
    is 0): the codes then carry no information about X.

    Examples
    --------
    >>> import warnings
    >>> from skvae import PosteriorCollapseWarning
    >>> issubclass(PosteriorCollapseWarning, UserWarning)
    True
    >>> with warnings.catch_warnings():  # silence it, e.g. around a fit
    ...     warnings.simplefilter("ignore", PosteriorCollapseWarning)
    ...     warnings.warn("no latent component is active", PosteriorCollapseWarning)
    """


def store_params(estimator: BaseEstimator, values: dict) -> None:
    """Set every ``__init__`` argument in ``values`` (``locals()``) as attribute."""
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class _BaseVAE(BaseEstimator):
    """Model parameters, input checks, fit and log-likelihood of every estimator.

    Subclasses define ``__init__`` with the shared parameters (and their own
    task parameters), calling :func:`store_params`.
    """

    _parameter_constraints: dict = dict(_params.SHARED_CONSTRAINTS)

    #: How early stopping validates: "rows" (held-out rows' ELBO) or
    #: "entries" (held-out observed entries' imputation error).
    _validation_scheme = "rows"
    #: Kind of the numeric DataFrame columns under ``likelihood="auto"``
    #: ("auto": the numeric schema's choice, Gaussian).
    _frame_numeric_kind = "auto"
    #: Whether ``early_stopping="auto"`` may hold out data.
    _auto_early_stopping = True
    #: Decay of the moving average of the weights kept in training (0: none):
    #: validation scores and the fitted model use the averaged weights, which
    #: do not jump from epoch to epoch as the last step's weights do.
    _weight_average_decay = 0.99
    #: Step budgets that replace those of :data:`skvae._params.AUTO_STEPS`
    #: for this estimator's ``"auto"`` settings (None: none replaced).
    _auto_steps: dict | None = None
    #: Epoch ranges of "auto" budgets where they differ from _params.AUTO_EPOCHS.
    _auto_epochs: dict | None = None
    #: Whether the encoder always sees the missingness mask (otherwise only
    #: when the training data have missing entries).
    _always_mask_channel = False
    #: Whether log-likelihood estimates refine the proposal of rows unlike the
    #: training rows (:meth:`FittedVAE.set_refine_threshold`).
    _refine_scores = True
    #: How plots label ``loss_curve_`` and ``validation_scores_``: the
    #: objective's name, the validation curve's name, the sign that turns a
    #: validation score into it, and the unit of its own y-axis (None: drawn
    #: on the loss's axes).
    _curve_labels = {
        "objective": "negative ELBO",
        "validation": "negative ELBO",
        "validation_sign": -1.0,
        "validation_axis": None,
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ------------------------------------------------------------------ input
    def _validate_X(self, X, *, reset: bool, frame: FrameSchema | None):
        """Float matrix of X with NaN at every missing entry, and its frame.

        With ``reset`` (a first fit), a DataFrame gets a new
        :class:`FrameSchema` unless ``frame`` is given (one fitted on more
        than ``X``); otherwise ``frame`` is the fitted one (or None).
        Through a frame, label columns become category codes. Returns the
        matrix and the frame.
        """
        if reset and frame is None:
            frame = (
                FrameSchema.fit(X, self.likelihood, self._frame_numeric_kind)
                if is_pandas_frame(X)
                else None
            )
        if frame is None:
            return self._validate_array(X, reset=reset), None
        validate_data(self, X, reset=reset, skip_check_array=True)
        if not is_pandas_frame(X):
            X = check_array(X, dtype=None, ensure_all_finite=False)
        X = frame.to_numeric(X, self.handle_unknown)
        X = check_array(X, dtype=[np.float64, np.float32], ensure_all_finite=False)
        return X, frame

    def _validate_array(self, X, *, reset: bool) -> np.ndarray:
        """Validation of input that is not read through a DataFrame schema."""
        return validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            # NaN means missing; infinity is caught by the schema.
            ensure_all_finite=False,
        )

    def _fit_inputs(self, X: np.ndarray, y, *, first: bool, classes=None, facts=None):
        """Hook: model columns of validated ``X`` and the rows' condition.

        Returns the positions of the columns the model sees (None: all) and
        an array of shape (n_samples, n_conditions), or None for an
        unconditional model. By default, all columns and no condition.
        ``facts`` (:class:`~skvae._data.ColumnFacts`), when ``X`` is a sample
        of a streamed fit, describes every row.
        """
        return None, None

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y=None, *, incremental: bool = False, classes=None):
        """Fit (or, ``incremental``, continue for one epoch) on X.

        A Dask collection is streamed (:meth:`_fit_stream`). Returns rows
        that represent the training data for statistics taken after the fit
        (a detector's threshold): X itself, or a uniform sample of a Dask
        collection. Whatever fails leaves the estimator's attributes as they
        were (a failed epoch of ``partial_fit`` may still have moved the
        weights).
        """
        saved = dict(self.__dict__)
        try:
            if is_dask_collection(X):
                return self._fit_stream(X, y, incremental=incremental)
            self._fit_steps(X, y, incremental=incremental, classes=classes)
            return X
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit_steps(self, X, y, *, incremental: bool, classes):
        device = resolve_device(self.device)
        _params.hidden_sizes(self.hidden_layer_sizes)
        first = not (incremental and hasattr(self, "_fitted"))
        if not first:
            self._check_continuation()
        frame = None if first else self._fitted.frame
        X, frame = self._validate_X(X, reset=first, frame=frame)
        columns, condition = self._fit_inputs(X, y, first=first, classes=classes)
        X_model = X if columns is None else X[:, columns]
        if first:
            seeds = draw_seeds(self.random_state, 3)
            schema = self._fit_schema(X_model, frame, columns)
            x, mask = schema.encode(X_model, device)
            n_conditions = 0 if condition is None else condition.shape[1]
            has_missing = mask is not None
            self.gaussian_variance_ = self._resolve_variance(schema, stream=False)
            if incremental and self.gaussian_variance_ == "staged":
                self.gaussian_variance_ = "feature"  # no stage after one pass
            self._staged_done = False
            self._start(schema, X, frame, columns, has_missing, n_conditions, seeds)
        else:
            x, mask = self._fitted.schema.encode(X_model, device)
        data = self._train_data(x, mask, condition)
        resume = (self._train_state or TrainResult()) if incremental else None
        n_observed = None if mask is None else int(mask.sum())
        plan = self._plan(x.shape[0], n_observed, incremental=incremental)
        module = self.module_
        module.to(device)
        try:
            result = train(module, data, plan, resume=resume)
            if not incremental and self.gaussian_variance_ == "staged":
                self._fit_staged_variance(data, plan)
            self._record(
                result, x, mask, incremental=incremental, plan=plan, condition=condition
            )
        finally:
            module.cpu()
            state = getattr(self, "_train_state", None)
            if state is not None and state.optimizer is not None:
                move_optimizer_state(state.optimizer, torch.device("cpu"))
        module.eval()
        return self

    def _fit_stream(self, X, y, *, incremental: bool):
        """Fit on a Dask Array or DataFrame without materializing it.

        One pass learns the schema from exact per-column facts and a uniform
        sample of rows (:func:`skvae._stream.summarize`); the epochs then
        stream the partitions (:class:`skvae._stream.PartitionStream`)
        through the same plan and loop as in-memory data. Early stopping
        scores rows held out of the stream (at most
        :data:`skvae._stream.HELD_OUT_ROWS`); there is no refit. Returns the
        sample.
        """
        if incremental:
            raise TypeError(
                "partial_fit takes in-memory rows; pass a Dask collection to fit "
                "(which streams it), or wrap the estimator in dask-ml's "
                "Incremental to call partial_fit on each block."
            )
        if y is not None and getattr(self, "conditional", False):
            raise ValueError(
                "A conditional model is fitted from in-memory X and y; fit "
                "streams Dask collections for unconditional models only."
            )
        device = resolve_device(self.device)
        _params.hidden_sizes(self.hidden_layer_sizes)
        rows = _stream.DaskRows.of(X)
        seeds = draw_seeds(self.random_state, 4)
        scheme = self._validation_scheme
        fraction = float(self.validation_fraction)
        auto_scheme = scheme if self._auto_early_stopping else None
        early = _params.early_stopping(
            self.early_stopping, auto_scheme, int(round(fraction * rows.n_rows))
        )
        rate = _stream.held_out_rate(rows.n_rows, fraction, early)
        summary = _stream.summarize(rows, seeds[3], rate)
        if early and (summary.held_out is None or len(summary.held_out) == 0):
            raise ValueError(
                "early_stopping holds out rows of X, but none was drawn; pass "
                "more rows or set early_stopping=False."
            )
        frame = None
        if rows.frame:
            frame = FrameSchema.fit(
                summary.sample, self.likelihood, self._frame_numeric_kind, summary
            )
        sample, frame = self._validate_X(summary.sample, reset=True, frame=frame)
        facts = _stream.facts_of(summary, frame)
        columns, _ = self._fit_inputs(sample, None, first=True, facts=facts)
        schema = self._fit_schema(_model_columns(sample, columns), frame, columns)
        low, high = facts.low, facts.high
        names = getattr(self, "feature_names_in_", None)
        if columns is not None:
            low, high = low[columns], high[columns]
            names = None if names is None else names[columns]
        schema.check_ranges(low, high, names)

        def prepare(block) -> TrainData:
            values, _ = self._validate_X(block, reset=False, frame=frame)
            x, mask = schema.encode(_model_columns(values, columns), device)
            return TrainData(x, mask, None)

        x, mask = schema.encode(_model_columns(sample, columns), device)
        has_missing = bool(_model_columns(facts.any_missing[None], columns).any())
        self.gaussian_variance_ = self._resolve_variance(schema, stream=True)
        self._staged_done = False
        self._start(schema, sample, frame, columns, has_missing, 0, seeds)
        plan = self._plan(summary.n_train, held_out=early)
        validation = None
        if early:
            held = prepare(summary.held_out)
            validation = validation_on(self._train_data(held.x, held.mask, None), plan)
        stream = _stream.PartitionStream(rows, seeds[3], rate, prepare, summary.n_train)
        module = self.module_
        module.to(device)
        try:
            result = train(
                module,
                self._train_data(x, mask, None),
                plan,
                stream=stream,
                validation=validation,
            )
            self._record(result, x, mask, incremental=False, plan=plan)
        finally:
            module.cpu()
        module.eval()
        return summary.sample

    def _start(self, schema, X, frame, columns, has_missing, n_conditions, seeds):
        """A new fitted model (untrained module) for ``schema``; X is validated."""
        self._fitted = FittedVAE(
            schema,
            self._build_module(schema, has_missing, n_conditions, seeds[0]),
            score_seed=seeds[2],
            train_seed=seeds[1],
            frame=frame,
            columns=columns,
            fit_dtype=X.dtype,
        )
        self.module_, self.schema_ = self._fitted.module, schema
        self.column_likelihoods_ = _column_likelihoods(schema, columns, X.shape[1])
        self._train_state = None

    def _fit_schema(self, X, frame, columns) -> TabularSchema:
        """Column kinds and scaling of the model columns."""
        likelihood, n_categories = self.likelihood, None
        names = getattr(self, "feature_names_in_", None)
        if columns is not None and names is not None:
            names = names[columns]
        if frame is not None:
            # The frame fixed the kinds of its label columns (and of columns
            # named in a likelihood dict); renumber them for the model.
            kinds, sizes = frame.model_kinds()
            cols = np.arange(X.shape[1]) if columns is None else columns
            position = {int(j): i for i, j in enumerate(cols)}
            likelihood = {position[j]: k for j, k in kinds.items() if j in position}
            n_categories = {position[j]: k for j, k in sizes.items() if j in position}
        return TabularSchema.fit(
            X, likelihood, names, n_categories, standardize=self.standardize
        )

    def _resolve_variance(self, schema: TabularSchema, *, stream: bool) -> str:
        """``gaussian_variance`` with ``"auto"`` resolved for ``schema``.

        ``"auto"``: ``"staged"`` for an image-like matrix (see
        :func:`~skvae._data.shares_one_unit`) with the MLP architecture,
        fitted in memory; ``"feature"`` otherwise.
        """
        value = self.gaussian_variance
        if value == "staged":
            if self.architecture != "mlp":
                raise ValueError(
                    "gaussian_variance='staged' fits a variance output of the MLP "
                    "decoder; with architecture='conv' use 'feature' or 'decoder'."
                )
            if stream:
                raise ValueError(
                    "gaussian_variance='staged' fits the decoded variances on the "
                    "training rows in memory; a Dask collection is streamed. Use "
                    "'feature' or 'decoder', or fit on an in-memory array."
                )
        if value != "auto":
            return value
        staged = (
            schema.image_like
            and schema.block_sizes[0] > 0
            and self.architecture == "mlp"
            and not stream
        )
        return "staged" if staged else "feature"

    def _staged_floor(self, schema: TabularSchema) -> torch.Tensor:
        """Floor of the staged variances per Gaussian column, in model units.

        Image-like matrices: :data:`~skvae._params.AUTO_PIXEL_VARIANCE_FLOOR`
        of their squared overall range, in each column's units; otherwise
        ``min_variance``.
        """
        if schema.value_range is None:
            return torch.full((schema.block_sizes[0],), float(self.min_variance))
        share = _params.AUTO_PIXEL_VARIANCE_FLOOR
        unit_range = schema.value_range / schema.pre_scale
        floor = share * (unit_range / np.asarray(schema.scale)) ** 2
        return torch.as_tensor(floor, dtype=torch.float32)

    def _fit_staged_variance(self, data, plan) -> None:
        """Second stage of ``gaussian_variance="staged"``: decoded variances."""
        fit_decoded_variance(
            self.module_,
            data.x,
            data.mask,
            data.condition,
            floor=self._staged_floor(self._fitted.schema).to(data.x.device),
            batch_size=plan.batch_size,
            learning_rate=plan.learning_rate,
            seed=(plan.seed + 1) % 2**63,
            max_epochs=min(MAX_STAGED_EPOCHS, plan.max_iter),
            kl_weight=plan.beta,
            verbose=plan.verbose,
        )
        self._staged_done = True

    def _build_module(self, schema, has_missing: bool, n_conditions: int, seed: int):
        """The initialised torch module for ``schema`` (on the CPU).

        Sets ``n_components_`` and ``activation_``, the network's size and
        activation with ``"auto"`` resolved for ``schema``.

        Its Gaussian variances are those of ``gaussian_variance_`` (the
        resolved value): a staged module is built with shared variances,
        before its stage, unless the stage has run (a saved model).
        """
        variance = self.__dict__.get("gaussian_variance_", self.gaussian_variance)
        floor = None
        if variance == "staged":
            if getattr(self, "_staged_done", False):
                variance, floor = "decoder", self._staged_floor(schema)
            else:
                variance = "feature"
        image_shape = None
        if self.architecture == "conv":
            image_shape = self._image_shape(schema)
        else:
            self.__dict__.pop("image_shape_", None)
        self.n_components_ = _params.latent_size(self.n_components, schema.pixels)
        self.activation_ = _params.network_activation(
            self.activation,
            pixels=schema.pixels,
            n_components=self.n_components_,
            architecture=self.architecture,
        )
        return build_module(
            make_likelihoods(
                schema.block_sizes,
                schema.n_categories,
                min_variance=self.min_variance,
                gaussian_variance=variance,
                gaussian_floor=floor,
            ),
            self.n_components_,
            _params.hidden_sizes(self.hidden_layer_sizes),
            self.activation_,
            mask_channel=self._always_mask_channel or has_missing,
            n_conditions=n_conditions,
            image_shape=image_shape,
            generator=torch.Generator().manual_seed(seed),
        )

    def _image_shape(self, schema: TabularSchema) -> tuple[int, int, int]:
        """Resolve ``image_shape_`` and check that every pixel is alike."""
        self.image_shape_ = resolve_image_shape(self.image_shape, schema.n_features)
        n_gaussian, n_bernoulli, n_categorical = schema.block_sizes
        if n_categorical:
            raise ValueError(
                "architecture='conv' needs numeric pixels, but "
                f"{n_categorical} columns are categorical."
            )
        if n_gaussian and n_bernoulli:
            raise ValueError(
                "architecture='conv' needs one likelihood for every pixel, but "
                f"likelihood={self.likelihood!r} made {n_gaussian} columns "
                f"Gaussian and {n_bernoulli} Bernoulli. Pass one kind for all: "
                "likelihood='bernoulli' for pixels in [0, 1], or 'gaussian'."
            )
        return self.image_shape_

    def _check_continuation(self) -> None:
        """partial_fit cannot change the architecture of the fitted module."""
        fitted = "mlp" if self.module_.image_shape is None else "conv"
        if fitted != self.architecture:
            raise ValueError(
                f"This {type(self).__name__} was first fitted with "
                f"architecture={fitted!r}; partial_fit cannot continue with "
                f"architecture={self.architecture!r}. Call fit to start over."
            )

    def _train_data(self, x, mask, condition) -> TrainData:
        schema = self._fitted.schema
        if condition is not None:
            condition = torch.as_tensor(condition, dtype=x.dtype, device=x.device)
        return TrainData(
            x,
            mask,
            condition,
            fill=torch.as_tensor(schema.fill, dtype=x.dtype, device=x.device),
            variable_of_column=torch.as_tensor(
                schema.variable_of_column, device=x.device
            ),
        )

    def _plan(
        self,
        n_rows: int,
        n_observed: int | None = None,
        *,
        incremental: bool = False,
        held_out: bool | None = None,
    ) -> TrainPlan:
        """Every training choice for ``n_rows`` rows, from the parameters.

        ``n_observed`` counts the observed entries (the "entries" validation
        scheme holds out a share of them); None: every entry of the rows.
        ``"auto"`` values are resolved here, from the size of the data, by
        the rules of :mod:`skvae._params`. ``incremental`` (``partial_fit``):
        one epoch, no early stopping. ``held_out`` (a streamed fit): whether
        rows were held out for early stopping; ``n_rows`` are then the
        training rows alone, and no refit follows.
        """
        scheme = self._validation_scheme
        if n_observed is None:
            n_observed = n_rows * len(self._fitted.schema.kinds)
        fraction = float(self.validation_fraction)
        n_held_out = int(round(fraction * (n_rows if scheme == "rows" else n_observed)))
        auto_scheme = scheme if self._auto_early_stopping else None
        early = not incremental and _params.early_stopping(
            self.early_stopping, auto_scheme, n_held_out
        )
        n_train = n_rows
        if held_out is not None:
            early = held_out
        elif early and scheme == "rows":
            n_train = max(1, n_rows - n_held_out)
        batch_size = _params.batch_size(self.batch_size, n_train)
        steps = math.ceil(n_train / batch_size)
        closed_form = self.variance_update == "closed_form" or (
            self.variance_update == "auto" and not self._fitted.schema.image_like
        )
        max_iter, patience = _params.budget(
            self.max_iter,
            self.n_iter_no_change,
            steps,
            validation=early,
            steps=self._auto_steps,
            ranges=self._auto_epochs,
        )
        return TrainPlan(
            max_iter=1 if incremental else max_iter,
            batch_size=batch_size,
            learning_rate=float(
                _params.auto_value("learning_rate", self.learning_rate, n_train)
            ),
            beta=float(self.beta),
            kl_warmup=_params.epochs(
                "kl_warmup", self.kl_warmup, steps, self._auto_steps, self._auto_epochs
            ),
            tol=float(self.tol),
            n_iter_no_change=patience,
            n_samples=int(
                _params.auto_value("n_train_samples", self.n_train_samples, n_train)
            ),
            trim_fraction=float(self.trim_fraction),
            # partial_fit leaves the loop to the caller: no averaging.
            average_decay=0.0 if incremental else self._weight_average_decay,
            variance_step=closed_form,
            validation=scheme if early else None,
            validation_fraction=fraction,
            validation_samples=_params.auto_value("validation_samples", "auto", n_rows),
            validation_trim=_params.VALIDATION_TRIM if closed_form else 0.0,
            n_importance_samples=self.n_importance_samples,
            calibrate=closed_form,
            refit=early
            and held_out is None
            and bool(_params.auto_value("refit", self.refit, n_rows)),
            seed=self._fitted.train_seed,
            eval_seed=self._fitted.score_seed,
            verbose=self.verbose,
        )

    def _record(
        self, result: TrainResult, x, mask, *, incremental: bool, plan, condition=None
    ):
        """Copy the training history to the fitted attributes; warn if needed.

        ``x``, ``mask`` and ``condition`` are the encoded training rows (a
        sample of them for a streamed fit) and their one-hot classes (or
        None), read by :meth:`_summarize_latent`.
        """
        self._train_state = result if incremental else replace(result, optimizer=None)
        self.n_iter_ = result.n_iter
        self.loss_curve_ = list(result.loss_curve)
        self.best_loss_ = result.best_loss
        self.validation_scores_ = result.validation_scores
        self.best_validation_score_ = result.best_validation_score
        self.training_plan_ = _params.resolved_plan(plan, self.get_params(deep=False))
        self._summarize_latent(x, mask, condition, incremental=incremental, plan=plan)
        if incremental:
            return
        # n_iter_no_change >= max_iter asks for a fixed number of epochs.
        can_stop = plan.n_iter_no_change < plan.max_iter
        if can_stop and not (result.converged or result.interrupted):
            warnings.warn(
                f"Maximum iterations ({plan.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=5,
            )
        for message, category in self._latent_warnings():
            warnings.warn(message, category, stacklevel=5)

    def _summarize_latent(self, x, mask, condition, *, incremental: bool, plan):
        """Fitted attributes that describe the latent layer on the training rows.

        For a Gaussian latent: the mean KL per component and the number of
        active components, over at most 32,768 of the rows; and the screen
        of rows whose log-likelihood estimate gets a refined proposal
        (:meth:`FittedVAE.set_refine_threshold`).
        """
        rows = summary_rows(
            x.shape[0], torch.Generator(x.device).manual_seed(plan.seed)
        )
        if condition is not None:
            condition = torch.as_tensor(condition, dtype=x.dtype, device=x.device)
        if rows is not None:
            x, mask = x[rows], None if mask is None else mask[rows]
            if condition is not None and condition.shape[0] > 1:
                condition = condition[rows]
        self.kl_per_component_ = self._fitted.kl_per_component(x, mask)
        if self._refine_scores:
            self._fitted.set_refine_threshold(
                x, mask, condition, torch.Generator().manual_seed(plan.seed)
            )
        self.n_active_components_ = int(
            (self.kl_per_component_ > self._active_kl_threshold()).sum()
        )

    def _active_kl_threshold(self) -> float:
        """Mean KL (nats) above which a latent component counts as active."""
        return ACTIVE_KL_THRESHOLD

    def _latent_warnings(self):
        """(message, category) of each warning about the fitted latent layer."""
        if self.n_active_components_ == 0:
            yield (
                "Posterior collapse: no latent component is active (mean KL per "
                f"component at most {self.kl_per_component_.max():.2g} nats). The "
                "latent codes carry no information about X; try a smaller beta, "
                "kl_warmup, or more iterations.",
                PosteriorCollapseWarning,
            )

    # ------------------------------------------------------------------ inference
    def _model(self) -> FittedVAE:
        """The fitted model, with the current device and number of draws."""
        check_is_fitted(self)
        return replace(
            self._fitted,
            device=resolve_device(self.device),
            n_importance_samples=self.n_importance_samples,
        )

    def _validated(self, X):
        """The fitted model and X validated for it (encoded later, by chunks)."""
        model = self._model()
        X, _ = self._validate_X(X, reset=False, frame=model.frame)
        return model, X

    def score_samples(self, X):
        """Importance-weighted estimate of log p(x) for each row.

        The IWAE bound with ``n_importance_samples`` posterior draws, in nats,
        for the data in their original units (every transformation's
        Jacobian is included). Missing entries are marginalized out: a row's
        score is the log-density of its observed entries. The same draws serve
        every row, so a row's score does not depend on the other rows, and
        repeated calls give identical values.

        A row far below the training rows' ELBO (per observed variable), for
        which the encoder's approximation can miss the posterior by far, is
        estimated again with an approximation refined for that row alone
        (see :doc:`/user_guide/reduce`); its score still does not depend on
        the other rows.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to score; NaN marks a missing entry.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            Higher means more typical under the model. For a Dask Array, a
            lazy float64 Dask Array chunked as X's rows; for a Dask
            DataFrame, a lazy Dask Series on X's index and divisions.
        """
        model, X = self._validated(X)
        return model.log_likelihood(X)

    def score(self, X, y=None):
        """Mean log-likelihood estimate of the rows of X.

        With this as ``score``, model selection tools such as ``GridSearchCV``
        with no ``scoring`` pick the model with the best held-out likelihood.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to score; NaN marks a missing entry. A Dask collection is
            scored lazily and the mean computed (this call computes).
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples` over the rows.
        """
        return float(np.mean(self.score_samples(X)))


def _column_likelihoods(schema: TabularSchema, columns, n_features: int) -> np.ndarray:
    """The likelihood kind of every input column (None where not modelled)."""
    kinds = np.full(n_features, None, dtype=object)
    kinds[slice(None) if columns is None else columns] = schema.kinds
    return kinds


def _model_columns(X: np.ndarray, columns) -> np.ndarray:
    """The model's columns of validated ``X`` (None: all of them)."""
    return X if columns is None else X[:, columns]
