"""Shared fixtures: small real datasets and fitted models reused across tests."""

import os
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, train_test_split

from skvae import VAETransformer


def _usable_cores():
    """CPU cores this process may run on (its affinity mask, where known)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _worker_cores():
    """This process's share of the cores (all of them outside pytest-xdist)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, _usable_cores() // workers)


def pytest_configure(config):
    """Share the cores among pytest-xdist's workers: one torch pool each.

    Every worker would otherwise start one thread per core, and threads of
    different workers fighting over the same cores slow every fit.
    """
    if _worker_cores() < _usable_cores():
        torch.set_num_threads(_worker_cores())


@pytest.fixture(scope="session")
def cores():
    """(this process's cores, the machine's usable cores)."""
    return _worker_cores(), _usable_cores()


def _devices():
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


@pytest.fixture(params=_devices())
def device(request):
    """Every test using it runs on the CPU, and on CUDA when there is one."""
    return request.param


@pytest.fixture(scope="session")
def digits_split():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="session")
def fitted_digits(digits_split):
    """An 8-d VAE trained on 70% of load_digits (pixels in [0, 1])."""
    X_train = digits_split[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = VAETransformer(
            n_components=8,
            max_iter=60,
            early_stopping=False,
            random_state=0,
            device="cpu",
        )
        return vae.fit(X_train)


@pytest.fixture(scope="session")
def gaussian_table():
    """400 x 6 table from a 2-factor linear model, in mixed units."""
    rng = np.random.RandomState(0)
    Z = rng.normal(size=(400, 2))
    W = rng.normal(size=(2, 6))
    X = Z @ W + 0.3 * rng.normal(size=(400, 6))
    return X * np.array([1, 10, 100, 0.1, 1, 5]) + np.array([0, 5, -50, 2, 1, 0])


def _code_accuracy(models: dict, X, y) -> dict:
    """Mean 3-fold logistic-regression accuracy on each model's codes of X."""
    clf = LogisticRegression(max_iter=3000)
    return {
        name: cross_val_score(clf, model.transform(X), y, cv=3).mean()
        for name, model in models.items()
    }


@pytest.fixture(scope="session")
def code_accuracy():
    """How well a linear classifier reads the classes from models' codes."""
    return _code_accuracy
