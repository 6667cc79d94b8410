"""VAETransformer inside pandas, Pipeline, GridSearchCV and cross-validation."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import VAETransformer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_pipeline_with_classifier(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    vae = VAETransformer(
        n_components=8, likelihood="gaussian", max_iter=30, random_state=0
    )
    pipe = Pipeline(
        [
            ("scale", MinMaxScaler()),
            ("vae", vae),
            ("clf", LogisticRegression(max_iter=2000)),
        ]
    )
    pipe.fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.8


def test_gridsearch_selects_by_heldout_likelihood(gaussian_table):
    # The table has 2 latent factors: 1 component cannot explain it.
    grid = GridSearchCV(
        VAETransformer(
            hidden_layer_sizes=(32,), learning_rate=1e-2, max_iter=150, random_state=0
        ),
        {"n_components": [1, 2]},
        cv=3,
    )
    grid.fit(gaussian_table)
    scores = grid.cv_results_["mean_test_score"]
    assert grid.best_params_ == {"n_components": 2}
    assert scores[1] > scores[0]
    # The default scorer is the estimator's score: mean held-out log-likelihood.
    assert np.isfinite(grid.best_score_)


def test_gridsearch_in_parallel_matches_serial(gaussian_table):
    params = {"n_components": [1, 2]}
    est = VAETransformer(hidden_layer_sizes=(16,), max_iter=10, random_state=0)
    serial = GridSearchCV(est, params, cv=2).fit(gaussian_table)
    parallel = GridSearchCV(est, params, cv=2, n_jobs=2).fit(gaussian_table)
    np.testing.assert_allclose(
        serial.cv_results_["mean_test_score"], parallel.cv_results_["mean_test_score"]
    )


def test_cross_val_score(gaussian_table):
    scores = cross_val_score(
        VAETransformer(n_components=2, max_iter=10, random_state=0),
        gaussian_table,
        cv=3,
    )
    assert scores.shape == (3,)
    assert np.isfinite(scores).all()


def test_dataframe_round_trip(gaussian_table):
    df = pd.DataFrame(gaussian_table[:, :4], columns=["a", "b", "c", "d"])
    df["d"] = np.rint(df["d"] * 10).astype("int64")
    df["c"] = df["c"].astype("float32")
    vae = VAETransformer(n_components=2, max_iter=5, random_state=0).fit(df)
    assert list(vae.feature_names_in_) == ["a", "b", "c", "d"]
    for out in (vae.inverse_transform(vae.transform(df)), vae.sample(4)):
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == ["a", "b", "c", "d"]
        assert out.dtypes.to_dict() == df.dtypes.to_dict()
    with pytest.warns(UserWarning, match="feature names"):
        vae.transform(df.to_numpy())


def test_set_output_pandas(gaussian_table):
    vae = VAETransformer(n_components=3, max_iter=3).set_output(transform="pandas")
    out = vae.fit_transform(gaussian_table)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [
        "vaetransformer0",
        "vaetransformer1",
        "vaetransformer2",
    ]
