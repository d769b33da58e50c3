"""Shared fixtures for the whole suite.

minigrad keeps its global flags in ``minigrad.modes``; every test here starts from the flags
it found and leaves them so, even when it fails half-way through a ``set_training(False)``.
"""
import pytest

from minigrad import modes

FLAGS = ("training", "anomaly", "trace")   # process-wide; grad mode is per thread


@pytest.fixture(autouse=True)
def restore_modes():
    """Put every flag back after each test, so no test can leak a mode into the next."""
    saved = {name: getattr(modes, name) for name in FLAGS}
    grad_enabled = modes.local.grad_enabled
    yield
    for name, value in saved.items():
        setattr(modes, name, value)
    modes.local.grad_enabled = grad_enabled
