"""Conditional VAETransformer: fit(X, y), class-conditional sampling and scores."""

import copy

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def small(**kw):
    params = dict(
        n_components=2,
        conditional=True,
        hidden_layer_sizes=(16,),
        max_iter=3,
        device="cpu",
    )
    params.update(kw)
    return VAETransformer(**params)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def cvae(digits):
    """A conditional VAE on all of load_digits (about 2 s on one core)."""
    X, y = digits
    return VAETransformer(
        n_components=4,
        conditional=True,
        hidden_layer_sizes=(128,),
        likelihood="bernoulli",
        max_iter=50,
        random_state=0,
        device="cpu",
    ).fit(X, y)


@pytest.fixture(scope="module")
def digit_classifier(digits):
    """A classifier of real digits, the judge of the generated ones."""
    X, y = digits
    return LogisticRegression(max_iter=2000).fit(X, y)


# ---------------------------------------------------------------- quality
def test_samples_are_digits_of_the_requested_class(cvae, digit_classifier):
    requested = np.repeat(np.arange(10), 50)
    images = cvae.sample(500, y=requested, random_state=0, return_mean=True)
    predicted = digit_classifier.predict(images)
    assert np.mean(predicted == requested) >= 0.9
    per_class = [np.mean(predicted[requested == c] == c) for c in range(10)]
    assert min(per_class) >= 0.7


def test_same_seed_gives_same_latent_draws_for_every_class(cvae, digit_classifier):
    threes = cvae.sample(20, y=3, random_state=1, return_mean=True)
    eights = cvae.sample(20, y=8, random_state=1, return_mean=True)
    assert not np.allclose(threes, eights)
    assert np.mean(digit_classifier.predict(threes) == 3) >= 0.9
    assert np.mean(digit_classifier.predict(eights) == 8) >= 0.9


def test_classes_without_y_follow_class_prior(cvae, digits, digit_classifier):
    y = digits[1]
    np.testing.assert_array_equal(cvae.classes_, np.arange(10))
    np.testing.assert_array_equal(cvae.class_count_, np.bincount(y))
    np.testing.assert_allclose(cvae.class_prior_, np.bincount(y) / len(y))
    rigged = copy.deepcopy(cvae)
    rigged.class_prior_ = np.zeros(10)
    rigged.class_prior_[[2, 6]] = [0.75, 0.25]
    predicted = digit_classifier.predict(
        rigged.sample(400, random_state=0, return_mean=True)
    )
    assert np.mean(np.isin(predicted, [2, 6])) >= 0.95
    assert 0.65 < np.mean(predicted == 2) < 0.85


# ---------------------------------------------------------------- scores
def test_marginal_score_mixes_the_class_conditionals(cvae, digits):
    X, y = digits
    X, y = X[:200], y[:200]
    marginal = cvae.score_samples(X)
    per_class = np.stack([cvae.score_samples(X, y=c) for c in cvae.classes_], axis=1)
    assert marginal.shape == (200,)
    assert np.isfinite(per_class).all()
    np.testing.assert_allclose(
        marginal, logsumexp(per_class + np.log(cvae.class_prior_), axis=1), rtol=1e-6
    )
    np.testing.assert_allclose(cvae.score_samples(X, y=y), per_class[np.arange(200), y])
    assert cvae.score(X) == pytest.approx(marginal.mean())
    assert cvae.score(X, y) == pytest.approx(per_class[np.arange(200), y].mean())


def test_class_conditional_likelihood_recognises_the_class(cvae, digits):
    # p(x | y) must depend on y: Bayes' rule with it is a good classifier.
    X, y = digits
    X, y = X[::4], y[::4]
    per_class = np.stack([cvae.score_samples(X, y=c) for c in cvae.classes_], axis=1)
    predicted = cvae.classes_[np.argmax(per_class + np.log(cvae.class_prior_), 1)]
    assert np.mean(predicted == y) >= 0.85


# ---------------------------------------------------------------- api
def test_shapes_and_transform_without_y(cvae, digits):
    X, y = digits
    Z = cvae.transform(X[:30])
    assert Z.shape == (30, 4)
    assert cvae.inverse_transform(Z, y=y[:30]).shape == (30, 64)
    assert cvae.inverse_transform(Z, y=5).shape == (30, 64)
    draws = cvae.sample(7, y=1, random_state=0)
    assert draws.shape == (7, 64)
    assert draws.dtype == np.float64
    assert set(np.unique(draws)) <= {0.0, 1.0}
    assert cvae.sample(3).shape == (3, 64)
    assert cvae.score_samples(X[:5], y=y[:5]).shape == (5,)


def test_fit_transform_needs_y_only_in_fit(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    Z = small(random_state=0).fit_transform(X, y)
    np.testing.assert_array_equal(Z, small(random_state=0).fit(X, y).transform(X))


def test_reconstruction_uses_the_class(cvae, digits, digit_classifier):
    X, y = digits
    Z = cvae.transform(X[:200])
    right = digit_classifier.predict(cvae.inverse_transform(Z, y=y[:200]))
    wrong = digit_classifier.predict(cvae.inverse_transform(Z, y=(y[:200] + 1) % 10))
    assert np.mean(right == y[:200]) >= 0.9
    assert np.mean(wrong == (y[:200] + 1) % 10) >= 0.7


def test_string_labels_and_pandas(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four"] * 2)[y]
    frame = pd.DataFrame(X[:400], columns=[f"px{i}" for i in range(64)])
    labels = pd.Series(names[:400], name="digit")
    vae = small(random_state=0).fit(frame, labels)
    assert list(vae.classes_) == sorted(set(names[:400]))
    out = vae.sample(6, y="three", random_state=0)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(frame.columns)
    assert vae.sample(2, y=["one", "zero"]).shape == (2, 64)
    assert vae.transform(frame).shape == (400, 2)
    assert vae.score_samples(frame.iloc[:3], y=["two", "two", "one"]).shape == (3,)


def test_reproducible_with_random_state(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    a = small(random_state=5).fit(X, y)
    b = small(random_state=5).fit(X, y)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    for kw in ({"y": 4}, {}):
        np.testing.assert_array_equal(a.sample(5, **kw), b.sample(5, **kw))
        np.testing.assert_array_equal(
            a.sample(5, random_state=1, **kw), a.sample(5, random_state=1, **kw)
        )
        assert not np.array_equal(
            a.sample(5, random_state=1, **kw), a.sample(5, random_state=2, **kw)
        )
    np.testing.assert_array_equal(a.score_samples(X[:20]), b.score_samples(X[:20]))
    c = small(random_state=6).fit(X, y)
    assert not np.allclose(a.transform(X), c.transform(X))


def test_early_stopping_validates_with_the_condition(digits):
    X, y = digits
    vae = small(early_stopping=True, max_iter=4, random_state=0).fit(X[:300], y[:300])
    assert len(vae.validation_scores_) == vae.n_iter_
    assert np.isfinite(vae.validation_scores_).all()


def test_missing_values(digits):
    X, y = digits
    X = X[:300].copy()
    X[np.random.RandomState(0).rand(*X.shape) < 0.1] = np.nan
    vae = small(random_state=0).fit(X, y[:300])
    assert np.isfinite(vae.transform(X)).all()
    assert np.isfinite(vae.score_samples(X)).all()
    assert np.isfinite(vae.score_samples(X, y=y[:300])).all()


def test_partial_fit_with_classes(digits):
    X, y = digits
    first, later = y[:200] < 5, y[200:400] >= 5
    vae = small(random_state=0)
    vae.partial_fit(X[:200][first], y[:200][first], classes=np.arange(10))
    np.testing.assert_array_equal(vae.classes_, np.arange(10))
    assert vae.class_count_[5:].sum() == 0
    vae.partial_fit(X[200:400][later], y[200:400][later])
    vae.partial_fit(X[:100], y[:100], classes=np.arange(10)[::-1])
    expected = np.bincount(y[:200][first], minlength=10)
    expected += np.bincount(y[200:400][later], minlength=10)
    expected += np.bincount(y[:100], minlength=10)
    np.testing.assert_array_equal(vae.class_count_, expected)
    assert vae.n_iter_ == 3
    assert vae.sample(4, y=9).shape == (4, 64)
    with pytest.raises(ValueError, match="not the same as on the first call"):
        vae.partial_fit(X[:10], y[:10], classes=np.arange(5))


def test_partial_fit_without_classes_keeps_the_first_labels(digits):
    X, y = digits
    vae = small(random_state=0).partial_fit(X[:100][y[:100] < 5], y[:100][y[:100] < 5])
    np.testing.assert_array_equal(vae.classes_, np.arange(5))
    with pytest.raises(ValueError, match=r"not seen in fit.*classes="):
        vae.partial_fit(X[:100], y[:100])


def test_refit_unconditional_forgets_the_classes(digits):
    X, y = digits
    vae = small().fit(X[:100], y[:100])
    assert hasattr(vae, "classes_")
    vae.set_params(conditional=False).fit(X[:100])
    for name in ("classes_", "class_count_", "class_prior_"):
        assert not hasattr(vae, name)
    with pytest.raises(ValueError, match="conditional model"):
        vae.sample(2, y=1)


# ---------------------------------------------------------------- params
def test_get_params_and_clone():
    vae = VAETransformer(conditional=True, n_components=3)
    assert vae.get_params()["conditional"] is True
    assert VAETransformer().get_params()["conditional"] is False
    twin = clone(vae)
    assert twin.get_params() == vae.get_params()
    twin.set_params(conditional=False)
    assert vae.conditional is True
    assert vae.__sklearn_tags__().target_tags.required
    assert not VAETransformer().__sklearn_tags__().target_tags.required
    # The shared model parameters do not grow a transformer-only option.
    assert "conditional" not in VAEImputer().get_params()
    assert "conditional" not in VAEOutlierDetector().get_params()


def test_clone_of_fitted_model_refits_the_same(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    a = small(random_state=2).fit(X, y)
    b = clone(a).fit(X, y)
    np.testing.assert_array_equal(a.sample(4, y=2), b.sample(4, y=2))


# ---------------------------------------------------------------- errors
def test_y_is_required(digits):
    X, y = digits
    with pytest.raises(ValueError, match="requires y"):
        small().fit(X[:50])
    with pytest.raises(ValueError, match="requires y"):
        small().partial_fit(X[:50])
    vae = small().fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="inverse_transform needs y"):
        vae.inverse_transform(np.zeros((2, 2)))


def test_unknown_and_malformed_labels(digits):
    X, y = digits
    vae = small().fit(X[:100], y[:100])
    with pytest.raises(ValueError, match=r"not seen in fit: \[42\]"):
        vae.sample(3, y=42)
    with pytest.raises(ValueError, match="not seen in fit"):
        vae.sample(2, y=["3", "4"])
    with pytest.raises(ValueError, match="not seen in fit"):
        vae.score_samples(X[:2], y=[1, 11])
    with pytest.raises(ValueError, match="2 labels for 3 rows"):
        vae.sample(3, y=[0, 1])
    with pytest.raises(ValueError, match="2 labels for 5 rows"):
        vae.inverse_transform(np.zeros((5, 2)), y=[0, 1])
    with pytest.raises(ValueError, match="99 labels, but X has 100 rows"):
        small().fit(X[:100], y[:99])
    with pytest.raises(ValueError, match="Unknown label type"):
        small().fit(X[:100], np.linspace(0, 1, 100))


@pytest.mark.filterwarnings("ignore::skvae.PosteriorCollapseWarning")
@parametrize_with_checks([VAETransformer(conditional=True, max_iter=5, device="cpu")])
def test_conditional_model_passes_sklearn_checks(estimator, check):
    check(estimator)


def test_conditional_parameter_is_validated(digits):
    X, y = digits
    with pytest.raises(ValueError, match="conditional"):
        small(conditional="yes").fit(X[:20], y[:20])


def test_switching_conditional_in_partial_fit_is_an_error(digits):
    X, y = digits
    vae = small().partial_fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="first fitted with conditional=True"):
        vae.set_params(conditional=False).partial_fit(X[:50])
    vae = small(conditional=False).partial_fit(X[:50])
    with pytest.raises(ValueError, match="first fitted with conditional=False"):
        vae.set_params(conditional=True).partial_fit(X[:50], y[:50])


def test_unconditional_model_rejects_y(digits):
    X, y = digits
    vae = small(conditional=False).fit(X[:50], y[:50])  # y ignored in fit
    assert not hasattr(vae, "classes_")
    assert vae.module_.n_conditions == 0
    for call in (
        lambda: vae.sample(2, y=[0, 1]),
        lambda: vae.inverse_transform(np.zeros((2, 2)), y=[0, 1]),
        lambda: vae.score_samples(X[:2], y=[0, 1]),
    ):
        with pytest.raises(ValueError, match="only accepted by a conditional model"):
            call()
    # score(X, y) ignores y for an unconditional model, as sklearn's do.
    assert vae.score(X[:20], y[:20]) == pytest.approx(vae.score(X[:20]))


def test_conditional_on_device(digits, device):
    X, y = digits
    vae = small(device=device, random_state=0).fit(X[:200], y[:200])
    assert vae.sample(3, y=2, return_mean=True).shape == (3, 64)
    assert np.isfinite(vae.score_samples(X[:20])).all()
    assert vae.inverse_transform(vae.transform(X[:5]), y=y[:5]).shape == (5, 64)


# ---------------------------------------------------------------- class prior
def test_class_prior_is_learned_and_used_for_sampling(cvae, digits):
    """p(z | y) is a learned Gaussian per class; sample(y=c) draws from it."""
    module = cvae.module_
    loc = module.latent.prior_loc.detach().numpy()
    assert loc.shape == (10, cvae.n_components_)
    # The classes moved apart from the initial N(0, I).
    assert np.abs(loc).max() > 0.1
    spread = np.linalg.norm(loc[:, None] - loc[None], axis=-1)
    assert spread[np.triu_indices(10, 1)].min() > 0.05
    # Posterior means of each class sit nearer their own prior mean.
    X, y = digits
    Z = cvae.transform(X)
    centers = np.stack([Z[y == c].mean(0) for c in range(10)])
    nearest = np.argmin(np.linalg.norm(centers[:, None] - loc[None], axis=-1), axis=1)
    assert np.mean(nearest == np.arange(10)) >= 0.8


def test_class_prior_enters_the_kl_and_the_weights():
    import torch

    from skvae._likelihoods import BernoulliLikelihood
    from skvae._module import build_module

    module = build_module(
        [BernoulliLikelihood(5)],
        n_components=2,
        hidden_layer_sizes=(4,),
        n_conditions=3,
        generator=torch.Generator().manual_seed(0),
    )
    with torch.no_grad():
        module.latent.prior_loc.copy_(
            torch.tensor([[1.0, -1.0], [0.0, 2.0], [0.5, 0.5]])
        )
        module.latent.prior_logvar.copy_(
            torch.tensor([[0.3, -0.2], [0.0, 0.1], [1.0, 1.0]])
        )
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 5, generator=gen).round()
    cond = torch.eye(3)[[0, 1, 2, 0]]
    noise = torch.randn(4, 2, generator=gen)
    _, kl = module.loss_terms(x, None, noise, cond)
    loc, logvar = module.inference(x)
    q = torch.distributions.Normal(loc, torch.exp(0.5 * logvar))
    p_loc, p_logvar = module.latent.prior(cond)
    p = torch.distributions.Normal(p_loc, torch.exp(0.5 * p_logvar))
    torch.testing.assert_close(kl, torch.distributions.kl_divergence(q, p).sum(-1))
    # Importance weights: log p(x|z) + log p(z|y) - log q(z|x).
    eps = torch.randn(6, 2, generator=gen)
    log_w, params = module.log_weights(x, None, eps, cond)
    z = loc + torch.exp(0.5 * logvar) * eps[:, None]
    expected = (
        module.likelihoods.log_prob_sum(params, x)
        + p.log_prob(z).sum(-1)
        - q.log_prob(z).sum(-1)
    )
    torch.testing.assert_close(log_w, expected)
    # Draws of the prior.
    z = module.sample_prior(torch.zeros(4, 2), cond)
    torch.testing.assert_close(z, p_loc)
