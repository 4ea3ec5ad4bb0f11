/* Fully connected layer: y[o] = act(b[o] + sum_i W[o][i] * x[i]).
 *
 * hk_dense_f32          W row-major [n_out][n_in].
 * hk_dense_blocked_f32  W in blocks of 4 rows (hk_nn_block_weights): block o0 with
 *                       n = min(4, n_out - o0) rows holds W[o0 + j][i] at o0 * n_in + i * n + j,
 *                       so the 4 weights that meet x[i] are adjacent.
 *
 * Paths (hk_nn.h): the portable C (`..._c`, always compiled) computes four rows at once, so each
 * loaded x[i] feeds four multiply-accumulates. A matrix-vector product uses every weight once, so
 * with one load per weight it needs more than 2 instructions per MAC. The others, beside it:
 *   hk_dense_armv7m.h  Cortex-M FPU asm (HK_NN_VFP_ASM): one VLDM loads 8 weights, ~1.3
 *                      instructions per MAC for the blocked layout.
 *   hk_dense_neon.h    Cortex-A (HK_NN_NEON): 4 rows x 4 inputs per step.
 *   hk_dense_x86.h     x86-64 (HK_NN_X86): up to 4 vectors of rows per pass over x.
 * The asm and x86 paths add each output's products to its bias in the portable order through the
 * multiply-accumulate of HK_MAC_F32, so they give the portable C's bits (tests/test_kernels_conv.py,
 * tests/test_x86_paths.py); the NEON paths split the sums across lanes and agree to rounding. */
#ifndef HK_DENSE_H
#define HK_DENSE_H
#include "hk_nn.h"
#include "hk_types.h"

/* ---------------------------------------------------------------- portable C */

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
        y[o] = hk_nn_act_f32(a0, relu);
        y[o + 1] = hk_nn_act_f32(a1, relu);
        y[o + 2] = hk_nn_act_f32(a2, relu);
        y[o + 3] = hk_nn_act_f32(a3, relu);
    }
    for (int o = n4; o < n_out; o++) {
        const float *row = w + (size_t)o * (size_t)n_in;
        float a0 = b[o];
        for (int i = 0; i < n_in; i++) {
            HK_MAC_F32(a0, row[i], x[i]);
        }
        y[o] = hk_nn_act_f32(a0, relu);
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
    y[0] = hk_nn_act_f32(a0, relu);
    if (n > 1) {
        y[1] = hk_nn_act_f32(a1, relu);
    }
    if (n > 2) {
        y[2] = hk_nn_act_f32(a2, relu);
    }
    if (n > 3) {
        y[3] = hk_nn_act_f32(a3, relu);
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

/* ---------------------------------------------------------------- the ISA paths */
#if defined(HK_NN_VFP_ASM)
#include "hk_dense_armv7m.h"
#elif defined(HK_NN_NEON)
#include "hk_dense_neon.h"
#elif defined(HK_NN_X86)
#include "hk_dense_x86.h"
#endif

/* ---------------------------------------------------------------- the kernels: the best path */

HK_INLINE void hk_dense_f32(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT w,
                            const float *HK_RESTRICT b, float *HK_RESTRICT y, int n_out, int relu)
{
#ifdef HK_NN_NEON
    hk__dense_neon(x, n_in, w, b, y, n_out, relu);
#else
    hk_dense_f32_c(x, n_in, w, b, y, n_out, relu);
#endif
}

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
