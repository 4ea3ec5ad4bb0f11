/* Fully connected layer: y[o] = act(b[o] + sum_i W[o][i] * x[i]), W row-major [n_out][n_in]. */
#ifndef HK_DENSE_H
#define HK_DENSE_H
#include "hk_types.h"

HK_INLINE void hk_dense_f32(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT w,
                            const float *HK_RESTRICT b, float *HK_RESTRICT y, int n_out, int relu)
{
    for (int o = 0; o < n_out; o++) {
        const float *row = w + (size_t)o * (size_t)n_in;
        float acc0 = 0.0f, acc1 = 0.0f;
        int i = 0;
        for (; i + 1 < n_in; i += 2) {
            acc0 += row[i] * x[i];
            acc1 += row[i + 1] * x[i + 1];
        }
        for (; i < n_in; i++) {
            acc0 += row[i] * x[i];
        }
        float v = b[o] + (acc0 + acc1);
        y[o] = (relu && v < 0.0f) ? 0.0f : v;
    }
}

#endif
