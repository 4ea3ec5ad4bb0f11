/* Max and average pooling, channels-first, square window, no padding (valid). */
#ifndef HK_POOL_H
#define HK_POOL_H
#include "hk_types.h"

HK_INLINE void hk_maxpool2d_f32(const float *HK_RESTRICT x, hk_dims in, float *HK_RESTRICT y, hk_dims out, int size,
                                int stride)
{
    for (int c = 0; c < out.c; c++) {
        const float *xc = x + (size_t)c * (size_t)(in.h * in.w);
        for (int oy = 0; oy < out.h; oy++) {
            for (int ox = 0; ox < out.w; ox++) {
                const float *xr = xc + (oy * stride) * in.w + ox * stride;
                float m = xr[0];
                for (int ky = 0; ky < size; ky++) {
                    for (int kx = 0; kx < size; kx++) {
                        float v = xr[ky * in.w + kx];
                        m = v > m ? v : m;
                    }
                }
                y[(c * out.h + oy) * out.w + ox] = m;
            }
        }
    }
}

HK_INLINE void hk_avgpool2d_f32(const float *HK_RESTRICT x, hk_dims in, float *HK_RESTRICT y, hk_dims out, int size,
                                int stride)
{
    const float scale = 1.0f / (float)(size * size);
    for (int c = 0; c < out.c; c++) {
        const float *xc = x + (size_t)c * (size_t)(in.h * in.w);
        for (int oy = 0; oy < out.h; oy++) {
            for (int ox = 0; ox < out.w; ox++) {
                const float *xr = xc + (oy * stride) * in.w + ox * stride;
                float s = 0.0f;
                for (int ky = 0; ky < size; ky++) {
                    for (int kx = 0; kx < size; kx++) {
                        s += xr[ky * in.w + kx];
                    }
                }
                y[(c * out.h + oy) * out.w + ox] = s * scale;
            }
        }
    }
}

#endif
