"""Every README recipe, the way a user runs it: `hilkit train` then `hilkit run --board mps2-an386`
(or `hilkit control` for the policy recipe), through the installed console script. Each must exit
0 and write the JSON keys DESIGN.md fixes plus the keys its family's doc lists."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

HILKIT = [str(Path(sys.executable).parent / "hilkit")]  # the console script, as a user runs it
BOARD = "mps2-an386"
LIMIT = 4

BASE_KEYS = {"model", "board", "exp", "samples", "accuracy", "reference_accuracy", "top1_agreement", "max_abs_diff",
             "instructions_per_inference", "cycles_per_inference", "latency_us", "latency_source", "energy_uj",
             "energy_source", "flash_bytes", "ram_bytes"}
SNN_KEYS = {"timesteps", "spikes_per_inference", "synops_per_inference", "energy_op_uj", "spike_agreement"}
FAMILY_KEYS = {  # docs/snn.md, docs/me-neuron.md, docs/stdp.md, docs/meanet.md
    "digits-snn": SNN_KEYS, "digits-snn-stdb": SNN_KEYS, "digits-snn-sparse": SNN_KEYS,
    "digits-snn-me": SNN_KEYS | {"me_energy"},
    "digits-stdp": SNN_KEYS, "digits-restocnet": SNN_KEYS,
    "digits-meanet": {"tiers", "edge_fraction", "energy_always_cloud_uj", "decision_agreement", "meanet"},
}
CONTROL_KEYS = {"episodes", "mean_return", "returns", "reference_returns", "action_agreement", "steps",
                "instructions_per_step", "step_us", "control_rate_hz", "spikes_per_step"}
POLICY_RECIPES = {"cartpole-lsm"}


def readme_recipes() -> list[str]:
    """The recipe names in the README's recipe table."""
    text = (ROOT / "README.md").read_text()
    table = text.split("| recipes |", 1)[1].split("\n\n", 1)[0]
    names = []
    for row in table.splitlines()[2:]:
        names += re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])
    return names


RECIPES = readme_recipes()


def hilkit(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*HILKIT, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def recipe_models(tmp_path_factory) -> dict[str, Path]:
    """Every README recipe trained once (one epoch: the runs check the deployment, not accuracy)."""
    d = tmp_path_factory.mktemp("recipes")
    out = {}
    for name in RECIPES:
        p = hilkit("train", name, "-o", d / f"{name}.npz", "--epochs", 1, cwd=d)
        assert p.returncode == 0, f"hilkit train {name}: {p.stderr}"
        out[name] = d / f"{name}.npz"
    return out


def test_the_readme_lists_every_recipe():
    from hilkit.models.recipes import RECIPES as registered
    assert len(RECIPES) == 13 and set(RECIPES) == set(registered)


@pytest.mark.qemu
@pytest.mark.parametrize("recipe", [r for r in RECIPES if r not in POLICY_RECIPES])
def test_recipe_runs_on_the_board(recipe, recipe_models, tmp_path):
    p = hilkit("run", recipe_models[recipe], "--board", BOARD, "--limit", LIMIT, "--json", tmp_path / "r.json",
               "--min-agreement", 0, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    r = json.loads((tmp_path / "r.json").read_text())
    missing = (BASE_KEYS | FAMILY_KEYS.get(recipe, set())) - set(r)
    assert not missing, f"{recipe}: keys missing from the run JSON: {sorted(missing)}"
    assert r["board"] == BOARD and r["samples"] == LIMIT
    assert r["instructions_per_inference"] > 0 and 0.0 <= r["accuracy"] <= 1.0
    if "spike_agreement" in r:
        assert r["spike_agreement"] == 1.0  # fixed point: the board's spikes equal the reference's


@pytest.mark.qemu
@pytest.mark.parametrize("recipe", sorted(POLICY_RECIPES))
def test_policy_recipe_runs_in_the_loop(recipe, recipe_models, tmp_path):
    pytest.importorskip("gymnasium")
    p = hilkit("control", recipe_models[recipe], "--board", BOARD, "--episodes", 1, "--json", tmp_path / "c.json",
               cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    r = json.loads((tmp_path / "c.json").read_text())
    assert not CONTROL_KEYS - set(r), sorted(CONTROL_KEYS - set(r))
    assert r["action_agreement"] == 1.0 and r["episodes"] == 1 and r["steps"] >= 1
