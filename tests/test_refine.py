"""Refined proposals for rows unlike the training rows (log-likelihood estimates)."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import FactorAnalysis
from sklearn.model_selection import train_test_split

from skvae import VAEImputer, VAETransformer, _estimates, load, save
from skvae._fitted import REFINE_MARGIN, REFINE_QUANTILE


@pytest.fixture(scope="module")
def cancer():
    """Breast cancer, a split whose test rows include one 11 sd from the mean."""
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte = train_test_split(X, test_size=0.3, random_state=2, stratify=y)
    model = VAETransformer(random_state=0).fit(Xtr)
    return model, Xtr, Xte


def _amortized(model, X):
    """score_samples with the screen switched off (the encoder's proposal only)."""
    fitted = model._model()
    fitted.refine_below = None
    return fitted.log_likelihood(np.asarray(X, dtype=np.float64))


def test_threshold_lies_below_the_training_rows_low_quantile(cancer):
    model, Xtr, _ = cancer
    fitted = model._model()
    x, mask = fitted.encode(Xtr)
    with fitted.running() as module:
        log_w, _ = module.log_weights(x, mask, fitted.score_noise()[:1])
    per_var = (log_w[0] / module.n_variables).double().numpy()
    low, median = np.quantile(per_var, [REFINE_QUANTILE, 0.5])
    expected = low - REFINE_MARGIN * (median - low)
    assert fitted.refine_below == pytest.approx(expected)
    # No training row is refined.
    assert np.array_equal(model.score_samples(Xtr), _amortized(model, Xtr))


def test_refined_scores_beat_factor_analysis_on_rows_far_from_training(cancer):
    model, Xtr, Xte = cancer
    scores, amortized = model.score_samples(Xte), _amortized(model, Xte)
    changed = scores != amortized
    # Only the screened rows (here one) are estimated again.
    assert 0 < changed.sum() <= 0.05 * len(Xte)
    worst = np.argmin(amortized)
    assert changed[worst]
    assert scores[worst] > amortized[worst] + 100.0
    # Held-out log-likelihood above the linear special case with the same
    # number of components (amortized alone it is below).
    fa = FactorAnalysis(8, random_state=0).fit(Xtr).score(Xte)
    assert amortized.mean() < fa
    assert scores.mean() > fa + 0.5
    assert model.score(Xte) == pytest.approx(scores.mean())


def test_refined_rows_do_not_depend_on_their_batch(cancer):
    model, _, Xte = cancer
    whole = model.score_samples(Xte)
    changed = np.flatnonzero(whole != _amortized(model, Xte))
    assert changed.size >= 1
    assert np.array_equal(model.score_samples(Xte), whole)
    for i in changed[:3]:
        np.testing.assert_allclose(
            model.score_samples(Xte[i : i + 1]), whole[i], rtol=1e-5
        )
    subset = np.r_[changed, np.arange(20)]
    np.testing.assert_allclose(
        model.score_samples(Xte[subset]), whole[subset], rtol=1e-5
    )


def test_scoring_leaves_the_model_unchanged(cancer):
    model, _, Xte = cancer
    before = {k: v.clone() for k, v in model.module_.state_dict().items()}
    model.score_samples(Xte)
    for key, value in model.module_.state_dict().items():
        assert torch.equal(value, before[key])
    # The refinement takes gradients of the rows' proposals only.
    assert all(p.grad is None for p in model.module_.parameters())


def test_threshold_survives_save_and_load(cancer, tmp_path):
    model, _, Xte = cancer
    save(model, tmp_path / "model.safetensors")
    loaded = load(tmp_path / "model.safetensors")
    assert loaded._fitted.refine_below == model._fitted.refine_below
    np.testing.assert_array_equal(loaded.score_samples(Xte), model.score_samples(Xte))


@pytest.fixture(scope="module")
def linear_gaussian():
    """A fitted linear VAE (probabilistic PCA) on a 5-column Gaussian table."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(400, 2))
    X = Z @ rng.normal(size=(2, 5)) + 0.3 * rng.normal(size=(400, 5))
    model = VAETransformer(n_components=2, hidden_layer_sizes=(), random_state=0)
    model.fit(X)
    return model._model()


def _exact_log_density(module, x):
    """log p(x) of the linear-Gaussian module in its own units (closed form)."""
    layer = module.decoder[0]
    W, b = layer.weight.detach().double(), layer.bias.detach().double()
    _, variances = module.likelihoods.shared_variance_columns()
    cov = W @ W.T + torch.diag(variances.detach().double())
    return multivariate_normal(b.numpy(), cov.numpy()).logpdf(x.double().numpy())


def _iwae(module, x, loc, logvar, eps):
    """Importance-weighted estimate with the proposal N(loc, exp(logvar))."""
    with torch.no_grad():
        z = loc + torch.exp(0.5 * logvar) * eps[:, None, :]
        log_q = -0.5 * (eps.square()[:, None, :] + logvar).sum(-1)
        log_w = module.log_joint(x, None, z) - log_q
        return (torch.logsumexp(log_w, 0) - math.log(len(eps))).double().numpy()


def test_refined_proposal_finds_the_exact_density_from_a_bad_start(linear_gaussian):
    fitted = linear_gaussian
    module = fitted.module
    x, _ = fitted.encode(np.array([[4.0, -3.0, 5.0, 1.0, -6.0], [0.5, 0, 0, 0, 0]]))
    exact = _exact_log_density(module, x)
    eps = fitted.score_noise()
    # A proposal far from both rows' posteriors: N(5, 0.01 I).
    bad = (torch.full((2, 2), 5.0), torch.full((2, 2), math.log(0.01)))
    assert np.all(_iwae(module, x, *bad, eps) < exact - 10.0)
    refined = _estimates.refine_proposal(module, x, None, *bad)
    # The posterior of a linear-Gaussian model is Gaussian: the refined
    # proposal matches it and the estimate is the exact density.
    np.testing.assert_allclose(_iwae(module, x, *refined, eps), exact, atol=0.3)


def test_mixture_estimate_is_close_to_exact_on_the_linear_model(linear_gaussian):
    fitted = linear_gaussian
    x, _ = fitted.encode(np.array([[4.0, -3.0, 5.0, 1.0, -6.0], [0.5, 0, 0, 0, 0]]))
    exact = _exact_log_density(fitted.module, x)
    with fitted.running() as module:
        value = _estimates.refined_log_marginal(module, x, None, fitted.score_noise())
    np.testing.assert_allclose(value.double().numpy(), exact, atol=0.1)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_rows_with_missing_entries_are_screened_per_observed_variable():
    X, _ = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    holes = X.copy()
    holes[rng.random(X.shape) < 0.2] = np.nan
    model = VAEImputer(max_iter=40, random_state=0).fit(holes[:400])
    test = holes[400:].copy()
    test[0, :] = np.nan  # no observed entry: never refined, the prior is exact
    test[1, 0] = X[:, 0].max() * 3  # far outside the training range
    scores = model.score_samples(test)
    amortized = _amortized(model, test)
    assert np.isfinite(scores).all()
    assert scores[0] == amortized[0]
    assert scores[1] > amortized[1]
    changed = (scores != amortized).mean()
    assert changed < 0.2
