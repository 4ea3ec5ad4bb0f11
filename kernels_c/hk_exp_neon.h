/* NEON paths of the QuAKE kernels (aarch64 and armv7 with NEON: HK_EXP_NEON), included by hk_exp.h
 * after its portable C.
 *
 * The same float32 operations as the portable C, 4 lanes at a time: products pinned against FMA
 * contraction, VCVT/FCVTZU (already saturating), the quake2 correction with UMULL (high halves)
 * and SQDMULH by K/2 (= floor(p*K / 2^32), K even), softmax's accumulators a0..a3 and a4..a7 as
 * two vectors. So the results are bit-exact with the portable C, with one exception on armv7:
 * its NEON flushes denormals to zero, so outputs below FLT_MIN (softmax elements more than ~87
 * below the max) come out as 0 there. armv7 NEON has no divide: logistic and GELU divide lane by
 * lane in VFP, which keeps them exact. Tails (n % 4, n % 8) run the portable code. */
#ifndef HK_EXP_NEON_H
#define HK_EXP_NEON_H
#ifndef HK_EXP_H
#error "hk_exp_neon.h is part of hk_exp.h (its portable code comes first): include hk_exp.h"
#endif
#include <arm_neon.h>
#include <math.h>

#include "hk_types.h"

HK_INLINE float32x4_t hk__pin_q(float32x4_t v)
{
    __asm__("" : "+w"(v)); /* keeps a product from being fused into an FMA */
    return v;
}

HK_INLINE float32x4_t hk__affine_q(float32x4_t c1, float32x4_t x, float32x4_t c0)
{
    return vaddq_f32(hk__pin_q(vmulq_f32(c1, x)), c0);
}

HK_INLINE float32x4_t hk__clamp_inf_q(float32x4_t t)
{
#if defined(__aarch64__)
    return vminnmq_f32(t, vdupq_n_f32(HK_QUAKE_T_INF)); /* fminf semantics, as the scalar path */
#else
    return vminq_f32(t, vdupq_n_f32(HK_QUAKE_T_INF)); /* NaN stays NaN: only where x is NaN anyway */
#endif
}

HK_INLINE uint32x4_t hk__quake2_fix_q(uint32x4_t u)
{
    uint32x4_t f = vshlq_n_u32(u, 9);
    uint32x4_t g = vreinterpretq_u32_s32(vnegq_s32(vreinterpretq_s32_u32(f)));
#if defined(__aarch64__)
    uint64x2_t lo = vmull_u32(vget_low_u32(f), vget_low_u32(g));
    uint64x2_t hi = vmull_high_u32(f, g);
    uint32x4_t p = vuzp2q_u32(vreinterpretq_u32_u64(lo), vreinterpretq_u32_u64(hi));
#else
    uint64x2_t lo = vmull_u32(vget_low_u32(f), vget_low_u32(g));
    uint64x2_t hi = vmull_u32(vget_high_u32(f), vget_high_u32(g));
    uint32x4_t p = vcombine_u32(vshrn_n_u64(lo, 32), vshrn_n_u64(hi, 32));
#endif
    /* p < 2^30 and K < 2^31: sqdmulh(p, K/2) = floor(2 p (K/2) / 2^32) = floor(p K / 2^32) */
    int32x4_t c = vqdmulhq_s32(vreinterpretq_s32_u32(p), vdupq_n_s32((int32_t)(HK_QUAKE2_K / 2u)));
    return vsubq_u32(u, vreinterpretq_u32_s32(c));
}

HK_INLINE float32x4_t hk__quake_from_t_q(float32x4_t t, int order)
{
    uint32x4_t u = vcvtq_u32_f32(t);
    if (order == 2) {
        u = hk__quake2_fix_q(u);
    }
    return vreinterpretq_f32_u32(u);
}

/* num / den lane by lane, IEEE-exact. */
HK_INLINE float32x4_t hk__div_q(float32x4_t num, float32x4_t den)
{
#if defined(__aarch64__)
    return vdivq_f32(num, den);
#else
    float32x4_t r = num;
    r = vsetq_lane_f32(vgetq_lane_f32(num, 0) / vgetq_lane_f32(den, 0), r, 0);
    r = vsetq_lane_f32(vgetq_lane_f32(num, 1) / vgetq_lane_f32(den, 1), r, 1);
    r = vsetq_lane_f32(vgetq_lane_f32(num, 2) / vgetq_lane_f32(den, 2), r, 2);
    r = vsetq_lane_f32(vgetq_lane_f32(num, 3) / vgetq_lane_f32(den, 3), r, 3);
    return r;
#endif
}

/* x where x is NaN, else v. */
HK_INLINE float32x4_t hk__keep_nan_q(float32x4_t x, float32x4_t v) { return vbslq_f32(vceqq_f32(x, x), v, x); }

/* Max over all n elements; NaN if any is NaN (FMAX/VMAX propagate NaN). */
HK_INLINE float hk__max_neon(const float *x, int n)
{
    float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    const int n16 = n & ~15, n4 = n & ~3;
    int i;
    for (i = 0; i < n16; i += 16) {
        m0 = vmaxq_f32(m0, vld1q_f32(x + i));
        m1 = vmaxq_f32(m1, vld1q_f32(x + i + 4));
        m2 = vmaxq_f32(m2, vld1q_f32(x + i + 8));
        m3 = vmaxq_f32(m3, vld1q_f32(x + i + 12));
    }
    for (i = n16; i < n4; i += 4) {
        m0 = vmaxq_f32(m0, vld1q_f32(x + i));
    }
    m0 = vmaxq_f32(vmaxq_f32(m0, m1), vmaxq_f32(m2, m3));
#if defined(__aarch64__)
    float m = vmaxvq_f32(m0);
#else
    float32x2_t h = vpmax_f32(vget_low_f32(m0), vget_high_f32(m0));
    float m = vget_lane_f32(vpmax_f32(h, h), 0);
#endif
    for (i = n4; i < n; i++) {
        m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
    }
    return m;
}

/* hk_softmax_quake<order>_f32: must match hk__softmax_quake_c bit for bit (but flush-to-zero). */
HK_INLINE void hk__softmax_quake_neon(const float *x, float *y, int n, int order)
{
    if (n <= 0) {
        return;
    }
    float m = hk__max_neon(x, n);
    float c0;
    if (!hk__softmax_fold(m, order, &c0)) {
        hk__softmax_quake_c(x, y, n, order); /* NaN, inf, or |max| too large to fold */
        return;
    }
    const float32x4_t vc1 = vdupq_n_f32(HK_QUAKE_C1), vc0 = vdupq_n_f32(c0);
    float32x4_t acc_lo = vdupq_n_f32(0.0f), acc_hi = acc_lo; /* a0..a3, a4..a7 */
    const int n16 = n & ~15, n8 = n & ~7;
    int i;
    for (i = 0; i < n16; i += 16) {
        float32x4_t e0 = hk__quake_from_t_q(hk__affine_q(vc1, vld1q_f32(x + i), vc0), order);
        float32x4_t e1 = hk__quake_from_t_q(hk__affine_q(vc1, vld1q_f32(x + i + 4), vc0), order);
        float32x4_t e2 = hk__quake_from_t_q(hk__affine_q(vc1, vld1q_f32(x + i + 8), vc0), order);
        float32x4_t e3 = hk__quake_from_t_q(hk__affine_q(vc1, vld1q_f32(x + i + 12), vc0), order);
        vst1q_f32(y + i, e0);
        vst1q_f32(y + i + 4, e1);
        vst1q_f32(y + i + 8, e2);
        vst1q_f32(y + i + 12, e3);
        acc_lo = vaddq_f32(acc_lo, e0);
        acc_hi = vaddq_f32(acc_hi, e1);
        acc_lo = vaddq_f32(acc_lo, e2);
        acc_hi = vaddq_f32(acc_hi, e3);
    }
    for (i = n16; i < n8; i += 8) {
        float32x4_t e0 = hk__quake_from_t_q(hk__affine_q(vc1, vld1q_f32(x + i), vc0), order);
        float32x4_t e1 = hk__quake_from_t_q(hk__affine_q(vc1, vld1q_f32(x + i + 4), vc0), order);
        vst1q_f32(y + i, e0);
        vst1q_f32(y + i + 4, e1);
        acc_lo = vaddq_f32(acc_lo, e0);
        acc_hi = vaddq_f32(acc_hi, e1);
    }
    float a[8];
    vst1q_f32(a, acc_lo);
    vst1q_f32(a + 4, acc_hi);
    float st = hk__softmax_exp_c(x, y, n8, n, m, c0, 1, order, a);
    float r = hk__softmax_recip(a, st);
    const float32x4_t vr = vdupq_n_f32(r);
    for (i = 0; i < n16; i += 16) {
        vst1q_f32(y + i, vmulq_f32(vld1q_f32(y + i), vr));
        vst1q_f32(y + i + 4, vmulq_f32(vld1q_f32(y + i + 4), vr));
        vst1q_f32(y + i + 8, vmulq_f32(vld1q_f32(y + i + 8), vr));
        vst1q_f32(y + i + 12, vmulq_f32(vld1q_f32(y + i + 12), vr));
    }
    hk__scale_c(y, n16, n, r);
}

/* Elementwise kernels: op 0 exp, 1 logistic, 2 gelu, 3 gelu_tanh. */
HK_INLINE float32x4_t hk__eltwise_q(float32x4_t xv, int op, int order)
{
    const float32x4_t c0 = vdupq_n_f32(order == 1 ? HK_QUAKE1_C0 : HK_QUAKE2_C0);
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t t;
    if (op == 0) {
        t = hk__affine_q(vdupq_n_f32(HK_QUAKE_C1), xv, c0);
    } else if (op == 1) {
        t = hk__affine_q(vdupq_n_f32(-HK_QUAKE_C1), xv, c0);
    } else if (op == 2) {
        t = hk__affine_q(vdupq_n_f32(-HK_GELU_K * HK_QUAKE_C1), xv, c0);
    } else {
        float32x4_t q = hk__affine_q(vdupq_n_f32(HK_QUAKE_C1 * HK_GELU_TANH_B), vmulq_f32(xv, xv),
                                     vdupq_n_f32(HK_QUAKE_C1 * HK_GELU_TANH_A));
        t = hk__affine_q(q, xv, c0);
    }
    float32x4_t e = hk__quake_from_t_q(hk__clamp_inf_q(t), order);
    if (op == 0) {
        return hk__keep_nan_q(xv, e);
    }
    if (op == 1) {
        return hk__keep_nan_q(xv, hk__div_q(one, vaddq_f32(one, e)));
    }
    return hk__div_q(xv, vaddq_f32(one, e));
}

/* hk_exp/logistic/gelu/gelu_tanh_quake<order>_f32 (op 0..3): must match hk__eltwise_quake_c
 * bit for bit (but flush-to-zero). */
HK_INLINE void hk__eltwise_quake_neon(const float *x, float *y, int n, int op, int order)
{
    const int n8 = n & ~7, n4 = n & ~3;
    int i;
    for (i = 0; i < n8; i += 8) {
        float32x4_t a = hk__eltwise_q(vld1q_f32(x + i), op, order);
        float32x4_t b = hk__eltwise_q(vld1q_f32(x + i + 4), op, order);
        vst1q_f32(y + i, a);
        vst1q_f32(y + i + 4, b);
    }
    for (i = n8; i < n4; i += 4) {
        vst1q_f32(y + i, hk__eltwise_q(vld1q_f32(x + i), op, order));
    }
    i = n4;
    if (i < n) {
        hk__eltwise_quake_c(x, y, i, n, op, order); /* the tail */
    }
}

#endif
