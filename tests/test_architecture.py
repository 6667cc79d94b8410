"""One parameter set, one training plan, one fitted model behind every estimator."""

import inspect
import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer, _chunks
from skvae._params import SHARED_CONSTRAINTS, SHARED_DOCS
from skvae._training import TrainData, TrainPlan, train

ESTIMATORS = [VAETransformer, VAEImputer, VAEOutlierDetector]
SMALL = {"hidden_layer_sizes": (16,), "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def table():
    rng = np.random.RandomState(0)
    z = rng.normal(size=(240, 2))
    return z @ rng.normal(size=(2, 5)) + 0.2 * rng.normal(size=(240, 5))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_every_estimator_takes_the_shared_parameters(cls):
    params = cls().get_params()
    assert set(SHARED_CONSTRAINTS) <= set(params)
    assert set(SHARED_DOCS) == set(SHARED_CONSTRAINTS)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_shared_parameter_docs_carry_each_estimators_default(cls):
    doc = cls.__doc__
    assert "{shared_parameters}" not in doc
    for name, value in cls().get_params().items():
        if name not in SHARED_DOCS:
            continue
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        assert re.search(rf"^    {name} : .*default={re.escape(shown)}$", doc, re.M), (
            name
        )


def test_trimming_and_importance_samples_work_on_the_transformer(table):
    plain = VAETransformer(2, max_iter=3, n_iter_no_change=3, **SMALL).fit(table)
    trimmed = VAETransformer(
        2, max_iter=3, n_iter_no_change=3, trim_fraction=0.2, **SMALL
    ).fit(table)
    iwae = VAETransformer(
        2, max_iter=3, n_iter_no_change=3, n_train_samples=5, **SMALL
    ).fit(table)
    assert plain._plan(len(table)).trim_fraction == 0.0
    assert trimmed._plan(len(table)).trim_fraction == 0.2
    assert iwae._plan(len(table)).n_samples == 5
    # The first epoch already trains differently; the bound is finite.
    assert plain.loss_curve_[1] != trimmed.loss_curve_[1]
    assert plain.loss_curve_[1] != iwae.loss_curve_[1]
    assert np.isfinite(iwae.score_samples(table)).all()


def test_refit_retrains_for_the_chosen_number_of_epochs(table):
    kw = {"max_iter": 60, "early_stopping": True, "n_iter_no_change": 4, **SMALL}
    selected = VAETransformer(2, refit=False, **kw).fit(table)
    refitted = VAETransformer(2, refit=True, **kw).fit(table)
    # The same selection run, then a retrain on every row for its best epoch.
    assert refitted.validation_scores_ == selected.validation_scores_
    best = int(np.argmax(selected.validation_scores_)) + 1
    assert refitted.n_iter_ == len(refitted.loss_curve_) == best
    assert not np.allclose(refitted.transform(table), selected.transform(table))
    # Without early stopping there is nothing to refit.
    plain = VAETransformer(2, max_iter=3, n_iter_no_change=3, refit=True, **SMALL)
    assert plain.fit(table).n_iter_ == 3


def test_convolutional_imputer_and_detector():
    X, _ = load_digits(return_X_y=True)
    X = X[:300] / 16
    holes = X.copy()
    holes[np.random.RandomState(0).rand(*X.shape) < 0.1] = np.nan
    kw = {"architecture": "conv", "likelihood": "gaussian", "max_iter": 3}
    imp = VAEImputer(2, early_stopping=False, **kw, **SMALL).fit(holes)
    assert imp.image_shape_ == (1, 8, 8)
    filled = imp.transform(holes)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~np.isnan(holes)], X[~np.isnan(holes)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        det = VAEOutlierDetector(2, **kw, **SMALL).fit(X)
    assert any(isinstance(m, torch.nn.Conv2d) for m in det.module_.modules())


def test_estimates_do_not_depend_on_the_chunk_size(table, monkeypatch):
    holes = table.copy()
    holes[::3, 1] = np.nan
    imp = VAEImputer(2, max_iter=5, early_stopping=False, **SMALL).fit(holes)
    det = VAEOutlierDetector(2, max_iter=5, **SMALL).fit(table)
    whole = imp.transform(holes), det.feature_log_likelihood(table)
    monkeypatch.setattr(_chunks, "CHUNK_ELEMENTS", 1)  # one row per block
    # Inference runs in float32: another block shape rounds differently, by
    # float32 resolution (within one budget, results are bit-identical).
    np.testing.assert_allclose(imp.transform(holes), whole[0], rtol=1e-5)
    np.testing.assert_allclose(det.feature_log_likelihood(table), whole[1], rtol=1e-5)


def test_conditional_scores_do_not_depend_on_the_other_rows():
    X, y = load_digits(return_X_y=True)
    X, y = X[:400] / 16, y[:400]
    vae = VAETransformer(2, conditional=True, max_iter=2, **SMALL).fit(X, y)
    full = vae.score_samples(X[:60])
    parts = np.concatenate(
        [vae.score_samples(X[i : min(i + 7, 60)]) for i in range(0, 60, 7)]
    )
    np.testing.assert_allclose(parts, full, rtol=1e-12)
    np.testing.assert_allclose(
        vae.score_samples(X[:60], y[:60])[::-1],
        vae.score_samples(X[:60][::-1], y[:60][::-1]),
        rtol=1e-12,
    )


def test_train_resumes_its_history_and_optimizer():
    from skvae._likelihoods import GaussianLikelihood
    from skvae._module import build_module

    gen = torch.Generator().manual_seed(0)
    module = build_module([GaussianLikelihood(3)], 2, (8,), generator=gen)
    data = TrainData(torch.randn(50, 3, generator=gen))
    plan = TrainPlan(max_iter=1, batch_size=10, learning_rate=1e-2, seed=3)
    first = train(module, data, plan, resume=None)
    again = train(module, data, plan, resume=first)
    assert again.n_iter == 2
    assert again.loss_curve[0] == first.loss_curve[0]
    assert again.optimizer is first.optimizer
    assert int(again.optimizer.state_dict()["state"][0]["step"]) == 10
    assert again.best_loss == min(again.loss_curve)


def test_plots_ask_the_estimator_for_their_labels(table):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from skvae.plotting import plot_loss_curve

    holes = table.copy()
    holes[::4, 0] = np.nan
    imp = VAEImputer(2, max_iter=4, n_iter_no_change=2, **SMALL).fit(holes)
    ax = plot_loss_curve(imp)
    assert ax.get_ylabel() == f"{imp._curve_labels['objective']} (nats per row)"
    twin = [a for a in ax.figure.axes if a is not ax][0]
    np.testing.assert_allclose(
        twin.lines[0].get_ydata(), -np.asarray(imp.validation_scores_)
    )


def test_a_failed_fit_leaves_the_fitted_model_unchanged(table):
    vae = VAETransformer(2, max_iter=3, n_iter_no_change=3, **SMALL).fit(table)
    before = vae.transform(table), dict(vae.__dict__)
    # Validation passes, then early stopping finds no row to hold out.
    vae.set_params(early_stopping=True, validation_fraction=0.01)
    with pytest.raises(ValueError, match="early_stopping"):
        vae.fit(table[:20, :3])
    assert vae.__dict__.keys() == before[1].keys()
    assert vae.n_features_in_ == 5
    assert vae.module_ is before[1]["module_"]
    np.testing.assert_array_equal(vae.transform(table), before[0])
    holes = table.copy()
    holes[::3, 0] = np.nan
    imp = VAEImputer(2, max_iter=3, **SMALL).fit(holes)
    filled = imp.transform(holes)
    with pytest.raises(ValueError, match="validation_fraction"):
        imp.set_params(early_stopping=True, validation_fraction=0.001).fit(holes[:10])
    np.testing.assert_array_equal(imp.transform(holes), filled)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_parameters_are_documented_in_signature_order(cls):
    doc = cls.__doc__
    section = doc[doc.index("Parameters\n") : doc.index("Attributes\n")]
    documented = re.findall(r"^    (\w+) : ", section, re.M)
    signature = list(inspect.signature(cls.__init__).parameters)[1:]
    assert documented == signature


def test_column_likelihoods_name_every_input_column(table):
    holes = table.copy()
    holes[:, 2] = np.nan  # empty: not modelled
    holes[::4, 0] = np.nan
    imp = VAEImputer(2, max_iter=2, early_stopping=False, **SMALL).fit(holes)
    assert (
        imp.column_likelihoods_.tolist() == ["gaussian"] * 2 + [None] + ["gaussian"] * 2
    )
    vae = VAETransformer(
        2, likelihood={4: "quantile"}, max_iter=2, n_iter_no_change=2, **SMALL
    ).fit(table)
    assert vae.column_likelihoods_.tolist() == ["gaussian"] * 4 + ["quantile"]
