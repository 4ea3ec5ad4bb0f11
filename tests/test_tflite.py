""".tflite import/export: byte-identical round trips of the recipes, models built with LiteRT's own
schema objects (not hilkit's exporter) importing and agreeing with LiteRT through the numpy reference
and the generated C (strict warnings on every board compiler, ASan/UBSan on the host), every
interchange op exported and run by LiteRT, and clear exit-2 errors naming what is unsupported."""
import subprocess

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

import flatbuffers  # noqa: E402
from ai_edge_litert import schema_py_generated as S  # noqa: E402

from hilkit.codegen.build import resource_dir  # noqa: E402
from hilkit.codegen.generate import generate  # noqa: E402
from hilkit.host import litert, tflite  # noqa: E402
from hilkit.host.cli import main as cli  # noqa: E402
from hilkit.models import data, modelfile, reference  # noqa: E402
from helpers import CROSS, ROOT, SANITIZE, STRICT, have, run_cc  # noqa: E402

B, A = S.BuiltinOperator, S.ActivationFunctionType


class TflBuilder:
    """A .tflite written directly with LiteRT's schema object API (independent of hilkit's exporter)."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.tensors, self.ops, self.codes, self.buffers = [], [], [], [S.BufferT()]

    def t(self, shape, data=None, name=None, dtype=np.float32):
        t = S.TensorT()
        t.name = name or f"t{len(self.tensors)}"
        t.shape = np.array(shape, np.int32)
        t.type = {np.float32: S.TensorType.FLOAT32, np.int32: S.TensorType.INT32,
                  np.int8: S.TensorType.INT8}[dtype]
        t.buffer = 0
        if data is not None:
            b = S.BufferT()
            b.data = np.frombuffer(np.asarray(data, dtype).tobytes(), np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def w(self, *shape, scale=0.5):
        return self.t(shape, self.rng.standard_normal(shape).astype(np.float32) * scale)

    def i32(self, values):
        values = np.asarray(values, np.int32)
        return self.t(values.shape, values, dtype=np.int32)

    def op(self, code, ins, out_shape, opts=None, opt_type=0, name=None):
        codes = [c.builtinCode for c in self.codes]
        if code not in codes:
            oc = S.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
            self.codes.append(oc)
            codes.append(code)
        out = self.t(out_shape, name=name)
        o = S.OperatorT()
        o.opcodeIndex = codes.index(code)
        o.inputs, o.outputs = np.array(ins, np.int32), np.array([out], np.int32)
        o.builtinOptionsType, o.builtinOptions = opt_type, opts
        self.ops.append(o)
        return out

    def conv(self, x, cin, cout, k, out_shape, pad=S.Padding.SAME, stride=1, act=A.NONE):
        o = S.Conv2DOptionsT()
        o.padding, o.strideH, o.strideW, o.fusedActivationFunction = pad, stride, stride, act
        o.dilationHFactor = o.dilationWFactor = 1
        return self.op(B.CONV_2D, [x, self.w(cout, k, k, cin), self.w(cout)], out_shape, o,
                       S.BuiltinOptions.Conv2DOptions)

    def fc(self, x, n_in, units, act=A.NONE):
        o = S.FullyConnectedOptionsT()
        o.fusedActivationFunction = act
        return self.op(B.FULLY_CONNECTED, [x, self.w(units, n_in, scale=0.3), self.w(units)], [1, units], o,
                       S.BuiltinOptions.FullyConnectedOptions)

    def pool(self, code, x, k, s, out_shape, pad=S.Padding.VALID):
        o = S.Pool2DOptionsT()
        o.padding, o.strideH, o.strideW, o.filterHeight, o.filterWidth = pad, s, s, k, k
        return self.op(code, [x], out_shape, o, S.BuiltinOptions.Pool2DOptions)

    def binary(self, code, a, b, out_shape, act=A.NONE):
        o = S.AddOptionsT() if code == B.ADD else S.MulOptionsT()
        o.fusedActivationFunction = act
        return self.op(code, [a, b], out_shape, o,
                       S.BuiltinOptions.AddOptions if code == B.ADD else S.BuiltinOptions.MulOptions)

    def reshape(self, x, shape):
        o = S.ReshapeOptionsT()
        o.newShape = list(shape)
        return self.op(B.RESHAPE, [x, self.i32(shape)], shape, o, S.BuiltinOptions.ReshapeOptions)

    def softmax(self, x, n, beta=1.0):
        o = S.SoftmaxOptionsT()
        o.beta = beta
        return self.op(B.SOFTMAX, [x], [1, n], o, S.BuiltinOptions.SoftmaxOptions)

    def build(self, inp, out) -> bytes:
        sg = S.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs, sg.outputs = np.array([inp], np.int32), np.array([out], np.int32)
        m = S.ModelT()
        m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, self.codes, [sg], self.buffers
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def kitchen_sink() -> bytes:
    """Every importable op: PAD, CONV_2D (3 input channels, 1x1 too), DEPTHWISE_CONV_2D (multiplier 2),
    fused RELU6/RELU_N1_TO_1/RELU, TANH, ADD, MUL (per-channel constant and x*x), CONCATENATION, both
    pools, MEAN, a channels-last flatten feeding an activation then FULLY_CONNECTED, exact GELU,
    LOGISTIC, and SOFTMAX with beta."""
    b = TflBuilder(1)
    x = b.t([1, 6, 6, 3], name="image")
    p = b.op(B.PAD, [x, b.i32([[0, 0], [1, 1], [1, 1], [0, 0]])], [1, 8, 8, 3], S.PadOptionsT(),
             S.BuiltinOptions.PadOptions)
    c1 = b.conv(p, 3, 4, 3, [1, 6, 6, 4], pad=S.Padding.VALID, act=A.RELU6)
    o = S.DepthwiseConv2DOptionsT()
    o.padding, o.strideH, o.strideW, o.depthMultiplier = S.Padding.SAME, 1, 1, 2
    o.dilationHFactor = o.dilationWFactor = 1
    dw = b.op(B.DEPTHWISE_CONV_2D, [c1, b.w(1, 3, 3, 8), b.w(8)], [1, 6, 6, 8], o,
              S.BuiltinOptions.DepthwiseConv2DOptions)
    th = b.op(B.TANH, [dw], [1, 6, 6, 8])
    c2 = b.conv(c1, 4, 8, 1, [1, 6, 6, 8], act=A.RELU_N1_TO_1)
    s = b.binary(B.ADD, th, c2, [1, 6, 6, 8])
    m = b.binary(B.MUL, s, b.w(8), [1, 6, 6, 8])
    o = S.ConcatenationOptionsT()
    o.axis = 3
    cat = b.op(B.CONCATENATION, [m, c1], [1, 6, 6, 12], o, S.BuiltinOptions.ConcatenationOptions)
    mp = b.pool(B.MAX_POOL_2D, cat, 2, 2, [1, 3, 3, 12])
    ap = b.pool(B.AVERAGE_POOL_2D, mp, 2, 1, [1, 2, 2, 12])
    o = S.ReducerOptionsT()
    o.keepDims = False
    mean = b.op(B.MEAN, [cat, b.i32([1, 2])], [1, 12], o, S.BuiltinOptions.ReducerOptions)
    flat = b.reshape(ap, [1, 48])                      # H, W, C order
    sig = b.op(B.LOGISTIC, [flat], [1, 48])
    f1 = b.fc(sig, 48, 16, act=A.RELU)
    f2 = b.fc(mean, 12, 16)
    o = S.GeluOptionsT()
    o.approximate = False
    g = b.op(B.GELU, [f2], [1, 16], o, S.BuiltinOptions.GeluOptions)
    a = b.binary(B.ADD, f1, g, [1, 16])
    sq = b.binary(B.MUL, a, a, [1, 16])
    f3 = b.fc(sq, 16, 10)
    out = b.softmax(f3, 10, beta=0.5)
    return b.build(x, out)


def flatten_variants() -> list[bytes]:
    """A channels-last flatten as the model output (-> flatten_hwc); TRANSPOSE to NCHW then flatten;
    a [1, 64] input reshaped to an image; GELU (tanh form); pool with SAME padding that pads nothing."""
    out = []
    b = TflBuilder(2)
    x = b.t([1, 4, 4, 2])
    c = b.conv(x, 2, 3, 3, [1, 4, 4, 3])
    o = S.GeluOptionsT()
    o.approximate = True
    g = b.op(B.GELU, [c], [1, 4, 4, 3], o, S.BuiltinOptions.GeluOptions)
    out.append(b.build(x, b.reshape(g, [1, 48])))

    b = TflBuilder(3)
    x = b.t([1, 64])
    img = b.reshape(x, [1, 8, 8, 1])
    c = b.conv(img, 1, 4, 3, [1, 8, 8, 4], act=A.RELU)
    mp = b.pool(B.MAX_POOL_2D, c, 2, 2, [1, 4, 4, 4], pad=S.Padding.SAME)
    tr = b.op(B.TRANSPOSE, [mp, b.i32([0, 3, 1, 2])], [1, 4, 4, 4], S.TransposeOptionsT(),
              S.BuiltinOptions.TransposeOptions)
    f = b.fc(b.reshape(tr, [1, 64]), 64, 10)
    out.append(b.build(x, b.softmax(f, 10)))
    return out


def _inputs(shape, n=16, seed=5):
    return np.random.default_rng(seed).standard_normal((n,) + tuple(shape)).astype(np.float32)


def _c_outputs(model_path, x, tmp_path, flags):
    gen = tmp_path / "gen"
    generate(model_path, "host", gen)
    exe = tmp_path / "drv"
    inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}", f"-I{gen}"]
    run_cc(["gcc", *STRICT, *flags, *inc, str(gen / "model.c"), str(ROOT / "tests" / "c" / "model_driver.c"),
            "-o", str(exe), "-lm"])
    p = subprocess.run([str(exe)], input=np.ascontiguousarray(x, np.float32).tobytes(), capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return np.frombuffer(p.stdout, np.float32).reshape(len(x), -1)


# ---------------------------------------------------------------- recipes: round trip and LiteRT agreement
@pytest.mark.parametrize("recipe", ["digits-mlp", "digits-cnn"])
def test_recipe_round_trip_is_byte_identical(recipe, digits_models, tmp_path):
    src = digits_models[recipe]
    tfl = tmp_path / f"{recipe}.tflite"
    assert cli(["export", str(src), "--format", "tflite", "-o", str(tfl)]) == 0
    assert cli(["import", str(tfl), "-o", str(tmp_path / "back.npz")]) == 0
    assert (tmp_path / "back.npz").read_bytes() == src.read_bytes(), "hilkit -> .tflite -> hilkit changed the file"

    m = modelfile.load(src)
    _, _, x, _ = data.digits_split()
    x = x.reshape((-1,) + tuple(m.input_shape)).astype(np.float32)
    ref = reference.forward(m, x)
    lit = litert.reference_outputs(tfl, x)
    assert np.array_equal(ref.argmax(1), lit.argmax(1)), "LiteRT must agree with the numpy reference on 100 %"
    assert np.max(np.abs(ref - lit)) <= 1e-5
    assert litert.compare(ref, lit)["litert_agreement"] == 1.0


# ---------------------------------------------------------------- models built with LiteRT's schema objects
def test_kitchen_sink_imports_and_agrees_with_litert(tmp_path):
    tfl = tmp_path / "sink.tflite"
    tfl.write_bytes(kitchen_sink())
    m = tflite.import_file(tfl, tmp_path / "sink.npz")
    ops = {la["op"] for la in m.layers}
    assert {"pad", "conv2d", "dwconv2d", "relu6", "relu1", "tanh", "add", "mul_const", "mul", "concat",
            "maxpool2d", "avgpool2d", "mean", "sigmoid", "dense", "gelu_erf", "relu", "softmax"} <= ops
    assert m.input_shape == (3, 6, 6) and "flatten_hwc" not in ops, "the flatten before dense is folded"
    x = _inputs(m.input_shape)
    lit = litert.reference_outputs(tfl, x)
    ref = reference.forward(m, x)
    np.testing.assert_allclose(ref, lit, atol=2e-5)
    out = _c_outputs(tmp_path / "sink.npz", x, tmp_path, ["-O2"])
    np.testing.assert_allclose(out, lit, atol=2e-5)


@pytest.mark.parametrize("i", [0, 1])
def test_flatten_variants_agree_with_litert(i, tmp_path):
    tfl = tmp_path / "v.tflite"
    tfl.write_bytes(flatten_variants()[i])
    m = tflite.import_file(tfl, tmp_path / "v.npz")
    ops = [la["op"] for la in m.layers]
    if i == 0:
        assert ops[-1] == "flatten_hwc" and "gelu" in ops
    else:
        assert m.input_shape == (1, 8, 8) and "flatten" in ops and "flatten_hwc" not in ops
    x = _inputs(m.input_shape)
    lit = litert.reference_outputs(tfl, x)
    np.testing.assert_allclose(reference.forward(m, x), lit, atol=2e-5)
    np.testing.assert_allclose(_c_outputs(tmp_path / "v.npz", x, tmp_path, ["-O2"]), lit, atol=2e-5)


@pytest.mark.parametrize("which", ["kitchen-sink", "every-op"])
def test_new_kernels_are_asan_ubsan_clean(which, tmp_path):
    if which == "kitchen-sink":
        (tmp_path / "m.tflite").write_bytes(kitchen_sink())
        m = tflite.import_file(tmp_path / "m.tflite", tmp_path / "m.npz")
    else:
        m = modelfile.save(tmp_path / "m.npz", *every_op_model())
    x = _inputs(m.input_shape, n=4)
    out = _c_outputs(tmp_path / "m.npz", x, tmp_path, SANITIZE)
    np.testing.assert_allclose(out, reference.forward(m, x), atol=2e-5)


@pytest.mark.parametrize("toolchain", sorted(CROSS))
def test_new_kernels_compile_without_warnings(toolchain, tmp_path):
    cc, *flags = CROSS[toolchain]
    if not have(cc):
        pytest.skip(f"{cc} not installed (run `make setup`)")
    (tmp_path / "sink.tflite").write_bytes(kitchen_sink())
    tflite.import_file(tmp_path / "sink.tflite", tmp_path / "sink.npz")
    v = tmp_path / "v.tflite"
    v.write_bytes(flatten_variants()[0])
    tflite.import_file(v, tmp_path / "v.npz")
    for name in ("sink", "v"):
        gen = tmp_path / name
        generate(tmp_path / f"{name}.npz", "host", gen)
        inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}", f"-I{gen}"]
        run_cc([cc, *flags, *STRICT, "-O2", *inc, "-c", str(gen / "model.c"), "-o", str(gen / "model.o")])


# ---------------------------------------------------------------- hilkit models with every interchange op
def every_op_model():
    rng = np.random.default_rng(7)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.5

    layers = [
        {"name": "pad", "op": "pad", "inputs": ["input"], "attrs": {"top": 1, "bottom": 0, "left": 2, "right": 1}},
        {"name": "conv", "op": "conv2d", "attrs": {"filters": 4, "kernel": 3, "stride": 2, "padding": "same"},
         "params": {"weight": "conv.weight", "bias": "conv.bias"}},
        {"name": "dw", "op": "dwconv2d", "attrs": {"kernel": 3, "multiplier": 2, "padding": "same"},
         "params": {"weight": "dw.weight", "bias": "dw.bias"}},
        {"name": "r6", "op": "relu6"},
        {"name": "g", "op": "gelu", "attrs": {"approx": "sigmoid"}},
        {"name": "gt", "op": "gelu", "attrs": {"approx": "tanh"}},
        {"name": "ge", "op": "gelu_erf"},
        {"name": "th", "op": "tanh"},
        {"name": "ac", "op": "add_const", "params": {"value": "ac.value"}},
        {"name": "mc", "op": "mul_const", "params": {"value": "mc.value"}},
        {"name": "r1", "op": "relu1"},
        {"name": "m", "op": "mul", "inputs": ["r1", "dw"]},
        {"name": "cat", "op": "concat", "inputs": ["m", "r6"]},
        {"name": "mean", "op": "mean", "inputs": ["cat"]},
        {"name": "hwc", "op": "flatten_hwc", "inputs": ["cat"]},
        {"name": "sig", "op": "sigmoid", "inputs": ["hwc"]},
        {"name": "flat", "op": "flatten", "inputs": ["cat"]},   # not before a dense: TRANSPOSE + RESHAPE
        {"name": "sum", "op": "add", "inputs": ["flat", "sig"]},
        {"name": "d1", "op": "dense", "attrs": {"units": 16}, "params": {"weight": "d1.weight", "bias": "d1.bias"}},
        {"name": "cat2", "op": "concat", "inputs": ["d1", "mean"]},
        {"name": "d2", "op": "dense", "attrs": {"units": 10}, "params": {"weight": "d2.weight", "bias": "d2.bias"}},
        {"name": "prob", "op": "softmax"},
    ]
    # input [2, 5, 5] -> pad [2, 6, 8] -> conv s2 [4, 3, 4] -> dw [8, 3, 4] -> cat [16, 3, 4] (192)
    arrays = {"conv.weight": r(4, 2, 3, 3), "conv.bias": r(4), "dw.weight": r(8, 3, 3), "dw.bias": r(8),
              "ac.value": r(8, 3, 4), "mc.value": r(8, 3, 4), "d1.weight": r(16, 192), "d1.bias": r(16),
              "d2.weight": r(10, 32), "d2.bias": r(10)}
    graph = {"format": "hilkit-model", "version": 1, "name": "every-op", "input": {"name": "input", "shape": [2, 5, 5]},
             "layers": layers, "output": "prob", "meta": {"note": "interchange ops"}}
    return graph, arrays


def test_every_interchange_op_exports_runs_in_litert_and_round_trips(tmp_path):
    graph, arrays = every_op_model()
    src = modelfile.save(tmp_path / "every.npz", graph, arrays)
    tfl = tmp_path / "every.tflite"
    tflite.export_file(src, tfl)
    x = _inputs(src.input_shape)
    ref = reference.forward(src, x)
    np.testing.assert_allclose(litert.reference_outputs(tfl, x), ref, atol=2e-5)
    back = tflite.import_file(tfl, tmp_path / "back.npz")
    # The same layers; an activation after a channels-last flatten comes back before it (they commute).
    assert sorted(la["name"] for la in back.layers) == sorted(la["name"] for la in src.layers)
    assert {k: a.tobytes() for k, a in back.arrays.items()} == {k: a.tobytes() for k, a in src.arrays.items()}
    assert np.array_equal(reference.forward(back, x), ref), "round trip must give identical outputs"
    np.testing.assert_allclose(_c_outputs(tmp_path / "back.npz", x, tmp_path, ["-O2"]), ref, atol=2e-5)


# ---------------------------------------------------------------- errors
def _unsupported_op_model() -> bytes:
    b = TflBuilder()
    x = b.t([1, 8])
    y = b.op(B.SUB, [x, b.w(8)], [1, 8], S.SubOptionsT(), S.BuiltinOptions.SubOptions)
    return b.build(x, y)


def _quantized_model() -> bytes:
    b = TflBuilder()
    x = b.t([1, 8], dtype=np.int8)
    o = S.FullyConnectedOptionsT()
    w = b.t([4, 8], np.ones((4, 8), np.int8), dtype=np.int8)
    y = b.op(B.FULLY_CONNECTED, [x, w, -1], [1, 4], o, S.BuiltinOptions.FullyConnectedOptions)
    return b.build(x, y)


def test_import_errors_exit_2_and_name_the_problem(tmp_path, capsys):
    cases = [("sub.tflite", _unsupported_op_model(), "SUB"),
             ("q.tflite", _quantized_model(), "INT8"),
             ("junk.tflite", b"\x00" * 64, "not a .tflite"),
             ("trunc.tflite", kitchen_sink()[:200], "tflite")]
    for name, blob, needle in cases:
        (tmp_path / name).write_bytes(blob)
        out = tmp_path / (name + ".npz")
        assert cli(["import", str(tmp_path / name), "-o", str(out)]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("hilkit: error:") and needle in err and "Traceback" not in err, err
        assert not out.exists(), "nothing half-written"
    assert cli(["import", str(tmp_path / "model.onnx"), "-o", str(tmp_path / "o.npz")]) == 2
    assert cli(["export", str(tmp_path / "missing.npz"), "--format", "tflite", "-o", str(tmp_path / "o")]) == 2


def test_export_of_an_op_without_tflite_equivalent_names_it(tmp_path):
    graph, arrays = every_op_model()
    m = modelfile.validate(graph, arrays)
    m.graph["layers"][3]["op"] = "spiking_net"  # a valid model file cannot hold an unknown op; fake one
    with pytest.raises(tflite.TFLiteError, match="spiking_net"):
        tflite.export_tflite(m)


def test_per_layer_exp_variant_survives_the_round_trip(digits_models, tmp_path):
    m = modelfile.load(digits_models["digits-cnn"])
    graph = dict(m.graph, layers=[dict(la, attrs=dict(la["attrs"])) for la in m.layers])
    graph["layers"][-1]["attrs"]["exp"] = "quake2"            # TFLite has no field for it
    src = modelfile.save(tmp_path / "q.npz", graph, m.arrays)
    tflite.export_file(src, tmp_path / "q.tflite")
    tflite.import_file(tmp_path / "q.tflite", tmp_path / "back.npz")
    assert (tmp_path / "back.npz").read_bytes() == (tmp_path / "q.npz").read_bytes()


def test_bench_vs_litert_reports_medians_and_ratio(digits_models, tmp_path):
    r = litert.bench_vs(digits_models["digits-mlp"], n=60, warmup=10, workdir=tmp_path)
    for key in ("model", "ours_us", "litert_us", "speedup", "ours_call_us", "litert_call_us", "ctypes_floor_us"):
        assert key in r, key
    assert r["model"] == "digits-mlp" and r["ours_us"] > 0 and r["litert_us"] > 0
    assert r["speedup"] == pytest.approx(r["litert_us"] / r["ours_us"])
    assert r["top1_agreement_ours_vs_litert"] == 1.0


def tiny_vit():
    """A transformer like digits-vit (patches, token_dense, layernorm, 2-head attention, GELU MLP,
    token_mean), random weights: export only (the importer reads image and vector models)."""
    rng = np.random.default_rng(11)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.4

    layers = [
        {"name": "patches", "op": "patches", "inputs": ["input"], "attrs": {"height": 2, "width": 2}},
        {"name": "embed", "op": "token_dense", "attrs": {"units": 8}, "params": {"weight": "embed.w", "bias": "embed.b"}},
        {"name": "pos", "op": "add_const", "params": {"value": "pos.v"}},
        {"name": "ln1", "op": "layernorm", "params": {"weight": "ln1.w", "bias": "ln1.b"}},
        {"name": "att", "op": "attention", "attrs": {"heads": 2},
         "params": {"qkv_weight": "att.qw", "qkv_bias": "att.qb", "out_weight": "att.ow", "out_bias": "att.ob"}},
        {"name": "res1", "op": "add", "inputs": ["pos", "att"]},
        {"name": "ln2", "op": "layernorm", "params": {"weight": "ln2.w", "bias": "ln2.b"}},
        {"name": "mlp1", "op": "token_dense", "attrs": {"units": 16}, "params": {"weight": "mlp1.w", "bias": "mlp1.b"}},
        {"name": "act", "op": "gelu"},
        {"name": "mlp2", "op": "token_dense", "attrs": {"units": 8}, "params": {"weight": "mlp2.w", "bias": "mlp2.b"}},
        {"name": "res2", "op": "add", "inputs": ["res1", "mlp2"]},
        {"name": "pool", "op": "token_mean"},
        {"name": "head", "op": "dense", "attrs": {"units": 10}, "params": {"weight": "head.w", "bias": "head.b"}},
        {"name": "prob", "op": "softmax"},
    ]
    arrays = {"embed.w": r(8, 8), "embed.b": r(8), "pos.v": r(9, 8), "ln1.w": 1 + r(8), "ln1.b": r(8),
              "att.qw": r(24, 8), "att.qb": r(24), "att.ow": r(8, 8), "att.ob": r(8), "ln2.w": 1 + r(8),
              "ln2.b": r(8), "mlp1.w": r(16, 8), "mlp1.b": r(16), "mlp2.w": r(8, 16), "mlp2.b": r(8),
              "head.w": r(10, 8), "head.b": r(10)}
    graph = {"format": "hilkit-model", "version": 1, "name": "tiny-vit", "input": {"name": "input", "shape": [2, 6, 6]},
             "layers": layers, "output": "prob"}
    return graph, arrays


def test_transformer_exports_and_agrees_with_litert(tmp_path):
    src = modelfile.save(tmp_path / "vit.npz", *tiny_vit())
    tflite.export_file(src, tmp_path / "vit.tflite")
    x = _inputs(src.input_shape)
    np.testing.assert_allclose(litert.reference_outputs(tmp_path / "vit.tflite", x), reference.forward(src, x),
                               atol=2e-5)
    assert cli(["import", str(tmp_path / "vit.tflite"), "-o", str(tmp_path / "back.npz")]) == 2  # export only
