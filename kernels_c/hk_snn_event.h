/* Event-driven accumulation of spikes into membranes (docs/snn.md), the part of hk_snn.h that
 * touches weights: for each input spike, add that input's weight row to the membranes it reaches
 * (one synaptic operation per add, no multiplies). Layouts are those of hk_snn.h: spike maps
 * [H][W][ceil(C/32)] u32 words, membranes [H][W][F], conv weights [C][k][k][F], dense weights
 * [inputs][units] with the inputs in pooled [H][W][C] order. A layer may sum-pool its input spikes
 * (pool > 1): input pixel (y, x) feeds pooled pixel (y / pool, x / pool), a ragged edge is dropped;
 * the kernels walk the pooled pixels and skip a whole window without spikes. */
#ifndef HK_SNN_EVENT_H
#define HK_SNN_EVENT_H
#include "hk_nn.h"
#include "hk_types.h"

#define HK_SNN_MAX_KERNEL 7 /* conv kernel size limit: the per-pixel tap list lives on the stack */

/* The layer kernels stay out of line (HK_NOINLINE, hk_nn.h): inlined into the time loop they spill. */

/* A layer's weights: exactly one of w8 / w16 is set. */
typedef struct {
    const int8_t *w8;
    const int16_t *w16;
} hk_snn_weights;

/* ---------------------------------------------------------------- event-driven accumulation */
/* u[0..n) += r[0..n) (negate: -=). The only place weights meet membranes; unrolled by 4 because
 * rows are short (one per filter or unit) and the loop overhead would otherwise dominate. */
#define HK_SNN_ROW_LOOP(OP)            \
    do {                               \
        int i_ = 0;                    \
        for (; i_ + 4 <= n; i_ += 4) { \
            u[i_] OP r[i_];            \
            u[i_ + 1] OP r[i_ + 1];    \
            u[i_ + 2] OP r[i_ + 2];    \
            u[i_ + 3] OP r[i_ + 3];    \
        }                              \
        for (; i_ < n; i_++) {         \
            u[i_] OP r[i_];            \
        }                              \
    } while (0)

HK_INLINE void hk_snn_addrow_s16(int32_t *HK_RESTRICT u, const int16_t *HK_RESTRICT r, int n) { HK_SNN_ROW_LOOP(+=); }
HK_INLINE void hk_snn_subrow_s16(int32_t *HK_RESTRICT u, const int16_t *HK_RESTRICT r, int n) { HK_SNN_ROW_LOOP(-=); }
HK_INLINE void hk_snn_addrow_s8(int32_t *HK_RESTRICT u, const int8_t *HK_RESTRICT r, int n) { HK_SNN_ROW_LOOP(+=); }
HK_INLINE void hk_snn_subrow_s8(int32_t *HK_RESTRICT u, const int8_t *HK_RESTRICT r, int n) { HK_SNN_ROW_LOOP(-=); }

HK_INLINE void hk_snn_addrow_s32(int32_t *HK_RESTRICT u, hk_snn_weights w, size_t row, int n, int negate)
{
    if (w.w16 != NULL) {
        if (negate) {
            hk_snn_subrow_s16(u, w.w16 + row, n);
        } else {
            hk_snn_addrow_s16(u, w.w16 + row, n);
        }
    } else if (negate) {
        hk_snn_subrow_s8(u, w.w8 + row, n);
    } else {
        hk_snn_addrow_s8(u, w.w8 + row, n);
    }
}

/* OR of the spike words of the pool x pool input pixels of pooled pixel (py, px): 0 when none spiked. */
HK_INLINE uint32_t hk_snn_window_any(const uint32_t *bits, hk_dims in, int pool, int wpp, int py, int px)
{
    uint32_t any = 0;
    for (int dy = 0; dy < pool; dy++) {
        const uint32_t *row = bits + (size_t)((py * pool + dy) * in.w + px * pool) * (size_t)wpp;
        for (int j = 0; j < pool * wpp; j++) {
            any |= row[j];
        }
    }
    return any;
}

/* Dense layer: every spike of input channel c in the window of pooled pixel (py, px) adds row
 * ((py * PW + px) * C + c). Returns the synaptic operations done. */
HK_NOINLINE uint32_t hk_snn_dense_event_s32(const uint32_t *HK_RESTRICT bits, hk_dims in, int pool, hk_snn_weights w,
                                            int n_out, int32_t *HK_RESTRICT u, int negate)
{
    const int wpp = hk_nn_words(in.c);
    const int ph = in.h / pool, pw = in.w / pool;
    uint32_t synops = 0;
    for (int py = 0; py < ph; py++) {
        for (int px = 0; px < pw; px++) {
            const size_t base = (size_t)((py * pw + px) * in.c);
            if (hk_snn_window_any(bits, in, pool, wpp, py, px) == 0u) {
                continue;
            }
            for (int dy = 0; dy < pool; dy++) {
                for (int dx = 0; dx < pool; dx++) {
                    const uint32_t *pix = bits + (size_t)((py * pool + dy) * in.w + px * pool + dx) * (size_t)wpp;
                    for (int j = 0; j < wpp; j++) {
                        uint32_t word = pix[j];
                        while (word != 0u) {
                            const int c = 32 * j + hk_nn_ctz32(word);
                            word &= word - 1u;
                            hk_snn_addrow_s32(u, w, (base + (size_t)c) * (size_t)n_out, n_out, negate);
                            synops += (uint32_t)n_out;
                        }
                    }
                }
            }
        }
    }
    return synops;
}

/* Conv layer: a spike of channel c in the window of pooled pixel (py, px) adds w[c][ky][kx][0..F)
 * to the membranes of every output (oy, ox) with oy*s + ky - pt = py and ox*s + kx - pl = px.
 * The valid taps depend only on the pooled pixel, so they are listed once per pooled pixel. */
HK_NOINLINE uint32_t hk_snn_conv_event_s32(const uint32_t *HK_RESTRICT bits, hk_dims in, int pool, hk_snn_weights w,
                                           hk_dims out, hk_conv_params p, int32_t *HK_RESTRICT u, int negate)
{
    const int wpp = hk_nn_words(in.c);
    const int ph = in.h / pool, pw = in.w / pool;
    const int k = p.kernel, nf = out.c, s = p.stride;
    int tap_w[HK_SNN_MAX_KERNEL * HK_SNN_MAX_KERNEL], tap_u[HK_SNN_MAX_KERNEL * HK_SNN_MAX_KERNEL];
    uint32_t synops = 0;
    for (int py = 0; py < ph; py++) {
        for (int px = 0; px < pw; px++) {
            int n_taps = 0;
            if (hk_snn_window_any(bits, in, pool, wpp, py, px) == 0u) {
                continue;
            }
            for (int ky = 0; ky < k; ky++) {
                int oy = py + p.pad_top - ky;
                if (oy < 0) {
                    break; /* oy only decreases with ky */
                }
                if (s != 1) {
                    if (oy % s != 0) {
                        continue;
                    }
                    oy /= s;
                }
                if (oy >= out.h) {
                    continue;
                }
                for (int kx = 0; kx < k; kx++) {
                    int ox = px + p.pad_left - kx;
                    if (ox < 0) {
                        break;
                    }
                    if (s != 1) {
                        if (ox % s != 0) {
                            continue;
                        }
                        ox /= s;
                    }
                    if (ox >= out.w) {
                        continue;
                    }
                    tap_w[n_taps] = (ky * k + kx) * nf;
                    tap_u[n_taps] = (oy * out.w + ox) * nf;
                    n_taps++;
                }
            }
            for (int dy = 0; dy < pool; dy++) {
                for (int dx = 0; dx < pool; dx++) {
                    const uint32_t *pix = bits + (size_t)((py * pool + dy) * in.w + px * pool + dx) * (size_t)wpp;
                    for (int j = 0; j < wpp; j++) {
                        uint32_t word = pix[j];
                        while (word != 0u) {
                            const int c = 32 * j + hk_nn_ctz32(word);
                            const size_t wc = (size_t)(c * k * k * nf);
                            word &= word - 1u;
                            for (int t = 0; t < n_taps; t++) {
                                hk_snn_addrow_s32(u + tap_u[t], w, wc + (size_t)tap_w[t], nf, negate);
                            }
                            synops += (uint32_t)(n_taps * nf);
                        }
                    }
                }
            }
        }
    }
    return synops;
}

#endif
