/* Cortex-M FPU asm path of the blocked dense kernel (HK_NN_VFP_ASM, hk_nn.h), included by hk_dense.h
 * after its portable C. GCC never emits VLDM for C loops; here one VLDM loads 8 weights, ~1.3
 * instructions per MAC. */
#ifndef HK_DENSE_ARMV7M_H
#define HK_DENSE_ARMV7M_H
#ifndef HK_DENSE_H
#error "hk_dense_armv7m.h is part of hk_dense.h (its portable code comes first): include hk_dense.h"
#endif
#include "hk_nn.h"
#include "hk_nn_armv7m.h"
#include "hk_types.h"

/* Four rows, four inputs per iteration: VLDM 4 inputs, VLDM 8 weights twice, 16 VFMA. The
 * accumulators live in s0-s3 and start at the bias; the same FMAs in the same order as the C.
 * Must match hk__dense_block_c(..., n = 4, ...) of hk_dense_blocked_f32_c bit for bit. */
/* clang-format off */
#define HK__VF4(w0, w1, w2, w3, x) HK__VF("s0", w0, x) HK__VF("s1", w1, x) HK__VF("s2", w2, x) HK__VF("s3", w3, x)
/* clang-format on */

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
        /* clang-format off */
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
        /* clang-format on */
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
    y[0] = hk_nn_act_f32(c0, relu);
    y[1] = hk_nn_act_f32(c1, relu);
    y[2] = hk_nn_act_f32(c2, relu);
    y[3] = hk_nn_act_f32(c3, relu);
}

#endif
