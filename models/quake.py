"""QuAKE fast exponentials: numpy reference of kernels_c/hk_exp.h.

Three exp variants: ``libm`` (exact exp), ``quake1`` (write int(C1*x + C0) into a float's bits)
and ``quake2`` (quake1's bits with a continuous second-order mantissa correction). Each fused
kernel (softmax, logistic, gelu = x*sigmoid(1.702x), gelu_tanh) folds its affine input into C1, C0.

The quake functions are bit-exact with the portable C kernels (and with every SIMD path, which
compute the same float32 operations): float32 products and sums rounded one at a time, never
fused (the C pins each product against FMA contraction), the Arm VCVT saturating conversion, the
same integer correction, and softmax's 8-accumulator summation order. The libm variants use
numpy's exp, which agrees with a C library's expf to an ulp or two, not bit for bit.
"""
from __future__ import annotations

import numpy as np

F32 = np.float32

# Constants of hk_exp.h (tests check both sides agree; docs/quake.md derives them).
C1 = F32(12102203.0)          # 2^23 / ln 2
QUAKE1_C0 = F32(1064986816.0)  # 127*2^23 - 366400
QUAKE2_C0 = F32(1065343872.0)  # 127*2^23 - 9344
QUAKE2_K = 2796202             # k * 2^23, k = 1/3
T_INF = F32(2139095040.0)      # 0x7F800000 as a value
SOFTMAX_FOLD_MAX = F32(256.0)
GELU_K = F32(1.702)
GELU_TANH_A = F32(-1.5957691216057308)
GELU_TANH_B = F32(-0.0713548162726)

EXPS = ("libm", "quake1", "quake2")
OPS = ("exp", "softmax", "logistic", "gelu", "gelu_tanh")


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=F32)


def _c0(order: int) -> np.float32:
    return QUAKE1_C0 if order == 1 else QUAKE2_C0


def _affine(c1, x, c0) -> np.ndarray:
    """c1*x + c0 with two float32 roundings (what the C computes: no FMA)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return (_f32(c1) * _f32(x)).astype(F32) + F32(c0)


def _clamp_inf(t: np.ndarray) -> np.ndarray:
    """min(t, bits of +inf); NaN gives T_INF, as fminf and the C ternary do."""
    return np.where(t < T_INF, t, T_INF).astype(F32)


def sat_u32(t) -> np.ndarray:
    """Arm VCVT.U32.F32: truncate toward zero, <= 0 and NaN -> 0, >= 2^32 -> 0xFFFFFFFF."""
    t64 = np.asarray(t, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        u = np.where(t64 > 0, np.where(t64 < 2.0**32, np.trunc(np.nan_to_num(t64)), 2.0**32 - 1), 0.0)
    return u.astype(np.uint32)


def quake2_fix(u: np.ndarray) -> np.ndarray:
    """u - floor(floor(F (2^32 - F) / 2^32) K / 2^32), F = (u << 9) mod 2^32: the quake2 correction."""
    u = np.asarray(u, dtype=np.uint64)
    f = (u << np.uint64(9)) & np.uint64(0xFFFFFFFF)
    g = (np.uint64(1 << 32) - f) & np.uint64(0xFFFFFFFF)
    p = (f * g) >> np.uint64(32)
    return (u - ((p * np.uint64(QUAKE2_K)) >> np.uint64(32))).astype(np.uint32)


def _from_t(t: np.ndarray, order: int) -> np.ndarray:
    u = sat_u32(t)
    if order == 2:
        u = quake2_fix(u)
    return u.view(F32)


def _order(exp: str) -> int:
    if exp not in ("quake1", "quake2"):
        raise ValueError(f"unknown exp variant {exp!r}: use one of {', '.join(EXPS)}")
    return 1 if exp == "quake1" else 2


# ---- exp ----

def exp(x, exp: str = "quake1") -> np.ndarray:
    """e^x in float32 with the given variant (elementwise; NaN propagates, overflow -> +inf)."""
    x = _f32(x)
    if exp == "libm":
        with np.errstate(over="ignore"):
            return np.exp(x)
    y = _from_t(_clamp_inf(_affine(C1, x, _c0(_order(exp)))), _order(exp))
    return np.where(np.isnan(x), x, y).astype(F32)


def exp_quake1(x) -> np.ndarray:
    return exp(x, "quake1")


def exp_quake2(x) -> np.ndarray:
    return exp(x, "quake2")


# ---- softmax ----

def _sum8(e: np.ndarray) -> np.ndarray:
    """Sum over the last axis with the C's layout: 8 sequential float32 accumulators
    (element i into i % 8), combined as ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7))."""
    n = e.shape[-1]
    pad = (-n) % 8
    e = np.concatenate([e, np.zeros(e.shape[:-1] + (pad,), F32)], axis=-1) if pad else e
    blocks = e.reshape(e.shape[:-1] + (-1, 8))
    a = np.add.accumulate(blocks, axis=-2, dtype=F32)[..., -1, :]  # sequential, unlike .sum()
    a = [a[..., j] for j in range(8)]
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))


def softmax(x, exp: str = "quake1") -> np.ndarray:
    """Softmax over the last axis, as hk_softmax_<exp>_f32 computes it."""
    x = _f32(x)
    if x.shape[-1] == 0:
        return x.copy()
    if exp == "libm":
        return _softmax_libm(x)
    order = _order(exp)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        finite = np.where(np.isnan(x), F32(-np.inf), x)
        m = finite.max(axis=-1, keepdims=True)
        fold = np.abs(m) <= SOFTMAX_FOLD_MAX
        c0f = (_c0(order) - (C1 * m).astype(F32)).astype(F32)
        t_fold = _affine(C1, x, c0f)
        t_sub = _affine(C1, (x - m).astype(F32), _c0(order))
        t = np.where(fold, t_fold, t_sub)
        e = _from_t(t, order)
        r = (F32(1.0) / _sum8(e)).astype(F32)[..., None]
        r = np.where(np.isnan(t).any(axis=-1, keepdims=True), F32(np.nan), r)
        return (e * r).astype(F32)


def _softmax_libm(x: np.ndarray) -> np.ndarray:
    """hk_softmax_libm_f32: shift by the max, expf, a sequential sum, multiply by 1/sum."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = x.max(axis=-1, keepdims=True)
        e = np.exp((x - m).astype(F32))
        s = np.add.accumulate(e, axis=-1, dtype=F32)[..., -1:]
        return (e * (F32(1.0) / s)).astype(F32)


# ---- logistic and GELU ----

def logistic(x, exp: str = "quake1") -> np.ndarray:
    """1 / (1 + e^-x), the minus sign folded into C1."""
    x = _f32(x)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if exp == "libm":
            return (F32(1.0) / (F32(1.0) + np.exp(-x))).astype(F32)
        order = _order(exp)
        e = _from_t(_clamp_inf(_affine(-C1, x, _c0(order))), order)
        v = (F32(1.0) / (F32(1.0) + e)).astype(F32)
        return np.where(np.isnan(x), x, v).astype(F32)


def gelu(x, exp: str = "quake1") -> np.ndarray:
    """x * sigmoid(1.702 x) = x / (1 + e^(-1.702 x)), the -1.702 folded into C1."""
    x = _f32(x)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if exp == "libm":
            return (x / (F32(1.0) + np.exp((F32(-1.702) * x).astype(F32)))).astype(F32)
        order = _order(exp)
        c1 = (-GELU_K * C1).astype(F32)
        e = _from_t(_clamp_inf(_affine(c1, x, _c0(order))), order)
        return (x / (F32(1.0) + e)).astype(F32)


def gelu_tanh(x, exp: str = "quake1") -> np.ndarray:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x / (1 + e^(x (A + B x^2)))."""
    x = _f32(x)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        x2 = (x * x).astype(F32)
        if exp == "libm":
            a = ((GELU_TANH_A + (GELU_TANH_B * x2).astype(F32)).astype(F32) * x).astype(F32)
            return (x / (F32(1.0) + np.exp(a))).astype(F32)
        order = _order(exp)
        ca, cb = (C1 * GELU_TANH_A).astype(F32), (C1 * GELU_TANH_B).astype(F32)
        q = _affine(cb, x2, ca)
        e = _from_t(_clamp_inf(_affine(q, x, _c0(order))), order)
        return (x / (F32(1.0) + e)).astype(F32)


KERNELS = {"exp": exp, "softmax": softmax, "logistic": logistic, "gelu": gelu, "gelu_tanh": gelu_tanh}


def kernel(op: str, exp: str = "quake1"):
    """The reference function y = f(x) of kernel `op` with exp variant `exp`."""
    if op not in KERNELS:
        raise ValueError(f"unknown kernel {op!r}: use one of {', '.join(OPS)}")
    if exp not in EXPS:
        raise ValueError(f"unknown exp variant {exp!r}: use one of {', '.join(EXPS)}")
    fn = KERNELS[op]
    return lambda x: fn(x, exp)


def exact(op: str, x) -> np.ndarray:
    """The kernel computed in float64 with the exact exp (the truth errors are measured against)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if op == "exp":
            return np.exp(x)
        if op == "softmax":
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if op == "logistic":
            return 1.0 / (1.0 + np.exp(-x))
        if op == "gelu":
            return x / (1.0 + np.exp(-1.702 * x))
        if op == "gelu_tanh":
            # 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)): no cancellation for x << 0
            return x / (1.0 + np.exp(-2.0 * np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    raise ValueError(f"unknown kernel {op!r}: use one of {', '.join(OPS)}")
