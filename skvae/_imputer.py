"""VAEImputer: missing values filled from a VAE trained on incomplete data."""

from __future__ import annotations

import math
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.impute import MissingIndicator
from sklearn.utils import gen_batches
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import _BaseVAE
from ._frame import is_pandas_frame
from ._module import VAEModule
from ._training import make_optimizer, train
from ._utils import (
    Interval,
    MissingValues,
    StrOptions,
    _check_feature_names_in,
    _fit_context,
    draw_seeds,
    make_generator,
)

#: Per-step decay of the moving average of the weights that the imputer keeps
#: (and validates): it smooths the swings of the imputation error between
#: epochs (in a tuning run on load_breast_cancer at 50% MCAR, early stopping
#: picked an epoch with RMSE 0.69 without it and 0.58 with it).
WEIGHT_AVERAGE_DECAY = 0.99
#: Tables with at least this many rows are "large": the imputer's ``"auto"``
#: settings switch to a cheaper schedule there (no refit, fewer training
#: importance samples, a larger step size, fewer validation draws). Below
#: it the hidden validation entries are a real share of the data and every
#: entry's gradient counts; on the 5,000-row diamonds table of
#: ``benchmarks/bench_impute.py`` the cheap schedule halved the fit time
#: (48 s to 23 s at 20% MCAR) at about the same error (0.426 and 0.433
#: RMSE, before the clip margin).
LARGE_TABLE_ROWS = 2000
#: Importance samples per row when scoring the hidden entries after each
#: epoch (small tables, large tables).
VALIDATION_SAMPLES = (50, 20)
#: ``clip=True`` keeps imputations within each column's observed range
#: widened by this share of its width on both sides: room for genuine
#: extremes (two hidden entries of load_breast_cancer lie 6.4 and 6.8
#: standard deviations, 1.3-1.4 widths, past the observed maximum; the model
#: imputed them 3.7 and 3.1 past it), little for a runaway extrapolation
#: (a diamonds depth imputed 24-54 standard deviations past its maximum).
CLIP_MARGIN = 0.5
#: ``n_train_samples="auto"`` and ``learning_rate="auto"`` (small, large).
AUTO_TRAIN_SAMPLES = (20, 10)
AUTO_LEARNING_RATE = (2e-3, 3e-3)
#: With ``refit=True`` the final model trains on every observed entry for this
#: multiple of the epoch count that early stopping chose with the validation
#: entries hidden (more data moves the best epoch later).
REFIT_EPOCH_FACTOR = 1.0


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


class VAEImputer(TransformerMixin, _BaseVAE):
    """Missing-value imputation with a variational autoencoder (MIWAE).

    The VAE is trained on the incomplete data with the importance-weighted
    bound over the observed entries only (MIWAE, Mattei & Frellsen 2019): a
    missing entry never enters the loss, and the encoder is told which
    entries are missing. To fill a row, ``n_importance_samples`` latent codes
    are drawn from q(z | x_obs) and weighted by
    ``p(x_obs | z) p(z) / q(z | x_obs)``; the imputation is the weighted mean
    of the decoder means (the importance-weighted estimate of
    E[x_mis | x_obs]). With ``sample_posterior=True`` it is instead a draw from
    p(x_mis | x_obs), by sampling-importance-resampling from the same weights,
    so that :meth:`sample_imputations` (or transforms with different seeds)
    give multiple imputations whose spread reflects the uncertainty.

    Observed entries come back unchanged, bit for bit. Numeric columns are
    standardized inside the estimator; imputations are in the original units.
    A pandas DataFrame may mix numeric, categorical, string and bool columns;
    NaN, None and ``pd.NA`` are missing in all of them.

    Parameters
    ----------
    n_components : int, default=8
        Dimension of the latent space.
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
        each side. The decoder extrapolates linearly from a row with an
        extreme observed value: on the diamonds table of
        ``benchmarks/bench_impute.py`` (20% MCAR, seed 2) a row whose height
        is 36 standard deviations out (a data-entry error) got a depth of 31
        standard deviations (true value 0), one entry with most of the
        squared error (RMSE 0.558; 0.452 with the clip). The margin leaves
        room for genuine extremes: on ``load_breast_cancer`` two hidden
        entries lie 6 standard deviations past the observed maximum, and a
        clip to the bare range raised the RMSE from 0.461 to 0.482 (0.465
        with the margin). False keeps the model's values.
    n_train_samples : int or "auto", default="auto"
        Importance samples per row in the training bound. 1 trains on the
        ordinary ELBO; K > 1 on the tighter MIWAE bound, which costs about
        K times the decoder work per epoch. ``"auto"``: 20, or 10 on tables
        of 2,000 rows or more (on the 5,000-row diamonds table 10 halved the
        time per epoch at no loss of accuracy; on the small tables of
        ``benchmarks/bench_impute.py`` 20 was 1-3% more accurate).
    refit : bool or "auto", default="auto"
        With ``early_stopping=True``: after early stopping has chosen the
        epoch count (with the validation entries hidden), train the final
        model again from its initial weights on every observed entry for
        that many epochs. This about doubles the fit time and lowers the
        imputation error on small tables: on ``load_wine`` at 20% MCAR from
        0.691 to 0.666, on ``load_breast_cancer`` at 20% from 0.465 to 0.444
        (standardized RMSE, one seed). False keeps the early-stopped model.
        ``"auto"``: refit when X has fewer than 2,000 rows. On larger tables
        the hidden entries are a small loss of data; on the 5,000-row
        diamonds table of ``benchmarks/bench_impute.py`` the refit doubled
        the fit time without lowering the error.

        On tables of 2,000 rows or more, early stopping also scores the
        hidden entries with 20 importance samples instead of 50.
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Widths of the encoder's hidden layers; the decoder mirrors them.
    activation : str, default="relu"
        Hidden-layer activation (see :class:`~skvae.VAETransformer`).
    likelihood : {"auto", "gaussian", "bernoulli"} or dict, default="auto"
        Observation model per column (see :class:`~skvae.VAETransformer`).
        A numeric Bernoulli column is imputed with its probability (the
        conditional mean), or with a 0/1 draw when ``sample_posterior=True``.
        In a DataFrame, a categorical (or bool, or two-valued label) hole gets
        the category that maximizes the importance-weighted predictive
        ``sum_k w_k p(category | z_k)`` (a draw from it when
        ``sample_posterior=True``), and ``transform`` returns a DataFrame with
        the fit dtypes when X has label columns.
    handle_unknown : {"error", "missing"}, default="error"
        What a category not seen in fit does: raise a ``ValueError``, or
        count as a missing entry (and be imputed).
    beta : float, default=1.0
        Weight of the KL term.
    kl_warmup : int, default=20
        Epochs of linear KL warm-up (early stopping waits for its end).
        Without it, the imputation error of the hidden validation entries
        often stalls for dozens of epochs before the model uses more latent
        components, and early stopping ends the fit on that plateau: in
        ``benchmarks/bench_impute.py`` 20 warm-up epochs lowered the RMSE on
        ``load_breast_cancer`` from 0.498 to 0.482 (20% MCAR) and from 0.558
        to 0.537 (50%), mean of 3 seeds.
    max_iter : int, default=500
        Maximum number of epochs.
    batch_size : int or "auto", default="auto"
        Minibatch size. ``"auto"``: about 10 minibatches per epoch, at least
        64 and at most 512 rows each (64 up to 640 rows).
    learning_rate : float or "auto", default="auto"
        Adam step size; ``"auto"``: 2e-3, or 3e-3 on tables of 2,000 rows or
        more, which train on larger minibatches (``batch_size="auto"``).
        The weights used for imputation are an exponential
        moving average of the iterates (decay 0.99 per step), which evens out
        the epoch-to-epoch swings of the imputation error.
    early_stopping : bool, default=True
        Hide ``validation_fraction`` of the *observed entries* from training,
        score the imputation of those entries after every epoch (root mean
        squared error in standardized units), stop after ``n_iter_no_change``
        epochs without an improvement of more than ``tol`` and restore the
        best epoch (or, with ``refit=True``, retrain on every entry for that
        many epochs). This picks the training length without ground truth; the
        imputation error of a VAE can swing a lot from epoch to epoch.
    validation_fraction : float, default=0.1
        Share of the observed entries hidden for early stopping.
    n_iter_no_change : int, default=30
        Patience, in epochs.
    tol : float, default=1e-4
        Minimum improvement of the validation score (or training loss).
    n_importance_samples : int, default=500
        Number K of latent draws per row for imputation (and for each draw of
        multiple imputation) and ``score_samples``. More draws sharpen the
        importance-weighted estimates: on ``load_breast_cancer`` at 50% MCAR
        the imputation RMSE was 0.568 with 50 draws and 0.560 with 500.
        Early stopping's per-epoch validation uses at most 50.
    min_variance : float, default=1e-3
        Floor of the Gaussian variances, in standardized units (data units
        with ``standardize=False``).
    gaussian_variance : {"feature", "decoder"}, default="feature"
        Variance of the Gaussian columns. ``"feature"``: one learned variance
        per column, shared by every row (a homoscedastic decoder, the classic
        VAE). ``"decoder"``: the decoder outputs a variance for each column
        next to its mean, so the noise level follows the latent code (a
        pixel that is blank for some digits and inked for others gets a small
        variance where it is predictably blank). This raises held-out
        log-likelihoods on images (``benchmarks/bench_density.py``) at the
        cost of twice the Gaussian decoder outputs; the variance floor is
        ``min_variance`` either way.
    variance_update : {"closed_form", "gradient"}, default="closed_form"
        How the ``"feature"`` variances are learned (see
        :class:`~skvae.VAETransformer`). In ``benchmarks/bench_impute.py``
        (at commit 6f59814, before the clipping, warm-up and large-table
        defaults) the closed-form update gave the best mean RMSE rank of all methods
        (1.79 against 1.92 for the ExtraTrees imputer; 2nd with
        ``"gradient"``) and lower RMSE on 6 of the 8 dataset x rate cells
        (diabetes 50%: 0.821 against 0.849; breast cancer 20%: 0.497 against
        0.458) in less time (diamonds: 172 / 64 s against 233 / 110 s at
        20 / 50% missing). Its variances are fitted to entries the network
        was trained on, so with early stopping they are then scaled by
        ``noise_calibration_``, measured on the hidden validation entries
        (90% coverage of the draws on wine 0.84 / 0.84 at 20 / 50% missing
        with the scaling, 0.80 / 0.80 without it).
    standardize : bool, default=True
        Whether the Gaussian columns are centered and scaled to unit variance
        inside the model (log-likelihoods are still reported in the original
        units). Set it to False when the columns share one unit and their
        spreads matter, e.g. pixels: ``min_variance`` is then a floor in data
        units, like ``reg_covar`` of :class:`~sklearn.mixture.GaussianMixture`,
        so a pixel that is blank in every training image does not get a
        vanishing variance.
    device : str or torch.device, default="auto"
        Torch device (see :class:`~skvae.VAETransformer`).
    random_state : int, RandomState instance or None, default=None
        Seeds training, and the draws of ``sample_posterior=True``. With an
        int, ``fit`` and ``transform`` are reproducible on CPU; to get several
        imputations, change it between transforms or call
        :meth:`sample_imputations`.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar over epochs.

    Attributes
    ----------
    indicator_ : MissingIndicator or None
        The fitted indicator when ``add_indicator=True``.
    module_, schema_, n_iter_, loss_curve_, best_loss_, kl_per_component_, \
n_active_components_, n_features_in_, feature_names_in_
        As in :class:`~skvae.VAETransformer`; the model covers the features
        that had at least one observed value at fit time. ``loss_curve_`` is
        the negative MIWAE bound per row; with ``refit=True``, ``n_iter_`` and
        ``loss_curve_`` describe the refit model.
    validation_scores_ : list of float or None
        Negative RMSE of the hidden observed entries per epoch (higher is
        better), when ``early_stopping=True``.
    best_validation_score_ : float or None
        Its best value; the fitted weights are from that epoch (with
        ``refit=False``), or were trained for that many epochs on every entry
        (``refit=True``).
    noise_calibration_ : float
        Factor (at least 1) applied to the fitted column variances. With
        ``variance_update="closed_form"`` and early stopping, the variances
        are fitted to entries the network was trained on and understate the
        error on unseen ones; on the entries that early stopping hides, the
        squared imputation error is matched to the predictive variance (the
        spread over the posterior draws plus the column variance) and the
        variances are scaled by the factor that makes them agree. 1.0
        otherwise.

    See Also
    --------
    sklearn.impute.IterativeImputer : Round-robin regression imputation.
    sklearn.impute.KNNImputer : Nearest-neighbour imputation.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEImputer
    >>> rng = np.random.RandomState(0)
    >>> z = rng.normal(size=(200, 1))
    >>> X = np.hstack([z, 2 * z, -z]) + 0.1 * rng.normal(size=(200, 3))
    >>> X[::5, 1] = np.nan
    >>> imp = VAEImputer(n_components=2, max_iter=50, random_state=0).fit(X)
    >>> np.isnan(imp.transform(X)).any()
    np.False_
    """

    _always_mask_channel = True

    _parameter_constraints: dict = {
        **_BaseVAE._parameter_constraints,
        "missing_values": [MissingValues()],
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "sample_posterior": ["boolean"],
        "n_train_samples": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "refit": ["boolean", StrOptions({"auto"})],
        "learning_rate": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
        ],
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
        n_train_samples="auto",
        refit="auto",
        hidden_layer_sizes=(64, 64),
        activation="relu",
        likelihood="auto",
        handle_unknown="error",
        beta=1.0,
        kl_warmup=20,
        max_iter=500,
        batch_size="auto",
        learning_rate="auto",
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=30,
        tol=1e-4,
        n_importance_samples=500,
        min_variance=1e-3,
        gaussian_variance="feature",
        variance_update="closed_form",
        standardize=True,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            n_components,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            likelihood=likelihood,
            handle_unknown=handle_unknown,
            beta=beta,
            kl_warmup=kl_warmup,
            max_iter=max_iter,
            batch_size=batch_size,
            learning_rate=learning_rate,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            n_importance_samples=n_importance_samples,
            min_variance=min_variance,
            gaussian_variance=gaussian_variance,
            variance_update=variance_update,
            standardize=standardize,
            device=device,
            random_state=random_state,
            verbose=verbose,
        )
        self.missing_values = missing_values
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.sample_posterior = sample_posterior
        self.clip = clip
        self.n_train_samples = n_train_samples
        self.refit = refit

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = _is_nan_like(self.missing_values)
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ------------------------------------------------------------------ input
    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        """Float array (float32 kept, else float64) with NaN at every missing entry.

        In a DataFrame, NaN, None and ``pd.NA`` are always missing, and so
        are the cells equal to ``missing_values``.
        """
        if is_pandas_frame(X) and not _is_nan_like(self.missing_values):
            X = X.mask(X == self.missing_values)
        return super()._validate_X(X, reset=reset)

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

    def _learn_columns(self, X: np.ndarray) -> None:
        observed = ~np.isnan(X)
        self._valid_features = observed.any(0)
        if not self._valid_features.any():
            raise ValueError(
                "Every feature of X is entirely missing; VAEImputer needs "
                "observed values to learn from."
            )
        self._all_valid = bool(self._valid_features.all())
        kept = X[:, self._valid_features]
        low, high = np.nanmin(kept, axis=0), np.nanmax(kept, axis=0)
        margin = CLIP_MARGIN * (high - low)
        self._clip_range = (low - margin, high + margin)
        if self.add_indicator:
            self.indicator_ = MissingIndicator(
                missing_values=np.nan, error_on_new=False
            ).fit(X)
        else:
            self.indicator_ = None

    def _model_input(self, X: np.ndarray) -> np.ndarray:
        return X if self._all_valid else X[:, self._valid_features]

    def _model_feature_names(self):
        names = getattr(self, "feature_names_in_", None)
        if names is None or self._all_valid:
            return names
        return names[self._valid_features]

    def _model_columns(self) -> np.ndarray:
        return np.flatnonzero(self._valid_features)

    def _large(self, n_rows: int) -> int:
        """0 for a small table, 1 for a large one (indexes the auto settings)."""
        return int(n_rows >= LARGE_TABLE_ROWS)

    def _train_samples(self, n_train: int) -> int:
        if self.n_train_samples == "auto":
            return AUTO_TRAIN_SAMPLES[self._large(n_train)]
        return int(self.n_train_samples)

    def _learning_rate(self, n_train: int) -> float:
        if self.learning_rate == "auto":
            return AUTO_LEARNING_RATE[self._large(n_train)]
        return float(self.learning_rate)

    def _average_decay(self) -> float:
        return WEIGHT_AVERAGE_DECAY

    # ------------------------------------------------------------------ fit
    def _validation_split(self, x, mask, generator):
        """Hide a share of the observed entries and score their imputation.

        The score is minus the root mean squared error over the hidden
        entries, in encoded units; for a categorical entry the squared error
        is the Brier score of its probability vector (summed over the
        categories).
        """
        n, p = x.shape[0], self.schema_.n_features
        if mask is None:
            mask = x.new_ones((n, p))
        observed = torch.nonzero(mask.reshape(-1), as_tuple=True)[0]
        n_val = int(round(self.validation_fraction * observed.numel()))
        if n_val < 1 or n_val >= observed.numel():
            raise ValueError(
                "early_stopping hides validation_fraction of the observed "
                f"entries; with {observed.numel()} observed entries and "
                f"validation_fraction={self.validation_fraction} that leaves no "
                "validation or no training entry. Pass more data or set "
                "early_stopping=False."
            )
        pick = torch.randperm(observed.numel(), generator=generator, device=x.device)
        hidden = observed[pick[:n_val]].sort().values
        fill = torch.as_tensor(self.schema_.fill, dtype=x.dtype, device=x.device)
        x = x.clone(memory_format=torch.contiguous_format)
        mask = mask.clone(memory_format=torch.contiguous_format)
        hidden_rows = torch.unique_consecutive(hidden // p)
        mask.view(-1)[hidden] = 0.0
        w = x.shape[1]
        if w != p:
            # One-hot columns: hide every column of each hidden variable.
            var = torch.as_tensor(self.schema_.variable_of_column, device=x.device)
            hid = torch.zeros(n * p, dtype=torch.bool, device=x.device)
            hid[hidden] = True
            hidden = torch.nonzero(hid.view(n, p)[:, var].reshape(-1))[:, 0]
        truth = x.reshape(-1)[hidden].clone()
        x.view(-1)[hidden] = fill[hidden % w]
        x_val, mask_val = x[hidden_rows], mask[hidden_rows]
        # Position of each hidden entry in the flattened (x_val) block.
        where = torch.searchsorted(hidden_rows, hidden // w) * w + hidden % w
        n_draws = VALIDATION_SAMPLES[self._large(n)]
        eps = self._score_noise()[:n_draws].to(x.device)
        chunk = self._importance_chunk()

        @torch.no_grad()
        def validate(module: VAEModule) -> float:
            filled = torch.cat(
                [
                    module.impute(x_val[sl], mask_val[sl], eps)
                    for sl in gen_batches(x_val.shape[0], chunk)
                ]
            )
            err = filled.reshape(-1)[where] - truth
            return -float((err.square().sum() / n_val).sqrt())

        @torch.no_grad()
        def noise_calibration(module: VAEModule) -> float:
            """Variance factor that makes the held-out errors fit (>= 1).

            Over the hidden entries of shared-variance Gaussian columns, the
            squared error of the imputation should match the predictive
            variance: the spread of E[x | z_k] plus the column variance.
            The factor on the column variances that makes the sums agree.
            """
            columns, variances = module.shared_variance_columns()
            lookup = torch.full((w,), -1, dtype=torch.long, device=x.device)
            lookup[columns] = torch.arange(columns.numel(), device=x.device)
            pick = lookup[where % w]
            keep = pick >= 0
            if not bool(keep.any()):
                return 1.0
            parts = [
                module.impute_spread(x_val[sl], mask_val[sl], eps)
                for sl in gen_batches(x_val.shape[0], chunk)
            ]
            mean = torch.cat([m for m, _ in parts]).reshape(-1)[where][keep]
            spread = torch.cat([v for _, v in parts]).reshape(-1)[where][keep]
            sq = (mean - truth[keep]).square().sum()
            noise = variances[pick[keep]].sum()
            return max(1.0, float((sq - spread.sum()) / noise))

        self._noise_calibration = noise_calibration
        return x, mask, None, validate

    def _fit_epochs(self, x, mask, device, condition=None) -> None:
        """Select the epoch count by early stopping, then refit on every entry."""
        self._noise_calibration = None
        super()._fit_epochs(x, mask, device)
        calibrate = self._noise_calibration
        self._noise_calibration = None
        self.noise_calibration_ = 1.0
        if calibrate is not None and self.variance_update == "closed_form":
            self.noise_calibration_ = calibrate(self.module_)
        if self.early_stopping and self._refits(x.shape[0]):
            self._refit(x, mask, device)
        if self.noise_calibration_ != 1.0:
            self.module_.scale_feature_variances(self.noise_calibration_)

    def _refits(self, n_rows: int) -> bool:
        """Whether to retrain on every entry after early stopping."""
        if self.refit == "auto":
            return not self._large(n_rows)
        return bool(self.refit)

    def _refit(self, x, mask, device) -> None:
        """Train a fresh module on every entry for the chosen epoch count."""
        best_epoch = int(np.argmax(self.validation_scores_)) + 1
        n_epochs = max(1, math.ceil(REFIT_EPOCH_FACTOR * best_epoch))
        self._initialize_module(has_missing=True)
        self.module_.to(device)
        config = replace(
            self._config(x.shape[0]),
            max_iter=n_epochs,
            n_iter_no_change=n_epochs,
        )
        result = train(
            self.module_,
            make_optimizer(self.module_, self._learning_rate(x.shape[0])),
            x,
            mask,
            config,
            generator=make_generator(self._train_seed + 1, device),
        )
        self.n_iter_ = result.n_iter
        self.loss_curve_ = result.loss_curve
        self.best_loss_ = result.best_loss

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE on incomplete X.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training data; entries equal to ``missing_values`` are missing.
        y : None
            Ignored.

        Returns
        -------
        self : VAEImputer
            The fitted imputer.
        """
        return self._fit(X, incremental=False)

    # ------------------------------------------------------------------ impute
    def _fill(self, X: np.ndarray, seed: int | None) -> np.ndarray:
        """X with its missing model columns filled; ``seed`` None: the mean."""
        out = X.copy()
        Xm = self._model_input(X)
        rows = np.flatnonzero(np.isnan(Xm).any(axis=1))
        if rows.size:
            device = self._inference_device()
            x, mask = self.schema_.encode(Xm[rows], device)
            values = self._impute_tensor(x, mask, seed)
            filled = self.schema_.decode(values)
            if self.clip:
                filled = np.clip(filled, *self._clip_range)
            cols = np.flatnonzero(self._valid_features)
            block = out[np.ix_(rows, cols)]
            holes = np.isnan(block)
            block[holes] = filled[holes]
            out[np.ix_(rows, cols)] = block
        return out

    def _impute_tensor(self, x, mask, seed: int | None) -> torch.Tensor:
        """Imputed values for every column, in block order (encoded units)."""
        chunk = self._importance_chunk()
        K, d = self.n_importance_samples, self.n_components
        with torch.inference_mode(), self._module_on(x.device) as module:
            if seed is None:
                eps = self._score_noise().to(x.device)
                parts = [
                    module.impute(x[sl], mask[sl], eps)
                    for sl in gen_batches(x.shape[0], chunk)
                ]
            else:
                gen = make_generator(seed, x.device)
                parts = []
                for sl in gen_batches(x.shape[0], chunk):
                    n = sl.stop - sl.start
                    eps = torch.randn(K, n, d, generator=gen, device=x.device)
                    parts.append(module.sample_missing(x[sl], mask[sl], eps, gen))
        return torch.cat(parts)

    def _finish(self, X: np.ndarray, filled: np.ndarray) -> np.ndarray:
        """Drop or zero-fill empty features and append the indicator."""
        if not self._all_valid:
            if self.keep_empty_features:
                empty = ~self._valid_features
                block = filled[:, empty]
                block[np.isnan(block)] = 0.0
                filled[:, empty] = block
            else:
                filled = filled[:, self._valid_features]
        if self.indicator_ is not None:
            indicator = self.indicator_.transform(X).astype(filled.dtype)
            filled = np.hstack([filled, indicator])
        return filled

    def _finish_frame(self, X_in, X: np.ndarray, filled: np.ndarray):
        """DataFrame output for a model fitted on a mixed-type DataFrame.

        The fit columns and dtypes; observed cells are those of ``X_in``
        (when it is a DataFrame), untouched.
        """
        import pandas as pd

        frame = self._frame
        if not self._all_valid and self.keep_empty_features:
            empty = ~self._valid_features
            block = filled[:, empty]
            block[np.isnan(block)] = 0.0
            filled[:, empty] = block
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

    def _output(self, X_in, X: np.ndarray, seed: int | None):
        filled = self._fill(X, seed)
        frame = getattr(self, "_frame", None)
        if frame is not None and frame.mixed:
            return self._finish_frame(X_in, X, filled)
        return self._finish(X, filled)

    def transform(self, X):
        """Fill the missing entries of X.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
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
        """
        check_is_fitted(self)
        X_in = X
        X = self._validate_X(X, reset=False)
        seed = draw_seeds(self.random_state, 1)[0] if self.sample_posterior else None
        return self._output(X_in, X, seed)

    def sample_imputations(self, X, n_imputations=5, *, random_state=None):
        """Multiple imputation: independent draws of the missing entries.

        Each draw comes from p(x_mis | x_obs) by sampling-importance-resampling
        (as ``sample_posterior=True``), whatever ``sample_posterior`` is. The
        spread of the draws shows the model's uncertainty about each entry;
        analyse each completed data set and pool the results (Rubin's rules).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
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
        """
        check_is_fitted(self)
        if not isinstance(n_imputations, Integral) or n_imputations < 1:
            raise ValueError(
                f"n_imputations must be a positive int, got {n_imputations!r}."
            )
        X_in = X
        X = self._validate_X(X, reset=False)
        seeds = draw_seeds(
            self.random_state if random_state is None else random_state,
            int(n_imputations),
        )
        outputs = [self._output(X_in, X, seed) for seed in seeds]
        if is_pandas_frame(outputs[0]):
            return outputs
        return np.stack(outputs)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

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
