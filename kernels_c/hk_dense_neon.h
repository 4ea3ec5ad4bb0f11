/* NEON path of the dense kernels for Cortex-A (HK_NN_NEON, hk_nn.h), included by hk_dense.h after
 * its portable C: 4 rows x 4 inputs per step. */
#ifndef HK_DENSE_NEON_H
#define HK_DENSE_NEON_H
#ifndef HK_DENSE_H
#error "hk_dense_neon.h is part of hk_dense.h (its portable code comes first): include hk_dense.h"
#endif
#include "hk_nn.h"
#include "hk_nn_neon.h"
#include "hk_types.h"

/* hk_dense_f32 (row-major weights): four rows at once, four inputs per vector, one x vector feeding
 * four row vectors. Must match hk_dense_f32_c to float rounding, not bit for bit: the lanes split
 * each row's sum (tests/test_kernels_conv.py: test_neon_paths_agree_with_portable_c). */
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
        y[o] = hk_nn_act_f32(a0, relu);
        y[o + 1] = hk_nn_act_f32(a1, relu);
        y[o + 2] = hk_nn_act_f32(a2, relu);
        y[o + 3] = hk_nn_act_f32(a3, relu);
    }
    if (n4 < n_out) {
        hk_dense_f32_c(x, n_in, w + (size_t)n4 * (size_t)n_in, b + n4, y + n4, n_out - n4, relu);
    }
}

/* hk_dense_blocked_f32, one block of 4 rows (one vector of the block), four inputs per step: one
 * input vector, four weight vectors, four FMAs by lane. Two accumulators halve the FMA dependency
 * chain, so this matches hk__dense_block_c (n = 4) to float rounding, not bit for bit. */
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
