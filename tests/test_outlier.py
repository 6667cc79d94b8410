"""Behaviour of VAEOutlierDetector: sklearn outlier conventions, explanations."""

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAEOutlierDetector

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def cancer_contaminated():
    """All benign tumours plus 10% of the malignant ones (the ODDS protocol)."""
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.RandomState(0)
    malignant = np.flatnonzero(y == 0)
    keep = rng.choice(malignant, size=len(malignant) // 10, replace=False)
    idx = np.concatenate([np.flatnonzero(y == 1), keep])
    return X[idx], (y[idx] == 0).astype(int)


@pytest.fixture(scope="module")
def fitted_cancer(cancer_contaminated):
    X, _ = cancer_contaminated
    det = VAEOutlierDetector(contamination=0.05, max_iter=100, random_state=0)
    return det.fit(X)


def test_conventions(fitted_cancer, cancer_contaminated):
    X, _ = cancer_contaminated
    scores = fitted_cancer.score_samples(X)
    decision = fitted_cancer.decision_function(X)
    np.testing.assert_allclose(decision, scores - fitted_cancer.offset_)
    labels = fitted_cancer.predict(X)
    assert set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels == -1, decision < 0)
    assert labels.dtype.kind == "i"


def test_contamination_sets_the_share_flagged(cancer_contaminated):
    X, _ = cancer_contaminated
    for c in (0.02, 0.1, 0.3):
        det = VAEOutlierDetector(contamination=c, max_iter=20, random_state=0)
        share = np.mean(det.fit_predict(X) == -1)
        assert 0.5 * c <= share <= 1.5 * c


def test_auto_contamination_is_tukeys_fence(cancer_contaminated):
    X, _ = cancer_contaminated
    det = VAEOutlierDetector(max_iter=20, random_state=0).fit(X)
    q1, q3 = np.percentile(det.score_samples(X), [25, 75])
    assert det.offset_ == pytest.approx(q1 - 1.5 * (q3 - q1))


def test_ranks_malignant_tumours_as_outliers(fitted_cancer, cancer_contaminated):
    X, is_outlier = cancer_contaminated
    auc = roc_auc_score(is_outlier, -fitted_cancer.score_samples(X))
    assert auc > 0.85


def test_novelty_setting(cancer_contaminated):
    X, is_outlier = cancer_contaminated
    clean, anomalies = X[is_outlier == 0], X[is_outlier == 1]
    det = VAEOutlierDetector(contamination=0.05, max_iter=100, random_state=0)
    det.fit(clean[:300])
    new = np.vstack([clean[300:], anomalies])
    truth = np.r_[np.zeros(len(clean) - 300), np.ones(len(anomalies))]
    assert roc_auc_score(truth, -det.score_samples(new)) > 0.85


def test_corrupted_column_is_flagged(fitted_cancer, cancer_contaminated):
    X, is_outlier = cancer_contaminated
    rows = X[is_outlier == 0][:20].copy()
    columns = np.arange(20) % X.shape[1]
    rows[np.arange(20), columns] += 8 * X[:, columns].std(0)
    contributions = fitted_cancer.feature_log_likelihood(rows)
    assert contributions.shape == rows.shape
    # The corrupted column has the lowest log-likelihood in (nearly) every row.
    assert np.mean(contributions.argmin(1) == columns) >= 0.9


def test_explanations_respect_missing_entries(fitted_cancer, cancer_contaminated):
    X, _ = cancer_contaminated
    rows = X[:5].copy()
    rows[0, 3] = np.nan
    contributions = fitted_cancer.feature_log_likelihood(rows)
    assert np.isnan(contributions[0, 3])
    assert np.isfinite(np.delete(contributions, 3, axis=1)).all()
    assert np.isfinite(fitted_cancer.score_samples(rows)).all()


def test_missing_entries_are_marginalised_not_zero_filled(fitted_cancer):
    # A row whose missing entries were filled with zeros would look extreme
    # (breast-cancer areas are in the hundreds); a marginalized one does not.
    X, _ = load_breast_cancer(return_X_y=True)
    row = X[:1].copy()
    row[0, :10] = np.nan
    zeros = X[:1].copy()
    zeros[0, :10] = 0.0
    assert fitted_cancer.score_samples(row)[0] > fitted_cancer.score_samples(zeros)[0]


def test_pipeline_after_column_transformer(cancer_contaminated):
    X, is_outlier = cancer_contaminated
    pre = ColumnTransformer([("num", StandardScaler(), list(range(X.shape[1])))])
    pipe = make_pipeline(
        pre, VAEOutlierDetector(contamination=0.05, max_iter=30, random_state=0)
    )
    labels = pipe.fit_predict(X)
    assert labels.shape == (len(X),)
    assert roc_auc_score(is_outlier, -pipe.score_samples(X)) > 0.8


def test_invalid_contamination(cancer_contaminated):
    X, _ = cancer_contaminated
    for bad in (0.0, 0.6, "most"):
        with pytest.raises(ValueError, match="contamination"):
            VAEOutlierDetector(contamination=bad, max_iter=2).fit(X)


def test_trimmed_elbo_ignores_the_worst_rows_of_a_batch():
    import torch

    from skvae._likelihoods import GaussianLikelihood
    from skvae._module import build_module
    from skvae._training import TrainData, TrainPlan, run_epoch

    def gradients(x, trim):
        module = build_module(
            [GaussianLikelihood(3)],
            n_components=2,
            hidden_layer_sizes=(4,),
            generator=torch.Generator().manual_seed(0),
        )
        optimizer = torch.optim.SGD(module.parameters(), lr=0.0)
        run_epoch(
            module,
            optimizer,
            TrainData(x),
            TrainPlan(
                max_iter=1, batch_size=len(x), learning_rate=0.0, trim_fraction=trim
            ),
            kl_weight=1.0,
            generator=torch.Generator().manual_seed(1),
        )
        return torch.cat([p.grad.flatten() for p in module.parameters()])

    inliers = torch.zeros(3, 3)
    outlier = torch.full((1, 3), 50.0)
    # With a quarter of the batch trimmed, the outlier (loss ~ 3 * 50**2 / 2)
    # is left out and the gradient is that of the well-fitting inliers: much
    # smaller than the (norm-clipped) gradient that the outlier dominates.
    with_outlier = gradients(torch.cat([inliers, outlier]), trim=0.25)
    without_trim = gradients(torch.cat([inliers, outlier]), trim=0.0)
    assert with_outlier.norm() < 0.1 * without_trim.norm()


def test_trim_fraction_is_validated_and_used(cancer_contaminated):
    X, _ = cancer_contaminated
    with pytest.raises(ValueError, match="trim_fraction"):
        VAEOutlierDetector(trim_fraction=0.5, max_iter=2).fit(X)
    det = VAEOutlierDetector(trim_fraction=0.1, max_iter=3, random_state=0).fit(X)
    assert det._plan(len(X)).trim_fraction == 0.1


# ---------------------------------------------------------------- score_method
def test_reconstruction_probability_score():
    """score_method="reconstruction": E_q[log p(x|z)], a lower score for anomalies."""
    import torch

    rng = np.random.default_rng(0)
    t = rng.normal(size=(400, 2))
    X = np.column_stack([t, t @ rng.normal(size=(2, 4))]) + 0.05 * rng.normal(
        size=(400, 6)
    )
    X_out = X[:10].copy()
    X_out[:, 3] += 3.0
    det = VAEOutlierDetector(
        score_method="reconstruction", max_iter=60, random_state=0
    ).fit(X)
    lik = VAEOutlierDetector(max_iter=60, random_state=0).fit(X)
    rec = det.score_samples(X)
    # The same training run: the reconstruction probability is the likelihood
    # bound without the code's surprise, so it differs from log p(x).
    assert not np.allclose(rec, lik.score_samples(X))
    # Against a direct Monte Carlo mean of log p(x | z).
    x, _ = det.schema_.encode(X[:3])
    module = det.module_
    with torch.no_grad():
        loc, logvar = module.inference(x)
        eps = torch.randn(
            32, 16, generator=torch.Generator().manual_seed(det._fitted.score_seed)
        )
        z = loc + torch.exp(0.5 * logvar) * eps[:, None]
        direct = module.likelihoods.log_prob_sum(module.generative(z), x).mean(0)
    expected = direct.double().numpy() - det.schema_.log_det_jacobian(x, None)
    np.testing.assert_allclose(rec[:3], expected, rtol=1e-5)
    # Corrupted rows score lower and are flagged.
    assert det.score_samples(X_out).max() < np.percentile(rec, 5)
    assert (det.predict(X_out) == -1).mean() >= 0.9
    with pytest.raises(ValueError, match="score_method"):
        VAEOutlierDetector(score_method="error", max_iter=1).fit(X)


# ---------------------------------------------------------------- score_variance
@pytest.fixture(scope="module")
def digit_setups():
    """Digits 4 and 7 as the normal class plus 9 images of other digits each."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.RandomState(0)
    setups = []
    for digit in (4, 7):
        normal = np.flatnonzero(y == digit)
        others = rng.choice(np.flatnonzero(y != digit), size=9, replace=False)
        idx = np.r_[normal, others]
        setups.append((X[idx], np.r_[np.zeros(len(normal)), np.ones(9)]))
    return setups


def _variances(det):
    return det.module_.likelihoods.shared_variance_columns()[1].detach().numpy()


def test_score_variance_pools_the_fitted_column_variances(digit_setups):
    X, _ = digit_setups[0]
    kw = dict(max_iter=5, random_state=0)
    feature = VAEOutlierDetector(score_variance="feature", standardize=False, **kw)
    shared = VAEOutlierDetector(score_variance="shared", standardize=False, **kw)
    v_feature = _variances(feature.fit(X))
    v_shared = _variances(shared.fit(X))
    # The same training run; "shared" gives every pixel the mean variance.
    assert v_feature.std() > 0.1 * v_feature.mean()
    np.testing.assert_allclose(v_shared, v_feature.mean(), rtol=1e-5)
    # "auto" pools when the pixels keep their unit (standardize=False, or
    # "auto" on images) and not when they are standardized.
    auto_px = VAEOutlierDetector(standardize=False, **kw).fit(X)
    np.testing.assert_allclose(_variances(auto_px), v_shared)
    auto_auto = VAEOutlierDetector(**kw).fit(X)
    np.testing.assert_allclose(_variances(auto_auto), v_shared)
    auto_std = VAEOutlierDetector(standardize=True, **kw).fit(X)
    assert np.ptp(_variances(auto_std)) > 0
    with pytest.raises(ValueError, match="score_variance"):
        VAEOutlierDetector(score_variance="pooled", max_iter=1).fit(X)


def test_score_variance_leaves_decoded_variances_alone(digit_setups):
    X, _ = digit_setups[0]
    kw = dict(gaussian_variance="decoder", standardize=False, max_iter=3)
    scores = [
        VAEOutlierDetector(score_variance=sv, random_state=0, **kw)
        .fit(X)
        .score_samples(X[:20])
        for sv in ("feature", "shared")
    ]
    np.testing.assert_array_equal(scores[0], scores[1])


@pytest.fixture(scope="module")
def fitted_digits(digit_setups):
    """Per setup: detectors with per-pixel and pooled variances, same training."""
    fits = []
    for X, _ in digit_setups:
        kw = dict(standardize=False, random_state=0)
        fits.append(
            {
                sv: VAEOutlierDetector(score_variance=sv, **kw).fit(X)
                for sv in ("feature", "shared")
            }
        )
    return fits


def test_pooled_variance_ranks_other_digits_like_probabilistic_pca(
    digit_setups, fitted_digits
):
    """On 4s and 7s the per-pixel variances lose to probabilistic PCA (ROC-AUC
    0.988 / 0.989 against 0.999 / 0.996); pooled, 0.999 / 1.000."""
    from sklearn.decomposition import PCA

    for (X, is_outlier), fits in zip(digit_setups, fitted_digits, strict=True):
        ppca = roc_auc_score(is_outlier, -PCA(8).fit(X).score_samples(X))
        auc = roc_auc_score(is_outlier, -fits["shared"].score_samples(X))
        assert auc >= ppca - 0.005


def test_pooled_variance_forgives_a_stray_pixel(digit_setups, fitted_digits):
    """One inked pixel where no training image has ink: per-pixel variances at
    the floor put such rows below every other digit; pooled, each of them
    scores above the median of the other digits."""
    X, is_outlier = digit_setups[0]
    blank = np.flatnonzero(X.max(0) == 0)
    stray = X[is_outlier == 0][:10].copy()
    stray[:, blank[0]] = 1.0
    anomalies = X[is_outlier == 1]
    feature, shared = fitted_digits[0]["feature"], fitted_digits[0]["shared"]
    assert feature.score_samples(stray).max() < feature.score_samples(anomalies).min()
    assert shared.score_samples(stray).min() > np.median(
        shared.score_samples(anomalies)
    )


# ---------------------------------------------------------------- standardize
def test_auto_standardize_reads_images_and_tables():
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris
    from sklearn.preprocessing import MinMaxScaler

    from skvae._data import TabularSchema

    X, y = load_digits(return_X_y=True)
    cancer = load_breast_cancer().data
    images = [X, X / 16, X[y == 4], (X > 8).astype(float)]
    tables = [cancer, MinMaxScaler().fit_transform(cancer), load_iris().data]
    for A in images:
        assert TabularSchema.fit(A, standardize="auto").common_scale
    for A in tables:
        assert not TabularSchema.fit(A, standardize="auto").common_scale
    # A table is standardized per column, as with standardize=True.
    auto = TabularSchema.fit(cancer, standardize="auto")
    np.testing.assert_array_equal(auto.scale, TabularSchema.fit(cancer).scale)


def test_results_do_not_depend_on_the_pixel_unit(digit_setups):
    """Pixels in [0, 1] and in 0..16: the same ranking; log-likelihoods that
    differ by the Jacobian of the unit, log 16 per pixel."""
    X, is_outlier = digit_setups[1]
    kw = dict(max_iter=20, random_state=0)
    unit = VAEOutlierDetector(**kw).fit(X)
    raw = VAEOutlierDetector(**kw).fit(X * 16)
    assert unit._fitted.schema.common_scale
    s_unit, s_raw = unit.score_samples(X), raw.score_samples(X * 16)
    np.testing.assert_allclose(s_unit - s_raw, X.shape[1] * np.log(16), atol=1e-3)
    assert roc_auc_score(is_outlier, -s_unit) == roc_auc_score(is_outlier, -s_raw)
    # In [0, 1] the range is 1: "auto" is the model in pixel units.
    px = VAEOutlierDetector(standardize=False, **kw).fit(X)
    np.testing.assert_array_equal(px.score_samples(X), s_unit)
