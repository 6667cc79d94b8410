"""Lazy inference on Dask collections.

:func:`dask_inference` decorates an estimator class: each named method, given
a Dask Array or Dask DataFrame, checks the call at once (fitted estimator,
number of columns, feature names) and returns a lazy Dask collection that
calls the same method on every row block. The fitted estimator enters the
task graph once, under a single key that every block's task depends on, so
a distributed scheduler sends it to each worker once rather than with every
task. Outputs follow one rule, stated in :data:`OUTPUT_RULES`; their ``meta``
comes from the fitted model's known output types, never from running it.

Dask is optional: a collection is recognised without importing dask (the
``__dask_graph__`` protocol), and dask is imported only when one arrives.
"""

from __future__ import annotations

import copy
import functools
import importlib
import sys
from collections.abc import Callable

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._utils import _check_feature_names, _check_feature_names_in, draw_seeds

#: How each kind of method maps a Dask collection (the docstrings say the same).
OUTPUT_RULES = {
    "codes": "rows -> (n, n_out) array; DataFrame in: DataFrame of named columns",
    "decode": "codes -> the fit container: DataFrame when fit on one, else array",
    "scores": "rows -> (n,) float64; DataFrame in: Series on the input's index",
    "labels": "rows -> (n,) int64; DataFrame in: Series on the input's index",
    "features": "rows -> (n, n_features_in_) float64; DataFrame in: DataFrame",
    "impute": "rows -> completed rows, same kind; DataFrame dtypes kept",
    "draws": "rows -> (n_imputations, n, n_out) array, or a list of DataFrames",
    "mean": "rows -> float: the mean of the lazy score_samples, computed",
}

INSTALL_HINT = 'pip install "skvae[dask]"'


# ---------------------------------------------------------------------- detection
def _import_module(name: str):
    """Import ``name`` (a seam: tests replace it to simulate a missing dask)."""
    return importlib.import_module(name)


def is_dask_collection(X) -> bool:
    """Whether X is a Dask collection, without importing dask.

    When dask is already imported its own test decides; otherwise an object
    that implements the Dask collection protocol (``__dask_graph__``) counts,
    so that :func:`require_dask` can say what to install.
    """
    dask = sys.modules.get("dask")
    if dask is not None and hasattr(dask, "is_dask_collection"):
        return bool(dask.is_dask_collection(X))
    return callable(getattr(X, "__dask_graph__", None))


def require_dask(module: str = "dask"):
    """Import a dask module, or raise an ImportError naming the extra.

    Raises
    ------
    ImportError
        When dask (or the part of it that is needed) is not installed.
    """
    try:
        return _import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"A Dask collection was passed, but {module!r} cannot be imported "
            f"({exc}). Install skvae's Dask support with: {INSTALL_HINT}"
        ) from exc


def _is_dask_frame(X) -> bool:
    """Whether X is a Dask DataFrame or Series."""
    dd = sys.modules.get("dask.dataframe")
    return dd is not None and isinstance(X, dd.DataFrame | dd.Series)


def _is_dask_array(X) -> bool:
    """Whether X is a Dask Array."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(X, da.Array)


# ---------------------------------------------------------------------- decorator
def dask_inference(**kinds: str) -> Callable[[type], type]:
    """Class decorator: the named methods map Dask collections lazily.

    ``kinds`` maps a method name to a key of :data:`OUTPUT_RULES`. The
    wrapper is the outermost layer of the method (outside scikit-learn's
    ``set_output`` wrapper, which would otherwise compute the collection);
    any other input goes to the method unchanged.
    """

    def decorate(cls: type) -> type:
        for name, kind in kinds.items():
            setattr(cls, name, _lazy_method(getattr(cls, name), name, kind))
        return cls

    return decorate


def _lazy_method(method: Callable, name: str, kind: str) -> Callable:
    @functools.wraps(method)
    def wrapped(self, X, *args, **kwargs):
        if not is_dask_collection(X):
            return method(self, X, *args, **kwargs)
        return lazy_call(self, name, kind, X, *args, **kwargs)

    return wrapped


def lazy_call(estimator, method: str, kind: str, X, *args, **kwargs):
    """``estimator.method(X, *args, **kwargs)`` as a lazy Dask collection.

    Checks the call eagerly (fitted, columns, extra arguments), then builds
    the graph; see :data:`OUTPUT_RULES` for what comes back.
    """
    require_dask("dask")
    check_is_fitted(estimator)
    _check_extras(method, args, kwargs)
    if kind == "mean":
        return _mean_score(estimator, X, *args, **kwargs)
    if kind == "draws":
        return _draws(estimator, X, *args, **kwargs)
    width = estimator.n_components_ if kind == "decode" else estimator.n_features_in_
    X = _checked_input(estimator, X, width, check_names=kind != "decode")
    if kind == "decode":
        X = _as_frame_input(estimator, X)
    call = _Call(method, args, kwargs, _base_seed(estimator, kind))
    if _is_dask_frame(X):
        call.meta = _frame_meta(estimator, kind, X._meta)
        return _map_frame(estimator, call, X)
    return _map_array(estimator, call, X, _array_spec(estimator, kind, X.dtype))


def _check_extras(method: str, args, kwargs) -> None:
    """Extra arguments (``y``) reach every block: only scalars can."""
    for value in (*args, *kwargs.values()):
        if is_dask_collection(value) or np.ndim(value) > 0:
            raise ValueError(
                f"{method} on a Dask collection takes only scalar extra "
                "arguments (one label for every row, say), since each row "
                "block is processed on its own; got an argument of shape "
                f"{np.shape(value)}. Map the blocks yourself with the "
                "in-memory method to pass per-row values."
            )


# ---------------------------------------------------------------------- input checks
def _checked_input(estimator, X, width: int, *, check_names: bool):
    """X as a row-chunked 2-D collection with ``width`` columns.

    Raises
    ------
    TypeError
        For a Dask collection that is neither an Array nor a DataFrame.
    ValueError
        For a Series, an array that is not 2-D, a wrong number of columns or
        feature names other than those seen in fit.
    """
    name = type(estimator).__name__
    if _is_dask_frame(X):
        meta = X._meta
        if meta.ndim != 2:
            raise ValueError(f"{name} needs a 2-D input; got a Dask Series.")
        n_columns = meta.shape[1]
        if check_names:
            _check_feature_names(estimator, meta, reset=False)
    elif not _is_dask_array(X):
        raise TypeError(
            f"{name} takes a Dask Array or Dask DataFrame; got a "
            f"{type(X).__name__}. Compute it first, or convert it."
        )
    else:
        if X.ndim != 2:
            raise ValueError(
                f"{name} needs a 2-D input; got a Dask Array with shape {X.shape}."
            )
        n_columns = X.shape[1]
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})  # one block per row chunk
    if not np.isnan(n_columns) and n_columns != width:
        raise ValueError(
            f"X has {n_columns} features, but {name} is expecting {width} "
            "features as input."
        )
    return X


def _as_frame_input(estimator, Z):
    """Codes to decode into a DataFrame travel as a Dask DataFrame.

    Its index (from the array's row chunks, like a RangeIndex over all rows)
    becomes the output's, as ``inverse_transform`` of an array gives
    0, 1, ... over the rows.
    """
    if estimator._fitted.frame is None or _is_dask_frame(Z):
        return Z
    dd = require_dask("dask.dataframe")
    return dd.from_dask_array(Z, columns=[f"z{i}" for i in range(Z.shape[1])])


# ---------------------------------------------------------------------- one call
class _Call:
    """A method name with its extra arguments, and the seed of random draws."""

    def __init__(self, method: str, args, kwargs, seed: int | None, meta=None):
        self.method, self.args, self.kwargs, self.seed = method, args, kwargs, seed
        #: The output's empty pandas object, for DataFrame input (it travels
        #: here: a pandas argument of ``map_partitions`` would become a
        #: collection).
        self.meta = meta

    def run(self, estimator, block, index: int):
        """The in-memory method on one block (block ``index`` of the input)."""
        if self.seed is not None:
            # A distinct, reproducible stream per block; a shallow copy keeps
            # the shared estimator (and its module) untouched.
            estimator = copy.copy(estimator)
            estimator.random_state = block_seed(self.seed, index)
        return getattr(estimator, self.method)(block, *self.args, **self.kwargs)


def _base_seed(estimator, kind: str) -> int | None:
    """Seed of the blocks' draws, or None for a method that draws nothing."""
    if kind == "impute" and estimator.sample_posterior:
        return draw_seeds(estimator.random_state, 1)[0]
    return None


def block_seed(seed: int, index: int) -> int:
    """Seed of row block ``index`` derived from ``seed`` (independent streams)."""
    return int(np.random.default_rng([seed, index]).integers(np.iinfo(np.int32).max))


def _model_key(estimator):
    """The fitted estimator as one graph key, which every block task reads."""
    dask = require_dask("dask")
    return dask.delayed(estimator, pure=True)


# ---------------------------------------------------------------------- arrays
def _float_dtype(estimator, dtypes) -> np.dtype:
    """Dtype of validated input: float32 when all of it is, else float64."""
    frame = estimator._fitted.frame
    if frame is not None:
        return frame.dtype
    float32 = len(dtypes) > 0 and all(str(d) == "float32" for d in dtypes)
    return np.dtype(np.float32 if float32 else np.float64)


def _out_width(estimator, kind: str) -> int | None:
    """Columns of a 2-D output (None: a 1-D output)."""
    if kind in ("scores", "labels"):
        return None
    if kind in ("decode", "features"):
        return estimator.n_features_in_
    return len(estimator.get_feature_names_out())


def _array_spec(estimator, kind: str, dtype) -> tuple[np.dtype, int | None]:
    """Dtype and width of the array output for array input of ``dtype``."""
    frame = estimator._fitted.frame
    if kind in ("impute", "draws") and frame is not None and frame.mixed:
        raise ValueError(
            f"This {type(estimator).__name__} was fitted on a DataFrame with "
            "non-numeric columns, so it returns DataFrames: pass a Dask "
            "DataFrame, not a Dask Array."
        )
    if kind in ("scores", "features"):
        out = np.dtype(np.float64)
    elif kind == "labels":
        out = np.dtype(np.int64)
    elif kind == "decode":
        out = np.dtype(estimator._fitted.fit_dtype)
    else:
        out = _float_dtype(estimator, [dtype])
    return out, _out_width(estimator, kind)


def _map_array(estimator, call: _Call, X, spec):
    """Map ``call`` over the row blocks of Dask Array X."""
    da = require_dask("dask.array")
    dtype, width = spec
    rows = X.chunks[0]
    if width is None:
        shape = {"chunks": (rows,), "drop_axis": 1}
    else:
        shape = {"chunks": (rows, (width,))}
    return da.map_blocks(
        _array_block,
        X,
        _model_key(estimator),
        call,
        dtype,
        dtype=dtype,
        meta=np.empty((0,) * (1 if width is None else 2), dtype=dtype),
        **shape,
    )


def _array_block(block, estimator, call: _Call, dtype, block_id=None):
    out = np.asarray(call.run(estimator, block, block_id[0]))
    return out.astype(dtype, copy=False)


# ---------------------------------------------------------------------- frames
def _frame_meta(estimator, kind: str, meta_in):
    """Empty pandas output (Series or DataFrame) with the output's dtypes."""
    import pandas as pd

    if kind in ("scores", "labels"):
        dtype = np.float64 if kind == "scores" else np.int64
        return pd.Series([], dtype=dtype, index=meta_in.index)
    if kind == "features":
        names = _check_feature_names_in(estimator, None)
        empty = np.empty((0, len(names)))
        return pd.DataFrame(empty, columns=list(names), index=meta_in.index)
    if kind == "decode":
        return _decoded_meta(estimator).set_axis(meta_in.index)
    if kind == "impute":
        return _imputed_meta(estimator, meta_in)
    names = list(estimator.get_feature_names_out())
    dtype = _float_dtype(estimator, list(meta_in.dtypes))
    empty = np.empty((0, len(names)), dtype=dtype)
    return pd.DataFrame(empty, columns=names, index=meta_in.index)


def _decoded_meta(estimator):
    """Empty output of ``inverse_transform``: the fit columns and dtypes."""
    import pandas as pd

    fitted = estimator._fitted
    empty = np.empty((0, estimator.n_features_in_))
    if fitted.frame is not None:
        return fitted.frame.to_frame(empty)
    names = list(_check_feature_names_in(estimator, None))
    return pd.DataFrame(empty.astype(fitted.fit_dtype), columns=names)


def _imputed_meta(estimator, meta_in):
    """Empty imputed DataFrame.

    After a fit on a mixed-type DataFrame the input's own columns come back
    in its dtypes (a categorical widened by the categories seen in fit, so
    that an imputed label fits) and indicator columns are bool; otherwise
    every column is the float dtype of the in-memory result.
    """
    import pandas as pd

    names = list(estimator.get_feature_names_out())
    frame = estimator._fitted.frame
    if frame is None or not frame.mixed:
        dtype = _float_dtype(estimator, list(meta_in.dtypes))
        empty = np.empty((0, len(names)), dtype=dtype)
        return pd.DataFrame(empty, columns=names, index=meta_in.index)
    dtypes = _widened_dtypes(frame, meta_in)
    columns = {
        name: pd.Series([], dtype=dtypes.get(name, bool), name=name) for name in names
    }
    return pd.DataFrame(columns, index=meta_in.index)


def _widened_dtypes(frame, meta_in) -> dict:
    """Input dtypes, categoricals with known categories widened by fit's."""
    import pandas as pd

    dtypes = {}
    for col, name in zip(frame.columns, meta_in.columns, strict=True):
        dtype = meta_in[name].dtype
        if isinstance(dtype, pd.CategoricalDtype) and _known(dtype):
            extra = [] if not col.coded else list(col.categories)
            union = dtype.categories.union(pd.Index(extra), sort=False)
            dtype = pd.CategoricalDtype(union.unique(), ordered=dtype.ordered)
        dtypes[name] = dtype
    return dtypes


def _known(dtype) -> bool:
    """Whether a Dask meta categorical dtype has known categories."""
    from dask.dataframe.utils import UNKNOWN_CATEGORIES

    return UNKNOWN_CATEGORIES not in list(dtype.categories)


def _map_frame(estimator, call: _Call, X):
    """Map ``call`` over the partitions of Dask DataFrame X."""
    return X.map_partitions(
        _frame_partition, _model_key(estimator), call, meta=call.meta
    )


def _frame_partition(part, estimator, call: _Call, partition_info=None):
    index = 0 if partition_info is None else partition_info["number"]
    part = _prepared(part, call.meta)
    out = call.run(estimator, part, index)
    return _conformed(out, part.index, call.meta)


def _prepared(part, meta):
    """Categorical input columns widened as in the output's meta."""
    import pandas as pd

    if meta.ndim != 2:
        return part
    widen = {
        name: meta[name].dtype
        for name in part.columns
        if name in meta.columns
        and isinstance(part[name].dtype, pd.CategoricalDtype)
        and isinstance(meta[name].dtype, pd.CategoricalDtype)
        and _known(meta[name].dtype)
    }
    return part.astype(widen) if widen else part


def _conformed(out, index, meta):
    """In-memory result of a partition as a pandas object shaped like meta."""
    import pandas as pd

    if meta.ndim == 1:
        series = pd.Series(np.asarray(out), index=index, name=meta.name)
        return series.astype(meta.dtype)
    if not isinstance(out, pd.DataFrame):
        out = pd.DataFrame(np.asarray(out), columns=meta.columns)
    out = out.set_axis(index, axis=0).set_axis(meta.columns, axis=1)
    dtypes = {
        name: dtype
        for name, dtype in meta.dtypes.items()
        if not (isinstance(dtype, pd.CategoricalDtype) and not _known(dtype))
        and out[name].dtype != dtype
    }
    return out.astype(dtypes) if dtypes else out


# ---------------------------------------------------------------------- score
def _mean_score(estimator, X, y=None):
    """``score``: the mean of the lazy ``score_samples``, computed to a float."""
    conditional = getattr(estimator, "_is_conditional_fit", lambda: False)()
    if conditional:
        scores = estimator.score_samples(X, y=y)
    else:  # an unconditional model ignores y, as its in-memory score does
        scores = estimator.score_samples(X)
    return float(scores.mean().compute())


# ---------------------------------------------------------------------- draws
def _draws(estimator, X, n_imputations=5, *, random_state=None):
    """``sample_imputations`` lazily: a 3-D array, or a list of DataFrames.

    Each row block draws from its own seed, derived from ``random_state``
    (or the estimator's) and the block's position.
    """
    from numbers import Integral

    if not isinstance(n_imputations, Integral) or n_imputations < 1:
        raise ValueError(
            f"n_imputations must be a positive int, got {n_imputations!r}."
        )
    n = int(n_imputations)
    X = _checked_input(estimator, X, estimator.n_features_in_, check_names=True)
    state = estimator.random_state if random_state is None else random_state
    call = _Call("sample_imputations", (n,), {}, draw_seeds(state, 1)[0])
    if _is_dask_frame(X):
        call.meta = _imputed_meta(estimator, X._meta)
        return _draws_frames(estimator, call, X, n)
    dtype, width = _array_spec(estimator, "draws", X.dtype)
    da = require_dask("dask.array")
    return da.map_blocks(
        _draws_block,
        X,
        _model_key(estimator),
        call,
        dtype,
        dtype=dtype,
        meta=np.empty((0, 0, 0), dtype=dtype),
        new_axis=0,
        chunks=((n,), X.chunks[0], (width,)),
    )


def _draws_block(block, estimator, call: _Call, dtype, block_id=None):
    out = call.run(estimator, block, block_id[1])
    return np.asarray(out).astype(dtype, copy=False)


def _draws_frames(estimator, call: _Call, X, n: int) -> list:
    """One Dask DataFrame per imputation, sharing one task per partition."""
    dask = require_dask("dask")
    dd = require_dask("dask.dataframe")
    model = _model_key(estimator)
    parts = [
        dask.delayed(_draws_partition, pure=True)(model, call, part, i)
        for i, part in enumerate(X.to_delayed())
    ]
    divisions = X.divisions if X.known_divisions else None
    return [
        dd.from_delayed([p[k] for p in parts], meta=call.meta, divisions=divisions)
        for k in range(n)
    ]


def _draws_partition(estimator, call: _Call, part, index: int) -> list:
    part = _prepared(part, call.meta)
    out = call.run(estimator, part, index)
    return [_conformed(draw, part.index, call.meta) for draw in out]
