"""VQVAETransformer: codes, codebook, prior, scikit-learn surface."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skvae
from skvae import VQVAETransformer, _quantize
from skvae._prior import CodePrior, fit_prior
from skvae._quantize import VectorQuantizer


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def fitted(digits):
    """A conditional model with defaults on the digits' training rows."""
    X_train, _, y_train, _ = digits
    return VQVAETransformer(conditional=True, random_state=0).fit(X_train, y_train)


def small(**kw):
    kw = {"hidden_layer_sizes": (32,), "n_embeddings": 16, "max_iter": 20, **kw}
    return VQVAETransformer(random_state=0, **kw)


# ---------------------------------------------------------------------- quantizer
def _clusters(n_clusters=16, per=64, dim=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centers = 10.0 * torch.randn(n_clusters, dim, generator=gen)
    points = centers.repeat_interleave(per, 0)
    return centers, points + 0.01 * torch.randn(points.shape, generator=gen)


def _train_quantizer(points, n_embeddings, steps=300, seed=0, vq=None):
    if vq is None:
        vq = VectorQuantizer(1, n_embeddings, points.shape[1])
        vq.reset_parameters()
    vq.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = points[torch.randperm(points.shape[0], generator=gen)[:256]]
        vq(batch)
    return vq


def test_quantizer_passes_gradients_straight_through():
    vq = VectorQuantizer(2, 4, 3)
    vq.reset_parameters()
    vq.train()
    h = torch.randn(5, 6, requires_grad=True)
    out, codes, commitment = vq(h)
    assert codes.shape == (5, 2)
    out.sum().backward()
    assert torch.equal(h.grad, torch.ones_like(h))
    assert commitment.shape == (5,)
    # Out of training: the value is the codebook's, and nothing moves.
    vq.eval()
    book = vq.codebook.clone()
    out, codes, _ = vq(h)
    torch.testing.assert_close(out.detach(), book[codes].reshape(5, 6))
    assert torch.equal(vq.codebook, book)


def test_codebook_entries_are_the_means_of_their_vectors():
    _, points = _clusters()
    vq = _train_quantizer(points, 16, steps=600)
    vq.eval()
    codes = vq.codes(points)[:, 0]
    for k in codes.unique():
        mean = points[codes == k].mean(0)
        assert float((vq.codebook[k] - mean).norm()) < 0.05


def _usage_after_a_shift():
    """Entries in use on new data after training on other data first."""
    _, before = _clusters(seed=0)
    _, after = _clusters(seed=1)
    vq = _train_quantizer(before, 64)
    vq = _train_quantizer(after, 64, steps=600, vq=vq)
    vq.eval()
    return vq.codes(after).unique().numel()


def test_restarts_keep_the_codebook_in_use_when_the_data_move(monkeypatch):
    with_restarts = _usage_after_a_shift()
    # Entries seeded once, on the first batch: those the new vectors do not
    # reach stay dead.
    monkeypatch.setattr(_quantize, "RESEED_EVERY", 10**9)
    without = _usage_after_a_shift()
    assert with_restarts >= 54  # 57 of 64 when written
    assert without <= 24  # 12


# ---------------------------------------------------------------------- prior
def test_prior_learns_a_markov_chain():
    # c_0 uniform on 4 codes; c_{l+1} = c_l + 1 mod 4 with probability 0.9.
    gen = torch.Generator().manual_seed(0)
    n, length, k = 2000, 5, 4
    codes = torch.empty(n, length, dtype=torch.long)
    codes[:, 0] = torch.randint(k, (n,), generator=gen)
    for pos in range(1, length):
        stay = torch.rand(n, generator=gen) < 0.9
        other = torch.randint(k, (n,), generator=gen)
        codes[:, pos] = torch.where(stay, (codes[:, pos - 1] + 1) % k, other)
    prior = CodePrior(length, k)
    prior.to_empty(device="cpu")
    prior.reset_parameters(torch.Generator().manual_seed(0))
    result = fit_prior(prior, codes, seed=0)
    assert result.validation_scores
    assert result.n_iter == len(result.loss_curve)
    # True entropy: log 4 + 4 * H(0.9 + 0.025, 0.025, 0.025, 0.025).
    p = np.array([0.925, 0.025, 0.025, 0.025])
    entropy = np.log(4) + (length - 1) * -(p * np.log(p)).sum()
    assert -max(result.validation_scores) < entropy + 0.15
    draws = prior.sample(4000, generator=torch.Generator().manual_seed(1))
    follows = ((draws[:, 1:] - draws[:, :-1]) % k == 1).float().mean()
    assert abs(float(follows) - 0.925) < 0.02


# ---------------------------------------------------------------------- estimator
def test_shapes_dtypes_and_formats(fitted, digits):
    X_test = digits[1]
    L, D, K = fitted.n_latents_, fitted.embedding_dim, fitted.n_embeddings
    codes = fitted.predict_codes(X_test)
    assert codes.shape == (len(X_test), L)
    assert codes.dtype == np.int64
    assert codes.min() >= 0
    assert codes.max() < K
    Z = fitted.transform(X_test)
    assert Z.shape == (len(X_test), L * D)
    assert Z.dtype == np.float64
    assert fitted.transform(X_test.astype(np.float32)).dtype == np.float32
    # The vectors are the codebook rows of the codes.
    np.testing.assert_allclose(
        Z.reshape(-1, L, D), fitted.codebook_[codes], rtol=1e-6, atol=1e-6
    )
    assert len(fitted.get_feature_names_out()) == L * D
    onehot = fitted.set_params(encode="onehot").transform(X_test)
    ordinal = fitted.set_params(encode="ordinal").transform(X_test)
    fitted.set_params(encode="vectors")
    assert onehot.shape == (len(X_test), L * K)
    np.testing.assert_array_equal(onehot.reshape(-1, L, K).argmax(-1), codes)
    np.testing.assert_array_equal(ordinal, codes)
    # inverse_transform reads every format alike.
    decoded = fitted.inverse_transform(codes)
    for other in (Z, onehot, ordinal.astype(np.int32)):
        np.testing.assert_array_equal(fitted.inverse_transform(other), decoded)


def test_reconstruction_beats_pca_with_as_many_numbers_per_row(fitted, digits):
    X_train, X_test = digits[0], digits[1]
    rec = fitted.inverse_transform(fitted.predict_codes(X_test))
    mse = np.mean((rec - X_test) ** 2)
    pca = PCA(fitted.n_latents_).fit(X_train)  # 8 numbers per row
    pca_mse = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
    assert mse < 0.75 * pca_mse
    assert fitted.codebook_usage_ > 0.9
    assert 0.5 * fitted.n_embeddings < fitted.perplexity_ <= fitted.n_embeddings
    assert fitted.code_counts_.sum() == len(X_train) * fitted.n_latents_


def test_codes_are_repeatable_and_row_independent(fitted, digits):
    X_test = digits[1]
    codes = fitted.predict_codes(X_test)
    np.testing.assert_array_equal(codes, fitted.predict_codes(X_test))
    np.testing.assert_array_equal(codes[7:50], fitted.predict_codes(X_test[7:50]))
    scores = fitted.score_samples(X_test)
    np.testing.assert_array_equal(scores, fitted.score_samples(X_test))
    np.testing.assert_allclose(
        scores[3:40], fitted.score_samples(X_test[3:40]), rtol=1e-5
    )


def test_score_is_prior_plus_decoder_and_marginal_over_classes(fitted, digits):
    X_test, y_test = digits[1], digits[3]
    X = X_test[:40]
    per_class = np.stack(
        [fitted.score_samples(X, y=np.full(len(X), c)) for c in fitted.classes_]
    )
    marginal = fitted.score_samples(X)
    expected = np.logaddexp.reduce(
        per_class + np.log(fitted.class_prior_)[:, None], axis=0
    )
    np.testing.assert_allclose(marginal, expected, rtol=1e-6)
    # The true class explains the codes better than the average class.
    own = fitted.score_samples(X, y=y_test[:40])
    assert np.mean(own) > np.mean(marginal)
    # The prior beats the uniform one it replaces on held-out codes.
    uniform = fitted.n_latents_ * np.log(fitted.n_embeddings)
    assert max(fitted.prior_validation_scores_) > -uniform + 2.0
    assert np.isfinite(fitted.score(X_test, y_test))


def test_conditional_samples_follow_the_class(fitted, digits):
    X_train, _, y_train, _ = digits
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(X_train, y_train)
    wanted = np.repeat(fitted.classes_, 30)
    S = fitted.sample(len(wanted), y=wanted, random_state=0, return_mean=True)
    assert S.shape == (len(wanted), X_train.shape[1])
    assert np.mean(clf.predict(S) == wanted) > 0.5  # 0.1 by chance
    again = fitted.sample(len(wanted), y=wanted, random_state=0, return_mean=True)
    np.testing.assert_array_equal(S, again)
    # Colder draws are more typical: higher prior log-probability.
    cold = fitted.sample(200, random_state=1, temperature=0.5, return_mean=True)
    hot = fitted.sample(200, random_state=1, temperature=1.5, return_mean=True)
    assert fitted.score(cold) > fitted.score(hot)


def test_tokenizer_in_a_pipeline(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(
        VQVAETransformer(encode="onehot", max_iter=60, random_state=0),
        LogisticRegression(max_iter=2000),
    )
    assert pipe.fit(X_train, y_train).score(X_test, y_test) > 0.8


def test_interpolate_ends_at_the_rows_reconstructions(fitted, digits):
    X_test = digits[1]
    path = fitted.interpolate(X_test[0], X_test[1], n_steps=6)
    assert path.shape == (6, X_test.shape[1])
    ends = fitted.inverse_transform(fitted.predict_codes(X_test[:2]))
    # Decoded in blocks of other shapes: float32 rounding apart.
    np.testing.assert_allclose(path[[0, -1]], ends, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="n_steps"):
        fitted.interpolate(X_test[0], X_test[1], n_steps=1)


def test_bad_input_is_refused_and_the_model_unchanged(fitted, digits):
    X_test = digits[1]
    codes = fitted.predict_codes(X_test[:3])
    with pytest.raises(ValueError, match="integers in"):
        fitted.inverse_transform(codes + fitted.n_embeddings)
    with pytest.raises(ValueError, match="integers in"):
        fitted.inverse_transform(codes + 0.5)
    with pytest.raises(ValueError, match="columns"):
        fitted.inverse_transform(codes[:, :3])
    with pytest.raises(ValueError, match="temperature"):
        fitted.sample(2, temperature=0.0)
    with pytest.raises(ValueError, match="labels not seen"):
        fitted.sample(2, y="seven")
    with pytest.raises(ValueError, match="requires y"):
        VQVAETransformer(conditional=True).fit(X_test)
    with pytest.raises(ValueError, match="only accepted by a conditional"):
        small().fit(X_test[:50]).sample(2, y=1)
    np.testing.assert_array_equal(fitted.predict_codes(X_test[:3]), codes)


def test_frames_missing_values_and_mixed_types():
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "size": rng.lognormal(size=n),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n)),
            "flag": rng.random(n) < 0.3,
            "count": rng.poisson(3.0, n),
        }
    )
    frame.loc[::7, "size"] = np.nan
    vq = small(max_iter=10).fit(frame)
    codes = vq.predict_codes(frame)
    assert codes.shape == (n, vq.n_latents_)
    assert np.isfinite(vq.transform(frame)).all()
    assert np.isfinite(vq.score_samples(frame)).all()
    back = vq.inverse_transform(codes)
    assert list(back.columns) == list(frame.columns)
    assert back.dtypes.equals(frame.dtypes)
    drawn = vq.sample(20, random_state=0)
    assert isinstance(drawn, pd.DataFrame)
    assert drawn.shape == (20, 4)
    assert set(drawn["colour"].unique()) <= {"red", "green", "blue"}


def test_convolutional_grid_of_codes(digits):
    X_train = digits[0][:400]
    vq = VQVAETransformer(architecture="conv", max_iter=5, random_state=0)
    vq.fit(X_train)
    # 8 x 8 images, two stride-2 levels: a 2 x 2 grid of codes.
    assert vq.n_latents_ == 4
    assert vq.image_shape_ == (1, 8, 8)
    assert vq.predict_codes(X_train[:5]).shape == (5, 4)
    dense = VQVAETransformer(architecture="conv", n_latents=3, max_iter=2)
    assert dense.fit(X_train).predict_codes(X_train[:5]).shape == (5, 3)


def test_partial_fit_continues_both_parts(digits):
    X_train = digits[0]
    vq = small()
    vq.partial_fit(X_train[:300])
    vq.partial_fit(X_train[300:600])
    assert vq.n_iter_ == 2
    assert vq.prior_n_iter_ == 2
    assert len(vq.prior_loss_curve_) == 2
    vq.set_params(n_embeddings=8)
    with pytest.raises(ValueError, match="n_embeddings"):
        vq.partial_fit(X_train[:300])


def test_persistence_and_pickling(fitted, digits, tmp_path):
    X_test, y_test = digits[1], digits[3]
    path = tmp_path / "vq.safetensors"
    skvae.save(fitted, path)
    for loaded in (skvae.load(path), pickle.loads(pickle.dumps(fitted))):
        np.testing.assert_array_equal(
            loaded.predict_codes(X_test), fitted.predict_codes(X_test)
        )
        np.testing.assert_array_equal(
            loaded.score_samples(X_test, y_test),
            fitted.score_samples(X_test, y_test),
        )
        np.testing.assert_array_equal(
            loaded.sample(10, random_state=3), fitted.sample(10, random_state=3)
        )
        assert loaded.codebook_usage_ == fitted.codebook_usage_


def test_codebook_usage_plot(fitted):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skvae.plotting import plot_codebook_usage

    ax = plot_codebook_usage(fitted)
    heights = [bar.get_height() for bar in ax.patches]
    np.testing.assert_array_equal(heights, np.sort(fitted.code_counts_)[::-1])
    assert "perplexity" in ax.get_title()
    plt.close(ax.figure)
