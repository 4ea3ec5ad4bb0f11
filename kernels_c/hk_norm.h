/* Layer normalisation over the last axis: y = (x - mean) / sqrt(var + eps) * weight + bias, for
 * `rows` rows of d floats (tokens [T][D], or one vector). var is the biased variance, computed in
 * two passes (mean first), like the numpy reference (hilkit.models.functional.layernorm).
 * In-place use (y == x) is allowed.
 *
 * Paths (hk_nn.h): the portable C (hk_layernorm_f32_c, always compiled); x86-64 (HK_NN_X86,
 * hk_norm_x86.h: several rows per vector, bit-exact with the portable C). */
#ifndef HK_NORM_H
#define HK_NORM_H
#include <math.h>

#include "hk_nn.h"
#include "hk_types.h"

#define HK_LAYERNORM_EPS 1e-5f

HK_INLINE void hk_layernorm_f32_c(const float *x, float *y, int rows, int d, const float *HK_RESTRICT weight,
                                  const float *HK_RESTRICT bias)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)d;
        float *yr = y + (size_t)r * (size_t)d;
        float s = 0.0f;
        for (int i = 0; i < d; i++) {
            s += xr[i];
        }
        const float mu = s / (float)d;
        float v = 0.0f;
        for (int i = 0; i < d; i++) {
            const float c = xr[i] - mu;
            v += c * c;
        }
        /* var + eps > 0, so sqrtf never takes its errno path */
        const float rstd = 1.0f / sqrtf(v / (float)d + HK_LAYERNORM_EPS);
        for (int i = 0; i < d; i++) {
            yr[i] = (xr[i] - mu) * rstd * weight[i] + bias[i];
        }
    }
}

#if defined(HK_NN_X86)
#include "hk_norm_x86.h"
#endif

HK_INLINE void hk_layernorm_f32(const float *x, float *y, int rows, int d, const float *HK_RESTRICT weight,
                                const float *HK_RESTRICT bias)
{
#if defined(HK_NN_X86)
    if (hk__layernorm_x86(x, y, rows, d, weight, bias)) {
        return;
    }
#endif
    hk_layernorm_f32_c(x, y, rows, d, weight, bias);
}

#endif
