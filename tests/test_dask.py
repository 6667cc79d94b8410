"""Lazy inference on Dask collections, and skvae estimators on a Dask cluster."""

import pickle
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

# A guard only: CI installs the dev extra, which includes dask.
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

import skvae._dask  # noqa: E402
from skvae import (  # noqa: E402
    VAEImputer,
    VAEOutlierDetector,
    VAETransformer,
    VQVAETransformer,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skvae.PosteriorCollapseWarning"),
]

#: Workers keep glibc's adaptive allocator, as the README recommends.
WORKER_MALLOC = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
SMALL = {"hidden_layer_sizes": (16,), "max_iter": 3, "random_state": 0, "device": "cpu"}


def threads(*collections):
    """Compute on the local threaded scheduler, whatever client exists."""
    return dask.compute(*collections, scheduler="threads")


def _fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


# ---------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def X():
    return load_iris().data


@pytest.fixture(scope="module")
def frame():
    """Iris with a categorical label and an integer column."""
    df = load_iris(as_frame=True).frame
    df["target"] = pd.Categorical.from_codes(
        df["target"], categories=["setosa", "versicolor", "virginica"]
    )
    df["petals"] = np.rint(df["petal length (cm)"]).astype("int64")
    return df


@pytest.fixture(scope="module")
def frame_with_holes(frame):
    """The frame with 10% of its float and label cells missing."""
    holes = np.random.RandomState(0).rand(*frame.shape) < 0.1
    holes[:, frame.columns.get_loc("petals")] = False  # int64 holds no NaN
    return frame.mask(holes)


@pytest.fixture(scope="module")
def X_with_holes(X):
    Xm = X.copy()
    Xm[np.random.RandomState(1).rand(*X.shape) < 0.2] = np.nan
    Xm[np.isnan(Xm).all(1), 0] = 1.0
    return Xm


@pytest.fixture(scope="module")
def vae(X):
    return _fit(VAETransformer(2, **SMALL), X)


@pytest.fixture(scope="module")
def vae_frame(frame):
    return _fit(VAETransformer(2, **SMALL), frame)


@pytest.fixture(scope="module")
def detector(frame):
    return _fit(VAEOutlierDetector(3, **SMALL), frame)


@pytest.fixture(scope="module")
def imputer(X_with_holes):
    return _fit(VAEImputer(2, n_importance_samples=20, **SMALL), X_with_holes)


@pytest.fixture(scope="module")
def imputer_frame(frame_with_holes):
    return _fit(VAEImputer(2, n_importance_samples=20, **SMALL), frame_with_holes)


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes, as the README recommends."""
    distributed = pytest.importorskip("distributed")
    with dask.config.set(WORKER_MALLOC):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


# ---------------------------------------------------------------------- arrays
def test_transformer_on_dask_array_equals_in_memory(vae, X):
    # Two column chunks: rechunked to one per row chunk.
    Xd = da.from_array(X, chunks=(40, 2))
    Z, scores = vae.transform(Xd), vae.score_samples(Xd)
    assert isinstance(Z, da.Array)
    assert isinstance(scores, da.Array)
    assert Z.chunks == ((40, 40, 40, 30), (2,))
    assert scores.chunks == ((40, 40, 40, 30),)
    assert Z.dtype == np.float64
    assert scores.dtype == np.float64
    Z_c, scores_c = threads(Z, scores)
    np.testing.assert_array_equal(Z_c, vae.transform(X))
    np.testing.assert_array_equal(scores_c, vae.score_samples(X))
    assert vae.score(Xd) == pytest.approx(vae.score(X), rel=1e-12)

    X_rec = vae.inverse_transform(Z)
    assert isinstance(X_rec, da.Array)
    assert X_rec.chunks == ((40, 40, 40, 30), (4,))
    np.testing.assert_allclose(
        threads(X_rec)[0], vae.inverse_transform(Z_c), rtol=1e-5, atol=1e-6
    )


def test_float32_array_keeps_float32(vae, X):
    X32 = X.astype(np.float32)
    Z = vae.transform(da.from_array(X32, chunks=50))
    assert Z.dtype == np.float32
    assert Z._meta.dtype == np.float32
    out = Z.compute(scheduler="sync")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, vae.transform(X32))


def test_unknown_chunk_sizes(vae, X):
    Xd = dd.from_pandas(pd.DataFrame(X), npartitions=3).to_dask_array()
    assert np.isnan(Xd.chunks[0][0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no feature names in fit
        np.testing.assert_array_equal(threads(vae.transform(Xd))[0], vae.transform(X))


def test_detector_on_dask_array(detector, frame):
    Xn = frame.to_numpy(dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fit had feature names
        labels = detector.predict(da.from_array(Xn, chunks=(60, 6)))
        assert labels.dtype == np.int64
        assert labels.chunks == ((60, 60, 30),)
        np.testing.assert_array_equal(
            labels.compute(scheduler="sync"), detector.predict(frame)
        )


def test_imputer_on_dask_array(imputer, X_with_holes):
    Xd = da.from_array(X_with_holes, chunks=50)
    filled = imputer.transform(Xd)
    assert filled.chunks == ((50, 50, 50), (4,))
    out = threads(filled)[0]
    np.testing.assert_array_equal(out, imputer.transform(X_with_holes))
    observed = ~np.isnan(X_with_holes)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[observed], X_with_holes[observed])
    scores = threads(imputer.score_samples(Xd))[0]
    np.testing.assert_array_equal(scores, imputer.score_samples(X_with_holes))


def test_sample_imputations_on_dask_array(imputer, X_with_holes):
    # Two identical halves: one seed reused by every block would draw the
    # same values in both.
    half = X_with_holes[:60]
    Xd = da.from_array(np.vstack([half, half]), chunks=60)
    draws = imputer.sample_imputations(Xd, 3, random_state=0)
    assert draws.shape == (3, 120, 4)
    assert draws.chunks == ((3,), (60, 60), (4,))
    first, again = threads(draws, imputer.sample_imputations(Xd, 3, random_state=0))
    np.testing.assert_array_equal(first, again)  # repeatable
    assert not np.isnan(first).any()
    observed = ~np.isnan(half)
    for block in (first[:, :60], first[:, 60:]):
        np.testing.assert_array_equal(
            block[:, observed], np.broadcast_to(half[observed], (3, observed.sum()))
        )
    holes = np.isnan(half)
    assert not np.array_equal(first[:, :60][:, holes], first[:, 60:][:, holes])
    assert not np.array_equal(first[0][:60][holes], first[1][:60][holes])


# ---------------------------------------------------------------------- frames
def test_transformer_on_dask_frame(vae_frame, frame):
    ddf = dd.from_pandas(frame, npartitions=3)
    Z = vae_frame.transform(ddf)
    assert isinstance(Z, dd.DataFrame)
    assert list(Z.columns) == list(vae_frame.get_feature_names_out())
    assert Z.divisions == ddf.divisions
    scores = vae_frame.score_samples(ddf)
    assert isinstance(scores, dd.Series)
    assert scores.divisions == ddf.divisions
    Z_c, scores_c = threads(Z, scores)
    expected = pd.DataFrame(
        vae_frame.transform(frame), columns=Z.columns, index=frame.index
    )
    pd.testing.assert_frame_equal(Z_c, expected)
    assert dict(Z_c.dtypes) == dict(Z.dtypes)
    np.testing.assert_array_equal(scores_c.to_numpy(), vae_frame.score_samples(frame))
    assert vae_frame.score(ddf) == pytest.approx(vae_frame.score(frame), rel=1e-12)


def test_inverse_transform_gives_fit_frame(vae_frame, frame):
    Z = vae_frame.transform(frame)
    X_rec = vae_frame.inverse_transform(da.from_array(Z, chunks=40))
    assert isinstance(X_rec, dd.DataFrame)
    assert dict(X_rec.dtypes) == dict(frame.dtypes)  # meta: fit dtypes
    assert X_rec.divisions == (0, 40, 80, 120, 149)
    out = threads(X_rec)[0]
    expected = vae_frame.inverse_transform(Z)
    pd.testing.assert_index_equal(out.index, expected.index, exact=False)
    assert dict(out.dtypes) == dict(frame.dtypes)
    assert list(out["target"].cat.categories) == list(frame["target"].cat.categories)
    pd.testing.assert_series_equal(out["target"], expected["target"])
    pd.testing.assert_series_equal(out["petals"], expected["petals"])
    np.testing.assert_allclose(
        out.iloc[:, :4].to_numpy(), expected.iloc[:, :4].to_numpy(), rtol=1e-5
    )


def test_set_output_pandas_stays_lazy(frame):
    vae = _fit(VAETransformer(2, **SMALL).set_output(transform="pandas"), frame)
    ddf = dd.from_pandas(frame, npartitions=2)
    Z = vae.transform(ddf)
    assert isinstance(Z, dd.DataFrame)  # not computed by set_output's wrapper
    pd.testing.assert_frame_equal(threads(Z)[0], vae.transform(frame))


def test_detector_on_dask_frame(detector, frame):
    ddf = dd.from_pandas(frame, npartitions=3)
    dtypes = {
        "score_samples": np.float64,
        "decision_function": np.float64,
        "predict": np.int64,
    }
    lazy = {name: getattr(detector, name)(ddf) for name in dtypes}
    computed = dict(zip(lazy, threads(*lazy.values()), strict=True))
    for name, dtype in dtypes.items():
        assert isinstance(lazy[name], dd.Series)
        assert lazy[name].dtype == dtype
        assert computed[name].dtype == dtype
        assert lazy[name].divisions == ddf.divisions
        np.testing.assert_array_equal(
            computed[name].to_numpy(), getattr(detector, name)(frame)
        )
    contributions = detector.feature_log_likelihood(ddf)
    assert list(contributions.columns) == list(frame.columns)
    np.testing.assert_array_equal(
        threads(contributions)[0].to_numpy(), detector.feature_log_likelihood(frame)
    )


def test_imputer_on_dask_frame_keeps_dtypes(imputer_frame, frame_with_holes):
    ddf = dd.from_pandas(frame_with_holes, npartitions=3)
    filled = imputer_frame.transform(ddf)
    assert isinstance(filled, dd.DataFrame)
    assert dict(filled.dtypes) == dict(frame_with_holes.dtypes)
    out = threads(filled)[0]
    pd.testing.assert_frame_equal(out, imputer_frame.transform(frame_with_holes))
    assert dict(out.dtypes) == dict(frame_with_holes.dtypes)
    assert not out.isna().any().any()
    observed = frame_with_holes.notna()
    for name in frame_with_holes.columns:
        rows = observed[name]
        pd.testing.assert_series_equal(
            out.loc[rows, name], frame_with_holes.loc[rows, name]
        )


def test_sample_imputations_on_dask_frame(imputer_frame, frame_with_holes):
    ddf = dd.from_pandas(frame_with_holes, npartitions=3)
    draws = imputer_frame.sample_imputations(ddf, 2, random_state=0)
    assert isinstance(draws, list)
    assert len(draws) == 2
    computed = threads(*draws)
    observed = frame_with_holes.notna()
    for lazy, out in zip(draws, computed, strict=True):
        assert isinstance(lazy, dd.DataFrame)
        assert dict(out.dtypes) == dict(frame_with_holes.dtypes)
        assert not out.isna().any().any()
        pd.testing.assert_index_equal(out.index, frame_with_holes.index)
        assert (out[observed] == frame_with_holes[observed]).sum().sum() == (
            observed.sum().sum()
        )
    holes = frame_with_holes["sepal length (cm)"].isna()
    assert not np.array_equal(
        computed[0].loc[holes, "sepal length (cm)"],
        computed[1].loc[holes, "sepal length (cm)"],
    )


# ---------------------------------------------------------------------- graph
def _model_keys(collection, estimator):
    graph = dict(collection.__dask_graph__())
    keys = [k for k, v in graph.items() if getattr(v, "value", v) is estimator]
    return graph, keys


@pytest.mark.parametrize("kind", ["array", "frame"])
def test_model_is_one_graph_key(vae_frame, frame, kind):
    if kind == "array":
        data = da.from_array(vae_frame.transform(frame), chunks=30)
        lazy = vae_frame.inverse_transform(data)
    else:
        data = dd.from_pandas(frame, npartitions=5)
        lazy = vae_frame.score_samples(data)
    graph, keys = _model_keys(lazy, vae_frame)
    assert len(keys) == 1
    readers = [v for v in graph.values() if keys[0] in getattr(v, "dependencies", ())]
    assert len(readers) == 5  # every block's task reads that one key
    # ... and carries no copy of the model of its own.
    model_size = len(pickle.dumps(vae_frame))
    assert all(len(pickle.dumps(task)) < model_size / 10 for task in readers)


# ---------------------------------------------------------------------- errors
def test_errors_are_raised_at_call_time(vae, vae_frame, imputer_frame, frame, X):
    Xd = da.from_array(X, chunks=50)
    with pytest.raises(NotFittedError):
        VAETransformer().transform(Xd)
    with pytest.raises(NotFittedError):
        VAEOutlierDetector().predict(dd.from_pandas(frame, npartitions=2))
    with pytest.raises(ValueError, match="X has 3 features"):
        vae.score_samples(Xd[:, :3])
    unnamed = pd.DataFrame(frame.to_numpy(object)[:, :5]).infer_objects()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no feature names
        with pytest.raises(ValueError, match="X has 5 features"):
            vae_frame.transform(dd.from_pandas(unnamed, npartitions=2))
    renamed = frame.rename(columns={"petals": "other"})
    with pytest.raises(ValueError, match="feature names"):
        vae_frame.transform(dd.from_pandas(renamed, npartitions=2))
    with pytest.raises(ValueError, match="X has 4 features"):
        vae.inverse_transform(Xd)  # 2 components expected
    with pytest.raises(ValueError, match="Dask DataFrame, not a Dask Array"):
        imputer_frame.transform(da.from_array(frame.to_numpy(object), chunks=50))
    with pytest.raises(ValueError, match="scalar extra arguments"):
        vae.score_samples(Xd, y=np.zeros(150))
    with pytest.raises(TypeError, match="Dask Array or Dask DataFrame"):
        vae.transform(dask.delayed(X))
    with pytest.raises(ValueError, match="2-D"):
        vae.transform(Xd[:, 0])
    with pytest.raises(ValueError, match="n_imputations"):
        imputer_frame.sample_imputations(dd.from_pandas(frame, npartitions=2), 0)


def test_missing_dask_names_the_extra(vae, X, monkeypatch):
    Xd = da.from_array(X, chunks=50)

    def no_module(name):
        raise ImportError(f"No module named {name!r}")

    # The import seam of skvae._dask stands in for an environment without
    # dask; the collection itself is real.
    monkeypatch.setattr(skvae._dask, "_import_module", no_module)
    with pytest.raises(ImportError, match=r'pip install "skvae\[dask\]"'):
        vae.transform(Xd)
    # Detection does not need dask imported: the collection protocol decides.
    monkeypatch.delitem(sys.modules, "dask")
    assert skvae._dask.is_dask_collection(Xd)
    assert not skvae._dask.is_dask_collection(X)
    with pytest.raises(ImportError, match="skvae"):
        vae.score_samples(Xd)
    # In-memory input never needs dask.
    assert vae.transform(X).shape == (150, 2)


# ---------------------------------------------------------------------- cluster
def test_inference_on_cluster(client, vae_frame, detector, frame):
    ddf = dd.from_pandas(frame, npartitions=4)
    Z = client.compute(vae_frame.transform(ddf)).result()
    np.testing.assert_array_equal(Z.to_numpy(), vae_frame.transform(frame))
    Xd = da.from_array(vae_frame.transform(frame), chunks=40)
    X_rec = client.compute(vae_frame.inverse_transform(Xd)).result()
    assert dict(X_rec.dtypes) == dict(frame.dtypes)
    labels = client.compute(detector.predict(ddf)).result()
    np.testing.assert_array_equal(labels.to_numpy(), detector.predict(frame))


def test_gridsearch_on_cluster_matches_serial(client, X):
    joblib = pytest.importorskip("joblib")
    search = GridSearchCV(VAETransformer(**SMALL), {"n_components": [1, 2]}, cv=2)
    serial = search.fit(X).cv_results_
    with joblib.parallel_backend("dask"):
        parallel = GridSearchCV(
            VAETransformer(**SMALL), {"n_components": [1, 2]}, cv=2
        ).fit(X)
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_allclose(parallel.cv_results_[key], serial[key], rtol=1e-12)
    assert parallel.best_params_ == search.best_params_


def test_incremental_partial_fit(client, X):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    Xd = da.from_array(X, chunks=50)
    params = {"n_components": 2, "hidden_layer_sizes": (16,), "random_state": 0}
    inc = wrappers.Incremental(VAETransformer(**params), shuffle_blocks=False)
    inc.fit(Xd)
    reference = VAETransformer(**params)
    for start in (0, 50, 100):
        reference.partial_fit(X[start : start + 50])
    assert inc.estimator_.n_iter_ == 3  # one partial_fit epoch per block
    Z = inc.transform(Xd)
    assert isinstance(Z, da.Array)
    np.testing.assert_array_equal(Z.compute(), reference.transform(X))
    assert inc.score(Xd, None) == pytest.approx(reference.score(X), rel=1e-12)


def test_vq_model_streams_and_maps_dask_collections(client, frame, X):
    # Fitted from a Dask Array (streamed), scored and encoded lazily.
    vq = _fit(VQVAETransformer(8, 2, 3, **SMALL), da.from_array(X, chunks=50))
    assert vq.predict_codes(X).shape == (150, 3)
    Xd = da.from_array(X, chunks=40)
    Z, scores = vq.transform(Xd), vq.score_samples(Xd)
    assert Z.chunks == ((40, 40, 40, 30), (6,))
    Z_c, scores_c = client.compute([Z, scores], sync=True)
    np.testing.assert_array_equal(Z_c, vq.transform(X))
    np.testing.assert_array_equal(scores_c, vq.score_samples(X))
    # A DataFrame model: named columns on the input's index.
    vq_frame = _fit(VQVAETransformer(8, 2, 3, encode="ordinal", **SMALL), frame)
    ddf = dd.from_pandas(frame, npartitions=3)
    codes = client.compute(vq_frame.transform(ddf)).result()
    assert list(codes.columns) == list(vq_frame.get_feature_names_out())
    np.testing.assert_array_equal(codes.to_numpy(), vq_frame.predict_codes(frame))
