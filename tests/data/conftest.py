"""Shared by the data tests: the bundled digits, loaded once per module."""
import pytest

from minigrad.data import load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()
