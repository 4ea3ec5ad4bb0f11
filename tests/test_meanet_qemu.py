"""MEANet under QEMU: the edge model's firmware answers INFER or OFFLOAD, the board's decisions equal
the reference's, offloaded inputs arrive bit-identical, and instruction counts separate the tiers
(the extension runs only for its tier). Three boards with different float arithmetic: Cortex-M4F
(the default board), Cortex-M0+ (soft float) and Cortex-A72 (NEON, qemu-user)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from hilkit.codegen import build
from hilkit.host import boards, meanet as HM
from hilkit.host import run as R
from hilkit.models import meanet as M
from test_meanet import meanet_model  # noqa: F401  (the module-scoped fixture)

pytestmark = pytest.mark.qemu


def _why_not(bid: str) -> str | None:
    b = boards.get_board(bid)
    try:
        build.check_toolchain(b)
    except build.BuildError as e:
        return str(e)
    if b.qemu is not None and shutil.which(b.qemu.binary) is None:
        return f"{b.qemu.binary} not installed"
    return None


@pytest.mark.parametrize("bid", [pytest.param(b, marks=pytest.mark.skipif(_why_not(b) is not None, reason=str(_why_not(b))))
                                 for b in ("mps2-an386", "pico", "rpi4")])
def test_board_decides_like_the_reference(bid, meanet_model, tmp_path):  # noqa: F811
    edge_path, _, _ = meanet_model
    out_dir, man = R.prepare(edge_path, bid, "libm", tmp_path)
    r = HM.run(edge_path, bid, out_dir, man, limit=48)
    m = r["meanet"]
    assert r["decision_agreement"] == 1.0, m["decision_disagreements"]
    assert all(r["tiers"][t] > 0 for t in M.TIERS), r["tiers"]
    assert m["offloaded_inputs_exact"] and r["top1_agreement"] == 1.0 and r["max_abs_diff"] < 1e-5
    assert m["score_max_abs_diff"] < 1e-5
    assert m["link"] == "uart" and m["per_tier"]["cloud"]["link_us"] > 0
    assert r["instructions_per_inference"] > 0
    t = m["per_tier"]
    # the extension tier runs more code; main and cloud run the same path up to the gate
    assert t["edge_extension"]["instructions"] > 1.2 * t["edge_main"]["instructions"]
    assert abs(t["cloud"]["instructions"] - t["edge_main"]["instructions"]) < 0.2 * t["edge_main"]["instructions"]
    assert t["cloud"]["energy_uj"] > t["edge_main"]["energy_uj"]
    assert r["energy_always_cloud_uj"] == pytest.approx(
        boards.get_board(bid).link_energy["uart"].energy_uj(HM.frame_bytes(
            HM.P.encode_offload_reply(4, bytes(72)))))
    assert np.isfinite(r["energy_uj"]) and r["latency_us"] > 0
