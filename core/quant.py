"""Integer arithmetic of TFLite Micro's int8 kernels, in numpy: multipliers, rounding, requantization
and the gemmlowp fixed-point functions that SOFTMAX and LOGISTIC use.

Every function is bit-exact with TFLM's reference kernels (double rounding; TFLITE_SINGLE_ROUNDING
is off there). Integer values travel as int64 numpy arrays inside (no overflow while computing) and
are wrapped to 32 bits exactly where the C code works on int32. Pure numpy + Python ints.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")


# ---------------------------------------------------------------- multipliers (Prepare side)
def _round_away(v: float) -> int:
    """std::round: halves away from zero (Python's round() rounds halves to even)."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplier: real ~= M * 2^(shift - 31), M a Q31 int32 in [2^30, 2^31)."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    m = _round_away(q * (1 << 31))
    if m == 1 << 31:   # q rounded up to 1.0
        m //= 2
        shift += 1
    if shift < -31:    # every bit would be shifted out: TFLM flushes to zero
        return 0, 0
    return m, shift


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier over an array of doubles: (M int32 array, shift int32 array)."""
    pairs = [quantize_multiplier(r) for r in np.asarray(reals, np.float64).ravel()]
    m = np.array([p[0] for p in pairs], np.int32).reshape(np.shape(reals))
    s = np.array([p[1] for p in pairs], np.int32).reshape(np.shape(reals))
    return m, s


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp (ADD's multipliers): 0 < real < 1, shift <= 0."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real!r} must lie in (0, 1) (TFLM checks this and aborts)")
    return quantize_multiplier(real)


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplierGreaterThanOne (SOFTMAX's input multiplier): real > 1, shift >= 0."""
    if not real > 1.0:
        raise ValueError(f"multiplier {real!r} must be > 1 (TFLM checks this and aborts)")
    return quantize_multiplier(real)


# ---------------------------------------------------------------- int32 primitives
def wrap32(x) -> np.ndarray:
    """Two's-complement wrap to int32 (what the int32 C arithmetic does on overflow), as int64."""
    x = np.asarray(x, np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul: round(a*b / 2^31) by C's truncating division of
    a*b + nudge (nudge 2^30, or 1 - 2^30 for negative products), so halves go toward +inf;
    INT32_MIN * INT32_MIN saturates to INT32_MAX. Returns int32."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b                                    # |ab| <= 2^62: exact in int64
    t = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(t >= 0, t >> 31, -((-t) >> 31))  # C division truncates toward zero
    q = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)
    return q.astype(np.int32)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero; 0 <= e <= 31."""
    x = np.asarray(x, np.int64)
    e = np.asarray(exponent, np.int64)
    if np.any((e < 0) | (e > 31)):
        raise ValueError("rounding_divide_by_pot: exponent must be in 0..31")
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return ((x >> e) + (rem > thr)).astype(np.int32)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>: saturating x * 2^e for e > 0,
    rounding_divide_by_pot for e < 0."""
    x = np.asarray(x, np.int64)
    if exponent == 0:
        return x.astype(np.int32)
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    thr = (1 << (31 - exponent)) - 1
    r = np.where(x > thr, INT32_MAX, np.where(x < -thr, INT32_MIN, x << exponent))
    return r.astype(np.int32)


def multiply_by_quantized_multiplier(x, M, shift) -> np.ndarray:
    """TFLM MultiplyByQuantizedMultiplier (int32 x, double rounding):
    RoundingDivideByPOT(SRDHM(x * 2^left, M), right), left = max(shift, 0), right = max(-shift, 0).
    M and shift broadcast against x (per channel: shape [C] against [..., C])."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    xs = wrap32(np.asarray(x, np.int64) << left)   # x * (1 << left) in int32
    return rounding_divide_by_pot(srdhm(xs, M), right)


def multiply_by_quantized_multiplier_smaller_than_one_exp(x, M, left_shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplierSmallerThanOneExp (ADD): RoundingDivideByPOT(SRDHM(x, M), -shift)."""
    return rounding_divide_by_pot(srdhm(x, M), -np.asarray(left_shift, np.int64))


def multiply_by_quantized_multiplier_greater_than_one(x, M, left_shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplierGreaterThanOne (SOFTMAX): SRDHM(x * 2^left_shift, M)."""
    return srdhm(wrap32(np.asarray(x, np.int64) << np.asarray(left_shift, np.int64)), M)


def requantize(acc, M, shift, out_zp: int, act_min: int, act_max: int) -> np.ndarray:
    """int32 accumulator -> int8: MultiplyByQuantizedMultiplier, + out_zp, clamp to the activation."""
    y = multiply_by_quantized_multiplier(acc, M, shift).astype(np.int64) + int(out_zp)
    return np.clip(y, act_min, act_max).astype(np.int8)


# ---------------------------------------------------------------- activation range, (de)quantize
def _quantize_scalar(scale: float, zero_point: int, f: float) -> int:
    """kernel_util.cc's Quantize: zero_point + (int)round(f / scale), in float32."""
    tmp = _round_away(float(np.float32(f) / np.float32(scale)))   # float32 quotient, exact in double
    if not INT32_MIN <= tmp <= INT32_MAX:
        raise ValueError(f"activation bound {f} / scale {scale} overflows int32 (TFLM refuses this model)")
    return int(zero_point) + tmp


def activation_range(act: str, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: the int8 clamp range of a fused activation."""
    if act in (None, "none"):
        return qmin, qmax
    if act == "relu":
        return max(qmin, _quantize_scalar(scale, zero_point, 0.0)), qmax
    if act == "relu6":
        return (max(qmin, _quantize_scalar(scale, zero_point, 0.0)),
                min(qmax, _quantize_scalar(scale, zero_point, 6.0)))
    if act == "relu_n1_to_1":
        return (max(qmin, _quantize_scalar(scale, zero_point, -1.0)),
                min(qmax, _quantize_scalar(scale, zero_point, 1.0)))
    raise ValueError(f"unknown fused activation {act!r} (one of {', '.join(ACTIVATIONS)})")


def quantize(x, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """TFLM QUANTIZE float32 -> int8 (AffineQuantize): x / (float)scale in float32, rounded halves
    away from zero, + zero_point, clamp. Outside int32 TFLM's (int32_t) cast is undefined: here the
    quotient saturates (what ARM's conversion does) and NaN gives zero_point; the x86 oracle gives
    INT32_MIN there, so -128 for +-inf, NaN and |x / scale| >= 2^31."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        q = (np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64)  # exact widening
    q = np.nan_to_num(np.clip(q, INT32_MIN, INT32_MAX), nan=0.0)
    r = (np.sign(q) * np.floor(np.abs(q) + 0.5)).astype(np.int64)   # |q| < 2^31: +0.5 is exact
    return np.clip(r + int(zero_point), qmin, qmax).astype(np.int8)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """TFLM DEQUANTIZE int8 -> float32: (float)((double)scale * (q - zero_point))."""
    q = np.asarray(q, np.int64)
    return (float(np.float32(scale)) * (q - int(zero_point)).astype(np.float64)).astype(np.float32)


# ---------------------------------------------------------------- gemmlowp fixed point (int32 raw)
# A FixedPoint<int32, I> holds raw r meaning r / 2^(31 - I). '+', '-' and unary '-' are plain int32
# arithmetic (wrapping); '*' of FixedPoint<A> and FixedPoint<B> is SRDHM giving FixedPoint<A + B>.
def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp RoundingHalfSum (int32): (a + b + sign) / 2 in int64, C division."""
    s = np.asarray(a, np.int64) + np.asarray(b, np.int64)
    t = s + np.where(s >= 0, 1, -1)
    return np.where(t >= 0, t >> 1, -((-t) >> 1)).astype(np.int32)


def rescale(x, src_int_bits: int, dst_int_bits: int) -> np.ndarray:
    """gemmlowp Rescale<dst>(FixedPoint<src>): SaturatingRoundingMultiplyByPOT<src - dst>."""
    return saturating_rounding_multiply_by_pot(x, src_int_bits - dst_int_bits)


def _mul(a, b) -> np.ndarray:
    return srdhm(a, b).astype(np.int64)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out: 4th-order Taylor around -1/8."""
    a = np.asarray(a, np.int64)
    exp_m1_8 = 1895147668          # exp(-1/8) in Q0.31
    one_third = 715827883          # 1/3 in Q0.31
    x = wrap32(a + (1 << 28))      # a + 1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2).astype(np.int64)
    poly = saturating_rounding_multiply_by_pot(wrap32(_mul(wrap32(x4_over_4 + x3), one_third) + x2), -1)
    return wrap32(exp_m1_8 + _mul(exp_m1_8, wrap32(x + poly))).astype(np.int32)


# (bit exponent, exp(-2^exponent) in Q0.31): the barrel shifter of exp_on_negative_values.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: exp(a) for a <= 0 given as FixedPoint<int32, integer_bits>;
    result in Q0.31 (exp(0) = INT32_MAX)."""
    a = np.asarray(a, np.int64)
    frac_bits = 31 - integer_bits
    quarter = 1 << (frac_bits - 2)
    a_mod = wrap32((a & (quarter - 1)) - quarter)          # in [-1/4, 0)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod, integer_bits, 0)).astype(np.int64)
    remainder = wrap32(a_mod - a)                           # the multiple of 1/4 still to apply
    for exponent, mult in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (frac_bits + exponent)
            result = np.where((remainder & bit) != 0, _mul(result, mult), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)   # below -32: exp is 0
    result = np.where(a == 0, INT32_MAX, result)
    return result.astype(np.int32)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a), Q0.31 in and out, three
    Newton-Raphson steps in Q2.29 from 48/17 - 32/17 * d."""
    half_den = rounding_half_sum(a, INT32_MAX).astype(np.int64)   # (1 + a) / 2, Q0.31
    c48_17, cm32_17, one_q2 = 1515870810, -1010580540, 1 << 29
    x = wrap32(c48_17 + _mul(half_den, cm32_17))                   # Q2.29
    for _ in range(3):
        hdx = _mul(half_den, x)                                    # Q2.29
        one_minus = wrap32(one_q2 - hdx)
        x = wrap32(x + rescale(_mul(x, one_minus), 4, 2))           # Q4.27 -> Q2.29
    return rescale(x, 1, 0)        # ExactMulByPot<-1> reinterprets Q2.29 as Q1.30; then -> Q0.31


def logistic_fixed(a, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic: 1 / (1 + exp(-a)) for FixedPoint<int32, integer_bits> a, Q0.31 out."""
    a = np.asarray(a, np.int64)
    pos = a > 0
    abs_a = np.where(pos, a, wrap32(-a))
    r_pos = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap32(-abs_a), integer_bits)).astype(np.int64)
    r_neg = wrap32(INT32_MAX - r_pos)
    return np.where(a == 0, 1 << 30, np.where(pos, r_pos, r_neg)).astype(np.int32)


def count_leading_zeros32(x) -> np.ndarray:
    """CountLeadingZeros of uint32 values (32 for 0)."""
    u = np.asarray(x, np.int64) & 0xFFFFFFFF
    n = np.full(u.shape, 32, np.int64)
    nz = u != 0
    # frexp's exponent is the bit length; uint32 values are exact in float64.
    n[nz] = 32 - np.frexp(u[nz].astype(np.float64))[1]
    return n


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLM GetReciprocal: (1 / x as Q0.31 scaled into [0.5, 1], num_bits_over_unit) for a positive
    FixedPoint<int32, x_integer_digits> x."""
    x = np.asarray(x, np.int64)
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_minus_one = wrap32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), num_bits_over_unit


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLM CalculateInputRadius: the largest |input| (in input units) before the rescaled value
    saturates, floor((2^I - 1) * 2^(31 - I) / 2^left_shift)."""
    v = (1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits))
         / float(1 << input_left_shift))
    return math.floor(v)


def preprocess_softmax_scaling(beta: float, input_scale: float, input_integer_bits: int) -> tuple[int, int]:
    """TFLM PreprocessSoftmaxScaling (double rounding build): (multiplier, left_shift) of
    beta * input_scale * 2^(31 - integer_bits), capped at 2^31 - 1."""
    real = min(float(beta) * float(input_scale) * float(1 << (31 - input_integer_bits)), float((1 << 31) - 1))
    return quantize_multiplier_greater_than_one(real)
