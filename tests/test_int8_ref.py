"""The int8 numpy reference (ops/int8.py) against TFLite Micro's own interpreter, the oracle: every
op in single-op .tflite models written by host/tflite/builder.py, on random inputs and awkward cases,
must give 0 differing bytes. LiteRT runs the same models with its reference kernels (BUILTIN_REF,
asserted exact for conv, depthwise, add, pooling and softmax) and with its default resolver
(XNNPACK; mismatches only counted and printed, -1 = refused the model).

LiteRT BUILTIN_REF LOGISTIC is not asserted exact here: LiteRT's int8
logistic is off by one on rare (scale, input) pairs (1 byte in 256,000 over 1000 random scales
below 2), and from scale 2 up TFLM's coarse input radius saturates inputs that LiteRT does not."""
import zlib

import numpy as np
import pytest

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
litert = pytest.importorskip("ai_edge_litert.interpreter")

from hilkit.core import quant as q  # noqa: E402
from hilkit.host.tflite.builder import ModelBuilder  # noqa: E402
from hilkit.ops import int8  # noqa: E402

ACT = {"none": 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3}
REF = litert.OpResolverType.BUILTIN_REF
DEFAULT = litert.OpResolverType.AUTO
RESULTS: list[tuple] = []   # (op, case, bytes, vs TFLM, vs BUILTIN_REF, vs default)


# ---------------------------------------------------------------- running the three interpreters
def run_tflm(buf: bytes, inputs: list[np.ndarray]) -> np.ndarray:
    # the default arena (10 x the file) is too small for models of few weights and big activations
    it = runtime.Interpreter.from_bytes(buf, arena_size=10 * len(buf) + (1 << 20))
    for i, x in enumerate(inputs):
        it.set_input(x, i)
    it.invoke()
    return it.get_output(0)


def run_litert(buf: bytes, inputs: list[np.ndarray], resolver) -> np.ndarray:
    it = litert.Interpreter(model_content=buf, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def differing(a: np.ndarray, b: np.ndarray | None) -> int:
    """Bytes that differ; -1 when the interpreter could not run the model at all."""
    if b is None:
        return -1
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    return int(np.count_nonzero(a.view(np.uint8) != b.view(np.uint8)))


def check(op: str, case: str, buf: bytes, inputs: list[np.ndarray], expected: np.ndarray,
          ref_exact: bool) -> None:
    """0 differing bytes against TFLM; LiteRT BUILTIN_REF exact where `ref_exact`; default counted."""
    tflm = run_tflm(buf, inputs)
    d_tflm = differing(expected, tflm)
    d_ref = differing(expected, run_litert(buf, inputs, REF))
    try:
        default = run_litert(buf, inputs, DEFAULT)
    except RuntimeError:     # a delegate that refuses the model is recorded, not fatal
        default = None
    d_def = differing(expected, default)
    RESULTS.append((op, case, expected.size, d_tflm, d_ref, d_def))
    print(f"{op:12s} {case:44s} {expected.size:6d} B  TFLM {d_tflm}  BUILTIN_REF {d_ref}  default {d_def}")
    assert d_tflm == 0, f"{op} {case}: {d_tflm} of {expected.size} bytes differ from TFLM"
    if ref_exact:
        assert d_ref == 0, f"{op} {case}: {d_ref} bytes differ from LiteRT BUILTIN_REF"


# ---------------------------------------------------------------- model helpers
class Net:
    """One operator between int8 graph inputs and one int8 output, written with the builder."""

    def __init__(self):
        self.b = ModelBuilder("hilkit int8 test")
        self.B = self.b.s.BuiltinOperator
        self.P = self.b.s.Padding
        self.inputs: list[int] = []

    def input(self, shape, scale, zp, dtype="int8") -> int:
        t = self.b.tensor(f"in{len(self.inputs)}", shape, dtype, scale=scale, zero_point=zp)
        self.inputs.append(t)
        return t

    def out(self, shape, scale, zp, dtype="int8") -> int:
        return self.b.tensor("out", shape, dtype, scale=scale, zero_point=zp)

    def finish(self, out: int) -> bytes:
        return self.b.finish(self.inputs, [out])


def rand_i8(rng, shape, lo=-128, hi=127) -> np.ndarray:
    return rng.integers(lo, hi + 1, size=shape).astype(np.int8)


def weights(rng, shape) -> np.ndarray:
    w = rng.integers(-127, 128, size=shape).astype(np.int8)
    w.flat[0] = -127    # the symmetric extremes are always present
    w.flat[-1] = 127
    return w


# ---------------------------------------------------------------- CONV_2D
CONV_CASES = [
    # name, x shape, (O, KH, KW), stride, dilation, padding, in (s, zp), out (s, zp), act, per-channel
    ("3x3 s1 same relu per-ch zp-128", (1, 7, 9, 3), (5, 3, 3), (1, 1), (1, 1), "same", (0.02, -128), (0.05, 3), "relu", True),
    ("5x4 s2 valid none zp127", (2, 11, 10, 4), (6, 5, 4), (2, 2), (1, 1), "valid", (0.5, 127), (4.0, 127), "none", True),
    ("3x3 s2 same odd relu6", (1, 9, 8, 5), (7, 3, 3), (2, 2), (1, 1), "same", (0.03, 5), (0.06, -20), "relu6", True),
    ("3x3 dilation 2 same", (1, 10, 9, 2), (4, 3, 3), (1, 1), (2, 2), "same", (0.1, 0), (0.3, -5), "none", True),
    ("1x1 per-tensor", (1, 6, 5, 8), (8, 1, 1), (1, 1), (1, 1), "valid", (0.0157, -1), (0.0313, 0), "relu", False),
    ("3x3 tiny scales", (1, 5, 5, 3), (3, 3, 3), (1, 1), (1, 1), "same", (1e-5, 2), (3e-7, -7), "none", True),
    ("3x3 large scales", (1, 5, 5, 3), (3, 3, 3), (1, 2), (1, 1), "same", (40.0, -3), (9000.0, 1), "relu", True),
    ("10x4 s2 same (KWS first layer)", (1, 49, 10, 1), (8, 10, 4), (2, 2), (1, 1), "same", (0.6, 83), (0.2, -128), "relu", True),
]


def conv_case(rng, xs, o, kh, kw, stride, dil, padding, in_q, out_q, act, w_scales):
    """x, weights and bias drawn from rng: (model bytes, inputs, numpy reference output)."""
    (si, zi), (so, zo) = in_q, out_q
    w = weights(rng, (o, kh, kw, xs[3]))
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    x = rand_i8(rng, xs)
    p = int8.conv_params(si, w_scales, so, zo, act)
    y = int8.conv2d(x, w, bias, stride=stride, dilation=dil, padding=padding, in_zp=zi, out_zp=zo, **p)
    n = Net()
    xi = n.input(xs, si, zi)
    wt = n.b.const("w", w, scale=w_scales, zero_point=0, quantized_dimension=0)
    bt = n.b.const("b", bias, scale=(np.float32(si) * w_scales).astype(np.float32), zero_point=0)
    yt = n.out(y.shape, so, zo)
    n.b.op(n.B.CONV_2D, [xi, wt, bt], [yt], *n.b.options(
        "Conv2DOptions", padding=n.P.SAME if padding == "same" else n.P.VALID, strideH=stride[0],
        strideW=stride[1], dilationHFactor=dil[0], dilationWFactor=dil[1], fusedActivationFunction=ACT[act]))
    return n.finish(yt), [x], y


@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv2d(case):
    name, xs, (o, kh, kw), stride, dil, padding, in_q, out_q, act, per_ch = case
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    w_scales = rng.uniform(0.002, 0.02, o).astype(np.float32) if per_ch else np.float32([0.01])
    if "tiny" in name:
        w_scales = w_scales * np.float32(1e-3)
    check("CONV_2D", name, *conv_case(rng, xs, o, kh, kw, stride, dil, padding, in_q, out_q, act, w_scales),
          ref_exact=True)


def test_conv2d_grouped():
    """TFLM's conv takes groups = input channels / weight input channels (here 6 / 3 = 2)."""
    rng = np.random.default_rng(21)
    x, w = rand_i8(rng, (1, 6, 7, 6)), weights(rng, (4, 3, 3, 3))
    w_scales = rng.uniform(0.002, 0.02, 4).astype(np.float32)
    bias = rng.integers(-1000, 1000, 4).astype(np.int32)
    p = int8.conv_params(0.05, w_scales, 0.1, 2, "relu")
    y = int8.conv2d(x, w, bias, stride=(2, 1), padding="same", in_zp=1, out_zp=2, **p)
    n = Net()
    xi = n.input(x.shape, 0.05, 1)
    wt = n.b.const("w", w, scale=w_scales, zero_point=0)
    bt = n.b.const("b", bias, scale=(np.float32(0.05) * w_scales).astype(np.float32), zero_point=0)
    yt = n.out(y.shape, 0.1, 2)
    n.b.op(n.B.CONV_2D, [xi, wt, bt], [yt], *n.b.options(
        "Conv2DOptions", padding=n.P.SAME, strideH=2, strideW=1, dilationHFactor=1, dilationWFactor=1,
        fusedActivationFunction=ACT["relu"]))
    check("CONV_2D", "2 groups s(2,1) relu", n.finish(yt), [x], y, ref_exact=True)


# ---------------------------------------------------------------- DEPTHWISE_CONV_2D
DW_CASES = [
    ("3x3 s1 same m1 relu", (1, 8, 7, 6), 3, 1, (1, 1), (1, 1), "same", (0.02, -128), (0.04, -128), "relu"),
    ("3x3 s2 same m2 relu6", (2, 9, 9, 3), 3, 2, (2, 2), (1, 1), "same", (0.05, 10), (0.07, 2), "relu6"),
    ("5x3 s2 valid m1 none zp127", (1, 12, 9, 4), (5, 3), 1, (2, 1), (1, 1), "valid", (0.3, 127), (0.2, 127), "none"),
    ("3x3 dilation 2 m2", (1, 9, 10, 2), 3, 2, (1, 1), (2, 2), "same", (0.1, -3), (0.25, 4), "none"),
]


def dw_case(rng, xs, kh, kw, m, stride, dil, padding, in_q, out_q, act):
    (si, zi), (so, zo) = in_q, out_q
    cm = xs[3] * m
    w = weights(rng, (1, kh, kw, cm))
    w_scales = rng.uniform(0.002, 0.03, cm).astype(np.float32)
    bias = rng.integers(-3000, 3000, cm).astype(np.int32)
    x = rand_i8(rng, xs)
    p = int8.conv_params(si, w_scales, so, zo, act)
    y = int8.depthwise_conv2d(x, w, bias, multiplier=m, stride=stride, dilation=dil, padding=padding,
                              in_zp=zi, out_zp=zo, **p)
    n = Net()
    xi = n.input(xs, si, zi)
    wt = n.b.const("w", w, scale=w_scales, zero_point=0, quantized_dimension=3)
    bt = n.b.const("b", bias, scale=(np.float32(si) * w_scales).astype(np.float32), zero_point=0)
    yt = n.out(y.shape, so, zo)
    n.b.op(n.B.DEPTHWISE_CONV_2D, [xi, wt, bt], [yt], *n.b.options(
        "DepthwiseConv2DOptions", padding=n.P.SAME if padding == "same" else n.P.VALID, strideH=stride[0],
        strideW=stride[1], depthMultiplier=m, dilationHFactor=dil[0], dilationWFactor=dil[1],
        fusedActivationFunction=ACT[act]))
    return n.finish(yt), [x], y


@pytest.mark.parametrize("case", DW_CASES, ids=[c[0] for c in DW_CASES])
def test_depthwise_conv2d(case):
    name, xs, k, m, stride, dil, padding, in_q, out_q, act = case
    kh, kw = (k, k) if np.ndim(k) == 0 else k
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    check("DEPTHWISE", name, *dw_case(rng, xs, kh, kw, m, stride, dil, padding, in_q, out_q, act), ref_exact=True)


# ---------------------------------------------------------------- FULLY_CONNECTED
FC_CASES = [
    # name, rows, in, out, in (s, zp), out (s, zp), act, per-channel, w scale
    ("per-tensor 64->12 batch 1", 1, 64, 12, (0.11, -7), (0.15, 20), "none", False, 0.0037),
    ("per-tensor 640->128 relu", 1, 640, 128, (0.3, -128), (0.4, -128), "relu", False, 0.0021),
    ("per-tensor batch 3 relu6 zp127", 3, 33, 10, (0.05, 127), (0.03, -1), "relu6", False, 0.011),
    ("per-channel 50->17 batch 2", 2, 50, 17, (0.07, 3), (0.09, -4), "none", True, None),
    ("per-channel tiny/large", 1, 20, 9, (1e-4, 0), (2e-6, 5), "relu", True, None),
    ("multiplier < 2^-32 flushed to 0", 2, 16, 5, (1e-5, 4), (10.0, -9), "none", False, 1e-4),
    ("multiplier ~10 (left shift)", 4, 3, 6, (0.5, -2), (0.0005, 1), "none", False, 0.01),
]


def fc_case(rng, rows, i, o, in_q, out_q, act, w_scales):
    (si, zi), (so, zo) = in_q, out_q
    w = weights(rng, (o, i))
    bias = rng.integers(-20000, 20000, o).astype(np.int32)
    x = rand_i8(rng, (rows, i))
    p = int8.fc_params(si, w_scales, so, zo, act)
    y = int8.fully_connected(x, w, bias, in_zp=zi, out_zp=zo, **p)
    n = Net()
    xi = n.input((rows, i), si, zi)
    wt = n.b.const("w", w, scale=w_scales, zero_point=0, quantized_dimension=0)
    bt = n.b.const("b", bias, scale=(np.float32(si) * w_scales).astype(np.float32), zero_point=0)
    yt = n.out(y.shape, so, zo)
    n.b.op(n.B.FULLY_CONNECTED, [xi, wt, bt], [yt], *n.b.options(
        "FullyConnectedOptions", fusedActivationFunction=ACT[act]))
    return n.finish(yt), [x], y


@pytest.mark.parametrize("case", FC_CASES, ids=[c[0] for c in FC_CASES])
def test_fully_connected(case):
    name, rows, i, o, in_q, out_q, act, per_ch, ws = case
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    w_scales = rng.uniform(0.001, 0.02, o).astype(np.float32) if per_ch else np.float32([ws])
    # LiteRT's reference FC requantizes in float (docs/references.md): counted, not asserted.
    check("FC", name, *fc_case(rng, rows, i, o, in_q, out_q, act, w_scales), ref_exact=False)


PRODUCT_CASES = ["FC per-tensor", "FC per-channel", "CONV_2D per-tensor", "CONV_2D per-channel", "DEPTHWISE"]


@pytest.mark.parametrize("where", PRODUCT_CASES)
def test_multiplier_product_is_double(where):
    """Which in_scale * w_scale product Prepare takes. With these scales the float32 product
    (the FC per-tensor path of TFLM sources up to Aug 2026, `fc_params(float32_product=True)`)
    and the double product give different multipliers. Accumulators where the requantized results
    differ are found by search and planted through the bias (weights 1, input = in_zp); the
    oracle must follow the double product everywhere, and the float32 one must differ in every
    planted byte (so the test can tell them apart)."""
    si, ws, so = np.float32("0.3961394"), np.float32("0.0137368515"), np.float32("42.89628")
    p64 = int8.fc_params(si, [ws], so, 0)
    p32 = int8.fc_params(si, [ws], so, 0, float32_product=True)
    assert (p64["mult"], p64["shift"]) != (p32["mult"], p32["shift"])
    acc = np.arange(-1_000_000, 1_000_001, dtype=np.int64)
    a = q.multiply_by_quantized_multiplier(acc, p64["mult"], p64["shift"])
    b = q.multiply_by_quantized_multiplier(acc, p32["mult"], p32["shift"])
    witness = acc[(a != b) & (np.abs(a) < 120)]
    assert witness.size >= 4
    o, zi = witness.size, 3
    bias = witness.astype(np.int32)
    per_tensor = "per-tensor" in where
    w_scales = np.float32([ws]) if per_tensor else np.full(o, ws, np.float32)
    n = Net()
    bt = n.b.const("b", bias, scale=(si * w_scales).astype(np.float32), zero_point=0)
    if where.startswith("FC"):
        x, w = np.full((1, 1), zi, np.int8), np.ones((o, 1), np.int8)
        p = int8.fc_params(si, w_scales, so, 0)
        y = int8.fully_connected(x, w, bias, in_zp=zi, out_zp=0, **p)
        code, opts = n.B.FULLY_CONNECTED, n.b.options("FullyConnectedOptions")
        qdim = 0
    elif where.startswith("CONV"):
        x, w = np.full((1, 1, 1, 1), zi, np.int8), np.ones((o, 1, 1, 1), np.int8)
        p = int8.conv_params(si, w_scales, so, 0)
        y = int8.conv2d(x, w, bias, padding="valid", in_zp=zi, out_zp=0, **p)
        code, opts = n.B.CONV_2D, n.b.options("Conv2DOptions", padding=n.P.VALID, strideH=1, strideW=1,
                                               dilationHFactor=1, dilationWFactor=1)
        qdim = 0
    else:
        x, w = np.full((1, 1, 1, o), zi, np.int8), np.ones((1, 1, 1, o), np.int8)
        p = int8.conv_params(si, w_scales, so, 0)
        y = int8.depthwise_conv2d(x, w, bias, padding="valid", in_zp=zi, out_zp=0, **p)
        code, opts = n.B.DEPTHWISE_CONV_2D, n.b.options(
            "DepthwiseConv2DOptions", padding=n.P.VALID, strideH=1, strideW=1, depthMultiplier=1,
            dilationHFactor=1, dilationWFactor=1)
        qdim = 3
    np.testing.assert_array_equal(y.ravel(), a[(a != b) & (np.abs(a) < 120)])
    assert np.count_nonzero(y.ravel() != b[(a != b) & (np.abs(a) < 120)]) == o
    xi = n.input(x.shape, si, zi)
    wt = n.b.const("w", w, scale=w_scales, zero_point=0, quantized_dimension=qdim)
    yt = n.out(y.shape, so, 0)
    n.b.op(code, [xi, wt, bt], [yt], *opts)
    check(where.split()[0], f"double product {where} ({o} witnesses)", n.finish(yt), [x], y,
          ref_exact=not where.startswith("FC"))


# ---------------------------------------------------------------- pooling
POOL_CASES = [
    ("avg 2x2 s2 valid", "avg", (1, 8, 8, 5), 2, 2, "valid", (0.1, -3), "none"),
    ("avg 3x3 s2 same odd", "avg", (2, 9, 7, 3), 3, 2, "same", (0.05, -128), "relu"),
    ("avg 25x5 global (KWS)", "avg", (1, 25, 5, 16), (25, 5), 1, "valid", (0.2, 12), "none"),
    ("avg 3x2 s(1,2) same relu6", "avg", (1, 6, 7, 4), (3, 2), (1, 2), "same", (0.04, 127), "relu6"),
    ("max 2x2 s2 valid", "max", (1, 8, 8, 5), 2, 2, "valid", (0.1, -3), "none"),
    ("max 3x3 s2 same odd relu", "max", (2, 9, 7, 3), 3, 2, "same", (0.05, 9), "relu"),
    ("max 3x3 s1 same relu6", "max", (1, 5, 6, 4), 3, 1, "same", (0.02, -128), "relu6"),
]


def pool_case(rng, kind, xs, kh, kw, stride, padding, q_, act):
    s_, zp = q_
    x = rand_i8(rng, xs)
    fn = int8.avg_pool2d if kind == "avg" else int8.max_pool2d
    y = fn(x, size=(kh, kw), stride=stride, padding=padding, **int8.pool_params(s_, zp, act))
    n = Net()
    xi = n.input(xs, s_, zp)
    yt = n.out(y.shape, s_, zp)
    code = n.B.AVERAGE_POOL_2D if kind == "avg" else n.B.MAX_POOL_2D
    n.b.op(code, [xi], [yt], *n.b.options(
        "Pool2DOptions", padding=n.P.SAME if padding == "same" else n.P.VALID, strideH=stride[0],
        strideW=stride[1], filterHeight=kh, filterWidth=kw, fusedActivationFunction=ACT[act]))
    return n.finish(yt), [x], y


@pytest.mark.parametrize("case", POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_pool(case):
    name, kind, xs, size, stride, padding, q_, act = case
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    kh, kw = (size, size) if np.ndim(size) == 0 else size
    stride = (stride, stride) if np.ndim(stride) == 0 else stride
    check("POOL", name, *pool_case(rng, kind, xs, kh, kw, stride, padding, q_, act), ref_exact=True)


def test_avg_pool_rounds_ties_away_from_zero():
    """Hand-worked: windows summing to +-3 over 2 taps give +-2 (1.5 -> 2, -1.5 -> -2)."""
    x = np.array([1, 2, -1, -2, 0, -1], np.int8).reshape(1, 1, 6, 1)
    y = int8.avg_pool2d(x, size=(1, 2), stride=(1, 2), padding="valid")
    assert y.ravel().tolist() == [2, -2, -1]


# ---------------------------------------------------------------- ADD
ADD_CASES = [
    # name, shape1, shape2, in1 (s, zp), in2 (s, zp), out (s, zp), act
    ("same shape different scales", (1, 6, 5, 7), (1, 6, 5, 7), (0.05, -3), (0.11, 12), (0.13, -1), "none"),
    ("relu zp-128/127", (2, 4, 4, 3), (2, 4, 4, 3), (0.2, -128), (0.2, 127), (0.3, -128), "relu"),
    ("relu6 equal scales", (1, 8, 8, 4), (1, 8, 8, 4), (0.03, 0), (0.03, 0), (0.05, 2), "relu6"),
    ("broadcast channel vector", (1, 5, 4, 6), (1, 1, 1, 6), (0.07, 5), (0.01, -9), (0.08, 0), "none"),
    ("large ratio of scales", (1, 3, 3, 8), (1, 3, 3, 8), (2.0, 1), (0.004, -20), (1.5, 3), "none"),
]


def test_add_every_input_pair():
    """All 65536 (x1, x2) pairs, by broadcasting [1, 256, 1, 1] against [1, 1, 256, 1]."""
    x1 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256, 1, 1)
    x2 = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256, 1)
    q1, q2, qo = (0.0173, -11), (0.0291, 40), (0.0407, -3)
    y = int8.add(x1, x2, **int8.add_params(*q1, *q2, *qo, "relu"))
    n = Net()
    t1, t2 = n.input(x1.shape, *q1), n.input(x2.shape, *q2)
    yt = n.out(y.shape, *qo)
    n.b.op(n.B.ADD, [t1, t2], [yt], *n.b.options("AddOptions", fusedActivationFunction=ACT["relu"]))
    check("ADD", "every input pair (broadcast both ways) relu", n.finish(yt), [x1, x2], y, ref_exact=True)


def add_case(rng, s1, s2, q1, q2, qo, act):
    p = int8.add_params(*q1, *q2, *qo, act)
    x1, x2 = rand_i8(rng, s1), rand_i8(rng, s2)
    y = int8.add(x1, x2, **p)
    n = Net()
    t1, t2 = n.input(s1, *q1), n.input(s2, *q2)
    yt = n.out(y.shape, *qo)
    n.b.op(n.B.ADD, [t1, t2], [yt], *n.b.options("AddOptions", fusedActivationFunction=ACT[act]))
    return n.finish(yt), [x1, x2], y


@pytest.mark.parametrize("case", ADD_CASES, ids=[c[0] for c in ADD_CASES])
def test_add(case):
    name, s1, s2, q1, q2, qo, act = case
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    check("ADD", name, *add_case(rng, s1, s2, q1, q2, qo, act), ref_exact=True)


# ---------------------------------------------------------------- SOFTMAX / LOGISTIC
SOFTMAX_CASES = [
    ("scale 0.1 random rows", 0.1, 1.0, (4, 12), False),
    ("scale 1/16 all 256 values", 1 / 16, 1.0, (1, 256), True),
    ("scale 0.5 saturating", 0.5, 1.0, (6, 10), False),
    ("scale 3.0 beta 2 saturating", 3.0, 2.0, (5, 7), False),
    ("scale 0.004 near uniform", 0.004, 1.0, (3, 64), False),
    ("scale 0.2 4D last axis", 0.2, 0.5, (2, 3, 3, 5), False),
]


def softmax_case(x, q_, beta):
    y = int8.softmax(x, **int8.softmax_params(q_[0], beta))
    n = Net()
    xi = n.input(x.shape, *q_)
    yt = n.out(x.shape, int8.SOFTMAX_OUT_SCALE, int8.SOFTMAX_OUT_ZP)
    n.b.op(n.B.SOFTMAX, [xi], [yt], *n.b.options("SoftmaxOptions", beta=beta))
    return n.finish(yt), [x], y


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=[c[0] for c in SOFTMAX_CASES])
def test_softmax(case):
    name, s, beta, shape, exhaustive = case
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    zp = int(rng.integers(-128, 128))
    x = np.arange(-128, 128, dtype=np.int8).reshape(shape) if exhaustive else rand_i8(rng, shape)
    check("SOFTMAX", name, *softmax_case(x, (s, zp), beta), ref_exact=True)


@pytest.mark.parametrize("scale,zp", [(0.1, 0), (1 / 16, -128), (0.02, 127), (0.37, 10), (3e-4, -3), (4.0, 0),
                                      (8.0, 0)])
def test_logistic_all_inputs(scale, zp):
    """Every input value. From input scale 2 up, TFLM's input radius (floor(15 * 2^27 / 2^shift))
    drops to a few steps and TFLM saturates inputs there (at scale 8, radius 0: LOGISTIC(0) = -128
    instead of 0)."""
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    p = int8.logistic_params(scale, zp)
    y = int8.logistic(x, **p)
    n = Net()
    xi = n.input(x.shape, scale, zp)
    yt = n.out(x.shape, 1 / 256, -128)
    n.b.op(n.B.LOGISTIC, [xi], [yt])
    check("LOGISTIC", f"scale {scale} zp {zp} all 256", n.finish(yt), [x], y, ref_exact=False)


# ---------------------------------------------------------------- MEAN
MEAN_CASES = [
    # name, shape, axes, keepdims, in (s, zp), out (s, zp)
    ("HW keepdims same quant", (1, 8, 8, 6), (1, 2), True, (0.05, -4), (0.05, -4)),
    ("HW no keepdims other quant", (2, 5, 7, 4), (1, 2), False, (0.1, 20), (0.03, -7)),
    ("HW 3x3 (non power of 2)", (1, 3, 3, 16), (1, 2), True, (0.2, -128), (0.15, 100)),
    ("channel axis", (1, 4, 4, 9), (3,), True, (0.02, 5), (0.01, 0)),
    ("W only, large ratio", (1, 6, 33, 3), (2,), False, (1.0, 0), (0.004, -128)),
]


def mean_case(rng, shape, axes, keep, in_q, out_q):
    x = rand_i8(rng, shape)
    y = int8.mean(x, axes, keep, **int8.mean_params(*in_q, *out_q))
    n = Net()
    xi = n.input(shape, *in_q)
    at = n.b.const("axes", np.asarray(axes, np.int32))
    yt = n.out(y.shape, *out_q)
    n.b.op(n.B.MEAN, [xi, at], [yt], *n.b.options("ReducerOptions", keepDims=keep))
    return n.finish(yt), [x], y


@pytest.mark.parametrize("case", MEAN_CASES, ids=[c[0] for c in MEAN_CASES])
def test_mean(case):
    name, shape, axes, keep, in_q, out_q = case
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    check("MEAN", name, *mean_case(rng, shape, axes, keep, in_q, out_q), ref_exact=False)


# ---------------------------------------------------------------- PAD / CONCATENATION
def test_pad_and_padv2():
    rng = np.random.default_rng(3)
    x = rand_i8(rng, (1, 5, 4, 3))
    pads = np.array([[0, 0], [1, 2], [3, 0], [0, 1]], np.int32)
    for v2 in (False, True):
        n = Net()
        xi = n.input(x.shape, 0.1, -7)
        pt = n.b.const("pads", pads)
        fill = -7
        ins = [xi, pt]
        if v2:
            fill = 55
            ins.append(n.b.const("value", np.array([fill], np.int8).reshape(()), scale=0.1, zero_point=-7))
        y = int8.pad(x, pads, pad_value=fill)
        yt = n.out(y.shape, 0.1, -7)
        n.b.op(n.B.PADV2 if v2 else n.B.PAD, ins, [yt])
        check("PAD", "PADV2 constant 55" if v2 else "PAD zero point fill", n.finish(yt), [x], y, ref_exact=False)


def test_concatenation():
    rng = np.random.default_rng(4)
    xs = [rand_i8(rng, (1, 3, 4, c)) for c in (2, 5, 1)]
    y = int8.concatenation(xs, axis=3)
    n = Net()
    ts = [n.input(a.shape, 0.05, 9) for a in xs]
    yt = n.out(y.shape, 0.05, 9)
    n.b.op(n.B.CONCATENATION, ts, [yt], *n.b.options("ConcatenationOptions", axis=3))
    check("CONCAT", "3 inputs on channels", n.finish(yt), xs, y, ref_exact=False)


# ---------------------------------------------------------------- QUANTIZE / DEQUANTIZE
def test_quantize_float_to_int8():
    rng = np.random.default_rng(5)
    scale, zp = np.float32(0.0371), -5
    ties = (np.arange(-40, 40, dtype=np.float32) + np.float32(0.5)) * scale   # k.5 * scale, near ties
    x = np.concatenate([rng.normal(0, 3, 300).astype(np.float32), ties,
                        np.float32([0, -0.0, 1e6, -1e6, 4.7, -4.9])]).reshape(1, -1)
    y = int8.quantize_op(x, scale, zp)
    n = Net()
    xi = n.input(x.shape, None, None, dtype="float32")
    yt = n.out(x.shape, scale, zp)
    n.b.op(n.B.QUANTIZE, [xi], [yt])
    check("QUANTIZE", "float32 -> int8 incl. ties", n.finish(yt), [x], y, ref_exact=False)


@pytest.mark.parametrize("si,zi,so,zo", [(0.05, 3, 0.08, -10), (0.3, -128, 0.01, 127), (0.01, 0, 0.01, 5)])
def test_requantize_int8_to_int8(si, zi, so, zo):
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    p = int8.requantize_params(si, zi, so, zo)
    y = int8.requantize_op(x, **p)
    n = Net()
    xi = n.input(x.shape, si, zi)
    yt = n.out(x.shape, so, zo)
    n.b.op(n.B.QUANTIZE, [xi], [yt])
    check("QUANTIZE", f"int8 -> int8 {si}/{zi} -> {so}/{zo}", n.finish(yt), [x], y, ref_exact=False)


def test_dequantize():
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    scale, zp = np.float32(0.0123), 17
    y = int8.dequantize_op(x, scale, zp)
    n = Net()
    xi = n.input(x.shape, scale, zp)
    yt = n.out(x.shape, None, None, dtype="float32")
    n.b.op(n.B.DEQUANTIZE, [xi], [yt])
    check("DEQUANTIZE", "int8 -> float32 all 256", n.finish(yt), [x], y, ref_exact=False)


# ---------------------------------------------------------------- random sweep
def _scale(rng, lo=1e-3, hi=2.0) -> float:
    return float(np.float32(np.exp(rng.uniform(np.log(lo), np.log(hi)))))


def _zp(rng) -> int:
    return int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))


def _window(rng):
    """kernel, stride, dilation, padding and an input size that fits them."""
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    stride = tuple(int(v) for v in rng.integers(1, 3, 2))
    dil = tuple(int(v) for v in rng.integers(1, 3, 2)) if rng.random() < 0.3 else (1, 1)
    h, w = int(rng.integers((kh - 1) * dil[0] + 1, 14)), int(rng.integers((kw - 1) * dil[1] + 1, 14))
    return kh, kw, stride, dil, str(rng.choice(["same", "valid"])), h, w


SWEEP = 60   # random configurations per op (3000 per op were run once: 0 differing bytes)


@pytest.mark.parametrize("op", ["conv", "depthwise", "fc", "pool", "add", "softmax", "mean"])
def test_random_sweep(op):
    """Random shapes, windows, scales (log-uniform 1e-3..2), zero points (often -128/127) and
    activations, SWEEP configurations per op, seeded."""
    rng = np.random.default_rng(zlib.crc32(op.encode()))
    for k in range(SWEEP):
        act = str(rng.choice(["none", "relu", "relu6"]))
        in_q, out_q = (_scale(rng), _zp(rng)), (_scale(rng), _zp(rng))
        c, n = int(rng.integers(1, 6)), int(rng.integers(1, 3))
        kh, kw, stride, dil, padding, h, w = _window(rng)
        if op == "conv":
            o = int(rng.integers(1, 7))
            w_scales = rng.uniform(0.001, 0.05, o if rng.random() < 0.7 else 1).astype(np.float32)
            case = conv_case(rng, (n, h, w, c), o, kh, kw, stride, dil, padding, in_q, out_q, act, w_scales)
        elif op == "depthwise":
            case = dw_case(rng, (n, h, w, c), kh, kw, int(rng.integers(1, 3)), stride, dil, padding, in_q, out_q,
                           act)
        elif op == "fc":
            o, i = int(rng.integers(1, 40)), int(rng.integers(1, 200))
            w_scales = rng.uniform(0.0005, 0.02, o if rng.random() < 0.5 else 1).astype(np.float32)
            case = fc_case(rng, int(rng.integers(1, 4)), i, o, in_q, out_q, act, w_scales)
        elif op == "pool":
            kind = "avg" if k % 2 else "max"
            if padding == "valid":
                kh, kw = min(kh, h), min(kw, w)
            case = pool_case(rng, kind, (n, h, w, c), kh, kw, stride, padding, in_q, act)
        elif op == "add":
            s2 = (n, h, w, c) if rng.random() < 0.7 else (1, 1, 1, c)
            case = add_case(rng, (n, h, w, c), s2, in_q, (_scale(rng), _zp(rng)), out_q, act)
        elif op == "softmax":
            x = rand_i8(rng, (int(rng.integers(1, 5)), int(rng.integers(1, 300))))
            case = softmax_case(x, (_scale(rng, 1e-3, 10.0), _zp(rng)), float(rng.choice([1.0, 0.5, 2.0, 1.7])))
        else:
            axes = [(1, 2), (1,), (2,), (3,), (1, 2, 3)][int(rng.integers(0, 5))]
            same = rng.random() < 0.4
            case = mean_case(rng, (n, h, w, c), axes, bool(rng.random() < 0.5), in_q, in_q if same else out_q)
        check(op.upper(), f"random {k}", *case, ref_exact=op not in ("fc", "mean"))


def test_errors_are_one_line_hilkit_errors():
    from hilkit.core.errors import HilkitError

    for call, words in ((lambda: int8.conv_params(0.1, [0.01], 0.1, 0, "tanh"), "fused activation"),
                        (lambda: int8.padding_offsets(3, 3, 5, 5, padding="valid"), "does not fit"),
                        (lambda: int8.add_params(1.0, 0, 1.0, 0, 1e-7, 0), "too small"),
                        (lambda: int8.softmax_params(1e-9), "below 2\\^-26"),
                        (lambda: int8.conv2d(np.zeros((1, 3, 3, 5), np.int8), np.zeros((2, 1, 1, 2), np.int8),
                                             in_zp=0, out_zp=0, mult=1 << 30, shift=0), "channels")):
        with pytest.raises(HilkitError, match=words) as e:
            call()
        assert "\n" not in str(e.value)


# ---------------------------------------------------------------- the builder itself
def test_builder_alignment_signature_metadata_and_errors():
    from hilkit.host.tflite.schema import TFLiteError

    b = ModelBuilder()
    B = b.s.BuiltinOperator
    x = b.tensor("x", [1, 3], "float32")
    ids = [b.const(f"c{k}", np.arange(k + 1, dtype=np.int8)) for k in range(5)]   # odd sizes
    w = b.const("w", np.eye(3, dtype=np.float32))
    y = b.tensor("y", [1, 3], "float32")
    b.op(B.FULLY_CONNECTED, [x, w, -1], [y], *b.options("FullyConnectedOptions"))
    b.add_metadata("hilkit", b'{"k": 1}')
    buf = b.finish([x], [y])
    m = b.s.Model.GetRootAs(buf, 0)
    starts = []
    for i in range(1, m.BuffersLength()):
        tab = m.Buffers(i)._tab
        o = tab.Offset(4)
        if o:
            starts.append(tab.Vector(o))
    assert len(starts) == len(ids) + 2 and all(s % 16 == 0 for s in starts), starts
    assert m.Metadata(0).Name() == b"hilkit"
    it = litert.Interpreter(model_content=buf)
    assert it.get_signature_list() == {"serving_default": {"inputs": ["x"], "outputs": ["y"]}}
    run = it.get_signature_runner()
    v = np.float32([[1.5, -2.0, 3.25]])
    np.testing.assert_array_equal(run(x=v)["y"], v)
    with pytest.raises(TFLiteError, match="complex128"):
        b.tensor("z", [1], np.complex128)
    with pytest.raises(TFLiteError, match="data shape"):
        b.tensor("z", [2], "int8", np.zeros(3, np.int8))
    with pytest.raises(TFLiteError, match="no field"):
        b.options("Conv2DOptions", stride=2)


def test_zz_summary():
    """Prints the table of all cases (run with -s to see it); every TFLM column is 0."""
    if not RESULTS:
        pytest.skip("no op case ran in this session")
    print(f"\n{'op':12s} {'case':44s} {'bytes':>6s}  TFLM  BUILTIN_REF  default")
    for op, case, nb, a, b, c in RESULTS:
        print(f"{op:12s} {case:44s} {nb:6d}  {a:4d}  {b:11d}  {c:7d}")
    assert all(r[3] == 0 for r in RESULTS)
