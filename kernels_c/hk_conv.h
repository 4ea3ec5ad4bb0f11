/* 2-D convolution, channels-first, square kernel, zero padding:
 * y[f][oy][ox] = act(b[f] + sum_{c,ky,kx} w[f][c][ky][kx] * x[c][oy*s+ky-p][ox*s+kx-p]). */
#ifndef HK_CONV_H
#define HK_CONV_H
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

#endif
