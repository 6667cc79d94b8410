"""Latent-space tools of VAETransformer: interpolate and traverse."""

import numpy as np
import pandas as pd
import pytest

from skvae import VAETransformer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Decoding n rows at once or one at a time may differ in the last float32 bits.
TIGHT = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def rows(digits_split):
    X_test = digits_split[1]
    return X_test[0], X_test[1]


# ---------------------------------------------------------------- interpolate
def test_interpolate_shape_and_endpoints(fitted_digits, rows):
    a, b = rows
    path = fitted_digits.interpolate(a, b, n_steps=6)
    assert path.shape == (6, 64)
    assert path.dtype == np.float64
    start = fitted_digits.inverse_transform(fitted_digits.transform(a[None]))
    end = fitted_digits.inverse_transform(fitted_digits.transform(b[None]))
    np.testing.assert_allclose(path[0], start[0], **TIGHT)
    np.testing.assert_allclose(path[-1], end[0], **TIGHT)
    assert not np.allclose(path[0], path[-1])
    assert fitted_digits.interpolate(a, b).shape == (10, 64)


def test_interpolate_is_a_straight_line_between_the_codes(fitted_digits, rows):
    a, b = rows
    z_a, z_b = fitted_digits.transform(np.vstack([a, b]))
    t = np.linspace(0.0, 1.0, 5)[:, None]
    codes = (1.0 - t) * z_a + t * z_b
    path = fitted_digits.interpolate(a, b, n_steps=5)
    np.testing.assert_allclose(path, fitted_digits.inverse_transform(codes), **TIGHT)
    # A path from a row to itself stays at its reconstruction.
    still = fitted_digits.interpolate(a, a, n_steps=3)
    np.testing.assert_allclose(still, np.broadcast_to(still[0], still.shape), **TIGHT)


def test_interpolate_accepts_single_row_shapes(fitted_digits, rows):
    a, b = rows
    ref = fitted_digits.interpolate(a, b, n_steps=3)
    np.testing.assert_array_equal(fitted_digits.interpolate(a[None], b[None], 3), ref)
    np.testing.assert_array_equal(
        fitted_digits.interpolate(list(a), b.astype(np.float32), 3), ref
    )


def test_interpolate_draws(fitted_digits, rows):
    a, b = rows
    draws = fitted_digits.interpolate(a, b, 4, return_mean=False, random_state=0)
    again = fitted_digits.interpolate(a, b, 4, return_mean=False, random_state=0)
    other = fitted_digits.interpolate(a, b, 4, return_mean=False, random_state=1)
    assert draws.shape == (4, 64)
    np.testing.assert_array_equal(draws, again)
    assert not np.array_equal(draws, other)
    assert not np.allclose(draws, fitted_digits.interpolate(a, b, 4))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_steps": 1}, "n_steps must be >= 2"),
        ({"n_steps": 2.5}, "n_steps must be an int"),
        ({"n_steps": True}, "n_steps must be an int"),
    ],
)
def test_interpolate_bad_steps(fitted_digits, rows, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fitted_digits.interpolate(*rows, **kwargs)


def test_interpolate_bad_rows(fitted_digits, digits_split):
    X = digits_split[1]
    with pytest.raises(ValueError, match=r"x_start must be a single row.*\(2, 64\)"):
        fitted_digits.interpolate(X[:2], X[2])
    with pytest.raises(ValueError, match=r"x_end must be a single row.*\(1, 1, 64\)"):
        fitted_digits.interpolate(X[0], X[None, None, 1])
    with pytest.raises(ValueError, match="features"):
        fitted_digits.interpolate(X[0, :10], X[1, :10])
    with pytest.raises(ValueError, match="conditional model"):
        fitted_digits.interpolate(X[0], X[1], y=3)


# ---------------------------------------------------------------- traverse
def test_traverse_varies_one_dimension(fitted_digits, rows):
    x = rows[0]
    out = fitted_digits.traverse(x, 2)
    assert out.shape == (7, 64)
    codes = np.repeat(fitted_digits.transform(x[None]), 7, axis=0)
    codes[:, 2] = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(out, fitted_digits.inverse_transform(codes), **TIGHT)
    # Each value gives its own image.
    assert np.all(np.abs(np.diff(out, axis=0)).max(1) > 1e-3)


def test_traverse_custom_values(fitted_digits, rows):
    x = rows[1]
    z = fitted_digits.transform(x[None])[0]
    values = [z[0], -1.5, 0.0, 2.0]
    out = fitted_digits.traverse(x, 0, values)
    assert out.shape == (4, 64)
    codes = np.repeat(z[None], 4, axis=0)
    codes[:, 0] = values
    np.testing.assert_allclose(out, fitted_digits.inverse_transform(codes), **TIGHT)
    # The row's own value of the component gives back its reconstruction.
    np.testing.assert_allclose(
        out[0], fitted_digits.inverse_transform(z[None])[0], **TIGHT
    )
    draws = fitted_digits.traverse(x, 0, values, return_mean=False, random_state=3)
    np.testing.assert_array_equal(
        draws, fitted_digits.traverse(x, 0, values, return_mean=False, random_state=3)
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((8,), r"dimension must be in \[0, 8\)"),
        ((-1,), r"dimension must be in \[0, 8\)"),
        ((1.0,), "dimension must be an int"),
        ((0, [[0.0, 1.0]]), "non-empty 1-D"),
        ((0, []), "non-empty 1-D"),
        ((0, [0.0, np.inf]), "finite"),
    ],
)
def test_traverse_errors(fitted_digits, rows, args, match):
    with pytest.raises(ValueError, match=match):
        fitted_digits.traverse(rows[0], *args)


def test_traverse_needs_one_row(fitted_digits, digits_split):
    with pytest.raises(ValueError, match="x must be a single row"):
        fitted_digits.traverse(digits_split[1][:3], 0)


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        VAETransformer().interpolate(np.zeros(3), np.ones(3))
    with pytest.raises(NotFittedError):
        VAETransformer().traverse(np.zeros(3), 0)


# ---------------------------------------------------------------- containers
def test_dataframe_rows_and_output(gaussian_table):
    frame = pd.DataFrame(gaussian_table, columns=list("abcdef"))
    vae = VAETransformer(
        n_components=2, hidden_layer_sizes=(16,), max_iter=3, random_state=0
    ).fit(frame)
    path = vae.interpolate(frame.iloc[0], frame.iloc[[1]], n_steps=3)
    assert isinstance(path, pd.DataFrame)
    assert list(path.columns) == list("abcdef")
    # Decoding runs in float32: a batch of 3 and of 1 round differently.
    np.testing.assert_allclose(
        path.iloc[-1],
        vae.inverse_transform(vae.transform(frame.iloc[[1]])).iloc[0],
        rtol=1e-5,
    )
    walk = vae.traverse(frame.iloc[2], 1, values=[-1.0, 1.0])
    assert isinstance(walk, pd.DataFrame)
    assert walk.shape == (2, 6)


# ---------------------------------------------------------------- conditional
def test_conditional_latent_tools_take_y(digits_split):
    X, y = digits_split[0][:300], digits_split[2][:300]
    vae = VAETransformer(
        n_components=2,
        conditional=True,
        hidden_layer_sizes=(16,),
        max_iter=3,
        random_state=0,
        device="cpu",
    ).fit(X, y)
    z = vae.transform(X[:2])
    path = vae.interpolate(X[0], X[1], 4, y=y[0])
    np.testing.assert_allclose(
        path[[0, -1]], vae.inverse_transform(z, y=[y[0], y[0]]), **TIGHT
    )
    assert not np.allclose(path, vae.interpolate(X[0], X[1], 4, y=(y[0] + 1) % 10))
    per_row = vae.interpolate(X[0], X[1], 4, y=[1, 1, 2, 2])
    assert per_row.shape == (4, 64)
    walk = vae.traverse(X[0], 1, y=7)
    assert walk.shape == (7, 64)
    with pytest.raises(ValueError, match="interpolate needs y"):
        vae.interpolate(X[0], X[1])
    with pytest.raises(ValueError, match="traverse needs y"):
        vae.traverse(X[0], 0)
    with pytest.raises(ValueError, match="not seen in fit"):
        vae.traverse(X[0], 0, y=10)
    with pytest.raises(ValueError, match="3 labels for 7 rows"):
        vae.traverse(X[0], 0, y=[1, 2, 3])
