/* int8 data movement and (de)quantization, TFLM semantics.
 *
 * hk_pad_s8             PAD / PADV2 of a 4-D tensor: y [N+..][H+..][W+..][C+..] = x placed at
 *                       (pads[0], pads[2], pads[4], pads[6]), everything else `value` (PAD's value is
 *                       the output zero point). Values are copied, never requantized.
 *                       Cost: one store per output byte, one load per input byte (memcpy per row).
 * hk_concat_s8          CONCATENATION: input i viewed as [outer][sizes[i]][inner], y
 *                       [outer][sum sizes][inner]. TFLM requires shared quantization: a plain copy.
 *                       Cost: one memcpy per input per outer index.
 * hk_quantize_f32_s8    QUANTIZE float32 -> int8 (AffineQuantize): y = clamp(round(x / scale) + zp),
 *                       the quotient in float32 (as TFLM divides by (float)scale), rounded half away
 *                       from zero; NaN gives zp, +-inf and huge values saturate. Cost: one float
 *                       division per value (a libgcc call without an FPU).
 * hk_dequantize_s8_f32  DEQUANTIZE int8 -> float32: y = scale * (x - zp). TFLM multiplies in double
 *                       and rounds to float; a float32 multiply gives the same bits, because
 *                       x - zp has at most 9 significant bits, so the double product of a float32 by
 *                       it is exact and both round it once to float32.
 * hk_requantize_s8      QUANTIZE int8 -> int8 (Requantize): y = clamp(out_zp + mbqm(x - in_zp, M, shift)).
 * Layouts: flat arrays of n values except pad and concat. */
#ifndef HK_SHAPE_S8_H
#define HK_SHAPE_S8_H
#include <string.h>

#include "hk_nn_s8.h"

/* PAD of x {N, H, W, C}: pads = {n_before, n_after, h_before, h_after, w_before, w_after, c_before,
 * c_after}; y has {N + n_b + n_a, H + .., W + .., C + ..}. */
HK_INLINE void hk_pad_s8(const hk_s8_dims *in, const int8_t *HK_RESTRICT x, const int32_t pads[8], int8_t value,
                         int8_t *HK_RESTRICT y)
{
    const int32_t on = in->n + pads[0] + pads[1], oh = in->h + pads[2] + pads[3];
    const int32_t ow = in->w + pads[4] + pads[5], oc = in->c + pads[6] + pads[7];
    const size_t total = (size_t)on * (size_t)oh * (size_t)ow * (size_t)oc;
    memset(y, (unsigned char)value, total);
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t i = 0; i < in->h; i++) {
            for (int32_t j = 0; j < in->w; j++) {
                const int8_t *src = x + (((size_t)b * (size_t)in->h + (size_t)i) * (size_t)in->w + (size_t)j) *
                                            (size_t)in->c;
                int8_t *dst = y + ((((size_t)(b + pads[0]) * (size_t)oh + (size_t)(i + pads[2])) * (size_t)ow +
                                    (size_t)(j + pads[4])) *
                                       (size_t)oc +
                                   (size_t)pads[6]);
                memcpy(dst, src, (size_t)in->c);
            }
        }
    }
}

/* CONCATENATION of n inputs along the middle axis of [outer][sizes[i]][inner]. */
HK_INLINE void hk_concat_s8(int32_t n, const int8_t *const *xs, const int32_t *sizes, int32_t outer, int32_t inner,
                            int8_t *HK_RESTRICT y)
{
    size_t row = 0;
    for (int32_t i = 0; i < n; i++) {
        row += (size_t)sizes[i] * (size_t)inner;
    }
    size_t at = 0;
    for (int32_t i = 0; i < n; i++) {
        const size_t len = (size_t)sizes[i] * (size_t)inner;
        for (int32_t o = 0; o < outer; o++) {
            memcpy(y + (size_t)o * row + at, xs[i] + (size_t)o * len, len);
        }
        at += len;
    }
}

/* QUANTIZE float32 -> int8 of n values. */
HK_INLINE void hk_quantize_f32_s8(const float *HK_RESTRICT x, int32_t n, float scale, int32_t zp,
                                  int8_t *HK_RESTRICT y)
{
    for (int32_t i = 0; i < n; i++) {
        float r = x[i] / scale;
        /* Anything beyond +-512 saturates the int8 result whatever zp is; clamping first keeps the
         * float -> int conversion defined (NaN compares false both ways and becomes 0). */
        r = r > 512.0f ? 512.0f : (r < -512.0f ? -512.0f : (r == r ? r : 0.0f));
        int32_t t = (int32_t)r; /* truncated toward zero */
        const float frac = r - (float)t; /* exact: |r| <= 512 */
        t += frac >= 0.5f ? 1 : (frac <= -0.5f ? -1 : 0);
        y[i] = (int8_t)hk_s8_clamp(t + zp, -128, 127);
    }
}

/* DEQUANTIZE int8 -> float32 of n values. */
HK_INLINE void hk_dequantize_s8_f32(const int8_t *HK_RESTRICT x, int32_t n, float scale, int32_t zp,
                                    float *HK_RESTRICT y)
{
    for (int32_t i = 0; i < n; i++) {
        y[i] = scale * (float)(x[i] - zp);
    }
}

/* QUANTIZE int8 -> int8 of n values (a change of scale and zero point). */
HK_INLINE void hk_requantize_s8(const int8_t *HK_RESTRICT x, int32_t n, int32_t in_zp, int32_t out_zp,
                                int32_t mult, int32_t shift, int8_t *HK_RESTRICT y)
{
    for (int32_t i = 0; i < n; i++) {
        y[i] = hk_s8_requantize(x[i] - in_zp, mult, shift, out_zp, -128, 127);
    }
}

#endif
