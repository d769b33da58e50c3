"""Shared fixtures for the whole suite.

minigrad keeps its global flags in ``minigrad.modes``; every test here starts from the flags
it found and leaves them so, even when it fails half-way through a ``set_training(False)``.
"""
import pytest

from minigrad import modes

FLAGS = ("grad_enabled", "training", "anomaly", "trace")


@pytest.fixture(autouse=True)
def restore_modes():
    """Put every global flag back after each test, so no test can leak a mode into the next."""
    saved = {name: getattr(modes, name) for name in FLAGS}
    yield
    for name, value in saved.items():
        setattr(modes, name, value)
