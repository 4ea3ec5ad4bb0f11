/* Spiking networks of magneto-electric (ME) LIF neurons (docs/me-neuron.md): the fixed-point
 * network of hk_snn.h (event-driven synapses, int32 membranes, LIF leak u -= u >> k) whose
 * neurons fire at random, like the ME device: each step a neuron reads its switching probability
 * from a small table indexed by its membrane (the oxide's charge),
 *     bin = clamp(u >> shift, 0, bins - 1),   fire iff (xorshift32(&state) >> 16) < table[bin],
 * table entries being P * 65536 (0: never, 65536: always), and a neuron that fires resets hard
 * (the oxide is discharged, the magnet written back): u = 0.
 *
 * The fire stream is its own xorshift32 state, seeded with fire_seed at the start of every
 * inference; it is drawn once per spiking neuron per step, layer by layer, in memory order
 * ([H][W][C] for conv, [units] for dense), whether the neuron fires or not. The input coding keeps
 * hk_snn.h's stream. All integer: the numpy reference (hilkit.models.me_snn) reproduces every
 * spike on every board, including the FPU-less Cortex-M0+.
 *
 * Uses hk_snn.h's layers, event kernels and input coding unchanged; one step's fire pass of a layer
 * is out of line (HK_NOINLINE, hk_nn.h), like hk_snn.h's layer kernels. */
#ifndef HK_ME_H
#define HK_ME_H
#include "hk_nn.h"
#include "hk_snn.h"
#include "hk_types.h"

/* The switching-probability table of one spiking layer. */
typedef struct {
    const uint32_t *table; /* [bins], non-decreasing, each 0..65536 */
    int shift;             /* bin = u >> shift for u >= 0 (0 for u < 0), capped at bins - 1 */
    int bins;
} hk_me_fire;

typedef struct {
    const hk_snn_net *net;  /* the network; its neurons must be LIF (leak_shift >= 1) */
    const hk_me_fire *fire; /* [net->n_layers]; read for spiking layers only */
    uint32_t fire_seed;     /* != 0 */
} hk_me_net;

/* The switching probability of membrane u, as a table entry: table[clamp(u >> shift, 0, last)]. */
HK_INLINE uint32_t hk_me_lookup(const uint32_t *table, int shift, int32_t last, int32_t u)
{
    int32_t bin = u > 0 ? u >> shift : 0;
    return table[bin < last ? bin : last];
}

/* The fire loop over [n_pix][c] membranes: PRE(v, i) runs before the draw, POST(v, i) after the
 * reset (i: the neuron's channel). Spelled out per variant, so that no test of the options is left
 * inside the per-neuron loop (GCC -O2 does not unswitch loops). */
#define HK_ME_FIRE_LOOP(PRE, POST)                                                      \
    for (int p = 0; p < n_pix; p++) {                                                   \
        for (int j = 0; j < wpp; j++) {                                                 \
            const int n = c - 32 * j < 32 ? c - 32 * j : 32;                            \
            int32_t *up = u + p * c + 32 * j;                                           \
            uint32_t word = 0;                                                          \
            for (int b = 0; b < n; b++) {                                               \
                int32_t v = up[b];                                                      \
                PRE;                                                                    \
                if ((hk_nn_xorshift32(&s) >> 16) < hk_me_lookup(tab, shift, last, v)) { \
                    v = 0;                                                              \
                    word |= 1u << b;                                                    \
                }                                                                       \
                POST;                                                                   \
                up[b] = v;                                                              \
            }                                                                           \
            bits[p * wpp + j] = word;                                                   \
            while (word != 0u) { /* spikes are rare */                                  \
                word &= word - 1u;                                                      \
                count++;                                                                \
            }                                                                           \
        }                                                                               \
    }

/* One step's end for a layer of [n_pix][c] membranes: with cur != NULL first u = leak(u) + cur
 * (a directly coded first layer's whole step); then every neuron draws and fires with its table's
 * probability (bit set, u = 0); with bias != NULL it then starts the next step, u = leak(u) +
 * bias[channel], in the same pass (as hk_snn_fire_s32 does). Returns the number of spikes. */
HK_NOINLINE uint32_t hk_me_fire_s32(int32_t *HK_RESTRICT u, int n_pix, int c, const int32_t *HK_RESTRICT cur,
                                    const int32_t *HK_RESTRICT bias, int leak_shift, const hk_me_fire *f,
                                    uint32_t *state, uint32_t *HK_RESTRICT bits)
{
    const int wpp = hk_nn_words(c);
    const uint32_t *tab = f->table;
    const int shift = f->shift;
    const int32_t last = f->bins - 1;
    uint32_t count = 0;
    uint32_t s = *state;
    if (cur != NULL && bias != NULL) {
        HK_ME_FIRE_LOOP(v = v - hk_nn_asr32(v, leak_shift) + cur[p * c + 32 * j + b],
                        v = v - hk_nn_asr32(v, leak_shift) + bias[32 * j + b])
    } else if (cur != NULL) {
        HK_ME_FIRE_LOOP(v = v - hk_nn_asr32(v, leak_shift) + cur[p * c + 32 * j + b], (void)0)
    } else if (bias != NULL) {
        HK_ME_FIRE_LOOP((void)0, v = v - hk_nn_asr32(v, leak_shift) + bias[32 * j + b])
    } else {
        HK_ME_FIRE_LOOP((void)0, (void)0)
    }
    *state = s;
    return count;
}

/* One inference, as hk_snn_run with the stochastic fire rule: quantize the input, run the
 * time steps, write out[o] = (float)u_out[o] * out_scale, add the spike and synaptic-operation
 * counts to counters (the caller zeroes them). Returns 0, or -1 for a conv kernel above
 * HK_SNN_MAX_KERNEL or a net without leak. */
HK_INLINE int hk_me_run(const hk_me_net *me, const float *in, float *out, hk_snn_scratch sc, uint32_t *counters)
{
    const hk_snn_net *net = me->net;
    const hk_snn_layer *last = &net->layers[net->n_layers - 1];
    const int in_words = net->in.h * net->in.w * hk_nn_words(net->in.c);
    const int direct = net->coding == HK_SNN_DIRECT;
    uint32_t state = net->seed, fstate = me->fire_seed, synops = 0;

    if (net->leak_shift < 1) {
        return -1;
    }
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
                counters[l->counter] +=
                    hk_me_fire_s32(u, n_pix, l->out.c, sc.cur0, NULL, net->leak_shift, &me->fire[i], &fstate, bits);
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
                    hk_me_fire_s32(u, n_pix, l->out.c, NULL, l->bias, net->leak_shift, &me->fire[i], &fstate, bits);
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
