"""The numpy <-> tensor boundary: column kinds, standardization, missingness.

:class:`TabularSchema` is fitted once on the training data. It decides which
likelihood models each column, reorders columns so that each kind forms one
contiguous block, standardizes Gaussian columns, and turns NaN into a mask.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch

KINDS = ("gaussian", "bernoulli")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_TOO_LARGE = "X has values too large for float32 (about 3.4e38); rescale them."


def _is_binary(col: np.ndarray) -> bool:
    values = np.unique(col[~np.isnan(col)])
    return values.size == 2 and bool(np.all((values == 0) | (values == 1)))


def resolve_kinds(
    X: np.ndarray,
    likelihood: str | Mapping,
    feature_names: Sequence[str] | None,
) -> list[str]:
    """Likelihood kind of each column of ``X``.

    ``"auto"`` gives Bernoulli to columns whose observed values are exactly
    {0, 1} and Gaussian to the rest. A mapping assigns kinds by column name
    (or integer position); unlisted columns get ``"auto"``.
    """
    n_features = X.shape[1]
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
        k if k is not None else ("bernoulli" if _is_binary(X[:, j]) else "gaussian")
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

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        likelihood: str | Mapping = "auto",
        feature_names: Sequence[str] | None = None,
    ) -> TabularSchema:
        """Learn column kinds and standardization from ``X`` (NaN = missing)."""
        kinds = resolve_kinds(X, likelihood, feature_names)
        kind_arr = np.asarray(kinds)
        gauss = X[:, kind_arr == "gaussian"].astype(np.float64)
        bern = X[:, kind_arr == "bernoulli"].astype(np.float64)
        _check_bernoulli_range(bern, "fit")
        if gauss.size and np.nanmax(np.abs(gauss), initial=0.0) > _FLOAT32_MAX:
            raise ValueError(_TOO_LARGE)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            mean = np.nanmean(gauss, axis=0)
            std = np.nanstd(gauss, axis=0)
            p = np.nanmean(bern, axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        # Constant (or all-missing) columns keep unit scale, as StandardScaler.
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        scale = np.where(np.isfinite(std) & (std > tiny), std, 1.0)
        p = np.where(np.isfinite(p), p, 0.5)
        fill = np.concatenate([np.zeros_like(mean), p])
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

        Returns
        -------
        x : Tensor of shape (n_samples, n_features)
        mask : Tensor of shape (n_samples, n_features) or None
            1.0 where observed, 0.0 where missing; None when nothing is missing.
        """
        if self.identity_order:
            x = torch.tensor(X, dtype=torch.float32, device=device)
        else:
            x = torch.as_tensor(X[:, self.order], dtype=torch.float32, device=device)
        n_gauss, n_bern = self.block_sizes
        if n_bern:
            _check_bernoulli_range(
                x[:, n_gauss:], "transform", self.order[n_gauss:].tolist()
            )
        if n_gauss:
            g = x[:, :n_gauss] if n_bern else x
            g.sub_(torch.as_tensor(self.mean, dtype=x.dtype, device=x.device))
            g.mul_(torch.as_tensor(1.0 / self.scale, dtype=x.dtype, device=x.device))
        # One read-only pass: NaN propagates through the sum (inf was rejected
        # earlier), and only data with gaps pay for the elementwise mask.
        total = x.sum()
        if bool(torch.isinf(total)) and bool(torch.isinf(x).any()):
            raise ValueError(_TOO_LARGE)
        if not bool(torch.isnan(total)):
            return x, None
        missing = torch.isnan(x)
        if not bool(missing.any()):  # the sum overflowed: nothing is missing
            return x, None
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


def _check_bernoulli_range(values, when: str, names=None) -> None:
    lib = torch if isinstance(values, torch.Tensor) else np
    bad = lib.any((values < 0) | (values > 1), 0) if values.shape[1] else None
    if bad is None or not bool(bad.any()):
        return
    cols = np.flatnonzero(np.asarray(bad.cpu() if lib is torch else bad))
    which = [names[c] for c in cols] if names is not None else cols.tolist()
    raise ValueError(
        f"Columns modelled as Bernoulli need values in [0, 1]; column(s) "
        f"{which[:10]} have values outside that range at {when}. ('auto' makes "
        "a column Bernoulli when its training values are exactly {0, 1}.) Scale "
        "the data to [0, 1] or pass likelihood='gaussian' (or a dict per column)."
    )
