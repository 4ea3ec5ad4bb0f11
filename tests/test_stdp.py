"""The binary_snn operator's integer reference and validation, and the convolutional STDP machinery
(models/stdp.py): winner-take-all, spike-time differences, the JETC rule, layer training on planted
patterns, the readout, and the digits-stdp recipe."""
from __future__ import annotations

import numpy as np
import pytest

from hilkit.models import modelfile, reference, snn, stdp
from hilkit.models.stdp import Competition, ConvSTDP

LAYERS = [{"filters": 3, "kernel": 3}, {"filters": 2, "kernel": 1, "residual": 1},
          {"filters": 4, "kernel": 3, "residual": 1}]


def small_params(rng, kernel_bits=1, shape=(2, 5, 6), layers=LAYERS):
    geo = stdp.geometry(stdp.normalize({"timesteps": 1, "layers": layers}), shape)
    p = {}
    for l in geo:
        w = (np.where(rng.random(l.weight_shape()) < 0.6, 1.0, -1.0) if kernel_bits == 1
             else rng.integers(-127, 128, l.weight_shape()).astype(float))
        p[f"{l.name}.weight"] = w
        p[f"{l.name}.threshold"] = rng.integers(1, 4 if kernel_bits == 1 else 200, l.filters).astype(float)
    return p


# ---------------------------------------------------------------- the reference
@pytest.mark.parametrize("kernel_bits,leak_shift,reset", [(1, 2, "hard"), (1, 0, "soft"), (8, 1, "soft")])
def test_reference_matches_a_plain_loop(kernel_bits, leak_shift, reset):
    """The vectorised reference against per-neuron loops written from the docstring's equations."""
    rng = np.random.default_rng(kernel_bits + leak_shift)
    shape, T = (2, 5, 6), 6
    attrs = {"timesteps": T, "layers": LAYERS, "kernel_bits": kernel_bits, "leak_shift": leak_shift,
             "reset": reset, "pool": 2, "seed": 99, "input_bits": 5}
    p = small_params(rng, kernel_bits, shape)
    x = rng.uniform(-0.3, 1.2, (3,) + shape).astype(np.float32)
    res = stdp.simulate(attrs, p, x)
    C, H, W = shape
    for i in range(len(x)):
        q = np.maximum(snn.quantize_input(x[i], 5), 0)
        r = snn.xorshift32(99, T * C * H * W) >> np.uint32(32 - 5)
        u = [np.zeros((e["filters"], H, W), np.int64) for e in LAYERS]
        counts = [np.zeros_like(v) for v in u]
        spikes_in = synops = 0
        for t in range(T):
            s_in = np.zeros(shape, np.int64)
            for j in range(C * H * W):          # draws in [H][W][C] order
                y, xx, c = j // (W * C), (j // C) % W, j % C
                s_in[c, y, xx] = int(r[t * C * H * W + j] < q[c, y, xx])
            spikes_in += int(s_in.sum())
            maps = [s_in]
            for li, e in enumerate(LAYERS):
                src = maps[li] if not e.get("residual") else np.concatenate([maps[li], maps[li - 1]])
                w, th, k = p[f"l{li}.weight"].astype(np.int64), p[f"l{li}.threshold"].astype(np.int64), e["kernel"]
                pad = (k - 1) // 2
                out = np.zeros((e["filters"], H, W), np.int64)
                for f in range(e["filters"]):
                    for y in range(H):
                        for xx in range(W):
                            cur = active = 0
                            for c in range(src.shape[0]):
                                for ky in range(k):
                                    for kx in range(k):
                                        iy, ix = y + ky - pad, xx + kx - pad
                                        if 0 <= iy < H and 0 <= ix < W and src[c, iy, ix]:
                                            cur += w[f, c, ky, kx]
                                            active += 1
                            synops += active
                            v = u[li][f, y, xx]
                            v = v - (v // 2 ** leak_shift if leak_shift else 0) + cur
                            if v >= th[f]:
                                v = v - th[f] if reset == "soft" else 0
                                out[f, y, xx] = 1
                            u[li][f, y, xx] = v
                counts[li] += out
                maps.append(out)
        pooled = counts[-1][:, :4, :6].reshape(4, 2, 2, 3, 2).sum(axis=(2, 4))
        assert np.array_equal(res.output[i], pooled.astype(np.float32))
        assert res.counters["spikes_in"][i] == spikes_in and res.counters["synops"][i] == synops
        for li in range(len(LAYERS)):
            assert np.array_equal(res.counts[li][i], counts[li])
            assert res.counters[f"spikes_l{li}"][i] == counts[li].sum()
    assert all(v.min() > 0 for v in res.counters.values())


def test_model_file_and_reference_forward(tmp_path):
    rng = np.random.default_rng(0)
    attrs = {"timesteps": 5, "layers": LAYERS, "pool": 2}
    p = small_params(rng)
    readout = (rng.normal(size=(10, 4 * 2 * 3)).astype(np.float32), np.zeros(10, np.float32))
    graph, arrays = stdp.build_graph(attrs, p, (2, 5, 6), readout=readout, name="t")
    modelfile.save(tmp_path / "t.npz", graph, arrays)
    m = modelfile.load(tmp_path / "t.npz")
    assert m.shapes["snn"] == (4, 2, 3) and m.output_shape == (10,)
    x = rng.uniform(0, 1, (4, 2, 5, 6)).astype(np.float32)
    feats = stdp.simulate(attrs, p, x).output.reshape(4, -1)
    probs = reference.forward(m, x)
    logits = feats @ readout[0].T
    assert np.allclose(probs, np.exp(logits - logits.max(1, keepdims=True)) /
                       np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True), atol=1e-5)
    c = stdp.model_counters(m, x)
    assert list(c) == ["snn.spikes_in", "snn.spikes_l0", "snn.spikes_l1", "snn.spikes_l2", "snn.synops"]


def test_validation_rejects_bad_nodes():
    rng = np.random.default_rng(1)
    p = small_params(rng)
    good = {"timesteps": 5, "layers": LAYERS}

    def expect(msg, attrs=None, params=None):
        graph, arrays = stdp.build_graph(attrs or good, params or p, (2, 5, 6))
        with pytest.raises(modelfile.ModelFileError, match=msg):
            modelfile.validate(graph, arrays)

    expect("unknown attribute 'tau'", {**good, "tau": 2})
    expect("kernel_bits", {**good, "kernel_bits": 4})
    expect("layers\\[0\\] cannot be residual", {**good, "layers": [{"filters": 3, "kernel": 3, "residual": 1}]})
    expect("kernel must be odd", {**good, "layers": [{"filters": 3, "kernel": 2}]})
    expect("pool 7x7 is larger", {**good, "pool": 7})
    expect("missing parameter", params={k: v for k, v in p.items() if k != "l2.threshold"})
    with pytest.raises(stdp.SpecError, match="exactly -1 or \\+1"):
        stdp.simulate(good, {**p, "l0.weight": p["l0.weight"] * 2}, np.zeros((1, 2, 5, 6), np.float32))
    with pytest.raises(stdp.SpecError, match="\\[1, 2\\^30\\]"):
        stdp.simulate(good, {**p, "l1.threshold": np.zeros(2)}, np.zeros((1, 2, 5, 6), np.float32))
    # (membranes cannot overflow within the attribute limits: 4097 steps x 127 x 1024 synapses < 2^31)
    big = {"timesteps": 4096, "layers": [{"filters": 64, "kernel": 7}]}
    wbig = {"l0.weight": np.ones((64, 1, 7, 7)), "l0.threshold": np.ones(64)}
    with pytest.raises(stdp.SpecError, match="counter could overflow u32"):
        stdp.simulate(big, wbig, np.zeros((1, 1, 64, 64), np.float32))


# ---------------------------------------------------------------- STDP machinery
def test_pre_delays_and_winner_take_all():
    x = np.zeros((6, 4), np.int8)
    x[1, 0] = x[4, 0] = 1          # last spike by t_post = 4: step 4 -> dt 0
    x[2, 1] = 1                    # dt 2
    x[5, 2] = 1                    # after the post spike only: inf
    assert stdp.pre_delays(x, 4).tolist() == [0, 2, np.inf, np.inf]
    # neuron 1 reaches its threshold first; neurons 0 and 2 tie at step 2, the larger overshoot wins
    X = np.zeros((2, 4, 3), np.int8)
    X[0, :, 0] = 1
    X[1, :, 1:] = 1
    W = np.array([[1.0, 0, 0], [5.0, 0, 0], [0, 2.0, 2.0]])
    winner, t_post = stdp.compete(X, W, np.array([3.0, 4.0, 5.0]), 0)
    assert winner.tolist() == [1, 2] and t_post.tolist() == [0, 1]
    winner, _ = stdp.compete(np.zeros((1, 4, 3), np.int8), W, np.ones(3), 0)
    assert winner.tolist() == [-1]


def test_conv_stdp_rule_potentiates_causal_inputs_within_bounds():
    rule = ConvSTDP()
    w = np.full(4, 0.5)
    dt = np.array([0.0, 3.0, 20.0, np.inf])
    new = rule.update(w, dt, None)
    assert new[0] > new[1] > 0.5 > new[2] == new[3]
    assert np.isclose(new[0] - 0.5, rule.eta_pot * 0.5) and np.isclose(0.5 - new[3], rule.eta_dep * 0.5)
    for _ in range(500):
        w = rule.update(w, dt, None)
    assert w[0] <= 1.0 and w[0] > 0.99 and w[3] >= 0.0 and w[3] < 0.01


def bars(n, rng, T=8):
    """Presentations of a 3x3 vertical or horizontal bar (rate-coded, with noise): [n, T, 1, 3, 3] maps."""
    img = np.zeros((n, 1, 3, 3))
    vertical = rng.random(n) < 0.5
    img[vertical, 0, :, 1] = 1
    img[~vertical, 0, 1, :] = 1
    spikes = (rng.random((T, n, 1, 3, 3)) < 0.8 * img + 0.05).astype(np.int8)
    return spikes, vertical


@pytest.mark.parametrize("rule_name", ["conv-stdp", "hb-stdp"])
def test_layer_training_learns_the_two_planted_patterns(rule_name):
    from hilkit.models.restocnet import HBSTDP
    rng = np.random.default_rng(3)
    src, _ = bars(400, rng)
    l = stdp.geometry(stdp.normalize({"timesteps": 8, "layers": [{"filters": 2, "kernel": 3}]}), (1, 3, 3))[0]
    rule = ConvSTDP() if rule_name == "conv-stdp" else HBSTDP()
    # the centre window of each 3x3 map holds the whole bar: train on it
    comp = Competition(rounds=400, batch=64)
    n = src.shape[1]
    w, stats = stdp.train_layer(src, l, rule, comp, 2, rng, windows_at=(np.arange(n), np.ones(n, int), np.ones(n, int)))
    w = rule.quantize(w).reshape(2, 3, 3) > (60 if rule_name == "conv-stdp" else 0)
    vert, horiz = np.zeros((3, 3), bool), np.zeros((3, 3), bool)
    vert[:, 1], horiz[1, :] = True, True
    # each kernel holds one whole bar (and at most two stray synapses of the noise); both bars are learned
    bars_of = [[bar for bar in (vert, horiz) if k[bar].all() and k[~bar].sum() <= 2] for k in w]
    assert all(len(b) == 1 for b in bars_of) and bars_of[0][0] is not bars_of[1][0], w.astype(int)
    assert min(stats["wins"]) > 0.2 * sum(stats["wins"])          # homeostasis: both kernels learn


def test_readout_folds_the_standardisation():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 300)
    F = rng.poisson(3.0, (300, 12)).astype(np.float64) + 6 * np.eye(10, 12)[y]
    F[:, 11] = 0                                              # a silent feature
    w, b = stdp.train_readout(F, y, seed=0, epochs=100, lr=2e-2)
    assert w.shape == (10, 12) and b.shape == (10,) and np.all(np.abs(w[:, 11]) < 1e-3)
    assert ((F @ w.T + b).argmax(axis=1) == y).mean() > 0.9


def test_digits_stdp_recipe(tmp_path):
    """A short run (100 STDP rounds): a valid model file that classifies digits."""
    from hilkit.models import recipes
    out = tmp_path / "s.npz"
    res = recipes.RECIPES["digits-stdp"](out, epochs=1)
    m = modelfile.load(out)
    assert [layer["op"] for layer in m.layers] == ["binary_snn", "flatten", "dense", "softmax"]
    assert m.layers[0]["attrs"]["kernel_bits"] == 8
    assert m.graph["meta"]["test_accuracy"] == round(res["test_accuracy"], 6)
    w = m.arrays["snn.l0.weight"]
    assert w.min() >= 0 and w.max() <= 127 and len(np.unique(w)) > 20          # real-valued kernels as int8
    assert res["test_accuracy"] > 0.85
    # the random-kernel control is part of the summary: same network, calibration and readout
    ctl = res["random_kernels"]
    assert ctl["rule"].startswith("random kernels") and "U(0, 1)" in ctl["rule"]
    assert 0.5 < ctl["test_accuracy"] <= 1.0 and ctl["spikes_per_inference"] > 0
    assert res["learned_minus_random_pt"] == pytest.approx(100 * (res["test_accuracy"] - ctl["test_accuracy"]), abs=1e-3)


def test_random_control_changes_only_the_kernels():
    """The control keeps every setting of the recipe's network but the rule (random kernels of the
    same bits, no update rounds); its kernels are U(0, 1) draws as int8, calibrated like the learned."""
    from dataclasses import replace

    from hilkit.models.data import as_images, digits_split
    cfg = replace(stdp.DIGITS_STDP, stdp_images=100, calibration_images=50, readout_epochs=5)
    ctl = stdp.random_control(cfg)
    assert isinstance(ctl.rule, stdp.RandomKernels) and ctl.rule.kernel_bits == cfg.rule.kernel_bits == 8
    assert ctl.competition.rounds == 0
    assert replace(ctl, rule=cfg.rule, competition=cfg.competition) == cfg
    X, y, _, _ = digits_split()
    X = as_images(X)[:300]
    net = stdp.train_network(ctl, X, y[:300], seed=0)
    w = net["params"]["l0.weight"]
    assert w.min() >= 0 and w.max() <= 127 and len(np.unique(w)) > 100
    # its thresholds are the calibration of these kernels, on the subset train_network drew
    layer = stdp.geometry(stdp.normalize(net["attrs"]), X.shape[1:])[0]
    sub = np.random.default_rng(np.random.SeedSequence([0, 3]).spawn(2)[0]).choice(len(X), ctl.stdp_images, replace=False)
    src = stdp.layer_source(stdp.trace_maps(net["attrs"], {}, [], X[sub]), layer)
    theta = stdp.calibrate_thresholds(src[:, :ctl.calibration_images], w, layer, ctl.percentile)
    np.testing.assert_array_equal(net["params"]["l0.threshold"], theta.astype(np.float32))
    r = stdp.evaluate(net, X, y[:300])
    assert r["test_accuracy"] > 0.5 and r["spikes_per_inference"] == pytest.approx(sum(r["spikes_per_layer"]))
