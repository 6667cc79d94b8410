"""The numpy <-> tensor boundary: column kinds, standardization, missingness.

:class:`TabularSchema` is fitted once on the training data. It decides which
likelihood models each column, reorders columns so that each kind forms one
contiguous block, standardizes Gaussian columns (after a log for "lognormal"
ones), expands categorical columns (integer codes) to one-hot columns, and
turns NaN into a mask with one column per original column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._chunks import chunks, rows_per_chunk

#: Likelihood blocks, in the order of the encoded columns.
KINDS = ("gaussian", "bernoulli", "categorical")
#: Column kinds: "lognormal" columns join the Gaussian block after a log,
#: "quantile" columns after a map to normal scores (:class:`QuantileMap`).
COLUMN_KINDS = ("gaussian", "lognormal", "quantile", "bernoulli", "categorical")
_BLOCK = {
    "gaussian": 0,
    "lognormal": 0,
    "quantile": 0,
    "bernoulli": 1,
    "categorical": 2,
}
#: Largest number of quantiles a "quantile" column keeps.
N_QUANTILES = 1000
#: Normal scores are clipped to the quantile levels [eps, 1 - eps].
_QUANTILE_EPS = 1e-7
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Encoded values are clipped to +-this many standard deviations: enough for
#: any genuine outlier, small enough that no network layer overflows float32.
STANDARD_LIMIT = 1e4
_TOO_LARGE = (
    "X contains infinity or a value too large for float32 (about 3.4e38); "
    "remove or rescale it."
)


class ColumnStats:
    """Per-column statistics of X, ignoring NaN, in O(chunk) extra memory.

    Two passes over row chunks (mean, then squared deviations), so no
    full-size float64 copy of X is ever made. With ``divisor``, they are the
    statistics of ``X / divisor`` (each chunk divided in float64).

    Attributes
    ----------
    count, mean, std : ndarray of shape (n_features,)
        Over the observed entries; 0 for an all-missing column.
    min, max : ndarray of shape (n_features,)
        NaN for an all-missing column.
    """

    def __init__(self, X: np.ndarray, divisor: float = 1.0) -> None:
        p = X.shape[1]
        count = np.zeros(p)
        total = np.zeros(p)
        lo = np.full(p, np.nan)
        hi = np.full(p, np.nan)
        complete = True
        for chunk in _row_chunks(X, divisor):
            sums = chunk.sum(0)
            if np.isnan(sums).any():  # some entry is missing (or inf - inf)
                complete = False
                observed = ~np.isnan(chunk)
                count += observed.sum(0)
                sums = np.where(observed, chunk, 0.0).sum(0)
            else:
                count += chunk.shape[0]
            total += sums
            lo = np.fmin(lo, np.fmin.reduce(chunk, axis=0))
            hi = np.fmax(hi, np.fmax.reduce(chunk, axis=0))
        if np.any(np.abs(np.concatenate([lo, hi])) > _FLOAT32_MAX):
            raise ValueError(_TOO_LARGE)
        mean = np.divide(total, count, out=np.zeros(p), where=count > 0)
        squares = np.zeros(p)
        for chunk in _row_chunks(X, divisor):
            dev = chunk - mean
            if not complete:
                dev[np.isnan(dev)] = 0.0
            squares += np.einsum("ij,ij->j", dev, dev)
        self.std = np.sqrt(np.divide(squares, count, out=np.zeros(p), where=count > 0))
        self.count, self.mean, self.min, self.max = count, mean, lo, hi


@dataclass
class ColumnFacts:
    """Per column: observed entries, range, and whether any entry is missing.

    ``low`` and ``high`` are NaN for a column with no observed value.
    """

    count: np.ndarray
    low: np.ndarray
    high: np.ndarray
    any_missing: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray) -> ColumnFacts:
        """The facts of a float matrix (NaN = missing)."""
        stats = ColumnStats(X)
        return cls(stats.count, stats.min, stats.max, stats.count < X.shape[0])


def _row_chunks(X: np.ndarray, divisor: float = 1.0):
    # A float64 copy of the chunk and about three temporaries of its size.
    for sl in chunks(X.shape[0], rows_per_chunk(X.shape[1], live=8)):
        chunk = X[sl].astype(np.float64, copy=False)
        yield chunk if divisor == 1.0 else chunk / divisor


def resolve_kinds(
    n_features: int,
    likelihood: str | Mapping,
    feature_names: Sequence[str] | None,
) -> list[str]:
    """Likelihood kind of each numeric column.

    ``"auto"`` gives every numeric column a Gaussian: a column is never made
    Bernoulli by the values it happened to take in fit, so any finite value
    is valid later (label columns are decided by their DataFrame dtype,
    before this). A mapping assigns kinds (:data:`COLUMN_KINDS` or
    ``"auto"``) by column name (or integer position); unlisted columns get
    ``"auto"``.
    """
    kinds: list[str | None] = [None] * n_features
    if isinstance(likelihood, str):
        if likelihood != "auto":
            kinds = [likelihood] * n_features
    else:
        names = list(feature_names) if feature_names is not None else None
        for key, kind in likelihood.items():
            if names is not None and key in names:
                j = names.index(key)
            elif isinstance(key, (int, np.integer)) and 0 <= key < n_features:
                j = int(key)
            else:
                raise ValueError(f"likelihood names an unknown column {key!r}.")
            if kind not in COLUMN_KINDS and kind != "auto":
                raise ValueError(
                    f"likelihood[{key!r}] must be one of "
                    f"{COLUMN_KINDS + ('auto',)}, got {kind!r}."
                )
            kinds[j] = None if kind == "auto" else kind
    return [k if k is not None else "gaussian" for k in kinds]


#: ``standardize="auto"``: numeric columns share one unit (pixels) when at
#: least half of the non-constant ones have at least this share of their
#: observed values at the matrix's overall minimum or maximum (background
#: and saturated ink), which a table of different quantities does not have
#: (a narrow min-max scaled table may: see :data:`ONE_UNIT_MIN_COLUMNS`).
ONE_UNIT_EXTREME_SHARE = 0.1
#: Values this share of the overall range from its minimum or maximum count
#: as at it (so dequantized or slightly blurred blank pixels count too).
ONE_UNIT_EDGE = 0.05
#: Fewest columns of a matrix read as pixels; narrower matrices are tables,
#: whatever their values.
ONE_UNIT_MIN_COLUMNS = 36
#: Image-like matrices, standardized: no column's scale below this share of
#: the median scale of the varying columns.
SCALE_FLOOR = 0.1


def shares_one_unit(X: np.ndarray, stats: ColumnStats, columns: np.ndarray) -> bool:
    """Whether the columns of ``X`` (at ``columns`` of ``stats``) share one unit.

    True for image-like matrices: most columns span at least half the
    overall range and are often at (within :data:`ONE_UNIT_EDGE` of the
    overall range from) the overall minimum or maximum (see
    :data:`ONE_UNIT_EXTREME_SHARE`), as pixels are, also dequantized ones (a
    grey level plus uniform noise). Matrices of fewer than
    :data:`ONE_UNIT_MIN_COLUMNS` columns are tables.
    """
    if X.shape[1] < ONE_UNIT_MIN_COLUMNS:
        return False
    lo, hi = stats.min[columns], stats.max[columns]
    if np.isnan(lo).all():
        return False
    low, high = np.nanmin(lo), np.nanmax(hi)
    varying = np.flatnonzero(hi > lo)
    if high <= low or varying.size < 2:
        return False
    edge = ONE_UNIT_EDGE * (high - low)
    extreme = np.zeros(X.shape[1])
    for chunk in _row_chunks(X):
        extreme += ((chunk <= low + edge) | (chunk >= high - edge)).sum(0)
    share = extreme[varying] / np.maximum(stats.count[columns][varying], 1)
    # Pixels also span most of the overall range (a table's small-valued
    # columns would otherwise sit "at" its minimum).
    wide = (hi - lo)[varying] >= 0.5 * (high - low)
    often = share >= ONE_UNIT_EXTREME_SHARE
    return bool(np.mean(often & wide) >= 0.5)


class QuantileMap:
    """Monotone piecewise-linear map of one column to normal scores.

    Fitted on the observed values: ``n`` quantiles ``v_k`` at levels ``p_k``
    evenly spaced in [0, 1]. Going in, each distinct value ``u_j`` maps to
    the normal score of the middle of its levels (a value repeated in many
    rows, an atom, takes the middle of its stretch), linearly in between and
    extended linearly beyond the fitted range, so the map is invertible with
    a finite positive slope and a Gaussian on the scores is a proper density
    on the column. Coming out, a score ``s`` maps to the quantile function at
    ``Phi(s)``: every score in an atom's stretch gives exactly that value, so
    draws keep the column's repeated values, and stay within the fitted
    range. The two directions are exact inverses at the knots (every value,
    when at most ``n_quantiles`` were observed) and close in between.
    """

    def __init__(self, values: np.ndarray, n_quantiles: int = N_QUANTILES) -> None:
        from scipy.special import ndtri

        values = np.sort(values[~np.isnan(values)].astype(np.float64))
        n = int(min(n_quantiles, values.size))
        self.levels = np.linspace(0.0, 1.0, max(n, 2))
        self.quantiles = np.quantile(values, self.levels)
        self.knots, first = np.unique(self.quantiles, return_index=True)
        last = np.r_[first[1:], self.quantiles.size] - 1
        middle = 0.5 * (self.levels[first] + self.levels[last])
        self.scores = ndtri(np.clip(middle, _QUANTILE_EPS, 1 - _QUANTILE_EPS))
        if self.knots.size == 1:  # a constant column: the identity around it
            self.knots = np.r_[self.knots, self.knots + 1.0]
            self.scores = np.array([0.0, 1.0])
        #: Slope d score / d value of each segment, shape (n_knots - 1,).
        self.slopes = np.diff(self.scores) / np.diff(self.knots)

    def _segment(self, values: np.ndarray, points: np.ndarray) -> np.ndarray:
        index = np.searchsorted(points, values, side="right") - 1
        return np.clip(index, 0, self.slopes.size - 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Normal scores of values (NaN stays NaN)."""
        j = self._segment(x, self.knots)
        return self.scores[j] + (x - self.knots[j]) * self.slopes[j]

    def log_slope(self, scores: np.ndarray) -> np.ndarray:
        """Log d score / d value at the given scores."""
        return np.log(self.slopes[self._segment(scores, self.scores)])

    def inverse(self, scores: np.ndarray) -> np.ndarray:
        """Values for scores, through the quantile function."""
        from scipy.special import ndtr

        # The levels clipped as in forward, so the end knots invert exactly.
        levels = np.clip(self.levels, _QUANTILE_EPS, 1 - _QUANTILE_EPS)
        return np.interp(ndtr(scores), levels, self.quantiles)


class TabularSchema:
    """Fitted description of the columns of the training data.

    Parameters
    ----------
    kinds : list of str
        Likelihood kind of each original column (:data:`COLUMN_KINDS`).
    mean, scale : ndarray of shape (n_gaussian,)
        Standardization of the Gaussian block (of the log of "lognormal"
        columns), in block order.
    fill : ndarray of shape (n_encoded,)
        Value in encoded space that stands in for a missing entry (the column
        mean; the category frequencies of a categorical column), in block
        order.
    n_categories : sequence of int, default=()
        Number of categories of each categorical column, in block order.
        Categorical columns hold integer codes in ``[0, n_categories)``.
    quantile_maps : mapping of int to QuantileMap, optional
        The map of each "quantile" column, by original position.
    pre_scale : float, default=1.0
        Divisor of the Gaussian columns, applied in float64 before ``mean``
        and ``scale``, which are in its units.
    """

    #: Whether the Gaussian columns kept one common unit (not standardized
    #: per column), and whether they look like one (:func:`shares_one_unit`).
    common_scale = False
    image_like = False
    #: Whether the columns are pixels of one unit whatever their likelihood:
    #: ``image_like``, or every column Gaussian or Bernoulli (some Bernoulli)
    #: and the matrix passing :func:`shares_one_unit`.
    pixels = False
    #: Overall range (maximum minus minimum) of the Gaussian columns, in
    #: data units, when they look like one unit (None otherwise).
    value_range = None
    #: Divisor applied to the Gaussian columns before the rest (1: none).
    pre_scale = 1.0

    def __init__(
        self,
        kinds: list[str],
        mean: np.ndarray,
        scale: np.ndarray,
        fill: np.ndarray,
        n_categories: Sequence[int] = (),
        quantile_maps: Mapping[int, QuantileMap] | None = None,
        pre_scale: float = 1.0,
    ) -> None:
        self.kinds = list(kinds)
        block = np.array([_BLOCK[k] for k in kinds], dtype=np.intp)
        self.order = np.concatenate(
            [np.flatnonzero(block == b) for b in range(len(KINDS))]
        ).astype(np.intp)
        self.inverse_order = np.argsort(self.order)
        self.identity_order = bool(np.all(self.order == np.arange(len(kinds))))
        self.block_sizes = [int(np.sum(block == b)) for b in range(len(KINDS))]
        self.n_categories = tuple(int(k) for k in n_categories)
        if len(self.n_categories) != self.block_sizes[2]:
            raise ValueError("n_categories needs one entry per categorical column.")
        self.mean = mean
        self.scale = scale
        self.fill = fill
        self.pre_scale = float(pre_scale)
        self.log_scale = np.log(scale) + math.log(self.pre_scale)
        n_gauss, n_bern, n_cat = self.block_sizes
        n_gb = n_gauss + n_bern
        #: Width of the encoded data (one-hot columns for categoricals).
        self.n_encoded = n_gb + sum(self.n_categories)
        #: Variable (block-order column) of each encoded column.
        self.variable_of_column = np.concatenate(
            [
                np.arange(n_gb),
                np.repeat(np.arange(n_gb, n_gb + n_cat), self.n_categories),
            ]
        ).astype(np.intp)
        gauss_cols = self.order[:n_gauss]
        #: Positions, within the Gaussian block, of the "lognormal" columns.
        self.log_positions = np.flatnonzero(
            np.asarray(self.kinds, dtype=object)[gauss_cols] == "lognormal"
        ).astype(np.intp)
        self._log_columns = gauss_cols[self.log_positions]
        #: Positions, within the Gaussian block, of the "quantile" columns,
        #: and their maps (in that order).
        self.quantile_positions = np.flatnonzero(
            np.asarray(self.kinds, dtype=object)[gauss_cols] == "quantile"
        ).astype(np.intp)
        self._quantile_columns = gauss_cols[self.quantile_positions]
        quantile_maps = dict(quantile_maps or {})
        self.quantile_maps = [quantile_maps[int(j)] for j in self._quantile_columns]
        # encode() computes (x - center) * inv_scale over all columns, in the
        # original column order (Bernoulli and categorical columns pass
        # through unchanged).
        inv = np.ones(len(kinds))
        center = np.zeros(len(kinds))
        inv[gauss_cols] = 1.0 / scale
        center[gauss_cols] = mean
        self._inv_scale, self._center = inv, center
        self._passthrough = n_gauss == 0 and n_cat == 0 and self.identity_order

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        likelihood: str | Mapping = "auto",
        feature_names: Sequence[str] | None = None,
        n_categories: Mapping[int, int] | None = None,
        standardize: bool | str = True,
    ) -> TabularSchema:
        """Learn column kinds and standardization from ``X`` (NaN = missing).

        ``n_categories`` maps the position of each categorical column to its
        number of categories; such columns hold integer codes. With
        ``standardize=False`` the Gaussian columns keep their units (zero
        center, unit scale; lognormal columns are still logged); the
        missing-entry fill is still the column mean. ``"auto"``: when the
        Gaussian columns share one unit (:func:`shares_one_unit`), they keep
        it, divided by their common range (so the result does not depend on
        the unit); otherwise each is standardized. ``common_scale`` records
        whether the columns kept one unit.
        """
        stats = ColumnStats(X)
        kinds = resolve_kinds(X.shape[1], likelihood, feature_names)
        kind_arr = np.asarray(kinds, dtype=object)
        names = list(feature_names) if feature_names is not None else None
        n_categories = dict(n_categories or {})
        sizes = []
        for j in np.flatnonzero(kind_arr == "categorical"):
            if j not in n_categories:
                which = names[j] if names is not None else int(j)
                raise ValueError(
                    f"likelihood 'categorical' for column {which!r} needs a "
                    "pandas DataFrame (its categories are read from the column)."
                )
            sizes.append(int(n_categories[j]))
            _check_codes(X[:, j], sizes[-1], which=j, names=names)
        bern = kind_arr == "bernoulli"
        out_of_range = bern & ((stats.min < 0) | (stats.max > 1))
        if out_of_range.any():
            _raise_bernoulli_range(np.flatnonzero(out_of_range), "fit", feature_names)
        mean, std = stats.mean.copy(), stats.std.copy()
        log_cols = np.flatnonzero(kind_arr == "lognormal")
        if log_cols.size:
            bad = log_cols[~(stats.min[log_cols] > 0)]
            bad = bad[stats.count[bad] > 0]
            if bad.size:
                _raise_lognormal_range(bad, "fit", names)
            with np.errstate(invalid="ignore", divide="ignore"):
                log_stats = ColumnStats(np.log(X[:, log_cols].astype(np.float64)))
            mean[log_cols], std[log_cols] = log_stats.mean, log_stats.std
        quantile_maps = {
            int(j): QuantileMap(X[:, j]) for j in np.flatnonzero(kind_arr == "quantile")
        }
        for j in quantile_maps:  # scores are already standard normal
            mean[j], std[j] = 0.0, 1.0
        gauss = np.isin(kind_arr, ("gaussian", "lognormal", "quantile"))
        mean, std = mean[gauss], std[gauss]
        tiny, scale = _unit_if_constant(mean, std)
        gauss_fill = np.zeros_like(mean)
        plain = kind_arr[gauss] == "gaussian"
        cols = np.flatnonzero(gauss)
        # All columns Gaussian (as in most tables): X itself, not a copy.
        model = X if cols.size == X.shape[1] else X[:, cols]
        unit = bool(plain.all()) and shares_one_unit(model, stats, cols)
        value_range = pre_scale = 1.0
        if unit:
            value_range = np.nanmax(stats.max[cols]) - np.nanmin(stats.min[cols])
            if not value_range > np.max(tiny):
                value_range = 1.0  # constant within rounding: nothing to divide
        if unit and standardize is not False:
            # Pixels are first divided by their range, in float64, and all
            # statistics come from the divided values: pixels given in a
            # unit and in that unit divided by their range are then encoded
            # to the same float32 numbers, so the model and its training do
            # not depend on the unit.
            pre_scale = float(value_range)
            if pre_scale != 1.0:
                sub = ColumnStats(model, divisor=pre_scale)
                mean, std = sub.mean, sub.std
                tiny, scale = _unit_if_constant(mean, std)
        if standardize == "auto":
            standardize = not unit
        if not standardize:
            gauss_fill = mean
            mean, scale = np.zeros_like(mean), np.ones_like(mean)
        elif unit:
            # Pixels: no column's scale below a share of the typical one, so
            # a pixel blank (or nearly) in training neither gets a unit that
            # depends on the data's unit nor makes new ink infinitely rare.
            varying = std > tiny
            typical = float(np.median(std[varying])) if varying.any() else 1.0
            floor = SCALE_FLOOR * typical
            scale = np.maximum(np.where(varying, std, 0.0), floor)
        p = np.where(stats.count[bern] > 0, stats.mean[bern], 0.5)
        freqs = [
            _frequencies(X[:, j], k)
            for j, k in zip(
                np.flatnonzero(kind_arr == "categorical"), sizes, strict=True
            )
        ]
        fill = np.concatenate([gauss_fill, p, *freqs])
        schema = cls(kinds, mean, scale, fill, sizes, quantile_maps, pre_scale)
        schema.common_scale = not standardize
        schema.image_like = unit
        pixel_kinds = np.isin(kind_arr, ("gaussian", "bernoulli"))
        schema.pixels = unit or bool(
            pixel_kinds.all()
            and (kind_arr == "bernoulli").any()
            and shares_one_unit(X, stats, np.arange(X.shape[1]))
        )
        schema.value_range = float(value_range) if unit else None
        return schema

    @property
    def n_features(self) -> int:
        """Number of original columns."""
        return len(self.kinds)

    def check_ranges(self, low: np.ndarray, high: np.ndarray, names=None) -> None:
        """Check each column's range over all the data the schema saw a sample of.

        Raises
        ------
        ValueError
            For a Bernoulli column outside [0, 1] or a lognormal one <= 0.
        """
        kinds = np.asarray(self.kinds, dtype=object)
        bad = np.flatnonzero((kinds == "bernoulli") & ((low < 0) | (high > 1)))
        if bad.size:
            _raise_bernoulli_range(bad, "fit", names)
        bad = np.flatnonzero((kinds == "lognormal") & (low <= 0))
        if bad.size:
            _raise_lognormal_range(bad, "fit", names)

    # ------------------------------------------------------------------ encode
    def encode(
        self, X: np.ndarray, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Float32 tensor in block order, standardized, missing entries filled.

        One conversion pass and one reduction pass over X; float32 data with
        only Bernoulli columns is used in place, without a copy. Categorical
        columns (integer codes) become one-hot columns at the end.

        Returns
        -------
        x : Tensor of shape (n_samples, n_encoded)
            Never shares memory that the caller could later write to through
            this function: it is either a fresh tensor or a read-only view.
        mask : Tensor of shape (n_samples, n_features) or None
            1.0 where observed, 0.0 where missing; None when nothing is missing.

        Raises
        ------
        ValueError
            On infinite values (or values beyond float32), Bernoulli columns
            outside [0, 1] or lognormal columns <= 0. Finite values far
            outside the training data are accepted: their standardized
            values are clipped to +-:data:`STANDARD_LIMIT`.
        """
        device = torch.device(device)
        if self.pre_scale != 1.0:
            X = self._pre_divided(X)
        if not X.flags.writeable or any(step < 0 for step in X.strides):
            # torch.from_numpy warns on read-only arrays and rejects negative
            # strides (a reversed view such as X[::-1]).
            X = X.copy()
        src = torch.from_numpy(X)
        if (
            self._passthrough
            and src.dtype == torch.float32
            and device.type == "cpu"
            and src.is_contiguous()
        ):
            x = src
        else:
            x = src.to(
                device=device,
                dtype=torch.float32,
                copy=True,
                memory_format=torch.contiguous_format,
            )
        # One reduction, before any transformation could hide an infinity
        # (also a float64 value beyond float32), finds NaN, inf and (for
        # Bernoulli-only data) the range; NaN propagates through min and max.
        lo, hi = (float(v) for v in torch.aminmax(x))
        has_nan = math.isnan(lo)
        if not has_nan and (math.isinf(lo) or math.isinf(hi)):
            raise ValueError(_TOO_LARGE)
        if has_nan and bool(torch.isinf(x).any()):
            raise ValueError(_TOO_LARGE)
        if x is not src:
            if self._log_columns.size:
                self._take_log(x)
            if self._quantile_columns.size:
                self._take_scores(x)
            if not self._passthrough:
                # Two exactly rounded passes, not a fused multiply-add: FMA is
                # used in vector lanes only, which would make a row's result
                # depend on the shape of the batch it comes in.
                x.sub_(torch.as_tensor(self._center, dtype=x.dtype, device=device))
                x.mul_(torch.as_tensor(self._inv_scale, dtype=x.dtype, device=device))
            # A value far outside the training data gets a very low
            # likelihood, never an overflow: standardized values are kept
            # within STANDARD_LIMIT (NaN stays NaN).
            x.clamp_(-STANDARD_LIMIT, STANDARD_LIMIT)
            if not self.identity_order:
                x = x[:, torch.as_tensor(self.order, device=device)]
        n_gauss, n_bern, n_cat = self.block_sizes
        n_gb = n_gauss + n_bern
        if n_bern and (n_gauss or n_cat or has_nan or lo < 0 or hi > 1):
            block = x[:, n_gauss:n_gb]
            bad = ((block < 0) | (block > 1)).any(0)
            if bool(bad.any()):
                cols = self.order[n_gauss:n_gb][bad.cpu().numpy()]
                _raise_bernoulli_range(cols, "transform", None)
        missing = torch.isnan(x) if has_nan else None
        if n_cat:
            x = torch.cat([x[:, :n_gb], self._one_hot(x[:, n_gb:])], dim=1)
        if missing is None:
            return x, None
        fill = torch.as_tensor(self.fill, dtype=x.dtype, device=x.device)
        missing_x = missing
        if n_cat:
            var = torch.as_tensor(self.variable_of_column, device=x.device)
            missing_x = missing[:, var]
        x = torch.where(missing_x, fill, x)
        return x, (~missing).to(x.dtype)

    def _pre_divided(self, X: np.ndarray) -> np.ndarray:
        """Float64 copy of ``X`` with the Gaussian columns divided by ``pre_scale``.

        Raises
        ------
        ValueError
            On a value beyond float32 (before the division, which could
            otherwise bring it into range).
        """
        out = np.array(X, dtype=np.float64)
        # Two reductions, no full-size temporary; NaN (missing) is skipped.
        hi = np.nanmax(out, initial=-np.inf)
        lo = np.nanmin(out, initial=np.inf)
        if max(hi, -lo) > _FLOAT32_MAX:
            raise ValueError(_TOO_LARGE)
        cols = self.order[: self.block_sizes[0]]
        if cols.size == out.shape[1]:
            out /= self.pre_scale
        else:
            out[:, cols] /= self.pre_scale
        return out

    def _take_log(self, x: torch.Tensor) -> None:
        """Replace the lognormal columns of ``x`` (original order) by their log."""
        cols = torch.as_tensor(self._log_columns, device=x.device)
        values = x[:, cols]
        bad = (values <= 0).any(0)
        if bool(bad.any()):
            _raise_lognormal_range(self._log_columns[bad.cpu().numpy()], "transform")
        x[:, cols] = torch.log(values)

    def _take_scores(self, x: torch.Tensor) -> None:
        """Replace the quantile columns of ``x`` (original order) by scores."""
        for j, qmap in zip(self._quantile_columns, self.quantile_maps, strict=True):
            values = x[:, j].double().cpu().numpy()
            x[:, j] = torch.as_tensor(qmap.forward(values), dtype=x.dtype)

    def _one_hot(self, codes: torch.Tensor) -> torch.Tensor:
        """One-hot columns of categorical codes (a missing code gives zeros)."""
        sizes = torch.as_tensor(
            self.n_categories, dtype=codes.dtype, device=codes.device
        )
        valid = ~torch.isnan(codes)
        bad = valid & ((codes < 0) | (codes >= sizes) | (codes != codes.floor()))
        if bool(bad.any()):
            cols = self.order[-len(self.n_categories) :][bad.any(0).cpu().numpy()]
            raise ValueError(
                f"Categorical column(s) {cols.tolist()[:10]} hold values that "
                "are not category codes seen in fit."
            )
        offsets = torch.as_tensor(
            np.concatenate([[0], np.cumsum(self.n_categories)[:-1]]),
            device=codes.device,
        )
        index = torch.where(valid, codes, 0.0).long() + offsets
        out = torch.zeros(
            codes.shape[0],
            sum(self.n_categories),
            dtype=codes.dtype,
            device=codes.device,
        )
        return out.scatter_(1, index, valid.to(codes.dtype))

    def log_det_jacobian(
        self, x: torch.Tensor, mask: torch.Tensor | None
    ) -> np.ndarray:
        """Log-Jacobian of the encoding, summed over each row's observed entries.

        ``sum log(scale)`` over the observed Gaussian entries, plus ``log x``
        for the observed lognormal ones (read back from the encoded ``x``).
        Subtract it from a log-density of the encoded data to obtain the
        log-density in the original units.
        """
        n_gauss = self.block_sizes[0]
        if mask is None:
            out = np.full(x.shape[0], self.log_scale.sum())
        else:
            out = mask[:, :n_gauss].double().cpu().numpy() @ self.log_scale
        if self.log_positions.size:
            logs = self._log_values(x)
            if mask is not None:
                logs *= mask[:, self.log_positions].double().cpu().numpy()
            out = out + logs.sum(1)
        if self.quantile_positions.size:
            terms = self._quantile_terms(x)
            if mask is not None:
                terms *= mask[:, self.quantile_positions].double().cpu().numpy()
            out = out + terms.sum(1)
        return out

    def log_det_jacobian_columns(self, x: torch.Tensor) -> np.ndarray:
        """The terms of :meth:`log_det_jacobian` per column, (n, n_features).

        In block order; 0 for Bernoulli and categorical columns.
        """
        out = np.zeros((x.shape[0], self.n_features))
        out[:, : self.block_sizes[0]] = self.log_scale
        if self.log_positions.size:
            out[:, self.log_positions] += self._log_values(x)
        if self.quantile_positions.size:
            out[:, self.quantile_positions] += self._quantile_terms(x)
        return out

    def _quantile_terms(self, x: torch.Tensor) -> np.ndarray:
        """-log d score / d value of the quantile columns (density = p(s) slope)."""
        pos = self.quantile_positions
        u = x[:, torch.as_tensor(pos, device=x.device)].double().cpu().numpy()
        scores = u * self.scale[pos] + self.mean[pos]
        return -np.column_stack(
            [q.log_slope(scores[:, i]) for i, q in enumerate(self.quantile_maps)]
        )

    def _log_values(self, x: torch.Tensor) -> np.ndarray:
        """log(x) of the lognormal columns, from the encoded tensor."""
        pos = self.log_positions
        u = x[:, torch.as_tensor(pos, device=x.device)].double().cpu().numpy()
        return u * self.scale[pos] + self.mean[pos]

    # ------------------------------------------------------------------ decode
    def decode(self, x: torch.Tensor) -> np.ndarray:
        """Float64 array in the original column order and units.

        A categorical column comes back as the code of the largest entry of
        its one-hot (or probability) columns.
        """
        out = x.detach().to("cpu", torch.float64).numpy()
        n_gauss, n_bern, n_cat = self.block_sizes
        if n_cat:
            n_gb = n_gauss + n_bern
            codes = np.empty((out.shape[0], n_cat))
            start = n_gb
            for j, k in enumerate(self.n_categories):
                codes[:, j] = np.argmax(out[:, start : start + k], axis=1)
                start += k
            out = np.hstack([out[:, :n_gb], codes])
        if n_gauss:
            out[:, :n_gauss] = out[:, :n_gauss] * self.scale + self.mean
            if self.pre_scale != 1.0:
                out[:, :n_gauss] *= self.pre_scale
            if self.log_positions.size:
                pos = self.log_positions
                with np.errstate(over="ignore"):
                    out[:, pos] = np.exp(out[:, pos])
            maps = zip(self.quantile_positions, self.quantile_maps, strict=True)
            for i, qmap in maps:
                out[:, i] = qmap.inverse(out[:, i])
        if not self.identity_order:
            out = out[:, self.inverse_order]
        return out


def _unit_if_constant(mean: np.ndarray, std: np.ndarray):
    """(tiny, scale): ``std``, with unit scale where a column is constant.

    Constant (or all-missing) columns keep unit scale, as in StandardScaler;
    ``tiny`` is the spread below which a column counts as constant.
    """
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    return tiny, np.where(std > tiny, std, 1.0)


def _check_codes(values: np.ndarray, k: int, *, which, names) -> None:
    observed = values[~np.isnan(values)]
    if observed.size and (
        observed.min() < 0 or observed.max() >= k or np.any(observed % 1)
    ):
        name = names[which] if names is not None else int(which)
        raise ValueError(
            f"Categorical column {name!r} must hold integer codes in [0, {k})."
        )


def _frequencies(codes: np.ndarray, k: int) -> np.ndarray:
    """Share of each category among the observed codes (uniform if none)."""
    observed = codes[~np.isnan(codes)].astype(np.intp)
    if not observed.size:
        return np.full(k, 1.0 / k)
    return np.bincount(observed, minlength=k) / observed.size


def _raise_lognormal_range(columns, when: str, names=None) -> None:
    which = [names[c] if names is not None else int(c) for c in columns]
    raise ValueError(
        f"Columns modelled as lognormal need positive values; column(s) "
        f"{which[:10]} have values <= 0 at {when}. Use likelihood 'gaussian' "
        "for them, or shift the data."
    )


def _raise_bernoulli_range(columns, when: str, names=None) -> None:
    which = [names[c] if names is not None else int(c) for c in columns]
    raise ValueError(
        f"Columns modelled as Bernoulli need values in [0, 1]; column(s) "
        f"{which[:10]} have values "
        f"outside that range at {when}. Scale the data to [0, 1], or pass "
        "likelihood='auto' or 'gaussian' (or a dict per column)."
    )
