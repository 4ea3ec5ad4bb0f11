"""Shared pytest fixtures."""
import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, fixed-seed generator per test, so every test's random data is reproducible."""
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory):
    """digits-mlp and digits-cnn trained once per session by their recipes (seed 0): {name: path}."""
    from hilkit.models import recipes
    d = tmp_path_factory.mktemp("models")
    out = {}
    for name in ("digits-mlp", "digits-cnn"):
        out[name] = d / f"{name}.npz"
        recipes.RECIPES[name](out[name])
    return out
