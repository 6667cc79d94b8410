"""Save and load times and file size of ``skvae.save`` / ``skvae.load``.

What it measures
----------------
A ``VAETransformer`` with about one million parameters (784 inputs, hidden
layers 512 and 256, 16 latent components, Gaussian pixels; one epoch on
2,000 random rows, since the weights' values do not matter here), and the
three estimators on ``load_breast_cancer`` with their defaults. For each:
wall time of ``skvae.save`` and of ``skvae.load`` (fastest of ``--repeats``),
``pickle`` of the same estimator for reference, the file's size against the
bytes of its tensors plus its JSON header, and whether the loaded model's
``score_samples`` (imputer: ``transform``) equals the saved one's bit for
bit.

How to run
----------
From the repository root::

    python benchmarks/bench_persist.py            # ~1 minute
    python benchmarks/bench_persist.py --repeats 3 --out /tmp/persist.json

The JSON (default ``benchmarks/results/bench_persist.json``) starts with the
shared harness's ``"run"`` block.
"""

from __future__ import annotations

import argparse
import os
import pickle
import struct
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import start_run  # noqa: E402

import skvae  # noqa: E402
from skvae import VAEImputer, VAEOutlierDetector, VAETransformer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def models() -> dict[str, tuple[object, np.ndarray]]:
    """The fitted estimators to save, with data to check their outputs on."""
    rng = np.random.default_rng(0)
    pixels = rng.random((2000, 784))
    X = load_breast_cancer().data
    holes = X.copy()
    holes[rng.random(X.shape) < 0.2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "transformer 1M params": (
                VAETransformer(
                    16,
                    hidden_layer_sizes=(512, 256),
                    max_iter=1,
                    early_stopping=False,
                    random_state=0,
                ).fit(pixels),
                pixels[:200],
            ),
            "transformer (breast cancer)": (
                VAETransformer(random_state=0).fit(X),
                X,
            ),
            "imputer (breast cancer, 20% missing)": (
                VAEImputer(random_state=0).fit(holes),
                holes,
            ),
            "detector (breast cancer)": (
                VAEOutlierDetector(random_state=0).fit(X),
                X,
            ),
        }


def outputs(est, X) -> np.ndarray:
    """What the round trip must reproduce: imputations or row scores."""
    return est.transform(X) if isinstance(est, VAEImputer) else est.score_samples(X)


def fastest(fn, repeats: int) -> float:
    """Fastest wall time of ``repeats`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def header_bytes(path: Path) -> int:
    """Bytes of a safetensors file's length prefix and JSON header."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    return 8 + n


def measure(name: str, est, X, repeats: int, folder: str) -> dict:
    """Times, sizes and the bit-identity check of one estimator."""
    path = Path(folder) / "model.safetensors"
    save_s = fastest(lambda: skvae.save(est, path), repeats)
    load_s = fastest(lambda: skvae.load(path), repeats)
    pickle_s = fastest(lambda: pickle.loads(pickle.dumps(est)), repeats)
    tensor_bytes = sum(
        int(np.prod(t["shape"]))
        * {"F32": 4, "F64": 8, "I64": 8, "BOOL": 1}.get(t["dtype"], 4)
        for t in skvae.inspect(path)["tensors"].values()
    )
    size = os.path.getsize(path)
    head = header_bytes(path)
    loaded = skvae.load(path)
    same = bool(np.array_equal(outputs(est, X), outputs(loaded, X), equal_nan=True))
    n_params = sum(p.numel() for p in est.module_.parameters())
    return {
        "model": name,
        "parameters": n_params,
        "save_s": save_s,
        "load_s": load_s,
        "pickle_round_trip_s": pickle_s,
        "file_bytes": size,
        "tensor_bytes": tensor_bytes,
        "header_bytes": head,
        "overhead_share": (size - tensor_bytes - head) / size,
        "bit_identical": same,
    }


def main(argv: list[str] | None = None) -> None:
    """Measure every model, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_persist.json")
    args = parser.parse_args(argv)
    run = start_run("bench_persist.py", args)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (est, X) in models().items():
            rows.append(measure(name, est, X, args.repeats, folder))
    print(
        "| model | parameters | save s | load s | pickle round trip s | file MiB "
        "| tensors MiB | header KiB | other bytes | bit-identical |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['parameters']:,} | {r['save_s']:.4f} | "
            f"{r['load_s']:.4f} | {r['pickle_round_trip_s']:.4f} | "
            f"{r['file_bytes'] / 2**20:.2f} | {r['tensor_bytes'] / 2**20:.2f} | "
            f"{r['header_bytes'] / 1024:.1f} | "
            f"{r['file_bytes'] - r['tensor_bytes'] - r['header_bytes']} | "
            f"{r['bit_identical']} |"
        )
    run.write(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
