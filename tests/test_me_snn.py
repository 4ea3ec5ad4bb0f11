"""The me_spiking_net operator (ME-LIF neurons, stochastic firing): validation, the integer
reference (a step table is exactly the deterministic LIF; the draw order), the generated C
bit-exact against the reference on the host (plain and ASan/UBSan) and warning-free for every
board's compiler, the digits-snn-me recipe and the energy report."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from hilkit.codegen.build import resource_dir
from hilkit.codegen.generate import generate
from hilkit.models import me_neuron as M
from hilkit.models import me_snn, modelfile, opset, reference, snn, snn_spec
from hilkit.models.data import digits_split
from hilkit.models.network import GraphBuilder
from hilkit.models.snn_convert import FloatSNN, quantize
from helpers import CROSS, SANITIZE, STRICT, build_driver, have, run_cc

CNN = [{"type": "conv", "filters": 8, "kernel": 3}, {"type": "avgpool", "size": 2},
       {"type": "conv", "filters": 16, "kernel": 3}, {"type": "avgpool", "size": 2},
       {"type": "dense", "units": 10}]
CASES = {
    "cnn-direct": ((1, 8, 8), CNN, dict(timesteps=12)),
    # rate coding, int8, 40 channels (two bit words per pixel), stride 2, pooling, v_init half
    "all-paths": ((2, 9, 7), [{"type": "conv", "filters": 40, "kernel": 3, "stride": 2}, {"type": "avgpool", "size": 2},
                              {"type": "conv", "filters": 6, "kernel": 2}, {"type": "dense", "units": 4}],
                  dict(timesteps=9, coding="rate", seed=777, weight_bits=8, leak_shift=2, v_init="half")),
    "mlp-1d": ((64,), [{"type": "dense", "units": 32}, {"type": "dense", "units": 10}], dict(timesteps=20)),
}


def lif_params(name, seed=0):
    """A LIF / hard-reset spiking_net with random weights biased to fire."""
    shape, entries, opts = CASES[name]
    rng = np.random.default_rng(seed)
    geo = snn_spec.geometry({"layers": entries}, shape)
    weights, thr = {}, {}
    for l in geo:
        fan_in = int(np.prod(l.weight_shape()[1:]))
        weights[f"{l.name}.weight"] = rng.normal(0.15, 1.0, l.weight_shape()) * 2.5 / np.sqrt(fan_in)
        weights[f"{l.name}.bias"] = rng.normal(0.1, 0.2, l.out_dims[0])
        if l.spiking:
            thr[l.name] = 1.0
    opts = dict({"leak_shift": 4}, **opts)
    attrs, params = quantize(FloatSNN(shape, entries, weights, thr), reset="hard", neuron="lif", **opts)
    return shape, attrs, params


def me_model(name, tmp_path, seed=0, **kw):
    shape, attrs, params = lif_params(name, seed)
    a, p = me_snn.from_lif(attrs, params, shape, **kw)
    b = GraphBuilder(shape)
    b.add("me_spiking_net", [b.input_name], a, p, name="snn")
    graph, arrays = b.graph(name=name)
    path = tmp_path / f"{name}.npz"
    modelfile.save(path, graph, arrays)
    return path


def inputs(shape, n, rng):
    x = rng.uniform(-0.3, 1.0, (n,) + shape).astype(np.float32)
    x[::4] = np.clip(x[::4], 0, 1)
    return x


# ---------------------------------------------------------------- spec and reference
def test_validation_names_what_is_wrong():
    shape, attrs, params = lif_params("mlp-1d")
    a, p = me_snn.from_lif(attrs, params, shape)
    opset.check("me_spiking_net", a, [shape])
    for bad, msg in ((dict(a, neuron="if", leak_shift=0), "must be 'lif'"), (dict(a, reset="soft"), "resets hard"),
                     (dict(a, fire_seed=0), "fire_seed"), (dict(a, table_bins=1), "table_bins"),
                     (dict(a, colour=1), "unknown attribute")):
        with pytest.raises(opset.OpError, match=msg):
            opset.check("me_spiking_net", bad, [shape])
    layers = snn_spec.geometry(a, shape)
    for key, value, msg in (("l0.fire_table", p["l0.fire_table"][::-1].copy(), "not decrease"),
                            ("l0.fire_table", p["l0.fire_table"] + 0.5, "integers"),
                            ("l0.fire_table", np.full(64, 70000.0, np.float32), "integers in 0..65536"),
                            ("l0.table_shift", np.array([31.0], np.float32), "0..30")):
        with pytest.raises(snn_spec.SpecError, match=msg):
            me_snn.check_values(a, layers, dict(p, **{key: value}))


def test_a_step_table_is_the_deterministic_lif(rng):
    """P = 0 below the threshold and 1 from it on (threshold on a bin edge): every spike and output
    equals the spiking_net reference's LIF with hard reset."""
    for name in ("cnn-direct", "all-paths"):
        shape, attrs, params = lif_params(name)
        a, p = me_snn.from_lif(attrs, params, shape)
        p = dict(p)
        for l in snn_spec.geometry(a, shape):
            if l.spiking:
                s = int(p[f"{l.name}.table_shift"][0])
                edge = int(params[f"{l.name}.threshold"][0]) >> s
                p[f"{l.name}.threshold"] = np.array([edge << s], np.float32)
                p[f"{l.name}.fire_table"] = np.where(np.arange(64) >= edge, me_snn.P_ONE, 0).astype(np.float32)
        lif_p = {k: v for k, v in p.items() if not k.endswith((".fire_table", ".table_shift"))}
        x = inputs(shape, 12, rng)
        me, det = me_snn.simulate(a, p, x), snn.simulate(attrs, lif_p, x)
        assert np.array_equal(me.output, det.output)
        for k in det.counters:
            assert np.array_equal(me.counters[k], det.counters[k]), k
        assert det.counters["spikes_l0"].sum() > 0


def test_fire_draws_follow_the_c_order():
    shape, attrs, params = lif_params("all-paths")
    a, _ = me_snn.from_lif(attrs, params, shape)
    layers = snn_spec.geometry(a, shape)
    d = me_snn.fire_draws(a, layers)
    c, h, w = layers[0].out_dims
    c2, h2, w2 = layers[1].out_dims
    per_step = c * h * w + c2 * h2 * w2
    r = (snn.xorshift32(a["fire_seed"], a["timesteps"] * per_step) >> np.uint32(16)).reshape(a["timesteps"], per_step)
    assert list(d) == [0, 1] and d[0].shape == (a["timesteps"], c, h, w)
    # each step: layer 0's neurons in [H][W][C] order, then layer 1's
    assert d[0][3, 5, 1, 2] == r[3, (1 * w + 2) * c + 5]
    assert d[1][4, 2, 0, 1] == r[4, c * h * w + (0 * w2 + 1) * c2 + 2]


def test_stochastic_firing_follows_the_table(rng):
    """A layer held at one membrane value fires with the table's probability of that bin."""
    shape, attrs, params = lif_params("mlp-1d")
    a, p = me_snn.from_lif(attrs, params, shape, fire_seed=99)
    table = p["l0.fire_table"]
    mid = int(np.argmin(np.abs(table - me_snn.P_ONE / 2)))
    layers = snn_spec.geometry(a, shape)
    draws = me_snn.fire_draws(dict(a, timesteps=200), layers)[0]
    assert (draws < table[mid]).mean() == pytest.approx(table[mid] / me_snn.P_ONE, abs=0.02)
    # and the seed changes the spikes, not their statistics
    x = inputs(shape, 30, rng)
    s1 = me_snn.simulate(a, p, x).counters["spikes_l0"]
    s2 = me_snn.simulate(dict(a, fire_seed=12345), p, x).counters["spikes_l0"]
    assert not np.array_equal(s1, s2) and s1.mean() == pytest.approx(s2.mean(), rel=0.1)


def test_tables_come_from_the_fitted_device_model():
    dev = M.NOMINAL
    assert me_snn.leak_shift(dev) == 5                 # tau = 315 ns over 10 ns steps: 1 - 2^-5
    theta = 1 << 20
    s = me_snn.table_shift(theta, 64)
    assert 64 << s >= 2 * theta and 64 << (s - 1) < 2 * theta
    t = me_snn.fire_table(dev, M.FITTED, theta, s, 64)
    centre = (np.arange(64) + 0.5) * (1 << s)
    assert np.all(np.diff(t) >= 0) and t[0] == 0
    k = 40
    v = M.FITTED.v50(dev) * centre[k] / theta
    assert t[k] == np.rint(M.FITTED.p_step(dev, v) * 65536)
    assert t[np.searchsorted(centre, theta) - 1] <= 32768 <= t[np.searchsorted(centre, theta)]


def test_device_level_network_runs_with_variation(rng):
    shape, attrs, params = lif_params("mlp-1d")
    a, p = me_snn.from_lif(attrs, params, shape)
    x = inputs(shape, 20, rng)
    nominal = me_snn.simulate_device(a, p, x, rng=np.random.default_rng(1))
    low_c = me_snn.simulate_device(a, p, x, rng=np.random.default_rng(1), corner={"c_ox": 0.9})
    spread = me_snn.simulate_device(a, p, x, rng=np.random.default_rng(1), spread={"delta0": 0.1, "c_ox": 0.1})
    det = me_snn.simulate_device(a, p, x, deterministic=True)
    for r in (nominal, low_c, spread, det):
        assert r.output.shape == (20, 10) and r.counters["spikes_l0"].sum() > 0
    # a smaller capacitor reaches a higher voltage for the same charge: more spikes
    assert low_c.counters["spikes_l0"].sum() > nominal.counters["spikes_l0"].sum()


# ---------------------------------------------------------------- generated C


@pytest.mark.parametrize("name,variant", [(n, "O2") for n in sorted(CASES)]
                         + [("all-paths", "asan-ubsan")])
def test_generated_c_is_bit_exact(name, variant, tmp_path):
    path = me_model(name, tmp_path)
    g = generate(path, "host", tmp_path / "gen")
    build_driver(tmp_path / "gen", tmp_path / "drv", ["-O2"] if variant == "O2" else SANITIZE)
    m = modelfile.load(path)
    x = inputs(m.input_shape, 30, np.random.default_rng(7))
    p = subprocess.run([str(tmp_path / "drv")], input=x.tobytes(), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    n_out, n_extra = m.output_shape[0], len(g.extra_names)
    raw = np.frombuffer(p.stdout, np.uint8).reshape(len(x), 4 * (n_out + n_extra))
    out, extra = raw[:, :4 * n_out].copy().view(np.float32), raw[:, 4 * n_out:].copy().view(np.uint32)
    res = me_snn.simulate(m.layers[0]["attrs"], m.params(m.layers[0]), x)
    assert np.array_equal(out.view(np.uint32), res.output.view(np.uint32)), "outputs must be bit-identical"
    assert g.extra_names == [f"snn.{k}" for k in res.counters]
    ref = np.stack([res.counters[k] for k in res.counters], axis=1)
    assert np.array_equal(extra.astype(np.int64), ref), "spike and synop counters must be identical"
    assert ref[:, :-1].sum() > 0
    assert np.array_equal(reference.forward(m, x), res.output)


@pytest.mark.parametrize("toolchain", sorted(CROSS))
def test_generated_c_compiles_without_warnings(toolchain, tmp_path):
    cc, *flags = CROSS[toolchain]
    if not have(cc):
        pytest.skip(f"{cc} not installed (run `make setup`)")
    gen = tmp_path / "gen"
    generate(me_model("all-paths", tmp_path), "host", gen)
    inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}", f"-I{gen}"]
    run_cc([cc, *flags, *STRICT, "-O2", *inc, "-c", str(gen / "model.c"), "-o", str(gen / "model.o")])


def test_generated_source_reads_like_the_layers(tmp_path):
    generate(me_model("cnn-direct", tmp_path), "mps2-an386", tmp_path / "gen")
    src = (tmp_path / "gen" / "model.c").read_text()
    assert '#include "hk_me.h"' in src and "hk_me_run(&me," in src
    assert "static const uint32_t snn_l0_fire_table[64]" in src
    assert "ME-LIF stochastic firing (64-bin tables" in src
    assert "/* counters: spikes_l0, spikes_l2, synops */" in src


# ---------------------------------------------------------------- recipe and report
def test_recipe_and_energy_report(tmp_path):
    from hilkit.host.me_report import me_metrics
    from hilkit.models import recipes

    s = recipes.RECIPES["digits-snn-me"](tmp_path / "me.npz", epochs=2)
    assert s["recipe"] == "digits-snn-me" and s["timesteps"] == 32
    assert s["test_accuracy"] > 0.7 and abs(s["test_accuracy"] - s["lif_test_accuracy"]) < 0.06
    m = modelfile.load(tmp_path / "me.npz")
    assert [la["op"] for la in m.layers] == ["me_spiking_net", "softmax"]
    assert m.graph["meta"]["neuron"]["device"]["c_ox_f"] == pytest.approx(M.NOMINAL.c_ox)
    x = np.asarray(digits_split()[2][:8], np.float32)
    ref = me_snn.model_counters(m, x)
    names = list(ref)
    extras = np.stack([ref[k] for k in names], axis=1).astype(np.uint32).tolist()
    met = me_metrics({"extra": names}, m, x, extras)
    assert met["spike_agreement"] == 1.0 and met["spike_mismatches"] == []
    e = met["me_energy"]
    assert e["neurons"]["cmos_over_me"] > 100 and e["total_cmos_lif_uj"] > e["total_me_lif_uj"] > 0
    extras[3][0] += 1
    assert me_metrics({"extra": names}, m, x, extras)["spike_agreement"] == pytest.approx(7 / 8)
