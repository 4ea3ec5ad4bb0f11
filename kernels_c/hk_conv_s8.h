/* int8 2-D convolution and depthwise convolution, NHWC, TFLM semantics (reference_integer_ops
 * ConvPerChannel / DepthwiseConvPerChannel): per-output-channel requantization, padding taps
 * contribute 0, int32 accumulators.
 *
 * hk_conv2d_s8     y[b][oy][ox][o] = clamp(out_zp + mbqm(bias[o] + sum_{ky,kx,i} w[o][ky][kx][i]
 *                                    * (x[b][iy][ix][i] - in_zp), mult[o], shift[o]), act)
 *                  iy = oy*stride.h - pad.h + ky*dilation.h (ix likewise); taps outside the input
 *                  are skipped. x [N][H][W][C], w [O][KH][KW][I], bias [O] (or NULL), y [N][OH][OW][O];
 *                  grouped when C = groups * I: output channel o reads channels of group o / (O/groups).
 *                  Cost: N*OH*OW*O*K MACs, K = KH*KW*I; the weights are read once per two output
 *                  pixels, each input value once per output channel pair.
 * hk_dwconv2d_s8   y[b][oy][ox][c*M+m] = clamp(out_zp + mbqm(bias[o] + sum_{ky,kx} w[0][ky][kx][o]
 *                                    * (x[b][iy][ix][c] - in_zp), mult[o], shift[o]), act), o = c*M+m.
 *                  w [1][KH][KW][C*M]. Cost: N*OH*OW*C*M*KH*KW MACs, two loads each.
 *
 * Accumulators are int32 like TFLM's: with |w| <= 127 and |x - in_zp| <= 255 a sum of up to 65536
 * products cannot overflow (K <= 65536 is required, as TFLM assumes).
 *
 * Structure (so ISA paths can replace one piece at a time, under #if, beside the portable C):
 *   conv: im2col of two output pixels into the caller's int16 scratch, with the input offset
 *   already added (padding taps become 0, which is exactly what TFLM's skipping gives), then a
 *   2-pixel x 2-channel register tile over the K taps (hk__s8_dot_2x2): per 4 MACs 2 int16 loads,
 *   2 int8 loads and 4 multiply-adds, no offset adds (38 instructions per 16 MACs on a Cortex-M4).
 *   The int16 columns are what SMLAD / SDOT-style paths want. Scratch:
 *   hk_conv2d_s8_scratch_bytes(filter) = 2 * K int16 values.
 *   depthwise: blocks of 4 channels (depth multiplier 1) outermost, then pixels, taps innermost
 *   with the 4 accumulators in registers (hk__s8_dw_taps4); a window entirely inside the input takes
 *   the input offset as one term in_off * sum(w) per channel instead of an add per tap. Other
 *   multipliers and channel tails go one output channel at a time. No scratch.
 *   Requantization (hk_s8_requantize, 25-30 instructions on a Cortex-M4) is per output value: it is
 *   most of the depthwise cost (9 MACs per output for 3x3).
 * Measured, compiled with literal shapes, MLPerf Tiny KWS layers (bench/int8/s8_kws.py): conv 10x4
 * 1->64 3.56, depthwise 3x3 x64 9.97, conv 1x1 64->64 3.02 instructions per MAC on a Cortex-M4
 * (mps2-an386); 10.4 / 22.5 / 9.1 on the Cortex-M0+ (pico). */
#ifndef HK_CONV_S8_H
#define HK_CONV_S8_H
#include "hk_nn_s8.h"

/* ---------------------------------------------------------------- inner tiles (swappable) */

/* acc[0..3] += { w0.a0, w1.a0, w0.a1, w1.a1 } over k taps: two pixels' columns a0/a1 (int16, offset
 * added) against two output channels' weight rows w0/w1. */
HK_INLINE void hk__s8_dot_2x2(const int16_t *HK_RESTRICT a0, const int16_t *HK_RESTRICT a1,
                              const int8_t *HK_RESTRICT w0, const int8_t *HK_RESTRICT w1, int32_t k,
                              int32_t *HK_RESTRICT acc)
{
    int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];
    int32_t n = k;
/* One tap: 4 loads (post-increment addressing) and 4 multiply-adds. */
#define HK__S8_TAP_2X2()                                                                                \
    do {                                                                                                \
        const int32_t x0 = *a0++, x1 = *a1++, v0 = *w0++, v1 = *w1++;                                  \
        s00 += v0 * x0;                                                                                 \
        s01 += v1 * x0;                                                                                 \
        s10 += v0 * x1;                                                                                 \
        s11 += v1 * x1;                                                                                 \
    } while (0)
    /* Four taps per iteration: the loop counter and branch are shared by 16 MACs. */
    for (; n >= 4; n -= 4) {
        HK__S8_TAP_2X2();
        HK__S8_TAP_2X2();
        HK__S8_TAP_2X2();
        HK__S8_TAP_2X2();
    }
    for (; n > 0; n--) {
        HK__S8_TAP_2X2();
    }
#undef HK__S8_TAP_2X2
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}

/* acc[0..1] += { w0.a, w1.a }: the last pixel of an odd count. */
HK_INLINE void hk__s8_dot_1x2(const int16_t *HK_RESTRICT a, const int8_t *HK_RESTRICT w0,
                              const int8_t *HK_RESTRICT w1, int32_t k, int32_t *HK_RESTRICT acc)
{
    int32_t s0 = acc[0], s1 = acc[1];
    for (int32_t i = 0; i < k; i++) {
        const int32_t xv = a[i];
        s0 += w0[i] * xv;
        s1 += w1[i] * xv;
    }
    acc[0] = s0;
    acc[1] = s1;
}

/* w.a: one channel (the last of an odd count). */
HK_INLINE int32_t hk__s8_dot_1x1(const int16_t *HK_RESTRICT a, const int8_t *HK_RESTRICT w, int32_t k)
{
    int32_t s = 0;
    for (int32_t i = 0; i < k; i++) {
        s += w[i] * a[i];
    }
    return s;
}

/* ---------------------------------------------------------------- conv */

/* Bytes of scratch hk_conv2d_s8 needs: the int16 columns of two output pixels. */
HK_INLINE size_t hk_conv2d_s8_scratch_bytes(const hk_s8_dims *filter)
{
    return 2u * (size_t)filter->h * (size_t)filter->w * (size_t)filter->c * sizeof(int16_t);
}

/* The receptive field of output pixel (oy, ox) over input channels [c0, c0 + f->c) as K int16
 * values x - in_zp, [ky][kx][i] order, 0 for taps outside the input. xb is the batch's input.
 * Costs ~2-3 instructions per value, against O multiply-adds per value in the tile. */
HK_INLINE void hk__s8_im2col(const int8_t *HK_RESTRICT xb, const hk_s8_dims *in, const hk_s8_dims *f,
                             const hk_s8_conv_params *p, int32_t oy, int32_t ox, int32_t c0,
                             int16_t *HK_RESTRICT col)
{
    const int32_t off = -p->input_zp, nc = f->c;
    const int32_t iy0 = oy * p->stride.h - p->pad.h, ix0 = ox * p->stride.w - p->pad.w;
    for (int32_t ky = 0; ky < f->h; ky++) {
        const int32_t iy = iy0 + ky * p->dilation.h;
        for (int32_t kx = 0; kx < f->w; kx++) {
            const int32_t ix = ix0 + kx * p->dilation.w;
            if (iy < 0 || iy >= in->h || ix < 0 || ix >= in->w) {
                for (int32_t c = 0; c < nc; c++) {
                    col[c] = 0;
                }
            } else {
                const int8_t *src = xb + ((size_t)iy * (size_t)in->w + (size_t)ix) * (size_t)in->c + (size_t)c0;
                for (int32_t c = 0; c < nc; c++) {
                    col[c] = (int16_t)(src[c] + off);
                }
            }
            col += nc;
        }
    }
}

/* bias[o] + acc modulo 2^32 (TFLM adds the bias to its int32 accumulator). */
HK_INLINE int32_t hk__s8_bias(const int32_t *bias, int32_t o, int32_t acc)
{
    return bias ? hk_s8_add_wrap(acc, bias[o]) : acc;
}

/* n_out output channels (weights w, [n_out][k]) of one or two pixels from their columns
 * (c1 NULL: one pixel). bias, mult, shift and y0/y1 point at the first of these channels. */
HK_INLINE void hk__s8_conv_cols(const int16_t *HK_RESTRICT c0, const int16_t *HK_RESTRICT c1, int32_t k,
                                const int8_t *HK_RESTRICT w, const int32_t *HK_RESTRICT bias, int32_t n_out,
                                const int32_t *HK_RESTRICT mult, const int32_t *HK_RESTRICT shift,
                                const hk_s8_conv_params *p, int8_t *HK_RESTRICT y0, int8_t *HK_RESTRICT y1)
{
    const int32_t zp = p->output_zp, lo = p->act.min, hi = p->act.max;
    int32_t o = 0;
    for (; o + 2 <= n_out; o += 2) {
        const int8_t *w0 = w + (size_t)o * (size_t)k, *w1 = w0 + k;
        int32_t acc[4] = {0, 0, 0, 0};
        if (c1) {
            hk__s8_dot_2x2(c0, c1, w0, w1, k, acc);
            y1[o] = hk_s8_requantize(hk__s8_bias(bias, o, acc[2]), mult[o], shift[o], zp, lo, hi);
            y1[o + 1] = hk_s8_requantize(hk__s8_bias(bias, o + 1, acc[3]), mult[o + 1], shift[o + 1], zp, lo, hi);
        } else {
            hk__s8_dot_1x2(c0, w0, w1, k, acc);
        }
        y0[o] = hk_s8_requantize(hk__s8_bias(bias, o, acc[0]), mult[o], shift[o], zp, lo, hi);
        y0[o + 1] = hk_s8_requantize(hk__s8_bias(bias, o + 1, acc[1]), mult[o + 1], shift[o + 1], zp, lo, hi);
    }
    if (o < n_out) {
        const int8_t *wo = w + (size_t)o * (size_t)k;
        y0[o] = hk_s8_requantize(hk__s8_bias(bias, o, hk__s8_dot_1x1(c0, wo, k)), mult[o], shift[o], zp, lo, hi);
        if (c1) {
            y1[o] = hk_s8_requantize(hk__s8_bias(bias, o, hk__s8_dot_1x1(c1, wo, k)), mult[o], shift[o], zp, lo,
                                     hi);
        }
    }
}

/* CONV_2D (see the top of the file). in {N, H, W, C}, filter {O, KH, KW, I} with C = groups * I
 * (groups = C / I; output channel o belongs to group o / (O / groups)), out {N, OH, OW, O}; q holds O
 * multipliers and shifts; scratch has hk_conv2d_s8_scratch_bytes(filter) bytes. */
HK_INLINE void hk_conv2d_s8(const hk_s8_conv_params *p, const hk_s8_requant *q, const hk_s8_dims *in,
                            const int8_t *HK_RESTRICT x, const hk_s8_dims *filter, const int8_t *HK_RESTRICT w,
                            const int32_t *HK_RESTRICT bias, const hk_s8_dims *out, int8_t *HK_RESTRICT y,
                            int16_t *HK_RESTRICT scratch)
{
    const int32_t k = filter->h * filter->w * filter->c;
    const int32_t pixels = out->h * out->w;
    const int32_t groups = in->c / filter->c, per_group = out->c / groups;
    int16_t *col0 = scratch, *col1 = scratch + k;
    for (int32_t b = 0; b < out->n; b++) {
        const int8_t *xb = x + (size_t)b * (size_t)in->h * (size_t)in->w * (size_t)in->c;
        int8_t *yb = y + (size_t)b * (size_t)pixels * (size_t)out->c;
        for (int32_t px = 0; px < pixels; px += 2) {
            const int two = px + 1 < pixels;
            int8_t *y0 = yb + (size_t)px * (size_t)out->c;
            for (int32_t g = 0; g < groups; g++) {
                const int32_t o0 = g * per_group;
                hk__s8_im2col(xb, in, filter, p, px / out->w, px % out->w, g * filter->c, col0);
                if (two) {
                    hk__s8_im2col(xb, in, filter, p, (px + 1) / out->w, (px + 1) % out->w, g * filter->c, col1);
                }
                hk__s8_conv_cols(col0, two ? col1 : NULL, k, w + (size_t)o0 * (size_t)k, bias ? bias + o0 : NULL,
                                 per_group, q->mult + o0, q->shift + o0, p, y0 + o0,
                                 two ? y0 + out->c + o0 : NULL);
            }
        }
    }
}

/* ---------------------------------------------------------------- depthwise */

/* The window taps of one output position along one axis that fall inside the input: [*k0, *k1). */
HK_INLINE void hk__s8_tap_range(int32_t origin, int32_t dilation, int32_t taps, int32_t size, int32_t *k0,
                                int32_t *k1)
{
    int32_t a, e;
    if (dilation == 1) {
        a = origin < 0 ? -origin : 0;
        e = origin + taps > size ? size - origin : taps;
    } else {
        a = 0;
        e = taps;
        while (a < taps && origin + a * dilation < 0) {
            a++;
        }
        while (e > a && origin + (e - 1) * dilation >= size) {
            e--;
        }
    }
    *k0 = a < taps ? a : taps;
    *k1 = e > *k0 ? e : *k0;
}

/* acc[0..3] += taps of four adjacent channels: sum over rows x cols taps of w * (x + off). xw points at
 * the input of the first tap (first channel), ww at its weights; taps are x_row/x_col (w_row/w_col)
 * int8s apart. With off = 0 (a literal) the compiler drops the four adds. */
HK_INLINE void hk__s8_dw_taps4(const int8_t *HK_RESTRICT xw, int32_t x_row, int32_t x_col,
                               const int8_t *HK_RESTRICT ww, int32_t w_row, int32_t w_col, int32_t rows,
                               int32_t cols, int32_t off, int32_t *HK_RESTRICT acc)
{
    int32_t s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *xp = xw + (size_t)r * (size_t)x_row;
        const int8_t *wp = ww + (size_t)r * (size_t)w_row;
        for (int32_t t = 0; t < cols; t++) {
            const int8_t *xt = xp + (size_t)t * (size_t)x_col, *wt = wp + (size_t)t * (size_t)w_col;
            s0 += wt[0] * (xt[0] + off);
            s1 += wt[1] * (xt[1] + off);
            s2 += wt[2] * (xt[2] + off);
            s3 += wt[3] * (xt[3] + off);
        }
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}

/* One channel's taps (same pointers and steps as hk__s8_dw_taps4). */
HK_INLINE int32_t hk__s8_dw_taps1(const int8_t *HK_RESTRICT xw, int32_t x_row, int32_t x_col,
                                  const int8_t *HK_RESTRICT ww, int32_t w_row, int32_t w_col, int32_t rows,
                                  int32_t cols, int32_t off)
{
    int32_t s = 0;
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *xp = xw + (size_t)r * (size_t)x_row;
        const int8_t *wp = ww + (size_t)r * (size_t)w_row;
        for (int32_t t = 0; t < cols; t++) {
            s += wp[(size_t)t * (size_t)w_col] * (xp[(size_t)t * (size_t)x_col] + off);
        }
    }
    return s;
}

/* Output channels [o, o + n) (n = 4: the register tile; n = 1: one channel, any multiplier) of every
 * pixel of batch b. Windows entirely inside the input take the input offset as one term,
 * in_off * sum(w), instead of an add per tap: sum w (x + off) = sum w x + off sum w exactly. */
HK_INLINE void hk__s8_dw_channels(const hk_s8_dw_params *p, const hk_s8_requant *q, const hk_s8_dims *in,
                                  const int8_t *HK_RESTRICT xb, const hk_s8_dims *filter,
                                  const int8_t *HK_RESTRICT w, const int32_t *HK_RESTRICT bias,
                                  const hk_s8_dims *out, int8_t *HK_RESTRICT yb, int32_t o, int32_t n)
{
    const int32_t nc = in->c, no = out->c, off = -p->input_zp, c = o / p->ch_mult;
    const int32_t zp = p->output_zp, lo = p->act.min, hi = p->act.max;
    const int32_t x_row = p->dilation.h * in->w * nc, x_col = p->dilation.w * nc;
    const int32_t w_row = filter->w * no, w_col = no, kh = filter->h, kw = filter->w;
    int32_t full_off[4] = {0, 0, 0, 0}; /* off * the sum of the whole window's weights, per channel */
    if (n == 4) {
        for (int32_t j = 0; j < 4; j++) {
            int32_t sw = 0;
            for (int32_t t = 0; t < kh * kw; t++) {
                sw += w[(size_t)t * (size_t)no + (size_t)(o + j)];
            }
            full_off[j] = off * sw;
        }
    }
    for (int32_t oy = 0; oy < out->h; oy++) {
        const int32_t iy0 = oy * p->stride.h - p->pad.h;
        int32_t ky0, ky1;
        hk__s8_tap_range(iy0, p->dilation.h, kh, in->h, &ky0, &ky1);
        for (int32_t ox = 0; ox < out->w; ox++) {
            const int32_t ix0 = ox * p->stride.w - p->pad.w;
            int32_t kx0, kx1;
            hk__s8_tap_range(ix0, p->dilation.w, kw, in->w, &kx0, &kx1);
            const int32_t rows = ky1 - ky0, cols = kx1 - kx0;
            const int full = rows == kh && cols == kw;
            int8_t *yp = yb + ((size_t)oy * (size_t)out->w + (size_t)ox) * (size_t)no + (size_t)o;
            int32_t acc[4] = {0, 0, 0, 0};
            if (rows > 0 && cols > 0) {
                /* The first in-bounds tap: no pointer ever points outside the arrays. */
                const int8_t *xw = xb + ((size_t)(iy0 + ky0 * p->dilation.h) * (size_t)in->w +
                                         (size_t)(ix0 + kx0 * p->dilation.w)) * (size_t)nc + (size_t)c;
                const int8_t *ww = w + ((size_t)ky0 * (size_t)kw + (size_t)kx0) * (size_t)no + (size_t)o;
                if (n == 4 && full) {
                    hk__s8_dw_taps4(xw, x_row, x_col, ww, w_row, w_col, kh, kw, 0, acc);
                    acc[0] += full_off[0];
                    acc[1] += full_off[1];
                    acc[2] += full_off[2];
                    acc[3] += full_off[3];
                } else if (n == 4) {
                    hk__s8_dw_taps4(xw, x_row, x_col, ww, w_row, w_col, rows, cols, off, acc);
                } else {
                    acc[0] = hk__s8_dw_taps1(xw, x_row, x_col, ww, w_row, w_col, rows, cols, off);
                }
            }
            for (int32_t j = 0; j < n; j++) {
                yp[j] = hk_s8_requantize(hk__s8_bias(bias, o + j, acc[j]), q->mult[o + j], q->shift[o + j], zp, lo,
                                         hi);
            }
        }
    }
}

/* DEPTHWISE_CONV_2D (see the top of the file). in {N, H, W, C}, filter {1, KH, KW, C*M},
 * out {N, OH, OW, C*M}; q holds C*M multipliers and shifts. */
HK_INLINE void hk_dwconv2d_s8(const hk_s8_dw_params *p, const hk_s8_requant *q, const hk_s8_dims *in,
                              const int8_t *HK_RESTRICT x, const hk_s8_dims *filter, const int8_t *HK_RESTRICT w,
                              const int32_t *HK_RESTRICT bias, const hk_s8_dims *out, int8_t *HK_RESTRICT y)
{
    const int32_t no = out->c;
    for (int32_t b = 0; b < out->n; b++) {
        const int8_t *xb = x + (size_t)b * (size_t)in->h * (size_t)in->w * (size_t)in->c;
        int8_t *yb = y + (size_t)b * (size_t)out->h * (size_t)out->w * (size_t)no;
        /* Blocks of 4 channels (multiplier 1), then single channels. One loop with a variable step:
         * a separate tail loop that is dead for constant shapes trips GCC's loop warnings. */
        for (int32_t o = 0; o < no;) {
            if (p->ch_mult == 1 && no - o >= 4) {
                hk__s8_dw_channels(p, q, in, xb, filter, w, bias, out, yb, o, 4);
                o += 4;
            } else {
                hk__s8_dw_channels(p, q, in, xb, filter, w, bias, out, yb, o, 1);
                o += 1;
            }
        }
    }
}

#endif
