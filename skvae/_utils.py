"""Small helpers, and the only place that imports private sklearn names."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, MissingValues, StrOptions
from sklearn.utils.validation import _check_feature_names, _check_feature_names_in

__all__ = [
    "Interval",
    "MissingValues",
    "StrOptions",
    "_check_feature_names",
    "_check_feature_names_in",
    "_fit_context",
    "draw_seeds",
    "resolve_device",
]


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``... into a device.

    Raises
    ------
    ValueError
        If the string is not a device name, or names a CUDA device that this
        machine does not have.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device.") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available; "
                "use device='cpu' or 'auto'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA "
                "device(s) are visible."
            )
    elif dev.type not in {"cpu", "mps"}:
        raise ValueError(f"device={device!r} is not supported.")
    return dev


def draw_seeds(random_state, n: int) -> list[int]:
    """``n`` independent int seeds from an sklearn-style ``random_state``."""
    rng = check_random_state(random_state)
    return [int(s) for s in rng.randint(np.iinfo(np.int32).max, size=n)]
