/* int8 elementwise ADD, TFLM semantics (reference_integer_ops AddFunc, micro add_common.cc):
 *
 *   a_i = mbqm_le1((x_i - zp_i) * 2^left_shift, M_i, shift_i)    (i = 1, 2; left_shift 20 for int8)
 *   y   = clamp(out_zp + mbqm_le1(a_1 + a_2, M_out, shift_out), act)
 *
 * with M_i/shift_i = QuantizeMultiplierSmallerThanOneExp(s_i / (2 max(s_1, s_2))) and M_out/shift_out
 * of 2 max(s_1, s_2) / (2^left_shift s_out): both inputs are brought to a common scale with 20 bits
 * of headroom, summed exactly, and rescaled once. All shifts are <= 0.
 *
 * hk_add_s8        n elements of two same-shape tensors (any layout).
 * hk_add_bcast_s8  a 4-D output [d0][d1][d2][d3] from inputs read through per-axis element strides
 *                  (stride 0 along an axis the input broadcasts over: TFLM's BroadcastAdd6DSlow).
 * Cost: per output 2 loads, 3 requantizations (3 64-bit multiplies), 1 store. */
#ifndef HK_ADD_S8_H
#define HK_ADD_S8_H
#include "hk_nn_s8.h"

/* ADD's integer parameters (ops/int8.py add_params). */
typedef struct {
    int32_t in1_zp;
    int32_t in2_zp;
    int32_t out_zp;
    int32_t left_shift; /* 20 for int8 */
    int32_t in1_mult;
    int32_t in1_shift;
    int32_t in2_mult;
    int32_t in2_shift;
    int32_t out_mult;
    int32_t out_shift;
    hk_s8_act act;
} hk_s8_add_params;

/* One output value (AddFunc). (x - zp) * 2^20 fits easily (|x - zp| <= 255); the shift wraps like
 * TFLM's int32 multiply for any left_shift in [0, 31]. */
HK_INLINE int8_t hk__s8_add1(const hk_s8_add_params *p, int32_t a, int32_t b)
{
    const int32_t sa = hk_mbqm_le1(hk_s8_shl_wrap(a - p->in1_zp, p->left_shift), p->in1_mult, p->in1_shift);
    const int32_t sb = hk_mbqm_le1(hk_s8_shl_wrap(b - p->in2_zp, p->left_shift), p->in2_mult, p->in2_shift);
    const int32_t raw = hk_mbqm_le1(hk_s8_add_wrap(sa, sb), p->out_mult, p->out_shift);
    return hk_s8_out(raw, p->out_zp, p->act.min, p->act.max);
}

/* ADD of two same-shape tensors of n elements. */
HK_INLINE void hk_add_s8(const hk_s8_add_params *p, const int8_t *HK_RESTRICT x1, const int8_t *HK_RESTRICT x2,
                         int8_t *HK_RESTRICT y, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        y[i] = hk__s8_add1(p, x1[i], x2[i]);
    }
}

/* ADD with broadcasting: y [d[0]][d[1]][d[2]][d[3]] row-major; x1 element (i, j, k, l) is at
 * i*s1[0] + j*s1[1] + k*s1[2] + l*s1[3] (x2 likewise with s2). */
HK_INLINE void hk_add_bcast_s8(const hk_s8_add_params *p, const int32_t d[4], const int8_t *HK_RESTRICT x1,
                               const int32_t s1[4], const int8_t *HK_RESTRICT x2, const int32_t s2[4],
                               int8_t *HK_RESTRICT y)
{
    for (int32_t i = 0; i < d[0]; i++) {
        for (int32_t j = 0; j < d[1]; j++) {
            for (int32_t k = 0; k < d[2]; k++) {
                const size_t a0 = (size_t)i * (size_t)s1[0] + (size_t)j * (size_t)s1[1] + (size_t)k * (size_t)s1[2];
                const size_t b0 = (size_t)i * (size_t)s2[0] + (size_t)j * (size_t)s2[1] + (size_t)k * (size_t)s2[2];
                for (int32_t l = 0; l < d[3]; l++) {
                    *y++ = hk__s8_add1(p, x1[a0 + (size_t)l * (size_t)s1[3]], x2[b0 + (size_t)l * (size_t)s2[3]]);
                }
            }
        }
    }
}

#endif
