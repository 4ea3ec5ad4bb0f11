"""The int8 kernels (kernels_c/hk_*_s8.h) against the numpy reference (hilkit.ops.int8, itself
bit-exact with TFLite Micro), byte for byte: every kernel on random and awkward cases under
ASan/UBSan on the host (tests/c/s8_driver.c), strict warnings with every board's compiler, the
requantization primitives and a small conv/depthwise/FC on every board (bench/int8/s8bench.c under
QEMU or natively), and exact instruction-count bounds on the Cortex-M4F for the MLPerf Tiny KWS
layer shapes."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import CROSS, ROOT, SANITIZE, STRICT, have, run_cc
from hilkit.codegen.build import BuildError, check_toolchain, resource_dir
from hilkit.core import quant as q
from hilkit.host import boards
from hilkit.ops import int8

sys.path.insert(0, str(ROOT / "bench" / "int8"))
import s8bench as sb
from s8_kws import kws_layers

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """tests/c/s8_driver.c built natively with the project's strict flags and ASan/UBSan."""
    exe = tmp_path_factory.mktemp("s8") / "s8_driver"
    run_cc(["gcc", *STRICT, *SANITIZE, f"-I{resource_dir('kernels_c')}", str(ROOT / "tests" / "c" / "s8_driver.c"),
            "-o", str(exe)])
    return exe


def _differing(got: np.ndarray, ref) -> int:
    ref = np.ascontiguousarray(np.asarray(ref).astype(got.dtype).reshape(got.shape))
    return int(np.sum(got.view(np.uint8) != ref.view(np.uint8)))


def _check(exe, cases) -> None:
    """Run (label, request, reference) cases through the driver; every output byte must match."""
    for label, req, _ in cases:
        req.label = label
    outs = sb.run_host(exe, [r for _, r, _ in cases])
    bad = {label: f"{_differing(got, ref)}/{got.nbytes} bytes differ"
           for (label, _, ref), got in zip(cases, outs) if _differing(got, ref)}
    assert not bad, bad


# ---------------------------------------------------------------- cases (shared by host and boards)
def primitive_cases(rng, n_random: int = 20000, n_mult: int = 600, n_ties: int = 2000) -> list:
    """SRDHM, RoundingDivideByPOT, MultiplyByQuantizedMultiplier and requantize on edges, ties,
    negative values, shifts from -31 to +7 (and beyond) and INT32_MIN."""
    edges = np.array([I32_MIN, I32_MIN + 1, -(1 << 30), -(1 << 30) - 1, -3, -2, -1, 0, 1, 2, 3, (1 << 30) - 1,
                      1 << 30, I32_MAX - 1, I32_MAX], np.int64)
    ea, eb = np.meshgrid(edges, edges)
    # a * b = (2m + 1) * 2^30 exactly: halfway cases of the rounding, both signs.
    k = rng.integers(0, 31, n_ties)
    m = (rng.random(n_ties) * (np.int64(2) << k)).astype(np.int64) - (np.int64(1) << k)   # |2m + 1| < 2^(k+1)
    ta, tb = np.int64(1) << k, (2 * m + 1) << (30 - k)
    a = np.concatenate([ea.ravel(), ta, -ta, rng.integers(I32_MIN, I32_MAX + 1, n_random)])
    b = np.concatenate([eb.ravel(), tb, tb, rng.integers(I32_MIN, I32_MAX + 1, n_random)])
    cases = [("srdhm edges, ties, random", sb.srdhm(a, b), q.srdhm(a, b))]

    # RoundingDivideByPOT: every exponent on edge values, exact halves (ties away from zero).
    ex, ee = np.meshgrid(np.concatenate([edges, [5, -5, 6, -6, 7, -7]]), np.arange(32))
    e = rng.integers(1, 32, 2 * n_ties)
    half = (2 * rng.integers(-(1 << 10), 1 << 10, 2 * n_ties) + 1) * (np.int64(1) << (e - 1))
    half = np.clip(half, I32_MIN, I32_MAX)
    x = np.concatenate([ex.ravel(), half, rng.integers(I32_MIN, I32_MAX + 1, n_random)])
    e = np.concatenate([ee.ravel(), e, rng.integers(0, 32, n_random)])
    cases.append(("rdbp edges, ties, every exponent", sb.rounding_divide_by_pot(x, e), q.rounding_divide_by_pot(x, e)))

    # MultiplyByQuantizedMultiplier: multipliers from QuantizeMultiplier over 2^-40 .. 2^9 (shifts
    # -31 .. +10, and 0 for the smallest), the extreme multipliers, left shifts that wrap.
    reals = np.exp2(rng.uniform(-40, 9, n_mult))
    mq, sq = q.quantize_multipliers(reals)
    mm = np.concatenate([mq, [0, 1 << 30, I32_MAX, I32_MAX, 1 << 30, 1 << 30]])
    ss = np.concatenate([sq, [0, -31, -31, 7, 31, 0]])
    pick = rng.integers(0, len(mm), n_random)
    xs = np.concatenate([rng.integers(-(1 << 20), 1 << 20, n_random // 2),
                         rng.integers(I32_MIN, I32_MAX + 1, n_random - n_random // 2)])
    xe, me = np.meshgrid(edges, np.arange(len(mm)))
    x = np.concatenate([xs, xe.ravel()])
    mm_, ss_ = np.concatenate([mm[pick], mm[me.ravel()]]), np.concatenate([ss[pick], ss[me.ravel()]])
    cases.append(("mbqm shifts -31..+31, wraps, edges", sb.multiply_by_quantized_multiplier(x, mm_, ss_),
                  q.multiply_by_quantized_multiplier(x, mm_, ss_)))

    # requantize: int32 accumulators to int8 with extreme zero points and clamp ranges.
    acc = rng.integers(-(1 << 24), 1 << 24, n_random // 4)
    mi = rng.integers(0, len(mq), n_random // 4)
    for zp, lo, hi in ((-128, -128, 127), (127, -128, 127), (0, 0, 6), (-5, -5, 127), (100, 100, 100)):
        cases.append((f"requantize zp {zp} [{lo}, {hi}]", sb.requantize(acc, mq[mi], sq[mi], zp, lo, hi),
                      q.requantize(acc, mq[mi], sq[mi], zp, lo, hi)))
    # Results within a zero point of +-2^31 (multiplier ~1, shifts 0..7): the zero point must be
    # added without wrapping.
    n = n_ties // 8
    near = np.concatenate([edges, I32_MAX - np.arange(n), I32_MIN + np.arange(n), np.arange(-n, n) << 24])
    na, nm, ns = (v.ravel() for v in np.meshgrid(near, [I32_MAX, 1 << 30], [0, 1, 7]))
    for zp in (127, -128):
        cases.append((f"requantize near int32 limits zp {zp}", sb.requantize(na, nm, ns, zp, -128, 127),
                      q.requantize(na, nm, ns, zp, -128, 127)))
    return cases


def _conv_data(rng, x_shape, w_shape, bias=True, bias_range=1 << 15):
    x = rng.integers(-128, 128, x_shape, dtype=np.int8)
    w = rng.integers(-127, 128, w_shape, dtype=np.int8)
    b = rng.integers(-bias_range, bias_range, w_shape[0] if w_shape[0] > 1 else w_shape[3]).astype(np.int32)
    return x, w, (b if bias else None)


def conv_cases(rng) -> list:
    # label, x shape, w shape, stride, dilation, padding, in_zp, out_zp, activation, scales, bias
    specs = [
        ("3x3 odd channels 3->5 same", (1, 7, 9, 3), (5, 3, 3, 3), (1, 1), (1, 1), "same", -7, 3, "none", None, True),
        ("1x1 8->6 batch 2", (2, 5, 4, 8), (6, 1, 1, 8), (1, 1), (1, 1), "same", 12, -20, "relu", None, True),
        ("10x4 stride 2 same 1->8 (KWS)", (1, 13, 7, 1), (8, 10, 4, 1), (2, 2), (1, 1), "same", -5, -128, "relu",
         None, True),
        ("3x3 stride 2 valid 4->7", (1, 9, 8, 4), (7, 3, 3, 4), (2, 2), (1, 1), "valid", 0, 0, "none", None, True),
        ("3x2 stride (1,2) dilation 2", (1, 10, 9, 3), (4, 3, 2, 3), (1, 2), (2, 2), "same", 4, 1, "none", None, True),
        ("grouped 6->4 (2 groups)", (1, 6, 6, 6), (4, 3, 3, 3), (1, 1), (1, 1), "same", 1, -2, "none", None, True),
        ("zero points -128/127, relu6", (1, 5, 5, 5), (3, 3, 3, 5), (1, 1), (1, 1), "same", -128, 127, "relu6",
         None, True),
        ("zero points 127/-128", (1, 5, 5, 5), (3, 3, 3, 5), (1, 1), (1, 1), "same", 127, -128, "none", None, True),
        ("no bias, 1 output channel", (1, 4, 5, 3), (1, 3, 3, 3), (1, 1), (1, 1), "same", -3, 0, "none", None, False),
        ("1x1 input, 5x5 kernel same", (1, 1, 1, 4), (3, 5, 5, 4), (1, 1), (1, 1), "same", 9, 9, "none", None, True),
        ("odd pixel count 3x3", (1, 3, 5, 2), (6, 3, 3, 2), (1, 1), (1, 1), "same", 0, 0, "none", None, True),
        ("shifts to -31 and 0 multipliers", (1, 4, 4, 3), (6, 3, 3, 3), (1, 1), (1, 1), "same", 0, 0, "none",
         [1e-12, 2 ** -31.5, 2 ** -31, 2 ** -30, 1e-6, 0.3], True),
        ("shifts +1..+7, saturating", (1, 4, 4, 3), (6, 3, 3, 3), (1, 1), (1, 1), "same", 0, 5, "none",
         [1.0, 3.0, 17.0, 50.0, 100.0, 127.9], True),
    ]
    cases = []
    for label, xs, ws, st, dl, pad, izp, ozp, act, reals, with_bias in specs:
        x, w, b = _conv_data(rng, xs, ws, with_bias)
        if reals is None:
            p = int8.conv_params(0.05, rng.uniform(0.001, 0.02, ws[0]), 0.1, ozp, act)
        else:
            m, s = q.quantize_multipliers(reals)
            p = {"mult": m, "shift": s, "act_min": -128, "act_max": 127}
        kw = {"stride": st, "dilation": dl, "padding": pad, "in_zp": izp, "out_zp": ozp, "mult": p["mult"],
              "shift": p["shift"], "act_min": p["act_min"], "act_max": p["act_max"]}
        cases.append((f"conv {label}", sb.conv2d(x, w, b, **kw), int8.conv2d(x, w, b, **kw)))
    # A larger random layer: the 2x2 tile's tails everywhere (7 pixels x 9 channels x K = 3*3*13).
    x, w, b = _conv_data(rng, (1, 7, 1, 13), (9, 3, 3, 13), bias_range=1 << 20)
    p = int8.conv_params(0.02, rng.uniform(0.001, 0.02, 9), 0.5, -1)
    kw = {"padding": "same", "in_zp": 3, "out_zp": -1, "mult": p["mult"], "shift": p["shift"]}
    cases.append(("conv tails 7 px x 9 ch, big bias", sb.conv2d(x, w, b, **kw), int8.conv2d(x, w, b, **kw)))
    return cases


def dwconv_cases(rng) -> list:
    # label, x shape, (kh, kw), multiplier, stride, dilation, padding, in_zp, out_zp, act, bias
    specs = [
        ("3x3 C=5 (4 + tail) same", (1, 6, 7, 5), (3, 3), 1, (1, 1), (1, 1), "same", -7, 3, "none", True),
        ("3x3 C=8 stride 2 valid", (2, 9, 8, 8), (3, 3), 1, (2, 2), (1, 1), "valid", 0, -128, "relu", True),
        ("3x3 multiplier 2", (1, 5, 6, 3), (3, 3), 2, (1, 1), (1, 1), "same", 5, 0, "none", True),
        ("5x5 multiplier 3 stride 2", (1, 7, 7, 2), (5, 5), 3, (2, 2), (1, 1), "same", -1, 2, "none", True),
        ("3x3 dilation 2, C=12", (1, 8, 9, 12), (3, 3), 1, (1, 1), (2, 2), "same", 2, 2, "none", True),
        ("1x1 C=9", (1, 3, 4, 9), (1, 1), 1, (1, 1), (1, 1), "same", 0, 0, "none", True),
        ("3x1 asymmetric, stride (2,1)", (1, 9, 4, 4), (3, 1), 1, (2, 1), (1, 1), "same", 1, 1, "none", True),
        ("zero points -128/127, relu6", (1, 5, 5, 8), (3, 3), 1, (1, 1), (1, 1), "same", -128, 127, "relu6", True),
        ("zero points 127/-128", (1, 5, 5, 8), (3, 3), 1, (1, 1), (1, 1), "same", 127, -128, "none", True),
        ("input 2x2 smaller than 3x3 window, no bias", (1, 2, 2, 4), (3, 3), 1, (1, 1), (1, 1), "same", 3, 0,
         "none", False),
        ("KWS 3x3 on 25x5x64", (1, 25, 5, 64), (3, 3), 1, (1, 1), (1, 1), "same", -128, -128, "relu", True),
    ]
    cases = []
    for label, xs, (kh, kw_), mul, st, dl, pad, izp, ozp, act, with_bias in specs:
        cm = xs[3] * mul
        x = rng.integers(-128, 128, xs, dtype=np.int8)
        w = rng.integers(-127, 128, (1, kh, kw_, cm), dtype=np.int8)
        b = rng.integers(-(1 << 15), 1 << 15, cm).astype(np.int32) if with_bias else None
        p = int8.conv_params(0.05, rng.uniform(0.001, 0.05, cm), 0.1, ozp, act)
        kw = {"multiplier": mul, "stride": st, "dilation": dl, "padding": pad, "in_zp": izp, "out_zp": ozp,
              "mult": p["mult"], "shift": p["shift"], "act_min": p["act_min"], "act_max": p["act_max"]}
        cases.append((f"dwconv {label}", sb.depthwise_conv2d(x, w, b, **kw), int8.depthwise_conv2d(x, w, b, **kw)))
    return cases


def fc_cases(rng) -> list:
    # label, batches, n_in, n_out, per_channel, in_zp, out_zp, w_zp, act, bias
    specs = [("64->12 per tensor (KWS)", 1, 64, 12, False, -128, 7, 0, "none", True),
             ("64->12 per channel", 1, 64, 12, True, -128, 7, 0, "none", True),
             ("33->7 batch 3 per tensor, relu", 3, 33, 7, False, 10, -5, 0, "relu", True),
             ("33->5 batch 2 per channel", 2, 33, 5, True, -3, 4, 0, "none", True),
             ("1->1", 1, 1, 1, False, 0, 0, 0, "none", True),
             ("17->9 weight zero point 3", 2, 17, 9, False, 5, -2, 3, "none", True),
             ("17->9 no bias, zp -128/127", 1, 17, 9, True, -128, 127, 0, "none", False),
             ("256->10 per tensor", 1, 256, 10, False, 127, -128, 0, "none", True)]
    cases = []
    for label, nb, ni, no, pc, izp, ozp, wzp, act, with_bias in specs:
        x = rng.integers(-128, 128, (nb, ni), dtype=np.int8)
        w = rng.integers(-127, 128, (no, ni), dtype=np.int8)
        b = rng.integers(-(1 << 15), 1 << 15, no).astype(np.int32) if with_bias else None
        p = int8.fc_params(0.05, rng.uniform(0.001, 0.02, no) if pc else [0.004], 0.2, ozp, act)
        kw = {"in_zp": izp, "out_zp": ozp, "mult": p["mult"], "shift": p["shift"], "act_min": p["act_min"],
                  "act_max": p["act_max"], "w_zp": wzp}
        cases.append((f"fc {label}", sb.fully_connected(x, w, b, **kw), int8.fully_connected(x, w, b, **kw)))
    return cases


def pool_cases(rng) -> list:
    # label, x shape, size, stride, padding, activation range
    specs = [("2x2 s2 valid", (1, 8, 6, 5), 2, 2, "valid", (-128, 127)),
             ("3x3 s2 same (partial windows)", (2, 7, 9, 3), 3, 2, "same", (-128, 127)),
             ("3x3 s1 same, relu6 range", (1, 5, 5, 4), 3, 1, "same", (-20, 40)),
             ("global 25x5 (KWS)", (1, 25, 5, 64), (25, 5), (25, 5), "valid", (-128, 127)),
             ("2x3 s(1,2) same", (1, 6, 7, 7), (2, 3), (1, 2), "same", (-128, 127))]
    cases = []
    for label, xs, size, stride, pad, (lo, hi) in specs:
        x = rng.integers(-128, 128, xs, dtype=np.int8)
        kw = {"size": size, "stride": stride, "padding": pad, "act_min": lo, "act_max": hi}
        cases.append((f"avgpool {label}", sb.avg_pool2d(x, **kw), int8.avg_pool2d(x, **kw)))
        cases.append((f"maxpool {label}", sb.max_pool2d(x, **kw), int8.max_pool2d(x, **kw)))
    # Ties of the rounding: window sums that are exact halves (+-1.5, +-2.5 over 2 taps).
    x = np.array([1, 2, -1, -2, 3, 2, -3, -2, 127, 126, -128, -127], np.int8).reshape(1, 1, 12, 1)
    kw = {"size": (1, 2), "stride": (1, 2), "padding": "valid"}
    cases.append(("avgpool ties", sb.avg_pool2d(x, **kw), int8.avg_pool2d(x, **kw)))
    return cases


def mean_cases(rng) -> list:
    x = rng.integers(-128, 128, (2, 5, 7, 6), dtype=np.int8)
    specs = [("axes (1,2) keepdims", (1, 2), True, 0.05, 3, 0.04, -2),
             ("axes (1,2) same quantization", (1, 2), False, 0.05, 3, 0.05, 3),
             ("axis 3", (3,), True, 0.1, -128, 0.02, 127),
             ("axes (1,2,3)", (1, 2, 3), False, 0.1, 0, 0.1, 0),
             ("axes (1,2), tiny multiplier", (1, 2), True, 1e-9, 0, 1.0, 0)]
    cases = []
    for label, axes, keep, si, zi, so, zo in specs:
        p = int8.mean_params(si, zi, so, zo)
        cases.append((f"mean {label}", sb.mean(x, axes, keep, **p), int8.mean(x, axes, keep, **p)))
    xk = rng.integers(-128, 128, (1, 25, 5, 64), dtype=np.int8)
    p = int8.mean_params(0.05, -128, 0.03, -128)
    cases.append(("mean 25x5x64", sb.mean(xk, (1, 2), True, **p), int8.mean(xk, (1, 2), True, **p)))
    return cases


def add_cases(rng) -> list:
    x1 = rng.integers(-128, 128, (2, 4, 5, 6), dtype=np.int8)
    x2 = rng.integers(-128, 128, (2, 4, 5, 6), dtype=np.int8)
    specs = [("same scales", (0.05, 0, 0.05, 0, 0.1, 0, "none"), x2),
             ("different input scales", (0.05, 3, 0.2, -10, 0.15, 5, "none"), x2),
             ("zero points -128/127, relu", (0.02, -128, 0.07, 127, 0.1, -128, "relu"), x2),
             ("output range relu6", (0.1, 0, 0.1, 0, 0.05, -100, "relu6"), x2),
             ("broadcast over channels", (0.05, 1, 0.03, -1, 0.08, 0, "none"), x2[:1, :1, :1, :]),
             ("broadcast over pixels", (0.05, 1, 0.03, -1, 0.08, 0, "none"), x2[:, :, :, :1]),
             ("broadcast row", (0.05, 1, 0.03, -1, 0.08, 0, "none"), x2[:1, :, :1, :])]
    cases = []
    for label, (s1, z1, s2, z2, so, zo, act), b in specs:
        p = int8.add_params(s1, z1, s2, z2, so, zo, act)
        cases.append((f"add {label}", sb.add(x1, b, **p), int8.add(x1, b, **p)))
    return cases


def softmax_cases(rng) -> list:
    rows = [np.full(10, 5), np.full(10, -128), np.full(7, 127),            # constant rows
            np.array([127] + [-128] * 11), np.array([-128] * 11 + [127]),  # saturating
            np.array([127, 127, -128, 0]), np.array([0]), np.arange(-128, 128)]
    cases = []
    for i, r in enumerate(rows):
        x = np.asarray(r, np.int8)[None]
        for sc in (1 / 16, 0.1):
            p = int8.softmax_params(sc)
            cases.append((f"softmax row {i} scale {sc:g}", sb.softmax(x, **p), int8.softmax(x, **p)))
    for sc, beta, shape in ((0.1, 1.0, (5, 12)), (0.5, 1.0, (3, 100)), (1e-3, 1.0, (4, 10)), (10.0, 1.0, (4, 10)),
                            (0.05, 0.5, (2, 300)), (0.2, 2.0, (1, 2, 3, 7))):
        x = rng.integers(-128, 128, shape, dtype=np.int8)
        p = int8.softmax_params(sc, beta)
        cases.append((f"softmax random scale {sc:g} beta {beta:g} {shape}", sb.softmax(x, **p), int8.softmax(x, **p)))
    return cases


def logistic_cases(rng) -> list:
    x = np.arange(-128, 128, dtype=np.int8)
    cases = []
    for sc, zp in ((1 / 16, 0), (0.1, 3), (0.5, -128), (1e-3, 127), (10.0, 0), (0.02, -50), (1e-7, 0)):
        p = int8.logistic_params(sc, zp)
        cases.append((f"logistic scale {sc:g} zp {zp}", sb.logistic(x, **p), int8.logistic(x, **p)))
    return cases


def shape_cases(rng) -> list:
    x = rng.integers(-128, 128, (2, 3, 4, 5), dtype=np.int8)
    cases = []
    for pads, v in (([[0, 0], [1, 2], [0, 3], [1, 0]], -4), ([[1, 1], [0, 0], [0, 0], [0, 0]], 127),
                    ([[0, 0], [0, 0], [0, 0], [3, 2]], -128), ([[0, 0], [2, 2], [2, 2], [0, 0]], 0)):
        cases.append((f"pad {pads} value {v}", sb.pad(x, pads, v), int8.pad(x, pads, v)))
    for axis in range(4):
        parts = [x, x[:, :, :, :2] if axis == 3 else np.flip(x, axis), x]
        if axis != 3:
            parts[1] = np.ascontiguousarray(parts[1])
        cases.append((f"concat axis {axis}", sb.concatenation(parts, axis), int8.concatenation(parts, axis)))
    # QUANTIZE: random, exact ties at a power-of-two scale, NaN, infinities, huge and tiny values.
    f = np.concatenate([rng.standard_normal(2000).astype(np.float32) * 8,
                        (np.arange(-40, 40) + 0.5).astype(np.float32) * 0.25,
                        np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-45, -0.0, 0.0, 31.875, -32.125],
                                 np.float32)])
    for scale, zp in ((0.25, 0), (0.037, 4), (0.1, -128), (1e-3, 127)):
        cases.append((f"quantize scale {scale} zp {zp}", sb.quantize_op(f, scale, zp), int8.quantize_op(f, scale, zp)))
    xq = np.arange(-128, 128, dtype=np.int8)
    for scale, zp in ((0.037, 4), (1e-40, 0), (3e38, -128), (0.5, 127)):
        with np.errstate(over="ignore"):   # 3e38 * 255 is inf in float32, as on the board
            ref = int8.dequantize_op(xq, scale, zp)
        cases.append((f"dequantize scale {scale:g} zp {zp}", sb.dequantize_op(xq, scale, zp), ref))
    for si, zi, so, zo in ((0.05, 3, 0.1, -7), (0.1, -128, 0.01, 127), (1.0, 0, 1.0, 0)):
        p = int8.requantize_params(si, zi, so, zo)
        cases.append((f"requantize {si}->{so}", sb.requantize_op(xq, **p), int8.requantize_op(xq, **p)))
    return cases


# ---------------------------------------------------------------- host, ASan/UBSan
def test_primitives_bit_exact(driver, rng):
    _check(driver, primitive_cases(rng))


def test_conv2d_bit_exact(driver, rng):
    _check(driver, conv_cases(rng))


def test_depthwise_conv2d_bit_exact(driver, rng):
    _check(driver, dwconv_cases(rng))


def test_fully_connected_bit_exact(driver, rng):
    _check(driver, fc_cases(rng))


def test_pooling_and_mean_bit_exact(driver, rng):
    _check(driver, pool_cases(rng) + mean_cases(rng))


def test_add_bit_exact(driver, rng):
    _check(driver, add_cases(rng))


def test_softmax_and_logistic_bit_exact(driver, rng):
    _check(driver, softmax_cases(rng) + logistic_cases(rng))


def test_pad_concat_quantize_bit_exact(driver, rng):
    _check(driver, shape_cases(rng))


def test_random_layers_bit_exact(driver):
    """Many random conv/depthwise/FC layers: shapes, strides, paddings, zero points, scales."""
    rng = np.random.default_rng(77)
    cases = []
    for i in range(40):
        h, w_, c, o = (int(v) for v in rng.integers(1, 9, 4))
        kh, kw_ = (int(v) for v in rng.integers(1, 5, 2))
        st = tuple(int(v) for v in rng.integers(1, 3, 2))
        pad = "same" if i % 2 else "valid"
        if pad == "valid" and (kh > h or kw_ > w_):
            pad = "same"
        izp, ozp = (int(v) for v in rng.integers(-128, 128, 2))
        x = rng.integers(-128, 128, (1, h, w_, c), dtype=np.int8)
        wt = rng.integers(-127, 128, (o, kh, kw_, c), dtype=np.int8)
        b = rng.integers(-(1 << 16), 1 << 16, o).astype(np.int32)
        p = int8.conv_params(rng.uniform(0.01, 0.2), rng.uniform(0.001, 0.05, o), rng.uniform(0.02, 0.5), ozp)
        kw = {"stride": st, "padding": pad, "in_zp": izp, "out_zp": ozp, "mult": p["mult"], "shift": p["shift"]}
        cases.append((f"random conv {i}", sb.conv2d(x, wt, b, **kw), int8.conv2d(x, wt, b, **kw)))
        mul = int(rng.integers(1, 3))
        wd = rng.integers(-127, 128, (1, kh, kw_, c * mul), dtype=np.int8)
        bd = rng.integers(-(1 << 16), 1 << 16, c * mul).astype(np.int32)
        p = int8.conv_params(rng.uniform(0.01, 0.2), rng.uniform(0.001, 0.05, c * mul), rng.uniform(0.02, 0.5), ozp)
        kw = {"multiplier": mul, "stride": st, "padding": pad, "in_zp": izp, "out_zp": ozp, "mult": p["mult"],
              "shift": p["shift"]}
        cases.append((f"random dwconv {i}", sb.depthwise_conv2d(x, wd, bd, **kw),
                      int8.depthwise_conv2d(x, wd, bd, **kw)))
        wf = rng.integers(-127, 128, (o, h * w_ * c), dtype=np.int8)
        pc = bool(i % 2)
        p = int8.fc_params(0.05, rng.uniform(0.001, 0.02, o) if pc else [0.01], 0.3, ozp)
        kw = {"in_zp": izp, "out_zp": ozp, "mult": p["mult"], "shift": p["shift"]}
        cases.append((f"random fc {i}", sb.fully_connected(x, wf, b, **kw), int8.fully_connected(x, wf, b, **kw)))
    _check(driver, cases)


def test_driver_refuses_unknown_ops_and_oversized_requests(driver):
    """The driver answers status 2 for an unknown op and 1 for a request beyond its pool, so a
    broken request cannot pass as a kernel's output."""
    bad = sb.Request(99, [], [], (4,))
    with pytest.raises(sb.S8BenchError, match="status 2"):
        sb.run_host(driver, [bad])
    huge = sb.Request(30, [1], [b"\0" * 16], (9 * 1024 * 1024,))
    with pytest.raises(sb.S8BenchError, match="status 1"):
        sb.run_host(driver, [huge])


# ---------------------------------------------------------------- every board's compiler
HEADERS = ("hk_nn_s8.h", "hk_conv_s8.h", "hk_fc_s8.h", "hk_pool_s8.h", "hk_add_s8.h", "hk_softmax_s8.h",
           "hk_shape_s8.h")


@pytest.mark.parametrize("bid", sorted(CROSS))
def test_s8_headers_compile_strictly_on_every_board(bid, tmp_path):
    """Every header, every kernel called with literal shapes (as generated code calls them), with
    the board's compiler and flags (the pico: -mcpu=cortex-m0plus -mfloat-abi=soft)."""
    cc, *flags = CROSS[bid]
    if not have(cc):
        pytest.skip(f"{cc} not installed (run `make setup`)")
    src = tmp_path / "k.c"
    src.write_text("".join(f'#include "{h}"\n' for h in HEADERS) + """
void f(const int8_t *x, const int8_t *w, const int32_t *b, const int32_t *m, const int32_t *s, int8_t *y,
       int16_t *t, float *fy, const float *fx);
void f(const int8_t *x, const int8_t *w, const int32_t *b, const int32_t *m, const int32_t *s, int8_t *y,
       int16_t *t, float *fy, const float *fx)
{
    const hk_s8_dims in = {1, 25, 5, 64}, fc = {64, 1, 1, 64}, fd = {1, 3, 3, 64}, out = {1, 25, 5, 64};
    const hk_s8_conv_params cp = {-128, -128, {1, 1}, {0, 0}, {1, 1}, {-128, 127}};
    const hk_s8_dw_params dp = {-128, -128, 1, {1, 1}, {1, 1}, {1, 1}, {-128, 127}};
    const hk_s8_fc_params fp = {-128, 0, 7, {-128, 127}};
    const hk_s8_pool_params pp = {{25, 5}, {25, 5}, {0, 0}, {-128, 127}};
    const hk_s8_mean_params mp = {0, 0, 1 << 30, 0};
    const hk_s8_add_params ap = {0, 0, 0, 20, 1 << 30, -1, 1 << 30, -1, 1 << 30, -17, {-128, 127}};
    const hk_s8_softmax_params sp = {1 << 30, 23, -248};
    const hk_s8_logistic_params lp = {0, 1 << 30, 24, 120};
    const hk_s8_requant q = {m, s};
    const hk_s8_quant q1 = {1 << 30, -8};
    const int32_t pads[8] = {0, 0, 1, 1, 1, 1, 0, 0}, d[4] = {1, 25, 5, 64}, s1[4] = {0, 320, 64, 1};
    const int32_t s2[4] = {0, 0, 0, 1}, sizes[2] = {3, 5};
    const int8_t *xs[2] = {x, w};
    const hk_s8_dims outp = {1, 1, 1, 64};
    hk_conv2d_s8(&cp, &q, &in, x, &fc, w, b, &out, y, t);
    hk_dwconv2d_s8(&dp, &q, &in, x, &fd, w, b, &out, y);
    hk_fc_s8(&fp, &q1, 1, 64, x, 12, w, b, y);
    hk_fc_per_channel_s8(&fp, &q, 1, 64, x, 12, w, b, y);
    hk_avgpool2d_s8(&pp, &in, x, &outp, y);
    hk_maxpool2d_s8(&pp, &in, x, &outp, y);
    hk_mean_s8(&mp, 1, 125, 64, x, y);
    hk_add_s8(&ap, x, w, y, 8000);
    hk_add_bcast_s8(&ap, d, x, s1, w, s2, y);
    hk_softmax_s8(&sp, 1, 12, x, y);
    hk_logistic_s8(&lp, 64, x, y);
    hk_pad_s8(&in, x, pads, -128, y);
    hk_concat_s8(2, xs, sizes, 4, 8, y);
    hk_quantize_f32_s8(fx, 64, 0.05f, 3, y);
    hk_dequantize_s8_f32(x, 64, 0.05f, 3, fy);
    hk_requantize_s8(x, 64, 3, -2, 1 << 30, -1, y);
    (void)hk_conv2d_s8_scratch_bytes(&fc);
}
""")
    run_cc([cc, *flags, *STRICT, f"-I{resource_dir('kernels_c')}", "-c", str(src), "-o", str(tmp_path / "k.o")])


# ---------------------------------------------------------------- every board, under QEMU
def _runnable(bid: str) -> str | None:
    b = boards.get_board(bid)
    try:
        check_toolchain(b)
    except BuildError as e:
        return str(e)
    if b.qemu is not None and not have(b.qemu.binary):
        return f"{b.qemu.binary} not installed"
    return None


def board_cases(rng) -> list:
    """What every board runs: the requantization primitives (edges, ties, INT32_MIN, every shift)
    and one small conv, depthwise and FC each."""
    # Small enough for the 160 KiB pool and for the slowest emulated link (rpi3-bm's PL011 moves
    # ~4 KB/s under QEMU): ~50 KB in all.
    cases = primitive_cases(rng, n_random=600, n_mult=40, n_ties=200)
    x, w, b = _conv_data(rng, (1, 6, 5, 3), (5, 3, 3, 3))
    p = int8.conv_params(0.05, rng.uniform(0.001, 0.02, 5), 0.1, -3, "relu")
    kw = {"stride": (2, 1), "padding": "same", "in_zp": -128, "out_zp": -3, "mult": p["mult"], "shift": p["shift"],
              "act_min": p["act_min"], "act_max": p["act_max"]}
    cases.append(("conv 3x3 s(2,1) 3->5", sb.conv2d(x, w, b, **kw), int8.conv2d(x, w, b, **kw)))
    wd = rng.integers(-127, 128, (1, 3, 3, 6), dtype=np.int8)
    p = int8.conv_params(0.05, rng.uniform(0.001, 0.05, 6), 0.1, 127)
    kw = {"multiplier": 2, "padding": "same", "in_zp": 127, "out_zp": 127, "mult": p["mult"], "shift": p["shift"]}
    bd = rng.integers(-(1 << 15), 1 << 15, 6).astype(np.int32)
    cases.append(("dwconv 3x3 x2", sb.depthwise_conv2d(x, wd, bd, **kw), int8.depthwise_conv2d(x, wd, bd, **kw)))
    xd = rng.integers(-128, 128, (1, 1, 1, 8), dtype=np.int8)
    wd = rng.integers(-127, 128, (1, 3, 3, 8), dtype=np.int8)
    p = int8.conv_params(0.05, rng.uniform(0.001, 0.05, 8), 0.1, 0)
    kw = {"padding": "same", "in_zp": 5, "out_zp": 0, "mult": p["mult"], "shift": p["shift"]}
    cases.append(("dwconv 3x3 C=8 on 1x1", sb.depthwise_conv2d(xd, wd, None, **kw),
                  int8.depthwise_conv2d(xd, wd, None, **kw)))
    xf = rng.integers(-128, 128, (2, 40), dtype=np.int8)
    wf = rng.integers(-127, 128, (7, 40), dtype=np.int8)
    bf = rng.integers(-(1 << 15), 1 << 15, 7).astype(np.int32)
    for pc in (False, True):
        p = int8.fc_params(0.05, rng.uniform(0.001, 0.02, 7) if pc else [0.004], 0.2, 9)
        kw = {"in_zp": -1, "out_zp": 9, "mult": p["mult"], "shift": p["shift"]}
        cases.append((f"fc 40->7 {'per channel' if pc else 'per tensor'}", sb.fully_connected(xf, wf, bf, **kw),
                      int8.fully_connected(xf, wf, bf, **kw)))
    return cases


@pytest.mark.qemu
@pytest.mark.parametrize("bid", [b.id for b in boards.list_boards()])
def test_primitives_and_small_layers_on_every_board(bid, rng, tmp_path):
    why = _runnable(bid)
    if why:
        pytest.skip(why)
    cases = board_cases(rng)
    bad = {}
    with sb.S8Bench(bid, tmp_path) as bench:
        for label, req, ref in cases:
            got, _ = bench.run(req)
            n = _differing(got, ref)
            if n:
                bad[label] = f"{n}/{got.nbytes} bytes differ"
    assert bench.target.returncode == 0
    assert not bad, (bid, bad)


@pytest.mark.qemu
def test_m4f_instruction_counts_on_kws_layers(tmp_path):
    """The four MLPerf Tiny KWS layer shapes on the Cortex-M4F, generic and compiled: bit-exact,
    deterministic counts, and instructions per MAC within the measured bounds."""
    why = _runnable("mps2-an386")
    if why:
        pytest.skip(why)
    layers = kws_layers(np.random.default_rng(0))
    # Compiled (literal shapes) instructions per MAC measured on mps2-an386 (bench/int8/results).
    bounds = (3.7, 10.5, 3.15, 3.8)   # conv 10x4 s2, depthwise 3x3, conv 1x1, FC 64->12
    with sb.S8Bench("mps2-an386", tmp_path, cases=[r for r, _ in layers]) as bench:
        for i, ((req, ref), bound) in enumerate(zip(layers, bounds)):
            y_gen, n_gen = bench.run(req)
            y_case, n_case = bench.run(req, case=i)
            assert _differing(y_gen, ref) == 0 and _differing(y_case, ref) == 0, req.label
            assert bench.run(req, case=i)[1] == n_case     # deterministic
            assert n_case < n_gen, (req.label, n_case, n_gen)  # literal shapes help
            assert n_case / req.macs < bound, (req.label, n_case / req.macs)
