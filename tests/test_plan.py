"""The training plan chosen from the data: "auto" budgets and stopping."""

import math
import warnings

import numpy as np
import pytest
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skvae import (
    VAEImputer,
    VAEOutlierDetector,
    VAETransformer,
    VQVAETransformer,
    load,
    save,
)
from skvae._params import AUTO_EPOCHS, AUTO_STEPS, budget, epochs


@pytest.fixture(scope="module")
def fitted(gaussian_table):
    """Estimators with their "auto" training parameters, fitted once."""
    kw = {"hidden_layer_sizes": (8,), "max_iter": 1, "random_state": 0}
    models = {
        cls: cls(**kw).fit(gaussian_table)
        for cls in (VAETransformer, VAEImputer, VAEOutlierDetector)
    }
    for model in models.values():
        model.set_params(max_iter="auto")
    return models


def test_auto_epochs_turn_step_budgets_into_epochs():
    assert epochs("max_iter", 7, 3) == 7
    low, high = AUTO_EPOCHS["max_iter"]
    assert epochs("max_iter", "auto", 1) == high
    assert epochs("max_iter", "auto", 10**6) == low
    steps = 176
    assert epochs("max_iter", "auto", steps) == math.ceil(
        AUTO_STEPS["max_iter"] / steps
    )
    assert (
        epochs("n_iter_no_change", "auto", 10**6) == AUTO_EPOCHS["n_iter_no_change"][0]
    )


def test_budget_rules():
    # With validation: a step budget, and the patience below it.
    assert budget("auto", "auto", 100, validation=True) == (
        math.ceil(AUTO_STEPS["max_iter"] / 100),
        max(AUTO_EPOCHS["n_iter_no_change"][0], AUTO_STEPS["n_iter_no_change"] // 100),
    )
    # Without: a fixed budget run in full.
    fixed, patience = budget("auto", "auto", 10, validation=False)
    assert fixed == patience == math.ceil(AUTO_STEPS["fixed"] / 10)
    # An explicit max_iter keeps an "auto" patience below it (so it can warn).
    assert budget(5, "auto", 10, validation=True) == (5, 4)
    assert budget(5, 5, 10, validation=True) == (5, 5)
    assert budget(200, 7, 10, validation=False) == (200, 7)


def test_small_tables_get_many_steps_large_ones_few_epochs(fitted):
    vae = fitted[VAETransformer]
    small, large = vae._plan(150), vae._plan(100_000)
    # Both hold out rows and stop on them; the small table gets smaller
    # batches, more epochs and more patience in epochs.
    assert small.validation == large.validation == "rows"
    assert small.batch_size < large.batch_size
    assert small.max_iter > large.max_iter
    assert small.n_iter_no_change > large.n_iter_no_change
    n_train = 150 - 15
    steps = math.ceil(n_train / small.batch_size)
    assert small.max_iter * steps >= min(AUTO_STEPS["max_iter"], 1000 * steps)
    # The transformer keeps its best epoch; the imputer retrains on every
    # row below 2,000 rows.
    assert not small.refit
    assert fitted[VAEImputer]._plan(150).refit
    assert not fitted[VAEImputer]._plan(100_000).refit
    # The step budgets hold on the large table too.
    steps = math.ceil(90_000 / large.batch_size)
    assert large.max_iter == math.ceil(AUTO_STEPS["max_iter"] / steps)


def test_imputer_warm_up_is_twenty_epochs_or_a_step_budget(fitted):
    imputer = fitted[VAEImputer]
    high = AUTO_EPOCHS["kl_warmup"][1]
    # Small tables warm up over 20 epochs; large ones over about 1,000 steps.
    assert imputer._plan(569).kl_warmup == high
    large = imputer._plan(100_000)
    steps = math.ceil(100_000 / large.batch_size)
    assert large.kl_warmup == math.ceil(AUTO_STEPS["kl_warmup"] / steps) < high
    # An explicit value is kept; the transformer does not warm up.
    try:
        imputer.set_params(kl_warmup=7)
        assert imputer._plan(100_000).kl_warmup == 7
    finally:
        imputer.set_params(kl_warmup="auto")
    assert fitted[VAETransformer]._plan(100_000).kl_warmup == 0


def test_tiny_tables_train_a_fixed_budget_without_validation(fitted):
    plan = fitted[VAETransformer]._plan(14)
    assert plan.validation is None
    # A fixed budget: as many epochs of patience as epochs, so no warning.
    assert plan.n_iter_no_change == plan.max_iter
    assert AUTO_EPOCHS["fixed"][0] <= plan.max_iter <= AUTO_EPOCHS["fixed"][1]
    # An explicit request still holds out data.
    vae = fitted[VAETransformer]
    try:
        vae.set_params(early_stopping=True)
        assert vae._plan(14).validation == "rows"
    finally:
        vae.set_params(early_stopping="auto")


def test_training_plan_attribute_shows_what_auto_chose(fitted, tmp_path):
    """``training_plan_``: the resolved settings, under the parameter names."""
    iris = datasets.load_iris().data
    vae = VAETransformer(random_state=0, max_iter=3).fit(iris)
    plan = vae.training_plan_
    assert set(plan) == {
        "max_iter",
        "n_iter_no_change",
        "batch_size",
        "learning_rate",
        "kl_warmup",
        "n_train_samples",
        "early_stopping",
        "variance_update",
        "refit",
    }
    # The same plan the fit ran, "auto" resolved for 150 rows.
    expected = vae._plan(150)
    assert plan["max_iter"] == 3
    assert plan["batch_size"] == expected.batch_size
    assert plan["n_iter_no_change"] == expected.n_iter_no_change
    assert plan["learning_rate"] == expected.learning_rate
    assert plan["early_stopping"] is (vae.validation_scores_ is not None)
    assert plan["variance_update"] == "closed_form"
    # Explicit values pass through; the imputer's differ where its rules do.
    vae = VAETransformer(
        random_state=0, max_iter=2, batch_size=32, learning_rate=0.01
    ).fit(iris)
    assert vae.training_plan_["batch_size"] == 32
    assert vae.training_plan_["learning_rate"] == 0.01
    imputer = fitted[VAEImputer]
    assert imputer.training_plan_["n_train_samples"] == 20
    assert imputer.training_plan_["refit"] is True
    assert fitted[VAEOutlierDetector].training_plan_["early_stopping"] is False
    # Only the settings an estimator has a parameter for.
    vq = VQVAETransformer(random_state=0, max_iter=2).fit(iris)
    assert set(vq.training_plan_) == {
        "max_iter",
        "n_iter_no_change",
        "batch_size",
        "learning_rate",
        "early_stopping",
        "variance_update",
    }
    save(imputer, tmp_path / "imputer.safetensors")
    assert load(tmp_path / "imputer.safetensors").training_plan_ == (
        imputer.training_plan_
    )


def test_imputer_holds_out_entries_and_detector_never_holds_out(fitted):
    assert fitted[VAEImputer]._plan(400, 400 * 6).validation == "entries"
    # Few observed entries: nothing held out.
    assert fitted[VAEImputer]._plan(400, 100).validation is None
    det = fitted[VAEOutlierDetector]._plan(400)
    assert det.validation is None
    assert det.n_iter_no_change == det.max_iter


@pytest.mark.parametrize(
    "name", ["iris", "wine", "breast_cancer", "diabetes", "linnerud"]
)
def test_default_fits_on_bundled_tables_end_by_their_own_rule(name):
    """Defaults only, raw units, a split nobody chose: no warning, no error."""
    X = getattr(datasets, f"load_{name}")(return_X_y=True)[0]
    seed = sum(map(ord, name))
    X_train, X_test = train_test_split(X, test_size=0.3, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vae = VAETransformer(random_state=0).fit(X_train)
        Z = vae.transform(X_test)
        scores = vae.score_samples(X_test)
        det = VAEOutlierDetector(random_state=0).fit(X_train)
        flags = det.predict(X_test)
    assert Z.shape == (len(X_test), vae.n_components_)
    assert np.isfinite(Z).all()
    assert np.isfinite(scores).all()
    assert set(np.unique(flags)) <= {-1, 1}
    plan = vae._plan(len(X_train))
    if plan.validation is None:  # a fixed budget, run in full
        assert vae.n_iter_ == plan.max_iter
    else:  # stopped by the validation rule, before the budget
        assert len(vae.validation_scores_) < plan.max_iter


@pytest.mark.parametrize("name", ["wine", "diabetes", "linnerud"])
def test_default_imputer_on_bundled_tables_warns_nothing(name):
    X = getattr(datasets, f"load_{name}")(return_X_y=True)[0].astype(float)
    rng = np.random.default_rng(0)
    holes = X.copy()
    holes[rng.random(X.shape) < 0.2] = np.nan
    holes[np.isnan(holes).all(axis=1), 0] = X[np.isnan(holes).all(axis=1), 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        filled = VAEImputer(random_state=0).fit_transform(holes)
    assert np.isfinite(filled).all()


def test_explicit_max_iter_too_small_still_warns(gaussian_table):
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        VAETransformer(max_iter=3, random_state=0).fit(gaussian_table)


def test_default_progress_report_ends_full(gaussian_table, capsys):
    VAETransformer(hidden_layer_sizes=(8,), refit=True, random_state=0, verbose=1).fit(
        gaussian_table
    )
    err = capsys.readouterr().err.replace("\r", "\n")
    lines = [line for line in err.split("\n") if line.strip()]
    fit = [line for line in lines if line.startswith("skvae fit")]
    refit = [line for line in lines if line.startswith("skvae refit")]
    assert fit
    assert refit
    assert "100%" in fit[-1]
    assert "validation=" in fit[-1]
    assert "100%" in refit[-1]


def test_held_out_rows_calibrate_overfitted_variances():
    """Closed-form variances fitted on training rows are too small for new
    rows; the held-out rows scale them up, and new rows score higher."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(400, 2))
    X = Z @ rng.normal(size=(2, 8)) + 0.5 * rng.normal(size=(400, 8))
    train, test = X[:200], X[200:]
    vae = VAETransformer(hidden_layer_sizes=(128, 128), random_state=0).fit(train)
    factor = vae._train_state.noise_calibration
    assert factor > 1.05
    calibrated = vae.score(test)
    vae.module_.likelihoods.scale_feature_variances(1.0 / factor)
    assert calibrated > vae.score(test)
    # Without held-out rows there is nothing to calibrate on.
    plain = VAETransformer(hidden_layer_sizes=(16,), early_stopping=False)
    assert plain.fit(train)._train_state.noise_calibration == 1.0


def test_held_out_entries_are_capped_on_large_tables():
    """The imputer's validation hides at most MAX_HELD_OUT_ENTRIES entries."""
    import torch

    from skvae._training import TrainData, TrainPlan
    from skvae._validation import MAX_HELD_OUT_ENTRIES, hold_out_entries

    n, p = 30_000, 10
    data = TrainData(
        x=torch.zeros(n, p),
        mask=torch.ones(n, p),
        fill=torch.zeros(p),
        variable_of_column=torch.arange(p),
    )
    plan = TrainPlan(max_iter=1, batch_size=64, learning_rate=1e-3)
    hidden, _, _ = hold_out_entries(data, plan, torch.Generator().manual_seed(0))
    assert plan.validation_fraction * n * p > MAX_HELD_OUT_ENTRIES
    assert int(n * p - hidden.mask.sum()) == MAX_HELD_OUT_ENTRIES
    small = TrainData(
        x=torch.zeros(1000, p),
        mask=torch.ones(1000, p),
        fill=torch.zeros(p),
        variable_of_column=torch.arange(p),
    )
    hidden, _, _ = hold_out_entries(small, plan, torch.Generator().manual_seed(0))
    assert int(1000 * p - hidden.mask.sum()) == round(0.1 * 1000 * p)


def test_gross_outliers_in_held_out_rows_neither_stop_nor_widen(monkeypatch):
    """A few data-entry errors among the held-out rows would dominate the mean
    held-out ELBO of a closed-form fit: it would stop early and inflate every
    variance. The lowest-scoring 1% of held-out rows are left out."""
    import skvae._params as params

    rng = np.random.default_rng(0)
    n = 2000
    Z = rng.normal(size=(n, 2))
    X = np.tanh(Z) @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(n, 6))
    bad = rng.choice(n, 10, replace=False)
    X[bad, rng.integers(6, size=10)] = 30.0
    clean = np.delete(X, bad, axis=0)

    def fit():
        return VAETransformer(validation_fraction=0.5, random_state=0).fit(X)

    robust = fit()
    assert robust._plan(n).validation_trim == params.VALIDATION_TRIM > 0
    # Image-like matrices get gradient variances and the plain mean.
    pixels = datasets.load_digits().data[:200]
    image = VAETransformer(hidden_layer_sizes=(8,), max_iter=1).fit(pixels)
    assert image._plan(200).validation_trim == 0.0
    monkeypatch.setattr(params, "VALIDATION_TRIM", 0.0)
    plain = fit()
    assert robust._train_state.noise_calibration < 1.05
    assert plain._train_state.noise_calibration > 1.15
    assert robust.n_iter_ > 2 * plain.n_iter_
    assert robust.score(clean) > plain.score(clean) + 1.0
