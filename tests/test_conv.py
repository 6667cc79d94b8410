"""VAETransformer(architecture="conv"): convolutional networks on image rows."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits

from skvae import VAETransformer
from skvae._likelihoods import BernoulliLikelihood, GaussianLikelihood
from skvae._module import build_module

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    "ignore::skvae.PosteriorCollapseWarning",
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def small_digits(digits):
    return digits[0][:300], digits[1][:300]


def conv(**kw):
    params = dict(
        n_components=4,
        architecture="conv",
        likelihood="bernoulli",
        max_iter=3,
        n_importance_samples=8,
        random_state=0,
        device="cpu",
    )
    params.update(kw)
    return VAETransformer(**params)


# ---------------------------------------------------------------- outputs
def test_shapes_round_trip_and_scores(digits):
    X = digits[0][:600]
    vae = conv(max_iter=15, batch_size=64, learning_rate=3e-3).fit(X)
    assert vae.image_shape_ == (1, 8, 8)
    assert any(isinstance(m, torch.nn.Conv2d) for m in vae.module_.modules())
    Z = vae.transform(X)
    assert Z.shape == (600, 4)
    assert Z.dtype == np.float64
    assert vae.transform(X.astype(np.float32)).dtype == np.float32
    X_rec = vae.inverse_transform(Z)
    assert X_rec.shape == X.shape
    assert np.all((X_rec >= 0) & (X_rec <= 1))
    rmse = np.sqrt(np.mean((X_rec - X) ** 2))
    baseline = np.sqrt(np.mean((X.mean(0) - X) ** 2))
    assert rmse < 0.8 * baseline
    assert vae.sample(5).shape == (5, 64)
    assert vae.sample(5, return_mean=True).shape == (5, 64)
    scores = vae.score_samples(X)
    assert scores.shape == (600,)
    assert np.all(np.isfinite(scores))
    assert vae.score(X) == pytest.approx(scores.mean())
    # A row's score does not depend on the rows scored with it.
    np.testing.assert_allclose(vae.score_samples(X[:7]), scores[:7], rtol=1e-5)


def test_reproducible_with_random_state(small_digits):
    X = small_digits[0]
    a, b = conv().fit(X), conv().fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(
        a.sample(3, random_state=1), b.sample(3, random_state=1)
    )
    c = conv(random_state=1).fit(X)
    assert not np.allclose(a.transform(X), c.transform(X))


def test_explicit_image_shape_matches_inferred(small_digits):
    X = small_digits[0]
    inferred = conv().fit(X).transform(X)
    for shape in [(8, 8), (1, 8, 8), [8, 8], np.array([8, 8])]:
        vae = conv(image_shape=shape).fit(X)
        assert vae.image_shape_ == (1, 8, 8)
        np.testing.assert_array_equal(vae.transform(X), inferred)


def test_channels_and_odd_sizes(small_digits):
    X = small_digits[0]
    vae = conv(image_shape=(2, 4, 8)).fit(X)
    assert vae.image_shape_ == (2, 4, 8)
    assert vae.module_.encoder.features[0].in_channels == 2
    assert vae.inverse_transform(vae.transform(X)).shape == X.shape
    odd = conv(image_shape=(7, 9), max_iter=1).fit(
        np.random.RandomState(0).rand(20, 63)
    )
    assert odd.sample(2).shape == (2, 63)


def test_module_layout_for_several_channels():
    # Rows flatten (channels, height, width) arrays; outputs follow that order.
    module = build_module(
        [GaussianLikelihood(3 * 7 * 5)],
        n_components=2,
        mask_channel=True,
        image_shape=(3, 7, 5),
        generator=torch.Generator().manual_seed(0),
    )
    assert module.encoder.features[0].in_channels == 6
    x = torch.rand(4, 105)
    loc, logvar = module.inference(x, torch.ones_like(x))
    assert loc.shape == logvar.shape == (4, 2)
    params = module.generative(torch.randn(5, 4, 2))
    assert params.shape == (5, 4, 105)
    with pytest.raises(ValueError, match="pixels"):
        build_module([BernoulliLikelihood(10)], 2, image_shape=(3, 3))


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("image_shape", "match"),
    [
        ((7, 9), "63 pixels"),
        ((2, 8, 8), "128 pixels"),
        ((64,), "height, width"),
        ((1, 1, 8, 8), "height, width"),
        ((0, 64), "positive integers"),
        ((8, 8.0), "positive integers"),
        ((True, 64), "positive integers"),
    ],
)
def test_invalid_image_shape(small_digits, image_shape, match):
    with pytest.raises(ValueError, match=match):
        conv(image_shape=image_shape).fit(small_digits[0])


def test_image_shape_needed_when_not_square(small_digits):
    with pytest.raises(ValueError, match="not a perfect square"):
        conv().fit(small_digits[0][:, :60])
    conv(image_shape=(6, 10), max_iter=1).fit(small_digits[0][:, :60])


def test_invalid_architecture(small_digits):
    with pytest.raises(ValueError, match="architecture"):
        conv(architecture="cnn").fit(small_digits[0])


def test_mixed_likelihoods_are_rejected(small_digits):
    X_binary = (small_digits[0] > 0.5).astype(float)
    with pytest.raises(ValueError, match="one likelihood for every pixel"):
        conv(likelihood={0: "bernoulli"}).fit(X_binary)
    conv(likelihood="bernoulli", max_iter=1).fit(X_binary)
    auto = conv(likelihood="auto", max_iter=1).fit(X_binary)
    assert set(auto.column_likelihoods_) == {"gaussian"}


def test_gaussian_likelihood(small_digits):
    X = small_digits[0] * 16
    vae = conv(likelihood="gaussian").fit(X)
    assert isinstance(vae.module_.likelihoods[0], GaussianLikelihood)
    assert np.all(np.isfinite(vae.score_samples(X)))
    X_rec = vae.inverse_transform(vae.transform(X))
    assert abs(X_rec.mean() - X.mean()) < 2.0  # original units, not standardized


def test_mlp_ignores_image_shape(small_digits):
    X = small_digits[0]
    vae = VAETransformer(2, image_shape=(7, 9), max_iter=1, random_state=0).fit(X)
    assert not hasattr(vae, "image_shape_")
    assert not any(isinstance(m, torch.nn.Conv2d) for m in vae.module_.modules())
    # Refitting as an MLP drops the conv model's fitted image shape.
    vae = conv().fit(X)
    vae.set_params(architecture="mlp").fit(X)
    assert not hasattr(vae, "image_shape_")


# ---------------------------------------------------------------- features
def test_missing_pixels(small_digits):
    X = small_digits[0].copy()
    X[np.random.RandomState(0).rand(*X.shape) < 0.2] = np.nan
    vae = conv().fit(X)
    assert vae.module_.encoder.features[0].in_channels == 2  # pixels and mask
    assert np.all(np.isfinite(vae.transform(X)))
    assert np.all(np.isfinite(vae.score_samples(X)))


def test_conditional(small_digits):
    X, y = small_digits
    vae = conv(conditional=True).fit(X, y)
    assert vae.sample(4, y=3, return_mean=True).shape == (4, 64)
    assert vae.inverse_transform(vae.transform(X[:5]), y=y[:5]).shape == (5, 64)
    assert np.all(np.isfinite(vae.score_samples(X[:20])))


def test_partial_fit_keeps_architecture(small_digits):
    X = small_digits[0]
    vae = conv()
    vae.partial_fit(X[:150]).partial_fit(X[150:])
    assert vae.n_iter_ == 2
    assert vae.image_shape_ == (1, 8, 8)
    with pytest.raises(ValueError, match="architecture='conv'"):
        vae.set_params(architecture="mlp").partial_fit(X)
    mlp = VAETransformer(2, max_iter=1).partial_fit(X)
    with pytest.raises(ValueError, match="architecture='mlp'"):
        mlp.set_params(architecture="conv").partial_fit(X)


def test_early_stopping(small_digits):
    vae = conv(early_stopping=True, max_iter=4, n_iter_no_change=2).fit(small_digits[0])
    assert len(vae.validation_scores_) == vae.n_iter_


def test_get_params_clone_and_pickle(small_digits):
    X = small_digits[0]
    vae = conv(image_shape=(8, 8))
    params = vae.get_params()
    assert params["architecture"] == "conv"
    assert params["image_shape"] == (8, 8)
    twin = clone(vae)
    assert twin.get_params() == params
    vae.fit(X)
    restored = pickle.loads(pickle.dumps(vae))
    np.testing.assert_array_equal(restored.transform(X), vae.transform(X))
    assert VAETransformer().get_params()["architecture"] == "mlp"
    assert VAETransformer().get_params()["image_shape"] is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_shapes(small_digits):
    X = small_digits[0]
    vae = conv(device="cuda").fit(X)
    assert next(vae.module_.parameters()).device.type == "cpu"
    assert vae.transform(X).shape == (300, 4)
    assert np.all(np.isfinite(vae.score_samples(X)))
