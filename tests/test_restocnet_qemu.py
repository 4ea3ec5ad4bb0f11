"""A binary-kernel residual SNN (binary_snn + readout) on the FPU-ful Cortex-M4F and the FPU-less
Cortex-M0+ under QEMU: every counter (input spikes, spikes per layer, synaptic ops) equals the
integer reference's on every sample, the outputs equal the reference's, and the int8 kernel of the
same layers gives the same answers."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from hilkit.codegen import build, ops_binary
from hilkit.host import boards, protocol, runner
from hilkit.host.compile import compile_model
from hilkit.models import data, modelfile, reference, restocnet, stdp
from hilkit.models.stdp import Competition, NetConfig, RandomKernels

pytestmark = pytest.mark.qemu
SAMPLES = 30


def _skip_reason(board_id):
    b = boards.get_board(board_id)
    try:
        build.check_toolchain(b)
    except build.BuildError as e:
        return str(e)
    if shutil.which(b.qemu.binary) is None:
        return f"{b.qemu.binary} not installed"
    return None


def _board(b):
    reason = _skip_reason(b)
    return pytest.param(b, marks=pytest.mark.skipif(reason is not None, reason=str(reason)))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """Two residual layers of 8 random binary kernels (the kernels' values do not matter to
    bit-exactness; no STDP rounds keeps the fixture fast), calibrated thresholds, a trained readout."""
    cfg = NetConfig(layers=restocnet.layers(2, True, filters=8, first_kernel=3), rule=RandomKernels(1),
                    competition=Competition(rounds=0), timesteps=8, stdp_images=100, calibration_images=50,
                    readout_epochs=10)
    path = tmp_path_factory.mktemp("restocnet") / "r.npz"
    stdp.recipe("restocnet-qemu-test", cfg, path)
    return path


def run(path, board_id, out_dir, x):
    c = compile_model(path, board_id, out_dir)
    outs, extras, insns = [], [], []
    with runner.start(board_id, c.out_dir / c.manifest["image"]) as target:
        client = protocol.Client(target.link)
        for i in range(len(x)):
            r = client.infer(x[i].ravel(), timeout=30.0)
            outs.append(r.outputs)
            extras.append(r.extra)
            insns += target.instruction_counts() or []
    return c, np.stack(outs), extras, insns


@pytest.mark.parametrize("board_id", [_board("mps2-an386"), _board("pico")])
def test_spike_counts_agree_on_the_board(board_id, model, tmp_path, monkeypatch):
    _, _, x, _ = data.digits_split()
    x = data.as_images(x)[:SAMPLES]
    m = modelfile.load(model)
    ref = reference.forward(m, x)
    c, outs, extras, insns = run(model, board_id, tmp_path / "b1", x)
    assert c.manifest["extra"] == ["snn.spikes_in", "snn.spikes_l0", "snn.spikes_l1", "snn.synops"]
    met = stdp.metrics(c.manifest, m, x, extras, instructions=insns)
    assert met["spike_agreement"] == 1.0 and met["spike_mismatches"] == []
    assert met["spikes_per_inference"] > 100 and met["synops_per_inference"] > met["spikes_per_inference"]
    assert np.array_equal(outs.argmax(axis=1), ref.argmax(axis=1)) and np.abs(outs - ref).max() < 1e-5
    assert len(insns) == SAMPLES and met["instructions_vs_synops"]["slope"] > 0
    if board_id != "mps2-an386":
        return
    # the same layers on the int8 event kernel: the same integers, counted separately
    monkeypatch.setattr(ops_binary, "INT8_KERNEL", "event")
    graph, arrays = m.graph, dict(m.arrays)
    graph["layers"][0]["attrs"]["kernel_bits"] = 8
    graph["name"] = "restocnet-qemu-test-int8"
    modelfile.save(tmp_path / "i8.npz", graph, arrays)
    c8, outs8, extras8, insns8 = run(tmp_path / "i8.npz", board_id, tmp_path / "s8", x)
    assert np.array_equal(outs8, outs) and [list(e) for e in extras8] == [list(e) for e in extras]
    assert len(insns8) == SAMPLES and insns8 != insns
