/* 2-D convolution with unstructured sparse weights (magnitude-pruned single weights):
 * the same result as hk_conv2d_f32, but only the nonzero taps are stored and multiplied.
 *
 * Format (per output channel lists of nonzero taps, CSR-like):
 *   start[f] .. start[f + 1] - 1   index the nonzeros of filter f (start has F + 1 entries);
 *   w[i]                           the weight of nonzero i;
 *   off[i]                         its input offset c * cs + ky * rs + kx, in floats, relative to
 *                                  the window origin of an output pixel.
 * cs and rs are the channel and row strides of the input the kernel reads: the zero-padded copy
 * in scratch (cs = Hp * Wp, rs = Wp with Hp, Wp = (out - 1) * stride + kernel) when
 * hk_conv2d_scratch_floats() > 0, else the input itself (cs = H * W, rs = W). Offsets are 16-bit,
 * so C * Hp * Wp (or C * H * W) must stay below 65536.
 *
 * Each nonzero costs a weight load, an offset load and an address add, then one input load and one
 * MAC per output pixel of the tile (4 pixels in each of 2 rows): ~2.8 instructions per nonzero MAC
 * on a Cortex-M4F, against ~1.2 per MAC for the dense blocked kernel, so the sparse kernel wins
 * below 32-40 % density there (bench/pruning/crossover.py; codegen/passes.py picks per layer).
 * Portable C only: on Cortex-A the dense kernel runs on NEON and the crossover is ~17 %. */
#ifndef HK_CONV_SPARSE_H
#define HK_CONV_SPARSE_H
#include "hk_conv.h" /* hk__conv_prepare: the padded input */
#include "hk_nn.h"
#include "hk_types.h"

/* 8 pixels: 4 adjacent (stride 1) in rows r and r + dr (dr = stride * rs floats apart). */
HK_INLINE void hk__conv_sparse_t8(const float *HK_RESTRICT x, int dr, const float *HK_RESTRICT w,
                                  const uint16_t *HK_RESTRICT off, int n, float bias, float *HK_RESTRICT y, int ow,
                                  int relu)
{
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
    for (int i = 0; i < n; i++) {
        const float wv = w[i];
        const float *xp = x + off[i];
        const float *xq = xp + dr;
        HK_MAC_F32(a0, wv, xp[0]);
        HK_MAC_F32(a1, wv, xp[1]);
        HK_MAC_F32(a2, wv, xp[2]);
        HK_MAC_F32(a3, wv, xp[3]);
        HK_MAC_F32(a4, wv, xq[0]);
        HK_MAC_F32(a5, wv, xq[1]);
        HK_MAC_F32(a6, wv, xq[2]);
        HK_MAC_F32(a7, wv, xq[3]);
    }
    y[0] = hk_nn_act_f32(bias + a0, relu);
    y[1] = hk_nn_act_f32(bias + a1, relu);
    y[2] = hk_nn_act_f32(bias + a2, relu);
    y[3] = hk_nn_act_f32(bias + a3, relu);
    y[ow] = hk_nn_act_f32(bias + a4, relu);
    y[ow + 1] = hk_nn_act_f32(bias + a5, relu);
    y[ow + 2] = hk_nn_act_f32(bias + a6, relu);
    y[ow + 3] = hk_nn_act_f32(bias + a7, relu);
}

/* 4 adjacent pixels of one row (stride 1). */
HK_INLINE void hk__conv_sparse_t4(const float *HK_RESTRICT x, const float *HK_RESTRICT w,
                                  const uint16_t *HK_RESTRICT off, int n, float bias, float *HK_RESTRICT y, int relu)
{
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    for (int i = 0; i < n; i++) {
        const float wv = w[i];
        const float *xp = x + off[i];
        HK_MAC_F32(a0, wv, xp[0]);
        HK_MAC_F32(a1, wv, xp[1]);
        HK_MAC_F32(a2, wv, xp[2]);
        HK_MAC_F32(a3, wv, xp[3]);
    }
    y[0] = hk_nn_act_f32(bias + a0, relu);
    y[1] = hk_nn_act_f32(bias + a1, relu);
    y[2] = hk_nn_act_f32(bias + a2, relu);
    y[3] = hk_nn_act_f32(bias + a3, relu);
}

/* One pixel, any stride. */
HK_INLINE float hk__conv_sparse_t1(const float *HK_RESTRICT x, const float *HK_RESTRICT w,
                                   const uint16_t *HK_RESTRICT off, int n)
{
    float a0 = 0.0f, a1 = 0.0f;
    int i = 0;
    for (; i < n - n % 2; i += 2) {
        HK_MAC_F32(a0, w[i], x[off[i]]);
        HK_MAC_F32(a1, w[i + 1], x[off[i + 1]]);
    }
    if (i < n) {
        HK_MAC_F32(a0, w[i], x[off[i]]);
    }
    return a0 + a1;
}

/* y = conv(x) with sparse weights (format above). scratch: hk_conv2d_scratch_floats(in, out, p)
 * floats (may be NULL when that is 0). */
HK_INLINE void hk_conv2d_sparse_f32(const float *HK_RESTRICT x, hk_dims in, const float *HK_RESTRICT w,
                                    const uint16_t *HK_RESTRICT off, const int32_t *HK_RESTRICT start,
                                    const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out, hk_conv_params p,
                                    int relu, float *HK_RESTRICT scratch)
{
    const hk__conv_src s = hk__conv_prepare(x, in, out, p, scratch);
    const int plane = out.h * out.w;
    const int dr = p.stride * s.rs;
    const int h2 = out.h - out.h % 2, w4 = out.w - out.w % 4; /* GCC then knows every trip count */
    for (int f = 0; f < out.c; f++) {
        const float *wf = w + start[f];
        const uint16_t *of = off + start[f];
        const int n = (int)(start[f + 1] - start[f]);
        float *yf = y + (size_t)f * (size_t)plane;
        int oy = 0;
        if (p.stride == 1) {
            for (; oy < h2; oy += 2) {
                const float *xrow = s.x + (size_t)oy * (size_t)s.rs;
                float *yrow = yf + oy * out.w;
                int ox = 0;
                for (; ox < w4; ox += 4) {
                    hk__conv_sparse_t8(xrow + ox, dr, wf, of, n, b[f], yrow + ox, out.w, relu);
                }
                for (; ox < out.w; ox++) {
                    yrow[ox] = hk_nn_act_f32(b[f] + hk__conv_sparse_t1(xrow + ox, wf, of, n), relu);
                    yrow[out.w + ox] = hk_nn_act_f32(b[f] + hk__conv_sparse_t1(xrow + dr + ox, wf, of, n), relu);
                }
            }
        }
        for (; oy < out.h; oy++) {
            const float *xrow = s.x + (size_t)(oy * p.stride) * (size_t)s.rs;
            float *yrow = yf + oy * out.w;
            int ox = 0;
            if (p.stride == 1) {
                for (; ox < w4; ox += 4) {
                    hk__conv_sparse_t4(xrow + ox, wf, of, n, b[f], yrow + ox, relu);
                }
            }
            for (; ox < out.w; ox++) {
                yrow[ox] = hk_nn_act_f32(b[f] + hk__conv_sparse_t1(xrow + ox * p.stride, wf, of, n), relu);
            }
        }
    }
}

#endif
