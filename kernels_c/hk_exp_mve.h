/* Helium (MVE) paths of the QuAKE kernels for Cortex-M55 (__ARM_FEATURE_MVE with floating point:
 * HK_EXP_MVE), included by hk_exp.h after its portable C.
 *
 * The same float32 operations as the portable C, 4 lanes at a time: products pinned against FMA
 * contraction, VCVT (saturating), the quake2 correction with VMULH (high half of 32x32), softmax's
 * accumulators a0..a3 and a4..a7 as two vectors, the max with VMAXNM (NaN ignored, as in the C)
 * and the NaN check as a vector sum of t. MVE has no divide: logistic and GELU divide lane by
 * lane in the scalar FPU. Tails (n % 4, n % 8) run the portable code. */
#ifndef HK_EXP_MVE_H
#define HK_EXP_MVE_H
#ifndef HK_EXP_H
#error "hk_exp_mve.h is part of hk_exp.h (its portable code comes first): include hk_exp.h"
#endif
#include <arm_mve.h>
#include <math.h>

#include "hk_types.h"

HK_INLINE float32x4_t hk__pin_mq(float32x4_t v)
{
    __asm__("" : "+w"(v)); /* keeps a product from being fused into an FMA */
    return v;
}

HK_INLINE float32x4_t hk__affine_mq(float32x4_t c1, float32x4_t x, float32x4_t c0)
{
    return vaddq_f32(hk__pin_mq(vmulq_f32(c1, x)), c0);
}

HK_INLINE float32x4_t hk__quake_from_t_mq(float32x4_t t, int order)
{
    uint32x4_t u = vcvtq_u32_f32(t);
    if (order == 2) {
        uint32x4_t f = vshlq_n_u32(u, 9);
        uint32x4_t g = vsubq_u32(vdupq_n_u32(0u), f);
        uint32x4_t p = vmulhq_u32(f, g);
        u = vsubq_u32(u, vmulhq_u32(p, vdupq_n_u32(HK_QUAKE2_K)));
    }
    return vreinterpretq_f32_u32(u);
}

/* num / den lane by lane in the scalar FPU (IEEE-exact). */
HK_INLINE float32x4_t hk__div_mq(float32x4_t num, float32x4_t den)
{
    float32x4_t r = num;
    r = vsetq_lane_f32(vgetq_lane_f32(num, 0) / vgetq_lane_f32(den, 0), r, 0);
    r = vsetq_lane_f32(vgetq_lane_f32(num, 1) / vgetq_lane_f32(den, 1), r, 1);
    r = vsetq_lane_f32(vgetq_lane_f32(num, 2) / vgetq_lane_f32(den, 2), r, 2);
    r = vsetq_lane_f32(vgetq_lane_f32(num, 3) / vgetq_lane_f32(den, 3), r, 3);
    return r;
}

HK_INLINE float32x4_t hk__keep_nan_mq(float32x4_t x, float32x4_t v) { return vpselq_f32(v, x, vcmpeqq_f32(x, x)); }

/* Largest non-NaN element (-inf if none), as hk__max_c. */
HK_INLINE float hk__max_mve(const float *x, int n)
{
    float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    const int n16 = n & ~15, n4 = n & ~3;
    int i;
    for (i = 0; i < n16; i += 16) {
        m0 = vmaxnmq_f32(m0, vld1q_f32(x + i));
        m1 = vmaxnmq_f32(m1, vld1q_f32(x + i + 4));
        m2 = vmaxnmq_f32(m2, vld1q_f32(x + i + 8));
        m3 = vmaxnmq_f32(m3, vld1q_f32(x + i + 12));
    }
    for (i = n16; i < n4; i += 4) {
        m0 = vmaxnmq_f32(m0, vld1q_f32(x + i));
    }
    float m = vmaxnmvq_f32(-INFINITY, vmaxnmq_f32(vmaxnmq_f32(m0, m1), vmaxnmq_f32(m2, m3)));
    for (i = n4; i < n; i++) {
        m = x[i] > m ? x[i] : m;
    }
    return m;
}

/* hk_softmax_quake<order>_f32: must match hk__softmax_quake_c bit for bit (but flush-to-zero). */
HK_INLINE void hk__softmax_quake_mve(const float *x, float *y, int n, int order)
{
    if (n <= 0) {
        return;
    }
    float m = hk__max_mve(x, n);
    float c0;
    if (!hk__softmax_fold(m, order, &c0)) {
        hk__softmax_quake_c(x, y, n, order); /* inf, all NaN, or |max| too large to fold */
        return;
    }
    const float32x4_t vc1 = vdupq_n_f32(HK_QUAKE_C1), vc0 = vdupq_n_f32(c0);
    float32x4_t acc_lo = vdupq_n_f32(0.0f), acc_hi = acc_lo, vst = acc_lo;
    const int n8 = n & ~7;
    int i;
    for (i = 0; i < n8; i += 8) {
        float32x4_t t0 = hk__affine_mq(vc1, vld1q_f32(x + i), vc0);
        float32x4_t t1 = hk__affine_mq(vc1, vld1q_f32(x + i + 4), vc0);
        vst = vaddq_f32(vst, vaddq_f32(t0, t1)); /* NaN check */
        float32x4_t e0 = hk__quake_from_t_mq(t0, order);
        float32x4_t e1 = hk__quake_from_t_mq(t1, order);
        vst1q_f32(y + i, e0);
        vst1q_f32(y + i + 4, e1);
        acc_lo = vaddq_f32(acc_lo, e0);
        acc_hi = vaddq_f32(acc_hi, e1);
    }
    float a[8];
    vst1q_f32(a, acc_lo);
    vst1q_f32(a + 4, acc_hi);
    float st = hk__softmax_exp_c(x, y, n8, n, m, c0, 1, order, a);
    st += (vgetq_lane_f32(vst, 0) + vgetq_lane_f32(vst, 1)) + (vgetq_lane_f32(vst, 2) + vgetq_lane_f32(vst, 3));
    float r = hk__softmax_recip(a, st);
    const float32x4_t vr = vdupq_n_f32(r);
    for (i = 0; i < n8; i += 8) {
        vst1q_f32(y + i, vmulq_f32(vld1q_f32(y + i), vr));
        vst1q_f32(y + i + 4, vmulq_f32(vld1q_f32(y + i + 4), vr));
    }
    hk__scale_c(y, n8, n, r);
}

/* Elementwise kernels: op 0 exp, 1 logistic, 2 gelu, 3 gelu_tanh. */
HK_INLINE float32x4_t hk__eltwise_mq(float32x4_t xv, int op, int order)
{
    const float32x4_t c0 = vdupq_n_f32(order == 1 ? HK_QUAKE1_C0 : HK_QUAKE2_C0);
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t t;
    if (op == 0) {
        t = hk__affine_mq(vdupq_n_f32(HK_QUAKE_C1), xv, c0);
    } else if (op == 1) {
        t = hk__affine_mq(vdupq_n_f32(-HK_QUAKE_C1), xv, c0);
    } else if (op == 2) {
        t = hk__affine_mq(vdupq_n_f32(-HK_GELU_K * HK_QUAKE_C1), xv, c0);
    } else {
        float32x4_t q = hk__affine_mq(vdupq_n_f32(HK_QUAKE_C1 * HK_GELU_TANH_B), vmulq_f32(xv, xv),
                                      vdupq_n_f32(HK_QUAKE_C1 * HK_GELU_TANH_A));
        t = hk__affine_mq(q, xv, c0);
    }
    float32x4_t e = hk__quake_from_t_mq(vminnmq_f32(t, vdupq_n_f32(HK_QUAKE_T_INF)), order);
    if (op == 0) {
        return hk__keep_nan_mq(xv, e);
    }
    if (op == 1) {
        return hk__keep_nan_mq(xv, hk__div_mq(one, vaddq_f32(one, e)));
    }
    return hk__div_mq(xv, vaddq_f32(one, e));
}

/* hk_exp/logistic/gelu/gelu_tanh_quake<order>_f32 (op 0..3): must match hk__eltwise_quake_c
 * bit for bit (but flush-to-zero). */
HK_INLINE void hk__eltwise_quake_mve(const float *x, float *y, int n, int op, int order)
{
    const int n4 = n & ~3;
    int i;
    for (i = 0; i < n4; i += 4) {
        vst1q_f32(y + i, hk__eltwise_mq(vld1q_f32(x + i), op, order));
    }
    i = n4;
    if (i < n) {
        hk__eltwise_quake_c(x, y, i, n, op, order); /* the tail */
    }
}

#endif
