/* Fully connected layer: y[o] = act(b[o] + sum_i W[o][i] * x[i]).
 *
 * hk_dense_f32          W row-major [n_out][n_in].
 * hk_dense_blocked_f32  W in blocks of 4 rows (hk_dense_block_weights): block o0 with
 *                       n = min(4, n_out - o0) rows holds W[o0 + j][i] at o0 * n_in + i * n + j,
 *                       so the 4 weights that meet x[i] are adjacent.
 *
 * Paths (STYLE: portable C first, the others beside it under #if, tests check that they agree):
 *   ..._c       portable C, always compiled: four rows at once, so each loaded x[i] feeds four
 *               multiply-accumulates. A matrix-vector product uses every weight once, so with one
 *               load per weight it needs more than 2 instructions per MAC.
 *   VFP asm     Cortex-M with an FPU (HK_NN_VFP_ASM): one VLDM loads 8 weights, ~1.3 instructions
 *               per MAC for the blocked layout.
 *   NEON        Cortex-A (HK_NN_NEON): 4 rows x 4 inputs per step.
 * Define HK_NN_PORTABLE to build the portable C only. */
#ifndef HK_DENSE_H
#define HK_DENSE_H
#include "hk_types.h"

#if defined(__ARM_NEON) && !defined(HK_NN_PORTABLE)
#include <arm_neon.h>
#define HK_NN_NEON 1
#endif

#ifdef HK_NN_NEON
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
#endif

/* Cortex-M with a single-precision FPU (M4F, M7, M33, M55): inner loops in asm. GCC never emits
 * VLDM for C loops, and one VLDM of 6-8 registers replaces 6-8 loads, which are a third of the
 * instructions of a register-blocked loop. */
#if !defined(HK_NN_PORTABLE) && defined(__GNUC__) && defined(__arm__) && defined(__thumb2__) && \
    defined(__ARM_FP) && (__ARM_FP & 4) && defined(__ARM_FEATURE_FMA) && defined(__ARM_ARCH_PROFILE) && \
    __ARM_ARCH_PROFILE == 'M'
#define HK_NN_VFP_ASM 1
#endif

/* acc += a * b in one instruction (vfma / fmadd) where the FPU has a fused multiply-add. In ISO C
 * mode (-std=c99) GCC never contracts a * b + c by itself, so the plain form costs a multiply and
 * an add. The fused form rounds once, which only brings the result closer to the exact sum. */
#ifndef HK_MAC_F32
#if defined(__GNUC__) && defined(__FP_FAST_FMAF)
#define HK_MAC_F32(acc, a, b) ((acc) = __builtin_fmaf((a), (b), (acc)))
#else
#define HK_MAC_F32(acc, a, b) ((acc) += (a) * (b))
#endif
#endif

#define HK_NN_BLOCK 4 /* rows (dense) or filters (conv) per weight block */

HK_INLINE float hk__nn_act(float v, int relu)
{
    return (relu && v < 0.0f) ? 0.0f : v;
}

/* ---------------------------------------------------------------- row-major weights */

HK_INLINE void hk_dense_f32_c(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT w,
                              const float *HK_RESTRICT b, float *HK_RESTRICT y, int n_out, int relu)
{
    /* Loop bounds computed up front: GCC then knows every trip count (and does not warn about
     * impossible iterations when the shapes are constants). */
    const int n4 = n_out - n_out % 4;
    for (int o = 0; o < n4; o += 4) {
        const float *w0 = w + (size_t)o * (size_t)n_in;
        const float *w1 = w0 + n_in, *w2 = w1 + n_in, *w3 = w2 + n_in;
        float a0 = b[o], a1 = b[o + 1], a2 = b[o + 2], a3 = b[o + 3];
        for (int i = 0; i < n_in; i++) {
            const float xi = x[i];
            HK_MAC_F32(a0, w0[i], xi);
            HK_MAC_F32(a1, w1[i], xi);
            HK_MAC_F32(a2, w2[i], xi);
            HK_MAC_F32(a3, w3[i], xi);
        }
        y[o] = hk__nn_act(a0, relu);
        y[o + 1] = hk__nn_act(a1, relu);
        y[o + 2] = hk__nn_act(a2, relu);
        y[o + 3] = hk__nn_act(a3, relu);
    }
    for (int o = n4; o < n_out; o++) {
        const float *row = w + (size_t)o * (size_t)n_in;
        float a0 = b[o];
        for (int i = 0; i < n_in; i++) {
            HK_MAC_F32(a0, row[i], x[i]);
        }
        y[o] = hk__nn_act(a0, relu);
    }
}

#ifdef HK_NN_NEON
HK_INLINE float hk__nn_hsum_f32x4(float32x4_t v)
{
#if defined(__aarch64__)
    return vaddvq_f32(v);
#else
    float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpadd_f32(s, s), 0);
#endif
}

HK_INLINE float32x4_t hk__nn_vmac_f32x4(float32x4_t acc, float32x4_t a, float32x4_t b)
{
#if defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
    return vfmaq_f32(acc, a, b);
#else
    return vmlaq_f32(acc, a, b);
#endif
}

/* Four rows at once, four inputs per vector: one x vector feeds four row vectors. */
HK_INLINE void hk__dense_neon(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT w,
                              const float *HK_RESTRICT b, float *HK_RESTRICT y, int n_out, int relu)
{
    const int n4 = n_out - n_out % 4, i4 = n_in - n_in % 4;
    for (int o = 0; o < n4; o += 4) {
        const float *w0 = w + (size_t)o * (size_t)n_in;
        const float *w1 = w0 + n_in, *w2 = w1 + n_in, *w3 = w2 + n_in;
        float32x4_t v0 = vdupq_n_f32(0.0f), v1 = v0, v2 = v0, v3 = v0;
        for (int i = 0; i < i4; i += 4) {
            const float32x4_t xv = hk__nn_ld(x + i);
            v0 = hk__nn_vmac_f32x4(v0, hk__nn_ld(w0 + i), xv);
            v1 = hk__nn_vmac_f32x4(v1, hk__nn_ld(w1 + i), xv);
            v2 = hk__nn_vmac_f32x4(v2, hk__nn_ld(w2 + i), xv);
            v3 = hk__nn_vmac_f32x4(v3, hk__nn_ld(w3 + i), xv);
        }
        float a0 = b[o] + hk__nn_hsum_f32x4(v0), a1 = b[o + 1] + hk__nn_hsum_f32x4(v1);
        float a2 = b[o + 2] + hk__nn_hsum_f32x4(v2), a3 = b[o + 3] + hk__nn_hsum_f32x4(v3);
        for (int i = i4; i < n_in; i++) {
            HK_MAC_F32(a0, w0[i], x[i]);
            HK_MAC_F32(a1, w1[i], x[i]);
            HK_MAC_F32(a2, w2[i], x[i]);
            HK_MAC_F32(a3, w3[i], x[i]);
        }
        y[o] = hk__nn_act(a0, relu);
        y[o + 1] = hk__nn_act(a1, relu);
        y[o + 2] = hk__nn_act(a2, relu);
        y[o + 3] = hk__nn_act(a3, relu);
    }
    if (n4 < n_out) {
        hk_dense_f32_c(x, n_in, w + (size_t)n4 * (size_t)n_in, b + n4, y + n4, n_out - n4, relu);
    }
}
#endif

HK_INLINE void hk_dense_f32(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT w,
                            const float *HK_RESTRICT b, float *HK_RESTRICT y, int n_out, int relu)
{
#ifdef HK_NN_NEON
    hk__dense_neon(x, n_in, w, b, y, n_out, relu);
#else
    hk_dense_f32_c(x, n_in, w, b, y, n_out, relu);
#endif
}

/* ---------------------------------------------------------------- blocked weights */

/* Row-major W [rows][cols] -> the blocked layout (code generators do this at build time). The conv
 * weights use the same layout with rows = filters and cols = C * k * k. */
HK_INLINE void hk_nn_block_weights(const float *HK_RESTRICT w, int rows, int cols, float *HK_RESTRICT wb)
{
    for (int o0 = 0; o0 < rows; o0 += HK_NN_BLOCK) {
        const int n = rows - o0 < HK_NN_BLOCK ? rows - o0 : HK_NN_BLOCK;
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < cols; i++) {
                wb[(size_t)o0 * (size_t)cols + (size_t)i * (size_t)n + (size_t)j] =
                    w[(size_t)(o0 + j) * (size_t)cols + (size_t)i];
            }
        }
    }
}

/* One block of n rows (n = 1..4): y[j] = act(b[j] + sum_i wb[i * n + j] x[i]). Called with a
 * constant n, so each inlined copy keeps only its accumulators. */
HK_INLINE void hk__dense_block_c(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT wb, int n,
                                 const float *HK_RESTRICT b, float *HK_RESTRICT y, int relu)
{
    float a0 = b[0], a1 = n > 1 ? b[1] : 0.0f, a2 = n > 2 ? b[2] : 0.0f, a3 = n > 3 ? b[3] : 0.0f;
    for (int i = 0; i < n_in; i++) {
        const float xi = x[i];
        HK_MAC_F32(a0, wb[0], xi);
        if (n > 1) {
            HK_MAC_F32(a1, wb[1], xi);
        }
        if (n > 2) {
            HK_MAC_F32(a2, wb[2], xi);
        }
        if (n > 3) {
            HK_MAC_F32(a3, wb[3], xi);
        }
        wb += n;
    }
    y[0] = hk__nn_act(a0, relu);
    if (n > 1) {
        y[1] = hk__nn_act(a1, relu);
    }
    if (n > 2) {
        y[2] = hk__nn_act(a2, relu);
    }
    if (n > 3) {
        y[3] = hk__nn_act(a3, relu);
    }
}

/* The last block of n_out % 4 rows (n = 1..3), with a constant n in each call. */
HK_INLINE void hk__dense_tail_c(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT wb, int n,
                                const float *HK_RESTRICT b, float *HK_RESTRICT y, int relu)
{
    if (n == 3) {
        hk__dense_block_c(x, n_in, wb, 3, b, y, relu);
    } else if (n == 2) {
        hk__dense_block_c(x, n_in, wb, 2, b, y, relu);
    } else {
        hk__dense_block_c(x, n_in, wb, 1, b, y, relu);
    }
}

HK_INLINE void hk_dense_blocked_f32_c(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT wb,
                                      const float *HK_RESTRICT b, float *HK_RESTRICT y, int n_out, int relu)
{
    const int n4 = n_out - n_out % 4;
    for (int o0 = 0; o0 < n4; o0 += 4) {
        hk__dense_block_c(x, n_in, wb + (size_t)o0 * (size_t)n_in, 4, b + o0, y + o0, relu);
    }
    if (n4 < n_out) {
        hk__dense_tail_c(x, n_in, wb + (size_t)n4 * (size_t)n_in, n_out - n4, b + n4, y + n4, relu);
    }
}

#ifdef HK_NN_VFP_ASM
/* Four rows, four inputs per iteration: VLDM 4 inputs, VLDM 8 weights twice, 16 VFMA. The
 * accumulators live in s0-s3 and start at the bias; the same FMAs in the same order as the C. */
#define HK__VF(acc, w, x) "vfma.f32 " acc ", " w ", " x "\n\t"
#define HK__VF4(w0, w1, w2, w3, x) HK__VF("s0", w0, x) HK__VF("s1", w1, x) HK__VF("s2", w2, x) HK__VF("s3", w3, x)

HK_INLINE void hk__dense_block4_vfp(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT wb,
                                    const float *HK_RESTRICT b, float *HK_RESTRICT y, int relu)
{
    register float a0 __asm__("s0") = b[0];
    register float a1 __asm__("s1") = b[1];
    register float a2 __asm__("s2") = b[2];
    register float a3 __asm__("s3") = b[3];
    const float *xp = x, *wp = wb;
    int nq = n_in >> 2;
    if (nq > 0) {
        __asm__ volatile(
            "1:\n\t"
            "vldmia %[x]!, {s16-s19}\n\t"
            "vldmia %[w]!, {s20-s27}\n\t"
            HK__VF4("s20", "s21", "s22", "s23", "s16") HK__VF4("s24", "s25", "s26", "s27", "s17")
            "vldmia %[w]!, {s20-s27}\n\t"
            HK__VF4("s20", "s21", "s22", "s23", "s18") HK__VF4("s24", "s25", "s26", "s27", "s19")
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [a0] "+t"(a0), [a1] "+t"(a1), [a2] "+t"(a2), [a3] "+t"(a3), [x] "+r"(xp), [w] "+r"(wp),
              [n] "+r"(nq)
            :
            : "cc", "memory", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26",
              "s27");
    }
    float c0 = a0, c1 = a1, c2 = a2, c3 = a3;
    for (int i = n_in & ~3; i < n_in; i++) {
        const float xi = *xp++;
        HK_MAC_F32(c0, wp[0], xi);
        HK_MAC_F32(c1, wp[1], xi);
        HK_MAC_F32(c2, wp[2], xi);
        HK_MAC_F32(c3, wp[3], xi);
        wp += 4;
    }
    y[0] = hk__nn_act(c0, relu);
    y[1] = hk__nn_act(c1, relu);
    y[2] = hk__nn_act(c2, relu);
    y[3] = hk__nn_act(c3, relu);
}
#endif

#ifdef HK_NN_NEON
/* acc += w * x[lane] (a vector FMA by one lane of the input vector). */
#if defined(__aarch64__)
#define HK__NN_VMAC_LANE(acc, wv, xv, lane) ((acc) = vfmaq_laneq_f32((acc), (wv), (xv), (lane)))
#else
#define HK__NN_VMAC_LANE(acc, wv, xv, lane) \
    ((acc) = vmlaq_lane_f32((acc), (wv), (lane) < 2 ? vget_low_f32(xv) : vget_high_f32(xv), (lane) & 1))
#endif

/* Four rows (one vector of the block), four inputs per step: one input vector, four weight
 * vectors, four FMAs by lane. Two accumulators halve the FMA dependency chain. */
HK_INLINE void hk__dense_block4_neon(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT wb,
                                     const float *HK_RESTRICT b, float *HK_RESTRICT y, int relu)
{
    float32x4_t a = hk__nn_ld(b), a1 = vdupq_n_f32(0.0f);
    const int i4 = n_in - n_in % 4;
    for (int i = 0; i < i4; i += 4) {
        const float32x4_t xv = hk__nn_ld(x + i);
        HK__NN_VMAC_LANE(a, hk__nn_ld(wb), xv, 0);
        HK__NN_VMAC_LANE(a1, hk__nn_ld(wb + 4), xv, 1);
        HK__NN_VMAC_LANE(a, hk__nn_ld(wb + 8), xv, 2);
        HK__NN_VMAC_LANE(a1, hk__nn_ld(wb + 12), xv, 3);
        wb += 16;
    }
    for (int i = i4; i < n_in; i++) {
        a = hk__nn_vmac_f32x4(a, hk__nn_ld(wb), vdupq_n_f32(x[i]));
        wb += 4;
    }
    a = vaddq_f32(a, a1);
    if (relu) {
        a = vmaxq_f32(a, vdupq_n_f32(0.0f));
    }
    hk__nn_st(y, a);
}
#endif

#include "hk_x86.h" /* x86-64 SSE2/AVX paths (HK_NN_X86) */

HK_INLINE void hk_dense_blocked_f32(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT wb,
                                    const float *HK_RESTRICT b, float *HK_RESTRICT y, int n_out, int relu)
{
#if defined(HK_NN_X86)
    hk__dense_blocked_x86(x, n_in, wb, b, y, n_out, relu);
    return;
#endif
    const int n4 = n_out - n_out % 4;
    for (int o0 = 0; o0 < n4; o0 += 4) {
#if defined(HK_NN_VFP_ASM)
        hk__dense_block4_vfp(x, n_in, wb + (size_t)o0 * (size_t)n_in, b + o0, y + o0, relu);
#elif defined(HK_NN_NEON)
        hk__dense_block4_neon(x, n_in, wb + (size_t)o0 * (size_t)n_in, b + o0, y + o0, relu);
#else
        hk__dense_block_c(x, n_in, wb + (size_t)o0 * (size_t)n_in, 4, b + o0, y + o0, relu);
#endif
    }
    if (n4 < n_out) {
        hk__dense_tail_c(x, n_in, wb + (size_t)n4 * (size_t)n_in, n_out - n4, b + n4, y + n4, relu);
    }
}

#endif
