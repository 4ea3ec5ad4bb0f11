/* 2-D convolution, channels-first, square kernel, zero padding:
 * y[f][oy][ox] = act(b[f] + sum_{c,ky,kx} w[f][c][ky][kx] * x[c][oy*s+ky-pt][ox*s+kx-pl]).
 *
 * hk_conv2d_f32            the plain loop over [F][C][k][k] weights: the portable reference
 *                          (7.6-11 instructions per MAC on a Cortex-M4F).
 * hk_conv2d_blocked_f32    the fast kernel, over filter-blocked weights (hk_conv2d_block_weights).
 * hk_conv2d_blocked_f32_c  the same on the portable C path only (the tests compare the two).
 *
 * The blocked kernel first copies the input into a zero-padded scratch buffer (the caller's, of
 * hk_conv2d_scratch_floats() floats; none when no window leaves the input), so every output pixel
 * sees a full k x k window and the inner loops have no bounds tests. The copy costs a few
 * instructions per input value, against F * k * k MACs per input value.
 *
 * Register blocking: a tile of 4 filters x 4 adjacent output pixels keeps 16 accumulators in FPU
 * registers (the M4F has 32). Per kernel tap it loads 4 weights and 4 inputs for 16 MACs; for 3x3
 * the 6 inputs of a row feed all three taps of the row (18 loads per 48 MACs).
 * Paths: portable C (~1.6-1.8 instructions per MAC on a Cortex-M4F for 3x3); Cortex-M FPU asm for
 * the 3x3 tile (HK_NN_VFP_ASM: one VLDM loads a row of 6 inputs or 8 weights, 1.10 instructions
 * per MAC in the inner loop, 1.17-1.4 per layer); NEON on Cortex-A (HK_NN_NEON: 4 filters x 8
 * pixels, a vector FMA by weight lane, 0.6-0.8 per MAC). Accumulators start at the bias and see the
 * same FMAs in the same order on the C and asm paths, so those two agree bit for bit. */
#ifndef HK_CONV_H
#define HK_CONV_H
#include "hk_dense.h"
#include "hk_types.h"

HK_INLINE void hk_conv2d_f32(const float *HK_RESTRICT x, hk_dims in, const float *HK_RESTRICT w,
                             const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out,
                             hk_conv_params p, int relu)
{
    const int k = p.kernel;
    for (int f = 0; f < out.c; f++) {
        const float *wf = w + (size_t)f * (size_t)(in.c * k * k);
        for (int oy = 0; oy < out.h; oy++) {
            const int iy0 = oy * p.stride - p.pad_top;
            const int ky0 = iy0 < 0 ? -iy0 : 0;
            const int ky1 = iy0 + k > in.h ? in.h - iy0 : k;
            for (int ox = 0; ox < out.w; ox++) {
                const int ix0 = ox * p.stride - p.pad_left;
                const int kx0 = ix0 < 0 ? -ix0 : 0;
                const int kx1 = ix0 + k > in.w ? in.w - ix0 : k;
                float acc = 0.0f;
                for (int c = 0; c < in.c; c++) {
                    const float *xc = x + (size_t)c * (size_t)(in.h * in.w);
                    const float *wc = wf + c * k * k;
                    for (int ky = ky0; ky < ky1; ky++) {
                        /* Start at the first in-bounds tap: no pointer ever points before the row. */
                        const float *xr = xc + (iy0 + ky) * in.w + (ix0 + kx0);
                        const float *wr = wc + ky * k + kx0;
                        for (int kx = 0; kx < kx1 - kx0; kx++) {
                            acc += wr[kx] * xr[kx];
                        }
                    }
                }
                float v = b[f] + acc;
                y[(f * out.h + oy) * out.w + ox] = (relu && v < 0.0f) ? 0.0f : v;
            }
        }
    }
}

/* ---------------------------------------------------------------- blocked weights, padding */

#define HK_CONV_BLOCK HK_NN_BLOCK /* filters per weight block */

/* [F][C][k][k] weights -> the filter-blocked layout: filters in blocks of HK_CONV_BLOCK (the last
 * block smaller); block f0 with n = min(4, F - f0) filters starts where filter f0 starts and holds
 * w[f0 + j][c][ky][kx] at ((c * k + ky) * k + kx) * n + j, so the weights of one tap for the whole
 * block are adjacent. Same size as the plain array. Code generators do this at build time. */
HK_INLINE void hk_conv2d_block_weights(const float *HK_RESTRICT w, int filters, int channels, int kernel,
                                       float *HK_RESTRICT wb)
{
    hk_nn_block_weights(w, filters, channels * kernel * kernel, wb);
}

/* Padded input extent along one axis: what the output windows span. */
HK_INLINE int hk__conv_span(int out, int stride, int kernel)
{
    return (out - 1) * stride + kernel;
}

/* Floats of scratch hk_conv2d_blocked_f32 (and hk_conv2d_sparse_f32) need: the zero-padded input,
 * or 0 when every window lies inside the input. */
HK_INLINE size_t hk_conv2d_scratch_floats(hk_dims in, hk_dims out, hk_conv_params p)
{
    const int hp = hk__conv_span(out.h, p.stride, p.kernel), wp = hk__conv_span(out.w, p.stride, p.kernel);
    if (p.pad_top == 0 && p.pad_left == 0 && hp <= in.h && wp <= in.w) {
        return 0;
    }
    return (size_t)in.c * (size_t)hp * (size_t)wp;
}

/* Where the conv reads its input: x itself, or the padded copy in scratch. */
typedef struct {
    const float *x; /* window origin of output pixel (0, 0), channel 0 */
    int cs;         /* channel stride, floats */
    int rs;         /* row stride, floats */
} hk__conv_src;

HK_INLINE hk__conv_src hk__conv_prepare(const float *HK_RESTRICT x, hk_dims in, hk_dims out, hk_conv_params p,
                                        float *HK_RESTRICT scratch)
{
    hk__conv_src s;
    const int hp = hk__conv_span(out.h, p.stride, p.kernel), wp = hk__conv_span(out.w, p.stride, p.kernel);
    if (hk_conv2d_scratch_floats(in, out, p) == 0) {
        s.x = x;
        s.cs = in.h * in.w;
        s.rs = in.w;
        return s;
    }
    /* Padded row r is input row r - pad_top; its columns [pl, pl + n) are input columns [0, n). */
    const int pl = p.pad_left;
    const int n = in.w < wp - pl ? in.w : wp - pl;
    float *d = scratch;
    for (int c = 0; c < in.c; c++) {
        for (int r = 0; r < hp; r++) {
            const int iy = r - p.pad_top;
            int i = 0;
            if (iy >= 0 && iy < in.h && n > 0) {
                const float *src = x + ((size_t)c * (size_t)in.h + (size_t)iy) * (size_t)in.w;
                for (; i < pl; i++) {
                    d[i] = 0.0f;
                }
                for (int j = 0; j < n; j++) {
                    d[pl + j] = src[j];
                }
                i = pl + n;
            }
            for (; i < wp; i++) {
                d[i] = 0.0f;
            }
            d += wp;
        }
    }
    s.x = scratch;
    s.cs = hp * wp;
    s.rs = wp;
    return s;
}

/* ---------------------------------------------------------------- portable C tiles */

/* a<j><r> += w<j> * x<r>: 4 filters x 4 pixels. */
#define HK__MAC44(w0, w1, w2, w3, x0, x1, x2, x3)                                                    \
    do {                                                                                             \
        HK_MAC_F32(a00, w0, x0); HK_MAC_F32(a01, w0, x1); HK_MAC_F32(a02, w0, x2); HK_MAC_F32(a03, w0, x3); \
        HK_MAC_F32(a10, w1, x0); HK_MAC_F32(a11, w1, x1); HK_MAC_F32(a12, w1, x2); HK_MAC_F32(a13, w1, x3); \
        HK_MAC_F32(a20, w2, x0); HK_MAC_F32(a21, w2, x1); HK_MAC_F32(a22, w2, x2); HK_MAC_F32(a23, w2, x3); \
        HK_MAC_F32(a30, w3, x0); HK_MAC_F32(a31, w3, x1); HK_MAC_F32(a32, w3, x2); HK_MAC_F32(a33, w3, x3); \
    } while (0)

/* The 16 accumulators of a 4 x 4 tile, starting at the bias of their filter. */
#define HK__ACC44(T)                                                                                \
    T a00 = b[0], a01 = b[0], a02 = b[0], a03 = b[0], a10 = b[1], a11 = b[1], a12 = b[1], a13 = b[1]; \
    T a20 = b[2], a21 = b[2], a22 = b[2], a23 = b[2], a30 = b[3], a31 = b[3], a32 = b[3], a33 = b[3]

#define HK__STORE4(yj, v0, v1, v2, v3)      \
    do {                                    \
        (yj)[0] = hk__nn_act((v0), relu);   \
        (yj)[1] = hk__nn_act((v1), relu);   \
        (yj)[2] = hk__nn_act((v2), relu);   \
        (yj)[3] = hk__nn_act((v3), relu);   \
    } while (0)

#define HK__STORE44()                                      \
    do {                                                   \
        HK__STORE4(y, a00, a01, a02, a03);                 \
        HK__STORE4(y + plane, a10, a11, a12, a13);         \
        HK__STORE4(y + 2 * plane, a20, a21, a22, a23);     \
        HK__STORE4(y + 3 * plane, a30, a31, a32, a33);     \
    } while (0)

/* One input row of a 3x3 tile: its 6 values feed the 3 taps of the row. */
#define HK__ROW44_K3(xr, w)                                                                          \
    do {                                                                                             \
        const float x0 = (xr)[0], x1 = (xr)[1], x2 = (xr)[2], x3 = (xr)[3], x4 = (xr)[4], x5 = (xr)[5]; \
        HK__MAC44((w)[0], (w)[1], (w)[2], (w)[3], x0, x1, x2, x3);                                   \
        HK__MAC44((w)[4], (w)[5], (w)[6], (w)[7], x1, x2, x3, x4);                                   \
        HK__MAC44((w)[8], (w)[9], (w)[10], (w)[11], x2, x3, x4, x5);                                 \
    } while (0)

/* 4 filters x 4 adjacent pixels (stride 1), 3x3. x: window origin of the first pixel; w: the
 * block's weights [C][3][3][4]; y: output of filter 0 at the first pixel; plane: OH * OW. The
 * three rows are unrolled: one loop iteration per input channel, 144 MACs. */
HK_INLINE void hk__conv_t44_k3_c(const float *HK_RESTRICT x, int C, int cs, int rs, const float *HK_RESTRICT w,
                                 const float *HK_RESTRICT b, float *HK_RESTRICT y, int plane, int relu)
{
    HK__ACC44(float);
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * (size_t)cs;
        HK__ROW44_K3(xr, w);
        HK__ROW44_K3(xr + rs, w + 12);
        HK__ROW44_K3(xr + 2 * rs, w + 24);
        w += 36;
    }
    HK__STORE44();
}

/* 4 filters x 4 adjacent pixels (stride 1), any k. */
HK_INLINE void hk__conv_t44_c(const float *HK_RESTRICT x, int C, int cs, int rs, int k, const float *HK_RESTRICT w,
                              const float *HK_RESTRICT b, float *HK_RESTRICT y, int plane, int relu)
{
    HK__ACC44(float);
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * (size_t)cs;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                HK__MAC44(w[0], w[1], w[2], w[3], xr[kx], xr[kx + 1], xr[kx + 2], xr[kx + 3]);
                w += 4;
            }
            xr += rs;
        }
    }
    HK__STORE44();
}

/* 4 filters x 1 pixel, any k and stride. */
HK_INLINE void hk__conv_t41_c(const float *HK_RESTRICT x, int C, int cs, int rs, int k, const float *HK_RESTRICT w,
                              const float *HK_RESTRICT b, float *HK_RESTRICT y, int plane, int relu)
{
    float a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * (size_t)cs;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float xv = xr[kx];
                HK_MAC_F32(a0, w[0], xv);
                HK_MAC_F32(a1, w[1], xv);
                HK_MAC_F32(a2, w[2], xv);
                HK_MAC_F32(a3, w[3], xv);
                w += 4;
            }
            xr += rs;
        }
    }
    y[0] = hk__nn_act(a0, relu);
    y[plane] = hk__nn_act(a1, relu);
    y[2 * plane] = hk__nn_act(a2, relu);
    y[3 * plane] = hk__nn_act(a3, relu);
}

/* nf = 1..3 filters of the smaller last block (weight stride nf) x np pixels (np = 4 with stride
 * 1, else 1). Called with constant nf and np, so each inlined copy keeps only its accumulators. */
HK_INLINE void hk__conv_tail_c(const float *HK_RESTRICT x, int C, int cs, int rs, int k, int nf, int np,
                               const float *HK_RESTRICT w, const float *HK_RESTRICT b, float *HK_RESTRICT y,
                               int plane, int relu)
{
    float a00 = b[0], a01 = b[0], a02 = b[0], a03 = b[0];
    float a10 = nf > 1 ? b[1] : 0.0f, a11 = a10, a12 = a10, a13 = a10;
    float a20 = nf > 2 ? b[2] : 0.0f, a21 = a20, a22 = a20, a23 = a20;
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * (size_t)cs;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float x0 = xr[kx];
                const float x1 = np == 4 ? xr[kx + 1] : 0.0f, x2 = np == 4 ? xr[kx + 2] : 0.0f;
                const float x3 = np == 4 ? xr[kx + 3] : 0.0f;
                HK_MAC_F32(a00, w[0], x0);
                if (np == 4) {
                    HK_MAC_F32(a01, w[0], x1);
                    HK_MAC_F32(a02, w[0], x2);
                    HK_MAC_F32(a03, w[0], x3);
                }
                if (nf > 1) {
                    HK_MAC_F32(a10, w[1], x0);
                    if (np == 4) {
                        HK_MAC_F32(a11, w[1], x1);
                        HK_MAC_F32(a12, w[1], x2);
                        HK_MAC_F32(a13, w[1], x3);
                    }
                }
                if (nf > 2) {
                    HK_MAC_F32(a20, w[2], x0);
                    if (np == 4) {
                        HK_MAC_F32(a21, w[2], x1);
                        HK_MAC_F32(a22, w[2], x2);
                        HK_MAC_F32(a23, w[2], x3);
                    }
                }
                w += nf;
            }
            xr += rs;
        }
    }
    if (np == 4) {
        HK__STORE4(y, a00, a01, a02, a03);
        if (nf > 1) {
            HK__STORE4(y + plane, a10, a11, a12, a13);
        }
        if (nf > 2) {
            HK__STORE4(y + 2 * plane, a20, a21, a22, a23);
        }
    } else {
        y[0] = hk__nn_act(a00, relu);
        if (nf > 1) {
            y[plane] = hk__nn_act(a10, relu);
        }
        if (nf > 2) {
            y[2 * plane] = hk__nn_act(a20, relu);
        }
    }
}

/* The last block of nf < 4 filters: constant nf and np in each call, for hk__conv_tail_c. */
HK_INLINE void hk__conv_tail_row_c(const float *HK_RESTRICT xrow, hk__conv_src s, int C, int k, int stride, int nf,
                                   const float *HK_RESTRICT w, const float *HK_RESTRICT b, float *HK_RESTRICT yrow,
                                   int ow, int plane, int relu)
{
    int ox = 0;
    if (stride == 1) {
        for (; ox < ow - ow % 4; ox += 4) {
            if (nf == 3) {
                hk__conv_tail_c(xrow + ox, C, s.cs, s.rs, k, 3, 4, w, b, yrow + ox, plane, relu);
            } else if (nf == 2) {
                hk__conv_tail_c(xrow + ox, C, s.cs, s.rs, k, 2, 4, w, b, yrow + ox, plane, relu);
            } else {
                hk__conv_tail_c(xrow + ox, C, s.cs, s.rs, k, 1, 4, w, b, yrow + ox, plane, relu);
            }
        }
    }
    for (; ox < ow; ox++) {
        if (nf == 3) {
            hk__conv_tail_c(xrow + ox * stride, C, s.cs, s.rs, k, 3, 1, w, b, yrow + ox, plane, relu);
        } else if (nf == 2) {
            hk__conv_tail_c(xrow + ox * stride, C, s.cs, s.rs, k, 2, 1, w, b, yrow + ox, plane, relu);
        } else {
            hk__conv_tail_c(xrow + ox * stride, C, s.cs, s.rs, k, 1, 1, w, b, yrow + ox, plane, relu);
        }
    }
}

/* ---------------------------------------------------------------- Cortex-M FPU asm tile */
#ifdef HK_NN_VFP_ASM
/* Accumulator a<j><r> (filter j, pixel r) lives in s(4j + r); a row's 6 inputs in s16-s21; the
 * weights of two taps in s22-s29. vfma order per accumulator: c, ky, kx, as in the C tile. */
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
    float c00 = a00, c01 = a01, c02 = a02, c03 = a03, c10 = a10, c11 = a11, c12 = a12, c13 = a13;
    float c20 = a20, c21 = a21, c22 = a22, c23 = a23, c30 = a30, c31 = a31, c32 = a32, c33 = a33;
    HK__STORE4(y, c00, c01, c02, c03);
    HK__STORE4(y + plane, c10, c11, c12, c13);
    HK__STORE4(y + 2 * plane, c20, c21, c22, c23);
    HK__STORE4(y + 3 * plane, c30, c31, c32, c33);
}
#endif

/* All blocks on the scalar paths; fast = 1 takes the asm tile where there is one. */
HK_INLINE void hk__conv_blocked_scalar(hk__conv_src s, int C, const float *HK_RESTRICT wb,
                                       const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out, int k,
                                       int stride, int relu, int fast)
{
    const int plane = out.h * out.w;
    const int w4 = out.w - out.w % 4; /* bounds computed up front: GCC knows every trip count */
    const size_t taps = (size_t)C * (size_t)(k * k);
    (void)fast;
    for (int f0 = 0; f0 < out.c; f0 += HK_CONV_BLOCK) {
        const int nf = out.c - f0 < HK_CONV_BLOCK ? out.c - f0 : HK_CONV_BLOCK;
        const float *wg = wb + (size_t)f0 * taps;
        float *yg = y + (size_t)f0 * (size_t)plane;
        for (int oy = 0; oy < out.h; oy++) {
            const float *xrow = s.x + (size_t)(oy * stride) * (size_t)s.rs;
            float *yrow = yg + oy * out.w;
            int ox = 0;
            if (nf == HK_CONV_BLOCK) {
                if (stride == 1 && k == 3) {
                    for (; ox < w4; ox += 4) {
#ifdef HK_NN_VFP_ASM
                        if (fast) {
                            hk__conv_t44_k3_vfp(xrow + ox, C, s.cs, s.rs, wg, b + f0, yrow + ox, plane, relu);
                            continue;
                        }
#endif
                        hk__conv_t44_k3_c(xrow + ox, C, s.cs, s.rs, wg, b + f0, yrow + ox, plane, relu);
                    }
                } else if (stride == 1) {
                    for (; ox < w4; ox += 4) {
                        hk__conv_t44_c(xrow + ox, C, s.cs, s.rs, k, wg, b + f0, yrow + ox, plane, relu);
                    }
                }
                for (; ox < out.w; ox++) {
                    hk__conv_t41_c(xrow + ox * stride, C, s.cs, s.rs, k, wg, b + f0, yrow + ox, plane, relu);
                }
            } else {
                hk__conv_tail_row_c(xrow, s, C, k, stride, nf, wg, b + f0, yrow, out.w, plane, relu);
            }
        }
    }
}

/* ---------------------------------------------------------------- NEON tiles (Cortex-A) */
#ifdef HK_NN_NEON
/* acc += x * w[lane]: the block's 4 filter weights of one tap sit in one vector. */
#if defined(__aarch64__)
#define HK__VMAC_LANE(acc, xv, wv, lane) ((acc) = vfmaq_laneq_f32((acc), (xv), (wv), (lane)))
#else
#define HK__VMAC_LANE(acc, xv, wv, lane) \
    ((acc) = vmlaq_lane_f32((acc), (xv), (lane) < 2 ? vget_low_f32(wv) : vget_high_f32(wv), (lane) & 1))
#endif

HK_INLINE float32x4_t hk__conv_vact(float32x4_t v, int relu)
{
    return relu ? vmaxq_f32(v, vdupq_n_f32(0.0f)) : v;
}

/* 4 filters x 2 groups of 4 adjacent pixels (stride 1): group h reads the input at x + h * dx and
 * writes y + h * dy (dx = 4, dy = 4: 8 pixels of a row; dx = stride * rs, dy = OW: 4 pixels of two
 * rows). a<j><h> holds group h of filter j. */
HK_INLINE void hk__conv_t48_neon(const float *HK_RESTRICT x, int dx, int C, int cs, int rs, int k,
                                 const float *HK_RESTRICT w, const float *HK_RESTRICT b, float *HK_RESTRICT y,
                                 int dy, int plane, int relu)
{
    float32x4_t a00 = vdupq_n_f32(b[0]), a01 = a00, a10 = vdupq_n_f32(b[1]), a11 = a10;
    float32x4_t a20 = vdupq_n_f32(b[2]), a21 = a20, a30 = vdupq_n_f32(b[3]), a31 = a30;
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * (size_t)cs;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float32x4_t wv = hk__nn_ld(w);
                const float32x4_t x0 = hk__nn_ld(xr + kx), x1 = hk__nn_ld(xr + dx + kx);
                w += 4;
                HK__VMAC_LANE(a00, x0, wv, 0);
                HK__VMAC_LANE(a01, x1, wv, 0);
                HK__VMAC_LANE(a10, x0, wv, 1);
                HK__VMAC_LANE(a11, x1, wv, 1);
                HK__VMAC_LANE(a20, x0, wv, 2);
                HK__VMAC_LANE(a21, x1, wv, 2);
                HK__VMAC_LANE(a30, x0, wv, 3);
                HK__VMAC_LANE(a31, x1, wv, 3);
            }
            xr += rs;
        }
    }
    hk__nn_st(y, hk__conv_vact(a00, relu));
    hk__nn_st(y + dy, hk__conv_vact(a01, relu));
    hk__nn_st(y + plane, hk__conv_vact(a10, relu));
    hk__nn_st(y + plane + dy, hk__conv_vact(a11, relu));
    hk__nn_st(y + 2 * plane, hk__conv_vact(a20, relu));
    hk__nn_st(y + 2 * plane + dy, hk__conv_vact(a21, relu));
    hk__nn_st(y + 3 * plane, hk__conv_vact(a30, relu));
    hk__nn_st(y + 3 * plane + dy, hk__conv_vact(a31, relu));
}

/* 4 filters x 4 adjacent pixels (stride 1). */
HK_INLINE void hk__conv_t44_neon(const float *HK_RESTRICT x, int C, int cs, int rs, int k,
                                 const float *HK_RESTRICT w, const float *HK_RESTRICT b, float *HK_RESTRICT y,
                                 int plane, int relu)
{
    float32x4_t a0 = vdupq_n_f32(b[0]), a1 = vdupq_n_f32(b[1]), a2 = vdupq_n_f32(b[2]), a3 = vdupq_n_f32(b[3]);
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * (size_t)cs;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float32x4_t wv = hk__nn_ld(w);
                const float32x4_t x0 = hk__nn_ld(xr + kx);
                w += 4;
                HK__VMAC_LANE(a0, x0, wv, 0);
                HK__VMAC_LANE(a1, x0, wv, 1);
                HK__VMAC_LANE(a2, x0, wv, 2);
                HK__VMAC_LANE(a3, x0, wv, 3);
            }
            xr += rs;
        }
    }
    hk__nn_st(y, hk__conv_vact(a0, relu));
    hk__nn_st(y + plane, hk__conv_vact(a1, relu));
    hk__nn_st(y + 2 * plane, hk__conv_vact(a2, relu));
    hk__nn_st(y + 3 * plane, hk__conv_vact(a3, relu));
}

/* 4 filters x 1 pixel, any stride: the 4 accumulators are the lanes of one vector. */
HK_INLINE void hk__conv_t41_neon(const float *HK_RESTRICT x, int C, int cs, int rs, int k,
                                 const float *HK_RESTRICT w, const float *HK_RESTRICT b, float *HK_RESTRICT y,
                                 int plane, int relu)
{
    float32x4_t a = hk__nn_ld(b);
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * (size_t)cs;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                a = hk__nn_vmac_f32x4(a, hk__nn_ld(w), vdupq_n_f32(xr[kx]));
                w += 4;
            }
            xr += rs;
        }
    }
    a = hk__conv_vact(a, relu);
    y[0] = vgetq_lane_f32(a, 0);
    y[plane] = vgetq_lane_f32(a, 1);
    y[2 * plane] = vgetq_lane_f32(a, 2);
    y[3 * plane] = vgetq_lane_f32(a, 3);
}

HK_INLINE void hk__conv_blocked_neon(hk__conv_src s, int C, const float *HK_RESTRICT wb,
                                     const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out, int k,
                                     int stride, int relu)
{
    const int plane = out.h * out.w;
    const int w8 = out.w - out.w % 8, w4 = out.w - out.w % 4;
    const size_t taps = (size_t)C * (size_t)(k * k);
    const int full = out.c - out.c % HK_CONV_BLOCK;
    for (int f0 = 0; f0 < full; f0 += HK_CONV_BLOCK) {
        const float *wg = wb + (size_t)f0 * taps;
        float *yg = y + (size_t)f0 * (size_t)plane;
        for (int oy = 0; oy < out.h; oy++) {
            const float *xrow = s.x + (size_t)(oy * stride) * (size_t)s.rs;
            float *yrow = yg + oy * out.w;
            int ox = 0;
            if (stride == 1) {
                for (; ox < w8; ox += 8) {
                    hk__conv_t48_neon(xrow + ox, 4, C, s.cs, s.rs, k, wg, b + f0, yrow + ox, 4, plane, relu);
                }
                if (ox < w4 && oy + 1 < out.h) {
                    /* The last 4 pixels of this row and of the next one together; the next row then
                     * starts after them. */
                    hk__conv_t48_neon(xrow + ox, s.rs, C, s.cs, s.rs, k, wg, b + f0, yrow + ox, out.w, plane, relu);
                    for (int r = 0; r < 2; r++) {
                        for (int o = ox + 4; o < out.w; o++) {
                            hk__conv_t41_neon(xrow + r * s.rs + o, C, s.cs, s.rs, k, wg, b + f0, yrow + r * out.w + o,
                                              plane, relu);
                        }
                    }
                    /* Row oy + 1 still needs its first ox pixels (8-pixel groups). */
                    for (int o = 0; o < ox; o += 8) {
                        hk__conv_t48_neon(xrow + s.rs + o, 4, C, s.cs, s.rs, k, wg, b + f0, yrow + out.w + o, 4, plane,
                                          relu);
                    }
                    oy++;
                    continue;
                }
                for (; ox < w4; ox += 4) {
                    hk__conv_t44_neon(xrow + ox, C, s.cs, s.rs, k, wg, b + f0, yrow + ox, plane, relu);
                }
            }
            for (; ox < out.w; ox++) {
                hk__conv_t41_neon(xrow + ox * stride, C, s.cs, s.rs, k, wg, b + f0, yrow + ox, plane, relu);
            }
        }
    }
    if (full < out.c) { /* the last, smaller block */
        hk_dims rest = out;
        rest.c = out.c - full;
        hk__conv_blocked_scalar(s, C, wb + (size_t)full * taps, b + full, y + (size_t)full * (size_t)plane, rest,
                                k, stride, relu, 0);
    }
}
#endif

/* ---------------------------------------------------------------- entry points */

/* The blocked conv on the portable C path only (compiled on every target). */
HK_INLINE void hk_conv2d_blocked_f32_c(const float *HK_RESTRICT x, hk_dims in, const float *HK_RESTRICT wb,
                                       const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out,
                                       hk_conv_params p, int relu, float *HK_RESTRICT scratch)
{
    const hk__conv_src s = hk__conv_prepare(x, in, out, p, scratch);
    hk__conv_blocked_scalar(s, in.c, wb, b, y, out, p.kernel, p.stride, relu, 0);
}

/* y = conv(x) with filter-blocked weights wb (hk_conv2d_block_weights), on the target's fastest
 * path. scratch: hk_conv2d_scratch_floats(in, out, p) floats (may be NULL when that is 0). */
HK_INLINE void hk_conv2d_blocked_f32(const float *HK_RESTRICT x, hk_dims in, const float *HK_RESTRICT wb,
                                     const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out,
                                     hk_conv_params p, int relu, float *HK_RESTRICT scratch)
{
    const hk__conv_src s = hk__conv_prepare(x, in, out, p, scratch);
#ifdef HK_NN_NEON
    hk__conv_blocked_neon(s, in.c, wb, b, y, out, p.kernel, p.stride, relu);
#elif defined(HK_NN_X86)
    hk__conv_blocked_x86(s.x, s.cs, s.rs, in.c, wb, b, y, out, p.kernel, p.stride, relu);
#else
    hk__conv_blocked_scalar(s, in.c, wb, b, y, out, p.kernel, p.stride, relu, 1);
#endif
}

#endif
