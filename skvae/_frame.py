"""pandas DataFrames <-> the numeric matrix that :class:`TabularSchema` reads.

:class:`FrameSchema` is fitted once on a training DataFrame. It decides how
each column is represented: numeric columns pass through as floats (their
decimal precision, and the range of integer columns, are recorded), while
categorical, object, string and bool columns become integer codes into the
categories seen in fit (as do integer columns of few values in a large
table, where the numeric columns default to the quantile kind). It converts
later DataFrames to that float matrix (NaN, None and ``pd.NA`` are missing)
and turns decoded matrices back into DataFrames with the original columns,
dtypes and categories.

pandas is imported lazily: this module is only used when X is a DataFrame.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

#: Values of the ``likelihood`` dict for DataFrame columns.
FRAME_KINDS = (
    "auto",
    "gaussian",
    "lognormal",
    "quantile",
    "bernoulli",
    "categorical",
)
#: Numeric outputs are rounded to the fit precision when it is at most this
#: many decimals (otherwise they are left as computed).
MAX_DECIMALS = 6
#: Where numeric columns default to the quantile kind, an integer column with
#: at least two and at most this many distinct values, in a table of at least
#: :data:`AUTO_CATEGORICAL_ROWS` observed rows, is categorical instead.
AUTO_CATEGORICAL_LEVELS = 64
AUTO_CATEGORICAL_ROWS = 2000


def is_pandas_frame(X) -> bool:
    """Whether X is a pandas DataFrame (without importing pandas)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(X, pd.DataFrame)


@dataclass
class FrameColumn:
    """How one DataFrame column is represented.

    Attributes
    ----------
    name : object
        Column label.
    dtype : object
        Its dtype in fit; outputs are cast back to it.
    kind : str
        ``"auto"`` (a numeric column whose kind the numeric schema picks) or
        one of ``"gaussian"``, ``"lognormal"``, ``"bernoulli"``,
        ``"categorical"``.
    categories : pandas.Index or None
        For a coded column, the labels seen in fit; code ``i`` is
        ``categories[i]``. None for a numeric column.
    decimals : int or None
        Numeric column: the fewest decimals (<= 6) that represent every
        value seen in fit; outputs are rounded to it. None: not rounded.
    bounds : tuple of float or None
        Integer column: observed (min, max); outputs are clipped to it.
    unseen : bool
        A numeric column modelled as categorical by ``"auto"``: the model has
        one category more than ``categories``, never observed in fit, and
        every value not seen in fit takes it (a low likelihood, not an
        error); a draw of it decodes to the largest value seen in fit.
    """

    name: object
    dtype: object
    kind: str
    categories: object = None
    decimals: int | None = None
    bounds: tuple[float, float] | None = None
    unseen: bool = False

    @property
    def coded(self) -> bool:
        """Whether the column is stored as codes into ``categories``."""
        return self.categories is not None


class FrameSchema:
    """Fitted representation of the columns of a training DataFrame.

    Parameters
    ----------
    columns : list of FrameColumn
        One per DataFrame column, in order.
    dtype : numpy dtype
        Dtype of the numeric matrix: float32 when every column is float32,
        else float64 (as scikit-learn's validation would choose).
    """

    def __init__(self, columns: list[FrameColumn], dtype, column_index) -> None:
        self.columns = columns
        self.dtype = np.dtype(dtype)
        #: The fit DataFrame's ``columns`` (labels and their Index type).
        self.column_index = column_index

    @property
    def mixed(self) -> bool:
        """Whether any column is not numeric (an ndarray would lose its type).

        An integer column modelled as categorical (``unseen``) holds numbers.
        """
        return any(col.coded and not col.unseen for col in self.columns)

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(cls, frame, likelihood="auto", numeric="auto", seen=None) -> FrameSchema:
        """Learn each column's representation from ``frame``.

        ``likelihood``: ``"auto"``, a kind name (applied to the numeric
        columns; label columns stay categorical or Bernoulli) or a dict from
        column name (or position) to a kind of :data:`FRAME_KINDS`.
        ``numeric``: the kind of the numeric columns left ``"auto"`` (with
        ``"auto"``, the numeric schema decides: Gaussian). ``seen``, when
        ``frame`` is a sample of larger data, says what all of it holds:
        ``seen.labels`` maps a label column's position to every label it
        takes, and ``seen.low`` / ``seen.high`` give each numeric column's
        range (the bounds of an integer column).

        Raises
        ------
        ValueError
            For a dict that names an unknown column or kind, or a kind that
            does not fit the column (a Gaussian string column, a Bernoulli
            column with more than two categories, a lognormal column with
            values <= 0).
        """
        import pandas as pd

        requested = _requested_kinds(frame, likelihood)
        columns = []
        for j, name in enumerate(frame.columns):
            series = frame.iloc[:, j]
            kind = requested[j]
            if isinstance(likelihood, str) and _is_label_dtype(pd, series.dtype):
                kind = "auto"  # a single kind concerns the numeric columns
            extra = None
            if seen is not None:
                extra = (seen.labels.get(j), (seen.low[j], seen.high[j]))
            columns.append(_fit_column(pd, series, name, kind, numeric, extra))
        all_float32 = len(columns) > 0 and all(
            not col.coded and col.dtype == np.float32 for col in columns
        )
        dtype = np.float32 if all_float32 else np.float64
        return cls(columns, dtype, frame.columns.copy())

    def model_kinds(self) -> tuple[dict[int, str], dict[int, int]]:
        """Kinds fixed by the frame, and category counts, by column position.

        Numeric ``"auto"`` columns are left out: the numeric schema decides
        them from the values (Bernoulli for {0, 1}, else Gaussian).
        """
        kinds, n_categories = {}, {}
        for j, col in enumerate(self.columns):
            if col.kind != "auto":
                kinds[j] = col.kind
            if col.kind == "categorical":
                n_categories[j] = len(col.categories) + int(col.unseen)
        return kinds, n_categories

    # ------------------------------------------------------------------ to numbers
    def to_numeric(self, X, handle_unknown: str = "error") -> np.ndarray:
        """Float matrix of X (NaN where missing, codes for label columns).

        Parameters
        ----------
        X : DataFrame or 2-D array of shape (n_samples, n_features)
            Columns in the order of fit (an array is read column by column).
        handle_unknown : {"error", "missing"}
            What to do with a label not seen in fit.

        Raises
        ------
        ValueError
            On an unseen label (with ``handle_unknown="error"``) or a
            non-numeric value in a numeric column.
        """
        import pandas as pd

        if not is_pandas_frame(X):
            X = pd.DataFrame(np.asarray(X, dtype=object), columns=self.column_index)
            X = X.infer_objects()
        out = np.empty((X.shape[0], len(self.columns)), dtype=self.dtype)
        for j, col in enumerate(self.columns):
            series = X.iloc[:, j]
            if col.coded:
                out[:, j] = _codes(series, col, handle_unknown)
            else:
                out[:, j] = _numbers(pd, series, col.name)
        return out

    # ------------------------------------------------------------------ to frame
    def to_frame(self, values: np.ndarray, index=None):
        """DataFrame of decoded values, with the fit columns and dtypes.

        Numeric columns are rounded to their fit precision (integer columns
        also clipped to their fit range); label columns take the most
        probable label: a Bernoulli value (a probability) is read as its
        second category when >= 0.5, a categorical value is a code. NaN
        stays missing.
        """
        import pandas as pd

        series = []
        for j, col in enumerate(self.columns):
            v = values[:, j]
            if col.coded:
                series.append(_labels(pd, col, v, index))
            else:
                series.append(_numeric_output(pd, col, v, index))
        out = pd.concat(series, axis=1) if series else pd.DataFrame(index=index)
        out.columns = self.column_index
        if index is None:
            out.index = pd.RangeIndex(values.shape[0])
        return out

    def keep_observed(self, filled, original, holes: np.ndarray):
        """``filled`` with every non-hole cell taken from ``original``.

        Columns without holes are the original columns, untouched; columns
        with holes are the original column with the holes set from
        ``filled`` (labels outside a categorical dtype widen it to object).
        """
        out = {}
        for j in range(len(self.columns)):
            orig = original.iloc[:, j]
            rows = np.flatnonzero(holes[:, j])
            if rows.size == 0:
                out[j] = orig
            elif rows.size == len(orig):
                out[j] = filled.iloc[:, j].set_axis(orig.index)
            else:
                out[j] = _assign(orig, rows, filled.iloc[rows, j].to_numpy())
        import pandas as pd

        frame = pd.concat(list(out.values()), axis=1)
        frame.columns = original.columns
        return frame


# ---------------------------------------------------------------------- fit helpers
def _requested_kinds(frame, likelihood) -> list[str]:
    """The kind the user asked for, per column ("auto" when none)."""
    names = list(frame.columns)
    n = len(names)
    if isinstance(likelihood, str):
        # A single kind concerns the numeric columns; labels stay "auto".
        return [likelihood] * n
    kinds = ["auto"] * n
    unknown = []
    for key, kind in likelihood.items():
        if key in names:
            j = names.index(key)
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not 0 <= key < n:
                unknown.append(key)
                continue
            j = int(key)
        else:
            unknown.append(key)
            continue
        if kind not in FRAME_KINDS:
            raise ValueError(
                f"likelihood[{key!r}] must be one of {FRAME_KINDS}, got {kind!r}."
            )
        kinds[j] = kind
    if unknown:
        raise ValueError(
            f"likelihood names column(s) {unknown!r} that are not in X; its "
            f"columns are {names[:20]!r}."
        )
    return kinds


def _is_label_dtype(pd, dtype) -> bool:
    """Categorical, object, string and bool dtypes hold labels."""
    types = pd.api.types
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or types.is_bool_dtype(dtype)
        or not types.is_numeric_dtype(dtype)
    )


def _fit_column(
    pd, series, name, requested: str, numeric: str, extra=None
) -> FrameColumn:
    labels, bounds = extra if extra is not None else (None, None)
    dtype = series.dtype
    observed = series.dropna()
    label_dtype = _is_label_dtype(pd, dtype)
    if observed.empty and not labels:
        # Nothing to learn from: a numeric column of NaN (kept, unmodelled).
        return FrameColumn(name, dtype, "gaussian" if label_dtype else "auto")
    if label_dtype:
        if requested in ("gaussian", "lognormal", "quantile"):
            raise ValueError(
                f"likelihood {requested!r} needs a numeric column, but column "
                f"{name!r} has dtype {dtype}; use 'categorical' or 'bernoulli'."
            )
        categories = _observed_categories(pd, series, observed, labels)
        kind = requested if requested in ("bernoulli", "categorical") else "auto"
    elif requested == "categorical" or _levels_column(
        pd, series, observed, requested, numeric, extra
    ):
        # A numeric column's values as categories; "auto" adds one for
        # values not seen in fit.
        categories = pd.Index(np.sort(pd.unique(observed.to_numpy())))
        unseen = requested != "categorical"
        return FrameColumn(name, dtype, "categorical", categories, unseen=unseen)
    else:
        return _fit_numeric(pd, series, name, requested, numeric, bounds)
    if kind == "auto":
        kind = "bernoulli" if len(categories) == 2 else "categorical"
    if kind == "bernoulli" and len(categories) > 2:
        raise ValueError(
            f"likelihood 'bernoulli' needs at most two categories, but column "
            f"{name!r} has {len(categories)}; use 'categorical'."
        )
    if kind == "bernoulli" and len(categories) == 1:
        kind = "categorical"  # one label: a Bernoulli code would be ambiguous
    return FrameColumn(name, dtype, kind, categories=categories)


def _levels_column(pd, series, observed, requested: str, numeric: str, extra) -> bool:
    """Whether ``"auto"`` makes this numeric column categorical.

    Where numeric columns default to the quantile kind: an integer column
    with few distinct values (:data:`AUTO_CATEGORICAL_LEVELS`) observed in
    many rows (:data:`AUTO_CATEGORICAL_ROWS`), when ``series`` is all the
    data (not a sample of larger data, whose other values are unknown).
    Each value then has its own probability, so values that go together
    across columns (one value of a column per value of another) are kept
    together, which a smooth map of the latent code misses.
    """
    if requested != "auto" or numeric != "quantile" or extra is not None:
        return False
    if not pd.api.types.is_integer_dtype(series.dtype):
        return False
    if len(observed) < AUTO_CATEGORICAL_ROWS:
        return False
    return 2 <= observed.nunique() <= AUTO_CATEGORICAL_LEVELS


def _observed_categories(pd, series, observed, labels=None):
    """Labels seen in fit: in dtype order for a Categorical, else sorted.

    ``labels`` (when ``series`` is a sample) adds the labels seen elsewhere.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = series.cat.categories
        codes = np.unique(series.cat.codes.to_numpy())
        seen = np.zeros(len(categories), dtype=bool)
        seen[codes[codes >= 0]] = True
        if labels:
            seen |= categories.isin(list(labels))
        return categories[seen]
    unique = list(pd.unique(observed.to_numpy(dtype=object)))
    if labels:
        unique = list(dict.fromkeys([*unique, *labels]))
    try:
        unique = sorted(unique)
    except TypeError:  # mixed types: keep the order of first appearance
        pass
    return pd.Index(unique, dtype=object)


def _fit_numeric(
    pd, series, name, requested: str, numeric: str, bounds=None
) -> FrameColumn:
    values = _numbers(pd, series, name)
    values = values[~np.isnan(values)]
    if bounds is not None and not np.isnan(bounds).any():
        # A sample: the range of all the data bounds it.
        values = np.concatenate([values, np.asarray(bounds, dtype=np.float64)])
    explicit = requested in ("gaussian", "lognormal", "quantile", "bernoulli")
    kind = requested if explicit else numeric
    if kind == "lognormal" and values.min() <= 0:
        raise ValueError(
            f"likelihood 'lognormal' needs positive values, but column {name!r} "
            f"has values <= 0 (min {values.min()!r}); use 'gaussian'."
        )
    bounds = None
    if pd.api.types.is_integer_dtype(series.dtype):
        decimals = 0
        bounds = (float(values.min()), float(values.max()))
    else:
        native = np.float32 if series.dtype == np.float32 else np.float64
        decimals = _decimals(values.astype(native))
    return FrameColumn(name, series.dtype, kind, decimals=decimals, bounds=bounds)


def _decimals(values: np.ndarray) -> int | None:
    """Fewest decimals d <= MAX_DECIMALS with round(v, d) == v for every v."""
    with np.errstate(over="ignore", invalid="ignore"):
        for d in range(MAX_DECIMALS + 1):
            if np.array_equal(np.round(values, d), values):
                return d
    return None


# ---------------------------------------------------------------------- conversions
def _numbers(pd, series, name) -> np.ndarray:
    """Float64 values of a numeric column, NaN where missing."""
    try:
        if series.dtype == object:
            series = pd.to_numeric(series)
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Column {name!r} was numeric in fit but holds non-numeric values: {exc}"
        ) from exc


def _codes(series, col: FrameColumn, handle_unknown: str) -> np.ndarray:
    """Codes into ``col.categories`` (NaN where missing or unknown).

    In an ``unseen`` column, a value not seen in fit takes the extra code
    ``len(col.categories)`` whatever ``handle_unknown`` says.
    """
    if col.unseen:
        import pandas as pd

        values = _numbers(pd, series, col.name)
        codes = col.categories.get_indexer(values).astype(np.float64)
        missing = np.isnan(values)
        codes[(codes < 0) & ~missing] = len(col.categories)
        codes[missing] = np.nan
        return codes
    codes = col.categories.get_indexer(series).astype(np.float64)
    missing = series.isna().to_numpy()
    unknown = (codes < 0) & ~missing
    if unknown.any() and handle_unknown == "error":
        labels = list(dict.fromkeys(series[unknown].tolist()))
        raise ValueError(
            f"Column {col.name!r} contains categories not seen in fit: "
            f"{labels[:10]!r}; the categories seen in fit are "
            f"{list(col.categories)[:20]!r}. Pass handle_unknown='missing' to "
            "treat unseen categories as missing values."
        )
    codes[codes < 0] = np.nan
    return codes


def _numeric_output(pd, col: FrameColumn, v: np.ndarray, index):
    """Round to the fit precision, clip integers, cast to the fit dtype."""
    missing = np.isnan(v)
    if col.bounds is not None:
        v = np.clip(v, *col.bounds)
    if col.dtype == np.float32:
        v = v.astype(np.float32)
    if col.decimals is not None:
        v = np.round(v, col.decimals)
    series = pd.Series(v, index=index, name=col.name)
    if missing.any() and pd.api.types.is_integer_dtype(col.dtype):
        if not isinstance(col.dtype, np.dtype):  # nullable Int64: NaN -> NA
            return series.astype(col.dtype)
        return series  # a NumPy int column cannot hold NaN: stays float
    return _cast(series, col.dtype)


def _labels(pd, col: FrameColumn, v: np.ndarray, index):
    """Labels from Bernoulli probabilities or categorical codes."""
    missing = np.isnan(v)
    if col.kind == "bernoulli":
        codes = (np.nan_to_num(v) >= 0.5).astype(np.intp)
    else:
        codes = np.rint(np.nan_to_num(v)).astype(np.intp)
    codes = np.clip(codes, 0, len(col.categories) - 1)
    codes[missing] = -1
    if isinstance(col.dtype, pd.CategoricalDtype):
        positions = col.dtype.categories.get_indexer(col.categories)
        dtype_codes = np.where(codes >= 0, positions[codes], -1)
        values = pd.Categorical.from_codes(dtype_codes, dtype=col.dtype)
        return pd.Series(values, index=index, name=col.name)
    labels = np.asarray(col.categories, dtype=object)[codes]
    labels[missing] = None
    return _cast(pd.Series(labels, index=index, name=col.name, dtype=object), col.dtype)


def _cast(series, dtype):
    """``series.astype(dtype)``, or ``series`` when the cast is impossible."""
    try:
        return series.astype(dtype)
    except (TypeError, ValueError):
        return series


def _assign(orig, rows: np.ndarray, values: np.ndarray):
    """A copy of ``orig`` with ``values`` at positional ``rows``."""
    out = orig.copy()
    try:
        out.iloc[rows] = values
    except (TypeError, ValueError):
        out = out.astype(object)
        out.iloc[rows] = values
    return out
