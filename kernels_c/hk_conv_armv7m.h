/* Cortex-M FPU asm tile of the blocked conv (HK_NN_VFP_ASM, hk_nn.h), included by hk_conv.h after
 * its portable C; hk__conv_blocked_scalar takes it for the 3x3, stride-1 tiles of 4 filters x 4
 * pixels. One VLDM loads a row of 6 inputs or 8 weights: 1.10 instructions per MAC in the inner
 * loop, 1.17-1.4 per layer on a Cortex-M4F. */
#ifndef HK_CONV_ARMV7M_H
#define HK_CONV_ARMV7M_H
#ifndef HK_CONV_H
#error "hk_conv_armv7m.h is part of hk_conv.h (its portable code comes first): include hk_conv.h"
#endif
#include "hk_nn.h"
#include "hk_nn_armv7m.h"
#include "hk_types.h"

/* Accumulator a<j><r> (filter j, pixel r) lives in s(4j + r); a row's 6 inputs in s16-s21; the
 * weights of two taps in s22-s29. vfma order per accumulator: c, ky, kx, as in the C tile. */
/* clang-format off */
#define HK__VF44(w0, w1, w2, w3, x0, x1, x2, x3)                                                     \
    HK__VF("s0", w0, x0) HK__VF("s1", w0, x1) HK__VF("s2", w0, x2) HK__VF("s3", w0, x3)                 \
    HK__VF("s4", w1, x0) HK__VF("s5", w1, x1) HK__VF("s6", w1, x2) HK__VF("s7", w1, x3)                 \
    HK__VF("s8", w2, x0) HK__VF("s9", w2, x1) HK__VF("s10", w2, x2) HK__VF("s11", w2, x3)               \
    HK__VF("s12", w3, x0) HK__VF("s13", w3, x1) HK__VF("s14", w3, x2) HK__VF("s15", w3, x3)
#define HK__ROW44_K3_ASM(addr)                                                                       \
    "vldmia " addr ", {s16-s21}\n\t"                                                                 \
    "vldmia %[w]!, {s22-s29}\n\t"                                                                    \
    HK__VF44("s22", "s23", "s24", "s25", "s16", "s17", "s18", "s19")                                 \
    HK__VF44("s26", "s27", "s28", "s29", "s17", "s18", "s19", "s20")                                 \
    "vldmia %[w]!, {s22-s25}\n\t"                                                                    \
    HK__VF44("s22", "s23", "s24", "s25", "s18", "s19", "s20", "s21")
/* clang-format on */

/* 4 filters x 4 adjacent pixels (stride 1), 3x3: must match hk__conv_t44_k3_c bit for bit. */
HK_INLINE void hk__conv_t44_k3_vfp(const float *HK_RESTRICT x, int C, int cs, int rs, const float *HK_RESTRICT w,
                                   const float *HK_RESTRICT b, float *HK_RESTRICT y, int plane, int relu)
{
    /* Outputs only (GCC allows 30 asm operands; 16 in-out accumulators would count twice). */
    register float a00 __asm__("s0");
    register float a01 __asm__("s1");
    register float a02 __asm__("s2");
    register float a03 __asm__("s3");
    register float a10 __asm__("s4");
    register float a11 __asm__("s5");
    register float a12 __asm__("s6");
    register float a13 __asm__("s7");
    register float a20 __asm__("s8");
    register float a21 __asm__("s9");
    register float a22 __asm__("s10");
    register float a23 __asm__("s11");
    register float a30 __asm__("s12");
    register float a31 __asm__("s13");
    register float a32 __asm__("s14");
    register float a33 __asm__("s15");
    const float *xp = x, *wp = w, *t = x;
    int n = C;
    /* clang-format off */
    __asm__ volatile(
        "vldmia %[b], {s16-s19}\n\t"
        "vmov.f32 s0, s16\n\tvmov.f32 s1, s16\n\tvmov.f32 s2, s16\n\tvmov.f32 s3, s16\n\t"
        "vmov.f32 s4, s17\n\tvmov.f32 s5, s17\n\tvmov.f32 s6, s17\n\tvmov.f32 s7, s17\n\t"
        "vmov.f32 s8, s18\n\tvmov.f32 s9, s18\n\tvmov.f32 s10, s18\n\tvmov.f32 s11, s18\n\t"
        "vmov.f32 s12, s19\n\tvmov.f32 s13, s19\n\tvmov.f32 s14, s19\n\tvmov.f32 s15, s19\n\t"
        "cmp %[n], #0\n\t"
        "ble 2f\n"
        "1:\n\t"
        HK__ROW44_K3_ASM("%[x]")
        "add %[t], %[x], %[rs4]\n\t"
        HK__ROW44_K3_ASM("%[t]")
        "add %[t], %[t], %[rs4]\n\t"
        HK__ROW44_K3_ASM("%[t]")
        "add %[x], %[x], %[cs4]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n"
        "2:\n\t"
        : "=t"(a00), "=t"(a01), "=t"(a02), "=t"(a03), "=t"(a10), "=t"(a11), "=t"(a12), "=t"(a13),
          "=t"(a20), "=t"(a21), "=t"(a22), "=t"(a23), "=t"(a30), "=t"(a31), "=t"(a32), "=t"(a33),
          [x] "+r"(xp), [w] "+r"(wp), [n] "+r"(n), [t] "+r"(t)
        : [rs4] "r"(rs * 4), [cs4] "r"(cs * 4), [b] "r"(b)
        : "cc", "memory", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26",
          "s27", "s28", "s29");
    /* clang-format on */
    float c00 = a00, c01 = a01, c02 = a02, c03 = a03, c10 = a10, c11 = a11, c12 = a12, c13 = a13;
    float c20 = a20, c21 = a21, c22 = a22, c23 = a23, c30 = a30, c31 = a31, c32 = a32, c33 = a33;
    HK__STORE4(y, c00, c01, c02, c03);
    HK__STORE4(y + plane, c10, c11, c12, c13);
    HK__STORE4(y + 2 * plane, c20, c21, c22, c23);
    HK__STORE4(y + 3 * plane, c30, c31, c32, c33);
}

#endif
