"""Shared pytest fixtures."""
import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, fixed-seed generator per test, so every test's random data is reproducible."""
    return np.random.default_rng(1234)
