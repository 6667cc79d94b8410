"""Trainable parameters as views of one buffer while an optimizer runs.

A small network's training step is bound by the number of kernels it
launches, not by arithmetic: Adam, gradient clipping and the weight average
each touch every parameter tensor. :func:`flat_parameters` lays the
parameters (and their gradients) out as views of one contiguous buffer for
the duration of a training run, so that each of those updates is one kernel
over one tensor, and moves the optimizer's per-parameter state into that
layout and back. Outside the context the parameters own their storage again
and the optimizer's state is per parameter, as PyTorch lays it out. Torch
only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

#: Networks with at most this many trainable values train on a flat buffer
#: (a table's network: its steps are bound by kernel launches). Larger ones,
#: bound by arithmetic and memory traffic, keep one tensor per parameter.
FLAT_MAX_VALUES = 1 << 19


def can_flatten(params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``params`` train on one buffer with ``optimizer``.

    They must share a dtype and a device, be small (:data:`FLAT_MAX_VALUES`),
    form the optimizer's only parameter group, and carry optimizer state for
    all or none of them with one step count.
    """
    if not params or sum(p.numel() for p in params) > FLAT_MAX_VALUES:
        return False
    if len({(p.dtype, p.device) for p in params}) != 1:
        return False
    groups = optimizer.param_groups
    if len(groups) != 1 or len(groups[0]["params"]) != len(params):
        return False
    if any(a is not b for a, b in zip(groups[0]["params"], params, strict=True)):
        return False
    states = [optimizer.state.get(p) for p in params]
    if all(not s for s in states):
        return True
    if not all(states):
        return False
    steps = {float(s["step"]) for s in states}
    return len(steps) == 1


@dataclass
class Weights:
    """The tensors a training step clips and averages.

    ``tensors`` are the parameters themselves, or one flat parameter whose
    views they are (``flat``); then their gradients are views too and must
    be zeroed in place, not set to None.
    """

    tensors: list[torch.Tensor]
    flat: bool = False


@contextmanager
def flat_parameters(
    params: list[torch.Tensor], optimizer: torch.optim.Optimizer
) -> Iterator[Weights]:
    """Train ``params`` as views of one buffer; yields the :class:`Weights`.

    Inside the context every parameter's data and gradient are views of one
    flat parameter, which the optimizer updates in its place; gradients
    accumulate into the views, so they must be zeroed in place
    (``optimizer.zero_grad(set_to_none=False)``). The yielded weights hold
    the flat parameter alone, or ``params`` themselves when
    :func:`can_flatten` says no. On exit each parameter gets
    its own storage back, with the values the run left, and the optimizer
    its per-parameter state.
    """
    if not can_flatten(params, optimizer):
        yield Weights(params)
        return
    flat = _flatten(params, optimizer)
    try:
        yield Weights([flat], flat=True)
    finally:
        _unflatten(params, optimizer, flat)


@torch.no_grad()
def _flatten(params: list[torch.Tensor], optimizer) -> torch.nn.Parameter:
    values = torch.cat([p.detach().reshape(-1) for p in params])
    flat = torch.nn.Parameter(values)
    flat.grad = torch.zeros_like(values)
    views = zip(params, _views(flat, params), _views(flat.grad, params), strict=True)
    for p, data, grad in views:
        p.data = data
        p.grad = grad
    states = [optimizer.state.pop(p, None) for p in params]
    if all(states):
        state = {"step": states[0]["step"]}
        for key in states[0]:
            if key != "step":
                state[key] = torch.cat([s[key].reshape(-1) for s in states])
        optimizer.state[flat] = state
    optimizer.param_groups[0]["params"] = [flat]
    return flat


@torch.no_grad()
def _unflatten(params: list[torch.Tensor], optimizer, flat) -> None:
    for p, data in zip(params, _views(flat.detach(), params), strict=True):
        p.data = data.clone()
        p.grad = None
    state = optimizer.state.pop(flat, None)
    optimizer.param_groups[0]["params"] = list(params)
    if state:
        step = state.pop("step")
        split = {k: _views(v, params) for k, v in state.items()}
        for i, p in enumerate(params):
            own = {k: views[i].clone() for k, views in split.items()}
            own_step = step.clone() if isinstance(step, torch.Tensor) else step
            optimizer.state[p] = {"step": own_step, **own}


def _views(buffer: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Views of flat ``buffer`` shaped as each of ``params``, in order."""
    out, offset = [], 0
    for p in params:
        n = p.numel()
        out.append(buffer[offset : offset + n].view_as(p))
        offset += n
    return out
