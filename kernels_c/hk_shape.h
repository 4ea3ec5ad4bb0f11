/* Layout operators of imported models: zero padding, the mean over H and W, and the channels-last
 * flatten that TFLite's RESHAPE of an NHWC tensor means. Channels-first [C][H][W] buffers. */
#ifndef HK_SHAPE_H
#define HK_SHAPE_H
#include "hk_types.h"

/* y [C][H+top+bottom][W+left+right] = x surrounded by zeros. */
HK_INLINE void hk_pad2d_f32(const float *HK_RESTRICT x, hk_dims in, float *HK_RESTRICT y, hk_dims out, int top,
                            int left)
{
    for (int c = 0; c < out.c; c++) {
        const float *xc = x + (size_t)c * (size_t)(in.h * in.w);
        float *yc = y + (size_t)c * (size_t)(out.h * out.w);
        for (int oy = 0; oy < out.h; oy++) {
            const int iy = oy - top;
            for (int ox = 0; ox < out.w; ox++) {
                const int ix = ox - left;
                yc[oy * out.w + ox] = (iy >= 0 && iy < in.h && ix >= 0 && ix < in.w) ? xc[iy * in.w + ix] : 0.0f;
            }
        }
    }
}

/* y[c] = mean over H and W of x[c]. */
HK_INLINE void hk_mean_hw_f32(const float *HK_RESTRICT x, hk_dims in, float *HK_RESTRICT y)
{
    const int n = in.h * in.w;
    const float scale = 1.0f / (float)n;
    for (int c = 0; c < in.c; c++) {
        const float *xc = x + (size_t)c * (size_t)n;
        float s = 0.0f;
        for (int i = 0; i < n; i++) {
            s += xc[i];
        }
        y[c] = s * scale;
    }
}

/* y[(h*W + w)*C + c] = x[(c*H + h)*W + w]: channels-first to channels-last. */
HK_INLINE void hk_chw_to_hwc_f32(const float *HK_RESTRICT x, hk_dims in, float *HK_RESTRICT y)
{
    for (int c = 0; c < in.c; c++) {
        for (int i = 0; i < in.h * in.w; i++) {
            y[(size_t)i * (size_t)in.c + (size_t)c] = x[(size_t)c * (size_t)(in.h * in.w) + (size_t)i];
        }
    }
}

#endif
