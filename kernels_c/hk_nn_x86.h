/* x86-64 vector primitives of the NN kernels' x86 paths (hk_dense_x86.h, hk_conv_x86.h,
 * hk_attention_x86.h, hk_norm_x86.h), under HK_NN_X86 (hk_nn.h): SSE2 (every x86-64: 4 lanes), AVX
 * where the build enables it (8 lanes).
 *
 * The paths they serve are bit-exact with the portable C of the same build. Every output is one
 * accumulator that starts at its bias (0 for attention), adds its products in the portable C's
 * order and goes through the same ReLU; the vectors only hold several outputs side by side. The
 * multiply-accumulate fuses exactly when HK_MAC_F32 does: an FMA where the compiler defines
 * __FP_FAST_FMAF (-mfma, -march=native on a core with FMA), else a product and a sum, each rounded
 * (hk_nn.h keeps the portable C where __FP_FAST_FMAF is set without __FMA__). The ReLU is MAXPS(0,
 * v), which gives v for -0 and NaN as the C's (v < 0 ? 0 : v). Which NaN comes out of an operation
 * on two NaNs is the compiler's choice of operand order, here as in the portable C. */
#ifndef HK_NN_X86_H
#define HK_NN_X86_H
#include <immintrin.h>

#include "hk_types.h"

/* ---- one 16-byte quad (4 rows of a weight block, 4 adjacent pixels, 4 features) ---- */
HK_INLINE __m128 hk__q_mac(__m128 acc, __m128 a, __m128 b)
{
#if defined(__FP_FAST_FMAF)
    return _mm_fmadd_ps(a, b, acc);
#else
    return _mm_add_ps(acc, _mm_mul_ps(a, b));
#endif
}

HK_INLINE __m128 hk__q_act(__m128 v, int relu) { return relu ? _mm_max_ps(_mm_setzero_ps(), v) : v; }

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
HK_INLINE hk__nv hk__nv_act(hk__nv v, int relu) { return relu ? _mm256_max_ps(_mm256_setzero_ps(), v) : v; }
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
#endif
