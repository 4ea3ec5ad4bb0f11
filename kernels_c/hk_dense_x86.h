/* x86-64 path of the blocked dense kernel (HK_NN_X86, hk_nn.h), included by hk_dense.h after its
 * portable C: up to 4 vectors of rows per pass over x (4 independent accumulator chains); AVX loads
 * a block pair's 8 weights of one input as two 16-byte halves. Bit-exact with
 * hk_dense_blocked_f32_c (hk_nn_x86.h says why; tests/test_x86_paths.py checks it). The rows of
 * several tokens at once (hk__dense_rows_x86 with nt = 4) serve hk_token_dense_f32
 * (hk_attention_x86.h). */
#ifndef HK_DENSE_X86_H
#define HK_DENSE_X86_H
#ifndef HK_DENSE_H
#error "hk_dense_x86.h is part of hk_dense.h (its portable code comes first): include hk_dense.h"
#endif
#include "hk_nn.h"
#include "hk_nn_x86.h"
#include "hk_types.h"

/* nv vectors of rows (each HK__NQ consecutive weight blocks of 4 rows, starting at block wb) for
 * nt tokens, token k's input at xr[k] and its outputs at yr[k] (offset o of the layer's outputs),
 * nv * nt <= 8. Called with constant nv and nt: each inlined copy keeps only its accumulators
 * a<vector><token>. */
HK_INLINE void hk__dense_tile_x86(const float *const *xr, int nt, int n_in, const float *HK_RESTRICT wb, int nv,
                                  const float *HK_RESTRICT b, float *const *yr, int o, int relu)
{
    const size_t bs = (size_t)4 * (size_t)n_in; /* floats per block */
    const size_t vs = (size_t)HK__NQ * bs;      /* floats per vector of blocks */
    const float *w0 = wb, *w1 = nv > 1 ? wb + vs : wb, *w2 = nv > 2 ? wb + 2 * vs : wb, *w3 = nv > 3 ? wb + 3 * vs : wb;
    const hk__nv b0 = hk__nv_ld(b), b1 = nv > 1 ? hk__nv_ld(b + HK__NW) : b0;
    const hk__nv b2 = nv > 2 ? hk__nv_ld(b + 2 * HK__NW) : b0, b3 = nv > 3 ? hk__nv_ld(b + 3 * HK__NW) : b0;
    hk__nv a00 = b0, a01 = b0, a02 = b0, a03 = b0, a10 = b1, a11 = b1, a12 = b1, a13 = b1;
    hk__nv a20 = b2, a21 = b2, a30 = b3, a31 = b3;
    const float *x0 = xr[0], *x1 = nt > 1 ? xr[1] : x0, *x2 = nt > 2 ? xr[2] : x0, *x3 = nt > 3 ? xr[3] : x0;
    for (int i = 0; i < n_in; i++) {
        const size_t oi = (size_t)4 * (size_t)i;
        const hk__nv v0 = hk__nv_ldb(w0 + oi, bs);
        const hk__nv s0 = hk__nv_set1(x0[i]);
        const hk__nv s1 = nt > 1 ? hk__nv_set1(x1[i]) : s0;
        const hk__nv s2 = nt > 2 ? hk__nv_set1(x2[i]) : s0, s3 = nt > 3 ? hk__nv_set1(x3[i]) : s0;
        a00 = hk__nv_mac(a00, v0, s0);
        if (nt > 1) {
            a01 = hk__nv_mac(a01, v0, s1);
        }
        if (nt > 2) {
            a02 = hk__nv_mac(a02, v0, s2);
        }
        if (nt > 3) {
            a03 = hk__nv_mac(a03, v0, s3);
        }
        if (nv > 1) {
            const hk__nv v1 = hk__nv_ldb(w1 + oi, bs);
            a10 = hk__nv_mac(a10, v1, s0);
            if (nt > 1) {
                a11 = hk__nv_mac(a11, v1, s1);
            }
            if (nt > 2) {
                a12 = hk__nv_mac(a12, v1, s2);
            }
            if (nt > 3) {
                a13 = hk__nv_mac(a13, v1, s3);
            }
        }
        if (nv > 2) {
            const hk__nv v2 = hk__nv_ldb(w2 + oi, bs);
            a20 = hk__nv_mac(a20, v2, s0);
            if (nt > 1) {
                a21 = hk__nv_mac(a21, v2, s1);
            }
        }
        if (nv > 3) {
            const hk__nv v3 = hk__nv_ldb(w3 + oi, bs);
            a30 = hk__nv_mac(a30, v3, s0);
            if (nt > 1) {
                a31 = hk__nv_mac(a31, v3, s1);
            }
        }
    }
    float *y0 = yr[0] + o, *y1 = yr[nt > 1 ? 1 : 0] + o, *y2 = yr[nt > 2 ? 2 : 0] + o, *y3 = yr[nt > 3 ? 3 : 0] + o;
    hk__nv_st(y0, hk__nv_act(a00, relu));
    if (nt > 1) {
        hk__nv_st(y1, hk__nv_act(a01, relu));
    }
    if (nt > 2) {
        hk__nv_st(y2, hk__nv_act(a02, relu));
    }
    if (nt > 3) {
        hk__nv_st(y3, hk__nv_act(a03, relu));
    }
    if (nv > 1) {
        hk__nv_st(y0 + HK__NW, hk__nv_act(a10, relu));
        if (nt > 1) {
            hk__nv_st(y1 + HK__NW, hk__nv_act(a11, relu));
        }
        if (nt > 2) {
            hk__nv_st(y2 + HK__NW, hk__nv_act(a12, relu));
        }
        if (nt > 3) {
            hk__nv_st(y3 + HK__NW, hk__nv_act(a13, relu));
        }
    }
    if (nv > 2) {
        hk__nv_st(y0 + 2 * HK__NW, hk__nv_act(a20, relu));
        if (nt > 1) {
            hk__nv_st(y1 + 2 * HK__NW, hk__nv_act(a21, relu));
        }
    }
    if (nv > 3) {
        hk__nv_st(y0 + 3 * HK__NW, hk__nv_act(a30, relu));
        if (nt > 1) {
            hk__nv_st(y1 + 3 * HK__NW, hk__nv_act(a31, relu));
        }
    }
}

/* One block of 4 rows for one token, in a 16-byte vector (the odd block of an AVX build). */
HK_INLINE void hk__dense_quad_x86(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT wb,
                                  const float *HK_RESTRICT b, float *HK_RESTRICT y, int relu)
{
    __m128 a = _mm_loadu_ps(b);
    for (int i = 0; i < n_in; i++) {
        a = hk__q_mac(a, _mm_loadu_ps(wb + (size_t)4 * (size_t)i), _mm_set1_ps(x[i]));
    }
    _mm_storeu_ps(y, hk__q_act(a, relu));
}

/* Every row of the layer for nt (1 or 4, constant) tokens: inputs at xr[k], outputs at yr[k]. */
HK_INLINE void hk__dense_rows_x86(const float *const *xr, int nt, int n_in, const float *HK_RESTRICT wb,
                                  const float *HK_RESTRICT b, float *const *yr, int n_out, int relu)
{
    const int nblk = n_out / 4, nvec = nblk / HK__NQ;
    const size_t vs = (size_t)HK__NW * (size_t)n_in;
    int v = 0;
    if (nt == 1) { /* four vectors per pass: four independent accumulator chains */
        for (; v + 4 <= nvec; v += 4) {
            hk__dense_tile_x86(xr, 1, n_in, wb + (size_t)v * vs, 4, b + v * HK__NW, yr, v * HK__NW, relu);
        }
        if (nvec - v == 3) {
            hk__dense_tile_x86(xr, 1, n_in, wb + (size_t)v * vs, 3, b + v * HK__NW, yr, v * HK__NW, relu);
        } else if (nvec - v == 2) {
            hk__dense_tile_x86(xr, 1, n_in, wb + (size_t)v * vs, 2, b + v * HK__NW, yr, v * HK__NW, relu);
        } else if (nvec - v == 1) {
            hk__dense_tile_x86(xr, 1, n_in, wb + (size_t)v * vs, 1, b + v * HK__NW, yr, v * HK__NW, relu);
        }
    } else {
        for (; v + 2 <= nvec; v += 2) {
            hk__dense_tile_x86(xr, nt, n_in, wb + (size_t)v * vs, 2, b + v * HK__NW, yr, v * HK__NW, relu);
        }
        if (v < nvec) {
            hk__dense_tile_x86(xr, nt, n_in, wb + (size_t)v * vs, 1, b + v * HK__NW, yr, v * HK__NW, relu);
        }
    }
    const int o4 = nvec * HK__NW, n4 = nblk * 4;
    for (int t = 0; t < nt; t++) {
        if (o4 < n4) { /* AVX, odd number of blocks: the last full block */
            hk__dense_quad_x86(xr[t], n_in, wb + (size_t)o4 * (size_t)n_in, b + o4, yr[t] + o4, relu);
        }
        if (n4 < n_out) {
            hk__dense_tail_c(xr[t], n_in, wb + (size_t)n4 * (size_t)n_in, n_out - n4, b + n4, yr[t] + n4, relu);
        }
    }
}

/* hk_dense_blocked_f32 on x86: must match hk_dense_blocked_f32_c bit for bit. */
HK_INLINE void hk__dense_blocked_x86(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT wb,
                                     const float *HK_RESTRICT b, float *HK_RESTRICT y, int n_out, int relu)
{
    const float *xr[1];
    float *yr[1];
    xr[0] = x;
    yr[0] = y;
    hk__dense_rows_x86(xr, 1, n_in, wb, b, yr, n_out, relu);
}

#endif
