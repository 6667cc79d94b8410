"""
Single and multiple imputation of a real table
==============================================

A third of the entries of scikit-learn's breast-cancer table (569 tumours x 30
measurements) are hidden at random. :class:`skvae.VAEImputer` learns from the
incomplete table only and fills the holes two ways:

* ``transform``: one best guess per entry, the importance-weighted
  conditional mean (compared with the column mean and ``IterativeImputer``);
* ``sample_imputations``: 20 plausible completed tables, whose spread says how
  sure the model is about each entry.

The figure plots imputed against true values, and the draws of multiple
imputation for a handful of hidden entries with their 90% intervals.

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
from sklearn.datasets import load_breast_cancer
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer

from skvae import VAEImputer

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)

# %%
# Hide 30% of the entries, completely at random (no row loses everything).
data = load_breast_cancer()
X, names = data.data, data.feature_names
rng = np.random.RandomState(0)
hidden = rng.rand(*X.shape) < 0.3
hidden[hidden.all(1), 0] = False
X_missing = np.where(hidden, np.nan, X)
scale = X.std(0)


def rmse(X_filled):
    """Error on the hidden entries, in standard deviations of each column."""
    return np.sqrt(np.mean(((X_filled - X) / scale)[hidden] ** 2))


# %%
# Single imputation. The imputer works in the original units (it standardizes
# internally) and returns observed entries untouched.
imputer = VAEImputer(max_iter=20 if QUICK else 500, random_state=0)
X_vae = imputer.fit_transform(X_missing)
assert np.array_equal(X_vae[~hidden], X[~hidden])
X_mean = SimpleImputer().fit_transform(X_missing)
X_iter = IterativeImputer(max_iter=10, random_state=0).fit_transform(X_missing)
print(f"epochs: {imputer.n_iter_} (early stopping on hidden observed entries)")
print("RMSE on hidden entries (column standard deviations):")
for label, filled in [
    ("column mean", X_mean),
    ("IterativeImputer", X_iter),
    ("VAEImputer", X_vae),
]:
    print(f"  {label:17s} {rmse(filled):.3f}")

# %%
# Multiple imputation: 20 completed tables drawn from p(missing | observed).
draws = imputer.sample_imputations(X_missing, n_imputations=20, random_state=0)
low, high = np.percentile(draws, [5, 95], axis=0)
inside = (X >= low) & (X <= high)
print(f"true values inside the central 90% of the draws: {inside[hidden].mean():.2f}")

# %%
# Left: imputed vs true for two columns. Right: the 20 draws of a few hidden
# entries of one column, their 90% interval, and the true value.
fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
for ax, j in zip(axes[:2], [0, 23], strict=True):
    rows = hidden[:, j]
    ax.scatter(X[rows, j], X_iter[rows, j], s=10, alpha=0.6, label="IterativeImputer")
    ax.scatter(X[rows, j], X_vae[rows, j], s=10, alpha=0.6, label="VAEImputer")
    lims = [X[:, j].min(), X[:, j].max()]
    ax.plot(lims, lims, color="k", lw=0.8)
    ax.set(xlabel=f"true {names[j]}", ylabel="imputed", title=names[j])
    ax.legend(loc="upper left", fontsize=8)

j = 0
rows = np.flatnonzero(hidden[:, j])[:15]
ax = axes[2]
for i, r in enumerate(rows):
    ax.plot([i, i], [low[r, j], high[r, j]], color="tab:blue", lw=4, alpha=0.3)
    ax.scatter(np.full(20, i), draws[:, r, j], s=6, color="tab:blue")
    ax.scatter(i, X[r, j], marker="x", color="tab:red", s=40, zorder=3)
ax.set(
    xlabel="hidden entry",
    ylabel=names[j],
    title="20 draws, 90% interval (bar), truth (x)",
)
fig.tight_layout()
fig.savefig(FIGURES / "imputation_cancer.png", dpi=110)
print(f"wrote {FIGURES / 'imputation_cancer.png'}")
