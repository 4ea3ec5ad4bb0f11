/* NEON primitives of the NN kernels' Cortex-A paths (hk_dense_neon.h, hk_conv_neon.h): loads and
 * stores of 4 floats, the multiply-accumulate of HK_MAC_F32 on vectors, a horizontal sum. Included
 * by those headers under HK_NN_NEON (hk_nn.h). */
#ifndef HK_NN_NEON_H
#define HK_NN_NEON_H
#include <arm_neon.h>

#include "hk_types.h"

/* Vector load/store of 4 floats at any 4-byte-aligned address. With -mstrict-align (bare-metal
 * AArch64: rpi3-bm) GCC turns a vld1q_f32 it cannot prove 16-byte aligned into 32-bit loads through
 * the stack, ~10 instructions; LD1/ST1 need only element alignment. GCC has no macro for
 * -mstrict-align, so a freestanding AArch64 build (or HK_NN_STRICT_ALIGN) takes the asm. */
#if defined(__aarch64__) && defined(__GNUC__) && \
    (defined(HK_NN_STRICT_ALIGN) || (defined(__STDC_HOSTED__) && __STDC_HOSTED__ == 0))
HK_INLINE float32x4_t hk__nn_ld(const float *p)
{
    float32x4_t v;
    __asm__("ld1 {%0.4s}, [%1]" : "=w"(v) : "r"(p), "m"(*(const float(*)[4])p));
    return v;
}
HK_INLINE void hk__nn_st(float *p, float32x4_t v)
{
    __asm__("st1 {%1.4s}, [%2]" : "=m"(*(float(*)[4])p) : "w"(v), "r"(p));
}
#else
#define hk__nn_ld vld1q_f32
#define hk__nn_st vst1q_f32
#endif

/* v[0] + v[1] + v[2] + v[3] */
HK_INLINE float hk__nn_hsum_f32x4(float32x4_t v)
{
#if defined(__aarch64__)
    return vaddvq_f32(v);
#else
    float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpadd_f32(s, s), 0);
#endif
}

/* acc + a * b lane by lane, fused where the FPU has FMA (AArch64, ARMv7 with VFPv4), as HK_MAC_F32. */
HK_INLINE float32x4_t hk__nn_vmac_f32x4(float32x4_t acc, float32x4_t a, float32x4_t b)
{
#if defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
    return vfmaq_f32(acc, a, b);
#else
    return vmlaq_f32(acc, a, b);
#endif
}

/* acc += a * v[lane]: a vector FMA by one lane of v (the 4 weights of a conv tap, or 4 inputs of a
 * dense row). */
#if defined(__aarch64__)
#define HK__NN_VMAC_LANE(acc, a, v, lane) ((acc) = vfmaq_laneq_f32((acc), (a), (v), (lane)))
#else
#define HK__NN_VMAC_LANE(acc, a, v, lane) \
    ((acc) = vmlaq_lane_f32((acc), (a), (lane) < 2 ? vget_low_f32(v) : vget_high_f32(v), 1 & (lane)))
#endif

#endif
