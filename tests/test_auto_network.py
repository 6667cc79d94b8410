"""``n_components="auto"`` and ``activation="auto"``: the network read from the data."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.model_selection import train_test_split
from torch import nn

from skvae import VAEImputer, VAETransformer, load, save
from skvae._params import AUTO_LATENT, AUTO_SMOOTH_MIN_LATENT


def _quick(**params) -> VAETransformer:
    return VAETransformer(max_iter=2, random_state=0, **params)


def _fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two epochs are too few on purpose
        return model.fit(X)


def _activations(model) -> set[type]:
    kinds = (nn.ReLU, nn.ELU, nn.GELU, nn.Tanh, nn.SiLU, nn.LeakyReLU)
    return {type(m) for m in model.module_.modules() if isinstance(m, kinds)}


@pytest.fixture(scope="module")
def raw_digits():
    return load_digits().data  # grey levels 0..16: an image-like matrix


def test_images_get_a_wide_latent_and_smooth_networks(raw_digits):
    vae = _fit(_quick(), raw_digits)
    assert vae.get_params()["n_components"] == "auto"
    assert vae.get_params()["activation"] == "auto"
    assert vae.n_components_ == AUTO_LATENT["image"] == 32
    assert vae.activation_ == "elu"
    assert _activations(vae) == {nn.ELU}
    assert vae.transform(raw_digits[:5]).shape == (5, 32)
    assert vae.kl_per_component_.shape == (32,)
    assert list(vae.get_feature_names_out())[-1] == "vaetransformer31"
    # The same pixels in another unit give the same choice.
    assert _fit(_quick(), raw_digits / 16).n_components_ == 32


def test_bernoulli_pixels_are_images_too(raw_digits):
    vae = _fit(_quick(likelihood="bernoulli"), raw_digits / 16)
    assert vae.schema_.pixels
    assert not vae.schema_.image_like  # no Gaussian pixels to keep in units
    assert (vae.n_components_, vae.activation_) == (32, "elu")
    # A narrow binary table is not.
    binary = (np.random.default_rng(0).random((200, 10)) < 0.3).astype(float)
    table = _fit(_quick(likelihood="bernoulli"), binary)
    assert (table.n_components_, table.activation_) == (8, "relu")


def test_tables_keep_a_small_latent_and_relu():
    X = load_iris().data
    vae = _fit(_quick(), X)
    assert vae.n_components_ == AUTO_LATENT["table"] == 8
    assert vae.activation_ == "relu"
    assert _activations(vae) == {nn.ReLU}
    assert vae.transform(X).shape == (len(X), 8)


@pytest.mark.parametrize(
    ("params", "n_components", "activation"),
    [
        ({"n_components": 2}, 2, "relu"),  # a 2-D embedding of images
        ({"n_components": AUTO_SMOOTH_MIN_LATENT - 1}, 15, "relu"),
        ({"n_components": AUTO_SMOOTH_MIN_LATENT}, 16, "elu"),
        ({"activation": "tanh"}, 32, "tanh"),
        ({"n_components": 4, "activation": "elu"}, 4, "elu"),
        ({"architecture": "conv"}, 32, "relu"),
    ],
)
def test_explicit_values_and_the_activation_rule(
    raw_digits, params, n_components, activation
):
    X = raw_digits[:300] / 16 if params.get("architecture") else raw_digits[:300]
    vae = _fit(_quick(**params), X)
    assert vae.n_components_ == n_components
    assert vae.activation_ == activation
    assert vae.transform(X[:3]).shape == (3, n_components)


def test_the_other_estimators_keep_their_defaults(raw_digits):
    imputer = _fit(VAEImputer(max_iter=2, random_state=0), raw_digits[:300])
    assert (imputer.n_components_, imputer.activation_) == (8, "relu")
    with pytest.raises(ValueError, match="n_components"):
        VAEImputer(n_components="auto").fit(raw_digits[:50])


def test_invalid_values_are_refused(raw_digits):
    for params in ({"n_components": "many"}, {"n_components": 0}, {"activation": "x"}):
        with pytest.raises(ValueError, match=next(iter(params))):
            VAETransformer(**params).fit(raw_digits[:50])


def test_the_choice_survives_a_round_trip(raw_digits, tmp_path):
    vae = _fit(_quick(), raw_digits)
    save(vae, tmp_path / "auto.safetensors")
    loaded = load(tmp_path / "auto.safetensors")
    assert (loaded.n_components_, loaded.activation_) == (32, "elu")
    assert loaded.get_params()["n_components"] == "auto"
    np.testing.assert_array_equal(
        loaded.transform(raw_digits[:20]), vae.transform(raw_digits[:20])
    )
    # A refit on a table chooses again.
    refit = _fit(loaded, load_iris().data)
    assert (refit.n_components_, refit.activation_) == (8, "relu")


def test_auto_network_beats_the_former_default_on_digits(code_accuracy):
    """Held-out density and code quality against 8 ReLU components."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(
        X, y, test_size=0.3, random_state=1, stratify=y
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # default fits end by their own rule
        auto = VAETransformer(random_state=0).fit(X_train)
    former = VAETransformer(n_components=8, activation="relu", random_state=0)
    former.fit(X_train)
    gain = auto.score(X_test) - former.score(X_test)
    assert gain > 1.0, gain
    accuracy = code_accuracy({"auto": auto, "former": former}, X_train, y_train)
    assert accuracy["auto"] > accuracy["former"] - 0.02, accuracy
