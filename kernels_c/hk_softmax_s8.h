/* int8 SOFTMAX and LOGISTIC, TFLM semantics (reference_ops::Softmax, reference_integer_ops::Logistic),
 * in gemmlowp's int32 fixed point. Qm.n below is a raw int32 r meaning r / 2^n with m = 31 - n
 * integer bits; a product of Qa and Qb values is hk_srdhm, giving Q(a+b); adds wrap as in gemmlowp.
 * Both outputs have scale 1/256 and zero point -128 (TFLM enforces it).
 *
 * hk_softmax_s8   rows [rows][depth], over the last axis:
 *                 d = x - max(row); live = d >= diff_min;
 *                 e = exp(srdhm(d * 2^left_shift, M))        (Q5.26 in, Q0.31 out)
 *                 S = sum over live of rdbp(e, 12)           (Q12.19)
 *                 y = live ? clamp(rdbp(srdhm(1/S scaled, e), bits_over_unit + 23) - 128) : -128
 *                 M, left_shift = PreprocessSoftmaxScaling(beta, in_scale, 5); diff_min =
 *                 -CalculateInputRadius(5, left_shift). depth < 512 (TFLM aborts beyond: the
 *                 final shift would pass 31). Cost per value: two exps (~60 instructions each:
 *                 a 4th-order polynomial and up to 7 barrel-shifter multiplies), one multiply and
 *                 a rounding shift; per row one reciprocal (3 Newton-Raphson steps).
 * hk_logistic_s8  y = v <= -radius ? -128 : v >= radius ? 127 :
 *                     clamp(rdbp(logistic(mbqm(v, M, left_shift)), 23) - 128),  v = x - in_zp
 *                 (Q4.27 in, Q0.31 out; M = round(frexp(in_scale * 2^27) * 2^31)).
 *                 Cost per value: one exp and one reciprocal (~150 instructions). */
#ifndef HK_SOFTMAX_S8_H
#define HK_SOFTMAX_S8_H
#include "hk_nn_s8.h"

/* SOFTMAX's integer parameters (ops/int8.py softmax_params). */
typedef struct {
    int32_t mult;       /* input_beta_multiplier */
    int32_t left_shift; /* input_beta_left_shift */
    int32_t diff_min;   /* differences below this give exp = 0 */
} hk_s8_softmax_params;

/* LOGISTIC's integer parameters (ops/int8.py logistic_params). */
typedef struct {
    int32_t input_zp;
    int32_t mult;
    int32_t left_shift;
    int32_t radius; /* |x - input_zp| at and beyond which the output saturates */
} hk_s8_logistic_params;

/* ---------------------------------------------------------------- gemmlowp fixed point */

/* SaturatingRoundingMultiplyByPOT<e>, e > 0: x * 2^e saturated to int32 (gemmlowp Rescale up). */
HK_INLINE int32_t hk__fp_sat_shl(int32_t x, int e)
{
    const int32_t thr = (int32_t)(((uint32_t)1 << (31 - e)) - 1u);
    if (x > thr) {
        return INT32_MAX;
    }
    if (x < -thr) {
        return INT32_MIN;
    }
    return x * ((int32_t)1 << e); /* |x| <= thr: no overflow, no shift of a negative value */
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series to x^4 around -1/8. */
HK_INLINE int32_t hk__fp_exp_quarter(int32_t a)
{
    const int32_t exp_m1_8 = 1895147668; /* exp(-1/8) */
    const int32_t one_third = 715827883; /* 1/3 */
    const int32_t x = hk_s8_add_wrap(a, (int32_t)1 << 28);
    const int32_t x2 = hk_srdhm(x, x), x3 = hk_srdhm(x2, x), x4 = hk_srdhm(x2, x2);
    const int32_t x4_over_4 = hk_rdbp(x4, 2);
    const int32_t poly =
        hk_rdbp(hk_s8_add_wrap(hk_srdhm(hk_s8_add_wrap(x4_over_4, x3), one_third), x2), 1); /* x2/2+x3/6+x4/24 */
    return hk_s8_add_wrap(exp_m1_8, hk_srdhm(exp_m1_8, hk_s8_add_wrap(x, poly)));
}

/* exp(a) for a <= 0 given with `int_bits` integer bits (Q(int_bits).(31-int_bits)); Q0.31 out,
 * exp(0) = INT32_MAX. The remainder beyond [-1/4, 0) is applied bit by bit (exp(-2^k) constants). */
HK_INLINE int32_t hk__fp_exp_neg(int32_t a, int int_bits)
{
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int frac = 31 - int_bits;
    const int32_t quarter = (int32_t)1 << (frac - 2);
    const int32_t a_mod = hk_s8_sub_wrap(a & (quarter - 1), quarter); /* in [-1/4, 0) */
    int32_t result = hk__fp_exp_quarter(hk__fp_sat_shl(a_mod, int_bits));
    const int32_t remainder = hk_s8_sub_wrap(a_mod, a);
    for (int k = -2; k <= 4; k++) {
        if (int_bits > k && (remainder & ((int32_t)1 << (frac + k)))) {
            result = hk_srdhm(result, barrel[k + 2]);
        }
    }
    if (int_bits > 5 && a < -((int32_t)1 << (36 - int_bits))) {
        result = 0; /* below -32: exp underflows */
    }
    return a == 0 ? INT32_MAX : result;
}

/* (a + b) / 2 rounded half away from zero (gemmlowp RoundingHalfSum, in 64 bits). */
HK_INLINE int32_t hk__fp_half_sum(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a + (int64_t)b;
    return (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out: Newton-Raphson in Q2.29 from 48/17 - 32/17 d. */
HK_INLINE int32_t hk__fp_one_over_one_plus_x(int32_t a)
{
    const int32_t half_den = hk__fp_half_sum(a, INT32_MAX); /* (1 + a) / 2, Q0.31 */
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = hk_s8_add_wrap(1515870810, hk_srdhm(half_den, -1010580540)); /* 48/17 - 32/17 d */
    for (int i = 0; i < 3; i++) {
        const int32_t one_minus = hk_s8_sub_wrap(one_q2, hk_srdhm(half_den, x));
        x = hk_s8_add_wrap(x, hk__fp_sat_shl(hk_srdhm(x, one_minus), 2)); /* Q4.27 -> Q2.29 */
    }
    return hk__fp_sat_shl(x, 1); /* x / 2 in Q1.30, read as Q0.31 */
}

/* logistic(a) = 1 / (1 + exp(-a)) for a with `int_bits` integer bits; Q0.31 out. */
HK_INLINE int32_t hk__fp_logistic(int32_t a, int int_bits)
{
    if (a == 0) {
        return (int32_t)1 << 30;
    }
    const int32_t abs_a = a > 0 ? a : hk_s8_sub_wrap(0, a);
    const int32_t r = hk__fp_one_over_one_plus_x(hk__fp_exp_neg(hk_s8_sub_wrap(0, abs_a), int_bits));
    return a > 0 ? r : hk_s8_sub_wrap(INT32_MAX, r);
}

/* ---------------------------------------------------------------- kernels */

/* exp(x - max) of one live value of a row, Q0.31. */
HK_INLINE int32_t hk__s8_softmax_exp(const hk_s8_softmax_params *p, int32_t diff)
{
    return hk__fp_exp_neg(hk_srdhm(hk_s8_shl_wrap(diff, p->left_shift), p->mult), 5);
}

/* SOFTMAX over the last axis of x [rows][depth] (see the top of the file). */
HK_INLINE void hk_softmax_s8(const hk_s8_softmax_params *p, int32_t rows, int32_t depth, const int8_t *HK_RESTRICT x,
                             int8_t *HK_RESTRICT y)
{
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *xr = x + (size_t)r * (size_t)depth;
        int8_t *yr = y + (size_t)r * (size_t)depth;
        int32_t mx = -128;
        for (int32_t c = 0; c < depth; c++) {
            mx = xr[c] > mx ? xr[c] : mx;
        }
        int32_t sum = 0; /* Q12.19 */
        for (int32_t c = 0; c < depth; c++) {
            const int32_t d = xr[c] - mx;
            if (d >= p->diff_min) {
                sum = hk_s8_add_wrap(sum, hk_rdbp(hk__s8_softmax_exp(p, d), 12));
            }
        }
        /* GetReciprocal(sum, 12): 1/sum = 2^-bits_over_unit / (1 + f) with f in [0, 1). */
        const int hr = hk_s8_clz((uint32_t)sum);
        const int32_t bits_over_unit = 12 - hr;
        const uint32_t scaled = hr < 32 ? (uint32_t)sum << hr : 0u;
        const int32_t recip = hk__fp_one_over_one_plus_x(hk_s8_wrap(scaled - 0x80000000u));
        int exponent = (int)bits_over_unit + 31 - 8;
        exponent = exponent > 31 ? 31 : exponent; /* only past depth 511, where TFLM aborts */
        for (int32_t c = 0; c < depth; c++) {
            const int32_t d = xr[c] - mx;
            int32_t v = -128;
            if (d >= p->diff_min) {
                v = hk_rdbp(hk_srdhm(recip, hk__s8_softmax_exp(p, d)), exponent) - 128;
                v = hk_s8_clamp(v, -128, 127);
            }
            yr[c] = (int8_t)v;
        }
    }
}

/* LOGISTIC of n values (see the top of the file). */
HK_INLINE void hk_logistic_s8(const hk_s8_logistic_params *p, int32_t n, const int8_t *HK_RESTRICT x,
                              int8_t *HK_RESTRICT y)
{
    for (int32_t i = 0; i < n; i++) {
        const int32_t v = x[i] - p->input_zp;
        int32_t out;
        if (v <= -p->radius) {
            out = -128;
        } else if (v >= p->radius) {
            out = 127;
        } else {
            const int32_t q4 = hk_mbqm(v, p->mult, p->left_shift); /* Q4.27 */
            out = hk_s8_clamp(hk_rdbp(hk__fp_logistic(q4, 4), 23) - 128, -128, 127);
        }
        y[i] = (int8_t)out;
    }
}

#endif
