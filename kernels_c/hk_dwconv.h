/* Depthwise 2-D convolution, channels-first, square kernel, zero padding (TFLite DEPTHWISE_CONV_2D):
 * output channel o = c * multiplier + j reads only input channel c,
 * y[o][oy][ox] = b[o] + sum_{ky,kx} w[o][ky][kx] * x[c][oy*s+ky-pt][ox*s+kx-pl]. */
#ifndef HK_DWCONV_H
#define HK_DWCONV_H
#include "hk_types.h"

HK_INLINE void hk_dwconv2d_f32(const float *HK_RESTRICT x, hk_dims in, const float *HK_RESTRICT w,
                               const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out, hk_conv_params p,
                               int multiplier)
{
    const int k = p.kernel;
    for (int o = 0; o < out.c; o++) {
        const float *xc = x + (size_t)(o / multiplier) * (size_t)(in.h * in.w);
        const float *wo = w + (size_t)o * (size_t)(k * k);
        float *yo = y + (size_t)o * (size_t)(out.h * out.w);
        for (int oy = 0; oy < out.h; oy++) {
            const int iy0 = oy * p.stride - p.pad_top;
            const int ky0 = iy0 < 0 ? -iy0 : 0;
            const int ky1 = iy0 + k > in.h ? in.h - iy0 : k;
            for (int ox = 0; ox < out.w; ox++) {
                const int ix0 = ox * p.stride - p.pad_left;
                const int kx0 = ix0 < 0 ? -ix0 : 0;
                const int kx1 = ix0 + k > in.w ? in.w - ix0 : k;
                float acc = 0.0f;
                for (int ky = ky0; ky < ky1; ky++) {
                    /* Start at the first in-bounds tap: no pointer ever points before the row. */
                    const float *xr = xc + (iy0 + ky) * in.w + (ix0 + kx0);
                    const float *wr = wo + ky * k + kx0;
                    for (int kx = 0; kx < kx1 - kx0; kx++) {
                        acc += wr[kx] * xr[kx];
                    }
                }
                yo[oy * out.w + ox] = b[o] + acc;
            }
        }
    }
}

#endif
