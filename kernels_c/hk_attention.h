/* Vision-transformer operators on tokens: row-major [T][D] buffers (token t at t * D).
 *
 * hk_patches_f32           [C][H][W] image -> [T][C*ph*pw] tokens of non-overlapping ph x pw
 *                          patches (row-major patch order, each flattened c, dy, dx)
 * hk_token_dense_f32       the same dense layer on every token (weights in hk_dense.h's blocked
 *                          layout, so each token runs the blocked dense kernel and its asm/NEON path)
 * hk_attention_<exp>_f32   multi-head self-attention, exp in {libm, quake1, quake2}: the row
 *                          softmax of the scores is hk_softmax_<exp>_f32 of hk_exp.h
 * hk_token_mean_f32        [T][D] -> [D], the mean over the tokens
 *
 * Attention, for tokens x [T][D], H heads of dh = D / H features:
 *   qkv[t] = Wqkv x[t] + bqkv                 ([T][3D]: q | k | v; head h uses features h*dh..)
 *   s[j]   = scale * q_h[i] . k_h[j]           (scale = 1/sqrt(dh), passed in as a float)
 *   p      = softmax_exp(s)                    (one row of T scores at a time)
 *   o_h[i] = sum_j p[j] v_h[j]
 *   y[t]   = Wout o[t] + bout
 * Scratch is the caller's: HK_ATTENTION_SCRATCH(T, D) floats (qkv, o and one score row).
 * y may be x (in place): x is read only by the first projection. No malloc, no globals.
 *
 * Paths (hk_nn.h): the portable C below; x86-64 (HK_NN_X86, hk_attention_x86.h: several tokens per
 * pass over the token-dense weights, the heads in vector tiles), bit-exact with it. On the other
 * targets the token dense runs hk_dense_blocked_f32's path and the softmax hk_exp.h's. */
#ifndef HK_ATTENTION_H
#define HK_ATTENTION_H
#include "hk_dense.h" /* the token dense is the blocked dense kernel on every token */
#include "hk_exp.h"   /* the row softmax */
#include "hk_nn.h"
#include "hk_types.h"

#define HK_ATTENTION_SCRATCH(t, d) (4 * (t) * (d) + (t))

HK_INLINE void hk_patches_f32(const float *HK_RESTRICT x, hk_dims in, int ph, int pw, float *HK_RESTRICT y)
{
    const int gh = in.h / ph, gw = in.w / pw;
    const int dim = in.c * ph * pw;
    for (int gi = 0; gi < gh; gi++) {
        for (int gj = 0; gj < gw; gj++) {
            float *tok = y + (size_t)(gi * gw + gj) * (size_t)dim;
            for (int c = 0; c < in.c; c++) {
                for (int dy = 0; dy < ph; dy++) {
                    const float *row =
                        x + ((size_t)c * (size_t)in.h + (size_t)(gi * ph + dy)) * (size_t)in.w + (size_t)(gj * pw);
                    for (int dx = 0; dx < pw; dx++) {
                        *tok++ = row[dx];
                    }
                }
            }
        }
    }
}

HK_INLINE void hk_token_mean_f32(const float *HK_RESTRICT x, int t, int d, float *HK_RESTRICT y)
{
    for (int c = 0; c < d; c++) {
        float s = 0.0f;
        for (int i = 0; i < t; i++) {
            s += x[(size_t)i * (size_t)d + (size_t)c];
        }
        y[c] = s / (float)t;
    }
}

/* s[j] = scale * q . k_j for j < t; k_j = k + j * ld; dh features. Four keys at a time, so each
 * loaded q feature feeds four multiply-accumulates. */
HK_INLINE void hk__attn_scores_f32(const float *HK_RESTRICT q, const float *HK_RESTRICT k, int ld, int t, int dh,
                                   float scale, float *HK_RESTRICT s)
{
    int j = 0;
    for (; j + 4 <= t; j += 4) {
        const float *k0 = k + (size_t)j * (size_t)ld, *k1 = k0 + ld, *k2 = k1 + ld, *k3 = k2 + ld;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        for (int c = 0; c < dh; c++) {
            const float qc = q[c];
            HK_MAC_F32(a0, k0[c], qc);
            HK_MAC_F32(a1, k1[c], qc);
            HK_MAC_F32(a2, k2[c], qc);
            HK_MAC_F32(a3, k3[c], qc);
        }
        s[j] = a0 * scale;
        s[j + 1] = a1 * scale;
        s[j + 2] = a2 * scale;
        s[j + 3] = a3 * scale;
    }
    for (; j < t; j++) {
        const float *kj = k + (size_t)j * (size_t)ld;
        float a = 0.0f;
        for (int c = 0; c < dh; c++) {
            HK_MAC_F32(a, kj[c], q[c]);
        }
        s[j] = a * scale;
    }
}

/* o[c] = sum_j p[j] v_j[c] for c < dh; v_j = v + j * ld. Four features at a time. */
HK_INLINE void hk__attn_mix_f32(const float *HK_RESTRICT p, const float *HK_RESTRICT v, int ld, int t, int dh,
                                float *HK_RESTRICT o)
{
    int c = 0;
    for (; c + 4 <= dh; c += 4) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        const float *vc = v + c;
        for (int j = 0; j < t; j++) {
            const float pj = p[j];
            HK_MAC_F32(a0, vc[0], pj);
            HK_MAC_F32(a1, vc[1], pj);
            HK_MAC_F32(a2, vc[2], pj);
            HK_MAC_F32(a3, vc[3], pj);
            vc += ld;
        }
        o[c] = a0;
        o[c + 1] = a1;
        o[c + 2] = a2;
        o[c + 3] = a3;
    }
    for (; c < dh; c++) {
        float a = 0.0f;
        for (int j = 0; j < t; j++) {
            HK_MAC_F32(a, v[(size_t)j * (size_t)ld + (size_t)c], p[j]);
        }
        o[c] = a;
    }
}

/* ---------------------------------------------------------------- the ISA paths */
#if defined(HK_NN_X86)
#include "hk_attention_x86.h"
#endif

/* ---------------------------------------------------------------- the kernels: the best path */

HK_INLINE void hk_token_dense_f32(const float *HK_RESTRICT x, int t, int d_in, const float *HK_RESTRICT wb,
                                  const float *HK_RESTRICT b, float *HK_RESTRICT y, int d_out)
{
#if defined(HK_NN_X86)
    hk__token_dense_x86(x, t, d_in, wb, b, y, d_out);
    return;
#endif
    for (int i = 0; i < t; i++) {
        hk_dense_blocked_f32(x + (size_t)i * (size_t)d_in, d_in, wb, b, y + (size_t)i * (size_t)d_out, d_out, 0);
    }
}

/* The body of every variant; `exp` (0 libm, 1 quake1, 2 quake2) is a constant in each wrapper, so
 * after inlining only that softmax remains. */
HK_INLINE void hk__attention_f32(const float *x, int t, int d, int heads, const float *HK_RESTRICT wqkv,
                                 const float *HK_RESTRICT bqkv, const float *HK_RESTRICT wout,
                                 const float *HK_RESTRICT bout, float scale, float *y, float *HK_RESTRICT scratch,
                                 int exp)
{
    const int dh = d / heads, ld = 3 * d;
    float *qkv = scratch;                    /* [t][3d] */
    float *o = qkv + (size_t)t * (size_t)ld; /* [t][d]  */
    float *s = o + (size_t)t * (size_t)d;    /* [t]     */
    hk_token_dense_f32(x, t, d, wqkv, bqkv, qkv, ld);
#if defined(HK_NN_X86)
    if (hk__attention_heads_x86(qkv, t, d, heads, scale, o, exp)) {
        hk_token_dense_f32(o, t, d, wout, bout, y, d);
        return;
    }
#endif
    for (int h = 0; h < heads; h++) {
        const float *qh = qkv + h * dh, *kh = qkv + d + h * dh, *vh = qkv + 2 * d + h * dh;
        for (int i = 0; i < t; i++) {
            hk__attn_scores_f32(qh + (size_t)i * (size_t)ld, kh, ld, t, dh, scale, s);
            if (exp == 1) {
                hk_softmax_quake1_f32(s, s, t);
            } else if (exp == 2) {
                hk_softmax_quake2_f32(s, s, t);
            } else {
                hk_softmax_libm_f32(s, s, t);
            }
            hk__attn_mix_f32(s, vh, ld, t, dh, o + (size_t)i * (size_t)d + (size_t)(h * dh));
        }
    }
    hk_token_dense_f32(o, t, d, wout, bout, y, d);
}

#define HK__ATTENTION_VARIANT(name, e)                                                                             \
    HK_INLINE void hk_attention_##name##_f32(const float *x, int t, int d, int heads, const float *wqkv,           \
                                             const float *bqkv, const float *wout, const float *bout, float scale, \
                                             float *y, float *scratch)                                             \
    {                                                                                                              \
        hk__attention_f32(x, t, d, heads, wqkv, bqkv, wout, bout, scale, y, scratch, e);                           \
    }
HK__ATTENTION_VARIANT(libm, 0)
HK__ATTENTION_VARIANT(quake1, 1)
HK__ATTENTION_VARIANT(quake2, 2)
#undef HK__ATTENTION_VARIANT

#endif
