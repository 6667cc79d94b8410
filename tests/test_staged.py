"""Decoded variances fitted after the rest of the model (``"staged"``)."""

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_iris

from skvae import VAETransformer, load, save
from skvae._likelihoods import GaussianLikelihood

FIT = dict(max_iter=40, n_iter_no_change=40, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(X))
    return X[rows[:600]], y[rows[:600]], X[rows[600:900]]


def _gaussian(model) -> GaussianLikelihood:
    return next(
        lk
        for lk in model.module_.likelihoods.blocks
        if isinstance(lk, GaussianLikelihood)
    )


@pytest.fixture(scope="module")
def fits(digits):
    X, _, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a default fit raises no warning
        staged = VAETransformer(**FIT).fit(X)
    shared = VAETransformer(gaussian_variance="feature", **FIT).fit(X)
    rescaled = VAETransformer(**FIT).fit(X / 16)
    return staged, shared, rescaled


def test_auto_stages_image_like_matrices_only(digits, fits):
    staged, shared, _ = fits
    assert staged.gaussian_variance_ == "staged"
    assert _gaussian(staged).decoded
    assert shared.gaussian_variance_ == "feature"
    assert not _gaussian(shared).decoded
    # The decoder gained one output per pixel; nothing else changed shape.
    assert staged.module_.n_params == 2 * 64
    iris = VAETransformer(max_iter=5, random_state=0).fit(load_iris().data)
    assert iris.gaussian_variance_ == "feature"
    assert not _gaussian(iris).decoded


def test_staged_keeps_informative_codes_and_raises_the_density(
    digits, fits, code_accuracy
):
    X, y, X_test = digits
    staged, shared, _ = fits
    gain = staged.score(X_test) - shared.score(X_test)
    assert gain > 3.0, gain
    # The last phase retrains the encoder too; its codes stay as useful.
    accuracy = code_accuracy({"staged": staged, "shared": shared}, X, y)
    assert accuracy["staged"] > accuracy["shared"] - 0.05, accuracy
    # The decoded variances follow the code and stay above the pixel floor.
    block = _gaussian(staged)
    with torch.no_grad():
        z = torch.randn(
            4, staged.n_components_, generator=torch.Generator().manual_seed(0)
        )
        values = block.variance(staged.module_.generative(z))
    assert values.shape == (4, 64)
    assert bool((values >= block.floor - 1e-9).all())
    assert float(values.std(0).max()) > 0


def test_staged_does_not_depend_on_the_unit(digits, fits):
    _, _, X_test = digits
    staged, _, rescaled = fits
    np.testing.assert_allclose(
        staged.transform(X_test), rescaled.transform(X_test / 16), atol=1e-5
    )
    # log-likelihoods differ by the Jacobian of x / 16: 64 log 16 per row.
    diff = rescaled.score_samples(X_test / 16) - staged.score_samples(X_test)
    np.testing.assert_allclose(diff, 64 * np.log(16), rtol=1e-4)


def test_staged_round_trip_sample_and_partial_fit(digits, fits, tmp_path):
    X, _, X_test = digits
    staged, _, _ = fits
    save(staged, tmp_path / "staged.safetensors")
    loaded = load(tmp_path / "staged.safetensors")
    assert loaded.gaussian_variance_ == "staged"
    np.testing.assert_array_equal(
        loaded.score_samples(X_test), staged.score_samples(X_test)
    )
    np.testing.assert_array_equal(
        loaded.sample(5, random_state=1), staged.sample(5, random_state=1)
    )
    draws = staged.sample(200, random_state=0)
    assert draws.shape == (200, 64)
    assert np.isfinite(draws).all()
    # partial_fit goes on training the decoded model as a whole.
    loaded.partial_fit(X)
    assert _gaussian(loaded).decoded
    assert np.isfinite(loaded.score_samples(X_test)).all()


def test_staged_with_missing_entries_and_classes(digits):
    X, y, X_test = digits
    rng = np.random.default_rng(1)
    holes = X.copy()
    holes[rng.random(X.shape) < 0.1] = np.nan
    vae = VAETransformer(conditional=True, **FIT).fit(holes, y)
    assert vae.gaussian_variance_ == "staged"
    assert _gaussian(vae).decoded
    assert np.isfinite(vae.score_samples(holes[:50])).all()
    assert np.isfinite(vae.score_samples(X_test[:50])).all()
    assert vae.sample(3, y=[0, 1, 2], random_state=0).shape == (3, 64)
    # A first partial_fit is one pass: no stage.
    once = VAETransformer(random_state=0).partial_fit(X)
    assert once.gaussian_variance_ == "feature"
    assert not _gaussian(once).decoded


def test_staged_errors_leave_the_model_unchanged(digits, fits):
    X, _, X_test = digits
    vae = VAETransformer(
        architecture="conv", gaussian_variance="staged", max_iter=2, random_state=0
    )
    with pytest.raises(ValueError, match="architecture='conv'"):
        vae.fit(X)
    conv = VAETransformer(architecture="conv", max_iter=2, random_state=0).fit(X)
    assert conv.gaussian_variance_ == "feature"
    da = pytest.importorskip("dask.array")
    staged = fits[0]
    before = staged.score_samples(X_test)
    staged_copy = copy.deepcopy(staged)
    with pytest.raises(ValueError, match="Dask collection"):
        staged_copy.set_params(gaussian_variance="staged").fit(
            da.from_array(X, chunks=200)
        )
    np.testing.assert_array_equal(staged_copy.score_samples(X_test), before)
    with pytest.raises(ValueError, match="gaussian_variance"):
        VAETransformer(gaussian_variance="rows").fit(X)


def test_staged_beside_other_blocks_draws_no_global_numbers(digits):
    X = digits[0][:300].copy()
    X[:, 5] = (X[:, 5] > 8).astype(float)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    vae = VAETransformer(
        likelihood={5: "bernoulli"}, max_iter=10, n_iter_no_change=10, random_state=0
    ).fit(X)
    assert torch.equal(torch.rand(3), expected)
    assert vae.gaussian_variance_ == "staged"
    assert vae.column_likelihoods_[5] == "bernoulli"
    # 63 Gaussian means and variances, then one Bernoulli logit.
    assert vae.module_.n_params == 2 * 63 + 1
    assert np.isfinite(vae.score_samples(X[:20])).all()
    assert set(np.unique(vae.sample(50, random_state=0)[:, 5])) <= {0.0, 1.0}


def test_stage_keeps_its_start_when_no_epoch_improves(digits, fits):
    from skvae._staged import PATIENCE, fit_decoded_variance

    X, _, _ = digits
    shared = fits[1]
    module = copy.deepcopy(shared.module_)
    x, mask = shared._fitted.encode(X)
    block = _gaussian(shared)
    floor = torch.full((64,), 1e-6)
    kw = dict(floor=floor, batch_size=100, seed=0)
    # With no step size nothing improves: patience ends the three phases, and
    # the head is its start, the shared variances, for every code.
    n_epochs = fit_decoded_variance(module, x, mask, None, learning_rate=0.0, **kw)
    assert n_epochs == 3 * PATIENCE
    with torch.no_grad():
        z = torch.randn(
            5, shared.n_components_, generator=torch.Generator().manual_seed(0)
        )
        decoded = module.likelihoods.blocks[0].variance(module.generative(z))
        np.testing.assert_allclose(
            decoded.numpy(), block.variance().expand(5, -1).numpy(), rtol=1e-5
        )
        # ... the means are those of the shared-variance decoder, and the
        # codes those of its encoder.
        np.testing.assert_array_equal(
            module.generative(z)[:, :64].numpy(),
            shared.module_.generative(z).numpy(),
        )
        np.testing.assert_array_equal(
            module.inference(x)[0].numpy(), shared.module_.inference(x)[0].numpy()
        )
    again = copy.deepcopy(shared.module_)
    assert (
        fit_decoded_variance(
            again, x, mask, None, learning_rate=1e-3, max_epochs=3, **kw
        )
        == 3 * 3
    )
    # A decoded block cannot be staged again.
    with pytest.raises(ValueError, match="shared-variance Gaussian block"):
        fit_decoded_variance(again, x, mask, None, learning_rate=1e-3, **kw)


def test_stage_refits_an_undertrained_model(digits):
    from skvae._staged import fit_decoded_variance

    X, _, X_test = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # five epochs are too few on purpose
        shared = VAETransformer(
            gaussian_variance="feature", max_iter=5, random_state=0
        ).fit(X)
    module = copy.deepcopy(shared.module_)
    x, mask = shared._fitted.encode(X)
    fit_decoded_variance(
        module,
        x,
        mask,
        None,
        floor=torch.full((64,), 1e-6),
        batch_size=100,
        learning_rate=2e-3,
        seed=0,
    )
    x_test, _ = shared._fitted.encode(X_test)
    noise = torch.randn(
        len(X_test), shared.n_components_, generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        loc_before, _ = shared.module_.inference(x_test)
        loc_after, _ = module.inference(x_test)
        fit_before = shared.module_.likelihoods.log_prob_sum(
            shared.module_.generative(loc_before), x_test
        )
        fit_after = module.likelihoods.log_prob_sum(
            module.generative(loc_after), x_test
        )
        means_before = shared.module_.generative(loc_before)[:, :64]
        means_after = module.generative(loc_after)[:, :64]
        elbo_before = -sum(shared.module_.loss_terms(x_test, None, noise))
        elbo_after = -sum(module.loss_terms(x_test, None, noise))
    # The decoder's phase moved the means, the last phase the codes, and most
    # new rows fit better at their codes (decoded variances make a few
    # unusual rows fit worse).
    assert float((means_after - means_before).abs().max()) > 1e-2
    assert float((loc_after - loc_before).abs().max()) > 1e-2
    gain = float(fit_after.median() - fit_before.median())
    assert gain > 3.0, gain
    # So did most new rows' ELBO.
    assert float(elbo_after.median() - elbo_before.median()) > 3.0


def test_verbose_shows_each_phase_and_changes_nothing(digits, capsys):
    X, _, X_test = digits
    loud = VAETransformer(verbose=1, max_iter=10, n_iter_no_change=10, random_state=0)
    loud.fit(X)
    err = capsys.readouterr().err
    for phase in ("variances", "decoder", "model"):
        assert f"skvae stage: {phase}" in err
    assert "held_out=" in err
    quiet = VAETransformer(max_iter=10, n_iter_no_change=10, random_state=0).fit(X)
    assert "skvae stage" not in capsys.readouterr().err
    np.testing.assert_array_equal(loud.transform(X_test), quiet.transform(X_test))
    np.testing.assert_array_equal(
        loud.score_samples(X_test), quiet.score_samples(X_test)
    )
