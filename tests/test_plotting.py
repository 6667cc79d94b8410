"""skvae.plotting: figures show the data they are given, matplotlib stays optional."""

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError

from skvae import VAEImputer, VAETransformer
from skvae.plotting import (
    plot_interpolation,
    plot_latent_space,
    plot_loss_curve,
    plot_reconstructions,
    plot_samples,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:240] / 16.0, y[:240]


def _fit(X, **params):
    params = {
        "hidden_layer_sizes": (16,),
        "max_iter": 3,
        "n_iter_no_change": 3,
        "early_stopping": False,
        "random_state": 0,
        "device": "cpu",
        **params,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VAETransformer(**params).fit(X)


@pytest.fixture(scope="module")
def vae2(digits):
    return _fit(digits[0], n_components=2)


@pytest.fixture(scope="module")
def vae3_es(digits):
    return _fit(digits[0], n_components=3, early_stopping=True, max_iter=4)


def _image(ax):
    return np.ma.getdata(ax.images[0].get_array())


# ---------------------------------------------------------------- optional import
def test_importing_skvae_does_not_import_matplotlib():
    code = (
        "import sys, skvae, skvae.plotting; from skvae import plotting; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"skvae\[plotting\]"):
        plot_samples(np.zeros((2, 4)))


# ---------------------------------------------------------------- image grids
def test_plot_samples_shows_each_row_reshaped(digits):
    X = digits[0][:13]
    fig = plot_samples(X, n_cols=5)
    assert len(fig.axes) == 13
    for row, ax in zip(X, fig.axes, strict=True):
        assert len(ax.images) == 1
        np.testing.assert_array_equal(_image(ax), row.reshape(8, 8))
        # One grey scale for all images.
        assert ax.images[0].get_clim() == (X.min(), X.max())
    # 13 images in rows of 5: three rows, the last with three images.
    rows = sorted({round(ax.get_position().y0, 6) for ax in fig.axes})
    assert len(rows) == 3


def test_plot_samples_dataframe_and_given_figure(digits):
    X = digits[0][:4]
    fig = plt.figure()
    out = plot_samples(pd.DataFrame(X), fig=fig, cmap="viridis")
    assert out is fig
    assert len(fig.axes) == 4
    np.testing.assert_array_equal(_image(fig.axes[3]), X[3].reshape(8, 8))
    assert fig.axes[0].images[0].get_cmap().name == "viridis"


def test_plot_samples_image_shape():
    X = np.arange(24.0).reshape(2, 12)
    with pytest.raises(ValueError, match="perfect square"):
        plot_samples(X)
    fig = plot_samples(X, image_shape=(3, 4))
    np.testing.assert_array_equal(_image(fig.axes[1]), X[1].reshape(3, 4))
    for bad in [(5, 5), (12,), (3, 4.0), (-3, -4), "3x4"]:
        with pytest.raises(ValueError, match="image_shape"):
            plot_samples(X, image_shape=bad)


@pytest.mark.parametrize(
    ("X", "params"),
    [(np.zeros(16), {}), (np.zeros((0, 16)), {}), (np.zeros((2, 16)), {"n_cols": 0})],
)
def test_plot_samples_rejects_bad_input(X, params):
    with pytest.raises(ValueError, match="2-D|no rows|n_cols"):
        plot_samples(X, **params)


def test_plot_reconstructions_originals_over_decoded(vae2, digits):
    X = digits[0]
    fig = plot_reconstructions(vae2, X, n=6)
    assert len(fig.axes) == 12
    expected = vae2.inverse_transform(vae2.transform(X[:6]))
    for i in range(6):
        np.testing.assert_array_equal(_image(fig.axes[i]), X[i].reshape(8, 8))
        np.testing.assert_allclose(
            _image(fig.axes[6 + i]), expected[i].reshape(8, 8), rtol=1e-6
        )
    assert fig.axes[0].get_ylabel() == "original"
    assert fig.axes[6].get_ylabel() == "decoded"
    # Fewer rows than n: every row is shown once.
    fig = plot_reconstructions(vae2, X[:3], n=10)
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="perfect square|image_shape"):
        plot_reconstructions(vae2, X, image_shape=(4, 4))


def test_plot_interpolation_strip(digits):
    X = digits[0]
    t = np.linspace(0.0, 1.0, 5)[:, None]
    path = (1 - t) * X[0] + t * X[1]
    ax = plot_interpolation(pd.DataFrame(path))
    assert len(ax.images) == 1
    strip = _image(ax)
    gap = 1
    assert strip.shape == (8, 5 * 8 + 4 * gap)
    for i in range(5):
        start = i * (8 + gap)
        np.testing.assert_allclose(strip[:, start : start + 8], path[i].reshape(8, 8))
    assert np.isnan(strip[:, 8]).all()  # blank gap between steps
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3", "4"]
    _, given = plt.subplots()
    assert plot_interpolation(path, image_shape=(4, 16), ax=given) is given
    assert _image(given).shape == (4, 5 * 16 + 4 * 2)
    with pytest.raises(ValueError, match="image_shape"):
        plot_interpolation(path, image_shape=(4, 4))


# ---------------------------------------------------------------- latent space
def test_latent_space_points_are_the_codes(vae2, digits):
    X, y = digits
    ax = plot_latent_space(vae2, X, y)
    points = ax.collections[0]
    np.testing.assert_allclose(points.get_offsets(), vae2.transform(X), rtol=1e-6)
    assert ax.get_xlabel() == "latent dimension 0"
    colors = points.get_facecolors()
    assert colors.shape[0] == len(y)
    per_class = {}
    for label in np.unique(y):
        class_colors = np.unique(colors[y == label], axis=0)
        assert len(class_colors) == 1  # one colour per class ...
        per_class[label] = tuple(class_colors[0])
    assert len(set(per_class.values())) == len(per_class)  # ... all different
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [str(c) for c in np.unique(y)]


def test_latent_space_string_labels_and_given_ax(vae2, digits):
    X, y = digits
    names = pd.Series(np.where(y % 2 == 0, "even", "odd"), name="parity")
    _, ax = plt.subplots()
    assert plot_latent_space(vae2, X, names, ax=ax, s=3) is ax
    colors = ax.collections[0].get_facecolors()
    even = names.to_numpy() == "even"
    assert len(np.unique(colors[even], axis=0)) == 1
    assert not np.allclose(colors[even][0], colors[~even][0])
    assert ax.get_legend().get_title().get_text() == "parity"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["even", "odd"]
    np.testing.assert_array_equal(ax.collections[0].get_sizes(), [3])


def test_latent_space_continuous_target_gets_colorbar(vae2, digits):
    X = digits[0]
    target = X.sum(axis=1)
    ax = plot_latent_space(vae2, X, target)
    assert ax.get_legend() is None
    assert len(ax.figure.axes) == 2  # the colorbar
    np.testing.assert_allclose(ax.collections[0].get_array(), target)


def test_latent_space_without_labels(vae2, digits):
    X = digits[0]
    ax = plot_latent_space(vae2, X, color="k")
    assert ax.get_legend() is None
    assert len(ax.collections[0].get_offsets()) == len(X)
    with pytest.raises(ValueError, match="not both"):
        plot_latent_space(vae2, X, digits[1], c="k")
    with pytest.raises(ValueError, match="one label per row"):
        plot_latent_space(vae2, X, digits[1][:10])


def test_latent_space_projects_more_than_two_dimensions(vae3_es, digits):
    X, y = digits
    ax = plot_latent_space(vae3_es, X, y)
    Z = vae3_es.transform(X)
    expected = PCA(n_components=2).fit_transform(Z)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), expected, atol=1e-5)
    assert "PCA 1 of the 3-d latent codes" in ax.get_xlabel()
    assert "PCA 2" in ax.get_ylabel()


def test_latent_space_one_dimension_against_row_index(digits):
    X, y = digits
    vae = _fit(X, n_components=1)
    ax = plot_latent_space(vae, X, y)
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], vae.transform(X)[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(offsets[:, 1], np.arange(len(X)))
    assert "row index" in ax.get_ylabel()


# ---------------------------------------------------------------- loss curves
def test_loss_curve_without_validation(vae2):
    ax = plot_loss_curve(vae2)
    assert len(ax.lines) == 1
    line = ax.lines[0]
    np.testing.assert_array_equal(line.get_ydata(), vae2.loss_curve_)
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
    assert "nats per row" in ax.get_ylabel()
    assert ax.get_xlabel() == "epoch"
    assert len(ax.get_legend().get_texts()) == 1


def test_loss_curve_with_validation_elbo(vae3_es):
    assert vae3_es.validation_scores_ is not None
    ax = plot_loss_curve(vae3_es)
    train, validation, best = ax.lines
    np.testing.assert_array_equal(train.get_ydata(), vae3_es.loss_curve_)
    # Validation ELBO drawn as a loss on the same axes.
    np.testing.assert_array_equal(
        validation.get_ydata(), -np.asarray(vae3_es.validation_scores_)
    )
    best_epoch = int(np.argmax(vae3_es.validation_scores_)) + 1
    np.testing.assert_array_equal(best.get_xdata(), [best_epoch, best_epoch])
    assert len(ax.get_legend().get_texts()) == 3


def test_loss_curve_imputer_rmse_on_twin_axis(digits):
    X = digits[0][:120].copy()
    X[np.random.RandomState(0).rand(*X.shape) < 0.2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = VAEImputer(
            hidden_layer_sizes=(16,),
            max_iter=3,
            n_iter_no_change=3,
            n_importance_samples=5,
            random_state=0,
            device="cpu",
        ).fit(X)
    ax = plot_loss_curve(imp)
    twins = [other for other in ax.figure.axes if other is not ax]
    assert len(twins) == 1
    twin = twins[0]
    assert "RMSE" in twin.get_ylabel()
    np.testing.assert_allclose(
        twin.lines[0].get_ydata(), -np.asarray(imp.validation_scores_)
    )
    assert twin.get_legend() is not None


class _LossOnly(BaseEstimator):
    def fit(self, X=None, y=None):
        self.loss_curve_ = [3.0, 2.0, 1.5]
        return self


def test_loss_curve_other_estimators():
    with pytest.raises(NotFittedError):
        plot_loss_curve(_LossOnly())
    est = _LossOnly().fit()
    _, ax = plt.subplots()
    assert plot_loss_curve(est, ax=ax) is ax
    assert len(ax.figure.axes) == 1
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [3.0, 2.0, 1.5])
    est.validation_scores_ = [0.5, 0.7, 0.6]
    ax = plot_loss_curve(est)
    twin = next(other for other in ax.figure.axes if other is not ax)
    np.testing.assert_array_equal(twin.lines[0].get_ydata(), [0.5, 0.7, 0.6])
