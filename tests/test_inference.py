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
    x, mask = fitted.encode(np.asarray(X, dtype=np.float64))
    x = x.double()
    mask = None if mask is None else mask.double()
    return fitted.log_likelihood(x, mask)


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
