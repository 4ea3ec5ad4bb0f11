/* Element-wise operators. In-place use (y == x) is allowed. */
#ifndef HK_ELTWISE_H
#define HK_ELTWISE_H
#include "hk_types.h"

HK_INLINE void hk_relu_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
}

HK_INLINE void hk_add_f32(const float *a, const float *b, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = a[i] + b[i];
    }
}

HK_INLINE void hk_copy_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) {
        y[i] = x[i];
    }
}

#endif
