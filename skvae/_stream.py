"""Fitting from Dask collections: one summary pass, then epochs by partitions.

A Dask Array or Dask DataFrame is never materialized. :func:`summarize`
makes one parallel pass over its row blocks and returns, per column, the
exact counts of observed entries, the ranges and the labels, together with
a uniform sample of rows (from which the schema learns what needs values:
quantile maps, units, decimals) and the rows held out for early stopping.
:class:`PartitionStream` then feeds every epoch: the blocks in a new random
order, several consecutive ones mixed into a buffer of at least
:data:`BUFFER_ROWS` rows (the training loop shuffles the rows within it).
Peak memory is a few buffers plus the model.

Which rows are held out is decided per block by draws seeded with the
block's position, so every epoch drops the same rows without storing them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ._dask import require_dask
from ._data import ColumnFacts

#: Rows sampled uniformly for the schema (quantile maps, units, decimals,
#: category frequencies), and for the statistics taken at the end of a fit.
SCHEMA_ROWS = 100_000
#: At most this many rows are held out for early stopping: a held-out score
#: needs no more, and it is computed after every epoch.
HELD_OUT_ROWS = 50_000
#: Consecutive blocks (in an epoch's random order) are mixed into buffers of
#: at least this many rows, so that small partitions still give minibatches
#: drawn from many of them.
BUFFER_ROWS = 1 << 16


# ---------------------------------------------------------------------- blocks
@dataclass
class DaskRows:
    """A Dask Array or DataFrame as a list of row blocks and their lengths."""

    blocks: list
    lengths: list[int]
    frame: bool
    #: The empty pandas frame (columns and dtypes) of a Dask DataFrame.
    meta: object = None

    @classmethod
    def of(cls, X) -> DaskRows:
        """The row blocks of ``X``; block lengths are computed if unknown.

        Raises
        ------
        TypeError
            For a Dask collection that is neither an Array nor a DataFrame.
        ValueError
            For an array that is not 2-D.
        """
        dask = require_dask("dask")
        da = require_dask("dask.array")
        dd = require_dask("dask.dataframe")
        if isinstance(X, dd.DataFrame):
            blocks = list(X.to_delayed())
            lengths = [int(n) for n in X.map_partitions(len).compute()]
            return cls(blocks, lengths, True, X._meta)
        if not isinstance(X, da.Array):
            raise TypeError(
                "fit takes a Dask Array or Dask DataFrame; got a "
                f"{type(X).__name__}. Compute it first, or convert it."
            )
        if X.ndim != 2:
            raise ValueError(
                f"fit needs a 2-D input; got a Dask Array of shape {X.shape}."
            )
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        blocks = list(X.to_delayed().ravel())
        lengths = list(X.chunks[0])
        if any(math.isnan(n) for n in lengths):
            lengths = list(dask.compute(*[dask.delayed(len)(b) for b in blocks]))
        return cls(blocks, [int(n) for n in lengths], False)

    @property
    def n_rows(self) -> int:
        """Rows over all blocks."""
        return sum(self.lengths)


def row_draws(seed: int, index: int, n: int) -> np.ndarray:
    """Uniform draws of the rows of block ``index``: the same in every pass."""
    return np.random.default_rng([seed, index]).random(n)


# ---------------------------------------------------------------------- summary
@dataclass
class Summary:
    """What one pass over every row learns.

    ``count``, ``low`` and ``high`` are per column of the raw rows: observed
    entries, and the smallest and largest value (NaN for a label column or
    a column with no observed value). ``labels`` holds the labels seen in
    each label column of a DataFrame, by position.
    """

    n_rows: int
    n_train: int
    count: np.ndarray
    low: np.ndarray
    high: np.ndarray
    any_missing: np.ndarray
    labels: dict[int, list] = field(default_factory=dict)
    sample: object = None
    held_out: object = None


def summarize(rows: DaskRows, seed: int, held_out_rate: float) -> Summary:
    """One parallel pass: per-column facts, the schema sample, held-out rows.

    ``held_out_rate`` is the probability that a row is held out.
    """
    dask = require_dask("dask")
    n = rows.n_rows
    schema_rate = min(1.0, SCHEMA_ROWS / max(n, 1))
    task = dask.delayed(_summarize_block, pure=True)
    parts = dask.compute(
        *[
            task(block, i, seed, schema_rate, held_out_rate, rows.frame)
            for i, block in enumerate(rows.blocks)
        ]
    )
    count = np.sum([p["count"] for p in parts], axis=0)
    low = np.fmin.reduce([p["low"] for p in parts], axis=0)
    high = np.fmax.reduce([p["high"] for p in parts], axis=0)
    if np.isinf(low).any() or np.isinf(high).any():
        raise ValueError(
            "X contains infinity; remove or replace it (NaN marks a missing entry)."
        )
    labels: dict[int, list] = {}
    for p in parts:
        for j, values in p["labels"].items():
            labels.setdefault(j, set()).update(values)
    return Summary(
        n_rows=n,
        n_train=int(sum(p["n_train"] for p in parts)),
        count=count,
        low=low,
        high=high,
        any_missing=np.any([p["missing"] for p in parts], axis=0),
        labels={j: list(v) for j, v in labels.items()},
        sample=_concat([p["sample"] for p in parts], rows.frame),
        held_out=_concat([p["held_out"] for p in parts], rows.frame),
    )


def _summarize_block(block, index, seed, schema_rate, held_out_rate, frame):
    n = len(block)
    u = row_draws(seed, index, n)
    held = u < held_out_rate
    out = {
        "n_train": int(n - held.sum()),
        "sample": _take(block, u < schema_rate),
        "held_out": _take(block, held),
        "labels": {},
    }
    if frame:
        out.update(_frame_facts(block))
    else:
        values = np.asarray(block, dtype=np.float64)
        observed = ~np.isnan(values)
        out["count"] = observed.sum(0)
        out["missing"] = (~observed).any(0)
        out["low"] = np.fmin.reduce(values, axis=0, initial=np.nan)
        out["high"] = np.fmax.reduce(values, axis=0, initial=np.nan)
    return out


def _frame_facts(part) -> dict:
    """Per-column counts, ranges and labels of a pandas partition."""
    import pandas as pd

    p = part.shape[1]
    missing = part.isna().to_numpy()
    low, high = np.full(p, np.nan), np.full(p, np.nan)
    labels = {}
    for j in range(p):
        series = part.iloc[:, j]
        dtype = series.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            codes = np.unique(series.cat.codes.to_numpy())
            labels[j] = list(series.cat.categories[codes[codes >= 0]])
        elif pd.api.types.is_bool_dtype(dtype) or not (
            pd.api.types.is_numeric_dtype(dtype)
        ):
            labels[j] = list(pd.unique(series.dropna().to_numpy(dtype=object)))
        else:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            low[j] = np.fmin.reduce(values, initial=np.nan)
            high[j] = np.fmax.reduce(values, initial=np.nan)
    return {
        "count": (~missing).sum(0),
        "missing": missing.any(0),
        "low": low,
        "high": high,
        "labels": labels,
    }


def _take(block, keep: np.ndarray):
    """The rows of a block (an array or a pandas frame) where ``keep``."""
    if hasattr(block, "iloc"):
        return block.iloc[np.flatnonzero(keep)]
    return np.asarray(block)[keep]


def _concat(parts: list, frame: bool):
    """Blocks of rows as one array or frame."""
    if frame:
        import pandas as pd

        return pd.concat(parts) if parts else None
    return np.concatenate(parts) if parts else None


# ---------------------------------------------------------------------- epochs
class PartitionStream:
    """The training rows of a Dask collection, an epoch at a time.

    Calling it with the run's generator yields the epoch's buffers, each
    turned into training data by ``prepare`` (validation and encoding of
    the raw rows). The blocks' order is random per epoch. A buffer is
    computed when the previous one has trained: computed beside the
    training instead, it took cores from torch's threads and slowed the
    epoch down.
    """

    def __init__(
        self,
        rows: DaskRows,
        seed: int,
        held_out_rate: float,
        prepare: Callable,
        n_train: int,
    ) -> None:
        self.rows, self.seed, self.held_out_rate = rows, seed, held_out_rate
        self.prepare = prepare
        #: Training rows per epoch (the held-out rows never train).
        self.n_rows = n_train
        self._whole = None

    def buffers(self, generator: torch.Generator) -> list[list[int]]:
        """Block indices of each buffer of one epoch, in the epoch's order."""
        seed = int(
            torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device)
        )
        order = torch.randperm(
            len(self.rows.blocks), generator=torch.Generator().manual_seed(seed)
        ).tolist()
        groups, current, size = [], [], 0
        for i in order:
            current.append(i)
            size += self.rows.lengths[i]
            if size >= BUFFER_ROWS:
                groups.append(current)
                current, size = [], 0
        if current:
            groups.append(current)
        return groups

    def load(self, group: list[int]):
        """The training rows of the blocks in ``group``, prepared."""
        dask = require_dask("dask")
        raw = dask.compute(*[self.rows.blocks[i] for i in group])
        kept = [
            _take(block, row_draws(self.seed, i, len(block)) >= self.held_out_rate)
            for i, block in zip(group, raw, strict=True)
        ]
        rows = _concat(kept, self.rows.frame)
        return None if len(rows) == 0 else self.prepare(rows)

    def __call__(self, generator: torch.Generator) -> Iterator:
        """The epoch's training data, a buffer at a time.

        When every block fits in one buffer, it is computed and prepared once
        and kept for the following epochs.
        """
        groups = self.buffers(generator)
        if len(groups) == 1:
            if self._whole is None:
                self._whole = self.load(groups[0])
            if self._whole is not None:
                yield self._whole
            return
        for group in groups:
            data = self.load(group)
            if data is not None:
                yield data


def held_out_rate(n_rows: int, fraction: float, early: bool) -> float:
    """Probability that a row is held out: ``fraction``, capped in rows."""
    if not early:
        return 0.0
    return min(float(fraction), HELD_OUT_ROWS / max(n_rows, 1))


def facts_of(summary: Summary, frame) -> ColumnFacts:
    """The summary's facts for the numeric matrix (label columns as codes)."""
    low, high = summary.low.copy(), summary.high.copy()
    if frame is not None:
        for j, col in enumerate(frame.columns):
            if col.coded:
                low[j], high[j] = 0.0, float(len(col.categories) - 1)
    return ColumnFacts(summary.count, low, high, summary.any_missing)
