/* Helpers shared by the kernels, and which instruction-set path a build takes.
 *
 * Layout of kernels_c/ (the CMSIS-NN / TinyMaix shape): hk_<op>.h holds an op's portable C, which
 * is always compiled, and dispatches under #if to hk_<op>_<arch>.h, with arch one of
 *   neon    Cortex-A with NEON (AArch64, ARMv7-A)           HK_NN_NEON (below), HK_EXP_NEON
 *   mve     Cortex-M55 Helium                                HK_EXP_MVE (hk_exp.h)
 *   armv7m  Cortex-M4F/M7 FPU asm (Thumb-2 VFP; the dense    HK_NN_VFP_ASM (below), HK_EXP_VFP_ASM
 *           and conv asm also runs on M33 and M55, the
 *           QuAKE asm on M33)
 *   x86     x86-64: SSE2 (every x86-64), AVX, AVX2           HK_NN_X86 (below), HK_EXP_X86
 * An ISA path names the portable function it must match: bit for bit (Cortex-M asm, x86), to float
 * rounding (the NEON dense and conv paths, which split sums across lanes), or bit for bit but for
 * flush-to-zero (the NEON and Helium QuAKE paths). hk_nn_<arch>.h holds the primitives several ops'
 * paths share. Define HK_NN_PORTABLE to build only the portable C of the dense, conv, attention and
 * layer-norm kernels; the QuAKE kernels (hk_exp.h) have their own switch, HK_EXP_PORTABLE.
 *
 * The helpers below are static inline or macros: no code unless a kernel uses them. */
#ifndef HK_NN_H
#define HK_NN_H
#include <string.h>

#include "hk_types.h"

/* ---------------------------------------------------------------- which path a build takes */

/* Cortex-A with NEON (hk_nn_neon.h has the primitives). */
#if defined(__ARM_NEON) && !defined(HK_NN_PORTABLE)
#define HK_NN_NEON 1
#endif

/* Cortex-M with a single-precision FPU and FMA (M4F, M7, M33, M55): inner loops in asm. GCC never
 * emits VLDM for C loops, and one VLDM of 6-8 registers replaces 6-8 loads, which are a third of
 * the instructions of a register-blocked loop. */
#if !defined(HK_NN_PORTABLE) && defined(__GNUC__) && defined(__arm__) && defined(__thumb2__) && defined(__ARM_FP) && \
    (__ARM_FP & 4) && defined(__ARM_FEATURE_FMA) && defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
#define HK_NN_VFP_ASM 1
#endif

/* x86-64 with SSE2. A build where __FP_FAST_FMAF is set without __FMA__ (AVX-512F with -mno-fma)
 * keeps the portable C: HK_MAC_F32 would fuse where the vectors could not. */
#if !defined(HK_NN_PORTABLE) && defined(__GNUC__) && defined(__x86_64__) && defined(__SSE2__) && \
    (defined(__FMA__) || !defined(__FP_FAST_FMAF))
#define HK_NN_X86 1
#endif

/* ---------------------------------------------------------------- float multiply-accumulate */

/* acc += a * b in one instruction (vfma / fmadd) where the FPU has a fused multiply-add. In ISO C
 * mode (-std=c99) GCC never contracts a * b + c by itself, so the plain form costs a multiply and
 * an add. The fused form rounds once, which only brings the result closer to the exact sum. The
 * dense, conv and attention sums go through it (or its vector twin) on the portable, Cortex-M asm
 * and x86 paths, which therefore agree bit for bit. */
#ifndef HK_MAC_F32
#if defined(__GNUC__) && defined(__FP_FAST_FMAF)
#define HK_MAC_F32(acc, a, b) ((acc) = __builtin_fmaf((a), (b), (acc)))
#else
#define HK_MAC_F32(acc, a, b) ((acc) += (a) * (b))
#endif
#endif

/* The fused activation of dense and conv outputs: ReLU when relu != 0 (v < 0 ? 0 : v, so -0 and
 * NaN pass through unchanged), else v. */
HK_INLINE float hk_nn_act_f32(float v, int relu) { return (relu && v < 0.0f) ? 0.0f : v; }

/* ---------------------------------------------------------------- blocked weights */

#define HK_NN_BLOCK 4 /* rows (dense) or filters (conv) per weight block */

/* Row-major W [rows][cols] -> the blocked layout of hk_dense_blocked_f32 and hk_conv2d_blocked_f32
 * (code generators do this at build time): rows in blocks of HK_NN_BLOCK, the last block smaller;
 * block o0 with n = min(4, rows - o0) rows holds W[o0 + j][i] at o0 * cols + i * n + j, so the n
 * weights that meet input i are adjacent. Same size as W. */
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

/* ---------------------------------------------------------------- float <-> bits */

/* The float32 whose IEEE bits are u, and back, through memcpy (a well-defined type pun). A register
 * move on the hosted builds; under -ffreestanding (rpi3-bm) GCC does not treat memcpy as a builtin
 * and calls the library's. */
HK_INLINE float hk_nn_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

HK_INLINE uint32_t hk_nn_bits_from_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ---------------------------------------------------------------- integer shifts */

/* floor(u / 2^k), 0 <= k < 32, without the implementation-defined >> of a negative int: for u < 0,
 * floor(u / 2^k) = -(((-u - 1) >> k) + 1), and -u - 1 = -(u + 1) never overflows. The spiking
 * kernels' leak (u -= floor(u / 2^k)). */
HK_INLINE int32_t hk_nn_asr32(int32_t u, int k) { return u >= 0 ? u >> k : -((-(u + 1)) >> k) - 1; }

/* hk_nn_asr32 as one arithmetic shift where the compiler's >> of a negative int is arithmetic (a
 * constant it folds: GCC and Clang on every board here), else the portable form. Same results;
 * for loops where the branch costs (the reservoir's leak). */
HK_INLINE int32_t hk_nn_asr32_shift(int32_t u, int k) { return ((int32_t)-1 >> 1) == -1 ? u >> k : hk_nn_asr32(u, k); }

/* floor(v / 2^k) of an int64, 0 <= k < 64, as hk_nn_asr32. */
HK_INLINE int64_t hk_nn_asr64(int64_t v, int k) { return v >= 0 ? v >> k : -((-(v + 1)) >> k) - 1; }

/* ---------------------------------------------------------------- bit-packed maps */

/* 32-bit words of a map of c bits (spike maps: channel c is bit c % 32 of word c / 32). */
HK_INLINE int hk_nn_words(int c) { return (c + 31) >> 5; }

/* Index of the lowest set bit of w != 0 (the next spike of a word). GCC's builtin where the CPU
 * has a count-leading-zeros instruction (ctz = clz of the reversed word); a de Bruijn multiply
 * elsewhere (Cortex-M0+), or everywhere with -DHK_SNN_PORTABLE. */
HK_INLINE int hk_nn_ctz32_portable(uint32_t w)
{
    static const uint8_t pos[32] = {0,  1,  28, 2,  29, 14, 24, 3, 30, 22, 20, 15, 25, 17, 4,  8,
                                    31, 27, 13, 23, 21, 19, 16, 7, 26, 12, 18, 6,  11, 5,  10, 9};
    return pos[((w & (0u - w)) * 0x077CB531u) >> 27];
}

#if defined(__GNUC__) && !defined(HK_SNN_PORTABLE) && \
    (defined(__ARM_FEATURE_CLZ) || defined(__x86_64__) || defined(__aarch64__))
HK_INLINE int hk_nn_ctz32(uint32_t w) { return __builtin_ctz(w); }
#else
HK_INLINE int hk_nn_ctz32(uint32_t w) { return hk_nn_ctz32_portable(w); }
#endif

/* x = the bits set in each byte of x, as four byte counts (0..8) in one word: the first steps of a
 * SWAR popcount, on a uint32_t variable in place. Up to 31 such words can be summed before a byte
 * count overflows. */
#define HK_NN_POPCOUNT_BYTES(x)                                 \
    do {                                                        \
        (x) -= ((x) >> 1) & 0x55555555u;                        \
        (x) = (0x33333333u & (x)) + (((x) >> 2) & 0x33333333u); \
        (x) = ((x) + ((x) >> 4)) & 0x0F0F0F0Fu;                 \
    } while (0)

/* Bits set in x by shifts, ANDs and adds (Cortex-M0+ has no CLZ or popcount instruction). */
HK_INLINE uint32_t hk_nn_popcount32_portable(uint32_t x)
{
    HK_NN_POPCOUNT_BYTES(x);
    x += x >> 8;
    return (x + (x >> 16)) & 0x3Fu;
}

/* Bits set in x. Where the CPU counts bits in one instruction (x86 POPCNT, AArch64 NEON CNT) GCC's
 * builtin is better; Cortex-M and A32 have none, and GCC lowers the builtin there to a libgcc call.
 * -DHK_BINCONV_PORTABLE forces the SWAR form. HK_NN_HW_POPCOUNT says which one this build has. */
#if defined(__GNUC__) && !defined(HK_BINCONV_PORTABLE) && (defined(__POPCNT__) || defined(__aarch64__))
#define HK_NN_HW_POPCOUNT 1
HK_INLINE uint32_t hk_nn_popcount32(uint32_t x) { return (uint32_t)__builtin_popcount(x); }
#else
#define HK_NN_HW_POPCOUNT 0
HK_INLINE uint32_t hk_nn_popcount32(uint32_t x) { return hk_nn_popcount32_portable(x); }
#endif

/* ---------------------------------------------------------------- random numbers */

/* Marsaglia's xorshift32 (13, 17, 5): advance the state *s (never 0) and return it. The one
 * generator of the spiking kernels (rate coding, the ME neurons' fire draws, the reservoir's
 * input), so the numpy references reproduce every draw. */
HK_INLINE uint32_t hk_nn_xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* ---------------------------------------------------------------- out-of-line kernels */

/* A kernel kept out of line: the spiking layers' loops, inlined into the time loop, would share one
 * register file and spill (measured: more instructions, not fewer, on Cortex-M4). `unused`: a
 * translation unit may include a header without calling all of its kernels. */
#if defined(__GNUC__)
#define HK_NOINLINE static __attribute__((noinline, unused))
#else
#define HK_NOINLINE static inline
#endif

#endif
