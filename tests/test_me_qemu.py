"""The ME-LIF digits network on the Cortex-M4F (mps2-an386) and the FPU-less Cortex-M0+ (pico)
under QEMU: for a fixed fire seed every stochastic spike train is the reference's
(spike_agreement = 1.0), and the board's answers are the reference's."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from hilkit.codegen import build
from hilkit.host import boards, protocol, runner
from hilkit.host.compile import compile_model
from hilkit.host.me_report import me_metrics
from hilkit.models import me_snn, modelfile, reference
from hilkit.models.network import GraphBuilder
from hilkit.models.snn_recipes import digits_data

pytestmark = pytest.mark.qemu
SAMPLES = 12


def _skip_reason(board_id):
    b = boards.get_board(board_id)
    try:
        build.check_toolchain(b)
    except build.BuildError as e:
        return str(e)
    if shutil.which(b.qemu.binary) is None:
        return f"{b.qemu.binary} not installed"
    return None


@pytest.fixture(scope="module")
def me_model(tmp_path_factory):
    """digits-cnn (average pooling, 3 epochs) converted to a 16-step ME-LIF network."""
    _, (attrs, params), _ = me_snn.build(0, epochs=3, timesteps=16)
    b = GraphBuilder((1, 8, 8))
    out = b.add("me_spiking_net", [b.input_name], attrs, params, name="snn")
    b.add("softmax", [out], name="softmax")
    graph, arrays = b.graph(name="me-qemu-test")
    path = tmp_path_factory.mktemp("me") / "me.npz"
    modelfile.save(path, graph, arrays)
    return path


@pytest.mark.parametrize("board_id", [pytest.param(b, marks=pytest.mark.skipif(_skip_reason(b) is not None,
                                                                              reason=str(_skip_reason(b))))
                                      for b in ("mps2-an386", "pico")])
def test_stochastic_spikes_agree_on_the_board(board_id, me_model, tmp_path):
    c = compile_model(me_model, board_id, tmp_path / board_id)
    assert c.manifest["extra"] == ["snn.spikes_l0", "snn.spikes_l2", "snn.synops"]
    m = modelfile.load(c.out_dir / "model.npz")
    _, _, x, _ = digits_data("cnn")
    x = x[:SAMPLES]
    extras, insns, outs = [], [], []
    with runner.start(board_id, c.out_dir / c.manifest["image"]) as target:
        client = protocol.Client(target.link)
        for i in range(len(x)):
            r = client.infer(x[i].ravel())
            extras.append(r.extra)
            outs.append(r.outputs)
            insns += target.instruction_counts() or []
    met = me_metrics(c.manifest, m, x, extras, instructions=insns)
    assert met["spike_agreement"] == 1.0 and met["spike_mismatches"] == []
    assert met["spikes_per_inference"] > 100 and met["timesteps"] == 16
    ref = reference.forward(m, x)
    assert np.array_equal(np.argmax(outs, axis=1), ref.argmax(axis=1))
    assert np.max(np.abs(np.stack(outs) - ref)) < 1e-5
    assert met["instructions_vs_synops"]["n"] == SAMPLES
    assert met["me_energy"]["neurons"]["cmos_over_me"] > 100
