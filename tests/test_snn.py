"""The spiking_net operator: model-file validation, the integer reference, and the generated C
bit-exact against it on the host (plain, portable ctz, ASan/UBSan) and warning-free for every
board's compiler."""
from __future__ import annotations


import numpy as np
import pytest

from hilkit.codegen.build import resource_dir
from hilkit.codegen.generate import generate
from hilkit.models import modelfile, reference, snn, snn_spec
from hilkit.models.snn_convert import FloatSNN, build_graph, quantize
from helpers import CROSS, SANITIZE, STRICT, build_driver, have, run_cc, run_driver

CNN = [{"type": "conv", "filters": 8, "kernel": 3}, {"type": "avgpool", "size": 2},
       {"type": "conv", "filters": 16, "kernel": 3}, {"type": "avgpool", "size": 2},
       {"type": "dense", "units": 10}]
# name: (input shape, layers, options); together they reach every branch of hk_snn.h
CASES = {
    "cnn-direct-soft": ((1, 8, 8), CNN, dict(timesteps=12, reset="soft", v_init="half")),
    "cnn-rate-hard-lif": ((1, 8, 8), CNN, dict(timesteps=20, reset="hard", coding="rate", neuron="lif",
                                               leak_shift=3, seed=12345)),
    "cnn-int8-stride2": ((2, 9, 7), [{"type": "conv", "filters": 5, "kernel": 3, "stride": 2},
                                     {"type": "conv", "filters": 6, "kernel": 2, "padding": "valid"},
                                     {"type": "dense", "units": 4}],
                         dict(timesteps=9, weight_bits=8, input_bits=6)),
    # 40 channels (two bit words per pixel), a dense first layer on a [C, H, W] input
    "wide-rate": ((3, 4, 4), [{"type": "conv", "filters": 40, "kernel": 3}, {"type": "avgpool", "size": 3},
                              {"type": "dense", "units": 7}],
                  dict(timesteps=6, coding="rate", v_init="zero", input_bits=10)),
    "mlp-image-input": ((1, 8, 8), [{"type": "dense", "units": 37}, {"type": "dense", "units": 10}],
                        dict(timesteps=16, neuron="lif", leak_shift=1, reset="soft")),
    # int8 weights, stride 2, rate coding, LIF, hard reset: every kernel of hk_snn.h instantiated
    "all-paths": ((2, 9, 7), [{"type": "conv", "filters": 5, "kernel": 3, "stride": 2},
                              {"type": "conv", "filters": 6, "kernel": 2, "padding": "valid"},
                              {"type": "dense", "units": 4}],
                  dict(timesteps=9, weight_bits=8, coding="rate", neuron="lif", leak_shift=2, reset="hard")),
    "mlp-rate-image": ((2, 4, 4), [{"type": "dense", "units": 20}, {"type": "dense", "units": 5}],
                       dict(timesteps=10, coding="rate", seed=7)),
    "mlp-1d": ((64,), [{"type": "dense", "units": 32}, {"type": "dense", "units": 10}],
               dict(timesteps=64, reset="hard")),
}


def random_model(name, tmp_path, seed=0):
    """A spiking_net with random float weights (biased to fire), quantized by `quantize`."""
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
    attrs, params = quantize(FloatSNN(shape, entries, weights, thr), **opts)
    graph, arrays = build_graph(attrs, params, shape, name=name, softmax=False)
    path = tmp_path / f"{name}.npz"
    modelfile.save(path, graph, arrays)
    return path


def inputs(shape, n, rng):
    """Digits-like values, negatives, exact and near halves of the 2^-bits grid, out-of-range values."""
    x = rng.uniform(-0.3, 1.0, (n,) + shape).astype(np.float32)
    x[::4] = np.clip(x[::4], 0, 1)
    flat = x.reshape(n, -1)
    special = np.array([0.5 / 256, np.nextafter(np.float32(0.5 / 256), np.float32(0)), 1.0, 1.5, -2.0,
                        -0.5 / 256, 0.49999997, 3 / 64 + 1 / 128, 1e-30, -0.0], np.float32)
    flat[1, :len(special)] = special[:flat.shape[1]]
    return x






# ---------------------------------------------------------------- reference and validation
def test_xorshift32_and_quantization():
    assert snn.xorshift32(1, 4).tolist() == [270369, 67634689, 2647435461, 307599695]
    q = snn.quantize_input(np.array([0.5 / 256, 1.5 / 256, -0.5 / 256, 2.0, -7.0, 0.25], np.float32), 8)
    assert q.tolist() == [1, 2, -1, 256, -256, 64]


def test_reference_matches_a_plain_loop(tmp_path):
    """The vectorised reference against a per-sample, per-neuron loop written from the equations."""
    m = modelfile.load(random_model("mlp-image-input", tmp_path))
    node = m.layers[0]
    p = {k: np.rint(v).astype(np.int64) for k, v in m.params(node).items()}
    a = node["attrs"]
    x = inputs((1, 8, 8), 5, np.random.default_rng(3))
    res = snn.simulate(a, m.params(node), x)
    w0, b0, th0 = p["l0.weight"], p["l0.bias"], int(p["l0.threshold"][0])
    w1, b1 = p["l1.weight"], p["l1.bias"]
    for i in range(len(x)):
        q = snn.quantize_input(x[i].ravel(), a["input_bits"])
        cur0 = w0 @ q + b0
        u = np.full(37, th0 // 2 if a["v_init"] == "half" else 0, np.int64)
        out = np.zeros(10, np.int64)
        spikes = synops = 0
        for _ in range(a["timesteps"]):
            u = u - (u >> a["leak_shift"]) + cur0
            s = u >= th0
            u[s] -= th0
            spikes += int(s.sum())
            synops += int(s.sum()) * 10
            out += w1 @ s.astype(np.int64) + b1
        assert np.array_equal(res.membrane[i], out)
        assert res.counters["spikes_l0"][i] == spikes and res.counters["synops"][i] == synops
    assert res.counters["spikes_l0"].min() > 0


def test_validation_rejects_bad_nodes(tmp_path):
    good = modelfile.load(random_model("mlp-1d", tmp_path))
    graph, arrays = good.graph, good.arrays

    def expect(msg, change=None, array=None):
        g = {**graph, "layers": [dict(layer) for layer in graph["layers"]]}
        g["layers"][0]["attrs"] = dict(g["layers"][0]["attrs"])
        if change:
            change(g["layers"][0]["attrs"])
        arr = dict(arrays)
        if array:
            arr.update(array)
        with pytest.raises(modelfile.ModelFileError, match=msg):
            modelfile.validate(g, arr)

    expect("unknown attribute 'tau'", lambda a: a.update(tau=3))
    expect("timesteps", lambda a: a.update(timesteps=0))
    expect("leak_shift must be 0", lambda a: a.update(leak_shift=2))
    expect("reset", lambda a: a.update(reset="zero"))
    expect("the last layer must be dense", lambda a: a.update(layers=[{"type": "dense", "units": 32},
                                                                     {"type": "avgpool", "size": 2}]))
    expect("missing parameter 'l0.threshold'|l0.weight", lambda a: a.update(layers=[{"type": "dense", "units": 33},
                                                                                    {"type": "dense", "units": 10}]))
    m = modelfile.validate(graph, arrays)
    node = m.layers[0]
    bad = dict(m.params(node))
    bad["l0.weight"] = bad["l0.weight"] + np.float32(0.5)
    with pytest.raises(snn_spec.SpecError, match="integers"):
        snn.simulate(node["attrs"], bad, np.zeros((1, 64), np.float32))
    with pytest.raises(snn_spec.SpecError, match="overflow int32"):
        snn.simulate({**node["attrs"], "timesteps": 4000}, m.params(node), np.zeros((1, 64), np.float32))


def test_reference_forward_and_counters_of_a_model_file(tmp_path):
    path = random_model("cnn-direct-soft", tmp_path)
    m = modelfile.load(path)
    x = inputs((1, 8, 8), 6, np.random.default_rng(1))
    y = reference.forward(m, x)
    assert y.dtype == np.float32 and y.shape == (6, 10)
    c = snn.model_counters(m, x)
    assert list(c) == ["snn.spikes_l0", "snn.spikes_l2", "snn.synops"]
    assert c["snn.spikes_l0"].min() > 0 and c["snn.spikes_l2"].min() > 0
    # direct coding: synops are the spikes of l0 fanned out through the pooled conv and l2's through dense
    assert np.all(c["snn.synops"] >= 10 * c["snn.spikes_l2"])


# ---------------------------------------------------------------- generated C on the host
# Every case at -O2; the portable ctz and the sanitizers on the cases that reach every branch.
BIT_EXACT = ([(name, "O2") for name in sorted(CASES)]
             + [(name, "portable-ctz") for name in ("cnn-rate-hard-lif", "wide-rate")]
             + [(name, "asan-ubsan") for name in ("cnn-rate-hard-lif", "wide-rate", "cnn-int8-stride2")])


@pytest.mark.parametrize("name,variant", BIT_EXACT)
def test_generated_c_is_bit_exact(name, variant, tmp_path):
    path = random_model(name, tmp_path)
    g = generate(path, "host", tmp_path / "gen")
    flags = {"O2": ["-O2"], "portable-ctz": ["-O2", "-DHK_SNN_PORTABLE"], "asan-ubsan": SANITIZE}[variant]
    build_driver(tmp_path / "gen", tmp_path / "drv", flags)
    m = modelfile.load(path)
    x = inputs(m.input_shape, 40, np.random.default_rng(7))
    out, extra = run_driver(tmp_path / "drv", x, m.output_shape[0], len(g.extra_names))
    node = m.layers[0]
    res = snn.simulate(node["attrs"], m.params(node), x)
    assert np.array_equal(out.view(np.uint32), res.output.view(np.uint32)), "outputs must be bit-identical"
    ref = np.stack([res.counters[k] for k in res.counters], axis=1)
    assert g.extra_names == [f"snn.{k}" for k in res.counters]
    assert np.array_equal(extra.astype(np.int64), ref), "spike and synop counters must be identical"
    assert ref[:, :-1].sum() > 0


@pytest.mark.parametrize("toolchain", sorted(CROSS))
def test_generated_c_compiles_without_warnings(toolchain, tmp_path):
    cc, *flags = CROSS[toolchain]
    if not have(cc):
        pytest.skip(f"{cc} not installed (run `make setup`)")
    gen = tmp_path / "gen"
    generate(random_model("all-paths", tmp_path), "host", gen)
    inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}", f"-I{gen}"]
    run_cc([cc, *flags, *STRICT, "-O2", *inc, "-c", str(gen / "model.c"), "-o", str(gen / "model.o")])


def test_generated_source_names_its_scratch_and_counters(tmp_path):
    generate(random_model("cnn-direct-soft", tmp_path), "mps2-an386", tmp_path / "gen")
    src = (tmp_path / "gen" / "model.c").read_text()
    assert "static const int16_t snn_l0_weight[72]" in src
    assert "SNN_MEM_WORDS = 778" in src and "static int32_t mem[SNN_MEM_WORDS];" in src
    assert "T=12, IF, soft reset, v_init half, direct coding, int16 weights, 3872 MACs" in src
    assert "/* counters: spikes_l0, spikes_l2, synops */" in src
