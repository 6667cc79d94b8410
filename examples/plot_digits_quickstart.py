"""
Digits quickstart: reduce, reconstruct, score and generate
==========================================================

Fit a :class:`skvae.VAETransformer` on scikit-learn's bundled 8x8 digits and
compare it with PCA of the same size on three jobs:

* reconstruction error of held-out digits,
* held-out log-likelihood (probabilistic PCA is the linear special case),
* accuracy of a logistic regression trained on the 8-d codes.

It writes a figure of generated digits and of reconstructions. Set
``SKVAE_EXAMPLE_QUICK=1`` for a seconds-long smoke run and
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
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skvae import VAETransformer

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)

# %%
# Data: 1,797 digits of 64 pixels, grey levels 0..16 as shipped (no
# rescaling needed); 70% to train.
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, random_state=0, stratify=y
)

# %%
# Fit the VAE with its defaults (the training plan, early stopping on
# held-out rows included, is chosen from the data) and PCA.
start = time.perf_counter()
vae = VAETransformer(n_components=8, random_state=0)
if QUICK:
    vae.set_params(max_iter=5, n_iter_no_change=5)
vae.fit(X_train)
fit_seconds = time.perf_counter() - start
pca = PCA(n_components=8).fit(X_train)


def rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


Z_train, Z_test = vae.transform(X_train), vae.transform(X_test)
results = {
    "reconstruction RMSE": (
        rmse(vae.inverse_transform(Z_test), X_test),
        rmse(pca.inverse_transform(pca.transform(X_test)), X_test),
    ),
    "held-out log-likelihood (nats/digit)": (vae.score(X_test), pca.score(X_test)),
    "logistic regression accuracy on codes": (
        LogisticRegression(max_iter=5000).fit(Z_train, y_train).score(Z_test, y_test),
        LogisticRegression(max_iter=5000)
        .fit(pca.transform(X_train), y_train)
        .score(pca.transform(X_test), y_test),
    ),
}
print(
    f"VAETransformer: {vae.n_iter_} epochs in {fit_seconds:.1f} s, "
    f"{vae.n_active_components_}/8 latent components active"
)
print(f"column-mean reconstruction RMSE: {rmse(X_train.mean(0), X_test):.3f}")
print(f"{'metric':<40}{'VAE':>10}{'PCA(8)':>10}")
for name, (ours, theirs) in results.items():
    print(f"{name:<40}{ours:>10.3f}{theirs:>10.3f}")

# %%
# Generated digits (decoder means) and reconstructions of held-out digits.
fig, axes = plt.subplots(3, 10, figsize=(10, 3.4))
samples = vae.sample(10, random_state=0, return_mean=True)
recon = vae.inverse_transform(Z_test[:10])
rows = [(samples, "generated"), (X_test[:10], "held-out"), (recon, "reconstructed")]
for r, (images, label) in enumerate(rows):
    for c in range(10):
        ax = axes[r, c]
        ax.imshow(images[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
fig.suptitle("VAETransformer on load_digits (8 latent components)")
fig.tight_layout()
path = FIGURES / "digits_quickstart.png"
fig.savefig(path, dpi=120)
print(f"figure written to {path}")
