/* x86-64 paths of the vision-transformer operators (HK_NN_X86, hk_nn.h), included by hk_attention.h
 * after its portable C:
 *   token dense (hk_token_dense_f32): 2 vectors of rows x 4 tokens per tile, each weight vector
 *     loaded once for the 4 tokens (a last group of fewer tokens repeats its last one);
 *   attention heads: the head's keys transposed into a stack buffer (8 keys' features in one
 *     load), scores 4 queries x 16 keys per tile, the rows' softmaxes together, p . v 4 queries x
 *     16 (or 12) features per tile.
 * Every sum adds its products in the portable order (features, then keys), from 0, through the
 * multiply-accumulate of HK_MAC_F32, and the softmaxes are hk_exp.h's: bit-exact with the portable
 * C (hk_nn_x86.h says why; tests/test_x86_paths.py checks it). */
#ifndef HK_ATTENTION_X86_H
#define HK_ATTENTION_X86_H
#ifndef HK_ATTENTION_H
#error "hk_attention_x86.h is part of hk_attention.h (its portable code comes first): include hk_attention.h"
#endif
#include "hk_dense.h" /* hk__dense_rows_x86, hk__dense_blocked_x86 (hk_dense_x86.h) */
#include "hk_exp.h"   /* the row softmaxes */
#include "hk_nn.h"
#include "hk_nn_x86.h"
#include "hk_types.h"

/* hk_token_dense_f32 on x86: t tokens of d_in -> d_out, four tokens per pass over the weights (a
 * last group of fewer repeats its last token: the same outputs written twice). Must match
 * hk_dense_blocked_f32_c on each token bit for bit. */
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
 * stack buffer: the caller then runs the portable loops (hk__attn_scores_f32, the row softmax,
 * hk__attn_mix_f32 in hk__attention_f32), which this must match bit for bit. */
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
