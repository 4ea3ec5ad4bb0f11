/* Element-wise operators of imported models (TFLite RELU6, RELU_N1_TO_1, TANH, exact GELU, MUL).
 * In-place use (y == x) is allowed. */
#ifndef HK_ACT_H
#define HK_ACT_H
#include <math.h>
#include "hk_types.h"

HK_INLINE void hk_relu6_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        const float v = x[i] > 0.0f ? x[i] : 0.0f;
        y[i] = v < 6.0f ? v : 6.0f;
    }
}

HK_INLINE void hk_relu1_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        const float v = x[i] > -1.0f ? x[i] : -1.0f;
        y[i] = v < 1.0f ? v : 1.0f;
    }
}

HK_INLINE void hk_tanh_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = tanhf(x[i]);
    }
}

/* GELU without approximation: 0.5 x (1 + erf(x / sqrt 2)). */
HK_INLINE void hk_gelu_erf_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.707106781f));
    }
}

HK_INLINE void hk_mul_f32(const float *a, const float *b, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = a[i] * b[i];
    }
}

#endif
