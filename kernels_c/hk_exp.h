/* Exponential-based activations: softmax, logistic (sigmoid), GELU (sigmoid and tanh forms).
 *
 * Three exp variants (docs/quake.md has the derivations and measured errors):
 *   libm    expf from the C library: the exact baseline.
 *   quake1  QuAKE first order: the float32 whose bits are the integer part of C1*x + C0,
 *           C1 = 2^23/ln 2, C0 = 127*2^23 - d1 (d1 minimises the maximum relative error, 2.98 %).
 *   quake2  quake1's bits u corrected by a continuous second-order mantissa term:
 *           u - k*2^23*f*(1-f), f = mantissa fraction of u, i.e. 2^f ~ 1 + f - k f (1 - f),
 *           k = 1/3, C0 = 127*2^23 - d2 (0.26 %).
 *
 * Every fused kernel folds its affine input into C1, C0 (softmax's max shift, GELU's 1.702 and
 * the tanh form's cubic, the logistic's minus sign), so an element costs a multiply, an add, a
 * saturating float->integer conversion and (quake2) a few integer operations.
 *
 * Semantics, identical on every path and in hilkit.models.quake (bit-exact):
 *   - float32 arithmetic in the order written, never fused into FMA (HK_NOFUSE pins each
 *     product, so any -ffp-contract setting gives the same bits);
 *   - the conversion saturates: t <= 0 (and -inf) gives 0, so e^x is exactly 0 for x <= -88.0;
 *     where e^x can overflow, t is first clamped to the bits of +inf, so it saturates to +inf;
 *   - NaN propagates: exp(NaN), logistic(NaN), gelu(NaN) are NaN; a softmax with a NaN or +inf
 *     input, or with every input -inf, is NaN everywhere (like the libm softmax);
 *   - softmax sums into 8 accumulators, element i into accumulator i % 8, combined as
 *     ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)); the max shift is folded into C0 while
 *     |max| <= HK_SOFTMAX_FOLD_MAX and subtracted first beyond it (keeps folding's rounding small).
 *
 * Paths: portable scalar C (`..._c`, always compiled) and, beside it, one per instruction set:
 *   hk_exp_neon.h    NEON (aarch64, armv7)                          HK_EXP_NEON
 *   hk_exp_mve.h     Helium/MVE (Cortex-M55)                        HK_EXP_MVE
 *   hk_exp_x86.h     SSE2/AVX2 (x86-64)                             HK_EXP_X86
 *   hk_exp_armv7m.h  FPv4/FPv5 scalar asm softmax, logistic and     HK_EXP_VFP_ASM
 *                    GELU (Cortex-M4F/M7/M33: C cannot make GCC emit the VLDM/VSTM they need)
 * The public `hk_<op>_<variant>_f32` picks the best path for the target; define HK_EXP_PORTABLE to
 * force the portable C. Flush-to-zero SIMD (armv7 NEON; MVE under QEMU) turns subnormal outputs
 * into 0. */
#ifndef HK_EXP_H
#define HK_EXP_H
#include <math.h>

#include "hk_nn.h"
#include "hk_types.h"

/* ---- constants (derived in docs/quake.md; bench/exp/exp_error.c --search recomputes them) ---- */
#define HK_QUAKE_C1 12102203.0f               /* 2^23 / ln 2, as a float32 */
#define HK_QUAKE1_C0 1064986816.0f            /* 127*2^23 - 366400: least maximum relative error */
#define HK_QUAKE2_C0 1065343872.0f            /* 127*2^23 - 9344 */
#define HK_QUAKE2_K 2796202u                  /* k * 2^23 with k = 1/3 (even: NEON uses sqdmulh(p, K/2)) */
#define HK_QUAKE_T_INF 2139095040.0f          /* 0x7F800000, the bits of +inf, as a float value */
#define HK_SOFTMAX_FOLD_MAX 256.0f            /* fold the max shift into C0 while |max| <= this */
#define HK_GELU_K 1.702f                      /* gelu(x) = x * sigmoid(1.702 x) */
#define HK_GELU_TANH_A (-1.5957691216057308f) /* -2 sqrt(2/pi) */
#define HK_GELU_TANH_B (-0.0713548162726f)    /* -2 sqrt(2/pi) * 0.044715 */

/* ---- primitives ---- */

/* HK_NOFUSE(v): an empty asm that pins a product in a register, so the compiler cannot contract
 * it with the following add into an FMA (which would change the rounding). */
#if defined(__GNUC__) && defined(__aarch64__)
#define HK_NOFUSE(v) __asm__("" : "+w"(v))
#elif defined(__GNUC__) && defined(__arm__) && defined(__ARM_FP) && (__ARM_FP & 4)
#define HK_NOFUSE(v) __asm__("" : "+t"(v))
#elif defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && defined(__FMA__)
#define HK_NOFUSE(v) __asm__("" : "+x"(v))
#else
#define HK_NOFUSE(v) ((void)0)
#endif

/* c1 * x + c0 in two float32 roundings (never an FMA). */
HK_INLINE float hk__affine(float c1, float x, float c0)
{
    float p = c1 * x;
    HK_NOFUSE(p);
    return p + c0;
}

/* min(t, bits-of-inf); NaN gives HK_QUAKE_T_INF on every path (fminf and the ternary agree). */
HK_INLINE float hk__clamp_inf(float t)
{
#if defined(__aarch64__) || defined(__ARM_FEATURE_NUMERIC_MAXMIN)
    return fminf(t, HK_QUAKE_T_INF); /* one FMINNM / VMINNM */
#else
    return t < HK_QUAKE_T_INF ? t : HK_QUAKE_T_INF; /* MINSS on x86 */
#endif
}

/* The saturating float -> uint32 conversion of Arm's VCVT/FCVTZU: truncates toward zero,
 * t <= 0 and NaN give 0. One instruction on Arm (written as asm because a C cast of an
 * out-of-range float is undefined behaviour), a clamp then a signed conversion elsewhere (which
 * vectorises on x86: MAXPS + CVTTPS2DQ). Every caller passes t < 2^31 (t is at most the bits of
 * +inf, or of 1 in softmax), where the two agree. hk__sat_bits returns the result reinterpreted
 * as a float (it stays in an FP register). */
HK_INLINE float hk__sat_bits(float t)
{
#if defined(__GNUC__) && defined(__aarch64__) && !defined(HK_EXP_PORTABLE)
    float r;
    __asm__("fcvtzu %s0, %s1" : "=w"(r) : "w"(t));
    return r;
#elif defined(__GNUC__) && defined(__arm__) && defined(__ARM_FP) && (__ARM_FP & 4) && !defined(HK_EXP_PORTABLE)
    float r;
    __asm__("vcvt.u32.f32 %0, %1" : "=t"(r) : "t"(t));
    return r;
#else
    float tc = t > 0.0f ? t : 0.0f; /* NaN -> 0 */
    return hk_nn_f32_from_bits((uint32_t)(int32_t)tc);
#endif
}

HK_INLINE uint32_t hk__sat_u32(float t) { return hk_nn_bits_from_f32(hk__sat_bits(t)); }

/* quake2's correction of quake1 bits u (0 <= u <= 0x7F800000): with F = f * 2^32 the mantissa
 * fraction, subtract floor(floor(F * (2^32 - F) / 2^32) * K / 2^32) ~ k * 2^23 * f * (1 - f).
 * It is 0 at f = 0, so 0 and +inf stay exact, and u - corr is continuous and increasing. */
HK_INLINE uint32_t hk__quake2_fix(uint32_t u)
{
    uint32_t f = u << 9;
    uint32_t p = (uint32_t)(((uint64_t)f * (uint32_t)(0u - f)) >> 32);
    return u - (uint32_t)(((uint64_t)p * HK_QUAKE2_K) >> 32);
}

/* e^x from t = C1*x + C0 (already clamped to <= HK_QUAKE_T_INF where overflow is possible). */
HK_INLINE float hk__quake_from_t(float t, int order)
{
    if (order == 1) {
        return hk__sat_bits(t);
    }
    return hk_nn_f32_from_bits(hk__quake2_fix(hk__sat_u32(t)));
}

/* ---- single values ---- */

HK_INLINE float hk_quake1_expf(float x)
{
    float y = hk__sat_bits(hk__clamp_inf(hk__affine(HK_QUAKE_C1, x, HK_QUAKE1_C0)));
    return x == x ? y : x;
}

HK_INLINE float hk_quake2_expf(float x)
{
    float t = hk__clamp_inf(hk__affine(HK_QUAKE_C1, x, HK_QUAKE2_C0));
    float y = hk_nn_f32_from_bits(hk__quake2_fix(hk__sat_u32(t)));
    return x == x ? y : x;
}

/* ---- elementwise exp over arrays: y = e^x ---- */

HK_INLINE void hk_exp_libm_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = expf(x[i]);
    }
}

HK_INLINE void hk__exp_quake_c(const float *x, float *y, int n, int order)
{
    const float c0 = order == 1 ? HK_QUAKE1_C0 : HK_QUAKE2_C0;
    for (int i = 0; i < n; i++) {
        float xi = x[i];
        float e = hk__quake_from_t(hk__clamp_inf(hk__affine(HK_QUAKE_C1, xi, c0)), order);
        y[i] = xi == xi ? e : xi;
    }
}

/* ---- libm variants (the baseline) ---- */

/* Softmax over n floats: y = exp(x - max) / sum. In-place allowed (y == x). */
HK_INLINE void hk_softmax_libm_f32(const float *x, float *y, int n)
{
    float m = x[0];
    for (int i = 1; i < n; i++) {
        m = x[i] > m ? x[i] : m;
    }
    float s = 0.0f;
    for (int i = 0; i < n; i++) {
        y[i] = expf(x[i] - m);
        s += y[i];
    }
    float r = 1.0f / s;
    for (int i = 0; i < n; i++) {
        y[i] *= r;
    }
}

/* Logistic: y = 1 / (1 + exp(-x)). */
HK_INLINE void hk_logistic_libm_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = 1.0f / (1.0f + expf(-x[i]));
    }
}

/* GELU, sigmoid form: y = x * sigmoid(1.702 x). */
HK_INLINE void hk_gelu_libm_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
    }
}

/* GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x / (1 + exp(x (A + B x^2))). */
HK_INLINE void hk_gelu_tanh_libm_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        float xi = x[i];
        float q = HK_GELU_TANH_B * (xi * xi);
        HK_NOFUSE(q);
        float a = (HK_GELU_TANH_A + q) * xi;
        y[i] = xi / (1.0f + expf(a));
    }
}

/* ---- QuAKE variants, portable scalar C ---- */

/* Largest non-NaN element (-inf if there is none). */
HK_INLINE float hk__max_c(const float *x, int n)
{
    float m0 = -INFINITY, m1 = -INFINITY, m2 = -INFINITY, m3 = -INFINITY;
    const int n4 = n & ~3; /* explicit bounds: GCC then sees the tail loop is empty for n % 4 == 0 */
    int i;
    for (i = 0; i < n4; i += 4) {
        m0 = x[i] > m0 ? x[i] : m0;
        m1 = x[i + 1] > m1 ? x[i + 1] : m1;
        m2 = x[i + 2] > m2 ? x[i + 2] : m2;
        m3 = x[i + 3] > m3 ? x[i + 3] : m3;
    }
    for (i = n4; i < n; i++) {
        m0 = x[i] > m0 ? x[i] : m0;
    }
    m0 = m1 > m0 ? m1 : m0;
    m2 = m3 > m2 ? m3 : m2;
    return m2 > m0 ? m2 : m0;
}

/* The softmax constants for a max m: t = c1*(x - sh) + c0 with sh == 0 when the shift is folded
 * (returns 1) or sh == m when |m| is too large to fold (returns 0; also for NaN and inf). */
HK_INLINE int hk__softmax_fold(float m, int order, float *c0)
{
    float base = order == 1 ? HK_QUAKE1_C0 : HK_QUAKE2_C0;
    if (fabsf(m) <= HK_SOFTMAX_FOLD_MAX) {
        float p = HK_QUAKE_C1 * m;
        HK_NOFUSE(p);
        *c0 = base - p;
        return 1;
    }
    *c0 = base;
    return 0;
}

/* The sum of the 8 accumulators, in the documented order. */
HK_INLINE float hk__sum8(const float a[8]) { return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); }

/* One element of the exp pass. */
#define HK__SOFTMAX_T(xv) (fold ? hk__affine(HK_QUAKE_C1, (xv), c0) : hk__affine(HK_QUAKE_C1, (xv) - (m), c0))

/* Exp pass from element i on: y = E, a[i % 8] += E, returns the NaN check (sum of t). */
HK_INLINE float hk__softmax_exp_c(const float *x, float *y, int i0, int n, float m, float c0, int fold, int order,
                                  float a[8])
{
    float st = 0.0f;
    const int n8 = i0 + ((n - i0) & ~7);
    int i;
    for (i = i0; i < n8; i += 8) {
        float t0 = HK__SOFTMAX_T(x[i]), t1 = HK__SOFTMAX_T(x[i + 1]);
        float t2 = HK__SOFTMAX_T(x[i + 2]), t3 = HK__SOFTMAX_T(x[i + 3]);
        float t4 = HK__SOFTMAX_T(x[i + 4]), t5 = HK__SOFTMAX_T(x[i + 5]);
        float t6 = HK__SOFTMAX_T(x[i + 6]), t7 = HK__SOFTMAX_T(x[i + 7]);
        st += ((t0 + t1) + (t2 + t3)) + ((t4 + t5) + (t6 + t7));
        float e0 = hk__quake_from_t(t0, order), e1 = hk__quake_from_t(t1, order);
        float e2 = hk__quake_from_t(t2, order), e3 = hk__quake_from_t(t3, order);
        float e4 = hk__quake_from_t(t4, order), e5 = hk__quake_from_t(t5, order);
        float e6 = hk__quake_from_t(t6, order), e7 = hk__quake_from_t(t7, order);
        y[i] = e0;
        y[i + 1] = e1;
        y[i + 2] = e2;
        y[i + 3] = e3;
        y[i + 4] = e4;
        y[i + 5] = e5;
        y[i + 6] = e6;
        y[i + 7] = e7;
        a[0] += e0;
        a[1] += e1;
        a[2] += e2;
        a[3] += e3;
        a[4] += e4;
        a[5] += e5;
        a[6] += e6;
        a[7] += e7;
    }
    for (i = n8; i < n; i++) {
        float t = HK__SOFTMAX_T(x[i]);
        float e = hk__quake_from_t(t, order);
        st += t;
        y[i] = e;
        a[i & 7] += e;
    }
    return st;
}

/* y[i] *= r from element i on. */
HK_INLINE void hk__scale_c(float *y, int i0, int n, float r)
{
    const int n8 = i0 + ((n - i0) & ~7);
    int i;
    for (i = i0; i < n8; i += 8) {
        y[i] *= r;
        y[i + 1] *= r;
        y[i + 2] *= r;
        y[i + 3] *= r;
        y[i + 4] *= r;
        y[i + 5] *= r;
        y[i + 6] *= r;
        y[i + 7] *= r;
    }
    for (i = n8; i < n; i++) {
        y[i] *= r;
    }
}

/* 1 / sum, or NaN when the NaN check (a sum of every t) is NaN. */
HK_INLINE float hk__softmax_recip(const float a[8], float st)
{
    float r = 1.0f / hk__sum8(a);
    return st == st ? r : st;
}

HK_INLINE void hk__softmax_quake_c(const float *x, float *y, int n, int order)
{
    if (n <= 0) {
        return;
    }
    float m = hk__max_c(x, n);
    float c0;
    int fold = hk__softmax_fold(m, order, &c0);
    float a[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    float st =
        fold ? hk__softmax_exp_c(x, y, 0, n, m, c0, 1, order, a) : hk__softmax_exp_c(x, y, 0, n, m, c0, 0, order, a);
    hk__scale_c(y, 0, n, hk__softmax_recip(a, st));
}

/* Logistic: 1 / (1 + e^-x), with e^-x from t = -C1 x + C0. */
HK_INLINE void hk__logistic_quake_c(const float *x, float *y, int n, int order)
{
    const float c0 = order == 1 ? HK_QUAKE1_C0 : HK_QUAKE2_C0;
    for (int i = 0; i < n; i++) {
        float xi = x[i];
        float e = hk__quake_from_t(hk__clamp_inf(hk__affine(-HK_QUAKE_C1, xi, c0)), order);
        float v = 1.0f / (1.0f + e);
        y[i] = xi == xi ? v : xi;
    }
}

/* GELU, sigmoid form: x / (1 + e^(-1.702 x)), the 1.702 folded into C1. */
HK_INLINE void hk__gelu_quake_c(const float *x, float *y, int n, int order)
{
    const float c0 = order == 1 ? HK_QUAKE1_C0 : HK_QUAKE2_C0;
    const float c1 = -HK_GELU_K * HK_QUAKE_C1;
    for (int i = 0; i < n; i++) {
        float xi = x[i];
        float e = hk__quake_from_t(hk__clamp_inf(hk__affine(c1, xi, c0)), order);
        y[i] = xi / (1.0f + e);
    }
}

/* GELU, tanh form: x / (1 + e^(x (A + B x^2))), with C1*A and C1*B folded. */
HK_INLINE void hk__gelu_tanh_quake_c(const float *x, float *y, int n, int order)
{
    const float c0 = order == 1 ? HK_QUAKE1_C0 : HK_QUAKE2_C0;
    const float ca = HK_QUAKE_C1 * HK_GELU_TANH_A, cb = HK_QUAKE_C1 * HK_GELU_TANH_B;
    for (int i = 0; i < n; i++) {
        float xi = x[i];
        float q = hk__affine(cb, xi * xi, ca);
        float e = hk__quake_from_t(hk__clamp_inf(hk__affine(q, xi, c0)), order);
        y[i] = xi / (1.0f + e);
    }
}

/* The elementwise kernels by number, op 0 exp, 1 logistic, 2 GELU, 3 GELU tanh form (a constant in
 * every call), from element i0 to n - 1: what each ISA path's hk__eltwise_quake_<arch> must match,
 * and those paths' tails. */
HK_INLINE void hk__eltwise_quake_c(const float *x, float *y, int i0, int n, int op, int order)
{
    if (op == 0) {
        hk__exp_quake_c(x + i0, y + i0, n - i0, order);
    } else if (op == 1) {
        hk__logistic_quake_c(x + i0, y + i0, n - i0, order);
    } else if (op == 2) {
        hk__gelu_quake_c(x + i0, y + i0, n - i0, order);
    } else {
        hk__gelu_tanh_quake_c(x + i0, y + i0, n - i0, order);
    }
}

/* The portable paths under their public-style names (always available, e.g. to test the SIMD
 * paths against them). */
HK_INLINE void hk_exp_quake1_f32_c(const float *x, float *y, int n) { hk__exp_quake_c(x, y, n, 1); }
HK_INLINE void hk_exp_quake2_f32_c(const float *x, float *y, int n) { hk__exp_quake_c(x, y, n, 2); }
HK_INLINE void hk_softmax_quake1_f32_c(const float *x, float *y, int n) { hk__softmax_quake_c(x, y, n, 1); }
HK_INLINE void hk_softmax_quake2_f32_c(const float *x, float *y, int n) { hk__softmax_quake_c(x, y, n, 2); }
HK_INLINE void hk_logistic_quake1_f32_c(const float *x, float *y, int n) { hk__logistic_quake_c(x, y, n, 1); }
HK_INLINE void hk_logistic_quake2_f32_c(const float *x, float *y, int n) { hk__logistic_quake_c(x, y, n, 2); }
HK_INLINE void hk_gelu_quake1_f32_c(const float *x, float *y, int n) { hk__gelu_quake_c(x, y, n, 1); }
HK_INLINE void hk_gelu_quake2_f32_c(const float *x, float *y, int n) { hk__gelu_quake_c(x, y, n, 2); }
HK_INLINE void hk_gelu_tanh_quake1_f32_c(const float *x, float *y, int n) { hk__gelu_tanh_quake_c(x, y, n, 1); }
HK_INLINE void hk_gelu_tanh_quake2_f32_c(const float *x, float *y, int n) { hk__gelu_tanh_quake_c(x, y, n, 2); }

/* ---- the ISA paths: the portable C's bits, but for flush-to-zero SIMD (above) ---- */
#if !defined(HK_EXP_PORTABLE) && defined(__GNUC__) && defined(__ARM_NEON)
#define HK_EXP_NEON 1
#include "hk_exp_neon.h"
#elif !defined(HK_EXP_PORTABLE) && defined(__GNUC__) && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#define HK_EXP_MVE 1 /* with floating point */
#include "hk_exp_mve.h"
#elif !defined(HK_EXP_PORTABLE) && defined(__GNUC__) && defined(__x86_64__) && defined(__SSE2__)
#define HK_EXP_X86 1
#include "hk_exp_x86.h"
#elif !defined(HK_EXP_PORTABLE) && defined(__GNUC__) && defined(__arm__) && defined(__thumb2__) &&     \
    defined(__ARM_FP) && (__ARM_FP & 4) && defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M' && \
    !defined(__ARM_FEATURE_MVE)
#define HK_EXP_VFP_ASM 1
#include "hk_exp_armv7m.h"
#endif

/* ---- public kernels: the best path for the target ---- */

#if defined(HK_EXP_NEON)
#define HK__SOFTMAX(x, y, n, o) hk__softmax_quake_neon(x, y, n, o)
#define HK__ELTWISE(x, y, n, op, o) hk__eltwise_quake_neon(x, y, n, op, o)
#elif defined(HK_EXP_X86)
#define HK__SOFTMAX(x, y, n, o) hk__softmax_quake_x86(x, y, n, o)
#define HK__ELTWISE(x, y, n, op, o) hk__eltwise_quake_x86(x, y, n, op, o)
#elif defined(HK_EXP_MVE)
#define HK__SOFTMAX(x, y, n, o) hk__softmax_quake_mve(x, y, n, o)
#define HK__ELTWISE(x, y, n, op, o) hk__eltwise_quake_mve(x, y, n, op, o)
#elif defined(HK_EXP_VFP_ASM)
#define HK__SOFTMAX(x, y, n, o) hk__softmax_quake_vfp(x, y, n, o)
#endif

#ifdef HK__SOFTMAX
HK_INLINE void hk_softmax_quake1_f32(const float *x, float *y, int n) { HK__SOFTMAX(x, y, n, 1); }
HK_INLINE void hk_softmax_quake2_f32(const float *x, float *y, int n) { HK__SOFTMAX(x, y, n, 2); }
#else
HK_INLINE void hk_softmax_quake1_f32(const float *x, float *y, int n) { hk__softmax_quake_c(x, y, n, 1); }
HK_INLINE void hk_softmax_quake2_f32(const float *x, float *y, int n) { hk__softmax_quake_c(x, y, n, 2); }
#endif

#ifdef HK__ELTWISE
HK_INLINE void hk_exp_quake1_f32(const float *x, float *y, int n) { HK__ELTWISE(x, y, n, 0, 1); }
HK_INLINE void hk_exp_quake2_f32(const float *x, float *y, int n) { HK__ELTWISE(x, y, n, 0, 2); }
HK_INLINE void hk_logistic_quake1_f32(const float *x, float *y, int n) { HK__ELTWISE(x, y, n, 1, 1); }
HK_INLINE void hk_logistic_quake2_f32(const float *x, float *y, int n) { HK__ELTWISE(x, y, n, 1, 2); }
HK_INLINE void hk_gelu_quake1_f32(const float *x, float *y, int n) { HK__ELTWISE(x, y, n, 2, 1); }
HK_INLINE void hk_gelu_quake2_f32(const float *x, float *y, int n) { HK__ELTWISE(x, y, n, 2, 2); }
HK_INLINE void hk_gelu_tanh_quake1_f32(const float *x, float *y, int n) { HK__ELTWISE(x, y, n, 3, 1); }
HK_INLINE void hk_gelu_tanh_quake2_f32(const float *x, float *y, int n) { HK__ELTWISE(x, y, n, 3, 2); }
#else
HK_INLINE void hk_exp_quake1_f32(const float *x, float *y, int n) { hk__exp_quake_c(x, y, n, 1); }
HK_INLINE void hk_exp_quake2_f32(const float *x, float *y, int n) { hk__exp_quake_c(x, y, n, 2); }
#if defined(HK_EXP_VFP_ASM)
HK_INLINE void hk_logistic_quake1_f32(const float *x, float *y, int n) { hk__logistic_quake_vfp(x, y, n, 1); }
HK_INLINE void hk_logistic_quake2_f32(const float *x, float *y, int n) { hk__logistic_quake_vfp(x, y, n, 2); }
HK_INLINE void hk_gelu_quake1_f32(const float *x, float *y, int n) { hk__gelu_quake_vfp(x, y, n, 1); }
HK_INLINE void hk_gelu_quake2_f32(const float *x, float *y, int n) { hk__gelu_quake_vfp(x, y, n, 2); }
#else
HK_INLINE void hk_logistic_quake1_f32(const float *x, float *y, int n) { hk__logistic_quake_c(x, y, n, 1); }
HK_INLINE void hk_logistic_quake2_f32(const float *x, float *y, int n) { hk__logistic_quake_c(x, y, n, 2); }
HK_INLINE void hk_gelu_quake1_f32(const float *x, float *y, int n) { hk__gelu_quake_c(x, y, n, 1); }
HK_INLINE void hk_gelu_quake2_f32(const float *x, float *y, int n) { hk__gelu_quake_c(x, y, n, 2); }
#endif
HK_INLINE void hk_gelu_tanh_quake1_f32(const float *x, float *y, int n) { hk__gelu_tanh_quake_c(x, y, n, 1); }
HK_INLINE void hk_gelu_tanh_quake2_f32(const float *x, float *y, int n) { hk__gelu_tanh_quake_c(x, y, n, 2); }
#endif

#endif
