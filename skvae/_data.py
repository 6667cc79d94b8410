"""The numpy <-> tensor boundary: column kinds, standardization, missingness.

:class:`TabularSchema` is fitted once on the training data. It decides which
likelihood models each column, reorders columns so that each kind forms one
contiguous block, standardizes Gaussian columns, and turns NaN into a mask.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

KINDS = ("gaussian", "bernoulli")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_TOO_LARGE = (
    "X contains infinity or a value too large for float32 (about 3.4e38); "
    "remove or rescale it."
)
#: Rows per chunk when computing column statistics (bounds temporary memory).
_STATS_CHUNK = 1 << 12


class ColumnStats:
    """Per-column statistics of X, ignoring NaN, in O(chunk) extra memory.

    Two passes over row chunks (mean, then squared deviations), so no
    full-size float64 copy of X is ever made.

    Attributes
    ----------
    count, mean, std : ndarray of shape (n_features,)
        Over the observed entries; 0 for an all-missing column.
    min, max : ndarray of shape (n_features,)
        NaN for an all-missing column.
    binary : ndarray of bool, shape (n_features,)
        Observed values are exactly {0, 1}, both present.
    """

    def __init__(self, X: np.ndarray) -> None:
        p = X.shape[1]
        count = np.zeros(p)
        total = np.zeros(p)
        lo = np.full(p, np.nan)
        hi = np.full(p, np.nan)
        only01 = np.ones(p, dtype=bool)
        for chunk in _row_chunks(X):
            observed = ~np.isnan(chunk)
            count += observed.sum(0)
            total += np.where(observed, chunk, 0.0).sum(0)
            lo = np.fmin(lo, np.fmin.reduce(chunk, axis=0))
            hi = np.fmax(hi, np.fmax.reduce(chunk, axis=0))
            only01 &= np.all((chunk == 0) | (chunk == 1) | ~observed, axis=0)
        if np.any(np.abs(np.concatenate([lo, hi])) > _FLOAT32_MAX):
            raise ValueError(_TOO_LARGE)
        mean = np.divide(total, count, out=np.zeros(p), where=count > 0)
        squares = np.zeros(p)
        for chunk in _row_chunks(X):
            dev = np.where(np.isnan(chunk), 0.0, chunk - mean)
            squares += np.einsum("ij,ij->j", dev, dev)
        self.std = np.sqrt(np.divide(squares, count, out=np.zeros(p), where=count > 0))
        self.count, self.mean, self.min, self.max = count, mean, lo, hi
        self.binary = only01 & (lo == 0) & (hi == 1)


def _row_chunks(X: np.ndarray):
    for start in range(0, X.shape[0], _STATS_CHUNK):
        yield X[start : start + _STATS_CHUNK].astype(np.float64, copy=False)


def resolve_kinds(
    binary: np.ndarray,
    likelihood: str | Mapping,
    feature_names: Sequence[str] | None,
) -> list[str]:
    """Likelihood kind of each column.

    ``"auto"`` gives Bernoulli to columns whose observed values are exactly
    {0, 1} (``binary``) and Gaussian to the rest. A mapping assigns kinds by
    column name (or integer position); unlisted columns get ``"auto"``.
    """
    n_features = binary.shape[0]
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
            if kind not in KINDS and kind != "auto":
                raise ValueError(
                    f"likelihood[{key!r}] must be one of {KINDS + ('auto',)}, "
                    f"got {kind!r}."
                )
            kinds[j] = None if kind == "auto" else kind
    return [
        k if k is not None else ("bernoulli" if binary[j] else "gaussian")
        for j, k in enumerate(kinds)
    ]


class TabularSchema:
    """Fitted description of the columns of the training data.

    Parameters
    ----------
    kinds : list of str
        Likelihood kind of each original column.
    mean, scale : ndarray of shape (n_gaussian,)
        Standardization of the Gaussian columns, in block order.
    fill : ndarray of shape (n_features,)
        Value in encoded space that stands in for a missing entry (the column
        mean), in block order.
    """

    def __init__(
        self,
        kinds: list[str],
        mean: np.ndarray,
        scale: np.ndarray,
        fill: np.ndarray,
    ) -> None:
        self.kinds = list(kinds)
        kind_arr = np.asarray(kinds)
        self.order = np.concatenate(
            [np.flatnonzero(kind_arr == k) for k in KINDS]
        ).astype(np.intp)
        self.inverse_order = np.argsort(self.order)
        self.identity_order = bool(np.all(self.order == np.arange(len(kinds))))
        self.block_sizes = [int(np.sum(kind_arr == k)) for k in KINDS]
        self.mean = mean
        self.scale = scale
        self.fill = fill
        self.log_scale = np.log(scale)
        # encode() computes (x - center) * inv_scale over all columns, in the
        # original column order (Bernoulli columns pass through unchanged).
        n_gauss = self.block_sizes[0]
        inv = np.ones(len(kinds))
        center = np.zeros(len(kinds))
        inv[self.order[:n_gauss]] = 1.0 / scale
        center[self.order[:n_gauss]] = mean
        self._inv_scale, self._center = inv, center
        self._passthrough = n_gauss == 0 and self.identity_order

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        likelihood: str | Mapping = "auto",
        feature_names: Sequence[str] | None = None,
        standardize: bool = True,
    ) -> TabularSchema:
        """Learn column kinds and standardization from ``X`` (NaN = missing).

        With ``standardize=False`` the Gaussian columns keep their units (zero
        center, unit scale); the missing-entry fill is still the column mean.
        """
        stats = ColumnStats(X)
        kinds = resolve_kinds(stats.binary, likelihood, feature_names)
        kind_arr = np.asarray(kinds)
        gauss, bern = kind_arr == "gaussian", kind_arr == "bernoulli"
        out_of_range = bern & ((stats.min < 0) | (stats.max > 1))
        if out_of_range.any():
            _raise_bernoulli_range(np.flatnonzero(out_of_range), "fit", feature_names)
        mean, std = stats.mean[gauss], stats.std[gauss]
        # Constant (or all-missing) columns keep unit scale, as StandardScaler.
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        scale = np.where(std > tiny, std, 1.0)
        gauss_fill = np.zeros_like(mean)
        if not standardize:
            gauss_fill, mean, scale = mean, np.zeros_like(mean), np.ones_like(mean)
        p = np.where(stats.count[bern] > 0, stats.mean[bern], 0.5)
        fill = np.concatenate([gauss_fill, p])
        return cls(kinds, mean, scale, fill)

    @property
    def n_features(self) -> int:
        """Number of original columns."""
        return len(self.kinds)

    # ------------------------------------------------------------------ encode
    def encode(
        self, X: np.ndarray, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Float32 tensor in block order, standardized, missing entries filled.

        One conversion pass and one reduction pass over X; float32 data with
        only Bernoulli columns is used in place, without a copy.

        Returns
        -------
        x : Tensor of shape (n_samples, n_features)
            Never shares memory that the caller could later write to through
            this function: it is either a fresh tensor or a read-only view.
        mask : Tensor of shape (n_samples, n_features) or None
            1.0 where observed, 0.0 where missing; None when nothing is missing.

        Raises
        ------
        ValueError
            On infinite values, values beyond float32 after standardization,
            or Bernoulli columns outside [0, 1].
        """
        device = torch.device(device)
        if not X.flags.writeable:
            X = X.copy()  # torch.from_numpy warns on read-only arrays
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
            if not self._passthrough:
                # Two exactly rounded passes, not a fused multiply-add: FMA is
                # used in vector lanes only, which would make a row's result
                # depend on the shape of the batch it comes in.
                x.sub_(torch.as_tensor(self._center, dtype=x.dtype, device=device))
                x.mul_(torch.as_tensor(self._inv_scale, dtype=x.dtype, device=device))
            if not self.identity_order:
                x = x[:, torch.as_tensor(self.order, device=device)]
        n_gauss, n_bern = self.block_sizes
        # A single reduction finds NaN, inf and (for Bernoulli-only data) the
        # range; NaN propagates through min and max.
        lo, hi = (float(v) for v in torch.aminmax(x))
        has_nan = math.isnan(lo)
        if not has_nan and (math.isinf(lo) or math.isinf(hi)):
            raise ValueError(_TOO_LARGE)
        if has_nan and bool(torch.isinf(x).any()):
            raise ValueError(_TOO_LARGE)
        if n_bern and (n_gauss or has_nan or lo < 0 or hi > 1):
            block = x[:, n_gauss:]
            bad = ((block < 0) | (block > 1)).any(0)
            if bool(bad.any()):
                cols = self.order[n_gauss:][bad.cpu().numpy()]
                _raise_bernoulli_range(cols, "transform", None)
        if not has_nan:
            return x, None
        missing = torch.isnan(x)
        fill = torch.as_tensor(self.fill, dtype=x.dtype, device=x.device)
        x = torch.where(missing, fill, x)
        return x, (~missing).to(x.dtype)

    def log_det_jacobian(self, mask: torch.Tensor | None, n_samples: int) -> np.ndarray:
        """Sum of log(scale) over the observed Gaussian entries of each row.

        Subtract it from a log-density of the standardized data to obtain the
        log-density in the original units.
        """
        n_gauss = self.block_sizes[0]
        if mask is None:
            return np.full(n_samples, self.log_scale.sum())
        m = mask[:, :n_gauss].double().cpu().numpy()
        return m @ self.log_scale

    # ------------------------------------------------------------------ decode
    def decode(self, x: torch.Tensor) -> np.ndarray:
        """Float64 array in the original column order and units."""
        out = x.detach().to("cpu", torch.float64).numpy()
        n_gauss = self.block_sizes[0]
        if n_gauss:
            out[:, :n_gauss] = out[:, :n_gauss] * self.scale + self.mean
        if not self.identity_order:
            out = out[:, self.inverse_order]
        return out


def _raise_bernoulli_range(columns, when: str, names=None) -> None:
    which = [names[c] if names is not None else int(c) for c in columns]
    raise ValueError(
        f"Columns modelled as Bernoulli need values in [0, 1]; column(s) "
        f"{which[:10]} have values "
        f"outside that range at {when}. ('auto' makes a column Bernoulli when "
        "its training values are exactly {0, 1}.) Scale the data to [0, 1] or "
        "pass likelihood='gaussian' (or a dict per column)."
    )
