"""ReStoCNet (models/restocnet.py): the HB-STDP switching probabilities, kernel memory against
float32, and the digits-restocnet recipe (a short run)."""
from __future__ import annotations

import numpy as np
import pytest

from hilkit.models import modelfile, restocnet, stdp
from hilkit.models.restocnet import HBSTDP


def test_hb_stdp_switching_probabilities_decay_with_the_spike_time_difference():
    rule = HBSTDP(gamma_pot=0.6, tau_pot=3.0, gamma_dep=0.3, tau_dep=5.0)
    dt = np.array([0.0, 1.0, 4.0, 12.0, np.inf])
    p_pot, p_dep = rule.probabilities(dt)
    assert np.allclose(p_pot, 0.6 * np.exp(-dt / 3.0)) and p_pot[-1] == 0.0
    assert np.all(np.diff(p_pot) < 0) and np.all(np.diff(p_dep) > 0)
    assert p_dep[0] == 0.0 and p_dep[-1] == pytest.approx(0.3)
    # the update draws: +1 with p_pot, else -1 with p_dep, else unchanged
    rng = np.random.default_rng(0)
    n = 20000
    for start in (-1.0, 1.0):
        w = np.full((n, 5), start)
        out = np.stack([rule.update(w[i], dt, rng) for i in range(n)])
        plus = (out == 1).mean(axis=0)
        want = p_pot + (1 - p_pot) * (1 - p_dep) * (start > 0)
        assert np.allclose(plus, want, atol=0.015), (plus, want)
    assert set(np.unique(rule.quantize(np.array([-0.2, 0.0, 3.0])))) == {-1.0, 1.0}


def test_kernel_memory_of_the_recipe_is_over_20x_smaller_than_float32(tmp_path):
    from hilkit.codegen import ir, ops_binary, passes
    cfg = restocnet.DIGITS_RESTOCNET
    mem = restocnet.kernel_memory(cfg.attrs(), (1, 8, 8))
    # l0 5x5x1 = 25 bits: 1 word per filter (AND + popcount); l1 3x3x(16+1) = 153 and l2 3x3x(16+16) =
    # 288 synapses span 5 and 9 words: bit-sliced, one 16-bit mask per synapse
    assert [r["bytes"] for r in mem["layers"]] == [16 * 4, 153 * 2, 288 * 2]
    assert restocnet.kernel_memory(cfg.attrs(), (1, 8, 8), sliced_min_words=0)["bytes"] == 16 * (4 + 20 + 36)
    assert mem["float32_bytes"] == 4 * 16 * (25 + 153 + 288) and mem["compression"] > 20
    # what the code generator stores is exactly that
    layers = stdp.geometry(stdp.normalize(cfg.attrs()), (1, 8, 8))
    rng = np.random.default_rng(0)
    params = {}
    for l in layers:
        params[f"{l.name}.weight"] = np.where(rng.random(l.weight_shape()) < 0.5, 1.0, -1.0)
        params[f"{l.name}.threshold"] = np.full(l.filters, 3.0)
    graph, arrays = stdp.build_graph(cfg.attrs(), params, (1, 8, 8))
    modelfile.save(tmp_path / "m.npz", graph, arrays)
    node = passes.run_default(ir.from_model(modelfile.load(tmp_path / "m.npz"))).nodes[0]
    gen = ops_binary.kernel_bytes(node)
    assert gen["bytes"] == mem["bytes"] and gen["float32_bytes"] == mem["float32_bytes"]
    int8 = restocnet.kernel_memory({**cfg.attrs(), "kernel_bits": 8}, (1, 8, 8))
    assert int8["compression"] == 4.0


def test_ablation_configs():
    cfgs = restocnet.ablation_configs()
    assert list(cfgs) == ["1 layer", "2 layers, plain", "2 layers, residual", "3 layers, plain", "3 layers, residual"]
    res = [[e.get("residual", 0) for e in c.layers] for c in cfgs.values()]
    assert res == [[0], [0, 0], [0, 1], [0, 0, 0], [0, 1, 1]]


def test_digits_restocnet_recipe(tmp_path, monkeypatch):
    """A short run (the recipe's network, fewer STDP images and rounds, a shorter readout):
    binary kernels, residual layers, a valid model file that classifies digits."""
    from dataclasses import replace

    from hilkit.models import recipes
    cfg = restocnet.DIGITS_RESTOCNET
    monkeypatch.setattr(restocnet, "DIGITS_RESTOCNET", replace(cfg, stdp_images=150, calibration_images=100,
                                                               readout_epochs=30))
    out = tmp_path / "r.npz"
    res = recipes.RECIPES["digits-restocnet"](out, epochs=1)
    m = modelfile.load(out)
    node = m.layers[0]
    assert node["op"] == "binary_snn" and node["attrs"]["kernel_bits"] == 1
    assert [e.get("residual", 0) for e in node["attrs"]["layers"]] == [0, 1, 1]
    for i in range(3):
        w = m.arrays[f"snn.l{i}.weight"]
        assert set(np.unique(w)) == {-1.0, 1.0}
    assert res["kernel_compression"] > 20
    assert res["test_accuracy"] > 0.85 and m.graph["meta"]["stdp"]["rule"].startswith("HB-STDP")
    assert all(v > 0 for k, v in res.items() if k == "spikes_per_inference")
    ctl = res["random_kernels"]                    # the control: random +/-1 kernels, same calibration and readout
    assert "+/-1" in ctl["rule"] and 0.5 < ctl["test_accuracy"] <= 1.0
    assert res["learned_minus_random_pt"] == pytest.approx(100 * (res["test_accuracy"] - ctl["test_accuracy"]), abs=1e-3)
