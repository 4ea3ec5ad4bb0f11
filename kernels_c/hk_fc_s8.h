/* int8 fully connected layer, TFLM semantics (reference_integer_ops FullyConnected /
 * FullyConnectedPerChannel):
 *
 *   y[b][o] = clamp(out_zp + mbqm(bias[o] + sum_i (w[o][i] - w_zp) * (x[b][i] - in_zp), M, shift), act)
 *
 * hk_fc_s8              one multiplier for the layer (hk_s8_quant), what older converters emit.
 * hk_fc_per_channel_s8  mult[o] / shift[o] per output row (hk_s8_requant).
 * x [batches][n_in], w [n_out][n_in] row-major, bias [n_out] (or NULL), y [batches][n_out].
 *
 * Cost: batches * n_out * n_in MACs. The portable path takes four weight rows at a time
 * (hk__s8_fc_rows4): each input value is loaded once and offset once for four MACs, so one MAC is
 * one weight load + one multiply-add + a quarter of an input load and add. A non-zero filter zero
 * point costs one extra pass over x per batch row (sum_i (x[i] - in_zp) times w_zp is subtracted),
 * not one subtraction per MAC. Accumulators are int32 (n_in <= 65536, as TFLM assumes).
 * Measured: 64 -> 12 (MLPerf Tiny KWS) 3.57 instructions per MAC on a Cortex-M4, with literal shapes. */
#ifndef HK_FC_S8_H
#define HK_FC_S8_H
#include "hk_nn_s8.h"

/* ---------------------------------------------------------------- inner rows (swappable) */

/* acc[0..3] = dot(w_r, x + off) for the four rows w, w + n, w + 2n, w + 3n. */
HK_INLINE void hk__s8_fc_rows4(const int8_t *HK_RESTRICT x, int32_t off, const int8_t *HK_RESTRICT w, int32_t n,
                               int32_t *HK_RESTRICT acc)
{
    const int8_t *w0 = w, *w1 = w + n, *w2 = w1 + n, *w3 = w2 + n;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int32_t i = 0; i < n; i++) {
        const int32_t v = x[i] + off;
        s0 += w0[i] * v;
        s1 += w1[i] * v;
        s2 += w2[i] * v;
        s3 += w3[i] * v;
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}

/* dot(w, x + off): one row. */
HK_INLINE int32_t hk__s8_fc_row1(const int8_t *HK_RESTRICT x, int32_t off, const int8_t *HK_RESTRICT w, int32_t n)
{
    int32_t s = 0;
    for (int32_t i = 0; i < n; i++) {
        s += w[i] * (x[i] + off);
    }
    return s;
}

/* ---------------------------------------------------------------- kernels */

/* The shared body: mult/shift advance by mstep per output row (0 per tensor, 1 per channel). */
HK_INLINE void hk__s8_fc(const hk_s8_fc_params *p, const int32_t *mult, const int32_t *shift, int32_t mstep,
                         int32_t batches, int32_t n_in, const int8_t *HK_RESTRICT x, int32_t n_out,
                         const int8_t *HK_RESTRICT w, const int32_t *HK_RESTRICT bias, int8_t *HK_RESTRICT y)
{
    const int32_t off = -p->input_zp, zp = p->output_zp, lo = p->act.min, hi = p->act.max;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *xb = x + (size_t)b * (size_t)n_in;
        int8_t *yb = y + (size_t)b * (size_t)n_out;
        /* sum_i (w - w_zp)(x + off) = sum_i w (x + off) - w_zp * sum_i (x + off), all modulo 2^32. */
        int32_t corr = 0;
        if (p->filter_zp != 0) {
            int32_t xs = 0;
            for (int32_t i = 0; i < n_in; i++) {
                xs += xb[i] + off;
            }
            corr = hk_s8_wrap((uint32_t)xs * (uint32_t)p->filter_zp);
        }
        for (int32_t o = 0; o < n_out; o += 4) {
            const int8_t *wo = w + (size_t)o * (size_t)n_in;
            const int32_t rows = n_out - o < 4 ? n_out - o : 4;
            int32_t acc[4];
            if (rows == 4) {
                hk__s8_fc_rows4(xb, off, wo, n_in, acc);
            } else {
                for (int32_t j = 0; j < rows; j++) {
                    acc[j] = hk__s8_fc_row1(xb, off, wo + (size_t)j * (size_t)n_in, n_in);
                }
            }
            for (int32_t j = 0; j < rows; j++) {
                int32_t a = hk_s8_sub_wrap(acc[j], corr);
                a = bias ? hk_s8_add_wrap(a, bias[o + j]) : a;
                yb[o + j] = hk_s8_requantize(a, mult[(o + j) * mstep], shift[(o + j) * mstep], zp, lo, hi);
            }
        }
    }
}

/* FULLY_CONNECTED with one multiplier for the layer. */
HK_INLINE void hk_fc_s8(const hk_s8_fc_params *p, const hk_s8_quant *q, int32_t batches, int32_t n_in,
                        const int8_t *HK_RESTRICT x, int32_t n_out, const int8_t *HK_RESTRICT w,
                        const int32_t *HK_RESTRICT bias, int8_t *HK_RESTRICT y)
{
    hk__s8_fc(p, &q->mult, &q->shift, 0, batches, n_in, x, n_out, w, bias, y);
}

/* FULLY_CONNECTED with a multiplier per output row (q->mult[o], q->shift[o]). */
HK_INLINE void hk_fc_per_channel_s8(const hk_s8_fc_params *p, const hk_s8_requant *q, int32_t batches,
                                    int32_t n_in, const int8_t *HK_RESTRICT x, int32_t n_out,
                                    const int8_t *HK_RESTRICT w, const int32_t *HK_RESTRICT bias,
                                    int8_t *HK_RESTRICT y)
{
    hk__s8_fc(p, q->mult, q->shift, 1, batches, n_in, x, n_out, w, bias, y);
}

#endif
