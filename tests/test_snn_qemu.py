"""A converted spiking CNN on the FPU-ful Cortex-M4F and the FPU-less Cortex-M0+ under QEMU:
every per-layer spike count and synaptic-operation count equals the integer reference's, and
the instruction count follows the synaptic operations."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from hilkit.codegen import build
from hilkit.host import boards, protocol, runner
from hilkit.host.compile import compile_model
from hilkit.host.snn_report import snn_metrics
from hilkit.models import modelfile, reference
from hilkit.models.snn_convert import build_graph, convert, quantize
from hilkit.models.snn_recipes import digits_data, train_ann

pytestmark = pytest.mark.qemu
SAMPLES = 40


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
def snn_model(tmp_path_factory):
    """digits-cnn (average pooling, 5 epochs) converted to an 8-step soft-reset SNN."""
    X_train, _, _, _ = digits_data("cnn")
    ann, _ = train_ann("cnn", 0, epochs=5)
    attrs, params = quantize(convert(ann, X_train, (1, 8, 8)), timesteps=8, reset="soft")
    graph, arrays = build_graph(attrs, params, (1, 8, 8), name="snn-qemu-test")
    path = tmp_path_factory.mktemp("snn") / "snn.npz"
    modelfile.save(path, graph, arrays)
    return path


@pytest.mark.parametrize("board_id", [pytest.param(b, marks=pytest.mark.skipif(_skip_reason(b) is not None,
                                                                              reason=str(_skip_reason(b))))
                                      for b in ("mps2-an386", "pico")])
def test_spike_counts_agree_on_the_board(board_id, snn_model, tmp_path):
    c = compile_model(snn_model, board_id, tmp_path / board_id)
    assert c.manifest["extra"] == ["snn.spikes_l0", "snn.spikes_l2", "snn.synops"]
    m = modelfile.load(c.out_dir / "model.npz")
    _, _, x, y = digits_data("cnn")
    x = x[:SAMPLES]
    extras, insns, outs = [], [], []
    with runner.start(board_id, c.out_dir / c.manifest["image"]) as target:
        client = protocol.Client(target.link)
        for i in range(len(x)):
            r = client.infer(x[i].ravel())
            extras.append(r.extra)
            outs.append(r.outputs)
            insns += target.instruction_counts() or []
    met = snn_metrics(c.manifest, m, x, extras, instructions=insns)
    assert met["spike_agreement"] == 1.0 and met["spike_mismatches"] == []
    assert met["timesteps"] == 8 and met["spikes_per_inference"] > 100
    assert met["synops_per_inference"] > met["spikes_per_inference"]
    assert met["energy_op_uj"] > 0 and met["first_layer_macs"] == 3872
    # the board's top-1 equals the reference's (the spike trains are identical; softmax is float)
    ref = reference.forward(m, x)
    assert np.array_equal(np.argmax(outs, axis=1), ref.argmax(axis=1))
    assert np.max(np.abs(np.stack(outs) - ref)) < 1e-5
    fit = met["instructions_vs_synops"]
    assert fit["n"] == SAMPLES and fit["r2"] > 0.95 and fit["slope"] > 0
