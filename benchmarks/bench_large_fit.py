r"""Large-table benchmark: default fits on 100,000 rows x 10 columns.

The question: how long does each skvae estimator take with ``random_state=0``
and nothing else on a table of 100,000 rows and 10 columns, on 2 CPU cores,
and is the result worth the time next to a fast scikit-learn peer?

Data: a seeded synthetic table from a nonlinear 3-factor model in mixed units,
``x = (W1 z + 0.8 tanh(W2 z)) * units + offsets + 0.3 noise * units``, 100,000
training rows and 20,000 held-out rows (``--rows`` changes the count;
``--quick`` uses 10,000).

* ``VAETransformer(random_state=0).fit(X)``: wall time, epochs, and the
  held-out log-likelihood (nats per row) against ``FactorAnalysis(8)``.
* ``VAEImputer(random_state=0).fit`` on the training table with 20% of its
  entries hidden at random, then ``transform`` of it: the wall time of each
  and the RMSE over the hidden entries (standardized units) against
  ``SimpleImputer`` (mean) and ``IterativeImputer(random_state=0)``
  (``fit_transform``).
* ``VAEOutlierDetector(random_state=0).fit(X)`` on the training rows plus 1%
  anomalies (rows of the same model whose first two columns are swapped):
  wall time and ROC-AUC of ``-score_samples`` against
  ``IsolationForest(random_state=0)``.

Every skvae warning is recorded. Torch and BLAS get ``--threads`` threads (2 by
default: the machine the target is stated for).

```
python benchmarks/bench_large_fit.py            # about 4 minutes on 2 cores
python benchmarks/bench_large_fit.py --verbose  # with skvae's progress bars
```
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import default_out, start_run, timer  # noqa: E402
from sklearn.decomposition import FactorAnalysis  # noqa: E402
from sklearn.ensemble import IsolationForest  # noqa: E402
from sklearn.experimental import enable_iterative_imputer  # noqa: E402, F401
from sklearn.impute import IterativeImputer, SimpleImputer  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer  # noqa: E402

N_COLUMNS = 10
N_TEST = 20_000
MISSING_RATE = 0.2
ANOMALY_SHARE = 0.01


def make_table(n_rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out rows of the nonlinear 3-factor model."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=(3, N_COLUMNS)), rng.normal(size=(3, N_COLUMNS))
    units = 10.0 ** rng.integers(-1, 3, N_COLUMNS)
    offsets = rng.normal(0, 5, N_COLUMNS) * units

    def draw(n: int) -> np.ndarray:
        z = rng.normal(size=(n, 3))
        signal = z @ w1 + 0.8 * np.tanh(z @ w2)
        return (signal + 0.3 * rng.normal(size=(n, N_COLUMNS))) * units + offsets

    return draw(n_rows), draw(N_TEST)


def fit_skvae(make, verbose: bool) -> tuple[Any, dict[str, Any]]:
    """Call ``make(verbose)``; its result, wall seconds and warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with timer() as t:
            model, output = make(verbose)
    record = {
        "seconds": t.wall_s,
        "n_iter": int(model.n_iter_),
        "stopped_by_validation": model.validation_scores_ is not None,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }
    return output, record


def run_transformer(X: np.ndarray, X_test: np.ndarray, verbose: bool) -> dict:
    """Default VAETransformer against FactorAnalysis(8): held-out log-likelihood."""

    def make(v):
        model = VAETransformer(random_state=0, verbose=int(v)).fit(X)
        return model, model.score(X_test)

    score, record = fit_skvae(make, verbose)
    with timer() as t:
        peer = FactorAnalysis(8).fit(X).score(X_test)
    return {
        "skvae": {**record, "heldout_loglik": score},
        "FactorAnalysis(8)": {"seconds": t.wall_s, "heldout_loglik": peer},
    }


def run_imputer(X: np.ndarray, verbose: bool) -> dict:
    """Default VAEImputer against SimpleImputer and IterativeImputer: RMSE."""
    rng = np.random.default_rng(1)
    hidden = rng.random(X.shape) < MISSING_RATE
    hidden[hidden.all(axis=1), 0] = False
    holes = np.where(hidden, np.nan, X)
    scale = X.std(axis=0)

    def rmse(filled: np.ndarray) -> float:
        err = (filled - X) / scale
        return float(np.sqrt(np.mean(err[hidden] ** 2)))

    def make(v):
        model = VAEImputer(random_state=0, verbose=int(v)).fit(holes)
        return model, model

    model, record = fit_skvae(make, verbose)
    with timer() as t:
        filled = model.transform(holes)
    out = {"skvae": {**record, "transform_seconds": t.wall_s, "rmse": rmse(filled)}}
    for name, peer in (
        ("SimpleImputer(mean)", SimpleImputer()),
        ("IterativeImputer", IterativeImputer(random_state=0)),
    ):
        with timer() as t, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = rmse(peer.fit_transform(holes))
        out[name] = {"seconds": t.wall_s, "rmse": value}
    return out


def run_detector(X: np.ndarray, verbose: bool) -> dict:
    """Default VAEOutlierDetector against IsolationForest: ROC-AUC."""
    rng = np.random.default_rng(2)
    n_bad = int(ANOMALY_SHARE * len(X))
    bad = X[rng.choice(len(X), n_bad, replace=False)].copy()
    bad[:, [0, 1]] = bad[:, [1, 0]]
    data = np.r_[X, bad]
    labels = np.r_[np.zeros(len(X)), np.ones(n_bad)]

    def make(v):
        model = VAEOutlierDetector(random_state=0, verbose=int(v)).fit(data)
        return model, model.score_samples(data)

    scores, record = fit_skvae(make, verbose)
    with timer() as t:
        peer = IsolationForest(random_state=0).fit(data).score_samples(data)
    return {
        "skvae": {**record, "roc_auc": float(roc_auc_score(labels, -scores))},
        "IsolationForest": {
            "seconds": t.wall_s,
            "roc_auc": float(roc_auc_score(labels, -peer)),
        },
    }


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the three fits, print a table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 rows")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = 10_000
    partial = not args.quick and args.rows != 100_000
    out = args.out or default_out(__file__, quick=args.quick, partial=partial)
    run = start_run(__file__, args)
    torch.set_num_threads(args.threads)
    X, X_test = make_table(args.rows)
    results = {}
    with threadpool_limits(args.threads):
        results["transformer"] = run_transformer(X, X_test, args.verbose)
        results["imputer"] = run_imputer(X, args.verbose)
        results["detector"] = run_detector(X, args.verbose)
    print(f"\n{args.rows:,} rows x {N_COLUMNS} columns, {args.threads} threads")
    print("| task | metric | skvae | skvae s | epochs | warnings | peer | peer s |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    metrics = {
        "transformer": "heldout_loglik",
        "imputer": "rmse",
        "detector": "roc_auc",
    }
    for task, metric in metrics.items():
        res = results[task]
        ours = res["skvae"]
        peers = ", ".join(
            f"{name} {value[metric]:.3f}"
            for name, value in res.items()
            if name != "skvae"
        )
        peer_s = ", ".join(
            f"{value['seconds']:.1f}" for name, value in res.items() if name != "skvae"
        )
        print(
            f"| {task} | {metric} | {ours[metric]:.3f} | {ours['seconds']:.1f} | "
            f"{ours['n_iter']} | {len(ours['warnings'])} | {peers} | {peer_s} |"
        )
    run.write(out, {"rows": args.rows, "columns": N_COLUMNS, "results": results})


if __name__ == "__main__":
    main()
