"""The closed loop with the policy on mps2-an386 (Cortex-M4F) and pico (Cortex-M0+, no FPU) under
QEMU: the board's actions, outputs and counters equal the numpy policy's at every step, and every
control step's instruction count is measured."""
from __future__ import annotations

import shutil

import pytest

from hilkit.codegen import build
from hilkit.host import boards, control
from test_reservoir import SMALL, random_policy

pytest.importorskip("gymnasium")
pytestmark = pytest.mark.qemu


def _skip_reason(board_id):
    b = boards.get_board(board_id)
    try:
        build.check_toolchain(b)
    except build.BuildError as e:
        return str(e)
    if shutil.which(b.qemu.binary) is None:
        return f"{b.qemu.binary} not installed"
    return None


@pytest.mark.parametrize("board_id", [pytest.param(b, marks=pytest.mark.skipif(_skip_reason(b) is not None,
                                                                              reason=str(_skip_reason(b))))
                                      for b in ("mps2-an386", "pico")])
def test_closed_loop_on_the_board_is_bit_exact(board_id, tmp_path):
    model = random_policy(tmp_path, SMALL, n_obs=4, hidden=8, actions=2, seed=5, name="cartpole-small")
    r = control.control(model, board_id, episodes=2, seed=11, workdir=tmp_path / "build")
    assert r["runtime"] == "qemu-system" and r["steps"] > 2
    assert r["action_agreement"] == 1.0 and r["outputs_identical"] and r["counters_identical"]
    assert r["returns"] == r["reference_returns"]
    # one count per control step; the reservoir's work varies with the spikes, so the counts do too
    assert r["instructions_per_step_min"] > 1000 and r["instructions_per_step"] >= r["instructions_per_step_min"]
    b = boards.get_board(board_id)
    assert r["control_rate_hz"] == pytest.approx(b.clock_mhz * 1e6 / (r["instructions_per_step"] * b.cpi))
    assert r["link_retries"] == 0
