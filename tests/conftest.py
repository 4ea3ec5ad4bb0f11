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


def _qemu_children() -> list[str]:
    """QEMU processes whose parent is this test process (read from /proc)."""
    import os
    from pathlib import Path
    me, found = os.getpid(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and "qemu" in Path(cmd).name and " Z " not in stat[stat.rfind(")"):stat.rfind(")") + 4]:
            found.append(f"{d.name} {cmd}")
    return found


@pytest.fixture(scope="session", autouse=True)
def no_qemu_outlives_the_suite():
    """After the whole session, no QEMU started by a test may still be running."""
    yield
    left = _qemu_children()
    assert not left, f"QEMU processes outlived the test suite: {left}"
