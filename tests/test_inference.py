"""Inference in float32, repeatable: a row's result never depends on its batch."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
from skvae._chunks import BLOCK_ROWS


@pytest.fixture(scope="module")
def digits():
    # More rows than one block, and a last block that is not full.
    X = load_digits().data[: 2 * BLOCK_ROWS + 37]
    assert X.shape[0] % BLOCK_ROWS != 0
    return X


@pytest.fixture(scope="module")
def fitted(digits):
    kw = {"hidden_layer_sizes": (64,), "max_iter": 3, "random_state": 0}
    holes = digits.copy()
    holes[np.random.default_rng(0).random(holes.shape) < 0.2] = np.nan
    return {
        "transformer": VAETransformer(n_components=4, **kw).fit(digits),
        "detector": VAEOutlierDetector(n_components=4, **kw).fit(digits),
        "imputer": VAEImputer(n_components=4, **kw).fit(holes),
        "holes": holes,
    }


def _calls(fitted):
    t, d, i = fitted["transformer"], fitted["detector"], fitted["imputer"]
    return {
        "transform": t.transform,
        "score_samples": t.score_samples,
        "detector.score_samples": d.score_samples,
        "decision_function": d.decision_function,
        "feature_log_likelihood": d.feature_log_likelihood,
        "imputer.transform": i.transform,
    }


@pytest.mark.parametrize(
    "name",
    [
        "transform",
        "score_samples",
        "detector.score_samples",
        "decision_function",
        "feature_log_likelihood",
        "imputer.transform",
    ],
)
def test_rows_give_bit_identical_results_in_any_batch(fitted, digits, name):
    X = fitted["holes"] if name.startswith("imputer") else digits
    method = _calls(fitted)[name]
    whole = method(X)
    assert np.array_equal(whole, method(X), equal_nan=True)
    rng = np.random.default_rng(1)
    pick = rng.permutation(X.shape[0])[: BLOCK_ROWS + 5]
    assert np.array_equal(method(X[pick]), whole[pick], equal_nan=True)
    for i in pick[:3]:
        assert np.array_equal(method(X[i : i + 1]), whole[i : i + 1], equal_nan=True)


def test_inference_leaves_the_module_in_float32(fitted, digits):
    model = fitted["transformer"]
    before = {k: v.clone() for k, v in model.module_.state_dict().items()}
    model.score_samples(digits[:10])
    model.transform(digits[:10])
    after = model.module_.state_dict()
    for key, value in before.items():
        assert after[key].dtype == value.dtype
        assert np.array_equal(after[key].numpy(), value.numpy())
    assert all(
        p.dtype.is_floating_point and p.dtype.itemsize == 4
        for p in model.module_.parameters()
    )


def test_float32_scores_agree_with_a_float64_module(fitted, digits):
    """float32 inference is the float64 result to float32 resolution."""
    import copy

    model = fitted["transformer"]
    scores = model.score_samples(digits)
    exact = copy.deepcopy(model)
    exact.module_.double()
    reference = _float64_scores(exact, digits)
    np.testing.assert_allclose(scores, reference, rtol=1e-5, atol=1e-3)


def _float64_scores(model, X):
    """score_samples with the module and its inputs in float64."""
    fitted = model._model()
    encode = fitted.encode

    def encode_double(rows):
        return tuple(None if t is None else t.double() for t in encode(rows))

    fitted.encode = encode_double
    return fitted.log_likelihood(np.asarray(X, dtype=np.float64))


def test_dataframe_scores_are_batch_independent():
    rng = np.random.default_rng(0)
    n = BLOCK_ROWS + 40
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.gamma(2.0, size=n),
            "c": pd.Categorical(rng.choice(["x", "y", "z"], size=n)),
        }
    )
    model = VAETransformer(
        n_components=2, hidden_layer_sizes=(16,), max_iter=3, random_state=0
    ).fit(frame)
    whole = model.score_samples(frame)
    part = model.score_samples(frame.iloc[BLOCK_ROWS - 3 : BLOCK_ROWS + 9])
    assert np.array_equal(part, whole[BLOCK_ROWS - 3 : BLOCK_ROWS + 9])


@pytest.fixture(scope="module")
def wide():
    """Rows wide enough that one inference call encodes them in several chunks."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 600)).astype(np.float32)
    X[:, :300] += X[:, 300:]  # some structure to fit
    kw = {"hidden_layer_sizes": (32,), "max_iter": 1, "random_state": 0}
    holes = X.copy()
    holes[rng.random(X.shape) < 0.1] = np.nan
    return {
        "X": X,
        "holes": holes,
        "transformer": VAETransformer(n_components=3, **kw).fit(X),
        "imputer": VAEImputer(n_components=3, n_importance_samples=20, **kw).fit(holes),
    }


@pytest.mark.parametrize("name", ["transform", "score_samples", "imputer.transform"])
def test_rows_encoded_in_chunks_match_rows_encoded_alone(wide, name, monkeypatch):
    """A call encodes a bounded number of rows at a time; results are unchanged."""
    from skvae._chunks import rows_per_chunk
    from skvae._fitted import FittedVAE

    est = wide["imputer"] if name.startswith("imputer") else wide["transformer"]
    X = wide["holes"] if name.startswith("imputer") else wide["X"]
    method = getattr(est, name.split(".")[-1])
    encoded_rows = []
    encode = FittedVAE.encode

    def spy(self, rows):
        encoded_rows.append(rows.shape[0])
        return encode(self, rows)

    monkeypatch.setattr(FittedVAE, "encode", spy)
    whole = method(X)
    budget = rows_per_chunk(2 * X.shape[1], live=2)
    assert len(encoded_rows) > 2
    assert max(encoded_rows) <= budget < X.shape[0]
    for start in (0, 1400, 2800):
        part = method(X[start : start + 700])
        assert np.array_equal(part, whole[start : start + 700], equal_nan=True)


def test_posterior_draws_do_not_depend_on_the_encoding_chunks(wide, monkeypatch):
    """Multiple imputations draw the same numbers whatever the encoding budget."""
    import skvae._fitted

    imputer = wide["imputer"]
    first = imputer.sample_imputations(wide["holes"], 2, random_state=0)
    # One chunk for the whole call: the draws are taken in the same sub-chunks.
    monkeypatch.setattr(
        skvae._fitted,
        "rows_per_chunk",
        lambda width, n_draws=1, live=1: (
            10**6 if live == 2 else skvae._chunks.rows_per_chunk(width, n_draws, live)
        ),
    )
    again = imputer.sample_imputations(wide["holes"], 2, random_state=0)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a, b)
    assert not np.isnan(first[0]).any()
