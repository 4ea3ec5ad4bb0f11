"""NIR import/export of spiking networks: hilkit -> NIR -> hilkit gives the same file (and identical
spike counts), a LIF network built with the nir package's own constructors imports and runs
bit-exact in the generated C (host, and mps2-an386 under QEMU with its spike counters), the
continuous-to-discrete conversion and its rounding, and exit-2 errors naming what is unsupported."""
import shutil

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from hilkit.codegen.generate import generate  # noqa: E402
from hilkit.host import nir_io  # noqa: E402
from hilkit.host.cli import main as cli  # noqa: E402
from hilkit.models import data, modelfile, reference, snn, snn_convert  # noqa: E402
from helpers import SANITIZE, build_driver, run_driver  # noqa: E402


def spiking_model(path, *, coding="direct", neuron="lif", reset="soft", v_init="half", seed=0):
    """A small fixed-point spiking_net (conv -> avgpool -> dense output) written directly."""
    rng = np.random.default_rng(seed)
    entries = [{"type": "conv", "filters": 4, "kernel": 3, "stride": 1, "padding": "same"},
               {"type": "avgpool", "size": 2}, {"type": "dense", "units": 10}]
    attrs = snn_convert.snn_attrs(entries, timesteps=12, reset=reset, v_init=v_init, neuron=neuron,
                                  leak_shift=2 if neuron == "lif" else 0, coding=coding, input_bits=6, seed=7)
    params = {"l0.weight": rng.integers(-300, 300, (4, 1, 3, 3)), "l0.bias": rng.integers(-50, 200, 4),
              "l0.threshold": np.array([900]), "l2.weight": rng.integers(-400, 400, (10, 36)),
              "l2.bias": rng.integers(-20, 20, 10), "output_scale": np.array([1e-3], np.float32)}
    params = {k: np.asarray(v, np.float32) for k, v in params.items()}
    graph, arrays = snn_convert.build_graph(attrs, params, (1, 6, 6), name="tiny-snn", meta={"test": 1})
    return modelfile.save(path, graph, arrays)


def lif_graph(dt=1e-3, tau=8e-3, cuba=False):
    """Input 64 -> Affine -> LIF (or CubaLIF with tau_syn = dt) -> Affine -> I -> Output, via nir's API."""
    rng = np.random.default_rng(3)
    n = 24
    if cuba:
        neuron = nir.CubaLIF(tau_syn=np.full(n, dt), tau_mem=np.full(n, tau), r=np.full(n, 2.0),
                             v_leak=np.zeros(n), v_threshold=np.full(n, 0.1), w_in=np.ones(n))
    else:
        neuron = nir.LIF(tau=np.full(n, tau), r=np.full(n, 2.0), v_leak=np.full(n, 0.01),
                         v_threshold=np.linspace(0.05, 0.1, n))
    return nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([64])}),
        nir.Affine(weight=rng.standard_normal((n, 64)) * 0.3, bias=rng.standard_normal(n) * 0.05),
        neuron,
        nir.Linear(weight=rng.standard_normal((10, n)) * 0.5),
        nir.I(r=np.full(10, 1.0)),
        nir.Output(output_type={"output": np.array([10])}))


def _c_outputs(model_path, x, tmp_path, flags):
    """The generated C's outputs on the host (the driver also writes the counters; dropped here)."""
    g = generate(model_path, "host", tmp_path / "gen")
    build_driver(tmp_path / "gen", tmp_path / "drv", flags)
    n_out = int(np.prod(g.graph.out_shape))
    out, _ = run_driver(tmp_path / "drv", x.reshape(len(x), -1), n_out, len(g.extra_names))
    return out


def _digits(shape, n=None):
    _, _, x, _ = data.digits_split()
    x = x.reshape((-1,) + tuple(shape)).astype(np.float32)
    return x[:n] if n else x


@pytest.mark.parametrize("kw", [{}, {"coding": "rate", "neuron": "if", "reset": "hard", "v_init": "zero"}],
                         ids=["lif-soft-direct", "if-hard-rate"])
def test_round_trip_is_byte_identical_with_identical_spike_counts(kw, tmp_path):
    src = spiking_model(tmp_path / "s.npz", **kw)
    assert cli(["export", str(src.path), "--format", "nir", "-o", str(tmp_path / "s.nir")]) == 0
    g = nir.read(str(tmp_path / "s.nir"))
    kinds = [type(v).__name__ for v in g.nodes.values()]
    assert {"Conv2d", "SumPool2d", "Flatten", "Affine", "I", "Scale"} <= set(kinds)
    spiking = [v for v in g.nodes.values() if isinstance(v, (nir.IF, nir.LIF))]
    assert [v.metadata["reset"] for v in spiking] == ["subtract" if kw.get("reset", "soft") == "soft" else "zero"]
    assert cli(["import", str(tmp_path / "s.nir"), "-o", str(tmp_path / "back.npz")]) == 0
    assert (tmp_path / "back.npz").read_bytes() == (tmp_path / "s.npz").read_bytes()
    x = np.random.default_rng(1).uniform(0, 1, (40, 1, 6, 6)).astype(np.float32)
    back = modelfile.load(tmp_path / "back.npz")
    c1, c2 = snn.model_counters(src, x), snn.model_counters(back, x)
    assert c1 and all(np.array_equal(c1[k], c2[k]) for k in c1)
    assert c1["snn.spikes_l0"].sum() > 0, "the test network must spike"


def test_export_uses_nir_semantics(tmp_path):
    """One Euler step of the exported neurons adds exactly the integer current; v_th = theta - 1/2."""
    src = spiking_model(tmp_path / "s.npz")
    g = nir_io.to_nir(src, dt=2e-3)
    lif = g.nodes["l0_neuron"]
    assert np.allclose(2e-3 / lif.tau * lif.r, 1.0) and np.allclose(lif.tau, 2e-3 * 4)   # leak_shift 2
    assert np.all(lif.v_threshold == 900 - 0.5) and np.all(lif.v_reset == 0)
    assert np.allclose(g.nodes["l2_neuron"].r * 2e-3, 1.0)
    assert np.all(g.nodes["input_scale"].scale == 64)                                      # 2^input_bits


def test_foreign_lif_graph_imports_and_runs_bit_exact_in_c(tmp_path):
    nir.write(str(tmp_path / "lif.nir"), lif_graph())
    assert cli(["import", str(tmp_path / "lif.nir"), "-o", str(tmp_path / "lif.npz"), "--steps", "16"]) == 0
    m = modelfile.load(tmp_path / "lif.npz")
    a = m.layers[0]["attrs"]
    assert (a["neuron"], a["leak_shift"], a["reset"], a["timesteps"]) == ("lif", 3, "hard", 16)
    x = _digits(m.input_shape, 120)
    ref = reference.forward(m, x)
    assert snn.model_counters(m, x)["snn.spikes_l0"].mean() > 1, "the imported network must spike"
    assert np.array_equal(_c_outputs(tmp_path / "lif.npz", x, tmp_path, ["-O2"]), ref)
    assert np.array_equal(_c_outputs(tmp_path / "lif.npz", x[:8], tmp_path, SANITIZE), ref[:8])


def test_conversion_matches_a_float_euler_simulation(tmp_path):
    """The quantized network's output follows the continuous model run with forward Euler at dt."""
    dt, T = 1e-3, 16
    g = lif_graph(dt=dt, tau=8e-3, cuba=True)  # tau_syn = dt: accepted, the same as LIF with w_in
    graph, arrays, report = nir_io.from_nir(g, dt=dt, steps=T)
    assert report["path"] == "quantized" and report["leak"][0]["relative_error"] < 1e-9
    assert max(r["weight_rel_error"] for r in report["layers"]) < 1e-3
    m = modelfile.validate(graph, arrays)
    aff, neu, lin = g.nodes["affine"], g.nodes["cubalif"], g.nodes["linear"]
    x = _digits(m.input_shape, 60)
    q = snn.quantize_input(x, 8) / 2.0 ** 8          # the input hilkit's direct coding sees
    v = np.zeros((len(x), 24))
    out = np.zeros((len(x), 10))
    for _ in range(T):
        cur = q @ aff.weight.T + aff.bias
        v = v + dt / neu.tau_mem * (neu.v_leak - v + neu.r * cur)
        z = v > neu.v_threshold
        v[z] = 0.0
        out += dt * g.nodes["i"].r * (z @ lin.weight.T)
    hk = reference.forward(m, x)
    assert np.mean(hk.argmax(1) == out.argmax(1)) >= 0.95
    assert np.max(np.abs(hk - out)) <= 0.05 * np.max(np.abs(out))


def _qemu_ok() -> bool:
    return bool(shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"))


@pytest.mark.qemu
@pytest.mark.skipif(not _qemu_ok(), reason="qemu-system-arm / arm-none-eabi-gcc not installed (make setup)")
def test_nir_lif_network_runs_bit_exact_on_mps2_an386(tmp_path):
    from hilkit.host import boards, protocol, runner
    from hilkit.host.compile import compile_model

    nir.write(str(tmp_path / "lif.nir"), lif_graph())
    m, _ = nir_io.import_file(tmp_path / "lif.nir", tmp_path / "lif.npz", steps=16)
    x = _digits(m.input_shape, 40)
    ref, counts = reference.forward(m, x), snn.model_counters(m, x)
    res = compile_model(tmp_path / "lif.npz", "mps2-an386", tmp_path / "out")
    outs, extra = [], []
    with runner.start(boards.get_board("mps2-an386"), res.out_dir / res.manifest["image"]) as t:
        client = protocol.Client(t.link)
        for xi in x:
            r = client.infer(xi.ravel())
            outs.append(r.outputs)
            extra.append(r.extra)
    assert np.array_equal(np.stack(outs), ref)
    extra = np.array(extra)
    for i, name in enumerate(res.manifest["extra"]):
        assert np.array_equal(extra[:, i], counts[name]), name


def test_import_errors_exit_2_and_say_why(tmp_path, capsys):
    rng = np.random.default_rng(0)
    cases = {
        "steps": (lif_graph(), [], "--steps"),
        "cuba": (nir.NIRGraph.from_list(
            nir.Input(input_type={"input": np.array([4])}), nir.Affine(weight=rng.standard_normal((3, 4)), bias=np.zeros(3)),
            nir.CubaLIF(tau_syn=np.full(3, 5e-3), tau_mem=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3),
                        v_threshold=np.ones(3)),
            nir.Affine(weight=rng.standard_normal((2, 3)), bias=np.zeros(2)), nir.I(r=np.ones(2))), ["--steps", "4"],
            "tau_syn"),
        "li-out": (nir.NIRGraph.from_list(
            nir.Input(input_type={"input": np.array([4])}), nir.Affine(weight=rng.standard_normal((2, 4)), bias=np.zeros(2)),
            nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2))), ["--steps", "4"], "LI"),
        "spiking-out": (nir.NIRGraph.from_list(
            nir.Input(input_type={"input": np.array([4])}), nir.Affine(weight=rng.standard_normal((2, 4)), bias=np.zeros(2)),
            nir.IF(r=np.ones(2), v_threshold=np.ones(2))), ["--steps", "4"], "integrator"),
    }
    for name, (g, extra, needle) in cases.items():
        nir.write(str(tmp_path / f"{name}.nir"), g)
        out = tmp_path / f"{name}.npz"
        assert cli(["import", str(tmp_path / f"{name}.nir"), "-o", str(out), *extra]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("hilkit: error:") and needle in err and "Traceback" not in err, err
        assert not out.exists()
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    assert cli(["import", str(tmp_path / "junk.nir"), "-o", str(tmp_path / "j.npz")]) == 2
    # a float model is not a spiking network
    graph = {"format": "hilkit-model", "version": 1, "input": {"name": "input", "shape": [4]},
             "layers": [{"name": "d", "op": "dense", "attrs": {"units": 2}, "params": {"weight": "w", "bias": "b"}}]}
    modelfile.save(tmp_path / "f.npz", graph, {"w": np.ones((2, 4)), "b": np.zeros(2)})
    assert cli(["export", str(tmp_path / "f.npz"), "--format", "nir", "-o", str(tmp_path / "f.nir")]) == 2
    assert "spiking" in capsys.readouterr().err and not (tmp_path / "f.nir").exists()
