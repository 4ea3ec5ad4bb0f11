/* Binary-kernel spiking convolution (docs/stdp.md): stacked same-padded, stride-1 conv layers of
 * integrate-and-fire / leaky neurons whose kernels are +/-1, stored one bit per weight, fed by
 * binary spikes stored one bit per neuron. The input current of a neuron is
 *
 *     I = sum_taps w * s = (#active inputs under a +1) - (#active under a -1) = 2 popcount(P & K) - popcount(P)
 *
 * where P is the packed receptive field (the spikes of the k x k x C window, gathered once per
 * pixel and shared by every filter) and K the filter's packed kernel: one AND and one popcount per
 * 32 synapses. popcount(P) is also the pixel's synaptic-operation count (x F filters). A bit-sliced
 * form of the same sum (kernels transposed to one F-bit filter mask per synapse, each active input
 * added into a 32-lane bit-sliced counter) does work in proportion to the active inputs instead;
 * the code generator picks one per layer.
 *
 * A layer may take a residual input: the spikes of the layer two back are appended to the window
 * after the direct source's channels, so the skip path is summed into the same neurons through its
 * own binary kernels (a conv over the concatenation).
 *
 * The same layer with int8 kernels, for comparison and for real-valued STDP kernels: an
 * event-driven kernel (each input spike of the window adds its weight row to the F membranes) and a
 * plain dense one (unpack the window, int8 dot product per filter). All four give the same integers.
 *
 * Everything is integer and deterministic: no float in the time loop (the FPU-less Cortex-M0+ runs
 * the same code), no malloc, no globals. The input coding (quantizer, xorshift32 rate code) is
 * hk_snn.h's and the floor shift of the leak, the ctz and the popcount are hk_nn.h's, as in the
 * spiking layers, so spike trains match models/snn.py.
 *
 * Layouts (channels innermost):
 *   spike maps  [H][W][words(C)], channel c is bit c % 32 of word c / 32 (as hk_snn.h)
 *   membranes   [H][W][F] int32
 *   kernels     binary: [F][words(k*k*c_in)], weight (ky, kx, c) is bit (ky*k + kx)*c_in + c, set for +1
 *               binary sliced: one F-bit mask per synapse d = (ky*k + kx)*c_in + c (uint8/16/32 for F = 8/16/32)
 *               int8 event: [k*k][c_in][F]; int8 dense: [F][k*k*c_in]
 *   counts      [H/pool][W/pool][F] u32: the last layer's spikes summed over time and the pool window */
#ifndef HK_BINCONV_H
#define HK_BINCONV_H
#include "hk_nn.h"
#include "hk_snn.h" /* the input coding, hk_snn_addrow_s8, the reset kinds */
#include "hk_types.h"

#define HK_BINCONV_MAX_WORDS 32   /* receptive field of at most 1024 bits (k*k*c_in) */
#define HK_BINCONV_MAX_FILTERS 64 /* filters per layer (the currents of a pixel live on the stack) */

enum { HK_BINCONV_B1 = 0, HK_BINCONV_S8_EVENT = 1, HK_BINCONV_S8_DENSE = 2 };

typedef struct {
    int filters;              /* F */
    int kernel;               /* odd k; same padding, stride 1 */
    int c_direct;             /* channels of the direct source */
    int c_res;                /* channels of the residual source (0: none) */
    uint32_t src_direct;      /* word offset of the direct source's spike map in scratch.bits */
    uint32_t src_res;         /* word offset of the residual source's spike map */
    int sliced;               /* HK_BINCONV_B1: 0 AND + popcount, wbits [F][words]; 1 bit-sliced, wbits
                                 transposed (F-bit masks per synapse, F in {8, 16, 32}) */
    const uint32_t *wbits;    /* HK_BINCONV_B1 (sliced: the masks of 32 filters) */
    const uint16_t *wm16;     /* sliced, 16 filters: one mask per synapse */
    const uint8_t *wm8;       /* sliced, 8 filters */
    const int8_t *w8;         /* HK_BINCONV_S8_* */
    const int32_t *threshold; /* [F], > 0 */
    uint32_t mem_off;         /* its membranes in scratch.mem */
    uint32_t bits_off;        /* its spike map in scratch.bits */
} hk_binconv_layer;

typedef struct {
    const hk_binconv_layer *layers;
    int n_layers;
    int kind; /* HK_BINCONV_B1 / _S8_EVENT / _S8_DENSE */
    int timesteps;
    int leak_shift; /* 0: IF; k: u -= floor(u / 2^k) each step */
    int reset;      /* HK_SNN_RESET_SOFT (u -= threshold) or HK_SNN_RESET_HARD (u = 0) */
    int input_bits;
    uint32_t seed; /* xorshift32 state at the start of every inference */
    int pool;      /* sum-pool of the last layer's spike counts */
    hk_dims in;    /* model input, channels-first; every map is in.h x in.w */
} hk_binconv_net;

/* Caller-owned working memory (sizes from the code generator). bits starts with the input's
 * positive and negative spike planes (2 x H*W*words(C_in)); the negative one stays empty. */
typedef struct {
    int32_t *mem;
    uint32_t *bits;
    int32_t *q; /* the quantized input, [H][W][C] */
    uint32_t *counts;
} hk_binconv_scratch;

/* ---------------------------------------------------------------- popcount */
/* sum_j popcount(a[j] & b[j]): hk_nn_popcount32 per word where the CPU counts bits (HK_NN_HW_POPCOUNT),
 * else the byte counts of up to 31 words summed before one fold (Cortex-M, A32). */
HK_INLINE uint32_t hk_binconv_and_popcount(const uint32_t *HK_RESTRICT a, const uint32_t *HK_RESTRICT b, int n)
{
#if HK_NN_HW_POPCOUNT
    uint32_t s = 0;
    for (int j = 0; j < n; j++) {
        s += hk_nn_popcount32(a[j] & b[j]);
    }
    return s;
#else
    uint32_t total = 0; /* SWAR: byte counts of up to 31 words summed before one fold */
    int j = 0;
    while (j < n) {
        const int end = n - j > 31 ? j + 31 : n;
        uint32_t acc = 0; /* four byte counters, each <= 8 per word */
        for (; j < end; j++) {
            uint32_t x = a[j] & b[j];
            HK_NN_POPCOUNT_BYTES(x);
            acc += x;
        }
        acc = (acc & 0x00FF00FFu) + ((acc >> 8) & 0x00FF00FFu);
        total += (acc & 0xFFFFu) + (acc >> 16);
    }
    return total;
#endif
}

/* ---------------------------------------------------------------- the receptive field */
/* OR the n low bits of v into the zeroed bit vector p at bit position pos (may straddle words). */
HK_INLINE void hk_binconv_append(uint32_t *p, uint32_t pos, uint32_t v, int n)
{
    const uint32_t off = pos & 31u;
    p[pos >> 5] |= v << off;
    if (off != 0u && off + (uint32_t)n > 32u) {
        p[(pos >> 5) + 1u] |= v >> (32u - off);
    }
}

/* Pack the k x k window around (y, x) of one source map (c channels) into p: tap t's channels go to
 * bits t*c_in + first .. + c - 1. Out-of-map taps are zero padding (nothing to OR). */
HK_INLINE void hk_binconv_gather(uint32_t *HK_RESTRICT p, const uint32_t *HK_RESTRICT src, int c, int c_in, int first,
                                 int h, int w, int k, int y, int x)
{
    const int wpp = hk_nn_words(c), pad = (k - 1) / 2;
    for (int ky = 0; ky < k; ky++) {
        const int iy = y + ky - pad;
        if (iy < 0 || iy >= h) {
            continue;
        }
        for (int kx = 0; kx < k; kx++) {
            const int ix = x + kx - pad;
            if (ix < 0 || ix >= w) {
                continue;
            }
            const uint32_t *pix = src + (size_t)(iy * w + ix) * (size_t)wpp;
            const uint32_t pos = (uint32_t)((ky * k + kx) * c_in + first);
            for (int j = 0; j < wpp; j++) {
                if (pix[j] != 0u) {
                    hk_binconv_append(p, pos + 32u * (uint32_t)j, pix[j], c - 32 * j < 32 ? c - 32 * j : 32);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- neurons */
/* u = leak(u) + cur; spike and reset at u >= threshold. Returns 1 for a spike. */
HK_INLINE int hk_binconv_lif(int32_t *u, int32_t cur, int32_t threshold, int leak_shift, int reset)
{
    int32_t v = *u;
    int fired = 0;
    if (leak_shift != 0) {
        v -= hk_nn_asr32(v, leak_shift);
    }
    v += cur;
    if (v >= threshold) {
        v = reset == HK_SNN_RESET_SOFT ? v - threshold : 0;
        fired = 1;
    }
    *u = v;
    return fired;
}

/* Fire the F neurons of pixel (y, x) whose input currents are cur[0..F): write the pixel's spike
 * words, add the last layer's spikes to counts (counts != NULL). Returns the number of spikes. */
HK_INLINE uint32_t hk_binconv_fire_pixel(const hk_binconv_net *net, const hk_binconv_layer *l, hk_binconv_scratch sc,
                                         int y, int x, const int32_t *cur, int cur_in_u, uint32_t *counts)
{
    const int nf = l->filters, wpp = hk_nn_words(nf), pix = y * net->in.w + x;
    int32_t *u = sc.mem + l->mem_off + (size_t)pix * (size_t)nf;
    uint32_t *bits = sc.bits + l->bits_off + (size_t)pix * (size_t)wpp;
    uint32_t *cnt = NULL, n = 0;
    const int pw = net->in.w / net->pool;
    if (counts != NULL && y / net->pool < net->in.h / net->pool && x / net->pool < pw) {
        cnt = counts + (size_t)((y / net->pool) * pw + x / net->pool) * (size_t)nf;
    }
    for (int j = 0; j < wpp; j++) {
        const int nb = nf - 32 * j < 32 ? nf - 32 * j : 32;
        uint32_t word = 0;
        for (int b = 0; b < nb; b++) {
            const int f = 32 * j + b;
            int fired;
            if (cur_in_u) { /* the int8 event kernel has already leaked u and added the current */
                fired = u[f] >= l->threshold[f];
                if (fired) {
                    u[f] = net->reset == HK_SNN_RESET_SOFT ? u[f] - l->threshold[f] : 0;
                }
            } else {
                fired = hk_binconv_lif(&u[f], cur[f], l->threshold[f], net->leak_shift, net->reset);
            }
            if (fired) {
                word |= 1u << b;
                n++;
                if (cnt != NULL) {
                    cnt[f]++;
                }
            }
        }
        bits[j] = word;
    }
    return n;
}

/* The packed receptive field of pixel (y, x) of layer l; returns its number of words. */
HK_INLINE int hk_binconv_window(const hk_binconv_net *net, const hk_binconv_layer *l, const uint32_t *bits, int y,
                                int x, uint32_t *HK_RESTRICT p)
{
    const int c_in = l->c_direct + l->c_res, k = l->kernel;
    const int nw = (k * k * c_in + 31) >> 5;
    for (int j = 0; j < nw; j++) {
        p[j] = 0;
    }
    hk_binconv_gather(p, bits + l->src_direct, l->c_direct, c_in, 0, net->in.h, net->in.w, k, y, x);
    if (l->c_res > 0) {
        hk_binconv_gather(p, bits + l->src_res, l->c_res, c_in, l->c_direct, net->in.h, net->in.w, k, y, x);
    }
    return nw;
}

/* ---------------------------------------------------------------- one step of one layer */
/* Each returns the layer's spikes of the step and adds its synaptic operations to *synops; counts is
 * the pooled spike-count array for the last layer, NULL for the others. */

/* Bit-packed binary kernels: per pixel one gather, then per filter AND + popcount over nw words. */
HK_INLINE uint32_t hk_binconv_step_b1(const hk_binconv_net *net, const hk_binconv_layer *l, hk_binconv_scratch sc,
                                      uint32_t *counts, uint32_t *synops)
{
    const int nf = l->filters;
    const int nw = (l->kernel * l->kernel * (l->c_direct + l->c_res) + 31) >> 5;
    uint32_t spikes = 0, ops = 0;
    uint32_t p[HK_BINCONV_MAX_WORDS];
    int32_t cur[HK_BINCONV_MAX_FILTERS];
    for (int y = 0; y < net->in.h; y++) {
        for (int x = 0; x < net->in.w; x++) {
            uint32_t active = 0;
            hk_binconv_window(net, l, sc.bits, y, x, p);
            for (int j = 0; j < nw; j++) {
                active += hk_nn_popcount32(p[j]);
            }
            if (active == 0u) { /* an empty window: no current (the neurons still leak and may fire) */
                for (int f = 0; f < nf; f++) {
                    cur[f] = 0;
                }
            } else {
                const uint32_t *kf = l->wbits;
                for (int f = 0; f < nf; f++, kf += nw) {
                    cur[f] = 2 * (int32_t)hk_binconv_and_popcount(p, kf, nw) - (int32_t)active;
                }
            }
            ops += active;
            spikes += hk_binconv_fire_pixel(net, l, sc, y, x, cur, 0, counts);
        }
    }
    *synops += ops * (uint32_t)nf;
    return spikes;
}

/* Bit-packed binary kernels, bit-sliced ("vertical" popcount): the kernels stored transposed, as
 * one F-bit mask per synapse (bit f set where filter f has +1), F in {8, 16, 32} so that 32 / F
 * masks fill a word exactly. Each active input of the window adds its mask into a bit-sliced
 * counter (five planes: 32 binary counters side by side, one per filter), so one add of ~10 logic
 * operations counts that input for every filter at once; the counters are read out per filter
 * every 31 inputs and at the end. The work follows the window's active inputs, not its size. */
HK_INLINE uint32_t hk_binconv_mask(const hk_binconv_layer *l, uint32_t d)
{
    if (l->filters == 16) {
        return l->wm16[d];
    }
    if (l->filters == 8) {
        return l->wm8[d];
    }
    return l->wbits[d];
}

/* cur[f] += 2 x (the 5-bit count in lane f of the planes c0..c4): shifts the planes down, one lane
 * per filter (the planes are consumed). */
#define HK_BINCONV_UNSLICE(cur, nf, c0, c1, c2, c3, c4)                                                        \
    do {                                                                                                       \
        for (int f_ = 0; f_ < (nf); f_++) {                                                                    \
            (cur)[f_] += (int32_t)(((c0 & 1u) << 1) | ((c1 & 1u) << 2) | ((c2 & 1u) << 3) | ((c3 & 1u) << 4) | \
                                   ((c4 & 1u) << 5));                                                          \
            c0 >>= 1;                                                                                          \
            c1 >>= 1;                                                                                          \
            c2 >>= 1;                                                                                          \
            c3 >>= 1;                                                                                          \
            c4 >>= 1;                                                                                          \
        }                                                                                                      \
    } while (0)

HK_INLINE uint32_t hk_binconv_step_b1s(const hk_binconv_net *net, const hk_binconv_layer *l, hk_binconv_scratch sc,
                                       uint32_t *counts, uint32_t *synops)
{
    const int nf = l->filters;
    const int nw = (l->kernel * l->kernel * (l->c_direct + l->c_res) + 31) >> 5;
    uint32_t spikes = 0, ops = 0;
    uint32_t p[HK_BINCONV_MAX_WORDS];
    int32_t cur[32];
    for (int y = 0; y < net->in.h; y++) {
        for (int x = 0; x < net->in.w; x++) {
            uint32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0;
            int32_t active = 0, pending = 0;
            hk_binconv_window(net, l, sc.bits, y, x, p);
            for (int j = 0; j < nw; j++) {
                uint32_t word = p[j];
                while (word != 0u) {
                    if (pending == 0) { /* the first input of a batch of up to 31 */
                        if (active == 0) {
                            for (int f = 0; f < nf; f++) {
                                cur[f] = 0;
                            }
                        }
                    }
                    {
                        uint32_t v = hk_binconv_mask(l, 32u * (uint32_t)j + (uint32_t)hk_nn_ctz32(word)), carry;
                        word &= word - 1u;
                        carry = c0 & v;
                        c0 ^= v;
                        v = c1 & carry;
                        c1 ^= carry;
                        carry = c2 & v;
                        c2 ^= v;
                        v = c3 & carry;
                        c3 ^= carry;
                        c4 ^= v;
                    }
                    active++;
                    if (++pending == 31) { /* five planes count to 31 */
                        HK_BINCONV_UNSLICE(cur, nf, c0, c1, c2, c3, c4);
                        pending = 0;
                    }
                }
            }
            if (active == 0) {
                for (int f = 0; f < nf; f++) {
                    cur[f] = 0;
                }
            } else {
                if (pending != 0) {
                    HK_BINCONV_UNSLICE(cur, nf, c0, c1, c2, c3, c4);
                }
                for (int f = 0; f < nf; f++) {
                    cur[f] -= active; /* 2 x (inputs under a +1) - inputs */
                }
            }
            ops += (uint32_t)active;
            spikes += hk_binconv_fire_pixel(net, l, sc, y, x, cur, 0, counts);
        }
    }
    *synops += ops * (uint32_t)nf;
    return spikes;
}

/* int8 kernels, event-driven: leak the pixel's membranes, add the weight row of every input spike
 * of the window (ctz walk over the spike words), fire. */
HK_INLINE uint32_t hk_binconv_event_source(int32_t *HK_RESTRICT u, const uint32_t *HK_RESTRICT src, int c, int c_in,
                                           int first, const int8_t *HK_RESTRICT w8, int nf, int h, int w, int k, int y,
                                           int x)
{
    const int wpp = hk_nn_words(c), pad = (k - 1) / 2;
    uint32_t active = 0;
    for (int ky = 0; ky < k; ky++) {
        const int iy = y + ky - pad;
        if (iy < 0 || iy >= h) {
            continue;
        }
        for (int kx = 0; kx < k; kx++) {
            const int ix = x + kx - pad;
            if (ix < 0 || ix >= w) {
                continue;
            }
            const uint32_t *pix = src + (size_t)(iy * w + ix) * (size_t)wpp;
            const int8_t *rows = w8 + (size_t)((ky * k + kx) * c_in + first) * (size_t)nf;
            for (int j = 0; j < wpp; j++) {
                uint32_t word = pix[j];
                while (word != 0u) {
                    const int ch = 32 * j + hk_nn_ctz32(word);
                    word &= word - 1u;
                    hk_snn_addrow_s8(u, rows + (size_t)ch * (size_t)nf, nf);
                    active++;
                }
            }
        }
    }
    return active;
}

HK_INLINE uint32_t hk_binconv_step_s8_event(const hk_binconv_net *net, const hk_binconv_layer *l, hk_binconv_scratch sc,
                                            uint32_t *counts, uint32_t *synops)
{
    const int nf = l->filters, c_in = l->c_direct + l->c_res, k = l->kernel;
    uint32_t spikes = 0, ops = 0;
    for (int y = 0; y < net->in.h; y++) {
        for (int x = 0; x < net->in.w; x++) {
            int32_t *u = sc.mem + l->mem_off + (size_t)(y * net->in.w + x) * (size_t)nf;
            if (net->leak_shift != 0) {
                for (int f = 0; f < nf; f++) {
                    u[f] -= hk_nn_asr32(u[f], net->leak_shift);
                }
            }
            ops += hk_binconv_event_source(u, sc.bits + l->src_direct, l->c_direct, c_in, 0, l->w8, nf, net->in.h,
                                           net->in.w, k, y, x);
            if (l->c_res > 0) {
                ops += hk_binconv_event_source(u, sc.bits + l->src_res, l->c_res, c_in, l->c_direct, l->w8, nf,
                                               net->in.h, net->in.w, k, y, x);
            }
            spikes += hk_binconv_fire_pixel(net, l, sc, y, x, NULL, 1, counts);
        }
    }
    *synops += ops * (uint32_t)nf;
    return spikes;
}

/* int8 kernels, plain: unpack the window to one byte per synapse, then an int8 dot product per
 * filter over all k*k*c_in synapses (zeros included), as a dense int8 convolution does. */
HK_INLINE uint32_t hk_binconv_step_s8_dense(const hk_binconv_net *net, const hk_binconv_layer *l, hk_binconv_scratch sc,
                                            uint32_t *counts, uint32_t *synops)
{
    const int nf = l->filters, n = l->kernel * l->kernel * (l->c_direct + l->c_res);
    uint32_t spikes = 0, ops = 0;
    uint32_t p[HK_BINCONV_MAX_WORDS];
    int8_t s[HK_BINCONV_MAX_WORDS * 32];
    int32_t cur[HK_BINCONV_MAX_FILTERS];
    for (int y = 0; y < net->in.h; y++) {
        for (int x = 0; x < net->in.w; x++) {
            hk_binconv_window(net, l, sc.bits, y, x, p);
            for (int i = 0; i < n; i++) {
                s[i] = (int8_t)((p[i >> 5] >> (i & 31)) & 1u);
                ops += (uint32_t)s[i];
            }
            for (int f = 0; f < nf; f++) {
                const int8_t *wf = l->w8 + (size_t)f * (size_t)n;
                int32_t acc = 0;
                for (int i = 0; i < n; i++) {
                    acc += wf[i] * s[i];
                }
                cur[f] = acc;
            }
            spikes += hk_binconv_fire_pixel(net, l, sc, y, x, cur, 0, counts);
        }
    }
    *synops += ops * (uint32_t)nf;
    return spikes;
}

/* ---------------------------------------------------------------- the network */
/* An inference (the generated model.c spells it out per layer, so each layer's shape and kind are
 * constants): hk_binconv_begin; then per time step hk_binconv_encode and each layer's
 * hk_binconv_step_<kind>; then hk_binconv_end. Its counters: the input spikes, each layer's spikes,
 * the synaptic operations. */

/* Start of an inference: zero the membranes and pooled counts, quantize the input (negative
 * values count as 0). Returns -1 if a layer is beyond the stack buffers' limits. */
HK_INLINE int hk_binconv_begin(const hk_binconv_net *net, const float *in, hk_binconv_scratch sc)
{
    const int n_pix = net->in.h * net->in.w;
    const hk_binconv_layer *last = &net->layers[net->n_layers - 1];
    for (int i = 0; i < net->n_layers; i++) {
        const hk_binconv_layer *l = &net->layers[i];
        if (l->filters > HK_BINCONV_MAX_FILTERS || (l->sliced && 32 % l->filters != 0) ||
            l->kernel * l->kernel * (l->c_direct + l->c_res) > 32 * HK_BINCONV_MAX_WORDS) {
            return -1;
        }
        for (int j = 0; j < n_pix * l->filters; j++) {
            sc.mem[l->mem_off + (uint32_t)j] = 0;
        }
    }
    for (int j = 0; j < (net->in.h / net->pool) * (net->in.w / net->pool) * last->filters; j++) {
        sc.counts[j] = 0;
    }
    hk_snn_quantize_f32(in, net->in, net->input_bits, sc.q);
    for (int j = 0; j < n_pix * net->in.c; j++) {
        if (sc.q[j] < 0) {
            sc.q[j] = 0;
        }
    }
    return 0;
}

/* The input spikes of one step (positive plane at bits[0], the empty negative plane after it). */
HK_INLINE uint32_t hk_binconv_encode(const hk_binconv_net *net, hk_binconv_scratch sc, uint32_t *state)
{
    const uint32_t in_words = (uint32_t)(net->in.h * net->in.w * hk_nn_words(net->in.c));
    return hk_snn_rate_encode(sc.q, net->in, net->input_bits, state, sc.bits, sc.bits + in_words);
}

/* End of an inference: out[f][py][px] = pooled spike count (channels-first float). */
HK_INLINE void hk_binconv_end(const hk_binconv_net *net, hk_binconv_scratch sc, float *out)
{
    const int nf = net->layers[net->n_layers - 1].filters;
    const int n_pool = (net->in.h / net->pool) * (net->in.w / net->pool);
    for (int f = 0; f < nf; f++) {
        for (int i = 0; i < n_pool; i++) {
            out[f * n_pool + i] = (float)sc.counts[(size_t)i * (size_t)nf + (size_t)f];
        }
    }
}

#endif
