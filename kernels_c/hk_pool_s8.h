/* int8 pooling and MEAN, NHWC, TFLM semantics (reference_integer_ops AveragePool / MaxPool,
 * reference_ops QuantizedMeanOrSum).
 *
 * hk_avgpool2d_s8  y[b][oy][ox][c] = clamp(round(sum x / n), act), the sum over the n window taps
 *                  inside the input (padding is neither summed nor counted), rounded half away from
 *                  zero: acc > 0 ? (acc + n/2) / n : (acc - n/2) / n in C's truncating division.
 *                  Cost: one load + add per tap and channel, one division per output.
 * hk_maxpool2d_s8  y = clamp(max over the window taps inside the input, act) (-128 if none).
 *                  Cost: one load + compare per tap and channel.
 *                  Both: x [N][H][W][C], y [N][OH][OW][C]; input and output share quantization.
 * hk_mean_s8       x viewed as [outer][count][inner] (the reduced axes must be adjacent: H and W of
 *                  NHWC is outer = N, count = H*W, inner = C), y [outer][inner]:
 *                  y = clamp(out_zp + mbqm(sum x - in_zp * count, M', shift - s), -128, 127) with
 *                  s = min(floor(log2 count), 32, 31 + shift), M' = (M << s) / count: the 1/count
 *                  folded into the multiplier as TFLM does (one 64-bit division per call).
 *                  Cost: one load + add per input value, one requantization per output. */
#ifndef HK_POOL_S8_H
#define HK_POOL_S8_H
#include "hk_nn_s8.h"

/* The window taps of one output position along one axis that fall inside the input: [*k0, *k1). */
HK_INLINE void hk__s8_pool_range(int32_t origin, int32_t taps, int32_t size, int32_t *k0, int32_t *k1)
{
    *k0 = origin < 0 ? -origin : 0;
    *k1 = origin + taps > size ? size - origin : taps;
    if (*k1 < *k0) {
        *k1 = *k0;
    }
}

/* AVERAGE_POOL_2D (see the top of the file). in {N, H, W, C}, out {N, OH, OW, C}. */
HK_INLINE void hk_avgpool2d_s8(const hk_s8_pool_params *p, const hk_s8_dims *in, const int8_t *HK_RESTRICT x,
                               const hk_s8_dims *out, int8_t *HK_RESTRICT y)
{
    const int32_t nc = in->c, row = in->w * nc;
    for (int32_t b = 0; b < out->n; b++) {
        const int8_t *xb = x + (size_t)b * (size_t)in->h * (size_t)row;
        for (int32_t oy = 0; oy < out->h; oy++) {
            int32_t ky0, ky1;
            const int32_t iy0 = oy * p->stride.h - p->pad.h;
            hk__s8_pool_range(iy0, p->filter.h, in->h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out->w; ox++) {
                int32_t kx0, kx1;
                const int32_t ix0 = ox * p->stride.w - p->pad.w;
                hk__s8_pool_range(ix0, p->filter.w, in->w, &kx0, &kx1);
                const int32_t n = (ky1 - ky0) * (kx1 - kx0);
                int8_t *yp = y + (((size_t)b * (size_t)out->h + (size_t)oy) * (size_t)out->w + (size_t)ox) *
                                     (size_t)nc;
                for (int32_t c = 0; c < nc; c++) {
                    int32_t acc = 0;
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        const int8_t *xr = xb + (size_t)(iy0 + ky) * (size_t)row + (size_t)(ix0 + kx0) * (size_t)nc +
                                           (size_t)c;
                        for (int32_t kx = 0; kx < kx1 - kx0; kx++) {
                            acc += xr[(size_t)kx * (size_t)nc];
                        }
                    }
                    /* TFLM refuses a window with no tap inside the input; it gives 0 here. */
                    if (n > 0) {
                        acc = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
                    }
                    yp[c] = (int8_t)hk_s8_clamp(acc, p->act.min, p->act.max);
                }
            }
        }
    }
}

/* MAX_POOL_2D (see the top of the file). in {N, H, W, C}, out {N, OH, OW, C}. */
HK_INLINE void hk_maxpool2d_s8(const hk_s8_pool_params *p, const hk_s8_dims *in, const int8_t *HK_RESTRICT x,
                               const hk_s8_dims *out, int8_t *HK_RESTRICT y)
{
    const int32_t nc = in->c, row = in->w * nc;
    for (int32_t b = 0; b < out->n; b++) {
        const int8_t *xb = x + (size_t)b * (size_t)in->h * (size_t)row;
        for (int32_t oy = 0; oy < out->h; oy++) {
            int32_t ky0, ky1;
            const int32_t iy0 = oy * p->stride.h - p->pad.h;
            hk__s8_pool_range(iy0, p->filter.h, in->h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out->w; ox++) {
                int32_t kx0, kx1;
                const int32_t ix0 = ox * p->stride.w - p->pad.w;
                hk__s8_pool_range(ix0, p->filter.w, in->w, &kx0, &kx1);
                int8_t *yp = y + (((size_t)b * (size_t)out->h + (size_t)oy) * (size_t)out->w + (size_t)ox) *
                                     (size_t)nc;
                for (int32_t c = 0; c < nc; c++) {
                    int32_t m = -128;
                    for (int32_t ky = ky0; ky < ky1; ky++) {
                        const int8_t *xr = xb + (size_t)(iy0 + ky) * (size_t)row + (size_t)(ix0 + kx0) * (size_t)nc +
                                           (size_t)c;
                        for (int32_t kx = 0; kx < kx1 - kx0; kx++) {
                            const int32_t v = xr[(size_t)kx * (size_t)nc];
                            m = v > m ? v : m;
                        }
                    }
                    yp[c] = (int8_t)hk_s8_clamp(m, p->act.min, p->act.max);
                }
            }
        }
    }
}

/* MEAN's integer parameters: zero points and QuantizeMultiplier(in_scale / out_scale). */
typedef struct {
    int32_t input_zp;
    int32_t output_zp;
    int32_t mult;
    int32_t shift;
} hk_s8_mean_params;

/* MEAN over the middle axis of x [outer][count][inner] (see the top of the file). */
HK_INLINE void hk_mean_s8(const hk_s8_mean_params *p, int32_t outer, int32_t count, int32_t inner,
                          const int8_t *HK_RESTRICT x, int8_t *HK_RESTRICT y)
{
    if (count <= 0) {
        return; /* TFLM leaves the output as it is for an empty reduction */
    }
    /* s = floor(log2 count) <= 30, capped as TFLM caps it; M' = M * 2^s / count < 2^31. */
    int32_t s = 31 - hk_s8_clz((uint32_t)count);
    s = s < 31 + p->shift ? s : 31 + p->shift;
    const int32_t mult = (int32_t)(((int64_t)p->mult * ((int64_t)1 << s)) / count);
    const int32_t shift = p->shift - s;
    const int32_t zsum = hk_s8_wrap((uint32_t)p->input_zp * (uint32_t)count);
    for (int32_t o = 0; o < outer; o++) {
        const int8_t *xo = x + (size_t)o * (size_t)count * (size_t)inner;
        int8_t *yo = y + (size_t)o * (size_t)inner;
        for (int32_t i = 0; i < inner; i++) {
            int32_t acc = 0;
            for (int32_t r = 0; r < count; r++) {
                acc += xo[(size_t)r * (size_t)inner + (size_t)i];
            }
            yo[i] = hk_s8_requantize(hk_s8_sub_wrap(acc, zsum), mult, shift, p->output_zp, -128, 127);
        }
    }
}

#endif
