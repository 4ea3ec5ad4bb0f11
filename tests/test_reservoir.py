"""The lsm_policy operator: model-file validation, the integer reference (against a plain loop
written from the equations), the readout quantizer, and the generated C bit-exact against the
reference on the host (plain and ASan/UBSan) and warning-free on every board's compiler."""
from __future__ import annotations


import numpy as np
import pytest

from hilkit.codegen.build import resource_dir
from hilkit.codegen.generate import generate
from hilkit.models import modelfile, reference, reservoir, snn
from helpers import CROSS, SANITIZE, STRICT, build_driver, have, run_cc, run_driver

SMALL = reservoir.ReservoirConfig(neurons=40, excitatory=32, timesteps=25, leak_shift=3, input_bits=7,
                                  in_density=0.4, in_weight=(0.4, 1.2), in_degree=4, w_exc=0.6, w_inh=1.2,
                                  seed=12345)


def random_policy(tmp_path, cfg=SMALL, n_obs=3, hidden=6, actions=3, seed=0, name="lsm-test"):
    """A random reservoir with a random float readout, quantized as the recipe does."""
    rng = np.random.default_rng(seed)
    res = reservoir.random_reservoir(rng, n_obs, cfg)
    w1 = rng.normal(0, 1, (hidden, cfg.excitatory)) / np.sqrt(cfg.excitatory) * 3
    b1 = rng.normal(0, 0.3, hidden)
    w2 = rng.normal(0, 1, (actions, hidden))
    b2 = rng.normal(0, 0.2, actions)
    readout, shift = reservoir.quantize_readout(w1, b1, w2, b2, cfg.timesteps)
    gain = np.float32(2 ** cfg.input_bits) / np.linspace(1.0, 2.5, n_obs)
    graph, arrays = reservoir.build_graph(n_obs, res, gain, readout, shift, cfg=cfg, name=name)
    path = tmp_path / f"{name}.npz"
    modelfile.save(path, graph, arrays)
    return path


def sequence(n_obs, n, rng, reset_every=7):
    """Observations (with exact halves of the grid, saturating and tiny values), reset flags."""
    x = rng.normal(0, 1.2, (n, n_obs + 1)).astype(np.float32)
    x[:, -1] = 0
    x[::reset_every, -1] = 1
    x[3, :n_obs] = np.array([3.0, -1e-30, 0.0, 1e6, -1e6][:n_obs], np.float32)
    x[5, -1] = -0.0            # a negative zero is not a reset
    x[9, -1] = 0.5             # any nonzero value is
    return x


# ---------------------------------------------------------------- reference
def test_quantize_obs_rounds_half_away_and_saturates():
    q = reservoir.quantize_obs(np.array([0.5, 1.5, -0.5, -1.5, 2.49, 300.0, -300.0, 0.0, np.nan], np.float32),
                               np.ones(9, np.float32), 8)
    assert q.tolist() == [1, 2, -1, -2, 2, 256, -256, 0, -256]


def test_noise_stream_is_the_spiking_layers_xorshift32():
    spec = reservoir.Spec(n_obs=3, neurons=4, excitatory=2, timesteps=5, leak_shift=2, input_bits=6, seed=99,
                          hidden=2, actions=2, out_shift=0)
    ns = reservoir.NoiseStream(spec, steps=2)
    raw = snn.xorshift32(99, 3 * 5 * 7) >> np.uint32(26)
    got = ns[np.arange(7)]                      # grows past the first 2 steps
    assert np.array_equal(got.ravel(), raw.astype(np.int64))


def test_reference_matches_a_plain_loop(tmp_path):
    """Reservoir, readout and counters against one neuron at a time, from the module's equations."""
    m = modelfile.load(random_policy(tmp_path))
    node = m.layers[0]
    a = node["attrs"]
    p = {k: np.asarray(v, np.float64) for k, v in m.params(node).items()}
    x = sequence(3, 20, np.random.default_rng(1))
    out, counters = reservoir.simulate(a, m.params(node), x)

    n, ne, T, k = a["neurons"], a["excitatory"], a["timesteps"], a["leak_shift"]
    th = int(p["threshold"][0])
    w_in, w_rec = p["w_in"].astype(np.int64), p["w_rec"].astype(np.int64)
    stream = snn.xorshift32(a["seed"], 200 * T * 3)
    u = np.zeros(n, np.int64)
    fired = np.zeros(n, bool)
    pos = 0
    for i, row in enumerate(x):
        if row[-1] != 0:
            u[:], fired[:], pos = 0, False, 0
        q = reservoir.quantize_obs(row[:3], p["gain"].astype(np.float32), a["input_bits"])
        counts = np.zeros(n, np.int64)
        n_in = synops = 0
        for t in range(T):
            cur = np.zeros(n, np.int64)
            for j in range(3):
                r = int(stream[(pos * T + t) * 3 + j]) >> (32 - a["input_bits"])
                c = 2 * j if (q[j] > 0 and r < q[j]) else (2 * j + 1 if (q[j] < 0 and r < -q[j]) else None)
                if c is not None:
                    n_in += 1
                    cur += w_in[:, c]
                    synops += int((w_in[:, c] != 0).sum())
            for pre in np.flatnonzero(fired):
                cur += w_rec[:, pre]
                synops += int((w_rec[:, pre] != 0).sum())
            for j in range(n):
                u[j] = u[j] - (u[j] // 2 ** k) + cur[j]
            fired = u >= th
            u[fired] = 0
            counts += fired
        pos += 1
        h = np.maximum(p["w1"].astype(np.int64) @ counts[:ne] + p["b1"].astype(np.int64), 0)
        acc = [int(sum(int(w) * int(v) for w, v in zip(p["w2"][o], h))) + int(p["b2"][o]) for o in range(3)]
        assert counters["action"][i] == int(np.argmax(acc))
        want = np.array([np.float32(v // 2 ** a["out_shift"]) * np.float32(p["out_scale"][0]) for v in acc],
                        np.float32)
        assert np.array_equal(out[i], want)
        assert counters["spikes_in"][i] == n_in and counters["synops"][i] == synops
        assert counters["spikes_exc"][i] == counts[:ne].sum() and counters["spikes_inh"][i] == counts[ne:].sum()
    assert counters["spikes_exc"].min() > 0 and counters["spikes_inh"].sum() > 0
    assert len(set(counters["action"].tolist())) > 1


def test_state_persists_and_reset_restarts(tmp_path):
    m = modelfile.load(random_policy(tmp_path))
    x = sequence(3, 14, np.random.default_rng(2), reset_every=100)
    x[0, -1] = 1
    full = reference.forward(m, x)
    # the same rows after a reset give the same answers as a fresh run
    again = reference.forward(m, np.concatenate([x[:5], x]))
    assert np.array_equal(again[5:], full)
    # without the reset, the history changes the answers (the membranes carried over)
    y = x.copy()
    y[0, -1] = 0
    carried = reference.forward(m, np.concatenate([x[:5], y]))
    assert not np.array_equal(carried[5:], full)


def test_quantized_readout_follows_the_float_readout():
    rng = np.random.default_rng(4)
    T = 100
    w1, b1 = rng.normal(0, 0.3, (32, 120)), rng.normal(0, 0.2, 32)
    w2, b2 = rng.normal(0, 0.5, (2, 32)), rng.normal(20, 1, 2)
    q, shift = reservoir.quantize_readout(w1, b1, w2, b2, T)
    counts = rng.integers(0, T + 1, (500, 120))
    y = np.maximum(counts / T @ w1.T + b1, 0) @ w2.T + b2
    h = np.maximum(counts @ q["w1"].astype(np.int64).T + q["b1"].astype(np.int64), 0)
    acc = h @ q["w2"].astype(np.int64).T + q["b2"].astype(np.int64)
    got = (acc >> shift) * float(q["out_scale"][0])
    assert np.abs(got - y).max() < 1e-3 * np.abs(y).max()
    gap = np.abs(y[:, 0] - y[:, 1])
    assert np.array_equal(acc.argmax(1)[gap > 1e-3], y.argmax(1)[gap > 1e-3])


def test_validation_rejects_bad_nodes(tmp_path):
    good = modelfile.load(random_policy(tmp_path))
    graph, arrays = good.graph, good.arrays

    def expect(msg, change=None, array=None):
        g = {**graph, "layers": [dict(layer) for layer in graph["layers"]]}
        g["layers"][0]["attrs"] = dict(g["layers"][0]["attrs"])
        if change:
            change(g["layers"][0]["attrs"])
        arr = dict(arrays)
        arr.update(array or {})
        with pytest.raises(modelfile.ModelFileError, match=msg):
            modelfile.validate(g, arr)

    expect("unknown attribute 'tau'", lambda a: a.update(tau=3))
    expect("excitatory", lambda a: a.update(excitatory=41))
    expect("leak_shift", lambda a: a.update(leak_shift=0))
    expect("w_in", lambda a: a.update(neurons=41))
    expect("w1", array={"policy.w1": np.zeros((6, 31), np.float32)})
    node = good.layers[0]
    bad = dict(good.params(node))
    bad["w_rec"] = bad["w_rec"] + np.float32(0.5)
    with pytest.raises(reservoir.LSMError, match="integers"):
        reservoir.simulate(node["attrs"], bad, np.zeros((1, 4), np.float32))
    bad = dict(good.params(node))
    bad["w_rec"] = np.full_like(bad["w_rec"], 32767)
    with pytest.raises(reservoir.LSMError, match="overflow int32"):
        reservoir.simulate({**node["attrs"], "leak_shift": 16}, bad, np.zeros((1, 4), np.float32))
    with pytest.raises(reservoir.LSMError, match="out_shift"):
        reservoir.simulate({**node["attrs"], "out_shift": 0}, {**good.params(node), "b2": bad["b2"] * 0 + 2 ** 30},
                           np.zeros((1, 4), np.float32))


# ---------------------------------------------------------------- generated C




@pytest.mark.parametrize("variant", ["O2", "asan-ubsan"])
def test_generated_c_is_bit_exact(variant, tmp_path):
    path = random_policy(tmp_path)
    g = generate(path, "host", tmp_path / "gen")
    assert g.extra_names == [f"policy.{k}" for k in reservoir.COUNTERS]
    build_driver(tmp_path / "gen", tmp_path / "drv", ["-O2"] if variant == "O2" else SANITIZE)
    x = sequence(3, 60, np.random.default_rng(7))
    x[0, -1] = 0               # the first step of a fresh board resets by itself
    out, extra = run_driver(tmp_path / "drv", x, 3, len(g.extra_names))
    m = modelfile.load(path)
    ref, counters = reservoir.simulate(m.layers[0]["attrs"], m.params(m.layers[0]), x)
    assert np.array_equal(out.view(np.uint32), ref.view(np.uint32)), "outputs must be bit-identical"
    want = np.stack([counters[k] for k in reservoir.COUNTERS], axis=1)
    assert np.array_equal(extra.astype(np.int64), want), "action and counters must be identical"
    named = reservoir.model_counters(m, x)             # named as in the firmware's manifest
    assert list(named) == g.extra_names and np.array_equal(np.stack(list(named.values()), axis=1), want)
    assert len(set(want[:, 0].tolist())) > 1 and want[:, 1:].min() >= 0 and want[:, 2].sum() > 0


def test_generated_c_builds_warning_free_for_every_board(tmp_path):
    path = random_policy(tmp_path)
    gen = tmp_path / "gen"
    generate(path, "host", gen)
    text = (gen / "model.c").read_text()
    assert "static hk_lsm_state state" in text and "hk_lsm_step_f32" in text
    inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}", f"-I{gen}"]
    ran = 0
    for board, cc in CROSS.items():
        if not have(cc[0]):
            continue
        run_cc([*cc, *STRICT, "-Wshadow", "-Wconversion", "-Wno-sign-conversion", *inc, "-c",
                str(gen / "model.c"), "-o", str(tmp_path / f"{board}.o")])
        ran += 1
    assert ran >= 1
