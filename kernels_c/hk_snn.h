/* Event-driven fixed-point spiking layers (docs/snn.md): integrate-and-fire (IF) or leaky (LIF)
 * neurons with int32 membranes, int8/int16 weights, soft or hard reset, spikes packed as bits.
 *
 * Nothing here multiplies per synapse: for each input spike, the kernels add that input's weight
 * row to the membranes it reaches (a synaptic operation per add). The only multiplies are the
 * first layer's input current under direct coding (computed once per inference) and none at all
 * under rate coding. No float in the time loop: the FPU-less Cortex-M0+ runs the same integers.
 *
 * Layouts (channels innermost, so a spike's targets are contiguous):
 *   membranes   conv [H][W][F], dense [units]
 *   spike maps  [H][W][words], words = ceil(C / 32); channel c is bit c % 32 of word c / 32
 *   weights     conv [C][k][k][F]; dense [inputs][units], inputs in pooled [H][W][C] order
 *   input q     [H][W][C] (quantized from the channels-first float input)
 * A layer may sum-pool its input spikes first (pool > 1): the event kernels (hk_snn_event.h) add
 * pooled pixel (y / pool, x / pool)'s weights for a spike of input pixel (y, x).
 *
 * hk_snn_run() is the whole time-step loop; the pieces are exposed for tests and other nets. */
#ifndef HK_SNN_H
#define HK_SNN_H
#include "hk_nn.h"
#include "hk_snn_event.h"
#include "hk_types.h"

enum { HK_SNN_DENSE = 0, HK_SNN_CONV = 1 };
enum { HK_SNN_RESET_SOFT = 0, HK_SNN_RESET_HARD = 1 };
enum { HK_SNN_DIRECT = 0, HK_SNN_RATE = 1 };

typedef struct {
    int kind;            /* HK_SNN_DENSE or HK_SNN_CONV */
    int pool;            /* sum-pool size applied to the input spikes (1: none) */
    hk_dims in;          /* the input map before pooling (a 1-D input is {n, 1, 1}) */
    hk_dims out;         /* the neurons: conv {F, H', W'}, dense {units, 1, 1} */
    hk_conv_params conv; /* conv only; the padding is that of the pooled map */
    hk_snn_weights w;
    const int32_t *bias; /* [out.c], added every step */
    int32_t threshold;   /* > 0; 0 marks the output layer, which integrates and never spikes */
    uint32_t mem_off;    /* its membranes in hk_snn_scratch.mem (int32 words) */
    uint32_t bits_off;   /* its spike map in hk_snn_scratch.bits (u32 words); spiking layers */
    int counter;         /* its spike counter in the counters array; spiking layers */
} hk_snn_layer;

typedef struct {
    const hk_snn_layer *layers;
    int n_layers;
    int timesteps;
    int reset;          /* HK_SNN_RESET_SOFT: u -= threshold; HARD: u = 0 */
    int leak_shift;     /* 0: IF; k: LIF, u -= u >> k (arithmetic, floor) before each step's input */
    int v_init_half;    /* 1: spiking membranes start at threshold / 2 */
    int coding;         /* HK_SNN_DIRECT or HK_SNN_RATE */
    int input_bits;     /* q = round(x * 2^input_bits), |q| <= 2^input_bits */
    uint32_t seed;      /* xorshift32 state at the start of every inference (rate coding) */
    hk_dims in;         /* the model input, channels-first */
    float out_scale;    /* output = (float)membrane * out_scale */
    int counter_synops; /* counter indices; counter_in is -1 under direct coding */
    int counter_in;
} hk_snn_net;

/* Caller-owned working memory; sizes are computed by the code generator. Under rate coding the
 * input spikes take the first 2 * in_words words of bits (positive, then negative spikes). */
typedef struct {
    int32_t *mem;   /* every layer's membranes */
    uint32_t *bits; /* every spike map */
    int32_t *q;     /* the quantized input, [H][W][C] */
    int32_t *cur0;  /* direct coding: the first layer's constant input current */
} hk_snn_scratch;

/* ---------------------------------------------------------------- input coding */
/* q = sign(x) * (int)(|clamp(x * 2^bits)| + 0.5f), channels-first float in, [H][W][C] out. The
 * scaling is exact (a power of two); the add and the truncation are single IEEE operations, so
 * soft-float boards get the same q as hardware FPUs and numpy. */
HK_INLINE void hk_snn_quantize_f32(const float *HK_RESTRICT x, hk_dims d, int bits, int32_t *HK_RESTRICT q)
{
    const float m = (float)(1L << bits);
    for (int c = 0; c < d.c; c++) {
        for (int i = 0; i < d.h * d.w; i++) {
            float v = x[c * d.h * d.w + i] * m;
            if (v > m) {
                v = m;
            }
            if (v < -m) {
                v = -m;
            }
            const int32_t mag = (int32_t)((v < 0.0f ? -v : v) + 0.5f);
            q[i * d.c + c] = v < 0.0f ? -mag : mag;
        }
    }
}

/* Rate coding of one step: input j (in [H][W][C] order) draws r = xorshift32 >> (32 - bits) and
 * spikes when r < |q_j|, into pos (q > 0) or neg (q < 0). One draw per input, spiking or not.
 * Returns the number of spikes. */
HK_NOINLINE uint32_t hk_snn_rate_encode(const int32_t *HK_RESTRICT q, hk_dims d, int bits, uint32_t *state,
                                        uint32_t *HK_RESTRICT pos, uint32_t *HK_RESTRICT neg)
{
    const int wpp = hk_nn_words(d.c);
    uint32_t count = 0;
    for (int p = 0; p < d.h * d.w; p++) {
        for (int j = 0; j < wpp; j++) {
            const int n = d.c - 32 * j < 32 ? d.c - 32 * j : 32;
            const int32_t *qp = q + p * d.c + 32 * j;
            uint32_t wp = 0, wn = 0;
            for (int b = 0; b < n; b++) {
                const int32_t r = (int32_t)(hk_nn_xorshift32(state) >> (32 - bits));
                if (qp[b] > 0 && r < qp[b]) {
                    wp |= 1u << b;
                    count++;
                } else if (qp[b] < 0 && r < -qp[b]) {
                    wn |= 1u << b;
                    count++;
                }
            }
            pos[p * wpp + j] = wp;
            neg[p * wpp + j] = wn;
        }
    }
    return count;
}

/* ---------------------------------------------------------------- direct coding: first-layer MACs */
/* acc[0..n) += q * row: one input's multiply-accumulates. */
HK_INLINE void hk_snn_macrow_s32(int32_t *HK_RESTRICT acc, int32_t q, hk_snn_weights w, size_t row, int n)
{
    if (w.w16 != NULL) {
        const int16_t *r = w.w16 + row;
        for (int i = 0; i < n; i++) {
            acc[i] += q * r[i];
        }
    } else {
        const int8_t *r = w.w8 + row;
        for (int i = 0; i < n; i++) {
            acc[i] += q * r[i];
        }
    }
}

/* cur[o] = bias[o] + sum_j q[j] * w[j][o] */
HK_NOINLINE void hk_snn_current_dense_s32(const int32_t *HK_RESTRICT q, int n_in, hk_snn_weights w,
                                          const int32_t *HK_RESTRICT bias, int n_out, int32_t *HK_RESTRICT cur)
{
    for (int o = 0; o < n_out; o++) {
        cur[o] = bias[o];
    }
    for (int j = 0; j < n_in; j++) {
        const int32_t qj = q[j];
        if (qj != 0) {
            hk_snn_macrow_s32(cur, qj, w, (size_t)j * (size_t)n_out, n_out);
        }
    }
}

/* cur[oy][ox][f] = bias[f] + sum_{c,ky,kx} w[c][ky][kx][f] * q[oy*s+ky-pt][ox*s+kx-pl][c] */
HK_NOINLINE void hk_snn_current_conv_s32(const int32_t *HK_RESTRICT q, hk_dims in, hk_snn_weights w,
                                         const int32_t *HK_RESTRICT bias, hk_dims out, hk_conv_params p,
                                         int32_t *HK_RESTRICT cur)
{
    const int k = p.kernel, nf = out.c;
    for (int oy = 0; oy < out.h; oy++) {
        for (int ox = 0; ox < out.w; ox++) {
            int32_t *acc = cur + (oy * out.w + ox) * nf;
            for (int f = 0; f < nf; f++) {
                acc[f] = bias[f];
            }
            for (int ky = 0; ky < k; ky++) {
                const int iy = oy * p.stride + ky - p.pad_top;
                if (iy < 0 || iy >= in.h) {
                    continue;
                }
                for (int kx = 0; kx < k; kx++) {
                    const int ix = ox * p.stride + kx - p.pad_left;
                    if (ix < 0 || ix >= in.w) {
                        continue;
                    }
                    for (int c = 0; c < in.c; c++) {
                        const int32_t qv = q[(iy * in.w + ix) * in.c + c];
                        if (qv != 0) {
                            hk_snn_macrow_s32(acc, qv, w, (size_t)(((c * k + ky) * k + kx) * nf), nf);
                        }
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- neuron updates */
/* Start of a step: u = leak(u) + bias[channel] (leak_shift 0: no leak). */
HK_INLINE void hk_snn_leak_bias_s32(int32_t *HK_RESTRICT u, int n_pix, int c, const int32_t *HK_RESTRICT bias,
                                    int leak_shift)
{
    for (int p = 0; p < n_pix; p++) {
        int32_t *up = u + p * c;
        if (leak_shift == 0) {
            for (int i = 0; i < c; i++) {
                up[i] += bias[i];
            }
        } else {
            for (int i = 0; i < c; i++) {
                up[i] = up[i] - hk_nn_asr32(up[i], leak_shift) + bias[i];
            }
        }
    }
}

/* The fire loop over [n_pix][c] membranes: PRE(v, i) runs before the threshold test, POST(v, i)
 * after the reset (i: the neuron's channel). Spelled out per variant so that no test on the
 * options is left inside the per-neuron loop. */
#define HK_SNN_FIRE_LOOP(PRE, POST)                                        \
    for (int p = 0; p < n_pix; p++) {                                      \
        for (int j = 0; j < wpp; j++) {                                    \
            const int n = c - 32 * j < 32 ? c - 32 * j : 32;               \
            int32_t *up = u + p * c + 32 * j;                              \
            const int32_t *cp = cur != NULL ? cur + p * c + 32 * j : NULL; \
            uint32_t word = 0;                                             \
            (void)cp;                                                      \
            for (int b = 0; b < n; b++) {                                  \
                int32_t v = up[b];                                         \
                PRE;                                                       \
                if (v >= threshold) {                                      \
                    v = drop != 0 ? v - drop : 0;                          \
                    word |= 1u << b;                                       \
                }                                                          \
                POST;                                                      \
                up[b] = v;                                                 \
            }                                                              \
            bits[p * wpp + j] = word;                                      \
            while (word != 0u) { /* spikes are rare */                     \
                word &= word - 1u;                                         \
                count++;                                                   \
            }                                                              \
        }                                                                  \
    }

/* End of a step: a neuron with u >= threshold spikes (its bit is set) and resets, soft
 * (u -= threshold, RMP-SNN) or hard (u = 0). Returns the number of spikes.
 * With bias != NULL it also starts the next step, u = leak(u) + bias[channel], in the same pass
 * over the membranes (what hk_snn_run does; the last step's extra start is never read). */
HK_NOINLINE uint32_t hk_snn_fire_s32(int32_t *HK_RESTRICT u, int n_pix, int c, int32_t threshold, int reset,
                                     uint32_t *HK_RESTRICT bits, const int32_t *HK_RESTRICT bias, int leak_shift)
{
    const int wpp = hk_nn_words(c);
    const int32_t drop = reset == HK_SNN_RESET_SOFT ? threshold : 0; /* hard: u - u */
    const int32_t *cur = NULL;
    uint32_t count = 0;
    if (bias == NULL) {
        HK_SNN_FIRE_LOOP((void)0, (void)0)
    } else if (leak_shift == 0) {
        HK_SNN_FIRE_LOOP((void)0, v += bias[32 * j + b])
    } else {
        HK_SNN_FIRE_LOOP((void)0, v = v - hk_nn_asr32(v, leak_shift) + bias[32 * j + b])
    }
    return count;
}

/* A whole step of a layer driven by a constant current per neuron (direct coding's first
 * layer): u = leak(u) + cur, then fire as hk_snn_fire_s32. Returns the number of spikes. */
HK_NOINLINE uint32_t hk_snn_integrate_fire_s32(int32_t *HK_RESTRICT u, const int32_t *HK_RESTRICT cur, int n_pix, int c,
                                               int leak_shift, int32_t threshold, int reset, uint32_t *HK_RESTRICT bits)
{
    const int wpp = hk_nn_words(c);
    const int32_t drop = reset == HK_SNN_RESET_SOFT ? threshold : 0;
    uint32_t count = 0;
    if (leak_shift == 0) {
        HK_SNN_FIRE_LOOP(v += cp[b], (void)0)
    } else {
        HK_SNN_FIRE_LOOP(v = v - hk_nn_asr32(v, leak_shift) + cp[b], (void)0)
    }
    return count;
}

/* ---------------------------------------------------------------- the network */
HK_INLINE uint32_t hk_snn_event(const hk_snn_layer *l, const uint32_t *bits, int32_t *u, int negate)
{
    if (l->kind == HK_SNN_CONV) {
        return hk_snn_conv_event_s32(bits, l->in, l->pool, l->w, l->out, l->conv, u, negate);
    }
    return hk_snn_dense_event_s32(bits, l->in, l->pool, l->w, l->out.c, u, negate);
}

/* The start of an inference, shared by every spiking runner: membranes at their initial value (with
 * step 0's leak and bias), the input quantised, and for direct coding the first layer's constant
 * current. Returns 0, or -1 for a conv kernel above HK_SNN_MAX_KERNEL. */
HK_INLINE int hk_snn_begin(const hk_snn_net *net, const float *in, hk_snn_scratch sc)
{
    const hk_snn_layer *first = &net->layers[0];
    const int direct = net->coding == HK_SNN_DIRECT;
    for (int i = 0; i < net->n_layers; i++) {
        const hk_snn_layer *l = &net->layers[i];
        const int n = l->out.c * l->out.h * l->out.w;
        const int32_t u0 = (l->threshold > 0 && net->v_init_half) ? l->threshold / 2 : 0;
        int32_t *u = sc.mem + l->mem_off;
        if (l->kind == HK_SNN_CONV && l->conv.kernel > HK_SNN_MAX_KERNEL) {
            return -1;
        }
        for (int j = 0; j < n; j++) {
            u[j] = u0;
        }
        if (l->threshold > 0 && !(i == 0 && direct)) {
            hk_snn_leak_bias_s32(u, l->out.h * l->out.w, l->out.c, l->bias, net->leak_shift); /* step 0's start */
        }
    }
    hk_snn_quantize_f32(in, net->in, net->input_bits, sc.q);
    if (direct) {
        if (first->kind == HK_SNN_CONV) {
            hk_snn_current_conv_s32(sc.q, first->in, first->w, first->bias, first->out, first->conv, sc.cur0);
        } else {
            hk_snn_current_dense_s32(sc.q, first->in.c * first->in.h * first->in.w, first->w, first->bias, first->out.c,
                                     sc.cur0);
        }
    }
    return 0;
}

/* One inference: quantize the input, run `timesteps` steps through every layer, write
 * out[o] = (float)u_out[o] * out_scale, and add the spike and synaptic-operation counts to
 * counters (the caller zeroes them). Returns 0, or -1 for a conv kernel above HK_SNN_MAX_KERNEL.
 *
 * A step of a spiking layer is: u = leak(u) + bias, accumulate the input spikes, fire. The first
 * part of step t+1 is done by the fire pass of step t (one pass over the membranes, not two); a
 * directly coded first layer does its whole step in one pass. */
HK_INLINE int hk_snn_run(const hk_snn_net *net, const float *in, float *out, hk_snn_scratch sc, uint32_t *counters)
{
    const hk_snn_layer *last = &net->layers[net->n_layers - 1];
    const int in_words = net->in.h * net->in.w * hk_nn_words(net->in.c);
    const int direct = net->coding == HK_SNN_DIRECT;
    uint32_t state = net->seed, synops = 0;

    if (hk_snn_begin(net, in, sc) != 0) {
        return -1;
    }
    for (int t = 0; t < net->timesteps; t++) {
        const uint32_t *prev = NULL;
        for (int i = 0; i < net->n_layers; i++) {
            const hk_snn_layer *l = &net->layers[i];
            int32_t *u = sc.mem + l->mem_off;
            uint32_t *bits = sc.bits + l->bits_off;
            const int n_pix = l->out.h * l->out.w;
            if (l->threshold <= 0) { /* the output layer: integrates, never leaks or spikes */
                hk_snn_leak_bias_s32(u, n_pix, l->out.c, l->bias, 0);
                synops += hk_snn_event(l, prev, u, 0);
                break;
            }
            if (i == 0 && direct) {
                counters[l->counter] += hk_snn_integrate_fire_s32(u, sc.cur0, n_pix, l->out.c, net->leak_shift,
                                                                  l->threshold, net->reset, bits);
            } else {
                if (i == 0) {
                    uint32_t *pos = sc.bits, *neg = sc.bits + in_words;
                    counters[net->counter_in] += hk_snn_rate_encode(sc.q, net->in, net->input_bits, &state, pos, neg);
                    synops += hk_snn_event(l, pos, u, 0);
                    synops += hk_snn_event(l, neg, u, 1);
                } else {
                    synops += hk_snn_event(l, prev, u, 0);
                }
                counters[l->counter] +=
                    hk_snn_fire_s32(u, n_pix, l->out.c, l->threshold, net->reset, bits, l->bias, net->leak_shift);
            }
            prev = bits;
        }
    }
    for (int o = 0; o < last->out.c; o++) {
        out[o] = (float)sc.mem[last->mem_off + (uint32_t)o] * net->out_scale;
    }
    counters[net->counter_synops] += synops;
    return 0;
}

#endif
