/* x86-64 path of the blocked conv (HK_NN_X86, hk_nn.h), included by hk_conv.h after its portable C.
 * Stride 1: 4 filters x 2 vectors of output pixels; a vector is 2 (AVX) or 1 (SSE2) runs of 4
 * adjacent pixels of a row, so 4-wide maps (4 x 4) fill a vector with two rows. Pixels left over in
 * a row, and other strides, take a 4-filter vector per pixel; the last block of fewer than 4
 * filters is scalar. Every output adds its products in the portable order (channel, kernel row,
 * kernel column): bit-exact with hk_conv2d_blocked_f32_c (hk_nn_x86.h says why;
 * tests/test_x86_paths.py checks it). */
#ifndef HK_CONV_X86_H
#define HK_CONV_X86_H
#ifndef HK_CONV_H
#error "hk_conv_x86.h is part of hk_conv.h (its portable code comes first): include hk_conv.h"
#endif
#include "hk_nn.h"
#include "hk_nn_x86.h"
#include "hk_types.h"

/* 4 filters x 2 vectors of output pixels, stride 1. Vector v holds the runs of 4 pixels whose
 * window origins are xq[2v], xq[2v + 1] (AVX; SSE2: xq[v] alone) and writes them to yq[..]; w is
 * the block's weights [C][k][k][4], b its 4 biases, plane the output plane size. */
HK_INLINE void hk__conv_tile_x86(const float *const *xq, float *const *yq, int C, int cs, int rs, int k,
                                 const float *HK_RESTRICT w, const float *HK_RESTRICT b, int plane, int relu)
{
    const hk__nv bb0 = hk__nv_set1(b[0]), bb1 = hk__nv_set1(b[1]), bb2 = hk__nv_set1(b[2]), bb3 = hk__nv_set1(b[3]);
    hk__nv a00 = bb0, a01 = bb0, a10 = bb1, a11 = bb1, a20 = bb2, a21 = bb2, a30 = bb3, a31 = bb3;
    const float *p0 = xq[0], *p1 = xq[HK__NQ - 1], *p2 = xq[HK__NQ], *p3 = xq[2 * HK__NQ - 1];
#define HK__CONV_TAP(o)                                                                        \
    do {                                                                                       \
        const hk__nv x0 = hk__nv_ld2(p0 + (o), p1 + (o)), x1 = hk__nv_ld2(p2 + (o), p3 + (o)); \
        const hk__nv w0 = hk__nv_set1(w[0]), w1 = hk__nv_set1(w[1]);                           \
        const hk__nv w2 = hk__nv_set1(w[2]), w3 = hk__nv_set1(w[3]);                           \
        w += 4;                                                                                \
        a00 = hk__nv_mac(a00, w0, x0);                                                         \
        a01 = hk__nv_mac(a01, w0, x1);                                                         \
        a10 = hk__nv_mac(a10, w1, x0);                                                         \
        a11 = hk__nv_mac(a11, w1, x1);                                                         \
        a20 = hk__nv_mac(a20, w2, x0);                                                         \
        a21 = hk__nv_mac(a21, w2, x1);                                                         \
        a30 = hk__nv_mac(a30, w3, x0);                                                         \
        a31 = hk__nv_mac(a31, w3, x1);                                                         \
    } while (0)
    for (int c = 0; c < C; c++) {
        const size_t oc = (size_t)c * (size_t)cs;
        if (k == 3) { /* written out: -O2 does not unroll the tap loops */
            const size_t r1 = oc + (size_t)rs, r2 = r1 + (size_t)rs;
            HK__CONV_TAP(oc);
            HK__CONV_TAP(oc + 1);
            HK__CONV_TAP(oc + 2);
            HK__CONV_TAP(r1);
            HK__CONV_TAP(r1 + 1);
            HK__CONV_TAP(r1 + 2);
            HK__CONV_TAP(r2);
            HK__CONV_TAP(r2 + 1);
            HK__CONV_TAP(r2 + 2);
            continue;
        }
        for (int ky = 0; ky < k; ky++) {
            const size_t oy = oc + (size_t)ky * (size_t)rs;
            for (int kx = 0; kx < k; kx++) {
                HK__CONV_TAP(oy + (size_t)kx);
            }
        }
    }
#undef HK__CONV_TAP
    float *q0 = yq[0], *q1 = yq[HK__NQ - 1], *q2 = yq[HK__NQ], *q3 = yq[2 * HK__NQ - 1];
    hk__nv_st2(q0, q1, hk__nv_act(a00, relu));
    hk__nv_st2(q2, q3, hk__nv_act(a01, relu));
    hk__nv_st2(q0 + plane, q1 + plane, hk__nv_act(a10, relu));
    hk__nv_st2(q2 + plane, q3 + plane, hk__nv_act(a11, relu));
    hk__nv_st2(q0 + 2 * plane, q1 + 2 * plane, hk__nv_act(a20, relu));
    hk__nv_st2(q2 + 2 * plane, q3 + 2 * plane, hk__nv_act(a21, relu));
    hk__nv_st2(q0 + 3 * plane, q1 + 3 * plane, hk__nv_act(a30, relu));
    hk__nv_st2(q2 + 3 * plane, q3 + 3 * plane, hk__nv_act(a31, relu));
}

/* 4 filters x 1 pixel (any stride): the 4 filters are the lanes of one 16-byte vector. */
HK_INLINE void hk__conv_px4_x86(const float *HK_RESTRICT x, int C, int cs, int rs, int k, const float *HK_RESTRICT w,
                                const float *HK_RESTRICT b, float *HK_RESTRICT y, int plane, int relu)
{
    __m128 a = _mm_loadu_ps(b);
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * (size_t)cs;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                a = hk__q_mac(a, _mm_loadu_ps(w), _mm_set1_ps(xr[kx]));
                w += 4;
            }
            xr += rs;
        }
    }
    float v[4];
    _mm_storeu_ps(v, hk__q_act(a, relu));
    y[0] = v[0];
    y[plane] = v[1];
    y[2 * plane] = v[2];
    y[3 * plane] = v[3];
}

/* nf (1..3) filters x 1 pixel, weights [C][k][k][nf]: scalar, in the portable order. */
HK_INLINE void hk__conv_px_tail_x86(const float *HK_RESTRICT x, int C, int cs, int rs, int k, int nf,
                                    const float *HK_RESTRICT w, const float *HK_RESTRICT b, float *HK_RESTRICT y,
                                    int plane, int relu)
{
    for (int j = 0; j < nf; j++) {
        const float *wj = w + j;
        float a = b[j];
        for (int c = 0; c < C; c++) {
            const float *xr = x + (size_t)c * (size_t)cs;
            for (int ky = 0; ky < k; ky++) {
                for (int kx = 0; kx < k; kx++) {
                    HK_MAC_F32(a, *wj, xr[kx]);
                    wj += nf;
                }
                xr += rs;
            }
        }
        y[(size_t)j * (size_t)plane] = hk_nn_act_f32(a, relu);
    }
}

/* One block of 4 filters, stride 1: every run of 4 adjacent output pixels (row-major), 2 vectors
 * per tile; a last partial tile repeats its last run (the same values written twice). */
HK_INLINE void hk__conv_block_s1_x86(const float *HK_RESTRICT xs, int cs, int rs, int C, int k,
                                     const float *HK_RESTRICT w, const float *HK_RESTRICT b, float *HK_RESTRICT y,
                                     int oh, int ow, int relu)
{
    const int plane = oh * ow, qpr = ow / 4, nq = oh * qpr;
    const float *xq[2 * HK__NQ];
    float *yq[2 * HK__NQ];
    for (int q0 = 0; q0 < nq; q0 += 2 * HK__NQ) {
        for (int j = 0; j < 2 * HK__NQ; j++) {
            const int q = q0 + j < nq ? q0 + j : nq - 1;
            const int oy = q / qpr, ox = (q % qpr) * 4;
            xq[j] = xs + (size_t)oy * (size_t)rs + (size_t)ox;
            yq[j] = y + (size_t)oy * (size_t)ow + (size_t)ox;
        }
        hk__conv_tile_x86(xq, yq, C, cs, rs, k, w, b, plane, relu);
    }
    for (int oy = 0; oy < oh; oy++) {
        for (int ox = qpr * 4; ox < ow; ox++) {
            hk__conv_px4_x86(xs + (size_t)oy * (size_t)rs + (size_t)ox, C, cs, rs, k, w, b,
                             y + (size_t)oy * (size_t)ow + (size_t)ox, plane, relu);
        }
    }
}

/* hk_conv2d_blocked_f32 on x86, from the (padded) source: window origin of output (0, 0) at xs,
 * channel stride cs, row stride rs (hk_conv.h's hk__conv_src). Must match hk__conv_blocked_scalar
 * (hk_conv2d_blocked_f32_c) bit for bit. */
HK_INLINE void hk__conv_blocked_x86(const float *HK_RESTRICT xs, int cs, int rs, int C, const float *HK_RESTRICT wb,
                                    const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out, int k, int stride,
                                    int relu)
{
    const int plane = out.h * out.w;
    const size_t taps = (size_t)C * (size_t)(k * k);
    for (int f0 = 0; f0 < out.c; f0 += 4) {
        const int nf = out.c - f0 < 4 ? out.c - f0 : 4;
        const float *wg = wb + (size_t)f0 * taps;
        float *yg = y + (size_t)f0 * (size_t)plane;
        if (nf == 4 && stride == 1) {
            if (k == 3) { /* a constant k: the tap loops unroll */
                hk__conv_block_s1_x86(xs, cs, rs, C, 3, wg, b + f0, yg, out.h, out.w, relu);
            } else {
                hk__conv_block_s1_x86(xs, cs, rs, C, k, wg, b + f0, yg, out.h, out.w, relu);
            }
            continue;
        }
        for (int oy = 0; oy < out.h; oy++) {
            for (int ox = 0; ox < out.w; ox++) {
                const float *xp = xs + (size_t)(oy * stride) * (size_t)rs + (size_t)(ox * stride);
                float *yp = yg + (size_t)oy * (size_t)out.w + (size_t)ox;
                if (nf == 4) {
                    hk__conv_px4_x86(xp, C, cs, rs, k, wg, b + f0, yp, plane, relu);
                } else {
                    hk__conv_px_tail_x86(xp, C, cs, rs, k, nf, wg, b + f0, yp, plane, relu);
                }
            }
        }
    }
}

#endif
