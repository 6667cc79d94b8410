"""Gaussian variance per feature or decoded per row (``gaussian_variance``)."""

import math

import numpy as np
import pytest
import torch

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
from skvae._likelihoods import GaussianLikelihood


def _heteroscedastic(n, seed):
    """Two columns: a signal t and a column whose noise grows with |t|."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(-2, 2, n)
    noisy = np.sin(t) + rng.normal(size=n) * (0.02 + 0.5 * (t > 0))
    return np.column_stack([t, noisy, t**2 + 0.01 * rng.normal(size=n)])


@pytest.mark.parametrize("masked", [False, True])
def test_decoded_log_prob_sum_matches_elementwise(masked):
    lk = GaussianLikelihood(3, min_variance=1e-3, variance="decoder")
    assert lk.n_params == 6
    gen = torch.Generator().manual_seed(0)
    params = torch.randn(5, 4, 6, generator=gen)
    x = torch.randn(4, 3, generator=gen)
    mask = (torch.rand(4, 3, generator=gen) > 0.4).float() if masked else None
    total = lk.log_prob_sum(params, x, mask)
    elementwise = lk.log_prob(params, x)
    if masked:
        elementwise = elementwise * mask
    torch.testing.assert_close(total, elementwise.sum(-1))
    # Against the closed form with the variance the likelihood reports.
    var = lk.variance(params)
    loc = lk.mean(params)
    expected = -0.5 * ((x - loc) ** 2 / var + var.log() + math.log(2 * math.pi))
    torch.testing.assert_close(lk.log_prob(params, x), expected)
    assert bool((var >= 1e-3).all())


def test_decoded_variance_starts_at_unit_variance_and_samples():
    lk = GaussianLikelihood(2, min_variance=1e-3, variance="decoder")
    params = torch.zeros(20000, 4)
    torch.testing.assert_close(lk.variance(params), torch.ones(20000, 2))
    draws = lk.sample(params, torch.Generator().manual_seed(1))
    assert draws.shape == (20000, 2)
    assert abs(float(draws.std()) - 1.0) < 0.02
    with pytest.raises(ValueError, match="decoder outputs"):
        lk.variance()
    with pytest.raises(ValueError, match="'feature' or 'decoder'"):
        GaussianLikelihood(2, variance="row")


def test_decoded_variance_fits_heteroscedastic_data_better():
    """Held-out log-likelihood: the decoded variance follows the noise level."""
    X, X_test = _heteroscedastic(1500, 0), _heteroscedastic(500, 1)
    scores = {}
    for variance in ("feature", "decoder"):
        vae = VAETransformer(
            2,
            hidden_layer_sizes=(64, 64),
            gaussian_variance=variance,
            # Both variances learned by gradient steps, as the decoded one is.
            variance_update="gradient",
            max_iter=80,
            random_state=0,
        ).fit(X)
        scores[variance] = vae.score(X_test)
        assert vae.module_.n_params == (6 if variance == "decoder" else 3)
    # Half of the rows have noise 0.02 instead of 0.5 in one column: a model
    # that knows which half gains about log(0.5 / 0.02) / 2 = 1.6 nats per row.
    assert scores["decoder"] > scores["feature"] + 0.5, scores


def test_decoded_variance_through_every_estimator():
    X = _heteroscedastic(300, 2)
    vae = VAETransformer(
        2,
        hidden_layer_sizes=(16,),
        gaussian_variance="decoder",
        max_iter=3,
        random_state=0,
    ).fit(X)
    assert vae.sample(7, random_state=0).shape == (7, 3)
    assert vae.inverse_transform(vae.transform(X[:4])).shape == (4, 3)
    assert np.isfinite(vae.score_samples(X)).all()

    holes = X.copy()
    holes[::3, 1] = np.nan
    imp = VAEImputer(
        n_components=2,
        hidden_layer_sizes=(16,),
        gaussian_variance="decoder",
        max_iter=3,
        random_state=0,
    )
    filled = imp.fit_transform(holes)
    assert np.isfinite(filled).all()
    np.testing.assert_array_equal(filled[1::3], holes[1::3])

    det = VAEOutlierDetector(
        n_components=2,
        hidden_layer_sizes=(16,),
        gaussian_variance="decoder",
        max_iter=3,
        random_state=0,
    ).fit(X)
    assert set(np.unique(det.predict(X))) <= {-1, 1}


def test_decoded_variance_with_conv_architecture():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 36))
    vae = VAETransformer(
        2,
        architecture="conv",
        image_shape=(6, 6),
        likelihood="gaussian",
        gaussian_variance="decoder",
        max_iter=2,
        random_state=0,
    ).fit(X)
    assert vae.module_.n_params == 72
    assert vae.sample(3, random_state=0, return_mean=True).shape == (3, 36)
    assert np.isfinite(vae.score_samples(X[:5])).all()


def test_invalid_gaussian_variance():
    with pytest.raises(ValueError, match="gaussian_variance"):
        VAETransformer(gaussian_variance="row").fit(np.zeros((10, 2)))
