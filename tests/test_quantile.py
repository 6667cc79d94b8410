"""The "quantile" column kind: a Gaussian on each column's normal scores."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from skvae import VAEImputer, VAETransformer
from skvae._data import QuantileMap


def _atoms_and_noise(n, seed):
    """Half the values on three atoms (like whole-percent tables), half not."""
    rng = np.random.default_rng(seed)
    atoms = rng.choice([55.0, 56.0, 57.0], size=n // 2, p=[0.3, 0.5, 0.2])
    spread = rng.normal(56.0, 2.0, n - n // 2).round(1)
    return np.r_[atoms, spread]


def test_quantile_map_round_trip_atoms_and_density():
    values = _atoms_and_noise(1000, 0)
    qmap = QuantileMap(values)
    scores = qmap.forward(values)
    # Scores are about standard normal, and map back to the same values
    # (exactly, when every value is a knot: at most N_QUANTILES rows).
    assert abs(scores.mean()) < 0.05
    assert abs(scores.std() - 1.0) < 0.05
    np.testing.assert_allclose(qmap.inverse(scores), values, atol=1e-6)
    more = _atoms_and_noise(5000, 3)
    back = QuantileMap(more).inverse(QuantileMap(more).forward(more))
    assert np.median(np.abs(back - more)) < 0.01
    np.testing.assert_array_equal(back[more == 56.0], 56.0)
    # The map is increasing, also beyond the fitted range (linear extension).
    grid = np.linspace(values.min() - 5, values.max() + 5, 1001)
    assert np.all(np.diff(qmap.forward(grid)) > 0)
    # Standard normal scores come back with the atoms' shares.
    draws = qmap.inverse(np.random.default_rng(1).normal(size=20000))
    for atom in (55.0, 56.0, 57.0):
        assert abs(np.mean(draws == atom) - np.mean(values == atom)) < 0.02
    assert draws.min() >= values.min()
    assert draws.max() <= values.max()
    # N(0, 1) on the scores times the slope is a density on the values.
    x = np.linspace(values.min() - 15, values.max() + 15, 400001)
    s = qmap.forward(x)
    density = norm.pdf(s) * np.exp(qmap.log_slope(s))
    assert abs(np.trapezoid(density, x) - 1.0) < 0.02


def test_quantile_map_constant_and_missing():
    qmap = QuantileMap(np.array([3.0, 3.0, np.nan, 3.0]))
    assert np.isnan(qmap.forward(np.array([np.nan]))[0])
    np.testing.assert_allclose(qmap.inverse(qmap.forward(np.array([3.0]))), [3.0])


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 600
    size = rng.gamma(2.0, 0.4, n).round(2) + 0.2
    return pd.DataFrame(
        {
            "size": size,
            "table": _atoms_and_noise(n, 2),
            "price": (1000 * size**2 + rng.normal(0, 50, n)).round().astype(int),
            "grade": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        }
    )


@pytest.fixture(scope="module")
def quantile_vae(table):
    return VAETransformer(
        4,
        likelihood="quantile",
        hidden_layer_sizes=(64, 64),
        max_iter=40,
        random_state=0,
    ).fit(table)


def test_quantile_kind_for_every_numeric_column(table, quantile_vae):
    assert quantile_vae.schema_.kinds == ["quantile"] * 3 + ["categorical"]
    synth = quantile_vae.sample(2000, random_state=0)
    assert list(synth.dtypes) == list(table.dtypes)
    for col in ("size", "table", "price"):
        assert synth[col].min() >= table[col].min()
        assert synth[col].max() <= table[col].max()
    # The atoms come back with about their share (a Gaussian on standardized
    # values would put almost nothing exactly on them).
    for atom in (55.0, 56.0, 57.0):
        real = np.mean(table["table"] == atom)
        assert abs(np.mean(synth["table"] == atom) - real) < 0.05
    assert np.isfinite(quantile_vae.score_samples(table)).all()


def test_quantile_beats_gaussian_on_atoms(table, quantile_vae):
    """Samples of a quantile model are harder to tell from real rows."""
    gauss = VAETransformer(
        4,
        hidden_layer_sizes=(64, 64),
        max_iter=40,
        likelihood="gaussian",
        random_state=0,
    ).fit(table)
    on_atoms = {
        name: np.isin(m.sample(2000, random_state=0)["table"], [55.0, 56.0, 57.0])
        for name, m in (("quantile", quantile_vae), ("gaussian", gauss))
    }
    real = np.isin(table["table"], [55.0, 56.0, 57.0]).mean()
    assert abs(on_atoms["quantile"].mean() - real) < 0.05
    assert on_atoms["gaussian"].mean() < real - 0.2


def test_quantile_by_column_on_arrays_and_in_the_imputer(table):
    X = table[["size", "table", "price"]].to_numpy(dtype=float)
    vae = VAETransformer(
        2,
        likelihood={1: "quantile"},
        hidden_layer_sizes=(16,),
        max_iter=3,
        random_state=0,
    ).fit(X)
    assert vae.schema_.kinds == ["gaussian", "quantile", "gaussian"]
    assert np.isfinite(vae.score_samples(X)).all()
    holes = X.copy()
    holes[::4, 1] = np.nan
    filled = VAEImputer(
        n_components=2,
        likelihood={1: "quantile"},
        hidden_layer_sizes=(16,),
        max_iter=3,
        random_state=0,
    ).fit_transform(holes)
    assert np.isfinite(filled).all()
    assert filled[::4, 1].min() >= X[:, 1].min()
    assert filled[::4, 1].max() <= X[:, 1].max()


def test_quantile_on_a_label_column_is_an_error(table):
    with pytest.raises(ValueError, match="needs a numeric column"):
        VAETransformer(likelihood={"grade": "quantile"}, max_iter=1).fit(table)


def test_default_transformer_on_a_frame_accepts_any_finite_value():
    """The default quantile kind: values beyond the fit range score low, no error."""
    rng = np.random.default_rng(0)
    size = rng.integers(1, 7, 300)
    df = pd.DataFrame(
        {
            "size": size,
            "bill": (8.0 * size + rng.gamma(2.0, 3.0, 300)).round(2),
            "day": rng.choice(["Thu", "Fri", "Sat"], 300),
        }
    )
    vae = VAETransformer(2, hidden_layer_sizes=(16,), max_iter=30, random_state=0)
    vae.fit(df)
    assert list(vae.column_likelihoods_) == ["quantile", "quantile", "categorical"]
    new = df.head(3).copy()
    new["size"] = [0, 40, 3]  # below, far above and inside the fit range
    new["bill"] = [-5.0, 1e4, 20.0]
    scores = vae.score_samples(new)
    assert np.isfinite(scores).all()
    assert np.isfinite(vae.transform(new)).all()
    typical = np.median(vae.score_samples(df))
    assert scores[0] < typical - 5
    assert scores[1] < typical - 5
    # Samples keep the integer sizes seen in fit and their range.
    fake = vae.sample(500, random_state=0)
    assert fake["size"].dtype == df["size"].dtype
    assert set(fake["size"]) <= set(df["size"])
