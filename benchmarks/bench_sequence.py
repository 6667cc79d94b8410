"""SequenceVAE on names and on UCR time series, against latent-free peers.

What it measures
----------------
Three parts (``--parts``, all by default), each ``SequenceVAE`` fitted with
its defaults and only ``random_state`` set (``max_iter`` is cut in
``--quick`` alone). Seeds: the text part is fitted once per ``--text-seeds``
seed (default 0: one text fit takes minutes), the series part once per
``--seeds`` seed (default 0, 1, 2), the timing fits with seed 0.

**(a) text: names.** The US Census 1990 name lists that the PyPI package
``names`` ships inside its package folder (``dist.female.first``,
``dist.male.first``, ``dist.all.last``; read from the installed package, no
download). Every name is lowercased and labelled by the list it comes from
(female first name, male first name, surname); a string on two lists has no
single label and is dropped. All the first names and a random choice of
surnames make 12,000 distinct strings (2 to 13 letters, a to z: 2,914
female and 161 male first names, the male list being mostly shared with the
other two, and 8,925 surnames), split once by a fixed permutation (seed 0,
the same for every run seed) into 10,000 training and 2,000 held-out
strings, disjoint by construction (at most 20 characters, as asked, holds
for every name); held-out
strings longer than the longest training string would be cut by
SequenceVAE's ``max_length`` and are dropped (the JSON counts them; none
with this split).

* ``SequenceVAE``: ``SequenceVAE(random_state=s).fit(train)``.
* ``char LSTM LM``, the peer: a character language model with no latent,
  written here in torch: the same token ids as SequenceVAE (the training
  characters in sorted order after four reserved ids: padding, start, end,
  unknown), an ``nn.Embedding`` of SequenceVAE's default ``embedding_size``
  (32), one ``nn.LSTM`` layer of its default decoder ``hidden_size`` (64) fed
  the start token then the previous characters, and a linear softmax over the
  same ids, end token included. Adam (learning rate 3e-3), minibatches of
  128 strings, at most 100 epochs, early stopping on a 10% validation split
  of the training strings (the same share SequenceVAE holds out) with a
  patience of 5 epochs on the validation nats per token; the best epoch's
  weights are kept. (A check on seed 0 with learning rates 1e-3 to 1e-2,
  minibatches of 64 to 512 and patiences up to 15 gave 2.220 to 2.236
  held-out nats per token, against 2.224 with these settings.)

Token counting, the same for both: a string of n characters is n + 1 scored
tokens, its characters and the end token (the start token is input only, not
scored); a character never seen in training is the unknown token and scored
as that token (none occurs here; the JSON counts them). This is how
``SequenceVAE`` encodes and scores a text (``SequenceSchema._encode_text``:
ids, then the end token, mask 1 on each; ``SequenceModule.step_log_prob``: a
log-softmax over every id, summed over the mask), and the script checks that
the mask of ``vae.schema_.encode`` holds as many tokens as it counts.
Held-out **nats per token** = total -log p of the held-out strings over their
total number of tokens: ``-score_samples(X_test).sum() / n_tokens`` for
SequenceVAE (its importance-weighted bound with 32 posterior draws: a lower
bound on log p(x), so SequenceVAE's figure is an upper bound on its true
nats per token), the exact teacher-forced sum for the LM. **ratio** =
SequenceVAE's over the LM's.

Also for SequenceVAE: **total KL** ``kl_per_component_.sum()`` (nats per
string) and ``n_active_components_``; **exact reconstructions**, the share of
held-out strings that ``inverse_transform(transform(x))`` (greedy decoding
at the posterior mean) gives back exactly. For SequenceVAE's
``sample(1000, random_state=0)`` and for 1,000 strings drawn from the LM
(temperature 1, the end token or a training character at each step, as
SequenceVAE's ``sample`` does, for at most as many steps as its
``max_length``: the longest training string plus the end token): **new**,
the share not in the training set; **distinct**, the share of distinct
strings; **bigram JSD**, the Jensen-Shannon divergence in bits (log base
2, between 0 and 1; nats = bits x 0.693 in the JSON) between the
character-bigram distribution of the 1,000 strings and that of the held-out
strings, each string read as ``^`` + string + ``$`` so that the
start and end bigrams count (a string of n characters gives n + 1 bigrams).
The reference row ``training strings`` is the same JSD for 1,000 training
strings drawn at random: the sampling noise of 1,000 real names. Twelve
samples and an interpolation (``interpolate(a, b, n_steps=8)``) between the
first held-out female first name and the first held-out surname are printed
and stored.

**Codes as features.** On the held-out strings, 5-fold stratified cross
validation (shuffled, seed s) of ``StandardScaler`` + ``LogisticRegression``
predicting the 3 labels, from: SequenceVAE's ``transform`` codes (16
numbers); the peer ``PCA(16)`` (16 = ``n_components``) of a character bag of
uni- and bigrams (``CountVectorizer(analyzer="char", ngram_range=(1, 2))``;
vectorizer and PCA fitted on the training strings, unsupervised like the
VAE); and, for reference, the unreduced counts and the majority class.

**(b) time series: UCR.** Three univariate UCR datasets whose files ship
inside the PyPI package ``aeon`` (``aeon.datasets.load_gunpoint``,
``load_italy_power_demand``, ``load_arrow_head``: nothing downloaded), with
their own train/test splits: GunPoint (50/150 series of 150 steps, 2
classes), ItalyPowerDemand (67/1029 of 24 steps, 2 classes), ArrowHead
(36/175 of 251 steps, 3 classes). Series go in as 2-D arrays (n_series,
n_steps), in their units.

* Classification: ``SequenceVAE(random_state=s)`` fitted on the training
  series; ``StandardScaler`` + ``LogisticRegression(max_iter=10000)`` fitted
  on the training codes, accuracy on the test codes. Peer: the same
  classifier on ``PCA(n_components=16, random_state=s)`` of the raw series and
  of the per-step standardized series (``StandardScaler`` then PCA); the
  better of the two on the test split is the ``PCA peer`` (an optimistic
  choice, in the peer's favour). Reference: the classifier on the raw series.
  Fit seconds and epochs of the VAE are recorded.
* Anomaly detection: each class c of each dataset in turn is normal. The
  detectors are fitted on the training series of class c only and score all
  test series; the anomalies are the test series of the other classes; the
  **ROC-AUC** per setup and its mean over the 7 setups. SequenceVAE's score is
  ``-score_samples`` (minus its log p(x) in the data's units);
  ``IsolationForest(random_state=s)``'s is ``-score_samples``; PCA's is the
  squared reconstruction error of ``PCA(k)``, k = min(16, n_normal - 1),
  fitted on the normal training series (raw units).

**(c) fit time.** Wall seconds of a default ``SequenceVAE(random_state=0).fit``
with ``--timing-threads`` torch threads (default 2, the issue's "2 CPU
cores"; everything else runs with ``--threads``, default 1) on (i) the 10,000
training names of part (a) and (ii) 1,000 synthetic series of 500 steps:
class k in {0, 1, 2} (balanced at random) is a sine of 2, 4 or 8 cycles over
the series, times a random factor in [0.9, 1.1], with a random phase, an
amplitude uniform in [0.5, 2] and Gaussian noise of standard deviation 0.2
(seed 0). The issue's target is 120 s for each. The fit runs with
``verbose=1`` (its epoch bar, written to a buffer, gives the epochs done and
the epoch budget) and is stopped after ``--timing-cap`` seconds (default
900, SIGALRM; 0: no cap), so that a fit far beyond the target does not hold
the run for long: such a row reads ``> 900`` with the epochs done by then.
Epochs, seconds per epoch, the CPU seconds of the process and the load
averages before and after are in the JSON; on a machine shared with other
work the load matters (torch's threads slow down a lot when other processes
take a core).

The printed tables give means over the seeds (``+-`` the standard deviation
where there are several); the JSON holds every fit, the warnings the fits
raised, the samples and the interpolation.

How to run
----------
Needs ``names`` and ``aeon`` (``pip install -e ".[benchmarks]" names``, or
``pip install aeon names``). aeon 1.6 pins ``numba<0.64`` and so older numpy
and pandas; where those must stay newer, ``pip install --no-deps aeon
Deprecated`` is enough for the bundled loaders used here. From the repository
root::

    OMP_NUM_THREADS=1 python benchmarks/bench_sequence.py
    OMP_NUM_THREADS=1 python benchmarks/bench_sequence.py --quick  # ~1 minute

``--quick`` is a smoke test: seed 0, 1,000 training and 300 held-out names,
``max_iter=5`` for every SequenceVAE fit, 5 LM epochs, and timing fits on
1,000 names and 100 series of 500 steps with ``max_iter=2``. A full run
writes ``benchmarks/results/bench_sequence.json``, ``--quick``
``bench_sequence_quick.json``, a run with other seeds, text seeds or parts
``bench_sequence_partial.json`` (``--out`` overrides all three); the
harness's ``"run"`` block (command line, arguments, environment, see
``_common.py``) comes first.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import re
import signal
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    default_out,
    format_load,
    format_pm,
    markdown_table,
    mean_std,
    resolve_seeds,
    start_run,
    timer,
)

PARTS = ("text", "series", "timing")
DEFAULT_SEEDS = (0, 1, 2)
TEXT_SEEDS = (0,)
SPLIT_SEED = 0
#: Training and held-out names (full run, --quick).
TEXT_SIZES = {"full": (10_000, 2_000), "quick": (1_000, 300)}
#: The name lists of the ``names`` package and their labels.
NAME_FILES = {
    "female": "dist.female.first",
    "male": "dist.male.first",
    "surname": "dist.all.last",
}
MAX_CHARS = 20
N_GENERATED = 1000
SAMPLE_SEED = 0
N_SHOWN = 12
INTERPOLATION_STEPS = 8
CV_FOLDS = 5
#: The character LM peer.
LM_BATCH = 128
LM_LEARNING_RATE = 3e-3
LM_MAX_EPOCHS = 100
LM_PATIENCE = 5
LM_VALIDATION = 0.1
QUICK_LM_EPOCHS = 5
#: Reserved token ids, as in skvae._sequence.
PAD, BOS, EOS, UNK = 0, 1, 2, 3
N_SPECIAL = 4
UCR = {
    "GunPoint": "load_gunpoint",
    "ItalyPowerDemand": "load_italy_power_demand",
    "ArrowHead": "load_arrow_head",
}
#: Synthetic series of the timing part: (n_series, n_steps) full and quick.
LONG_SERIES = {"full": (1000, 500), "quick": (100, 500)}
LONG_NOISE = 0.2
LONG_CYCLES = (2.0, 4.0, 8.0)
TIME_TARGET_S = 120.0
TIMING_CAP_S = 900.0
QUICK_MAX_ITER = 5
QUICK_TIMING_MAX_ITER = 2


# ------------------------------------------------------------------ helpers
def fit_vae(X: Any, seed: int, max_iter: int | str) -> tuple[Any, dict[str, Any]]:
    """A default SequenceVAE fitted on X; its fit record (time, warnings)."""
    from skvae import SequenceVAE

    extra = {} if max_iter == "auto" else {"max_iter": max_iter}
    vae = SequenceVAE(random_state=seed, **extra)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with timer() as t:
            vae.fit(X)
    kl = np.asarray(vae.kl_per_component_, dtype=np.float64)
    return vae, {
        "fit_s": t.wall_s,
        "fit_cpu_s": t.cpu_s,
        "n_iter": int(vae.n_iter_),
        "best_validation_score": (
            None
            if vae.best_validation_score_ is None
            else float(vae.best_validation_score_)
        ),
        "total_kl": float(kl.sum()),
        "kl_per_component": kl.tolist(),
        "n_active_components": int(vae.n_active_components_),
        "warnings": sorted(
            {f"{type(w.message).__name__}: {str(w.message)[:200]}" for w in caught}
        ),
    }


def summary_cell(values: list[float], fmt: str) -> str:
    """Mean (``+-`` std over several seeds) of a list, or a dash if empty."""
    if not values:
        return "-"
    summary = mean_std(values)
    if len(values) == 1:
        return f"{summary['mean']:{fmt}}"
    return format_pm(summary, fmt)


# --------------------------------------------------------------------- text
def load_names(n_train: int, n_test: int) -> dict[str, Any]:
    """Labelled names of the ``names`` package, split into train and test."""
    import names

    folder = Path(names.__file__).resolve().parent
    lists = {}
    for label, filename in NAME_FILES.items():
        with open(folder / filename) as handle:
            lists[label] = [line.split()[0].lower() for line in handle if line.strip()]
    seen = Counter(s for strings in lists.values() for s in set(strings))
    keep = {
        label: sorted(
            {
                s
                for s in strings
                if seen[s] == 1 and s.isalpha() and s.isascii() and len(s) <= MAX_CHARS
            }
        )
        for label, strings in lists.items()
    }
    rng = np.random.RandomState(SPLIT_SEED)
    first = [(s, label) for label in ("female", "male") for s in keep[label]]
    full_train, full_test = TEXT_SIZES["full"]
    n_surnames = max(0, full_train + full_test - len(first))
    chosen = rng.choice(len(keep["surname"]), n_surnames, replace=False)
    pool = first + [(keep["surname"][i], "surname") for i in sorted(chosen)]
    order = rng.permutation(len(pool))
    # The full split; --quick takes the first strings of each part.
    test_idx = order[:full_test][:n_test]
    train_idx = order[full_test:][:n_train]
    train = [pool[i][0] for i in train_idx]
    test = [pool[i] for i in test_idx]
    longest = max(len(s) for s in train)
    dropped = sum(len(s) > longest for s, _ in test)
    test = [(s, label) for s, label in test if len(s) <= longest]
    labels = sorted(NAME_FILES)
    return {
        "train": train,
        "y_train": np.array([labels.index(pool[i][1]) for i in train_idx]),
        "test": [s for s, _ in test],
        "y_test": np.array([labels.index(label) for _, label in test]),
        "labels": labels,
        "test_dropped_too_long": int(dropped),
        "available": {label: len(v) for label, v in keep.items()},
    }


def encode_texts(texts: list[str], vocabulary: list[str], steps: int) -> tuple:
    """Token ids (n, steps) and mask, as SequenceVAE encodes characters."""
    import torch

    ids = {c: N_SPECIAL + i for i, c in enumerate(vocabulary)}
    x = torch.zeros(len(texts), steps, dtype=torch.long)
    mask = torch.zeros(len(texts), steps)
    n_unknown = 0
    for i, text in enumerate(texts):
        row = [ids.get(c, UNK) for c in text[: steps - 1]] + [EOS]
        n_unknown += sum(c not in ids for c in text[: steps - 1])
        x[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1.0
    return x, mask, n_unknown


def make_lm(n_tokens: int, embedding_size: int, hidden_size: int) -> Any:
    """The character LSTM language model (no latent)."""
    import torch
    from torch import nn

    class CharLM(nn.Module):
        """Embedding, one LSTM layer, linear softmax over the token ids."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(n_tokens, embedding_size)
            self.lstm = nn.LSTM(embedding_size, hidden_size, batch_first=True)
            self.out = nn.Linear(hidden_size, n_tokens)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Logits (n, T, n_tokens) of each token given the ones before."""
            prev = torch.cat([torch.full_like(x[:, :1], BOS), x[:, :-1]], dim=1)
            h, _ = self.lstm(self.embed(prev))
            return self.out(h)

        def nll(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            """-log p of the unmasked tokens, summed per row."""
            logp = self(x).log_softmax(-1).gather(-1, x[..., None])[..., 0]
            return -(logp * mask).sum(-1)

    return CharLM()


def lm_nll(model: Any, x: Any, mask: Any, batch: int = 1024) -> np.ndarray:
    """Per-string -log p under the LM (eval mode, no gradients)."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch):
            sl = slice(start, start + batch)
            out.append(model.nll(x[sl], mask[sl]).double().numpy())
    return np.concatenate(out)


def fit_lm(
    texts: list[str],
    vocabulary: list[str],
    steps: int,
    sizes: tuple[int, int],
    seed: int,
    max_epochs: int,
) -> tuple[Any, dict[str, Any]]:
    """Train the LM with Adam and early stopping on a validation split."""
    import torch

    torch.manual_seed(seed)
    x, mask, _ = encode_texts(texts, vocabulary, steps)
    perm = torch.from_numpy(np.random.RandomState(seed).permutation(len(texts)))
    n_val = int(round(LM_VALIDATION * len(texts)))
    val, train = perm[:n_val], perm[n_val:]
    model = make_lm(N_SPECIAL + len(vocabulary), *sizes)
    optimizer = torch.optim.Adam(model.parameters(), lr=LM_LEARNING_RATE)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, best_epoch, curve = math.inf, None, 0, []
    with timer() as t:
        for epoch in range(1, max_epochs + 1):
            model.train()
            order = train[torch.randperm(len(train), generator=gen)]
            for start in range(0, len(order), LM_BATCH):
                idx = order[start : start + LM_BATCH]
                loss = model.nll(x[idx], mask[idx]).sum() / mask[idx].sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            score = float(lm_nll(model, x[val], mask[val]).sum() / mask[val].sum())
            curve.append(score)
            if score < best:
                best, best_epoch = score, epoch
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            elif epoch - best_epoch >= LM_PATIENCE:
                break
    model.load_state_dict(best_state)
    model.eval()
    return model, {
        "fit_s": t.wall_s,
        "fit_cpu_s": t.cpu_s,
        "n_iter": len(curve),
        "best_epoch": best_epoch,
        "validation_nats_per_token": curve,
        "n_validation": n_val,
    }


def lm_sample(
    model: Any, vocabulary: list[str], steps: int, n: int, seed: int
) -> list[str]:
    """Strings drawn from the LM: the end token or a character at each step."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    token = torch.full((n, 1), BOS, dtype=torch.long)
    state = None
    alive = torch.ones(n, dtype=torch.bool)
    chars: list[list[str]] = [[] for _ in range(n)]
    with torch.no_grad():
        for _ in range(steps):
            h, state = model.lstm(model.embed(token), state)
            logits = model.out(h[:, 0])
            allowed = torch.cat([logits[:, EOS : EOS + 1], logits[:, N_SPECIAL:]], -1)
            choice = torch.multinomial(allowed.double().softmax(-1), 1, generator=gen)
            choice = choice[:, 0]
            for i in torch.nonzero(alive & (choice > 0))[:, 0].tolist():
                chars[i].append(vocabulary[int(choice[i]) - 1])
            alive &= choice > 0
            if not bool(alive.any()):
                break
            token = torch.where(choice == 0, EOS, choice + N_SPECIAL - 1)[:, None]
    return ["".join(c) for c in chars]


def bigram_distribution(texts: list[str]) -> Counter:
    """Counts of character bigrams of ``^`` + text + ``$``."""
    counts: Counter = Counter()
    for text in texts:
        padded = f"^{text}$"
        counts.update(padded[i : i + 2] for i in range(len(padded) - 1))
    return counts


def jensen_shannon(p: Counter, q: Counter) -> float:
    """Jensen-Shannon divergence in bits between two count tables."""
    keys = sorted(set(p) | set(q))
    a = np.array([p.get(k, 0) for k in keys], dtype=np.float64)
    b = np.array([q.get(k, 0) for k in keys], dtype=np.float64)
    a, b = a / a.sum(), b / b.sum()
    m = 0.5 * (a + b)

    def kl(u: np.ndarray) -> float:
        nz = u > 0
        return float(np.sum(u[nz] * np.log2(u[nz] / m[nz])))

    return 0.5 * kl(a) + 0.5 * kl(b)


def sample_stats(
    samples: list[str], train: set[str], reference: Counter
) -> dict[str, Any]:
    """New and distinct shares and bigram JSD of generated strings."""
    jsd = jensen_shannon(bigram_distribution(samples), reference)
    return {
        "new": float(np.mean([s not in train for s in samples])),
        "distinct": len(set(samples)) / len(samples),
        "empty": float(np.mean([s == "" for s in samples])),
        "mean_length": float(np.mean([len(s) for s in samples])),
        "bigram_jsd_bits": jsd,
        "bigram_jsd_nats": jsd * math.log(2.0),
        "shown": list(samples[:N_SHOWN]),
    }


def cv_accuracy(F: np.ndarray, y: np.ndarray, seed: int) -> float:
    """Mean 5-fold accuracy of StandardScaler + LogisticRegression on F."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=10_000))
    cv = StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, F, y, cv=cv).mean())


def run_text(data: dict[str, Any], seed: int, quick: bool) -> dict[str, Any]:
    """SequenceVAE and the LM on the names, for one seed."""
    from sklearn.decomposition import PCA
    from sklearn.feature_extraction.text import CountVectorizer

    train, test = data["train"], data["test"]
    vae, fit = fit_vae(train, seed, QUICK_MAX_ITER if quick else "auto")
    vocabulary = sorted({c for s in train for c in s})
    steps = max(len(s) for s in train) + 1
    x_test, mask_test, n_unknown = encode_texts(test, vocabulary, steps)
    n_tokens = int(mask_test.sum())
    _, vae_mask = vae.schema_.encode("text", list(test), None, "cpu")
    with timer() as score_t:
        vae_ll = vae.score_samples(test)
    vae_npt = float(-vae_ll.sum() / n_tokens)

    defaults = vae.get_params()
    lm_sizes = (defaults["embedding_size"], defaults["hidden_size"])
    lm, lm_fit = fit_lm(
        train,
        vocabulary,
        steps,
        lm_sizes,
        seed,
        QUICK_LM_EPOCHS if quick else LM_MAX_EPOCHS,
    )
    lm_npt = float(lm_nll(lm, x_test, mask_test).sum() / n_tokens)

    train_set = set(train)
    reference = bigram_distribution(test)
    with timer() as sample_t:
        vae_samples = list(vae.sample(N_GENERATED, random_state=SAMPLE_SEED))
    lm_samples = lm_sample(lm, vocabulary, vae.schema_.max_length, N_GENERATED, seed)
    rng = np.random.RandomState(seed)
    real = [train[i] for i in rng.choice(len(train), N_GENERATED, replace=False)]

    Z_test = vae.transform(test)
    decoded = vae.inverse_transform(Z_test)
    labels = data["labels"]
    y = data["y_test"]
    a = test[int(np.flatnonzero(y == labels.index("female"))[0])]
    b = test[int(np.flatnonzero(y == labels.index("surname"))[0])]
    path = [str(s) for s in vae.interpolate(a, b, n_steps=INTERPOLATION_STEPS)]

    k = vae.n_components
    vectorizer = CountVectorizer(analyzer="char", ngram_range=(1, 2))
    counts_train = vectorizer.fit_transform(train).toarray().astype(np.float64)
    counts_test = vectorizer.transform(test).toarray().astype(np.float64)
    pca = PCA(k, random_state=seed).fit(counts_train)
    majority = float(np.bincount(y).max() / len(y))
    return {
        "seed": seed,
        "vae": {
            **fit,
            "nats_per_token": vae_npt,
            "score_s": score_t.wall_s,
            "sample_s": sample_t.wall_s,
            "exact_reconstructions": float(
                np.mean([str(d) == s for d, s in zip(decoded, test, strict=True)])
            ),
            "samples": sample_stats(vae_samples, train_set, reference),
            "interpolation": {"from": a, "to": b, "path": path},
            "vocabulary_matches": list(vae.vocabulary_) == vocabulary,
        },
        "lm": {
            **lm_fit,
            "nats_per_token": lm_npt,
            "embedding_size": lm_sizes[0],
            "hidden_size": lm_sizes[1],
            "samples": sample_stats(lm_samples, train_set, reference),
        },
        "ratio": vae_npt / lm_npt,
        "training_strings": sample_stats(real, train_set, reference),
        "n_test_tokens": n_tokens,
        "n_test_unknown": n_unknown,
        "token_count_matches": int(vae_mask.sum()) == n_tokens,
        "classification": {
            "vae_codes": cv_accuracy(Z_test, y, seed),
            "pca_bigrams": cv_accuracy(pca.transform(counts_test), y, seed),
            "bigrams": cv_accuracy(counts_test, y, seed),
            "majority": majority,
            "n_bigram_features": int(counts_train.shape[1]),
            "n_components": int(k),
        },
    }


def text_tables(runs: list[dict[str, Any]]) -> str:
    """The text table and the codes-as-features table."""

    def col(path: tuple[str, ...], fmt: str) -> str:
        values = []
        for r in runs:
            v: Any = r
            for key in path:
                v = v[key]
            values.append(v)
        return summary_cell(values, fmt)

    header = [
        "model",
        "held-out nats/token",
        "ratio to LM",
        "total KL",
        "active",
        "new",
        "distinct",
        "bigram JSD (bits)",
        "fit s",
        "epochs",
    ]
    rows = []
    for key, name in (("vae", "SequenceVAE"), ("lm", "char LSTM LM (peer)")):
        rows.append(
            [
                name,
                col((key, "nats_per_token"), ".4f"),
                col(("ratio",), ".4f") if key == "vae" else "1",
                col((key, "total_kl"), ".2f") if key == "vae" else "-",
                col((key, "n_active_components"), ".1f") if key == "vae" else "-",
                col((key, "samples", "new"), ".3f"),
                col((key, "samples", "distinct"), ".3f"),
                col((key, "samples", "bigram_jsd_bits"), ".4f"),
                col((key, "fit_s"), ".0f"),
                col((key, "n_iter"), ".0f"),
            ]
        )
    rows.append(
        [
            "training strings (reference)",
            "-",
            "-",
            "-",
            "-",
            col(("training_strings", "new"), ".3f"),
            col(("training_strings", "distinct"), ".3f"),
            col(("training_strings", "bigram_jsd_bits"), ".4f"),
            "-",
            "-",
        ]
    )
    main = markdown_table(header, rows, align="l" + "r" * (len(header) - 1))
    k = runs[0]["classification"]["n_components"]
    n_bigrams = runs[0]["classification"]["n_bigram_features"]
    features = [
        ("SequenceVAE codes", f"{k}", "vae_codes"),
        ("PCA of char 1-2-gram counts (peer)", f"{k}", "pca_bigrams"),
        ("char 1-2-gram counts (reference)", f"{n_bigrams}", "bigrams"),
        ("majority class", "-", "majority"),
    ]
    cls = markdown_table(
        ["features", "dims", f"{CV_FOLDS}-fold accuracy"],
        [[n, d, col(("classification", key), ".3f")] for n, d, key in features],
        align="lrr",
    )
    return f"{main}\n\nheld-out names, 3 labels:\n\n{cls}"


# ------------------------------------------------------------------- series
def load_ucr(name: str) -> dict[str, np.ndarray]:
    """A bundled UCR dataset of aeon: its train and test split, 2-D series."""
    from aeon import datasets

    loader = getattr(datasets, UCR[name])
    out = {}
    for split in ("train", "test"):
        X, y = loader(split=split)
        out[f"X_{split}"] = np.asarray(X, dtype=np.float64)[:, 0, :]
        out[f"y_{split}"] = np.asarray(y).astype(str)
    return out


def accuracy_of(F_train: np.ndarray, F_test: np.ndarray, data: dict) -> float:
    """Test accuracy of StandardScaler + LogisticRegression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=10_000))
    clf.fit(F_train, data["y_train"])
    return float(clf.score(F_test, data["y_test"]))


def run_classification(
    name: str, data: dict, seed: int, max_iter: int | str
) -> dict[str, Any]:
    """Codes of the VAE against PCA scores as classifier features."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, X_test = data["X_train"], data["X_test"]
    vae, fit = fit_vae(X_train, seed, max_iter)
    k = vae.n_components
    pcas = {
        "raw": PCA(k, random_state=seed),
        "standardized": make_pipeline(StandardScaler(), PCA(k, random_state=seed)),
    }
    pca_acc = {}
    for variant, pca in pcas.items():
        pca.fit(X_train)
        pca_acc[variant] = accuracy_of(
            pca.transform(X_train), pca.transform(X_test), data
        )
    best = max(pca_acc, key=pca_acc.get)
    return {
        "dataset": name,
        "seed": seed,
        **fit,
        "vae_codes": accuracy_of(vae.transform(X_train), vae.transform(X_test), data),
        "pca": pca_acc,
        "pca_peer": pca_acc[best],
        "pca_peer_variant": best,
        "raw_series": accuracy_of(X_train, X_test, data),
    }


def run_anomaly(
    name: str, data: dict, seed: int, max_iter: int | str
) -> list[dict[str, Any]]:
    """Each class as the normal class: ROC-AUC of the three detectors."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    out = []
    for c in sorted(set(data["y_train"])):
        normal = data["X_train"][data["y_train"] == c]
        X_test = data["X_test"]
        anomaly = (data["y_test"] != c).astype(int)
        vae, fit = fit_vae(normal, seed, max_iter)
        forest = IsolationForest(random_state=seed).fit(normal)
        k = min(vae.n_components, normal.shape[0] - 1)
        pca = PCA(k, random_state=seed).fit(normal)
        error = ((X_test - pca.inverse_transform(pca.transform(X_test))) ** 2).sum(1)
        out.append(
            {
                "dataset": name,
                "normal_class": str(c),
                "seed": seed,
                "n_normal_train": int(normal.shape[0]),
                "n_test": int(X_test.shape[0]),
                "anomaly_share": float(anomaly.mean()),
                **fit,
                "vae": float(roc_auc_score(anomaly, -vae.score_samples(X_test))),
                "isolation_forest": float(
                    roc_auc_score(anomaly, -forest.score_samples(X_test))
                ),
                "pca_reconstruction": float(roc_auc_score(anomaly, error)),
                "pca_components": int(k),
            }
        )
    return out


def series_tables(cls_runs: list[dict], anomaly_runs: list[dict]) -> str:
    """The classification and anomaly tables."""
    rows = []
    for name in dict.fromkeys(r["dataset"] for r in cls_runs):
        mine = [r for r in cls_runs if r["dataset"] == name]
        variants = sorted({r["pca_peer_variant"] for r in mine})
        rows.append(
            [
                name,
                summary_cell([r["vae_codes"] for r in mine], ".3f"),
                summary_cell([r["pca_peer"] for r in mine], ".3f"),
                "/".join(variants),
                summary_cell([r["raw_series"] for r in mine], ".3f"),
                summary_cell([r["total_kl"] for r in mine], ".1f"),
                summary_cell([r["fit_s"] for r in mine], ".1f"),
                summary_cell([r["n_iter"] for r in mine], ".0f"),
            ]
        )
    cls = markdown_table(
        [
            "dataset",
            "VAE codes",
            "PCA(16) peer",
            "PCA input",
            "raw series (reference)",
            "total KL",
            "VAE fit s",
            "epochs",
        ],
        rows,
        align="lrrlrrrr",
    )
    keys = ("vae", "isolation_forest", "pca_reconstruction")
    setups = list(
        dict.fromkeys((r["dataset"], r["normal_class"]) for r in anomaly_runs)
    )
    rows = []
    for dataset, c in setups:
        mine = [
            r
            for r in anomaly_runs
            if r["dataset"] == dataset and r["normal_class"] == c
        ]
        rows.append(
            [dataset, c, str(mine[0]["n_normal_train"])]
            + [summary_cell([r[k] for r in mine], ".3f") for k in keys]
        )
    seeds = sorted({r["seed"] for r in anomaly_runs})
    means = {
        k: [
            float(np.mean([r[k] for r in anomaly_runs if r["seed"] == s]))
            for s in seeds
        ]
        for k in keys
    }
    rows.append(
        [f"mean of {len(setups)} setups", "-", "-"]
        + [summary_cell(means[k], ".3f") for k in keys]
    )
    anomaly = markdown_table(
        [
            "dataset",
            "normal class",
            "normal train",
            "SequenceVAE",
            "IsolationForest",
            "PCA reconstruction",
        ],
        rows,
        align="llrrrr",
    )
    return (
        f"test accuracy, LogisticRegression on the features:\n\n{cls}"
        f"\n\nanomaly ROC-AUC (one class normal, the others anomalies):\n\n{anomaly}"
    )


# ------------------------------------------------------------------- timing
def long_series(n: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sines of 3 classes (2, 4 or 8 cycles), random phase and amplitude."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, len(LONG_CYCLES), n)
    cycles = np.asarray(LONG_CYCLES)[y] * rng.uniform(0.9, 1.1, n)
    phase = rng.uniform(0.0, 2.0 * np.pi, n)
    amplitude = rng.uniform(0.5, 2.0, n)
    t = np.arange(steps) / steps
    X = amplitude[:, None] * np.sin(2.0 * np.pi * cycles[:, None] * t + phase[:, None])
    return X + LONG_NOISE * rng.normal(size=X.shape), y


class FitTimeout(Exception):
    """A timed fit ran past its cap."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`FitTimeout` in the block after ``seconds`` (SIGALRM).

    No cap where ``seconds`` is None or the platform has no SIGALRM.
    """
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise FitTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed_default_fit(X: Any, max_iter: int | str, cap: float | None) -> dict:
    """Time ``SequenceVAE(random_state=0).fit(X)``, stopped after ``cap`` s.

    ``verbose=1`` draws the epoch bar into a buffer, from which the epochs
    done by the cap and the epoch budget are read.
    """
    from skvae import SequenceVAE

    extra = {} if max_iter == "auto" else {"max_iter": max_iter}
    vae = SequenceVAE(random_state=0, verbose=1, **extra)
    bar = io.StringIO()
    finished = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stderr(bar), timer() as t:
            try:
                with deadline(cap):
                    vae.fit(X)
            except FitTimeout:
                finished = False
    # The bar's total is the epoch budget until an early stop resets it.
    progress = re.findall(r"(\d+)/(\d+) \[", bar.getvalue())
    done = int(progress[-1][0]) if progress else None
    budget = int(progress[0][1]) if progress else None
    record = {
        "finished": finished,
        "fit_s": t.wall_s,
        "fit_cpu_s": t.cpu_s,
        "n_iter": int(vae.n_iter_) if finished else done,
        "epoch_budget": budget,
        "warnings": sorted(
            {f"{type(w.message).__name__}: {str(w.message)[:200]}" for w in caught}
        ),
    }
    if finished:
        record["total_kl"] = float(np.sum(vae.kl_per_component_))
        record["n_active_components"] = int(vae.n_active_components_)
    return record


def run_timing(
    texts: list[str], quick: bool, threads: int, restore: int, cap: float | None
) -> list[dict[str, Any]]:
    """Default fits on the names and on the long series, with ``threads``."""
    import torch

    max_iter: int | str = QUICK_TIMING_MAX_ITER if quick else "auto"
    n, steps = LONG_SERIES["quick" if quick else "full"]
    X, _ = long_series(n, steps)
    cases = [
        ("names", f"{len(texts)} strings of <= {max(map(len, texts))} chars", texts),
        ("sines", f"{n} series x {steps} steps", X),
    ]
    out = []
    torch.set_num_threads(threads)
    try:
        for case, shape, data in cases:
            load_before = list(os.getloadavg())
            fit = timed_default_fit(data, max_iter, cap)
            epochs = fit["n_iter"]
            out.append(
                {
                    "case": case,
                    "data": shape,
                    "threads": threads,
                    "cap_s": cap,
                    **fit,
                    "s_per_epoch": fit["fit_s"] / epochs if epochs else None,
                    "within_target": fit["finished"] and fit["fit_s"] <= TIME_TARGET_S,
                    "load_before": load_before,
                    "load_after": list(os.getloadavg()),
                }
            )
            state = "" if fit["finished"] else f" (stopped at the {cap:.0f} s cap)"
            print(
                f"  timing {case}: {shape}, {threads} threads: fit "
                f"{fit['fit_s']:.1f} s{state}, {epochs} of {fit['epoch_budget']} "
                f"epochs, load {format_load(out[-1]['load_after'])}",
                flush=True,
            )
    finally:
        torch.set_num_threads(restore)
    return out


def timing_table(runs: list[dict[str, Any]]) -> str:
    """The fit-time table."""
    rows = []
    for r in runs:
        seconds = f"{r['fit_s']:.1f}" if r["finished"] else f"> {r['cap_s']:.0f}"
        rows.append(
            [
                r["case"],
                r["data"],
                str(r["threads"]),
                seconds,
                f"{r['fit_cpu_s']:.1f}",
                f"{r['n_iter']} of {r['epoch_budget']}",
                "-" if r["s_per_epoch"] is None else f"{r['s_per_epoch']:.2f}",
                "yes" if r["within_target"] else "no",
            ]
        )
    return markdown_table(
        [
            "data",
            "size",
            "threads",
            "fit s",
            "CPU s",
            "epochs (of budget)",
            "s/epoch",
            f"<= {TIME_TARGET_S:.0f} s",
        ],
        rows,
        align="llrrrrrl",
    )


# --------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="random_state of the fits of the series part (default 0 1 2; 0 "
        "with --quick)",
    )
    parser.add_argument(
        "--text-seeds",
        type=int,
        nargs="+",
        default=None,
        help="random_state of the fits of the text part (default 0); the "
        "timing fits always use 0",
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="parts to run (default: all)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch.set_num_threads (default 1)"
    )
    parser.add_argument(
        "--timing-threads",
        type=int,
        default=2,
        help="torch threads of the timing fits (default 2)",
    )
    parser.add_argument(
        "--timing-cap",
        type=float,
        default=TIMING_CAP_S,
        help=f"stop a timing fit after this many seconds (default {TIMING_CAP_S:.0f}"
        "; 0: no cap)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"seed 0, {TEXT_SIZES['quick'][0]} names, max_iter={QUICK_MAX_ITER}: "
        "a smoke test",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output path (default benchmarks/results/bench_sequence.json; "
        "bench_sequence_quick.json with --quick, bench_sequence_partial.json "
        "with other seeds or parts)",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        partial = (
            args.seeds not in (None, list(DEFAULT_SEEDS))
            or args.text_seeds not in (None, list(TEXT_SEEDS))
            or set(args.parts) != set(PARTS)
        )
        args.out = default_out(__file__, quick=args.quick, partial=partial)
    return args


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run the parts; print the tables; return the payload."""
    import torch

    torch.set_num_threads(args.threads)
    seeds = resolve_seeds(args.seeds, args.quick, full=DEFAULT_SEEDS)
    text_seeds = resolve_seeds(args.text_seeds, args.quick, full=TEXT_SEEDS)
    max_iter: int | str = QUICK_MAX_ITER if args.quick else "auto"
    payload: dict[str, Any] = {}
    tables = []
    text = load_names(*TEXT_SIZES["quick" if args.quick else "full"])
    settings = {
        "seeds": seeds,
        "text_seeds": text_seeds,
        "parts": args.parts,
        "threads": args.threads,
        "timing_threads": args.timing_threads,
        "timing_cap_s": args.timing_cap,
        "quick": args.quick,
        "max_iter": max_iter,
        "split_seed": SPLIT_SEED,
        "n_generated": N_GENERATED,
        "sample_seed": SAMPLE_SEED,
        "text": {
            "n_train": len(text["train"]),
            "n_test": len(text["test"]),
            "labels": text["labels"],
            "train_label_counts": np.bincount(text["y_train"]).tolist(),
            "test_label_counts": np.bincount(text["y_test"]).tolist(),
            "test_dropped_too_long": text["test_dropped_too_long"],
            "available": text["available"],
            "longest_train": max(len(s) for s in text["train"]),
        },
        "lm": {
            "batch_size": LM_BATCH,
            "learning_rate": LM_LEARNING_RATE,
            "max_epochs": QUICK_LM_EPOCHS if args.quick else LM_MAX_EPOCHS,
            "patience": LM_PATIENCE,
            "validation_fraction": LM_VALIDATION,
        },
    }
    with timer() as total:
        if "text" in args.parts:
            print(
                f"text: {len(text['train'])} training / {len(text['test'])} "
                f"held-out names; seeds {text_seeds}",
                flush=True,
            )
            runs = []
            for seed in text_seeds:
                r = run_text(text, seed, args.quick)
                runs.append(r)
                v, lm = r["vae"], r["lm"]
                print(
                    f"  seed {seed}: SequenceVAE {v['nats_per_token']:.4f} nats/token "
                    f"(KL {v['total_kl']:.2f}, {v['n_active_components']} active, "
                    f"fit {v['fit_s']:.0f} s, {v['n_iter']} epochs), LM "
                    f"{lm['nats_per_token']:.4f} (fit {lm['fit_s']:.0f} s, "
                    f"{lm['n_iter']} epochs); samples: "
                    + ", ".join(v["samples"]["shown"]),
                    flush=True,
                )
                print("  interpolation: " + " -> ".join(v["interpolation"]["path"]))
            table = text_tables(runs)
            tables.append(f"names:\n\n{table}")
            print("\n" + tables[-1] + "\n", flush=True)
            payload["text"] = runs
        if "series" in args.parts:
            cls_runs, anomaly_runs, sizes = [], [], {}
            for name in UCR:
                data = load_ucr(name)
                sizes[name] = {
                    "n_train": int(data["X_train"].shape[0]),
                    "n_test": int(data["X_test"].shape[0]),
                    "n_steps": int(data["X_train"].shape[1]),
                    "classes": sorted(set(data["y_train"])),
                }
                print(f"{name}: {sizes[name]}", flush=True)
                for seed in seeds:
                    r = run_classification(name, data, seed, max_iter)
                    cls_runs.append(r)
                    print(
                        f"  seed {seed}: accuracy VAE {r['vae_codes']:.3f}, PCA "
                        f"{r['pca_peer']:.3f} ({r['pca_peer_variant']}), raw "
                        f"{r['raw_series']:.3f}; fit {r['fit_s']:.1f} s, "
                        f"{r['n_iter']} epochs, KL {r['total_kl']:.1f}",
                        flush=True,
                    )
                    for a in run_anomaly(name, data, seed, max_iter):
                        anomaly_runs.append(a)
                        print(
                            f"  seed {seed} class {a['normal_class']}: ROC-AUC VAE "
                            f"{a['vae']:.3f}, IF {a['isolation_forest']:.3f}, PCA "
                            f"{a['pca_reconstruction']:.3f}",
                            flush=True,
                        )
            settings["ucr"] = sizes
            tables.append(series_tables(cls_runs, anomaly_runs))
            print("\n" + tables[-1] + "\n", flush=True)
            payload["classification"] = cls_runs
            payload["anomaly"] = anomaly_runs
        if "timing" in args.parts:
            print(f"timing ({args.timing_threads} threads):", flush=True)
            runs = run_timing(
                text["train"],
                args.quick,
                args.timing_threads,
                args.threads,
                args.timing_cap,
            )
            tables.append(f"fit time:\n\n{timing_table(runs)}")
            print("\n" + tables[-1] + "\n", flush=True)
            payload["timing"] = runs
    print(
        "nats/token: -log p over the held-out names' tokens (characters and the "
        "end token) / their number (SequenceVAE: importance-weighted bound, "
        "32 draws); new / distinct: shares of 1,000 samples; bigram JSD: "
        "Jensen-Shannon divergence in bits of character bigrams (with ^ and $) "
        "of the samples vs the held-out names."
    )
    print(f"total {total.wall_s:.0f} s; load average at end: ", end="")
    print(format_load(os.getloadavg()))
    return {
        "settings": settings,
        "total_s": total.wall_s,
        "tables": "\n\n".join(tables),
        **payload,
    }


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    run = start_run(__file__, args, extra_libraries=("aeon", "names"))
    run.write(args.out, run_benchmark(args), indent=2)


if __name__ == "__main__":
    main()
