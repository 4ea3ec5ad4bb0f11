/* x86-64 SIMD paths of the dense, conv, attention (and layer norm) kernels: SSE2 (every x86-64:
 * 4 lanes), AVX where the build enables it (8 lanes). Sections, each compiled once its inputs are in:
 * the vector helpers; dense, token dense and conv (where hk_dense.h includes this header); the
 * attention heads (hk_attention.h includes it again after hk_exp.h, whose softmax they call); the
 * layer norm (when hk_norm.h is in; not dispatched by hk_norm.h yet).
 *
 * Bit-exact with the portable C of the same build. Every output is one accumulator that starts
 * at its bias (0 for attention), adds its products in the portable C's order (dense: inputs in
 * order; conv: channel, kernel row, kernel column; attention: features, then keys) and goes
 * through the same ReLU; the vectors only hold several outputs side by side (the 8 rows of a
 * dense block pair, 8 output pixels, 8 keys, 8 features). The multiply-accumulate fuses exactly
 * when HK_MAC_F32 does: an FMA where the compiler defines __FP_FAST_FMAF (-mfma, -march=native
 * on a core with FMA), else a product and a sum, each rounded. A build where __FP_FAST_FMAF is set
 * without __FMA__ (AVX-512F with -mno-fma) keeps the portable C. The ReLU is MAXPS(0, v), which
 * gives v for -0 and NaN as the C's (v < 0 ? 0 : v). Which NaN comes out of an operation on two
 * NaNs is the compiler's choice of operand order, here as in the portable C.
 *
 *   dense (hk_dense_blocked_f32): up to 4 vectors of rows per pass over x (4 independent
 *     accumulator chains); AVX loads a block pair's 8 weights of one input as two 16-byte halves.
 *   token dense (hk_token_dense_f32): 2 vectors of rows x 4 tokens per tile, each weight vector
 *     loaded once for the 4 tokens (a last group of fewer tokens repeats its last one).
 *   conv (hk_conv2d_blocked_f32, stride 1): 4 filters x 2 vectors of output pixels; a vector is
 *     2 (AVX) or 1 (SSE2) runs of 4 adjacent pixels of a row, so 4-wide maps (4 x 4) fill a vector
 *     with two rows. Pixels left over in a row, and other strides, take a 4-filter vector per
 *     pixel; the last block of fewer than 4 filters is scalar.
 *   attention heads: the head's keys transposed into a stack buffer (8 keys' features in one
 *     load), scores 4 queries x 16 keys per tile, the rows' softmaxes together, p . v 4 queries x
 *     16 (or 12) features per tile.
 *   layer norm: 8 rows at a time, one per lane (the sums are sequential chains).
 * Define HK_NN_PORTABLE to use the portable C (as on every other target). */
#ifndef HK_X86_H
#define HK_X86_H
#if !defined(HK_NN_PORTABLE) && defined(__GNUC__) && defined(__x86_64__) && defined(__SSE2__) && \
    (defined(__FMA__) || !defined(__FP_FAST_FMAF))
#include <immintrin.h>
#define HK_NN_X86 1

/* ---- one 16-byte quad (4 rows of a weight block, 4 adjacent pixels, 4 features) ---- */
HK_INLINE __m128 hk__q_mac(__m128 acc, __m128 a, __m128 b)
{
#if defined(__FP_FAST_FMAF)
    return _mm_fmadd_ps(a, b, acc);
#else
    return _mm_add_ps(acc, _mm_mul_ps(a, b));
#endif
}

HK_INLINE __m128 hk__q_act(__m128 v, int relu)
{
    return relu ? _mm_max_ps(_mm_setzero_ps(), v) : v;
}

/* ---- a vector: HK__NQ quads (2 with AVX, 1 with SSE2), each from its own address ---- */
#if defined(__AVX__)
#define HK__NQ 2
typedef __m256 hk__nv;
HK_INLINE hk__nv hk__nv_ld2(const float *p0, const float *p1)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p0)), _mm_loadu_ps(p1), 1);
}
/* the quad at p and the one `next` floats further (the next weight block) */
HK_INLINE hk__nv hk__nv_ldb(const float *p, size_t next) { return hk__nv_ld2(p, p + next); }
HK_INLINE hk__nv hk__nv_ld(const float *p) { return _mm256_loadu_ps(p); }
HK_INLINE void hk__nv_st2(float *p0, float *p1, hk__nv v)
{
    _mm_storeu_ps(p0, _mm256_castps256_ps128(v));
    _mm_storeu_ps(p1, _mm256_extractf128_ps(v, 1));
}
HK_INLINE void hk__nv_st(float *p, hk__nv v) { _mm256_storeu_ps(p, v); }
HK_INLINE hk__nv hk__nv_set1(float v) { return _mm256_set1_ps(v); }
HK_INLINE hk__nv hk__nv_zero(void) { return _mm256_setzero_ps(); }
HK_INLINE hk__nv hk__nv_mul(hk__nv a, hk__nv b) { return _mm256_mul_ps(a, b); }
HK_INLINE hk__nv hk__nv_mac(hk__nv acc, hk__nv a, hk__nv b)
{
#if defined(__FP_FAST_FMAF)
    return _mm256_fmadd_ps(a, b, acc);
#else
    return _mm256_add_ps(acc, _mm256_mul_ps(a, b));
#endif
}
HK_INLINE hk__nv hk__nv_act(hk__nv v, int relu)
{
    return relu ? _mm256_max_ps(_mm256_setzero_ps(), v) : v;
}
#else
#define HK__NQ 1
typedef __m128 hk__nv;
HK_INLINE hk__nv hk__nv_ld2(const float *p0, const float *p1)
{
    (void)p1;
    return _mm_loadu_ps(p0);
}
HK_INLINE hk__nv hk__nv_ldb(const float *p, size_t next)
{
    (void)next; /* p + next may lie past the weights: not formed */
    return _mm_loadu_ps(p);
}
HK_INLINE hk__nv hk__nv_ld(const float *p) { return _mm_loadu_ps(p); }
HK_INLINE void hk__nv_st2(float *p0, float *p1, hk__nv v)
{
    (void)p1;
    _mm_storeu_ps(p0, v);
}
HK_INLINE void hk__nv_st(float *p, hk__nv v) { _mm_storeu_ps(p, v); }
HK_INLINE hk__nv hk__nv_set1(float v) { return _mm_set1_ps(v); }
HK_INLINE hk__nv hk__nv_zero(void) { return _mm_setzero_ps(); }
HK_INLINE hk__nv hk__nv_mul(hk__nv a, hk__nv b) { return _mm_mul_ps(a, b); }
HK_INLINE hk__nv hk__nv_mac(hk__nv acc, hk__nv a, hk__nv b) { return hk__q_mac(acc, a, b); }
HK_INLINE hk__nv hk__nv_act(hk__nv v, int relu) { return hk__q_act(v, relu); }
#endif
#define HK__NW (4 * HK__NQ) /* floats per vector */
#endif /* x86-64 */
#endif /* HK_X86_H */

/* ---------------------------------------------------------------- dense, token dense, conv
 * Compiled where hk_dense.h includes this header (after HK_MAC_F32, hk__nn_act, hk__dense_tail_c). */
#if defined(HK_NN_X86) && defined(HK_DENSE_H) && !defined(HK_X86_DENSE_H)
#define HK_X86_DENSE_H

/* ---------------------------------------------------------------- dense, blocked weights */

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

/* hk_dense_blocked_f32 on x86. */
HK_INLINE void hk__dense_blocked_x86(const float *HK_RESTRICT x, int n_in, const float *HK_RESTRICT wb,
                                     const float *HK_RESTRICT b, float *HK_RESTRICT y, int n_out, int relu)
{
    const float *xr[1];
    float *yr[1];
    xr[0] = x;
    yr[0] = y;
    hk__dense_rows_x86(xr, 1, n_in, wb, b, yr, n_out, relu);
}

/* hk_token_dense_f32 on x86: t tokens of d_in -> d_out, four tokens per pass over the weights (a
 * last group of fewer repeats its last token: the same outputs written twice). */
HK_INLINE void hk__token_dense_x86(const float *HK_RESTRICT x, int t, int d_in, const float *HK_RESTRICT wb,
                                   const float *HK_RESTRICT b, float *HK_RESTRICT y, int d_out)
{
    if (t == 1) {
        hk__dense_blocked_x86(x, d_in, wb, b, y, d_out, 0);
        return;
    }
    for (int i = 0; i < t; i += 4) {
        const float *xr[4];
        float *yr[4];
        for (int k = 0; k < 4; k++) {
            const int r = i + k < t ? i + k : t - 1;
            xr[k] = x + (size_t)r * (size_t)d_in;
            yr[k] = y + (size_t)r * (size_t)d_out;
        }
        hk__dense_rows_x86(xr, 4, d_in, wb, b, yr, d_out, 0);
    }
}

/* ---------------------------------------------------------------- conv, filter-blocked weights */

/* 4 filters x 2 vectors of output pixels, stride 1. Vector v holds the runs of 4 pixels whose
 * window origins are xq[2v], xq[2v + 1] (AVX; SSE2: xq[v] alone) and writes them to yq[..]; w is
 * the block's weights [C][k][k][4], b its 4 biases, plane the output plane size. */
HK_INLINE void hk__conv_tile_x86(const float *const *xq, float *const *yq, int C, int cs, int rs, int k,
                                 const float *HK_RESTRICT w, const float *HK_RESTRICT b, int plane, int relu)
{
    const hk__nv bb0 = hk__nv_set1(b[0]), bb1 = hk__nv_set1(b[1]), bb2 = hk__nv_set1(b[2]), bb3 = hk__nv_set1(b[3]);
    hk__nv a00 = bb0, a01 = bb0, a10 = bb1, a11 = bb1, a20 = bb2, a21 = bb2, a30 = bb3, a31 = bb3;
    const float *p0 = xq[0], *p1 = xq[HK__NQ - 1], *p2 = xq[HK__NQ], *p3 = xq[2 * HK__NQ - 1];
#define HK__CONV_TAP(o)                                                                                    \
    do {                                                                                                   \
        const hk__nv x0 = hk__nv_ld2(p0 + (o), p1 + (o)), x1 = hk__nv_ld2(p2 + (o), p3 + (o));             \
        const hk__nv w0 = hk__nv_set1(w[0]), w1 = hk__nv_set1(w[1]);                                       \
        const hk__nv w2 = hk__nv_set1(w[2]), w3 = hk__nv_set1(w[3]);                                       \
        w += 4;                                                                                            \
        a00 = hk__nv_mac(a00, w0, x0);                                                                     \
        a01 = hk__nv_mac(a01, w0, x1);                                                                     \
        a10 = hk__nv_mac(a10, w1, x0);                                                                     \
        a11 = hk__nv_mac(a11, w1, x1);                                                                     \
        a20 = hk__nv_mac(a20, w2, x0);                                                                     \
        a21 = hk__nv_mac(a21, w2, x1);                                                                     \
        a30 = hk__nv_mac(a30, w3, x0);                                                                     \
        a31 = hk__nv_mac(a31, w3, x1);                                                                     \
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
        y[(size_t)j * (size_t)plane] = hk__nn_act(a, relu);
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
 * channel stride cs, row stride rs (hk_conv.h's hk__conv_src). */
HK_INLINE void hk__conv_blocked_x86(const float *HK_RESTRICT xs, int cs, int rs, int C, const float *HK_RESTRICT wb,
                                        const float *HK_RESTRICT b, float *HK_RESTRICT y, hk_dims out, int k,
                                        int stride, int relu)
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

#endif /* dense, token dense, conv */

/* ---------------------------------------------------------------- attention heads
 * Compiled once hk_exp.h (the softmax) and hk_attention.h are both in: hk_attention.h includes this
 * header again after hk_exp.h. */
#if defined(HK_X86_DENSE_H) && defined(HK_ATTENTION_H) && defined(HK_EXP_H) && !defined(HK_X86_ATTENTION_H)
#define HK_X86_ATTENTION_H
#define HK_X86_ATTN_STACK 8192 /* floats on the stack: the head's keys transposed, and its scores */

/* Scores of 4 queries (head features at q[k]) against nvk vectors of keys (columns of kt, row
 * stride tp): s_k[j] = (sum_c k_j[c] q_k[c]) * scale, written to srow[k]. */
HK_INLINE void hk__attn_scores_tile_x86(const float *const *q, const float *HK_RESTRICT kt, int tp, int nvk, int dh,
                                        hk__nv vscale, float *const *srow)
{
    const hk__nv z = hk__nv_zero();
    hk__nv a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
    const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
    for (int c = 0; c < dh; c++) {
        const float *kc = kt + (size_t)c * (size_t)tp;
        const hk__nv k0 = hk__nv_ld(kc);
        const hk__nv s0 = hk__nv_set1(q0[c]), s1 = hk__nv_set1(q1[c]);
        const hk__nv s2 = hk__nv_set1(q2[c]), s3 = hk__nv_set1(q3[c]);
        a00 = hk__nv_mac(a00, k0, s0);
        a10 = hk__nv_mac(a10, k0, s1);
        a20 = hk__nv_mac(a20, k0, s2);
        a30 = hk__nv_mac(a30, k0, s3);
        if (nvk > 1) {
            const hk__nv k1 = hk__nv_ld(kc + HK__NW);
            a01 = hk__nv_mac(a01, k1, s0);
            a11 = hk__nv_mac(a11, k1, s1);
            a21 = hk__nv_mac(a21, k1, s2);
            a31 = hk__nv_mac(a31, k1, s3);
        }
    }
    hk__nv_st(srow[0], hk__nv_mul(a00, vscale));
    hk__nv_st(srow[1], hk__nv_mul(a10, vscale));
    hk__nv_st(srow[2], hk__nv_mul(a20, vscale));
    hk__nv_st(srow[3], hk__nv_mul(a30, vscale));
    if (nvk > 1) {
        hk__nv_st(srow[0] + HK__NW, hk__nv_mul(a01, vscale));
        hk__nv_st(srow[1] + HK__NW, hk__nv_mul(a11, vscale));
        hk__nv_st(srow[2] + HK__NW, hk__nv_mul(a21, vscale));
        hk__nv_st(srow[3] + HK__NW, hk__nv_mul(a31, vscale));
    }
}

/* o_k[c..] = sum_r p_k[r] v_r[c..] for 4 queries (score rows p[k], outputs o[k]) over nv vectors
 * and nqd quads of features from v (nv + nqd <= 2). */
HK_INLINE void hk__attn_mix_tile_x86(const float *const *p, const float *HK_RESTRICT v, int ld, int t, int nv, int nqd,
                                     float *const *o)
{
    const hk__nv z = hk__nv_zero();
    const __m128 zq = _mm_setzero_ps();
    hk__nv a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
    __m128 c0 = zq, c1 = zq, c2 = zq, c3 = zq;
    const float *p0 = p[0], *p1 = p[1], *p2 = p[2], *p3 = p[3];
    for (int r = 0; r < t; r++) {
        const float *vr = v + (size_t)r * (size_t)ld;
        if (nv > 0) {
            const hk__nv v0 = hk__nv_ld(vr);
            a00 = hk__nv_mac(a00, v0, hk__nv_set1(p0[r]));
            a10 = hk__nv_mac(a10, v0, hk__nv_set1(p1[r]));
            a20 = hk__nv_mac(a20, v0, hk__nv_set1(p2[r]));
            a30 = hk__nv_mac(a30, v0, hk__nv_set1(p3[r]));
        }
        if (nv > 1) {
            const hk__nv v1 = hk__nv_ld(vr + HK__NW);
            a01 = hk__nv_mac(a01, v1, hk__nv_set1(p0[r]));
            a11 = hk__nv_mac(a11, v1, hk__nv_set1(p1[r]));
            a21 = hk__nv_mac(a21, v1, hk__nv_set1(p2[r]));
            a31 = hk__nv_mac(a31, v1, hk__nv_set1(p3[r]));
        }
        if (nqd > 0) {
            const __m128 vq = _mm_loadu_ps(vr + nv * HK__NW);
            c0 = hk__q_mac(c0, vq, _mm_set1_ps(p0[r]));
            c1 = hk__q_mac(c1, vq, _mm_set1_ps(p1[r]));
            c2 = hk__q_mac(c2, vq, _mm_set1_ps(p2[r]));
            c3 = hk__q_mac(c3, vq, _mm_set1_ps(p3[r]));
        }
    }
    if (nv > 0) {
        hk__nv_st(o[0], a00);
        hk__nv_st(o[1], a10);
        hk__nv_st(o[2], a20);
        hk__nv_st(o[3], a30);
    }
    if (nv > 1) {
        hk__nv_st(o[0] + HK__NW, a01);
        hk__nv_st(o[1] + HK__NW, a11);
        hk__nv_st(o[2] + HK__NW, a21);
        hk__nv_st(o[3] + HK__NW, a31);
    }
    if (nqd > 0) {
        _mm_storeu_ps(o[0] + nv * HK__NW, c0);
        _mm_storeu_ps(o[1] + nv * HK__NW, c1);
        _mm_storeu_ps(o[2] + nv * HK__NW, c2);
        _mm_storeu_ps(o[3] + nv * HK__NW, c3);
    }
}

/* The heads of hk_attention_<exp>_f32 (exp 0 libm, 1 quake1, 2 quake2): from qkv [t][3d], writes
 * o [t][d]. Per head: the keys transposed (kt[c][j] = k_j[c], zero-padded to tp keys, a whole number
 * of vectors), every score (4 queries x 2 vectors of keys per tile), the row softmaxes (together),
 * then p . v (4 queries x 2 vectors, or a vector and a quad, of features per tile; the last dh % 4
 * features scalar). A last group of fewer than 4 queries repeats its last query (the same values
 * written twice). Returns 0, having done nothing, when a head's keys and scores do not fit the
 * stack buffer: the caller then runs the portable loops. */
HK_INLINE int hk__attention_heads_x86(const float *HK_RESTRICT qkv, int t, int d, int heads, float scale,
                                      float *HK_RESTRICT o, int exp)
{
    const int dh = d / heads, ld = 3 * d;
    const int tp = t + (HK__NW - t % HK__NW) % HK__NW; /* keys rounded up to whole vectors */
    if ((size_t)(dh + t) * (size_t)tp > HK_X86_ATTN_STACK) {
        return 0;
    }
    float buf[HK_X86_ATTN_STACK];
    float *kt = buf, *sc = buf + (size_t)dh * (size_t)tp; /* sc[i * tp + j]: score of query i, key j */
    const hk__nv vscale = hk__nv_set1(scale);
    for (int h = 0; h < heads; h++) {
        const float *qh = qkv + h * dh, *kh = qkv + d + h * dh, *vh = qkv + 2 * d + h * dh;
        float *oh = o + h * dh;
        for (int c = 0; c < dh; c++) {
            float *row = kt + (size_t)c * (size_t)tp;
            for (int j = 0; j < t; j++) {
                row[j] = kh[(size_t)j * (size_t)ld + (size_t)c];
            }
            for (int j = t; j < tp; j++) {
                row[j] = 0.0f;
            }
        }
        for (int i = 0; i < t; i += 4) {
            const float *q[4];
            float *sr[4];
            for (int k = 0; k < 4; k++) {
                const int r = i + k < t ? i + k : t - 1;
                q[k] = qh + (size_t)r * (size_t)ld;
                sr[k] = sc + (size_t)r * (size_t)tp;
            }
            int j = 0;
            for (; j + 2 * HK__NW <= tp; j += 2 * HK__NW) {
                float *srj[4] = {sr[0] + j, sr[1] + j, sr[2] + j, sr[3] + j};
                hk__attn_scores_tile_x86(q, kt + j, tp, 2, dh, vscale, srj);
            }
            if (j < tp) {
                float *srj[4] = {sr[0] + j, sr[1] + j, sr[2] + j, sr[3] + j};
                hk__attn_scores_tile_x86(q, kt + j, tp, 1, dh, vscale, srj);
            }
        }
#if defined(HK_EXP_X86)
        if (exp != 0) { /* the rows together (the same bits as one at a time) */
            hk__softmax_rows_quake_x86(sc, tp, t, t, exp);
        }
#endif
        for (int i = 0; i < t; i++) {
            float *si = sc + (size_t)i * (size_t)tp;
            if (exp == 0) {
                hk_softmax_libm_f32(si, si, t);
#if !defined(HK_EXP_X86)
            } else if (exp == 1) {
                hk_softmax_quake1_f32(si, si, t);
            } else {
                hk_softmax_quake2_f32(si, si, t);
#endif
            }
        }
        for (int i = 0; i < t; i += 4) {
            const float *p[4];
            float *orow[4];
            for (int k = 0; k < 4; k++) {
                const int r = i + k < t ? i + k : t - 1;
                p[k] = sc + (size_t)r * (size_t)tp;
                orow[k] = oh + (size_t)r * (size_t)d;
            }
            int c = 0;
            for (; c + 2 * HK__NW <= dh; c += 2 * HK__NW) {
                float *oc[4] = {orow[0] + c, orow[1] + c, orow[2] + c, orow[3] + c};
                hk__attn_mix_tile_x86(p, vh + c, ld, t, 2, 0, oc);
            }
            if (HK__NW > 4 && c + HK__NW + 4 <= dh) {
                float *oc[4] = {orow[0] + c, orow[1] + c, orow[2] + c, orow[3] + c};
                hk__attn_mix_tile_x86(p, vh + c, ld, t, 1, 1, oc);
                c += HK__NW + 4;
            } else if (c + HK__NW <= dh) {
                float *oc[4] = {orow[0] + c, orow[1] + c, orow[2] + c, orow[3] + c};
                hk__attn_mix_tile_x86(p, vh + c, ld, t, 1, 0, oc);
                c += HK__NW;
            }
            if (c + 4 <= dh) {
                float *oc[4] = {orow[0] + c, orow[1] + c, orow[2] + c, orow[3] + c};
                hk__attn_mix_tile_x86(p, vh + c, ld, t, 0, 1, oc);
                c += 4;
            }
            for (; c < dh; c++) {
                for (int k = 0; k < 4; k++) {
                    float a = 0.0f;
                    for (int r = 0; r < t; r++) {
                        HK_MAC_F32(a, vh[(size_t)r * (size_t)ld + (size_t)c], p[k][r]);
                    }
                    orow[k][c] = a;
                }
            }
        }
    }
    return 1;
}
#endif

/* ---------------------------------------------------------------- layer norm
 * hk_layernorm_f32 on x86, 8 (AVX) or 4 rows at a time, one per lane: the row sums and the sums of
 * squares are sequential chains of adds (in the portable order), so one row at a time is latency-
 * bound (a ViT's 16 rows of 24 take ~450 ns; this ~6x less). The rows are copied transposed into a
 * stack buffer, so both passes read a vector per feature. The expressions are those of hk_norm.h
 * on vectors: bit-exact in ISO C mode (-std=c99, every hilkit build), where nothing is contracted
 * into an FMA. Returns 0, having done nothing, for d > HK_X86_NORM_DMAX and in a GNU C mode with
 * FMA available (contraction on by default).
 * Not yet dispatched: hk_norm.h would include this header after defining HK_LAYERNORM_EPS and call
 *     if (hk__layernorm_x86(x, y, rows, d, weight, bias)) return;
 * first (tests/test_x86_paths.py checks the two agree). */
#if defined(HK_NN_X86) && defined(HK_NORM_H) && defined(HK_LAYERNORM_EPS) && !defined(HK_X86_NORM_H)
#define HK_X86_NORM_H
#define HK_X86_NORM_DMAX 256

HK_INLINE int hk__layernorm_x86(const float *x, float *y, int rows, int d, const float *HK_RESTRICT weight,
                                const float *HK_RESTRICT bias)
{
#if !defined(__STRICT_ANSI__) && defined(__FP_FAST_FMAF)
    /* A GNU C mode contracts a * b + c into FMAs where the compiler sees fit (-ffp-contract=fast
     * is its default there): the portable loop's bits then follow choices vectors cannot mirror. */
    return 0;
#endif
    if (d > HK_X86_NORM_DMAX) {
        return 0;
    }
    /* two vectors of rows per pass (two independent chains): xt[(2 i + g) * HK__NW + lane] holds
     * x[r0 + g * HK__NW + lane][i] */
    float xt[HK_X86_NORM_DMAX * 2 * HK__NW];
    const hk__nv vd = hk__nv_set1((float)d), veps = hk__nv_set1(HK_LAYERNORM_EPS), one = hk__nv_set1(1.0f);
    for (int r0 = 0; r0 < rows; r0 += 2 * HK__NW) {
        const int nr = rows - r0 < 2 * HK__NW ? rows - r0 : 2 * HK__NW;
        for (int l = 0; l < 2 * HK__NW; l++) {
            const float *xr = x + (size_t)(r0 + (l < nr ? l : 0)) * (size_t)d; /* spare lanes: a copy */
            float *col = xt + (l / HK__NW) * HK__NW + l % HK__NW;
            for (int i = 0; i < d; i++) {
                col[i * 2 * HK__NW] = xr[i];
            }
        }
        hk__nv s0 = hk__nv_zero(), s1 = s0;
        for (int i = 0; i < d; i++) {
            s0 = s0 + hk__nv_ld(xt + 2 * i * HK__NW);
            s1 = s1 + hk__nv_ld(xt + (2 * i + 1) * HK__NW);
        }
        const hk__nv mu0 = s0 / vd, mu1 = s1 / vd;
        hk__nv v0 = hk__nv_zero(), v1 = v0;
        for (int i = 0; i < d; i++) {
            const hk__nv c0 = hk__nv_ld(xt + 2 * i * HK__NW) - mu0;
            const hk__nv c1 = hk__nv_ld(xt + (2 * i + 1) * HK__NW) - mu1;
            v0 += c0 * c0;
            v1 += c1 * c1;
        }
#if defined(__AVX__)
        const hk__nv rstd0 = one / _mm256_sqrt_ps(v0 / vd + veps), rstd1 = one / _mm256_sqrt_ps(v1 / vd + veps);
#else
        const hk__nv rstd0 = one / _mm_sqrt_ps(v0 / vd + veps), rstd1 = one / _mm_sqrt_ps(v1 / vd + veps);
#endif
        float mus[2 * HK__NW], rs[2 * HK__NW];
        hk__nv_st(mus, mu0);
        hk__nv_st(mus + HK__NW, mu1);
        hk__nv_st(rs, rstd0);
        hk__nv_st(rs + HK__NW, rstd1);
        for (int l = 0; l < nr; l++) {
            const float *xr = x + (size_t)(r0 + l) * (size_t)d;
            float *yr = y + (size_t)(r0 + l) * (size_t)d;
            const float mur = mus[l], rr = rs[l];
            const hk__nv vmu = hk__nv_set1(mur), vr = hk__nv_set1(rr);
            int i = 0;
            for (; i + HK__NW <= d; i += HK__NW) {
                hk__nv_st(yr + i, (hk__nv_ld(xr + i) - vmu) * vr * hk__nv_ld(weight + i) + hk__nv_ld(bias + i));
            }
            for (; i < d; i++) {
                yr[i] = (xr[i] - mur) * rr * weight[i] + bias[i];
            }
        }
    }
    return 1;
}
#endif
