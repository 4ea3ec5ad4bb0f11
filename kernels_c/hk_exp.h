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
 * Paths: portable scalar C (`..._c`, always compiled), NEON (aarch64, armv7: hk_exp_neon.h),
 * Helium/MVE (Cortex-M55: hk_exp_mve.h), SSE2/AVX2 (x86-64: hk_exp_x86.h) and an FPv4/FPv5
 * scalar-asm softmax, logistic and GELU for Cortex-M4F/M7 (below; C cannot make GCC emit the
 * VLDM/VSTM they need). The public `hk_<op>_<variant>_f32` picks the best path for the target;
 * define HK_EXP_PORTABLE to force the portable C. Flush-to-zero SIMD (armv7 NEON; MVE under
 * QEMU) turns subnormal outputs into 0. */
#ifndef HK_EXP_H
#define HK_EXP_H
#include <math.h>
#include <string.h>
#include "hk_types.h"

/* ---- constants (derived in docs/quake.md; bench/exp/exp_error.c --search recomputes them) ---- */
#define HK_QUAKE_C1 12102203.0f        /* 2^23 / ln 2, as a float32 */
#define HK_QUAKE1_C0 1064986816.0f     /* 127*2^23 - 366400: least maximum relative error */
#define HK_QUAKE2_C0 1065343872.0f     /* 127*2^23 - 9344 */
#define HK_QUAKE2_K 2796202u           /* k * 2^23 with k = 1/3 (even: NEON uses sqdmulh(p, K/2)) */
#define HK_QUAKE_T_INF 2139095040.0f   /* 0x7F800000, the bits of +inf, as a float value */
#define HK_SOFTMAX_FOLD_MAX 256.0f     /* fold the max shift into C0 while |max| <= this */
#define HK_GELU_K 1.702f               /* gelu(x) = x * sigmoid(1.702 x) */
#define HK_GELU_TANH_A (-1.5957691216057308f)  /* -2 sqrt(2/pi) */
#define HK_GELU_TANH_B (-0.0713548162726f)     /* -2 sqrt(2/pi) * 0.044715 */

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

HK_INLINE float hk__f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

HK_INLINE uint32_t hk__bits_from_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

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
#elif defined(__GNUC__) && defined(__arm__) && defined(__ARM_FP) && (__ARM_FP & 4) && \
    !defined(HK_EXP_PORTABLE)
    float r;
    __asm__("vcvt.u32.f32 %0, %1" : "=t"(r) : "t"(t));
    return r;
#else
    float tc = t > 0.0f ? t : 0.0f; /* NaN -> 0 */
    return hk__f32_from_bits((uint32_t)(int32_t)tc);
#endif
}

HK_INLINE uint32_t hk__sat_u32(float t)
{
    return hk__bits_from_f32(hk__sat_bits(t));
}

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
    return hk__f32_from_bits(hk__quake2_fix(hk__sat_u32(t)));
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
    float y = hk__f32_from_bits(hk__quake2_fix(hk__sat_u32(t)));
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
HK_INLINE float hk__sum8(const float a[8])
{
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

/* One element of the exp pass. */
#define HK__SOFTMAX_T(xv) (fold ? hk__affine(HK_QUAKE_C1, (xv), c0) : hk__affine(HK_QUAKE_C1, (xv) - m, c0))

/* Exp pass from element i on: y = E, a[i % 8] += E, returns the NaN check (sum of t). */
HK_INLINE float hk__softmax_exp_c(const float *x, float *y, int i0, int n, float m, float c0, int fold,
                                  int order, float a[8])
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
    float st = fold ? hk__softmax_exp_c(x, y, 0, n, m, c0, 1, order, a)
                    : hk__softmax_exp_c(x, y, 0, n, m, c0, 0, order, a);
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

/* ---- Cortex-M4F/M7 (FPv4/FPv5 scalar, Thumb-2): softmax, logistic and GELU in asm ----
 * The same float32 operations in the same order as hk__softmax_quake_c (bit-exact), but 8 floats
 * per VLDM/VSTM: GCC never emits those for C loops, and loads/stores are a third of the
 * instructions. The max pass compares with VCMPE, which raises Invalid (FPSCR.IOC) for any NaN:
 * that flags a NaN input without an extra instruction per element. NaN inputs and |max| beyond
 * the fold limit (both rare) take the portable path. */
#if !defined(HK_EXP_PORTABLE) && defined(__GNUC__) && defined(__arm__) && defined(__thumb2__) && \
    defined(__ARM_FP) && (__ARM_FP & 4) && defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M' && \
    !defined(__ARM_FEATURE_MVE)
#define HK_EXP_VFP_ASM 1

#define HK__VCMP_MAX(r) "vcmpe.f32 " r ", %[m]\n\tvmrs APSR_nzcv, fpscr\n\tit gt\n\tvmovgt.f32 %[m], " r "\n\t"

/* Largest non-NaN element; *nan = 1 if some element is NaN. */
HK_INLINE float hk__max_vfp(const float *x, int n, int *nan)
{
    float m = -INFINITY;
    const float *p = x;
    int nb = n >> 3, nr = n & 7;
    uint32_t fs0, fs1;
    __asm__ volatile(
        "vmrs %[f0], fpscr\n\t"
        "bic %[f1], %[f0], #1\n\t" /* clear IOC */
        "vmsr fpscr, %[f1]\n\t"
        "cmp %[nb], #0\n\t"
        "beq 2f\n"
        "1:\n\t"
        "vldmia %[p]!, {s16-s23}\n\t" HK__VCMP_MAX("s16") HK__VCMP_MAX("s17") HK__VCMP_MAX("s18")
            HK__VCMP_MAX("s19") HK__VCMP_MAX("s20") HK__VCMP_MAX("s21") HK__VCMP_MAX("s22")
                HK__VCMP_MAX("s23")
        "subs %[nb], %[nb], #1\n\t"
        "bne 1b\n"
        "2:\n\t"
        "cmp %[nr], #0\n\t"
        "beq 4f\n"
        "3:\n\t"
        "vldmia %[p]!, {s16}\n\t" HK__VCMP_MAX("s16")
        "subs %[nr], %[nr], #1\n\t"
        "bne 3b\n"
        "4:\n\t"
        "vmrs %[f1], fpscr\n\t"
        "and %[f0], %[f0], #1\n\t"
        "orr %[f0], %[f1], %[f0]\n\t" /* give back the caller's IOC */
        "vmsr fpscr, %[f0]\n\t"
        : [m] "+t"(m), [p] "+r"(p), [nb] "+r"(nb), [nr] "+r"(nr), [f0] "=&r"(fs0), [f1] "=&r"(fs1)
        :
        : "cc", "memory", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23");
    *nan = (int)(fs1 & 1u);
    return m;
}

/* quake2's correction of the bits in s<a>, s<a+1> (through two core registers). */
#define HK__Q2FIX_1(u)                    \
    "lsl %[f], " u ", #9\n\t"             \
    "rsb %[g], %[f], #0\n\t"              \
    "umull %[f], %[g], %[f], %[g]\n\t"    \
    "umull %[f], %[g], %[g], %[k]\n\t"    \
    "sub " u ", " u ", %[g]\n\t"
#define HK__Q2FIX_2(sa, sb) \
    "vmov %[u0], %[u1], " sa ", " sb "\n\t" HK__Q2FIX_1("%[u0]") HK__Q2FIX_1("%[u1]") "vmov " sa ", " sb ", %[u0], %[u1]\n\t"

/* Exp pass over whole blocks of 8: y = E, a[j] += E of element 8b + j. Returns elements done. */
HK_INLINE int hk__softmax_exp_vfp(const float *x, float *y, int n, float c0, int order, float a[8])
{
    const float c1 = HK_QUAKE_C1;
    const float *p = x;
    float *q = y;
    int nb = n >> 3;
    if (nb == 0) {
        for (int k = 0; k < 8; k++) {
            a[k] = 0.0f;
        }
        return 0;
    }
    float *acc = a;
    const uint32_t zero = 0u; /* the accumulators start at +0.0f, set in registers: a C initialiser of
                                 a[8] becomes a 44-instruction memset call on Cortex-M */
    if (order == 1) {
        __asm__ volatile(
            "vmov s24, %[z]\n\tvmov s25, %[z]\n\tvmov s26, %[z]\n\tvmov s27, %[z]\n\t"
            "vmov s28, %[z]\n\tvmov s29, %[z]\n\tvmov s30, %[z]\n\tvmov s31, %[z]\n"
            "1:\n\t"
            "vldmia %[p]!, {s16-s23}\n\t"
            "vmul.f32 s16, s16, %[c1]\n\tvmul.f32 s17, s17, %[c1]\n\t"
            "vmul.f32 s18, s18, %[c1]\n\tvmul.f32 s19, s19, %[c1]\n\t"
            "vmul.f32 s20, s20, %[c1]\n\tvmul.f32 s21, s21, %[c1]\n\t"
            "vmul.f32 s22, s22, %[c1]\n\tvmul.f32 s23, s23, %[c1]\n\t"
            "vadd.f32 s16, s16, %[c0]\n\tvadd.f32 s17, s17, %[c0]\n\t"
            "vadd.f32 s18, s18, %[c0]\n\tvadd.f32 s19, s19, %[c0]\n\t"
            "vadd.f32 s20, s20, %[c0]\n\tvadd.f32 s21, s21, %[c0]\n\t"
            "vadd.f32 s22, s22, %[c0]\n\tvadd.f32 s23, s23, %[c0]\n\t"
            "vcvt.u32.f32 s16, s16\n\tvcvt.u32.f32 s17, s17\n\t"
            "vcvt.u32.f32 s18, s18\n\tvcvt.u32.f32 s19, s19\n\t"
            "vcvt.u32.f32 s20, s20\n\tvcvt.u32.f32 s21, s21\n\t"
            "vcvt.u32.f32 s22, s22\n\tvcvt.u32.f32 s23, s23\n\t"
            "vstmia %[q]!, {s16-s23}\n\t"
            "vadd.f32 s24, s24, s16\n\tvadd.f32 s25, s25, s17\n\t"
            "vadd.f32 s26, s26, s18\n\tvadd.f32 s27, s27, s19\n\t"
            "vadd.f32 s28, s28, s20\n\tvadd.f32 s29, s29, s21\n\t"
            "vadd.f32 s30, s30, s22\n\tvadd.f32 s31, s31, s23\n\t"
            "subs %[nb], %[nb], #1\n\t"
            "bne 1b\n\t"
            "vstmia %[a], {s24-s31}\n\t"
            : [p] "+r"(p), [q] "+r"(q), [nb] "+r"(nb)
            : [c1] "t"(c1), [c0] "t"(c0), [a] "r"(acc), [z] "r"(zero)
            : "cc", "memory", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26",
              "s27", "s28", "s29", "s30", "s31");
    } else {
        uint32_t u0, u1, f, g;
        const uint32_t k = HK_QUAKE2_K;
        __asm__ volatile(
            "vmov s24, %[z]\n\tvmov s25, %[z]\n\tvmov s26, %[z]\n\tvmov s27, %[z]\n\t"
            "vmov s28, %[z]\n\tvmov s29, %[z]\n\tvmov s30, %[z]\n\tvmov s31, %[z]\n"
            "1:\n\t"
            "vldmia %[p]!, {s16-s23}\n\t"
            "vmul.f32 s16, s16, %[c1]\n\tvmul.f32 s17, s17, %[c1]\n\t"
            "vmul.f32 s18, s18, %[c1]\n\tvmul.f32 s19, s19, %[c1]\n\t"
            "vmul.f32 s20, s20, %[c1]\n\tvmul.f32 s21, s21, %[c1]\n\t"
            "vmul.f32 s22, s22, %[c1]\n\tvmul.f32 s23, s23, %[c1]\n\t"
            "vadd.f32 s16, s16, %[c0]\n\tvadd.f32 s17, s17, %[c0]\n\t"
            "vadd.f32 s18, s18, %[c0]\n\tvadd.f32 s19, s19, %[c0]\n\t"
            "vadd.f32 s20, s20, %[c0]\n\tvadd.f32 s21, s21, %[c0]\n\t"
            "vadd.f32 s22, s22, %[c0]\n\tvadd.f32 s23, s23, %[c0]\n\t"
            "vcvt.u32.f32 s16, s16\n\tvcvt.u32.f32 s17, s17\n\t"
            "vcvt.u32.f32 s18, s18\n\tvcvt.u32.f32 s19, s19\n\t"
            "vcvt.u32.f32 s20, s20\n\tvcvt.u32.f32 s21, s21\n\t"
            "vcvt.u32.f32 s22, s22\n\tvcvt.u32.f32 s23, s23\n\t"
            HK__Q2FIX_2("s16", "s17") HK__Q2FIX_2("s18", "s19") HK__Q2FIX_2("s20", "s21")
                HK__Q2FIX_2("s22", "s23")
            "vstmia %[q]!, {s16-s23}\n\t"
            "vadd.f32 s24, s24, s16\n\tvadd.f32 s25, s25, s17\n\t"
            "vadd.f32 s26, s26, s18\n\tvadd.f32 s27, s27, s19\n\t"
            "vadd.f32 s28, s28, s20\n\tvadd.f32 s29, s29, s21\n\t"
            "vadd.f32 s30, s30, s22\n\tvadd.f32 s31, s31, s23\n\t"
            "subs %[nb], %[nb], #1\n\t"
            "bne 1b\n\t"
            "vstmia %[a], {s24-s31}\n\t"
            : [p] "+r"(p), [q] "+r"(q), [nb] "+r"(nb), [u0] "=&r"(u0), [u1] "=&r"(u1), [f] "=&r"(f),
              [g] "=&r"(g)
            : [c1] "t"(c1), [c0] "t"(c0), [a] "r"(acc), [z] "r"(zero), [k] "r"(k)
            : "cc", "memory", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26",
              "s27", "s28", "s29", "s30", "s31");
    }
    return n & ~7;
}

/* y[i] *= r over whole blocks of 8; returns elements done. */
HK_INLINE int hk__scale_vfp(float *y, int n, float r)
{
    float *q = y;
    int nb = n >> 3;
    if (nb == 0) {
        return 0;
    }
    __asm__ volatile(
        "1:\n\t"
        "vldmia %[q], {s16-s23}\n\t"
        "vmul.f32 s16, s16, %[r]\n\tvmul.f32 s17, s17, %[r]\n\t"
        "vmul.f32 s18, s18, %[r]\n\tvmul.f32 s19, s19, %[r]\n\t"
        "vmul.f32 s20, s20, %[r]\n\tvmul.f32 s21, s21, %[r]\n\t"
        "vmul.f32 s22, s22, %[r]\n\tvmul.f32 s23, s23, %[r]\n\t"
        "vstmia %[q]!, {s16-s23}\n\t"
        "subs %[nb], %[nb], #1\n\t"
        "bne 1b\n\t"
        : [q] "+r"(q), [nb] "+r"(nb)
        : [r] "t"(r)
        : "cc", "memory", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23");
    return n & ~7;
}

/* Logistic (op 1) and GELU (op 2) over whole blocks of 8; returns elements done. The clamp keeps
 * a NaN t (the portable clamp maps it to +inf): the output is NaN either way (GELU divides x;
 * the logistic writes x back where x is NaN). */
#define HK__CLAMP(r) "vcmpe.f32 " r ", %[h]\n\tvmrs APSR_nzcv, fpscr\n\tit gt\n\tvmovgt.f32 " r ", %[h]\n\t"
#define HK__KEEPNAN(sx, sy) "vcmp.f32 " sx ", " sx "\n\tvmrs APSR_nzcv, fpscr\n\tit vs\n\tvmovvs.f32 " sy ", " sx "\n\t"
#define HK__ELT_HEAD                                                                                  \
    "1:\n\t"                                                                                          \
    "vldmia %[p]!, {s16-s23}\n\t"                                                                     \
    "vmul.f32 s24, s16, %[c1]\n\tvmul.f32 s25, s17, %[c1]\n\tvmul.f32 s26, s18, %[c1]\n\t"            \
    "vmul.f32 s27, s19, %[c1]\n\tvmul.f32 s28, s20, %[c1]\n\tvmul.f32 s29, s21, %[c1]\n\t"            \
    "vmul.f32 s30, s22, %[c1]\n\tvmul.f32 s31, s23, %[c1]\n\t"                                        \
    "vadd.f32 s24, s24, %[c0]\n\tvadd.f32 s25, s25, %[c0]\n\tvadd.f32 s26, s26, %[c0]\n\t"            \
    "vadd.f32 s27, s27, %[c0]\n\tvadd.f32 s28, s28, %[c0]\n\tvadd.f32 s29, s29, %[c0]\n\t"            \
    "vadd.f32 s30, s30, %[c0]\n\tvadd.f32 s31, s31, %[c0]\n\t" HK__CLAMP("s24") HK__CLAMP("s25")     \
        HK__CLAMP("s26") HK__CLAMP("s27") HK__CLAMP("s28") HK__CLAMP("s29") HK__CLAMP("s30")        \
            HK__CLAMP("s31")                                                                          \
    "vcvt.u32.f32 s24, s24\n\tvcvt.u32.f32 s25, s25\n\tvcvt.u32.f32 s26, s26\n\t"                     \
    "vcvt.u32.f32 s27, s27\n\tvcvt.u32.f32 s28, s28\n\tvcvt.u32.f32 s29, s29\n\t"                     \
    "vcvt.u32.f32 s30, s30\n\tvcvt.u32.f32 s31, s31\n\t"
#define HK__ELT_Q2 HK__Q2FIX_2("s24", "s25") HK__Q2FIX_2("s26", "s27") HK__Q2FIX_2("s28", "s29") HK__Q2FIX_2("s30", "s31")
#define HK__ELT_DEN                                                                                   \
    "vadd.f32 s24, s24, %[one]\n\tvadd.f32 s25, s25, %[one]\n\tvadd.f32 s26, s26, %[one]\n\t"         \
    "vadd.f32 s27, s27, %[one]\n\tvadd.f32 s28, s28, %[one]\n\tvadd.f32 s29, s29, %[one]\n\t"         \
    "vadd.f32 s30, s30, %[one]\n\tvadd.f32 s31, s31, %[one]\n\t"
#define HK__ELT_GELU                                                                                  \
    "vdiv.f32 s24, s16, s24\n\tvdiv.f32 s25, s17, s25\n\tvdiv.f32 s26, s18, s26\n\t"                  \
    "vdiv.f32 s27, s19, s27\n\tvdiv.f32 s28, s20, s28\n\tvdiv.f32 s29, s21, s29\n\t"                  \
    "vdiv.f32 s30, s22, s30\n\tvdiv.f32 s31, s23, s31\n\t"
#define HK__ELT_LOGISTIC                                                                              \
    "vdiv.f32 s24, %[one], s24\n\tvdiv.f32 s25, %[one], s25\n\tvdiv.f32 s26, %[one], s26\n\t"         \
    "vdiv.f32 s27, %[one], s27\n\tvdiv.f32 s28, %[one], s28\n\tvdiv.f32 s29, %[one], s29\n\t"         \
    "vdiv.f32 s30, %[one], s30\n\tvdiv.f32 s31, %[one], s31\n\t" HK__KEEPNAN("s16", "s24")           \
        HK__KEEPNAN("s17", "s25") HK__KEEPNAN("s18", "s26") HK__KEEPNAN("s19", "s27")                 \
            HK__KEEPNAN("s20", "s28") HK__KEEPNAN("s21", "s29") HK__KEEPNAN("s22", "s30")             \
                HK__KEEPNAN("s23", "s31")
#define HK__ELT_TAIL                                                                                  \
    "vstmia %[q]!, {s24-s31}\n\t"                                                                     \
    "subs %[nb], %[nb], #1\n\t"                                                                       \
    "bne 1b\n\t"
#define HK__ELT_OUT [p] "+r"(p), [q] "+r"(q), [nb] "+r"(nb)
#define HK__ELT_IN [c1] "t"(c1), [c0] "t"(c0), [h] "t"(h), [one] "t"(one)
#define HK__ELT_CLOBBER                                                                               \
    "cc", "memory", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", \
        "s28", "s29", "s30", "s31"

HK_INLINE int hk__eltwise_vfp(const float *x, float *y, int n, int op, int order)
{
    const float c1 = op == 1 ? -HK_QUAKE_C1 : -HK_GELU_K * HK_QUAKE_C1;
    const float c0 = order == 1 ? HK_QUAKE1_C0 : HK_QUAKE2_C0;
    const float h = HK_QUAKE_T_INF, one = 1.0f;
    const float *p = x;
    float *q = y;
    int nb = n >> 3;
    if (nb == 0) {
        return 0;
    }
    if (order == 1 && op == 1) {
        __asm__ volatile(HK__ELT_HEAD HK__ELT_DEN HK__ELT_LOGISTIC HK__ELT_TAIL
                         : HK__ELT_OUT
                         : HK__ELT_IN
                         : HK__ELT_CLOBBER);
    } else if (order == 1) {
        __asm__ volatile(HK__ELT_HEAD HK__ELT_DEN HK__ELT_GELU HK__ELT_TAIL
                         : HK__ELT_OUT
                         : HK__ELT_IN
                         : HK__ELT_CLOBBER);
    } else {
        uint32_t u0, u1, f, g;
        const uint32_t k = HK_QUAKE2_K;
        if (op == 1) {
            __asm__ volatile(HK__ELT_HEAD HK__ELT_Q2 HK__ELT_DEN HK__ELT_LOGISTIC HK__ELT_TAIL
                             : HK__ELT_OUT, [u0] "=&r"(u0), [u1] "=&r"(u1), [f] "=&r"(f), [g] "=&r"(g)
                             : HK__ELT_IN, [k] "r"(k)
                             : HK__ELT_CLOBBER);
        } else {
            __asm__ volatile(HK__ELT_HEAD HK__ELT_Q2 HK__ELT_DEN HK__ELT_GELU HK__ELT_TAIL
                             : HK__ELT_OUT, [u0] "=&r"(u0), [u1] "=&r"(u1), [f] "=&r"(f), [g] "=&r"(g)
                             : HK__ELT_IN, [k] "r"(k)
                             : HK__ELT_CLOBBER);
        }
    }
    return n & ~7;
}

HK_INLINE void hk__logistic_quake_vfp(const float *x, float *y, int n, int order)
{
    int i = hk__eltwise_vfp(x, y, n, 1, order);
    hk__logistic_quake_c(x + i, y + i, n - i, order);
}

HK_INLINE void hk__gelu_quake_vfp(const float *x, float *y, int n, int order)
{
    int i = hk__eltwise_vfp(x, y, n, 2, order);
    hk__gelu_quake_c(x + i, y + i, n - i, order);
}

HK_INLINE void hk__softmax_quake_vfp(const float *x, float *y, int n, int order)
{
    if (n <= 0) {
        return;
    }
    int nan;
    float m = hk__max_vfp(x, n, &nan);
    float c0;
    if (nan || !hk__softmax_fold(m, order, &c0)) {
        hk__softmax_quake_c(x, y, n, order); /* rare: NaN input, or |max| too large to fold */
        return;
    }
    float a[8]; /* set by hk__softmax_exp_vfp */
    int i = hk__softmax_exp_vfp(x, y, n, c0, order, a);
    float st = hk__softmax_exp_c(x, y, i, n, m, c0, 1, order, a);
    float r = hk__softmax_recip(a, st);
    hk__scale_c(y, hk__scale_vfp(y, n, r), n, r);
}
#endif /* HK_EXP_VFP_ASM */

/* ---- public kernels: the best path for the target ---- */
#include "hk_exp_neon.h"
#include "hk_exp_mve.h"
#include "hk_exp_x86.h"

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
