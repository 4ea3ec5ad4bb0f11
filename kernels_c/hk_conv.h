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
 * Paths (hk_nn.h): portable C (~1.6-1.8 instructions per MAC on a Cortex-M4F for 3x3), and beside it
 *   hk_conv_armv7m.h  Cortex-M FPU asm for the 3x3 tile (HK_NN_VFP_ASM: one VLDM loads a row of 6
 *                     inputs or 8 weights, 1.10 instructions per MAC in the inner loop, 1.17-1.4
 *                     per layer);
 *   hk_conv_neon.h    Cortex-A (HK_NN_NEON: 4 filters x 8 pixels, a vector FMA by weight lane,
 *                     0.6-0.8 per MAC);
 *   hk_conv_x86.h     x86-64 (HK_NN_X86: 4 filters x 8 or 16 pixels).
 * Accumulators start at the bias and see the same FMAs in the same order on the C, asm and x86
 * paths, so those agree bit for bit; NEON agrees to rounding. */
#ifndef HK_CONV_H
#define HK_CONV_H
#include "hk_nn.h"
#include "hk_types.h"

HK_INLINE void hk_conv2d_f32(const float *HK_RESTRICT x, hk_dims in, const float *HK_RESTRICT w,
                             const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out, hk_conv_params p, int relu)
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
HK_INLINE int hk__conv_span(int out, int stride, int kernel) { return (out - 1) * stride + kernel; }

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

/* a<j><r> += w<j> * x<r>: 4 filters x 4 pixels (a row per filter). */
/* clang-format off */
#define HK__MAC44(w0, w1, w2, w3, x0, x1, x2, x3)                                                           \
    do {                                                                                                    \
        HK_MAC_F32(a00, w0, x0); HK_MAC_F32(a01, w0, x1); HK_MAC_F32(a02, w0, x2); HK_MAC_F32(a03, w0, x3); \
        HK_MAC_F32(a10, w1, x0); HK_MAC_F32(a11, w1, x1); HK_MAC_F32(a12, w1, x2); HK_MAC_F32(a13, w1, x3); \
        HK_MAC_F32(a20, w2, x0); HK_MAC_F32(a21, w2, x1); HK_MAC_F32(a22, w2, x2); HK_MAC_F32(a23, w2, x3); \
        HK_MAC_F32(a30, w3, x0); HK_MAC_F32(a31, w3, x1); HK_MAC_F32(a32, w3, x2); HK_MAC_F32(a33, w3, x3); \
    } while (0)
/* clang-format on */

/* The 16 accumulators of a 4 x 4 tile, starting at the bias of their filter. */
#define HK__ACC44(T)                                                                                  \
    T a00 = b[0], a01 = b[0], a02 = b[0], a03 = b[0], a10 = b[1], a11 = b[1], a12 = b[1], a13 = b[1]; \
    T a20 = b[2], a21 = b[2], a22 = b[2], a23 = b[2], a30 = b[3], a31 = b[3], a32 = b[3], a33 = b[3]

#define HK__STORE4(yj, v0, v1, v2, v3)       \
    do {                                     \
        (yj)[0] = hk_nn_act_f32((v0), relu); \
        (yj)[1] = hk_nn_act_f32((v1), relu); \
        (yj)[2] = hk_nn_act_f32((v2), relu); \
        (yj)[3] = hk_nn_act_f32((v3), relu); \
    } while (0)

#define HK__STORE44()                                  \
    do {                                               \
        HK__STORE4(y, a00, a01, a02, a03);             \
        HK__STORE4(y + plane, a10, a11, a12, a13);     \
        HK__STORE4(y + 2 * plane, a20, a21, a22, a23); \
        HK__STORE4(y + 3 * plane, a30, a31, a32, a33); \
    } while (0)

/* One input row of a 3x3 tile: its 6 values feed the 3 taps of the row. */
#define HK__ROW44_K3(xr, w)                                                                             \
    do {                                                                                                \
        const float x0 = (xr)[0], x1 = (xr)[1], x2 = (xr)[2], x3 = (xr)[3], x4 = (xr)[4], x5 = (xr)[5]; \
        HK__MAC44((w)[0], (w)[1], (w)[2], (w)[3], x0, x1, x2, x3);                                      \
        HK__MAC44((w)[4], (w)[5], (w)[6], (w)[7], x1, x2, x3, x4);                                      \
        HK__MAC44((w)[8], (w)[9], (w)[10], (w)[11], x2, x3, x4, x5);                                    \
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
    y[0] = hk_nn_act_f32(a0, relu);
    y[plane] = hk_nn_act_f32(a1, relu);
    y[2 * plane] = hk_nn_act_f32(a2, relu);
    y[3 * plane] = hk_nn_act_f32(a3, relu);
}

/* nf = 1..3 filters of the smaller last block (weight stride nf) x np pixels (np = 4 with stride
 * 1, else 1). Called with constant nf and np, so each inlined copy keeps only its accumulators. */
HK_INLINE void hk__conv_tail_c(const float *HK_RESTRICT x, int C, int cs, int rs, int k, int nf, int np,
                               const float *HK_RESTRICT w, const float *HK_RESTRICT b, float *HK_RESTRICT y, int plane,
                               int relu)
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
        y[0] = hk_nn_act_f32(a00, relu);
        if (nf > 1) {
            y[plane] = hk_nn_act_f32(a10, relu);
        }
        if (nf > 2) {
            y[2 * plane] = hk_nn_act_f32(a20, relu);
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

/* ---------------------------------------------------------------- the ISA paths */

/* Every block on the scalar paths (defined below; the NEON path runs the last, smaller block on it). */
HK_INLINE void hk__conv_blocked_scalar(hk__conv_src s, int C, const float *HK_RESTRICT wb, const float *HK_RESTRICT b,
                                       float *HK_RESTRICT y, hk_dims out, int k, int stride, int relu, int fast);

#if defined(HK_NN_VFP_ASM)
#include "hk_conv_armv7m.h"
#elif defined(HK_NN_NEON)
#include "hk_conv_neon.h"
#elif defined(HK_NN_X86)
#include "hk_conv_x86.h"
#endif

/* ---------------------------------------------------------------- the kernels: the best path */

/* All blocks on the scalar paths; fast = 1 takes the Cortex-M asm tile where there is one
 * (hk_conv_armv7m.h). */
HK_INLINE void hk__conv_blocked_scalar(hk__conv_src s, int C, const float *HK_RESTRICT wb, const float *HK_RESTRICT b,
                                       float *HK_RESTRICT y, hk_dims out, int k, int stride, int relu, int fast)
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

/* The blocked conv on the portable C path only (compiled on every target). */
HK_INLINE void hk_conv2d_blocked_f32_c(const float *HK_RESTRICT x, hk_dims in, const float *HK_RESTRICT wb,
                                       const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out, hk_conv_params p,
                                       int relu, float *HK_RESTRICT scratch)
{
    const hk__conv_src s = hk__conv_prepare(x, in, out, p, scratch);
    hk__conv_blocked_scalar(s, in.c, wb, b, y, out, p.kernel, p.stride, relu, 0);
}

/* y = conv(x) with filter-blocked weights wb (hk_conv2d_block_weights), on the target's fastest
 * path. scratch: hk_conv2d_scratch_floats(in, out, p) floats (may be NULL when that is 0). */
HK_INLINE void hk_conv2d_blocked_f32(const float *HK_RESTRICT x, hk_dims in, const float *HK_RESTRICT wb,
                                     const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out, hk_conv_params p,
                                     int relu, float *HK_RESTRICT scratch)
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
