"""SequenceVAE on texts and series: the scikit-learn surface."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skvae
from skvae import SequenceVAE

SMALL = {"hidden_size": 32, "embedding_size": 16, "random_state": 0}


def _texts(n=400, seed=0):
    """'abab...' or 'cdcd...' of 2 to 9 letters; the label says which."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    texts = []
    for label in labels:
        pair = "ab" if label == 0 else "cd"
        texts.append((pair * 5)[: rng.integers(2, 10)])
    return texts, labels


def _series(n=200, steps=24, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, steps)
    phase = rng.uniform(0, 2 * np.pi, n)
    amp = rng.uniform(0.5, 2.0, n)
    X = amp[:, None] * np.sin(t[None, :] + phase[:, None])
    return X + 0.05 * rng.normal(size=X.shape)


@pytest.fixture(scope="module")
def text_model():
    texts, _ = _texts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SequenceVAE(4, max_iter=40, **SMALL).fit(texts)


def test_texts_encode_decode_and_generate(text_model):
    texts, labels = _texts(100, seed=1)
    Z = text_model.transform(texts)
    assert Z.shape == (100, 4)
    assert Z.dtype == np.float64
    decoded = text_model.inverse_transform(Z)
    assert decoded.shape == (100,)
    assert all(isinstance(t, str) for t in decoded)
    # The alphabet of each text comes back: the code carries it.
    first = np.array([t[:1] for t in decoded])
    wanted = np.where(labels == 0, "a", "c")
    assert np.mean(first == wanted) > 0.9
    beams = text_model.set_params(beam_width=3).inverse_transform(Z[:10])
    text_model.set_params(beam_width=1)
    assert all(set(t) <= set("abcd") for t in beams)
    drawn = text_model.sample(50, random_state=0)
    assert all(set(t) <= set("abcd") for t in drawn)
    np.testing.assert_array_equal(drawn, text_model.sample(50, random_state=0))
    assert text_model.vocabulary_ == list("abcd")


def test_text_scores_are_repeatable_and_row_independent(text_model):
    texts, _ = _texts(60, seed=2)
    scores = text_model.score_samples(texts)
    assert np.isfinite(scores).all()
    assert (scores < 0).all()  # log-probabilities of discrete sequences
    np.testing.assert_array_equal(scores, text_model.score_samples(texts))
    np.testing.assert_allclose(
        scores[5:20], text_model.score_samples(texts[5:20]), rtol=1e-5
    )
    # A text unlike the training texts is less likely.
    odd = text_model.score_samples(["dcba", "aaaaaaaa"])
    assert odd.max() < np.median(scores)


def test_unknown_tokens_and_long_texts(text_model):
    Z = text_model.transform(["abxyz", "zz"])  # unseen characters
    assert np.isfinite(Z).all()
    with pytest.warns(UserWarning, match="max_length"):
        text_model.transform(["ab" * 20])


def test_word_tokenizer_and_interpolation():
    rng = np.random.default_rng(0)
    words = ["red", "green", "blue", "cat", "dog"]
    texts = [" ".join(rng.choice(words, 2)) for _ in range(300)]
    vae = SequenceVAE(3, tokenizer=str.split, max_iter=20, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(texts)
    assert sorted(vae.vocabulary_) == sorted(words)
    path = vae.interpolate("red cat", "blue dog", n_steps=4)
    assert path.shape == (4,)
    assert all(set(t.split()) <= set(words) for t in path)


def test_series_units_jacobian_and_missing_steps():
    X = _series()
    X[::7, 5:9] = np.nan
    fits = []
    for scale in (1.0, 10.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(SequenceVAE(3, max_iter=5, **SMALL).fit(X * scale))
    s1, s10 = fits[0].score_samples(X[:20]), fits[1].score_samples(X[:20] * 10)
    observed = (~np.isnan(X[:20])).sum(1)
    # Same model in standardized units: log-densities differ by the Jacobian.
    np.testing.assert_allclose(s1 - s10, observed * np.log(10.0), rtol=1e-4)
    decoded = fits[1].inverse_transform(fits[1].transform(X[:5] * 10))
    assert decoded.shape == (5, X.shape[1])
    assert np.isfinite(decoded).all()
    drawn = fits[0].sample(3, random_state=0)
    assert drawn.shape == (3, X.shape[1])


def test_collapse_is_counted_above_the_free_bits():
    # White noise has nothing to encode: every component stays at or below
    # the KL that free bits give away, which no longer counts as active.
    X = np.random.default_rng(0).normal(size=(200, 24))
    with pytest.warns(skvae.PosteriorCollapseWarning, match="free_bits"):
        noise = SequenceVAE(**SMALL).fit(X)
    assert noise.n_active_components_ == 0
    assert noise.kl_per_component_.max() <= noise.free_bits + 0.01
    # Sines of random amplitude and phase have two degrees of freedom.
    with warnings.catch_warnings():
        warnings.simplefilter("error", skvae.PosteriorCollapseWarning)
        sines = SequenceVAE(**SMALL).fit(_series())
    assert 2 <= sines.n_active_components_ <= 3
    used = np.sort(sines.kl_per_component_)[-2:]
    assert (used > 1.0).all(), sines.kl_per_component_


def test_multichannel_series():
    X = np.stack([_series(seed=0), _series(seed=1)], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = SequenceVAE(2, max_iter=3, **SMALL).fit(X)
    assert vae.transform(X).shape == (len(X), 2)
    assert vae.inverse_transform(np.zeros((2, 2))).shape == (2, X.shape[1], 2)
    assert np.isfinite(vae.score_samples(X)).all()


def test_long_series_are_read_in_patches():
    X = np.stack([_series(n=60, steps=150, seed=0), _series(n=60, steps=150)], -1)
    X[::5, 140:] = np.nan  # missing steps inside the last, padded patch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = SequenceVAE(2, max_iter=2, **SMALL).fit(X)
        odd = [
            SequenceVAE(2, patch_length=4, max_iter=2, **SMALL).fit(X * scale)
            for scale in (1.0, 10.0)
        ]
    # "auto": the fewest steps per patch that leave at most 64 model steps.
    assert auto.patch_length_ == 3
    assert auto.module_.max_length == 50
    assert auto.module_.n_channels == 3 * 2
    assert auto.transform(X[:5]).shape == (5, 2)
    assert auto.inverse_transform(auto.transform(X[:5])).shape == (5, 150, 2)
    assert auto.sample(3, random_state=0).shape == (3, 150, 2)
    # 150 steps in patches of 4: the last patch has 2 steps and 2 of padding,
    # which count neither in the score nor in its Jacobian.
    assert odd[0].patch_length_ == 4
    assert odd[0].module_.max_length == 38
    s1, s10 = odd[0].score_samples(X[:20]), odd[1].score_samples(X[:20] * 10)
    observed = (~np.isnan(X[:20])).sum((1, 2))
    np.testing.assert_allclose(s1 - s10, observed * np.log(10.0), rtol=1e-4)
    with pytest.raises(ValueError, match="150 features"):
        auto.transform(X[:2, :149])


def test_bad_input_is_refused(text_model):
    with pytest.raises(TypeError, match="single string"):
        text_model.transform("abab")
    with pytest.raises(TypeError, match="must be a string"):
        text_model.transform(["ab", None])
    with pytest.raises(ValueError, match="list of strings"):
        text_model.transform([1, 2])
    with pytest.raises(ValueError, match="fitted on text"):
        text_model.transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="temperature"):
        text_model.sample(2, temperature=0)
    with pytest.raises(ValueError, match="n_components"):
        text_model.inverse_transform(np.zeros((2, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        series = SequenceVAE(2, max_iter=1, **SMALL).fit(_series(20))
    with pytest.raises(ValueError, match="24 features"):
        series.transform(_series(5, steps=10))
    with pytest.raises(ValueError, match="infinite"):
        series.fit(np.full((4, 24), np.inf))


def test_text_pipeline_and_grid_search():
    texts, labels = _texts(300)
    pipe = make_pipeline(
        SequenceVAE(2, max_iter=30, **SMALL), LogisticRegression(max_iter=1000)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert pipe.fit(texts, labels).score(texts, labels) > 0.9
        search = GridSearchCV(
            SequenceVAE(max_iter=3, **SMALL), {"n_components": [1, 2]}, cv=2
        ).fit(texts)
    assert search.best_params_["n_components"] in (1, 2)


def test_partial_fit_continues():
    texts, _ = _texts(200)
    vae = SequenceVAE(2, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.partial_fit(texts[:100]).partial_fit(texts[100:] + ["abab" * 9])
    assert vae.n_iter_ == 2
    assert len(vae.loss_curve_) == 2


def test_persistence(text_model, tmp_path):
    texts, _ = _texts(30, seed=3)
    path = tmp_path / "seq.safetensors"
    skvae.save(text_model, path)
    for loaded in (skvae.load(path), pickle.loads(pickle.dumps(text_model))):
        np.testing.assert_array_equal(
            loaded.transform(texts), text_model.transform(texts)
        )
        np.testing.assert_array_equal(
            loaded.score_samples(texts), text_model.score_samples(texts)
        )
        np.testing.assert_array_equal(
            loaded.sample(5, random_state=1), text_model.sample(5, random_state=1)
        )
    with_tokenizer = SequenceVAE(2, tokenizer=str.split, max_iter=1, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with_tokenizer.fit(["a b", "b c"] * 10)
    with pytest.raises(TypeError, match="cannot save"):
        skvae.save(with_tokenizer, tmp_path / "tok.safetensors")
