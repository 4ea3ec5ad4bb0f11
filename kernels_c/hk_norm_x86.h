/* x86-64 path of the layer norm (HK_NN_X86, hk_nn.h), included by hk_norm.h after its portable C.
 *
 * Two vectors of rows per pass (16 with AVX, 8 with SSE2), one row per lane: the row sums and the
 * sums of squares are sequential chains of adds (in the portable order), so one row at a time is
 * latency-bound (digits-vit's layer norm, 16 rows of 24: 467 -> 181 ns, docs/interchange.md). The rows are copied
 * transposed into a stack buffer, so both passes read a vector per feature. The expressions are
 * those of hk_layernorm_f32_c on vectors: bit-exact in ISO C mode (-std=c99, every hilkit build),
 * where nothing is contracted into an FMA (tests/test_x86_paths.py checks it). */
#ifndef HK_NORM_X86_H
#define HK_NORM_X86_H
#ifndef HK_NORM_H
#error "hk_norm_x86.h is part of hk_norm.h (its portable code comes first): include hk_norm.h"
#endif
#include "hk_nn.h"
#include "hk_nn_x86.h"
#include "hk_types.h"

#define HK_X86_NORM_DMAX 256

/* hk_layernorm_f32 on x86; must match hk_layernorm_f32_c bit for bit. Returns 0, having done
 * nothing, for d > HK_X86_NORM_DMAX and in a GNU C mode with FMA available (contraction on by
 * default): the caller then runs the portable loop. eps: hk_norm.h's HK_LAYERNORM_EPS. */
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
