/* NEON path of the blocked conv for Cortex-A (HK_NN_NEON, hk_nn.h), included by hk_conv.h after its
 * portable C: 4 filters x 8 pixels (or 4 pixels of two rows) per tile, a vector FMA by weight lane,
 * 0.6-0.8 instructions per MAC. Each output adds its products in the portable order (channel,
 * kernel row, kernel column), so this matches hk_conv2d_blocked_f32_c to float rounding (on ARMv7
 * the vector multiply-add is not fused; tests/test_kernels_conv.py checks the agreement). */
#ifndef HK_CONV_NEON_H
#define HK_CONV_NEON_H
#ifndef HK_CONV_H
#error "hk_conv_neon.h is part of hk_conv.h (its portable code comes first): include hk_conv.h"
#endif
#include "hk_nn.h"
#include "hk_nn_neon.h"
#include "hk_types.h"

HK_INLINE float32x4_t hk__conv_vact(float32x4_t v, int relu) { return relu ? vmaxq_f32(v, vdupq_n_f32(0.0f)) : v; }

/* 4 filters x 2 groups of 4 adjacent pixels (stride 1): group h reads the input at x + h * dx and
 * writes y + h * dy (dx = 4, dy = 4: 8 pixels of a row; dx = stride * rs, dy = OW: 4 pixels of two
 * rows). a<j><h> holds group h of filter j. */
HK_INLINE void hk__conv_t48_neon(const float *HK_RESTRICT x, int dx, int C, int cs, int rs, int k,
                                 const float *HK_RESTRICT w, const float *HK_RESTRICT b, float *HK_RESTRICT y, int dy,
                                 int plane, int relu)
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
                HK__NN_VMAC_LANE(a00, x0, wv, 0);
                HK__NN_VMAC_LANE(a01, x1, wv, 0);
                HK__NN_VMAC_LANE(a10, x0, wv, 1);
                HK__NN_VMAC_LANE(a11, x1, wv, 1);
                HK__NN_VMAC_LANE(a20, x0, wv, 2);
                HK__NN_VMAC_LANE(a21, x1, wv, 2);
                HK__NN_VMAC_LANE(a30, x0, wv, 3);
                HK__NN_VMAC_LANE(a31, x1, wv, 3);
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
HK_INLINE void hk__conv_t44_neon(const float *HK_RESTRICT x, int C, int cs, int rs, int k, const float *HK_RESTRICT w,
                                 const float *HK_RESTRICT b, float *HK_RESTRICT y, int plane, int relu)
{
    float32x4_t a0 = vdupq_n_f32(b[0]), a1 = vdupq_n_f32(b[1]), a2 = vdupq_n_f32(b[2]), a3 = vdupq_n_f32(b[3]);
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * (size_t)cs;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float32x4_t wv = hk__nn_ld(w);
                const float32x4_t x0 = hk__nn_ld(xr + kx);
                w += 4;
                HK__NN_VMAC_LANE(a0, x0, wv, 0);
                HK__NN_VMAC_LANE(a1, x0, wv, 1);
                HK__NN_VMAC_LANE(a2, x0, wv, 2);
                HK__NN_VMAC_LANE(a3, x0, wv, 3);
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
HK_INLINE void hk__conv_t41_neon(const float *HK_RESTRICT x, int C, int cs, int rs, int k, const float *HK_RESTRICT w,
                                 const float *HK_RESTRICT b, float *HK_RESTRICT y, int plane, int relu)
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

/* hk_conv2d_blocked_f32 on NEON: must match hk__conv_blocked_scalar (hk_conv2d_blocked_f32_c) to
 * float rounding. */
HK_INLINE void hk__conv_blocked_neon(hk__conv_src s, int C, const float *HK_RESTRICT wb, const float *HK_RESTRICT b,
                                     float *HK_RESTRICT y, hk_dims out, int k, int stride, int relu)
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
        hk__conv_blocked_scalar(s, C, wb + (size_t)full * taps, b + full, y + (size_t)full * (size_t)plane, rest, k,
                                stride, relu, 0);
    }
}

#endif
