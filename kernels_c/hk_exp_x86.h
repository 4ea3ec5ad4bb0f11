/* x86-64 SIMD paths of the QuAKE kernels (SSE2, which every x86-64 has: 4 lanes; AVX2 where the
 * build enables it: 8 lanes; HK_EXP_X86), included by hk_exp.h after its portable C.
 *
 * The same float32 operations as the portable C, lane by lane, so the results are bit-exact with
 * it (x86 does not flush subnormals unless the program sets MXCSR's FTZ/DAZ, which these kernels
 * never do):
 *   - products pinned against FMA contraction (an empty asm, as HK_NOFUSE);
 *   - the clamp to the bits of +inf is MINPS (t < h ? t : h, so NaN gives h, as the C ternary) and
 *     the saturation MAXPS with 0 (t > 0 ? t : 0, NaN gives 0) before CVTTPS2DQ, which is then
 *     in range: every t is below 2^31 (at most the bits of +inf, or about those of 1 in softmax);
 *   - the quake2 correction with PMULUDQ (32 x 32 -> 64 of the even lanes; the odd lanes shifted
 *     down), floor(floor(F (2^32 - F) / 2^32) K / 2^32) exactly as the uint64 C;
 *   - softmax: the max ignores NaN (MAXPS(x, m)) and a NaN flag sends the row to the portable
 *     code, as does a max too large to fold (or +inf, or all -inf); accumulator j of the portable
 *     code (elements i with i % 8 == j) is lane j of the AVX2 accumulator (SSE2: lanes of two);
 *   - divisions are DIVPS (IEEE, as the scalar divide).
 * Tails (n % 8 or n % 4 elements) run the portable code. x86-64 only: on i386 the portable code
 * may keep x87 excess precision, which SIMD would not reproduce. */
#ifndef HK_EXP_X86_H
#define HK_EXP_X86_H
#ifndef HK_EXP_H
#error "hk_exp_x86.h is part of hk_exp.h (its portable code comes first): include hk_exp.h"
#endif
#include <immintrin.h>
#include <math.h>

#include "hk_types.h"

#if defined(__AVX2__)
#define HK__XW 8 /* lanes */
typedef __m256 hk__xf;
typedef __m256i hk__xi;
HK_INLINE hk__xf hk__xf_ld(const float *p) { return _mm256_loadu_ps(p); }
HK_INLINE void hk__xf_st(float *p, hk__xf v) { _mm256_storeu_ps(p, v); }
HK_INLINE hk__xf hk__xf_set1(float v) { return _mm256_set1_ps(v); }
HK_INLINE hk__xf hk__xf_add(hk__xf a, hk__xf b) { return _mm256_add_ps(a, b); }
HK_INLINE hk__xf hk__xf_mul(hk__xf a, hk__xf b) { return _mm256_mul_ps(a, b); }
HK_INLINE hk__xf hk__xf_div(hk__xf a, hk__xf b) { return _mm256_div_ps(a, b); }
HK_INLINE hk__xf hk__xf_min(hk__xf a, hk__xf b) { return _mm256_min_ps(a, b); }
HK_INLINE hk__xf hk__xf_max(hk__xf a, hk__xf b) { return _mm256_max_ps(a, b); }
HK_INLINE hk__xf hk__xf_unord(hk__xf a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
HK_INLINE hk__xf hk__xf_or(hk__xf a, hk__xf b) { return _mm256_or_ps(a, b); }
/* v where x is not NaN, else x */
HK_INLINE hk__xf hk__xf_keep_nan(hk__xf x, hk__xf v) { return _mm256_blendv_ps(x, v, _mm256_cmp_ps(x, x, _CMP_ORD_Q)); }
HK_INLINE int hk__xf_any(hk__xf m) { return _mm256_movemask_ps(m) != 0; }
HK_INLINE float hk__xf_hmax(hk__xf v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
HK_INLINE hk__xi hk__xf_sat_u32(hk__xf t) { return _mm256_cvttps_epi32(_mm256_max_ps(t, _mm256_setzero_ps())); }
HK_INLINE hk__xf hk__xi_as_f(hk__xi u) { return _mm256_castsi256_ps(u); }
HK_INLINE hk__xi hk__q2fix_x(hk__xi u)
{
    const hk__xi k = _mm256_set1_epi32((int)HK_QUAKE2_K);
    const hk__xi f = _mm256_slli_epi32(u, 9);
    const hk__xi g = _mm256_sub_epi32(_mm256_setzero_si256(), f);
    const hk__xi pe = _mm256_srli_epi64(_mm256_mul_epu32(f, g), 32);
    const hk__xi po = _mm256_srli_epi64(_mm256_mul_epu32(_mm256_srli_epi64(f, 32), _mm256_srli_epi64(g, 32)), 32);
    const hk__xi ce = _mm256_srli_epi64(_mm256_mul_epu32(pe, k), 32);
    const hk__xi co = _mm256_and_si256(_mm256_mul_epu32(po, k), _mm256_set1_epi64x((long long)0xFFFFFFFF00000000ull));
    return _mm256_sub_epi32(u, _mm256_or_si256(ce, co));
}
#else
#define HK__XW 4
typedef __m128 hk__xf;
typedef __m128i hk__xi;
HK_INLINE hk__xf hk__xf_ld(const float *p) { return _mm_loadu_ps(p); }
HK_INLINE void hk__xf_st(float *p, hk__xf v) { _mm_storeu_ps(p, v); }
HK_INLINE hk__xf hk__xf_set1(float v) { return _mm_set1_ps(v); }
HK_INLINE hk__xf hk__xf_add(hk__xf a, hk__xf b) { return _mm_add_ps(a, b); }
HK_INLINE hk__xf hk__xf_mul(hk__xf a, hk__xf b) { return _mm_mul_ps(a, b); }
HK_INLINE hk__xf hk__xf_div(hk__xf a, hk__xf b) { return _mm_div_ps(a, b); }
HK_INLINE hk__xf hk__xf_min(hk__xf a, hk__xf b) { return _mm_min_ps(a, b); }
HK_INLINE hk__xf hk__xf_max(hk__xf a, hk__xf b) { return _mm_max_ps(a, b); }
HK_INLINE hk__xf hk__xf_unord(hk__xf a) { return _mm_cmpunord_ps(a, a); }
HK_INLINE hk__xf hk__xf_or(hk__xf a, hk__xf b) { return _mm_or_ps(a, b); }
HK_INLINE hk__xf hk__xf_keep_nan(hk__xf x, hk__xf v)
{
    const hk__xf ord = _mm_cmpord_ps(x, x);
    return _mm_or_ps(_mm_and_ps(ord, v), _mm_andnot_ps(ord, x));
}
HK_INLINE int hk__xf_any(hk__xf m) { return _mm_movemask_ps(m) != 0; }
HK_INLINE float hk__xf_hmax(hk__xf m)
{
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
HK_INLINE hk__xi hk__xf_sat_u32(hk__xf t) { return _mm_cvttps_epi32(_mm_max_ps(t, _mm_setzero_ps())); }
HK_INLINE hk__xf hk__xi_as_f(hk__xi u) { return _mm_castsi128_ps(u); }
HK_INLINE hk__xi hk__q2fix_x(hk__xi u)
{
    const hk__xi k = _mm_set1_epi32((int)HK_QUAKE2_K);
    const hk__xi f = _mm_slli_epi32(u, 9);
    const hk__xi g = _mm_sub_epi32(_mm_setzero_si128(), f);
    const hk__xi pe = _mm_srli_epi64(_mm_mul_epu32(f, g), 32);
    const hk__xi po = _mm_srli_epi64(_mm_mul_epu32(_mm_srli_epi64(f, 32), _mm_srli_epi64(g, 32)), 32);
    const hk__xi ce = _mm_srli_epi64(_mm_mul_epu32(pe, k), 32);
    const hk__xi co = _mm_and_si128(_mm_mul_epu32(po, k), _mm_set1_epi64x((long long)0xFFFFFFFF00000000ull));
    return _mm_sub_epi32(u, _mm_or_si128(ce, co));
}
#endif

/* c1 * x + c0 in two roundings: the empty asm keeps the product out of an FMA. */
HK_INLINE hk__xf hk__affine_x(hk__xf c1, hk__xf x, hk__xf c0)
{
    hk__xf p = hk__xf_mul(c1, x);
    __asm__("" : "+x"(p));
    return hk__xf_add(p, c0);
}

/* e^x from t (already clamped where it can overflow): the saturated bits, quake2-corrected. */
HK_INLINE hk__xf hk__quake_from_t_x(hk__xf t, int order)
{
    hk__xi u = hk__xf_sat_u32(t);
    if (order == 2) {
        u = hk__q2fix_x(u);
    }
    return hk__xi_as_f(u);
}

/* Softmax. The vector part only runs when the max folds (finite, |max| <= 256, no NaN): then every
 * t is finite or -inf (a -inf input) and below 2^31, and no element needs the NaN check. */
/* hk_softmax_quake<order>_f32: must match hk__softmax_quake_c bit for bit. */
HK_INLINE void hk__softmax_quake_x86(const float *x, float *y, int n, int order)
{
    if (n <= 0) {
        return;
    }
    const int nv = n - n % HK__XW;
    int i;
    hk__xf vm = hk__xf_set1(-INFINITY), vnan = hk__xf_set1(0.0f);
    for (i = 0; i < nv; i += HK__XW) {
        const hk__xf v = hk__xf_ld(x + i);
        vm = hk__xf_max(v, vm); /* v > m ? v : m: a NaN v is skipped */
        vnan = hk__xf_or(vnan, hk__xf_unord(v));
    }
    float m = hk__xf_hmax(vm);
    int nan = hk__xf_any(vnan);
    for (i = nv; i < n; i++) {
        m = x[i] > m ? x[i] : m;
        nan |= x[i] != x[i];
    }
    float c0;
    if (nan || !hk__softmax_fold(m, order, &c0)) {
        hk__softmax_quake_c(x, y, n, order); /* NaN, +inf, all -inf, or |max| too large to fold */
        return;
    }
    const hk__xf vc1 = hk__xf_set1(HK_QUAKE_C1), vc0 = hk__xf_set1(c0);
    const int n8 = n & ~7;
    float a[8];
#if HK__XW == 8
    hk__xf acc = hk__xf_set1(0.0f); /* lane j: accumulator j */
    for (i = 0; i + 16 <= n8; i += 16) {
        const hk__xf e0 = hk__quake_from_t_x(hk__affine_x(vc1, hk__xf_ld(x + i), vc0), order);
        const hk__xf e1 = hk__quake_from_t_x(hk__affine_x(vc1, hk__xf_ld(x + i + 8), vc0), order);
        hk__xf_st(y + i, e0);
        hk__xf_st(y + i + 8, e1);
        acc = hk__xf_add(hk__xf_add(acc, e0), e1);
    }
    for (; i < n8; i += 8) {
        const hk__xf e0 = hk__quake_from_t_x(hk__affine_x(vc1, hk__xf_ld(x + i), vc0), order);
        hk__xf_st(y + i, e0);
        acc = hk__xf_add(acc, e0);
    }
    hk__xf_st(a, acc);
#else
    hk__xf lo = hk__xf_set1(0.0f), hi = lo; /* accumulators 0..3 and 4..7 */
    for (i = 0; i < n8; i += 8) {
        const hk__xf e0 = hk__quake_from_t_x(hk__affine_x(vc1, hk__xf_ld(x + i), vc0), order);
        const hk__xf e1 = hk__quake_from_t_x(hk__affine_x(vc1, hk__xf_ld(x + i + 4), vc0), order);
        hk__xf_st(y + i, e0);
        hk__xf_st(y + i + 4, e1);
        lo = hk__xf_add(lo, e0);
        hi = hk__xf_add(hi, e1);
    }
    hk__xf_st(a, lo);
    hk__xf_st(a + 4, hi);
#endif
    const float st = hk__softmax_exp_c(x, y, n8, n, m, c0, 1, order, a);
    const float r = hk__softmax_recip(a, st);
    const hk__xf vr = hk__xf_set1(r);
    for (i = 0; i < nv; i += HK__XW) {
        hk__xf_st(y + i, hk__xf_mul(hk__xf_ld(y + i), vr));
    }
    hk__scale_c(y, nv, n, r);
}

/* Softmax of `rows` rows of n floats, row r at s + r * stride, in place: each row exactly as
 * hk__softmax_quake_x86 (and so as the portable C), but the rows go through each pass together
 * (the max of every row, then every exp pass, every 1/sum, every scale), so a core overlaps the
 * rows' short dependency chains: attention's rows of 16 scores are latency-bound one at a time. */
HK_INLINE void hk__softmax_rows_quake_x86(float *s, int stride, int rows, int n, int order)
{
    if (n <= 0) {
        return;
    }
    const int nv = n - n % HK__XW, n8 = n & ~7;
    const hk__xf vc1 = hk__xf_set1(HK_QUAKE_C1);
    for (int r0 = 0; r0 < rows; r0 += 8) {
        const int nr = rows - r0 < 8 ? rows - r0 : 8;
        float *base = s + (size_t)r0 * (size_t)stride;
        float m[8], c0[8], st[8], rc[8], a[8][8];
        int ok[8];
        for (int r = 0; r < nr; r++) { /* the maxima */
            const float *x = base + (size_t)r * (size_t)stride;
            hk__xf vm = hk__xf_set1(-INFINITY), vnan = hk__xf_set1(0.0f);
            int i;
            for (i = 0; i < nv; i += HK__XW) {
                const hk__xf v = hk__xf_ld(x + i);
                vm = hk__xf_max(v, vm);
                vnan = hk__xf_or(vnan, hk__xf_unord(v));
            }
            float mr = hk__xf_hmax(vm);
            int nan = hk__xf_any(vnan);
            for (i = nv; i < n; i++) {
                mr = x[i] > mr ? x[i] : mr;
                nan |= x[i] != x[i];
            }
            m[r] = mr;
            ok[r] = !nan && hk__softmax_fold(mr, order, &c0[r]);
        }
        for (int r = 0; r < nr; r++) { /* the exp passes */
            float *x = base + (size_t)r * (size_t)stride;
            if (!ok[r]) {
                hk__softmax_quake_c(x, x, n, order); /* NaN, +inf, all -inf, or |max| too large */
                continue;
            }
            const hk__xf vc0 = hk__xf_set1(c0[r]);
            int i;
#if HK__XW == 8
            hk__xf acc = hk__xf_set1(0.0f);
            for (i = 0; i < n8; i += 8) {
                const hk__xf e = hk__quake_from_t_x(hk__affine_x(vc1, hk__xf_ld(x + i), vc0), order);
                hk__xf_st(x + i, e);
                acc = hk__xf_add(acc, e);
            }
            hk__xf_st(a[r], acc);
#else
            hk__xf lo = hk__xf_set1(0.0f), hi = lo;
            for (i = 0; i < n8; i += 8) {
                const hk__xf e0 = hk__quake_from_t_x(hk__affine_x(vc1, hk__xf_ld(x + i), vc0), order);
                const hk__xf e1 = hk__quake_from_t_x(hk__affine_x(vc1, hk__xf_ld(x + i + 4), vc0), order);
                hk__xf_st(x + i, e0);
                hk__xf_st(x + i + 4, e1);
                lo = hk__xf_add(lo, e0);
                hi = hk__xf_add(hi, e1);
            }
            hk__xf_st(a[r], lo);
            hk__xf_st(a[r] + 4, hi);
#endif
            st[r] = hk__softmax_exp_c(x, x, n8, n, m[r], c0[r], 1, order, a[r]);
        }
        for (int r = 0; r < nr; r++) { /* 1 / sum */
            rc[r] = ok[r] ? hk__softmax_recip(a[r], st[r]) : 1.0f;
        }
        for (int r = 0; r < nr; r++) { /* the scale passes */
            if (ok[r]) {
                float *x = base + (size_t)r * (size_t)stride;
                const hk__xf vr = hk__xf_set1(rc[r]);
                for (int i = 0; i < nv; i += HK__XW) {
                    hk__xf_st(x + i, hk__xf_mul(hk__xf_ld(x + i), vr));
                }
                hk__scale_c(x, nv, n, rc[r]);
            }
        }
    }
}

/* Elementwise kernels: op 0 exp, 1 logistic, 2 gelu, 3 gelu_tanh (the portable code's constants). */
HK_INLINE hk__xf hk__eltwise_x(hk__xf xv, int op, int order)
{
    const hk__xf c0 = hk__xf_set1(order == 1 ? HK_QUAKE1_C0 : HK_QUAKE2_C0);
    const hk__xf one = hk__xf_set1(1.0f);
    hk__xf t;
    if (op == 0) {
        t = hk__affine_x(hk__xf_set1(HK_QUAKE_C1), xv, c0);
    } else if (op == 1) {
        t = hk__affine_x(hk__xf_set1(-HK_QUAKE_C1), xv, c0);
    } else if (op == 2) {
        t = hk__affine_x(hk__xf_set1(-HK_GELU_K * HK_QUAKE_C1), xv, c0);
    } else {
        const hk__xf q = hk__affine_x(hk__xf_set1(HK_QUAKE_C1 * HK_GELU_TANH_B), hk__xf_mul(xv, xv),
                                      hk__xf_set1(HK_QUAKE_C1 * HK_GELU_TANH_A));
        t = hk__affine_x(q, xv, c0);
    }
    const hk__xf e = hk__quake_from_t_x(hk__xf_min(t, hk__xf_set1(HK_QUAKE_T_INF)), order);
    if (op == 0) {
        return hk__xf_keep_nan(xv, e);
    }
    if (op == 1) {
        return hk__xf_keep_nan(xv, hk__xf_div(one, hk__xf_add(one, e)));
    }
    return hk__xf_div(xv, hk__xf_add(one, e));
}

/* hk_exp/logistic/gelu/gelu_tanh_quake<order>_f32 (op 0..3): must match hk__eltwise_quake_c
 * bit for bit. */
HK_INLINE void hk__eltwise_quake_x86(const float *x, float *y, int n, int op, int order)
{
    const int nv = n - n % HK__XW;
    int i;
    for (i = 0; i < nv; i += HK__XW) {
        hk__xf_st(y + i, hk__eltwise_x(hk__xf_ld(x + i), op, order));
    }
    if (i < n) {
        hk__eltwise_quake_c(x, y, i, n, op, order); /* the tail */
    }
}

#endif
