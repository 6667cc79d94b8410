"""
The beta-VAE trade-off: reconstruction against a regular latent space
=====================================================================

The VAE objective is a reconstruction term plus ``beta`` times the KL
divergence from each digit's posterior q(z | x) to the N(0, I) prior. The KL
is the price, in nats, of the information the code carries about the digit:

* a small ``beta`` makes information cheap: every component carries some,
  reconstructions are sharpest, and what tells the classes apart is spread
  over all the components, so a 2-D view of the codes mixes the classes;
* a large ``beta`` makes it dear: the model switches components off (their
  KL drops to 0, see ``kl_per_component_`` and ``n_active_components_``) and
  keeps the few that pay most, which order the digits by class in a compact
  disc shaped like the prior: a more regular latent space, at the price of
  blurrier, more average reconstructions;
* past some point no information is worth its price and the posterior
  collapses: every code is the origin, every reconstruction the mean digit,
  and :class:`skvae.PosteriorCollapseWarning` says so.

This example fits :class:`skvae.VAETransformer` with 8 latent components on
scikit-learn's bundled 8x8 digits for five values of ``beta`` and compares
held-out reconstruction error, the KL per component and the latent maps. Set
``SKVAE_EXAMPLE_QUICK=1`` for a seconds-long smoke run and
``SKVAE_FIGURE_DIR`` to choose where figures go (default: ``figures/`` next
to this file).
"""

# %%
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skvae import PosteriorCollapseWarning, VAETransformer
from skvae.plotting import plot_latent_space

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)

# %%
# Data: 1,797 digits of 64 pixels, scaled to [0, 1]; 30% held out.
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, random_state=0, stratify=y
)

# %%
# One fit per beta; everything else (seed included) is the same. Collapse
# and convergence warnings are recorded and noted in the table rather than
# printed.
betas = [0.5, 1.0, 2.0, 4.0, 10.0]
models, rows = {}, []
for beta in betas:
    vae = VAETransformer(
        n_components=8,
        beta=beta,
        max_iter=3 if QUICK else 300,
        early_stopping=True,
        random_state=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vae.fit(X_train)
    notes = []
    if any(issubclass(w.category, PosteriorCollapseWarning) for w in caught):
        notes.append("collapsed")
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append("max_iter reached")
    reconstruction = vae.inverse_transform(vae.transform(X_test))
    rows.append(
        (
            beta,
            float(np.sqrt(np.mean((reconstruction - X_test) ** 2))),
            float(vae.kl_per_component_.sum()),
            vae.n_active_components_,
            vae.score(X_test),
            ", ".join(notes),
        )
    )
    models[beta] = vae

print(
    f"{'beta':>5} {'held-out RMSE':>14} {'KL (nats)':>10} {'active':>7} "
    f"{'log-lik (nats)':>15}"
)
for beta, rmse, kl, active, score, note in rows:
    print(f"{beta:>5g} {rmse:>14.3f} {kl:>10.2f} {active:>5}/8 {score:>15.1f}  {note}")

# %%
# The held-out log-likelihood (last column) weighs both sides of the trade-off;
# it is what ``GridSearchCV`` maximizes when it tunes ``beta`` with no
# ``scoring`` (see ``plot_pipeline_gridsearch.py``).
#
# Top: the held-out codes of each model, projected on their first two
# principal components, on shared axes in prior units (the dashed circle has
# radius 2, about 86% of a 2-d standard normal's mass; a few far-out codes
# fall outside the axes). Bottom left: the
# trade-off curve, reconstruction error against the information the code
# carries. Bottom right: the KL of each latent component, largest first.
fig = plt.figure(figsize=(16, 9.0), layout="constrained")
top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.05])
map_axes = top.subplots(1, len(betas), sharex=True, sharey=True)
for i, (ax, beta) in enumerate(zip(map_axes, betas, strict=True)):
    plot_latent_space(models[beta], X_test, y_test, ax=ax, s=8)
    if i < len(betas) - 1:
        ax.get_legend().remove()
    ax.add_patch(plt.Circle((0, 0), 2, fill=False, linestyle="--", color="0.5"))
    ax.set_xlim(-4.5, 4.5)
    ax.set_ylim(-4.5, 4.5)
    ax.set_aspect("equal")
    ax.set_title(f"beta = {beta:g}: {models[beta].n_active_components_}/8 active")
    ax.set_xlabel("latent PCA 1")
    ax.set_ylabel("latent PCA 2" if i == 0 else "")
top.suptitle("Held-out digits in latent space (PCA of the 8-d codes)")

curve_ax, kl_ax = bottom.subplots(1, 2, width_ratios=[1, 1.3])
rmse_values = [row[1] for row in rows]
kl_values = [row[2] for row in rows]
curve_ax.plot(kl_values, rmse_values, "o-")
for beta, kl, rmse in zip(betas, kl_values, rmse_values, strict=True):
    curve_ax.annotate(
        f"beta = {beta:g}", (kl, rmse), textcoords="offset points", xytext=(6, 6)
    )
curve_ax.margins(x=0.2, y=0.12)
curve_ax.set_xlabel("KL to the prior, summed over components (nats per digit)")
curve_ax.set_ylabel("held-out reconstruction RMSE (pixel units)")
curve_ax.set_title("More information in the code, sharper reconstructions")

width = 0.8 / len(betas)
positions = np.arange(8)
for i, beta in enumerate(betas):
    kl_sorted = np.sort(models[beta].kl_per_component_)[::-1]
    kl_ax.bar(positions + (i - 2) * width, kl_sorted, width, label=f"beta = {beta:g}")
kl_ax.set_xticks(positions, [str(p + 1) for p in positions])
kl_ax.set_xlabel("latent component, sorted by its KL")
kl_ax.set_ylabel("kl_per_component_ (nats per digit)")
kl_ax.set_title(
    f"Larger beta switches components off (beta = {betas[-1]:g}: all of them)"
)
kl_ax.legend()
path = FIGURES / "beta_sweep.png"
fig.savefig(path, dpi=100)
print(f"figure written to {path}")
