"""Fitting and scoring at scale: in-memory arrays against Dask collections.

What it measures
----------------
A table of ``n`` rows x 20 float32 columns (a 4-dimensional linear manifold
plus noise), generated lazily as a Dask Array of 100,000-row chunks, for
each ``n`` of ``--sizes`` (default 1M, 10M and 50M rows):

- ``fit``, one epoch (``max_iter=1``, no early stopping, the default
  network and batch size, ``random_state=0``): rows per second and peak RSS
  growth, on the array computed into memory first (the in-memory baseline;
  its generation is not timed) and on the lazy Dask Array (streamed; its
  summary pass and the generation of every partition are timed, as a user
  pays for them);
- ``score_samples`` with the fitted in-memory model: rows per second on the
  NumPy array, on the Dask Array with the default threaded scheduler, and on
  a ``LocalCluster`` of 1 and of 2 single-threaded worker processes (the
  Dask Array is generated on the workers; the result, one float per row, is
  computed back), started without ``distributed``'s default
  ``MALLOC_TRIM_THRESHOLD_`` as the README recommends for PyTorch work.

Each fit measurement runs in a fresh interpreter, so that its peak RSS
(``VmHWM`` after resetting it, Linux) belongs to it alone; the growth is
measured from just before the call. Sizes whose in-memory array would exceed
``--memory-limit-gb`` skip the in-memory rows.

How to run
----------
From the repository root, on a quiet machine (the ratios compare runs made
one after another)::

    python benchmarks/bench_scale.py                       # about 1.5 hours
    python benchmarks/bench_scale.py --sizes 1000000,10000000
    python benchmarks/bench_scale.py --quick               # 200k rows, a minute

The JSON (default ``benchmarks/results/bench_scale.json``) starts with the
shared harness's ``"run"`` block.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_out, markdown_table, start_run  # noqa: E402

N_COLUMNS = 20
CHUNK_ROWS = 100_000
DEFAULT_SIZES = (1_000_000, 10_000_000, 50_000_000)
QUICK_SIZES = (200_000,)
#: Rows a fit measurement first fits on, untimed, to page in the code paths.
WARMUP_ROWS = 5_000
#: Targets of the scale issue: the streamed epoch's rows/s against the
#: in-memory fit's, its peak RSS growth at 10M rows, 2 workers against 1.
FIT_RATIO_TARGET = 0.8
STREAM_MEMORY_TARGET_MB = 250
WORKER_SPEEDUP_TARGET = 1.6
#: Worker processes keep glibc's adaptive allocator: ``distributed`` starts
#: them with ``MALLOC_TRIM_THRESHOLD_=65536``, which also turns off the
#: adaptive mmap threshold, so every large PyTorch temporary is mapped and
#: unmapped again (half the scoring throughput here; README "Large data").
WORKER_MALLOC = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def lazy_table(n_rows: int):
    """The benchmark table as a lazy Dask Array (same values on every call)."""
    import dask.array as da

    rs = da.random.RandomState(0)
    z = rs.normal(size=(n_rows, 4), chunks=(CHUNK_ROWS, 4))
    mixing = np.random.default_rng(0).normal(size=(4, N_COLUMNS))
    noise = rs.normal(size=(n_rows, N_COLUMNS), chunks=(CHUNK_ROWS, N_COLUMNS))
    return (z @ mixing + 0.1 * noise).astype(np.float32)


def make_estimator(verbose: int = 0):
    """One epoch of the default model, no held-out rows."""
    from skvae import VAETransformer

    return VAETransformer(
        max_iter=1,
        n_iter_no_change=1,
        early_stopping=False,
        random_state=0,
        verbose=verbose,
    )


# ------------------------------------------------------------------ memory
def rss_bytes(field: str) -> int:
    """A ``Vm*`` line of /proc/self/status, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


# ------------------------------------------------------------------ children
def fit_child(mode: str, n_rows: int) -> dict[str, Any]:
    """One timed one-epoch fit (``mode`` "memory" or "dask"), in this process."""
    warnings.simplefilter("ignore")
    Xd = lazy_table(n_rows)
    make_estimator().fit(Xd[:WARMUP_ROWS].compute())
    X = Xd.compute() if mode == "memory" else Xd
    gc.collect()
    reset_peak()
    before = rss_bytes("VmRSS")
    start = time.perf_counter()
    make_estimator().fit(X)
    wall = time.perf_counter() - start
    return {
        "mode": mode,
        "n_rows": n_rows,
        "wall_s": wall,
        "rows_per_s": n_rows / wall,
        "peak_growth_bytes": rss_bytes("VmHWM") - before,
        "data_bytes": n_rows * N_COLUMNS * 4,
    }


def run_child(kind: str, mode: str, n_rows: int) -> dict[str, Any]:
    """Run a child measurement in a fresh interpreter; parse its JSON line."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, mode]
    cmd += ["--sizes", str(n_rows)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        return {"mode": mode, "n_rows": n_rows, "error": tail[0]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ scoring
def time_scoring(
    est, n_rows: int, in_memory: bool, modes: tuple[str, ...]
) -> list[dict[str, Any]]:
    """``score_samples`` rows/s in each of ``modes``.

    The modes: "numpy" (in memory), "threads" (Dask's threaded scheduler),
    and numbers of single-threaded worker processes ("1", "2").
    """
    import dask
    from dask.distributed import Client, LocalCluster

    rows = []

    def timed(label: str, fn) -> None:
        start = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - start
        if out.shape != (n_rows,) or not np.isfinite(out).all():
            raise RuntimeError(f"score_samples ({label}) returned bad scores")
        rows.append(
            {
                "mode": label,
                "n_rows": n_rows,
                "wall_s": wall,
                "rows_per_s": n_rows / wall,
            }
        )
        print(f"  score_samples {label:<24} {n_rows / wall:>12,.0f} rows/s", flush=True)

    Xd = lazy_table(n_rows)
    if in_memory and "numpy" in modes:
        X = Xd.compute()
        timed("numpy", lambda: est.score_samples(X))
        del X
        gc.collect()
    if "threads" in modes:
        with dask.config.set(scheduler="threads"):
            timed("dask, threads", lambda: est.score_samples(Xd).compute())
    for workers in [int(m) for m in modes if m.isdigit()]:
        with (
            dask.config.set(WORKER_MALLOC),
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster),
        ):
            est.score_samples(lazy_table(CHUNK_ROWS)).compute()  # ship, warm up
            timed(f"dask, {workers} worker(s)", lambda: est.score_samples(Xd).compute())
    return rows


# ------------------------------------------------------------------ report
def ratios(fits: list[dict], scores: list[dict]) -> list[dict[str, Any]]:
    """Per size: streamed fit against in-memory, 2 workers against 1."""
    out = []
    for n in sorted({r["n_rows"] for r in fits + scores}):
        by = {r["mode"]: r for r in fits if r["n_rows"] == n and "error" not in r}
        sc = {r["mode"]: r for r in scores if r["n_rows"] == n}
        row: dict[str, Any] = {"n_rows": n}
        if "memory" in by and "dask" in by:
            row["fit_dask_over_memory"] = (
                by["dask"]["rows_per_s"] / by["memory"]["rows_per_s"]
            )
        if "dask" in by:
            row["stream_peak_growth_mb"] = by["dask"]["peak_growth_bytes"] / 1e6
        one, two = sc.get("dask, 1 worker(s)"), sc.get("dask, 2 worker(s)")
        if one and two:
            row["two_workers_over_one"] = two["rows_per_s"] / one["rows_per_s"]
        out.append(row)
    return out


def print_tables(fits, scores, summary) -> None:
    """The three tables of the run."""
    print("\nfit, one epoch:")
    print(
        markdown_table(
            ["rows", "data", "mode", "wall s", "rows/s", "peak RSS growth"],
            [
                [
                    f"{r['n_rows']:,}",
                    f"{r.get('data_bytes', 0) / 1e6:,.0f} MB",
                    r["mode"],
                    "failed",
                    r["error"],
                    "",
                ]
                if "error" in r
                else [
                    f"{r['n_rows']:,}",
                    f"{r['data_bytes'] / 1e6:,.0f} MB",
                    r["mode"],
                    f"{r['wall_s']:.1f}",
                    f"{r['rows_per_s']:,.0f}",
                    f"{r['peak_growth_bytes'] / 1e6:,.0f} MB",
                ]
                for r in fits
            ],
            align="rrlrrr",
        )
    )
    print("\nscore_samples:")
    print(
        markdown_table(
            ["rows", "mode", "wall s", "rows/s"],
            [
                [
                    f"{r['n_rows']:,}",
                    r["mode"],
                    f"{r['wall_s']:.1f}",
                    f"{r['rows_per_s']:,.0f}",
                ]
                for r in scores
            ],
            align="rlrr",
        )
    )
    print(
        "\nratios (targets: fit >= 0.8x, streamed growth < 250 MB at 10M, "
        "2 workers >= 1.6x):"
    )

    def fmt(row, key, spec):
        return format(row[key], spec) if key in row else "-"

    print(
        markdown_table(
            [
                "rows",
                "fit dask / memory",
                "streamed peak growth (MB)",
                "score 2 workers / 1",
            ],
            [
                [
                    f"{r['n_rows']:,}",
                    fmt(r, "fit_dask_over_memory", ".2f"),
                    fmt(r, "stream_peak_growth_mb", ",.0f"),
                    fmt(r, "two_workers_over_one", ".2f"),
                ]
                for r in summary
            ],
            align="rrrr",
        )
    )


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(n) for n in DEFAULT_SIZES),
        help="comma-separated numbers of rows",
    )
    parser.add_argument("--quick", action="store_true", help="200k rows only")
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=8.0,
        help="skip in-memory rows whose float32 table exceeds this",
    )
    parser.add_argument(
        "--score-modes",
        default="numpy,threads,1,2",
        help="score_samples runs: numpy, threads, and numbers of worker processes",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else [int(s) for s in args.sizes.split(",")]
    args.sizes_list = sizes
    if args.out is None:
        args.out = default_out(__file__, quick=args.quick)
    return args


def main(argv=None) -> None:
    """Entry point: the benchmark, or one fit measurement when a child."""
    args = parse_args(argv)
    if args.child is not None:
        kind, mode = args.child
        print(json.dumps(fit_child(mode, args.sizes_list[0])))
        return
    run = start_run(__file__, args, extra_libraries=("dask", "distributed"))
    fits, scores = [], []
    for n in args.sizes_list:
        in_memory = n * N_COLUMNS * 4 <= args.memory_limit_gb * 1e9
        modes = ("memory", "dask") if in_memory else ("dask",)
        for mode in modes:
            row = run_child("fit", mode, n)
            fits.append(row)
            print(
                f"  fit {mode:<7} {n:>12,} rows: "
                + (
                    row["error"]
                    if "error" in row
                    else f"{row['rows_per_s']:,.0f} rows/s, peak growth "
                    f"{row['peak_growth_bytes'] / 1e6:,.0f} MB"
                ),
                flush=True,
            )
        warnings.simplefilter("ignore")
        est = make_estimator().fit(lazy_table(min(n, 1_000_000)))
        modes = tuple(args.score_modes.split(","))
        scores.extend(time_scoring(est, n, in_memory, modes))
    summary = ratios(fits, scores)
    print_tables(fits, scores, summary)
    run.write(args.out, {"fit": fits, "score_samples": scores, "ratios": summary})


if __name__ == "__main__":
    main()
