"""
Anomaly scores for a Parquet table larger than memory
=====================================================

A directory of Parquet files (30 million rows, 2.4 GB of float32 values in
the full run) is written here, file by file, as a data pipeline would leave
it. Dask reads it lazily; :class:`skvae.VAEOutlierDetector` streams it
partition by partition (one summary pass for the schema, then the epochs,
with a progress bar), and the anomaly scores of every row go back to
Parquet beside a label column, without the table ever being in memory. The
figure shows the score distribution of normal and anomalous rows and the
process's peak memory against the size of the data.

Set ``SKVAE_EXAMPLE_QUICK=1`` for a seconds-long smoke run and
``SKVAE_FIGURE_DIR`` to choose where figures go.
"""

# %%
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import dask.dataframe as dd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)
N_FILES, ROWS_PER_FILE = (4, 5_000) if QUICK else (60, 500_000)
N_COLUMNS, ANOMALY_SHARE = 20, 0.01


def peak_rss_gib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# %%
# Each file holds rows of a 4-dimensional nonlinear manifold in 20 columns,
# plus 1% anomalies: rows whose columns were shuffled (every value is
# typical, their combination is not). Only one file is ever in memory.
def write_table(directory: Path) -> None:
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(4, N_COLUMNS))
    for i in range(N_FILES):
        z = rng.normal(size=(ROWS_PER_FILE, 4))
        noise = rng.normal(size=(ROWS_PER_FILE, N_COLUMNS))
        values = np.tanh(z @ mixing) + 0.05 * noise
        anomaly = rng.random(ROWS_PER_FILE) < ANOMALY_SHARE
        shuffled = rng.permuted(values[anomaly], axis=1)
        values[anomaly] = shuffled
        names = [f"x{j}" for j in range(N_COLUMNS)]
        frame = pd.DataFrame(values.astype(np.float32), columns=names)
        frame["is_anomaly"] = anomaly
        frame.to_parquet(directory / f"part-{i:03d}.parquet", index=False)


work = Path(tempfile.mkdtemp(prefix="skvae-parquet-"))
table, scored = work / "table", work / "scores"
table.mkdir()
write_table(table)
size_gib = sum(f.stat().st_size for f in table.iterdir()) / 2**30
n_rows = N_FILES * ROWS_PER_FILE
print(f"table: {n_rows:,} rows in {N_FILES} Parquet files, {size_gib:.2f} GiB on disk")

# %%
# Fit on the feature columns, streamed; one epoch of the full table is about
# 30,000 minibatches. ``n_iter_no_change=max_iter`` asks for exactly that
# many epochs.
frame = dd.read_parquet(table)
features = [c for c in frame.columns if c != "is_anomaly"]
detector = VAEOutlierDetector(
    max_iter=3 if QUICK else 1,
    n_iter_no_change=3 if QUICK else 1,
    random_state=0,
    verbose=1,
)
start = time.perf_counter()
detector.fit(frame[features])
fit_s = time.perf_counter() - start

# %%
# Score every row lazily and write the scores back beside the labels. Dask's
# threaded scheduler scores several partitions at once; one PyTorch thread
# each keeps them from competing for the cores.
torch.set_num_threads(1)
start = time.perf_counter()
out = frame[["is_anomaly"]].assign(score=detector.score_samples(frame[features]))
out.to_parquet(scored, write_index=False)
score_s = time.perf_counter() - start
print(f"fit {fit_s:.0f} s, scoring and writing {score_s:.0f} s")
print(f"peak memory of this process: {peak_rss_gib():.2f} GiB")

# %%
# Read a 1% sample of the written scores back for the figure.
sample = dd.read_parquet(scored).sample(frac=0.01, random_state=0).compute()
auc = roc_auc_score(sample["is_anomaly"], -sample["score"])
print(f"ROC-AUC on a 1% sample of the written scores: {auc:.3f}")

fig, (ax, mem) = plt.subplots(1, 2, figsize=(9, 3.4), width_ratios=[3, 1])
bins = np.linspace(*np.percentile(sample["score"], [0.5, 100]), 60)
for flag, label in [(False, "normal rows"), (True, "anomalies")]:
    rows = sample.loc[sample["is_anomaly"] == flag, "score"]
    if len(rows) > 1:
        ax.hist(rows, bins=bins, density=True, alpha=0.6, label=label)
ax.set_xlabel("log-likelihood (nats)")
ax.set_title(f"scores written back to Parquet (ROC-AUC {auc:.3f})")
ax.legend()
mem.bar(["data on disk", "peak memory"], [size_gib, peak_rss_gib()], color=["C7", "C2"])
mem.set_ylabel("GiB")
fig.tight_layout()
fig.savefig(FIGURES / "parquet_out_of_core.png", dpi=100)

# %%
# The generated table and the scores were only for this example.
shutil.rmtree(work)
