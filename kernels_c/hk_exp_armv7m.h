/* Cortex-M4F/M7/M33 paths of the QuAKE softmax, logistic and GELU (HK_EXP_VFP_ASM: FPv4/FPv5 scalar,
 * Thumb-2, no Helium), included by hk_exp.h after its portable C.
 *
 * The same float32 operations in the same order as hk__softmax_quake_c, hk__logistic_quake_c and
 * hk__gelu_quake_c (bit-exact: tests/test_quake.py runs both on the boards), but 8 floats per
 * VLDM/VSTM: GCC never emits those for C loops, and loads/stores are a third of the instructions.
 * The max pass compares with VCMPE, which raises Invalid (FPSCR.IOC) for any NaN: that flags a NaN
 * input without an extra instruction per element. NaN inputs and |max| beyond the fold limit (both
 * rare) take the portable path, as do the tails of n % 8 elements. */
#ifndef HK_EXP_ARMV7M_H
#define HK_EXP_ARMV7M_H
#ifndef HK_EXP_H
#error "hk_exp_armv7m.h is part of hk_exp.h (its portable code comes first): include hk_exp.h"
#endif
#include <math.h>

#include "hk_types.h"

/* clang-format off */
#define HK__VCMP_MAX(r) "vcmpe.f32 " r ", %[m]\n\tvmrs APSR_nzcv, fpscr\n\tit gt\n\tvmovgt.f32 %[m], " r "\n\t"
/* clang-format on */

/* Largest non-NaN element; *nan = 1 if some element is NaN. */
HK_INLINE float hk__max_vfp(const float *x, int n, int *nan)
{
    float m = -INFINITY;
    const float *p = x;
    int nb = n >> 3, nr = n & 7;
    uint32_t fs0, fs1;
    /* clang-format off */
    __asm__ volatile(
        "vmrs %[f0], fpscr\n\t"
        "bic %[f1], %[f0], #1\n\t" /* clear IOC */
        "vmsr fpscr, %[f1]\n\t"
        "cmp %[nb], #0\n\t"
        "beq 2f\n"
        "1:\n\t"
        "vldmia %[p]!, {s16-s23}\n\t"
        HK__VCMP_MAX("s16") HK__VCMP_MAX("s17") HK__VCMP_MAX("s18") HK__VCMP_MAX("s19")
        HK__VCMP_MAX("s20") HK__VCMP_MAX("s21") HK__VCMP_MAX("s22") HK__VCMP_MAX("s23")
        "subs %[nb], %[nb], #1\n\t"
        "bne 1b\n"
        "2:\n\t"
        "cmp %[nr], #0\n\t"
        "beq 4f\n"
        "3:\n\t"
        "vldmia %[p]!, {s16}\n\t"
        HK__VCMP_MAX("s16")
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
    /* clang-format on */
    *nan = (int)(fs1 & 1u);
    return m;
}

/* quake2's correction of the bits in s<a>, s<a+1> (through two core registers). */
/* clang-format off */
#define HK__Q2FIX_1(u)                    \
    "lsl %[f], " u ", #9\n\t"             \
    "rsb %[g], %[f], #0\n\t"              \
    "umull %[f], %[g], %[f], %[g]\n\t"    \
    "umull %[f], %[g], %[g], %[k]\n\t"    \
    "sub " u ", " u ", %[g]\n\t"
#define HK__Q2FIX_2(sa, sb) \
    "vmov %[u0], %[u1], " sa ", " sb "\n\t" HK__Q2FIX_1("%[u0]") HK__Q2FIX_1("%[u1]") "vmov " sa ", " sb ", %[u0], %[u1]\n\t"
/* clang-format on */

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
        /* clang-format off */
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
        /* clang-format on */
    } else {
        uint32_t u0, u1, f, g;
        const uint32_t k = HK_QUAKE2_K;
        /* clang-format off */
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
            HK__Q2FIX_2("s16", "s17") HK__Q2FIX_2("s18", "s19")
            HK__Q2FIX_2("s20", "s21") HK__Q2FIX_2("s22", "s23")
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
        /* clang-format on */
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
    /* clang-format off */
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
    /* clang-format on */
    return n & ~7;
}

/* Logistic (op 1) and GELU (op 2) over whole blocks of 8; returns elements done. The clamp keeps
 * a NaN t (the portable clamp maps it to +inf): the output is NaN either way (GELU divides x;
 * the logistic writes x back where x is NaN). */
/* clang-format off */
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
    "vadd.f32 s30, s30, %[c0]\n\tvadd.f32 s31, s31, %[c0]\n\t"                                        \
    HK__CLAMP("s24") HK__CLAMP("s25") HK__CLAMP("s26") HK__CLAMP("s27")                               \
    HK__CLAMP("s28") HK__CLAMP("s29") HK__CLAMP("s30") HK__CLAMP("s31")                               \
    "vcvt.u32.f32 s24, s24\n\tvcvt.u32.f32 s25, s25\n\tvcvt.u32.f32 s26, s26\n\t"                     \
    "vcvt.u32.f32 s27, s27\n\tvcvt.u32.f32 s28, s28\n\tvcvt.u32.f32 s29, s29\n\t"                     \
    "vcvt.u32.f32 s30, s30\n\tvcvt.u32.f32 s31, s31\n\t"
#define HK__ELT_Q2 \
    HK__Q2FIX_2("s24", "s25") HK__Q2FIX_2("s26", "s27") HK__Q2FIX_2("s28", "s29") HK__Q2FIX_2("s30", "s31")
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
    "vdiv.f32 s30, %[one], s30\n\tvdiv.f32 s31, %[one], s31\n\t"                                      \
    HK__KEEPNAN("s16", "s24") HK__KEEPNAN("s17", "s25") HK__KEEPNAN("s18", "s26")                     \
    HK__KEEPNAN("s19", "s27") HK__KEEPNAN("s20", "s28") HK__KEEPNAN("s21", "s29")                     \
    HK__KEEPNAN("s22", "s30") HK__KEEPNAN("s23", "s31")
#define HK__ELT_TAIL                                                                                  \
    "vstmia %[q]!, {s24-s31}\n\t"                                                                     \
    "subs %[nb], %[nb], #1\n\t"                                                                       \
    "bne 1b\n\t"
#define HK__ELT_OUT [p] "+r"(p), [q] "+r"(q), [nb] "+r"(nb)
#define HK__ELT_IN [c1] "t"(c1), [c0] "t"(c0), [h] "t"(h), [one] "t"(one)
#define HK__ELT_CLOBBER                                                                               \
    "cc", "memory", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", \
    "s28", "s29", "s30", "s31"
/* clang-format on */

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
        /* clang-format off */
        __asm__ volatile(HK__ELT_HEAD HK__ELT_DEN HK__ELT_LOGISTIC HK__ELT_TAIL
                         : HK__ELT_OUT
                         : HK__ELT_IN
                         : HK__ELT_CLOBBER);
        /* clang-format on */
    } else if (order == 1) {
        /* clang-format off */
        __asm__ volatile(HK__ELT_HEAD HK__ELT_DEN HK__ELT_GELU HK__ELT_TAIL
                         : HK__ELT_OUT
                         : HK__ELT_IN
                         : HK__ELT_CLOBBER);
        /* clang-format on */
    } else {
        uint32_t u0, u1, f, g;
        const uint32_t k = HK_QUAKE2_K;
        if (op == 1) {
            /* clang-format off */
            __asm__ volatile(HK__ELT_HEAD HK__ELT_Q2 HK__ELT_DEN HK__ELT_LOGISTIC HK__ELT_TAIL
                             : HK__ELT_OUT, [u0] "=&r"(u0), [u1] "=&r"(u1), [f] "=&r"(f), [g] "=&r"(g)
                             : HK__ELT_IN, [k] "r"(k)
                             : HK__ELT_CLOBBER);
            /* clang-format on */
        } else {
            /* clang-format off */
            __asm__ volatile(HK__ELT_HEAD HK__ELT_Q2 HK__ELT_DEN HK__ELT_GELU HK__ELT_TAIL
                             : HK__ELT_OUT, [u0] "=&r"(u0), [u1] "=&r"(u1), [f] "=&r"(f), [g] "=&r"(g)
                             : HK__ELT_IN, [k] "r"(k)
                             : HK__ELT_CLOBBER);
            /* clang-format on */
        }
    }
    return n & ~7;
}

/* hk_logistic_quake<order>_f32: must match hk__logistic_quake_c bit for bit. */
HK_INLINE void hk__logistic_quake_vfp(const float *x, float *y, int n, int order)
{
    int i = hk__eltwise_vfp(x, y, n, 1, order);
    hk__logistic_quake_c(x + i, y + i, n - i, order);
}

/* hk_gelu_quake<order>_f32: must match hk__gelu_quake_c bit for bit. */
HK_INLINE void hk__gelu_quake_vfp(const float *x, float *y, int n, int order)
{
    int i = hk__eltwise_vfp(x, y, n, 2, order);
    hk__gelu_quake_c(x + i, y + i, n - i, order);
}

/* hk_softmax_quake<order>_f32: must match hk__softmax_quake_c bit for bit. */
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

#endif
