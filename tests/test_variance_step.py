"""Closed-form update of the shared Gaussian variances after each epoch."""

import numpy as np
import pytest
import torch

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer, _chunks, _estimates
from skvae._likelihoods import BernoulliLikelihood, GaussianLikelihood
from skvae._module import build_module
from skvae._training import refit_feature_variances


def _module(masked=False, generator_seed=0):
    gen = torch.Generator().manual_seed(generator_seed)
    likelihoods = [GaussianLikelihood(3, min_variance=1e-3), BernoulliLikelihood(2)]
    return build_module(
        likelihoods,
        n_components=2,
        hidden_layer_sizes=(8,),
        mask_channel=masked,
        generator=gen,
    )


def _data(n=50, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    x[:, 3:] = (x[:, 3:] > 0).to(x.dtype)
    return x


@pytest.mark.parametrize("value", [1e-6, 1e-2, 0.7, 1.0, 40.0])
def test_set_variance_round_trip(value):
    lk = GaussianLikelihood(4, min_variance=1e-3).double()
    lk.reset_parameters()
    target = torch.full((4,), value, dtype=torch.float64)
    lk.set_variance(target)
    expected = torch.clamp(target, min=1e-3)
    torch.testing.assert_close(lk.variance(), expected, rtol=1e-6, atol=1e-9)


def test_set_variance_refuses_decoded_variance():
    with pytest.raises(ValueError, match="decoded"):
        GaussianLikelihood(2, variance="decoder").set_variance(torch.ones(2))


def test_single_draw_update_is_the_mean_squared_residual():
    module = _module().double().eval()
    x = _data()
    eps = torch.randn(1, x.shape[0], 2, generator=torch.Generator().manual_seed(1))
    eps = eps.double()
    with torch.no_grad():
        loc, logvar = module.inference(x)
        z = loc + (0.5 * logvar).exp() * eps[0]
        expected = (x[:, :3] - module.generative(z)[:, :3]).square().mean(0)
    assert refit_feature_variances(module, x, None, eps)
    torch.testing.assert_close(module.likelihoods[0].variance(), expected)


def test_update_maximizes_the_bound_over_the_variance():
    module = _module().double().eval()
    x = _data()
    eps = torch.randn(1, x.shape[0], 2, generator=torch.Generator().manual_seed(2))
    eps = eps.double()
    refit_feature_variances(module, x, None, eps)
    lk = module.likelihoods[0]
    best = lk.variance().clone()

    def bound():
        with torch.no_grad():
            return module.log_weights(x, None, eps[0][None])[0].sum().item()

    at_best = bound()
    for factor in (0.8, 1.25):
        lk.set_variance(best * factor)
        assert bound() < at_best


def test_masked_entries_are_left_out_and_empty_columns_keep_their_variance():
    module = _module(masked=True).double().eval()
    x = _data()
    mask = torch.ones(x.shape[0], 5, dtype=torch.float64)
    mask[::2, 0] = 0.0
    mask[:, 1] = 0.0  # column 1 never observed
    lk = module.likelihoods[0]
    lk.set_variance(torch.tensor([0.5, 0.3, 0.9], dtype=torch.float64))
    eps = torch.randn(1, x.shape[0], 2, generator=torch.Generator().manual_seed(3))
    eps = eps.double()
    x = x * mask  # hidden entries enter as zeros, as the estimators pass them
    with torch.no_grad():
        loc, logvar = module.inference(x, mask)
        z = loc + (0.5 * logvar).exp() * eps[0]
        resid = (x[:, :3] - module.generative(z)[:, :3]).square()
    refit_feature_variances(module, x, mask, eps)
    var = lk.variance()
    torch.testing.assert_close(var[0], resid[1::2, 0].mean())
    torch.testing.assert_close(var[1], torch.tensor(0.3, dtype=torch.float64))
    torch.testing.assert_close(var[2], resid[:, 2].mean())


def test_importance_weighted_update_weights_the_draws(monkeypatch):
    monkeypatch.setattr(_chunks, "CHUNK_ELEMENTS", 7 * 6 * 6)  # chunks of 6 rows
    module = _module().double().eval()
    x = _data(n=20)
    eps = torch.randn(7, x.shape[0], 2, generator=torch.Generator().manual_seed(4))
    eps = eps.double()
    with torch.no_grad():
        log_w, params = module.log_weights(x, None, eps)
        w = torch.softmax(log_w, 0)[..., None]
        expected = (w * (x[:, :3] - params[..., :3]).square()).sum(0).mean(0)
    refit_feature_variances(module, x, None, eps)
    torch.testing.assert_close(module.likelihoods[0].variance(), expected)


def test_module_without_shared_variance_is_unchanged():
    gen = torch.Generator().manual_seed(0)
    module = build_module(
        [GaussianLikelihood(2, variance="decoder")], 2, (8,), generator=gen
    ).double()
    x = torch.randn(10, 2, dtype=torch.float64)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    assert not refit_feature_variances(module, x, None, torch.randn(1, 10, 2).double())
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, before[key])


def _noisy_linear(n=600, seed=0):
    """Five columns from a 1-d signal with known, different noise levels."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, 1))
    noise_sd = np.array([0.05, 0.1, 0.3, 0.6, 1.0])
    X = t * np.ones(5) + rng.normal(size=(n, 5)) * noise_sd
    return X, noise_sd**2 / X.var(0)


@pytest.mark.parametrize("Estimator", [VAETransformer, VAEOutlierDetector])
def test_fitted_variances_recover_the_noise_levels(Estimator):
    X, noise_var = _noisy_linear()
    model = Estimator(
        variance_update="closed_form",
        n_components=1,
        hidden_layer_sizes=(16,),
        max_iter=60,
        n_iter_no_change=60,
        random_state=0,
    )
    if Estimator is VAEOutlierDetector:
        model.set_params(trim_fraction=0.0)
    model.fit(X)
    var = model.module_.likelihoods[0].variance().detach().cpu().numpy()
    # Standardized units: the noisier columns get their noise share of the
    # variance; the cleaner ones get far less than the start value 1 (by
    # gradient steps alone they stayed near 0.87 here).
    np.testing.assert_allclose(var[2:], noise_var[2:], rtol=0.3)
    assert np.all(var[:2] < 0.1)
    assert np.all(np.diff(var[1:]) > 0)


def test_imputer_fits_with_the_update_and_keeps_observed_entries():
    X, _ = _noisy_linear(n=300, seed=1)
    rng = np.random.default_rng(0)
    X_missing = X.copy()
    X_missing[rng.random(X.shape) < 0.3] = np.nan
    X_missing[:, 0] = X[:, 0]  # never a fully empty row
    imputer = VAEImputer(
        n_components=1,
        hidden_layer_sizes=(16,),
        max_iter=40,
        n_iter_no_change=40,
        random_state=0,
    )
    X_imputed = imputer.fit_transform(X_missing)
    observed = ~np.isnan(X_missing)
    np.testing.assert_array_equal(X_imputed[observed], X_missing[observed])
    var = imputer.module_.likelihoods[0].variance().detach().cpu().numpy()
    assert var[-1] / var[0] > 10
    hidden = ~observed
    rmse = np.sqrt(np.mean((X_imputed[hidden] - X[hidden]) ** 2))
    baseline = np.sqrt(np.mean((np.nanmean(X_missing, 0) - X)[hidden] ** 2))
    assert rmse < 0.7 * baseline


@pytest.mark.parametrize("update", ["closed_form", "gradient"])
def test_partial_fit_applies_the_update(update):
    X, _ = _noisy_linear(n=400, seed=2)
    model = VAETransformer(
        variance_update=update,
        n_components=1,
        hidden_layer_sizes=(16,),
        batch_size=64,
        random_state=0,
    )
    for _ in range(25):
        model.partial_fit(X)
    var = model.module_.likelihoods[0].variance().detach().cpu().numpy()
    if update == "gradient":  # about 160 steps of 1e-3 move little
        assert var.min() > 0.8
    else:
        assert var.max() < 0.7
        assert var[-1] > var[0] + 0.1


def test_training_losses_accumulate_the_residuals():
    module = _module(masked=True).double().eval()
    x = _data(n=30)
    gen = torch.Generator().manual_seed(5)
    mask = (torch.rand(30, 5, generator=gen) > 0.3).double()
    x = x * mask
    noise = torch.randn(30, 2, generator=torch.Generator().manual_seed(6)).double()
    residuals = module.likelihoods.new_residual_sums()
    module.loss_terms(x, mask, noise, None, residuals)
    with torch.no_grad():
        loc, logvar = module.inference(x, mask)
        params = module.generative(loc + (0.5 * logvar).exp() * noise)
        sq = (x[:, :3] - params[:, :3]).square() * mask[:, :3]
    torch.testing.assert_close(residuals[0], sq.sum(0))
    torch.testing.assert_close(residuals[1], mask[:, :3].sum(0))
    # The K-draw bound accumulates the importance-weighted residuals.
    eps = torch.randn(4, 30, 2, generator=torch.Generator().manual_seed(7)).double()
    iw = module.likelihoods.new_residual_sums()
    module.iwae_loss(x, mask, eps, None, 1.0, iw)
    with torch.no_grad():
        log_w, params = module.log_weights(x, mask, eps)
        w = torch.softmax(log_w, 0)[..., None]
        expected = (w * (x[:, :3] - params[..., :3]).square()).sum(0) * mask[:, :3]
    torch.testing.assert_close(iw[0], expected.sum(0))


def test_closed_form_with_the_convolutional_architecture():
    from sklearn.datasets import load_digits

    X = load_digits().data[:300]
    vae = VAETransformer(
        architecture="conv",
        likelihood="gaussian",
        variance_update="closed_form",
        n_components=4,
        max_iter=30,
        batch_size=64,
        learning_rate=3e-3,
        random_state=0,
        device="cpu",
    ).fit(X)
    var = vae.module_.likelihoods[0].variance().detach().cpu().numpy()
    assert var.shape == (64,)
    assert np.isfinite(var).all()
    # Blank border pixels get the floor, well-predicted ones far less than 1.
    assert var.min() < 0.01
    assert np.median(var) < 0.9
    assert np.isfinite(vae.score(X))


def test_impute_spread_matches_the_weighted_draws():
    module = _module(masked=True).double().eval()
    x = _data(n=12)
    mask = torch.ones(12, 5, dtype=torch.float64)
    mask[::3, 1] = 0.0
    x = x * mask
    eps = torch.randn(6, 12, 2, generator=torch.Generator().manual_seed(8)).double()
    with torch.no_grad():
        mean, spread = _estimates.impute_spread(module, x, mask, eps)
        log_w, params = module.log_weights(x, mask, eps)
        w = torch.softmax(log_w, 0)[..., None]
        means = module.mean(params)
        expected = (w * (means - mean).square()).sum(0)
        torch.testing.assert_close(mean, _estimates.impute(module, x, mask, eps))
    torch.testing.assert_close(spread, expected)
    assert bool((spread >= 0).all())


def test_shared_variance_columns_and_scaling():
    module = _module().double()
    columns, variances = module.likelihoods.shared_variance_columns()
    torch.testing.assert_close(columns, torch.arange(3))
    lk = module.likelihoods[0]
    lk.set_variance(torch.tensor([0.1, 0.2, 0.4], dtype=torch.float64))
    module.likelihoods.scale_feature_variances(2.5)
    torch.testing.assert_close(
        lk.variance(), torch.tensor([0.25, 0.5, 1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        module.likelihoods.shared_variance_columns()[1], lk.variance()
    )


def _wine_missing(rate=0.3, seed=0):
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(load_wine().data)
    rng = np.random.default_rng(seed)
    X_missing = X.copy()
    X_missing[rng.random(X.shape) < rate] = np.nan
    X_missing[:, 0] = X[:, 0]  # never a fully empty row
    return X, X_missing


def _coverage(imputer, X, X_missing, n_draws=20):
    draws = imputer.sample_imputations(X_missing, n_draws, random_state=0)
    lo, hi = np.percentile(draws, [5, 95], axis=0)
    hidden = np.isnan(X_missing)
    return np.mean((X[hidden] >= lo[hidden]) & (X[hidden] <= hi[hidden]))


def test_imputer_inflates_in_sample_variances_on_held_out_entries():
    X, X_missing = _wine_missing()
    params = dict(max_iter=60, random_state=0)
    imputer = VAEImputer(**params).fit(X_missing)
    factor = imputer.noise_calibration_
    # Variances fitted to the training entries understate held-out errors.
    assert 1.0 < factor < 3.0
    calibrated = _coverage(imputer, X, X_missing)
    imputer.module_.likelihoods.scale_feature_variances(1.0 / factor)
    uncalibrated = _coverage(imputer, X, X_missing)
    assert calibrated > uncalibrated
    assert abs(calibrated - 0.9) < abs(uncalibrated - 0.9)
    # No held-out entries or no closed-form update: nothing to calibrate.
    assert (
        VAEImputer(early_stopping=False, **params).fit(X_missing).noise_calibration_
        == 1.0
    )
    assert (
        VAEImputer(variance_update="gradient", **params)
        .fit(X_missing)
        .noise_calibration_
        == 1.0
    )
