/* Exponential-based activations: softmax, logistic (sigmoid) and GELU.
 * Variant `libm` uses expf from the C library; QuAKE variants are added beside it. */
#ifndef HK_EXP_H
#define HK_EXP_H
#include <math.h>
#include "hk_types.h"

/* Softmax over n floats: y = exp(x - max) / sum. In-place allowed (y == x). */
HK_INLINE void hk_softmax_libm_f32(const float *x, float *y, int n)
{
    float m = x[0];
    for (int i = 1; i < n; i++) {
        m = x[i] > m ? x[i] : m;
    }
    float s = 0.0f;
    for (int i = 0; i < n; i++) {
        y[i] = expf(x[i] - m);
        s += y[i];
    }
    float r = 1.0f / s;
    for (int i = 0; i < n; i++) {
        y[i] *= r;
    }
}

/* Logistic: y = 1 / (1 + exp(-x)). */
HK_INLINE void hk_logistic_libm_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = 1.0f / (1.0f + expf(-x[i]));
    }
}

/* GELU, sigmoid form: y = x * sigmoid(1.702 x). */
HK_INLINE void hk_gelu_libm_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
    }
}

#endif
