"""Results do not depend on the unit of image-like data (pixels)."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.preprocessing import MinMaxScaler

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
from skvae._data import SCALE_FLOOR, TabularSchema

FIXED = {
    "hidden_layer_sizes": (32,),
    "max_iter": 15,
    "n_iter_no_change": 15,
    "random_state": 0,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:600]


def test_image_like_is_read_from_the_data(digits):
    assert TabularSchema.fit(digits).image_like
    assert TabularSchema.fit(digits / 16).image_like
    # Dequantized grey levels (a level plus uniform noise) are pixels too.
    grey = np.rint(digits / 16 * 255)
    noise = np.random.default_rng(0).random(grey.shape)
    assert TabularSchema.fit((grey + noise) / 256).image_like
    # Tables: small-valued columns do not sit "at" the minimum of big ones.
    assert not TabularSchema.fit(load_breast_cancer().data).image_like
    iris = load_iris().data
    assert not TabularSchema.fit(iris).image_like
    assert not TabularSchema.fit(MinMaxScaler().fit_transform(iris)).image_like
    # Seventeen grey levels dequantized: blank pixels spread over 6% of the
    # range, and still read as pixels.
    levels = np.random.default_rng(1).random(digits.shape)
    assert TabularSchema.fit((digits + levels) / 17).image_like
    # Narrow matrices are tables, even sixteen pixel columns.
    narrow = np.c_[digits[:, 20:28], digits[:, 36:44]] / 16
    assert not TabularSchema.fit(narrow).image_like
    assert TabularSchema.fit(digits[:, :36]).image_like


def test_blank_pixels_get_a_floored_scale(digits):
    schema = TabularSchema.fit(digits)
    # Pixels are divided by their range (16) first; the scales are in that unit.
    assert schema.pre_scale == 16.0
    std = digits.std(axis=0) / 16.0
    varying = std > 0
    typical = np.median(std[varying])
    assert (~varying).any()
    np.testing.assert_allclose(schema.scale[~varying], SCALE_FLOOR * typical)
    np.testing.assert_allclose(
        schema.scale[varying], np.maximum(std[varying], SCALE_FLOOR * typical)
    )
    # A table keeps StandardScaler's unit scale for a constant column.
    table = np.c_[load_iris().data, np.ones(150)]
    assert TabularSchema.fit(table).scale[-1] == 1.0


@pytest.mark.parametrize("cls", [VAETransformer, VAEOutlierDetector])
def test_two_pixel_units_give_one_model(cls, digits):
    """Grey levels 0..16 and [0, 1]: same codes, log-likelihoods off by the Jacobian."""
    a = cls(**FIXED).fit(digits)
    b = cls(**FIXED).fit(digits / 16)
    jacobian = digits.shape[1] * np.log(16.0)
    np.testing.assert_allclose(
        a.score_samples(digits), b.score_samples(digits / 16) - jacobian, atol=1e-6
    )
    if cls is VAETransformer:
        np.testing.assert_allclose(
            a.transform(digits), b.transform(digits / 16), atol=1e-6
        )


@pytest.mark.parametrize("cls", [VAETransformer, VAEOutlierDetector, VAEImputer])
def test_pixels_over_their_maximum_give_the_same_numbers(cls, digits):
    """0..240 grey levels and the same divided by 240: bit-identical models.

    The ratio is not a power of two, so only dividing by the range before
    any statistic makes the two encodings, and so the two trainings, equal.
    """
    grey = digits * 15.0
    if cls is VAEImputer:
        grey[np.random.default_rng(0).random(grey.shape) < 0.1] = np.nan
    unit = grey / 240.0
    a = cls(**FIXED).fit(grey)
    b = cls(**FIXED).fit(unit)
    observed = (~np.isnan(grey)).sum(axis=1)
    np.testing.assert_allclose(
        a.score_samples(grey) + observed * np.log(240.0),
        b.score_samples(unit),
        rtol=1e-12,
    )
    if cls is VAETransformer:
        np.testing.assert_array_equal(a.transform(grey), b.transform(unit))
        np.testing.assert_allclose(
            a.inverse_transform(a.transform(grey)),
            240.0 * b.inverse_transform(b.transform(unit)),
            rtol=1e-12,
            atol=1e-12,
        )
    elif cls is VAEImputer:
        np.testing.assert_allclose(
            a.transform(grey), 240.0 * b.transform(unit), rtol=1e-12, atol=1e-12
        )
    else:
        np.testing.assert_array_equal(a.predict(grey), b.predict(unit))
