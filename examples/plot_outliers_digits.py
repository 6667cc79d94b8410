"""
Anomalies among digits: scores and per-pixel explanations
=========================================================

All the 1s of scikit-learn's bundled digits, contaminated with a few images of
other digits, go into :class:`skvae.VAEOutlierDetector` unlabelled (the
unsupervised setting: fit and score the same data). The figure shows the
log-likelihood of normal and anomalous rows, and the most anomalous images
next to ``feature_log_likelihood``: which pixels the model found unlikely.

Set ``SKVAE_EXAMPLE_QUICK=1`` for a seconds-long smoke run and
``SKVAE_FIGURE_DIR`` to choose where figures go.
"""

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)

# %%
# The 1s plus 5% as many images of other digits.
X, y = load_digits(return_X_y=True)
X = X / 16.0
rng = np.random.RandomState(0)
normal = np.flatnonzero(y == 1)
others = rng.choice(np.flatnonzero(y != 1), size=len(normal) // 20, replace=False)
X_mixed = X[np.concatenate([normal, others])]
is_anomaly = np.r_[np.zeros(len(normal), bool), np.ones(len(others), bool)]

# %%
# Fit and score the same rows; contamination sets the predict threshold. The
# pixels share one unit, so they stay in it (standardize=False), and the
# scores then weigh every pixel's deviation with one pooled noise variance
# (score_variance="auto").
detector = VAEOutlierDetector(
    contamination=0.05,
    standardize=False,
    trim_fraction=0.1,
    max_iter=5 if QUICK else 60,
    random_state=0,
)
labels = detector.fit_predict(X_mixed)
scores = detector.score_samples(X_mixed)
forest = IsolationForest(random_state=0).fit(X_mixed)
print(f"rows: {len(X_mixed)} ({is_anomaly.sum()} anomalies)")
print(f"ROC-AUC  VAEOutlierDetector {roc_auc_score(is_anomaly, -scores):.3f}")
print(
    f"ROC-AUC  IsolationForest    "
    f"{roc_auc_score(is_anomaly, -forest.score_samples(X_mixed)):.3f}"
)
print(f"flagged by predict: {np.mean(labels == -1):.1%} of rows")

# %%
# Score distributions, and the five most anomalous rows with their pixels'
# log-likelihood (dark = unlikely under the model).
contributions = detector.feature_log_likelihood(X_mixed)
worst = np.argsort(scores)[:5]
# One colour scale for all explanation panels, clipped at the 2nd percentile so
# a single extreme pixel does not wash out the rest.
vmin = np.percentile(contributions[worst], 2)
vmax = contributions[worst].max()
fig = plt.figure(figsize=(10, 5.5))
grid = fig.add_gridspec(3, 5, height_ratios=[1.4, 1, 1])
ax = fig.add_subplot(grid[0, :])
bins = np.linspace(scores.min(), scores.max(), 40)
ax.hist(scores[~is_anomaly], bins=bins, alpha=0.7, label="1s (normal)")
ax.hist(scores[is_anomaly], bins=bins, alpha=0.7, label="other digits (anomalies)")
ax.axvline(detector.offset_, color="k", linestyle="--", label="offset_")
ax.set_xlabel("score_samples: log-likelihood (nats)")
ax.legend(loc="upper left")
for col, row in enumerate(worst):
    top = fig.add_subplot(grid[1, col])
    top.imshow(X_mixed[row].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    kind = "anomaly" if is_anomaly[row] else "normal"
    top.set_title(f"{kind}\n{scores[row]:.0f} nats", fontsize=9)
    bottom = fig.add_subplot(grid[2, col])
    image = bottom.imshow(
        contributions[row].reshape(8, 8), cmap="magma", vmin=vmin, vmax=vmax
    )
    for a in (top, bottom):
        a.set_xticks([])
        a.set_yticks([])
fig.suptitle("VAEOutlierDetector on digits: most anomalous rows and why")
fig.tight_layout()
fig.colorbar(image, ax=fig.axes[-10:], shrink=0.6, label="log p(pixel | z) (nats)")
path = FIGURES / "outliers_digits.png"
fig.savefig(path, dpi=120)
print(f"figure written to {path}")
