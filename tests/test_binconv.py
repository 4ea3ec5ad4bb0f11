"""The binary_snn operator's C (kernels_c/hk_binconv.h, codegen/ops_binary.py): bit packing, and the
generated model bit-exact with the integer reference (spikes, counters, pooled counts) on the host
with the bit-packed, int8-event and int8-dense kernels, the portable popcount, ASan/UBSan; and
warning-free for every board's compiler."""
from __future__ import annotations


import numpy as np
import pytest

from hilkit.codegen import ops_binary
from hilkit.codegen.build import resource_dir
from hilkit.codegen.generate import generate
from hilkit.models import modelfile, reference, stdp
from helpers import CROSS, SANITIZE, STRICT, build_driver, have, run_cc, run_driver

RES3 = [{"filters": 6, "kernel": 5}, {"filters": 7, "kernel": 3, "residual": 1},
        {"filters": 5, "kernel": 3, "residual": 1}]
# name: (input shape, layers, attrs, kernel_bits); together they reach every branch of hk_binconv.h
CASES = {
    "res3-lif-hard": ((1, 8, 8), RES3, dict(timesteps=12, leak_shift=3, reset="hard", pool=2)),
    "res3-if-soft": ((1, 8, 8), RES3, dict(timesteps=9, reset="soft", pool=3, seed=777)),
    # 40 filters and a 35-channel input: spike words that straddle, windows of many words
    "wide": ((35, 5, 6), [{"filters": 40, "kernel": 3}, {"filters": 33, "kernel": 1},
                          {"filters": 9, "kernel": 3, "residual": 1}],
             dict(timesteps=5, leak_shift=1, input_bits=6, pool=2)),
    "k7-one-layer": ((2, 7, 9), [{"filters": 3, "kernel": 7}], dict(timesteps=10, reset="soft", pool=1)),
    # 8, 16 and 32 filters: the bit-sliced kernel (l1 and l2; l0 too with SLICED_MIN_WORDS 1)
    "sliced": ((1, 8, 8), [{"filters": 8, "kernel": 5}, {"filters": 16, "kernel": 3, "residual": 1},
                           {"filters": 32, "kernel": 3, "residual": 1}], dict(timesteps=12, leak_shift=2)),
}


def random_params(layers, kernel_bits, rng, rate=0.25):
    """Random kernels and thresholds that keep every layer firing (binary or int8)."""
    params = {}
    for l in layers:
        if kernel_bits == 1:
            w = np.where(rng.random(l.weight_shape()) < 0.55, 1.0, -1.0)
        else:
            w = np.rint(rng.normal(10, 40, l.weight_shape())).clip(-127, 127)
        scale = np.abs(w).reshape(l.filters, -1).sum(axis=1)
        params[f"{l.name}.weight"] = w
        params[f"{l.name}.threshold"] = np.maximum(1, np.rint(scale * rate * rng.uniform(0.05, 0.3, l.filters)))
    return params


def random_model(name, tmp_path, kernel_bits=1, seed=0):
    shape, entries, opts = CASES[name]
    attrs = {"layers": entries, "kernel_bits": kernel_bits, **opts}
    layers = stdp.geometry(stdp.normalize(attrs), shape)
    params = random_params(layers, kernel_bits, np.random.default_rng(seed))
    graph, arrays = stdp.build_graph(attrs, params, shape, name=name)
    path = tmp_path / f"{name}-{kernel_bits}.npz"
    modelfile.save(path, graph, arrays)
    return path


def inputs(shape, n, rng):
    """Digits-like values in [0, 1], negatives (counted as 0), values above 1 (clamped)."""
    x = rng.uniform(-0.2, 1.1, (n,) + shape).astype(np.float32)
    x[::3] = np.clip(x[::3], 0, 1)
    return x






# ---------------------------------------------------------------- packing
def test_pack_kernels_bit_order():
    w = -np.ones((2, 35, 3, 3))
    w[0, 0, 0, 0] = 1          # bit 0
    w[0, 34, 0, 1] = 1         # tap 1, channel 34: bit 35 + 34 = 69 -> word 2, bit 5
    w[1, 3, 2, 2] = 1          # tap 8: bit 8 * 35 + 3 = 283 -> word 8, bit 27
    packed = ops_binary.pack_kernels(w)
    assert packed.shape == (2, 10) and packed.dtype == np.uint32   # 315 bits
    assert packed[0].tolist() == [1, 0, 1 << 5] + [0] * 7
    assert packed[1].tolist() == [0] * 8 + [1 << 27, 0]
    w = np.where(np.arange(16 * 2 * 9).reshape(16, 2, 3, 3) % 3 == 0, 1, -1)
    sl = ops_binary.pack_sliced(w)
    assert sl.shape == (18,) and sl.dtype == np.uint16                 # 18 synapses x 16 filters
    for d, (ky, kx, c) in enumerate((ky, kx, c) for ky in range(3) for kx in range(3) for c in range(2)):
        assert int(sl[d]) == sum(1 << f for f in range(16) if w[f, c, ky, kx] > 0)
    assert ops_binary.pack_sliced(np.ones((8, 1, 1, 1))).tolist() == [255]
    ev = ops_binary.int8_kernels(np.arange(2 * 3 * 3 * 3).reshape(2, 3, 3, 3), "event")
    assert ev.shape == (27, 2) and ev[1].tolist() == [9, 36]           # (ky 0, kx 0, c 1) of each filter


def test_kernel_memory_of_a_binary_node(tmp_path):
    from hilkit.codegen import ir, passes
    m = modelfile.load(random_model("res3-lif-hard", tmp_path))
    node = passes.run_default(ir.from_model(m)).nodes[0]
    mem = ops_binary.kernel_bytes(node)
    # l0 5x5x1 = 25 bits -> 1 word; l1 3x3x(6+1) = 63 -> 2 words; l2 3x3x(7+6) = 117 -> 4 words
    assert [r["bytes"] for r in mem["layers"]] == [6 * 4, 7 * 8, 5 * 16]
    assert mem["float32_bytes"] == 4 * (6 * 25 + 7 * 63 + 5 * 117)


# ---------------------------------------------------------------- generated C on the host
BIT_EXACT = ([(name, 1, "event", "O2") for name in sorted(CASES)]
             + [("sliced", 1, "event", "O2-all-sliced"), ("sliced", 1, "event", "O2-none-sliced")]
             + [(name, 8, kind, "O2") for name in ("res3-lif-hard", "wide") for kind in ("event", "dense")]
             + [("wide", 1, "event", "portable-popcount"), ("sliced", 1, "event", "hw-popcount")]
             + [("sliced", 1, "event", "asan-ubsan"), ("wide", 8, "event", "asan-ubsan"),
                ("res3-if-soft", 8, "dense", "asan-ubsan")])
FLAGS = {"O2": ["-O2"], "portable-popcount": ["-O2", "-DHK_BINCONV_PORTABLE", "-mpopcnt"], "asan-ubsan": SANITIZE,
         "O2-all-sliced": ["-O2"], "O2-none-sliced": ["-O2"], "hw-popcount": ["-O2", "-mpopcnt"]}


def _host_popcnt() -> bool:
    """x86-64 with the POPCNT instruction (the __builtin_popcount path of hk_binconv.h)."""
    import platform
    from pathlib import Path
    cpuinfo = Path("/proc/cpuinfo")
    return platform.machine() == "x86_64" and cpuinfo.is_file() and " popcnt" in cpuinfo.read_text()
SLICED_MIN_WORDS = {"O2-all-sliced": 1, "O2-none-sliced": 0}


@pytest.mark.skipif(not have("gcc"), reason="no host gcc")
@pytest.mark.parametrize("name,kernel_bits,int8_kernel,flags", BIT_EXACT)
def test_generated_c_is_bit_exact(name, kernel_bits, int8_kernel, flags, tmp_path, monkeypatch):
    if flags == "hw-popcount" and not _host_popcnt():
        pytest.skip("the host is not x86-64 with POPCNT")
    monkeypatch.setattr(ops_binary, "INT8_KERNEL", int8_kernel)
    monkeypatch.setattr(ops_binary, "SLICED_MIN_WORDS", SLICED_MIN_WORDS.get(flags, ops_binary.SLICED_MIN_WORDS))
    path = random_model(name, tmp_path, kernel_bits)
    m = modelfile.load(path)
    g = generate(path, "host", tmp_path / "gen")
    exe = tmp_path / "model"
    build_driver(tmp_path / "gen", exe, FLAGS[flags])
    shape = CASES[name][0]
    x = inputs(shape, 12, np.random.default_rng(5))
    node = m.layers[0]
    ref = stdp.simulate(node["attrs"], m.params(node), x)
    out, extra = run_driver(exe, x, int(np.prod(m.output_shape)), len(g.extra_names))
    names = stdp.counter_names(stdp.geometry(stdp.normalize(node["attrs"]), shape))
    assert g.extra_names == [f"snn.{c}" for c in names]
    assert np.array_equal(out.reshape(ref.output.shape), ref.output)
    want = np.stack(list(ref.counters.values()), axis=1)
    assert np.array_equal(extra.astype(np.int64), want)
    assert np.array_equal(out, reference.forward(m, x).reshape(len(x), -1))
    sliced = (g.out_dir / "model.c").read_text().count("hk_binconv_step_b1s(")
    assert sliced == {"sliced": {"O2-all-sliced": 3, "O2-none-sliced": 0}.get(flags, 2)}.get(name, 0)
    # the case exercises the network: every layer spikes, some pooled counts differ between samples
    assert want.min() > 0 and np.ptp(ref.output, axis=0).max() > 0


def test_binary_and_int8_kernels_of_the_same_layer_agree(tmp_path):
    """+/-1 weights stored as int8 give the same spikes as the bit-packed kernel."""
    path = random_model("res3-lif-hard", tmp_path, 1)
    m = modelfile.load(path)
    node = m.layers[0]
    x = inputs((1, 8, 8), 8, np.random.default_rng(2))
    a = stdp.simulate(node["attrs"], m.params(node), x)
    b = stdp.simulate({**node["attrs"], "kernel_bits": 8}, m.params(node), x)
    assert np.array_equal(a.output, b.output)
    assert all(np.array_equal(a.counters[k], b.counters[k]) for k in a.counters)


@pytest.mark.parametrize("board_id", sorted(CROSS))
def test_generated_c_compiles_warning_free_for_every_board(board_id, tmp_path, monkeypatch):
    cc = CROSS[board_id]
    if not have(cc[0]):
        pytest.skip(f"{cc[0]} not installed")
    inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}"]
    # "sliced" has both binary kernels (l0 AND + popcount, l1 and l2 bit-sliced)
    for name, bits, kind in (("sliced", 1, "event"), ("wide", 8, "event"), ("wide", 8, "dense")):
        monkeypatch.setattr(ops_binary, "INT8_KERNEL", kind)
        gen = tmp_path / f"gen-{name}{bits}{kind}"
        generate(random_model(name, tmp_path, bits), board_id, gen)
        run_cc([*cc, *STRICT, *inc, f"-I{gen}", "-c", str(gen / "model.c"), "-o", str(gen / "model.o")])
