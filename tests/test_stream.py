"""Fitting from Dask collections: one summary pass, then streamed partitions."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from tqdm import TqdmWarning

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

import skvae._stream as stream  # noqa: E402
from skvae import VAEImputer, VAEOutlierDetector, VAETransformer  # noqa: E402

FAST = {"max_iter": 4, "random_state": 0}


@pytest.fixture(scope="module")
def diabetes():
    X = load_diabetes().data
    return train_test_split(X, test_size=0.3, random_state=0)


@pytest.fixture
def mixed():
    """A mixed-type table whose rare label and extreme integer sit in one row."""
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 50, size=n),
            "c": pd.Categorical(rng.choice(["x", "y", "z"], size=n)),
            "d": rng.choice(["u", "v"], size=n).astype(object),
            "e": rng.random(n) < 0.3,
        }
    )
    frame.loc[rng.random(n) < 0.1, "a"] = np.nan
    frame.loc[1999, ["b", "d"]] = [500, "rare"]
    return frame


def test_dask_fit_matches_an_in_memory_fit_held_out(diabetes):
    """Same held-out log-likelihood as the in-memory fit, within seed noise."""
    train, test = diabetes
    memory = VAETransformer(random_state=0).fit(train)
    streamed = VAETransformer(random_state=0).fit(da.from_array(train, chunks=64))
    assert streamed.n_iter_ > 10
    assert streamed.validation_scores_ is not None
    assert abs(streamed.score(test) - memory.score(test)) < 1.0
    assert streamed.score(test) > 18.0  # FactorAnalysis(8) reaches about 18


def test_epochs_read_buffers_of_partitions_not_the_whole_array(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 5)).astype(np.float32)
    monkeypatch.setattr(stream, "BUFFER_ROWS", 250)
    loads = []
    load = stream.PartitionStream.load

    def spy(self, group):
        loads.append(sum(self.rows.lengths[i] for i in group))
        return load(self, group)

    monkeypatch.setattr(stream.PartitionStream, "load", spy)
    est = VAETransformer(max_iter=3, early_stopping=False, random_state=0)
    est.fit(da.from_array(X, chunks=(100, 5)))
    assert est.n_iter_ == 3
    assert len(loads) == 3 * 4  # four buffers of three partitions per epoch
    assert max(loads) <= 300
    assert est.transform(X).dtype == np.float32


def test_rows_are_held_out_by_their_own_draws():
    """The same rows are held out in every pass; none of them trains."""
    X = np.arange(3000, dtype=np.float64).reshape(-1, 3)
    rows = stream.DaskRows.of(da.from_array(X, chunks=(100, 3)))
    summary = stream.summarize(rows, seed=7, held_out_rate=0.2)
    held = set(summary.held_out[:, 0])
    assert 120 < len(held) < 280
    assert summary.n_train == 1000 - len(held)
    source = stream.PartitionStream(rows, 7, 0.2, lambda block: block, summary.n_train)
    trained = set()
    for group in source.buffers(torch.Generator().manual_seed(0)):
        trained.update(source.load(group)[:, 0])
    assert trained.isdisjoint(held)
    assert len(trained) + len(held) == 1000
    np.testing.assert_array_equal(summary.low, X.min(0))
    np.testing.assert_array_equal(summary.high, X.max(0))


def test_dataframe_schema_sees_every_partition(mixed, monkeypatch):
    """A sampled schema still knows every label and the integer range."""
    monkeypatch.setattr(stream, "SCHEMA_ROWS", 300)
    est = VAETransformer(**FAST).fit(dd.from_pandas(mixed, npartitions=5))
    columns = est._fitted.frame.columns
    assert list(columns[3].categories) == ["rare", "u", "v"]
    assert columns[1].bounds == (0.0, 500.0)
    assert est.n_features_in_ == 5
    assert list(est.feature_names_in_) == list(mixed.columns)
    draws = est.sample(200, random_state=0)
    assert list(draws.columns) == list(mixed.columns)
    assert draws["b"].dtype == np.int64
    assert draws["b"].between(0, 500).all()
    assert isinstance(draws["c"].dtype, pd.CategoricalDtype)
    assert np.isfinite(est.score_samples(mixed)).all()


def test_imputer_and_detector_fit_on_dask_frames(mixed):
    ddf = dd.from_pandas(mixed, npartitions=4)
    imputer = VAEImputer(add_indicator=True, **FAST).fit(ddf)
    filled = imputer.transform(mixed)
    assert not filled.isna().any().any()
    assert "missingindicator_a" in filled.columns
    assert np.array_equal(filled["a"].notna(), np.ones(len(mixed), bool))
    detector = VAEOutlierDetector(contamination=0.1, **FAST).fit(ddf)
    share = float(np.mean(detector.predict(mixed) == -1))
    assert 0.05 < share < 0.15


def test_bernoulli_range_is_checked_over_every_row(monkeypatch):
    rng = np.random.default_rng(0)
    X = (rng.random((2000, 3)) < 0.5).astype(np.float64)
    X[1987, 1] = 2.0
    monkeypatch.setattr(stream, "SCHEMA_ROWS", 200)
    est = VAETransformer(likelihood="bernoulli", **FAST)
    with pytest.raises(ValueError, match=r"Bernoulli need values in \[0, 1\]"):
        est.fit(da.from_array(X, chunks=500))
    assert not hasattr(est, "n_iter_")
    frame = dd.from_pandas(pd.DataFrame(X, columns=["p", "q", "r"]), npartitions=4)
    with pytest.raises(ValueError, match=r"\['q'\]"):
        VAETransformer(likelihood={"q": "bernoulli"}, **FAST).fit(frame)


def test_bad_dask_input_is_refused_before_training():
    X = np.random.default_rng(0).normal(size=(400, 3))
    X[350, 2] = np.inf
    fitted = VAETransformer(**FAST).fit(X[:300])
    before = fitted.transform(X[:5])
    with pytest.raises(ValueError, match="infinity"):
        fitted.fit(da.from_array(X, chunks=100))
    np.testing.assert_array_equal(fitted.transform(X[:5]), before)
    Xd = da.from_array(X[:300], chunks=100)
    with pytest.raises(TypeError, match="partial_fit takes in-memory rows"):
        VAETransformer(**FAST).partial_fit(Xd)
    with pytest.raises(ValueError, match="NaN"):
        VAEImputer(missing_values=-1, **FAST).fit(Xd)
    with pytest.raises(ValueError, match="2-D"):
        VAETransformer(**FAST).fit(da.from_array(X[:, 0], chunks=100))


def test_dask_fits_repeat_exactly():
    X = np.random.default_rng(1).normal(size=(900, 4))
    Xd = da.from_array(X, chunks=(200, 2))  # several column chunks too
    a = VAETransformer(**FAST).fit(Xd).transform(X)
    b = VAETransformer(**FAST).fit(Xd).transform(X)
    np.testing.assert_array_equal(a, b)


def test_dask_fit_on_a_local_cluster():
    distributed = pytest.importorskip("distributed")
    X = np.random.default_rng(2).normal(size=(1500, 4))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        est = VAETransformer(**FAST).fit(da.from_array(X, chunks=300))
        scores = est.score_samples(da.from_array(X, chunks=300)).compute()
    assert est.n_iter_ == FAST["max_iter"]
    np.testing.assert_allclose(scores, est.score_samples(X), rtol=1e-6)


def test_streamed_progress_bar_counts_epochs_in_hundredths(capsys, monkeypatch):
    import re

    monkeypatch.setattr(stream, "BUFFER_ROWS", 250)
    X = np.random.default_rng(3).normal(size=(1000, 3))
    est = VAETransformer(
        max_iter=2, n_iter_no_change=2, early_stopping=False, verbose=1, random_state=0
    )
    est.fit(da.from_array(X, chunks=250))
    err = capsys.readouterr().err
    assert "2.00/2" in err
    assert re.search(r"\d\.\d{3,}/2", err) is None


def test_streamed_progress_never_passes_the_epoch(capsys, monkeypatch):
    # Nine buffers of a ninth each: summed shares would overshoot 1.0 by a
    # rounding error (the bar then warned and showed a negative time left).
    monkeypatch.setattr(stream, "BUFFER_ROWS", 100)
    X = np.random.default_rng(4).normal(size=(900, 3))
    est = VAETransformer(
        max_iter=1, n_iter_no_change=1, early_stopping=False, verbose=1, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=TqdmWarning)
        est.fit(da.from_array(X, chunks=100))
    err = capsys.readouterr().err
    assert "1.00/1" in err
    assert "-00:00" not in err
