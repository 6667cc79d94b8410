"""
Tuning a VAE with GridSearchCV: by a downstream classifier or by likelihood
===========================================================================

:class:`skvae.VAETransformer` is a scikit-learn transformer, so its
parameters can be tuned like those of ``PCA``, two ways:

* **supervised**: as the first step of a ``Pipeline`` in front of a
  classifier, with ``GridSearchCV`` choosing ``n_components`` and ``beta``
  by the cross-validated accuracy of the whole pipeline;
* **unsupervised**: on its own, with ``GridSearchCV`` and no ``scoring``.
  ``VAETransformer.score(X)`` is the mean log-likelihood of X (an
  importance-weighted estimate, in nats per row), so the search picks the
  model that explains the held-out folds best; no labels needed.

The data are scikit-learn's bundled 8x8 digits. Each fit gets a short budget
of epochs (enough to rank the settings), so the convergence warnings are
silenced, and so are the posterior-collapse warnings of the settings whose
codes carry no information (``beta=4`` with few components): their scores
already say so. It prints both searches' results and writes a figure of the scores
against ``n_components``. Set ``SKVAE_EXAMPLE_QUICK=1`` for a seconds-long
smoke run and ``SKVAE_FIGURE_DIR`` to choose where figures go (default:
``figures/`` next to this file).
"""

# %%
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from skvae import PosteriorCollapseWarning, VAETransformer

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)
warnings.filterwarnings("ignore", category=ConvergenceWarning)
warnings.filterwarnings("ignore", category=PosteriorCollapseWarning)
pd.set_option("display.width", 120)
pd.set_option("display.max_columns", None)

# %%
# Data: 1,797 digits of 64 pixels in [0, 1]. The searches cross-validate on
# 75% of them; the last quarter is kept for a final check of each winner.
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0, stratify=y
)
if QUICK:
    X_train, y_train = X_train[:300], y_train[:300]
vae = VAETransformer(max_iter=2 if QUICK else 60, batch_size=256, random_state=0)
n_components_grid = [2, 4] if QUICK else [2, 4, 8, 16]
columns = ["mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time"]

# %%
# Supervised: the VAE's codes feed a logistic regression, and the search
# scores the pipeline by accuracy (the classifier's ``score``).
pipeline = Pipeline([("vae", vae), ("classifier", LogisticRegression(max_iter=2000))])
by_accuracy = GridSearchCV(
    pipeline,
    {"vae__n_components": n_components_grid, "vae__beta": [1.0, 4.0]},
    cv=3,
)
by_accuracy.fit(X_train, y_train)
table = pd.DataFrame(by_accuracy.cv_results_)
print("Pipeline(VAETransformer, LogisticRegression), scored by accuracy:")
print(table[["param_vae__n_components", "param_vae__beta", *columns]].round(3))
print(f"best: {by_accuracy.best_params_}")
print(f"accuracy on the held-out quarter: {by_accuracy.score(X_test, y_test):.3f}\n")

# %%
# Unsupervised: no labels and no ``scoring``; ``GridSearchCV`` calls
# ``VAETransformer.score``, the mean held-out log-likelihood.
by_likelihood = GridSearchCV(vae, {"n_components": n_components_grid}, cv=3)
by_likelihood.fit(X_train)
table = pd.DataFrame(by_likelihood.cv_results_)
print("VAETransformer alone, scored by log-likelihood (nats per digit):")
print(table[["param_n_components", *columns]].round(3))
print(f"best: {by_likelihood.best_params_}")
print(
    "log-likelihood of the held-out quarter: "
    f"{by_likelihood.score(X_test):.1f} nats per digit"
)

# %%
# The cross-validated scores against ``n_components``: accuracy with one
# standard deviation over the folds; log-likelihood fold by fold (thin lines)
# and on average. The folds differ more in difficulty than the settings do,
# so the differences between settings show within each fold, not in a
# standard deviation across folds.
fig, (ax_acc, ax_ll) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
results = by_accuracy.cv_results_
for beta in [1.0, 4.0]:
    keep = np.asarray(results["param_vae__beta"]) == beta
    ax_acc.errorbar(
        np.asarray(results["param_vae__n_components"])[keep],
        results["mean_test_score"][keep],
        yerr=results["std_test_score"][keep],
        marker="o",
        capsize=3,
        label=f"beta = {beta:g}",
    )
ax_acc.set_title("Pipeline: VAE codes -> logistic regression")
ax_acc.set_ylabel("cross-validated accuracy")
results = by_likelihood.cv_results_
n_components = results["param_n_components"].astype(int)
for fold in range(by_likelihood.n_splits_):
    ax_ll.plot(
        n_components,
        results[f"split{fold}_test_score"],
        color="C2",
        alpha=0.4,
        linewidth=1,
        label="one fold" if fold == 0 else None,
    )
ax_ll.plot(n_components, results["mean_test_score"], "o-", color="C2", label="mean")
ax_ll.set_title("VAE alone, GridSearchCV with no scoring")
ax_ll.set_ylabel("held-out log-likelihood (nats per digit)")
for ax, search, key in [
    (ax_acc, by_accuracy, "vae__n_components"),
    (ax_ll, by_likelihood, "n_components"),
]:
    ax.set_xscale("log", base=2)
    ax.set_xticks(n_components_grid, [str(k) for k in n_components_grid])
    ax.set_xlabel("n_components (latent dimension)")
    ax.axvline(search.best_params_[key], color="0.5", linestyle=":", label="chosen")
ax_acc.legend(loc="upper left")
ax_ll.margins(y=0.25)
ax_ll.legend(loc="upper center", ncols=3)
path = FIGURES / "pipeline_gridsearch.png"
fig.savefig(path, dpi=100)
print(f"figure written to {path}")
