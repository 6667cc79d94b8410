"""The training step's parameter updates: flat buffer, clipping, weight average."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

import skvae._flat as flat_module
from skvae import VAETransformer
from skvae._flat import can_flatten, flat_parameters
from skvae._likelihoods import GaussianLikelihood
from skvae._module import build_module
from skvae._training import (
    AVERAGE_EVERY,
    TrainData,
    TrainPlan,
    clip_gradients,
    run_epoch,
)


@pytest.fixture(scope="module")
def X():
    return load_breast_cancer().data[:300]


def _fit(X, monkeypatch, limit, **params):
    monkeypatch.setattr(flat_module, "FLAT_MAX_VALUES", limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VAETransformer(random_state=0, **params).fit(X)


def _max_difference(a, b):
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


def test_flat_training_matches_per_tensor_training(X, monkeypatch):
    flat = _fit(X, monkeypatch, 1 << 19, max_iter=8, n_iter_no_change=8)
    per_tensor = _fit(X, monkeypatch, 0, max_iter=8, n_iter_no_change=8)
    # Adam's update is elementwise; only the clipping norm's summation order
    # differs (float32 rounding).
    assert _max_difference(flat, per_tensor) < 1e-4
    np.testing.assert_allclose(flat.score(X), per_tensor.score(X), rtol=1e-5)


def test_parameters_own_their_storage_after_fit(X, monkeypatch):
    est = _fit(X, monkeypatch, 1 << 19, max_iter=3, n_iter_no_change=3)
    params = list(est.module_.parameters())
    storages = {p.untyped_storage().data_ptr() for p in params}
    assert len(storages) == len(params)
    assert all(p.grad is None for p in params)
    assert all(p.is_contiguous() for p in params)


def test_partial_fit_keeps_per_parameter_optimizer_state(X, monkeypatch):
    monkeypatch.setattr(flat_module, "FLAT_MAX_VALUES", 1 << 19)
    flat = VAETransformer(batch_size=100, random_state=0)
    for _ in range(3):
        flat.partial_fit(X)
    optimizer = flat._train_state.optimizer
    params = list(flat.module_.parameters())
    assert optimizer.param_groups[0]["params"] == params
    for p in params:
        state = optimizer.state[p]
        assert state["exp_avg"].shape == p.shape
        assert float(state["step"]) == 3 * 3  # 3 epochs of 3 minibatches
    monkeypatch.setattr(flat_module, "FLAT_MAX_VALUES", 0)
    per_tensor = VAETransformer(batch_size=100, random_state=0)
    for _ in range(3):
        per_tensor.partial_fit(X)
    assert _max_difference(flat, per_tensor) < 1e-4


def test_flat_views_update_the_module_and_come_back():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    params = list(net.parameters())
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.Adam(params, lr=0.1)
    x = torch.randn(5, 3)
    with flat_parameters(params, optimizer) as weights:
        assert weights.flat
        assert len(weights.tensors) == 1
        assert weights.tensors[0].numel() == sum(p.numel() for p in params)
        net(x).square().sum().backward()
        # Gradients accumulated into views of the flat gradient.
        assert weights.tensors[0].grad.abs().sum() > 0
        optimizer.step()
    moved = [not torch.equal(b, p) for b, p in zip(before, params, strict=True)]
    assert all(moved)
    assert set(optimizer.state) == set(params)


def test_mixed_or_large_parameters_are_left_alone():
    small = torch.nn.Linear(3, 4)
    small.bias.data = small.bias.data.double()
    params = list(small.parameters())
    optimizer = torch.optim.Adam(params)
    assert not can_flatten(params, optimizer)
    with flat_parameters(params, optimizer) as weights:
        assert not weights.flat
        assert weights.tensors is params
    big = torch.nn.Linear(1024, 1024)
    assert not can_flatten(list(big.parameters()), torch.optim.Adam(big.parameters()))


@pytest.mark.parametrize("synchronize", [True, False])
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_clip_gradients_equals_clip_grad_norm(synchronize, scale):
    torch.manual_seed(0)
    nets = [torch.nn.Linear(6, 5) for _ in range(2)]
    for net in nets:
        net(scale * torch.randn(8, 6)).square().sum().backward()
    ours, reference = list(nets[0].parameters()), list(nets[1].parameters())
    for a, b in zip(ours, reference, strict=True):
        b.grad = a.grad.clone()
    norm = float(torch.nn.utils.clip_grad_norm_(reference, 50.0))
    assert (norm > 50.0) == (scale > 1.0)  # both the clipping and the passing case
    clip_gradients(ours, 50.0, synchronize=synchronize)
    for a, b in zip(ours, reference, strict=True):
        assert torch.equal(a.grad, b.grad)


@pytest.mark.parametrize("n_steps", [AVERAGE_EVERY, AVERAGE_EVERY - 1])
def test_weight_average_compounds_the_decays_of_its_steps(n_steps):
    # One update of the average per AVERAGE_EVERY steps and one at the
    # epoch's last step, weighted by the product of the steps' decays.
    module = build_module(
        [GaussianLikelihood(3)],
        n_components=2,
        hidden_layer_sizes=(4,),
        generator=torch.Generator().manual_seed(0),
    )
    params = [p for p in module.parameters() if p.requires_grad]
    average = [p.detach().clone() for p in params]
    start = [a.clone() for a in average]
    optimizer = torch.optim.Adam(params, lr=0.05)
    plan = TrainPlan(max_iter=1, batch_size=2, learning_rate=0.05, average_decay=0.9)
    run_epoch(
        module,
        optimizer,
        TrainData(
            torch.randn(2 * n_steps, 3, generator=torch.Generator().manual_seed(1))
        ),
        plan,
        kl_weight=1.0,
        generator=torch.Generator().manual_seed(2),
        average=average,
        average_steps=AVERAGE_EVERY,
    )
    kept = float(
        np.prod(
            [
                min(0.9, (1 + t) / (10 + t))
                for t in range(AVERAGE_EVERY, AVERAGE_EVERY + n_steps)
            ]
        )
    )
    for a, s, p in zip(average, start, params, strict=True):
        expected = s + (1.0 - kept) * (p.detach() - s)
        torch.testing.assert_close(a, expected)
        assert not torch.equal(a, p.detach())
