/* A spiking reservoir policy (docs/reservoir-rl.md): a random recurrent network of leaky
 * integrate-and-fire neurons driven by a Poisson code of the observation, and an integer readout
 * of its excitatory spike counts that scores each action. One call is one control step.
 *
 * Everything between the observation and the action is integer: int32 membranes, int16 synapses
 * kept as sparse lists (each input channel's and each neuron's targets, so a spike costs one add
 * per synapse and silence costs nothing), int16 readout weights with int32 / int64 sums. The only
 * float operations are the observation's scaling (one multiply per value) and the outputs
 * ((float)(acc >> out_shift) * out_scale, exact conversion, one multiply), so every board, with
 * or without an FPU, gives the actions, counters and outputs of the numpy reference
 * (hilkit.models.reservoir) bit for bit.
 *
 * The state (membranes, the last step's spikes, the random stream) is the caller's and persists
 * from one control step to the next, as the network runs on; a reset puts it back to the start
 * of an episode. */
#ifndef HK_LSM_H
#define HK_LSM_H
#include "hk_nn.h" /* hk_nn_xorshift32 (the spiking layers' generator), the floor shifts */
#include "hk_types.h"

/* The reservoir and readout loops stay out of line (HK_NOINLINE): each wants the whole register file. */

/* Counters of one control step, in this order (hk_lsm_step_f32's counters argument). */
enum { HK_LSM_ACTION = 0, HK_LSM_SPIKES_IN, HK_LSM_SPIKES_EXC, HK_LSM_SPIKES_INH, HK_LSM_SYNOPS, HK_LSM_N_COUNTERS };

typedef struct {
    int n_obs;   /* observations; the input has n_obs + 1 values, the last the reset flag */
    int neurons; /* reservoir neurons; the first `excitatory` feed the readout */
    int excitatory;
    int timesteps;     /* simulation steps per control step */
    int leak_shift;    /* u <- u - floor(u / 2^leak_shift) + I each step */
    int input_bits;    /* |q| <= 2^input_bits; a draw is the top input_bits bits of xorshift32 */
    int32_t threshold; /* spike when u >= threshold, then u <- 0 */
    uint32_t seed;     /* the random stream's state after a reset (never 0) */
    const float *gain; /* [n_obs]: q = round(clamp(x * gain, +-2^input_bits)) */
    /* input synapses: channel c (2j: x_j > 0, 2j + 1: x_j < 0) reaches in_post[in_start[c] .. in_start[c + 1]) */
    const uint32_t *in_start; /* [2 n_obs + 1] */
    const uint16_t *in_post;
    const int16_t *in_w;
    /* recurrent synapses, by presynaptic neuron */
    const uint32_t *rec_start; /* [neurons + 1] */
    const uint16_t *rec_post;
    const int16_t *rec_w;
    /* readout: h = max(0, w1 c + b1), acc = w2 h + b2 */
    int hidden;
    int actions;
    const int16_t *w1; /* [hidden][excitatory] */
    const int32_t *b1; /* [hidden] */
    const int16_t *w2; /* [actions][hidden] */
    const int64_t *b2; /* [actions] (the output unit is small: int64) */
    int out_shift;     /* out = (float)floor(acc / 2^out_shift) * out_scale, exact below 2^24 */
    float out_scale;
} hk_lsm_net;

/* The caller's state; sizes from the net (the code generator declares them static). */
typedef struct {
    int32_t *mem;     /* [neurons] membranes after the leak, awaiting the next step's input */
    uint16_t *fired;  /* [neurons] the neurons that fired on the last step (n_fired of them) */
    uint16_t *counts; /* [excitatory] spikes in this control step */
    int32_t *hid;     /* [hidden] */
    int32_t *q;       /* [n_obs] the quantized observation */
    uint32_t n_fired;
    uint32_t rng; /* xorshift32 state */
    int ready;    /* 0 until the first reset */
} hk_lsm_state;

/* Back to the start of an episode: membranes 0, no spikes in flight, the stream at `seed`. */
HK_INLINE void hk_lsm_reset(const hk_lsm_net *net, hk_lsm_state *st)
{
    for (int i = 0; i < net->neurons; i++) {
        st->mem[i] = 0;
    }
    st->n_fired = 0;
    st->rng = net->seed;
    st->ready = 1;
}

/* q = round half away from zero of clamp(x * gain, +-2^bits): one float multiply, comparisons, an
 * exact doubling and a truncation; the rounding in integers, so no float add can be fused with the
 * multiply. A NaN (the firmware never passes one) gives -2^bits, without undefined behaviour. */
HK_INLINE int32_t hk_lsm_quantize(float x, float gain, int bits)
{
    const float m = (float)(1L << bits);
    float v = x * gain;
    if (v > m) {
        v = m;
    } else if (!(v >= -m)) {
        v = -m;
    }
    const int32_t t = (int32_t)(v * 2.0f);
    return t >= 0 ? (t + 1) / 2 : -((1 - t) / 2);
}

/* Add the weights of one presynaptic source to the currents; returns the synapses it drove. */
HK_INLINE uint32_t hk_lsm_deliver(int32_t *HK_RESTRICT cur, const uint16_t *HK_RESTRICT post,
                                  const int16_t *HK_RESTRICT w, uint32_t begin, uint32_t end)
{
    for (uint32_t k = begin; k < end; k++) {
        cur[post[k]] += w[k];
    }
    return end - begin;
}

/* One group of neurons [begin, end): threshold, reset, and the leak of the next step applied at
 * once (mem holds leaked membranes, so the spikes of the next step add straight into it). */
HK_INLINE uint32_t hk_lsm_fire(int32_t *HK_RESTRICT mem, uint16_t *HK_RESTRICT fired, uint32_t n,
                               uint16_t *HK_RESTRICT counts, int begin, int end, int32_t theta, int k)
{
    for (int i = begin; i < end; i++) {
        int32_t u = mem[i];
        if (u >= theta) {
            u = 0;
            fired[n++] = (uint16_t)i;
            if (counts != NULL) {
                counts[i]++;
            }
        }
        mem[i] = u - hk_nn_asr32_shift(u, k);
    }
    return n;
}

/* The reservoir over one control step: `timesteps` steps of input spikes, recurrent spikes and
 * neuron updates; the excitatory spike counts land in st->counts.
 * Step t: u = leak(u) + I (input spikes of t, recurrent spikes of t - 1); spike if u >= threshold,
 * then u = 0. st->mem keeps leak(u), so the currents of a step add straight into it. */
HK_NOINLINE void hk_lsm_reservoir(const hk_lsm_net *net, hk_lsm_state *st, uint32_t *counters)
{
    const int shift = 32 - net->input_bits;
    const int32_t theta = net->threshold;
    int32_t *HK_RESTRICT mem = st->mem;
    uint16_t *HK_RESTRICT fired = st->fired;
    uint32_t spikes_in = 0, exc = 0, total = 0, synops = 0;
    for (int i = 0; i < net->excitatory; i++) {
        st->counts[i] = 0;
    }
    for (int t = 0; t < net->timesteps; t++) {
        /* Poisson input: one draw per observation, a spike on its sign's channel when r < |q| */
        for (int j = 0; j < net->n_obs; j++) {
            const int32_t r = (int32_t)(hk_nn_xorshift32(&st->rng) >> shift);
            const int32_t q = st->q[j];
            int c = -1;
            if (q > 0 && r < q) {
                c = 2 * j;
            } else if (q < 0 && r < -q) {
                c = 2 * j + 1;
            }
            if (c >= 0) {
                spikes_in++;
                synops += hk_lsm_deliver(mem, net->in_post, net->in_w, net->in_start[c], net->in_start[c + 1]);
            }
        }
        /* the spikes of the step before */
        for (uint32_t f = 0; f < st->n_fired; f++) {
            const int pre = fired[f];
            synops += hk_lsm_deliver(mem, net->rec_post, net->rec_w, net->rec_start[pre], net->rec_start[pre + 1]);
        }
        /* fire, reset, leak: excitatory neurons (counted for the readout), then inhibitory */
        uint32_t n = hk_lsm_fire(mem, fired, 0, st->counts, 0, net->excitatory, theta, net->leak_shift);
        exc += n;
        n = hk_lsm_fire(mem, fired, n, NULL, net->excitatory, net->neurons, theta, net->leak_shift);
        total += n;
        st->n_fired = n;
    }
    counters[HK_LSM_SPIKES_IN] = spikes_in;
    counters[HK_LSM_SPIKES_EXC] = exc;
    counters[HK_LSM_SPIKES_INH] = total - exc;
    counters[HK_LSM_SYNOPS] = synops;
}

/* The integer readout: the action (first argmax of acc) and the outputs. */
HK_NOINLINE int hk_lsm_readout(const hk_lsm_net *net, hk_lsm_state *st, float *out)
{
    const int ne = net->excitatory;
    for (int h = 0; h < net->hidden; h++) {
        const int16_t *w = net->w1 + (size_t)h * (size_t)ne;
        int32_t acc = net->b1[h];
        for (int j = 0; j < ne; j++) {
            acc += (int32_t)w[j] * (int32_t)st->counts[j];
        }
        st->hid[h] = acc > 0 ? acc : 0;
    }
    int best = 0;
    int64_t best_acc = 0;
    for (int a = 0; a < net->actions; a++) {
        const int16_t *w = net->w2 + (size_t)a * (size_t)net->hidden;
        int64_t acc = net->b2[a];
        for (int h = 0; h < net->hidden; h++) {
            acc += (int64_t)w[h] * (int64_t)st->hid[h];
        }
        if (a == 0 || acc > best_acc) {
            best = a;
            best_acc = acc;
        }
        out[a] = (float)(int32_t)hk_nn_asr64(acc, net->out_shift) * net->out_scale;
    }
    return best;
}

/* One control step: in[0 .. n_obs) the observation, in[n_obs] != 0 to reset first (episode
 * start). Writes `actions` outputs and HK_LSM_N_COUNTERS counters. Returns 0. */
HK_NOINLINE int hk_lsm_step_f32(const hk_lsm_net *net, hk_lsm_state *st, const float *in, float *out,
                                uint32_t *counters)
{
    if (in[net->n_obs] != 0.0f || !st->ready) {
        hk_lsm_reset(net, st);
    }
    for (int j = 0; j < net->n_obs; j++) {
        st->q[j] = hk_lsm_quantize(in[j], net->gain[j], net->input_bits);
    }
    hk_lsm_reservoir(net, st, counters);
    counters[HK_LSM_ACTION] = (uint32_t)hk_lsm_readout(net, st, out);
    return 0;
}

#endif
