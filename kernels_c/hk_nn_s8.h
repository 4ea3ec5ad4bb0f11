/* int8 kernels with TFLite Micro semantics: the shared types and the fixed-point arithmetic.
 *
 * Quantization (LiteRT 8-bit spec): real = (q - zero_point) * scale. Activations int8 per tensor,
 * weights int8 symmetric (per output channel for conv/depthwise, per tensor or per channel for FC),
 * bias int32 with scale in_scale * w_scale[c]. Tensors are NHWC, batch outermost, channels
 * innermost ("HWC"); filters are [O][KH][KW][I] (conv), [1][KH][KW][C*M] (depthwise), [O][I] (FC).
 *
 * Requantization is TFLM's default double rounding (TFLITE_SINGLE_ROUNDING off):
 *   hk_mbqm(x, M, shift) = hk_rdbp(hk_srdhm(x * 2^max(shift,0), M), max(-shift,0))
 * with M in [2^30, 2^31) (or 0) from QuantizeMultiplier, shift in [-31, 31]. Everything here is
 * well-defined C99: int32_t is two's complement (C99 7.18.1.1), so & and ~ of negative values are
 * exact; the implementation-defined arithmetic right shift of negative values and the undefined left
 * shift of negative values are never used (hk_s8_asr, hk_s8_shl_wrap); where TFLM's C++ wraps on
 * overflow (x * 2^shift, gemmlowp's fixed-point adds) these helpers wrap explicitly in uint32_t, so
 * the results are TFLM's bit for bit. Each costs one 32x32->64 multiply at most and runs once per
 * output value, never inside a MAC loop.
 *
 * Parameter structs follow CMSIS-NN's (cmsis_nn_conv_params & co.), but carry zero points rather
 * than negated offsets; every field is documented where it is declared. */
#ifndef HK_NN_S8_H
#define HK_NN_S8_H
#include <stddef.h>
#include <stdint.h>

#include "hk_types.h"

/* ---------------------------------------------------------------- parameter structs */

/* A tensor shape, NHWC. Filters use the same struct: conv [O][KH][KW][I] is {n=O, h=KH, w=KW, c=I};
 * depthwise [1][KH][KW][C*M] is {1, KH, KW, C*M}. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} hk_s8_dims;

/* A pair of vertical/horizontal values: strides, paddings, dilations, pooling windows. */
typedef struct {
    int32_t h;
    int32_t w;
} hk_s8_hw;

/* The fused activation as an output range in the quantized domain (TFLM CalculateActivationRange):
 * none [-128, 127]; RELU [max(-128, zp), 127]; RELU6 [max(-128, zp), min(127, zp + round(6/s))]. */
typedef struct {
    int32_t min;
    int32_t max;
} hk_s8_act;

/* CONV_2D. pad = zero rows above / columns left of the input (TFLM padding_values); the rows and
 * columns after the input are implied by the output size. dilation must be {1, 1} for an ordinary
 * convolution (not {0, 0}). */
typedef struct {
    int32_t input_zp;  /* subtracted from every input value (padding taps contribute 0) */
    int32_t output_zp; /* added after requantization, before the clamp */
    hk_s8_hw stride;
    hk_s8_hw pad;
    hk_s8_hw dilation;
    hk_s8_act act;
} hk_s8_conv_params;

/* DEPTHWISE_CONV_2D: output channel o = c * ch_mult + m reads input channel c. */
typedef struct {
    int32_t input_zp;
    int32_t output_zp;
    int32_t ch_mult; /* depth multiplier M >= 1 */
    hk_s8_hw stride;
    hk_s8_hw pad;
    hk_s8_hw dilation;
    hk_s8_act act;
} hk_s8_dw_params;

/* FULLY_CONNECTED. filter_zp is 0 for LiteRT models (symmetric weights); TFLM applies it as
 * weights_offset in the per-tensor kernel. */
typedef struct {
    int32_t input_zp;
    int32_t filter_zp;
    int32_t output_zp;
    hk_s8_act act;
} hk_s8_fc_params;

/* AVERAGE_POOL_2D / MAX_POOL_2D: window, stride, top/left padding (padded taps are skipped, not
 * counted), output range. Input and output share scale and zero point (TFLM requires it). */
typedef struct {
    hk_s8_hw filter;
    hk_s8_hw stride;
    hk_s8_hw pad;
    hk_s8_act act;
} hk_s8_pool_params;

/* One requantization multiplier: M = round(q * 2^31), real = q * 2^shift, q in [0.5, 1). */
typedef struct {
    int32_t mult;
    int32_t shift;
} hk_s8_quant;

/* Per-channel requantization: mult[o] and shift[o] for output channel o (arrays of O values). */
typedef struct {
    const int32_t *mult;
    const int32_t *shift;
} hk_s8_requant;

/* ---------------------------------------------------------------- well-defined integer helpers */

/* uint32_t -> int32_t modulo 2^32, without the implementation-defined conversion (compiles to
 * nothing on a two's complement target). */
HK_INLINE int32_t hk_s8_wrap(uint32_t u)
{
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(UINT32_MAX - u) - 1;
}

/* a + b and a - b modulo 2^32 (gemmlowp's int32 Add/Sub, which wrap in practice). */
HK_INLINE int32_t hk_s8_add_wrap(int32_t a, int32_t b)
{
    return hk_s8_wrap((uint32_t)a + (uint32_t)b);
}
HK_INLINE int32_t hk_s8_sub_wrap(int32_t a, int32_t b)
{
    return hk_s8_wrap((uint32_t)a - (uint32_t)b);
}

/* x * 2^e modulo 2^32, e in [0, 31]: TFLM's `x * (1 << left_shift)`. */
HK_INLINE int32_t hk_s8_shl_wrap(int32_t x, int e)
{
    return hk_s8_wrap((uint32_t)x << e);
}

/* floor(x / 2^e), e in [0, 31]: arithmetic shift right written without shifting a negative value. */
HK_INLINE int32_t hk_s8_asr(int32_t x, int e)
{
    return x >= 0 ? x >> e : ~(~x >> e);
}

HK_INLINE int32_t hk_s8_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Leading zero bits of a 32-bit value; 32 for 0. */
HK_INLINE int hk_s8_clz(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0u ? 32 : __builtin_clz(x);
#else
    int n = 0;
    if (x == 0u) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

/* ---------------------------------------------------------------- requantization primitives */

/* SaturatingRoundingDoublingHighMul (gemmlowp; ARM VQRDMULH): round(a * b / 2^31), ties toward +inf;
 * INT32_MIN * INT32_MIN, the one product that does not fit, saturates to INT32_MAX. gemmlowp adds a
 * nudge (2^30, or 1 - 2^30 for a negative product) and divides truncating toward zero; for a
 * negative t = ab + 1 - 2^30, trunc(t / 2^31) = floor((t + 2^31 - 1) / 2^31), so both signs reduce to
 * floor((ab + 2^30) / 2^31): one 64-bit add and an arithmetic shift (smull, adds, adc, 2 shifts). */
HK_INLINE int32_t hk_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t t = (int64_t)a * (int64_t)b + ((int64_t)1 << 30);
    /* floor(t / 2^31) without shifting a negative value; the result is within int32. */
    return (int32_t)(t >= 0 ? t >> 31 : ~(~t >> 31));
}

/* RoundingDivideByPOT (gemmlowp): round(x / 2^e), ties away from zero, e in [0, 31]. */
HK_INLINE int32_t hk_rdbp(int32_t x, int e)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return hk_s8_asr(x, e) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier, double rounding (TFLM common.cc): x * M * 2^shift / 2^31.
 * shift in [-31, 31]; a left shift that overflows wraps, as TFLM's int32 multiply does. */
HK_INLINE int32_t hk_mbqm(int32_t x, int32_t mult, int32_t shift)
{
    const int left = shift > 0 ? (int)shift : 0;
    const int right = shift > 0 ? 0 : (int)-shift;
    return hk_rdbp(hk_srdhm(hk_s8_shl_wrap(x, left), mult), right);
}

/* MultiplyByQuantizedMultiplierSmallerThanOneExp (ADD): hk_rdbp(hk_srdhm(x, M), -shift), shift in
 * [-31, 0]; the same as hk_mbqm there. */
HK_INLINE int32_t hk_mbqm_le1(int32_t x, int32_t mult, int32_t shift)
{
    return hk_rdbp(hk_srdhm(x, mult), (int)-shift);
}

/* clamp(v + zp, lo, hi) for int8 bounds without an int32 overflow: the sum is taken as exact (the
 * numpy reference's int64 add). TFLM's int32 `acc += output_offset` would wrap instead, which can
 * only differ when a multiplier > 1 puts v within 255 of +-2^31. */
HK_INLINE int8_t hk_s8_out(int32_t v, int32_t zp, int32_t lo, int32_t hi)
{
    return (int8_t)(hk_s8_clamp(v, lo - zp, hi - zp) + zp);
}

/* The tail of every conv/FC output: requantize, add the output zero point, clamp to the range. */
HK_INLINE int8_t hk_s8_requantize(int32_t acc, int32_t mult, int32_t shift, int32_t out_zp, int32_t act_min,
                                  int32_t act_max)
{
    return hk_s8_out(hk_mbqm(acc, mult, shift), out_zp, act_min, act_max);
}

#endif
