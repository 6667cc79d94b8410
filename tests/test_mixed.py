"""Mixed-type pandas DataFrames: column kinds, dtypes, missing values, scores."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import make_column_transformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
from skvae._data import TabularSchema
from skvae._frame import _decimals
from skvae._likelihoods import CategoricalLikelihood

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skvae.PosteriorCollapseWarning"),
]

SMALL = {
    "hidden_layer_sizes": (32,),
    "batch_size": 64,
    "n_iter_no_change": 1000,
    "device": "cpu",
}
CUT = pd.CategoricalDtype(["Fair", "Good", "Ideal", "Premium", "Unused"])


def _table(n=300, seed=0):
    """Mixed table driven by one latent factor z; every column depends on it."""
    rng = np.random.RandomState(seed)
    z = rng.normal(size=n)
    cut = np.select([z < -0.7, z < 0.0, z < 0.7], ["Fair", "Good", "Ideal"], "Premium")
    return pd.DataFrame(
        {
            "carat": np.round(0.8 + 0.3 * z + 0.05 * rng.normal(size=n), 2).clip(0.2),
            "price": np.round(np.exp(7 + 0.8 * z + 0.2 * rng.normal(size=n))).astype(
                np.int64
            ),
            "rooms": np.clip(np.round(3 + z + 0.5 * rng.normal(size=n)), 1, 6).astype(
                np.int64
            ),
            "cut": pd.Categorical(cut, dtype=CUT),
            "color": pd.Series(
                np.where(z + 0.5 * rng.normal(size=n) > 0, "D", "E"), dtype=object
            ).where(rng.rand(n) > 0.2, "F"),
            "clarity": pd.Series(
                np.select([z < -0.5, z < 0.5], ["SI", "VS"], "IF"), dtype="string"
            ),
            "certified": z > 0,
            "answer": np.where(z > 0, "yes", "no").astype(object),
        }
    )


@pytest.fixture(scope="module")
def table():
    return _table()


@pytest.fixture(scope="module")
def fitted(table):
    vae = VAETransformer(
        2, max_iter=40, random_state=0, likelihood={"price": "lognormal"}, **SMALL
    )
    return vae.fit(table)


def _with_holes(df, seed=1, rate=0.15):
    """NaN, None and pd.NA in every column (numpy int columns become float)."""
    rng = np.random.RandomState(seed)
    casts = {"rooms": float, "price": "Int64", "certified": "boolean"}
    out = df.astype({c: t for c, t in casts.items() if c in df})
    holes = rng.rand(*df.shape) < rate
    holes[holes.all(1), 0] = False
    for j, col in enumerate(out.columns):
        rows = np.flatnonzero(holes[:, j])
        if col == "color":
            out.loc[rows, col] = None
        elif col in ("clarity", "price", "certified"):
            out.loc[rows, col] = pd.NA
        else:
            out.loc[rows, col] = np.nan
    return out, holes


def _check_like(out, ref):
    """``out`` has ``ref``'s columns, order, dtypes and only fit values."""
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(ref.columns)
    pd.testing.assert_series_equal(out.dtypes, ref.dtypes)
    assert out["cut"].dtype == CUT
    assert not out.isna().any().any()
    for col in ("cut", "color", "clarity", "answer", "certified"):
        assert set(out[col]) <= set(ref[col].dropna()), col
    for col in ("price", "rooms"):
        assert out[col].min() >= ref[col].min()
        assert out[col].max() <= ref[col].max()
    carat = out["carat"].to_numpy()
    np.testing.assert_array_equal(np.round(carat, 2), carat)


# ---------------------------------------------------------------------- kinds
def test_column_kinds_are_detected(table):
    vae = VAETransformer(2, max_iter=1, **SMALL).fit(table)
    # The transformer models numeric DataFrame columns through their
    # quantiles (its samples keep values, ties and ranges); the imputer and
    # the detector, and every estimator on an array, use Gaussians.
    assert vae.schema_.kinds == [
        "quantile",
        "quantile",
        "quantile",
        "categorical",
        "categorical",
        "categorical",
        "bernoulli",
        "bernoulli",
    ]
    # Categories seen in fit only ("Unused" is declared, never observed).
    assert vae.schema_.n_categories == (4, 3, 3)
    np.testing.assert_array_equal(vae.feature_names_in_, table.columns)
    assert vae.n_features_in_ == 8
    imputer = VAEImputer(2, max_iter=1, **SMALL).fit(table)
    assert imputer.schema_.kinds[:3] == ["gaussian"] * 3
    numeric = table.iloc[:, :3].to_numpy(dtype=float)
    assert (
        VAETransformer(2, max_iter=1, **SMALL).fit(numeric).schema_.kinds
        == ["gaussian"] * 3
    )


def test_likelihood_dict_overrides_kinds(table):
    likelihood = {"price": "lognormal", "rooms": "categorical", "answer": "categorical"}
    vae = VAETransformer(2, max_iter=1, likelihood=likelihood, **SMALL).fit(table)
    assert vae.schema_.kinds[:3] == ["quantile", "lognormal", "categorical"]
    assert vae.schema_.kinds[7] == "categorical"
    out = vae.sample(30, random_state=0)
    assert out["rooms"].dtype == np.int64
    assert set(out["rooms"]) <= set(table["rooms"])
    assert set(out["answer"]) <= {"yes", "no"}


@pytest.mark.parametrize(
    ("likelihood", "match"),
    [
        ({"nope": "gaussian"}, "nope"),
        ({"carat": "poisson"}, "poisson"),
        ({"color": "gaussian"}, "color"),
        ({"clarity": "lognormal"}, "clarity"),
        ({"cut": "bernoulli"}, "cut"),
    ],
)
def test_likelihood_dict_errors(table, likelihood, match):
    vae = VAETransformer(2, max_iter=1, likelihood=likelihood, **SMALL)
    with pytest.raises(ValueError, match=match):
        vae.fit(table)


def test_lognormal_needs_positive_values(table):
    bad = table.assign(carat=table["carat"] - 1.0)
    vae = VAETransformer(2, max_iter=1, likelihood={"carat": "lognormal"}, **SMALL)
    with pytest.raises(ValueError, match="carat"):
        vae.fit(bad)
    vae.set_params(likelihood={"price": "lognormal"}).fit(table)
    with pytest.raises(ValueError, match="positive"):
        vae.transform(table.assign(price=-table["price"]))


# ---------------------------------------------------------------------- round trip
def test_transform_shape_and_inverse_keeps_dtypes(table, fitted):
    Z = fitted.transform(table)
    assert Z.shape == (len(table), 2)
    assert Z.dtype == np.float64
    assert np.isfinite(Z).all()
    _check_like(fitted.inverse_transform(Z), table)


def test_sample_keeps_dtypes_range_and_precision(table, fitted):
    for return_mean in (False, True):
        out = fitted.sample(200, random_state=0, return_mean=return_mean)
        assert out.shape == (200, table.shape[1])
        _check_like(out, table)
    # Draws visit several categories of each label column.
    draws = fitted.sample(200, random_state=0)
    assert draws["cut"].nunique() >= 3
    assert draws["answer"].nunique() == 2


def test_sample_is_reproducible(fitted):
    a = fitted.sample(20, random_state=3)
    pd.testing.assert_frame_equal(a, fitted.sample(20, random_state=3))
    assert not a.equals(fitted.sample(20, random_state=4))


def test_reconstruction_recovers_labels(table, fitted):
    """The decoder mean of a row's code gives back its strongly tied labels."""
    rec = fitted.inverse_transform(fitted.transform(table))
    assert (rec["answer"] == table["answer"]).mean() > 0.85
    assert (rec["certified"] == table["certified"]).mean() > 0.85
    assert np.corrcoef(rec["carat"], table["carat"])[0, 1] > 0.8


def test_interpolate_returns_frame(table, fitted):
    path = fitted.interpolate(table.iloc[0], table.iloc[[1]], n_steps=4)
    assert list(path.columns) == list(table.columns)
    pd.testing.assert_series_equal(path.dtypes, table.dtypes)


# ---------------------------------------------------------------------- unknown
def test_unknown_category_is_an_error_by_default(table, fitted):
    rows = table.head(3).copy()
    rows["color"] = rows["color"].astype(object)
    rows.loc[1, "color"] = "purple"
    for method in (fitted.transform, fitted.score_samples):
        with pytest.raises(ValueError, match=r"color.*'purple'.*handle_unknown"):
            method(rows)


def test_handle_unknown_missing_treats_it_as_missing(table, fitted):
    vae = fitted.__class__(**fitted.get_params())
    vae.set_params(handle_unknown="missing", max_iter=5).fit(_with_holes(table)[0])
    rows = table.head(4).copy()
    rows["cut"] = rows["cut"].cat.add_categories(["Astral"])
    rows.loc[2, "cut"] = "Astral"
    as_missing = rows.copy()
    as_missing.loc[2, "cut"] = np.nan
    np.testing.assert_array_equal(vae.transform(rows), vae.transform(as_missing))
    np.testing.assert_array_equal(
        vae.score_samples(rows), vae.score_samples(as_missing)
    )


# ---------------------------------------------------------------------- missing
def test_missing_entries_of_every_type(table):
    holey, holes = _with_holes(table)
    assert holes.any(0).all()
    vae = VAETransformer(2, max_iter=10, random_state=0, **SMALL).fit(holey)
    assert vae.module_.mask_channel
    scores = vae.score_samples(holey)
    assert scores.shape == (len(table),)
    assert np.isfinite(scores).all()
    assert np.isfinite(vae.transform(holey)).all()
    # Marginalizing an entry out removes its (negative) log-probability.
    row = table.head(1)
    part = row.copy()
    part.loc[0, "cut"] = np.nan
    assert vae.score_samples(part)[0] > vae.score_samples(row)[0]


def test_imputer_fills_every_type_and_keeps_observed(table):
    holey, holes = _with_holes(table)
    imp = VAEImputer(
        2,
        max_iter=30,
        early_stopping=False,
        random_state=0,
        n_importance_samples=50,
        **SMALL,
    )
    out = imp.fit(holey).transform(holey)
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_series_equal(out.dtypes, holey.dtypes)
    pd.testing.assert_index_equal(out.index, holey.index)
    assert not out.isna().any().any()
    observed = holey.notna().to_numpy()
    for j, col in enumerate(holey.columns):
        keep = observed[:, j]
        pd.testing.assert_series_equal(out[col][keep], holey[col][keep])
        filled = out[col][~keep]
        if col in ("cut", "color", "clarity", "answer", "certified"):
            assert set(filled) <= set(table[col]), col
    assert set(out["cut"]) <= {"Fair", "Good", "Ideal", "Premium"}
    rooms = out.loc[~observed[:, 2], "rooms"].to_numpy()
    np.testing.assert_array_equal(rooms, np.round(rooms))
    assert rooms.min() >= 1
    assert rooms.max() <= 6


def test_imputer_predicts_a_determined_category():
    """A category fixed by a numeric column is imputed correctly."""
    rng = np.random.RandomState(0)
    n = 400
    x = rng.normal(size=n)
    band = np.select([x < -0.5, x < 0.5], ["low", "mid"], "high")
    df = pd.DataFrame(
        {
            "x": x.round(3),
            "y": (2 * x + 0.1 * rng.normal(size=n)).round(3),
            "band": pd.Series(band, dtype="string"),
        }
    )
    hidden = rng.rand(n) < 0.2
    holey = df.copy()
    holey.loc[hidden, "band"] = pd.NA
    imp = VAEImputer(
        2,
        max_iter=60,
        early_stopping=False,
        random_state=0,
        n_train_samples=5,
        n_importance_samples=50,
        **SMALL,
    )
    out = imp.fit(holey).transform(holey)
    accuracy = (out.loc[hidden, "band"] == df.loc[hidden, "band"]).mean()
    # Most frequent class: about 0.38; the boundaries blur a little.
    assert accuracy > 0.8
    draws = imp.set_params(sample_posterior=True, random_state=1).transform(holey)
    # Draws from the predictive are right less often than its mode.
    assert (draws.loc[hidden, "band"] == df.loc[hidden, "band"]).mean() > 0.5
    multiple = imp.sample_imputations(holey, 2, random_state=0)
    assert len(multiple) == 2
    assert all(isinstance(m, pd.DataFrame) for m in multiple)


def test_imputer_in_a_pipeline_with_categoricals(table):
    holey, _ = _with_holes(table.drop(columns="certified"))
    y = table["certified"].to_numpy()
    labels = ["cut", "color", "clarity", "answer"]
    model = make_pipeline(
        VAEImputer(2, max_iter=10, early_stopping=False, random_state=0, **SMALL),
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), labels), remainder="passthrough"
        ),
        LogisticRegression(max_iter=500),
    )
    assert model.fit(holey, y).score(holey, y) > 0.8


def test_imputer_indicator_and_set_output(table):
    holey, holes = _with_holes(table)
    imp = VAEImputer(
        2, add_indicator=True, max_iter=3, early_stopping=False, **SMALL
    ).set_output(transform="pandas")
    out = imp.fit_transform(holey)
    names = list(imp.get_feature_names_out())
    assert list(out.columns) == names
    assert names[:8] == list(table.columns)
    assert names[8] == "missingindicator_carat"
    np.testing.assert_array_equal(out.iloc[:, 8:].to_numpy(dtype=bool), holes)
    assert out["cut"].dtype == CUT


# ---------------------------------------------------------------------- scores
def test_score_samples_is_a_normalized_probability():
    """Over every combination of a bool and a categorical column, sum p = 1."""
    rng = np.random.RandomState(0)
    n = 400
    flag = rng.rand(n) < 0.3
    kind = np.where(flag, rng.choice(["a", "b"], n, p=[0.8, 0.2]), "c")
    df = pd.DataFrame({"flag": flag, "kind": pd.Categorical(kind)})
    vae = VAETransformer(
        1,
        max_iter=60,
        learning_rate=3e-3,
        random_state=0,
        n_importance_samples=2000,
        **SMALL,
    ).fit(df)
    grid = pd.DataFrame(
        {
            "flag": [False, False, False, True, True, True],
            "kind": pd.Categorical(list("abcabc"), categories=list("abc")),
        }
    )
    p = np.exp(vae.score_samples(grid))
    assert p.sum() == pytest.approx(1.0, abs=0.03)
    # The model learned the dependency: "c" goes with flag False (under
    # independence p(True, "c") would be 0.3 * 0.7 = 0.21; the truth is 0).
    assert p[2] > 0.5
    assert p[5] < 0.12


def test_lognormal_density_integrates_to_one():
    """score_samples of a lognormal column includes the Jacobian of the log."""
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"price": np.exp(5 + 0.5 * rng.normal(size=300))})
    vae = VAETransformer(
        1,
        max_iter=40,
        random_state=0,
        likelihood={"price": "lognormal"},
        n_importance_samples=200,
        **SMALL,
    ).fit(df)
    grid = np.exp(np.linspace(2.0, 8.5, 3000))
    density = np.exp(vae.score_samples(pd.DataFrame({"price": grid})))
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=0.03)
    # Without the log transform the density is Gaussian on the price scale.
    plain = VAETransformer(
        1, max_iter=40, likelihood="gaussian", random_state=0, **SMALL
    ).fit(df)
    assert vae.score(df) > plain.score(df)


def test_outlier_detector_flags_impossible_combination(table):
    det = VAEOutlierDetector(
        2, contamination=0.05, max_iter=60, random_state=0, **SMALL
    ).fit(table)
    assert np.mean(det.predict(table) == -1) == pytest.approx(0.05, abs=0.01)
    # Rows far from the boundary z = 0 (the extreme cuts).
    extreme = np.r_[
        np.flatnonzero(table["cut"] == "Premium")[:3],
        np.flatnonzero(table["cut"] == "Fair")[:3],
    ]
    normal = table.iloc[extreme].copy()
    odd = normal.copy()
    # "yes" always goes with certified=True in the training data.
    odd["answer"] = np.where(odd["certified"], "no", "yes").astype(object)
    assert (det.score_samples(odd) < det.score_samples(normal) - 1.5).all()
    assert (det.predict(odd) == -1).sum() >= 5
    contributions = det.feature_log_likelihood(odd)
    assert contributions.shape == (6, 8)
    # The categorical/Bernoulli terms are log-probabilities: at most 0.
    assert (contributions[:, 3:] <= 1e-6).all()


# ---------------------------------------------------------------------- sklearn
def test_set_output_and_feature_names(table):
    vae = VAETransformer(2, max_iter=2, **SMALL).set_output(transform="pandas")
    shuffled = table.sample(frac=1.0, random_state=0)
    out = vae.fit_transform(shuffled)
    assert list(out.columns) == ["vaetransformer0", "vaetransformer1"]
    pd.testing.assert_index_equal(out.index, shuffled.index)
    np.testing.assert_array_equal(
        vae.get_feature_names_out(), ["vaetransformer0", "vaetransformer1"]
    )
    with pytest.raises(ValueError, match="feature names"):
        vae.transform(table[table.columns[::-1]])


def test_partial_fit_keeps_categories(table):
    vae = VAETransformer(2, random_state=0, **SMALL)
    vae.partial_fit(table.iloc[:150]).partial_fit(table.iloc[150:])
    assert vae.n_iter_ == 2
    new = table.head(2).assign(color=pd.Series(["Q", "D"], dtype=object))
    with pytest.raises(ValueError, match="'Q'"):
        vae.partial_fit(new)


def test_all_numeric_frame_rounds_to_fit_precision():
    rng = np.random.RandomState(0)
    df = pd.DataFrame(
        {"a": rng.normal(size=100).round(1), "b": rng.randint(0, 5, size=100)}
    )
    vae = VAETransformer(1, max_iter=5, random_state=0, **SMALL).fit(df)
    out = vae.sample(50, random_state=0)
    np.testing.assert_array_equal(out["a"], out["a"].round(1))
    assert out["b"].dtype == np.int64
    assert out["b"].between(0, 4).all()
    # numpy input still gives plain float arrays, unrounded.
    arr = VAETransformer(1, max_iter=5, random_state=0, **SMALL).fit(df.to_numpy())
    assert isinstance(arr.sample(3, random_state=0), np.ndarray)


def test_lognormal_for_numpy_columns_by_position():
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.normal(size=200), np.exp(rng.normal(size=200))])
    vae = VAETransformer(1, max_iter=5, likelihood={1: "lognormal"}, **SMALL).fit(X)
    assert vae.schema_.kinds == ["gaussian", "lognormal"]
    assert (vae.sample(50, random_state=0)[:, 1] > 0).all()
    with pytest.raises(ValueError, match="DataFrame"):
        VAETransformer(1, max_iter=1, likelihood={0: "categorical"}).fit(X)


# ---------------------------------------------------------------------- units
def test_decimals():
    assert _decimals(np.array([0.25, 1.5, 3.0])) == 2
    assert _decimals(np.array([1.0, 2.0])) == 0
    assert _decimals(np.array([0.1, 0.2, 0.3], dtype=np.float32)) == 1
    assert _decimals(np.array([np.pi])) is None


def test_categorical_likelihood_is_normalized():
    lk = CategoricalLikelihood([3, 1, 4])
    lk.reset_parameters()
    assert (lk.n_columns, lk.n_variables, lk.n_params) == (8, 3, 8)
    params = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    probs = lk.mean(params)
    sums = probs @ lk._assign
    torch.testing.assert_close(sums, torch.ones(5, 3))
    onehot = torch.zeros(5, 8)
    onehot[:, [1, 3, 7]] = 1.0
    expected = torch.log(probs[:, [1, 3, 7]])
    torch.testing.assert_close(lk.log_prob(params, onehot), expected)
    draws = lk.sample(params.expand(4000, 5, 8), torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws @ lk._assign, torch.ones(4000, 5, 3))
    torch.testing.assert_close(draws.mean(0), probs, atol=0.03, rtol=0)


def test_schema_one_hot_encode_decode():
    X = np.array([[0.5, 2.0, 0.0], [1.5, np.nan, 1.0], [2.5, 0.0, 1.0]])
    schema = TabularSchema.fit(
        X, {1: "categorical", 2: "categorical"}, n_categories={1: 3, 2: 2}
    )
    assert schema.block_sizes == [1, 0, 2]
    assert schema.n_encoded == 6
    x, mask = schema.encode(X)
    assert x.shape == (3, 6)
    assert mask.shape == (3, 3)
    torch.testing.assert_close(x[0, 1:], torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0]))
    # A missing code is filled with the category frequencies and masked.
    torch.testing.assert_close(x[1, 1:4], torch.tensor([0.5, 0.0, 0.5]))
    assert mask[1].tolist() == [1.0, 0.0, 1.0]
    decoded = schema.decode(x)
    np.testing.assert_allclose(decoded[[0, 2]], X[[0, 2]], rtol=1e-6)
    with pytest.raises(ValueError, match="codes"):
        schema.encode(np.array([[0.5, 3.0, 0.0]]))


def test_numeric_array_path_is_unchanged(gaussian_table):
    """No frame machinery for arrays: float32 stays float32, no rounding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = VAETransformer(2, max_iter=2, random_state=0, **SMALL)
        vae.fit(gaussian_table.astype(np.float32))
    assert vae._fitted.frame is None
    assert vae.schema_.block_sizes == [6, 0, 0]
    assert vae.sample(2, random_state=0).dtype == np.float32
