"""Behaviour of VAETransformer: outputs, quality, reproducibility, errors."""

import copy
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression

from skvae import PosteriorCollapseWarning, VAETransformer
from skvae._params import batch_size

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def small(**kw):
    params = dict(n_components=2, hidden_layer_sizes=(16,), max_iter=5)
    params.update(kw)
    return VAETransformer(**params)


# ---------------------------------------------------------------- outputs
def test_output_shapes_and_dtypes(gaussian_table, device):
    X = gaussian_table
    vae = small(random_state=0, device=device).fit(X)
    Z = vae.transform(X)
    assert Z.shape == (400, 2)
    assert Z.dtype == np.float64
    assert vae.transform(X.astype(np.float32)).dtype == np.float32
    assert vae.inverse_transform(Z).shape == X.shape
    assert vae.sample(7).shape == (7, 6)
    scores = vae.score_samples(X)
    assert scores.shape == (400,)
    assert scores.dtype == np.float64
    assert np.all(np.isfinite(scores))
    assert vae.score(X) == pytest.approx(scores.mean())
    assert list(vae.get_feature_names_out()) == ["vaetransformer0", "vaetransformer1"]
    assert vae.kl_per_component_.shape == (2,)
    assert 0 <= vae.n_active_components_ <= 2
    assert vae.n_iter_ == len(vae.loss_curve_) == 5


def test_outputs_are_in_original_units(gaussian_table):
    X = gaussian_table
    vae = small(max_iter=100, learning_rate=1e-2, random_state=0).fit(X)
    X_rec = vae.inverse_transform(vae.transform(X))
    # Columns live on very different scales; reconstructions must follow them.
    assert np.all(np.abs(X_rec.mean(0) - X.mean(0)) < 0.25 * X.std(0))
    rmse = np.sqrt(np.mean((X_rec - X) ** 2, axis=0))
    assert np.all(rmse < 0.6 * X.std(0))
    samples = vae.sample(2000, random_state=0)
    np.testing.assert_allclose(samples.std(0), X.std(0), rtol=0.35)


def test_fit_transform_matches_fit_then_transform(gaussian_table):
    a = small(random_state=3).fit_transform(gaussian_table)
    b = small(random_state=3).fit(gaussian_table).transform(gaussian_table)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- quality
def test_latent_space_is_useful_for_classification(fitted_digits, digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = LogisticRegression(max_iter=2000)
    clf.fit(fitted_digits.transform(X_train), y_train)
    assert clf.score(fitted_digits.transform(X_test), y_test) >= 0.85


def test_reconstruction_beats_column_mean(fitted_digits, digits_split):
    X_train, X_test = digits_split[:2]
    X_rec = fitted_digits.inverse_transform(fitted_digits.transform(X_test))
    rmse = np.sqrt(np.mean((X_rec - X_test) ** 2))
    baseline = np.sqrt(np.mean((X_train.mean(0) - X_test) ** 2))
    assert rmse < 0.7 * baseline


def test_training_raises_heldout_likelihood(fitted_digits, digits_split):
    X_train, X_test = digits_split[:2]
    untrained = VAETransformer(
        n_components=8, max_iter=1, learning_rate=1e-12, random_state=0, device="cpu"
    ).fit(X_train)
    assert fitted_digits.score(X_test) > untrained.score(X_test) + 15.0
    assert all(fitted_digits.kl_per_component_ > 0.01)
    assert fitted_digits.n_active_components_ == 8


def test_loss_decreases(fitted_digits):
    curve = fitted_digits.loss_curve_
    assert np.mean(curve[-5:]) < np.mean(curve[:2]) - 10.0  # nats per row


# ---------------------------------------------------------------- density
def test_score_is_a_normalised_density_in_original_units():
    # 1-D bimodal data far from the origin: exp(score) must integrate to ~1
    # over the original axis (IWAE with many draws is nearly tight).
    rng = np.random.RandomState(0)
    x = np.concatenate([rng.normal(-2, 0.5, 300), rng.normal(2, 0.5, 300)])
    X = (x * 20 + 300)[:, None]
    vae = VAETransformer(
        n_components=1,
        hidden_layer_sizes=(32, 32),
        n_importance_samples=256,
        max_iter=150,
        random_state=0,
        device="cpu",
    ).fit(X)
    grid = np.linspace(X.min() - 60, X.max() + 60, 1500)[:, None]
    density = np.exp(vae.score_samples(grid))
    mass = np.sum(density) * (grid[1, 0] - grid[0, 0])
    assert mass == pytest.approx(1.0, abs=0.1)


def test_score_includes_the_scaling_jacobian(gaussian_table):
    X = gaussian_table
    c = 1000.0
    a = small(random_state=0).fit(X)
    b = small(random_state=0).fit(X * c)
    # Standardization makes both models identical; densities differ by c^p.
    np.testing.assert_allclose(
        b.score_samples(X * c), a.score_samples(X) - X.shape[1] * np.log(c), atol=1e-3
    )


def test_linear_vae_matches_probabilistic_pca(gaussian_table):
    # With no hidden layers the VAE is probabilistic PCA with a diagonal noise
    # model; its held-out log-likelihood must come close to PCA's exact one.
    X_train, X_test = gaussian_table[:300], gaussian_table[300:]
    vae = VAETransformer(
        n_components=2,
        hidden_layer_sizes=(),
        max_iter=300,
        learning_rate=1e-2,
        n_importance_samples=128,
        random_state=0,
        device="cpu",
    ).fit(X_train)
    ppca = PCA(n_components=2).fit(X_train)
    assert vae.score(X_test) > ppca.score(X_test) - 0.5


def test_more_importance_samples_tighten_the_bound(fitted_digits, digits_split):
    X_test = digits_split[1]
    k1 = copy.deepcopy(fitted_digits).set_params(n_importance_samples=1)
    assert fitted_digits.score(X_test) > k1.score(X_test)


# ---------------------------------------------------------------- randomness
def test_int_random_state_is_reproducible(gaussian_table):
    X = gaussian_table
    a = small(random_state=7).fit(X)
    b = small(random_state=7).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.sample(5), b.sample(5))
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    c = small(random_state=8).fit(X)
    assert not np.allclose(a.transform(X), c.transform(X))


def test_repeated_calls_are_identical(fitted_digits, digits_split):
    X = digits_split[1]
    np.testing.assert_array_equal(
        fitted_digits.score_samples(X), fitted_digits.score_samples(X)
    )
    np.testing.assert_array_equal(
        fitted_digits.transform(X), fitted_digits.transform(X)
    )


def test_sample_random_state(fitted_digits):
    a = fitted_digits.sample(4, random_state=1)
    np.testing.assert_array_equal(a, fitted_digits.sample(4, random_state=1))
    assert not np.array_equal(a, fitted_digits.sample(4, random_state=2))


def test_scores_do_not_depend_on_other_rows(fitted_digits, digits_split):
    X = digits_split[1][:50]
    full = fitted_digits.score_samples(X)
    one_by_one = np.array([fitted_digits.score_samples(row[None])[0] for row in X])
    np.testing.assert_allclose(full, one_by_one, rtol=1e-5)
    perm = np.random.RandomState(0).permutation(50)
    np.testing.assert_allclose(fitted_digits.score_samples(X[perm]), full[perm])


def test_scores_are_computed_in_bounded_chunks(
    fitted_digits, digits_split, monkeypatch
):
    from skvae import _chunks

    X = digits_split[1][:100]
    whole = fitted_digits.score_samples(X)
    monkeypatch.setattr(_chunks, "CHUNK_ELEMENTS", 32 * 256 * 7)
    assert _chunks.rows_per_chunk(fitted_digits.module_.row_width, 32) == 7
    np.testing.assert_allclose(fitted_digits.score_samples(X), whole, rtol=1e-5)


def test_global_torch_and_numpy_state_untouched(gaussian_table):
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    threads = torch.get_num_threads()
    vae = small(random_state=0).fit(gaussian_table)
    vae.score_samples(gaussian_table)
    vae.sample(3)
    assert torch.equal(torch_state, torch.get_rng_state())
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])
    assert torch.get_num_threads() == threads


# ---------------------------------------------------------------- training
def test_early_stopping_restores_best_weights(digits_split):
    X = digits_split[0]
    vae = VAETransformer(
        n_components=4,
        hidden_layer_sizes=(64,),
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=500,
        learning_rate=1e-2,
        refit=False,
        random_state=0,
        device="cpu",
    ).fit(X)
    assert vae.n_iter_ < 500
    assert len(vae.validation_scores_) == vae.n_iter_
    assert vae.best_validation_score_ == max(vae.validation_scores_)
    best_epoch = int(np.argmax(vae.validation_scores_))
    assert best_epoch == vae.n_iter_ - 1 - 3  # stopped after 3 epochs of patience


def test_stopping_on_training_loss_plateau(gaussian_table):
    vae = small(
        max_iter=1000, tol=1.0, n_iter_no_change=2, early_stopping=False, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        vae.fit(gaussian_table)
    assert vae.n_iter_ < 1000
    assert vae.validation_scores_ is None


def test_convergence_warning_when_max_iter_reached(gaussian_table):
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        small(max_iter=12, n_iter_no_change=10, tol=0.0).fit(gaussian_table)


def test_no_convergence_warning_for_a_fixed_number_of_epochs(gaussian_table):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        vae = small(max_iter=3, n_iter_no_change=3).fit(gaussian_table)
    assert vae.n_iter_ == 3


def test_kl_warmup_runs(gaussian_table):
    from skvae._training import kl_weight

    assert [kl_weight(2.0, 4, e) for e in range(5)] == [0.5, 1.0, 1.5, 2.0, 2.0]
    vae = small(kl_warmup=3, max_iter=4, random_state=0).fit(gaussian_table)
    assert vae.n_iter_ == 4


def test_partial_fit_continues(gaussian_table):
    X = gaussian_table
    vae = small(batch_size=128, random_state=0)
    for _ in range(3):
        vae.partial_fit(X[:200])
    assert vae.n_iter_ == 3
    assert len(vae.loss_curve_) == 3
    state = vae._train_state.optimizer.state_dict()["state"]
    assert state
    assert int(state[0]["step"]) == 3 * 2
    vae.partial_fit(X[200:])
    assert vae.n_iter_ == 4
    with pytest.raises(ValueError, match="features"):
        vae.partial_fit(X[:, :3])


def test_single_row_and_small_batches_train(gaussian_table):
    vae = small(batch_size=1000).fit(gaussian_table[:1])
    assert vae.n_iter_ >= 1
    assert np.isfinite(vae.score_samples(gaussian_table[:3])).all()
    vae = small(batch_size=1000).fit(gaussian_table[:10])
    assert np.isfinite(vae.loss_curve_).all()


@pytest.mark.parametrize(
    ("n_rows", "expected"),
    [(1, 1), (50, 50), (640, 64), (3000, 300), (10**6, 512)],
)
def test_auto_batch_size(n_rows, expected):
    """About 10 minibatches per epoch, 64 to 512 rows, never more than n_rows."""
    assert batch_size("auto", n_rows) == expected
    assert batch_size(100, n_rows) == min(100, n_rows)


def test_batch_size_rejects_other_strings(gaussian_table):
    with pytest.raises(ValueError, match="batch_size"):
        small(batch_size="big").fit(gaussian_table)


def test_early_stopping_needs_two_rows(gaussian_table):
    with pytest.raises(ValueError, match="n_samples = 1"):
        small(early_stopping=True).fit(gaussian_table[:1])


def test_divergence_raises_clear_error(gaussian_table):
    X = gaussian_table.copy()
    X[0] = 1e30  # after standardization: one row ~ 20 std away, plus a huge lr
    with pytest.raises(FloatingPointError, match="diverged"):
        small(learning_rate=1e12, max_iter=30, random_state=0).fit(X)


def test_posterior_collapse_warns(gaussian_table):
    with pytest.warns(PosteriorCollapseWarning, match="collapse"):
        small(beta=500.0, max_iter=20, random_state=0).fit(gaussian_table)


def test_verbose_progress_bar(gaussian_table, capsys):
    small(verbose=1, max_iter=3).fit(gaussian_table)
    err = capsys.readouterr().err
    assert "loss" in err
    assert "3/3" in err
    small(verbose=0, max_iter=3).fit(gaussian_table)
    assert capsys.readouterr() == ("", "")


def test_verbose_shows_validation(gaussian_table, capsys):
    small(verbose=1, max_iter=2, early_stopping=True).fit(gaussian_table)
    assert "validation=" in capsys.readouterr().err


# ---------------------------------------------------------------- likelihoods
def test_auto_likelihood_never_guesses_bernoulli_from_values(gaussian_table):
    """A numeric column that took only 0 and 1 in fit accepts any value later."""
    X = gaussian_table[:, :3].copy()
    X[:, 1] = X[:, 1] > np.median(X[:, 1])
    vae = small().fit(X)
    assert vae.column_likelihoods_.tolist() == ["gaussian"] * 3
    X_new = X[:5].copy()
    X_new[:, 1] = [0.5, 2.0, -1.0, 16.0, 1.0]
    assert np.isfinite(vae.transform(X_new)).all()
    scores = vae.score_samples(X_new)
    assert np.isfinite(scores).all()
    assert scores[3] < scores[4]  # far out of range: a low likelihood
    forced = small(likelihood={1: "bernoulli"}).fit(X)
    assert forced.column_likelihoods_.tolist() == ["gaussian", "bernoulli", "gaussian"]
    assert set(np.unique(forced.sample(50)[:, 1])) <= {0.0, 1.0}


def test_default_transformer_on_raw_digits_any_split():
    """Pixels that happen to be 0/16 in a training split are not binary."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    for seed in range(3):
        X_train, X_test = train_test_split(X / 16, test_size=0.3, random_state=seed)
        vae = small(max_iter=2, n_iter_no_change=2).fit(X_train)
        assert set(vae.column_likelihoods_) == {"gaussian"}
        assert vae.transform(X_test).shape == (len(X_test), 2)


def test_bernoulli_images(digits_split):
    X = digits_split[0][:300]
    vae = small(likelihood="bernoulli", max_iter=3).fit(X)
    means = vae.sample(5, return_mean=True)
    assert ((means > 0) & (means < 1)).all()
    draws = vae.sample(5)
    assert set(np.unique(draws)) <= {0.0, 1.0}
    assert np.isfinite(vae.score_samples(X)).all()


def test_constant_columns_stay_bounded(digits_split):
    # load_digits has blank border pixels: the variance floor bounds them.
    X = digits_split[0][:300]
    assert (X.std(0) == 0).any()
    # One variance per pixel (image-like data are staged by default).
    vae = small(max_iter=20, min_variance=1e-3, gaussian_variance="feature").fit(X)
    var = vae.module_.likelihoods[0].variance().detach().numpy()
    assert var.min() >= 1e-3
    assert np.isfinite(vae.score_samples(X)).all()


# ---------------------------------------------------------------- missing values
def test_missing_values_are_marginalised(gaussian_table):
    X = gaussian_table.copy()
    rng = np.random.RandomState(0)
    X[rng.rand(*X.shape) < 0.2] = np.nan
    vae = small(random_state=0).fit(X)
    assert vae.module_.mask_channel
    assert np.isfinite(vae.transform(X)).all()
    scores = vae.score_samples(X)
    assert np.isfinite(scores).all()
    # A row's score is the density of its observed entries alone: rescaling
    # column 2 by 1000 shifts the score by -log 1000 where it is observed and
    # leaves rows where it is missing untouched (no likelihood, no Jacobian).
    X_scaled = X.copy()
    X_scaled[:, 2] *= 1000.0
    scaled = small(random_state=0).fit(X_scaled).score_samples(X_scaled)
    missing = np.isnan(X[:, 2])
    assert missing.any()
    assert (~missing).any()
    np.testing.assert_allclose(scaled[missing], scores[missing], atol=1e-3)
    np.testing.assert_allclose(
        scaled[~missing], scores[~missing] - np.log(1000.0), atol=1e-3
    )
    # An all-missing row has log p = log 1 = 0 up to importance-sampling noise.
    empty = np.full((1, X.shape[1]), np.nan)
    assert abs(vae.score_samples(empty)[0]) < 0.5


def test_complete_data_has_no_mask_channel(gaussian_table):
    vae = small().fit(gaussian_table)
    assert not vae.module_.mask_channel
    X = gaussian_table[:5].copy()
    X[0, 0] = np.nan
    assert np.isfinite(vae.transform(X)).all()
    assert np.isfinite(vae.score_samples(X)).all()


def test_module_likelihood_ignores_masked_entries():
    from skvae._likelihoods import BernoulliLikelihood, GaussianLikelihood
    from skvae._module import build_module

    module = build_module(
        [GaussianLikelihood(3), BernoulliLikelihood(2)],
        n_components=2,
        mask_channel=True,
        generator=torch.Generator().manual_seed(0),
    )
    x = torch.rand(4, 5)
    mask = torch.ones(4, 5)
    mask[:, [1, 4]] = 0
    params = module.generative(torch.randn(4, 2))
    other = x.clone()
    other[:, [1, 4]] = torch.rand(4, 2)
    likelihoods = module.likelihoods
    torch.testing.assert_close(
        likelihoods.log_prob_sum(params, x, mask),
        likelihoods.log_prob_sum(params, other, mask),
    )
    full = likelihoods.log_prob(params, x)
    torch.testing.assert_close(likelihoods.log_prob_sum(params, x), full.sum(-1))


# ---------------------------------------------------------------- persistence
@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_persistence_round_trip(gaussian_table, tmp_path, dump):
    X = gaussian_table
    vae = small(random_state=0).fit(X)
    path = tmp_path / "vae.bin"
    if dump == "pickle":
        path.write_bytes(pickle.dumps(vae))
        loaded = pickle.loads(path.read_bytes())
    else:
        joblib.dump(vae, path)
        loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.transform(X), vae.transform(X))
    np.testing.assert_array_equal(loaded.score_samples(X), vae.score_samples(X))
    np.testing.assert_array_equal(loaded.sample(3), vae.sample(3))


def test_clone_and_params():
    vae = VAETransformer(n_components=3, beta=0.5, hidden_layer_sizes=(8, 4))
    twin = clone(vae)
    assert twin.get_params() == vae.get_params()
    twin.set_params(n_components=5)
    assert twin.n_components == 5
    assert vae.n_components == 3


# ---------------------------------------------------------------- errors
def test_not_fitted():
    vae = VAETransformer()
    for method in ("transform", "score_samples", "score"):
        with pytest.raises(NotFittedError):
            getattr(vae, method)(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        vae.sample(2)
    with pytest.raises(NotFittedError):
        vae.inverse_transform(np.zeros((2, 8)))


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.array([[1.0, np.inf], [2.0, 3.0]]), "infinity"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert"),
        (np.zeros((0, 3)), "0 sample"),
        (np.zeros(5), "2D array"),
        (np.array([[1e39, 1.0], [2.0, 3.0]]), "too large for float32"),
    ],
)
def test_bad_training_input(X, match):
    with pytest.raises(ValueError, match=match):
        small().fit(X)


def test_bad_input_after_fit(gaussian_table):
    vae = small().fit(gaussian_table)
    with pytest.raises(ValueError, match="features"):
        vae.transform(gaussian_table[:, :4])
    with pytest.raises(ValueError, match="infinity"):
        vae.score_samples(np.full((1, 6), np.inf))
    with pytest.raises(ValueError, match="too large for float32"):
        vae.transform(np.full((1, 6), 1e300))
    with pytest.raises(ValueError, match="has 2 latent components"):
        vae.inverse_transform(np.zeros((3, 4)))
    for n in (0, -1):
        with pytest.raises(ValueError, match="n_samples must be >= 1"):
            vae.sample(n)
    with pytest.raises(ValueError, match="must be an int"):
        vae.sample(2.5)
    with pytest.raises(ValueError, match="conditional"):
        vae.sample(2, y=[0, 1])


def test_bernoulli_range_checked(gaussian_table):
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        small(likelihood="bernoulli").fit(gaussian_table)
    X = (gaussian_table[:, :2] > 0).astype(float)
    vae = small(likelihood="bernoulli").fit(X)
    with pytest.raises(ValueError, match=r"column\(s\) \[0, 1\]"):
        vae.transform(X + 1)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_components": 0}, "n_components"),
        ({"beta": -1.0}, "beta"),
        ({"activation": "sigmoidish"}, "activation"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
        ({"likelihood": {"nope": "gaussian"}}, "unknown column 'nope'"),
        ({"likelihood": {0: "poisson"}}, "poisson"),
        ({"device": "tpu:0"}, "device"),
    ],
)
def test_invalid_parameters(params, match, gaussian_table):
    # sklearn's InvalidParameterError is a ValueError.
    with pytest.raises(ValueError, match=match):
        small(**params).fit(gaussian_table)


def test_cuda_unavailable_is_a_clear_error(gaussian_table):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        small(device="cuda").fit(gaussian_table)
