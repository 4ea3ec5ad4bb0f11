/* MEANet early exit on the edge (docs/meanet.md): the gate after the main block's exit, and the
 * merge of the extension block's hard-class logits.
 *
 * Float32 in the order of operations of hilkit.models.meanet (softmax_f32, entropy_f32, gate,
 * merge): a left-to-right sum, expf/logf from the C library. The board and the numpy reference
 * then agree on the entropy to within the last bits of their logits; docs/meanet.md says how the
 * decisions are checked for agreement (the margin to the threshold of every sample).
 *
 * hk_meanet_gate_f32 returns the tier; the generated hk_model_infer returns early for the main
 * tier (answer = the exit's distribution) and the cloud tier (HK_MODEL_OFFLOAD), so the extension
 * block only runs when the exit's top class is a hard one. */
#ifndef HK_MEANET_H
#define HK_MEANET_H
#include <math.h>

#include "hk_types.h"

#define HK_MEANET_MAIN 0      /* answered by the main exit */
#define HK_MEANET_EXTENSION 1 /* a hard class: the extension block answers */
#define HK_MEANET_CLOUD 2     /* too uncertain: the input goes to the cloud */

#define HK_MEANET_ENTROPY 0    /* cloud when the exit's entropy (nats) > threshold */
#define HK_MEANET_CONFIDENCE 1 /* cloud when the exit's top probability < threshold */

/* p = softmax(z): e = expf(z - max z), summed left to right, p = e / sum. */
HK_INLINE void hk_meanet_softmax_f32(const float *z, float *p, int n)
{
    float m = z[0], s = 0.0f;
    int i;
    for (i = 1; i < n; i++) {
        if (z[i] > m) {
            m = z[i];
        }
    }
    for (i = 0; i < n; i++) {
        p[i] = expf(z[i] - m);
        s += p[i];
    }
    for (i = 0; i < n; i++) {
        p[i] = p[i] / s;
    }
}

/* H = -sum p log p in nats, left to right, skipping p = 0. */
HK_INLINE float hk_meanet_entropy_f32(const float *p, int n)
{
    float h = 0.0f;
    int i;
    for (i = 0; i < n; i++) {
        if (p[i] > 0.0f) {
            const float t = p[i] * logf(p[i]);
            h = h - t;
        }
    }
    return h;
}

/* The bits of a float32 through a union, not hk_nn_bits_from_f32's memcpy: under -ffreestanding
 * (rpi3-bm) memcpy is a library call, and the board's instruction counts are kept as they are. */
HK_INLINE uint32_t hk__meanet_bits(float f)
{
    union {
        float f;
        uint32_t u;
    } b;
    b.f = f;
    return b.u;
}

/* The gate: p = softmax(z) (the exit's distribution), then the tier. hard[c] != 0 marks a hard
 * class. counters[0..2] get the tier, the bits of the score (entropy or top probability, float32)
 * and the top class, which the board reports with every reply. */
HK_INLINE int hk_meanet_gate_f32(const float *z, float *p, int n, const uint8_t *hard, float threshold, int criterion,
                                 uint32_t *counters)
{
    int i, top = 0, tier;
    float score;
    hk_meanet_softmax_f32(z, p, n);
    for (i = 1; i < n; i++) {
        if (p[i] > p[top]) {
            top = i;
        }
    }
    if (criterion == HK_MEANET_CONFIDENCE) {
        score = p[top];
        tier = score < threshold ? HK_MEANET_CLOUD : -1;
    } else {
        score = hk_meanet_entropy_f32(p, n);
        tier = score > threshold ? HK_MEANET_CLOUD : -1;
    }
    if (tier < 0) {
        tier = hard[top] ? HK_MEANET_EXTENSION : HK_MEANET_MAIN;
    }
    counters[0] = (uint32_t)tier;
    counters[1] = hk__meanet_bits(score);
    counters[2] = (uint32_t)top;
    return tier;
}

/* y = p with the hard classes' mass P = sum_j p[hard[j]] (left to right) split as
 * y[hard[j]] = P * softmax(ext)_j. y must not alias p or ext. */
HK_INLINE void hk_meanet_merge_f32(const float *p, const float *ext, const uint16_t *hard, int n_hard, int n, float *y)
{
    float mass = p[hard[0]], m = ext[0], s = 0.0f;
    int i;
    for (i = 1; i < n_hard; i++) {
        mass += p[hard[i]];
        if (ext[i] > m) {
            m = ext[i];
        }
    }
    for (i = 0; i < n; i++) {
        y[i] = p[i];
    }
    for (i = 0; i < n_hard; i++) {
        const float e = expf(ext[i] - m);
        y[hard[i]] = e;
        s += e;
    }
    for (i = 0; i < n_hard; i++) {
        y[hard[i]] = mass * (y[hard[i]] / s);
    }
}

#endif
