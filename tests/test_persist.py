"""skvae.save / skvae.load / skvae.inspect: safetensors files that run no code."""

import builtins
import json
import pickle
import struct

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits, load_iris

import skvae
from skvae import VAEImputer, VAEOutlierDetector, VAETransformer

SMALL = {"hidden_layer_sizes": (16,), "max_iter": 3, "random_state": 0}


def _frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "height": rng.normal(170, 10, n),
            "count": rng.poisson(3, n).astype("int64"),
            "group": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "flag": rng.random(n) < 0.3,
            "label": pd.array(rng.choice(["x", "y"], n), dtype="string"),
        }
    )


def _holes(X, seed=0, rate=0.2):
    X = np.array(X, dtype=float)
    X[np.random.default_rng(seed).random(X.shape) < rate] = np.nan
    return X


def _configs():
    iris = load_iris()
    digits = load_digits().data[:200]
    return {
        "transformer-array": (VAETransformer(2, **SMALL), (iris.data,)),
        "transformer-frame": (VAETransformer(2, **SMALL), (_frame(),)),
        "transformer-conditional": (
            VAETransformer(2, conditional=True, **SMALL),
            (iris.data, iris.target),
        ),
        "transformer-conv": (
            VAETransformer(2, architecture="conv", **{**SMALL, "max_iter": 1}),
            (digits,),
        ),
        "transformer-missing": (VAETransformer(2, **SMALL), (_holes(iris.data),)),
        "imputer-array": (
            VAEImputer(2, add_indicator=True, **SMALL),
            (_holes(iris.data),),
        ),
        "imputer-frame": (VAEImputer(2, **SMALL), (_frame().mask(_mask()),)),
        "detector": (VAEOutlierDetector(2, **SMALL), (iris.data,)),
    }


def _mask():
    rng = np.random.default_rng(3)
    frame = _frame()
    return pd.DataFrame(rng.random(frame.shape) < 0.15, columns=frame.columns)


def _outputs(est, args):
    """Every deterministic output of a fitted estimator on its fit data."""
    X = args[0]
    out = {}
    if isinstance(est, VAEImputer):
        out["transform"] = est.transform(X)
        out["draws"] = est.sample_imputations(X, 2, random_state=1)
    else:
        out["score_samples"] = est.score_samples(X)
    if isinstance(est, VAETransformer):
        out["transform"] = est.transform(X)
        out["sample"] = est.sample(
            5, random_state=1, **({"y": args[1][:5]} if len(args) > 1 else {})
        )
    if isinstance(est, VAEOutlierDetector):
        out["predict"] = est.predict(X)
        out["decision_function"] = est.decision_function(X)
    return out


def _same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", list(_configs()))
def test_round_trip_is_bit_identical(name, tmp_path):
    est, args = _configs()[name]
    est.fit(*args)
    path = tmp_path / "model.safetensors"
    skvae.save(est, path)
    loaded = skvae.load(path)
    assert type(loaded) is type(est)
    assert repr(loaded.get_params()) == repr({**est.get_params(), "device": "cpu"})
    before, after = _outputs(est, args), _outputs(loaded, args)
    for key in before:
        _same(before[key], after[key])
    for attr in ("n_iter_", "loss_curve_", "n_features_in_", "column_likelihoods_"):
        np.testing.assert_array_equal(getattr(loaded, attr), getattr(est, attr))
    if hasattr(est, "feature_names_in_"):
        assert list(loaded.feature_names_in_) == list(est.feature_names_in_)
    if hasattr(est, "classes_"):
        np.testing.assert_array_equal(loaded.classes_, est.classes_)


def test_loading_runs_no_pickle_and_no_torch_load(tmp_path, monkeypatch):
    est = VAEImputer(2, **SMALL).fit(_frame().mask(_mask()))
    path = tmp_path / "m.safetensors"
    skvae.save(est, path)

    def forbidden(*args, **kwargs):
        raise AssertionError("code-running loader called")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    loaded = skvae.load(path)
    _same(
        loaded.transform(_frame().mask(_mask())), est.transform(_frame().mask(_mask()))
    )


def test_partial_fit_continues_after_loading(tmp_path):
    X = load_iris().data
    est = VAETransformer(2, **SMALL)
    est.partial_fit(X)
    path = tmp_path / "m.safetensors"
    skvae.save(est, path)
    loaded = skvae.load(path)
    est.partial_fit(X)
    loaded.partial_fit(X)
    assert loaded.n_iter_ == est.n_iter_ == 2
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))


def test_inspect_reads_metadata_without_building(tmp_path):
    est = VAEOutlierDetector(2, **SMALL).fit(load_iris().data)
    path = tmp_path / "m.safetensors"
    skvae.save(est, path)
    meta = skvae.inspect(path)
    assert meta["estimator"] == "VAEOutlierDetector"
    assert meta["format_version"] == 1
    assert meta["skvae_version"] == skvae.__version__
    assert meta["params"]["n_components"] == 2
    assert meta["params"]["hidden_layer_sizes"] == [16]
    assert meta["fitted"]["offset_"] == est.offset_
    assert meta["fitted"]["n_iter_"] == est.n_iter_
    assert meta["tensors"]
    assert all("shape" in t for t in meta["tensors"].values())


def _save_iris(tmp_path):
    path = tmp_path / "m.safetensors"
    skvae.save(VAETransformer(2, **SMALL).fit(load_iris().data), path)
    return path


def _rewrite(path, edit):
    """Rewrite the skvae JSON of a file through ``edit(document)``."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    document = json.loads(header["__metadata__"]["skvae"])
    edit(document)
    header["__metadata__"]["skvae"] = json.dumps(document)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])


def test_damaged_or_foreign_files_raise_clear_errors(tmp_path):
    good = _save_iris(tmp_path)
    raw = good.read_bytes()

    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty or truncated"):
        skvae.load(empty)

    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated|unreadable"):
        skvae.load(cut)

    text = tmp_path / "notes.safetensors"
    text.write_text("hello, this is not a model file at all")
    with pytest.raises(ValueError, match="not a skvae model"):
        skvae.load(text)

    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(ValueError, match="not a skvae model"):
        skvae.load(foreign)
    with pytest.raises(ValueError, match="not a skvae model"):
        skvae.inspect(foreign)


def test_newer_format_unknown_names_and_bad_shapes_raise(tmp_path):
    def newer(doc):
        doc["format_version"] = 99

    path = _save_iris(tmp_path)
    _rewrite(path, newer)
    with pytest.raises(ValueError, match="format 99.*upgrade skvae"):
        skvae.load(path)

    def unknown_estimator(doc):
        doc["estimator"] = "Evil"

    path = _save_iris(tmp_path)
    _rewrite(path, unknown_estimator)
    with pytest.raises(ValueError, match="unknown estimator"):
        skvae.load(path)

    def unknown_param(doc):
        doc["params"]["__dict__"].append(["not_a_param", 1])

    path = _save_iris(tmp_path)
    _rewrite(path, unknown_param)
    with pytest.raises(ValueError, match="not_a_param"):
        skvae.load(path)

    def unknown_class(doc):
        doc["object"]["state"]["_fitted"]["__object__"] = "os.system"

    path = _save_iris(tmp_path)
    _rewrite(path, unknown_class)
    with pytest.raises(ValueError, match="class 'os.system'"):
        skvae.load(path)

    def wrong_shape(doc):
        state = doc["object"]["state"]["_fitted"]["state"]["module"]["state"]
        first, second = list(state)[:2]
        state[first], state[second] = state[second], state[first]

    path = _save_iris(tmp_path)
    _rewrite(path, wrong_shape)
    with pytest.raises(ValueError, match="has shape"):
        skvae.load(path)


def test_saving_needs_a_fitted_skvae_estimator(tmp_path):
    from sklearn.decomposition import PCA
    from sklearn.exceptions import NotFittedError

    with pytest.raises(TypeError, match="VAETransformer"):
        skvae.save(PCA(), tmp_path / "x.safetensors")
    with pytest.raises(NotFittedError):
        skvae.save(VAETransformer(), tmp_path / "x.safetensors")


def test_pickle_still_works():
    est = VAETransformer(2, **SMALL).fit(load_iris().data)
    again = pickle.loads(pickle.dumps(est))
    X = load_iris().data
    np.testing.assert_array_equal(again.transform(X), est.transform(X))


def test_interrupted_save_leaves_the_previous_file(tmp_path, monkeypatch):
    import safetensors.torch

    path = _save_iris(tmp_path)
    before = path.read_bytes()
    other = VAEOutlierDetector(2, **SMALL).fit(load_iris().data)
    real_save = safetensors.torch.save_file

    def interrupted(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        skvae.save(other, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    fresh = tmp_path / "new.safetensors"
    with pytest.raises(KeyboardInterrupt):
        skvae.save(other, fresh)
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_concurrent_inference_matches_serial_calls():
    from concurrent.futures import ThreadPoolExecutor

    X = load_iris().data
    holes = _holes(X)
    models = {
        "transform": VAETransformer(2, **SMALL).fit(X).transform,
        "score_samples": VAEOutlierDetector(2, **SMALL).fit(X).score_samples,
        "impute": VAEImputer(2, **SMALL).fit(holes).transform,
    }
    for name, method in models.items():
        owner = method.__self__
        weights = {k: v.clone() for k, v in owner.module_.state_dict().items()}
        serial = [method(holes if name == "impute" else X[i::4]) for i in range(4)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [
                pool.submit(method, holes if name == "impute" else X[i::4])
                for i in range(4)
                for _ in range(3)
            ]
            results = [f.result() for f in futures]
        for j, result in enumerate(results):
            np.testing.assert_array_equal(result, serial[j // 3])
        for key, value in owner.module_.state_dict().items():
            assert torch.equal(value, weights[key])


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_ctrl_c_during_training_keeps_a_usable_model(method, monkeypatch):
    import skvae._training as training

    X = load_iris().data
    est = VAETransformer(2, **{**SMALL, "max_iter": 5})
    if method == "partial_fit":
        est.partial_fit(X)
    real_epoch = training.run_epoch
    calls = {"n": 0}

    def interrupted_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == (3 if method == "fit" else 1):
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(training, "run_epoch", interrupted_epoch)
    with pytest.warns(UserWarning, match="interrupted"):
        getattr(est, method)(X)
    assert est.n_iter_ == (2 if method == "fit" else 1)
    assert np.isfinite(est.transform(X)).all()
    assert np.isfinite(est.score_samples(X)).all()


def test_model_fitted_for_cuda_loads_on_the_cpu(tmp_path):
    """Fitted modules stay on the CPU between calls, so a CUDA fit differs in
    what it saves only by its device: the parameter and the fitted device."""
    X = load_iris().data
    est = VAETransformer(2, **SMALL).fit(X)
    expected = est.score_samples(X)
    est.set_params(device="cuda")
    est._fitted.device = torch.device("cuda")
    path = tmp_path / "cuda.safetensors"
    skvae.save(est, path)
    assert skvae.inspect(path)["params"]["device"] == "cuda"
    loaded = skvae.load(path)
    assert loaded.device == "cpu"
    assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    np.testing.assert_array_equal(loaded.score_samples(X), expected)
