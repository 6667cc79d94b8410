"""Integer DataFrame columns of few values in large tables: categorical by "auto"."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from skvae import VAEImputer, VAETransformer, load, save
from skvae._frame import AUTO_CATEGORICAL_LEVELS, AUTO_CATEGORICAL_ROWS, FrameSchema

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skvae.PosteriorCollapseWarning"),
]

N_ROWS = AUTO_CATEGORICAL_ROWS + 400
N_MONTHS = 12


def _paired(n=N_ROWS, seed=0):
    """A month index and a count that is a jagged function of it, plus noise.

    Every month has one count, as a table of monthly figures joined to its
    rows would: the pairs are exact, and neighbouring months' counts are
    unrelated.
    """
    rng = np.random.default_rng(seed)
    month = rng.integers(N_MONTHS, size=n)
    counts = rng.permutation(N_MONTHS) * 7 + 3
    return pd.DataFrame(
        {
            "month": month.astype(np.int64),
            "count": counts[month].astype(np.int64),
            "size": rng.normal(month / N_MONTHS, 0.3, size=n).round(3),
        }
    )


def _kinds(frame, numeric="quantile", **kwargs):
    schema = FrameSchema.fit(frame, numeric=numeric, **kwargs)
    return [(c.kind, c.unseen) for c in schema.columns]


def test_auto_rule_reads_dtype_values_and_rows():
    frame = _paired()
    levels = AUTO_CATEGORICAL_LEVELS
    frame["many"] = np.arange(len(frame)) % (levels + 1)  # one level too many
    frame["floats"] = (frame["month"] % 3).astype(np.float64)  # few, but float
    frame["constant"] = np.int64(5)
    assert _kinds(frame) == [
        ("categorical", True),
        ("categorical", True),
        ("quantile", False),  # float
        ("quantile", False),  # 65 values
        ("quantile", False),  # float
        ("quantile", False),  # one value
    ]
    # Too few rows (missing entries do not count), a kind asked for, the
    # Gaussian default of the imputer and detector, a sample of larger data.
    short = frame.copy()
    short.loc[: len(frame) - AUTO_CATEGORICAL_ROWS, "month"] = np.nan
    short["month"] = short["month"].astype("Int64")
    assert _kinds(short)[0] == ("quantile", False)
    assert _kinds(frame, likelihood={"month": "quantile"})[0] == ("quantile", False)
    assert _kinds(frame, numeric="auto")[0] == ("auto", False)
    seen = SimpleNamespace(
        labels={}, low=frame.min().to_numpy(float), high=frame.max().to_numpy(float)
    )
    assert _kinds(frame, seen=seen)[:2] == [("quantile", False)] * 2
    imputer = VAEImputer(2, max_iter=1, hidden_layer_sizes=(8,)).fit(frame)
    assert imputer.column_likelihoods_[0] == "gaussian"


def test_fitted_kinds_and_outputs_keep_the_columns_values():
    frame = _paired()
    vae = VAETransformer(random_state=0, max_iter=3).fit(frame)
    assert list(vae.column_likelihoods_) == ["categorical", "categorical", "quantile"]
    # One category more than the values seen: the one unseen values take.
    assert vae.schema_.n_categories == (N_MONTHS + 1, N_MONTHS + 1)
    # The columns still hold numbers: the frame is not a mixed one.
    assert not vae._fitted.frame.mixed
    out = vae.sample(500, random_state=0)
    assert out["month"].dtype == np.int64
    assert out["count"].dtype == np.int64
    assert set(out["month"]) <= set(frame["month"])
    assert set(out["count"]) <= set(frame["count"])


@pytest.fixture(scope="module")
def paired_fit():
    frame = _paired()
    return frame, VAETransformer(random_state=0, max_iter=60).fit(frame)


def test_samples_keep_pairs_that_a_smooth_map_misses(paired_fit):
    """The pairs of the data: kept by the default, lost by the quantile kind."""
    frame, vae = paired_fit
    pairs = set(zip(frame["month"], frame["count"], strict=True))

    def kept(model):
        out = model.sample(2000, random_state=1)
        found = [p in pairs for p in zip(out["month"], out["count"], strict=True)]
        return float(np.mean(found))

    quantile = VAETransformer(random_state=0, likelihood="quantile", max_iter=60)
    quantile.fit(frame)
    assert kept(vae) > 0.5
    assert kept(vae) > kept(quantile) + 0.4


def test_unseen_values_score_low_and_refuse_nothing(paired_fit, tmp_path):
    frame, vae = paired_fit
    rows = frame.iloc[:4].copy()
    seen = vae.score_samples(rows)
    odd = rows.copy()
    odd.loc[0, "month"] = N_MONTHS + 5  # out of range, above
    odd.loc[1, "month"] = -1  # and below
    odd.loc[2, "count"] = 4  # inside the range, never seen
    scores = vae.score_samples(odd)
    assert np.isfinite(scores).all()
    assert (scores[:3] < seen[:3] - 5).all()
    assert scores[3] == seen[3]
    codes = vae.transform(odd)
    assert codes.shape == (4, vae.n_components_)
    assert np.isfinite(codes).all()
    # A missing entry is missing, not unseen.
    holes = rows.astype({"month": "Int64"})
    holes.loc[0, "month"] = pd.NA
    assert np.isfinite(vae.score_samples(holes)).all()
    assert vae.score_samples(holes)[0] > scores[0]
    # A value of another type is still refused.
    text = rows.astype({"month": object})
    text.loc[0, "month"] = "May"
    with pytest.raises(ValueError, match="non-numeric"):
        vae.score_samples(text)
    path = tmp_path / "paired.safetensors"
    save(vae, path)
    np.testing.assert_array_equal(load(path).score_samples(odd), scores)
