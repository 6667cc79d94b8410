"""Behaviour of VAEImputer: exact observed entries, quality, multiple imputation."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAEImputer
from skvae._likelihoods import GaussianLikelihood
from skvae._module import build_module

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # Fits of a few epochs, used for shapes and markers, have no active latent.
    pytest.mark.filterwarnings("ignore::skvae.PosteriorCollapseWarning"),
]

FAST = {"max_iter": 60, "n_iter_no_change": 60, "early_stopping": False}


def _mcar(X, rate, seed):
    rng = np.random.RandomState(seed)
    hidden = rng.rand(*X.shape) < rate
    full = hidden.all(1)
    hidden[full, 0] = False
    Xm = X.copy()
    Xm[hidden] = np.nan
    return Xm, hidden


@pytest.fixture(scope="module")
def low_rank():
    """500 x 6 rows of a 2-factor nonlinear model with small noise."""
    rng = np.random.RandomState(0)
    Z = rng.normal(size=(500, 2))
    W = rng.normal(size=(2, 6))
    X = np.tanh(Z @ W) + 0.05 * rng.normal(size=(500, 6))
    return X * np.array([1, 10, 100, 0.1, 1, 5]) + np.array([0, 5, -50, 2, 1, 0])


@pytest.fixture(scope="module")
def low_rank_fit(low_rank):
    Xm, hidden = _mcar(low_rank, 0.3, 0)
    imp = VAEImputer(n_components=2, random_state=0, device="cpu", **FAST)
    return imp.fit(Xm), Xm, hidden


def _rmse(X_true, X_imp, hidden):
    scale = X_true.std(0)
    diff = (X_imp - X_true) / scale
    return float(np.sqrt(np.mean(diff[hidden] ** 2)))


def test_observed_entries_unchanged_bit_for_bit(low_rank_fit):
    imp, Xm, hidden = low_rank_fit
    out = imp.transform(Xm)
    assert out.shape == Xm.shape
    assert out.dtype == np.float64
    assert not np.isnan(out).any()
    assert np.array_equal(out[~hidden], Xm[~hidden])


def test_beats_mean_imputation_on_low_rank_data(low_rank, low_rank_fit):
    imp, Xm, hidden = low_rank_fit
    vae = _rmse(low_rank, imp.transform(Xm), hidden)
    mean = _rmse(low_rank, SimpleImputer().fit_transform(Xm), hidden)
    assert vae < 0.6 * mean, (vae, mean)


def test_breast_cancer_at_half_missing():
    """Real data, 50% MCAR: far better than the mean, near IterativeImputer."""
    X = StandardScaler().fit_transform(load_breast_cancer().data)
    Xm, hidden = _mcar(X, 0.5, 1)
    imp = VAEImputer(random_state=0, max_iter=150, device="cpu").fit(Xm)
    rmse = _rmse(X, imp.transform(Xm), hidden)
    # Mean imputation gives about 1.0, IterativeImputer about 0.58.
    assert rmse < 0.7, rmse
    assert imp.validation_scores_ is not None
    assert imp.best_validation_score_ == max(imp.validation_scores_)
    assert -imp.best_validation_score_ < 0.8
    # The final model is refit on every entry for the selected epoch count.
    assert imp.n_iter_ == int(np.argmax(imp.validation_scores_)) + 1
    assert len(imp.loss_curve_) == imp.n_iter_


@pytest.mark.parametrize("refit", [True, False])
def test_refit_after_early_stopping(low_rank, refit):
    """refit=True retrains on every entry for the epoch count early stopping chose."""
    Xm, hidden = _mcar(low_rank, 0.3, 2)
    kw = {"n_components": 2, "max_iter": 40, "n_iter_no_change": 5, "device": "cpu"}
    imp = VAEImputer(random_state=0, refit=refit, **kw).fit(Xm)
    selected = int(np.argmax(imp.validation_scores_)) + 1
    if refit:
        assert imp.n_iter_ == selected
    else:
        assert imp.n_iter_ == len(imp.validation_scores_) >= selected
    assert len(imp.loss_curve_) == imp.n_iter_
    again = VAEImputer(random_state=0, refit=refit, **kw).fit(Xm)
    np.testing.assert_array_equal(imp.transform(Xm), again.transform(Xm))
    assert _rmse(low_rank, imp.transform(Xm), hidden) < 0.8 * _rmse(
        low_rank, SimpleImputer().fit_transform(Xm), hidden
    )


def test_refit_auto_follows_table_size():
    """The "auto" settings switch to the large-table schedule at 2,000 rows."""
    rng = np.random.RandomState(0)
    z = rng.normal(size=(2500, 2))
    X = np.hstack([z, z @ rng.normal(size=(2, 3))]) + 0.1 * rng.normal(size=(2500, 5))
    kw = {"n_components": 2, "max_iter": 6, "n_iter_no_change": 2, "device": "cpu"}
    for n_rows, refits in [(300, True), (2500, False)]:
        Xm, _ = _mcar(X[:n_rows], 0.2, 0)
        imp = VAEImputer(random_state=0, **kw).fit(Xm)
        selected = int(np.argmax(imp.validation_scores_)) + 1
        if refits:
            assert imp.n_iter_ == selected
        else:
            assert imp.n_iter_ == len(imp.validation_scores_)
        explicit = VAEImputer(random_state=0, refit=refits, **kw).fit(Xm)
        np.testing.assert_array_equal(imp.transform(Xm), explicit.transform(Xm))
        other = VAEImputer(random_state=0, refit=not refits, **kw).fit(Xm)
        assert not np.array_equal(imp.transform(Xm), other.transform(Xm))
    # On 2,500 rows every "auto" takes its large-table value: 2500 // 10 rows
    # per minibatch, 10 training importance samples, step size 3e-3.
    Xm, _ = _mcar(X, 0.2, 0)
    kw |= {"early_stopping": False, "max_iter": 2}
    auto = VAEImputer(random_state=0, **kw).fit(Xm)
    explicit = VAEImputer(
        random_state=0, batch_size=250, n_train_samples=10, learning_rate=3e-3, **kw
    ).fit(Xm)
    np.testing.assert_array_equal(auto.loss_curve_, explicit.loss_curve_)
    np.testing.assert_array_equal(auto.transform(Xm), explicit.transform(Xm))
    small = VAEImputer(
        random_state=0, batch_size=64, n_train_samples=20, learning_rate=2e-3, **kw
    ).fit(Xm)
    assert not np.array_equal(auto.loss_curve_, small.loss_curve_)
    for n_rows, samples, rate in [(300, 20, 2e-3), (2500, 10, 3e-3)]:
        plan = auto._plan(n_rows)
        assert (plan.n_samples, plan.learning_rate) == (samples, rate)


def test_clip_keeps_imputations_in_the_observed_range():
    """An extreme observed value must not drag the imputations far outside."""
    rng = np.random.RandomState(0)
    z = rng.normal(size=(400, 1))
    X = np.hstack([z, 2 * z, -z]) + 0.05 * rng.normal(size=(400, 3))
    X[::4, 1] = np.nan
    X[0] = [40.0, np.nan, -40.0]  # a data-entry error, 40 sd out
    kw = {"n_components": 1, "device": "cpu", **FAST}
    lo, hi = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
    # The observed range, widened by half its width on both sides.
    lo, hi = lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)
    raw = VAEImputer(random_state=0, clip=False, **kw).fit(X)
    assert raw.transform(X[:1])[0, 1] > 2 * hi[1]  # the decoder extrapolates
    clipped = VAEImputer(random_state=0, **kw).fit(X)
    out = clipped.transform(X)
    assert (out >= lo).all()
    assert (out <= hi).all()
    assert out[0, 1] == hi[1]
    np.testing.assert_array_equal(out[1:], raw.transform(X)[1:].clip(lo, hi))
    draws = clipped.sample_imputations(X, 3, random_state=0)
    assert (draws >= lo).all()
    assert (draws <= hi).all()


def test_float32_preserved_and_deterministic(low_rank):
    Xm, _ = _mcar(low_rank.astype(np.float32), 0.2, 1)
    kw = {"n_components": 2, "max_iter": 5, "random_state": 3, "device": "cpu"}
    a = VAEImputer(**kw).fit_transform(Xm)
    b = VAEImputer(**kw).fit(Xm).transform(Xm)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_rows_imputed_independently(low_rank_fit):
    imp, Xm, _ = low_rank_fit
    full = imp.transform(Xm)
    part = imp.transform(Xm[7:19])
    np.testing.assert_allclose(part, full[7:19], rtol=1e-6, atol=1e-6)


def test_sample_posterior_gives_reproducible_distinct_draws(low_rank_fit):
    imp, Xm, hidden = low_rank_fit
    imp = copy.deepcopy(imp)
    draws = []
    for seed in (0, 0, 1):
        imp.set_params(sample_posterior=True, random_state=seed)
        draws.append(imp.transform(Xm))
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.allclose(draws[0][hidden], draws[2][hidden])
    for d in draws:
        assert np.array_equal(d[~hidden], Xm[~hidden])


def test_multiple_imputation_covers_truth(low_rank, low_rank_fit):
    imp, Xm, hidden = low_rank_fit
    draws = imp.sample_imputations(Xm, n_imputations=20, random_state=0)
    assert draws.shape == (20, *Xm.shape)
    assert np.all(draws[:, ~hidden] == Xm[~hidden])
    lo, hi = np.percentile(draws, [5, 95], axis=0)
    inside = (low_rank >= lo) & (low_rank <= hi)
    coverage = inside[hidden].mean()
    assert 0.6 < coverage < 0.99, coverage
    # The spread is real: the draws differ, most where the row is least known.
    assert np.all(draws.std(0)[hidden] > 0)
    again = imp.sample_imputations(Xm, n_imputations=20, random_state=0)
    np.testing.assert_array_equal(draws, again)


def test_fully_missing_row_imputed_from_prior(low_rank, low_rank_fit):
    imp, _, _ = low_rank_fit
    row = np.full((1, low_rank.shape[1]), np.nan)
    out = imp.transform(row)[0]
    z = (out - low_rank.mean(0)) / low_rank.std(0)
    assert np.all(np.abs(z) < 0.5), z
    # The prior is the exact posterior: equal importance weights, score 0.
    assert imp.score_samples(row)[0] == 0.0


def test_missing_entries_do_not_enter_the_likelihood():
    lk = GaussianLikelihood(3)
    module = build_module([lk], 2, (8,), mask_channel=True)
    params = torch.randn(4, 3)
    x = torch.randn(4, 3)
    mask = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 0]]).float()
    other = torch.where(mask.bool(), x, torch.full_like(x, 1e3))
    a = module.likelihoods.log_prob_sum(params, x, mask)
    b = module.likelihoods.log_prob_sum(params, other, mask)
    torch.testing.assert_close(a, b)


def test_empty_features_and_indicator(low_rank):
    Xm, _ = _mcar(low_rank, 0.2, 2)
    Xm[:, 2] = np.nan
    kw = {"n_components": 2, "max_iter": 3, "random_state": 0, "device": "cpu"}
    drop = VAEImputer(**kw).fit(Xm)
    out = drop.transform(Xm)
    assert out.shape == (Xm.shape[0], 5)
    names = drop.get_feature_names_out()
    assert list(names) == ["x0", "x1", "x3", "x4", "x5"]
    keep = VAEImputer(keep_empty_features=True, add_indicator=True, **kw).fit(Xm)
    out = keep.transform(Xm)
    names = keep.get_feature_names_out()
    assert out.shape[1] == len(names) == 6 + 6
    assert np.all(out[:, 2] == 0)
    assert names[6] == "missingindicator_x0"
    np.testing.assert_array_equal(out[:, 6:], np.isnan(Xm).astype(float))


def test_other_missing_value_markers(low_rank):
    Xm, hidden = _mcar(low_rank, 0.2, 3)
    kw = {"n_components": 2, "max_iter": 5, "random_state": 0, "device": "cpu"}
    reference = VAEImputer(**kw).fit_transform(Xm)

    X_neg = np.where(hidden, -1, Xm)
    out = VAEImputer(missing_values=-1, **kw).fit_transform(X_neg)
    np.testing.assert_array_equal(out, reference)

    X_obj = Xm.astype(object)
    X_obj[hidden] = None
    out = VAEImputer(missing_values=None, **kw).fit_transform(X_obj)
    np.testing.assert_array_equal(out, reference)

    with pytest.raises(ValueError, match="NaN"):
        VAEImputer(missing_values=-1, **kw).fit(Xm)
    with pytest.raises(ValueError, match="string"):
        VAEImputer(missing_values="?", **kw).fit(X_neg)
    X_int = np.where(hidden, -999, np.rint(low_rank)).astype(int)
    out = VAEImputer(missing_values=-999, **kw).fit_transform(X_int)
    assert out.dtype == np.float64
    assert np.array_equal(out[~hidden], X_int[~hidden])


def test_errors():
    with pytest.raises(ValueError, match="entirely missing"):
        VAEImputer().fit(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="observed entries"):
        VAEImputer(early_stopping=True).fit(np.array([[1.0, np.nan], [np.nan, np.nan]]))
    with pytest.raises(ValueError, match="infinity"):
        VAEImputer().fit(np.array([[1.0, np.inf], [0.0, 1.0]]))
    imp = VAEImputer(max_iter=2, early_stopping=False).fit(np.eye(3))
    with pytest.raises(ValueError, match="n_imputations"):
        imp.sample_imputations(np.eye(3), 0)


def test_pipeline_cross_val_and_grid_search(low_rank):
    X, y = load_breast_cancer(return_X_y=True)
    Xm, _ = _mcar(X, 0.3, 4)
    pipe = make_pipeline(
        VAEImputer(max_iter=20, random_state=0, device="cpu"),
        StandardScaler(),
        LogisticRegression(max_iter=500),
    )
    scores = cross_val_score(pipe, Xm, y, cv=3)
    assert scores.mean() > 0.88, scores
    # Without ground truth, GridSearchCV selects by held-out log-likelihood
    # of the observed entries: the trained model beats the barely trained one.
    Xm, _ = _mcar(low_rank, 0.3, 4)
    params = {**FAST, "n_components": 2, "random_state": 0, "device": "cpu"}
    search = GridSearchCV(VAEImputer(**params), {"max_iter": [2, 60]}, cv=2)
    search.fit(Xm)
    assert search.best_params_ == {"max_iter": 60}
    low, high = search.cv_results_["mean_test_score"]
    assert high > low + 0.3


def test_set_output_pandas(low_rank):
    Xm, _ = _mcar(low_rank, 0.2, 5)
    frame = pd.DataFrame(Xm, columns=list("abcdef"))
    imp = VAEImputer(n_components=2, max_iter=3, random_state=0, device="cpu")
    out = imp.set_output(transform="pandas").fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list("abcdef")
    assert not out.isna().any().any()


def test_weight_average_follows_the_first_epochs(low_rank):
    """The averaged weights that early stopping validates follow training.

    On a small table (3 steps per epoch) a plain moving average lingers near
    the initial weights until patience runs out.
    """
    Xm, _ = _mcar(low_rank[:150], 0.5, 0)
    imp = VAEImputer(
        n_components=2,
        learning_rate=1e-3,
        max_iter=30,
        n_iter_no_change=30,
        refit=False,
        random_state=0,
        device="cpu",
    ).fit(Xm)
    scores = imp.validation_scores_
    # Without the warm-up of the average: about +0.02 after 30 epochs.
    assert scores[-1] > scores[0] + 0.06, scores
