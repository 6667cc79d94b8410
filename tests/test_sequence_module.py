"""The sequence VAE's torch module, trained by the shared training loop."""

import math

import pytest
import torch

from skvae._sequence import EOS, PAD, build_sequence_module
from skvae._training import TrainData, TrainPlan, train

T = 12


def _toy_text(n=600, seed=0):
    """Strings 'abab...' or 'cdcd...' (ids 4-7) of random length, then EOS."""
    gen = torch.Generator().manual_seed(seed)
    x, mask = torch.zeros(n, T), torch.zeros(n, T)
    for i in range(n):
        length = int(torch.randint(3, T, (1,), generator=gen))
        pair = (4, 5) if i % 2 == 0 else (6, 7)
        steps = [pair[j % 2] for j in range(length - 1)] + [EOS]
        x[i, :length] = torch.tensor(steps, dtype=torch.float)
        mask[i, :length] = 1.0
    return x, mask


def _text_module(**kw):
    kw = {"n_tokens": 8, "hidden_size": 32, **kw}
    return build_sequence_module(4, T, generator=torch.Generator().manual_seed(0), **kw)


@pytest.fixture(scope="module")
def trained():
    x, mask = _toy_text()
    module = _text_module()
    plan = TrainPlan(max_iter=40, batch_size=64, learning_rate=3e-3)
    train(module, TrainData(x, mask), plan)
    module.eval()
    return module, x, mask


def test_padding_is_never_read():
    module = _text_module()
    module.eval()
    x, mask = _toy_text(20)
    garbage = torch.where(mask > 0, x, torch.full_like(x, 5.0))
    for a, b in zip(
        module.inference(x, mask), module.inference(garbage, mask), strict=True
    ):
        torch.testing.assert_close(a, b)
    noise = torch.randn(20, 4)
    for a, b in zip(
        module.loss_terms(x, mask, noise),
        module.loss_terms(garbage, mask, noise),
        strict=True,
    ):
        torch.testing.assert_close(a, b)


def test_word_dropout_comes_from_the_noise_and_only_in_training():
    module = _text_module(word_dropout=0.3)
    x, mask = _toy_text(200)
    noise = torch.randn(
        200, module.noise_width, generator=torch.Generator().manual_seed(1)
    )
    module.train()
    hide = module._hide(noise[:, 4:], x.shape)
    assert abs(float(hide.float().mean()) - 0.3) < 0.03
    first = module.loss_terms(x, mask, noise)
    torch.testing.assert_close(first, module.loss_terms(x, mask, noise))
    module.eval()
    assert module._hide(noise[:, 4:], x.shape) is None


def test_inputless_decoder_never_sees_the_previous_steps():
    module = _text_module(word_dropout=1.0)
    x, mask = _toy_text(50)
    module.eval()
    assert bool(module._hide(None, x.shape).all())
    # Scores do not depend on the previous tokens beyond the current one:
    # changing one token changes only that step's term.
    z = torch.zeros(50, module.n_components)
    with torch.no_grad():
        base = module.decode_outputs(z, x, mask, module._hide(None, x.shape))
        other = x.clone()
        other[:, 0] = (other[:, 0] + 1) % module.n_tokens
        changed = module.decode_outputs(z, other, mask, module._hide(None, x.shape))
    torch.testing.assert_close(base, changed)
    steps, _ = module.generate(z[:3])
    assert steps.shape == (3, module.max_length)


def test_free_bits_floor_each_component_in_training_only():
    module = _text_module(free_bits=0.5)
    x, mask = _toy_text(50)
    noise = torch.randn(50, 4)
    module.train()
    _, kl_train = module.loss_terms(x, mask, noise)
    module.eval()
    _, kl_eval = module.loss_terms(x, mask, noise)
    assert bool((kl_train >= 4 * 0.5 - 1e-6).all())
    assert bool((kl_train >= kl_eval - 1e-6).all())


def test_importance_weights_bound_the_elbo(trained):
    module, x, mask = trained
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        log_w, _ = module.log_weights(
            x[:50], mask[:50], torch.randn(64, 4, generator=gen)
        )
    iwae = torch.logsumexp(log_w, 0) - math.log(64)
    elbo = log_w.mean(0)
    assert float(iwae.mean()) >= float(elbo.mean())
    assert bool(torch.isfinite(iwae).all())


def test_the_latent_carries_what_the_decoder_needs(trained):
    module, x, mask = trained
    with torch.no_grad():
        loc, _ = module.inference(x, mask)
        out, out_mask = module.generate(loc)
    # The first token (which of the two alphabets) comes from z alone.
    assert float((out[:, 0] == x[:, 0].long()).float().mean()) > 0.9
    assert bool((out[out_mask == 0] == PAD).all())
    gen = torch.Generator().manual_seed(3)
    draws, _ = module.generate(loc[:10], generator=gen)
    again, _ = module.generate(loc[:10], generator=torch.Generator().manual_seed(3))
    assert torch.equal(draws, again)


def _series_module(n_components, steps, n_channels, hidden_size, linear_path=True):
    return build_sequence_module(
        n_components,
        steps,
        n_channels=n_channels,
        hidden_size=hidden_size,
        linear_path=linear_path,
        generator=torch.Generator().manual_seed(0),
    )


@pytest.mark.parametrize("linear_path", [False, True])
def test_series_missing_steps_are_not_scored(linear_path):
    module = _series_module(2, 30, 2, 16, linear_path)
    module.eval()
    x = torch.randn(8, 30, 2)
    mask = torch.ones_like(x)
    mask[:, 10:15] = 0.0
    other = x.clone()
    other[:, 10:15] = 100.0
    noise = torch.randn(8, 2)
    torch.testing.assert_close(
        module.loss_terms(x, mask, noise), module.loss_terms(other, mask, noise)
    )
    values, step_mask = module.generate(torch.zeros(3, 2))
    assert values.shape == (3, 30, 2)
    assert bool((step_mask == 1).all())


def test_linear_path_is_for_series_and_starts_at_zero():
    assert not _text_module(linear_path=True).linear_path
    module = _series_module(3, 10, 2, 8)
    assert module.linear_encoder.weight.shape == (6, 20)
    assert module.linear_decoder.weight.shape == (20, 3)
    for layer in (module.linear_encoder, module.linear_decoder):
        assert not any(bool(w.any()) for w in layer.parameters())


def test_linear_path_recovers_linear_factors():
    """Series made of two fixed shapes: the codes carry both coefficients."""
    gen = torch.Generator().manual_seed(0)
    steps = torch.linspace(0.0, 1.0, 24)
    shapes = torch.stack([torch.sin(6.0 * steps), (steps - 0.5) ** 2 * 4.0])
    factors = torch.randn(300, 2, generator=gen)
    x = (factors @ shapes + 0.05 * torch.randn(300, 24, generator=gen))[..., None]
    mask = torch.ones_like(x)
    module = _series_module(2, 24, 1, 16)
    train(
        module,
        TrainData(x, mask),
        TrainPlan(max_iter=30, batch_size=64, learning_rate=3e-3),
    )
    module.eval()
    with torch.no_grad():
        loc, _ = module.inference(x, mask)
    design = torch.cat([loc, torch.ones(300, 1)], dim=1).double()
    fit = torch.linalg.lstsq(design, factors.double()).solution
    residual = factors.double() - design @ fit
    r2 = 1.0 - residual.square().sum(0) / (factors - factors.mean(0)).square().sum(0)
    assert float(r2.min()) > 0.95


def test_linear_path_weights_decay_alone(monkeypatch):
    """Decoupled weight decay shrinks the linear path after every step."""
    import skvae._sequence as sequence

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 10, 1, generator=gen)
    mask = torch.ones_like(x)
    plan = TrainPlan(max_iter=3, batch_size=16, learning_rate=1e-2)
    assert _text_module().decayed_parameters() == ([], 0.0)
    module = _series_module(2, 10, 1, 8)
    tensors, rate = module.decayed_parameters()
    assert rate == sequence.LINEAR_PATH_DECAY > 0
    linear = [*module.linear_encoder.parameters(), *module.linear_decoder.parameters()]
    assert {id(t) for t in tensors} == {id(p) for p in linear}
    # At a rate of 1 / learning_rate each step's shrink factor is 0: the
    # linear maps end at zero while the LSTMs train.
    monkeypatch.setattr(sequence, "LINEAR_PATH_DECAY", 1.0 / plan.learning_rate)
    lstm = [p.detach().clone() for p in module.decoder.parameters()]
    train(module, TrainData(x, mask), plan)
    assert not any(bool(p.any()) for p in linear)
    assert any(
        not torch.equal(p, q)
        for p, q in zip(module.decoder.parameters(), lstm, strict=True)
    )
    # Without decay the same training moves the linear maps off zero.
    monkeypatch.setattr(sequence, "LINEAR_PATH_DECAY", 0.0)
    free = _series_module(2, 10, 1, 8)
    train(free, TrainData(x, mask), plan)
    assert float(free.linear_decoder.weight.abs().max()) > 1e-3
