"""Imputation benchmark: VAEImputer against scikit-learn's imputers.

Protocol
--------
Each dataset is standardized (``StandardScaler`` on the complete table), then
entries are hidden completely at random (MCAR) at 20% and 50%; a row that
would lose every entry gets one random entry back, so no row is empty. The
seed fixes the mask and the estimators' ``random_state``; every method of one
(dataset, rate, seed) sees the same mask. Each method runs ``fit_transform``
on the masked table; the metric is the RMSE over the hidden entries, in
standardized units, and the wall time of ``fit_transform``.

Reported per dataset x rate: mean +- std over seeds of RMSE and seconds.
Ranks: within each (dataset, rate, seed) the methods are ranked by RMSE
(1 = best, ties averaged), and each method's mean rank is reported overall and
per rate. At 50% missing, the script also says whether VAEImputer has a lower
mean RMSE than ``IterativeImputer`` (BayesianRidge) on every dataset.

Multiple imputation (VAEImputer only): after ``fit_transform``,
``sample_imputations(X, n_imputations=20, random_state=seed)`` gives 20 draws
of the missing entries; reported are the share of hidden true values inside
the central 90% interval of the draws (5th to 95th percentile per entry, the
target being 0.80 to 0.97), the RMSE of the mean of the draws and the time of
the sampling call.

Datasets
--------
* ``breast_cancer`` (569 x 30), ``wine`` (178 x 13), ``diabetes`` (442 x 10):
  the scikit-learn loaders, X only.
* ``diamonds`` (5,000 x 7): ggplot2's diamonds table as shipped by pydataset,
  numeric columns carat, depth, table, price, x, y, z, a fixed random
  subsample of 5,000 of the 53,940 rows (subsample seed 0, independent of the
  run seed), price log-transformed. Chosen over the other pydataset tables
  with several thousand rows because it is complete, continuous and strongly
  correlated (carat, log price and the three dimensions), with two weakly
  related columns (depth, table); the larger candidates (baseball, movies,
  DoctorAUS, ...) are mostly counts or codes with many missing values.

Competitors
-----------
``mean`` (SimpleImputer), ``knn`` (KNNImputer, 5 neighbours), ``iterative``
(IterativeImputer, BayesianRidge, 10 rounds), ``missforest``
(IterativeImputer over ExtraTreesRegressor with 50 trees, 10 rounds) and
``skvae`` (VAEImputer with its defaults, plus any ``--skvae-params``).
ConvergenceWarnings of IterativeImputer are silenced.

Threads
-------
NumPy/SciPy's OpenBLAS is limited to one thread (``threadpoolctl``) during
the runs, ``--blas-threads`` to change, 0 for the library default: on a busy
2-core machine, the default two spinning BLAS threads made IterativeImputer
on breast_cancer take 39 s instead of 0.7 s. PyTorch's own threads are left
alone. Scripts that import the helpers may want the same
``threadpool_limits(1, user_api="blas")`` around their runs.

Usage
-----
``python benchmarks/bench_impute.py`` runs everything with seeds 0 1 2 and
writes ``benchmarks/results/bench_impute.json`` (every dataset, rate, seed
and method in that one file, after the harness's ``"run"`` block: command
line, arguments, environment, see ``_common.py``); ``--quick`` runs one seed
on breast_cancer and wine, with 20 trees for ``missforest``, and writes
``bench_impute_quick.json``. ``--datasets``, ``--methods``, ``--seeds``,
``--rates`` pick subsets (written to ``bench_impute_partial.json``; ``--out``
overrides every default), and
``--skvae-params '{"n_components": 10}'`` passes keyword arguments to
VAEImputer (recorded in the JSON). The helpers (``load_datasets``,
``make_mcar_mask``, ``mask_problem``, ``rmse_hidden``, ``interval_coverage``,
``evaluate_imputer``) can be imported for tuning experiments, e.g. with
``sys.path.insert(0, "benchmarks")`` and ``import bench_impute``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    default_out,
    load_pydataset,
    load_sklearn,
    markdown_table,
    mean_std,
    resolve_seeds,
    start_run,
    timer,
)

DATASETS = ("breast_cancer", "wine", "diabetes", "diamonds")
QUICK_DATASETS = ("breast_cancer", "wine")
RATES = (0.2, 0.5)
DIAMONDS_COLUMNS = ["carat", "depth", "table", "price", "x", "y", "z"]
DIAMONDS_ROWS = 5000
N_IMPUTATIONS = 20
FULL_SEEDS = [0, 1, 2]

#: A factory maps (seed, settings) to an unfitted imputer with fit_transform.
Factory = Callable[[int, dict[str, Any]], Any]


# ---------------------------------------------------------------- data
def load_diamonds(n_rows: int = DIAMONDS_ROWS, seed: int = 0) -> np.ndarray:
    """Numeric diamonds columns, a seeded subsample of rows, log price.

    Parameters
    ----------
    n_rows : int
        Number of rows kept, drawn without replacement.
    seed : int
        Seed of the subsample (not the run seed).

    Returns
    -------
    ndarray of shape (n_rows, 7)
        carat, depth, table, log(price), x, y, z; not standardized.
    """
    frame = load_pydataset("diamonds")
    frame = frame[DIAMONDS_COLUMNS].dropna().astype(np.float64)
    frame["price"] = np.log(frame["price"])
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(frame), size=min(n_rows, len(frame)), replace=False)
    return frame.to_numpy()[np.sort(rows)]


def load_raw(name: str) -> np.ndarray:
    """The complete, unscaled feature table of one dataset."""
    if name in ("breast_cancer", "wine", "diabetes"):
        return load_sklearn(name)[0]
    if name == "diamonds":
        return load_diamonds()
    raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}")


def load_datasets(names: list[str] | tuple[str, ...] = DATASETS) -> dict:
    """Standardized complete tables, by name.

    Parameters
    ----------
    names : sequence of str
        Datasets among ``DATASETS``.

    Returns
    -------
    dict of str to ndarray
        Each table standardized with ``StandardScaler`` before any masking.
    """
    return {
        name: StandardScaler().fit_transform(load_raw(name).astype(np.float64))
        for name in names
    }


# ---------------------------------------------------------------- masks
def make_mcar_mask(X: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Missing-completely-at-random mask with no fully missing row.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Only its shape is used.
    rate : float
        Probability that an entry is hidden.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray of bool, same shape as X
        True where the entry is hidden. Rows drawn fully hidden get one
        random entry revealed again.
    """
    mask = rng.random(X.shape) < rate
    empty = np.flatnonzero(mask.all(axis=1))
    if empty.size:
        mask[empty, rng.integers(X.shape[1], size=empty.size)] = False
    return mask


def mask_seed(dataset: str, rate: float, seed: int) -> list[int]:
    """Entropy for the mask of one (dataset, rate, seed)."""
    return [seed, int(round(rate * 1000)), zlib.crc32(dataset.encode())]


def mask_problem(
    X: np.ndarray, dataset: str, rate: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The masked table (NaN where hidden) and its mask, reproducibly.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Complete standardized table.
    dataset : str
        Dataset name; enters the mask seed.
    rate : float
        Missing rate.
    seed : int
        Run seed.

    Returns
    -------
    X_missing : ndarray
        Copy of X with NaN at hidden entries.
    mask : ndarray of bool
        True where hidden.
    """
    rng = np.random.default_rng(mask_seed(dataset, rate, seed))
    mask = make_mcar_mask(X, rate, rng)
    X_missing = X.copy()
    X_missing[mask] = np.nan
    return X_missing, mask


# ---------------------------------------------------------------- metrics
def rmse_hidden(X_true: np.ndarray, X_imputed: np.ndarray, mask: np.ndarray) -> float:
    """Root mean squared error over the hidden entries only."""
    diff = X_imputed[mask] - X_true[mask]
    return float(np.sqrt(np.mean(diff**2)))


def interval_coverage(
    X_true: np.ndarray, draws: np.ndarray, mask: np.ndarray, level: float = 0.9
) -> float:
    """Share of hidden true values inside the central interval of the draws.

    Parameters
    ----------
    X_true : ndarray of shape (n_samples, n_features)
        Complete table.
    draws : ndarray of shape (n_imputations, n_samples, n_features)
        Multiple imputations.
    mask : ndarray of bool
        True where hidden.
    level : float
        Central probability of the interval (0.9: 5th to 95th percentile).

    Returns
    -------
    float
        Fraction of hidden entries whose true value lies in the interval.
    """
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws[:, mask], [tail, 100 - tail], axis=0)
    truth = X_true[mask]
    return float(np.mean((truth >= low) & (truth <= high)))


# ---------------------------------------------------------------- methods
def mean_imputer(seed: int, settings: dict[str, Any]) -> SimpleImputer:
    """Column means."""
    return SimpleImputer(strategy="mean")


def knn_imputer(seed: int, settings: dict[str, Any]) -> KNNImputer:
    """Mean of the 5 nearest rows (nan-Euclidean distance)."""
    return KNNImputer(n_neighbors=5)


def iterative_imputer(seed: int, settings: dict[str, Any]) -> IterativeImputer:
    """Chained equations with BayesianRidge, 10 rounds."""
    return IterativeImputer(max_iter=10, random_state=seed)


def missforest_imputer(seed: int, settings: dict[str, Any]) -> IterativeImputer:
    """Chained equations with extra trees, a missForest stand-in."""
    forest = ExtraTreesRegressor(
        n_estimators=settings.get("n_trees", 50), random_state=seed, n_jobs=1
    )
    return IterativeImputer(forest, max_iter=10, random_state=seed)


def skvae_imputer(seed: int, settings: dict[str, Any]) -> Any:
    """VAEImputer with its defaults, updated by ``settings['skvae_params']``."""
    from skvae import VAEImputer

    return VAEImputer(random_state=seed, **settings.get("skvae_params", {}))


#: Short name -> (label, factory).
METHODS: dict[str, tuple[str, Factory]] = {
    "mean": ("SimpleImputer(mean)", mean_imputer),
    "knn": ("KNNImputer(5)", knn_imputer),
    "iterative": ("IterativeImputer(BayesianRidge)", iterative_imputer),
    "missforest": ("IterativeImputer(ExtraTrees)", missforest_imputer),
    "skvae": ("VAEImputer", skvae_imputer),
}
#: Methods whose ConvergenceWarnings are silenced.
QUIET = {"iterative", "missforest"}


# ---------------------------------------------------------------- running
def evaluate_imputer(
    imputer: Any,
    X_true: np.ndarray,
    X_missing: np.ndarray,
    mask: np.ndarray,
    quiet: bool = False,
) -> dict[str, float]:
    """Time ``fit_transform`` on the masked table and score the hidden entries.

    Parameters
    ----------
    imputer : estimator
        Unfitted imputer; it is fitted in place.
    X_true, X_missing : ndarray of shape (n_samples, n_features)
        Complete and masked tables.
    mask : ndarray of bool
        True where hidden.
    quiet : bool
        Silence ConvergenceWarnings.

    Returns
    -------
    dict
        ``rmse`` and ``seconds``.
    """
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", ConvergenceWarning)
        with timer() as t:
            X_imputed = imputer.fit_transform(X_missing)
    X_imputed = np.asarray(X_imputed, dtype=np.float64)
    if np.isnan(X_imputed).any():
        raise RuntimeError(f"{type(imputer).__name__} left NaN entries")
    if not np.allclose(X_imputed[~mask], X_true[~mask]):
        warnings.warn(
            f"{type(imputer).__name__} changed observed entries", stacklevel=2
        )
    return {"rmse": rmse_hidden(X_true, X_imputed, mask), "seconds": t.wall_s}


def evaluate_draws(
    imputer: Any,
    X_true: np.ndarray,
    X_missing: np.ndarray,
    mask: np.ndarray,
    seed: int,
    n_imputations: int = N_IMPUTATIONS,
) -> dict[str, float]:
    """Coverage and RMSE of multiple imputations from a fitted VAEImputer.

    Parameters
    ----------
    imputer : VAEImputer
        Fitted on ``X_missing``.
    X_true, X_missing : ndarray of shape (n_samples, n_features)
        Complete and masked tables.
    mask : ndarray of bool
        True where hidden.
    seed : int
        ``random_state`` of the draws.
    n_imputations : int
        Number of draws.

    Returns
    -------
    dict
        ``coverage90``, ``rmse_mean_draws``, ``mean_draw_sd`` (average
        standard deviation of the draws over hidden entries) and ``seconds``.
    """
    with timer() as t:
        draws = imputer.sample_imputations(
            X_missing, n_imputations=n_imputations, random_state=seed
        )
    draws = np.asarray(draws, dtype=np.float64)
    expected = (n_imputations, *X_true.shape)
    if draws.shape != expected:
        raise RuntimeError(f"draws have shape {draws.shape}, expected {expected}")
    return {
        "coverage90": interval_coverage(X_true, draws, mask, level=0.9),
        "rmse_mean_draws": rmse_hidden(X_true, draws.mean(axis=0), mask),
        "mean_draw_sd": float(draws[:, mask].std(axis=0).mean()),
        "seconds": t.wall_s,
    }


def rate_key(rate: float) -> str:
    """JSON/table key of a missing rate, e.g. '20%'."""
    return f"{round(100 * rate)}%"


def run(
    data: dict[str, np.ndarray],
    rates: list[float],
    seeds: list[int],
    methods: list[str],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Every method on every (dataset, rate, seed); raw runs and summaries.

    Parameters
    ----------
    data : dict of str to ndarray
        Standardized complete tables (see ``load_datasets``).
    rates : list of float
        Missing rates.
    seeds : list of int
        Run seeds.
    methods : list of str
        Short names among ``METHODS``.
    settings : dict
        ``n_trees``, ``skvae_params`` (for the factories), ``n_imputations``
        and ``blas_threads`` (0: no limit; default 1).

    Returns
    -------
    dict
        ``runs``, ``draw_runs`` (raw per seed), ``summary``, ``draw_summary``,
        ``mean_rank``, ``skvae_beats_iterative_at_50``.
    """
    runs: list[dict[str, Any]] = []
    draw_runs: list[dict[str, Any]] = []
    blas_threads = settings.get("blas_threads", 1)
    limits = (
        threadpool_limits(blas_threads, user_api="blas")
        if blas_threads
        else contextlib.nullcontext()
    )
    with limits:
        for dataset, X in data.items():
            for rate in rates:
                for seed in seeds:
                    X_missing, mask = mask_problem(X, dataset, rate, seed)
                    cell = {"dataset": dataset, "rate": rate_key(rate), "seed": seed}
                    for method in methods:
                        imputer = METHODS[method][1](seed, settings)
                        result = evaluate_imputer(
                            imputer, X, X_missing, mask, quiet=method in QUIET
                        )
                        runs.append({**cell, "method": method, **result})
                        line = (
                            f"  {dataset:<14}{rate_key(rate):>4} seed {seed}  "
                            f"{method:<11} RMSE {result['rmse']:.4f}  "
                            f"{result['seconds']:7.2f} s"
                        )
                        if method == "skvae":
                            draws = evaluate_draws(
                                imputer,
                                X,
                                X_missing,
                                mask,
                                seed,
                                settings.get("n_imputations", N_IMPUTATIONS),
                            )
                            draw_runs.append({**cell, **draws})
                            line += (
                                f"  | cover90 {draws['coverage90']:.3f}  "
                                f"RMSE(mean draws) {draws['rmse_mean_draws']:.4f}"
                            )
                        print(line, flush=True)
    return {
        "runs": runs,
        "draw_runs": draw_runs,
        "summary": summarize(runs),
        "draw_summary": summarize_draws(draw_runs),
        "mean_rank": mean_ranks(runs),
        "skvae_beats_iterative_at_50": beats_at_50(runs),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per dataset -> rate -> method: mean and std over seeds of RMSE, seconds."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["rate"], r["method"]), []).append(r)
    out: dict[str, Any] = {}
    for (dataset, rate, method), rows in groups.items():
        out.setdefault(dataset, {}).setdefault(rate, {})[method] = {
            "rmse": mean_std([r["rmse"] for r in rows]),
            "seconds": mean_std([r["seconds"] for r in rows]),
            "n_seeds": len(rows),
        }
    return out


def summarize_draws(draw_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per dataset -> rate: mean and std over seeds of the draw metrics."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in draw_runs:
        groups.setdefault((r["dataset"], r["rate"]), []).append(r)
    out: dict[str, Any] = {}
    for (dataset, rate), rows in groups.items():
        out.setdefault(dataset, {})[rate] = {
            key: mean_std([r[key] for r in rows])
            for key in ("coverage90", "rmse_mean_draws", "mean_draw_sd", "seconds")
        }
    return out


def mean_ranks(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean RMSE rank of each method, overall and per rate.

    Within each (dataset, rate, seed) the methods are ranked by RMSE, 1 being
    the lowest, ties sharing the average rank.
    """
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["rate"], r["seed"]), []).append(r)
    ranks: dict[str, dict[str, list[float]]] = {}
    for (_, rate, _), rows in groups.items():
        for r, rank in zip(rows, rankdata([r["rmse"] for r in rows]), strict=True):
            for scope in ("overall", rate):
                ranks.setdefault(scope, {}).setdefault(r["method"], []).append(
                    float(rank)
                )
    return {
        scope: {m: float(np.mean(v)) for m, v in per.items()}
        for scope, per in ranks.items()
    }


def beats_at_50(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Whether skvae's mean RMSE is below iterative's on each dataset at 50%."""
    summary = summarize([r for r in runs if r["rate"] == "50%"])
    verdict: dict[str, Any] = {}
    for dataset, per_rate in summary.items():
        cell = per_rate["50%"]
        if "skvae" in cell and "iterative" in cell:
            verdict[dataset] = bool(
                cell["skvae"]["rmse"]["mean"] < cell["iterative"]["rmse"]["mean"]
            )
    if not verdict:
        return None
    return {"per_dataset": verdict, "all": all(verdict.values())}


# ---------------------------------------------------------------- printing
def print_tables(results: dict[str, Any], methods: list[str]) -> None:
    """Markdown tables: RMSE and time, mean ranks, VAEImputer coverage."""
    print("\n### RMSE on hidden entries (standardized units), mean +- std over seeds")
    print("`*` marks the lowest mean RMSE of a dataset x rate.\n")
    rows = []
    for dataset, per_rate in results["summary"].items():
        for rate, cell in per_rate.items():
            best = min(cell, key=lambda m: cell[m]["rmse"]["mean"])
            for method in methods:
                if method not in cell:
                    continue
                s = cell[method]
                star = "*" if method == best else " "
                rows.append(
                    [
                        dataset,
                        rate,
                        METHODS[method][0],
                        f"{s['rmse']['mean']:.4f} +- {s['rmse']['std']:.4f}{star}",
                        f"{s['seconds']['mean']:.2f} +- {s['seconds']['std']:.2f}",
                    ]
                )
    print(markdown_table(["dataset", "missing", "method", "RMSE", "seconds"], rows))

    ranks = results["mean_rank"]
    scopes = ["overall", *[k for k in ranks if k != "overall"]]
    print("\n### Mean rank by RMSE (1 = best) over dataset x rate x seed\n")
    rows = [
        [METHODS[method][0]] + [f"{ranks[s].get(method, np.nan):.2f}" for s in scopes]
        for method in sorted(methods, key=lambda m: ranks["overall"].get(m, np.inf))
    ]
    print(markdown_table(["method", *scopes], rows))

    verdict = results["skvae_beats_iterative_at_50"]
    if verdict is not None:
        per = ", ".join(
            f"{d}: {'yes' if v else 'no'}" for d, v in verdict["per_dataset"].items()
        )
        print(
            "\nVAEImputer beats IterativeImputer(BayesianRidge) at 50% on every "
            f"dataset: {'YES' if verdict['all'] else 'NO'} ({per})"
        )

    if results["draw_summary"]:
        n_draws = results["config"]["n_imputations"]
        print(
            f"\n### VAEImputer multiple imputation ({n_draws} draws): "
            "90% interval coverage (target 0.80-0.97)\n"
        )
        rows = [
            [
                dataset,
                rate,
                f"{s['coverage90']['mean']:.3f} +- {s['coverage90']['std']:.3f}",
                f"{s['rmse_mean_draws']['mean']:.4f} +- "
                f"{s['rmse_mean_draws']['std']:.4f}",
                f"{s['mean_draw_sd']['mean']:.3f}",
                f"{s['seconds']['mean']:.2f}",
            ]
            for dataset, per_rate in results["draw_summary"].items()
            for rate, s in per_rate.items()
        ]
        header = [
            "dataset",
            "missing",
            "coverage90",
            "RMSE of mean draw",
            "draw sd",
            "seconds",
        ]
        print(markdown_table(header, rows))


# ---------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: seed 0, breast_cancer and wine, 20 trees for missforest",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="run seeds (default 0 1 2; 0 with --quick)",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=DATASETS,
        default=None,
        help="default: all (breast_cancer wine with --quick)",
    )
    parser.add_argument(
        "--methods", nargs="+", choices=list(METHODS), default=list(METHODS)
    )
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--n-imputations", type=int, default=N_IMPUTATIONS)
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="OpenBLAS threads during the runs (0: library default)",
    )
    parser.add_argument(
        "--skvae-params",
        type=json.loads,
        default={},
        help="JSON object of extra VAEImputer keyword arguments",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output (default benchmarks/results/bench_impute.json; "
        "bench_impute_quick.json with --quick, bench_impute_partial.json with "
        "other seeds, datasets, methods or rates)",
    )
    args = parser.parse_args(argv)
    if not isinstance(args.skvae_params, dict):
        parser.error("--skvae-params must be a JSON object")
    partial = not (
        args.seeds in (None, FULL_SEEDS)
        and args.datasets in (None, list(DATASETS))
        and args.methods == list(METHODS)
        and args.rates == list(RATES)
    )
    args.seeds = resolve_seeds(args.seeds, args.quick, full=FULL_SEEDS)
    if args.datasets is None:
        args.datasets = list(QUICK_DATASETS if args.quick else DATASETS)
    if args.out is None:
        args.out = default_out(__file__, quick=args.quick, partial=partial)
    return args


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run, print the tables and write JSON."""
    args = parse_args(argv)
    settings: dict[str, Any] = {
        "n_trees": 20 if args.quick else 50,
        "skvae_params": args.skvae_params,
        "n_imputations": args.n_imputations,
        "blas_threads": args.blas_threads,
    }
    # torch and skvae are loaded only when VAEImputer runs, as before
    imports = ("torch", "skvae") if "skvae" in args.methods else ()
    run_info = start_run(__file__, args, imports=imports)
    data = load_datasets(args.datasets)
    for name, X in data.items():
        print(f"{name}: {X.shape[0]} x {X.shape[1]}", flush=True)
    config: dict[str, Any] = {
        "quick": args.quick,
        "seeds": args.seeds,
        "rates": args.rates,
        "datasets": {name: list(X.shape) for name, X in data.items()},
        "methods": {m: METHODS[m][0] for m in args.methods},
        "missforest_trees": settings["n_trees"],
        "skvae_params": args.skvae_params,
        "n_imputations": args.n_imputations,
        "blas_threads": args.blas_threads,
    }
    results = {"config": config}
    results.update(run(data, args.rates, args.seeds, args.methods, settings))
    print_tables(results, args.methods)
    run_info.write(args.out, results)


if __name__ == "__main__":
    main()
