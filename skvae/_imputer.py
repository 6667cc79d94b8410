"""VAEImputer: missing values filled from a VAE trained on incomplete data."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.impute import MissingIndicator
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import _BaseVAE, store_params
from ._dask import dask_inference
from ._data import ColumnFacts
from ._frame import is_pandas_frame
from ._params import document
from ._utils import MissingValues, _check_feature_names_in, _fit_context, draw_seeds

#: ``clip=True`` keeps imputations within each column's observed range
#: widened by this share of its width on both sides: room for genuine
#: extremes beyond the observed range, little for a runaway extrapolation
#: from a row with an extreme observed value.
CLIP_MARGIN = 0.5


def _is_nan_like(value) -> bool:
    """True for NaN (any float type) and pandas' NA."""
    if value is None or isinstance(value, str):
        return False
    if isinstance(value, Real):
        return math.isnan(value)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return value is pd.NA


@dask_inference(
    transform="impute", sample_imputations="draws", score_samples="scores", score="mean"
)
@document
class VAEImputer(TransformerMixin, _BaseVAE):
    """Missing-value imputation with a variational autoencoder (MIWAE).

    The VAE is trained on the incomplete data with the importance-weighted
    bound over the observed entries only (MIWAE, Mattei & Frellsen 2019): a
    missing entry never enters the loss, and the encoder is told which
    entries are missing. A row's imputation is the importance-weighted mean
    of the decoder means over ``n_importance_samples`` latent draws, the
    estimate of E[x_mis | x_obs]; with ``sample_posterior=True`` it is a draw
    from p(x_mis | x_obs) instead, so that :meth:`sample_imputations` gives
    multiple imputations whose spread shows the uncertainty. Observed entries
    come back bit for bit. A pandas DataFrame may mix numeric, categorical,
    string and bool columns; NaN, None and ``pd.NA`` are missing in all.

    Parameters
    ----------
    {n_components}
    missing_values : float, int, str, None or pandas.NA, default=np.nan
        The placeholder of a missing entry. With anything other than NaN, NaN
        in X is an error (as in scikit-learn's imputers); ``None`` or a string
        work with object arrays whose other entries are numbers.
    add_indicator : bool, default=False
        Append a :class:`~sklearn.impute.MissingIndicator` of the features
        that had missing values at fit time.
    keep_empty_features : bool, default=False
        What to do with features that are entirely missing at fit time: drop
        them from the output (False) or keep them, imputed with 0 (True).
    sample_posterior : bool, default=False
        False: the single best (importance-weighted mean) imputation. True:
        a random draw from the model's conditional distribution of the
        missing entries given the observed ones, seeded by ``random_state``.
    clip : bool, default=True
        Keep each imputed numeric value within its column's range of
        observed values at fit time, widened by half the range's width on
        each side, so that a row with an extreme observed value does not
        carry the decoder's linear extrapolation into its holes. False keeps
        the model's values.
    {shared_parameters}

    Attributes
    ----------
    indicator_ : MissingIndicator or None
        The fitted indicator when ``add_indicator=True``.
    module_, schema_, column_likelihoods_, n_iter_, training_plan_, \
gaussian_variance_, loss_curve_, best_loss_, kl_per_component_, \
n_active_components_, n_features_in_, feature_names_in_
        As in :class:`~skvae.VAETransformer`; the model covers the features
        that had at least one observed value at fit time (the others have
        None in ``column_likelihoods_``). ``loss_curve_`` is
        the negative MIWAE bound per row; after a refit, ``n_iter_`` and
        ``loss_curve_`` describe the refit model.
    validation_scores_ : list of float or None
        With ``early_stopping``, a share of the *observed entries* is hidden
        from training and imputed after every epoch: the negative root mean
        squared error of those entries in standardized units (a categorical
        entry counts the Brier score of its probability vector), per epoch.
    best_validation_score_ : float or None
        Its best value; the fitted weights are from that epoch, or were
        trained for that many epochs on every entry (``refit``).
    noise_calibration_ : float
        Factor (at least 1) applied to the fitted column variances. With
        ``variance_update="closed_form"`` and early stopping, the variances
        fit entries the network was trained on and understate the error on
        unseen ones; the squared imputation error of the hidden entries is
        matched to the predictive variance (the spread over the posterior
        draws plus the column variance). 1.0 otherwise.

    See Also
    --------
    sklearn.impute.IterativeImputer : Round-robin regression imputation.
    sklearn.impute.KNNImputer : Nearest-neighbour imputation.

    Notes
    -----
    Training keeps an exponential moving average of the weights (decay 0.99
    per step), which is what early stopping scores and the fit keeps: it
    evens out the epoch-to-epoch swings of the imputation error. A
    categorical (or bool, or two-valued label) hole gets the category that
    maximizes the importance-weighted predictive ``sum_k w_k p(c | z_k)`` (a
    draw from it with ``sample_posterior=True``); a numeric Bernoulli column
    gets its probability (a 0/1 draw with ``sample_posterior=True``).

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEImputer
    >>> rng = np.random.RandomState(0)
    >>> z = rng.normal(size=(200, 1))
    >>> X = np.hstack([z, 2 * z, -z]) + 0.1 * rng.normal(size=(200, 3))
    >>> X[::5, 1] = np.nan
    >>> Xt = VAEImputer(n_components=2, max_iter=10, random_state=0).fit_transform(X)
    >>> Xt.shape, bool(np.isnan(Xt).any())
    ((200, 3), False)
    """

    _always_mask_channel = True
    _validation_scheme = "entries"
    _curve_labels = {
        "objective": "negative MIWAE bound",
        "validation": "imputation RMSE",
        "validation_sign": -1.0,
        "validation_axis": "imputation RMSE (standardized units)",
    }

    _parameter_constraints: dict = {
        **_BaseVAE._parameter_constraints,
        "missing_values": [MissingValues()],
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "sample_posterior": ["boolean"],
        "clip": ["boolean"],
    }

    def __init__(
        self,
        n_components=8,
        *,
        missing_values=np.nan,
        add_indicator=False,
        keep_empty_features=False,
        sample_posterior=False,
        clip=True,
        architecture="mlp",
        image_shape=None,
        hidden_layer_sizes=(64, 64),
        activation="relu",
        likelihood="auto",
        handle_unknown="error",
        standardize=True,
        beta=1.0,
        kl_warmup="auto",
        max_iter="auto",
        batch_size="auto",
        learning_rate="auto",
        n_train_samples="auto",
        trim_fraction=0.0,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change="auto",
        tol=1e-4,
        refit="auto",
        n_importance_samples=500,
        min_variance=1e-3,
        gaussian_variance="feature",
        variance_update="closed_form",
        device="auto",
        random_state=None,
        verbose=0,
    ):
        store_params(self, locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = _is_nan_like(self.missing_values)
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------ input
    def _validate_X(self, X, *, reset: bool, frame):
        """Float array (float32 kept, else float64) with NaN at every missing entry.

        In a DataFrame, NaN, None and ``pd.NA`` are always missing, and so
        are the cells equal to ``missing_values``.
        """
        if is_pandas_frame(X) and not _is_nan_like(self.missing_values):
            X = X.mask(X == self.missing_values)
        return super()._validate_X(X, reset=reset, frame=frame)

    def _validate_array(self, X, *, reset: bool) -> np.ndarray:
        nan_like = _is_nan_like(self.missing_values)
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32] if nan_like else None,
            ensure_all_finite="allow-nan" if nan_like else True,
        )
        if nan_like:
            return X
        if isinstance(self.missing_values, str) and X.dtype.kind in "biuf":
            raise ValueError(
                "X is numeric but missing_values is a string "
                f"({self.missing_values!r}); pass a number or np.nan."
            )
        if self.missing_values is None and X.dtype != object:
            missing = np.zeros(X.shape, dtype=bool)  # None never occurs in numbers
        elif self.missing_values is None:
            missing = np.equal(X, None)
        else:
            missing = X == self.missing_values
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        if X.dtype == object:
            X = np.where(missing, np.nan, X)
            try:
                return X.astype(dtype)
            except ValueError as exc:
                raise ValueError(
                    f"VAEImputer needs numeric values besides missing_values: {exc}"
                ) from exc
        X = X.astype(dtype)
        X[missing] = np.nan
        return X

    def _fit_inputs(self, X, y, *, first: bool, classes=None, facts=None):
        """Model the features with an observed value; learn clip range, indicator."""
        facts = ColumnFacts.of(X) if facts is None else facts
        self._valid_features = facts.count > 0
        if not self._valid_features.any():
            raise ValueError(
                "Every feature of X is entirely missing; VAEImputer needs "
                "observed values to learn from."
            )
        self._all_valid = bool(self._valid_features.all())
        low = facts.low[self._valid_features]
        high = facts.high[self._valid_features]
        margin = CLIP_MARGIN * (high - low)
        self._clip_range = (low - margin, high + margin)
        if self.add_indicator:
            # Fitted on the missingness pattern: a row missing where any
            # row is, and a complete one.
            pattern = np.where(facts.any_missing, np.nan, 0.0)
            self.indicator_ = MissingIndicator(
                missing_values=np.nan, error_on_new=False
            ).fit(np.vstack([pattern, np.zeros_like(pattern)]))
        else:
            self.indicator_ = None
        columns = None if self._all_valid else np.flatnonzero(self._valid_features)
        return columns, None

    def _fit_stream(self, X, y, *, incremental: bool):
        if not _is_nan_like(self.missing_values):
            raise ValueError(
                "fit on a Dask collection reads NaN (or None) as missing; mark "
                f"missing entries as NaN instead of {self.missing_values!r}."
            )
        return super()._fit_stream(X, y, incremental=incremental)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE on incomplete X.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Training data; entries equal to ``missing_values`` are missing.
            A Dask collection is streamed, partition by partition, and
            never held in memory whole (see :doc:`/user_guide/dask`).
        y : None
            Ignored.

        Returns
        -------
        self : VAEImputer
            The fitted imputer.
        """
        self._fit(X)
        self.noise_calibration_ = self._train_state.noise_calibration
        return self

    # ------------------------------------------------------------------ impute
    def _fill(self, model, X: np.ndarray, seed: int | None) -> np.ndarray:
        """X with its missing model columns filled; ``seed`` None: the mean."""
        out = X.copy()
        cols = np.flatnonzero(self._valid_features)
        rows = np.flatnonzero(np.isnan(X[:, cols]).any(axis=1))
        if rows.size:
            generator = None
            if seed is not None:
                generator = torch.Generator(device=model.device).manual_seed(seed)
            filled = model.impute(X, generator, rows=rows)
            if self.clip:
                filled = np.clip(filled, *self._clip_range)
            block = out[np.ix_(rows, cols)]
            holes = np.isnan(block)
            block[holes] = filled[holes]
            out[np.ix_(rows, cols)] = block
        return out

    def _finish(self, X: np.ndarray, filled: np.ndarray) -> np.ndarray:
        """Drop or zero-fill empty features and append the indicator."""
        if not self._all_valid:
            if self.keep_empty_features:
                self._zero_empty(filled)
            else:
                filled = filled[:, self._valid_features]
        if self.indicator_ is not None:
            indicator = self.indicator_.transform(X).astype(filled.dtype)
            filled = np.hstack([filled, indicator])
        return filled

    def _zero_empty(self, filled: np.ndarray) -> None:
        """Fill the features that were empty at fit time with 0, in place."""
        empty = ~self._valid_features
        block = filled[:, empty]
        block[np.isnan(block)] = 0.0
        filled[:, empty] = block

    def _finish_frame(self, frame, X_in, X: np.ndarray, filled: np.ndarray):
        """DataFrame output for a model fitted on a mixed-type DataFrame.

        The fit columns and dtypes; observed cells are those of ``X_in``
        (when it is a DataFrame), untouched.
        """
        import pandas as pd

        if not self._all_valid and self.keep_empty_features:
            self._zero_empty(filled)
        index = X_in.index if is_pandas_frame(X_in) else None
        out = frame.to_frame(filled, index=index)
        if is_pandas_frame(X_in):
            out = frame.keep_observed(out, X_in, np.isnan(X) & ~np.isnan(filled))
        if not self._all_valid and not self.keep_empty_features:
            out = out.iloc[:, np.flatnonzero(self._valid_features)]
        if self.indicator_ is not None:
            names = self.indicator_.get_feature_names_out(
                getattr(self, "feature_names_in_", None)
            )
            indicator = pd.DataFrame(
                self.indicator_.transform(X), columns=names, index=out.index
            )
            out = pd.concat([out, indicator], axis=1)
        return out

    def _output(self, model, X_in, X: np.ndarray, seed: int | None):
        filled = self._fill(model, X, seed)
        if model.frame is not None and model.frame.mixed:
            return self._finish_frame(model.frame, X_in, X, filled)
        return self._finish(X, filled)

    def transform(self, X):
        """Fill the missing entries of X.

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to complete; entries equal to ``missing_values`` are missing
            (in a DataFrame, also NaN, None and ``pd.NA`` in any column).

        Returns
        -------
        X_imputed : ndarray or DataFrame of shape (n_samples, n_features_out)
            X with every missing entry filled (observed entries unchanged),
            float32 for float32 input and float64 otherwise; features empty at
            fit time are dropped unless ``keep_empty_features``; indicator
            columns are appended when ``add_indicator``. When fit on a
            DataFrame with non-numeric (categorical, string, object or bool)
            columns, a DataFrame with the fit columns and dtypes: a categorical
            hole gets the category of highest importance-weighted predictive
            probability (a draw with ``sample_posterior=True``), a numeric
            hole the conditional mean at the fit precision.

            For Dask input the result is lazy and of the same kind. A Dask
            Array gives a Dask Array chunked as X's rows (a model fit on a
            DataFrame with non-numeric columns needs a Dask DataFrame). A
            Dask DataFrame gives a Dask DataFrame on X's index with columns
            ``get_feature_names_out()``: after a fit on a DataFrame with
            non-numeric columns, X's own dtypes and categories (a
            categorical widened by any category seen in fit) and bool
            indicator columns; otherwise the float dtype of the in-memory
            result. With ``sample_posterior=True`` each row block draws
            from its own seed, derived from ``random_state`` and the
            block's position: repeatable for the same chunks, but not the
            draws of the in-memory call.
        """
        model, X_in = self._model(), X
        X, _ = self._validate_X(X, reset=False, frame=model.frame)
        seed = draw_seeds(self.random_state, 1)[0] if self.sample_posterior else None
        return self._output(model, X_in, X, seed)

    def sample_imputations(self, X, n_imputations=5, *, random_state=None):
        """Multiple imputation: independent draws of the missing entries.

        Each draw comes from p(x_mis | x_obs) by sampling-importance-resampling
        (as ``sample_posterior=True``), whatever ``sample_posterior`` is. The
        spread of the draws shows the model's uncertainty about each entry;
        analyse each completed data set and pool the results (Rubin's rules).

        Parameters
        ----------
        X : array-like, DataFrame, Dask Array or Dask DataFrame of shape \
(n_samples, n_features)
            Rows to complete.
        n_imputations : int, default=5
            Number of completed copies of X.
        random_state : int, RandomState instance or None, default=None
            Seed of the draws; None uses the estimator's ``random_state``.

        Returns
        -------
        imputations : ndarray of shape (n_imputations, n_samples, n_features_out)
            Completed copies of X, laid out as :meth:`transform`'s output (a
            list of DataFrames when :meth:`transform` returns DataFrames).
            For a Dask Array, a lazy Dask Array of that shape with chunks
            ``((n_imputations,), X's row chunks, (n_features_out,))``; for a
            Dask DataFrame, a list of ``n_imputations`` lazy Dask DataFrames
            (as :meth:`transform` gives) that share one task per partition,
            so ``dask.compute(*imputations)`` runs the model once per
            partition. Each row block draws from its own seed, derived from
            ``random_state`` and the block's position.
        """
        model, X_in = self._model(), X
        if not isinstance(n_imputations, Integral) or n_imputations < 1:
            raise ValueError(
                f"n_imputations must be a positive int, got {n_imputations!r}."
            )
        X, _ = self._validate_X(X, reset=False, frame=model.frame)
        seeds = draw_seeds(
            self.random_state if random_state is None else random_state,
            int(n_imputations),
        )
        outputs = [self._output(model, X_in, X, seed) for seed in seeds]
        if is_pandas_frame(outputs[0]):
            return outputs
        return np.stack(outputs)

    def get_feature_names_out(self, input_features=None):
        """Get the names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; defaults to ``feature_names_in_`` or
            ``["x0", "x1", ...]``.

        Returns
        -------
        feature_names_out : ndarray of str
            The kept input features, then ``missingindicator_<name>`` for each
            indicator column.
        """
        check_is_fitted(self, "n_features_in_")
        names = _check_feature_names_in(self, input_features)
        out = names if self.keep_empty_features else names[self._valid_features]
        if self.indicator_ is not None:
            out = np.concatenate([out, self.indicator_.get_feature_names_out(names)])
        return np.asarray(out, dtype=object)
